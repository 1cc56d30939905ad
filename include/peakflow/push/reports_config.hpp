#pragma once
// Config sections of the scheduled reports (`reports:`) and the customer's hourly report
// (`customer_report:`). Kept apart from their services so config.hpp can hold them.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

struct ReportsConfig {
    bool enabled = true;             // runs when push is configured; false: no scheduled reports
    int daily_at_min = 5;            // local time of day, minutes after midnight ("00:05")
    bool daily = true;               // the previous local day, every day at daily_at
    bool monthly = true;             // the previous billing month, on its first day at daily_at
    bool on_start = true;            // what has been counted so far, when the daemon starts
    int top_macs = 5;                // peer MACs listed under each interface
    int catch_up_days = 7;           // a daily report missed while the daemon was down is sent if due within this
    std::vector<std::string> sinks;  // push sink names; empty: every sink
    bool operator==(const ReportsConfig&) const = default;
};

// A static field of the customer's body: a plain YAML integer stays a JSON number,
// anything else (quoted, text) is a JSON string.
struct StaticField {
    std::string key;
    std::string value;
    bool number = false;
    bool operator==(const StaticField&) const = default;
};

struct CustomerReportConfig {
    bool enabled = false;          // the acceptance switch: nothing is reported until it is on
    std::string sink;              // a push sink of type http that POSTs the body as is
    std::string iface;             // empty: the daemon's first interface
    std::vector<MacAddr> macs;     // empty: the interface's own MAC (interface totals)
    std::string direction = "tx";  // tx (sent by the host), rx or both
    StaticField provider_id{"provider_id", "", false};
    StaticField provider_uiid{"provider_uiid", "", false};
    StaticField isp_id{"isp_id", "", false};
    StaticField device_type{"device_type", "", false};
    std::vector<StaticField> fields;  // extra static fields, appended in order
    std::string query_url;            // optional verification API
    std::vector<std::pair<std::string, std::string>> query_headers;
    int verify_hours = 24;     // how far back verification looks
    int catch_up_hours = 168;  // hours missed while the daemon was down that are still sent
    bool operator==(const CustomerReportConfig&) const = default;
};

Status parse_reports_config(const Parser& p, const YAML::Node& n, const std::string& key, ReportsConfig& out);
void dump_reports_config(YAML::Emitter& e, const ReportsConfig& c);
Status parse_customer_report_config(const Parser& p, const YAML::Node& n, const std::string& key,
                                    CustomerReportConfig& out);
void dump_customer_report_config(YAML::Emitter& e, const CustomerReportConfig& c);

// "00:05" -> 5; "24:00" is not a time of day.
Result<int> parse_time_of_day(const std::string& s);
std::string format_time_of_day(int minutes);

}  // namespace pf
