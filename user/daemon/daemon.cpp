#include "peakflow/daemon/daemon.hpp"

#include <bpf/libbpf.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>

#include "peakflow.skel.h"
#include "peakflow/accounting/store.hpp"
#include "peakflow/common/privileges.hpp"
#include "peakflow/common/units.hpp"
#include "peakflow/daemon/metrics.hpp"
#include "peakflow/kernel/ifaces.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

Result<DrainDelta> Drainer::drain() {
    DrainDelta d;
    d.ifname = ifname_;
    tracker_.observe_map_generation(maps_.mac_map_id());
    auto totals = maps_.read_iface();
    if (!totals) return totals.error();
    auto macs = maps_.read_macs();
    if (!macs) return macs.error();
    auto events = maps_.read_events();
    if (!events) return events.error();
    for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++) {
        d.dir[dir] = tracker_.update(DeltaKey{DeltaKey::Iface, {}, dir}, totals->dir[dir]);
        d.total[dir] = totals->dir[dir];
    }
    for (const auto& row : *macs) {
        MacDelta md;
        md.mac = row.mac;
        bool changed = false;
        for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++) {
            md.dir[dir] = tracker_.update(DeltaKey{DeltaKey::Mac, row.mac, dir}, row.dir[dir]);
            md.snap[dir] = row.dir[dir];
            changed = changed || md.dir[dir].packets != 0;
        }
        if (changed) d.macs.push_back(md);
    }
    d.mac_entries = macs->size();
    d.events = *events;
    return d;
}

std::string summarize(const DrainDelta& d) {
    std::string s = d.ifname + ": rx +" + human_bytes(d.dir[PF_DIR_RX].bytes) + " +" +
                    std::to_string(d.dir[PF_DIR_RX].packets) + " pkts, tx +" + human_bytes(d.dir[PF_DIR_TX].bytes) +
                    " +" + std::to_string(d.dir[PF_DIR_TX].packets) + " pkts, " + std::to_string(d.macs.size()) + "/" +
                    std::to_string(d.mac_entries) + " MACs active";
    for (int e = 0; e < PF_EV_COUNT; e++)
        if (d.events[static_cast<size_t>(e)])
            s += ", " + std::string(event_name(e)) + "=" + std::to_string(d.events[static_cast<size_t>(e)]);
    return s;
}

void append_bucket_rows(const DrainDelta& d, const Calendar& cal, int64_t now, DrainRows& out) {
    int64_t ts = Calendar::bucket_start(now);
    bool peak = cal.is_peak(now);
    if (d.dir[PF_DIR_RX].packets || d.dir[PF_DIR_TX].packets) {
        BucketUpdate u{ts, kIfaceTotal, peak, {d.dir[0], d.dir[1]}, {d.total[0], d.total[1]}};
        out.rows.push_back(u);
    }
    for (const auto& m : d.macs)
        out.rows.push_back(BucketUpdate{ts, mac_to_int(m.mac), peak, {m.dir[0], m.dir[1]}, {m.snap[0], m.snap[1]}});
}

namespace {

struct Running {
    AttachedInterface attached;
    Drainer drainer;
    bool new_generation = false;
};

// Drains every interface and commits the result in one transaction. Rows that could not
// be committed stay in `pending` and go with the next drain: nothing counted is dropped.
class Accountant {
  public:
    Accountant(Store& store, Calendar cal, const DaemonOptions& o)
        // A reboot re-creates the maps and ends this process: the boot id is read once.
        : store_(store),
          cal_(std::move(cal)),
          retention_(o.retention),
          clock_(o.clock),
          boot_id_(read_boot_id(o.paths.procfs)) {}

    // After a reload: new buckets are classified with the new calendar.
    void reconfigure(Calendar cal, const Retention& retention) {
        cal_ = std::move(cal);
        retention_ = retention;
        rolled_up_ = false;  // roll up and apply retention under the new rules at the next drain
    }

