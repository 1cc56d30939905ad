#include "peakflow/daemon/daemon.hpp"

#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>

#include "peakflow.skel.h"
#include "peakflow/accounting/drain.hpp"
#include "peakflow/accounting/store.hpp"
#include "peakflow/common/privileges.hpp"
#include "peakflow/common/units.hpp"
#include "peakflow/daemon/mac_table_watch.hpp"
#include "peakflow/daemon/metrics.hpp"
#include "peakflow/daemon/service_registry.hpp"
#include "peakflow/kernel/ifaces.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

namespace {

struct Running {
    AttachedInterface attached;
    Drainer drainer;
};

// A start that fails half-way takes back what it attached afresh, so nothing is left
// half-done; interfaces whose counters it continued keep them.
void undo_fresh_attachments(std::vector<Running>& running, const Paths& paths) {
    for (auto& r : running) {
        if (r.attached.reused_pins) continue;
        std::string n = r.attached.ifname;
        r.attached.lock.reset();
        r.attached.skel.reset();
        (void)detach_interface(n, paths);
    }
}

// What the services are built from. start_services adds the alert sink, outbox and sinks;
// a reload keeps those and replaces the settings (see reload()).
ServiceContext service_context(const DaemonOptions& o, const std::vector<std::string>& ifaces) {
    ServiceContext c;
    c.accounting = o.accounting;
    c.sections = o.sections;
    c.paths = o.paths;
    c.drain_interval = o.interval;
    c.clock = o.clock;
    c.ifaces = ifaces;
    // The signal the daemon waits for: the reload runs on its thread, between drains.
    c.request_reload = [] { ::kill(::getpid(), SIGHUP); };
    return c;
}

// SIGHUP: re-read the configuration. The kernel maps and their counters are untouched;
// settings that would need them re-created, or the history moved, wait for a restart. A new
// interface list goes to `reattach`, which returns what it could not do.
template <typename Reattach>
std::vector<ConfigProblem> reload(DaemonOptions& o, Accountant& acct, Services& services, ServiceContext& sctx,
                                  Reattach&& reattach) {
    std::vector<ConfigProblem> problems;
    if (!o.reload) {
        spdlog::info("SIGHUP: no configuration to reload");
        return problems;
    }
    auto next = o.reload();
    if (!next) {
        spdlog::error("reload failed, keeping the running configuration: {}", next.error().message());
        return problems;
    }
    auto cal = next->accounting.calendar();
    if (!cal) {
        spdlog::error("reload failed, keeping the running configuration: {}", cal.error().message());
        return problems;
    }
    if (next->accounting.database != o.accounting.database)
        spdlog::warn("reload: the database path changed; restart to use it");
    if (next->metrics_listen != o.metrics_listen) spdlog::warn("reload: metrics_listen changed; restart to use it");
    if (next->attach.xdp_mode != o.attach.xdp_mode || next->attach.load.mac_capacity != o.attach.load.mac_capacity ||
        next->attach.load.flow_capacity != o.attach.load.flow_capacity ||
        next->attach.load.flows != o.attach.load.flows)
        spdlog::warn("reload: XDP mode, capacities and flows take effect at the next start");
    if (!next->log_level.empty()) spdlog::set_level(spdlog::level::from_str(next->log_level));
    o.interval = next->interval;
    const std::string database = o.accounting.database;  // the open history stays where it is
    o.accounting = next->accounting;
    o.accounting.database = database;
    o.sections = next->sections;
    o.log_level = next->log_level;
    o.ifaces = next->ifaces;
    problems = reattach(o);
    sctx.accounting = o.accounting;
    sctx.sections = o.sections;
    sctx.drain_interval = o.interval;
    services.reload(sctx);
    spdlog::info("reloaded: drain every {} ms, time zone {}, billing day {}", o.interval.count(), cal->tz_name(),
                 o.accounting.billing_day);
    acct.reconfigure(std::move(cal.value()), o.accounting.retention);
    return problems;
}

struct Chosen {
    std::vector<std::string> ifaces;
    std::string picked;  // how the default was picked, for the log; empty when named
};

// The named interfaces, else the one of the default route. Creates nothing.
Result<Chosen> interfaces_to_attach(const DaemonOptions& o) {
    if (!o.ifaces.empty()) return Chosen{o.ifaces, ""};
    auto d = detect_default_interface(o.paths);
    if (!d) return d.error();
    return Chosen{{d->ifname}, "no interface named: using " + d->ifname + ", " + d->reason};
}

// At start only: on a reload, each missing interface is a problem of its own (see reattach).
Status all_present(const std::vector<std::string>& ifaces) {
    for (const auto& name : ifaces)
        if (if_nametoindex(name.c_str()) == 0) return unknown_interface(name);
    return Ok{};
}

Result<std::vector<std::string>> log_interfaces_to_attach(const DaemonOptions& o) {
    auto c = interfaces_to_attach(o);
    if (!c) return c.error();
    if (!c->picked.empty()) spdlog::info("{}", c->picked);
    return std::move(c->ifaces);
}

// The interfaces counted now, read by the metrics thread while a reload may change them.
class IfaceList {
  public:
    explicit IfaceList(std::vector<std::string> v) : v_(std::move(v)) {}
    std::vector<std::string> get() const {
        std::lock_guard<std::mutex> l(mu_);
        return v_;
    }
    void set(std::vector<std::string> v) {
        std::lock_guard<std::mutex> l(mu_);
        v_ = std::move(v);
    }

