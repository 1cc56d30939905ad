#pragma once
// The collector's web dashboard (docs/fleet.md, "Dashboard"): its static files, embedded in
// the binary at build time (cmake/embed_files.cmake over user/fleet/web/) and served with
// caching and security headers; and the read-only JSON the pages need beyond the rest of
// the API: the agents list (the rows of `peakflow-collector agents --json` and more), an
// agent's or the fleet's traffic by 5-minute bucket or by day, and the fleet overview.

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/fleet/fleet_store.hpp"

namespace pf {

// One file of user/fleet/web/, as the generated source holds it.
struct EmbeddedFile {
    const char* name;  // path under web/, "app.js"
    const unsigned char* data;
    size_t size;
};
// The files of user/fleet/web/ (generated at build time), sorted by name.
const std::vector<EmbeddedFile>& embedded_dashboard_files();

// The headers every dashboard file is served with: only our own scripts, styles and
// connections; never in a frame; no MIME sniffing; no referrer.
const std::vector<std::pair<std::string, std::string>>& dashboard_security_headers();

// An HTTP answer made without the server: status, headers, body, content type.
struct WebAnswer {
    int status = 200;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

class DashboardFiles {
  public:
    explicit DashboardFiles(const std::vector<EmbeddedFile>& files);
    // GET of a URL path: "/" is index.html, "/ui/NAME" the file NAME. `if_none_match` is the
    // request's If-None-Match ("" for none): 304 when it names the file's ETag. 404 (JSON
    // error body) for anything else. Compression is the HTTP server's (gzip or brotli when
    // the client accepts one), so the ETag is weak: one tag for every encoding.
    WebAnswer get(const std::string& path, const std::string& if_none_match) const;
    // The ETag of the file at a URL path, "" when there is none.
    std::string etag(const std::string& path) const;

  private:
    struct File {
        std::string content_type, body, etag;
    };
    std::map<std::string, File> by_path_;
};

// One row of `agents --json`: name, node, host, iface, mac, version, last_seen,
// last_seen_epoch, state, backlog.
nlohmann::ordered_json agent_row_json(const AgentRow& a, const Calendar& cal, int64_t now, int offline_after);

// What the JSON endpoints below read and at which time.
struct DashboardContext {
    FleetStore& store;
    const Calendar& cal;
    int64_t now = 0;
    int offline_after = 3;
    std::string fleet_name;
};

// An answer of the JSON API: status and body ({"status":"error","message":…} unless 200).
struct ApiAnswer {
    int status = 200;
    std::string body;
};

// GET /api/v1/agents: {"time","time_epoch","agents":[agent_row_json + interval, revoked,
// push_enabled (the central switch: true, false or null when not set centrally)]}.
ApiAnswer dashboard_agents(const DashboardContext& c);

// GET /api/v1/traffic?agent=NAME|node=NODE[&day=YYYY-MM-DD | &month=YYYY-MM]: the
// 5-minute buckets of a local day that hold traffic, or every day of a billing month, with
// totals and each interface's 95th percentile (as `report --month`); interface totals
// summed over the selection's interfaces. Neither agent nor node: the fleet.
ApiAnswer dashboard_traffic(const DashboardContext& c, const std::multimap<std::string, std::string>& params);

// GET /api/v1/host?agent=NAME: the agent's host health (its newest sample of the last 24
// hours, and the average and maximum of each figure over them: CPU, memory and disk used in
// percent, load, temperature) and its newest kDashboardEpisodes ended runaway-process
// episodes, as its host stream stored them.
inline constexpr size_t kDashboardEpisodes = 50;
ApiAnswer dashboard_host(const DashboardContext& c, const std::multimap<std::string, std::string>& params);

// GET /api/v1/overview: agents by state (the offline ones named), today's and the billing
// month's totals of the fleet, its last 24 hours of 5-minute buckets, the top agents of
// today, the open alerts.
ApiAnswer dashboard_overview(const DashboardContext& c);

// The push history as CSV (GET /api/v1/history.csv): a header of the keys of the JSON items
// of `render_history_page` in their order, then one line per item with the same values
// (RFC 4180 quoting, CRLF; a text cell starting with = + - @ gets a leading ' so that no
// spreadsheet runs a host's error text as a formula).
std::string history_csv(const std::string& history_page_json);

}  // namespace pf
