// `import peakflow-tracker` against a directory built in the old tool's shape: config.yaml
// with its keys (token, interface, push type, time, log) and peakflow.db with hourly
// increments; checks the printed config, the imported daily and monthly rows, what is
// skipped and why, and that a second import adds nothing.

#include "peakflow/app/import_tracker.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "peakflow/app/config.hpp"

namespace pf {
namespace {

// Asia/Shanghai (UTC+8)
constexpr int64_t kSh1103_1200 = 1793678400;  // 2026-11-03 12:00

class ImportTracker : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            std::filesystem::temp_directory_path() / ("pf-import-" + std::to_string(getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_ / "Traffic");
        cal_.emplace(Calendar::create("Asia/Shanghai", {parse_peak_window("18:00-24:00").take()}, 1).take());
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    void write_config(const std::string& text) { std::ofstream(dir_ / "Traffic" / "config.yaml") << text; }

    // The old history: one row per hour with the increment counted up to that time.
    void write_history(const std::vector<std::string>& rows) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir_ / "Traffic" / "peakflow.db").c_str(), &db), SQLITE_OK);
        std::string sql =
            "CREATE TABLE traffic(id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, upload INTEGER, "
            "download INTEGER);";
        for (const auto& r : rows) sql += "INSERT INTO traffic(time, upload, download) VALUES(" + r + ");";
        ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
        sqlite3_close(db);
    }

    int run(std::string& out, std::string& err, const std::string& write = "", bool force = false) {
        ImportTrackerOptions o;
        o.dir = (dir_ / "Traffic").string();
        o.write = write;
        o.force = force;
        o.database = (dir_ / "peakflow" / "peakflow.db").string();
        o.calendar = &*cal_;
        o.clock = [] { return kSh1103_1200; };
        std::ostringstream o1, o2;
        int rc = run_import_tracker(o, o1, o2);
        out = o1.str();
        err = o2.str();
        return rc;
    }

    std::string sql(const std::string& q) {
        sqlite3* db = nullptr;
        sqlite3_open((dir_ / "peakflow" / "peakflow.db").c_str(), &db);
        std::string out;
        sqlite3_exec(
            db, q.c_str(),
            [](void* p, int n, char** v, char**) {
                auto& s = *static_cast<std::string*>(p);
                for (int i = 0; i < n; ++i) s += std::string(i ? "|" : (s.empty() ? "" : "\n")) + (v[i] ? v[i] : "");
                return 0;
            },
            &out, nullptr);
        sqlite3_close(db);
        return out;
    }

    std::filesystem::path dir_;
    std::optional<Calendar> cal_;
};

TEST_F(ImportTracker, ConfigKeysBecomePeakflowConfigAndTheRestIsNamed) {
    write_config(
        "token: \"abc123\"\ninterface: enp3s0\ntime: \"08:30:15\"\npush_type: dingtalk\nsendkey: SCT1\n"
        "log: /var/log/Traffic\ncolour: blue\n");
    std::string out, err;
    ASSERT_EQ(run(out, err), 0) << err;
    EXPECT_EQ(out, "# peakflow-bpf config from PeakFlow_Tracker's " + (dir_ / "Traffic").string() +
                       "/config.yaml (peakflow-bpf import peakflow-tracker)\n"
                       "interfaces: [enp3s0]\n"
                       "peak_windows: [18:00-24:00]\n"
                       "log_dir: /var/log/Traffic\n"
                       "push:\n"
                       "  language: zh\n"
                       "  sinks:\n"
                       "    - name: dingtalk\n"
                       "      type: dingtalk\n"
                       "      token: \"abc123\"\n"
                       "reports:\n"
                       "  daily_at: \"08:30\"\n"
                       "  daily: true\n"
                       "  monthly: true\n"
                       "  on_start: true\n");
    auto c = parse_config(out, "printed").take();
    EXPECT_EQ(c.interfaces, std::vector<std::string>{"enp3s0"});
    EXPECT_EQ(c.push.language, Language::Zh);
    ASSERT_EQ(c.push.sinks.size(), 1u);
    EXPECT_EQ(c.push.sinks[0].token, "abc123");
    EXPECT_EQ(err,
              "not mapped: key 'time': seconds dropped; reports.daily_at is HH:MM\n"
              "not mapped: key 'colour': not a PeakFlow_Tracker key peakflow knows; left out\n"
              "not mapped: key 'sendkey': push_type is dingtalk; the sendkey is unused\n"
              "history: no " +
                  (dir_ / "Traffic" / "peakflow.db").string() + ", nothing to import\n");
}

TEST_F(ImportTracker, WriteNeverReplacesAFileWithoutForce) {
    write_config("sendkey: SCT9\ninterface: eth0\n");
    const std::string file = (dir_ / "out.yaml").string();
    std::ofstream(file) << "mine\n";
    std::string out, err;
    EXPECT_EQ(run(out, err, file), 1);
    EXPECT_EQ(err, "peakflow-bpf: error: " + file + " exists; give --force to replace it\n");
    std::ifstream f1(file);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(f1)), {}), "mine\n");
    ASSERT_EQ(run(out, err, file, true), 0) << err;
    EXPECT_EQ(out, "");
    std::ifstream f2(file);
    const std::string written((std::istreambuf_iterator<char>(f2)), {});
    EXPECT_NE(written.find("    - name: serverchan\n      type: serverchan\n      sendkey: \"SCT9\"\n"),
              std::string::npos)
        << written;
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::others_read,
              std::filesystem::perms::none);
}

