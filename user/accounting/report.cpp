#include "peakflow/accounting/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "peakflow/common/units.hpp"

namespace pf {
namespace {

// Key order is part of the promised shape, so keep insertion order.
using Json = nlohmann::ordered_json;

std::string fmt(const char* f, auto... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, f, args...);
    return buf;
}

using Figures = ReportFigures;
using Row = ReportRow;

// Bytes summed from store rows, [peak][direction].
struct Raw {
    uint64_t v[2][PF_DIR_COUNT] = {};
    void add(const UsageRow& r) {
        for (int d = 0; d < PF_DIR_COUNT; d++) v[r.peak ? 1 : 0][d] += r.dir[d].bytes;
    }
    void add(const Raw& o) {
        for (int p = 0; p < 2; p++)
            for (int d = 0; d < PF_DIR_COUNT; d++) v[p][d] += o.v[p][d];
    }
    Figures figures() const {
        Figures f;
        f.peak_up = v[1][PF_DIR_TX];
        f.peak_down = v[1][PF_DIR_RX];
        f.offpeak_up = v[0][PF_DIR_TX];
        f.offpeak_down = v[0][PF_DIR_RX];
        f.up = f.peak_up + f.offpeak_up;
        f.down = f.peak_down + f.offpeak_down;
        f.total = f.up + f.down;
        return f;
    }
};

Figures adjust(const Figures& f, const RowAdjust& a) {
    Figures r;
    r.peak_up = apply_adjustment(a.up, f.peak_up);
    r.offpeak_up = apply_adjustment(a.up, f.offpeak_up);
    r.up = apply_adjustment(a.up, f.up);
    r.peak_down = apply_adjustment(a.down, f.peak_down);
    r.offpeak_down = apply_adjustment(a.down, f.offpeak_down);
    r.down = apply_adjustment(a.down, f.down);
    r.total = r.up + r.down;
    return r;
}

std::string describe(const RowAdjust& a) {
    return describe_row_adjustment(a);
}

std::optional<int64_t> as_mac(int64_t key) {
    return key == kIfaceTotal ? std::nullopt : std::optional<int64_t>(key);
}

Row make_row(std::string label, const std::string& iface, int64_t mac, const Raw& raw,
             const std::vector<Adjustment>& adjustments) {
    Row r;
    r.label = std::move(label);
    r.raw = raw.figures();
    r.adj.up = match_adjustment(adjustments, iface, as_mac(mac), PF_DIR_TX);
    r.adj.down = match_adjustment(adjustments, iface, as_mac(mac), PF_DIR_RX);
    r.shown = r.adj.any() ? adjust(r.raw, r.adj) : r.raw;
    return r;
}

struct IfaceBlock {
    std::string name;
    Row total;                // the interface, or the filtered MAC on it, over the whole period
    std::vector<Row> macs;    // period reports: top MACs
    size_t mac_count = 0;     // MACs with rows in the period
    std::vector<Row> series;  // hours / 5-minute reports
    // Month: 95th percentile of 5-minute rates, raw; unset when the month's 5-minute rows
    // no longer add up to its totals (retention removed them).
    std::optional<double> p95_up, p95_down;
    size_t p95_with_data = 0;
};

struct Section {
    std::string kind;  // "day", "month", "hours", "five_minutes"
    std::string title;
    std::string period;
    int64_t from = 0, to = 0;
    std::optional<int> hour;     // five_minutes of one hour
    bool mixed_offsets = false;  // series on a day whose UTC offset changes
    bool p95 = false;
    size_t p95_intervals = 0;
    int64_t p95_until = 0;
    std::vector<IfaceBlock> ifaces;
};

struct Ctx {
    UsageSource& store;
    const Calendar& cal;
    const std::vector<Adjustment>& adjustments;
    const ReportOptions& o;
    int64_t now;
    std::vector<std::string> names;  // interfaces in the report
    int64_t key;                     // the store "MAC" of each interface's main row
};

std::string range_text(const Calendar& cal, int64_t from, int64_t to) {
    return cal.format_local(from) + " to " + cal.format_local(to);
}

Result<Section> period_section(const Ctx& c, std::string kind, std::string period, std::string title, int64_t from,
                               int64_t to) {
    Section s;
    s.kind = std::move(kind);
    s.period = std::move(period);
    s.title = std::move(title);
    s.from = from;
    s.to = to;
    auto per = period_totals(c.store, c.adjustments, c.names, c.o.mac ? std::optional<int64_t>(c.key) : std::nullopt,
                             from, to, c.o.top_macs);
    if (!per) return per.error();
    for (auto& p : *per) {
        IfaceBlock b;
        b.name = std::move(p.name);
        b.total = std::move(p.total);
        b.macs = std::move(p.macs);
        b.mac_count = p.mac_count;
        s.ifaces.push_back(std::move(b));
    }
    return s;
}

// Adds the 95th percentile to a month section: one value per 5-minute interval from the
// month's start up to min(end, now), zero where an interval has no row.
Status add_p95(const Ctx& c, Section& s) {
    s.p95 = true;
    s.p95_until = std::min(s.to, c.now);
    s.p95_intervals =
        s.p95_until > s.from ? static_cast<size_t>((s.p95_until - s.from + kBucketSeconds - 1) / kBucketSeconds) : 0;
    const int64_t end = s.from + static_cast<int64_t>(s.p95_intervals) * kBucketSeconds;
    Filter f{c.o.iface, c.key};
    auto rows = c.store.buckets(f, s.from, end);
    if (!rows) return rows.error();
    // The 5-minute rows must account for every byte of the same range, else retention has
    // removed some of them and a percentile over what is left would be wrong.
    auto totals = c.store.totals(f, s.from, end);
    if (!totals) return totals.error();
    std::map<std::string, Raw> expected;
    for (const auto& r : *totals) expected[r.iface].add(r);
    struct Series {
        std::vector<uint64_t> up, down;
        Raw sum;
        size_t with_data = 0;
    };
    std::map<std::string, Series> per;
    for (const auto& name : c.names) {
        per[name].up.assign(s.p95_intervals, 0);
        per[name].down.assign(s.p95_intervals, 0);
    }
    for (const auto& r : *rows) {
        auto it = per.find(r.iface);
        if (it == per.end()) continue;
        const auto i = static_cast<size_t>((r.ts - s.from) / kBucketSeconds);
        it->second.up[i] += r.dir[PF_DIR_TX].bytes;
        it->second.down[i] += r.dir[PF_DIR_RX].bytes;
        it->second.sum.add(r);
        it->second.with_data++;
    }
    for (auto& b : s.ifaces) {
        auto& ser = per[b.name];
        const Figures have = ser.sum.figures(), want = expected[b.name].figures();
        b.p95_with_data = ser.with_data;
        if (have.up < want.up || have.down < want.down) continue;
        b.p95_up = percentile95_bps(std::move(ser.up));
        b.p95_down = percentile95_bps(std::move(ser.down));
    }
    return Ok{};
}

std::string hhmm_label(const Calendar& cal, int64_t ts, bool with_offset) {
    std::string label = cal.format_local(ts).substr(11, 5);
    if (!with_offset) return label;
    const int off = cal.utc_offset_seconds(ts);
    const int a = off < 0 ? -off : off;
    return label + fmt(" UTC%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

// Hours or 5-minute intervals: `starts` are the row starts, `rows` the store rows of the
// section's range, each keyed to its row by `row_of`.
void fill_series(const Ctx& c, Section& s, const std::vector<int64_t>& starts, const std::vector<UsageRow>& rows,
                 auto row_of) {
    s.mixed_offsets = c.cal.utc_offset_seconds(s.from) != c.cal.utc_offset_seconds(s.to - 1);
    std::map<std::string, std::map<int64_t, Raw>> sums;
    for (const auto& r : rows) sums[r.iface][row_of(r.ts)].add(r);
    for (const auto& name : c.names) {
        IfaceBlock b;
        b.name = name;
        Raw all;
        auto& per = sums[name];
        for (int64_t t : starts) {
            Row r = make_row(hhmm_label(c.cal, t, s.mixed_offsets), name, c.key, per[t], c.adjustments);
            r.ts = t;
            b.series.push_back(std::move(r));
            all.add(per[t]);
        }
        b.total = make_row(name, name, c.key, all, c.adjustments);
        s.ifaces.push_back(std::move(b));
    }
}

Result<Section> hours_section(const Ctx& c, const LocalDate& d) {
    Section s;
    s.kind = "hours";
    s.period = d.str();
    s.from = c.cal.day_start(d);
    s.to = c.cal.day_end(d);
    // The hours are those the day's buckets fall into: 23 or 25 on a DST day, and the
    // repeated hour of a fall-back is two rows, as the store rolls them up.
    std::vector<int64_t> starts;
    for (int64_t t = s.from; t < s.to; t += kBucketSeconds) {
        const int64_t h = c.cal.hour_start(t);
        if (starts.empty() || starts.back() != h) starts.push_back(h);
    }
    s.title = "Hours of " + s.period + " (" + range_text(c.cal, s.from, s.to) + ", " + std::to_string(starts.size()) +
              " hours)";
    auto rows = c.store.hours(Filter{c.o.iface, c.key}, c.cal, s.from, s.to);
    if (!rows) return rows.error();
    fill_series(c, s, starts, *rows, [](int64_t ts) { return ts; });
    return s;
}

Result<Section> five_minutes_section(const Ctx& c, const LocalDate& d) {
    Section s;
    s.kind = "five_minutes";
    s.period = d.str();
    s.hour = c.o.hour;
    const int64_t day_from = c.cal.day_start(d), day_to = c.cal.day_end(d);
    std::vector<int64_t> starts;
    for (int64_t t = Calendar::bucket_start(day_from); t < day_to; t += kBucketSeconds) {
        // By the local wall clock: the repeated hour of a fall-back gives 24 rows, the
        // skipped one of a spring-forward none.
        if (c.o.hour && std::stoi(c.cal.format_local(t).substr(11, 2)) != *c.o.hour) continue;
        starts.push_back(t);
    }
    if (starts.empty())
        return Error(fmt("hour %02d does not exist on %s in %s", *c.o.hour, s.period.c_str(), c.cal.tz_name().c_str()),
                     "", 0, "the clocks skip it for daylight saving time");
    s.from = starts.front();
    s.to = starts.back() + kBucketSeconds;
    s.title = "5-minute intervals of " + s.period + (c.o.hour ? fmt(", hour %02d", *c.o.hour) : std::string()) + " (" +
              range_text(c.cal, s.from, s.to) + ")";
    auto rows = c.store.buckets(Filter{c.o.iface, c.key}, s.from, s.to);
    if (!rows) return rows.error();
    fill_series(c, s, starts, *rows, [](int64_t ts) { return Calendar::bucket_start(ts); });
    return s;
}

// ---- text ------------------------------------------------------------------------------

// Columns: the first left-aligned, the rest right-aligned, then a bar; note lines in
// between are printed as they are and do not widen the columns.
class TextTable {
  public:
    explicit TextTable(std::vector<std::string> header) { lines_.push_back({std::move(header), "", false}); }
    void row(std::vector<std::string> cells, std::string bar) { lines_.push_back({std::move(cells), bar, false}); }
    void note(std::string text) { lines_.push_back({{std::move(text)}, "", true}); }

    std::string render() const {
        std::vector<size_t> w;
        for (const auto& l : lines_) {
            if (l.is_note) continue;
            w.resize(std::max(w.size(), l.cells.size()), 0);
            for (size_t i = 0; i < l.cells.size(); i++) w[i] = std::max(w[i], l.cells[i].size());
        }
        std::string out;
        for (const auto& l : lines_) {
            std::string line;
            if (l.is_note) {
                line = l.cells[0];
            } else {
                for (size_t i = 0; i < l.cells.size(); i++) {
                    const std::string pad(w[i] - l.cells[i].size(), ' ');
                    if (i > 0) line += "  ";
                    line += i == 0 ? l.cells[i] + pad : pad + l.cells[i];
                }
                if (!l.bar.empty()) line += "  " + l.bar;
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            out += line + "\n";
        }
        return out;
    }

  private:
    struct Line {
        std::vector<std::string> cells;
        std::string bar;
        bool is_note;
    };
    std::vector<Line> lines_;
};

std::string adjusted_note(const Row& r) {
    return "adjusted: " + describe(r.adj) + "; raw total " + human_bytes(r.raw.total);
}

std::string render_period_text(const Ctx& c, const Section& s) {
    TextTable t(
        {"interface", "peak up", "peak down", "off-peak up", "off-peak down", "total up", "total down", "total"});
    uint64_t max = 0;
    for (const auto& b : s.ifaces) {
        max = std::max(max, b.total.shown.total);
        for (const auto& m : b.macs) max = std::max(max, m.shown.total);
    }
    auto cells = [](const std::string& label, const Figures& f) {
        return std::vector<std::string>{label,
                                        human_bytes(f.peak_up),
                                        human_bytes(f.peak_down),
                                        human_bytes(f.offpeak_up),
                                        human_bytes(f.offpeak_down),
                                        human_bytes(f.up),
                                        human_bytes(f.down),
                                        human_bytes(f.total)};
    };
    for (const auto& b : s.ifaces) {
        t.row(cells(b.name, b.total.shown), text_bar(b.total.shown.total, max));
        if (b.total.adj.any()) t.note("  " + adjusted_note(b.total));
        if (s.p95) {
            if (b.p95_up && b.p95_down)
                t.note("  95th percentile: up " + human_rate(*b.p95_up) + ", down " + human_rate(*b.p95_down));
            else
                t.note("  95th percentile: n/a, 5-minute rows of this month were removed (retention)");
        }
        for (const auto& m : b.macs) {
            t.row(cells("  " + m.label, m.shown), text_bar(m.shown.total, max));
            if (m.adj.any()) t.note("    " + adjusted_note(m));
        }
        if (const size_t more = b.mac_count - b.macs.size(); more > 0)
            t.note(fmt("  (%zu more MAC%s)", more, more == 1 ? "" : "s"));
    }
    std::string out = s.title + "\n";
    if (s.ifaces.empty()) return out + "no interfaces\n";
    out += t.render();
    if (s.p95)
        out +=
            fmt("95th percentile: nearest rank over %zu 5-minute intervals, %s to %s; intervals without data "
                "count as 0; raw bytes, before adjustments\n",
                s.p95_intervals, c.cal.format_local(s.from).c_str(), c.cal.format_local(s.p95_until).c_str());
    return out;
}

std::string render_series_text(const Ctx& c, const Section& s) {
    std::string out = s.title + "\n";
    if (s.ifaces.empty()) return out + "no interfaces\n";
    for (const auto& b : s.ifaces) {
        out += "\n" + b.name + (c.o.mac ? ", peer MAC " + format_mac(*c.o.mac) : std::string()) + "\n";
        if (b.total.adj.any()) out += "adjusted, every row: " + describe(b.total.adj) + "\n";
        TextTable t(
            {s.kind == "hours" ? "hour" : "time", "peak up", "peak down", "off-peak up", "off-peak down", "total"});
        uint64_t max = 0;
        for (const auto& r : b.series) max = std::max(max, r.shown.total);
        auto cells = [](const std::string& label, const Figures& f) {
            return std::vector<std::string>{label,
                                            human_bytes(f.peak_up),
                                            human_bytes(f.peak_down),
                                            human_bytes(f.offpeak_up),
                                            human_bytes(f.offpeak_down),
                                            human_bytes(f.total)};
        };
        for (const auto& r : b.series) t.row(cells(r.label, r.shown), text_bar(r.shown.total, max));
        t.row(cells("total", b.total.shown), "");
        out += t.render();
    }
    return out;
}

std::string render_text(const Ctx& c, const std::vector<Section>& sections, const std::string& message) {
    std::string out =
        "peakflow report, time zone " + c.cal.tz_name() + ", generated " + c.cal.format_local(c.now) + "\n";
    std::string peak;
    for (const auto& w : c.cal.windows()) peak += (peak.empty() ? "" : ", ") + format_peak_window(w);
    out += "up = sent by this host (tx), down = received (rx); peak " + (peak.empty() ? "none" : peak) + "\n";
    if (c.o.mac)
        out += "peer MAC " + format_mac(*c.o.mac) + " only: its rows on each interface, not the interface totals\n";
    if (!message.empty()) return out + "\n" + message + "\n";
    for (const auto& s : sections)
        out += "\n" + (s.kind == "day" || s.kind == "month" ? render_period_text(c, s) : render_series_text(c, s));
    return out;
}

// ---- JSON ------------------------------------------------------------------------------

void put_figures(Json& j, const Figures& f) {
    j["peak_up_bytes"] = f.peak_up;
    j["peak_down_bytes"] = f.peak_down;
    j["offpeak_up_bytes"] = f.offpeak_up;
    j["offpeak_down_bytes"] = f.offpeak_down;
    j["up_bytes"] = f.up;
    j["down_bytes"] = f.down;
    j["total_bytes"] = f.total;
}

Json adjustment_json(const Adjustment* a) {
    if (!a) return nullptr;
    Json j;
    j["factor"] = a->factor;
    j["offset_bytes"] = a->offset_bytes;
    j["iface"] = a->iface.empty() ? Json(nullptr) : Json(a->iface);
    j["mac"] = a->mac ? Json(format_mac(*a->mac)) : Json(nullptr);
    j["direction"] = a->direction;
    return j;
}

// full: with the description and the adjustments themselves (interface and MAC rows);
// series rows carry only the figures, their interface says how.
Json adjusted_json(const Row& r, bool full) {
    if (!r.adj.any()) return nullptr;
    Json j;
    put_figures(j, r.shown);
    if (full) {
        j["description"] = describe(r.adj);
        j["up"] = adjustment_json(r.adj.up);
        j["down"] = adjustment_json(r.adj.down);
    }
    return j;
}

void put_time(Json& j, const std::string& key, const Calendar& cal, int64_t t) {
    j[key] = cal.format_local(t);
    j[key + "_epoch"] = t;
}

Json p95_json(const std::optional<double>& v) {
    return v ? Json(*v) : Json(nullptr);
}

Json section_json(const Ctx& c, const Section& s) {
    Json j;
    j["kind"] = s.kind;
    j["period"] = s.period;
    if (s.kind == "five_minutes") j["hour"] = s.hour ? Json(*s.hour) : Json(nullptr);
    put_time(j, "from", c.cal, s.from);
    put_time(j, "to", c.cal, s.to);
    if (s.p95) {
        j["p95_intervals"] = s.p95_intervals;
        put_time(j, "p95_until", c.cal, s.p95_until);
    }
    Json ifs = Json::array();
    for (const auto& b : s.ifaces) {
        Json i;
        i["name"] = b.name;
        i["mac"] = c.o.mac ? Json(format_mac(*c.o.mac)) : Json(nullptr);
        put_figures(i, b.total.raw);
        i["adjusted"] = adjusted_json(b.total, true);
        if (s.kind == "day" || s.kind == "month") {
            Json macs = Json::array();
            for (const auto& m : b.macs) {
                Json mj;
                mj["mac"] = m.label;
                put_figures(mj, m.raw);
                mj["adjusted"] = adjusted_json(m, true);
                macs.push_back(std::move(mj));
            }
            i["macs"] = std::move(macs);
            i["mac_count"] = b.mac_count;
        }
        if (s.p95) {
            i["p95_up_bps"] = p95_json(b.p95_up);
            i["p95_down_bps"] = p95_json(b.p95_down);
            i["p95_intervals_with_data"] = b.p95_with_data;
        }
        if (!b.series.empty()) {
            Json rows = Json::array();
            for (const auto& r : b.series) {
                Json rj;
                put_time(rj, "start", c.cal, r.ts);
                rj["utc_offset_seconds"] = c.cal.utc_offset_seconds(r.ts);
                put_figures(rj, r.raw);
                rj["adjusted"] = adjusted_json(r, false);
                rows.push_back(std::move(rj));
            }
            i["rows"] = std::move(rows);
        }
        ifs.push_back(std::move(i));
    }
    j["interfaces"] = std::move(ifs);
    return j;
}

std::string render_json(const Ctx& c, const std::vector<Section>& sections, const std::string& message) {
    static const char* kinds[] = {"summary", "day", "month", "hours", "five_minutes"};
    Json j;
    j["kind"] = kinds[c.o.kind];
    j["timezone"] = c.cal.tz_name();
    put_time(j, "generated_at", c.cal, c.now);
    Json windows = Json::array();
    for (const auto& w : c.cal.windows()) windows.push_back(format_peak_window(w));
    j["peak_windows"] = std::move(windows);
    j["billing_day"] = c.cal.billing_day();
    j["filter"] = {{"iface", c.o.iface ? Json(*c.o.iface) : Json(nullptr)},
                   {"mac", c.o.mac ? Json(format_mac(*c.o.mac)) : Json(nullptr)}};
    if (!message.empty()) j["message"] = message;
    Json reports = Json::array();
    for (const auto& s : sections) reports.push_back(section_json(c, s));
    j["reports"] = std::move(reports);
    return j.dump() + "\n";
}

Status check_options(const ReportOptions& o) {
    using K = ReportOptions::Kind;
    if (o.hour && o.kind != K::FiveMinutes) return Error("an hour only applies to the 5-minute report");
    if (o.hour && (*o.hour < 0 || *o.hour > 23))
        return Error("invalid hour " + std::to_string(*o.hour), "", 0, "use a local hour 0-23");
    if (o.day && (o.kind == K::Summary || o.kind == K::Month))
        return Error("a day only applies to the day, hours and 5-minute reports");
    if (o.month && o.kind != K::Month) return Error("a billing month only applies to the month report");
    return Ok{};
}

}  // namespace

std::string describe_row_adjustment(const RowAdjust& a) {
    if (a.up == a.down) return describe_adjustment(*a.up);
    auto part = [](const char* dir, const Adjustment* x) {
        return std::string(dir) + " " + (x ? describe_adjustment(*x) : std::string("not adjusted"));
    };
    return part("up", a.up) + "; " + part("down", a.down);
}

Result<std::vector<PeriodTotals>> period_totals(UsageSource& store, const std::vector<Adjustment>& adjustments,
                                                const std::vector<std::string>& names, std::optional<int64_t> mac_key,
                                                int64_t from, int64_t to, int top_macs) {
    const int64_t key = mac_key.value_or(kIfaceTotal);
    auto rows = store.totals(Filter{std::nullopt, mac_key}, from, to);
    if (!rows) return rows.error();
    std::map<std::string, std::map<int64_t, Raw>> sums;
    for (const auto& r : *rows) sums[r.iface][r.mac].add(r);
    std::vector<PeriodTotals> out;
    for (const auto& name : names) {
        PeriodTotals b;
        b.name = name;
        auto& per_mac = sums[name];
        b.total = make_row(name, name, key, per_mac[key], adjustments);
        if (!mac_key) {
            std::vector<std::pair<int64_t, Figures>> macs;
            for (const auto& [mac, raw] : per_mac)
                if (mac != kIfaceTotal) macs.emplace_back(mac, raw.figures());
            std::sort(macs.begin(), macs.end(), [](const auto& a, const auto& b) {
                return a.second.total != b.second.total ? a.second.total > b.second.total : a.first < b.first;
            });
            b.mac_count = macs.size();
            size_t n = top_macs < 0 ? macs.size() : std::min(macs.size(), static_cast<size_t>(top_macs));
            for (size_t i = 0; i < n; i++)
                b.macs.push_back(make_row(format_mac(mac_from_int(macs[i].first)), name, macs[i].first,
                                          per_mac[macs[i].first], adjustments));
        }
        out.push_back(std::move(b));
    }
    return out;
}

const Adjustment* match_adjustment(const std::vector<Adjustment>& adjustments, const std::string& iface,
                                   std::optional<int64_t> mac, int dir) {
    const Adjustment* best = nullptr;
    int best_rank = -1;
    const char* dir_name = dir == PF_DIR_RX ? "rx" : "tx";
    for (const auto& a : adjustments) {
        if (!a.iface.empty() && a.iface != iface) continue;
        if (a.mac && (!mac || mac_to_int(*a.mac) != *mac)) continue;
        const bool one_way = a.direction == "rx" || a.direction == "tx";
        if (one_way && a.direction != dir_name) continue;
        const int rank = ((a.mac ? 4 : 0) + (a.iface.empty() ? 0 : 2)) * 2 + (one_way ? 1 : 0);
        // Strictly greater: at equal rank the first listed stays.
        if (rank > best_rank) {
            best = &a;
            best_rank = rank;
        }
    }
    return best;
}

uint64_t apply_adjustment(const Adjustment* a, uint64_t raw) {
    if (!a) return raw;
    // long double holds every uint64_t exactly, so a factor of 1 returns raw unchanged.
    const long double v =
        static_cast<long double>(raw) * static_cast<long double>(a->factor) + static_cast<long double>(a->offset_bytes);
    if (!(v > 0)) return 0;  // also NaN
    if (v >= 18446744073709551615.0L) return UINT64_MAX;
    return static_cast<uint64_t>(std::floor(v + 0.5L));
}

std::string describe_adjustment(const Adjustment& a) {
    const uint64_t off =
        a.offset_bytes < 0 ? 0 - static_cast<uint64_t>(a.offset_bytes) : static_cast<uint64_t>(a.offset_bytes);
    std::string scope;
    if (!a.iface.empty()) scope = "iface " + a.iface;
    if (a.mac) scope += (scope.empty() ? "" : ", ") + std::string("mac ") + format_mac(*a.mac);
    if (scope.empty()) scope = "global";
    if (a.direction == "rx" || a.direction == "tx") scope += ", " + a.direction;
    return fmt("\u00d7%g %c", a.factor, a.offset_bytes < 0 ? '-' : '+') + human_bytes(off) + " (" + scope + ")";
}

std::string text_bar(uint64_t value, uint64_t max, int width) {
    if (max == 0 || width <= 0) return "";
    value = std::min(value, max);
    const auto w = static_cast<unsigned __int128>(width);
    // Round half up in integers: value * width can exceed 64 bits.
    auto n = static_cast<size_t>((value * w * 2 + max) / (static_cast<unsigned __int128>(max) * 2));
    if (value > 0 && n == 0) n = 1;
    return std::string(n, '#');
}

Status run_report(UsageSource& store, const Calendar& cal, const std::vector<Adjustment>& adjustments,
                  const ReportOptions& o, int64_t now, std::ostream& out) {
    if (auto st = check_options(o); !st) return st;
    auto known = store.interfaces();
    if (!known) return known.error();
    std::string message;
    std::vector<std::string> names;
    if (known->empty()) {
        if (o.kind != ReportOptions::Summary)
            return Error("no traffic recorded yet in " + store.describe(), "", 0, store.no_data_hint());
        message = "No traffic recorded yet in " + store.describe() + ": " + store.no_data_hint() + ".";
    } else if (o.iface) {
        if (std::find(known->begin(), known->end(), *o.iface) == known->end()) {
            std::string list;
            for (const auto& n : *known) list += (list.empty() ? "" : ", ") + n;
            return Error("no history for interface '" + *o.iface + "'", "", 0, "interfaces with history: " + list);
        }
        names = {*o.iface};
    } else {
        names = *known;
    }
    Ctx c{store, cal, adjustments, o, now, names, o.mac ? mac_to_int(*o.mac) : kIfaceTotal};

    std::vector<Section> sections;
    auto add = [&](Result<Section> s) -> Status {
        if (!s) return s.error();
        sections.push_back(std::move(*s));
        return Ok{};
    };
    auto add_day = [&](const LocalDate& d, const std::string& label) {
        const int64_t from = cal.day_start(d), to = cal.day_end(d);
        return add(period_section(c, "day", d.str(), label + " " + d.str() + " (" + range_text(cal, from, to) + ")",
                                  from, to));
    };
    auto add_month = [&](const BillingMonth& m, const std::string& label) -> Status {
        const int64_t from = cal.month_start(m), to = cal.month_end(m);
        if (auto st =
                add(period_section(c, "month", m.str(), label + " (" + range_text(cal, from, to) + ")", from, to));
            !st)
            return st;
        return add_p95(c, sections.back());
    };
    const LocalDate day = o.day.value_or(cal.local_date(now));
    Status st = Ok{};
    switch (o.kind) {
        case ReportOptions::Summary: {
            const BillingMonth m = cal.billing_month(now);
            st = add_day(day, "Today");
            if (st) st = add_month(m, "Billing month " + m.str() + ", to date");
            break;
        }
        case ReportOptions::Day: st = add_day(day, "Day"); break;
        case ReportOptions::Month: {
            const BillingMonth m = o.month.value_or(cal.billing_month(now));
            st = add_month(m, "Billing month " + m.str());
            break;
        }
        case ReportOptions::Hours: st = add(hours_section(c, day)); break;
        case ReportOptions::FiveMinutes: st = add(five_minutes_section(c, day)); break;
    }
    if (!st) return st;
    out << (o.json ? render_json(c, sections, message) : render_text(c, sections, message));
    return Ok{};
}

}  // namespace pf
