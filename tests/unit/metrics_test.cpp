#include "peakflow/daemon/metrics.hpp"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "peakflow/common/fd.hpp"
#include "peakflow/version.hpp"

namespace pf {
namespace {

MacRow mac_row(MacAddr mac, uint64_t rxb, uint64_t rxp, uint64_t txb, uint64_t txp) {
    MacRow r;
    r.mac = mac;
    r.dir[PF_DIR_RX] = {rxb, rxp};
    r.dir[PF_DIR_TX] = {txb, txp};
    return r;
}

InterfaceSnapshot iface(const std::string& name, uint64_t rxb, uint64_t rxp, uint64_t txb, uint64_t txp) {
    InterfaceSnapshot s;
    s.name = name;
    s.totals.dir[PF_DIR_RX] = {rxb, rxp};
    s.totals.dir[PF_DIR_TX] = {txb, txp};
    return s;
}

std::vector<InterfaceSnapshot> two_interfaces() {
    auto eth0 = iface("eth0", 1000, 10, 2000, 20);
    // Out of order and upper-case-worthy bytes: rendered sorted and lower case.
    eth0.macs.push_back(mac_row({0xAA, 0xBB, 0xCC, 0x00, 0x00, 0x02}, 300, 3, 400, 4));
    eth0.macs.push_back(mac_row({0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, 700, 7, 1600, 16));
    eth0.events = {1, 2, 3, 4};
    eth0.flows.resize(5);
    auto wlan0 = iface("wlan0", 18446744073709551615ull, 1, 0, 0);
    wlan0.events = {0, 0, 0, 9};
    return {eth0, wlan0};
}

std::string build_info_line() {
    const char* l = libbpf_version_string();
    return "peakflow_build_info{version=\"" + escape_label_value(kVersion) + "\",commit=\"" +
           escape_label_value(kGitCommit) + "\",libbpf=\"" + (l ? l : "unknown") + "\"} 1\n";
}

const char* kExpectedTwoInterfaces =
    R"(# HELP peakflow_interface_bytes_total Bytes seen on the interface by direction (whole Ethernet frames, no FCS).
# TYPE peakflow_interface_bytes_total counter
peakflow_interface_bytes_total{device="eth0",direction="rx"} 1000
peakflow_interface_bytes_total{device="eth0",direction="tx"} 2000
peakflow_interface_bytes_total{device="wlan0",direction="rx"} 18446744073709551615
peakflow_interface_bytes_total{device="wlan0",direction="tx"} 0
# HELP peakflow_interface_packets_total Packets seen on the interface by direction.
# TYPE peakflow_interface_packets_total counter
peakflow_interface_packets_total{device="eth0",direction="rx"} 10
peakflow_interface_packets_total{device="eth0",direction="tx"} 20
peakflow_interface_packets_total{device="wlan0",direction="rx"} 1
peakflow_interface_packets_total{device="wlan0",direction="tx"} 0
# HELP peakflow_mac_bytes_total Bytes to (tx) and from (rx) a peer MAC address, for the top MACs by bytes.
# TYPE peakflow_mac_bytes_total counter
peakflow_mac_bytes_total{device="eth0",mac="02:00:00:00:00:01",direction="rx"} 700
peakflow_mac_bytes_total{device="eth0",mac="02:00:00:00:00:01",direction="tx"} 1600
peakflow_mac_bytes_total{device="eth0",mac="aa:bb:cc:00:00:02",direction="rx"} 300
peakflow_mac_bytes_total{device="eth0",mac="aa:bb:cc:00:00:02",direction="tx"} 400
# HELP peakflow_mac_packets_total Packets to (tx) and from (rx) a peer MAC address, for the top MACs by bytes.
# TYPE peakflow_mac_packets_total counter
peakflow_mac_packets_total{device="eth0",mac="02:00:00:00:00:01",direction="rx"} 7
peakflow_mac_packets_total{device="eth0",mac="02:00:00:00:00:01",direction="tx"} 16
peakflow_mac_packets_total{device="eth0",mac="aa:bb:cc:00:00:02",direction="rx"} 3
peakflow_mac_packets_total{device="eth0",mac="aa:bb:cc:00:00:02",direction="tx"} 4
# HELP peakflow_mac_series_dropped MAC addresses left out of peakflow_mac_* because of the series cap.
# TYPE peakflow_mac_series_dropped gauge
peakflow_mac_series_dropped{device="eth0"} 0
peakflow_mac_series_dropped{device="wlan0"} 0
# HELP peakflow_events_total Kernel-side events: mac_map_full, flow_map_full, unparsable, non_ip.
# TYPE peakflow_events_total counter
peakflow_events_total{device="eth0",event="mac_map_full"} 1
peakflow_events_total{device="eth0",event="flow_map_full"} 2
peakflow_events_total{device="eth0",event="unparsable"} 3
peakflow_events_total{device="eth0",event="non_ip"} 4
peakflow_events_total{device="wlan0",event="mac_map_full"} 0
peakflow_events_total{device="wlan0",event="flow_map_full"} 0
peakflow_events_total{device="wlan0",event="unparsable"} 0
peakflow_events_total{device="wlan0",event="non_ip"} 9
# HELP peakflow_flow_map_entries Entries in the flow map.
# TYPE peakflow_flow_map_entries gauge
peakflow_flow_map_entries{device="eth0"} 5
peakflow_flow_map_entries{device="wlan0"} 0
# HELP peakflow_last_drain_duration_seconds Duration of the last drain of the maps.
# TYPE peakflow_last_drain_duration_seconds gauge
peakflow_last_drain_duration_seconds 0.0125
# HELP peakflow_drains_total Drains of the maps since the daemon started.
# TYPE peakflow_drains_total counter
peakflow_drains_total 42
# HELP peakflow_history_rows_dropped_total Traffic rows given up because the history database failed for too long (oldest peer rows first).
# TYPE peakflow_history_rows_dropped_total counter
peakflow_history_rows_dropped_total 7
# HELP peakflow_history_bytes_dropped_total Bytes of the traffic rows given up, both directions.
# TYPE peakflow_history_bytes_dropped_total counter
peakflow_history_bytes_dropped_total 7000
# HELP peakflow_outbox_depth Rows waiting in the outbox for the store.
# TYPE peakflow_outbox_depth gauge
peakflow_outbox_depth 3
# HELP peakflow_export_queue Flow records waiting for export.
# TYPE peakflow_export_queue gauge
peakflow_export_queue 0
# HELP peakflow_scrape_errors Interfaces that could not be read for this scrape.
# TYPE peakflow_scrape_errors gauge
peakflow_scrape_errors 0
# HELP peakflow_build_info Build information; the value is always 1.
# TYPE peakflow_build_info gauge
)";

DaemonStats some_stats() {
    DaemonStats st;
    st.last_drain_seconds = 0.0125;
    st.drains = 42;
    st.history_rows_dropped = 7;
    st.history_bytes_dropped = 7000;
    st.outbox_depth = 3;
    return st;
}

TEST(Metrics, RendersEveryFamilyExactly) {
    std::string got = render_metrics(two_interfaces(), some_stats(), 100);
    EXPECT_EQ(got, std::string(kExpectedTwoInterfaces) + build_info_line());
}

TEST(Metrics, HostFiguresOnceTheHostWatchHasSampled) {
    DaemonStats st;
    EXPECT_EQ(render_metrics({}, st, 0).find("peakflow_host_"), std::string::npos) << "nothing before a sample";
    st.host = HostFigures{12.5, 40.25, 55.3, 2};
    const std::string want = R"(# HELP peakflow_host_cpu_percent Busy share of all CPUs at the host watch's last sample.
# TYPE peakflow_host_cpu_percent gauge
peakflow_host_cpu_percent 12.5
# HELP peakflow_host_memory_used_percent Used share of memory (MemTotal - MemAvailable).
# TYPE peakflow_host_memory_used_percent gauge
peakflow_host_memory_used_percent 40.25
# HELP peakflow_host_temperature_celsius Hottest thermal zone.
# TYPE peakflow_host_temperature_celsius gauge
peakflow_host_temperature_celsius 55.3
# HELP peakflow_host_runaway_processes Runaway-process episodes going on now.
# TYPE peakflow_host_runaway_processes gauge
peakflow_host_runaway_processes 2
)";
    std::string got = render_metrics({}, st, 0);
    EXPECT_NE(got.find(want), std::string::npos) << got;
    st.host->temp_c.reset();  // no thermal zone: no temperature series
    got = render_metrics({}, st, 0);
    EXPECT_EQ(got.find("peakflow_host_temperature_celsius"), std::string::npos);
    EXPECT_NE(got.find("peakflow_host_runaway_processes 2\n"), std::string::npos);
}

// promtool check metrics on TEXT: "" when it passes, else its output. Skips when absent.
std::string promtool_problems(const std::string& text, bool* missing) {
    *missing = access("/usr/bin/promtool", X_OK) != 0;
    if (*missing) return "";
    char path[] = "/tmp/pf-metrics-test.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return "mkstemp failed";
    (void)!write(fd, text.data(), text.size());
    close(fd);
    std::string cmd = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[512];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = p ? pclose(p) : -1;
    unlink(path);
    if (st == 0 && out.empty()) return "";
    return "promtool exit " + std::to_string(st) + ": " + (out.empty() ? "(no output)" : out);
}

TEST(Metrics, PromtoolAcceptsIt) {
    auto snaps = two_interfaces();
    snaps[1].name = "we\"ird\\dev\nname";  // promtool must accept the escaped form too
    bool missing = false;
    std::string problems = promtool_problems(render_metrics(snaps, some_stats(), 1), &missing);
    if (missing) GTEST_SKIP() << "promtool not installed (Debian package 'prometheus'); format not cross-checked";
    EXPECT_EQ(problems, "");
    problems = promtool_problems(render_metrics({}, DaemonStats{}, 0), &missing);
    EXPECT_EQ(problems, "") << "no interfaces";
    DaemonStats with_host = some_stats();
    with_host.host = HostFigures{12.5, 40.25, 55.3, 2};
    problems = promtool_problems(render_metrics({}, with_host, 0), &missing);
    EXPECT_EQ(problems, "") << "host figures";
}

TEST(Metrics, MacCardinalityCapKeepsTopByBytes) {
    auto s = iface("eth0", 0, 0, 0, 0);
    // rx+tx bytes: 01 -> 10, 02 -> 50, 03 -> 30, 04 -> 50 (tie with 02: lower MAC wins), 05 -> 5
    s.macs.push_back(mac_row({2, 0, 0, 0, 0, 1}, 5, 1, 5, 1));
    s.macs.push_back(mac_row({2, 0, 0, 0, 0, 2}, 50, 1, 0, 0));
    s.macs.push_back(mac_row({2, 0, 0, 0, 0, 3}, 10, 1, 20, 1));
    s.macs.push_back(mac_row({2, 0, 0, 0, 0, 4}, 0, 0, 50, 1));
    s.macs.push_back(mac_row({2, 0, 0, 0, 0, 5}, 5, 1, 0, 0));
    std::string got = render_metrics({s}, {}, 2);
    EXPECT_NE(got.find("peakflow_mac_bytes_total{device=\"eth0\",mac=\"02:00:00:00:00:02\",direction=\"rx\"} 50\n"),
              std::string::npos);
    EXPECT_NE(got.find("peakflow_mac_bytes_total{device=\"eth0\",mac=\"02:00:00:00:00:04\",direction=\"tx\"} 50\n"),
              std::string::npos);
    for (const char* gone : {"02:00:00:00:00:01", "02:00:00:00:00:03", "02:00:00:00:00:05"})
        EXPECT_EQ(got.find(gone), std::string::npos) << gone;
    EXPECT_NE(got.find("peakflow_mac_series_dropped{device=\"eth0\"} 3\n"), std::string::npos);

    got = render_metrics({s}, {}, 3);
    EXPECT_NE(got.find("02:00:00:00:00:03"), std::string::npos);
    EXPECT_EQ(got.find("02:00:00:00:00:01"), std::string::npos);
    EXPECT_NE(got.find("peakflow_mac_series_dropped{device=\"eth0\"} 2\n"), std::string::npos);

    got = render_metrics({s}, {}, 0);  // cap 0: no per-MAC series at all
    EXPECT_EQ(got.find("mac=\""), std::string::npos);
    EXPECT_NE(got.find("peakflow_mac_series_dropped{device=\"eth0\"} 5\n"), std::string::npos);

    got = render_metrics({s}, {}, 5);
    EXPECT_NE(got.find("peakflow_mac_series_dropped{device=\"eth0\"} 0\n"), std::string::npos);
    EXPECT_NE(got.find("02:00:00:00:00:05"), std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
    EXPECT_EQ(escape_label_value("plain-eth0.1"), "plain-eth0.1");
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    auto s = iface("x\"y\\z\nw", 1, 1, 2, 2);
    std::string got = render_metrics({s}, {}, 10);
    EXPECT_NE(got.find("peakflow_interface_bytes_total{device=\"x\\\"y\\\\z\\nw\",direction=\"rx\"} 1\n"),
              std::string::npos)
        << got;
}

TEST(Metrics, SpecialFloatValues) {
    DaemonStats st;
    st.last_drain_seconds = 1e-7;
    EXPECT_NE(render_metrics({}, st, 1).find("peakflow_last_drain_duration_seconds 1e-07\n"), std::string::npos);
    st.last_drain_seconds = 2.5;
    EXPECT_NE(render_metrics({}, st, 1).find("peakflow_last_drain_duration_seconds 2.5\n"), std::string::npos);
    st.last_drain_seconds = std::numeric_limits<double>::quiet_NaN();
    EXPECT_NE(render_metrics({}, st, 1).find("peakflow_last_drain_duration_seconds NaN\n"), std::string::npos);
}

TEST(Metrics, ParsesListenAddresses) {
    auto a = parse_listen("127.0.0.1:9977");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 9977);
    a = parse_listen("[::1]:80");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->host, "::1");
    EXPECT_EQ(a->port, 80);
    a = parse_listen("localhost:0");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->port, 0);
    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":9977", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:9x",
                            "::1:9977", "[::1]9977", "[::1", "[127.0.0.1]:1"}) {
        auto r = parse_listen(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.error().message().find(std::string(bad)), std::string::npos) << r.error().message();
    }
}

