#include "peakflow/kernel/maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "peakflow.skel.h"
#include "peakflow/hash_kern_user.h"
#include "peakflow/kernel/jiffies.hpp"

namespace pf {

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

template <typename Value>
const Value& slot(const uint8_t* base, int cpu) {
    return *reinterpret_cast<const Value*>(base + slot_size(sizeof(Value)) * static_cast<size_t>(cpu));
}

// Reads elements [0, n) of an array map in batches; fn(index, value) per element, where a
// per-CPU map's value is its num_cpus() slots. Falls back to one lookup per element on
// kernels without batch lookups.
template <typename Fn>
Status for_each_element(int fd, const char* what, uint32_t n, size_t stride, Fn&& fn) {
    constexpr uint32_t kChunk = 4096;
    std::vector<uint32_t> keys(kChunk);
    std::vector<uint8_t> values(kChunk * stride);
    uint32_t next = 0, done = 0;
    bool first = true, batch = true;
    while (batch && done < n) {
        uint32_t count = kChunk;
        LIBBPF_OPTS(bpf_map_batch_opts, bo);
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &next, &next, keys.data(), values.data(), &count, &bo);
        int e = err ? errno : 0;
        if (err && e != ENOENT) {
            // 524: the kernel's own ENOTSUPP, which 5.10 returns for per-CPU arrays.
            if (first && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == 524)) {
                batch = false;
                break;
            }
            return Error{"read map", what, e};
        }
        for (uint32_t i = 0; i < count; i++) fn(keys[i], values.data() + i * stride);
        done += count;
        if (err) return Ok{};  // ENOENT: that was the last batch
        first = false;
    }
    if (batch) return Ok{};
    for (uint32_t i = 0; i < n; i++) {
        if (bpf_map_lookup_elem(fd, &i, values.data()) != 0) return Error{"read map", what, errno};
        fn(i, values.data());
    }
    return Ok{};
}

// The first 8 bytes of a slot, as the programs compare them.
uint64_t mac_word(const uint8_t* mac) {
    pf_mac_slot s{};
    std::memcpy(s.mac, mac, 6);
    s.used = 1;
    uint64_t w;
    std::memcpy(&w, &s, sizeof w);
    return w;
}

}  // namespace

namespace {

struct MapLayout {
    uint32_t type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0;
};

// This build's layout of each map, read once from the object the binary embeds, so the
// map definitions stay written in one place (bpf/peakflow.bpf.c).
const std::unordered_map<std::string, MapLayout>& object_layouts() {
    static const auto layouts = [] {
        std::unordered_map<std::string, MapLayout> m;
        peakflow_bpf* skel = peakflow_bpf__open();
        if (!skel) return m;
        const bpf_map* map;
        bpf_object__for_each_map(map, skel->obj) {
            m[bpf_map__name(map)] = {static_cast<uint32_t>(bpf_map__type(map)), bpf_map__key_size(map),
                                     bpf_map__value_size(map), bpf_map__max_entries(map), bpf_map__map_flags(map)};
        }
        peakflow_bpf__destroy(skel);
        return m;
    }();
    return layouts;
}

// Entries of the maps the loader sizes from pf_conf; nullopt for the others, which keep
// the object's.
std::optional<uint64_t> sized_entries(const std::string& name, const pf_conf& c) {
    if (name == PF_MAP_MAC) return c.mac_slots;
    if (name == PF_MAP_FLOW || name == PF_MAP_FLOW_ACK) return uint64_t{c.ncpus} * c.flow_slots;
    return std::nullopt;
}

std::string map_type_name(uint32_t type) {
    const char* s = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
    return s ? s : std::to_string(type);
}

std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", v);
    return buf;
}

