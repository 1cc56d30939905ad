#pragma once
// The fleet's push history as people and the dashboard read it (docs/fleet.md, "Fleet push
// history"): the times they give (`history --from/--to`, `from=`/`to=`), the query of
// GET /agent/history/ and /api/v1/history and its JSON answer, and the collector's own
// alert when an agent's sink keeps failing.

#include <cstdint>
#include <map>
#include <string>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/fleet/fleet_store.hpp"
#include "peakflow/fleet/wire.hpp"

namespace pf {

inline constexpr int64_t kHistoryPageSize = 50;       // rows per page when page_size is not given
inline constexpr int64_t kHistoryMaxPageSize = 1000;  // page_size at most

// "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" (or with 'T') on the calendar's
// local clock, or unix seconds (digits only): UTC seconds. A local time the clocks skip
// (daylight saving time) is an error.
Result<int64_t> parse_history_time(const Calendar& cal, const std::string& text);

// The query string of the history endpoints: node, host, agent, status, failed, from, to,
// page, page_size. An empty value filters nothing. The error is the reason for the 400.
Result<PushQuery> parse_history_params(const Calendar& cal, const std::multimap<std::string, std::string>& params);

// {"total","page","page_size","items":[…]}, times on the calendar's local clock.
std::string render_history_page(const PushPage& page, const PushQuery& q, const Calendar& cal);

// The collector's alert (raised) or recovery for an agent's sink (FleetStore::set_push_alerts):
// key "push-failed:AGENT:SINK", origin collector.
StoredAlert push_failure_notice(const std::string& agent, const WirePush& row, bool raised, int after, int64_t now);

}  // namespace pf
