// The BPF tests trust the builder for their expected values, so its bytes are checked
// here against offsets taken from the RFCs.
#include <gtest/gtest.h>

#include <stdexcept>

#include "packet_builder.hpp"

namespace pf::test {
namespace {

const Mac kSrc{0x02, 0, 0, 0, 0, 0x01};
const Mac kDst{0x02, 0, 0, 0, 0, 0x02};

uint16_t be16(const std::vector<uint8_t>& p, size_t off) {
    return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

TEST(PacketBuilder, EthernetIpv4Udp) {
    auto p = PacketBuilder().eth(kSrc, kDst).ipv4("10.1.2.3", "192.168.0.9").udp(5000, 53).payload(10).build();
    ASSERT_EQ(p.size(), 14u + 20 + 8 + 10);
    EXPECT_EQ(std::vector<uint8_t>(p.begin(), p.begin() + 6), std::vector<uint8_t>(kDst.begin(), kDst.end()));
    EXPECT_EQ(std::vector<uint8_t>(p.begin() + 6, p.begin() + 12), std::vector<uint8_t>(kSrc.begin(), kSrc.end()));
    EXPECT_EQ(be16(p, 12), 0x0800);
    EXPECT_EQ(p[14], 0x45);
    EXPECT_EQ(be16(p, 16), 20 + 8 + 10);  // total length
    EXPECT_EQ(be16(p, 20), 0);            // no fragmentation
    EXPECT_EQ(p[23], 17);
    EXPECT_EQ(std::vector<uint8_t>(p.begin() + 26, p.begin() + 34),
              (std::vector<uint8_t>{10, 1, 2, 3, 192, 168, 0, 9}));
    EXPECT_EQ(be16(p, 34), 5000);
    EXPECT_EQ(be16(p, 36), 53);
    EXPECT_EQ(be16(p, 38), 8 + 10);  // UDP length
    EXPECT_EQ(p[42], 0);             // payload pattern starts at 0
    EXPECT_EQ(p[51], 9);
}

TEST(PacketBuilder, Ipv4OptionsAndFragment) {
    auto p =
        PacketBuilder().eth(kSrc, kDst).ipv4("10.0.0.1", "10.0.0.2", 8).ipv4_frag(185, true).tcp(1, 2, 0x12).build();
    ASSERT_EQ(p.size(), 14u + 28 + 20);
    EXPECT_EQ(p[14], 0x47);  // IHL 7
    EXPECT_EQ(be16(p, 16), 28 + 20);
    EXPECT_EQ(be16(p, 20), 0x2000 | 185);
    EXPECT_EQ(p[23], 6);
    EXPECT_EQ(p[34], 1);  // NOP option
    EXPECT_EQ(be16(p, 42), 1);
    EXPECT_EQ(p[42 + 12], 0x50);  // data offset 5
    EXPECT_EQ(p[42 + 13], 0x12);  // flags
}

TEST(PacketBuilder, QinQIpv6) {
    auto p = PacketBuilder()
                 .eth(kSrc, kDst)
                 .vlan(200, kTpid8021AD)
                 .vlan(300, kTpid8021Q, 5)
                 .ipv6("2001:db8::1", "2001:db8::2")
                 .icmpv6(128, 0)
                 .payload(4)
                 .build();
    ASSERT_EQ(p.size(), 14u + 4 + 4 + 40 + 8 + 4);
    EXPECT_EQ(be16(p, 12), 0x88a8);
    EXPECT_EQ(be16(p, 14), 200);
    EXPECT_EQ(be16(p, 16), 0x8100);
    EXPECT_EQ(be16(p, 18), 5 << 13 | 300);
    EXPECT_EQ(be16(p, 20), 0x86dd);
    EXPECT_EQ(p[22], 0x60);
    EXPECT_EQ(be16(p, 26), 8 + 4);  // payload length
    EXPECT_EQ(p[28], 58);           // next header
    EXPECT_EQ(p[30 + 15], 1);       // last byte of the source address
    EXPECT_EQ(p[46 + 15], 2);
    EXPECT_EQ(p[62], 128);
    EXPECT_EQ(p[63], 0);
}

TEST(PacketBuilder, Ipv6ExtensionChain) {
    auto p = PacketBuilder()
                 .eth(kSrc, kDst)
                 .ipv6("::1", "::2")
                 .ipv6_ext(0, 0)
                 .ipv6_ext(43, 2)
                 .ipv6_ext(60, 1)
                 .ipv6_frag(185, true)
                 .udp(7, 9)
                 .build();
    const size_t ip = 14, hop = ip + 40, rt = hop + 8, dst = rt + 24, frag = dst + 16, udp = frag + 8;
    ASSERT_EQ(p.size(), udp + 8);
    EXPECT_EQ(be16(p, ip + 4), p.size() - hop);
    EXPECT_EQ(p[ip + 6], 0);  // -> hop-by-hop
    EXPECT_EQ(p[hop], 43);
    EXPECT_EQ(p[hop + 1], 0);
    EXPECT_EQ(p[hop + 2], 1);  // PadN
    EXPECT_EQ(p[hop + 3], 4);
    EXPECT_EQ(p[rt], 60);
    EXPECT_EQ(p[rt + 1], 2);
    EXPECT_EQ(p[dst], 44);
    EXPECT_EQ(p[dst + 1], 1);
    EXPECT_EQ(p[frag], 17);
    EXPECT_EQ(be16(p, frag + 2), 185 << 3 | 1);
    EXPECT_EQ(be16(p, udp), 7);
    EXPECT_EQ(be16(p, udp + 4), 8);
}

TEST(PacketBuilder, Arp) {
    auto p = PacketBuilder().eth(kSrc, kDst).arp("10.0.0.1", "10.0.0.2").build();
    ASSERT_EQ(p.size(), 14u + 28);
    EXPECT_EQ(be16(p, 12), 0x0806);
    EXPECT_EQ(be16(p, 14), 1);
    EXPECT_EQ(be16(p, 16), 0x0800);
    EXPECT_EQ(be16(p, 20), 1);
    EXPECT_EQ(p[22 + 5], kSrc[5]);
    EXPECT_EQ(p[41], 2);
}

TEST(PacketBuilder, RawBytesAfterEtherType) {
    auto p = PacketBuilder().eth(kSrc, kDst).ethertype(0x88cc).raw({1, 2, 3}).build();
    EXPECT_EQ(p.size(), 14u + 3);
    EXPECT_EQ(be16(p, 12), 0x88cc);
    EXPECT_EQ(p[16], 3);
}

TEST(PacketBuilder, TruncateKeepsHeaderLengths) {
    auto p =
        PacketBuilder().eth(kSrc, kDst).ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2, 0).payload(100).truncate(40).build();
    ASSERT_EQ(p.size(), 40u);
    EXPECT_EQ(be16(p, 16), 20 + 20 + 100);
}

TEST(PacketBuilder, LayerOutOfPlaceThrows) {
    EXPECT_THROW(PacketBuilder().tcp(1, 2, 0), std::logic_error);
    EXPECT_THROW(PacketBuilder().eth(kSrc, kDst).udp(1, 2), std::logic_error);
    EXPECT_THROW(PacketBuilder().eth(kSrc, kDst).ipv4("10.0.0.1", "10.0.0.2").vlan(1), std::logic_error);
    EXPECT_THROW(PacketBuilder().eth(kSrc, kDst).ipv4("10.0.0.1", "10.0.0.256"), std::invalid_argument);
}

TEST(PacketBuilder, GarbageIsDeterministic) {
    EXPECT_EQ(garbage(64, 7), garbage(64, 7));
    EXPECT_NE(garbage(64, 7), garbage(64, 8));
}

}  // namespace
}  // namespace pf::test
