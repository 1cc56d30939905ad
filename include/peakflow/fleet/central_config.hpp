#pragma once
// Central configuration (docs/fleet.md, "Central configuration"): the keys of the agent's
// config that the collector may set for the whole fleet and for one agent, and how the
// agent keeps what it last received. The collector's answer to each report carries the
// agent's CentralConfig (wire.hpp); the agent stores it in its history database, so it keeps
// applying it across restarts and while the collector is down, and reports back the version
// it runs and the values it could not apply.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/fleet/wire.hpp"

namespace pf {

// What a central key holds.
enum class CentralKind { Bool, String, Scalar, StringList, ScalarMap, Adjustments };

// Why `key` cannot be set centrally ("" when it can). The keys:
//   push.enabled, push.sinks.NAME.enabled         the switches
//   push.sinks.NAME.url, push.sinks.NAME.to        a sink's address (alert destinations)
//   customer_report.enabled                        acceptance
//   customer_report.provider_id, provider_uiid, isp_id, device_type, fields
//   adjustments                                    billing offsets and factors
//   interfaces                                     the interfaces to collect on
std::string central_key_problem(const std::string& key);
std::optional<CentralKind> central_kind(const std::string& key);
// The keys a user may set, as shown in errors and --help ("push.sinks.NAME.url" style).
const std::vector<std::string>& central_key_patterns();

// Why `json` is not a value of the right shape for `key` ("" when it is): a bool, a string,
// a list of strings, a map of strings to strings, a list of adjustment objects. The agent's
// own parser checks the rest when it applies the value.
std::string central_value_problem(const std::string& key, const std::string& json);

// ---- the agent's copy, in its history database (meta table) ----------------------------

// What the agent received last (nullopt: never). A database or table that does not exist
// yet reads as never.
Result<std::optional<CentralConfig>> load_central(const std::string& database);
Status save_central(SqliteDb& db, const CentralConfig& c);

// What the agent runs: the version it applied and the values it could not apply, written by
// the app after each (re)load, read by the uplink for its reports.
struct CentralStatus {
    int64_t version = 0;
    std::vector<ConfigProblem> problems;
    bool operator==(const CentralStatus&) const = default;
};
Result<CentralStatus> load_central_status(SqliteDb& db);
Status save_central_status(const std::string& database, const CentralStatus& s);

}  // namespace pf
