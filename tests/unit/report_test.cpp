// `report` against a real SQLite file: hand-made drains committed through Store, read back
// through run_report with an explicit `now` and explicit zones, never the system clock.
// Every epoch constant has its local wall time beside it (checked with Python's zoneinfo),
// and every expected figure is summed by hand from the rows the test writes.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "peakflow/accounting/report.hpp"
#include "report_test_support.hpp"

namespace pf {
namespace {

using nlohmann::json;

constexpr int64_t kMin = 60;
constexpr int64_t kHour = 3600;

const MacAddr kMacA{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const MacAddr kMacB{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const MacAddr kMacC{0x02, 0x00, 0x00, 0x00, 0x00, 0x03};

// Asia/Shanghai (UTC+8, no DST)
constexpr int64_t kSh20_2355 = 1795190100;  // 2026-11-20 23:55
constexpr int64_t kSh21_0000 = 1795190400;  // 2026-11-21 00:00
constexpr int64_t kSh21_0900 = 1795222800;  // 2026-11-21 09:00
constexpr int64_t kSh21_0905 = 1795223100;  // 2026-11-21 09:05
constexpr int64_t kSh21_1800 = 1795255200;  // 2026-11-21 18:00
constexpr int64_t kSh21_2000 = 1795262400;  // 2026-11-21 20:00
constexpr int64_t kSh21_2355 = 1795276500;  // 2026-11-21 23:55
constexpr int64_t kSh22_0000 = 1795276800;  // 2026-11-22 00:00

Calendar make_calendar(const std::string& tz, const std::string& window = "18:00-24:00", int billing_day = 1) {
    return Calendar::create(tz, {parse_peak_window(window).take()}, billing_day).take();
}

Adjustment adjustment(std::string iface, std::optional<MacAddr> mac, std::string direction, double factor,
                      int64_t offset) {
    Adjustment a;
    a.iface = std::move(iface);
    a.mac = mac;
    a.direction = std::move(direction);
    a.factor = factor;
    a.offset_bytes = offset;
    return a;
}

using testing::Put;

int64_t mac_key(const MacAddr& m) {
    return mac_to_int(m);
}

// Figures of one JSON row as {peak_up, peak_down, offpeak_up, offpeak_down, up, down, total}.
std::vector<uint64_t> figures(const json& j) {
    std::vector<uint64_t> v;
    for (const char* k : {"peak_up_bytes", "peak_down_bytes", "offpeak_up_bytes", "offpeak_down_bytes", "up_bytes",
                          "down_bytes", "total_bytes"})
        v.push_back(j.at(k).get<uint64_t>());
    return v;
}

// The figures a row with these four raw parts must show.
std::vector<uint64_t> expect4(uint64_t peak_up, uint64_t peak_down, uint64_t offpeak_up, uint64_t offpeak_down) {
    const uint64_t up = peak_up + offpeak_up, down = peak_down + offpeak_down;
    return {peak_up, peak_down, offpeak_up, offpeak_down, up, down, up + down};
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// The temporary history file and its commit() are shared with the push report tests.
class ReportStore : public testing::HistoryFile {
  protected:
    std::string run(const Calendar& cal, ReportOptions o, int64_t now, const std::vector<Adjustment>& adj = {}) {
        std::ostringstream out;
        auto st = run_report(*store_, cal, adj, o, now, out);
        EXPECT_TRUE(st.ok()) << st.error().message();
        return out.str();
    }
    json run_json(const Calendar& cal, ReportOptions o, int64_t now, const std::vector<Adjustment>& adj = {}) {
        o.json = true;
        const std::string s = run(cal, o, now, adj);
        EXPECT_EQ(s.back(), '\n');
        return json::parse(s);
    }
    std::string run_error(const Calendar& cal, ReportOptions o, int64_t now) {
        std::ostringstream out;
        auto st = run_report(*store_, cal, {}, o, now, out);
        EXPECT_FALSE(st.ok());
        EXPECT_EQ(out.str(), "") << "an error writes nothing";
        return st.ok() ? "" : st.error().message();
    }

    // A day in Shanghai (UTC+8, peak 18:00-24:00) with peak and off-peak rows on eth0 and
    // two MACs, plus rows just outside the day on both sides.
    void fill_shanghai_day(const Calendar& cal) {
        commit(cal, {
                        {"eth0", kSh20_2355, kIfaceTotal, 100000, 100000},  // the day before
                        {"eth0", kSh21_0900, kIfaceTotal, 1000, 200},       // off-peak
                        {"eth0", kSh21_0905, kIfaceTotal, 500, 50},         // off-peak
                        {"eth0", kSh21_1800, kIfaceTotal, 3000, 700},       // peak
                        {"eth0", kSh21_2355, kIfaceTotal, 4, 6},            // peak, last bucket of the day
                        {"eth0", kSh22_0000, kIfaceTotal, 100000, 100000},  // the day after
                        {"eth0", kSh21_0900, mac_key(kMacA), 800, 100},
                        {"eth0", kSh21_1800, mac_key(kMacB), 2000, 600},
                        {"wlan0", kSh20_2355, kIfaceTotal, 7, 7},  // no rows on the day itself
                    });
    }
};

// ---- adjustments, without a store -----------------------------------------------------

TEST(ReportAdjust, MostSpecificMatchWins) {
    const std::vector<Adjustment> adj = {
        adjustment("", std::nullopt, "both", 1.5, 0),     // 0 global
        adjustment("eth0", std::nullopt, "both", 2, 0),   // 1 interface
        adjustment("", kMacA, "both", 3, 0),              // 2 MAC on any interface
        adjustment("eth0", kMacB, "both", 4, 0),          // 3 MAC on eth0
        adjustment("", kMacB, "both", 5, 0),              // 4 MAC anywhere: less specific than 3
        adjustment("wlan0", std::nullopt, "rx", 6, 0),    // 5 interface, rx only
        adjustment("wlan0", std::nullopt, "both", 7, 0),  // 6 interface, both: 5 beats it for rx
        adjustment("wlan0", std::nullopt, "both", 8, 0),  // 7 same rank as 6, listed later
    };
    auto m = [&](const std::string& iface, std::optional<MacAddr> mac, int dir) {
        const Adjustment* a =
            match_adjustment(adj, iface, mac ? std::optional<int64_t>(mac_to_int(*mac)) : std::nullopt, dir);
        return a ? static_cast<int>(a - adj.data()) : -1;
    };
    EXPECT_EQ(m("eth1", std::nullopt, PF_DIR_RX), 0);
    EXPECT_EQ(m("eth1", kMacC, PF_DIR_TX), 0);  // a global one covers MAC rows too
    EXPECT_EQ(m("eth0", std::nullopt, PF_DIR_RX), 1);
    EXPECT_EQ(m("eth0", kMacC, PF_DIR_RX), 1);  // so does an interface one
    EXPECT_EQ(m("eth0", kMacA, PF_DIR_RX), 2);
    EXPECT_EQ(m("eth1", kMacA, PF_DIR_TX), 2);
    EXPECT_EQ(m("eth0", kMacB, PF_DIR_TX), 3);
    EXPECT_EQ(m("eth1", kMacB, PF_DIR_TX), 4);
    EXPECT_EQ(m("wlan0", std::nullopt, PF_DIR_RX), 5);
    EXPECT_EQ(m("wlan0", std::nullopt, PF_DIR_TX), 6);  // rx-only skipped; first of equal rank
    EXPECT_EQ(m("wlan0", kMacA, PF_DIR_RX), 2);

    // A MAC entry never touches the interface's own totals, and nothing matches: raw.
    const std::vector<Adjustment> mac_only = {adjustment("", kMacA, "both", 3, 0)};
    EXPECT_EQ(match_adjustment(mac_only, "eth0", std::nullopt, PF_DIR_RX), nullptr);
    EXPECT_EQ(match_adjustment({}, "eth0", std::nullopt, PF_DIR_RX), nullptr);
    const std::vector<Adjustment> tx_only = {adjustment("", std::nullopt, "tx", 3, 0)};
    EXPECT_EQ(match_adjustment(tx_only, "eth0", std::nullopt, PF_DIR_RX), nullptr);
    EXPECT_EQ(match_adjustment(tx_only, "eth0", std::nullopt, PF_DIR_TX), &tx_only[0]);
}

TEST(ReportAdjust, AppliesFactorThenOffsetRoundedAndClampedAtZero) {
    const Adjustment f105 = adjustment("", std::nullopt, "both", 1.05, 0);
    const Adjustment plus = adjustment("", std::nullopt, "both", 1, 500);
    const Adjustment minus = adjustment("", std::nullopt, "both", 1, -1000);
    const Adjustment half = adjustment("", std::nullopt, "both", 0.5, 0);
    EXPECT_EQ(apply_adjustment(nullptr, 12345), 12345u);
    EXPECT_EQ(apply_adjustment(&f105, 1000), 1050u);
    EXPECT_EQ(apply_adjustment(&f105, 10), 11u);  // 10.5 rounds up
    EXPECT_EQ(apply_adjustment(&f105, 0), 0u);
    EXPECT_EQ(apply_adjustment(&plus, 0), 500u);
    EXPECT_EQ(apply_adjustment(&plus, 1000), 1500u);
    EXPECT_EQ(apply_adjustment(&minus, 1500), 500u);
    EXPECT_EQ(apply_adjustment(&minus, 1000), 0u);
    EXPECT_EQ(apply_adjustment(&minus, 300), 0u);  // never below 0
    EXPECT_EQ(apply_adjustment(&half, 3), 2u);     // 1.5 rounds up
    // A factor of 1 keeps counts beyond 2^53 exact.
    const Adjustment one = adjustment("", std::nullopt, "both", 1, 0);
    EXPECT_EQ(apply_adjustment(&one, 9007199254740993ull), 9007199254740993ull);
}

TEST(ReportAdjust, DescribesFactorOffsetAndScope) {
    EXPECT_EQ(describe_adjustment(adjustment("eth0", std::nullopt, "both", 1.05, 0)), "\u00d71.05 +0 B (iface eth0)");
    EXPECT_EQ(describe_adjustment(adjustment("", std::nullopt, "both", 2, 1536)), "\u00d72 +1.50 KiB (global)");
    EXPECT_EQ(describe_adjustment(adjustment("", kMacA, "rx", 1, -1073741824)),
              "\u00d71 -1.00 GiB (mac 02:00:00:00:00:01, rx)");
    EXPECT_EQ(describe_adjustment(adjustment("eth0", kMacA, "tx", 0.9, 0)),
              "\u00d70.9 +0 B (iface eth0, mac 02:00:00:00:00:01, tx)");
}

TEST(ReportBar, ProportionalToTheLargestValue) {
    EXPECT_EQ(text_bar(0, 0), "");
    EXPECT_EQ(text_bar(0, 100), "");
    EXPECT_EQ(text_bar(100, 100), std::string(30, '#'));
    EXPECT_EQ(text_bar(50, 100), std::string(15, '#'));
    EXPECT_EQ(text_bar(1, 1000000), "#");                  // something is never drawn as nothing
    EXPECT_EQ(text_bar(1024, 3584), std::string(9, '#'));  // 8.57 rounds to 9
    EXPECT_EQ(text_bar(UINT64_MAX, UINT64_MAX), std::string(30, '#'));
}

// ---- reports from a real store ----------------------------------------------------------

TEST_F(ReportStore, DaySplitsPeakAndOffPeakExactly) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};
    const json j = run_json(cal, o, kSh21_2000);

    EXPECT_EQ(j["kind"], "day");
    EXPECT_EQ(j["timezone"], "Asia/Shanghai");
    EXPECT_EQ(j["generated_at"], "2026-11-21 20:00:00");
    EXPECT_EQ(j["generated_at_epoch"], kSh21_2000);
    ASSERT_EQ(j["reports"].size(), 1u);
    const json& r = j["reports"][0];
    EXPECT_EQ(r["kind"], "day");
    EXPECT_EQ(r["period"], "2026-11-21");
    EXPECT_EQ(r["from"], "2026-11-21 00:00:00");
    EXPECT_EQ(r["from_epoch"], kSh21_0000);
    EXPECT_EQ(r["to"], "2026-11-22 00:00:00");
    EXPECT_EQ(r["to_epoch"], kSh22_0000);
    ASSERT_EQ(r["interfaces"].size(), 2u);
    const json& eth0 = r["interfaces"][0];
    EXPECT_EQ(eth0["name"], "eth0");
    EXPECT_EQ(eth0["mac"], nullptr);
    // up = tx: peak 700 + 6, off-peak 200 + 50; down = rx: peak 3000 + 4, off-peak 1000 + 500.
    EXPECT_EQ(figures(eth0), expect4(706, 3004, 250, 1500));
    EXPECT_EQ(eth0["adjusted"], nullptr);
    EXPECT_EQ(eth0["mac_count"], 2);
    ASSERT_EQ(eth0["macs"].size(), 2u);
    EXPECT_EQ(eth0["macs"][0]["mac"], "02:00:00:00:00:02");  // 2600 bytes before 900
    EXPECT_EQ(figures(eth0["macs"][0]), expect4(600, 2000, 0, 0));
    EXPECT_EQ(figures(eth0["macs"][1]), expect4(0, 0, 100, 800));
    // An interface without rows in the period is listed with zeros.
    EXPECT_EQ(r["interfaces"][1]["name"], "wlan0");
    EXPECT_EQ(figures(r["interfaces"][1]), expect4(0, 0, 0, 0));
    EXPECT_EQ(r["interfaces"][1]["macs"], json::array());
    EXPECT_FALSE(r.contains("p95_intervals"));
}

TEST_F(ReportStore, PeakWindowCrossingMidnightCountsBothEndsOfTheDay) {
    // Berlin in January is UTC+1; peak 22:00-02:00 is peak at both ends of a local day.
    const Calendar cal = make_calendar("Europe/Berlin", "22:00-02:00");
    commit(cal, {
                    {"eth0", 1768431600, kIfaceTotal, 1, 10},        // 2026-01-15 00:00 peak (window of the 14th)
                    {"eth0", 1768438500, kIfaceTotal, 2, 20},        // 01:55 peak
                    {"eth0", 1768438800, kIfaceTotal, 4, 40},        // 02:00 off-peak
                    {"eth0", 1768510500, kIfaceTotal, 8, 80},        // 21:55 off-peak
                    {"eth0", 1768510800, kIfaceTotal, 16, 160},      // 22:00 peak
                    {"eth0", 1768517700, kIfaceTotal, 32, 320},      // 23:55 peak
                    {"eth0", 1768518000, kIfaceTotal, 1000, 10000},  // 2026-01-16 00:00, the next day
                });
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 1, 15};
    const json r = run_json(cal, o, 1768561200)["reports"][0];  // now 2026-01-16 12:00
    EXPECT_EQ(r["from_epoch"], 1768431600);
    EXPECT_EQ(r["to_epoch"], 1768518000);
    EXPECT_EQ(figures(r["interfaces"][0]), expect4(10 + 20 + 160 + 320, 1 + 2 + 16 + 32, 40 + 80, 4 + 8));

    // The hours agree: 24 rows, peak in 00:00, 01:00, 22:00 and 23:00 only.
    o.kind = ReportOptions::Hours;
    const json h = run_json(cal, o, 1768561200)["reports"][0]["interfaces"][0];
    ASSERT_EQ(h["rows"].size(), 24u);
    EXPECT_EQ(figures(h["rows"][0]), expect4(10, 1, 0, 0));
    EXPECT_EQ(figures(h["rows"][1]), expect4(20, 2, 0, 0));
    EXPECT_EQ(figures(h["rows"][2]), expect4(0, 0, 40, 4));
    EXPECT_EQ(figures(h["rows"][21]), expect4(0, 0, 80, 8));
    EXPECT_EQ(figures(h["rows"][22]), expect4(160, 16, 0, 0));
    EXPECT_EQ(figures(h["rows"][23]), expect4(320, 32, 0, 0));
    EXPECT_EQ(figures(h), figures(r["interfaces"][0]));
}

TEST_F(ReportStore, FallBackDayHasTwentyFiveHoursThatSumToTheDay) {
    // New York 2026-11-01: 00:00 EDT (04:00 UTC) to 00:00 EST next day (05:00 UTC), 25 hours.
    const Calendar cal = make_calendar("America/New_York");
    const int64_t from = 1793505600, to = 1793595600, now = 1793725200;  // now 2026-11-03 12:00 EST
    ASSERT_EQ(to - from, 25 * kHour);
    std::vector<Put> puts;
    for (uint64_t i = 0; i < 25; i++)
        puts.push_back({"eth0", from + static_cast<int64_t>(i) * kHour + 10 * kMin, kIfaceTotal, i + 1, 100 * (i + 1)});
    puts.push_back({"eth0", to, kIfaceTotal, 5000, 5000});  // the next day
    commit(cal, puts);

    ReportOptions o;
    o.kind = ReportOptions::Hours;
    o.day = LocalDate{2026, 11, 1};
    const std::string before = run(cal, o, now);
    o.json = true;
    const json h = json::parse(run(cal, o, now))["reports"][0];
    EXPECT_EQ(h["kind"], "hours");
    const json& rows = h["interfaces"][0]["rows"];
    ASSERT_EQ(rows.size(), 25u);
    EXPECT_EQ(rows[0]["start"], "2026-11-01 00:00:00");
    // The repeated hour is two rows, told apart by epoch and offset.
    EXPECT_EQ(rows[1]["start"], "2026-11-01 01:00:00");
    EXPECT_EQ(rows[1]["utc_offset_seconds"], -4 * kHour);
    EXPECT_EQ(rows[2]["start"], "2026-11-01 01:00:00");
    EXPECT_EQ(rows[2]["utc_offset_seconds"], -5 * kHour);
    EXPECT_EQ(rows[2]["start_epoch"].get<int64_t>() - rows[1]["start_epoch"].get<int64_t>(), kHour);
    EXPECT_EQ(rows[24]["start"], "2026-11-01 23:00:00");
    std::vector<uint64_t> sum(7, 0);
    for (size_t i = 0; i < rows.size(); i++) {
        EXPECT_EQ(rows[i]["start_epoch"], from + static_cast<int64_t>(i) * kHour);
        const auto f = figures(rows[i]);
        for (size_t k = 0; k < 7; k++) sum[k] += f[k];
    }
    // Local 18:00-23:00 are rows 19-24: rx 20..25, tx 100 times that.
    const std::vector<uint64_t> day_total = expect4(13500, 135, 19000, 190);
    EXPECT_EQ(sum, day_total);
    EXPECT_EQ(figures(h["interfaces"][0]), day_total);

    ReportOptions d;
    d.kind = ReportOptions::Day;
    d.day = LocalDate{2026, 11, 1};
    EXPECT_EQ(figures(run_json(cal, d, now)["reports"][0]["interfaces"][0]), day_total);

    // Text: 25 hour rows, labelled with their offset because the day has two.
    auto lines = lines_of(before);
    EXPECT_EQ(
        std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l.starts_with("01:00 UTC"); }), 2);
    EXPECT_NE(std::find(lines.begin(), lines.end(),
                        "Hours of 2026-11-01 (2026-11-01 00:00:00 to 2026-11-02 "
                        "00:00:00, 25 hours)"),
              lines.end());
    size_t hour_rows = 0;
    for (const auto& l : lines)
        if (l.size() > 5 && l[2] == ':' && l.substr(5, 4) == " UTC") hour_rows++;
    EXPECT_EQ(hour_rows, 25u);

