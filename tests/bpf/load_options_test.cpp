// Behaviour that depends on how the object was loaded: full MAC and flow maps (the
// capacities from LoadOptions), flows switched off, and RX and TX sharing one object.
#include <gtest/gtest.h>

#include "bpf_harness.hpp"

namespace pf::test {
namespace {

const Mac kLocal{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const Mac kPeerA{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const Mac kPeerB{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};
const Mac kPeerC{0x02, 0x00, 0x00, 0x00, 0x00, 0x0c};

constexpr uint64_t kUdpFrame = 14 + 20 + 8;  // Ethernet + IPv4 + UDP, before payload

class LoadOptionsTest : public ::testing::TestWithParam<Hook> {
  protected:
    Hook hook() const { return GetParam(); }
    uint8_t dir() const { return hook_dir(GetParam()); }

    // A UDP frame whose peer MAC (as the hook under test sees it) is `peer`.
    std::vector<uint8_t> frame(const Mac& peer, uint16_t sport, size_t payload) const {
        PacketBuilder b;
        if (dir() == PF_DIR_RX)
            b.eth(peer, kLocal);
        else
            b.eth(kLocal, peer);
        return b.ipv4("10.0.0.1", "10.0.0.2").udp(sport, 53).payload(payload).build();
    }

    pf_flow_key key(const Mac& peer, uint16_t sport) const {
        const bool rx = dir() == PF_DIR_RX;
        return make_key({.dir = dir(),
                         .family = 4,
                         .proto = 17,
                         .src_addr = ipv4_mapped("10.0.0.1"),
                         .dst_addr = ipv4_mapped("10.0.0.2"),
                         .src_port = sport,
                         .dst_port = 53,
                         .src_mac = rx ? peer : kLocal,
                         .dst_mac = rx ? kLocal : peer});
    }
};

TEST_P(LoadOptionsTest, MacMapFullCountsEveryDroppedInsert) {
    LoadOptions opts;
    opts.mac_capacity = 2;
    auto obj = LoadedObject::load(opts);
    const auto a = frame(kPeerA, 1000, 10), b = frame(kPeerB, 1000, 20), c = frame(kPeerC, 1000, 30);
    const uint64_t before = monotonic_ns();
    send(obj, hook(), a);
    send(obj, hook(), b);
    send(obj, hook(), c, 3);  // three packets, three failed inserts
    send(obj, hook(), c);
    send(obj, hook(), a);  // known MACs keep counting while the map is full
    const uint64_t after = monotonic_ns();

    const uint64_t la = kUdpFrame + 10, lb = kUdpFrame + 20, lc = kUdpFrame + 30;
    expect_iface(obj, iface_totals(dir(), 2 * la + lb + 4 * lc, 7));
    expect_macs(obj, {mac_row(kPeerA, dir(), 2 * la, 2), mac_row(kPeerB, dir(), lb, 1)});
    expect_events(obj, events(4, 0, 0, 0));
    // The flow map has room: C's traffic is still in its flow.
    expect_flows(obj,
                 {{key(kPeerA, 1000), 2 * la, 2, 0}, {key(kPeerB, 1000), lb, 1, 0}, {key(kPeerC, 1000), 4 * lc, 4, 0}},
                 before, after);
}

TEST_P(LoadOptionsTest, FlowMapFullCountsEveryDroppedInsert) {
    LoadOptions opts;
    opts.flow_capacity = 2;
    auto obj = LoadedObject::load(opts);
    const auto f1 = frame(kPeerA, 1, 100), f2 = frame(kPeerA, 2, 200), f3 = frame(kPeerA, 3, 300);
    const uint64_t before = monotonic_ns();
    send(obj, hook(), f1);
    send(obj, hook(), f2);
    send(obj, hook(), f3, 2);
    send(obj, hook(), f1);  // existing flows keep counting while the map is full
    const uint64_t after = monotonic_ns();

    const uint64_t l1 = kUdpFrame + 100, l2 = kUdpFrame + 200, l3 = kUdpFrame + 300;
    const uint64_t total = 2 * l1 + l2 + 2 * l3;
    expect_iface(obj, iface_totals(dir(), total, 5));
    expect_macs(obj, {mac_row(kPeerA, dir(), total, 5)});
    expect_events(obj, events(0, 2, 0, 0));
    expect_flows(obj, {{key(kPeerA, 1), 2 * l1, 2, 0}, {key(kPeerA, 2), l2, 1, 0}}, before, after);
}

TEST_P(LoadOptionsTest, FlowsDisabledStillCountsInterfaceAndMacs) {
    LoadOptions opts;
    opts.flows = false;
    auto obj = LoadedObject::load(opts);
    const auto udp = frame(kPeerA, 1, 50);
    const auto arp = PacketBuilder().eth(kPeerA, kLocal).arp("10.0.0.1", "10.0.0.2").build();
    // Tagged, so the TC test run accepts the truncated IPv4 header.
    const auto truncated =
        PacketBuilder().eth(kPeerA, kLocal).vlan(7).ipv4("10.0.0.1", "10.0.0.2").truncate(18 + 10).build();
    send(obj, hook(), udp, 2);
    send(obj, hook(), frame(kPeerB, 1, 0));
    // On RX these two are accounted to kPeerA (source); on TX to kLocal (destination).
    send(obj, hook(), arp);
    send(obj, hook(), truncated);

    const uint64_t lu = kUdpFrame + 50, lb = kUdpFrame, la = 14 + 28, lt = 18 + 10;
    expect_iface(obj, iface_totals(dir(), 2 * lu + lb + la + lt, 5));
    if (dir() == PF_DIR_RX)
        expect_macs(obj, {mac_row(kPeerA, dir(), 2 * lu + la + lt, 4), mac_row(kPeerB, dir(), lb, 1)});
    else
        expect_macs(obj, {mac_row(kPeerA, dir(), 2 * lu, 2), mac_row(kPeerB, dir(), lb, 1),
                          mac_row(kLocal, dir(), la + lt, 2)});
    EXPECT_TRUE(flow_rows(obj).empty());
    // Without flows the parser does not run, so neither non_ip (ARP) nor unparsable
    // (truncated IPv4 header) is counted.
    expect_events(obj, events(0, 0, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Hooks, LoadOptionsTest, ::testing::Values(Hook::XdpIngress, Hook::TcIngress, Hook::TcEgress),
                         [](const ::testing::TestParamInfo<Hook>& info) { return std::string(hook_name(info.param)); });

TEST(SharedObject, RxAndTxOfOnePeerShareItsMacRow) {
    auto obj = LoadedObject::load();
    const auto in =
        PacketBuilder().eth(kPeerA, kLocal).ipv4("10.0.0.1", "10.0.0.2").tcp(443, 40000, kTcpAck).payload(1000).build();
    const auto out =
        PacketBuilder().eth(kLocal, kPeerA).ipv4("10.0.0.2", "10.0.0.1").tcp(40000, 443, kTcpAck).payload(10).build();
    const uint64_t before = monotonic_ns();
    send(obj, Hook::XdpIngress, in);
    send(obj, Hook::TcEgress, out, 2);
    send(obj, Hook::TcIngress, in);  // --xdp-mode off path: same RX counters
    const uint64_t after = monotonic_ns();

    const uint64_t lin = 14 + 20 + 20 + 1000, lout = 14 + 20 + 20 + 10;
    IfaceTotals want;
    want.dir[PF_DIR_RX] = {2 * lin, 2};
    want.dir[PF_DIR_TX] = {2 * lout, 2};
    expect_iface(obj, want);
    MacRow row;
    row.mac = kPeerA;
    row.dir[PF_DIR_RX] = {2 * lin, 2};
    row.dir[PF_DIR_TX] = {2 * lout, 2};
    expect_macs(obj, {row});
    auto rx_key = make_key({.dir = PF_DIR_RX,
                            .family = 4,
                            .proto = 6,
                            .src_addr = ipv4_mapped("10.0.0.1"),
                            .dst_addr = ipv4_mapped("10.0.0.2"),
                            .src_port = 443,
                            .dst_port = 40000,
                            .src_mac = kPeerA,
                            .dst_mac = kLocal});
    auto tx_key = make_key({.dir = PF_DIR_TX,
                            .family = 4,
                            .proto = 6,
                            .src_addr = ipv4_mapped("10.0.0.2"),
                            .dst_addr = ipv4_mapped("10.0.0.1"),
                            .src_port = 40000,
                            .dst_port = 443,
                            .src_mac = kLocal,
                            .dst_mac = kPeerA});
    expect_flows(obj, {{rx_key, 2 * lin, 2, kTcpAck}, {tx_key, 2 * lout, 2, kTcpAck}}, before, after);
    expect_events(obj, events(0, 0, 0, 0));
}

}  // namespace
}  // namespace pf::test
