// Scheduled push reports on real SQLite files: exact texts from known rows, and the
// schedule (due times, no resend after a restart, catch-up after downtime, DST) with an
// injected clock. Epochs carry their local wall time (checked with Python's zoneinfo).

#include "peakflow/push/push_reports.hpp"
#include "peakflow/push/outbox.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "report_test_support.hpp"

namespace pf {
namespace {

using testing::HistoryFile;
using testing::Put;
using testing::RecordingQueue;

const MacAddr kMacA{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const MacAddr kMacB{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

// Asia/Shanghai (UTC+8)
constexpr int64_t kSh20_1000 = 1795140000;    // 2026-11-20 10:00
constexpr int64_t kSh20_2355 = 1795190100;    // 2026-11-20 23:55
constexpr int64_t kSh21_0000 = 1795190400;    // 2026-11-21 00:00
constexpr int64_t kSh21_0004 = 1795190640;    // 2026-11-21 00:04
constexpr int64_t kSh21_0005 = 1795190700;    // 2026-11-21 00:05
constexpr int64_t kSh21_0900 = 1795222800;    // 2026-11-21 09:00
constexpr int64_t kSh21_2000 = 1795262400;    // 2026-11-21 20:00
constexpr int64_t kSh22_0000 = 1795276800;    // 2026-11-22 00:00
constexpr int64_t kSh23_0900 = 1795395600;    // 2026-11-23 09:00
constexpr int64_t kSh1014_2355 = 1791993300;  // 2026-10-14 23:55
constexpr int64_t kSh1015_0000 = 1791993600;  // 2026-10-15 00:00
constexpr int64_t kSh1114_2355 = 1794671700;  // 2026-11-14 23:55
constexpr int64_t kSh1115_0000 = 1794672000;  // 2026-11-15 00:00
constexpr int64_t kSh1115_0004 = 1794672240;  // 2026-11-15 00:04
constexpr int64_t kSh1115_0005 = 1794672300;  // 2026-11-15 00:05
// America/New_York: 2026-11-01 is 25 hours long (02:00 EDT -> 01:00 EST)
constexpr int64_t kNy1031_0000 = 1793419200;  // 2026-10-31 00:00 EDT
constexpr int64_t kNy1101_0005 = 1793505900;  // 2026-11-01 00:05 EDT
constexpr int64_t kNy1102_0004 = 1793595840;  // 2026-11-02 00:04 EST
constexpr int64_t kNy1102_0005 = 1793595900;  // 2026-11-02 00:05 EST

Calendar calendar(const std::string& tz, int billing_day = 1) {
    return Calendar::create(tz, {parse_peak_window("18:00-24:00").take()}, billing_day).take();
}

Adjustment up_twice() {
    Adjustment a;
    a.iface = "eth0";
    a.direction = "tx";
    a.factor = 2;
    return a;
}

class PushReports : public HistoryFile {
  protected:
    // The day 2026-11-21 (Shanghai) with rows on both sides of it that must not count.
    void fill_day(const Calendar& cal) {
        commit(cal, {
                        {"eth0", kSh20_2355, kIfaceTotal, 999, 999},
                        {"eth0", kSh21_0900, kIfaceTotal, 1024, 2048},
                        {"eth0", kSh21_2000, kIfaceTotal, 1048576, 512},
                        {"eth0", kSh21_0900, mac_to_int(kMacA), 1024, 1536},
                        {"eth0", kSh21_2000, mac_to_int(kMacB), 1048576, 512},
                        {"eth0", kSh22_0000, kIfaceTotal, 7, 7},
                    });
    }

    ReportService::Options options(const std::string& tz = "Asia/Shanghai") {
        ReportService::Options o;
        o.database = db_;
        o.timezone = tz;
        o.sinks = {"ding", "mail"};
        o.host = "nas1";
        o.reports.on_start = false;
        o.clock = [this] { return clock_; };
        return o;
    }

    int64_t clock_ = kSh20_1000;
};

TEST_F(PushReports, DailyTextHasExactFiguresAdjustmentAndTopMacs) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    ReportContent c{"nas1", 1, {up_twice()}, Language::En, {}};
    auto r = build_day_report(*store_, cal, c, LocalDate{2026, 11, 21}).take();
    EXPECT_EQ(r.kind, "daily");
    EXPECT_EQ(r.period, "2026-11-21");
    EXPECT_EQ(r.title, "Daily traffic 2026-11-21");
    EXPECT_LE(r.title.size(), 32u);
    // Interface: peak up 512 x2, off-peak up 2048 x2, up (512 + 2048) x2; down raw.
    EXPECT_EQ(r.text,
              "#### Daily traffic 2026-11-21\n"
              "2026-11-21 00:00:00 to 2026-11-22 00:00:00\n"
              "\n"
              "host nas1, time zone Asia/Shanghai, peak 18:00-24:00; up = sent (tx), down = received (rx)\n"
              "\n"
              "**eth0**\n"
              "- peak: up 1.00 KiB (1024 B), down 1.00 MiB (1048576 B)\n"
              "- off-peak: up 4.00 KiB (4096 B), down 1.00 KiB (1024 B)\n"
              "- total: up 5.00 KiB (5120 B), down 1.00 MiB (1049600 B), sum 1.01 MiB (1054720 B)\n"
              "- adjusted: up \u00d72 +0 B (iface eth0, tx); down not adjusted; raw sum 1.00 MiB (1052160 B)\n"
              "- top MACs:\n"
              "  - 02:00:00:00:00:02: up 1.00 KiB (1024 B), down 1.00 MiB (1048576 B) (adjusted: up \u00d72 +0 B "
              "(iface eth0, tx); down not adjusted)\n"
              "  - (1 more MAC)\n");
    // The push history's value: the sum the text shows (adjusted).
    EXPECT_EQ(r.value, std::optional<int64_t>(1054720));
}

// push.language: zh, the same day: every phrase Chinese, the figures and units as in English.
TEST_F(PushReports, DailyTextInChinese) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    ReportContent c{"nas1", 1, {}, Language::Zh, {}};
    auto r = build_day_report(*store_, cal, c, LocalDate{2026, 11, 21}).take();
    EXPECT_EQ(r.title, "每日流量 2026-11-21");
    EXPECT_LE(r.title.size(), 32u);  // bytes of UTF-8
    EXPECT_EQ(r.text,
              "#### 每日流量 2026-11-21\n"
              "2026-11-21 00:00:00 至 2026-11-22 00:00:00\n"
              "\n"
              "主机 nas1，时区 Asia/Shanghai，晚高峰 18:00-24:00；上行 = 发送 (tx)，下行 = 接收 (rx)\n"
              "\n"
              "**eth0**\n"
              "- 晚高峰：上行 512 B（512 字节），下行 1.00 MiB（1048576 字节）\n"
              "- 平峰：上行 2.00 KiB（2048 字节），下行 1.00 KiB（1024 字节）\n"
              "- 合计：上行 2.50 KiB（2560 字节），下行 1.00 MiB（1049600 字节），总计 1.00 MiB（1052160 字节）\n"
              "- 流量最多的 MAC：\n"
              "  - 02:00:00:00:00:02：上行 512 B（512 字节），下行 1.00 MiB（1048576 字节）\n"
              "  - （另有 1 个 MAC）\n");
    EXPECT_EQ(r.value, std::optional<int64_t>(1052160));
    auto none = build_day_report(*store_, cal, c, LocalDate{2026, 11, 19}).take();
    EXPECT_NE(none.text.find("\n无流量记录。\n"), std::string::npos) << none.text;
}

TEST_F(PushReports, DayWithoutTrafficSaysSo) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    auto r =
        build_day_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::En, {}}, LocalDate{2026, 11, 19}).take();
    EXPECT_NE(r.text.find("\nNo traffic recorded.\n"), std::string::npos) << r.text;
    EXPECT_EQ(r.text.find("eth0"), std::string::npos);
    EXPECT_EQ(r.value, std::optional<int64_t>(0));
}

