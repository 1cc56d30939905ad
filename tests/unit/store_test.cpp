// The billing history against real SQLite files in a fresh temporary directory per test.
// Expected values never come from the store itself: sums are accumulated by the test from
// the rows it commits, day and month boundaries are hand-computed UTC epochs (checked with
// `TZ=... date -d ... +%s`), and what the store wrote is read back through a second,
// independent sqlite3 connection as well as through the Store API.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/store.hpp"

namespace pf {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMacB = 0x02706600000b;  // 02:70:66:00:00:0b
constexpr int64_t kMacC = 0x02706600000c;
constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

// A second connection to the same file, as another process would have one: it sees only
// what was committed, and can hold locks or change the schema behind the Store's back.
class Sql {
  public:
    explicit Sql(const std::string& path) {
        int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
        if (rc != SQLITE_OK) ADD_FAILURE() << "sqlite3_open_v2 " << path << ": " << sqlite3_errstr(rc);
        sqlite3_busy_timeout(db_, 5000);
    }
    ~Sql() { sqlite3_close(db_); }
    Sql(const Sql&) = delete;
    Sql& operator=(const Sql&) = delete;

    void exec(const std::string& sql) {
        char* msg = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK)
            ADD_FAILURE() << sql << ": " << (msg ? msg : "?");
        sqlite3_free(msg);
    }

    // Every row as "a|b|c", in the order the query gives; NULL prints as "NULL".
    std::vector<std::string> rows(const std::string& sql) {
        std::vector<std::string> out;
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
            return out;
        }
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            std::string row;
            for (int c = 0; c < sqlite3_column_count(s); c++) {
                if (c) row += "|";
                const unsigned char* t = sqlite3_column_text(s, c);
                row += t ? reinterpret_cast<const char*>(t) : "NULL";
            }
            out.push_back(row);
        }
        if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
        sqlite3_finalize(s);
        return out;
    }

    std::string one(const std::string& sql) {
        auto r = rows(sql);
        if (r.size() != 1) {
            ADD_FAILURE() << sql << ": expected one row, got " << r.size();
            return "";
        }
        return r[0];
    }

  private:
    sqlite3* db_ = nullptr;
};

Counter ctr(uint64_t bytes, uint64_t packets) {
    return Counter{bytes, packets};
}

BucketUpdate upd(int64_t ts, int64_t mac, bool peak, Counter rx, Counter tx, Counter snap_rx, Counter snap_tx) {
    BucketUpdate u;
    u.ts = ts;
    u.mac = mac;
    u.peak = peak;
    u.delta[PF_DIR_RX] = rx;
    u.delta[PF_DIR_TX] = tx;
    u.snap[PF_DIR_RX] = snap_rx;
    u.snap[PF_DIR_TX] = snap_tx;
    return u;
}

DrainRows drain_of(const std::string& iface, std::vector<BucketUpdate> rows, uint32_t map_id = 7,
                   bool new_generation = false) {
    DrainRows d;
    d.iface = iface;
    d.map_id = map_id;
    d.boot_id = "boot-1";
    d.new_generation = new_generation;
    d.rows = std::move(rows);
    return d;
}

// Sums as the test expects them, keyed like Store::totals: (iface, mac, peak).
struct Sum {
    uint64_t rxb = 0, rxp = 0, txb = 0, txp = 0;
    void add(const BucketUpdate& u) {
        rxb += u.delta[PF_DIR_RX].bytes;
        rxp += u.delta[PF_DIR_RX].packets;
        txb += u.delta[PF_DIR_TX].bytes;
        txp += u.delta[PF_DIR_TX].packets;
    }
};
using Key = std::tuple<std::string, int64_t, bool>;
using Model = std::map<Key, Sum>;

std::string describe(const std::string& iface, int64_t mac, bool peak, int64_t ts, uint64_t rxb, uint64_t rxp,
                     uint64_t txb, uint64_t txp) {
    return iface + " mac=" + std::to_string(mac) + " peak=" + std::to_string(peak) + " ts=" + std::to_string(ts) +
           " rx=" + std::to_string(rxb) + "/" + std::to_string(rxp) + " tx=" + std::to_string(txb) + "/" +
           std::to_string(txp);
}

std::vector<std::string> describe(const std::vector<UsageRow>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows)
        out.push_back(describe(r.iface, r.mac, r.peak, r.ts, r.dir[PF_DIR_RX].bytes, r.dir[PF_DIR_RX].packets,
                               r.dir[PF_DIR_TX].bytes, r.dir[PF_DIR_TX].packets));
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> describe(const Model& m) {
    std::vector<std::string> out;
    for (const auto& [k, s] : m)
        out.push_back(describe(std::get<0>(k), std::get<1>(k), std::get<2>(k), 0, s.rxb, s.rxp, s.txb, s.txp));
    std::sort(out.begin(), out.end());
    return out;
}

// Model restricted to rows with ts in [from, to).
Model model_of(const std::vector<DrainRows>& drains, int64_t from, int64_t to) {
    Model m;
    for (const auto& d : drains)
        for (const auto& r : d.rows)
            if (r.ts >= from && r.ts < to) m[{d.iface, r.mac, r.peak}].add(r);
    return m;
}

std::vector<std::string> totals_of(Store& st, int64_t from, int64_t to, const Filter& f = {}) {
    auto r = st.totals(f, from, to);
    if (!r) {
        ADD_FAILURE() << "totals: " << r.error().message();
        return {};
    }
    return describe(*r);
}

// What the daily table holds for one day, in the form of describe(Model): "iface mac peak".
std::vector<std::string> daily_rows(Sql& sql, const std::string& day) {
    auto rows = sql.rows(
        "SELECT i.name, d.mac, d.peak, d.rx_bytes, d.rx_packets, d.tx_bytes, d.tx_packets FROM daily d "
        "JOIN iface i ON i.id = d.iface_id WHERE d.day = '" +
        day + "'");
    std::vector<std::string> out;
    for (const auto& r : rows) {
        long long mac;
        int peak;
        unsigned long long a, b, c, d;
        char name[64];
        if (sscanf(r.c_str(), "%63[^|]|%lld|%d|%llu|%llu|%llu|%llu", name, &mac, &peak, &a, &b, &c, &d) != 7) {
            ADD_FAILURE() << "bad daily row " << r;
            continue;
        }
        out.push_back(describe(name, mac, peak != 0, 0, a, b, c, d));
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Drains spread over [from, to), one every `step` seconds (a multiple of 300 unless the
// caller rounds), each with rows for the interface totals and two MACs (MAC C only every
// third drain), with counts that differ per drain so a row counted twice or dropped changes
// every sum. Snapshots are the running totals.
// `peak_from`/`peak_to` mark the (UTC) range the caller says is peak.
std::vector<DrainRows> spread(const std::string& iface, int64_t from, int64_t to, int64_t step, int64_t peak_from = 0,
                              int64_t peak_to = 0) {
    std::vector<DrainRows> drains;
    std::map<int64_t, std::array<Counter, 2>> snap;
    uint64_t i = 0;
    for (int64_t ts = from; ts < to; ts += step, i++) {
        bool peak = ts >= peak_from && ts < peak_to;
        std::vector<BucketUpdate> rows;
        for (int64_t mac : {kIfaceTotal, kMacB, kMacC}) {
            if (mac == kMacC && i % 3 != 0) continue;
            Counter rx = ctr(1000 + i * 7 + static_cast<uint64_t>(mac & 0xf), 1 + i % 5);
            Counter tx = ctr(40 + i * 3, 1 + i % 2);
            auto& s = snap[mac];
            s[0] = ctr(s[0].bytes + rx.bytes, s[0].packets + rx.packets);
            s[1] = ctr(s[1].bytes + tx.bytes, s[1].packets + tx.packets);
            rows.push_back(upd(ts, mac, peak, rx, tx, s[0], s[1]));
        }
        drains.push_back(drain_of(iface, std::move(rows)));
    }
    return drains;
}

class StoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf-store-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/var/lib/peakflow/h.db";  // directories that do not exist yet
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::unique_ptr<Store> open(bool read_only = false) {
        auto r = Store::open(path_, read_only);
        if (!r) {
            ADD_FAILURE() << "open " << path_ << ": " << r.error().message();
            return nullptr;
        }
        return std::move(r.value());
    }

    static void commit(Store& st, const std::vector<DrainRows>& drains) {
        auto s = st.commit_drain(drains);
        ASSERT_TRUE(s.ok()) << s.error().message();
    }
    // Each drain in its own transaction, as the daemon commits them.
    static void commit_each(Store& st, const std::vector<DrainRows>& drains) {
        for (const auto& d : drains) ASSERT_NO_FATAL_FAILURE(commit(st, {d}));
    }
    static void finalize(Store& st, const Calendar& cal, int64_t now) {
        auto s = st.finalize(cal, now);
        ASSERT_TRUE(s.ok()) << s.error().message();
    }

    std::string dir_, path_;
};

using StoreOpen = StoreTest;
using StoreCommit = StoreTest;
using StoreResume = StoreTest;
using StoreFailure = StoreTest;
using StoreFinalize = StoreTest;
using StoreRetention = StoreTest;
using StoreTotals = StoreTest;

// ---- opening ----------------------------------------------------------------------------

TEST_F(StoreOpen, FreshOpenCreatesTheDirectoryAndSchemaVersion1InWalMode) {
    ASSERT_FALSE(fs::exists(fs::path(path_).parent_path()));
    auto st = open();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->path(), path_);
    EXPECT_TRUE(fs::is_regular_file(path_));

    Sql sql(path_);
    EXPECT_EQ(
        sql.rows("SELECT key, value FROM meta"),
        (std::vector<std::string>{"schema_version|1", "schema_version.imported|1", "schema_version.uplink_resend|1"}));
    EXPECT_EQ(sql.one("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(sql.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
              (std::vector<std::string>{"bucket5m", "daily", "finalized", "generation", "hourly", "iface", "imported",
                                        "key_last", "meta", "monthly", "uplink_resend"}));
    auto ifaces = st->interfaces();
    ASSERT_TRUE(ifaces);
    EXPECT_TRUE(ifaces->empty());
    auto res = st->load_resume("pf0");
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->found);
    EXPECT_TRUE(res->snapshots.empty());
}

TEST_F(StoreOpen, ReopenKeepsDataAndDoesNotMigrateAgain) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    std::vector<DrainRows> drains = {
        drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(500, 5), ctr(300, 3), ctr(500, 5), ctr(300, 3)),
                         upd(t0, kMacB, false, ctr(400, 4), ctr(200, 2), ctr(400, 4), ctr(200, 2))})};
    {
        auto st = open();
        ASSERT_TRUE(st);
        commit(*st, drains);
    }
    auto st = open();
    ASSERT_TRUE(st);
    EXPECT_EQ(totals_of(*st, t0, t0 + kDay), describe(model_of(drains, t0, t0 + kDay)));
    auto res = st->load_resume("pf0");
    ASSERT_TRUE(res);
    EXPECT_TRUE(res->found);
    EXPECT_EQ(res->map_id, 7u);
    EXPECT_EQ(res->boot_id, "boot-1");
    ASSERT_EQ(res->snapshots.size(), 2u);
    EXPECT_EQ(res->snapshots[kMacB][PF_DIR_RX], ctr(400, 4));
    Sql sql(path_);
    EXPECT_EQ(
        sql.rows("SELECT key, value FROM meta"),
        (std::vector<std::string>{"schema_version|1", "schema_version.imported|1", "schema_version.uplink_resend|1"}));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM bucket5m"), "2");
}

