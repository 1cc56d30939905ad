#include "peakflow/daemon.hpp"

#include <bpf/libbpf.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "peakflow.skel.h"
#include "peakflow/ifaces.hpp"
#include "peakflow/privileges.hpp"
#include "peakflow/units.hpp"

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
    for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++)
        d.dir[dir] = tracker_.update(DeltaKey{DeltaKey::Iface, {}, dir}, totals->dir[dir]);
    for (const auto& row : *macs) {
        MacDelta md;
        md.mac = row.mac;
        bool changed = false;
        for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++) {
            md.dir[dir] = tracker_.update(DeltaKey{DeltaKey::Mac, row.mac, dir}, row.dir[dir]);
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

namespace {

struct Running {
    AttachedInterface attached;
    Drainer drainer;
};

void drain_all(std::vector<Running>& running) {
    for (auto& r : running) {
        auto d = r.drainer.drain();
        if (!d) {
            spdlog::error("drain {}: {}", r.drainer.ifname(), d.error().message());
            continue;
        }
        spdlog::debug("drain {}", summarize(*d));
    }
}

}  // namespace

int run_daemon(const DaemonOptions& o) {
    if (auto st = check_attach_privileges(); !st) throw FatalError(st.error());

    std::vector<std::string> ifaces = o.ifaces;
    if (ifaces.empty()) {
        ifaces.push_back(detect_default_interface(o.paths).take());
        spdlog::info("no interface named: using {}, which carries the default route", ifaces.back());
    }

    // Block the signals we wait for before anything is attached, so none is lost.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    std::vector<Running> running;
    for (const auto& name : ifaces) {
        auto ai = attach_interface(name, o.attach, o.paths);
        if (!ai) {
            // Undo this run's fresh attachments so nothing is left half-done.
            for (auto& r : running) {
                if (r.attached.reused_pins) continue;
                std::string n = r.attached.ifname;
                r.attached.lock.reset();
                (void)detach_interface(n, o.paths);
            }
            throw FatalError(ai.error());
        }
        auto* skel = ai->skel.get();
        auto maps = MapSet::from_fds(bpf_map__fd(skel->maps.pf_iface), bpf_map__fd(skel->maps.pf_mac),
                                     bpf_map__fd(skel->maps.pf_flow), bpf_map__fd(skel->maps.pf_events))
                        .take();
        running.push_back(Running{std::move(ai.value()), Drainer(name, std::move(maps))});
    }

    std::string names;
    for (const auto& r : running) names += (names.empty() ? "" : ", ") + r.attached.ifname;
    spdlog::info("ready: counting on {} (drain every {} ms)", names, o.interval.count());

    drain_all(running);  // baseline snapshot
    auto next = std::chrono::steady_clock::now() + o.interval;
    for (;;) {
        auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(next - std::chrono::steady_clock::now());
        if (wait.count() < 0) wait = std::chrono::nanoseconds(0);
        timespec ts{static_cast<time_t>(wait.count() / 1000000000), static_cast<long>(wait.count() % 1000000000)};
        siginfo_t info{};
        int sig = sigtimedwait(&sigs, &info, &ts);
        if (sig < 0) {
            if (errno != EAGAIN && errno != EINTR) spdlog::warn("sigtimedwait: {}", std::strerror(errno));
            if (errno == EAGAIN) {
                drain_all(running);
                next += o.interval;
                auto now = std::chrono::steady_clock::now();
                if (next < now) next = now + o.interval;  // we were suspended or very late
            }
            continue;
        }
        if (sig == SIGHUP) {
            spdlog::info("SIGHUP: nothing to reload yet");
            continue;
        }
        spdlog::info("{}: stopping", strsignal(sig));
        break;
    }

    drain_all(running);
    int rc = 0;
    for (auto& r : running) {
        std::string n = r.attached.ifname;
        r.attached.lock.reset();
        r.attached.skel.reset();
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
