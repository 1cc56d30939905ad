#pragma once
// The programs stamp flows with bpf_jiffies64() (an inlined load, where a clock helper
// costs a call on every packet). JiffyClock turns those stamps into CLOCK_MONOTONIC
// nanoseconds: a tiny BPF program reads jiffies and the coarse monotonic clock together,
// and the tick length is the kernel's CONFIG_HZ (from /boot/config-*, else measured).

#include <cstdint>
#include <string>

#include "peakflow/common/error.hpp"

namespace pf {

class JiffyClock {
  public:
    // Samples jiffies and the clock now (needs CAP_BPF, as reading the maps does).
    static Result<JiffyClock> now();
    // A clock with a known sample and tick, for tests.
    JiffyClock(uint64_t jiffies, uint64_t mono_ns, uint64_t tick_ns) : j_(jiffies), ns_(mono_ns), tick_(tick_ns) {}

    // CLOCK_MONOTONIC(_COARSE) ns at the tick that stamped `jiffies`; 0 stays 0.
    uint64_t to_ns(uint64_t jiffies) const;
    uint64_t tick_ns() const { return tick_; }

  private:
    uint64_t j_, ns_, tick_;
};

// CONFIG_HZ=N in a kernel config text; 0 if absent or not a plausible HZ.
unsigned parse_config_hz(const std::string& config_text);
// The nearest kernel HZ (100, 250, 300, 1000) to a measured tick, in ns; 0 if none is
// within 10%.
unsigned hz_from_tick_ns(double tick_ns);

}  // namespace pf