TEST_F(StoreOpen, ReadOnlyOpenOfAMissingFileSaysNoHistoryYet) {
    auto r = Store::open(path_, true);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "no history yet: " + path_ +
                                       " does not exist (the daemon ('peakflow-bpf attach') creates it with its "
                                       "first drain)");
    EXPECT_FALSE(fs::exists(fs::path(path_).parent_path())) << "a read-only open must not create anything";
}

TEST_F(StoreOpen, GarbageFileIsRefusedWithItsPathAndLeftAlone) {
    fs::create_directories(fs::path(path_).parent_path());
    std::string garbage;
    for (int i = 0; i < 4096; i++) garbage += static_cast<char>((i * 131 + 7) & 0xff);
    std::ofstream(path_, std::ios::binary) << garbage;

    auto rw = Store::open(path_);
    ASSERT_FALSE(rw);
    EXPECT_EQ(rw.error().message(),
              "SQL in " + path_ + ": file is not a database (the file is corrupt or not a peakflow database)");
    auto ro = Store::open(path_, true);
    ASSERT_FALSE(ro);
    EXPECT_EQ(ro.error().message(), "read schema version in " + path_ +
                                        ": file is not a database (the file is corrupt or not a peakflow database)");

    // Neither open may have "repaired" the file by writing a new database over it.
    std::ifstream in(path_, std::ios::binary);
    std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(after == garbage) << "the garbage file was modified";
}

TEST_F(StoreOpen, NewerSchemaIsRefused) {
    {
        auto st = open();
        ASSERT_TRUE(st);
    }
    {
        Sql sql(path_);
        sql.exec("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    }
    auto rw = Store::open(path_);
    ASSERT_FALSE(rw);
    EXPECT_EQ(rw.error().message(), "database " + path_ + " has schema 2, newer than this peakflow-bpf knows (1)");
    auto ro = Store::open(path_, true);
    ASSERT_FALSE(ro);
    EXPECT_EQ(ro.error().message(), "database " + path_ + " has schema 2, this build reads 1");
}

TEST_F(StoreOpen, ReadOnlyStoreReadsButCannotCommit) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto drains = spread("pf0", t0, t0 + kHour, 300);
    {
        auto st = open();
        ASSERT_TRUE(st);
        commit_each(*st, drains);
    }
    auto ro = open(true);
    ASSERT_TRUE(ro);
    EXPECT_EQ(totals_of(*ro, t0, t0 + kHour), describe(model_of(drains, t0, t0 + kHour)));
    auto s = ro->commit_drain({drains[0]});
    ASSERT_FALSE(s);
    // BEGIN IMMEDIATE succeeds on a read-only connection; the first write is refused.
    EXPECT_EQ(s.error().message(), "write generation in " + path_ +
                                       ": attempt to write a readonly database (the database or its directory is "
                                       "read-only)");
    auto again = open(true);
    ASSERT_TRUE(again);
    EXPECT_EQ(totals_of(*again, t0, t0 + kHour), describe(model_of(drains, t0, t0 + kHour)));
}

// ---- committing drains ------------------------------------------------------------------

TEST_F(StoreCommit, TwoDrainsIntoOneBucketAddTheirDeltasAndKeepTheLastSnapshot) {
    const int64_t ts = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    commit(*st, {drain_of("pf0", {upd(ts, kIfaceTotal, false, ctr(100, 1), ctr(60, 1), ctr(100, 1), ctr(60, 1)),
                                  upd(ts, kMacB, false, ctr(100, 1), ctr(60, 1), ctr(100, 1), ctr(60, 1))})});
    commit(*st, {drain_of("pf0", {upd(ts, kIfaceTotal, false, ctr(1500, 2), ctr(70, 1), ctr(1600, 3), ctr(130, 2)),
                                  upd(ts, kMacB, false, ctr(1500, 2), ctr(70, 1), ctr(1600, 3), ctr(130, 2))})});

    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT ts, mac, peak, rx_bytes, rx_packets, tx_bytes, tx_packets, snap_rx_bytes, "
                       "snap_rx_packets, snap_tx_bytes, snap_tx_packets FROM bucket5m ORDER BY mac"),
              (std::vector<std::string>{"1767225600|-1|0|1600|3|130|2|1600|3|130|2",
                                        "1767225600|" + std::to_string(kMacB) + "|0|1600|3|130|2|1600|3|130|2"}));
    EXPECT_EQ(sql.rows("SELECT mac, ts FROM key_last ORDER BY mac"),
              (std::vector<std::string>{"-1|1767225600", std::to_string(kMacB) + "|1767225600"}));
    auto b = st->buckets(Filter{}, ts, ts + 300);
    ASSERT_TRUE(b);
    EXPECT_EQ(describe(*b),
              (std::vector<std::string>{"pf0 mac=-1 peak=0 ts=1767225600 rx=1600/3 tx=130/2",
                                        "pf0 mac=2681770868747 peak=0 ts=1767225600 rx=1600/3 tx=130/2"}));
}