TEST_F(PushReports, MonthlyWithBillingDay15CoversItsOwnDaysOnly) {
    const Calendar cal = calendar("Asia/Shanghai", 15);
    commit(cal, {
                    {"eth0", kSh1014_2355, kIfaceTotal, 1, 1},        // September's billing month
                    {"eth0", kSh1015_0000, kIfaceTotal, 1024, 3072},  // first bucket of 2026-10
                    {"eth0", kSh1114_2355, kIfaceTotal, 2048, 1024},  // last bucket of 2026-10 (peak)
                    {"eth0", kSh1115_0000, kIfaceTotal, 5, 5},        // November's
                });
    // Finished days are read from the roll-ups: roll them up as the daemon does.
    ASSERT_TRUE(store_->finalize(cal, kSh1115_0005).ok());
    auto r =
        build_month_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::En, {}}, BillingMonth{2026, 10}).take();
    EXPECT_EQ(r.title, "Monthly traffic 2026-10");
    EXPECT_EQ(r.text,
              "#### Monthly traffic 2026-10\n"
              "billing month 2026-10 (billing day 15): 2026-10-15 00:00:00 to 2026-11-15 00:00:00\n"
              "\n"
              "host nas1, time zone Asia/Shanghai, peak 18:00-24:00; up = sent (tx), down = received (rx)\n"
              "\n"
              "**eth0**\n"
              "- peak: up 1.00 KiB (1024 B), down 2.00 KiB (2048 B)\n"
              "- off-peak: up 3.00 KiB (3072 B), down 1.00 KiB (1024 B)\n"
              "- total: up 4.00 KiB (4096 B), down 3.00 KiB (3072 B), sum 7.00 KiB (7168 B)\n");
    EXPECT_EQ(r.value, std::optional<int64_t>(7168));
    auto zh =
        build_month_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::Zh, {}}, BillingMonth{2026, 10}).take();
    EXPECT_EQ(zh.title, "每月流量 2026-10");
    EXPECT_EQ(zh.text,
              "#### 每月流量 2026-10\n"
              "计费月 2026-10（计费日 15）：2026-10-15 00:00:00 至 2026-11-15 00:00:00\n"
              "\n"
              "主机 nas1，时区 Asia/Shanghai，晚高峰 18:00-24:00；上行 = 发送 (tx)，下行 = 接收 (rx)\n"
              "\n"
              "**eth0**\n"
              "- 晚高峰：上行 1.00 KiB（1024 字节），下行 2.00 KiB（2048 字节）\n"
              "- 平峰：上行 3.00 KiB（3072 字节），下行 1.00 KiB（1024 字节）\n"
              "- 合计：上行 4.00 KiB（4096 字节），下行 3.00 KiB（3072 字节），总计 7.00 KiB（7168 字节）\n");
}

