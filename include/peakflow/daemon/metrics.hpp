#pragma once
// Prometheus metrics: the counters of the pinned maps and the daemon's own figures in the
// text exposition format (version 0.0.4), served on GET /metrics by a small HTTP server.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/kernel/dump.hpp"
#include "peakflow/service/stats.hpp"

namespace pf {

inline constexpr size_t kDefaultMacSeriesCap = 1000;
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9977";
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition: every family with HELP and TYPE, interfaces in the given order.
// Per interface at most mac_series_cap MACs (the top ones by rx+tx bytes; 0: none) are
// exported; peakflow_mac_series_dropped{device} counts the MACs left out.
// peakflow_flow_map_entries is the size of InterfaceSnapshot::flows (snapshot with flows).
// scrape_errors: interfaces that could not be read for this scrape (peakflow_scrape_errors).
std::string render_metrics(const std::vector<InterfaceSnapshot>& ifaces, const DaemonStats& stats,
                           size_t mac_series_cap, size_t scrape_errors = 0);

// One scrape: snapshots ifnames (empty: every pinned interface) with flows and renders
// them. An interface that cannot be read (not attached any more) is left out and counted
// in peakflow_scrape_errors (the daemon's own interfaces normally always read).
std::string collect_metrics(const std::vector<std::string>& ifnames, const Paths& paths, const DaemonStats& stats,
                            size_t mac_series_cap);

// Label value escaping of the text format: backslash, double quote and newline.
std::string escape_label_value(const std::string& v);

// "127.0.0.1:9977", "[::1]:9977", "0.0.0.0:9977", "localhost:9977" -> host and port.
struct ListenAddr {
    std::string host;  // without brackets
    int port = 0;      // 0..65535; 0 picks a free port
};
Result<ListenAddr> parse_listen(const std::string& listen);

// A small HTTP server for GET /metrics (anything else: 404) on its own threads (one
// listener, two workers). render is called once per scrape on a worker thread.
class MetricsServer {
  public:
    static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, std::function<std::string()> render);
    ~MetricsServer();  // stops and joins
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    int port() const;  // the bound port (the chosen one when asked for port 0)
    const std::string& listen() const;

    struct Impl;

  private:
    explicit MetricsServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pf
