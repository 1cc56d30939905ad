// Flow export benchmarks: figures, not pass/fail.
//
//   pf_export_bench [RECORDS]   (default 2 000 000)
//
// (a) Records per second written through RollingCsvWriter (CSV formatting + gzip level 1 +
//     the file in $TMPDIR, rotated at the default 100 MB; the files are removed at the end).
//     Target: 500 000 records/s.
// (b) Records per second encoded into IPFIX messages (1500-byte MTU), no sending.
// Each figure is wall time with the process's CPU time beside it.

#include <spdlog/spdlog.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "peakflow/export/flow_export.hpp"

using namespace pf;

namespace {

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

std::vector<FlowRecord> make_records(size_t n) {
    std::vector<FlowRecord> v(n);
    for (size_t i = 0; i < n; i++) {
        auto& r = v[i];
        r.key.family = i % 10 == 0 ? 6 : 4;
        if (r.key.family == 4) {
            r.key.src_addr[10] = r.key.src_addr[11] = r.key.dst_addr[10] = r.key.dst_addr[11] = 0xff;
            r.key.src_addr[12] = 10, r.key.src_addr[15] = uint8_t(i);
            r.key.dst_addr[12] = 192, r.key.dst_addr[14] = uint8_t(i >> 8);
        } else {
            r.key.src_addr[0] = 0x20, r.key.src_addr[15] = uint8_t(i);
            r.key.dst_addr[0] = 0x20, r.key.dst_addr[14] = uint8_t(i >> 8);
        }
        r.key.src_mac[5] = uint8_t(i);
        r.key.dst_mac[5] = uint8_t(i >> 3);
        r.key.src_port = uint16_t(1024 + i % 60000);
        r.key.dst_port = 443;
        r.key.proto = 6;
        r.key.dir = uint8_t(i & 1);
        r.iface = "eth0";
        r.ifindex = 2;
        r.start_ms = 1700000000000 + int64_t(i / 1000);
        r.end_ms = r.start_ms + 4321;
        r.packets = 1 + i % 1000;
        r.bytes = r.packets * 800;
        r.tcp_flags = 0x1b;
    }
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
    auto recs = make_records(n);
    const char* tmp = std::getenv("TMPDIR");
    auto dir = std::filesystem::path(tmp ? tmp : "/tmp") / ("pf_export_bench_" + std::to_string(getpid()));

    {
        ExportFilesConfig cfg;
        cfg.directory = dir.string();
        cfg.timezone = "UTC";
        RollingCsvWriter w(cfg, [] { return int64_t(1700000000); });
        if (!w.open_dir()) return 1;
        auto t0 = std::chrono::steady_clock::now();
        double c0 = cpu_seconds();
        const size_t batch = 4096;  // about what one scan of a busy map yields
        for (size_t i = 0; i < n; i += batch) {
            std::vector<FlowRecord> b(recs.begin() + long(i), recs.begin() + long(std::min(n, i + batch)));
            if (!w.write(b)) return 1;
        }
        if (!w.close()) return 1;
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double c = cpu_seconds() - c0;
        uint64_t gz = 0;
        for (const auto& f : list_spool(dir.string(), cfg.prefix)) gz += f.size;
        std::printf(
            "gzip CSV: %zu records in %.3f s wall (%.3f s CPU): %.0f records/s wall, %.0f records/s CPU; "
            "%llu files, %.1f bytes/record compressed\n",
            n, s, c, double(n) / s, double(n) / c, (unsigned long long)w.files_written(), double(gz) / double(n));
        std::filesystem::remove_all(dir);
    }
    {
        IpfixEncoder e(1, 1500);
        size_t bytes = 0, msgs = 0;
        auto t0 = std::chrono::steady_clock::now();
        double c0 = cpu_seconds();
        const size_t batch = 4096;
        for (size_t i = 0; i < n; i += batch) {
            std::vector<FlowRecord> b(recs.begin() + long(i), recs.begin() + long(std::min(n, i + batch)));
            for (const auto& m : e.encode(b, 1700000000, i == 0)) bytes += m.size(), msgs++;
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double c = cpu_seconds() - c0;
        std::printf(
            "IPFIX encode: %zu records in %.3f s wall (%.3f s CPU): %.0f records/s wall, %.0f records/s CPU; "
            "%zu messages, %zu bytes\n",
            n, s, c, double(n) / s, double(n) / c, msgs, bytes);
    }
    return 0;
}