TEST_F(PushReports, MonthlyIsDueOnTheFirstDayOfTheBillingMonthAtDailyAt) {
    const Calendar cal = calendar("Asia/Shanghai", 15);
    ReportsConfig rc;
    rc.daily = false;
    // First started during 2026-10: September's month ended before, nothing to catch up.
    const int64_t first = kSh1015_0000 + 3600;
    EXPECT_TRUE(due_periods(cal, rc, first, kSh1115_0004).empty());
    auto due = due_periods(cal, rc, first, kSh1115_0005);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].kind, "monthly");
    EXPECT_EQ(due[0].period, "2026-10");
    EXPECT_EQ(due[0].due, kSh1115_0005);
    // A month that ended before the first start has nothing to report; one that ended
    // after it is caught up a month late (the one before the last at most).
    EXPECT_TRUE(due_periods(cal, rc, kSh1115_0000, kSh1115_0005).empty());
    auto late = due_periods(cal, rc, kSh1015_0000 - 86400, kSh1115_0004);
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(late[0].period, "2026-09");
}

TEST_F(PushReports, StartupReportCoversTodayAndTheMonthSoFar) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    // At 21:00 on the 21st: today has both rows of the day; the month also the 20th 23:55 (peak).
    auto r =
        build_startup_report(*store_, cal, ReportContent{"nas1", 0, {}, Language::En, {}}, kSh21_2000 + 3600).take();
    EXPECT_EQ(r.kind, "startup");
    EXPECT_EQ(r.period, "2026-11-21 21:00:00");
    EXPECT_EQ(r.title, "Traffic so far 2026-11-21");
    EXPECT_NE(r.text.find("##### Today: 2026-11-21 00:00:00 to 2026-11-21 21:00:00\n\n**eth0**\n"
                          "- peak: up 512 B (512 B), down 1.00 MiB (1048576 B)\n"
                          "- off-peak: up 2.00 KiB (2048 B), down 1.00 KiB (1024 B)\n"),
              std::string::npos)
        << r.text;
    EXPECT_NE(r.text.find("##### Billing month 2026-11 to date: 2026-11-01 00:00:00 to 2026-11-21 21:00:00\n\n"
                          "**eth0**\n- peak: up 1.48 KiB (1511 B), down 1.00 MiB (1049575 B)\n"
                          "- off-peak: up 2.00 KiB (2048 B), down 1.00 KiB (1024 B)\n"),
              std::string::npos)
        << r.text;
}