TEST_F(StoreCommit, RowsInDifferentBucketsStaySeparateAndTheKeyRegistryFollowsTheLatest) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    commit(*st, {drain_of("pf0", {upd(t0, kMacB, false, ctr(10, 1), ctr(20, 1), ctr(10, 1), ctr(20, 1))})});
    commit(*st, {drain_of("pf0", {upd(t0 + 300, kMacB, false, ctr(11, 1), ctr(0, 0), ctr(21, 2), ctr(20, 1)),
                                  upd(t0 + 300, kMacC, true, ctr(5, 1), ctr(6, 1), ctr(5, 1), ctr(6, 1))})});
    commit(*st, {drain_of("pf0", {upd(t0 + 900, kMacB, true, ctr(12, 1), ctr(1, 1), ctr(33, 3), ctr(21, 2))})});

    auto b = st->buckets(Filter{}, t0, t0 + kHour);
    ASSERT_TRUE(b);
    EXPECT_EQ(describe(*b), (std::vector<std::string>{"pf0 mac=2681770868747 peak=0 ts=1767225600 rx=10/1 tx=20/1",
                                                      "pf0 mac=2681770868747 peak=0 ts=1767225900 rx=11/1 tx=0/0",
                                                      "pf0 mac=2681770868747 peak=1 ts=1767226500 rx=12/1 tx=1/1",
                                                      "pf0 mac=2681770868748 peak=1 ts=1767225900 rx=5/1 tx=6/1"}));
    // [from, to) is half-open.
    auto half = st->buckets(Filter{std::nullopt, kMacB}, t0 + 300, t0 + 900);
    ASSERT_TRUE(half);
    EXPECT_EQ(describe(*half), (std::vector<std::string>{"pf0 mac=2681770868747 peak=0 ts=1767225900 rx=11/1 tx=0/0"}));
    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT mac, ts FROM key_last ORDER BY mac"),
              (std::vector<std::string>{std::to_string(kMacB) + "|1767226500", std::to_string(kMacC) + "|1767225900"}));
    EXPECT_EQ(totals_of(*st, t0, t0 + kHour), (std::vector<std::string>{
                                                  "pf0 mac=2681770868747 peak=0 ts=0 rx=21/2 tx=20/1",
                                                  "pf0 mac=2681770868747 peak=1 ts=0 rx=12/1 tx=1/1",
                                                  "pf0 mac=2681770868748 peak=1 ts=0 rx=5/1 tx=6/1",
                                              }));
}

// The fleet uplink seals buckets it has read (meta uplink.sealed_until); a drain writing
// into one lists the row, in its own transaction, so the new totals are sent again.
TEST_F(StoreCommit, RowsWrittenIntoBucketsTheUplinkSealedAreListedForResend) {
    const int64_t t0 = 1767225600;
    auto st = open();
    ASSERT_TRUE(st);
    auto rows = [&] {
        return drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(1, 1), ctr(1, 1), ctr(1, 1), ctr(1, 1)),
                                upd(t0 + 300, kMacB, false, ctr(1, 1), ctr(1, 1), ctr(2, 2), ctr(2, 2)),
                                upd(t0 + 600, kMacC, false, ctr(1, 1), ctr(1, 1), ctr(3, 3), ctr(3, 3))});
    };
    ASSERT_NO_FATAL_FAILURE(commit(*st, {rows()}));
    Sql sql(path_);
    EXPECT_TRUE(sql.rows("SELECT * FROM uplink_resend").empty());  // no uplink: nothing listed
    sql.exec("INSERT INTO meta VALUES('uplink.sealed_until', '" + std::to_string(t0 + 600) + "')");
    ASSERT_NO_FATAL_FAILURE(commit(*st, {rows()}));
    ASSERT_NO_FATAL_FAILURE(commit(*st, {rows()}));  // listed once, however often written
    const std::vector<std::string> want = {"1|" + std::to_string(t0) + "|-1",
                                           "1|" + std::to_string(t0 + 300) + "|" + std::to_string(kMacB)};
    EXPECT_EQ(sql.rows("SELECT iface_id, ts, mac FROM uplink_resend ORDER BY ts"), want);
}

TEST_F(StoreCommit, SeveralInterfacesInOneDrainAreKeptApartAndFilterable) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    commit(*st, {drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(1, 1), ctr(2, 1), ctr(1, 1), ctr(2, 1)),
                                  upd(t0, kMacB, false, ctr(1, 1), ctr(2, 1), ctr(1, 1), ctr(2, 1))}),
                 drain_of("pf1",
                          {upd(t0, kIfaceTotal, false, ctr(30, 3), ctr(40, 4), ctr(30, 3), ctr(40, 4)),
                           upd(t0, kMacB, false, ctr(30, 3), ctr(40, 4), ctr(30, 3), ctr(40, 4))},
                          9)});
    auto names = st->interfaces();
    ASSERT_TRUE(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"pf0", "pf1"}));
    EXPECT_EQ(totals_of(*st, t0, t0 + 300, Filter{std::string("pf1"), std::nullopt}),
              (std::vector<std::string>{"pf1 mac=-1 peak=0 ts=0 rx=30/3 tx=40/4",
                                        "pf1 mac=2681770868747 peak=0 ts=0 rx=30/3 tx=40/4"}));
    EXPECT_EQ(
        totals_of(*st, t0, t0 + 300, Filter{std::nullopt, kIfaceTotal}),
        (std::vector<std::string>{"pf0 mac=-1 peak=0 ts=0 rx=1/1 tx=2/1", "pf1 mac=-1 peak=0 ts=0 rx=30/3 tx=40/4"}));
    auto r1 = st->load_resume("pf1");
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->map_id, 9u);
    auto r0 = st->load_resume("pf0");
    ASSERT_TRUE(r0);
    EXPECT_EQ(r0->map_id, 7u);
}

// ---- resuming after a restart -----------------------------------------------------------

TEST_F(StoreResume, ReturnsExactlyTheLastSnapshotPerKeyAndTheGeneration) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    {
        auto st = open();
        ASSERT_TRUE(st);
        commit(*st, {drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(10, 1), ctr(20, 2), ctr(10, 1), ctr(20, 2)),
                                      upd(t0, kMacB, false, ctr(10, 1), ctr(20, 2), ctr(10, 1), ctr(20, 2)),
                                      upd(t0, kMacC, false, ctr(3, 1), ctr(4, 1), ctr(3, 1), ctr(4, 1))})});
        // A later bucket for two of the keys; MAC C's latest snapshot stays in t0.
        commit(*st, {drain_of("pf0", {upd(t0 + 600, kIfaceTotal, true, ctr(5, 1), ctr(0, 0), ctr(15, 2), ctr(20, 2)),
                                      upd(t0 + 600, kMacB, true, ctr(5, 1), ctr(0, 0), ctr(15, 2), ctr(20, 2))})});
        // And again in the same bucket: the snapshot moves on, the registry stays.
        commit(*st, {drain_of("pf0", {upd(t0 + 600, kMacB, true, ctr(0, 0), ctr(7, 1), ctr(15, 2), ctr(27, 3))})});
    }
    auto st = open();
    ASSERT_TRUE(st);
    auto res = st->load_resume("pf0");
    ASSERT_TRUE(res);
    EXPECT_TRUE(res->found);
    EXPECT_EQ(res->boot_id, "boot-1");
    EXPECT_EQ(res->map_id, 7u);
    std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> want = {
        {kIfaceTotal, {ctr(15, 2), ctr(20, 2)}},
        {kMacB, {ctr(15, 2), ctr(27, 3)}},
        {kMacC, {ctr(3, 1), ctr(4, 1)}},
    };
    EXPECT_EQ(res->snapshots, want);
    auto other = st->load_resume("pf9");
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->found);
    EXPECT_TRUE(other->snapshots.empty());
}

TEST_F(StoreResume, NewGenerationDropsOlderSnapshotsOfThatInterfaceOnly) {
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    {
        auto st = open();
        ASSERT_TRUE(st);
        commit(*st, {drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(10, 1), ctr(20, 2), ctr(10, 1), ctr(20, 2)),
                                      upd(t0, kMacB, false, ctr(10, 1), ctr(20, 2), ctr(10, 1), ctr(20, 2)),
                                      upd(t0, kMacC, false, ctr(3, 1), ctr(4, 1), ctr(3, 1), ctr(4, 1))}),
                     drain_of("pf1", {upd(t0, kMacC, false, ctr(8, 1), ctr(9, 1), ctr(8, 1), ctr(9, 1))})});
        // The maps of pf0 were re-created (map id 8): counters start from zero, MAC C not seen
        // since. The new snapshot lands in the same bucket as the old one.
        commit(*st, {drain_of("pf0",
                              {upd(t0, kIfaceTotal, false, ctr(2, 1), ctr(0, 0), ctr(2, 1), ctr(0, 0)),
                               upd(t0, kMacB, false, ctr(2, 1), ctr(0, 0), ctr(2, 1), ctr(0, 0))},
                              8, true)});
    }
    auto st = open();
    ASSERT_TRUE(st);
    auto res = st->load_resume("pf0");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->map_id, 8u);
    std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> want = {
        {kIfaceTotal, {ctr(2, 1), ctr(0, 0)}},
        {kMacB, {ctr(2, 1), ctr(0, 0)}},
    };
    EXPECT_EQ(res->snapshots, want) << "MAC C belongs to the old maps and must not be resumed";
    auto other = st->load_resume("pf1");
    ASSERT_TRUE(other);
    std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> want1 = {{kMacC, {ctr(8, 1), ctr(9, 1)}}};
    EXPECT_EQ(other->snapshots, want1);
    // The deltas of both generations are history and stay counted.
    EXPECT_EQ(totals_of(*st, t0, t0 + 300, Filter{std::string("pf0"), std::nullopt}),
              (std::vector<std::string>{"pf0 mac=-1 peak=0 ts=0 rx=12/2 tx=20/2",
                                        "pf0 mac=2681770868747 peak=0 ts=0 rx=12/2 tx=20/2",
                                        "pf0 mac=2681770868748 peak=0 ts=0 rx=3/1 tx=4/1"}));
}

