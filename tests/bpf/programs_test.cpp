// The three entry points on crafted frames: verdict, untouched packet, and the exact
// contents of every map afterwards. Each case runs on XDP ingress, TC ingress and TC
// egress; only the direction and the peer MAC (source on RX, destination on TX) differ.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "bpf_harness.hpp"

namespace pf::test {
namespace {

const Mac kPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const Mac kLocal{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const Mac kOtherPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};

constexpr size_t kEth = 14, kVlan = 4, kIpv4 = 20, kIpv6 = 40, kTcp = 20, kUdp = 8, kIcmp = 8;

class ProgramTest : public ::testing::TestWithParam<Hook> {
  protected:
    void SetUp() override { obj_ = LoadedObject::load(); }

    Hook hook() const { return GetParam(); }
    uint8_t dir() const { return hook_dir(GetParam()); }

    // Sends `frame` `repeat` times (one run) and checks it was accounted as one flow with
    // the given key (direction and MACs filled in here) and the given events.
    void expect_one_flow(const std::vector<uint8_t>& frame, KeySpec spec, uint8_t tcp_flags, const EventCounts& ev = {},
                         uint32_t repeat = 1) {
        spec.dir = dir();
        spec.src_mac = kPeer;
        spec.dst_mac = kLocal;
        const uint64_t before = monotonic_ns();
        send(obj_, hook(), frame, repeat);
        const uint64_t after = monotonic_ns();

        const uint64_t bytes = frame.size() * repeat;
        expect_iface(obj_, iface_totals(dir(), bytes, repeat));
        expect_macs(obj_, {mac_row(peer_mac(hook(), kPeer, kLocal), dir(), bytes, repeat)});
        auto flows = flow_rows(obj_);
        ASSERT_EQ(flows.size(), 1u);
        expect_flow(flows[0], make_key(spec), bytes, repeat, tcp_flags, before, after);
        expect_events(obj_, ev);
    }

    // A frame that must be counted on the interface and its MAC but make no flow.
    void expect_no_flow(const std::vector<uint8_t>& frame, const EventCounts& ev, uint32_t repeat = 1) {
        send(obj_, hook(), frame, repeat);
        const uint64_t bytes = frame.size() * repeat;
        expect_iface(obj_, iface_totals(dir(), bytes, repeat));
        expect_macs(obj_, {mac_row(peer_mac(hook(), kPeer, kLocal), dir(), bytes, repeat)});
        EXPECT_TRUE(flow_rows(obj_).empty());
        expect_events(obj_, ev);
    }

    // BPF_PROG_TEST_RUN for TC refuses a frame whose EtherType is IPv4 or IPv6 but whose
    // network header is shorter than the fixed 20 / 40 bytes (EINVAL, program not run).
    // Such frames reach the TC programs only behind a VLAN tag; see the VlanTagged* cases.
    bool kernel_rejects_short_l3() const { return hook() != Hook::XdpIngress; }

    void expect_rejected(const std::vector<uint8_t>& frame) {
        EXPECT_EQ(obj_.run(hook(), frame).err, EINVAL);
        expect_iface(obj_, IfaceTotals{});
        EXPECT_TRUE(mac_rows(obj_).empty());
        EXPECT_TRUE(flow_rows(obj_).empty());
        expect_events(obj_, events(0, 0, 0, 0));
    }

    LoadedObject obj_;
};

// --- IPv4 ---------------------------------------------------------------------------

TEST_P(ProgramTest, Ipv4Tcp) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").tcp(40000, 443, kTcpSyn).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kTcp);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 6,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 40000,
                     .dst_port = 443},
                    kTcpSyn);
}

TEST_P(ProgramTest, Ipv4Udp) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("192.0.2.7", "198.51.100.9").udp(5353, 53).payload(100).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kUdp + 100);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("192.0.2.7"),
                     .dst_addr = ipv4_mapped("198.51.100.9"),
                     .src_port = 5353,
                     .dst_port = 53},
                    0);
}

