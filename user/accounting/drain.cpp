#include "peakflow/accounting/drain.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>

#include "peakflow/common/units.hpp"

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

Accountant::Accountant(Store& store, Calendar cal, const Retention& retention, std::function<int64_t()> clock,
                       const std::string& procfs)
    // A reboot re-creates the maps and ends this process: the boot id is read once.
    : store_(store),
      cal_(std::move(cal)),
      retention_(retention),
      clock_(std::move(clock)),
      boot_id_(read_boot_id(procfs)) {}

void Accountant::reconfigure(Calendar cal, const Retention& retention) {
    cal_ = std::move(cal);
    retention_ = retention;
    rolled_up_ = false;  // roll up and apply retention under the new rules at the next drain
}

std::optional<int64_t> Accountant::drain(const std::vector<Drainer*>& drainers) {
    int64_t now = clock_();
    events_.clear();
    for (Drainer* dr : drainers) {
        auto d = dr->drain();
        if (!d) {
            spdlog::error("drain {}: {}", dr->ifname(), d.error().message());
            continue;
        }
        spdlog::debug("drain {}", summarize(*d));
        events_[dr->ifname()] = d->events;
        DrainRows rows;
        rows.iface = dr->ifname();
        rows.map_id = dr->generation();
        rows.boot_id = boot_id_;
        rows.new_generation = dr->take_new_generation();
        append_bucket_rows(*d, cal_, now, rows);
        auto it =
            std::find_if(pending_.begin(), pending_.end(), [&](const DrainRows& p) { return p.iface == rows.iface; });
        if (it == pending_.end())
            pending_.push_back(std::move(rows));
        else
            merge_drain_rows(*it, rows);
    }
    if (auto st = store_.commit_drain(pending_); !st) {
        size_t n = 0;
        for (const auto& p : pending_) n += p.rows.size();
        spdlog::warn("could not write the history ({} rows kept for the next drain): {}", n, st.error().message());
        if (const DroppedRows d = bound_pending_rows(pending_, kPendingRowsCap); d.rows) {
            dropped_.rows += d.rows;
            dropped_.bytes += d.bytes;
            spdlog::error(
                "history: {} rows ({} bytes) dropped to keep at most {} in memory while the database fails ({} rows, "
                "{} bytes since start)",
                d.rows, d.bytes, kPendingRowsCap, dropped_.rows, dropped_.bytes);
        }
        return std::nullopt;
    }
    pending_.clear();
    LocalDate today = cal_.local_date(now);
    if (rolled_up_ && today != last_day_) log_day_summary(last_day_);
    if (!rolled_up_ || today != last_day_) {
        if (auto st = store_.finalize(cal_, now); !st) spdlog::warn("roll-up: {}", st.error().message());
        if (auto st = store_.apply_retention(retention_, now); !st) spdlog::warn("retention: {}", st.error().message());
        rolled_up_ = true;
        last_day_ = today;
    }
    return now;
}

// One line per interface for a day that just ended, to the "traffic" log if configured.
void Accountant::log_day_summary(const LocalDate& day) {
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

// Continue from the snapshots stored with the last committed drain, if they belong to
// the same kernel maps (same boot, same map id); otherwise the counters started again.
bool resume(Store& store, Drainer& drainer, const std::string& boot_id) {
    auto res = store.load_resume(drainer.ifname());
    if (!res) throw FatalError(res.error());
    uint32_t gen = drainer.generation();
    if (!res->found || res->boot_id != boot_id || res->map_id != gen) {
        if (res->found)
            spdlog::info("{}: kernel counters were re-created ({}); counting from zero", drainer.ifname(),
                         res->boot_id != boot_id ? "reboot" : "maps replaced");
        drainer.mark_new_generation();
        return false;
    }
    auto& t = drainer.tracker();
    t.observe_map_generation(gen);
    for (const auto& [mac, snap] : res->snapshots) {
        for (uint8_t dir = 0; dir < PF_DIR_COUNT; dir++) {
            if (mac == kIfaceTotal)
                t.seed(DeltaKey{DeltaKey::Iface, {}, dir}, snap[dir]);
            else
                t.seed(DeltaKey{DeltaKey::Mac, mac_from_int(mac), dir}, snap[dir]);
        }
    }
    spdlog::info("{}: resuming from {} stored counter snapshots", drainer.ifname(), res->snapshots.size());
    return true;
}

}  // namespace pf
