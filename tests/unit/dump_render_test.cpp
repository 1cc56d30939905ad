// render_json / render_text of hand-built snapshots: the JSON shape the CLI promises
// (compared as a whole document, so a missing, extra or mistyped key fails), sorting and
// --top, rates from two snapshots one second apart, and the aligned text table.

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "peakflow/kernel/dump.hpp"

namespace pf {
namespace {

using nlohmann::json;

constexpr uint64_t kSecond = 1000000000ull;

void set_v4_mapped(uint8_t (&addr)[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
    std::copy(std::begin(mapped), std::end(mapped), addr);
}

void set_v6(uint8_t (&addr)[16], const uint8_t (&bytes)[16]) {
    std::copy(std::begin(bytes), std::end(bytes), addr);
}

void set_mac(uint8_t (&dst)[6], const MacAddr& mac) {
    std::copy(mac.begin(), mac.end(), dst);
}

const MacAddr kSmallPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const MacAddr kBigPeer{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
const MacAddr kOwn{0x52, 0x54, 0x00, 0x00, 0x00, 0x10};

// 198.18.0.1:5353 -> 198.18.0.2:53 UDP, received on VLAN 100.
FlowRow udp4_flow() {
    FlowRow f;
    set_v4_mapped(f.key.src_addr, 198, 18, 0, 1);
    set_v4_mapped(f.key.dst_addr, 198, 18, 0, 2);
    set_mac(f.key.src_mac, kBigPeer);
    set_mac(f.key.dst_mac, kOwn);
    f.key.src_port = 5353;
    f.key.dst_port = 53;
    f.key.vlan[0] = 100;
    f.key.proto = IPPROTO_UDP;
    f.key.dir = PF_DIR_RX;
    f.key.family = 4;
    f.bytes = 2000;
    f.packets = 20;
    f.first_seen_ns = 5 * kSecond;
    f.last_seen_ns = 9 * kSecond;
    return f;
}

// [2001:db8::1]:443 -> [2001:db8::2]:51000 TCP, sent, PSH|ACK seen.
FlowRow tcp6_flow() {
    FlowRow f;
    set_v6(f.key.src_addr, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    set_v6(f.key.dst_addr, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
    set_mac(f.key.src_mac, kOwn);
    set_mac(f.key.dst_mac, kSmallPeer);
    f.key.src_port = 443;
    f.key.dst_port = 51000;
    f.key.proto = IPPROTO_TCP;
    f.key.dir = PF_DIR_TX;
    f.key.family = 6;
    f.bytes = 9000;
    f.packets = 9;
    f.first_seen_ns = 1 * kSecond;
    f.last_seen_ns = 8 * kSecond;
    f.tcp_flags = 0x18;
    return f;
}

InterfaceSnapshot eth0_snapshot() {
    InterfaceSnapshot s;
    s.name = "eth0";
    s.ifindex = 2;
    s.xdp_mode = "native";
    s.totals.dir[PF_DIR_RX] = Counter{1500000, 1200};
    s.totals.dir[PF_DIR_TX] = Counter{300000, 900};
    // Listed smallest first so the renderer has to sort.
    MacRow small;
    small.mac = kSmallPeer;
    small.dir[PF_DIR_RX] = Counter{1000, 10};
    small.dir[PF_DIR_TX] = Counter{500, 5};
    MacRow big;
    big.mac = kBigPeer;
    big.dir[PF_DIR_RX] = Counter{40000, 30};
    big.dir[PF_DIR_TX] = Counter{2000, 20};
    s.macs = {small, big};
    s.flows = {udp4_flow(), tcp6_flow()};
    s.events = {1, 2, 3, 4};
    s.taken_ns = 100 * kSecond;
    return s;
}

// eth0 one second earlier: 125000 B more received (1 Mbit/s), 1000 B more sent (8 kbit/s).
InterfaceSnapshot eth0_one_second_earlier() {
    InterfaceSnapshot s = eth0_snapshot();
    s.totals.dir[PF_DIR_RX] = Counter{1500000 - 125000, 1100};
    s.totals.dir[PF_DIR_TX] = Counter{300000 - 1000, 890};
    s.taken_ns = 99 * kSecond;
    return s;
}

json parse_json(const std::string& text) {
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    // One object on one line: --watch --json prints one per line.
    EXPECT_EQ(text.find('\n'), text.size() - 1) << text;
    return json::parse(text);
}

const json kBigPeerJson = {
    {"mac", "52:54:00:ab:cd:ef"}, {"rx_bytes", 40000}, {"rx_packets", 30}, {"tx_bytes", 2000}, {"tx_packets", 20}};
const json kSmallPeerJson = {
    {"mac", "02:00:00:00:00:01"}, {"rx_bytes", 1000}, {"rx_packets", 10}, {"tx_bytes", 500}, {"tx_packets", 5}};
const json kEventsJson = {{"mac_map_full", 1}, {"flow_map_full", 2}, {"unparsable", 3}, {"non_ip", 4}};

json eth0_json_without_flows() {
    return {{"name", "eth0"},       {"ifindex", 2},
            {"xdp_mode", "native"}, {"rx_bytes", 1500000},
            {"rx_packets", 1200},   {"tx_bytes", 300000},
            {"tx_packets", 900},    {"macs", json::array({kBigPeerJson, kSmallPeerJson})},
            {"events", kEventsJson}};
}

const json kTcp6Json = {{"dir", "tx"},
                        {"family", 6},
                        {"proto", 6},
                        {"src", "2001:db8::1"},
                        {"dst", "2001:db8::2"},
                        {"src_port", 443},
                        {"dst_port", 51000},
                        {"vlan", json::array({0, 0})},
                        {"src_mac", "52:54:00:00:00:10"},
                        {"dst_mac", "02:00:00:00:00:01"},
                        {"bytes", 9000},
                        {"packets", 9},
                        {"first_seen_ns", 1 * kSecond},
                        {"last_seen_ns", 8 * kSecond},
                        {"tcp_flags", 0x18}};
const json kUdp4Json = {{"dir", "rx"},
                        {"family", 4},
                        {"proto", 17},
                        {"src", "198.18.0.1"},
                        {"dst", "198.18.0.2"},
                        {"src_port", 5353},
                        {"dst_port", 53},
                        {"vlan", json::array({100, 0})},
                        {"src_mac", "52:54:00:ab:cd:ef"},
                        {"dst_mac", "52:54:00:00:00:10"},
                        {"bytes", 2000},
                        {"packets", 20},
                        {"first_seen_ns", 5 * kSecond},
                        {"last_seen_ns", 9 * kSecond},
                        {"tcp_flags", 0}};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

TEST(DumpJson, ExactDocumentWithoutFlows) {
    json doc = parse_json(render_json({eth0_snapshot()}, {}, DumpOptions{}));
    json expected = {{"interfaces", json::array({eth0_json_without_flows()})}};
    EXPECT_EQ(doc, expected) << doc.dump(2);
    // The counters are JSON integers, not floats or strings.
    EXPECT_TRUE(doc["interfaces"][0]["rx_bytes"].is_number_unsigned());
    EXPECT_TRUE(doc["interfaces"][0]["macs"][0]["tx_packets"].is_number_unsigned());
}

TEST(DumpJson, FlowsOnlyWhenAskedForSortedByBytes) {
    DumpOptions o;
    o.flows = true;
    json doc = parse_json(render_json({eth0_snapshot()}, {}, o));
    json iface = eth0_json_without_flows();
    iface["flows"] = json::array({kTcp6Json, kUdp4Json});
    iface["flow_entries"] = 2;
    EXPECT_EQ(doc, (json{{"interfaces", json::array({iface})}})) << doc.dump(2);
}

TEST(DumpJson, Ipv4MappedAddressesPrintAsDottedQuad) {
    FlowRow f = udp4_flow();
    EXPECT_EQ(format_flow_addr(f.key, true), "198.18.0.1");
    EXPECT_EQ(format_flow_addr(f.key, false), "198.18.0.2");
    FlowRow g = tcp6_flow();
    EXPECT_EQ(format_flow_addr(g.key, true), "2001:db8::1");
    EXPECT_EQ(format_flow_addr(g.key, false), "2001:db8::2");
}

TEST(DumpJson, TopLimitsMacAndFlowRows) {
    DumpOptions o;
    o.flows = true;
    o.top = 1;
    json doc = parse_json(render_json({eth0_snapshot()}, {}, o));
    const json& iface = doc["interfaces"][0];
    EXPECT_EQ(iface["macs"], json::array({kBigPeerJson}));
    EXPECT_EQ(iface["flows"], json::array({kTcp6Json}));
    // flow_entries still counts the whole map, not the rows shown.
    EXPECT_EQ(iface["flow_entries"], 2);
}

TEST(DumpJson, FlowsDefaultToTenRowsMacsToAll) {
    InterfaceSnapshot s = eth0_snapshot();
    s.flows.clear();
    for (uint64_t i = 1; i <= 12; i++) {
        FlowRow f = udp4_flow();
        f.key.src_port = static_cast<uint16_t>(1000 + i);
        f.bytes = i * 100;
        s.flows.push_back(f);
    }
    for (uint8_t i = 0; i < 12; i++) {
        MacRow m;
        m.mac = {0x02, 0, 0, 0, 1, i};
        m.dir[PF_DIR_RX] = Counter{i, 1};
        s.macs.push_back(m);
    }
    DumpOptions o;
    o.flows = true;
    json doc = parse_json(render_json({s}, {}, o));
    const json& iface = doc["interfaces"][0];
    EXPECT_EQ(iface["macs"].size(), 14u);
    ASSERT_EQ(iface["flows"].size(), 10u);
    EXPECT_EQ(iface["flow_entries"], 12);
    // Biggest first: ports 1012 down to 1003.
    EXPECT_EQ(iface["flows"][0]["src_port"], 1012);
    EXPECT_EQ(iface["flows"][0]["bytes"], 1200);
    EXPECT_EQ(iface["flows"][9]["src_port"], 1003);
    EXPECT_EQ(iface["flows"][9]["bytes"], 300);
}

TEST(DumpJson, MacRowsSortByTotalBytesThenByMac) {
    InterfaceSnapshot s = eth0_snapshot();
    // rx-heavy and tx-heavy rows with the same total tie; the lower MAC comes first.
    MacRow tx_heavy;
    tx_heavy.mac = {0x0a, 0, 0, 0, 0, 2};
    tx_heavy.dir[PF_DIR_TX] = Counter{42000, 1};
    MacRow rx_heavy;
    rx_heavy.mac = {0x0a, 0, 0, 0, 0, 1};
    rx_heavy.dir[PF_DIR_RX] = Counter{41999, 1};
    rx_heavy.dir[PF_DIR_TX] = Counter{1, 1};
    MacRow biggest;
    biggest.mac = {0xff, 0, 0, 0, 0, 0};
    biggest.dir[PF_DIR_TX] = Counter{42001, 1};
    s.macs.insert(s.macs.begin(), {tx_heavy, rx_heavy, biggest});
    json doc = parse_json(render_json({s}, {}, DumpOptions{}));
    std::vector<std::string> order;
    for (const auto& m : doc["interfaces"][0]["macs"]) order.push_back(m["mac"]);
    EXPECT_EQ(order, (std::vector<std::string>{"ff:00:00:00:00:00", "0a:00:00:00:00:01", "0a:00:00:00:00:02",
                                               "52:54:00:ab:cd:ef", "02:00:00:00:00:01"}));
}

TEST(DumpJson, RatesFromAPreviousSnapshotOneSecondEarlier) {
    json doc = parse_json(render_json({eth0_snapshot()}, {eth0_one_second_earlier()}, DumpOptions{}));
    json iface = eth0_json_without_flows();
    iface["rx_bps"] = 1000000.0;
    iface["tx_bps"] = 8000.0;
    EXPECT_EQ(doc, (json{{"interfaces", json::array({iface})}})) << doc.dump(2);
}

TEST(DumpJson, RatesOverHalfASecond) {
    InterfaceSnapshot prev = eth0_one_second_earlier();
    prev.taken_ns = 100 * kSecond - kSecond / 2;
    json doc = parse_json(render_json({eth0_snapshot()}, {prev}, DumpOptions{}));
    EXPECT_EQ(doc["interfaces"][0]["rx_bps"].get<double>(), 2000000.0);
    EXPECT_EQ(doc["interfaces"][0]["tx_bps"].get<double>(), 16000.0);
}

TEST(DumpJson, RatesPairInterfacesByName) {
    InterfaceSnapshot eth1 = eth0_snapshot();
    eth1.name = "eth1";
    eth1.ifindex = 3;
    eth1.macs.clear();
    // prev lists eth1 only: eth0 has no earlier reading and gets no rate keys, and eth1's
    // rate must come from eth1's own previous counters.
    InterfaceSnapshot eth1_prev = eth0_one_second_earlier();
    eth1_prev.name = "eth1";
    eth1_prev.totals.dir[PF_DIR_RX] = Counter{1500000 - 250, 1199};
    json doc = parse_json(render_json({eth0_snapshot(), eth1}, {eth1_prev}, DumpOptions{}));
    ASSERT_EQ(doc["interfaces"].size(), 2u);
    EXPECT_EQ(doc["interfaces"][0]["name"], "eth0");
    EXPECT_FALSE(doc["interfaces"][0].contains("rx_bps"));
    EXPECT_FALSE(doc["interfaces"][0].contains("tx_bps"));
    EXPECT_EQ(doc["interfaces"][1]["name"], "eth1");
    EXPECT_EQ(doc["interfaces"][1]["ifindex"], 3);
    EXPECT_EQ(doc["interfaces"][1]["rx_bps"].get<double>(), 2000.0);
    EXPECT_EQ(doc["interfaces"][1]["tx_bps"].get<double>(), 8000.0);
    EXPECT_EQ(doc["interfaces"][1]["macs"], json::array());
}

TEST(DumpJson, UnknownRateIsNotANegativeNumber) {
    InterfaceSnapshot prev = eth0_one_second_earlier();
    prev.totals.dir[PF_DIR_RX] = Counter{9000000, 9000};
    json doc = parse_json(render_json({eth0_snapshot()}, {prev}, DumpOptions{}));
    EXPECT_TRUE(doc["interfaces"][0]["rx_bps"].is_null()) << doc["interfaces"][0]["rx_bps"];
    EXPECT_EQ(doc["interfaces"][0]["tx_bps"].get<double>(), 8000.0);
}

TEST(DumpJson, NoInterfacesIsAnEmptyArray) {
    EXPECT_EQ(render_json({}, {}, DumpOptions{}), "{\"interfaces\":[]}\n");
}

TEST(DumpText, ExactTableWithoutRates) {
    std::string text = render_text({eth0_snapshot()}, {}, DumpOptions{});
    // Columns: 2-space indent, then right-aligned figures (14 wide for bytes, 12 for
    // MAC packet counts), so every figure ends in the same column as its heading.
    EXPECT_EQ(text,
              "eth0  ifindex 2  xdp native\n"
              "                bytes        packets               \n"
              "  rx         1.43 MiB           1200               \n"
              "  tx       292.97 KiB            900               \n"
              "  peer MAC                rx bytes   rx packets       tx bytes   tx packets\n"
              "  52:54:00:ab:cd:ef      39.06 KiB           30       1.95 KiB           20\n"
              "  02:00:00:00:00:01         1000 B           10          500 B            5\n"
              "  events mac_map_full=1 flow_map_full=2 unparsable=3 non_ip=4\n"
              "\n");
}

TEST(DumpText, RatesColumnFromAPreviousSnapshot) {
    auto lines = lines_of(render_text({eth0_snapshot()}, {eth0_one_second_earlier()}, DumpOptions{}));
    ASSERT_GE(lines.size(), 4u);
    EXPECT_EQ(lines[1], "                bytes        packets           rate");
    EXPECT_EQ(lines[2], "  rx         1.43 MiB           1200     1.0 Mbit/s");
    EXPECT_EQ(lines[3], "  tx       292.97 KiB            900     8.0 kbit/s");
}

struct Cell {
    const char* heading;
    std::string value;
    bool right_aligned;
};

// Each value must sit under its heading: text columns start where the heading starts,
// figures end where it ends. Column widths themselves are left to the renderer.
void expect_under_headings(const std::string& header, const std::string& row, const std::vector<Cell>& cells) {
    EXPECT_EQ(row.size(), header.size()) << "\n" << header << "\n" << row;
    for (const auto& c : cells) {
        size_t h = header.find(c.heading);
        ASSERT_NE(h, std::string::npos) << c.heading;
        size_t at = c.right_aligned ? h + std::string(c.heading).size() - c.value.size() : h;
        std::string got = at + c.value.size() <= row.size() ? row.substr(at, c.value.size()) : "<row too short>";
        EXPECT_EQ(got, c.value) << "under '" << c.heading << "':\n" << header << "\n" << row;
    }
}

std::vector<Cell> flow_cells(const char* dir, const char* proto, const char* vlan, const std::string& src,
                             const std::string& dst, const char* bytes, const char* packets) {
    return {{"dir", dir, false},         {"proto", proto, false}, {"vlan", vlan, false},     {"source", src, false},
            {"destination", dst, false}, {"bytes", bytes, true},  {"packets", packets, true}};
}

TEST(DumpText, FlowsTable) {
    DumpOptions o;
    o.flows = true;
    auto lines = lines_of(render_text({eth0_snapshot()}, {}, o));
    ASSERT_EQ(lines.size(), 13u);
    EXPECT_EQ(lines[8], "  flows: 2 in map, top 2 by bytes");
    const std::string& header = lines[9];
    EXPECT_EQ(header.rfind("  dir proto  vlan ", 0), 0u) << header;
    EXPECT_EQ(header.substr(header.size() - 16), "bytes    packets") << header;
    // Biggest flow first.
    expect_under_headings(header, lines[10],
                          flow_cells("tx", "tcp", "-", "[2001:db8::1]:443", "[2001:db8::2]:51000", "8.79 KiB", "9"));
    expect_under_headings(header, lines[11],
                          flow_cells("rx", "udp", "100", "198.18.0.1:5353", "198.18.0.2:53", "1.95 KiB", "20"));
    EXPECT_EQ(lines[12], "");
}

TEST(DumpText, QinqVlanIdsAreBothShown) {
    InterfaceSnapshot s = eth0_snapshot();
    s.flows[0].key.vlan[1] = 200;
    DumpOptions o;
    o.flows = true;
    auto lines = lines_of(render_text({s}, {}, o));
    ASSERT_EQ(lines.size(), 13u);
    std::istringstream row(lines[11]);
    std::vector<std::string> fields{std::istream_iterator<std::string>(row), std::istream_iterator<std::string>()};
    EXPECT_EQ(fields, (std::vector<std::string>{"rx", "udp", "100.200", "198.18.0.1:5353", "198.18.0.2:53", "1.95",
                                                "KiB", "20"}));
    json doc = parse_json(render_json({s}, {}, o));
    EXPECT_EQ(doc["interfaces"][0]["flows"][1]["vlan"], json::array({100, 200}));
}

TEST(DumpText, FlowColumnsStayAlignedForWideValues) {
    InterfaceSnapshot s = eth0_snapshot();
    s.flows[0].key.vlan[0] = 4094;
    s.flows[0].key.vlan[1] = 4094;
    // 2a02:8071:abcd:ef01:1234:5678:9abc:def0, an ordinary global address: 39 characters.
    set_v6(s.flows[1].key.src_addr,
           {0x2a, 0x02, 0x80, 0x71, 0xab, 0xcd, 0xef, 0x01, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0});
    s.flows[1].key.src_port = 65535;
    DumpOptions o;
    o.flows = true;
    auto lines = lines_of(render_text({s}, {}, o));
    ASSERT_EQ(lines.size(), 13u);
    expect_under_headings(lines[9], lines[10],
                          flow_cells("tx", "tcp", "-", "[2a02:8071:abcd:ef01:1234:5678:9abc:def0]:65535",
                                     "[2001:db8::2]:51000", "8.79 KiB", "9"));
    expect_under_headings(lines[9], lines[11],
                          flow_cells("rx", "udp", "4094.4094", "198.18.0.1:5353", "198.18.0.2:53", "1.95 KiB", "20"));
}

TEST(DumpText, TopLimitsMacRowsAndSaysHowManyMore) {
    DumpOptions o;
    o.top = 1;
    auto lines = lines_of(render_text({eth0_snapshot()}, {}, o));
    ASSERT_EQ(lines.size(), 9u);
    EXPECT_EQ(lines[5], "  52:54:00:ab:cd:ef      39.06 KiB           30       1.95 KiB           20");
    EXPECT_EQ(lines[6], "  (1 more MACs)");
    EXPECT_EQ(lines[7], "  events mac_map_full=1 flow_map_full=2 unparsable=3 non_ip=4");
    EXPECT_EQ(lines[8], "");
}

TEST(DumpText, ProtocolNames) {
    EXPECT_STREQ(proto_name(IPPROTO_TCP), "tcp");
    EXPECT_STREQ(proto_name(IPPROTO_UDP), "udp");
    EXPECT_STREQ(proto_name(IPPROTO_ICMP), "icmp");
    EXPECT_STREQ(proto_name(IPPROTO_ICMPV6), "icmpv6");
    EXPECT_STREQ(proto_name(0), "-");
    EXPECT_STREQ(proto_name(IPPROTO_GRE), "other");
}

}  // namespace
}  // namespace pf