    // Rolled up (hourly and daily tables instead of buckets): the same report, byte for byte.
    ASSERT_TRUE(store_->finalize(cal, now).ok());
    o.json = false;
    EXPECT_EQ(run(cal, o, now), before);
}

TEST_F(ReportStore, SpringForwardDayHasTwentyThreeHoursAndNoHourTwo) {
    // Berlin 2026-03-29: 00:00 CET (23:00 UTC the day before) to 00:00 CEST, 23 hours.
    const Calendar cal = make_calendar("Europe/Berlin");
    commit(cal, {{"eth0", 1774738800 + 2 * kHour, kIfaceTotal, 7, 3}});  // 03:00 CEST
    ReportOptions o;
    o.kind = ReportOptions::Hours;
    o.day = LocalDate{2026, 3, 29};
    const json rows = run_json(cal, o, 1774821600)["reports"][0]["interfaces"][0]["rows"];
    ASSERT_EQ(rows.size(), 23u);
    EXPECT_EQ(rows[1]["start"], "2026-03-29 01:00:00");
    EXPECT_EQ(rows[2]["start"], "2026-03-29 03:00:00");
    EXPECT_EQ(figures(rows[2]), expect4(0, 0, 3, 7));

    o.kind = ReportOptions::FiveMinutes;
    o.hour = 2;
    EXPECT_EQ(run_error(cal, o, 1774821600),
              "hour 02 does not exist on 2026-03-29 in Europe/Berlin (the clocks skip it for daylight saving time)");
    o.hour = 3;
    const json fm = run_json(cal, o, 1774821600)["reports"][0];
    EXPECT_EQ(fm["hour"], 3);
    EXPECT_EQ(fm["from"], "2026-03-29 03:00:00");
    ASSERT_EQ(fm["interfaces"][0]["rows"].size(), 12u);
    EXPECT_EQ(figures(fm["interfaces"][0]["rows"][0]), expect4(0, 0, 3, 7));
}