// Hourly increments, local time: a row at HH:00 holds the hour before it (00:00 closes the
// day before, in its peak). Days peakflow counted itself and today are not imported; a
// second run adds nothing.
TEST_F(ImportTracker, HistoryBecomesImportedDailyAndMonthlyRowsOnce) {
    write_config("token: t\ninterface: eth0\n");
    write_history({
        "'2026-10-30 10:00:00', 100, 1000",  // off-peak 10-30
        "'2026-10-30 19:00:00', 200, 2000",  // peak 10-30 (18:00-19:00)
        "'2026-10-31 00:00:00', 300, 3000",  // peak 10-30 (23:00-24:00)
        "'2026-10-31 18:00:00', 40, 400",    // off-peak 10-31 (17:00-18:00)
        "'2026-11-01 09:00:00', 5, 50",      // off-peak 11-01
        "'2026-11-03 09:00:00', 7, 70",      // today: not over
        "'garbage', 1, 1",
    });
    std::string out, err;
    ASSERT_EQ(run(out, err), 0) << err;
    const std::string db = (dir_ / "peakflow" / "peakflow.db").string();
    const std::string old = (dir_ / "Traffic" / "peakflow.db").string();
    EXPECT_EQ(err, "history: 3 day(s) of " + old + " (table traffic) imported into " + db +
                       " as interface eth0, 2026-10-30 to 2026-11-01\n"
                       "not imported: 2026-11-03: the day is not over yet\n"
                       "not imported: table traffic: 1 of 7 rows left out (no readable time, or a byte count that "
                       "is missing or negative)\n");
    // rx = download, tx = upload; no packets.
    EXPECT_EQ(sql("SELECT day, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM daily ORDER BY day, peak"),
              "2026-10-30|0|1000|0|100|0\n2026-10-30|1|5000|0|500|0\n2026-10-31|0|400|0|40|0\n"
              "2026-10-31|1|0|0|0|0\n2026-11-01|0|50|0|5|0\n2026-11-01|1|0|0|0|0");
    EXPECT_EQ(sql("SELECT day, source FROM imported ORDER BY day"), "2026-10-30|PeakFlow_Tracker " + old +
                                                                        "\n2026-10-31|PeakFlow_Tracker " + old +
                                                                        "\n2026-11-01|PeakFlow_Tracker " + old);
    // The billing month 2026-10 is over: rolled up from the imported days.
    EXPECT_EQ(sql("SELECT month, peak, rx_bytes, tx_bytes FROM monthly ORDER BY month, peak"),
              "2026-10|0|1400|140\n2026-10|1|5000|500");
    // The reports read them as any finished day.
    auto store = Store::open(db).take();
    uint64_t rx = 0;
    for (const auto& r : store->totals({}, cal_->day_start({2026, 10, 30}), cal_->day_end({2026, 10, 31})).take())
        rx += r.dir[PF_DIR_RX].bytes;
    EXPECT_EQ(rx, 6400u);

    ASSERT_EQ(run(out, err), 0) << err;
    EXPECT_NE(err.find("history: 0 day(s) of "), std::string::npos) << err;
    EXPECT_NE(err.find("history: 3 day(s) were imported before; unchanged\n"), std::string::npos) << err;
    EXPECT_EQ(sql("SELECT SUM(rx_bytes) FROM daily"), "6450");
}

// A day peakflow counted itself is never imported over: its own rows stay.
TEST_F(ImportTracker, DaysPeakflowCountedItselfAreSkipped) {
    write_config("token: t\ninterface: eth0\n");
    write_history({"'2026-10-31 10:00:00', 1, 10", "'2026-11-02 10:00:00', 2, 20"});
    {
        auto store = Store::open((dir_ / "peakflow" / "peakflow.db").string()).take();
        DrainRows d;
        d.iface = "eth0";
        d.boot_id = "b";
        d.new_generation = true;
        BucketUpdate u;
        u.ts = cal_->day_start({2026, 11, 2}) + 3600;
        u.delta[PF_DIR_RX] = {777, 1};
        u.snap[PF_DIR_RX] = {777, 1};
        d.rows.push_back(u);
        ASSERT_TRUE(store->commit_drain({d}).ok());
    }
    std::string out, err;
    ASSERT_EQ(run(out, err), 0) << err;
    EXPECT_NE(err.find("history: 1 day(s) of "), std::string::npos) << err;
    EXPECT_NE(err.find("not imported: 2026-11-02: peakflow-bpf counted this day itself; importing it would count "
                       "it twice\n"),
              std::string::npos)
        << err;
    EXPECT_EQ(sql("SELECT day, SUM(rx_bytes) FROM daily GROUP BY day ORDER BY day"), "2026-10-31|10\n2026-11-02|777");
}

}  // namespace
}  // namespace pf
