#include "peakflow/accounting/accounting_config.hpp"

#include <functional>
#include <map>

namespace pf {
namespace {

Status parse_adjustment(const Parser& p, const YAML::Node& n, const std::string& key, Adjustment& a) {
    if (auto st = check_keys(p, n, key, {"iface", "mac", "direction", "factor", "offset_bytes"}); !st) return st;
    if (auto st = p.read_child(n, key, "iface", "an interface name", a.iface); !st) return st;
    if (n["mac"]) {
        std::string v;
        if (auto st = p.read(n["mac"], key + ".mac", "a MAC address", v); !st) return st;
        a.mac = parse_mac(v);
        if (!a.mac) return p.error_at(n["mac"].Mark(), key + ".mac", "'" + v + "' is not a MAC address");
    }
    if (n["direction"]) {
        std::string v;
        if (auto st = p.read(n["direction"], key + ".direction", "rx, tx or both", v); !st) return st;
        if (v != "rx" && v != "tx" && v != "both")
            return p.error_at(n["direction"].Mark(), key + ".direction", "expected rx, tx or both, got '" + v + "'");
        a.direction = v;
    }
    if (n["factor"]) {
        double v = 0;
        if (auto st = p.read(n["factor"], key + ".factor", "a number", v); !st) return st;
        if (!(v >= 0.0 && v <= 1000.0))
            return p.error_at(n["factor"].Mark(), key + ".factor", "must be between 0 and 1000");
        a.factor = v;
    }
    if (auto st = p.read_child(n, key, "offset_bytes", "an integer", a.offset_bytes); !st) return st;
    if (!n["factor"] && !n["offset_bytes"])
        return p.error_at(n.Mark(), key, "an adjustment needs a factor or an offset_bytes");
    return Ok{};
}

Status parse_retention(const Parser& p, const YAML::Node& n, const std::string& k, Retention& r) {
    if (auto st = check_keys(p, n, k, {"five_minute_days", "hourly_days", "daily_days", "monthly_months"}); !st)
        return st;
    // 32 days: the longest billing month (31 days) plus one, for the roll-up that runs at
    // the first drain after the month ends (after downtime, the catch-up rolls the months up
    // before the retention of the same pass) and for a 25-hour DST day. Five-minute points
    // must cover the month for the 95th percentile; daily rows, because the monthly roll-up
    // sums them at the month's end. Hourly rows feed no roll-up (a reopened day is rolled up
    // again from its buckets), so any length will do.
    constexpr uint64_t kBillingMonthDays = 32;
    struct Item {
        const char* name;
        int* field;
        uint64_t min;
        const char* why;
    } items[] = {
        {"five_minute_days", &r.five_minute_days, kBillingMonthDays, " (a billing month for the 95th percentile)"},
        {"hourly_days", &r.hourly_days, 1, ""},
        {"daily_days", &r.daily_days, kBillingMonthDays, " (a billing month for the monthly roll-up)"},
        {"monthly_months", &r.monthly_months, 1, ""}};
    for (const auto& it : items) {
        if (!n[it.name]) continue;
        // 0 keeps forever; otherwise at least the minimum.
        int v = 0;
        if (auto st = p.read_bounded(n[it.name], k + "." + it.name, 0, 100000, v); !st) return st;
        if (v != 0 && static_cast<uint64_t>(v) < it.min)
            return p.error_at(n[it.name].Mark(), k + "." + it.name,
                              "must be 0 (forever) or at least " + std::to_string(it.min) + it.why);
        *it.field = v;
    }
    return Ok{};
}

using KeyHandler = std::function<Status(const Parser&, const YAML::Node&, const std::string&, AccountingConfig&)>;

const std::map<std::string, KeyHandler>& handlers() {
    static const std::map<std::string, KeyHandler> h = {
        {"timezone",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             std::string v;
             if (auto st = p.read(n, k, "an IANA time zone name", v); !st) return st;
             if (auto cal = Calendar::create(v, {}, 1); !cal) return p.error_at(n.Mark(), k, cal.error().message());
             c.timezone = v;
             return Ok{};
         }},
        {"peak_windows",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list such as [\"18:00-24:00\"]");
             c.peak_windows.clear();
             for (const auto& item : n) {
                 std::string s;
                 if (auto st = p.read(item, k, "a window such as 18:00-24:00", s); !st) return st;
                 auto w = parse_peak_window(s);
                 if (!w) return p.error_at(item.Mark(), k, w.error().message());
                 c.peak_windows.push_back(*w);
             }
             return Ok{};
         }},
        {"billing_day",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             return p.read_bounded(n, k, 1, 28, c.billing_day);
         }},
        {"database",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             std::string v;
             if (auto st = p.read(n, k, "a file path", v); !st) return st;
             if (v.empty()) return p.error_at(n.Mark(), k, "must not be empty");
             c.database = v;
             return Ok{};
         }},
        {"retention",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             return parse_retention(p, n, k, c.retention);
         }},
        {"adjustments",
         [](const Parser& p, const YAML::Node& n, const std::string& k, AccountingConfig& c) -> Status {
             if (!n.IsSequence()) return p.error_at(n.Mark(), k, "expected a list of adjustments");
             c.adjustments.clear();
             for (const auto& item : n) {
                 Adjustment a;
                 if (auto st = parse_adjustment(p, item, k, a); !st) return st;
                 c.adjustments.push_back(a);
             }
             return Ok{};
         }},
    };
    return h;
}

}  // namespace

bool is_accounting_key(const std::string& key) {
    return handlers().count(key) != 0;
}

Status parse_accounting_key(const Parser& p, const YAML::Node& n, const std::string& key, AccountingConfig& c) {
    auto h = handlers().find(key);
    if (h == handlers().end()) return p.error_at(n.Mark(), key, "unknown key");
    return h->second(p, n, key, c);
}

void dump_accounting_config(YAML::Emitter& out, const AccountingConfig& c) {
    out << YAML::Key << "timezone" << YAML::Value << c.timezone;
    out << YAML::Key << "peak_windows" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& w : c.peak_windows) out << format_peak_window(w);
    out << YAML::EndSeq;
    out << YAML::Key << "billing_day" << YAML::Value << c.billing_day;
    out << YAML::Key << "database" << YAML::Value << c.database;
    out << YAML::Key << "retention" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "five_minute_days" << YAML::Value << c.retention.five_minute_days;
    out << YAML::Key << "hourly_days" << YAML::Value << c.retention.hourly_days;
    out << YAML::Key << "daily_days" << YAML::Value << c.retention.daily_days;
    out << YAML::Key << "monthly_months" << YAML::Value << c.retention.monthly_months;
    out << YAML::EndMap;
    out << YAML::Key << "adjustments" << YAML::Value << YAML::BeginSeq;
    for (const auto& a : c.adjustments) {
        out << YAML::BeginMap;
        if (!a.iface.empty()) out << YAML::Key << "iface" << YAML::Value << a.iface;
        if (a.mac) out << YAML::Key << "mac" << YAML::Value << format_mac(*a.mac);
        out << YAML::Key << "direction" << YAML::Value << a.direction;
        out << YAML::Key << "factor" << YAML::Value << a.factor;
        out << YAML::Key << "offset_bytes" << YAML::Value << a.offset_bytes;
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
}

}  // namespace pf
