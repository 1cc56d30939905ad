// Load generator for peakflow-collector: simulated agents report to a real collector
// process (the binary, on 127.0.0.1, a fresh SQLite database) over HTTP, as the agent does
// (JSON, gzip, Bearer token). Prints figures, never fails on them:
//
//   steady   AGENTS agents at a 60 s interval, each report with one closed bucket and the
//            open one (10 peer MACs + the interface total each): the collector's CPU (% of
//            one CPU, from /proc/PID/stat), request latency p50/p99, RSS afterwards
//   burst    reports back to back from 2 clients for 10 s: reports and rows committed/s
//   backlog  one agent's 30-day backlog (8 640 buckets x 11 rows) in batches of 5 000
//
//   pf_collector_bench PATH/TO/peakflow-collector [AGENTS=2000] [STEADY_SECONDS=60]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/common/http.hpp"
#include "peakflow/fleet/wire.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

// utime + stime of PID, in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), {});
    auto close = s.rfind(')');
    std::istringstream in(s.substr(close + 2));
    std::string field;
    unsigned long long ut = 0, st = 0;
    for (int i = 3; i <= 15; ++i) {
        in >> field;
        if (i == 14) ut = std::stoull(field);
        if (i == 15) st = std::stoull(field);
    }
    return static_cast<double>(ut + st) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rss_kb(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0;
}

struct Agent {
    std::string name, token, spool;
    int64_t seq = 0;
};

constexpr int kMacs = 10;

std::vector<pf::WireBucket> bucket_rows(int64_t ts, uint64_t base) {
    std::vector<pf::WireBucket> rows;
    for (int m = -1; m < kMacs; ++m) {
        pf::WireBucket b;
        b.iface = "eth0";
        if (m >= 0) {
            char mac[18];
            snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", m);
            b.mac = mac;
        }
        b.ts = ts;
        b.rx_bytes = base + 1000 * static_cast<uint64_t>(m + 2);
        b.rx_packets = base / 1000 + 1;
        b.tx_bytes = base / 2;
        b.tx_packets = base / 2000 + 1;
        rows.push_back(std::move(b));
    }
    return rows;
}

pf::WireReport report_for(Agent& a, int64_t now, std::vector<pf::WireBucket> sealed, std::vector<pf::WireBucket> live) {
    pf::WireReport r;
    r.agent.name = a.name;
    r.agent.host = a.name + ".bench";
    r.agent.node = "bench";
    r.agent.version = "bench";
    r.agent.boot_id = "00000000-0000-0000-0000-000000000000";
    r.agent.interval = 60;
    r.agent.time = now;
    r.agent.interfaces.push_back({"eth0", "02:00:00:00:ff:01", true});
    r.spool = a.spool;
    r.live = std::move(live);
    if (!sealed.empty()) {
        pf::WireBatch b;
        b.stream = "buckets";
        b.seq = a.seq + 1;
        b.buckets = std::move(sealed);
        r.batches.push_back(std::move(b));
    }
    return r;
}

