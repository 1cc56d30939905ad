#include "peakflow/daemon/mac_table_watch.hpp"

namespace pf {

namespace {

Alert mac_alert(Alert::Kind kind, const std::string& iface, int64_t now) {
    Alert a;
    a.kind = kind;
    a.source = "kernel";
    a.key = "mac_map_full:" + iface;
    a.time = now;
    return a;
}

}  // namespace

std::optional<Alert> MacTableWatch::observe(const std::string& iface, uint64_t count, int64_t now, uint32_t capacity,
                                            Language lang) {
    auto [it, first] = ifaces_.try_emplace(iface);
    State& s = it->second;
    const bool grew = !first && count > s.last;
    const uint64_t added = grew ? count - s.last : 0;
    s.last = count;
    if (!grew) {
        if (!s.open || now - s.last_growth < quiet_) return std::nullopt;
        s.open = false;
        Alert a = mac_alert(Alert::Kind::Recovered, iface, now);
        if (lang == Language::Zh) {
            a.title = iface + " 的 MAC 表不再溢出";
            a.text = "mac_map_full 已 " + std::to_string(quiet_ / 60) + " 分钟没有增长。";
        } else {
            a.title = "MAC table of " + iface + " no longer overflowing";
            a.text = "mac_map_full has not grown for " + std::to_string(quiet_ / 60) + " minutes.";
        }
        return a;
    }
    s.last_growth = now;
    if (s.open) return std::nullopt;
    s.open = true;
    Alert a = mac_alert(Alert::Kind::Raised, iface, now);
    const std::string cap = std::to_string(capacity);
    if (lang == Language::Zh) {
        a.title = iface + " 的 MAC 表已满";
        a.text = "MAC 表（每个 CPU " + cap + " 个地址）已满：新对端的流量不计入按 MAC 的统计（mac_map_full 增加了 " +
                 std::to_string(added) + "）。接口总量不受影响。可能有邻居在伪造 MAC 地址；或调大 mac_capacity。";
    } else {
        a.title = "MAC table of " + iface + " is full";
        a.text = "The MAC table (" + cap +
                 " addresses per CPU) is full: new peers' traffic is not counted per MAC (mac_map_full grew by " +
                 std::to_string(added) +
                 "). Interface totals are complete. A neighbour may be spoofing MAC addresses; or raise "
                 "mac_capacity.";
    }
    return a;
}

}  // namespace pf