// The startup report of the very first start (no report_state yet) adds what the interface
// counted since boot, read from sysfs and marked as not billed; a restart's does not.
TEST_F(PushReports, FirstStartReportAddsTheInterfaceCountersSinceBoot) {
    const Calendar cal = calendar("Asia/Shanghai");
    const std::string stats = dir_ + "/sys/class/net/eth0/statistics/";
    std::filesystem::create_directories(stats);
    for (auto [f, v] : {std::pair{"rx_bytes", "5368709120"}, std::pair{"rx_packets", "4000000"},
                        std::pair{"tx_bytes", "1073741824"}, std::pair{"tx_packets", "900000"}})
        std::ofstream(stats + f) << v << "\n";
    EXPECT_EQ(read_since_boot(dir_ + "/sys", {"eth0", "gone0"}).size(), 1u);  // unreadable ones are left out

    RecordingQueue q;
    auto o = options();
    o.reports.on_start = true;
    o.reports.sinks = {"mail"};
    o.ifaces = {"eth0"};
    o.sysfs = dir_ + "/sys";
    clock_ = kSh21_0900;
    {
        auto s = ReportService::create(o, q).take();
        ASSERT_TRUE(s->tick(kSh21_0900).ok());
    }
    auto m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].title, "Traffic so far 2026-11-21");
    const std::string en =
        "\nNo traffic recorded.\n"
        "\n##### Since boot (not billed)\n"
        "\n**eth0**: what the interface's own counters (/sys/class/net/eth0/statistics) say it carried since the "
        "machine booted, before peakflow-bpf counted anything; not in the history or any bill\n"
        "- up 1.00 GiB (1073741824 B), 900000 packets\n"
        "- down 5.00 GiB (5368709120 B), 4000000 packets\n";
    ASSERT_GE(m[0].text.size(), en.size());
    EXPECT_EQ(m[0].text.substr(m[0].text.size() - en.size()), en) << m[0].text;

    // Restarted (in Chinese): report_state has its first start, no since-boot section.
    o.language = Language::Zh;
    clock_ = kSh21_2000;
    auto s = ReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh21_2000).ok());
    m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].title, "目前流量 2026-11-21");
    EXPECT_EQ(m[0].text.find("开机以来"), std::string::npos) << m[0].text;
    EXPECT_NE(m[0].text.find("peakflow-bpf 于 2026-11-21 20:00:00 启动：目前已统计的流量\n"), std::string::npos);
    EXPECT_NE(m[0].text.find("\n##### 今日：2026-11-21 00:00:00 至 2026-11-21 20:00:00\n\n无流量记录。\n"),
              std::string::npos)
        << m[0].text;
    EXPECT_NE(m[0].text.find("\n##### 计费月 2026-11 截至目前：2026-11-01 00:00:00 至 2026-11-21 20:00:00\n"),
              std::string::npos)
        << m[0].text;

    // The Chinese since-boot section, exactly.
    ReportContent zh{"nas1", 5, {}, Language::Zh, read_since_boot(dir_ + "/sys", {"eth0"})};
    auto r = build_startup_report(*store_, cal, zh, kSh21_2000).take();
    const std::string section =
        "\n##### 开机以来（不计费）\n"
        "\n**eth0**: 网卡自身计数器（/sys/class/net/eth0/statistics）记录的开机以来流量，早于 peakflow-bpf "
        "开始统计；不计入历史记录和任何账单\n"
        "- 上行 1.00 GiB（1073741824 字节），900000 个包\n"
        "- 下行 5.00 GiB（5368709120 字节），4000000 个包\n";
    ASSERT_GE(r.text.size(), section.size());
    EXPECT_EQ(r.text.substr(r.text.size() - section.size()), section) << r.text;
}