TEST_F(ReportStore, FiveMinutesOfOneHourAndOfTheWholeDay) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    ReportOptions o;
    o.kind = ReportOptions::FiveMinutes;
    o.day = LocalDate{2026, 11, 21};
    o.hour = 9;
    o.iface = "eth0";
    const json r = run_json(cal, o, kSh21_2000)["reports"][0];
    EXPECT_EQ(r["kind"], "five_minutes");
    EXPECT_EQ(r["from_epoch"], kSh21_0900);
    EXPECT_EQ(r["to_epoch"], kSh21_0900 + kHour);
    ASSERT_EQ(r["interfaces"].size(), 1u);
    const json& rows = r["interfaces"][0]["rows"];
    ASSERT_EQ(rows.size(), 12u);
    EXPECT_EQ(rows[0]["start"], "2026-11-21 09:00:00");
    EXPECT_EQ(figures(rows[0]), expect4(0, 0, 200, 1000));
    EXPECT_EQ(rows[1]["start"], "2026-11-21 09:05:00");
    EXPECT_EQ(figures(rows[1]), expect4(0, 0, 50, 500));
    EXPECT_EQ(figures(rows[2]), expect4(0, 0, 0, 0));
    EXPECT_EQ(figures(r["interfaces"][0]), expect4(0, 0, 250, 1500));

    o.hour.reset();
    const json day = run_json(cal, o, kSh21_2000)["reports"][0];
    EXPECT_EQ(day["hour"], nullptr);
    ASSERT_EQ(day["interfaces"][0]["rows"].size(), 288u);
    EXPECT_EQ(day["interfaces"][0]["rows"][287]["start_epoch"], kSh21_2355);
    EXPECT_EQ(figures(day["interfaces"][0]["rows"][287]), expect4(6, 4, 0, 0));
    EXPECT_EQ(figures(day["interfaces"][0]), expect4(706, 3004, 250, 1500));
}

