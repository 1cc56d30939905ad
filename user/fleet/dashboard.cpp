#include "peakflow/fleet/dashboard.hpp"
#include "peakflow/kernel/maps.hpp"

#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>

#include "peakflow/accounting/report.hpp"
#include "peakflow/fleet/central_store.hpp"
#include "peakflow/fleet/collector_server.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

std::string error_json(const std::string& message) {
    return Json{{"status", "error"}, {"message", message}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ApiAnswer ok(const Json& j) {
    return {200, j.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

ApiAnswer fail(int status, const std::string& message) {
    return {status, error_json(message)};
}

std::string content_type_of(const std::string& name) {
    static const std::pair<const char*, const char*> kTypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (const auto& [ext, type] : kTypes) {
        const std::string e = ext;
        if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return type;
    }
    return "application/octet-stream";
}

// True when an If-None-Match value names `etag` (a list, weak or strong, or *).
bool etag_matches(const std::string& header, const std::string& etag) {
    const std::string opaque = etag.substr(2);  // W/"x" -> "x"
    size_t start = 0;
    while (start < header.size()) {
        size_t end = header.find(',', start);
        if (end == std::string::npos) end = header.size();
        std::string t = header.substr(start, end - start);
        t.erase(0, t.find_first_not_of(" \t"));
        t.erase(t.find_last_not_of(" \t") + 1);
        if (t == "*" || t == etag || t == opaque || (t.rfind("W/", 0) == 0 && t.substr(2) == opaque)) return true;
        start = end + 1;
    }
    return false;
}

// The interface totals of usage rows, summed: up is what the hosts sent (tx).
void add_row(ReportFigures& f, const UsageRow& r) {
    const uint64_t up = r.dir[PF_DIR_TX].bytes, down = r.dir[PF_DIR_RX].bytes;
    (r.peak ? f.peak_up : f.offpeak_up) += up;
    (r.peak ? f.peak_down : f.offpeak_down) += down;
    f.up += up;
    f.down += down;
    f.total += up + down;
}

// The keys of `report --json`'s figures.
void put_figures(Json& j, const ReportFigures& f) {
    static const std::pair<const char*, uint64_t ReportFigures::*> kKeys[] = {
        {"peak_up_bytes", &ReportFigures::peak_up},
        {"peak_down_bytes", &ReportFigures::peak_down},
        {"offpeak_up_bytes", &ReportFigures::offpeak_up},
        {"offpeak_down_bytes", &ReportFigures::offpeak_down},
        {"up_bytes", &ReportFigures::up},
        {"down_bytes", &ReportFigures::down},
        {"total_bytes", &ReportFigures::total},
    };
    for (const auto& [key, member] : kKeys) j[key] = f.*member;
}

Json figures_json(const ReportFigures& f) {
    Json j = Json::object();
    put_figures(j, f);
    return j;
}

void put_range(Json& j, const Calendar& cal, int64_t from, int64_t to) {
    j["from"] = cal.format_local(from);
    j["from_epoch"] = from;
    j["to"] = cal.format_local(to);
    j["to_epoch"] = to;
}

const Filter kIfaceTotals{std::nullopt, kIfaceTotal};
constexpr size_t kDayPeers = 500;  // MAC rows of a day view: a page, not an export

// 5-minute rows as chart points: those of a bucket summed (over interfaces), oldest first;
// `totals` gets their sum.
Json bucket_points(const std::vector<UsageRow>& rows, const Calendar& cal, ReportFigures& totals) {
    std::map<int64_t, std::pair<bool, ReportFigures>> per;
    for (const auto& r : rows) {
        auto& p = per[r.ts];
        p.first = p.first || r.peak;
        add_row(p.second, r);
        add_row(totals, r);
    }
    Json points = Json::array();
    for (const auto& [ts, p] : per)
        points.push_back({{"start", cal.format_local(ts)},
                          {"start_epoch", ts},
                          {"peak", p.first},
                          {"up_bytes", p.second.up},
                          {"down_bytes", p.second.down}});
    return points;
}

// The 95th percentile of a billing month per interface, as `report --month --json`
// computes it (the same code: 5-minute rates from the month's start to min(end, now), zero
// where no row, nearest rank, bit/s; null when retention removed some of the rows). Null
// when the selection has no traffic at all.
Result<Json> month_p95(UsageSource& src, const Calendar& cal, const BillingMonth& m, int64_t now) {
    auto known = src.interfaces();
    if (!known) return known.error();
    if (known->empty()) return Json(nullptr);
    ReportOptions o;
    o.kind = ReportOptions::Month;
    o.month = m;
    o.json = true;
    o.top_macs = 0;
    std::ostringstream out;
    if (auto st = run_report(src, cal, {}, o, now, out); !st) return st.error();
    const Json r = Json::parse(out.str())["reports"].at(0);
    Json ifaces = Json::array();
    for (const auto& i : r["interfaces"])
        ifaces.push_back({{"iface", i["name"]},
                          {"up_bps", i["p95_up_bps"]},
                          {"down_bps", i["p95_down_bps"]},
                          {"intervals_with_data", i["p95_intervals_with_data"]}});
    return Json{{"intervals", r["p95_intervals"]},
                {"until", r["p95_until"]},
                {"until_epoch", r["p95_until_epoch"]},
                {"interfaces", std::move(ifaces)}};
}

// The central push switch of `agent` (its own value, else the fleet's) among `values`
// (central_key_values of push.enabled); nullopt: not set centrally.
std::optional<bool> central_push_switch(const std::map<std::string, std::string>& values, const std::string& agent) {
    auto it = values.find(agent);
    if (it == values.end()) it = values.find("");
    if (it == values.end()) return std::nullopt;
    Json v = Json::parse(it->second, nullptr, false);
    if (!v.is_boolean()) return std::nullopt;
    return v.get<bool>();
}

}  // namespace

// ---- static files ----------------------------------------------------------------------

const std::vector<std::pair<std::string, std::string>>& dashboard_security_headers() {
    static const std::vector<std::pair<std::string, std::string>> h = {
        {"Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
         "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
    };
    return h;
}

DashboardFiles::DashboardFiles(const std::vector<EmbeddedFile>& files) {
    for (const auto& f : files) {
        File out;
        out.content_type = content_type_of(f.name);
        out.body.assign(reinterpret_cast<const char*>(f.data), f.size);
        // Weak: the server compresses per request, and one tag stands for every encoding.
        out.etag = "W/\"" + sha256_hex(out.body).substr(0, 32) + "\"";
        const std::string name = f.name;
        if (name == "index.html") by_path_["/"] = out;
        by_path_["/ui/" + name] = std::move(out);
    }
}

std::string DashboardFiles::etag(const std::string& path) const {
    auto it = by_path_.find(path);
    return it == by_path_.end() ? "" : it->second.etag;
}

WebAnswer DashboardFiles::get(const std::string& path, const std::string& if_none_match) const {
    WebAnswer a;
    auto it = by_path_.find(path);
    if (it == by_path_.end()) {
        a.status = 404;
        a.content_type = "application/json";
        a.body = error_json("no such page or file: " + path);
        return a;
    }
    const File& f = it->second;
    a.headers = dashboard_security_headers();
    // Revalidated every time (a cheap 304): an upgraded collector's files show at once.
    a.headers.emplace_back("Cache-Control", "no-cache");
    a.headers.emplace_back("ETag", f.etag);
    a.headers.emplace_back("Vary", "Accept-Encoding");
    if (!if_none_match.empty() && etag_matches(if_none_match, f.etag)) {
        a.status = 304;
        return a;
    }
    a.content_type = f.content_type;
    a.body = f.body;
    return a;
}

// ---- JSON ------------------------------------------------------------------------------

nlohmann::ordered_json agent_row_json(const AgentRow& a, const Calendar& cal, int64_t now, int offline_after) {
    return {{"name", a.name},
            {"node", a.node},
            {"host", a.host},
            {"iface", a.iface},
            {"mac", a.mac},
            {"version", a.version},
            {"last_seen", a.last_seen ? Json(cal.format_local(*a.last_seen)) : Json(nullptr)},
            {"last_seen_epoch", a.last_seen ? Json(*a.last_seen) : Json(nullptr)},
            {"state", agent_state(a, now, offline_after)},
            {"backlog", a.backlog}};
}

ApiAnswer dashboard_agents(const DashboardContext& c) {
    auto agents = c.store.agents();
    if (!agents) return fail(500, "cannot read the agents: " + agents.error().message());
    // One read of the switches for all agents, not one per agent.
    auto switches = central_key_values(c.store, "push.enabled");
    if (!switches) return fail(500, "cannot read the central config: " + switches.error().message());
    Json list = Json::array();
    for (const auto& a : *agents) {
        Json row = agent_row_json(a, c.cal, c.now, c.offline_after);
        row["interval"] = a.interval;
        row["revoked"] = a.revoked;
        const auto sw = central_push_switch(*switches, a.name);
        row["push_enabled"] = sw ? Json(*sw) : Json(nullptr);
        list.push_back(std::move(row));
    }
    return ok(Json{{"time", c.cal.format_local(c.now)}, {"time_epoch", c.now}, {"agents", std::move(list)}});
}

ApiAnswer dashboard_traffic(const DashboardContext& c, const std::multimap<std::string, std::string>& params) {
    static const std::set<std::string> kKnown = {"agent", "node", "day", "month"};
    std::map<std::string, std::string> p;
    for (const auto& [k, v] : params) {
        if (!kKnown.count(k)) return fail(400, "unknown parameter '" + k + "': use agent, node, day or month");
        if (!p.emplace(k, v).second) return fail(400, "parameter '" + k + "' given twice");
    }
    auto get = [&](const char* k) { return p.count(k) ? p[k] : std::string(); };
    const std::string agent = get("agent"), node = get("node"), day = get("day"), month = get("month");
    if (!agent.empty() && !node.empty()) return fail(400, "give agent or node, not both");
    if (!day.empty() && !month.empty()) return fail(400, "give day or month, not both");
    FleetStore::Selection sel;
    if (!agent.empty()) {
        auto a = c.store.agent(agent);
        if (!a) return fail(500, "cannot read the agents: " + a.error().message());
        if (!*a) return fail(404, "no agent named '" + agent + "'");
        sel.agent = agent;
    }
    if (!node.empty()) {
        auto all = c.store.agents();
        if (!all) return fail(500, "cannot read the agents: " + all.error().message());
        if (std::none_of(all->begin(), all->end(), [&](const AgentRow& a) { return a.node == node; }))
            return fail(404, "no agent in node '" + node + "'");
        sel.node = node;
    }
    auto src = c.store.usage(sel);
    Json j;
    j["agent"] = agent.empty() ? Json(nullptr) : Json(agent);
    j["node"] = node.empty() ? Json(nullptr) : Json(node);
    ReportFigures totals;
    if (!month.empty()) {
        auto m = parse_billing_month(month);
        if (!m) return fail(400, "month: " + m.error().message());
        const int64_t from = c.cal.month_start(*m), to = c.cal.month_end(*m);
        auto rows = src->hours(kIfaceTotals, c.cal, from, to);
        if (!rows) return fail(500, "cannot read the traffic: " + rows.error().message());
        std::map<LocalDate, ReportFigures> per_day;
        for (const auto& r : *rows) {
            add_row(per_day[c.cal.local_date(r.ts)], r);
            add_row(totals, r);
        }
        Json days = Json::array();
        for (LocalDate d = c.cal.local_date(from); c.cal.day_start(d) < to; d = Calendar::next_day(d)) {
            Json dj{{"day", d.str()}, {"start_epoch", c.cal.day_start(d)}};
            put_figures(dj, per_day[d]);
            days.push_back(std::move(dj));
        }
        auto p95 = month_p95(*src, c.cal, *m, c.now);
        if (!p95) return fail(500, "cannot compute the 95th percentile: " + p95.error().message());
        j["view"] = "month";
        j["month"] = m->str();
        put_range(j, c.cal, from, to);
        j["totals"] = figures_json(totals);
        j["days"] = std::move(days);
        j["p95"] = std::move(*p95);
        return ok(j);
    }
    LocalDate d = c.cal.local_date(c.now);
    if (!day.empty()) {
        auto parsed = parse_local_date(day);
        if (!parsed) return fail(400, "day: " + parsed.error().message());
        d = *parsed;
    }
    const int64_t from = c.cal.day_start(d), to = c.cal.day_end(d);
    auto rows = src->buckets(kIfaceTotals, from, to);
    if (!rows) return fail(500, "cannot read the traffic: " + rows.error().message());
    Json points = bucket_points(*rows, c.cal, totals);
    // The day's peers: each interface's MACs, the largest first (at most kDayPeers).
    auto peer_rows = src->totals(Filter{}, from, to);
    if (!peer_rows) return fail(500, "cannot read the traffic: " + peer_rows.error().message());
    std::map<std::pair<std::string, int64_t>, ReportFigures> per_peer;
    for (const auto& r : *peer_rows)
        if (r.mac != kIfaceTotal) add_row(per_peer[{r.iface, r.mac}], r);
    std::vector<std::pair<std::pair<std::string, int64_t>, ReportFigures>> peers(per_peer.begin(), per_peer.end());
    std::stable_sort(peers.begin(), peers.end(),
                     [](const auto& a, const auto& b) { return a.second.total > b.second.total; });
    Json macs = Json::array();
    for (size_t i = 0; i < peers.size() && i < kDayPeers; i++) {
        Json m{{"iface", peers[i].first.first}, {"mac", format_mac(mac_from_int(peers[i].first.second))}};
        m["up_bytes"] = peers[i].second.up;
        m["down_bytes"] = peers[i].second.down;
        m["total_bytes"] = peers[i].second.total;
        macs.push_back(std::move(m));
    }
    j["view"] = "day";
    j["day"] = d.str();
    put_range(j, c.cal, from, to);
    j["totals"] = figures_json(totals);
    j["points"] = std::move(points);
    j["macs"] = std::move(macs);
    j["macs_total"] = peers.size();
    return ok(j);
}

ApiAnswer dashboard_overview(const DashboardContext& c) {
    auto agents = c.store.agents();
    if (!agents) return fail(500, "cannot read the agents: " + agents.error().message());
    std::map<std::string, int> counts{{"online", 0}, {"offline", 0}, {"never", 0}};
    Json offline = Json::array();
    std::map<std::string, std::string> node_of;
    for (const auto& a : *agents) {
        node_of[a.name] = a.node;
        if (a.revoked) continue;  // a revoked token is an agent taken out of the fleet
        const std::string st = agent_state(a, c.now, c.offline_after);
        counts[st]++;
        if (st == "offline")
            offline.push_back({{"name", a.name},
                               {"node", a.node},
                               {"last_seen", c.cal.format_local(*a.last_seen)},
                               {"last_seen_epoch", *a.last_seen},
                               {"for", human_duration(c.now - *a.last_seen)},
                               {"for_seconds", c.now - *a.last_seen}});
    }
    auto src = c.store.usage({});
    const LocalDate today = c.cal.local_date(c.now);
    const BillingMonth month = c.cal.billing_month(c.now);
    // Today's figures of the fleet and of each agent (interfaces are "agent/iface").
    auto day_rows = src->totals(kIfaceTotals, c.cal.day_start(today), c.cal.day_end(today));
    if (!day_rows) return fail(500, "cannot read the traffic: " + day_rows.error().message());
    ReportFigures day_total;
    std::map<std::string, ReportFigures> per_agent;
    for (const auto& r : *day_rows) {
        add_row(day_total, r);
        add_row(per_agent[r.iface.substr(0, r.iface.find('/'))], r);
    }
    // The month: its days before today (whole days, from the day roll-ups) and today's rows
    // read above.
    auto month_rows = src->totals(kIfaceTotals, c.cal.month_start(month), c.cal.day_start(today));
    if (!month_rows) return fail(500, "cannot read the traffic: " + month_rows.error().message());
    ReportFigures month_total = day_total;
    for (const auto& r : *month_rows) add_row(month_total, r);
    // The last 24 hours: 288 buckets up to and with the one now is in, from the fleet's
    // 5-minute totals.
    const int64_t to = Calendar::bucket_start(c.now) + kBucketSeconds, from = to - 288 * kBucketSeconds;
    ReportFigures day_points_total;
    auto point_rows = c.store.fleet_points(from, to);
    if (!point_rows) return fail(500, "cannot read the traffic: " + point_rows.error().message());
    auto points = bucket_points(*point_rows, c.cal, day_points_total);

    std::vector<std::pair<std::string, ReportFigures>> top(per_agent.begin(), per_agent.end());
    std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
        return a.second.total != b.second.total ? a.second.total > b.second.total : a.first < b.first;
    });
    Json top_json = Json::array();
    for (const auto& [name, f] : top) {
        if (top_json.size() == 5 || f.total == 0) break;
        top_json.push_back({{"name", name},
                            {"node", node_of[name]},
                            {"up_bytes", f.up},
                            {"down_bytes", f.down},
                            {"total_bytes", f.total}});
    }
    // Open alerts: the newest notice of each key is an alert, not its recovery.
    auto alerts = c.store.alerts(1000);
    if (!alerts) return fail(500, "cannot read the alerts: " + alerts.error().message());
    std::set<std::string> seen;
    Json open = Json::array();
    for (const auto& a : *alerts) {
        if (!seen.insert(a.agent + "\n" + a.key).second || a.kind != "alert") continue;
        if (open.size() < 20)
            open.push_back({{"time", c.cal.format_local(a.time)},
                            {"time_epoch", a.time},
                            {"agent", a.agent},
                            {"origin", a.origin},
                            {"key", a.key},
                            {"title", a.title}});
    }

    Json j;
    j["fleet"] = c.fleet_name;
    j["timezone"] = c.cal.tz_name();
    j["time"] = c.cal.format_local(c.now);
    j["time_epoch"] = c.now;
    j["agents"] = {{"total", counts["online"] + counts["offline"] + counts["never"]},
                   {"online", counts["online"]},
                   {"offline", counts["offline"]},
                   {"never", counts["never"]},
                   {"offline_agents", std::move(offline)}};
    Json tj{{"day", today.str()}};
    put_figures(tj, day_total);
    j["today"] = std::move(tj);
    Json mj{{"month", month.str()}};
    put_figures(mj, month_total);
    j["month"] = std::move(mj);
    Json last;
    put_range(last, c.cal, from, to);
    last["points"] = std::move(points);
    j["last24h"] = std::move(last);
    j["top_agents"] = std::move(top_json);
    j["open_alerts"] = std::move(open);
    return ok(j);
}

namespace {

Json opt_json(const std::optional<double>& v) {
    return v ? Json(*v) : Json(nullptr);
}

Json sample_json(const WireHost& h, const Calendar& cal) {
    return {{"time", cal.format_local(h.time)},
            {"time_epoch", h.time},
            {"load1", opt_json(h.load1)},
            {"cpu", opt_json(h.cpu)},
            {"mem_total", h.mem_total ? Json(*h.mem_total) : Json(nullptr)},
            {"mem_used", opt_json(h.mem_used)},
            {"disk_total", h.disk_total ? Json(*h.disk_total) : Json(nullptr)},
            {"disk_used", opt_json(h.disk_used)},
            {"temperature", opt_json(h.temperature)}};
}

// {"avg", "max"} of one figure over the samples that have it; null when none has.
Json avg_max(const std::vector<WireHost>& samples, std::optional<double> WireHost::*field) {
    double sum = 0, max = 0;
    size_t n = 0;
    for (const auto& h : samples) {
        const auto& v = h.*field;
        if (!v) continue;
        sum += *v;
        max = n ? std::max(max, *v) : *v;
        n++;
    }
    if (!n) return nullptr;
    return {{"avg", sum / static_cast<double>(n)}, {"max", max}};
}

}  // namespace

ApiAnswer dashboard_host(const DashboardContext& c, const std::multimap<std::string, std::string>& params) {
    std::string agent;
    for (const auto& [k, v] : params) {
        if (k != "agent") return fail(400, "unknown parameter '" + k + "': use agent");
        if (!agent.empty()) return fail(400, "parameter 'agent' given twice");
        agent = v;
    }
    if (agent.empty()) return fail(400, "missing parameter 'agent'");
    auto a = c.store.agent(agent);
    if (!a) return fail(500, "cannot read the agents: " + a.error().message());
    if (!*a) return fail(404, "no agent named '" + agent + "'");
    const int64_t from = c.now - 86400, to = c.now + 1;
    auto samples = c.store.host_samples(agent, from, to);
    if (!samples) return fail(500, "cannot read the host samples: " + samples.error().message());
    auto eps = c.store.episodes(agent, kDashboardEpisodes);
    if (!eps) return fail(500, "cannot read the episodes: " + eps.error().message());
    Json j;
    j["agent"] = agent;
    j["time"] = c.cal.format_local(c.now);
    j["time_epoch"] = c.now;
    Json last;
    put_range(last, c.cal, from, to);
    last["samples"] = samples->size();
    last["cpu"] = avg_max(*samples, &WireHost::cpu);
    last["mem_used"] = avg_max(*samples, &WireHost::mem_used);
    last["disk_used"] = avg_max(*samples, &WireHost::disk_used);
    last["load1"] = avg_max(*samples, &WireHost::load1);
    last["temperature"] = avg_max(*samples, &WireHost::temperature);
    j["latest"] = samples->empty() ? Json(nullptr) : sample_json(samples->back(), c.cal);
    j["last24h"] = std::move(last);
    Json list = Json::array();
    for (const auto& e : *eps)
        list.push_back({{"id", e.id},
                        {"pid", e.pid},
                        {"name", e.name},
                        {"user", e.user},
                        {"since", c.cal.format_local(e.since)},
                        {"since_epoch", e.since},
                        {"detected", c.cal.format_local(e.detected)},
                        {"detected_epoch", e.detected},
                        {"ended", c.cal.format_local(e.ended)},
                        {"ended_epoch", e.ended},
                        {"for", human_duration(e.ended - e.since)},
                        {"for_seconds", e.ended - e.since},
                        {"end_reason", e.end_reason},
                        {"peak_cpu", opt_json(e.peak_cpu)},
                        {"peak_mem", opt_json(e.peak_mem)}});
    j["episodes"] = std::move(list);
    return ok(j);
}

// ---- CSV ---------------------------------------------------------------------------------

namespace {

std::string csv_cell(const Json& v) {
    if (v.is_null()) return "";
    if (!v.is_string()) return v.dump();
    std::string t = v.get<std::string>();
    if (!t.empty() && std::string("=+-@\t\r").find(t[0]) != std::string::npos) t.insert(0, "'");
    if (t.find_first_of(",\"\r\n") == std::string::npos) return t;
    std::string q = "\"";
    for (char ch : t) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

}  // namespace

std::string history_csv(const std::string& history_page_json) {
    static const char* const kColumns[] = {"node_name",         "host_name", "sink",     "kind",         "period",
                                           "push_data_bytes",   "status",    "attempts", "error",        "update_time",
                                           "update_time_epoch", "agent",     "id",       "request_bytes"};
    const Json page = Json::parse(history_page_json);
    std::string out;
    const size_t n = std::size(kColumns);
    for (size_t i = 0; i < n; i++) out += std::string(i ? "," : "") + kColumns[i];
    out += "\r\n";
    for (const auto& item : page["items"]) {
        for (size_t i = 0; i < n; i++) out += (i ? "," : "") + csv_cell(item[kColumns[i]]);
        out += "\r\n";
    }
    return out;
}

}  // namespace pf