// The pin `name` of pin_dir, open as fd, against this build's layout; conf null: the
// entries of the tables the loader sizes are not checked.
Status check_layout(int fd, const std::string& pin_dir, const std::string& name, const pf_conf* conf) {
    const std::string path = pin_dir + "/" + name;
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return Error{"read map info", path, errno};
    const auto& layouts = object_layouts();
    auto it = layouts.find(name);
    if (it == layouts.end()) return Error{"open the BPF object to read the layout of", name, 0};
    const MapLayout& want = it->second;
    const bool sized = sized_entries(name, pf_conf{}).has_value();
    const bool check_entries = !sized || conf;
    const uint64_t entries = sized ? (conf ? *sized_entries(name, *conf) : 0) : want.max_entries;
    std::string diff;
    auto differs = [&](const char* what, const std::string& got, const std::string& expected) {
        diff += (diff.empty() ? "" : ", ") + std::string(what) + " " + got + ", expected " + expected;
    };
    if (info.type != want.type) differs("type", map_type_name(info.type), map_type_name(want.type));
    if (info.key_size != want.key_size)
        differs("key size", std::to_string(info.key_size), std::to_string(want.key_size));
    if (info.value_size != want.value_size)
        differs("value size", std::to_string(info.value_size), std::to_string(want.value_size));
    if (check_entries && info.max_entries != entries)
        differs("max_entries", std::to_string(info.max_entries), std::to_string(entries));
    if (info.map_flags != want.flags) differs("flags", hex(info.map_flags), hex(want.flags));
    if (diff.empty()) return Ok{};
    const std::string ifname = std::filesystem::path(pin_dir).filename().string();
    return Error{
        "unexpected layout of pinned map", path, 0,
        diff + "; left by another version or program? run 'peakflow-bpf detach " + ifname + "' and attach again"};
}

}  // namespace

Status check_pinned_maps(const std::string& pin_dir, const pf_conf* conf) {
    for (const char* name : kPinnedMaps) {
        const std::string path = pin_dir + "/" + name;
        Fd fd(bpf_obj_get(path.c_str()));
        if (!fd.valid()) {
            if (errno == ENOENT) continue;
            return Error{"open pinned map", path, errno};
        }
        if (auto st = check_layout(fd.get(), pin_dir, name, conf); !st) return st;
    }
    return Ok{};
}

MapMemory& MapMemory::operator=(MapMemory&& o) noexcept {
    if (this != &o) {
        if (p_) munmap(p_, len_);
        p_ = std::exchange(o.p_, nullptr);
        len_ = std::exchange(o.len_, 0);
    }
    return *this;
}

MapMemory::~MapMemory() {
    if (p_) munmap(p_, len_);
}

namespace {

Result<MapMemory> map_memory(int fd, size_t len, const char* what) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    len = (len + page - 1) / page * page;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Error{"map into memory", what, errno};
    return MapMemory(p, len);
}

}  // namespace

Status MapSet::load_conf(const std::string& pin_dir) {
    uint32_t key = 0;
    if (bpf_map_lookup_elem(conf_map_.get(), &key, &conf_) != 0) return Error{"read map", PF_MAP_CONF, errno};
    // Pins: the tables must have the entries the conf says before they are mapped.
    if (!pin_dir.empty())
        for (const auto& [fd, name] :
             {std::pair{&mac_, PF_MAP_MAC}, {&flow_, PF_MAP_FLOW}, {&flow_ack_, PF_MAP_FLOW_ACK}})
            if (auto st = check_layout(fd->get(), pin_dir, name, &conf_); !st) return st;
    bpf_map_info fi{}, mi{};
    uint32_t len = sizeof fi;
    if (bpf_obj_get_info_by_fd(flow_.get(), &fi, &len) != 0) return Error{"read map info", PF_MAP_FLOW, errno};
    len = sizeof mi;
    if (bpf_obj_get_info_by_fd(mac_.get(), &mi, &len) != 0) return Error{"read map info", PF_MAP_MAC, errno};
    const uint64_t slots = uint64_t{conf_.ncpus} * conf_.flow_slots;
    if (conf_.flow_slots == 0 || slots != fi.max_entries || conf_.mac_slots != mi.max_entries ||
        conf_.ncpus != static_cast<uint32_t>(num_cpus()))
        return Error{"the maps' configuration (pf_conf) does not match the maps", "", 0,
                     "run 'peakflow-bpf detach' and attach again"};
    return Ok{};
}

Status MapSet::map_flows() const {
    if (flow_mem_.data()) return Ok{};
    const uint64_t slots = uint64_t{conf_.ncpus} * conf_.flow_slots;
    auto flows = map_memory(flow_.get(), slots * sizeof(pf_flow_slot), PF_MAP_FLOW);
    if (!flows) return flows.error();
    auto acks = map_memory(flow_ack_.get(), slots * sizeof(pf_flow_ack), PF_MAP_FLOW_ACK);
    if (!acks) return acks.error();
    flow_mem_ = std::move(*flows);
    flow_ack_mem_ = std::move(*acks);
    return Ok{};
}

void MapSet::unmap_flows() const {
    flow_mem_ = MapMemory();
    flow_ack_mem_ = MapMemory();
}