TEST_F(PushReports, DailyAt0005NotAt0004OnceAndNotAgainAfterARestart) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    RecordingQueue q;
    {
        auto s = ReportService::create(options(), q).take();  // first start 2026-11-20 10:00
        ASSERT_TRUE(s->tick(kSh21_0004).ok());
        EXPECT_TRUE(q.take().empty());
        ASSERT_TRUE(s->tick(kSh21_0005).ok());
        auto m = q.take();
        ASSERT_EQ(m.size(), 2u);
        EXPECT_EQ(m[0].sink, "ding");
        EXPECT_EQ(m[1].sink, "mail");
        for (const auto& x : m) {
            EXPECT_EQ(x.kind, "daily");
            EXPECT_EQ(x.period, "2026-11-20");
            EXPECT_EQ(x.title, "Daily traffic 2026-11-20");
            EXPECT_TRUE(x.body.empty());
            EXPECT_EQ(x.value, build_day_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::En, {}},
                                                LocalDate{2026, 11, 20})
                                   .take()
                                   .value);
            EXPECT_TRUE(x.value.has_value());
        }
        EXPECT_EQ(m[0].text, build_day_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::En, {}},
                                              LocalDate{2026, 11, 20})
                                 .take()
                                 .text);
        ASSERT_TRUE(s->tick(kSh21_0005 + 10).ok());
        EXPECT_TRUE(q.take().empty());
        s->stop();
    }
    clock_ = kSh21_0005 + 60;
    auto again = ReportService::create(options(), q).take();  // restart
    ASSERT_TRUE(again->tick(kSh21_0005 + 70).ok());
    EXPECT_TRUE(q.take().empty());
    auto sent = again->sent().take();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0], (std::array<std::string, 3>{"daily", "2026-11-20", "ding"}));
    EXPECT_EQ(sent[1], (std::array<std::string, 3>{"daily", "2026-11-20", "mail"}));
}

TEST_F(PushReports, DowntimeOverTheDueTimeIsCaughtUpInOrder) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    RecordingQueue q;
    {
        auto s = ReportService::create(options(), q).take();
        ASSERT_TRUE(s->tick(kSh21_0005).ok());  // 2026-11-20
        q.take();
    }
    // Down from the 21st 00:06 until the 23rd 09:00: the 21st and the 22nd are due.
    clock_ = kSh23_0900;
    auto s = ReportService::create(options(), q).take();
    ASSERT_TRUE(s->tick(kSh23_0900).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 4u);
    EXPECT_EQ(m[0].period, "2026-11-21");
    EXPECT_EQ(m[1].period, "2026-11-21");
    EXPECT_EQ(m[2].period, "2026-11-22");
    EXPECT_EQ(m[3].period, "2026-11-22");
    EXPECT_NE(m[0].text.find("sum 1.00 MiB (1052160 B)"), std::string::npos) << m[0].text;
}

