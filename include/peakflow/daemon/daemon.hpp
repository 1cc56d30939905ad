#pragma once
// `peakflow-bpf attach`: attach to the interfaces, then drain the maps on a timer (see
// accounting/drain.hpp), run the background services beside it, until SIGINT/SIGTERM/SIGQUIT.

#include <signal.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/fleet/wire.hpp"
#include "peakflow/kernel/loader.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

// What the daemon runs with: the effective settings (config file and command line, put
// together once by the app) and the runtime hooks. The services' own sections travel in
// `sections`, untouched by the daemon.
struct DaemonOptions {
    std::vector<std::string> ifaces;  // empty: the default-route interface
    AttachOptions attach;
    std::chrono::milliseconds interval{10000};
    AccountingConfig accounting;  // the history: database, calendar, retention, adjustments
    ServiceSections sections;     // push, reports, customer_report, host_watch, export
    std::string log_level;        // applied again on reload; empty: leave as is
    std::string metrics_listen;   // Prometheus /metrics on HOST:PORT; empty: off
    size_t mac_series_cap = 1000;
    bool detach_on_exit = false;
    Paths paths;
    std::function<int64_t()> clock;  // UTC seconds; default: the system clock
    // SIGHUP: builds the options again from the config file (and the command line). What
    // can change while running (interval, time zone, peak windows, billing day, retention,
    // log level, the services' sections) is applied; the rest needs a restart and is
    // logged as such.
    std::function<Result<DaemonOptions>()> reload;
    // After the start and after each reload: what the daemon could not apply, by config key
    // (an interface it cannot attach to). The app reports the central config's to the collector.
    std::function<void(const std::vector<ConfigProblem>&)> applied;
};

// Blocks SIGINT, SIGTERM, SIGQUIT and SIGHUP in the calling thread and ignores SIGPIPE; returns the
// blocked set, which run_daemon waits on with sigtimedwait. Call it before anything starts
// a thread (spdlog's flusher for log_dir, the store's checkpointer, the services): threads
// inherit the mask they are created with, and one that does not block these signals takes
// a SIGTERM or SIGHUP with the default action, ending the process. Calling it again is
// harmless.
sigset_t block_stop_signals();

// What a start would count on (the named interfaces, each present, else the physical one of
// the default route), checked without creating anything: run_daemon checks it before it
// creates the database; the app, before its log files.
Status check_start_interfaces(const DaemonOptions& o);

int run_daemon(const DaemonOptions& opts);

}  // namespace pf