TEST_F(StoreResume, NewGenerationInTheSameProcessAlsoRewritesTheRegistry) {
    // Same as above without reopening: the Store's cache of registry rows must be dropped
    // with the rows, or the key would never be registered again in its current bucket.
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    commit(*st, {drain_of("pf0", {upd(t0, kMacB, false, ctr(10, 1), ctr(20, 2), ctr(10, 1), ctr(20, 2))})});
    commit(*st, {drain_of("pf0", {upd(t0, kMacB, false, ctr(2, 1), ctr(0, 0), ctr(2, 1), ctr(0, 0))}, 8, true)});
    auto res = st->load_resume("pf0");
    ASSERT_TRUE(res);
    std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> want = {{kMacB, {ctr(2, 1), ctr(0, 0)}}};
    EXPECT_EQ(res->snapshots, want);
    auto fresh = open();
    ASSERT_TRUE(fresh);
    auto res2 = fresh->load_resume("pf0");
    ASSERT_TRUE(res2);
    EXPECT_EQ(res2->snapshots, want);
}

// ---- failed commits ---------------------------------------------------------------------

TEST_F(StoreFailure, LockedDatabaseFailsTheCommitAndTheMergedRetryIsExact) {
    // Another process holds the write lock for longer than the store's 5 s busy timeout.
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    auto first = drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(100, 1), ctr(50, 1), ctr(100, 1), ctr(50, 1)),
                                  upd(t0, kMacB, false, ctr(100, 1), ctr(50, 1), ctr(100, 1), ctr(50, 1))});
    commit(*st, {first});
    auto pending = drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(7, 1), ctr(0, 0), ctr(107, 2), ctr(50, 1)),
                                    upd(t0, kMacB, false, ctr(7, 1), ctr(0, 0), ctr(107, 2), ctr(50, 1))});
    {
        Sql other(path_);
        other.exec("BEGIN EXCLUSIVE");
        auto s = st->commit_drain({pending});
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().message(), "SQL in " + path_ + ": database is locked");
        other.exec("ROLLBACK");
    }
    Sql sql(path_);
    EXPECT_EQ(sql.one("SELECT rx_bytes, snap_rx_bytes FROM bucket5m WHERE mac = -1"), "100|100");

    // The next drain (a new bucket) goes with the kept rows, as the daemon does it.
    auto next = drain_of("pf0", {upd(t0 + 300, kIfaceTotal, false, ctr(1, 1), ctr(2, 1), ctr(108, 3), ctr(52, 2)),
                                 upd(t0 + 300, kMacB, false, ctr(1, 1), ctr(2, 1), ctr(108, 3), ctr(52, 2))});
    merge_drain_rows(pending, next);
    commit(*st, {pending});
    EXPECT_EQ(totals_of(*st, t0, t0 + kHour), (std::vector<std::string>{
                                                  "pf0 mac=-1 peak=0 ts=0 rx=108/3 tx=52/2",
                                                  "pf0 mac=2681770868747 peak=0 ts=0 rx=108/3 tx=52/2",
                                              }));
    auto fresh = open();
    ASSERT_TRUE(fresh);
    auto res = fresh->load_resume("pf0");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->snapshots[kMacB][PF_DIR_RX], ctr(108, 3));
    EXPECT_EQ(res->snapshots[kMacB][PF_DIR_TX], ctr(52, 2));
}

// While the history cannot be written the rows wait in memory; over the cap the oldest
// peer rows go first, the interface totals (the bill) last, counted in rows and bytes.
TEST(PendingRows, OverTheCapTheOldestPeerRowsGoFirstThenTheOldestTotals) {
    const int64_t t0 = 1767225600;
    std::vector<DrainRows> pending = {
        drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(10, 1), ctr(20, 1), ctr(10, 1), ctr(20, 1)),
                         upd(t0, kMacB, false, ctr(6, 1), ctr(1, 1), ctr(6, 1), ctr(1, 1)),
                         upd(t0 + 300, kIfaceTotal, false, ctr(30, 1), ctr(40, 1), ctr(40, 2), ctr(60, 2)),
                         upd(t0 + 300, kMacB, false, ctr(7, 1), ctr(0, 0), ctr(13, 2), ctr(1, 1))}),
        drain_of("pf1", {upd(t0, kMacC, false, ctr(100, 1), ctr(0, 0), ctr(100, 1), ctr(0, 0)),
                         upd(t0 + 300, kMacC, false, ctr(200, 1), ctr(0, 0), ctr(300, 2), ctr(0, 0))})};
    auto rows_of = [&] {
        std::vector<std::string> v;
        for (const auto& d : pending)
            for (const auto& r : d.rows)
                v.push_back(d.iface + " " + std::to_string(r.ts - t0) + " " + std::to_string(r.mac));
        return v;
    };
    DroppedRows none = bound_pending_rows(pending, 6);
    EXPECT_EQ(none.rows, 0u);
    EXPECT_EQ(rows_of().size(), 6u);
    // Over by 3: the two peer rows of t0 (B on pf0, C on pf1), then B's at t0+300.
    DroppedRows d = bound_pending_rows(pending, 3);
    EXPECT_EQ(d.rows, 3u);
    EXPECT_EQ(d.bytes, 6u + 1 + 100 + 7);
    EXPECT_EQ(rows_of(), (std::vector<std::string>{"pf0 0 -1", "pf0 300 -1", "pf1 300 " + std::to_string(kMacC)}));
    // Over by 2: the last peer row, then the oldest total.
    d = bound_pending_rows(pending, 1);
    EXPECT_EQ(d.rows, 2u);
    EXPECT_EQ(d.bytes, 200u + 10 + 20);
    EXPECT_EQ(rows_of(), (std::vector<std::string>{"pf0 300 -1"}));
    EXPECT_EQ(pending[0].rows[0].snap[PF_DIR_RX], ctr(40, 2));
}

TEST_F(StoreFailure, FailureInTheFirstCommitLeavesNothingNotEvenTheInterface) {
    // A trigger made by another connection fails the transaction half-way, after the
    // interface, its generation and the first bucket row were written.
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    Sql sql(path_);
    sql.exec("CREATE TRIGGER fail_c BEFORE INSERT ON bucket5m WHEN NEW.mac = " + std::to_string(kMacC) +
             " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    auto pending = drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(10, 1), ctr(20, 1), ctr(10, 1), ctr(20, 1)),
                                    upd(t0, kMacB, false, ctr(6, 1), ctr(20, 1), ctr(6, 1), ctr(20, 1)),
                                    upd(t0, kMacC, false, ctr(4, 1), ctr(0, 0), ctr(4, 1), ctr(0, 0))});
    auto s = st->commit_drain({pending});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message(), "write bucket in " + path_ + ": injected failure");
    for (const char* t : {"iface", "generation", "bucket5m", "key_last"})
        EXPECT_EQ(sql.one(std::string("SELECT COUNT(*) FROM ") + t), "0") << t;

    sql.exec("DROP TRIGGER fail_c");
    auto next = drain_of("pf0", {upd(t0, kIfaceTotal, false, ctr(1, 1), ctr(0, 0), ctr(11, 2), ctr(20, 1)),
                                 upd(t0, kMacB, false, ctr(1, 1), ctr(0, 0), ctr(7, 2), ctr(20, 1))});
    merge_drain_rows(pending, next);
    commit(*st, {pending});
    // totals() joins the interface table: a stale cached interface id would lose every row.
    EXPECT_EQ(totals_of(*st, t0, t0 + 300), (std::vector<std::string>{
                                                "pf0 mac=-1 peak=0 ts=0 rx=11/2 tx=20/1",
                                                "pf0 mac=2681770868747 peak=0 ts=0 rx=7/2 tx=20/1",
                                                "pf0 mac=2681770868748 peak=0 ts=0 rx=4/1 tx=0/0",
                                            }));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM iface"), "1");
}

