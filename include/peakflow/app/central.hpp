#pragma once
// Applying the collector's central configuration to the agent's own (docs/fleet.md,
// "Central configuration"). The central values replace the file's for their keys only, each
// checked by the same parser as the file: a value that does not parse (or names a push sink
// the file lacks) is not applied and becomes a problem the agent reports back.

#include <map>
#include <string>
#include <vector>

#include "peakflow/app/config.hpp"
#include "peakflow/fleet/wire.hpp"

namespace pf {

struct CentralApplied {
    Config cfg;                           // the file's config with the values that applied
    std::vector<ConfigProblem> problems;  // the values that did not, and why
    std::vector<std::string> applied;     // the keys that did
};

// `yaml_text` is the config file's text (from `source`; "" with source "" for the built-in
// defaults). Errors in the file itself are errors, as without a collector.
Result<CentralApplied> apply_central(const std::string& yaml_text, const std::string& source,
                                     const CentralConfig& central);

// Why the collector must refuse `json` for `key` ("" when the agent's parser accepts it on
// top of a config that has the sink the key names).
std::string check_central_value(const std::string& key, const std::string& json);

// The effective value of every centrally settable key of `cfg` (JSON text), for
// `config check` and the log of what a new version changed.
std::map<std::string, std::string> central_view(const Config& cfg);

}  // namespace pf