  private:
    mutable std::mutex mu_;
    std::vector<std::string> v_;
};

// Attaches to every interface or to none: a failure takes back what was attached afresh.
std::vector<Running> attach_all(const std::vector<std::string>& ifaces, const DaemonOptions& o) {
    std::vector<Running> running;
    for (const auto& name : ifaces) {
        auto ai = attach_interface(name, o.attach, o.paths);
        if (!ai) {
            undo_fresh_attachments(running, o.paths);
            throw FatalError(ai.error());
        }
        auto maps = MapSet::from_fds(map_fds(*ai->skel)).take();
        running.push_back(Running{std::move(ai.value()), Drainer(name, std::move(maps))});
    }
    return running;
}

// The wait between drains: signals, the drain timer and systemd's watchdog (pinged at half
// its interval, between drains if need be). Returns the signal that stops the daemon.
template <typename DrainFn, typename ReloadFn>
int wait_loop(const sigset_t& sigs, const std::chrono::milliseconds& interval, DrainFn&& drain, ReloadFn&& reload) {
    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const auto ping_every = std::chrono::microseconds(watchdog_usec / 2);
    using SteadyClock = std::chrono::steady_clock;
    auto next_drain = SteadyClock::now() + interval;
    auto next_ping = SteadyClock::now();
    for (;;) {
        auto wake = watchdog ? std::min(next_drain, next_ping) : next_drain;
        auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - SteadyClock::now());
        if (wait.count() < 0) wait = std::chrono::nanoseconds(0);
        timespec ts{static_cast<time_t>(wait.count() / 1000000000), static_cast<long>(wait.count() % 1000000000)};
        siginfo_t info{};
        int sig = sigtimedwait(&sigs, &info, &ts);
        if (sig < 0) {
            if (errno != EAGAIN && errno != EINTR) spdlog::warn("sigtimedwait: {}", std::strerror(errno));
            auto now = SteadyClock::now();
            if (watchdog && now >= next_ping) {
                sd_notify(0, "WATCHDOG=1");
                next_ping = now + ping_every;
            }
            if (now >= next_drain) {
                drain();
                next_drain += interval;
                if (next_drain < now) next_drain = now + interval;  // we were suspended or very late
            }
            continue;
        }
        if (sig == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            reload();
            next_drain = std::min(next_drain, SteadyClock::now() + interval);
            sd_notify(0, "READY=1");
            continue;
        }
        return sig;
    }
}