TEST_P(ProgramTest, Ipv4IcmpTypeAndCodeInDstPort) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").icmp(3, 4).payload(28).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kIcmp + 28);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 1,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 0,
                     .dst_port = 3 << 8 | 4},
                    0);
}

TEST_P(ProgramTest, Ipv4OptionsAreSkipped) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2", 12).udp(1111, 2222).payload(3).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + 12 + kUdp + 3);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 1111,
                     .dst_port = 2222},
                    0);
}

TEST_P(ProgramTest, Ipv4FirstFragmentHasPorts) {
    // More-fragments set, offset 0: the transport header is here.
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .ipv4_frag(0, true)
                 .udp(4000, 4001)
                 .payload(1000)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kUdp + 1000);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 4000,
                     .dst_port = 4001},
                    0);
}

TEST_P(ProgramTest, Ipv4NonFirstFragmentHasNoPorts) {
    // The bytes after the IPv4 header look like a UDP header but are mid-datagram data:
    // the program must not read ports from them.
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .ipv4_frag(185, false)
                 .udp(4000, 4001)
                 .payload(500)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kUdp + 500);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0);
}

// --- IPv6 ---------------------------------------------------------------------------

TEST_P(ProgramTest, Ipv6Tcp) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8:1::2")
                 .tcp(50000, 22, kTcpSyn | kTcpAck)
                 .payload(7)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + kTcp + 7);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 6,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8:1::2"),
                     .src_port = 50000,
                     .dst_port = 22},
                    kTcpSyn | kTcpAck);
}

TEST_P(ProgramTest, Ipv6Udp) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv6("fe80::1", "ff02::fb").udp(5353, 5353).payload(64).build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + kUdp + 64);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 17,
                     .src_addr = ipv6_addr("fe80::1"),
                     .dst_addr = ipv6_addr("ff02::fb"),
                     .src_port = 5353,
                     .dst_port = 5353},
                    0);
}

TEST_P(ProgramTest, Ipv6Icmpv6TypeAndCodeInDstPort) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv6("2001:db8::1", "2001:db8::2").icmpv6(128, 0).payload(56).build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + kIcmp + 56);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 58,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 0,
                     .dst_port = 128 << 8},
                    0);
}

TEST_P(ProgramTest, Ipv6ExtensionHeadersBeforeTcp) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .ipv6_ext(0, 0)   // hop-by-hop, 8 bytes
                 .ipv6_ext(43, 2)  // routing, 24 bytes
                 .ipv6_ext(60, 1)  // destination options, 16 bytes
                 .tcp(33000, 8080, kTcpAck | kTcpPsh)
                 .payload(10)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 8 + 24 + 16 + kTcp + 10);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 6,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 33000,
                     .dst_port = 8080},
                    kTcpAck | kTcpPsh);
}

// An IPv6 packet with `n` destination options headers (8 bytes each) before TCP.
std::vector<uint8_t> ipv6_with_dstopts(int n) {
    PacketBuilder b;
    b.eth(kPeer, kLocal).ipv6("2001:db8::1", "2001:db8::2");
    for (int i = 0; i < n; i++) b.ipv6_ext(60, 0);
    return b.tcp(1000, 2000, kTcpSyn).build();
}

TEST_P(ProgramTest, Ipv6FiveExtensionHeadersThenTcp) {
    auto f = ipv6_with_dstopts(5);
    ASSERT_EQ(f.size(), kEth + kIpv6 + 5 * 8 + kTcp);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 6,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 1000,
                     .dst_port = 2000},
                    kTcpSyn);
}

// The parser skips up to PF_MAX_IPV6_EXT (6) extension headers and still reads the
// transport header after the sixth.
TEST_P(ProgramTest, Ipv6SixExtensionHeadersThenTcp) {
    auto f = ipv6_with_dstopts(6);
    ASSERT_EQ(f.size(), kEth + kIpv6 + 6 * 8 + kTcp);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 6,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 1000,
                     .dst_port = 2000},
                    kTcpSyn);
}