Result<MapSet> MapSet::open_pinned(const std::string& pin_dir) {
    MapSet s;
    std::pair<Fd*, const char*> fds[] = {{&s.iface_, PF_MAP_IFACE},   {&s.mac_, PF_MAP_MAC},
                                         {&s.flow_, PF_MAP_FLOW},     {&s.flow_ack_, PF_MAP_FLOW_ACK},
                                         {&s.conf_map_, PF_MAP_CONF}, {&s.events_, PF_MAP_EVENTS}};
    for (auto& [fd, name] : fds) {
        std::string path = pin_dir + "/" + name;
        fd->reset(bpf_obj_get(path.c_str()));
        if (!fd->valid())
            return Error{"open pinned map", path, errno,
                         errno == ENOENT ? "pinned by another peakflow-bpf version? run 'peakflow-bpf detach' and "
                                           "attach again"
                                         : ""};
    }
    // Before the first read: the kernel copies a value of the pin's size into our buffer.
    for (auto& [fd, name] : fds)
        if (auto st = check_layout(fd->get(), pin_dir, name, nullptr); !st) return st.error();
    if (auto st = s.load_conf(pin_dir); !st) return st.error();
    s.iface_id_ = map_id(s.iface_.get());
    s.mac_id_ = map_id(s.mac_.get());
    s.flow_id_ = map_id(s.flow_.get());
    return s;
}

uint32_t MapSet::pinned_flow_map_id(const std::string& pin_dir) {
    Fd fd(bpf_obj_get((pin_dir + "/" PF_MAP_FLOW).c_str()));
    return fd.valid() ? map_id(fd.get()) : 0;
}

Result<MapSet> MapSet::from_fds(const MapFds& f) {
    MapSet s;
    std::pair<Fd*, int> fds[] = {{&s.iface_, f.iface},       {&s.mac_, f.mac},       {&s.flow_, f.flow},
                                 {&s.flow_ack_, f.flow_ack}, {&s.conf_map_, f.conf}, {&s.events_, f.events}};
    for (auto& [fd, from] : fds) {
        fd->reset(fcntl(from, F_DUPFD_CLOEXEC, 0));
        if (!fd->valid()) return Error{"duplicate map fds", "", errno};
    }
    if (auto st = s.load_conf({}); !st) return st.error();
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
    // A MAC has a slot in each CPU's table that saw it; the rows sum them.
    std::unordered_map<uint64_t, size_t> index;
    std::vector<MacRow> rows;
    const size_t stride = slot_size(sizeof(pf_mac_slot)) * static_cast<size_t>(num_cpus());
    auto st = for_each_element(mac_.get(), PF_MAP_MAC, conf_.mac_slots, stride, [&](uint32_t, const uint8_t* v) {
        for (int cpu = 0; cpu < num_cpus(); cpu++) {
            const auto& s = slot<pf_mac_slot>(v, cpu);
            if (!s.used) continue;
            auto [it, fresh] = index.try_emplace(mac_word(s.mac), rows.size());
            if (fresh) {
                rows.emplace_back();
                std::memcpy(rows.back().mac.data(), s.mac, 6);
            }
            MacRow& r = rows[it->second];
            for (int d = 0; d < PF_DIR_COUNT; d++) {
                r.dir[d].bytes += s.dir[d].bytes;
                r.dir[d].packets += s.dir[d].packets;
            }
        }
    });
    if (!st) return st.error();
    return rows;
}

namespace {

// A consistent copy of a slot the programs may be rewriting (the gen protocol of
// struct pf_flow_slot: gen_tail is read first, gen last). False if it never settled.
bool read_slot(const pf_flow_slot* live, pf_flow_slot& out) {
    auto* p = const_cast<pf_flow_slot*>(live);
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t tail = std::atomic_ref<__u64>(p->gen_tail).load(std::memory_order_acquire);
        std::memcpy(&out, live, sizeof out);
        std::atomic_thread_fence(std::memory_order_acquire);
        uint64_t gen = std::atomic_ref<__u64>(p->gen).load(std::memory_order_relaxed);
        if (gen == tail) {
            out.gen = out.gen_tail = gen;
            return true;
        }
    }
    return false;
}

// What one slot holds for its flow that is not yet taken; false if nothing. A slot whose
// gen was acknowledged and has grown since holds the packets that raced the
// acknowledgement: they count as a new flow that began at the acknowledged last packet.
bool slot_part(const pf_flow_slot& s, const pf_flow_ack& a, FlowRow& out) {
    if (s.gen == 0) return false;
    out.key = s.key;
    out.bytes = s.bytes;
    out.packets = s.packets;
    out.first_seen_ns = s.first_seen;  // jiffies until converted
    out.last_seen_ns = s.last_seen;
    out.tcp_flags = s.tcp_flags;
    if (a.token != 0 && a.gen == s.gen) {
        if (s.packets <= a.packets) return false;
        out.bytes -= a.bytes;
        out.packets -= a.packets;
        out.first_seen_ns = a.last_seen;
    }
    return true;
}