TEST_F(ReportStore, BillingMonthFromThe15thIncludesThe15thNotThe14th) {
    const Calendar cal = make_calendar("Asia/Shanghai", "18:00-24:00", 15);
    const int64_t now = 1797739200;  // 2026-12-20 12:00, in the next billing month
    commit(cal, {
                    {"eth0", 1794671700, kIfaceTotal, 100000, 100000},  // 2026-11-14 23:55: month before
                    {"eth0", 1794672000, kIfaceTotal, 1, 2},            // 2026-11-15 00:00: first bucket
                    {"eth0", 1796011200, kIfaceTotal, 10, 20},          // 2026-11-30 12:00
                    {"eth0", 1797263700, kIfaceTotal, 100, 200},        // 2026-12-14 23:55: last bucket (peak)
                    {"eth0", 1797264000, kIfaceTotal, 100000, 100000},  // 2026-12-15 00:00: next month
                    {"eth0", 1796011200, mac_key(kMacA), 5, 6},
                });
    ReportOptions o;
    o.kind = ReportOptions::Month;
    o.month = BillingMonth{2026, 11};
    const json j = run_json(cal, o, now);
    const json& r = j["reports"][0];
    EXPECT_EQ(j["billing_day"], 15);
    EXPECT_EQ(r["kind"], "month");
    EXPECT_EQ(r["period"], "2026-11");
    EXPECT_EQ(r["from"], "2026-11-15 00:00:00");
    EXPECT_EQ(r["from_epoch"], 1794672000);
    EXPECT_EQ(r["to"], "2026-12-15 00:00:00");
    EXPECT_EQ(r["to_epoch"], 1797264000);
    EXPECT_EQ(figures(r["interfaces"][0]), expect4(200, 100, 2 + 20, 1 + 10));
    EXPECT_EQ(figures(r["interfaces"][0]["macs"][0]), expect4(0, 0, 6, 5));

    // Finished days now come from the daily table: the same report, byte for byte, in JSON
    // and text.
    o.json = false;
    const std::string text = run(cal, o, now);
    ASSERT_TRUE(store_->finalize(cal, now).ok());
    EXPECT_EQ(run_json(cal, o, now), j);
    EXPECT_EQ(run(cal, o, now), text);
}