// Past the headers it follows, or when an extension header is cut short, the flow has
// proto 0 ("none found"), never an extension header's number.
TEST_P(ProgramTest, Ipv6TooManyExtensionHeadersHaveNoTransport) {
    auto f = ipv6_with_dstopts(7);
    ASSERT_EQ(f.size(), kEth + kIpv6 + 7 * 8 + kTcp);
    expect_one_flow(
        f, {.family = 6, .proto = 0, .src_addr = ipv6_addr("2001:db8::1"), .dst_addr = ipv6_addr("2001:db8::2")}, 0);
}

TEST_P(ProgramTest, TruncatedRoutingHeaderHasNoTransport) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .ipv6_ext(0, 0)
                 .ipv6_ext(43, 2)
                 .tcp(1, 2, kTcpSyn)
                 .truncate(kEth + kIpv6 + 8 + 1)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 8 + 1);
    expect_one_flow(
        f, {.family = 6, .proto = 0, .src_addr = ipv6_addr("2001:db8::1"), .dst_addr = ipv6_addr("2001:db8::2")}, 0,
        events(0, 0, 1, 0));
}

TEST_P(ProgramTest, Ipv6FirstFragmentHasPorts) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .ipv6_ext(0, 0)
                 .ipv6_frag(0, true)
                 .udp(6000, 6001)
                 .payload(1200)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 8 + 8 + kUdp + 1200);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 17,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 6000,
                     .dst_port = 6001},
                    0);
}

TEST_P(ProgramTest, Ipv6NonFirstFragmentHasProtoButNoPorts) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .ipv6_frag(151, false)
                 .udp(6000, 6001)
                 .payload(300)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 8 + kUdp + 300);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 17,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0);
}

// --- VLAN ---------------------------------------------------------------------------

TEST_P(ProgramTest, Vlan8021Q) {
    // Priority bits in the TCI are not part of the VLAN id.
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .vlan(100, kTpid8021Q, 5)
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .udp(1000, 2000)
                 .payload(20)
                 .build();
    ASSERT_EQ(f.size(), kEth + kVlan + kIpv4 + kUdp + 20);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 1000,
                     .dst_port = 2000,
                     .vlan0 = 100,
                     .vlan1 = 0},
                    0);
}

TEST_P(ProgramTest, QinQOuter8021adInner8021Q) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .vlan(200, kTpid8021AD)
                 .vlan(4094, kTpid8021Q)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .tcp(1, 2, kTcpRst)
                 .build();
    ASSERT_EQ(f.size(), kEth + 2 * kVlan + kIpv6 + kTcp);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 6,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 1,
                     .dst_port = 2,
                     .vlan0 = 200,
                     .vlan1 = 4094},
                    kTcpRst);
}

// --- not IP, truncated, garbage -----------------------------------------------------

TEST_P(ProgramTest, ArpIsNonIp) {
    auto f = PacketBuilder().eth(kPeer, kLocal).arp("10.0.0.1", "10.0.0.2").build();
    ASSERT_EQ(f.size(), kEth + 28u);
    // Three runs of one frame: every counter, the event included, triples.
    expect_no_flow(f, events(0, 0, 0, 3), 3);
}

