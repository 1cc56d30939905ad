// Billing time against hand-computed epochs: every constant is UTC epoch seconds with the
// UTC (and where it matters, local) wall time beside it, checked with `date -u -d @EPOCH`.
// Zones come from /usr/share/zoneinfo, so DST days are tested whatever the machine's zone.

#include <date/tz.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "peakflow/accounting/calendar.hpp"

namespace pf {
namespace {

Calendar make_calendar(const std::string& tz, std::vector<PeakWindow> windows = {PeakWindow{}}, int billing_day = 1) {
    return Calendar::create(tz, std::move(windows), billing_day).take();
}

PeakWindow window(const std::string& text) {
    return parse_peak_window(text).take();
}

std::string parse_error(const std::string& text) {
    auto r = parse_peak_window(text);
    if (r.ok()) return "parsed: " + format_peak_window(r.value());
    return r.error().message();
}

// Sets $TZ for one test and puts the previous value back, so the other tests keep theirs.
class ScopedTz {
  public:
    explicit ScopedTz(const char* value) {
        if (const char* old = std::getenv("TZ")) old_ = old;
        setenv("TZ", value, 1);
    }
    ~ScopedTz() {
        if (old_)
            setenv("TZ", old_->c_str(), 1);
        else
            unsetenv("TZ");
    }
    ScopedTz(const ScopedTz&) = delete;
    ScopedTz& operator=(const ScopedTz&) = delete;

