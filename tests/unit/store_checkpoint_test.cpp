// WAL checkpoints run on the store's background connection, not inside commits: the main
// database file alone (without its -wal) holds what was committed once a checkpoint ran.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "peakflow/accounting/store.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

class StoreCheckpoint : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/pf-ckpt-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    // 50 MAC rows and the interface total in one bucket.
    static DrainRows drain() {
        DrainRows d;
        d.iface = "pf0";
        d.map_id = 7;
        d.boot_id = "boot";
        for (int64_t mac = -1; mac < 50; mac++)
            d.rows.push_back(BucketUpdate{1767225600, mac, false, {{100, 1}, {200, 2}}, {{100, 1}, {200, 2}}});
        return d;
    }

    // Rows in bucket5m of a copy of the main database file alone, without its WAL.
    std::string rows_in_main_file(const std::string& db) {
        std::string copy = dir_ + "/copy.db";
        fs::remove(copy);
        fs::copy_file(db, copy);
        sqlite3* c = nullptr;
        EXPECT_EQ(sqlite3_open_v2(copy.c_str(), &c, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
        sqlite3_stmt* s = nullptr;
        std::string out = "no table";
        if (sqlite3_prepare_v2(c, "SELECT COUNT(*) FROM bucket5m", -1, &s, nullptr) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            out = std::to_string(sqlite3_column_int64(s, 0));
        sqlite3_finalize(s);
        sqlite3_close(c);
        return out;
    }

    std::string dir_;
};

TEST_F(StoreCheckpoint, BackgroundConnectionMovesCommitsIntoTheMainFile) {
    std::string db = dir_ + "/bg.db";
    auto st = Store::open(db).take();
    ASSERT_TRUE(st->start_background_checkpoints(std::chrono::milliseconds(50)));
    ASSERT_TRUE(st->commit_drain({drain()}));
    // Within a few intervals the 51 rows are in the main file, while the store stays open.
    std::string got;
    for (int i = 0; i < 100 && got != "51"; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        got = rows_in_main_file(db);
    }
    EXPECT_EQ(got, "51");
}

TEST_F(StoreCheckpoint, WithoutItCommitsStayInTheWal) {
    // The control: a small commit does not reach the auto-checkpoint size, so the main
    // file has the schema (written by the first transaction's checkpoint-free path) but
    // not the rows. Shows the test above can fail.
    std::string db = dir_ + "/plain.db";
    auto st = Store::open(db).take();
    ASSERT_TRUE(st->commit_drain({drain()}));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_NE(rows_in_main_file(db), "51");
}

TEST_F(StoreCheckpoint, StopsWithTheStore) {
    std::string db = dir_ + "/stop.db";
    {
        auto st = Store::open(db).take();
        ASSERT_TRUE(st->start_background_checkpoints(std::chrono::hours(1)));
        ASSERT_TRUE(st->commit_drain({drain()}));
    }                                        // must not wait an hour: the destructor wakes and joins the thread
    EXPECT_EQ(rows_in_main_file(db), "51");  // the last connection's close checkpoints
}

}  // namespace
}  // namespace pf