TEST_P(ProgramTest, EthernetHeaderOnlyIsUnparsable) {
    // EtherType IPv4, no IPv4 header: the smallest frame the test run accepts.
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").truncate(kEth).build();
    ASSERT_EQ(f.size(), kEth);
    if (kernel_rejects_short_l3()) {
        expect_rejected(f);
        return;
    }
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, VlanTaggedHeaderOnlyIsUnparsable) {
    auto f = PacketBuilder().eth(kPeer, kLocal).vlan(7).ipv4("10.0.0.1", "10.0.0.2").truncate(kEth + kVlan).build();
    ASSERT_EQ(f.size(), kEth + kVlan);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedIpv4HeaderIsUnparsable) {
    auto f =
        PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).truncate(kEth + kIpv4 - 1).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 - 1);
    if (kernel_rejects_short_l3()) {
        expect_rejected(f);
        return;
    }
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, VlanTaggedTruncatedIpv4HeaderIsUnparsable) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .vlan(7)
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .udp(1, 2)
                 .truncate(kEth + kVlan + kIpv4 - 1)
                 .build();
    ASSERT_EQ(f.size(), kEth + kVlan + kIpv4 - 1);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, Ipv4OptionsBeyondFrameAreUnparsable) {
    // IHL says 60 bytes; the frame holds 20 bytes of header plus 10 of options.
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2", 40).udp(1, 2).truncate(kEth + 30).build();
    ASSERT_EQ(f.size(), kEth + 30);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, Ipv4IhlBelowFiveIsUnparsable) {
    auto ip = garbage(40, 11);
    ip[0] = 0x43;  // version 4, IHL 3 (12 bytes): not a valid header
    auto f = PacketBuilder().eth(kPeer, kLocal).ethertype(0x0800).raw(ip).build();
    ASSERT_EQ(f.size(), kEth + 40);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedIpv6HeaderIsUnparsable) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv6("2001:db8::1", "2001:db8::2").truncate(kEth + kIpv6 - 1).build();
    ASSERT_EQ(f.size(), kEth + kIpv6 - 1);
    if (kernel_rejects_short_l3()) {
        expect_rejected(f);
        return;
    }
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, VlanTaggedTruncatedIpv6HeaderIsUnparsable) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .vlan(7)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .udp(1, 2)
                 .truncate(kEth + kVlan + kIpv6 - 1)
                 .build();
    ASSERT_EQ(f.size(), kEth + kVlan + kIpv6 - 1);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedVlanTagIsUnparsable) {
    auto f = PacketBuilder().eth(kPeer, kLocal).vlan(100).ipv4("10.0.0.1", "10.0.0.2").truncate(kEth + 2).build();
    ASSERT_EQ(f.size(), kEth + 2);
    expect_no_flow(f, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedTcpHeaderKeepsL3Flow) {
    // L3 is complete: the frame is still a flow, without ports or flags, and unparsable.
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv4("10.0.0.1", "10.0.0.2")
                 .tcp(1234, 80, kTcpSyn)
                 .truncate(kEth + kIpv4 + kTcp - 1)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + kTcp - 1);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 6,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedUdpHeaderIpv6KeepsL3Flow) {
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .udp(53, 53)
                 .truncate(kEth + kIpv6 + 4)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 4);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 17,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedIcmpKeepsL3Flow) {
    auto f =
        PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").icmp(8, 0).truncate(kEth + kIpv4 + 1).build();
    ASSERT_EQ(f.size(), kEth + kIpv4 + 1);
    expect_one_flow(f,
                    {.family = 4,
                     .proto = 1,
                     .src_addr = ipv4_mapped("10.0.0.1"),
                     .dst_addr = ipv4_mapped("10.0.0.2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, TruncatedHopByHopKeepsL3Flow) {
    // Cut inside the hop-by-hop header: no transport protocol was found (proto 0).
    auto f = PacketBuilder()
                 .eth(kPeer, kLocal)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .ipv6_ext(0, 0)
                 .tcp(1, 2, kTcpSyn)
                 .truncate(kEth + kIpv6 + 1)
                 .build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + 1);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 0,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 0,
                     .dst_port = 0},
                    0, events(0, 0, 1, 0));
}

TEST_P(ProgramTest, RandomGarbageIsNonIp) {
    auto f = garbage(64, 42);
    // Fixed seed; the EtherType it yields is neither IP nor VLAN.
    const uint16_t ethertype = static_cast<uint16_t>(f[12] << 8 | f[13]);
    ASSERT_TRUE(ethertype != 0x0800 && ethertype != 0x86dd && ethertype != 0x8100 && ethertype != 0x88a8) << ethertype;
    send(obj_, hook(), f);
    Mac src, dst;
    std::copy(f.begin() + 6, f.begin() + 12, src.begin());
    std::copy(f.begin(), f.begin() + 6, dst.begin());
    expect_iface(obj_, iface_totals(dir(), 64, 1));
    expect_macs(obj_, {mac_row(peer_mac(hook(), src, dst), dir(), 64, 1)});
    EXPECT_TRUE(flow_rows(obj_).empty());
    expect_events(obj_, events(0, 0, 0, 1));
}