// Adds one CPU's part of a flow to its row (jiffy times).
void merge(FlowRow& r, const FlowRow& part) {
    r.key = part.key;
    if (r.first_seen_ns == 0 || part.first_seen_ns < r.first_seen_ns) r.first_seen_ns = r.entry_id = part.first_seen_ns;
    if (part.last_seen_ns > r.last_seen_ns) r.last_seen_ns = part.last_seen_ns;
    r.bytes += part.bytes;
    r.packets += part.packets;
    r.tcp_flags |= part.tcp_flags;
}

}  // namespace

Status MapSet::to_ns(std::vector<FlowRow>& rows) const {
    if (rows.empty()) return Ok{};
    if (auto now = JiffyClock::now(); now)
        clock_ = *now;
    else if (!clock_)
        return now.error();
    for (auto& r : rows) {
        r.first_seen_ns = clock_->to_ns(r.first_seen_ns);
        r.last_seen_ns = clock_->to_ns(r.last_seen_ns);
    }
    return Ok{};
}

Result<std::vector<FlowRow>> MapSet::read_flows() const {
    if (auto st = map_flows(); !st) return st.error();
    const size_t n = size_t{conf_.ncpus} * conf_.flow_slots;
    const pf_flow_slot* slots = flow_slots();
    const pf_flow_ack* acks = flow_acks();
    // One pass copies the parts out of the shared memory; a flow that has slots on
    // several CPUs is then summed into one row.
    std::vector<FlowRow> parts;
    for (size_t i = 0; i < n; i++) {
        if (std::atomic_ref<__u64>(const_cast<__u64&>(slots[i].gen)).load(std::memory_order_relaxed) == 0)
            continue;  // never used
        pf_flow_slot s;
        FlowRow part;
        if (read_slot(&slots[i], s) && slot_part(s, acks[i], part)) parts.push_back(part);
    }
    std::unordered_map<pf_flow_key, size_t, FlowKeyHash, FlowKeyEq> index;
    index.reserve(parts.size());
    std::vector<FlowRow> rows;
    rows.reserve(parts.size());
    for (const auto& part : parts) {
        auto [it, fresh] = index.try_emplace(part.key, rows.size());
        if (fresh) rows.emplace_back();
        merge(rows[it->second], part);
    }
    if (auto c = to_ns(rows); !c) return c.error();
    return rows;
}

FlowTake MapSet::take_flows(const std::vector<pf_flow_key>& keys) const {
    FlowTake t;
    if (!map_flows()) return t;  // mapped by the read_flows before, so not expected
    const uint32_t mask = conf_.flow_slots - 1;
    pf_flow_slot* slots = flow_slots();
    pf_flow_ack* acks = flow_acks();
    for (const auto& want : keys) {
        FlowRow row;
        __u64 w[PF_FLOW_KEY_WORDS];
        std::memcpy(w, &want, sizeof w);
        const uint64_t h = pf_hash_flow(w, conf_.seed);
        // In each CPU's table the programs placed the flow at its home slot or one of the
        // next probes, before the first never-used slot.
        for (uint32_t cpu = 0; cpu < conf_.ncpus; cpu++) {
            for (uint32_t p = 0; p < PF_FLOW_PROBES; p++) {
                const size_t i = size_t{cpu} * conf_.flow_slots + (static_cast<uint32_t>(h + p) & mask);
                pf_flow_slot s;
                if (!read_slot(&slots[i], s) || s.gen == 0) break;
                if (!FlowKeyEq{}(s.key, want)) continue;
                FlowRow part;
                if (slot_part(s, acks[i], part)) merge(row, part);
                // The counters first, then the token in one store: a program sees the
                // old ack or the whole new one.
                pf_flow_ack& a = acks[i];
                std::atomic_ref<__u64>(a.token).store(0, std::memory_order_relaxed);
                std::atomic_thread_fence(std::memory_order_release);
                a.gen = s.gen;
                a.packets = s.packets;
                a.bytes = s.bytes;
                a.last_seen = s.last_seen;
                std::atomic_ref<__u64>(a.token).store(pf_ack_token(s.gen, s.packets), std::memory_order_release);
                break;
            }
        }
        if (row.packets > 0) t.rows.push_back(row);
    }
    // Cannot fail after a read_flows: the clock of that read converts the times.
    (void)to_ns(t.rows);
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

}  // namespace pf