  private:
    std::optional<std::string> old_;
};

// ---- 5-minute buckets ------------------------------------------------------------------

TEST(CalendarBucket, ExactMultiplesStartTheirOwnBucket) {
    EXPECT_EQ(Calendar::bucket_start(0), 0);
    EXPECT_EQ(Calendar::bucket_start(300), 300);
    EXPECT_EQ(Calendar::bucket_start(1767225600), 1767225600);  // 2026-01-01 00:00:00 UTC
    EXPECT_EQ(Calendar::bucket_start(1767225900), 1767225900);  // 2026-01-01 00:05:00 UTC
}

TEST(CalendarBucket, OneSecondBeforeABoundaryIsInThePreviousBucket) {
    EXPECT_EQ(Calendar::bucket_start(299), 0);
    EXPECT_EQ(Calendar::bucket_start(301), 300);
    EXPECT_EQ(Calendar::bucket_start(1767225599), 1767225300);  // 2025-12-31 23:59:59 -> 23:55:00 UTC
    EXPECT_EQ(Calendar::bucket_start(1767225899), 1767225600);  // 2026-01-01 00:04:59 -> 00:00:00 UTC
}

TEST(CalendarBucket, NegativeTimesRoundDownNotTowardZero) {
    EXPECT_EQ(Calendar::bucket_start(-1), -300);    // 1969-12-31 23:59:59 -> 23:55:00 UTC
    EXPECT_EQ(Calendar::bucket_start(-300), -300);  // 1969-12-31 23:55:00 UTC
    EXPECT_EQ(Calendar::bucket_start(-301), -600);  // 1969-12-31 23:54:59 -> 23:50:00 UTC
}

// ---- parsing and formatting peak windows ------------------------------------------------

TEST(CalendarPeakWindow, ParsesPlainAndMidnightCrossingRanges) {
    EXPECT_EQ(window("18:00-24:00"), (PeakWindow{18 * 60, 24 * 60, 0x7f}));
    EXPECT_EQ(window("18:00-24:00"), PeakWindow{});  // the default
    EXPECT_EQ(window("22:00-02:00"), (PeakWindow{22 * 60, 2 * 60, 0x7f}));
    EXPECT_EQ(window("00:00-24:00"), (PeakWindow{0, 24 * 60, 0x7f}));
    EXPECT_EQ(window("07:05-09:55"), (PeakWindow{7 * 60 + 5, 9 * 60 + 55, 0x7f}));
    EXPECT_EQ(window("22:00-00:00"), (PeakWindow{22 * 60, 0, 0x7f}));
    EXPECT_EQ(window("  18:00-24:00  "), PeakWindow{});  // as a YAML scalar might carry it
}

TEST(CalendarPeakWindow, ParsesWeekdayListsAndRanges) {
    // Bit 0 Monday ... bit 6 Sunday.
    EXPECT_EQ(window("08:00-18:00 mon-fri").weekdays, 0x1f);
    EXPECT_EQ(window("10:00-12:00 sat,sun").weekdays, 0x60);
    EXPECT_EQ(window("10:00-12:00 sun,sat").weekdays, 0x60);
    EXPECT_EQ(window("22:00-06:00 fri-mon").weekdays, 0x71);  // fri, sat, sun, mon: wraps
    EXPECT_EQ(window("00:05-23:55 wed").weekdays, 0x04);
    EXPECT_EQ(window("09:00-17:00 mon,wed-fri").weekdays, 0x1d);
    EXPECT_EQ(window("09:00-17:00 mon-sun").weekdays, 0x7f);
    EXPECT_EQ(window("09:00-17:00 sun-sat").weekdays, 0x7f);
    EXPECT_EQ(window("09:00-17:00 tue-tue").weekdays, 0x02);
    EXPECT_EQ(window("09:00-17:00 Mon-Fri").weekdays, 0x1f);
    EXPECT_EQ(window("09:00-17:00 sat, sun").weekdays, 0x60);
    EXPECT_EQ(window("09:00-17:00\tmon").weekdays, 0x01);
}

TEST(CalendarPeakWindow, RejectsBadFormatWithTheText) {
    EXPECT_EQ(parse_error("evening"),
              "invalid peak window 'evening': expected HH:MM-HH:MM, optionally followed by weekdays such as mon-fri");
    EXPECT_EQ(parse_error(""),
              "invalid peak window '': expected HH:MM-HH:MM, optionally followed by weekdays such as mon-fri");
    EXPECT_EQ(parse_error("8:00-18:00"), "invalid peak window '8:00-18:00': start '8:00' is not HH:MM");
    EXPECT_EQ(parse_error("18:00-"), "invalid peak window '18:00-': end '' is not HH:MM");
    EXPECT_EQ(parse_error("18:00 - 24:00"),
              "invalid peak window '18:00 - 24:00': expected HH:MM-HH:MM, optionally followed by weekdays such as "
              "mon-fri");
    EXPECT_EQ(parse_error("18.00-24.00"), "invalid peak window '18.00-24.00': start '18.00' is not HH:MM");
    EXPECT_EQ(parse_error("18:60-20:00"), "invalid peak window '18:60-20:00': start '18:60' has minutes past 59");
}

TEST(CalendarPeakWindow, RejectsMinutesThatSplitABucket) {
    EXPECT_EQ(parse_error("18:03-24:00"),
              "invalid peak window '18:03-24:00': start '18:03': minutes must be a multiple of 5, so a 5-minute "
              "bucket is wholly peak or off-peak");
    EXPECT_EQ(parse_error("18:00-23:59"),
              "invalid peak window '18:00-23:59': end '23:59': minutes must be a multiple of 5, so a 5-minute "
              "bucket is wholly peak or off-peak");
}

TEST(CalendarPeakWindow, Allows24OnlyAsAnExactEnd) {
    EXPECT_EQ(parse_error("22:00-24:30"), "invalid peak window '22:00-24:30': end '24:30' is past 24:00");
    EXPECT_EQ(parse_error("22:00-25:00"), "invalid peak window '22:00-25:00': end '25:00' is past 24:00");
    EXPECT_EQ(parse_error("24:00-02:00"),
              "invalid peak window '24:00-02:00': start '24:00' is past 23:55 (24:00 may only end a window)");
}

TEST(CalendarPeakWindow, RejectsAnEmptyWindow) {
    EXPECT_EQ(parse_error("10:00-10:00"), "invalid peak window '10:00-10:00': start and end are equal");
    EXPECT_EQ(parse_error("00:00-00:00"), "invalid peak window '00:00-00:00': start and end are equal");
}

TEST(CalendarPeakWindow, RejectsUnknownOrMalformedWeekdays) {
    EXPECT_EQ(parse_error("08:00-18:00 mon-fry"),
              "invalid peak window '08:00-18:00 mon-fry': unknown weekday 'fry' (use mon, tue, wed, thu, fri, sat, "
              "sun)");
    EXPECT_EQ(parse_error("08:00-18:00 monday"),
              "invalid peak window '08:00-18:00 monday': unknown weekday 'monday' (use mon, tue, wed, thu, fri, "
              "sat, sun)");
    EXPECT_EQ(parse_error("08:00-18:00 mon,,tue"),
              "invalid peak window '08:00-18:00 mon,,tue': empty weekday in 'mon,,tue'");
    EXPECT_EQ(parse_error("08:00-18:00 mon,"), "invalid peak window '08:00-18:00 mon,': empty weekday in 'mon,'");
    EXPECT_EQ(parse_error("08:00-18:00 mon-wed-fri"),
              "invalid peak window '08:00-18:00 mon-wed-fri': weekday range 'mon-wed-fri' has more than one '-'");
}

TEST(CalendarPeakWindow, FormatsCanonically) {
    EXPECT_EQ(format_peak_window(PeakWindow{}), "18:00-24:00");
    EXPECT_EQ(format_peak_window(window("22:00-02:00")), "22:00-02:00");
    EXPECT_EQ(format_peak_window(window("08:00-18:00 mon-fri")), "08:00-18:00 mon-fri");
    EXPECT_EQ(format_peak_window(window("10:00-12:00 sun,sat")), "10:00-12:00 sat,sun");
    EXPECT_EQ(format_peak_window(window("22:00-06:00 mon,fri-sun")), "22:00-06:00 fri-mon");
    EXPECT_EQ(format_peak_window(window("09:00-17:00 MON,wed-fri")), "09:00-17:00 mon,wed-fri");
    EXPECT_EQ(format_peak_window(window("09:00-17:00 mon-sun")), "09:00-17:00");
    EXPECT_EQ(format_peak_window(window("07:05-09:55 sun")), "07:05-09:55 sun");
    EXPECT_EQ(format_peak_window(window("07:05-09:55 sun,mon")), "07:05-09:55 sun,mon");
    EXPECT_EQ(format_peak_window(window("07:05-09:55 mon,wed,fri-sun")), "07:05-09:55 wed,fri-mon");
    EXPECT_EQ(format_peak_window(window("07:05-09:55 tue-sun")), "07:05-09:55 tue-sun");
    EXPECT_EQ(format_peak_window(window("07:05-09:55 sun-fri")), "07:05-09:55 sun-fri");
}

TEST(CalendarPeakWindow, EveryWeekdayMaskRoundTripsThroughParse) {
    for (int mask = 1; mask <= 0x7f; ++mask) {
        const PeakWindow w{22 * 60 + 5, 6 * 60 + 55, static_cast<uint8_t>(mask)};
        const std::string text = format_peak_window(w);
        auto back = parse_peak_window(text);
        ASSERT_TRUE(back.ok()) << text << ": " << back.error().message();
        EXPECT_EQ(back.value(), w) << text;
    }
    for (const char* text : {"18:00-24:00", "22:00-00:00", "00:00-24:00", "00:00-00:05", "23:55-24:00"}) {
        EXPECT_EQ(format_peak_window(window(text)), text);
    }
}

// ---- peak by local wall time ----------------------------------------------------------

TEST(CalendarIsPeak, DefaultWindowIsSixPmToMidnight) {
    const Calendar c = make_calendar("UTC");
    EXPECT_FALSE(c.is_peak(1767290399));  // Thu 2026-01-01 17:59:59 UTC
    EXPECT_TRUE(c.is_peak(1767290400));   // Thu 2026-01-01 18:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767311999));   // Thu 2026-01-01 23:59:59 UTC
    EXPECT_FALSE(c.is_peak(1767312000));  // Fri 2026-01-02 00:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767225600));  // Thu 2026-01-01 00:00:00 UTC
}

TEST(CalendarIsPeak, UsesLocalNotUtcTime) {
    const Calendar c = make_calendar("Asia/Shanghai");  // UTC+8
    EXPECT_FALSE(c.is_peak(1767261599));                // 2026-01-01 09:59:59 UTC = 17:59:59 local
    EXPECT_TRUE(c.is_peak(1767261600));                 // 2026-01-01 10:00:00 UTC = 18:00:00 local
    EXPECT_FALSE(c.is_peak(1767290400));                // 2026-01-01 18:00:00 UTC = 02:00:00 local
    EXPECT_EQ(c.format_local(1767261600), "2026-01-01 18:00:00");
}

TEST(CalendarIsPeak, WindowCrossingMidnightContinuesIntoTheNextDay) {
    const Calendar c = make_calendar("UTC", {window("22:00-02:00")});
    EXPECT_FALSE(c.is_peak(1767304799));  // Thu 2026-01-01 21:59:59 UTC
    EXPECT_TRUE(c.is_peak(1767304800));   // Thu 2026-01-01 22:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767311999));   // Thu 2026-01-01 23:59:59 UTC
    EXPECT_TRUE(c.is_peak(1767312000));   // Fri 2026-01-02 00:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767315600));   // Fri 2026-01-02 01:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767319199));   // Fri 2026-01-02 01:59:59 UTC
    EXPECT_FALSE(c.is_peak(1767319200));  // Fri 2026-01-02 02:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767355200));  // Fri 2026-01-02 12:00:00 UTC
}

TEST(CalendarIsPeak, AfterMidnightPartBelongsToTheDayTheWindowStarted) {
    const Calendar c = make_calendar("UTC", {window("22:00-02:00 fri")});
    EXPECT_FALSE(c.is_peak(1767308400));  // Thu 2026-01-01 23:00:00 UTC: Thursday's window
    EXPECT_FALSE(c.is_peak(1767315600));  // Fri 2026-01-02 01:00:00 UTC: still Thursday's night
    EXPECT_TRUE(c.is_peak(1767394800));   // Fri 2026-01-02 23:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767402000));   // Sat 2026-01-03 01:00:00 UTC: Friday's night
    EXPECT_FALSE(c.is_peak(1767481200));  // Sat 2026-01-03 23:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767488400));  // Sun 2026-01-04 01:00:00 UTC
}

TEST(CalendarIsPeak, WeekdayRangeWrappingPastSunday) {
    const Calendar c = make_calendar("UTC", {window("22:00-06:00 fri-mon")});
    EXPECT_FALSE(c.is_peak(1767308400));  // Thu 2026-01-01 23:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767394800));   // Fri 2026-01-02 23:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767654000));   // Mon 2026-01-05 23:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767668400));   // Tue 2026-01-06 03:00:00 UTC: Monday's night
    EXPECT_TRUE(c.is_peak(1767679199));   // Tue 2026-01-06 05:59:59 UTC
    EXPECT_FALSE(c.is_peak(1767679200));  // Tue 2026-01-06 06:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767740400));  // Tue 2026-01-06 23:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767754800));  // Wed 2026-01-07 03:00:00 UTC
}

TEST(CalendarIsPeak, WorkingHoursOnWeekdaysOnly) {
    const Calendar c = make_calendar("UTC", {window("08:00-18:00 mon-fri")});
    EXPECT_TRUE(c.is_peak(1767355200));   // Fri 2026-01-02 12:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767441600));  // Sat 2026-01-03 12:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767528000));  // Sun 2026-01-04 12:00:00 UTC
    EXPECT_FALSE(c.is_peak(1767599999));  // Mon 2026-01-05 07:59:59 UTC
    EXPECT_TRUE(c.is_peak(1767600000));   // Mon 2026-01-05 08:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767635999));   // Mon 2026-01-05 17:59:59 UTC
    EXPECT_FALSE(c.is_peak(1767636000));  // Mon 2026-01-05 18:00:00 UTC
}

TEST(CalendarIsPeak, AnyOfSeveralWindows) {
    const Calendar c = make_calendar("UTC", {window("08:30-09:00"), PeakWindow{}});
    EXPECT_TRUE(c.is_peak(1767256200));   // Thu 2026-01-01 08:30:00 UTC
    EXPECT_FALSE(c.is_peak(1767258000));  // Thu 2026-01-01 09:00:00 UTC
    EXPECT_TRUE(c.is_peak(1767290400));   // Thu 2026-01-01 18:00:00 UTC
}

TEST(CalendarIsPeak, NoWindowsMeansNeverPeak) {
    const Calendar c = make_calendar("UTC", {});
    EXPECT_FALSE(c.is_peak(1767290400));  // Thu 2026-01-01 18:00:00 UTC
}

// ---- DST: 23- and 25-hour days --------------------------------------------------------

// Distinct local hours among the 5-minute buckets of a day, each checked to be one hour long.
int hours_in_day(const Calendar& c, const LocalDate& d) {
    std::set<int64_t> starts;
    for (int64_t t = c.day_start(d); t < c.day_end(d); t += kBucketSeconds) starts.insert(c.hour_start(t));
    for (int64_t s : starts) EXPECT_EQ(c.hour_start(s + 3599), s) << c.format_local(s);
    return static_cast<int>(starts.size());
}

TEST(CalendarDst, NewYorkSpringForwardDayHas23Hours) {
    const Calendar c = make_calendar("America/New_York");
    const LocalDate d{2024, 3, 10};
    EXPECT_EQ(c.day_start(d), 1710046800);  // 2024-03-10 05:00:00 UTC = 00:00 EST
    EXPECT_EQ(c.day_end(d), 1710129600);    // 2024-03-11 04:00:00 UTC = 00:00 EDT
    EXPECT_EQ(c.day_end(d) - c.day_start(d), 82800);
    EXPECT_EQ(hours_in_day(c, d), 23);
    EXPECT_EQ(c.local_date(1710046800), d);
    EXPECT_EQ(c.local_date(1710046799), (LocalDate{2024, 3, 9}));  // 2024-03-10 04:59:59 UTC
    EXPECT_EQ(c.utc_offset_seconds(1710046800), -5 * 3600);
    EXPECT_EQ(c.utc_offset_seconds(1710129600), -4 * 3600);
}

TEST(CalendarDst, NewYorkSpringForwardHours) {
    const Calendar c = make_calendar("America/New_York");
    EXPECT_EQ(c.hour_start(1710053999), 1710050400);  // 06:59:59 UTC = 01:59:59 EST -> 06:00 UTC
    EXPECT_EQ(c.hour_start(1710054000), 1710054000);  // 07:00:00 UTC = 03:00:00 EDT (02:00 is skipped)
    EXPECT_EQ(c.hour_start(1710055800), 1710054000);  // 07:30:00 UTC = 03:30:00 EDT
    EXPECT_EQ(c.format_local(1710053999), "2024-03-10 01:59:59");
    EXPECT_EQ(c.format_local(1710054000), "2024-03-10 03:00:00");
}

TEST(CalendarDst, NewYorkFallBackDayHas25Hours) {
    const Calendar c = make_calendar("America/New_York");
    const LocalDate d{2024, 11, 3};
    EXPECT_EQ(c.day_start(d), 1730606400);  // 2024-11-03 04:00:00 UTC = 00:00 EDT
    EXPECT_EQ(c.day_end(d), 1730696400);    // 2024-11-04 05:00:00 UTC = 00:00 EST
    EXPECT_EQ(c.day_end(d) - c.day_start(d), 90000);
    EXPECT_EQ(hours_in_day(c, d), 25);
}

TEST(CalendarDst, NewYorkRepeatedHourIsTwoDistinctHours) {
    const Calendar c = make_calendar("America/New_York");
    EXPECT_EQ(c.hour_start(1730608200), 1730606400);  // 04:30:00 UTC = 00:30 EDT -> 04:00 UTC
    // First 01:00-02:00, EDT: 05:00-06:00 UTC.
    EXPECT_EQ(c.hour_start(1730610000), 1730610000);  // 05:00:00 UTC = 01:00:00 EDT
    EXPECT_EQ(c.hour_start(1730611800), 1730610000);  // 05:30:00 UTC = 01:30:00 EDT
    EXPECT_EQ(c.hour_start(1730613599), 1730610000);  // 05:59:59 UTC = 01:59:59 EDT
    // Second 01:00-02:00, EST: 06:00-07:00 UTC.
    EXPECT_EQ(c.hour_start(1730613600), 1730613600);  // 06:00:00 UTC = 01:00:00 EST
    EXPECT_EQ(c.hour_start(1730615400), 1730613600);  // 06:30:00 UTC = 01:30:00 EST
    EXPECT_EQ(c.hour_start(1730617200), 1730617200);  // 07:00:00 UTC = 02:00:00 EST
    EXPECT_EQ(c.format_local(1730611800), "2024-11-03 01:30:00");
    EXPECT_EQ(c.format_local(1730615400), "2024-11-03 01:30:00");
}

TEST(CalendarDst, NewYorkPeakAtSixPmLocalOnDstDays) {
    const Calendar c = make_calendar("America/New_York");
    EXPECT_FALSE(c.is_peak(1710107999));  // 2024-03-10 21:59:59 UTC = 17:59:59 EDT
    EXPECT_TRUE(c.is_peak(1710108000));   // 2024-03-10 22:00:00 UTC = 18:00:00 EDT
    EXPECT_TRUE(c.is_peak(1710129599));   // 2024-03-11 03:59:59 UTC = 23:59:59 EDT
    EXPECT_FALSE(c.is_peak(1710129600));  // 2024-03-11 04:00:00 UTC = 00:00:00 EDT
    EXPECT_FALSE(c.is_peak(1730674799));  // 2024-11-03 22:59:59 UTC = 17:59:59 EST
    EXPECT_TRUE(c.is_peak(1730674800));   // 2024-11-03 23:00:00 UTC = 18:00:00 EST
    EXPECT_FALSE(c.is_peak(1730696400));  // 2024-11-04 05:00:00 UTC = 00:00:00 EST
}

TEST(CalendarDst, BerlinSpringForwardDayHas23Hours) {
    const Calendar c = make_calendar("Europe/Berlin");
    const LocalDate d{2024, 3, 31};
    EXPECT_EQ(c.day_start(d), 1711839600);  // 2024-03-30 23:00:00 UTC = 00:00 CET
    EXPECT_EQ(c.day_end(d), 1711922400);    // 2024-03-31 22:00:00 UTC = 00:00 CEST
    EXPECT_EQ(c.day_end(d) - c.day_start(d), 82800);
    EXPECT_EQ(hours_in_day(c, d), 23);
    EXPECT_EQ(c.hour_start(1711846799), 1711843200);  // 00:59:59 UTC = 01:59:59 CET -> 00:00 UTC
    EXPECT_EQ(c.hour_start(1711848600), 1711846800);  // 01:30:00 UTC = 03:30:00 CEST -> 01:00 UTC
    EXPECT_FALSE(c.is_peak(1711900799));              // 2024-03-31 15:59:59 UTC = 17:59:59 CEST
    EXPECT_TRUE(c.is_peak(1711900800));               // 2024-03-31 16:00:00 UTC = 18:00:00 CEST
}

TEST(CalendarDst, BerlinFallBackDayHas25HoursAndTwoHoursAtTwo) {
    const Calendar c = make_calendar("Europe/Berlin");
    const LocalDate d{2024, 10, 27};
    EXPECT_EQ(c.day_start(d), 1729980000);  // 2024-10-26 22:00:00 UTC = 00:00 CEST
    EXPECT_EQ(c.day_end(d), 1730070000);    // 2024-10-27 23:00:00 UTC = 00:00 CET
    EXPECT_EQ(c.day_end(d) - c.day_start(d), 90000);
    EXPECT_EQ(hours_in_day(c, d), 25);
    EXPECT_EQ(c.hour_start(1729989000), 1729987200);  // 00:30:00 UTC = 02:30 CEST -> 00:00 UTC
    EXPECT_EQ(c.hour_start(1729992600), 1729990800);  // 01:30:00 UTC = 02:30 CET -> 01:00 UTC
    EXPECT_FALSE(c.is_peak(1730048399));              // 2024-10-27 16:59:59 UTC = 17:59:59 CET
    EXPECT_TRUE(c.is_peak(1730048400));               // 2024-10-27 17:00:00 UTC = 18:00:00 CET
}

TEST(CalendarDst, MissingMidnightStartsTheDayAtItsFirstInstant) {
    // Sao Paulo, 2018-11-04: clocks went from 00:00 -03 straight to 01:00 -02.
    const Calendar c = make_calendar("America/Sao_Paulo");
    EXPECT_EQ(c.day_start(LocalDate{2018, 11, 4}), 1541300400);  // 2018-11-04 03:00:00 UTC = 01:00 -02
    EXPECT_EQ(c.day_end(LocalDate{2018, 11, 3}), 1541300400);
    EXPECT_EQ(c.day_start(LocalDate{2018, 11, 3}), 1541214000);     // 2018-11-03 03:00:00 UTC = 00:00 -03
    EXPECT_EQ(c.day_end(LocalDate{2018, 11, 4}), 1541383200);       // 2018-11-05 02:00:00 UTC = 00:00 -02
    EXPECT_EQ(c.local_date(1541300399), (LocalDate{2018, 11, 3}));  // 02:59:59 UTC = 23:59:59 -03
    EXPECT_EQ(c.format_local(1541300400), "2018-11-04 01:00:00");
    EXPECT_EQ(c.hour_start(1541302200), 1541300400);  // 03:30:00 UTC = 01:30 -02
}

// ---- zones with other offsets ---------------------------------------------------------

TEST(CalendarZones, ShanghaiDateFlipsAt1600Utc) {
    const Calendar c = make_calendar("Asia/Shanghai");
    EXPECT_EQ(c.local_date(1772294399), (LocalDate{2026, 2, 28}));  // 2026-02-28 15:59:59 UTC
    EXPECT_EQ(c.local_date(1772294400), (LocalDate{2026, 3, 1}));   // 2026-02-28 16:00:00 UTC
    EXPECT_EQ(c.format_local(1772294399), "2026-02-28 23:59:59");
    EXPECT_EQ(c.format_local(1772294400), "2026-03-01 00:00:00");
    EXPECT_EQ(c.day_start(LocalDate{2026, 3, 1}), 1772294400);
    EXPECT_EQ(c.day_end(LocalDate{2026, 2, 28}), 1772294400);
    EXPECT_EQ(c.utc_offset_seconds(1772294400), 8 * 3600);
    EXPECT_EQ(c.hour_start(1772296199), 1772294400);  // 2026-02-28 16:29:59 UTC
}

TEST(CalendarZones, KolkataHoursStartAtHalfPastUtc) {
    const Calendar c = make_calendar("Asia/Kolkata");  // UTC+5:30
    EXPECT_EQ(c.utc_offset_seconds(1767227400), 19800);
    EXPECT_EQ(c.hour_start(1767227400), 1767227400);            // 2026-01-01 00:30:00 UTC = 06:00 IST
    EXPECT_EQ(c.hour_start(1767230999), 1767227400);            // 2026-01-01 01:29:59 UTC = 06:59:59 IST
    EXPECT_EQ(c.hour_start(1767231000), 1767231000);            // 2026-01-01 01:30:00 UTC = 07:00 IST
    EXPECT_EQ(c.hour_start(1767227399), 1767223800);            // 00:29:59 UTC -> 2025-12-31 23:30:00 UTC
    EXPECT_EQ(c.day_start(LocalDate{2026, 1, 1}), 1767205800);  // 2025-12-31 18:30:00 UTC
}

TEST(CalendarZones, KathmanduHoursStartAtQuarterPastUtc) {
    const Calendar c = make_calendar("Asia/Kathmandu");  // UTC+5:45
    EXPECT_EQ(c.utc_offset_seconds(1767226500), 20700);
    EXPECT_EQ(c.hour_start(1767226500), 1767226500);  // 2026-01-01 00:15:00 UTC = 06:00 NPT
    EXPECT_EQ(c.hour_start(1767230099), 1767226500);  // 2026-01-01 01:14:59 UTC = 06:59:59 NPT
}

// ---- billing months -------------------------------------------------------------------

// Asia/Shanghai is UTC+8 all year: local midnight is 16:00 UTC the day before.
TEST(CalendarBilling, MonthStartsOnTheBillingDay) {
    const Calendar c = make_calendar("Asia/Shanghai", {PeakWindow{}}, 15);
    // 1794585600 = 2026-11-13 16:00:00 UTC = 2026-11-14 00:00:00 local
    EXPECT_EQ(c.billing_month(1794585600), (BillingMonth{2026, 10}));
    // 1794671999 = 2026-11-14 15:59:59 UTC = 2026-11-14 23:59:59 local
    EXPECT_EQ(c.billing_month(1794671999), (BillingMonth{2026, 10}));
    // 1794672000 = 2026-11-14 16:00:00 UTC = 2026-11-15 00:00:00 local
    EXPECT_EQ(c.billing_month(1794672000), (BillingMonth{2026, 11}));
    EXPECT_EQ(c.month_start(BillingMonth{2026, 10}), 1791993600);  // 2026-10-14 16:00:00 UTC
    EXPECT_EQ(c.month_end(BillingMonth{2026, 10}), 1794672000);    // 2026-11-14 16:00:00 UTC
    EXPECT_EQ(c.month_start(BillingMonth{2026, 11}), 1794672000);
}

TEST(CalendarBilling, DecemberRollsOverIntoJanuary) {
    const Calendar c = make_calendar("Asia/Shanghai", {PeakWindow{}}, 15);
    EXPECT_EQ(Calendar::next_month(BillingMonth{2026, 12}), (BillingMonth{2027, 1}));
    EXPECT_EQ(Calendar::next_month(BillingMonth{2026, 11}), (BillingMonth{2026, 12}));
    EXPECT_EQ(c.month_start(BillingMonth{2026, 12}), 1797264000);  // 2026-12-14 16:00:00 UTC
    EXPECT_EQ(c.month_end(BillingMonth{2026, 12}), 1799942400);    // 2027-01-14 16:00:00 UTC
    // Before the billing day in January: the period began in December of the year before.
    // 1798646400 = 2026-12-30 16:00:00 UTC = 2026-12-31 00:00:00 local
    EXPECT_EQ(c.billing_month(1798646400), (BillingMonth{2026, 12}));
    // 1798732800 = 2026-12-31 16:00:00 UTC = 2027-01-01 00:00:00 local
    EXPECT_EQ(c.billing_month(1798732800), (BillingMonth{2026, 12}));
    // 1799856000 = 2027-01-13 16:00:00 UTC = 2027-01-14 00:00:00 local
    EXPECT_EQ(c.billing_month(1799856000), (BillingMonth{2026, 12}));
    // 1799942400 = 2027-01-14 16:00:00 UTC = 2027-01-15 00:00:00 local
    EXPECT_EQ(c.billing_month(1799942400), (BillingMonth{2027, 1}));
}

TEST(CalendarBilling, FirstOfTheMonth) {
    const Calendar c = make_calendar("Asia/Shanghai");
    // 1798732799 = 2026-12-31 15:59:59 UTC = 2026-12-31 23:59:59 local
    EXPECT_EQ(c.billing_month(1798732799), (BillingMonth{2026, 12}));
    // 1798732800 = 2026-12-31 16:00:00 UTC = 2027-01-01 00:00:00 local
    EXPECT_EQ(c.billing_month(1798732800), (BillingMonth{2027, 1}));
    EXPECT_EQ(c.month_start(BillingMonth{2027, 1}), 1798732800);
}

TEST(CalendarBilling, MonthContainingAFallBackIsOneHourLonger) {
    // Europe/Berlin leaves CEST (+2) for CET (+1) on 2026-10-25.
    const Calendar c = make_calendar("Europe/Berlin", {PeakWindow{}}, 15);
    EXPECT_EQ(c.month_start(BillingMonth{2026, 10}), 1792015200);  // 2026-10-14 22:00:00 UTC = 00:00 CEST
    EXPECT_EQ(c.month_end(BillingMonth{2026, 10}), 1794697200);    // 2026-11-14 23:00:00 UTC = 00:00 CET
    EXPECT_EQ(c.month_end(BillingMonth{2026, 10}) - c.month_start(BillingMonth{2026, 10}), 31 * 86400 + 3600);
    // 1792015199 = 2026-10-14 21:59:59 UTC = 2026-10-14 23:59:59 CEST
    EXPECT_EQ(c.billing_month(1792015199), (BillingMonth{2026, 9}));
    // 1792015200 = 2026-10-14 22:00:00 UTC = 2026-10-15 00:00:00 CEST
    EXPECT_EQ(c.billing_month(1792015200), (BillingMonth{2026, 10}));
}

// ---- creating a calendar --------------------------------------------------------------

TEST(CalendarCreate, KeepsItsSettings) {
    const Calendar c = make_calendar("Europe/Berlin", {window("08:00-18:00 mon-fri")}, 28);
    EXPECT_EQ(c.tz_name(), "Europe/Berlin");
    EXPECT_EQ(c.billing_day(), 28);
    ASSERT_EQ(c.windows().size(), 1u);
    EXPECT_EQ(c.windows()[0], (PeakWindow{8 * 60, 18 * 60, 0x1f}));
}

TEST(CalendarCreate, UnknownZoneIsNamed) {
    auto r = Calendar::create("Mars/Base", {PeakWindow{}}, 1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(),
              "unknown time zone 'Mars/Base' (use an IANA name such as Europe/Berlin, see /usr/share/zoneinfo)");
}

TEST(CalendarCreate, BillingDayMustBeInEveryMonth) {
    for (int day : {0, 29, -1, 31}) {
        auto r = Calendar::create("UTC", {PeakWindow{}}, day);
        ASSERT_FALSE(r.ok()) << day;
        EXPECT_EQ(r.error().message(),
                  "invalid billing day " + std::to_string(day) + " (use 1-28, so every month has the day)");
    }
    EXPECT_TRUE(Calendar::create("UTC", {PeakWindow{}}, 1).ok());
    EXPECT_TRUE(Calendar::create("UTC", {PeakWindow{}}, 28).ok());
}

TEST(CalendarCreate, RejectsWindowsParseWouldReject) {
    auto equal = Calendar::create("UTC", {PeakWindow{18 * 60, 18 * 60, 0x7f}}, 1);
    ASSERT_FALSE(equal.ok());
    EXPECT_EQ(equal.error().message(), "invalid peak window '18:00-18:00': start and end are equal");
    auto odd = Calendar::create("UTC", {PeakWindow{18 * 60 + 1, 24 * 60, 0x7f}}, 1);
    ASSERT_FALSE(odd.ok());
    EXPECT_EQ(odd.error().message(),
              "invalid peak window '18:01-24:00': minutes must be a multiple of 5, so a 5-minute bucket is wholly "
              "peak or off-peak");
    auto no_days = Calendar::create("UTC", {PeakWindow{18 * 60, 24 * 60, 0}}, 1);
    ASSERT_FALSE(no_days.ok());
    EXPECT_EQ(no_days.error().message(), "invalid peak window '18:00-24:00 none': no weekdays selected");
    auto high_bit = Calendar::create("UTC", {PeakWindow{18 * 60, 24 * 60, 0x81}}, 1);
    ASSERT_FALSE(high_bit.ok());
    EXPECT_EQ(high_bit.error().message(),
              "invalid peak window '18:00-24:00 mon': weekdays has bits set beyond Sunday (bit 6)");
}

TEST(CalendarCreate, EmptyNameUsesTzWhenItNamesAZone) {
    {
        ScopedTz tz("Asia/Shanghai");
        EXPECT_EQ(make_calendar("").tz_name(), "Asia/Shanghai");
    }
    {
        ScopedTz tz(":Asia/Kolkata");
        EXPECT_EQ(make_calendar("").tz_name(), "Asia/Kolkata");
    }
    {
        ScopedTz tz(":/usr/share/zoneinfo/Europe/Berlin");
        EXPECT_EQ(make_calendar("").tz_name(), "Europe/Berlin");
    }
}

TEST(CalendarCreate, EmptyNameFallsBackToLocaltime) {
    ScopedTz tz("CST-8");  // a POSIX rule, not a zone name
    const std::string system_zone(date::current_zone()->name());
    EXPECT_EQ(make_calendar("").tz_name(), system_zone);
}

// ---- dates and months as text ---------------------------------------------------------

TEST(CalendarDates, ParsesRealDatesOnly) {
    EXPECT_EQ(parse_local_date("2026-03-05").take(), (LocalDate{2026, 3, 5}));
    EXPECT_EQ(parse_local_date("2024-02-29").take(), (LocalDate{2024, 2, 29}));
    auto feb30 = parse_local_date("2026-02-30");
    ASSERT_FALSE(feb30.ok());
    EXPECT_EQ(feb30.error().message(), "invalid date '2026-02-30': no such day");
    EXPECT_FALSE(parse_local_date("2026-02-29").ok());
    EXPECT_FALSE(parse_local_date("2026-13-01").ok());
    EXPECT_FALSE(parse_local_date("2026-00-10").ok());
    auto loose = parse_local_date("2026-3-5");
    ASSERT_FALSE(loose.ok());
    EXPECT_EQ(loose.error().message(), "invalid date '2026-3-5': expected YYYY-MM-DD");
    EXPECT_FALSE(parse_local_date("2026-03-05 ").ok());
}

TEST(CalendarDates, ParsesBillingMonths) {
    EXPECT_EQ(parse_billing_month("2026-12").take(), (BillingMonth{2026, 12}));
    EXPECT_EQ(parse_billing_month("2027-01").take(), (BillingMonth{2027, 1}));
    auto m13 = parse_billing_month("2026-13");
    ASSERT_FALSE(m13.ok());
    EXPECT_EQ(m13.error().message(), "invalid billing month '2026-13': month must be 01-12");
    EXPECT_FALSE(parse_billing_month("2026-00").ok());
    auto loose = parse_billing_month("2026-1");
    ASSERT_FALSE(loose.ok());
    EXPECT_EQ(loose.error().message(), "invalid billing month '2026-1': expected YYYY-MM");
}

TEST(CalendarDates, FormatsWithZeroPadding) {
    EXPECT_EQ((LocalDate{2026, 3, 5}).str(), "2026-03-05");
    EXPECT_EQ((BillingMonth{2027, 1}).str(), "2027-01");
    EXPECT_EQ(parse_local_date((LocalDate{2024, 12, 31}).str()).take(), (LocalDate{2024, 12, 31}));
}

TEST(CalendarDates, NextDayCrossesMonthsAndYears) {
    EXPECT_EQ(Calendar::next_day(LocalDate{2024, 2, 28}), (LocalDate{2024, 2, 29}));
    EXPECT_EQ(Calendar::next_day(LocalDate{2026, 2, 28}), (LocalDate{2026, 3, 1}));
    EXPECT_EQ(Calendar::next_day(LocalDate{2026, 12, 31}), (LocalDate{2027, 1, 1}));
}

// ---- 95th percentile ------------------------------------------------------------------

TEST(CalendarPercentile, TwentyValuesTakeTheNineteenthSmallest) {
    // 375 bytes in 300 s = 10 bit/s, so value k is k*10 bit/s; ceil(0.95 * 20) = 19.
    std::vector<uint64_t> v;
    for (uint64_t k : {7, 20, 1, 19, 3, 18, 2, 17, 4, 16, 5, 15, 6, 14, 8, 13, 9, 12, 10, 11}) v.push_back(k * 375);
    EXPECT_NEAR(percentile95_bps(v), 190.0, 1e-9);
}

TEST(CalendarPercentile, HundredValuesTakeTheNinetyFifth) {
    // Values 3, 6, ..., 300 bytes, largest first; ceil(0.95 * 100) = 95 -> 285 bytes = 7.6 bit/s.
    std::vector<uint64_t> v;
    for (uint64_t k = 100; k >= 1; --k) v.push_back(k * 3);
    EXPECT_NEAR(percentile95_bps(v), 7.6, 1e-9);
}

TEST(CalendarPercentile, SmallSets) {
    EXPECT_NEAR(percentile95_bps({1}), 0.0266666666667, 1e-9);  // 8 / 300
    EXPECT_NEAR(percentile95_bps({0}), 0.0, 1e-9);
    EXPECT_NEAR(percentile95_bps({3000, 750}), 80.0, 1e-9);  // ceil(1.9) = 2: the larger
    EXPECT_EQ(percentile95_bps({}), 0.0);
}

TEST(CalendarPercentile, TwentyOneValuesTakeTheTwentieth) {
    // ceil(0.95 * 21) = ceil(19.95) = 20; a single 1 TB burst is the 21st and is ignored.
    std::vector<uint64_t> v(19, 375);
    v.push_back(37500);          // 1000 bit/s
    v.push_back(1000000000000);  // 26666666666.67 bit/s
    EXPECT_NEAR(percentile95_bps(v), 1000.0, 1e-9);
}

}  // namespace
}  // namespace pf