// A port nobody listens on right now: bind port 0, read it back, close.
int free_port() {
    Fd s(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    socklen_t len = sizeof a;
    getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

TEST(MetricsServer, ServesMetricsAnd404) {
    int port = free_port();
    ASSERT_GT(port, 0);
    std::atomic<int> calls{0};
    std::string text = render_metrics(two_interfaces(), some_stats(), 10);
    auto srv = MetricsServer::start("127.0.0.1:" + std::to_string(port), [&] {
        calls++;
        return text;
    });
    ASSERT_TRUE(srv.ok()) << srv.error().message();
    EXPECT_EQ((*srv)->port(), port);

    httplib::Client cli("127.0.0.1", port);
    auto r = cli.Get("/metrics");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, text);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(calls.load(), 1);

    r = cli.Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    r = cli.Get("/metrics/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    r = cli.Post("/metrics", "x", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(calls.load(), 1);

    // A second server on the same address fails, naming the address.
    auto again = MetricsServer::start("127.0.0.1:" + std::to_string(port), [] { return std::string(); });
    ASSERT_FALSE(again.ok());
    std::string msg = again.error().message();
    EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << msg;
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;

    srv->reset();  // stops and joins; the port is free again
    auto third = MetricsServer::start("127.0.0.1:" + std::to_string(port), [] { return std::string("x 1\n"); });
    ASSERT_TRUE(third.ok()) << third.error().message();
    httplib::Client cli3("127.0.0.1", port);
    r = cli3.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "x 1\n");
}

TEST(MetricsServer, PortZeroIPv6AndBadAddresses) {
    auto srv = MetricsServer::start("127.0.0.1:0", [] { return std::string("a 1\n"); });
    ASSERT_TRUE(srv.ok()) << srv.error().message();
    EXPECT_GT((*srv)->port(), 0);
    httplib::Client cli("127.0.0.1", (*srv)->port());
    auto r = cli.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "a 1\n");

    auto six = MetricsServer::start("[::1]:0", [] { return std::string("b 1\n"); });
    if (six.ok()) {
        httplib::Client c6("::1", (*six)->port());
        r = c6.Get("/metrics");
        ASSERT_TRUE(r) << httplib::to_string(r.error());
        EXPECT_EQ(r->body, "b 1\n");
    }  // else: no IPv6 loopback here

    auto bad = MetricsServer::start("nonsense", [] { return std::string(); });
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("nonsense"), std::string::npos);
    bad = MetricsServer::start("192.0.2.1:9977", [] { return std::string(); });  // not a local address
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("192.0.2.1:9977"), std::string::npos) << bad.error().message();
}

TEST(MetricsServer, RenderFailureIs500) {
    auto srv = MetricsServer::start("127.0.0.1:0", []() -> std::string { throw std::runtime_error("boom"); });
    ASSERT_TRUE(srv.ok());
    httplib::Client cli("127.0.0.1", (*srv)->port());
    auto r = cli.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_NE(r->body.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace pf