    // The drain's time (UTC seconds) when its rows were committed; nullopt when they wait.
    std::optional<int64_t> drain(std::vector<Running>& running) {
        int64_t now = clock_();
        for (auto& r : running) {
            auto d = r.drainer.drain();
            if (!d) {
                spdlog::error("drain {}: {}", r.drainer.ifname(), d.error().message());
                continue;
            }
            spdlog::debug("drain {}", summarize(*d));
            DrainRows rows;
            rows.iface = r.drainer.ifname();
            rows.map_id = r.drainer.generation();
            rows.boot_id = boot_id_;
            rows.new_generation = r.new_generation;
            r.new_generation = false;
            append_bucket_rows(*d, cal_, now, rows);
            auto it = std::find_if(pending_.begin(), pending_.end(),
                                   [&](const DrainRows& p) { return p.iface == rows.iface; });
            if (it == pending_.end())
                pending_.push_back(std::move(rows));
            else
                merge_drain_rows(*it, rows);
        }
        if (auto st = store_.commit_drain(pending_); !st) {
            size_t n = 0;
            for (const auto& p : pending_) n += p.rows.size();
            spdlog::warn("could not write the history ({} rows kept for the next drain): {}", n, st.error().message());
            return std::nullopt;
        }
        pending_.clear();
        LocalDate today = cal_.local_date(now);
        if (rolled_up_ && today != last_day_) log_day_summary(last_day_);
        if (!rolled_up_ || today != last_day_) {
            if (auto st = store_.finalize(cal_, now); !st) spdlog::warn("roll-up: {}", st.error().message());
            if (auto st = store_.apply_retention(retention_, now); !st)
                spdlog::warn("retention: {}", st.error().message());
            rolled_up_ = true;
            last_day_ = today;
        }
        return now;
    }

  private:
    // One line per interface for a day that just ended, to the "traffic" log if configured.
    void log_day_summary(const LocalDate& day) {
        auto traffic = spdlog::get("traffic");
        if (!traffic) return;
        auto rows = store_.totals(Filter{std::nullopt, kIfaceTotal}, cal_.day_start(day), cal_.day_end(day));
        if (!rows) {
            spdlog::warn("daily traffic summary for {}: {}", day.str(), rows.error().message());
            return;
        }
        std::map<std::string, std::array<Counter, 4>> by_iface;  // peak rx, peak tx, off-peak rx, off-peak tx
        for (const auto& r : *rows) {
            auto& a = by_iface[r.iface];
            a[r.peak ? 0 : 2] = r.dir[PF_DIR_RX];
            a[r.peak ? 1 : 3] = r.dir[PF_DIR_TX];
        }
        for (const auto& [iface, a] : by_iface)
            traffic->info("{} {} peak_up={} peak_down={} offpeak_up={} offpeak_down={} total={}", day.str(), iface,
                          a[1].bytes, a[0].bytes, a[3].bytes, a[2].bytes,
                          a[0].bytes + a[1].bytes + a[2].bytes + a[3].bytes);
        traffic->flush();
    }

    Store& store_;
    Calendar cal_;
    Retention retention_;
    std::function<int64_t()> clock_;
    std::string boot_id_;
    std::vector<DrainRows> pending_;
    bool rolled_up_ = false;
    LocalDate last_day_;
};

// Continue from the snapshots stored with the last committed drain, if they belong to
// the same kernel maps (same boot, same map id); otherwise the counters started again.
bool resume(Store& store, Running& r, const std::string& boot_id) {
    auto res = store.load_resume(r.drainer.ifname());
    if (!res) throw FatalError(res.error());
    uint32_t gen = r.drainer.generation();
    if (!res->found || res->boot_id != boot_id || res->map_id != gen) {
        if (res->found)
            spdlog::info("{}: kernel counters were re-created ({}); counting from zero", r.drainer.ifname(),
                         res->boot_id != boot_id ? "reboot" : "maps replaced");
        r.new_generation = true;
        return false;
    }
    auto& t = r.drainer.tracker();
    t.observe_map_generation(gen);
    for (const auto& [mac, snap] : res->snapshots) {
        for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++) {
            if (mac == kIfaceTotal)
                t.seed(DeltaKey{DeltaKey::Iface, {}, dir}, snap[dir]);
            else
                t.seed(DeltaKey{DeltaKey::Mac, mac_from_int(mac), dir}, snap[dir]);
        }
    }
    spdlog::info("{}: resuming from {} stored counter snapshots", r.drainer.ifname(), res->snapshots.size());
    return true;
}

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

// SIGHUP: re-read the configuration. The kernel maps and their counters are untouched;
// settings that would need them re-created, or the history moved, wait for a restart.
void reload(DaemonOptions& o, Accountant& acct, Services& services, const std::vector<Running>& running) {
    if (!o.reload) {
        spdlog::info("SIGHUP: no configuration to reload");
        return;
    }
    auto next = o.reload();
    if (!next) {
        spdlog::error("reload failed, keeping the running configuration: {}", next.error().message());
        return;
    }
    auto cal = Calendar::create(next->timezone, next->peak_windows, next->billing_day);
    if (!cal) {
        spdlog::error("reload failed, keeping the running configuration: {}", cal.error().message());
        return;
    }
    std::vector<std::string> names;
    for (const auto& r : running) names.push_back(r.attached.ifname);
    if (!next->ifaces.empty() && next->ifaces != names)
        spdlog::warn("reload: the interface list changed; restart to attach to the new set");
    if (next->database != o.database) spdlog::warn("reload: the database path changed; restart to use it");
    if (next->metrics_listen != o.metrics_listen) spdlog::warn("reload: metrics_listen changed; restart to use it");
    if (next->attach.xdp_mode != o.attach.xdp_mode || next->attach.load.mac_capacity != o.attach.load.mac_capacity ||
        next->attach.load.flow_capacity != o.attach.load.flow_capacity ||
        next->attach.load.flows != o.attach.load.flows)
        spdlog::warn("reload: XDP mode, capacities and flows take effect at the next start");
    if (!next->log_level.empty()) spdlog::set_level(spdlog::level::from_str(next->log_level));
    o.interval = next->interval;
    o.timezone = next->timezone;
    o.peak_windows = next->peak_windows;
    o.billing_day = next->billing_day;
    o.retention = next->retention;
    o.log_level = next->log_level;
    o.config = next->config;
    services.reload(o.config);
    spdlog::info("reloaded: drain every {} ms, time zone {}, billing day {}", o.interval.count(), cal->tz_name(),
                 o.billing_day);
    acct.reconfigure(std::move(cal.value()), o.retention);
}

}  // namespace

