// Billing-history benchmarks: figures, not pass/fail.
//
//   pf_store_bench [--keep] [--only commit|month] [DIR]
//
//   DIR     where the databases go (default: a new directory in $TMPDIR or /tmp); removed at
//           the end unless --keep (then its path is printed, for EXPLAIN QUERY PLAN & co).
//
// (a) The daemon's hot path: one drain of 10 000 MACs (rx and tx in one row each) plus the
//     interface totals, committed in one transaction. Steady state is a drain into the
//     bucket that already holds every key (pure updates, no key-registry writes); the
//     first drain of a new 5-minute bucket inserts every row and moves every key's
//     registry entry. Target: 20 ms per commit.
// (b) A month report: 30 days of 5-minute buckets for 1 000 MACs (8.6 million rows, filled
//     with direct SQL into the store's own schema because going through 8 640 drains
//     would only measure (a) again), then Store::totals over the billing month, from the
//     raw buckets and again after Store::finalize rolled the days up. Target: 100 ms.
//
// Every figure is wall time with the process's CPU time beside it: on a shared machine the
// wall time includes waiting for a core, the CPU time does not include waiting for the disk.

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/store.hpp"

namespace fs = std::filesystem;
using namespace pf;

namespace {

using Clock = std::chrono::steady_clock;

double cpu_now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// One timed run: wall and CPU milliseconds.
struct Sample {
    double wall = 0, cpu = 0;
};

class Timer {
  public:
    Timer() : wall0_(Clock::now()), cpu0_(cpu_now_ms()) {}
    Sample done() const {
        return Sample{std::chrono::duration<double, std::milli>(Clock::now() - wall0_).count(), cpu_now_ms() - cpu0_};
    }

  private:
    Clock::time_point wall0_;
    double cpu0_;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// "median W ms (cpu C) max W ms (cpu C)  under T ms: yes/no" for a series.
std::string series(const std::vector<Sample>& s, double target) {
    std::vector<double> wall, cpu;
    for (const auto& x : s) {
        wall.push_back(x.wall);
        cpu.push_back(x.cpu);
    }
    double mw = median(wall), xw = *std::max_element(wall.begin(), wall.end());
    double mc = median(cpu), xc = *std::max_element(cpu.begin(), cpu.end());
    char buf[256];
    std::snprintf(buf, sizeof buf, "median %7.2f ms (cpu %7.2f)   max %7.2f ms (cpu %7.2f)   under %.0f ms: %s/%s", mw,
                  mc, xw, xc, target, mw < target ? "yes" : "NO", xw < target ? "yes" : "NO");
    return buf;
}

std::string one(const Sample& s) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%9.2f ms (cpu %9.2f)", s.wall, s.cpu);
    return buf;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "pf_store_bench: %s\n", what.c_str());
    std::exit(1);
}

void check(const Status& s, const char* what) {
    if (!s) die(std::string(what) + ": " + s.error().message());
}

// ---- (a) commits ----------------------------------------------------------------------

constexpr int kMacs = 10000;
constexpr int64_t kMacBase = 0x027066000000;

// One drain: every MAC and the interface moved by a little in both directions; the
// snapshots are the running totals, as the daemon's would be.
DrainRows make_drain(int64_t ts, std::vector<Counter>& snap_rx, std::vector<Counter>& snap_tx, uint64_t round) {
    DrainRows d;
    d.iface = "bench0";
    d.map_id = 42;
    d.boot_id = "bench-boot";
    d.rows.reserve(kMacs + 1);
    Counter total_rx, total_tx;
    for (int i = 0; i <= kMacs; i++) {
        BucketUpdate u;
        u.ts = ts;
        u.mac = i == kMacs ? kIfaceTotal : kMacBase + i;
        if (i < kMacs) {
            u.delta[PF_DIR_RX] = Counter{1000 + (round * 7 + static_cast<uint64_t>(i)) % 1500, 3};
            u.delta[PF_DIR_TX] = Counter{64 + (round * 3 + static_cast<uint64_t>(i)) % 900, 2};
            total_rx = Counter{total_rx.bytes + u.delta[PF_DIR_RX].bytes, total_rx.packets + 3};
            total_tx = Counter{total_tx.bytes + u.delta[PF_DIR_TX].bytes, total_tx.packets + 2};
        } else {
            u.delta[PF_DIR_RX] = total_rx;
            u.delta[PF_DIR_TX] = total_tx;
        }
        auto& sr = snap_rx[static_cast<size_t>(i)];
        auto& st = snap_tx[static_cast<size_t>(i)];
        sr = Counter{sr.bytes + u.delta[PF_DIR_RX].bytes, sr.packets + u.delta[PF_DIR_RX].packets};
        st = Counter{st.bytes + u.delta[PF_DIR_TX].bytes, st.packets + u.delta[PF_DIR_TX].packets};
        u.snap[PF_DIR_RX] = sr;
        u.snap[PF_DIR_TX] = st;
        d.rows.push_back(u);
    }
    return d;
}