TEST_P(ProgramTest, FramesShorterThanEthernetAreRejectedByTheKernel) {
    // BPF_PROG_TEST_RUN refuses frames under ETH_HLEN (14) for XDP and TC alike (XDP
    // metadata does not help either: the frame after it must still be 14 bytes). The
    // program's own short-frame branch cannot be reached from here; what we can check is
    // that a refused run leaves every map untouched.
    for (size_t n : {0, 1, 10, 13}) {
        auto f = garbage(n, 1);
        RunResult r = obj_.run(hook(), f);
        EXPECT_EQ(r.err, EINVAL) << n << " bytes";
    }
    expect_iface(obj_, IfaceTotals{});
    EXPECT_TRUE(mac_rows(obj_).empty());
    EXPECT_TRUE(flow_rows(obj_).empty());
    expect_events(obj_, events(0, 0, 0, 0));
}

// --- accumulation -------------------------------------------------------------------

TEST_P(ProgramTest, PacketsOfOneFlowAccumulate) {
    auto tcp = [](uint8_t flags, size_t payload) {
        return PacketBuilder()
            .eth(kPeer, kLocal)
            .ipv4("10.0.0.1", "10.0.0.2")
            .tcp(40000, 443, flags)
            .payload(payload)
            .build();
    };
    const std::vector<std::vector<uint8_t>> frames = {tcp(kTcpSyn, 0), tcp(kTcpAck, 100), tcp(kTcpAck | kTcpPsh, 200),
                                                      tcp(kTcpFin | kTcpAck, 0)};
    const uint64_t before = monotonic_ns();
    send(obj_, hook(), frames[0]);
    const uint64_t after_first = monotonic_ns();
    // Flow times have tick resolution (a few ms): wait so the first and last packet differ.
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    for (size_t i = 1; i + 1 < frames.size(); i++) send(obj_, hook(), frames[i]);
    const uint64_t before_last = monotonic_ns();
    send(obj_, hook(), frames.back());
    const uint64_t after = monotonic_ns();

    const uint64_t bytes = 4 * (kEth + kIpv4 + kTcp) + 100 + 200;
    expect_iface(obj_, iface_totals(dir(), bytes, 4));
    expect_macs(obj_, {mac_row(peer_mac(hook(), kPeer, kLocal), dir(), bytes, 4)});
    auto flows = flow_rows(obj_);
    ASSERT_EQ(flows.size(), 1u);
    auto key = make_key({.dir = dir(),
                         .family = 4,
                         .proto = 6,
                         .src_addr = ipv4_mapped("10.0.0.1"),
                         .dst_addr = ipv4_mapped("10.0.0.2"),
                         .src_port = 40000,
                         .dst_port = 443,
                         .src_mac = kPeer,
                         .dst_mac = kLocal});
    expect_flow(flows[0], key, bytes, 4, kTcpSyn | kTcpAck | kTcpPsh | kTcpFin, before, after);
    // first_seen is the first packet's time, last_seen the last one's (to within a tick).
    EXPECT_LE(flows[0].first_seen_ns, after_first + flow_time_slack_ns());
    EXPECT_GE(flows[0].last_seen_ns + flow_time_slack_ns(), before_last);
    EXPECT_LT(flows[0].first_seen_ns, flows[0].last_seen_ns);
    expect_events(obj_, events(0, 0, 0, 0));
}

TEST_P(ProgramTest, RepeatMultipliesEveryCounter) {
    auto f = PacketBuilder().eth(kPeer, kLocal).ipv6("2001:db8::1", "2001:db8::2").udp(9999, 443).payload(1200).build();
    ASSERT_EQ(f.size(), kEth + kIpv6 + kUdp + 1200);
    expect_one_flow(f,
                    {.family = 6,
                     .proto = 17,
                     .src_addr = ipv6_addr("2001:db8::1"),
                     .dst_addr = ipv6_addr("2001:db8::2"),
                     .src_port = 9999,
                     .dst_port = 443},
                    0, {}, 1000);
}