int run_daemon(const DaemonOptions& opts) {
    DaemonOptions o = opts;
    if (!o.clock) o.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    if (auto st = check_attach_privileges(); !st) throw FatalError(st.error());

    // Block the signals we wait for before any thread starts (the store's checkpointer is
    // the first) and before anything is attached: a thread created earlier would inherit
    // them unblocked, and a SIGTERM delivered to it while the main thread is busy draining
    // would end the process with the default action instead of a clean stop.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a scraper that hangs up must not end the daemon

    // Everything that can fail on bad config or a bad database fails before attaching.
    Calendar cal = Calendar::create(o.timezone, o.peak_windows, o.billing_day).take();
    auto store = Store::open(o.database).take();
    store->start_background_checkpoints(std::chrono::seconds(5)).take();
    spdlog::info("history in {} (time zone {}, billing day {})", o.database, cal.tz_name(), o.billing_day);

    std::vector<std::string> ifaces = o.ifaces;
    if (ifaces.empty()) {
        ifaces.push_back(detect_default_interface(o.paths).take());
        spdlog::info("no interface named: using {}, which carries the default route", ifaces.back());
    }

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
    // Started after the signals are blocked, so its threads never take SIGTERM.
    DaemonStatsBox stats;
    Services services;
    std::unique_ptr<MetricsServer> metrics;
    if (!o.metrics_listen.empty()) {
        auto m = MetricsServer::start(o.metrics_listen,
                                      [&stats, &services, ifaces, paths = o.paths, cap = o.mac_series_cap] {
                                          DaemonStats s = stats.get();
                                          services.stats(s);
                                          return collect_metrics(ifaces, paths, s, cap);
                                      });
        if (!m) {
            undo_fresh_attachments(running, o.paths);
            throw FatalError(m.error());
        }
        metrics = std::move(m.value());
        spdlog::info("metrics on http://{}/metrics", o.metrics_listen);
    }

    std::string boot_id = read_boot_id(o.paths.procfs);
    for (auto& r : running) resume(*store, r, boot_id);

    std::string names;
    for (const auto& r : running) names += (names.empty() ? "" : ", ") + r.attached.ifname;
    spdlog::info("ready: counting on {} (drain every {} ms)", names, o.interval.count());

    ServiceContext sctx{o.config, o, ifaces, nullptr, nullptr, {}};
    if (auto st = start_services(services, sctx); !st) {
        services.stop();
        metrics.reset();
        undo_fresh_attachments(running, o.paths);
        throw FatalError(st.error());
    }

    Accountant acct(*store, std::move(cal), o);
    auto drain = [&] {
        auto t0 = std::chrono::steady_clock::now();
        if (auto committed = acct.drain(running)) services.after_drain(*committed);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        stats.update([&](DaemonStats& d) {
            d.last_drain_seconds = s;
            d.drains++;
        });
    };
    drain();  // what was counted while we were away
    sd_notifyf(0, "READY=1\nSTATUS=counting on %s", names.c_str());

    // systemd's watchdog: ping at half its interval, between drains if need be.
    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const auto ping_every = std::chrono::microseconds(watchdog_usec / 2);
    using SteadyClock = std::chrono::steady_clock;
    auto next_drain = SteadyClock::now() + o.interval;
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
                next_drain += o.interval;
                if (next_drain < now) next_drain = now + o.interval;  // we were suspended or very late
            }
            continue;
        }
        if (sig == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            reload(o, acct, services, running);
            next_drain = std::min(next_drain, SteadyClock::now() + o.interval);
            sd_notify(0, "READY=1");
            continue;
        }
        spdlog::info("{}: stopping", strsignal(sig));
        sd_notify(0, "STOPPING=1");
        break;
    }

    drain();
    services.stop();
    metrics.reset();
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

}  // namespace pf