void bench_commits(const std::string& dir) {
    std::printf("(a) committing one drain: %d MACs x rx/tx + interface totals = %d rows per transaction\n", kMacs,
                kMacs + 1);
    auto store = Store::open(dir + "/commit.db").take();
    // As the daemon runs it: WAL checkpoints on a background connection.
    store->start_background_checkpoints(std::chrono::seconds(5)).take();
    std::vector<Counter> snap_rx(kMacs + 1), snap_tx(kMacs + 1);
    int64_t ts = 1795190400;  // 2026-11-21 00:00:00 UTC
    uint64_t round = 0;

    auto commit = [&](int64_t bucket) {
        DrainRows d = make_drain(bucket, snap_rx, snap_tx, round++);  // built outside the timing
        Timer t;
        check(store->commit_drain({d}), "commit");
        return t.done();
    };

    Sample fresh = commit(ts);
    std::vector<Sample> steady, new_bucket, steady_late;
    for (int i = 0; i < 20; i++) steady.push_back(commit(ts));
    for (int b = 0; b < 8; b++) {
        ts += kBucketSeconds;
        new_bucket.push_back(commit(ts));
        for (int i = 0; i < 3; i++) commit(ts);
    }
    // The same again against a database that has grown by eight buckets.
    for (int i = 0; i < 20; i++) steady_late.push_back(commit(ts));

    std::printf("    first commit, fresh database (interface, 10001 inserts, key registry): %s\n", one(fresh).c_str());
    std::printf("    steady state, same bucket, 20 commits:          %s\n", series(steady, 20).c_str());
    std::printf("    first commit into a new bucket, 8 commits:      %s\n", series(new_bucket, 20).c_str());
    std::printf("    steady state after 9 buckets, 20 commits:       %s\n", series(steady_late, 20).c_str());
    std::printf("    (yes/no: the median and the worst commit under the target)\n");
}

// ---- (b) a month of buckets -----------------------------------------------------------

constexpr int kMonthMacs = 1000;

void exec(sqlite3* db, const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK)
        die(std::string(sql) + ": " + (msg ? msg : sqlite3_errmsg(db)));
}

// Fills [from, to) with one row per bucket for each MAC and the interface totals, in one
// transaction through one prepared statement: the store's schema, the store's column order.
size_t fill_month(const std::string& path, const Calendar& cal, int64_t from, int64_t to) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) die("open " + path);
    // A rollback journal and no syncs while filling: nothing here needs to survive a crash,
    // and a 400 MB WAL would only be copied again. WAL is put back for the store.
    exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;");
    exec(db, "BEGIN");
    exec(db, "INSERT INTO iface(id, name) VALUES(1, 'bench0')");
    exec(db, "INSERT INTO generation(iface_id, boot_id, map_id) VALUES(1, 'bench-boot', 42)");
    sqlite3_stmt* ins = nullptr;
    if (sqlite3_prepare_v2(db, "INSERT INTO bucket5m VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4, ?5, ?6, ?7)", -1, &ins,
                           nullptr) != SQLITE_OK)
        die(std::string("prepare: ") + sqlite3_errmsg(db));
    size_t rows = 0;
    uint64_t n = 0;
    for (int64_t ts = from; ts < to; ts += kBucketSeconds, n++) {
        int peak = cal.is_peak(ts) ? 1 : 0;
        uint64_t total_rx = 0, total_tx = 0;
        for (int i = 0; i <= kMonthMacs; i++) {
            uint64_t rx, tx;
            int64_t mac;
            if (i < kMonthMacs) {
                mac = kMacBase + i;
                rx = 1000 + (n * 13 + static_cast<uint64_t>(i) * 7) % 50000;
                tx = 100 + (n * 5 + static_cast<uint64_t>(i) * 3) % 9000;
                total_rx += rx;
                total_tx += tx;
            } else {
                mac = kIfaceTotal;
                rx = total_rx;
                tx = total_tx;
            }
            sqlite3_bind_int64(ins, 1, ts);
            sqlite3_bind_int64(ins, 2, mac);
            sqlite3_bind_int(ins, 3, peak);
            sqlite3_bind_int64(ins, 4, static_cast<int64_t>(rx));
            sqlite3_bind_int64(ins, 5, static_cast<int64_t>(rx / 700 + 1));
            sqlite3_bind_int64(ins, 6, static_cast<int64_t>(tx));
            sqlite3_bind_int64(ins, 7, static_cast<int64_t>(tx / 300 + 1));
            if (sqlite3_step(ins) != SQLITE_DONE) die(std::string("insert: ") + sqlite3_errmsg(db));
            sqlite3_reset(ins);
            rows++;
        }
    }
    sqlite3_finalize(ins);
    // Every key's latest snapshot is in the last bucket.
    std::string reg = "INSERT INTO key_last SELECT 1, mac, " + std::to_string(to - kBucketSeconds) +
                      " FROM bucket5m WHERE iface_id = 1 AND ts = " + std::to_string(to - kBucketSeconds);
    exec(db, reg.c_str());
    exec(db, "COMMIT");
    exec(db, "PRAGMA journal_mode=WAL");
    sqlite3_close(db);
    return rows;
}

