#include "peakflow/daemon/metrics.hpp"

#include <bpf/libbpf.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <thread>

#include <sys/socket.h>

#include "peakflow/version.hpp"

namespace pf {

std::string escape_label_value(const std::string& v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '"': out += "\\\""; break;
            case '\n': out += "\\n"; break;
            default: out += c;
        }
    }
    return out;
}

namespace {

const char* kDirName[PF_DIR_COUNT] = {"rx", "tx"};

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

// name{k1="v1",k2="v2"} (no braces without labels)
void series(std::string& out, const char* name, std::initializer_list<std::pair<const char*, std::string>> labels) {
    out += name;
    if (labels.size() == 0) return;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        out += escape_label_value(v);
        out += '"';
    }
    out += '}';
}

void value(std::string& out, uint64_t v) {
    out += ' ';
    out += std::to_string(v);
    out += '\n';
}

void value(std::string& out, double v) {
    out += ' ';
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back the same
        out.append(buf, r.ptr);
    }
    out += '\n';
}

uint64_t mac_total_bytes(const MacRow& m) {
    uint64_t t = 0;
    for (const auto& c : m.dir) t += c.bytes;
    return t;
}

// The MACs to export: the top cap by rx+tx bytes (ties: lower MAC first), in MAC order.
std::vector<const MacRow*> capped_macs(const std::vector<MacRow>& macs, size_t cap) {
    std::vector<const MacRow*> v;
    v.reserve(macs.size());
    for (const auto& m : macs) v.push_back(&m);
    if (v.size() > cap) {
        std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(cap), v.end(),
                          [](const MacRow* a, const MacRow* b) {
                              uint64_t ta = mac_total_bytes(*a), tb = mac_total_bytes(*b);
                              if (ta != tb) return ta > tb;
                              return a->mac < b->mac;
                          });
        v.resize(cap);
    }
    std::sort(v.begin(), v.end(), [](const MacRow* a, const MacRow* b) { return a->mac < b->mac; });
    return v;
}

}  // namespace

