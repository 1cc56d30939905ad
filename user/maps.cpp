#include "peakflow/maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <fcntl.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace pf {

std::string format_mac(const MacAddr& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

std::optional<MacAddr> parse_mac(const std::string& s) {
    MacAddr m{};
    if (s.size() != 17) return std::nullopt;
    for (size_t i = 0; i < 6; i++) {
        if (i > 0 && s[i * 3 - 1] != ':' && s[i * 3 - 1] != '-') return std::nullopt;
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = s[i * 3 + j];
            int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                    : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                                : -1;
            if (d < 0) return std::nullopt;
            v = v * 16 + static_cast<unsigned>(d);
        }
        m[i] = static_cast<uint8_t>(v);
    }
    return m;
}

int64_t mac_to_int(const MacAddr& mac) {
    int64_t v = 0;
    for (uint8_t b : mac) v = (v << 8) | b;
    return v;
}

MacAddr mac_from_int(int64_t v) {
    MacAddr m{};
    for (int i = 5; i >= 0; i--, v >>= 8) m[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
    return m;
}

const char* event_name(int ev) {
    switch (ev) {
        case PF_EV_MAC_MAP_FULL: return "mac_map_full";
        case PF_EV_FLOW_MAP_FULL: return "flow_map_full";
        case PF_EV_UNPARSABLE: return "unparsable";
        case PF_EV_NON_IP: return "non_ip";
    }
    return "unknown";
}

namespace {

int num_cpus() {
    static const int n = libbpf_num_possible_cpus();
    return n > 0 ? n : 1;
}

// Userspace sees a per-CPU value as one slot per possible CPU, each rounded up to 8 bytes.
constexpr size_t slot_size(size_t value_size) {
    return (value_size + 7) & ~size_t{7};
}

uint32_t map_id(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.id;
}

// Reads every (key, per-CPU values) pair of a per-CPU hash map; fn(key, slots) per entry.
template <typename Key, typename Value, typename Fn>
Status for_each_percpu(int fd, const char* what, Fn&& fn) {
    const size_t stride = slot_size(sizeof(Value)) * static_cast<size_t>(num_cpus());
    uint32_t chunk = 1024;
    std::vector<Key> keys(chunk);
    std::vector<uint8_t> values(chunk * stride);
    Key out_batch{};
    bool first = true;
    for (;;) {
        uint32_t count = chunk;
        LIBBPF_OPTS(bpf_map_batch_opts, bo);
        int err =
            bpf_map_lookup_batch(fd, first ? nullptr : &out_batch, &out_batch, keys.data(), values.data(), &count, &bo);
        int e = err ? errno : 0;
        if (err && e == ENOSPC && count == 0) {  // a hash bucket larger than the chunk
            chunk *= 2;
            keys.resize(chunk);
            values.resize(chunk * stride);
            continue;
        }
        if (err && e != ENOENT) {
            if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP)) break;  // no batch ops: iterate
            return Error{"read map", what, e};
        }
        for (uint32_t i = 0; i < count; i++) fn(keys[i], values.data() + i * stride);
        if (err) return Ok{};  // ENOENT: that was the last batch
        first = false;
    }
    // Fallback for kernels without batch lookups on this map type.
    Key key{}, next{};
    std::vector<uint8_t> slots(stride);
    bool have = false;
    while (bpf_map_get_next_key(fd, have ? &key : nullptr, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, slots.data()) == 0) fn(next, slots.data());
        key = next;
        have = true;
    }
    return Ok{};
}

template <typename Value>
const Value& slot(const uint8_t* base, int cpu) {
    return *reinterpret_cast<const Value*>(base + slot_size(sizeof(Value)) * static_cast<size_t>(cpu));
}

}  // namespace

Result<MapSet> MapSet::open_pinned(const std::string& pin_dir) {
    MapSet s;
    Fd* fds[] = {&s.iface_, &s.mac_, &s.flow_, &s.events_};
    const char* names[] = {PF_MAP_IFACE, PF_MAP_MAC, PF_MAP_FLOW, PF_MAP_EVENTS};
    for (int i = 0; i < 4; i++) {
        std::string path = pin_dir + "/" + names[i];
        fds[i]->reset(bpf_obj_get(path.c_str()));
        if (!fds[i]->valid()) return Error{"open pinned map", path, errno};
    }
    s.iface_id_ = map_id(s.iface_.get());
    s.mac_id_ = map_id(s.mac_.get());
    s.flow_id_ = map_id(s.flow_.get());
    return s;
}

