#pragma once
// Kernel counters only ever grow; userspace turns successive snapshots into deltas.
// A value below the last snapshot means the counter started again from zero (the map
// was re-created: detach/attach, reboot), so all of the current value is new. A change
// of map id says the same for every key at once.

#include <compare>
#include <cstdint>
#include <map>

#include "peakflow/kernel/maps.hpp"

namespace pf {

struct DeltaKey {
    enum Kind : uint8_t { Iface = 0, Mac = 1 } kind = Iface;
    MacAddr mac{};
    uint8_t dir = 0;
    auto operator<=>(const DeltaKey&) const = default;
};

class DeltaTracker {
  public:
    // Increase of `current` since the last call for `key` (all of it the first time).
    Counter update(const DeltaKey& key, Counter current);
    // Call with the map's id before a drain; a new id forgets every snapshot.
    void observe_map_generation(uint32_t map_id);
    // Seeds a snapshot, e.g. restored from the store after a restart.
    void seed(const DeltaKey& key, Counter snapshot) { last_[key] = snapshot; }
    const std::map<DeltaKey, Counter>& snapshots() const { return last_; }
    size_t resets() const { return resets_; }

  private:
    std::map<DeltaKey, Counter> last_;
    uint32_t map_id_ = 0;
    size_t resets_ = 0;
};

}  // namespace pf
