#include "peakflow/fleet/fleet_history.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

bool all_digits(const std::string& s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// "HH:MM" or "HH:MM:SS" as seconds after midnight; -1 when it is not one.
int64_t time_of_day(const std::string& s) {
    if (s.size() != 5 && s.size() != 8) return -1;
    if (s[2] != ':' || (s.size() == 8 && s[5] != ':')) return -1;
    auto two = [&](size_t at) -> int64_t {
        const std::string d = s.substr(at, 2);
        return all_digits(d) ? std::stoi(d) : -1;
    };
    const int64_t h = two(0), m = two(3), sec = s.size() == 8 ? two(6) : 0;
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59) return -1;
    return h * 3600 + m * 60 + sec;
}

}  // namespace

Result<int64_t> parse_history_time(const Calendar& cal, const std::string& text) {
    const Error bad("'" + text + "' is not a time: use YYYY-MM-DD[ HH:MM[:SS]] (local time, " + cal.tz_name() +
                    ") or unix seconds");
    if (all_digits(text)) {
        if (text.size() > 12) return bad;
        return static_cast<int64_t>(std::stoll(text));
    }
    if (text.size() < 10) return bad;
    auto day = parse_local_date(text.substr(0, 10));
    if (!day) return bad;
    const int64_t start = cal.day_start(*day);
    if (text.size() == 10) return start;
    if (text[10] != ' ' && text[10] != 'T') return bad;
    const int64_t secs = time_of_day(text.substr(11));
    if (secs < 0) return bad;
    // The wall time `secs` after midnight: correct the plain sum by the change of the UTC
    // offset since midnight (DST), then check the clock really reads that.
    const int64_t t = start + secs;
    const int64_t fixed = t + cal.utc_offset_seconds(start) - cal.utc_offset_seconds(t);
    std::string want = text.substr(0, 10) + " " + text.substr(11);
    if (want.size() == 16) want += ":00";
    for (int64_t c : {fixed, t})
        if (cal.format_local(c) == want) return c;
    return Error("local time " + want + " does not exist in " + cal.tz_name(), "", 0,
                 "the clocks skip it for daylight saving time");
}

Result<PushQuery> parse_history_params(const Calendar& cal, const std::multimap<std::string, std::string>& params) {
    static const char* const kKnown[] = {"node", "host", "agent", "status",   "failed",
                                         "from", "to",   "page",  "page_size"};
    PushQuery q;
    q.limit = kHistoryPageSize;
    for (auto it = params.begin(); it != params.end(); ++it) {
        const std::string& k = it->first;
        bool known = false;
        for (const char* n : kKnown) known = known || k == n;
        if (!known)
            return Error("unknown parameter '" + k +
                         "': use node, host, agent, status, failed, from, to, page, page_size");
        if (params.count(k) > 1) return Error("parameter '" + k + "' given more than once");
    }
    auto get = [&](const char* k) -> std::optional<std::string> {
        auto it = params.find(k);
        if (it == params.end() || it->second.empty()) return std::nullopt;
        return it->second;
    };
    q.node = get("node");
    q.host = get("host");
    q.agent = get("agent");
    if (auto s = get("status")) {
        if (*s != "pending" && *s != "failed" && *s != "sent" && *s != "skipped")
            return Error("status must be pending, failed, sent or skipped, got '" + *s + "'");
        q.status = *s;
    }
    if (auto f = get("failed")) {
        if (*f == "1" || *f == "true")
            q.failed_only = true;
        else if (*f != "0" && *f != "false")
            return Error("failed must be true, false, 1 or 0, got '" + *f + "'");
    }
    for (auto [key, into] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}})
        if (auto t = get(key)) {
            auto v = parse_history_time(cal, *t);
            if (!v) return Error(std::string(key) + ": " + v.error().message());
            *into = *v;
        }
    if (q.from && q.to && *q.from >= *q.to) return Error("from must be before to");
    auto number = [&](const char* key, int64_t lo, int64_t hi, int64_t& out) -> Status {
        auto v = get(key);
        if (!v) return Ok{};
        if (!all_digits(*v) || v->size() > 9 || std::stoll(*v) < lo || std::stoll(*v) > hi)
            return Error(std::string(key) + " must be a whole number from " + std::to_string(lo) + " to " +
                         std::to_string(hi) + ", got '" + *v + "'");
        out = std::stoll(*v);
        return Ok{};
    };
    if (auto st = number("page", 1, 1000000000 - 1, q.page); !st) return st.error();
    if (auto st = number("page_size", 1, kHistoryMaxPageSize, q.limit); !st) return st.error();
    return q;
}

std::string render_history_page(const PushPage& page, const PushQuery& q, const Calendar& cal) {
    Json j;
    j["total"] = page.total;
    j["page"] = q.page;
    j["page_size"] = q.limit;
    j["items"] = Json::array();
    for (const auto& r : page.rows)
        j["items"].push_back({{"node_name", r.node},
                              {"host_name", r.host},
                              {"sink", r.sink},
                              {"kind", r.kind},
                              {"period", r.period},
                              {"push_data_bytes", r.value ? Json(*r.value) : Json(nullptr)},
                              {"status", r.status},
                              {"attempts", r.attempts},
                              {"error", r.last_error},
                              {"update_time", cal.format_local(r.time)},
                              {"update_time_epoch", r.time},
                              {"agent", r.agent},
                              {"id", r.id},
                              {"request_bytes", r.bytes}});
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

StoredAlert push_failure_notice(const std::string& agent, const WirePush& row, bool raised, int after, int64_t now) {
    StoredAlert n;
    n.time = now;
    n.agent = agent;
    n.origin = "collector";
    n.kind = raised ? "alert" : "recovery";
    n.key = "push-failed:" + agent + ":" + row.sink;
    n.node = row.node;
    n.host = row.host;
    const std::string who = "sink **" + row.sink + "** of agent **" + agent + "** (node " +
                            (row.node.empty() ? "-" : row.node) + ", host " + (row.host.empty() ? "-" : row.host) + ")";
    const std::string message =
        "message " + std::to_string(row.id) + " (" + row.kind + (row.period.empty() ? "" : " " + row.period) + ")";
    if (raised) {
        const int64_t failures = row.status == "failed" ? row.attempts : row.attempts - 1;
        n.title = agent + ": push to " + row.sink + " failing";
        n.text = "Delivery to " + who + " failed " + std::to_string(failures) + " times in a row (alert after " +
                 std::to_string(after) + "), " + message + "." +
                 (row.status == "failed" && !row.error.empty() ? " Last error: " + row.error : std::string());
    } else {
        n.title = agent + ": push to " + row.sink + " works again";
        n.text = "Delivery to " + who + " works again: " + message + " delivered at attempt " +
                 std::to_string(row.attempts) + ".";
    }
    return n;
}

}  // namespace pf