TEST_F(PushReports, DaysOlderThanCatchUpDaysAreNotSent) {
    const Calendar cal = calendar("Asia/Shanghai");
    ReportsConfig rc;
    rc.monthly = false;
    rc.catch_up_days = 1;
    // Due times 2026-11-22 00:05 (for the 21st) and 2026-11-23 00:05 (for the 22nd); at the
    // 23rd 09:00 the first is more than a day old.
    auto due = due_periods(cal, rc, kSh20_1000, kSh23_0900);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].period, "2026-11-22");
}

TEST_F(PushReports, AFailedEnqueueIsTriedAgainAndNothingIsSentTwice) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    RecordingQueue q;
    auto s = ReportService::create(options(), q).take();
    q.fail = true;
    EXPECT_FALSE(s->tick(kSh21_0005).ok());
    EXPECT_TRUE(s->sent().take().empty());
    EXPECT_TRUE(q.take().empty());
    q.fail = false;
    ASSERT_TRUE(s->tick(kSh21_0005 + 10).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].sink, "ding");
    EXPECT_EQ(m[1].sink, "mail");
    for (const auto& x : m) EXPECT_EQ(x.kind + " " + x.period, "daily 2026-11-20");
    // Ticks after the retry, that day and after a restart: nothing is queued again.
    ASSERT_TRUE(s->tick(kSh21_0005 + 20).ok());
    ASSERT_TRUE(s->tick(kSh21_0005 + 3600).ok());
    EXPECT_TRUE(q.take().empty());
    s->stop();
    clock_ = kSh21_0005 + 3650;
    s = ReportService::create(options(), q).take();  // restart
    ASSERT_TRUE(s->tick(kSh21_0005 + 3700).ok());
    EXPECT_TRUE(q.take().empty());
    // The next day's report refused for the second sink only: the retry queues that one, and
    // not the first sink's again.
    const int64_t next_day = kSh21_0005 + 86400;
    q.accept = 1;
    EXPECT_FALSE(s->tick(next_day).ok());
    m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].sink + " " + m[0].kind + " " + m[0].period, "ding daily 2026-11-21");
    q.accept = -1;
    ASSERT_TRUE(s->tick(next_day + 10).ok());
    m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].sink + " " + m[0].kind + " " + m[0].period, "mail daily 2026-11-21");
    ASSERT_TRUE(s->tick(next_day + 20).ok());
    EXPECT_TRUE(q.take().empty());
}

// The real outbox on the same file: the report is queued, then recording it as sent fails
// (a trigger stands in for a full disk or a lock); the next tick queues nothing new.
TEST_F(PushReports, QueuedButNotRecordedAsSentIsNotQueuedAgain) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    OutboxOptions oo;
    oo.database = db_;
    oo.push.configured = true;
    for (const char* n : {"ding", "mail"}) {
        SinkConfig sc;
        sc.name = n;
        sc.type = "http";
        sc.url = "http://127.0.0.1:9/";
        sc.reports = {"daily", "monthly", "startup"};
        oo.push.sinks.push_back(sc);
    }
    auto ob = Outbox::open(oo).take();
    auto s = ReportService::create(options(), *ob).take();
    SqliteOptions so;
    auto db = SqliteDb::open(db_, so).take();
    ASSERT_TRUE(
        db.exec("CREATE TRIGGER no_room BEFORE INSERT ON report_sent BEGIN SELECT RAISE(ABORT, 'no room'); END"));
    auto failed = s->tick(kSh21_0005);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().message(), "record report_sent: no room");
    EXPECT_EQ(ob->queued_ids("ding").take().size(), 1u);
    ASSERT_TRUE(db.exec("DROP TRIGGER no_room"));
    ASSERT_TRUE(s->tick(kSh21_0005 + 10).ok());
    ASSERT_TRUE(s->tick(kSh21_0005 + 20).ok());
    EXPECT_EQ(ob->queued_ids("ding").take().size(), 1u);
    EXPECT_EQ(ob->queued_ids("mail").take().size(), 1u);
    EXPECT_EQ(s->sent().take().size(), 2u);
    EXPECT_EQ(ob->history(false).take().size(), 2u);
}