TEST_F(StoreFailure, FailureAfterTheRegistryMovedForgetsTheMoveSoTheRetryRegistersAgain) {
    // Bucket t0 committed; the drain for t0+300 fails after MAC B's row and registry entry
    // (t0 -> t0+300) were written but before MAC C's row. If the store kept believing B is
    // registered at t0+300, the retry would skip B's registry update and a restart would
    // resume B from the stale t0 snapshot: the t0+300 bytes would be counted twice.
    const int64_t t0 = 1767225600;  // 2026-01-01 00:00:00 UTC
    auto st = open();
    ASSERT_TRUE(st);
    commit(*st, {drain_of("pf0", {upd(t0, kMacB, false, ctr(10, 1), ctr(0, 0), ctr(10, 1), ctr(0, 0)),
                                  upd(t0, kMacC, false, ctr(20, 1), ctr(0, 0), ctr(20, 1), ctr(0, 0))})});
    Sql sql(path_);
    sql.exec("CREATE TRIGGER fail_c BEFORE INSERT ON bucket5m WHEN NEW.mac = " + std::to_string(kMacC) +
             " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    auto pending = drain_of("pf0", {upd(t0 + 300, kMacB, false, ctr(5, 1), ctr(0, 0), ctr(15, 2), ctr(0, 0)),
                                    upd(t0 + 300, kMacC, false, ctr(6, 1), ctr(0, 0), ctr(26, 2), ctr(0, 0))});
    ASSERT_FALSE(st->commit_drain({pending}));
    EXPECT_EQ(sql.rows("SELECT mac, ts FROM key_last ORDER BY mac"),
              (std::vector<std::string>{std::to_string(kMacB) + "|1767225600", std::to_string(kMacC) + "|1767225600"}));
    sql.exec("DROP TRIGGER fail_c");

    merge_drain_rows(pending,
                     drain_of("pf0", {upd(t0 + 300, kMacB, false, ctr(1, 1), ctr(0, 0), ctr(16, 3), ctr(0, 0))}));
    commit(*st, {pending});
    EXPECT_EQ(sql.rows("SELECT mac, ts FROM key_last ORDER BY mac"),
              (std::vector<std::string>{std::to_string(kMacB) + "|1767225900", std::to_string(kMacC) + "|1767225900"}));
    auto fresh = open();
    ASSERT_TRUE(fresh);
    auto res = fresh->load_resume("pf0");
    ASSERT_TRUE(res);
    std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> want = {{kMacB, {ctr(16, 3), ctr(0, 0)}},
                                                                 {kMacC, {ctr(26, 2), ctr(0, 0)}}};
    EXPECT_EQ(res->snapshots, want);
    EXPECT_EQ(totals_of(*st, t0, t0 + kHour), (std::vector<std::string>{
                                                  "pf0 mac=2681770868747 peak=0 ts=0 rx=16/3 tx=0/0",
                                                  "pf0 mac=2681770868748 peak=0 ts=0 rx=26/2 tx=0/0",
                                              }));
}

// ---- roll-ups ---------------------------------------------------------------------------

// America/New_York, Sunday 2024-11-03: clocks go back at 02:00 EDT to 01:00 EST, so the
// local day is 25 hours long.
constexpr int64_t kNy1102 = 1730520000;  // 2024-11-02 00:00 EDT = 04:00 UTC
constexpr int64_t kNy1103 = 1730606400;  // 2024-11-03 00:00 EDT = 04:00 UTC
constexpr int64_t kNy1104 = 1730696400;  // 2024-11-04 00:00 EST = 05:00 UTC
constexpr int64_t kNyPeak = 1730674800;  // 2024-11-03 18:00 EST = 23:00 UTC

TEST_F(StoreFinalize, FallBackDayInNewYorkHasExactDailySumsAnd25Hours) {
    auto cal = Calendar::create("America/New_York", {PeakWindow{}}, 1).take();
    // From 2024-11-02 22:00 EDT (peak) to 2024-11-04 02:00 EST (off-peak).
    const int64_t from = kNy1103 - 2 * kHour, to = kNy1104 + 2 * kHour;
    auto drains = spread("pf0", from, to, 300, kNyPeak, kNy1104);
    for (auto& d : drains)  // 2024-11-02 22:00-24:00 EDT is peak too
        for (auto& r : d.rows) r.peak = r.peak || r.ts < kNy1103;
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);

    // Before the roll-up the hours come from the buckets; keep them to compare.
    auto hours_before = st->hours(Filter{}, cal, kNy1103, kNy1104);
    ASSERT_TRUE(hours_before);
    finalize(*st, cal, kNy1104 + kHour);  // 2024-11-04 01:00 EST: the 3rd is over, the 4th is not

    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT kind, period, start, end, tz FROM finalized ORDER BY start"),
              (std::vector<std::string>{"day|2024-11-02|1730520000|1730606400|America/New_York",
                                        "day|2024-11-03|1730606400|1730696400|America/New_York"}));
    EXPECT_EQ(daily_rows(sql, "2024-11-03"), describe(model_of(drains, kNy1103, kNy1104)));
    EXPECT_EQ(daily_rows(sql, "2024-11-02"), describe(model_of(drains, kNy1102, kNy1103)));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM daily WHERE day > '2024-11-03'"), "0");
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM monthly"), "0") << "billing month 2024-11 is not over";

    // 25 local hours, each its own row per key; offsets are whole hours, so every local hour
    // starts on a whole UTC hour: 04:00 UTC (00:00 EDT) ... 04:00 UTC on the 4th (23:00 EST).
    EXPECT_EQ(sql.one("SELECT COUNT(DISTINCT ts), MIN(ts), MAX(ts) FROM hourly WHERE ts >= 1730606400 AND ts < "
                      "1730696400"),
              "25|1730606400|1730692800");
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM hourly WHERE mac = -1 AND ts >= 1730606400 AND ts < 1730696400"), "25");
    // Both 01:00 hours exist: 01:00 EDT (05:00 UTC) and 01:00 EST (06:00 UTC).
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM hourly WHERE mac = -1 AND ts IN (1730610000, 1730613600)"), "2");
    for (int64_t h = kNy1103; h < kNy1104; h += kHour) {
        Model m = model_of(drains, h, h + kHour);
        auto got = sql.rows(
            "SELECT i.name, h.mac, h.peak, h.rx_bytes, h.rx_packets, h.tx_bytes, h.tx_packets FROM hourly h JOIN "
            "iface i ON i.id = h.iface_id WHERE h.ts = " +
            std::to_string(h) + " ORDER BY h.mac");
        std::vector<std::string> want;
        for (const auto& [k, s] : m)
            want.push_back(std::get<0>(k) + "|" + std::to_string(std::get<1>(k)) + "|" +
                           std::to_string(std::get<2>(k)) + "|" + std::to_string(s.rxb) + "|" + std::to_string(s.rxp) +
                           "|" + std::to_string(s.txb) + "|" + std::to_string(s.txp));
        EXPECT_EQ(got, want) << "hour starting " << h;
    }
    // The day not over yet is still in the buckets only.
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM hourly WHERE ts >= 1730696400"), "0");

    auto hours_after = st->hours(Filter{}, cal, kNy1103, kNy1104);
    ASSERT_TRUE(hours_after);
    EXPECT_EQ(describe(*hours_after), describe(*hours_before));
    EXPECT_EQ(hours_after->size(), 25u * 3) << "per hour: iface, MAC B and MAC C (every 3rd bucket)";
}

// Everything the roll-ups wrote, to compare runs.
std::vector<std::string> rolled_up(Sql& sql) {
    std::vector<std::string> out;
    for (const char* q :
         {"SELECT 'f', * FROM finalized ORDER BY kind, period", "SELECT 'd', * FROM daily ORDER BY 2, 3, 4, 5",
          "SELECT 'h', * FROM hourly ORDER BY 2, 3, 4, 5", "SELECT 'm', * FROM monthly ORDER BY 2, 3, 4, 5"})
        for (auto& r : sql.rows(q)) out.push_back(r);
    return out;
}

TEST_F(StoreFinalize, IsIdempotent) {
    auto cal = Calendar::create("America/New_York", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kNy1102, kNy1104 + 3 * kHour, 300, kNyPeak, kNy1104);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kNy1104 + kHour);
    Sql sql(path_);
    auto once = rolled_up(sql);
    ASSERT_FALSE(once.empty());
    finalize(*st, cal, kNy1104 + kHour);
    EXPECT_EQ(rolled_up(sql), once);
    finalize(*st, cal, kNy1104 + 5 * kHour);  // later, same day
    EXPECT_EQ(rolled_up(sql), once);
    auto fresh = open();
    ASSERT_TRUE(fresh);
    finalize(*fresh, cal, kNy1104 + kHour);
    EXPECT_EQ(rolled_up(sql), once);
}

