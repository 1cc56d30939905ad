#pragma once
// The host watch: the `host_watch:` service (runaway processes and host health sampled on
// its own thread, alerts, history rows) and the `peakflow-bpf host` command, both built
// on procwatch.hpp and hosthealth.hpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/service/service.hpp"
#include "peakflow/watch/host_watch_config.hpp"
#include "peakflow/watch/procwatch.hpp"

namespace pf {

// `peakflow-bpf host [ITEM] [--json]`: measures now and prints each item's records (all
// items without ITEM); `sleep` waits the measuring windows (0.5 s CPU, 1 s processes).
Status run_host(const std::string& item, bool json, const HostWatchConfig& cfg, const std::string& root, int64_t now,
                const std::function<void(double)>& sleep, std::ostream& out);

ProcWatchOptions proc_options(const HostWatchConfig& c);

// A host health alert in push.language: what is measured ("cpu_temperature", "memory" or
// "disk" with the disk's name), its value and warning level; the title adds whether it is
// raised or back to normal.
std::string health_what(const std::string& item, const std::string& disk, double value, double warning, Language lang);
std::string health_title(bool warning, const std::string& what, Language lang);

// The host watch service (its own thread), with host_watch.enabled; it reads the host
// under ctx.paths.host_root ("/" except in tests).
Result<std::unique_ptr<Service>> make_host_watch_service(ServiceContext& ctx);

}  // namespace pf