TEST_F(PushReports, StartupReportOncePerStartAndOnlyToTheChosenSinks) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    RecordingQueue q;
    auto o = options();
    o.reports.on_start = true;
    o.reports.sinks = {"mail"};
    clock_ = kSh21_2000 + 3600;
    auto s = ReportService::create(o, q).take();
    ASSERT_TRUE(s->tick(kSh21_2000 + 3600).ok());
    ASSERT_TRUE(s->tick(kSh21_2000 + 3610).ok());
    auto m = q.take();
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].sink, "mail");
    EXPECT_EQ(m[0].kind, "startup");
    EXPECT_EQ(m[0].period, "2026-11-21 21:00:00");
    EXPECT_FALSE(m[0].value.has_value());  // two periods: no one value
    EXPECT_EQ(m[0].text,
              build_startup_report(*store_, cal, ReportContent{"nas1", 5, {}, Language::En, {}}, kSh21_2000 + 3600)
                  .take()
                  .text);

    o.reports.sinks = {"pager"};
    auto bad = ReportService::create(o, q);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(), "reports.sinks: 'pager' is not a configured push sink");
}

TEST_F(PushReports, AfterDrainRunsOnTheWorkerAndStopFinishesIt) {
    const Calendar cal = calendar("Asia/Shanghai");
    fill_day(cal);
    RecordingQueue q;
    auto s = ReportService::create(options(), q).take();
    s->after_drain(kSh21_0005);
    s->stop();  // finishes the tick handed over before joining
    EXPECT_EQ(q.take().size(), 2u);
}

TEST_F(PushReports, DstDayIsDueAtItsOwnMidnightPlusDailyAt) {
    const Calendar cal = calendar("America/New_York");
    ReportsConfig rc;
    rc.monthly = false;
    // The 25-hour 2026-11-01 is due at 2026-11-02 00:05 EST, 25 h + 5 min after it began.
    auto before = due_periods(cal, rc, kNy1031_0000, kNy1102_0004);
    ASSERT_FALSE(before.empty());
    EXPECT_EQ(before.back().period, "2026-10-31");
    EXPECT_EQ(before.back().due, kNy1101_0005);
    auto at = due_periods(cal, rc, kNy1031_0000, kNy1102_0005);
    EXPECT_EQ(at.back().period, "2026-11-01");
    EXPECT_EQ(at.back().due, kNy1102_0005);
    EXPECT_EQ(kNy1102_0005 - kNy1101_0005, 25 * 3600);
    // 01:30 occurs twice on 2026-11-01: the first one (EDT, UTC-4) counts.
    EXPECT_EQ(local_time_on(cal, LocalDate{2026, 11, 1}, 90), kNy1101_0005 + 85 * 60);
}

TEST(ReportsConfigParse, KeysDefaultsAndErrors) {
    Parser p("c.yaml");
    ReportsConfig rc;
    ASSERT_TRUE(
        parse_reports_config(p, YAML::Load("{daily_at: '23:30', sinks: [a, b], top_macs: 3}"), "reports", rc).ok());
    EXPECT_EQ(rc.daily_at_min, 23 * 60 + 30);
    EXPECT_EQ(rc.sinks, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(rc.top_macs, 3);
    EXPECT_TRUE(rc.on_start);
    auto bad = parse_reports_config(p, YAML::Load("daily_at: '24:00'"), "reports", rc);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(),
              "c.yaml:1:11: key 'reports.daily_at': '24:00' is not a time of day HH:MM (00:00-23:59)");
    auto unknown = parse_reports_config(p, YAML::Load("dayly: true"), "reports", rc);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().message(), "c.yaml:1:1: key 'reports.dayly': unknown key");
}

}  // namespace
}  // namespace pf
