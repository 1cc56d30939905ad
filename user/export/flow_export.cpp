#include "peakflow/export/flow_export.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <ctime>

namespace pf {

// ---- delta and timeouts ----

namespace {
int64_t to_utc_ms(uint64_t mono_ns, int64_t real_offset_ns) {
    return (static_cast<int64_t>(mono_ns) + real_offset_ns) / 1000000;
}
}  // namespace

FlowRecord FlowTracker::record(const FlowRow& row, const State& st, int64_t real_offset_ns) const {
    FlowRecord r;
    r.key = row.key;
    r.iface = iface_;
    r.ifindex = ifindex_;
    uint64_t start = std::min(st.window_start_ns, row.last_seen_ns);
    r.start_ms = to_utc_ms(start, real_offset_ns);
    r.end_ms = to_utc_ms(row.last_seen_ns, real_offset_ns);
    r.packets = row.packets - st.packets;
    r.bytes = row.bytes - st.bytes;
    r.tcp_flags = row.tcp_flags;
    return r;
}

namespace {
// The state continues for this row: same table entry (FlowRow::entry_id) and counters
// not below what was exported. Otherwise the flow was taken and started again.
template <typename State>
bool continues(const State& st, const FlowRow& row) {
    return row.entry_id == st.entry_id && row.packets >= st.packets && row.bytes >= st.bytes;
}
template <typename State>
State fresh(const FlowRow& row) {
    State st;
    st.entry_id = row.entry_id;
    st.window_start_ns = row.first_seen_ns;
    st.active_since_ns = row.first_seen_ns;
    return st;
}
}  // namespace

FlowTracker::ScanResult FlowTracker::scan(const std::vector<FlowRow>& rows, uint64_t now_ns, int64_t real_offset_ns,
                                          bool flush) {
    ScanResult out;
    pending_.clear();
    std::unordered_map<pf_flow_key, State, FlowKeyHash, FlowKeyEq> next;
    next.reserve(rows.size());
    for (const auto& row : rows) {
        if (row.packets == 0) continue;
        auto it = state_.find(row.key);
        // New flow, or the entry was deleted and created again: counting starts over.
        State st = it != state_.end() && continues(it->second, row) ? it->second : fresh<State>(row);
        const bool idle = now_ns >= row.last_seen_ns && now_ns - row.last_seen_ns >= idle_ns_;
        const bool active = now_ns >= st.active_since_ns && now_ns - st.active_since_ns >= active_ns_;
        if (idle || flush) {
            // The final record comes from finish(), with the value removed from the map.
            out.expired.push_back(row.key);
            pending_.emplace(row.key, st);
            continue;  // forgotten: the entry leaves the map
        }
        if (row.packets > st.packets && active) {
            out.records.push_back(record(row, st, real_offset_ns));
            st.packets = row.packets;
            st.bytes = row.bytes;
            // The next delta's packets all arrive after this scan.
            st.window_start_ns = std::max(now_ns, row.last_seen_ns);
            st.active_since_ns = now_ns;
        }
        next.emplace(row.key, st);
    }
    // Entries gone from the map (deleted, map re-created) are forgotten with them.
    state_ = std::move(next);
    return out;
}

std::vector<FlowRecord> FlowTracker::finish(const std::vector<FlowRow>& finals, int64_t real_offset_ns) {
    std::vector<FlowRecord> out;
    for (const auto& row : finals) {
        if (row.packets == 0) continue;
        auto it = pending_.find(row.key);
        State st = it != pending_.end() && continues(it->second, row) ? it->second : fresh<State>(row);
        if (row.packets > st.packets) out.push_back(record(row, st, real_offset_ns));
    }
    pending_.clear();
    return out;
}

std::vector<FlowSnapshot> FlowTracker::snapshot() const {
    std::vector<FlowSnapshot> out;
    out.reserve(state_.size());
    for (const auto& [k, st] : state_)
        out.push_back(FlowSnapshot{k, st.bytes, st.packets, st.entry_id, st.window_start_ns, st.active_since_ns});
    return out;
}

void FlowTracker::restore(const std::vector<FlowSnapshot>& flows) {
    state_.clear();
    pending_.clear();
    for (const auto& f : flows)
        state_[f.key] = State{f.bytes, f.packets, f.entry_id, f.window_start_ns, f.active_since_ns};
}

Result<MapScan> scan_flow_map(const MapSet& maps, FlowTracker& tracker, uint64_t now_ns, int64_t real_offset_ns,
                              bool flush, const std::function<void()>& before_take) {
    auto rows = maps.read_flows();
    if (!rows) return rows.error();
    auto res = tracker.scan(*rows, now_ns, real_offset_ns, flush);
    MapScan out;
    out.records = std::move(res.records);
    out.expired = res.expired.size();
    if (res.expired.empty()) return out;
    if (before_take) before_take();
    FlowTake taken = maps.take_flows(res.expired);
    for (auto& r : tracker.finish(taken.rows, real_offset_ns)) out.records.push_back(std::move(r));
    return out;
}

// ---- CSV ----

const char* const kFlowCsvHeader =
    "start_time,end_time,interface,direction,src_mac,dst_mac,src_ip,dst_ip,protocol,src_port,dst_port,vlan,"
    "inner_vlan,packets,bytes,tcp_flags\n";

namespace {

void put_u64(std::string& out, uint64_t v) {
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    out.append(b, r.ptr);
}

void put_2(char* p, unsigned v) {
    p[0] = char('0' + v / 10);
    p[1] = char('0' + v % 10);
}

// "YYYY-MM-DD HH:MM:SS.mmm" (UTC). The date and time of the last second are cached.
void put_time(std::string& out, int64_t ms) {
    thread_local int64_t cached_sec = INT64_MIN;
    thread_local char cached[19];
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t frac = ms - sec * 1000;
    if (sec != cached_sec) {
        time_t t = static_cast<time_t>(sec);
        struct tm tm {};
        gmtime_r(&t, &tm);
        unsigned y = static_cast<unsigned>(tm.tm_year + 1900) % 10000;
        cached[0] = char('0' + y / 1000);
        cached[1] = char('0' + y / 100 % 10);
        cached[2] = char('0' + y / 10 % 10);
        cached[3] = char('0' + y % 10);
        cached[4] = '-';
        put_2(cached + 5, unsigned(tm.tm_mon + 1));
        cached[7] = '-';
        put_2(cached + 8, unsigned(tm.tm_mday));
        cached[10] = ' ';
        put_2(cached + 11, unsigned(tm.tm_hour));
        cached[13] = ':';
        put_2(cached + 14, unsigned(tm.tm_min));
        cached[16] = ':';
        put_2(cached + 17, unsigned(tm.tm_sec));
        cached_sec = sec;
    }
    out.append(cached, 19);
    char f[4] = {'.', char('0' + frac / 100), char('0' + frac / 10 % 10), char('0' + frac % 10)};
    out.append(f, 4);
}

void put_mac(std::string& out, const uint8_t* m) {
    static const char hex[] = "0123456789abcdef";
    char b[17];
    for (int i = 0; i < 6; i++) {
        b[i * 3] = hex[m[i] >> 4];
        b[i * 3 + 1] = hex[m[i] & 15];
        if (i < 5) b[i * 3 + 2] = ':';
    }
    out.append(b, 17);
}

void put_addr(std::string& out, const pf_flow_key& k, const uint8_t* a) {
    char b[INET6_ADDRSTRLEN];
    if (k.family == 4) {
        inet_ntop(AF_INET, a + 12, b, sizeof b);
    } else {
        inet_ntop(AF_INET6, a, b, sizeof b);
    }
    out.append(b);
}

}  // namespace

void append_csv_row(std::string& out, const FlowRecord& r) {
    put_time(out, r.start_ms);
    out += ',';
    put_time(out, r.end_ms);
    out += ',';
    out += r.iface;
    out += r.key.dir == PF_DIR_RX ? ",rx," : ",tx,";
    put_mac(out, r.key.src_mac);
    out += ',';
    put_mac(out, r.key.dst_mac);
    out += ',';
    put_addr(out, r.key, r.key.src_addr);
    out += ',';
    put_addr(out, r.key, r.key.dst_addr);
    out += ',';
    put_u64(out, r.key.proto);
    out += ',';
    put_u64(out, r.key.src_port);
    out += ',';
    put_u64(out, r.key.dst_port);
    out += ',';
    put_u64(out, r.key.vlan[0]);
    out += ',';
    put_u64(out, r.key.vlan[1]);
    out += ',';
    put_u64(out, r.packets);
    out += ',';
    put_u64(out, r.bytes);
    out += ',';
    put_u64(out, r.tcp_flags);
    out += '\n';
}

}  // namespace pf