// Sends one report; true on 200 (then the agent's seq moves on).
bool send(const std::string& base, Agent& a, const pf::WireReport& r, double& ms) {
    pf::HttpRequest req;
    req.method = pf::HttpMethod::Post;
    req.url = base + "/api/v1/agents/report";
    req.headers = {"Authorization: Bearer " + a.token, "Content-Type: application/json", "Content-Encoding: gzip"};
    req.body = pf::gzip_compress(pf::render_report(r));
    req.max_response_bytes = 65536;
    auto t0 = Clock::now();
    auto res = pf::http_request(req);
    ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!res || res->status != 200) {
        std::cerr << "report from " << a.name << " refused: " << (res ? res->body : res.error().message()) << "\n";
        return false;
    }
    if (!r.batches.empty()) a.seq = r.batches[0].seq;
    return true;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: pf_collector_bench PATH/TO/peakflow-collector [AGENTS] [STEADY_SECONDS]\n";
        return 2;
    }
    const std::string bin = fs::absolute(argv[1]).string();
    const int agents = argc > 2 ? std::atoi(argv[2]) : 2000;
    const int steady_s = argc > 3 ? std::atoi(argv[3]) : 60;
    signal(SIGPIPE, SIG_IGN);

    char tmpl[] = "/tmp/pf-collector-bench.XXXXXX";
    const fs::path dir = mkdtemp(tmpl);
    const int port = 20000 + static_cast<int>(getpid() % 20000);
    const std::string cfg = (dir / "collector.yaml").string();
    std::ofstream(cfg) << "listen: \"127.0.0.1:" << port << "\"\ndatabase: " << (dir / "collector.db").string()
                       << "\nlog_level: warn\n";
    fs::permissions(cfg, fs::perms::owner_read | fs::perms::owner_write);
    const std::string cli = "'" + bin + "' ";
    const std::string with_cfg = " -f '" + cfg + "'";

    std::vector<Agent> fleet(static_cast<size_t>(agents) + 1);
    auto t_tokens = Clock::now();
    for (int i = 0; i <= agents; ++i) {
        Agent& a = fleet[static_cast<size_t>(i)];
        a.name = i == agents ? "backlog" : "agent-" + std::to_string(i);
        a.token = run(cli + "token create " + a.name + with_cfg);
        char spool[33];
        snprintf(spool, sizeof spool, "%032x", i + 1);
        a.spool = spool;
        if (a.token.rfind("pfc_", 0) != 0) {
            std::cerr << "token create " << a.name << " failed: " << a.token << "\n";
            return 1;
        }
    }
    std::printf("collector bench: %d agents (tokens made in %.1f s), %d MACs each, %s\n", agents,
                std::chrono::duration<double>(Clock::now() - t_tokens).count(), kMacs, dir.c_str());

    pid_t pid = fork();
    if (pid == 0) {
        execl(bin.c_str(), bin.c_str(), "serve", "-f", cfg.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    for (int i = 0; i < 100; ++i) {
        pf::HttpRequest h;
        h.url = base + "/api/v1/health";
        auto r = pf::http_request(h);
        if (r && r->status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    const int64_t now = static_cast<int64_t>(::time(nullptr));
    const int64_t open_ts = now / 300 * 300;
    int rc = 0;

    // steady: every agent once per 60 s, spread evenly, for steady_s seconds.
    {
        const double per_s = agents / 60.0;
        const int total = static_cast<int>(per_s * steady_s);
        std::vector<double> lat;
        lat.reserve(static_cast<size_t>(total));
        const double cpu0 = cpu_seconds(pid);
        const auto t0 = Clock::now();
        for (int n = 0; n < total; ++n) {
            auto due = t0 + std::chrono::microseconds(static_cast<int64_t>(n * 1e6 / per_s));
            std::this_thread::sleep_until(due);
            Agent& a = fleet[static_cast<size_t>(n % agents)];
            uint64_t v = 1000000 + static_cast<uint64_t>(n);
            auto r = report_for(a, now, bucket_rows(open_ts - 300 * (1 + n / agents), v), bucket_rows(open_ts, v));
            double ms = 0;
            if (!send(base, a, r, ms)) rc = 1;
            lat.push_back(ms);
        }
        const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        const double cpu = cpu_seconds(pid) - cpu0;
        std::printf(
            "  steady   %d agents / 60 s: %d reports in %.1f s, collector CPU %.2f %% of one CPU, "
            "latency p50 %.2f ms p99 %.2f ms, RSS %.1f MB\n",
            agents, total, wall, 100.0 * cpu / wall, percentile(lat, 0.5), percentile(lat, 0.99),
            static_cast<double>(rss_kb(pid)) / 1024.0);
    }

    // burst: 2 clients back to back for 10 s.
    {
        std::atomic<int> done{0};
        std::atomic<bool> stop{false};
        std::vector<std::vector<double>> lats(2);
        std::vector<std::thread> clients;
        const auto t0 = Clock::now();
        for (int c = 0; c < 2; ++c)
            clients.emplace_back([&, c] {
                for (int n = c; !stop; n += 2) {
                    Agent& a = fleet[static_cast<size_t>(n % agents)];
                    auto r = report_for(a, now, bucket_rows(open_ts - 300 * (100 + n), 7), bucket_rows(open_ts, 7));
                    double ms = 0;
                    if (send(base, a, r, ms)) done++;
                    lats[static_cast<size_t>(c)].push_back(ms);
                }
            });
        std::this_thread::sleep_for(std::chrono::seconds(10));
        stop = true;
        for (auto& t : clients) t.join();
        const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
        std::vector<double> all = lats[0];
        all.insert(all.end(), lats[1].begin(), lats[1].end());
        std::printf("  burst    2 clients: %.0f reports/s, %.0f rows/s committed, p99 %.2f ms\n", done / wall,
                    done * 2.0 * (kMacs + 1) / wall, percentile(all, 0.99));
    }

    // backlog: 30 days of one agent.
    {
        Agent& a = fleet.back();
        std::vector<pf::WireBucket> rows;
        for (int b = 8640; b >= 1; --b) {
            auto r = bucket_rows(open_ts - 300 * static_cast<int64_t>(b), static_cast<uint64_t>(b));
            rows.insert(rows.end(), r.begin(), r.end());
        }
        const auto t0 = Clock::now();
        size_t sent = 0;
        int reports = 0;
        double ms = 0;
        while (sent < rows.size()) {
            size_t n = std::min<size_t>(5000, rows.size() - sent);
            std::vector<pf::WireBucket> batch(rows.begin() + static_cast<long>(sent),
                                              rows.begin() + static_cast<long>(sent + n));
            if (!send(base, a, report_for(a, now, std::move(batch), {}), ms)) {
                rc = 1;
                break;
            }
            sent += n;
            reports++;
        }
        std::printf("  backlog  30 days x %d rows per bucket = %zu rows in %d reports: %.2f s; RSS now %.1f MB\n",
                    kMacs + 1, rows.size(), reports, std::chrono::duration<double>(Clock::now() - t0).count(),
                    static_cast<double>(rss_kb(pid)) / 1024.0);
    }

    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    fs::remove_all(dir);
    return rc;
}