// UTC, billing day 1: 2026-01-30 .. 2026-02-02 (08:00).
constexpr int64_t kJan30 = 1769731200;  // 2026-01-30 00:00 UTC
constexpr int64_t kJan31 = 1769817600;
constexpr int64_t kFeb01 = 1769904000;
constexpr int64_t kFeb02 = 1769990400;

TEST_F(StoreFinalize, LateCommitIntoTheLastFinalizedDayReopensItAndTheNextRollUpIsExact) {
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30, kFeb02 + 8 * kHour, 900, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kFeb02 + 8 * kHour);
    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT kind, period FROM finalized ORDER BY kind, period"),
              (std::vector<std::string>{"day|2026-01-30", "day|2026-01-31", "day|2026-02-01", "month|2026-01"}));
    auto before = totals_of(*st, kJan30, kFeb02 + kDay);

    // The clock stepped back into 2026-02-01.
    auto late =
        drain_of("pf0", {upd(kFeb01 + 12 * kHour, kMacB, false, ctr(999, 9), ctr(11, 1), ctr(1, 1), ctr(1, 1))});
    drains.push_back(late);
    commit(*st, {late});
    EXPECT_EQ(sql.rows("SELECT kind, period FROM finalized ORDER BY kind, period"),
              (std::vector<std::string>{"day|2026-01-30", "day|2026-01-31", "month|2026-01"}));
    EXPECT_EQ(daily_rows(sql, "2026-02-01"), std::vector<std::string>{});
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM hourly WHERE ts >= 1769904000 AND ts < 1769990400"), "0");
    // Meanwhile the totals come from the buckets and include the late row.
    EXPECT_EQ(totals_of(*st, kJan30, kFeb02 + kDay), describe(model_of(drains, kJan30, kFeb02 + kDay)));
    EXPECT_NE(totals_of(*st, kJan30, kFeb02 + kDay), before);

    finalize(*st, cal, kFeb02 + 8 * kHour);
    EXPECT_EQ(sql.rows("SELECT kind, period FROM finalized ORDER BY kind, period"),
              (std::vector<std::string>{"day|2026-01-30", "day|2026-01-31", "day|2026-02-01", "month|2026-01"}));
    EXPECT_EQ(daily_rows(sql, "2026-02-01"), describe(model_of(drains, kFeb01, kFeb02)));
    EXPECT_EQ(sql.one("SELECT SUM(rx_bytes) FROM hourly WHERE mac = " + std::to_string(kMacB) +
                      " AND ts = " + std::to_string(kFeb01 + 12 * kHour)),
              std::to_string(model_of(drains, kFeb01 + 12 * kHour, kFeb01 + 13 * kHour)[{"pf0", kMacB, false}].rxb));
    EXPECT_EQ(totals_of(*st, kJan30, kFeb02 + kDay), describe(model_of(drains, kJan30, kFeb02 + kDay)));
}

TEST_F(StoreFinalize, LateCommitIntoAnEarlierFinalizedDayAndItsMonthIsRolledUpAgain) {
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30, kFeb02 + 8 * kHour, 900, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kFeb02 + 8 * kHour);

    // Into 2026-01-31: not the last finalized day, and inside the finalized month 2026-01.
    auto late = drain_of("pf0", {upd(kJan31 + 6 * kHour, kMacC, false, ctr(777, 7), ctr(5, 1), ctr(1, 1), ctr(1, 1))});
    drains.push_back(late);
    commit(*st, {late});
    Sql sql(path_);
    // Its day and its month are no longer final (later days may be reopened too: how many
    // is the store's choice); until the next roll-up the totals come from the buckets.
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM finalized WHERE period IN ('2026-01-31', '2026-01')"), "0");
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM finalized WHERE period = '2026-01-30'"), "1");
    EXPECT_EQ(totals_of(*st, kJan30, kFeb02 + kDay), describe(model_of(drains, kJan30, kFeb02 + kDay)));

    finalize(*st, cal, kFeb02 + 8 * kHour);
    EXPECT_EQ(sql.rows("SELECT kind, period FROM finalized ORDER BY kind, period"),
              (std::vector<std::string>{"day|2026-01-30", "day|2026-01-31", "day|2026-02-01", "month|2026-01"}));
    EXPECT_EQ(daily_rows(sql, "2026-01-31"), describe(model_of(drains, kJan31, kFeb01)));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM monthly WHERE month = '2026-01'"),
              std::to_string(model_of(drains, kJan30, kFeb01).size()));
    EXPECT_EQ(sql.one("SELECT SUM(rx_bytes) FROM monthly WHERE month = '2026-01' AND mac = " + std::to_string(kMacC)),
              std::to_string(model_of(drains, kJan30, kFeb01)[{"pf0", kMacC, false}].rxb));
    EXPECT_EQ(totals_of(*st, kJan30, kFeb02 + kDay), describe(model_of(drains, kJan30, kFeb02 + kDay)));
}

TEST_F(StoreFinalize, LateCommitBeforeTheFirstFinalizedDayIsRolledUp) {
    // The clock went back further than the whole history: 2026-01-28, two days before the
    // first finalized day. No roll-up covers it, so nothing is reopened, but the day must
    // still be rolled up by the next finalize().
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30, kFeb02 + 8 * kHour, 900, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kFeb02 + 8 * kHour);

    const int64_t jan28 = kJan30 - 2 * kDay;
    auto late = drain_of("pf0", {upd(jan28 + 10 * kHour, kMacC, false, ctr(555, 5), ctr(6, 1), ctr(1, 1), ctr(1, 1))});
    drains.push_back(late);
    commit(*st, {late});
    finalize(*st, cal, kFeb02 + 9 * kHour);
    Sql sql(path_);
    EXPECT_EQ(daily_rows(sql, "2026-01-28"), describe(model_of(drains, jan28, jan28 + kDay)));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM finalized WHERE kind = 'day' AND period IN ('2026-01-28', '2026-01-29')"),
              "2");
    EXPECT_EQ(sql.one("SELECT SUM(rx_bytes) FROM monthly WHERE month = '2026-01' AND mac = " + std::to_string(kMacC)),
              std::to_string(model_of(drains, jan28, kFeb01)[{"pf0", kMacC, false}].rxb));
    EXPECT_EQ(totals_of(*st, jan28, kFeb02 + kDay), describe(model_of(drains, jan28, kFeb02 + kDay)));
}

TEST_F(StoreFinalize, DaysWithoutTrafficDoNotHoldUpTheMonth) {
    // The daemon was down for five days around a month end: the days without buckets
    // must not keep the month from being rolled up.
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30 + 10 * kHour, kJan30 + 12 * kHour, 300, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kJan31 + kHour);
    const int64_t feb05 = kFeb01 + 4 * kDay;
    auto later = spread("pf0", feb05 + 3 * kHour, feb05 + 4 * kHour, 300, 0, 0);
    commit_each(*st, later);
    drains.insert(drains.end(), later.begin(), later.end());
    finalize(*st, cal, feb05 + kDay + kHour);

    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT period FROM finalized WHERE kind = 'month'"), std::vector<std::string>{"2026-01"});
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM monthly WHERE month = '2026-01'"),
              std::to_string(model_of(drains, kJan30, kFeb01).size()));
    EXPECT_EQ(sql.one("SELECT SUM(rx_bytes) FROM monthly WHERE month = '2026-01' AND mac = -1"),
              std::to_string(model_of(drains, kJan30, kFeb01)[{"pf0", kIfaceTotal, false}].rxb));
    EXPECT_EQ(daily_rows(sql, "2026-02-05"), describe(model_of(drains, feb05, feb05 + kDay)));
    EXPECT_EQ(totals_of(*st, kJan30, feb05 + kDay), describe(model_of(drains, kJan30, feb05 + kDay)));
}

// Asia/Shanghai (UTC+8, no DST), billing day 15: a billing month runs from local 00:00 on
// the 15th to local 00:00 on the 15th of the next month.
constexpr int64_t kSh1215 = 1765728000;  // 2025-12-15 00:00 CST = 2025-12-14 16:00 UTC
constexpr int64_t kSh0115 = 1768406400;  // 2026-01-15 00:00 CST
constexpr int64_t kSh0215 = 1771084800;  // 2026-02-15 00:00 CST
constexpr int64_t kSh0315 = 1773504000;  // 2026-03-15 00:00 CST

