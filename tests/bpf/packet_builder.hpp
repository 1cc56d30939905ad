#pragma once
// Fluent builder for the frames the BPF tests feed to BPF_PROG_TEST_RUN:
//
//   auto pkt = PacketBuilder().eth(src, dst).vlan(100).ipv4("10.0.0.1", "10.0.0.2")
//                  .tcp(1234, 80, kTcpSyn).payload(32).build();
//
// Each layer writes its own protocol number into the header before it (EtherType, VLAN
// encapsulated type, IPv4 protocol, IPv6 next header), so layers stack in any sensible
// order. build() fills in IPv4 total length, IPv6 payload length and UDP length from what
// follows each header; checksums stay zero (the programs under test never read them).
// truncate() cuts the finished frame after the lengths are set, like a short capture.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pf::test {

using Mac = std::array<uint8_t, 6>;

inline constexpr uint16_t kTpid8021Q = 0x8100;
inline constexpr uint16_t kTpid8021AD = 0x88a8;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

class PacketBuilder {
  public:
    PacketBuilder& eth(const Mac& src, const Mac& dst);
    // One 802.1Q (or 802.1ad with kTpid8021AD) tag; pcp lands in the top bits of the TCI.
    PacketBuilder& vlan(uint16_t id, uint16_t tpid = kTpid8021Q, uint8_t pcp = 0);
    // Sets the EtherType of the header before without adding a header (use with raw()).
    PacketBuilder& ethertype(uint16_t type);
    // ARP request from the Ethernet source MAC (a frame that is not IP).
    PacketBuilder& arp(std::string_view sender_ip, std::string_view target_ip);
    // options_len bytes of IPv4 options (a multiple of 4, at most 40) make IHL > 5.
    PacketBuilder& ipv4(std::string_view src, std::string_view dst, size_t options_len = 0);
    // Fragment fields of the last IPv4 header; offset in 8-byte units.
    PacketBuilder& ipv4_frag(uint16_t offset, bool more);
    PacketBuilder& ipv6(std::string_view src, std::string_view dst);
    // Hop-by-hop (0), routing (43) or destination options (60) header; len is the Hdr Ext
    // Len field, so the header takes (len + 1) * 8 bytes.
    PacketBuilder& ipv6_ext(uint8_t type, uint8_t len);
    // IPv6 fragment header; offset in 8-byte units.
    PacketBuilder& ipv6_frag(uint16_t offset, bool more);
    PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags);
    PacketBuilder& udp(uint16_t sport, uint16_t dport);
    PacketBuilder& icmp(uint8_t type, uint8_t code);
    PacketBuilder& icmpv6(uint8_t type, uint8_t code);
    // n bytes of a counting pattern.
    PacketBuilder& payload(size_t n);
    // Bytes appended as they are (garbage, hand-made headers).
    PacketBuilder& raw(const std::vector<uint8_t>& bytes);
    // The built frame keeps only its first n bytes.
    PacketBuilder& truncate(size_t n);

    std::vector<uint8_t> build() const;

  private:
    enum class NextKind { None, EtherType, IpProto };

    // Writes the protocol number of the header being added into the previous header.
    void link_ethertype(uint16_t type);
    void link_ip_proto(uint8_t proto);
    size_t append(size_t n);
    void put16(size_t off, uint16_t v);

    std::vector<uint8_t> bytes_;
    NextKind next_kind_ = NextKind::None;
    size_t next_off_ = 0;
    Mac eth_src_{};
    std::vector<size_t> ipv4_at_, ipv6_at_, udp_at_;
    std::optional<size_t> truncate_at_;
};

// Deterministic pseudo-random bytes (same seed, same bytes).
std::vector<uint8_t> garbage(size_t n, uint32_t seed);

// 16-byte address as the flow key stores it: IPv4 as ::ffff:a.b.c.d, IPv6 as is.
std::array<uint8_t, 16> ipv4_mapped(std::string_view v4);
std::array<uint8_t, 16> ipv6_addr(std::string_view v6);

}  // namespace pf::test