std::string render_metrics(const std::vector<InterfaceSnapshot>& ifaces, const DaemonStats& stats,
                           size_t mac_series_cap, size_t scrape_errors) {
    std::string out;
    out.reserve(4096 + ifaces.size() * 512);

    family(out, "peakflow_interface_bytes_total", "counter",
           "Bytes seen on the interface by direction (whole Ethernet frames, no FCS).");
    for (const auto& s : ifaces)
        for (int d = 0; d < PF_DIR_COUNT; d++) {
            series(out, "peakflow_interface_bytes_total", {{"device", s.name}, {"direction", kDirName[d]}});
            value(out, s.totals.dir[d].bytes);
        }
    family(out, "peakflow_interface_packets_total", "counter", "Packets seen on the interface by direction.");
    for (const auto& s : ifaces)
        for (int d = 0; d < PF_DIR_COUNT; d++) {
            series(out, "peakflow_interface_packets_total", {{"device", s.name}, {"direction", kDirName[d]}});
            value(out, s.totals.dir[d].packets);
        }

    std::vector<std::vector<const MacRow*>> kept;
    kept.reserve(ifaces.size());
    for (const auto& s : ifaces) kept.push_back(capped_macs(s.macs, mac_series_cap));
    family(out, "peakflow_mac_bytes_total", "counter",
           "Bytes to (tx) and from (rx) a peer MAC address, for the top MACs by bytes.");
    for (size_t i = 0; i < ifaces.size(); i++)
        for (const MacRow* m : kept[i])
            for (int d = 0; d < PF_DIR_COUNT; d++) {
                series(out, "peakflow_mac_bytes_total",
                       {{"device", ifaces[i].name}, {"mac", format_mac(m->mac)}, {"direction", kDirName[d]}});
                value(out, m->dir[d].bytes);
            }
    family(out, "peakflow_mac_packets_total", "counter",
           "Packets to (tx) and from (rx) a peer MAC address, for the top MACs by bytes.");
    for (size_t i = 0; i < ifaces.size(); i++)
        for (const MacRow* m : kept[i])
            for (int d = 0; d < PF_DIR_COUNT; d++) {
                series(out, "peakflow_mac_packets_total",
                       {{"device", ifaces[i].name}, {"mac", format_mac(m->mac)}, {"direction", kDirName[d]}});
                value(out, m->dir[d].packets);
            }
    family(out, "peakflow_mac_series_dropped", "gauge",
           "MAC addresses left out of peakflow_mac_* because of the series cap.");
    for (size_t i = 0; i < ifaces.size(); i++) {
        series(out, "peakflow_mac_series_dropped", {{"device", ifaces[i].name}});
        value(out, static_cast<uint64_t>(ifaces[i].macs.size() - kept[i].size()));
    }

    family(out, "peakflow_events_total", "counter",
           "Kernel-side events: mac_map_full, flow_map_full, unparsable, non_ip.");
    for (const auto& s : ifaces)
        for (int e = 0; e < PF_EV_COUNT; e++) {
            series(out, "peakflow_events_total", {{"device", s.name}, {"event", event_name(e)}});
            value(out, s.events[static_cast<size_t>(e)]);
        }
    family(out, "peakflow_flow_map_entries", "gauge", "Entries in the flow map.");
    for (const auto& s : ifaces) {
        series(out, "peakflow_flow_map_entries", {{"device", s.name}});
        value(out, static_cast<uint64_t>(s.flows.size()));
    }

    family(out, "peakflow_last_drain_duration_seconds", "gauge", "Duration of the last drain of the maps.");
    series(out, "peakflow_last_drain_duration_seconds", {});
    value(out, stats.last_drain_seconds);
    family(out, "peakflow_drains_total", "counter", "Drains of the maps since the daemon started.");
    series(out, "peakflow_drains_total", {});
    value(out, stats.drains);
    family(out, "peakflow_history_rows_dropped_total", "counter",
           "Traffic rows given up because the history database failed for too long (oldest peer rows first).");
    series(out, "peakflow_history_rows_dropped_total", {});
    value(out, stats.history_rows_dropped);
    family(out, "peakflow_history_bytes_dropped_total", "counter",
           "Bytes of the traffic rows given up, both directions.");
    series(out, "peakflow_history_bytes_dropped_total", {});
    value(out, stats.history_bytes_dropped);
    family(out, "peakflow_outbox_depth", "gauge", "Rows waiting in the outbox for the store.");
    series(out, "peakflow_outbox_depth", {});
    value(out, stats.outbox_depth);
    family(out, "peakflow_export_queue", "gauge", "Flow records waiting for export.");
    series(out, "peakflow_export_queue", {});
    value(out, stats.export_queue);
    if (stats.host) {
        const HostFigures& h = *stats.host;
        family(out, "peakflow_host_cpu_percent", "gauge", "Busy share of all CPUs at the host watch's last sample.");
        series(out, "peakflow_host_cpu_percent", {});
        value(out, h.cpu_percent);
        family(out, "peakflow_host_memory_used_percent", "gauge", "Used share of memory (MemTotal - MemAvailable).");
        series(out, "peakflow_host_memory_used_percent", {});
        value(out, h.memory_percent);
        if (h.temp_c) {
            family(out, "peakflow_host_temperature_celsius", "gauge", "Hottest thermal zone.");
            series(out, "peakflow_host_temperature_celsius", {});
            value(out, *h.temp_c);
        }
        family(out, "peakflow_host_runaway_processes", "gauge", "Runaway-process episodes going on now.");
        series(out, "peakflow_host_runaway_processes", {});
        value(out, h.runaway_processes);
    }
    if (stats.collector) {
        const CollectorFigures& c = *stats.collector;
        family(out, "peakflow_collector_backlog", "gauge", "Records waiting to be acknowledged by the collector.");
        series(out, "peakflow_collector_backlog", {});
        value(out, c.backlog);
        family(out, "peakflow_collector_last_ack_timestamp_seconds", "gauge",
               "When the collector last acknowledged a report (0: not yet).");
        series(out, "peakflow_collector_last_ack_timestamp_seconds", {});
        value(out, static_cast<uint64_t>(c.last_ack));
        family(out, "peakflow_collector_errors_total", "counter", "Reports to the collector that failed.");
        series(out, "peakflow_collector_errors_total", {});
        value(out, c.errors);
    }
    family(out, "peakflow_scrape_errors", "gauge", "Interfaces that could not be read for this scrape.");
    series(out, "peakflow_scrape_errors", {});
    value(out, static_cast<uint64_t>(scrape_errors));

    family(out, "peakflow_build_info", "gauge", "Build information; the value is always 1.");
    const char* libbpf = libbpf_version_string();
    series(out, "peakflow_build_info",
           {{"version", kVersion}, {"commit", kGitCommit}, {"libbpf", libbpf ? libbpf : "unknown"}});
    value(out, uint64_t{1});
    return out;
}