struct Timed {
    std::vector<UsageRow> rows;
    Sample t;
};

Timed timed_totals(Store& st, int64_t from, int64_t to, const Filter& f = {}) {
    Timer t;
    auto r = st.totals(f, from, to);
    Sample s = t.done();
    if (!r) die("totals: " + r.error().message());
    return Timed{std::move(r.value()), s};
}

bool same(const std::vector<UsageRow>& a, const std::vector<UsageRow>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++)
        if (a[i].iface != b[i].iface || a[i].mac != b[i].mac || a[i].peak != b[i].peak ||
            !(a[i].dir[0] == b[i].dir[0]) || !(a[i].dir[1] == b[i].dir[1]))
            return false;
    return true;
}

void bench_month(const std::string& dir) {
    // Asia/Shanghai, peak 18:00-24:00, billing day 1: billing month 2026-11 is 30 local days,
    // 8 640 buckets, each MAC with a peak and an off-peak sum per day.
    auto cal = Calendar::create("Asia/Shanghai", {PeakWindow{}}, 1).take();
    BillingMonth month{2026, 11};
    int64_t from = cal.month_start(month), to = cal.month_end(month);
    std::printf("\n(b) one billing month: %s in %s, %lld days, %lld buckets x (%d MACs + interface totals)\n",
                month.str().c_str(), cal.tz_name().c_str(), static_cast<long long>((to - from) / 86400),
                static_cast<long long>((to - from) / kBucketSeconds), kMonthMacs);
    std::string path = dir + "/month.db";
    { auto st = Store::open(path).take(); }  // the schema, made by the store itself

    Timer tf;
    size_t rows = fill_month(path, cal, from, to);
    Sample fill = tf.done();
    std::printf("    fill (direct SQL, one transaction):   %zu rows in %.1f s (cpu %.1f s), database %.0f MB\n", rows,
                fill.wall / 1000, fill.cpu / 1000, static_cast<double>(fs::file_size(path)) / 1e6);

    auto st = Store::open(path).take();
    Filter one_mac{std::nullopt, kMacBase + 17};
    auto raw = timed_totals(*st, from, to);
    auto raw2 = timed_totals(*st, from, to);
    auto raw_one = timed_totals(*st, from, to, one_mac);
    std::printf("    totals from raw buckets, all MACs:   %s, again %s, %zu rows\n", one(raw.t).c_str(),
                one(raw2.t).c_str(), raw.rows.size());
    std::printf("    totals from raw buckets, one MAC:    %s\n", one(raw_one.t).c_str());

    Timer tz;
    check(st->finalize(cal, to), "finalize");
    Sample fin = tz.done();
    std::printf("    finalize (30 days, hours, month):    %.1f s (cpu %.1f s)\n", fin.wall / 1000, fin.cpu / 1000);

    std::vector<Sample> times;
    Timed rolled;
    for (int i = 0; i < 5; i++) {
        rolled = timed_totals(*st, from, to);
        times.push_back(rolled.t);
    }
    auto rolled_one = timed_totals(*st, from, to, one_mac);
    std::printf("    totals after roll-up, all MACs, 5 runs (first %s), %zu rows:\n        %s\n", one(times[0]).c_str(),
                rolled.rows.size(), series(times, 100).c_str());
    std::printf("    totals after roll-up, one MAC:       %s\n", one(rolled_one.t).c_str());
    std::printf("    same result before and after roll-up: %s\n",
                same(raw.rows, rolled.rows) && same(raw_one.rows, rolled_one.rows) ? "yes" : "NO");
    // The month so far as a report would ask for it mid-month: 10 finished days plus the
    // first 7 hours of today, which can only come from the buckets.
    auto mtd = timed_totals(*st, from, from + 10 * 86400 + 7 * 3600);
    std::printf("    totals 10 days + 7 hours (from daily rows + today's buckets): %s\n", one(mtd.t).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);    // the figures only
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is known, also into a file
    bool keep = false;
    std::string only, base;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--keep") {
            keep = true;
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (!a.empty() && a[0] == '-') {
            die("usage: pf_store_bench [--keep] [--only commit|month] [DIR]");
        } else {
            base = a;
        }
    }
    if (base.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        base = tmp && *tmp ? tmp : "/tmp";
    }
    std::string tmpl = base + "/pf-store-bench.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) die("mkdtemp in " + base + ": " + std::strerror(errno));
    std::string dir = buf.data();
    std::printf("peakflow-bpf store benchmark: SQLite %s, databases in %s\n\n", sqlite3_libversion(), dir.c_str());
    auto cleanup = [&] {
        std::error_code ec;
        if (keep)
            std::printf("\nkept %s\n", dir.c_str());
        else
            fs::remove_all(dir, ec);
    };
    try {
        if (only.empty() || only == "commit") bench_commits(dir);
        if (only.empty() || only == "month") bench_month(dir);
    } catch (const std::exception& e) {
        cleanup();
        die(e.what());
    }
    cleanup();
    return 0;
}
