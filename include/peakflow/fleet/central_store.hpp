#pragma once
// The collector's side of the central configuration: the fleet-wide and per-agent values in
// the fleet store, a version per change, and the audit log (who, when, from where, old and
// new value). A change takes the next fleet-wide version number and stamps its scope with
// it; an agent's config version is the newer of the fleet's and its own, so a change to one
// agent does not make the others apply anything.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/fleet/fleet_store.hpp"
#include "peakflow/fleet/wire.hpp"

namespace pf {

// Who made a change and from where: ("alice", "cli") or ("alice", "198.18.0.1").
struct ChangeOrigin {
    std::string who, from;
    int64_t time = 0;
};

// One stored value: scope "" is the fleet, otherwise an agent's name.
struct CentralEntry {
    std::string scope, key, value;  // value: compact JSON
    int64_t version = 0;            // of the change that set it
};

struct AuditRow {
    int64_t id = 0, time = 0, version = 0;
    std::string who, from, scope, key;
    std::optional<std::string> old_value, new_value;  // nullopt: not set
};

// What the agent reported it runs (from its last report).
struct AgentConfigState {
    int64_t version = 0;
    std::vector<ConfigProblem> problems;
};

// Sets `key` to `value` (checked by the caller) in `scope`; returns the new version, or the
// current one when the value was already that (no change, nothing audited).
Result<int64_t> central_set(FleetStore& s, const std::string& scope, const std::string& key, const std::string& value,
                            const ChangeOrigin& o);
// Removes `key` from `scope`; an error when it was not set there.
Result<int64_t> central_unset(FleetStore& s, const std::string& scope, const std::string& key, const ChangeOrigin& o);
// The values set in `scope`, by key.
Result<std::vector<CentralEntry>> central_entries(FleetStore& s, const std::string& scope);
// What `agent` gets: the fleet's values overridden by its own; the version is the newer of
// the two scopes' (0 when nothing was ever set).
Result<CentralConfig> central_effective(FleetStore& s, const std::string& agent);
// The value of `key` in every scope that sets it ("" the fleet, else an agent's name), in
// one query: what central_effective(s, agent).values[key] is for each agent at once.
Result<std::map<std::string, std::string>> central_key_values(FleetStore& s, const std::string& key);
// The fleet-wide set alone, at the fleet scope's version.
Result<CentralConfig> central_fleet(FleetStore& s);
// Newest first; `scope` set: only that scope's rows.
Result<std::vector<AuditRow>> central_audit(FleetStore& s, size_t limit, const std::optional<std::string>& scope);

// The version and problems an agent reported.
Status note_agent_config(FleetStore& s, const std::string& agent, const AgentConfigState& st);
Result<AgentConfigState> agent_config_state(FleetStore& s, const std::string& agent);

}  // namespace pf
