#pragma once
// MAC-table exhaustion: the kernel counts in mac_map_full each packet whose new peer MAC
// found the MAC map full (an L2 neighbour spoofing addresses can fill it), and from then
// on new peers' traffic is missing from the per-MAC totals. One alert when the count
// starts growing, not one per drain; a recovery once it has stopped growing for a while.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "peakflow/push/push_config.hpp"
#include "peakflow/service/alerts.hpp"

namespace pf {

class MacTableWatch {
  public:
    // quiet_seconds: how long the count must stay still before the episode is over.
    explicit MacTableWatch(int64_t quiet_seconds = 3600) : quiet_(quiet_seconds) {}
    // One drain's cumulative mac_map_full count of `iface` at `now` (UTC seconds). The first
    // count seen for an interface, and a count that went back (new maps), is a baseline.
    // Returns the alert to raise, if any.
    std::optional<Alert> observe(const std::string& iface, uint64_t count, int64_t now, uint32_t capacity,
                                 Language lang);

  private:
    struct State {
        uint64_t last = 0;
        int64_t last_growth = 0;
        bool open = false;
    };
    int64_t quiet_;
    std::map<std::string, State> ifaces_;
};

}  // namespace pf