TEST_F(ReportStore, FinalizedDaysGiveIdenticalDayReports) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    const int64_t now = kSh22_0000 + 2 * 86400;  // 2026-11-24 00:00
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};
    const json before = run_json(cal, o, now);
    ReportOptions s;  // summary of 2026-11-24: today empty, month to date holds everything
    const json summary_before = run_json(cal, s, now);
    ASSERT_TRUE(store_->finalize(cal, now).ok());
    EXPECT_EQ(run_json(cal, o, now), before);
    EXPECT_EQ(figures(before["reports"][0]["interfaces"][0]), expect4(706, 3004, 250, 1500));
    EXPECT_EQ(run_json(cal, s, now), summary_before);
    // Month to date (2026-11-01 on): the whole day plus both neighbours.
    EXPECT_EQ(figures(summary_before["reports"][1]["interfaces"][0]),
              expect4(706 + 100000, 3004 + 100000, 250 + 100000, 1500 + 100000));
}

TEST_F(ReportStore, P95CountsIntervalsWithoutRowsAsZero) {
    // Billing month 2026-11 in Shanghai starts 2026-11-01 00:00 local; `now` is 100
    // intervals later, so the month so far has exactly 100 five-minute intervals.
    const Calendar cal = make_calendar("Asia/Shanghai");
    const int64_t start = 1793462400;
    const int64_t now = start + 100 * kBucketSeconds;
    std::vector<Put> puts;
    // up: 20 buckets of 3000, 6000, ... 60000 bytes; down: 10 buckets of 300 ... 3000.
    for (uint64_t k = 1; k <= 20; k++)
        puts.push_back({"eth0", start + static_cast<int64_t>(k - 1) * kBucketSeconds, kIfaceTotal,
                        k <= 10 ? 300 * k : 0, 3000 * k});
    puts.push_back({"eth0", start - kBucketSeconds, kIfaceTotal, 9999999, 9999999});  // October: not counted
    puts.push_back({"eth0", start, mac_key(kMacA), 9999999, 9999999});                // a MAC: not the interface
    commit(cal, puts);

    ReportOptions o;  // summary: the month to date carries the percentile too
    const json j = run_json(cal, o, now);
    ASSERT_EQ(j["reports"].size(), 2u);
    const json& m = j["reports"][1];
    EXPECT_EQ(m["kind"], "month");
    EXPECT_EQ(m["p95_intervals"], 100);
    EXPECT_EQ(m["p95_until_epoch"], now);
    const json& eth0 = m["interfaces"][0];
    EXPECT_EQ(eth0["p95_intervals_with_data"], 20);
    // Sorted: 80 zeros then 3000k; rank ceil(0.95 * 100) = 95 is k = 15: 45000 B * 8 / 300 s.
    // (Without the zeros it would be rank 19 of 20: 57000 B, 1520 bit/s.)
    EXPECT_DOUBLE_EQ(eth0["p95_up_bps"].get<double>(), 1200.0);
    // 90 zeros then 300k: rank 95 is k = 5, 1500 B = 40 bit/s.
    EXPECT_DOUBLE_EQ(eth0["p95_down_bps"].get<double>(), 40.0);
    // The day report has no percentile.
    EXPECT_FALSE(j["reports"][0]["interfaces"][0].contains("p95_up_bps"));

    // One second later the interval in progress counts too: 101 values, 81 zeros, rank
    // ceil(95.95) = 96 is still k = 15.
    const json later = run_json(cal, o, now + 1)["reports"][1];
    EXPECT_EQ(later["p95_intervals"], 101);
    EXPECT_DOUBLE_EQ(later["interfaces"][0]["p95_up_bps"].get<double>(), 1200.0);
    // 20 intervals more: 120 values, 100 zeros, rank 114 is k = 14: 42000 B = 1120 bit/s.
    const json more = run_json(cal, o, now + 20 * kBucketSeconds)["reports"][1];
    EXPECT_EQ(more["p95_intervals"], 120);
    EXPECT_DOUBLE_EQ(more["interfaces"][0]["p95_up_bps"].get<double>(), 1120.0);

    o.json = false;
    const std::string text = run(cal, o, now);
    EXPECT_NE(text.find("  95th percentile: up 1.2 kbit/s, down 40 bit/s\n"), std::string::npos) << text;
    EXPECT_NE(text.find("95th percentile: nearest rank over 100 5-minute intervals, 2026-11-01 00:00:00 to "
                        "2026-11-01 08:20:00; intervals without data count as 0; raw bytes, before adjustments\n"),
              std::string::npos)
        << text;
}