// Programs stay attached (counting into the pins) unless --detach-on-exit.
int release_interfaces(std::vector<Running>& running, const DaemonOptions& o) {
    int rc = 0;
    for (auto& r : running) {
        std::string n = r.attached.ifname;
        r.attached.lock.reset();
        r.attached.skel.reset();
        unlink((o.paths.run_dir + "/" + n + ".pid").c_str());
        if (o.detach_on_exit) {
            if (auto st = detach_interface(n, o.paths); !st) {
                spdlog::error("{}", st.error().message());
                rc = 1;
            }
        }
    }
    if (!o.detach_on_exit) spdlog::info("programs stay attached and keep counting; 'peakflow-bpf detach' removes them");
    return rc;
}

}  // namespace

sigset_t block_stop_signals() {
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    // PeakFlow_Tracker's unit stops it with `kill -s QUIT`: a clean stop, not a core dump.
    sigaddset(&sigs, SIGQUIT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a scraper that hangs up must not end the daemon
    return sigs;
}

Status check_start_interfaces(const DaemonOptions& o) {
    auto c = interfaces_to_attach(o);
    if (!c) return c.error();
    return all_present(c->ifaces);
}

int run_daemon(const DaemonOptions& opts) {
    DaemonOptions o = opts;
    if (!o.clock) o.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    if (auto st = check_attach_privileges(); !st) throw FatalError(st.error());
    // `attach` blocked them in run_cli before its first thread; again for any other caller,
    // still before the threads started below.
    const sigset_t sigs = block_stop_signals();

    // Everything that can fail on bad config or a bad database fails before attaching, and
    // a start with no interface to count on before it creates the database.
    std::vector<std::string> ifaces = log_interfaces_to_attach(o).take();
    all_present(ifaces).take();
    Calendar cal = o.accounting.calendar().take();
    auto store = Store::open(o.accounting.database).take();
    store->start_background_checkpoints(std::chrono::seconds(5)).take();
    spdlog::info("history in {} (time zone {}, billing day {})", o.accounting.database, cal.tz_name(),
                 o.accounting.billing_day);

    std::vector<Running> running = attach_all(ifaces, o);
    IfaceList counted(ifaces);

    // Started after the signals are blocked, so its threads never take SIGTERM.
    DaemonStatsBox stats;
    Services services;
    std::unique_ptr<MetricsServer> metrics;
    if (!o.metrics_listen.empty()) {
        auto m = MetricsServer::start(o.metrics_listen,
                                      [&stats, &services, &counted, paths = o.paths, cap = o.mac_series_cap] {
                                          DaemonStats s = stats.get();
                                          services.stats(s);
                                          return collect_metrics(counted.get(), paths, s, cap);
                                      });
        if (!m) {
            undo_fresh_attachments(running, o.paths);
            throw FatalError(m.error());
        }
        metrics = std::move(m.value());
        spdlog::info("metrics on http://{}/metrics", o.metrics_listen);
    }

    std::string boot_id = read_boot_id(o.paths.procfs);
    for (auto& r : running) resume(*store, r.drainer, boot_id);

    std::string names;
    for (const auto& r : running) names += (names.empty() ? "" : ", ") + r.attached.ifname;
    spdlog::info("ready: counting on {} (drain every {} ms)", names, o.interval.count());

    ServiceContext sctx = service_context(o, ifaces);
    if (auto st = start_services(services, sctx); !st) {
        services.stop();
        metrics.reset();
        undo_fresh_attachments(running, o.paths);
        throw FatalError(st.error());
    }

    Accountant acct(*store, std::move(cal), o.accounting.retention, o.clock, o.paths.procfs);
    std::vector<Drainer*> drainers;
    for (auto& r : running) drainers.push_back(&r.drainer);
    MacTableWatch mac_table;
    auto drain = [&] {
        auto t0 = std::chrono::steady_clock::now();
        if (auto committed = acct.drain(drainers)) services.after_drain(*committed);
        for (const auto& [iface, ev] : acct.events())
            if (auto a = mac_table.observe(iface, ev[PF_EV_MAC_MAP_FULL], o.clock(), o.attach.load.mac_capacity,
                                           o.sections.get<PushConfig>().language);
                a && sctx.alerts)
                sctx.alerts->alert(*a);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        stats.update([&](DaemonStats& d) {
            d.last_drain_seconds = s;
            d.drains++;
            d.history_rows_dropped = acct.dropped().rows;
            d.history_bytes_dropped = acct.dropped().bytes;
        });
    };
    drain();  // what was counted while we were away
    sd_notifyf(0, "READY=1\nSTATUS=counting on %s", names.c_str());
    if (o.applied) o.applied({});

    // A new interface list (a SIGHUP, or the collector's central config): attach to the new
    // ones first, then drain and detach the ones no longer listed; when none of the new ones
    // attaches, the old ones keep counting.
    auto reattach = [&](const DaemonOptions& next) {
        std::vector<ConfigProblem> problems;
        auto wanted = log_interfaces_to_attach(next);
        if (!wanted) {
            problems.push_back({"interfaces", wanted.error().message()});
            return problems;
        }
        if (*wanted == ifaces) return problems;
        std::vector<std::string> now;
        for (const auto& name : *wanted) {
            if (std::find(ifaces.begin(), ifaces.end(), name) != ifaces.end()) {
                now.push_back(name);
                continue;
            }
            auto ai = attach_interface(name, o.attach, o.paths);
            if (!ai) {
                spdlog::error("reload: cannot count on {}: {}", name, ai.error().message());
                problems.push_back({"interfaces", "cannot attach to " + name + ": " + ai.error().message()});
                continue;
            }
            auto maps = MapSet::from_fds(map_fds(*ai->skel));
            if (!maps) {
                problems.push_back({"interfaces", name + ": " + maps.error().message()});
                continue;
            }
            running.push_back(Running{std::move(ai.value()), Drainer(name, std::move(maps.value()))});
            resume(*store, running.back().drainer, boot_id);
            now.push_back(name);
            spdlog::info("reload: counting on {} too", name);
        }
        // push_back may have moved the running set: the drainers are pointed at it again.
        drainers.clear();
        for (auto& r : running) drainers.push_back(&r.drainer);
        if (now.empty()) {
            problems.push_back(
                {"interfaces", "no interface of the new list could be attached; still counting on the old"});
            return problems;
        }
        drain();  // what the interfaces leaving the list counted until now is kept
        for (auto it = running.begin(); it != running.end();) {
            if (std::find(now.begin(), now.end(), it->attached.ifname) != now.end()) {
                ++it;
                continue;
            }
            const std::string n = it->attached.ifname;
            it->attached.lock.reset();
            it->attached.skel.reset();
            unlink((o.paths.run_dir + "/" + n + ".pid").c_str());
            if (auto st = detach_interface(n, o.paths); !st) spdlog::error("reload: {}", st.error().message());
            spdlog::info("reload: no longer counting on {} (detached)", n);
            it = running.erase(it);
        }
        drainers.clear();
        for (auto& r : running) drainers.push_back(&r.drainer);
        ifaces = now;
        counted.set(now);
        sctx.ifaces = now;
        return problems;
    };

    int sig = wait_loop(sigs, o.interval, drain, [&] {
        auto problems = reload(o, acct, services, sctx, reattach);
        if (o.applied) o.applied(problems);
    });
    spdlog::info("{}: stopping", strsignal(sig));
    sd_notify(0, "STOPPING=1");

    drain();
    services.stop();
    metrics.reset();
    return release_interfaces(running, o);
}

}  // namespace pf