TEST_F(StoreFinalize, BillingMonthsStartingOnThe15thRollUpExactly) {
    auto cal = Calendar::create("Asia/Shanghai", {PeakWindow{}}, 15).take();
    // Data from 2026-01-10 00:00 UTC (08:00 CST) to 2026-02-20 00:00 UTC, one row per key
    // every 35 minutes, so buckets fall unevenly around every boundary.
    const int64_t from = 1768003200, to = 1771545600, now = 1771200000;  // now: 2026-02-16 08:00 CST
    std::vector<DrainRows> drains;
    for (auto& d : spread("pf0", from, to, 2100, 0, 0)) {
        for (auto& r : d.rows) {
            r.ts = Calendar::bucket_start(r.ts);
            r.peak = cal.is_peak(r.ts);
        }
        drains.push_back(std::move(d));
    }
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    auto before = totals_of(*st, kSh0115, kSh0215);
    finalize(*st, cal, now);

    Sql sql(path_);
    EXPECT_EQ(sql.rows("SELECT period, start, end, tz FROM finalized WHERE kind = 'month' ORDER BY start"),
              (std::vector<std::string>{"2025-12|1765728000|1768406400|Asia/Shanghai",
                                        "2026-01|1768406400|1771084800|Asia/Shanghai"}));
    EXPECT_EQ(sql.one("SELECT COUNT(*), MIN(period), MAX(period) FROM finalized WHERE kind = 'day'"),
              "37|2026-01-10|2026-02-15");
    for (auto [month, s, e] : {std::tuple{"2025-12", kSh1215, kSh0115}, std::tuple{"2026-01", kSh0115, kSh0215}}) {
        auto rows = sql.rows(
            "SELECT i.name, m.mac, m.peak, m.rx_bytes, m.rx_packets, m.tx_bytes, m.tx_packets FROM monthly m JOIN "
            "iface i ON i.id = m.iface_id WHERE m.month = '" +
            std::string(month) + "' ORDER BY m.mac, m.peak");
        std::vector<std::string> want;
        for (const auto& [k, v] : model_of(drains, s, e))
            want.push_back(std::get<0>(k) + "|" + std::to_string(std::get<1>(k)) + "|" +
                           std::to_string(std::get<2>(k)) + "|" + std::to_string(v.rxb) + "|" + std::to_string(v.rxp) +
                           "|" + std::to_string(v.txb) + "|" + std::to_string(v.txp));
        EXPECT_EQ(rows, want) << "billing month " << month;
    }
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM monthly WHERE month = '2026-02'"), "0") << "ends 2026-03-15";
    EXPECT_EQ(totals_of(*st, kSh0115, kSh0215), before);
    EXPECT_EQ(totals_of(*st, kSh0115, kSh0215), describe(model_of(drains, kSh0115, kSh0215)));
    EXPECT_EQ(totals_of(*st, kSh0215, kSh0315), describe(model_of(drains, kSh0215, kSh0315)));
}

// ---- retention --------------------------------------------------------------------------
// The shortest retention the config accepts for each table (0, forever, excluded): what a
// user may set, so what the monthly bill must survive.
Retention shortest_accepted_retention() {
    Retention r;
    Parser p("c.yaml");
    for (auto [name, field] :
         {std::pair{"five_minute_days", &r.five_minute_days}, std::pair{"hourly_days", &r.hourly_days},
          std::pair{"daily_days", &r.daily_days}, std::pair{"monthly_months", &r.monthly_months}}) {
        for (int v = 1; v <= 400; v++) {
            AccountingConfig c;
            if (parse_accounting_key(p, YAML::Load(std::string("{") + name + ": " + std::to_string(v) + "}"),
                                     "retention", c)) {
                *field = v;
                break;
            }
        }
    }
    return r;
}

// Three billing months of drains (one every two hours), the daemon down from 2026-02-27
// to 2026-03-03 (the February roll-up is a catch-up at the restart), and after each day's
// first drain the roll-up and the retention, as the Accountant runs them, with the
// shortest retention the config accepts: each month's monthly rows equal the sums of all
// its days' drains, checked when the month is rolled up.
TEST_F(StoreRetention, MonthlyTotalsKeepEveryDayWithTheShortestRetentionTheConfigAccepts) {
    const Retention r = shortest_accepted_retention();
    EXPECT_EQ(r.five_minute_days, 32);
    EXPECT_EQ(r.daily_days, 32);
    EXPECT_EQ(r.hourly_days, 1);
    EXPECT_EQ(r.monthly_months, 1);
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    constexpr int64_t kJan01 = 1767225600, kMar01 = 1772323200, kApr01 = 1775001600;
    constexpr int64_t kFeb27 = 1772150400, kMar03 = 1772496000;
    std::vector<DrainRows> drains;
    for (auto& d : spread("pf0", kJan01 + 600, kApr01 + kDay, 2 * kHour, 0, 0))
        if (d.rows[0].ts < kFeb27 || d.rows[0].ts >= kMar03) drains.push_back(std::move(d));
    auto st = open();
    ASSERT_TRUE(st);
    Sql sql(path_);
    std::vector<std::string> checked;
    LocalDate last_day = cal.local_date(kJan01);
    for (const auto& d : drains) {
        const int64_t now = d.rows[0].ts + 60;
        ASSERT_NO_FATAL_FAILURE(commit(*st, {d}));
        if (cal.local_date(now) == last_day) continue;
        last_day = cal.local_date(now);
        ASSERT_NO_FATAL_FAILURE(finalize(*st, cal, now));
        auto s = st->apply_retention(r, now);
        ASSERT_TRUE(s.ok()) << s.error().message();
        for (auto [month, from, to] : {std::tuple{"2026-01", kJan01, kFeb01}, std::tuple{"2026-02", kFeb01, kMar01},
                                       std::tuple{"2026-03", kMar01, kApr01}}) {
            if (to > now || std::find(checked.begin(), checked.end(), month) != checked.end()) continue;
            checked.push_back(month);
            auto rows = sql.rows(
                "SELECT i.name, m.mac, m.peak, m.rx_bytes, m.rx_packets, m.tx_bytes, m.tx_packets FROM monthly m "
                "JOIN iface i ON i.id = m.iface_id WHERE m.month = '" +
                std::string(month) + "' ORDER BY m.mac, m.peak");
            std::vector<std::string> want;
            for (const auto& [k, v] : model_of(drains, from, to))
                want.push_back(std::get<0>(k) + "|" + std::to_string(std::get<1>(k)) + "|" +
                               std::to_string(std::get<2>(k)) + "|" + std::to_string(v.rxb) + "|" +
                               std::to_string(v.rxp) + "|" + std::to_string(v.txb) + "|" + std::to_string(v.txp));
            EXPECT_EQ(rows, want) << "billing month " << month << ", rolled up at " << now;
        }
    }
    EXPECT_EQ(checked, (std::vector<std::string>{"2026-01", "2026-02", "2026-03"}));
    // The retention did run: daily rows of January are gone by April.
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM daily WHERE day < '2026-02-01'"), "0");
}

TEST_F(StoreRetention, DeletesOldBucketsButKeepsLatestSnapshotsAndDaysNotRolledUp) {
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    // Four full days plus half of a fifth; MAC D is seen once, early on the first day.
    const int64_t d1 = kJan30 - 2 * kDay, d5 = d1 + 4 * kDay;
    constexpr int64_t kMacD = 0x02706600000d;
    auto drains = spread("pf0", d1, d5 + 12 * kHour, 600, 0, 0);
    drains.push_back(drain_of("pf0", {upd(d1 + 300, kMacD, false, ctr(42, 1), ctr(43, 1), ctr(42, 1), ctr(43, 1))}));
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, d5 + 12 * kHour);  // days 1-4 rolled up, day 5 not
    auto before = totals_of(*st, d1, d5 + kDay);
    auto resume_before = st->load_resume("pf0");
    ASSERT_TRUE(resume_before);

    Retention r;
    r.five_minute_days = 1;
    r.hourly_days = 0;
    r.daily_days = 0;
    r.monthly_months = 0;
    // A year later: every bucket is past the 1-day limit.
    auto s = st->apply_retention(r, d5 + 365 * kDay);
    ASSERT_TRUE(s.ok()) << s.error().message();

    Sql sql(path_);
    // Left of days 1-4: only MAC D's one row (its latest snapshot). MAC C's latest row is
    // in day 5 with everything else of day 5 (every third bucket: 600 s * 3 = 30 min).
    EXPECT_EQ(sql.rows("SELECT ts, mac FROM bucket5m WHERE ts < " + std::to_string(d5)),
              (std::vector<std::string>{std::to_string(d1 + 300) + "|" + std::to_string(kMacD)}));
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM bucket5m WHERE ts >= " + std::to_string(d5)), std::to_string(72 + 72 + 24));
    EXPECT_EQ(totals_of(*st, d1, d5 + kDay), before);
    auto fresh = open();
    ASSERT_TRUE(fresh);
    auto resume_after = fresh->load_resume("pf0");
    ASSERT_TRUE(resume_after);
    EXPECT_EQ(resume_after->snapshots, resume_before->snapshots);
    EXPECT_EQ(resume_after->snapshots.size(), 4u);

    // Day 5 rolled up later is still exact: retention did not touch it.
    finalize(*st, cal, d5 + kDay);
    EXPECT_EQ(daily_rows(sql, "2026-02-01"), describe(model_of(drains, d5, d5 + kDay)));
    EXPECT_EQ(totals_of(*st, d1, d5 + kDay), before);
}