TEST_F(ReportStore, P95IsUnavailableOnceRetentionRemovedTheMonthsBuckets) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    const int64_t start = 1793462400;  // 2026-11-01 00:00
    commit(cal, {{"eth0", start + kHour, kIfaceTotal, 300, 300}});
    commit(cal, {{"eth0", start + 2 * kHour, kIfaceTotal, 600, 600}});  // the key's latest snapshot: kept
    const int64_t now = 1797739200;                                     // 2026-12-20
    ASSERT_TRUE(store_->finalize(cal, now).ok());
    Retention keep_one_day;
    keep_one_day.five_minute_days = 1;
    ASSERT_TRUE(store_->apply_retention(keep_one_day, now).ok());
    ReportOptions o;
    o.kind = ReportOptions::Month;
    o.month = BillingMonth{2026, 11};
    const json eth0 = run_json(cal, o, now)["reports"][0]["interfaces"][0];
    EXPECT_EQ(figures(eth0), expect4(0, 0, 900, 900));  // the totals survive in the daily table
    EXPECT_EQ(eth0["p95_up_bps"], nullptr);
    EXPECT_EQ(eth0["p95_down_bps"], nullptr);
    o.json = false;
    EXPECT_NE(run(cal, o, now).find("  95th percentile: n/a, 5-minute rows of this month were removed (retention)\n"),
              std::string::npos);
}