Result<MapSet> MapSet::from_fds(int iface_fd, int mac_fd, int flow_fd, int events_fd) {
    MapSet s;
    s.iface_.reset(fcntl(iface_fd, F_DUPFD_CLOEXEC, 0));
    s.mac_.reset(fcntl(mac_fd, F_DUPFD_CLOEXEC, 0));
    s.flow_.reset(fcntl(flow_fd, F_DUPFD_CLOEXEC, 0));
    s.events_.reset(fcntl(events_fd, F_DUPFD_CLOEXEC, 0));
    if (!s.iface_.valid() || !s.mac_.valid() || !s.flow_.valid() || !s.events_.valid())
        return Error{"duplicate map fds", "", errno};
    s.iface_id_ = map_id(s.iface_.get());
    s.mac_id_ = map_id(s.mac_.get());
    s.flow_id_ = map_id(s.flow_.get());
    return s;
}

Result<IfaceTotals> MapSet::read_iface() const {
    IfaceTotals t;
    std::vector<uint8_t> slots(slot_size(sizeof(pf_counter)) * static_cast<size_t>(num_cpus()));
    for (uint32_t dir = 0; dir < PF_DIR_COUNT; dir++) {
        if (bpf_map_lookup_elem(iface_.get(), &dir, slots.data()) != 0) return Error{"read map", PF_MAP_IFACE, errno};
        for (int cpu = 0; cpu < num_cpus(); cpu++) {
            const auto& c = slot<pf_counter>(slots.data(), cpu);
            t.dir[dir].bytes += c.bytes;
            t.dir[dir].packets += c.packets;
        }
    }
    return t;
}

Result<std::vector<MacRow>> MapSet::read_macs() const {
    std::vector<MacRow> rows;
    auto st =
        for_each_percpu<pf_mac_key, pf_mac_value>(mac_.get(), PF_MAP_MAC, [&](const pf_mac_key& k, const uint8_t* v) {
            MacRow r;
            std::memcpy(r.mac.data(), k.mac, 6);
            for (int cpu = 0; cpu < num_cpus(); cpu++) {
                const auto& s = slot<pf_mac_value>(v, cpu);
                for (int d = 0; d < PF_DIR_COUNT; d++) {
                    r.dir[d].bytes += s.dir[d].bytes;
                    r.dir[d].packets += s.dir[d].packets;
                }
            }
            rows.push_back(r);
        });
    if (!st) return st.error();
    return rows;
}

namespace {

// One flow entry's per-CPU slots summed into a row.
FlowRow flow_row(const pf_flow_key& k, const uint8_t* v) {
    FlowRow r;
    r.key = k;
    for (int cpu = 0; cpu < num_cpus(); cpu++) {
        const auto& s = slot<pf_flow_value>(v, cpu);
        if (s.packets == 0) continue;
        r.bytes += s.bytes;
        r.packets += s.packets;
        if (r.first_seen_ns == 0 || (s.first_seen_ns != 0 && s.first_seen_ns < r.first_seen_ns))
            r.first_seen_ns = s.first_seen_ns;
        if (s.last_seen_ns > r.last_seen_ns) r.last_seen_ns = s.last_seen_ns;
        r.tcp_flags |= s.tcp_flags;
    }
    return r;
}

}  // namespace

Result<std::vector<FlowRow>> MapSet::read_flows() const {
    std::vector<FlowRow> rows;
    auto st = for_each_percpu<pf_flow_key, pf_flow_value>(
        flow_.get(), PF_MAP_FLOW, [&](const pf_flow_key& k, const uint8_t* v) { rows.push_back(flow_row(k, v)); });
    if (!st) return st.error();
    return rows;
}

FlowTake MapSet::take_flows(const std::vector<pf_flow_key>& keys) const {
    FlowTake t;
    std::vector<uint8_t> slots(slot_size(sizeof(pf_flow_value)) * static_cast<size_t>(num_cpus()));
    for (const auto& k : keys) {
        if (t.error == 0 && bpf_map_lookup_and_delete_elem(flow_.get(), &k, slots.data()) == 0) {
            t.rows.push_back(flow_row(k, slots.data()));
            continue;
        }
        if (t.error == 0 && errno == ENOENT) continue;  // already gone
        // EINVAL/ENOTSUPP(524)/EOPNOTSUPP: a kernel older than 5.14 has no lookup-and-delete
        // on hash maps. This key and the rest are left for the caller.
        if (t.error == 0) t.error = errno;
        t.refused.push_back(k);
    }
    return t;
}

Result<EventCounts> MapSet::read_events() const {
    EventCounts ev{};
    std::vector<uint8_t> slots(slot_size(sizeof(uint64_t)) * static_cast<size_t>(num_cpus()));
    for (uint32_t i = 0; i < PF_EV_COUNT; i++) {
        if (bpf_map_lookup_elem(events_.get(), &i, slots.data()) != 0) return Error{"read map", PF_MAP_EVENTS, errno};
        for (int cpu = 0; cpu < num_cpus(); cpu++) ev[i] += slot<uint64_t>(slots.data(), cpu);
    }
    return ev;
}

Result<size_t> MapSet::delete_flows(const std::vector<pf_flow_key>& keys) const {
    size_t n = 0;
    for (const auto& k : keys)
        if (bpf_map_delete_elem(flow_.get(), &k) == 0) n++;
    return n;
}

}  // namespace pf