TEST_P(ProgramTest, ReverseDirectionIsAnotherFlow) {
    auto fwd = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.1", "10.0.0.2").udp(1000, 53).payload(10).build();
    auto rev = PacketBuilder().eth(kPeer, kLocal).ipv4("10.0.0.2", "10.0.0.1").udp(53, 1000).payload(90).build();
    const uint64_t before = monotonic_ns();
    send(obj_, hook(), fwd);
    send(obj_, hook(), rev);
    const uint64_t after = monotonic_ns();
    const uint64_t fwd_len = kEth + kIpv4 + kUdp + 10, rev_len = kEth + kIpv4 + kUdp + 90;
    expect_iface(obj_, iface_totals(dir(), fwd_len + rev_len, 2));
    expect_macs(obj_, {mac_row(peer_mac(hook(), kPeer, kLocal), dir(), fwd_len + rev_len, 2)});
    auto fwd_key = make_key({.dir = dir(),
                             .family = 4,
                             .proto = 17,
                             .src_addr = ipv4_mapped("10.0.0.1"),
                             .dst_addr = ipv4_mapped("10.0.0.2"),
                             .src_port = 1000,
                             .dst_port = 53,
                             .src_mac = kPeer,
                             .dst_mac = kLocal});
    auto rev_key = make_key({.dir = dir(),
                             .family = 4,
                             .proto = 17,
                             .src_addr = ipv4_mapped("10.0.0.2"),
                             .dst_addr = ipv4_mapped("10.0.0.1"),
                             .src_port = 53,
                             .dst_port = 1000,
                             .src_mac = kPeer,
                             .dst_mac = kLocal});
    expect_flows(obj_, {{fwd_key, fwd_len, 1, 0}, {rev_key, rev_len, 1, 0}}, before, after);
    expect_events(obj_, events(0, 0, 0, 0));
}

TEST_P(ProgramTest, TwoPeerMacs) {
    // On RX the peer is the source MAC, on TX the destination: build each frame so that
    // the hook under test sees kPeer or kOtherPeer as its peer.
    auto frame = [&](const Mac& peer, size_t payload) {
        PacketBuilder b;
        if (dir() == PF_DIR_RX)
            b.eth(peer, kLocal);
        else
            b.eth(kLocal, peer);
        return b.ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).payload(payload).build();
    };
    const auto a = frame(kPeer, 10), b = frame(kOtherPeer, 500);
    const uint64_t before = monotonic_ns();
    send(obj_, hook(), a);
    send(obj_, hook(), a);
    send(obj_, hook(), b);
    const uint64_t after = monotonic_ns();
    const uint64_t a_len = kEth + kIpv4 + kUdp + 10, b_len = kEth + kIpv4 + kUdp + 500;
    expect_iface(obj_, iface_totals(dir(), 2 * a_len + b_len, 3));
    expect_macs(obj_, {mac_row(kPeer, dir(), 2 * a_len, 2), mac_row(kOtherPeer, dir(), b_len, 1)});
    // The MACs are part of the flow key: same addresses and ports, two flows.
    auto key = [&](const Mac& peer) {
        const bool rx = dir() == PF_DIR_RX;
        return make_key({.dir = dir(),
                         .family = 4,
                         .proto = 17,
                         .src_addr = ipv4_mapped("10.0.0.1"),
                         .dst_addr = ipv4_mapped("10.0.0.2"),
                         .src_port = 1,
                         .dst_port = 2,
                         .src_mac = rx ? peer : kLocal,
                         .dst_mac = rx ? kLocal : peer});
    };
    expect_flows(obj_, {{key(kPeer), 2 * a_len, 2, 0}, {key(kOtherPeer), b_len, 1, 0}}, before, after);
    expect_events(obj_, events(0, 0, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Hooks, ProgramTest, ::testing::Values(Hook::XdpIngress, Hook::TcIngress, Hook::TcEgress),
                         [](const ::testing::TestParamInfo<Hook>& info) { return std::string(hook_name(info.param)); });

}  // namespace
}  // namespace pf::test