TEST_F(ReportStore, AdjustmentsShowAdjustedValuesBesideRawOnes) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    commit(cal, {{"wlan0", kSh21_0900, kIfaceTotal, 1000, 300}});
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};

    {  // A global factor covers interfaces and MACs.
        const json r = run_json(cal, o, kSh21_2000, {adjustment("", std::nullopt, "both", 1.05, 0)})["reports"][0];
        const json& eth0 = r["interfaces"][0];
        EXPECT_EQ(figures(eth0), expect4(706, 3004, 250, 1500));  // raw untouched
        // 706*1.05 = 741.3, 3004*1.05 = 3154.2, 250*1.05 = 262.5, 1500*1.05 = 1575,
        // up 956*1.05 = 1003.8, down 4504*1.05 = 4729.2.
        EXPECT_EQ(figures(eth0["adjusted"]), (std::vector<uint64_t>{741, 3154, 263, 1575, 1004, 4729, 5733}));
        EXPECT_EQ(eth0["adjusted"]["description"], "\u00d71.05 +0 B (global)");
        EXPECT_EQ(
            eth0["adjusted"]["up"],
            (json{{"factor", 1.05}, {"offset_bytes", 0}, {"iface", nullptr}, {"mac", nullptr}, {"direction", "both"}}));
        EXPECT_EQ(figures(eth0["macs"][0]["adjusted"]), (std::vector<uint64_t>{630, 2100, 0, 0, 630, 2100, 2730}));
    }
    {  // Per interface offset, per MAC override, rx only, clamping at 0.
        const std::vector<Adjustment> adj = {
            adjustment("eth0", std::nullopt, "both", 1, 1000),  // eth0 and its MACs: +1000 per figure
            adjustment("", kMacA, "both", 1, 0),                // ...except MAC A: unchanged
            adjustment("wlan0", std::nullopt, "rx", 2, 0),      // wlan0 down doubled, up raw
            adjustment("", kMacB, "tx", 1, -5000),              // MAC B up: clamped at 0
        };
        const json r = run_json(cal, o, kSh21_2000, adj)["reports"][0];
        const json& eth0 = r["interfaces"][0];
        EXPECT_EQ(figures(eth0["adjusted"]), (std::vector<uint64_t>{1706, 4004, 1250, 2500, 1956, 5504, 7460}));
        EXPECT_EQ(eth0["adjusted"]["description"], "\u00d71 +1000 B (iface eth0)");
        const json& mac_b = eth0["macs"][0];
        EXPECT_EQ(mac_b["mac"], "02:00:00:00:00:02");
        // up: max(0, x - 5000) = 0 everywhere; down: the eth0 offset (raw 2000 peak, 0 off-peak).
        EXPECT_EQ(figures(mac_b["adjusted"]), (std::vector<uint64_t>{0, 3000, 0, 1000, 0, 3000, 3000}));
        EXPECT_EQ(mac_b["adjusted"]["description"],
                  "up \u00d71 -4.88 KiB (mac 02:00:00:00:00:02, tx); down \u00d71 +1000 B (iface eth0)");
        const json& mac_a = eth0["macs"][1];
        EXPECT_EQ(figures(mac_a["adjusted"]), figures(mac_a));
        EXPECT_EQ(mac_a["adjusted"]["description"], "\u00d71 +0 B (mac 02:00:00:00:00:01)");
        const json& wlan0 = r["interfaces"][1];
        EXPECT_EQ(figures(wlan0), expect4(0, 0, 300, 1000));
        EXPECT_EQ(figures(wlan0["adjusted"]), (std::vector<uint64_t>{0, 0, 300, 2000, 300, 2000, 2300}));
        EXPECT_EQ(wlan0["adjusted"]["description"], "up not adjusted; down \u00d72 +0 B (iface wlan0, rx)");
        EXPECT_EQ(wlan0["adjusted"]["up"], nullptr);
        EXPECT_EQ(wlan0["adjusted"]["down"]["direction"], "rx");
    }
    {  // Text shows the adjusted figures and says so.
        o.iface = "eth0";
        o.top_macs = 0;
        const std::string text = run(cal, o, kSh21_2000, {adjustment("eth0", std::nullopt, "both", 1.05, 0)});
        const auto lines = lines_of(text);
        ASSERT_GE(lines.size(), 8u) << text;
        EXPECT_TRUE(lines[5].starts_with("eth0  ")) << text;
        EXPECT_NE(lines[5].find("5.60 KiB"), std::string::npos) << text;  // 5733 B adjusted, 5460 B raw
        EXPECT_EQ(lines[6], "  adjusted: \u00d71.05 +0 B (iface eth0); raw total 5.33 KiB");
        EXPECT_EQ(lines[7], "  (2 more MACs)");
    }
}

TEST_F(ReportStore, TextDayReportExactLines) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    commit(cal, {
                    {"eth0", kSh21_1800, kIfaceTotal, 2048, 1024},  // peak
                    {"eth0", kSh21_0900, kIfaceTotal, 512, 0},      // off-peak
                    {"eth0", kSh21_1800, mac_key(kMacA), 1024, 0},
                });
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};
    // Column widths: the widest of header and cells; the bar is 30 '#' for the largest
    // total (3584 B) and round(30 * 1024 / 3584) = 9 for the MAC.
    const std::string expected =
        "peakflow report, time zone Asia/Shanghai, generated 2026-11-21 20:00:00\n"
        "up = sent by this host (tx), down = received (rx); peak 18:00-24:00\n"
        "\n"
        "Day 2026-11-21 (2026-11-21 00:00:00 to 2026-11-22 00:00:00)\n"
        "interface             peak up  peak down  off-peak up  off-peak down  total up  total down     total\n"
        "eth0                 1.00 KiB   2.00 KiB          0 B          512 B  1.00 KiB    2.50 KiB  3.50 KiB  "
        "##############################\n"
        "  02:00:00:00:00:01       0 B   1.00 KiB          0 B            0 B       0 B    1.00 KiB  1.00 KiB  "
        "#########\n";
    EXPECT_EQ(run(cal, o, kSh21_2000), expected);

    // Hours: 24 rows and a total line; a row without traffic has no bar.
    o.kind = ReportOptions::Hours;
    const auto lines = lines_of(run(cal, o, kSh21_2000));
    ASSERT_EQ(lines.size(), 4u + 2u + 1u + 24u + 1u);
    EXPECT_EQ(lines[3], "Hours of 2026-11-21 (2026-11-21 00:00:00 to 2026-11-22 00:00:00, 24 hours)");
    EXPECT_EQ(lines[4], "");
    EXPECT_EQ(lines[5], "eth0");
    EXPECT_EQ(lines[6], "hour    peak up  peak down  off-peak up  off-peak down     total");
    EXPECT_EQ(lines[7], "00:00       0 B        0 B          0 B            0 B       0 B");
    EXPECT_EQ(lines[7 + 9], "09:00       0 B        0 B          0 B          512 B     512 B  #####");
    EXPECT_EQ(lines[7 + 18],
              "18:00  1.00 KiB   2.00 KiB          0 B            0 B  3.00 KiB  ##############################");
    EXPECT_EQ(lines[7 + 24], "total  1.00 KiB   2.00 KiB          0 B          512 B  3.50 KiB");
}

TEST_F(ReportStore, MacFilterReportsThatMacInsteadOfTheInterface) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.day = LocalDate{2026, 11, 21};
    o.mac = kMacB;
    const json r = run_json(cal, o, kSh21_2000);
    EXPECT_EQ(r["filter"]["mac"], "02:00:00:00:00:02");
    const json& eth0 = r["reports"][0]["interfaces"][0];
    EXPECT_EQ(eth0["mac"], "02:00:00:00:00:02");
    EXPECT_EQ(figures(eth0), expect4(600, 2000, 0, 0));
    EXPECT_EQ(eth0["macs"], json::array());
    EXPECT_EQ(figures(r["reports"][0]["interfaces"][1]), expect4(0, 0, 0, 0));  // wlan0: never seen

    o.kind = ReportOptions::Hours;
    o.iface = "eth0";
    const json h = run_json(cal, o, kSh21_2000)["reports"][0]["interfaces"];
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(figures(h[0]["rows"][18]), expect4(600, 2000, 0, 0));
    EXPECT_EQ(figures(h[0]), expect4(600, 2000, 0, 0));
}

