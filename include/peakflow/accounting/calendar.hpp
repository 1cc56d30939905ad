#pragma once
// Billing time: 5-minute UTC buckets, local days and hours in the configured time zone
// (23- and 25-hour days included), peak windows by local time, billing months that start
// on a configurable day. Times are UTC epoch seconds; the zone comes from the IANA
// database (/usr/share/zoneinfo), so any zone can be tested on any machine.

#include <cstdint>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"

namespace date {
class time_zone;
}

namespace pf {

inline constexpr int64_t kBucketSeconds = 300;

// [start_min, end_min) minutes after local midnight. end_min <= start_min means the window
// crosses midnight: [start, 24:00) on its day and [00:00, end) on the next. weekdays is a
// mask of the days a window starts on: bit 0 Monday ... bit 6 Sunday.
struct PeakWindow {
    int start_min = 18 * 60;
    int end_min = 24 * 60;
    uint8_t weekdays = 0x7f;
    bool operator==(const PeakWindow&) const = default;
};

// "18:00-24:00", "22:00-02:00", optionally followed by weekdays: "08:00-18:00 mon-fri",
// "10:00-12:00 sat,sun". Minutes must be multiples of 5 so a 5-minute bucket is wholly
// peak or off-peak; 24:00 is allowed as an end; start == end is an error.
Result<PeakWindow> parse_peak_window(const std::string& text);
std::string format_peak_window(const PeakWindow& w);  // round-trips through parse

struct LocalDate {
    int year = 1970, month = 1, day = 1;
    auto operator<=>(const LocalDate&) const = default;
    std::string str() const;  // "YYYY-MM-DD"
};
Result<LocalDate> parse_local_date(const std::string& s);  // "YYYY-MM-DD", a real date

struct BillingMonth {
    int year = 1970, month = 1;  // the month in which the billing period starts
    auto operator<=>(const BillingMonth&) const = default;
    std::string str() const;  // "YYYY-MM"
};
Result<BillingMonth> parse_billing_month(const std::string& s);  // "YYYY-MM"

class Calendar {
  public:
    // tz_name empty: the system zone ($TZ if it names a zone, else /etc/localtime).
    // billing_day 1..28.
    static Result<Calendar> create(const std::string& tz_name, std::vector<PeakWindow> windows, int billing_day);

    const std::string& tz_name() const { return tz_name_; }
    const std::vector<PeakWindow>& windows() const { return windows_; }
    int billing_day() const { return billing_day_; }

    static int64_t bucket_start(int64_t utc) {
        int64_t r = utc % kBucketSeconds;
        return utc - (r < 0 ? r + kBucketSeconds : r);
    }
    bool is_peak(int64_t utc) const;  // by the local wall time of utc

    LocalDate local_date(int64_t utc) const;
    int64_t day_start(const LocalDate& d) const;  // first instant of the local day, UTC
    int64_t day_end(const LocalDate& d) const;    // day_start of the next day
    static LocalDate next_day(const LocalDate& d);
    int64_t hour_start(int64_t utc) const;  // start of the local hour containing utc

    BillingMonth billing_month(int64_t utc) const;
    int64_t month_start(const BillingMonth& m) const;  // local 00:00 of billing_day, UTC
    int64_t month_end(const BillingMonth& m) const;    // month_start of the next month
    static BillingMonth next_month(const BillingMonth& m);

    std::string format_local(int64_t utc) const;  // "YYYY-MM-DD HH:MM:SS" local time
    int utc_offset_seconds(int64_t utc) const;

  private:
    Calendar() = default;  // only create() makes one: a Calendar always has a zone

    const date::time_zone* tz_ = nullptr;
    std::string tz_name_;
    std::vector<PeakWindow> windows_;
    int billing_day_ = 1;
};

// 95th percentile by nearest rank of per-bucket byte counts, as bit/s over 5 minutes:
// sort ascending, take element ceil(0.95 * n) - 1. Empty input: 0.
double percentile95_bps(std::vector<uint64_t> bucket_bytes);

}  // namespace pf