std::string collect_metrics(const std::vector<std::string>& ifnames, const Paths& paths, const DaemonStats& stats,
                            size_t mac_series_cap) {
    std::vector<std::string> names = ifnames.empty() ? pinned_interfaces(paths) : ifnames;
    std::vector<InterfaceSnapshot> snaps;
    size_t errors = 0;
    for (const auto& n : names) {
        auto s = snapshot_interface(n, true, paths);
        if (s)
            snaps.push_back(std::move(*s));
        else
            errors++;
    }
    return render_metrics(snaps, stats, mac_series_cap, errors);
}

struct MetricsServer::Impl {
    std::string listen;
    int port = 0;
    httplib::Server server;
    std::thread thread;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
    if (!impl_) return;
    impl_->server.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const {
    return impl_->port;
}
const std::string& MetricsServer::listen() const {
    return impl_->listen;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                            std::function<std::string()> render) {
    auto addr = parse_listen(listen);
    if (!addr) return addr.error();
    auto impl = std::make_unique<Impl>();
    impl->listen = listen;
    auto& svr = impl->server;
    svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
    svr.set_read_timeout(5);
    svr.set_write_timeout(5);
    svr.set_payload_max_length(64 * 1024);
    // httplib's default is SO_REUSEPORT, which lets a second daemon share a live port
    // silently; SO_REUSEADDR only allows a quick restart over TIME_WAIT sockets.
    svr.set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    svr.Get("/metrics", [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
        try {
            res.set_content(render(), kMetricsContentType);
        } catch (const std::exception& e) {
            res.status = 500;
            res.set_content(std::string("rendering metrics failed: ") + e.what() + "\n", "text/plain; charset=utf-8");
        }
    });
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.status == 404) res.set_content("404 not found; metrics are at /metrics\n", "text/plain; charset=utf-8");
    });

    errno = 0;
    int port = addr->port;
    bool bound = port == 0 ? (port = svr.bind_to_any_port(addr->host)) > 0 : svr.bind_to_port(addr->host, port);
    if (!bound) {
        int err = errno;
        std::string hint = err == EADDRINUSE ? "another process listens there; choose another metrics listen address"
                           : err == EADDRNOTAVAIL ? "not an address of this host"
                           : err == EACCES        ? "ports below 1024 need privileges"
                                                  : "cannot resolve or bind this address";
        return Error("listen for /metrics on", listen, err, hint);
    }
    impl->port = port;
    auto done = std::make_shared<std::atomic<bool>>(false);
    impl->thread = std::thread([&svr, done] {
        svr.listen_after_bind();
        *done = true;
    });
    // stop() only ends a running listener loop: wait until it runs (or has already ended).
    while (!svr.is_running() && !*done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (*done) {
        impl->thread.join();
        return Error("start the /metrics server on", listen, 0, "the listener loop ended at once");
    }
    return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace pf