TEST_F(StoreRetention, KeepsRecentBucketsAndEverythingWhenDisabled) {
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30, kFeb02, 1800, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kFeb02);
    Sql sql(path_);
    auto all = sql.one("SELECT COUNT(*) FROM bucket5m");
    Retention off{0, 0, 0, 0};
    ASSERT_TRUE(st->apply_retention(off, kFeb02 + 1000 * kDay).ok());
    EXPECT_EQ(sql.one("SELECT COUNT(*) FROM bucket5m"), all);
    Retention r{1, 0, 0, 0};
    // "now" is two days after the first: only buckets older than one day before now go.
    ASSERT_TRUE(st->apply_retention(r, kFeb01).ok());
    EXPECT_EQ(sql.one("SELECT MIN(ts) FROM bucket5m WHERE mac = -1"), std::to_string(kJan31));
    EXPECT_EQ(totals_of(*st, kJan30, kFeb02), describe(model_of(drains, kJan30, kFeb02)));
}

TEST_F(StoreRetention, KeepsTheBucketsOfAReopenedDayAndOfDaysBeforeTheFirstRollUp) {
    // Late rows land in a finalized day (reopened: its daily rows are gone until the next
    // finalize) and in a day before any roll-up; then the keys move on to the current
    // bucket, so no registry entry protects the late rows. Retention running before the
    // next finalize must not delete them: they are the only copy of those days.
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kJan30, kFeb02 + 8 * kHour, 900, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kFeb02 + 8 * kHour);

    const int64_t jan28 = kJan30 - 2 * kDay;
    auto late = drain_of("pf0", {upd(kJan31 + 6 * kHour, kMacC, false, ctr(777, 7), ctr(5, 1), ctr(1, 1), ctr(1, 1)),
                                 upd(jan28 + 6 * kHour, kMacB, false, ctr(333, 3), ctr(4, 1), ctr(1, 1), ctr(1, 1))});
    auto now = drain_of("pf0", {upd(kFeb02 + 8 * kHour, kMacC, false, ctr(1, 1), ctr(1, 1), ctr(2, 2), ctr(2, 2)),
                                upd(kFeb02 + 8 * kHour, kMacB, false, ctr(1, 1), ctr(1, 1), ctr(2, 2), ctr(2, 2))});
    drains.push_back(late);
    drains.push_back(now);
    commit(*st, {late});
    commit(*st, {now});
    auto want = describe(model_of(drains, jan28, kFeb02 + kDay));
    EXPECT_EQ(totals_of(*st, jan28, kFeb02 + kDay), want);

    Retention r{1, 0, 0, 0};
    auto s = st->apply_retention(r, kFeb02 + 365 * kDay);
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(totals_of(*st, jan28, kFeb02 + kDay), want) << "retention deleted buckets that were not rolled up";
    finalize(*st, cal, kFeb02 + 9 * kHour);
    EXPECT_EQ(totals_of(*st, jan28, kFeb02 + kDay), want);
    Sql sql(path_);
    EXPECT_EQ(daily_rows(sql, "2026-01-31"), describe(model_of(drains, kJan31, kFeb01)));
    EXPECT_EQ(daily_rows(sql, "2026-01-28"), describe(model_of(drains, jan28, jan28 + kDay)));
}

TEST_F(StoreRetention, LateCommitIntoADayWhoseBucketsAreGoneKeepsItsRollUp) {
    // Ten days rolled up, then retention drops the buckets of the first seven. A clock that
    // steps back into one of those days (a router without a battery-backed clock, say, or
    // a bad NTP server) must not throw away what the roll-ups hold: its buckets cannot be
    // summed again. The late bytes are added; nothing else changes.
    auto cal = Calendar::create("UTC", {PeakWindow{}}, 1).take();
    const int64_t jan20 = kJan30 - 10 * kDay, jan22 = jan20 + 2 * kDay, jan27 = jan20 + 7 * kDay;
    auto drains = spread("pf0", jan20, kJan30, 1800, 0, 0);
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);
    finalize(*st, cal, kJan30 + kHour);
    Retention r{3, 0, 0, 0};
    ASSERT_TRUE(st->apply_retention(r, kJan30).ok());  // drops buckets before 2026-01-27
    Sql sql(path_);
    ASSERT_EQ(sql.one("SELECT COUNT(*) FROM bucket5m WHERE ts < " + std::to_string(jan27)), "0");
    std::vector<std::vector<std::string>> before;
    for (int d = 0; d < 10; d++) before.push_back(daily_rows(sql, LocalDate{2026, 1, 20 + d}.str()));
    ASSERT_EQ(before[2], describe(model_of(drains, jan22, jan22 + kDay)));

    auto late = drain_of("pf0", {upd(jan22 + 12 * kHour, kMacC, false, ctr(777, 7), ctr(5, 1), ctr(1, 1), ctr(1, 1))});
    drains.push_back(late);
    commit(*st, {late});
    finalize(*st, cal, kJan30 + 2 * kHour);

    for (int d = 0; d < 10; d++) {
        std::string day = LocalDate{2026, 1, 20 + d}.str();
        if (d == 2)
            EXPECT_EQ(daily_rows(sql, day), describe(model_of(drains, jan22, jan22 + kDay))) << day;
        else
            EXPECT_EQ(daily_rows(sql, day), before[static_cast<size_t>(d)]) << day;
    }
    EXPECT_EQ(totals_of(*st, jan20, kJan30), describe(model_of(drains, jan20, kJan30)));
}

// ---- totals -----------------------------------------------------------------------------

TEST_F(StoreTotals, IdenticalBeforeAndAfterFinalizeForWholeAndPartialDays) {
    auto cal = Calendar::create("America/New_York", {PeakWindow{}}, 1).take();
    auto drains = spread("pf0", kNy1102 + 7 * kHour, kNy1104 + 9 * kHour, 300, kNyPeak, kNy1104);
    auto more = spread("pf1", kNy1102, kNy1104 + 20 * kHour, 1500, kNyPeak, kNy1104);
    drains.insert(drains.end(), more.begin(), more.end());
    auto st = open();
    ASSERT_TRUE(st);
    commit_each(*st, drains);

    const std::vector<std::pair<int64_t, int64_t>> ranges = {
        {kNy1102, kNy1104 + kDay},                          // whole days and the open one
        {kNy1103, kNy1104},                                 // exactly the 25-hour day
        {kNy1102 + 13 * kHour + 600, kNy1104 + 7 * kHour},  // starting and ending mid-day
        {kNy1103 + 3 * kHour, kNy1103 + 4 * kHour},         // one hour inside a finished day
        {0, kNy1104 + 365 * kDay},
    };
    std::vector<Filter> filters = {Filter{}, Filter{std::string("pf1"), std::nullopt}, Filter{std::nullopt, kMacC},
                                   Filter{std::string("pf0"), kIfaceTotal}};
    std::vector<std::vector<std::string>> before;
    for (auto [a, b] : ranges)
        for (const auto& f : filters) before.push_back(totals_of(*st, a, b, f));
    finalize(*st, cal, kNy1104 + 10 * kHour);
    Sql sql(path_);
    ASSERT_EQ(sql.one("SELECT COUNT(*) FROM finalized WHERE kind = 'day'"), "2");
    size_t i = 0;
    for (auto [a, b] : ranges) {
        Model m = model_of(drains, a, b);
        for (const auto& f : filters) {
            Model want;
            for (const auto& [k, v] : m)
                if ((!f.iface || *f.iface == std::get<0>(k)) && (!f.mac || *f.mac == std::get<1>(k))) want[k] = v;
            EXPECT_EQ(before[i], describe(want)) << "range " << a << "-" << b << " #" << i;
            EXPECT_EQ(totals_of(*st, a, b, f), before[i]) << "range " << a << "-" << b << " #" << i;
            i++;
        }
    }
}

}  // namespace
}  // namespace pf
