#include "packet_builder.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

namespace pf::test {
namespace {

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr size_t kIpv6HeaderLen = 40;

std::array<uint8_t, 4> parse_v4(std::string_view s) {
    std::array<uint8_t, 4> a{};
    if (inet_pton(AF_INET, std::string(s).c_str(), a.data()) != 1)
        throw std::invalid_argument("not an IPv4 address: " + std::string(s));
    return a;
}

}  // namespace

void PacketBuilder::put16(size_t off, uint16_t v) {
    bytes_[off] = static_cast<uint8_t>(v >> 8);
    bytes_[off + 1] = static_cast<uint8_t>(v);
}

size_t PacketBuilder::append(size_t n) {
    size_t at = bytes_.size();
    bytes_.resize(at + n, 0);
    return at;
}

void PacketBuilder::link_ethertype(uint16_t type) {
    if (next_kind_ != NextKind::EtherType) throw std::logic_error("layer needs an Ethernet or VLAN header before it");
    put16(next_off_, type);
    next_kind_ = NextKind::None;
}

void PacketBuilder::link_ip_proto(uint8_t proto) {
    if (next_kind_ != NextKind::IpProto) throw std::logic_error("layer needs an IP header before it");
    bytes_[next_off_] = proto;
    next_kind_ = NextKind::None;
}

PacketBuilder& PacketBuilder::eth(const Mac& src, const Mac& dst) {
    size_t at = append(14);
    std::copy(dst.begin(), dst.end(), bytes_.begin() + static_cast<long>(at));
    std::copy(src.begin(), src.end(), bytes_.begin() + static_cast<long>(at + 6));
    eth_src_ = src;
    next_kind_ = NextKind::EtherType;
    next_off_ = at + 12;
    return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t id, uint16_t tpid, uint8_t pcp) {
    link_ethertype(tpid);
    size_t at = append(4);
    put16(at, static_cast<uint16_t>((pcp & 0x7) << 13 | (id & 0x0fff)));
    next_kind_ = NextKind::EtherType;
    next_off_ = at + 2;
    return *this;
}

PacketBuilder& PacketBuilder::ethertype(uint16_t type) {
    link_ethertype(type);
    return *this;
}

PacketBuilder& PacketBuilder::arp(std::string_view sender_ip, std::string_view target_ip) {
    link_ethertype(kEtherTypeArp);
    size_t at = append(28);
    put16(at, 1);                   // hardware type: Ethernet
    put16(at + 2, kEtherTypeIpv4);  // protocol type
    bytes_[at + 4] = 6;             // hardware address length
    bytes_[at + 5] = 4;             // protocol address length
    put16(at + 6, 1);               // request
    auto sip = parse_v4(sender_ip);
    auto tip = parse_v4(target_ip);
    std::copy(eth_src_.begin(), eth_src_.end(), bytes_.begin() + static_cast<long>(at + 8));
    std::copy(sip.begin(), sip.end(), bytes_.begin() + static_cast<long>(at + 14));
    std::copy(tip.begin(), tip.end(), bytes_.begin() + static_cast<long>(at + 24));
    return *this;
}

PacketBuilder& PacketBuilder::ipv4(std::string_view src, std::string_view dst, size_t options_len) {
    if (options_len % 4 != 0 || options_len > 40) throw std::invalid_argument("IPv4 options: multiple of 4, <= 40");
    link_ethertype(kEtherTypeIpv4);
    size_t at = append(20 + options_len);
    bytes_[at] = static_cast<uint8_t>(0x40 | (20 + options_len) / 4);
    bytes_[at + 8] = 64;  // TTL
    auto s = parse_v4(src);
    auto d = parse_v4(dst);
    std::copy(s.begin(), s.end(), bytes_.begin() + static_cast<long>(at + 12));
    std::copy(d.begin(), d.end(), bytes_.begin() + static_cast<long>(at + 16));
    // Options are NOPs: valid to any parser that looks at them.
    std::fill_n(bytes_.begin() + static_cast<long>(at + 20), options_len, uint8_t{1});
    ipv4_at_.push_back(at);
    next_kind_ = NextKind::IpProto;
    next_off_ = at + 9;
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_frag(uint16_t offset, bool more) {
    if (ipv4_at_.empty()) throw std::logic_error("ipv4_frag without an IPv4 header");
    put16(ipv4_at_.back() + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (offset & 0x1fff)));
    return *this;
}

PacketBuilder& PacketBuilder::ipv6(std::string_view src, std::string_view dst) {
    link_ethertype(kEtherTypeIpv6);
    size_t at = append(kIpv6HeaderLen);
    bytes_[at] = 0x60;
    bytes_[at + 7] = 64;  // hop limit
    auto s = ipv6_addr(src);
    auto d = ipv6_addr(dst);
    std::copy(s.begin(), s.end(), bytes_.begin() + static_cast<long>(at + 8));
    std::copy(d.begin(), d.end(), bytes_.begin() + static_cast<long>(at + 24));
    ipv6_at_.push_back(at);
    next_kind_ = NextKind::IpProto;
    next_off_ = at + 6;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_ext(uint8_t type, uint8_t len) {
    link_ip_proto(type);
    size_t size = (static_cast<size_t>(len) + 1) * 8;
    size_t at = append(size);
    bytes_[at + 1] = len;
    // Hop-by-hop and destination options: one PadN option fills the rest. Routing type 0
    // with zero segments left needs nothing more.
    if (type == 0 || type == 60) {
        bytes_[at + 2] = 1;
        bytes_[at + 3] = static_cast<uint8_t>(size - 4);
    }
    next_kind_ = NextKind::IpProto;
    next_off_ = at;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_frag(uint16_t offset, bool more) {
    link_ip_proto(kProtoFragment);
    size_t at = append(8);
    put16(at + 2, static_cast<uint16_t>(offset << 3 | (more ? 1 : 0)));
    put16(at + 4, 0x1234);  // identification
    put16(at + 6, 0x5678);
    next_kind_ = NextKind::IpProto;
    next_off_ = at;
    return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
    link_ip_proto(kProtoTcp);
    size_t at = append(20);
    put16(at, sport);
    put16(at + 2, dport);
    put16(at + 4, 0x0102);  // sequence number
    put16(at + 6, 0x0304);
    bytes_[at + 12] = 5 << 4;  // data offset: 20 bytes, no options
    bytes_[at + 13] = flags;
    put16(at + 14, 65535);  // window
    return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
    link_ip_proto(kProtoUdp);
    size_t at = append(8);
    put16(at, sport);
    put16(at + 2, dport);
    udp_at_.push_back(at);
    return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code) {
    link_ip_proto(kProtoIcmp);
    size_t at = append(8);
    bytes_[at] = type;
    bytes_[at + 1] = code;
    return *this;
}

PacketBuilder& PacketBuilder::icmpv6(uint8_t type, uint8_t code) {
    link_ip_proto(kProtoIcmpv6);
    size_t at = append(8);
    bytes_[at] = type;
    bytes_[at + 1] = code;
    return *this;
}

PacketBuilder& PacketBuilder::payload(size_t n) {
    size_t at = append(n);
    for (size_t i = 0; i < n; i++) bytes_[at + i] = static_cast<uint8_t>(i);
    return *this;
}

PacketBuilder& PacketBuilder::raw(const std::vector<uint8_t>& bytes) {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return *this;
}

PacketBuilder& PacketBuilder::truncate(size_t n) {
    truncate_at_ = n;
    return *this;
}

std::vector<uint8_t> PacketBuilder::build() const {
    PacketBuilder b = *this;
    const size_t total = b.bytes_.size();
    for (size_t at : b.ipv4_at_) b.put16(at + 2, static_cast<uint16_t>(total - at));
    for (size_t at : b.ipv6_at_) b.put16(at + 4, static_cast<uint16_t>(total - at - kIpv6HeaderLen));
    for (size_t at : b.udp_at_) b.put16(at + 4, static_cast<uint16_t>(total - at));
    if (b.truncate_at_ && *b.truncate_at_ < total) b.bytes_.resize(*b.truncate_at_);
    return std::move(b.bytes_);
}

std::vector<uint8_t> garbage(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (auto& byte : out) byte = static_cast<uint8_t>(rng());
    return out;
}

std::array<uint8_t, 16> ipv4_mapped(std::string_view v4) {
    std::array<uint8_t, 16> a{};
    a[10] = 0xff;
    a[11] = 0xff;
    auto b = parse_v4(v4);
    std::copy(b.begin(), b.end(), a.begin() + 12);
    return a;
}

std::array<uint8_t, 16> ipv6_addr(std::string_view v6) {
    std::array<uint8_t, 16> a{};
    if (inet_pton(AF_INET6, std::string(v6).c_str(), a.data()) != 1)
        throw std::invalid_argument("not an IPv6 address: " + std::string(v6));
    return a;
}

}  // namespace pf::test
