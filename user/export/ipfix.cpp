// IPFIX (RFC 7011) encoding and the UDP exporting process.

#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "peakflow/common/fd.hpp"
#include "peakflow/export/flow_export.hpp"

namespace pf {

namespace {

constexpr uint16_t kTemplateV4 = 256;
constexpr uint16_t kTemplateV6 = 257;

struct Field {
    uint16_t id;
    uint16_t len;
};

// Information elements (IANA IPFIX registry) in record order.
constexpr Field kFieldsV4[] = {
    {56, 6}, {80, 6}, {8, 4},   {12, 4},  {7, 2},  {11, 2}, {4, 1},  {6, 2},
    {1, 8},  {2, 8},  {152, 8}, {153, 8}, {61, 1}, {10, 4}, {14, 4}, {58, 2},
};
constexpr Field kFieldsV6[] = {
    {56, 6}, {80, 6}, {27, 16}, {28, 16}, {7, 2},  {11, 2}, {4, 1},  {6, 2},
    {1, 8},  {2, 8},  {152, 8}, {153, 8}, {61, 1}, {10, 4}, {14, 4}, {58, 2},
};

template <size_t N>
constexpr size_t record_len(const Field (&f)[N]) {
    size_t n = 0;
    for (const auto& x : f) n += x.len;
    return n;
}
constexpr size_t kRecV4 = record_len(kFieldsV4);  // 70
constexpr size_t kRecV6 = record_len(kFieldsV6);  // 94

void put16(std::string& s, uint16_t v) {
    s += char(v >> 8);
    s += char(v & 0xff);
}
void put32(std::string& s, uint32_t v) {
    put16(s, uint16_t(v >> 16));
    put16(s, uint16_t(v & 0xffff));
}
void put64(std::string& s, uint64_t v) {
    put32(s, uint32_t(v >> 32));
    put32(s, uint32_t(v & 0xffffffff));
}
void set16(std::string& s, size_t at, uint16_t v) {
    s[at] = char(v >> 8);
    s[at + 1] = char(v & 0xff);
}

template <size_t N>
void put_template(std::string& s, uint16_t id, const Field (&f)[N]) {
    put16(s, id);
    put16(s, uint16_t(N));
    for (const auto& x : f) {
        put16(s, x.id);
        put16(s, x.len);
    }
}

void put_record(std::string& s, const FlowRecord& r) {
    const auto& k = r.key;
    s.append(reinterpret_cast<const char*>(k.src_mac), 6);
    s.append(reinterpret_cast<const char*>(k.dst_mac), 6);
    if (k.family == 4) {
        s.append(reinterpret_cast<const char*>(k.src_addr + 12), 4);
        s.append(reinterpret_cast<const char*>(k.dst_addr + 12), 4);
    } else {
        s.append(reinterpret_cast<const char*>(k.src_addr), 16);
        s.append(reinterpret_cast<const char*>(k.dst_addr), 16);
    }
    put16(s, k.src_port);
    put16(s, k.dst_port);
    s += char(k.proto);
    put16(s, r.tcp_flags);
    put64(s, r.bytes);
    put64(s, r.packets);
    put64(s, static_cast<uint64_t>(r.start_ms));
    put64(s, static_cast<uint64_t>(r.end_ms));
    s += char(k.dir == PF_DIR_RX ? 0 : 1);
    put32(s, k.dir == PF_DIR_RX ? r.ifindex : 0);
    put32(s, k.dir == PF_DIR_RX ? 0 : r.ifindex);
    put16(s, k.vlan[0]);
}

}  // namespace

IpfixEncoder::IpfixEncoder(uint32_t observation_domain, size_t mtu) : domain_(observation_domain) {
    // IPv6 (40) + UDP (8) headers: the message fits the path MTU over either family.
    max_msg_ = mtu > 48 + 256 ? mtu - 48 : 256;
}

std::vector<std::string> IpfixEncoder::encode(const std::vector<FlowRecord>& recs, uint32_t export_time,
                                              bool with_templates) {
    std::vector<std::string> out;
    size_t i = 0;
    bool templates = with_templates;
    while (i < recs.size() || templates) {
        std::string m;
        m.reserve(max_msg_);
        put16(m, 10);
        put16(m, 0);  // length, set below
        put32(m, export_time);
        put32(m, seq_);
        put32(m, domain_);
        if (templates) {
            size_t at = m.size();
            put16(m, 2);
            put16(m, 0);
            put_template(m, kTemplateV4, kFieldsV4);
            put_template(m, kTemplateV6, kFieldsV6);
            set16(m, at + 2, uint16_t(m.size() - at));
            templates = false;
        }
        uint32_t in_msg = 0;
        while (i < recs.size()) {
            const bool v4 = recs[i].key.family == 4;
            const size_t rl = v4 ? kRecV4 : kRecV6;
            if (m.size() + 4 + rl > max_msg_) break;
            size_t at = m.size();
            put16(m, v4 ? kTemplateV4 : kTemplateV6);
            put16(m, 0);
            while (i < recs.size() && (recs[i].key.family == 4) == v4 && m.size() + rl <= max_msg_) {
                put_record(m, recs[i++]);
                in_msg++;
            }
            set16(m, at + 2, uint16_t(m.size() - at));
        }
        set16(m, 2, uint16_t(m.size()));
        seq_ += in_msg;
        out.push_back(std::move(m));
    }
    return out;
}

Result<IpfixSender> IpfixSender::create(const ExportIpfixConfig& cfg) {
    IpfixSender s;
    s.enc_ = std::make_unique<IpfixEncoder>(cfg.observation_domain, cfg.mtu);
    s.refresh_ms_ = cfg.template_refresh.count() * 1000;
    for (const auto& c : cfg.collectors) {
        auto colon = c.rfind(':');
        std::string host = c.substr(0, colon), port = c.substr(colon + 1);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        addrinfo hints{};
        hints.ai_socktype = SOCK_DGRAM;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
        if (rc != 0) return Error("resolve IPFIX collector " + c + ": " + gai_strerror(rc));
        std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(res, freeaddrinfo);
        Fd fd(socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd.valid() || connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0)
            return Error("connect UDP socket to IPFIX collector", c, errno);
        s.targets_.push_back({fd.release(), c});  // closed by the sender's destructor
    }
    return s;
}

IpfixSender::IpfixSender(IpfixSender&& o) noexcept
    : targets_(std::move(o.targets_)),
      enc_(std::move(o.enc_)),
      templates_sent_(o.templates_sent_),
      last_template_ms_(o.last_template_ms_),
      refresh_ms_(o.refresh_ms_),
      messages_(o.messages_) {
    o.targets_.clear();
}

IpfixSender& IpfixSender::operator=(IpfixSender&& o) noexcept {
    if (this != &o) {
        for (auto& t : targets_) close(t.fd);
        targets_ = std::move(o.targets_);
        o.targets_.clear();
        enc_ = std::move(o.enc_);
        templates_sent_ = o.templates_sent_;
        last_template_ms_ = o.last_template_ms_;
        refresh_ms_ = o.refresh_ms_;
        messages_ = o.messages_;
    }
    return *this;
}

IpfixSender::~IpfixSender() {
    for (auto& t : targets_) close(t.fd);
}

uint64_t IpfixSender::send(const std::vector<FlowRecord>& recs, int64_t now, int64_t mono_ms) {
    const bool tmpl = !templates_sent_ || mono_ms - last_template_ms_ >= refresh_ms_;
    if (recs.empty() && !tmpl) return 0;
    if (tmpl) {
        templates_sent_ = true;
        last_template_ms_ = mono_ms;
    }
    uint64_t errors = 0;
    for (const auto& m : enc_->encode(recs, static_cast<uint32_t>(now), tmpl)) {
        for (const auto& t : targets_) {
            if (::send(t.fd, m.data(), m.size(), 0) != static_cast<ssize_t>(m.size())) {
                errors++;
                spdlog::debug("export: IPFIX to {}: {}", t.name, std::strerror(errno));
            }
        }
        messages_++;
    }
    return errors;
}

}  // namespace pf