TEST_F(ReportStore, TopMacsLimitsTheListAndCountsTheRest) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    commit(cal, {
                    {"eth0", kSh21_0900, kIfaceTotal, 10, 10},
                    {"eth0", kSh21_0900, mac_key(kMacA), 5, 0},
                    {"eth0", kSh21_0900, mac_key(kMacB), 5, 0},  // a tie: the lower MAC first
                    {"eth0", kSh21_0900, mac_key(kMacC), 1, 9},
                });
    ReportOptions o;
    o.kind = ReportOptions::Day;
    o.top_macs = 2;
    const json eth0 = run_json(cal, o, kSh21_2000)["reports"][0]["interfaces"][0];
    EXPECT_EQ(eth0["mac_count"], 3);
    ASSERT_EQ(eth0["macs"].size(), 2u);
    EXPECT_EQ(eth0["macs"][0]["mac"], "02:00:00:00:00:03");
    EXPECT_EQ(eth0["macs"][1]["mac"], "02:00:00:00:00:01");
    o.top_macs = -1;
    EXPECT_EQ(run_json(cal, o, kSh21_2000)["reports"][0]["interfaces"][0]["macs"].size(), 3u);
    o.top_macs = 2;
    const std::string text = run(cal, o, kSh21_2000);
    EXPECT_NE(text.find("\n  (1 more MAC)\n"), std::string::npos) << text;
}

TEST_F(ReportStore, SummaryIsTodayAndTheBillingMonthToDate) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    const json j = run_json(cal, ReportOptions{}, kSh21_2000);
    EXPECT_EQ(j["kind"], "summary");
    ASSERT_EQ(j["reports"].size(), 2u);
    EXPECT_EQ(j["reports"][0]["kind"], "day");
    EXPECT_EQ(j["reports"][0]["period"], "2026-11-21");
    EXPECT_EQ(j["reports"][1]["kind"], "month");
    EXPECT_EQ(j["reports"][1]["period"], "2026-11");
    EXPECT_EQ(j["reports"][1]["p95_until_epoch"], kSh21_2000);
    EXPECT_EQ(figures(j["reports"][0]["interfaces"][0]), expect4(706, 3004, 250, 1500));
    // The month holds the day before too (2026-11-20 23:55) and the day after (a row
    // from the future still counts: it is in the month).
    EXPECT_EQ(figures(j["reports"][1]["interfaces"][0]),
              expect4(706 + 100000, 3004 + 100000, 250 + 100000, 1500 + 100000));
    EXPECT_FALSE(j.contains("message"));
    const std::string text = run(cal, ReportOptions{}, kSh21_2000);
    EXPECT_NE(text.find("\nToday 2026-11-21 (2026-11-21 00:00:00 to 2026-11-22 00:00:00)\n"), std::string::npos);
    EXPECT_NE(text.find("\nBilling month 2026-11, to date (2026-11-01 00:00:00 to 2026-12-01 00:00:00)\n"),
              std::string::npos);
}

TEST_F(ReportStore, SummaryWithoutAnyDataSaysSoAndIsNotAnError) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    const std::string text = run(cal, ReportOptions{}, kSh21_2000);
    EXPECT_EQ(text,
              "peakflow report, time zone Asia/Shanghai, generated 2026-11-21 20:00:00\n"
              "up = sent by this host (tx), down = received (rx); peak 18:00-24:00\n"
              "\n"
              "No traffic recorded yet in " +
                  dir_ + "/history.db: the daemon ('peakflow-bpf attach') writes the history with its first drain.\n");
    const json j = run_json(cal, ReportOptions{}, kSh21_2000);
    EXPECT_TRUE(j["message"].get<std::string>().starts_with("No traffic recorded yet"));
    ASSERT_EQ(j["reports"].size(), 2u);
    EXPECT_EQ(j["reports"][0]["interfaces"], json::array());
    EXPECT_EQ(j["reports"][1]["interfaces"], json::array());

    ReportOptions d;
    d.kind = ReportOptions::Day;
    EXPECT_EQ(run_error(cal, d, kSh21_2000),
              "no traffic recorded yet in " + dir_ +
                  "/history.db (the daemon ('peakflow-bpf attach') writes the history with its first drain)");
}

TEST_F(ReportStore, BadOptionsAreErrors) {
    const Calendar cal = make_calendar("Asia/Shanghai");
    fill_shanghai_day(cal);
    ReportOptions o;
    o.kind = ReportOptions::FiveMinutes;
    o.hour = 24;
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "invalid hour 24 (use a local hour 0-23)");
    o.hour = -1;
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "invalid hour -1 (use a local hour 0-23)");
    o.kind = ReportOptions::Hours;
    o.hour = 3;
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "an hour only applies to the 5-minute report");
    o = ReportOptions{};
    o.iface = "eth9";
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "no history for interface 'eth9' (interfaces with history: eth0, wlan0)");
    o = ReportOptions{};
    o.day = LocalDate{2026, 11, 21};
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "a day only applies to the day, hours and 5-minute reports");
    o = ReportOptions{};
    o.kind = ReportOptions::Day;
    o.month = BillingMonth{2026, 11};
    EXPECT_EQ(run_error(cal, o, kSh21_2000), "a billing month only applies to the month report");
}

}  // namespace
}  // namespace pf
