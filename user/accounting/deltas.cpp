#include "peakflow/accounting/deltas.hpp"

namespace pf {

Counter DeltaTracker::update(const DeltaKey& key, Counter current) {
    auto [it, inserted] = last_.try_emplace(key, Counter{});
    Counter prev = it->second;
    it->second = current;
    if (inserted) return current;
    if (current.bytes < prev.bytes || current.packets < prev.packets) {
        resets_++;
        return current;  // restarted from zero: never turn this into a huge wrapped delta
    }
    return Counter{current.bytes - prev.bytes, current.packets - prev.packets};
}

void DeltaTracker::observe_map_generation(uint32_t map_id) {
    if (map_id_ != 0 && map_id != map_id_) {
        last_.clear();
        resets_++;
    }
    map_id_ = map_id;
}

}  // namespace pf
