#include "peakflow/accounting/calendar.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string_view>

namespace pf {

namespace {

// std::chrono (C++20) and date both define days, local_days, year_month_day, ...: every
// date name is written date:: and only these std::chrono durations get aliases, so no name
// is ever ambiguous.
using Seconds = std::chrono::seconds;
using Hours = std::chrono::hours;

constexpr int kMinutesPerDay = 24 * 60;
constexpr uint8_t kAllDays = 0x7f;
constexpr std::array<std::string_view, 7> kDayNames{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

date::sys_seconds to_sys(int64_t utc) {
    return date::sys_seconds{Seconds{utc}};
}
int64_t to_epoch(date::sys_seconds t) {
    return t.time_since_epoch().count();
}

date::year_month_day to_ymd(const LocalDate& d) {
    return date::year{d.year} / date::month{static_cast<unsigned>(d.month)} / date::day{static_cast<unsigned>(d.day)};
}

LocalDate from_ymd(const date::year_month_day& ymd) {
    return LocalDate{static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
                     static_cast<int>(static_cast<unsigned>(ymd.day()))};
}

// Monday 0 ... Sunday 6, the bit numbering of PeakWindow::weekdays.
int weekday_index(date::local_days d) {
    return static_cast<int>(date::weekday{d}.iso_encoding()) - 1;
}

std::string_view trim(std::string_view s) {
    const auto not_space = [](char c) { return !std::isspace(static_cast<unsigned char>(c)); };
    while (!s.empty() && !not_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && !not_space(s.back())) s.remove_suffix(1);
    return s;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int to_int(std::string_view digits) {
    int v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    return v;
}

std::string hhmm(int minutes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60, minutes % 60);
    return buf;
}

// The rules parse_peak_window enforces, also applied to windows built in code, so is_peak
// never sees a window it cannot interpret. Returns what is wrong, or nothing.
std::optional<std::string> window_problem(const PeakWindow& w) {
    if (w.start_min < 0 || w.start_min >= kMinutesPerDay) return "start must be 00:00-23:55";
    if (w.end_min < 0 || w.end_min > kMinutesPerDay) return "end must be 00:00-24:00";
    if (w.start_min % 5 != 0 || w.end_min % 5 != 0)
        return "minutes must be a multiple of 5, so a 5-minute bucket is wholly peak or off-peak";
    if (w.start_min == w.end_min) return "start and end are equal";
    if ((w.weekdays & kAllDays) == 0) return "no weekdays selected";
    if ((w.weekdays & ~kAllDays) != 0) return "weekdays has bits set beyond Sunday (bit 6)";
    return std::nullopt;
}

// "HH:MM" with an hour limit; 24:00 only when allow_24 (an end).
std::optional<std::string> parse_hhmm(std::string_view s, bool allow_24, int& minutes) {
    const std::string what = allow_24 ? "end" : "start";
    if (s.size() != 5 || s[2] != ':' || !all_digits(s.substr(0, 2)) || !all_digits(s.substr(3, 2)))
        return what + " '" + std::string(s) + "' is not HH:MM";
    const int h = to_int(s.substr(0, 2));
    const int m = to_int(s.substr(3, 2));
    if (m > 59) return what + " '" + std::string(s) + "' has minutes past 59";
    if (m % 5 != 0)
        return what + " '" + std::string(s) +
               "': minutes must be a multiple of 5, so a 5-minute bucket is wholly peak or off-peak";
    if (allow_24) {
        if (h > 24 || (h == 24 && m != 0)) return what + " '" + std::string(s) + "' is past 24:00";
    } else if (h > 23) {
        return what + " '" + std::string(s) + "' is past 23:55 (24:00 may only end a window)";
    }
    minutes = h * 60 + m;
    return std::nullopt;
}

std::optional<int> day_index(std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (size_t i = 0; i < kDayNames.size(); ++i)
        if (lower == kDayNames[i]) return static_cast<int>(i);
    return std::nullopt;
}

// "mon-fri", "sat,sun", "fri-mon" (wraps past Sunday), "mon,wed-fri".
std::optional<std::string> parse_weekdays(std::string_view spec, uint8_t& mask) {
    mask = 0;
    size_t pos = 0;
    while (true) {
        const size_t comma = spec.find(',', pos);
        const std::string_view item =
            trim(spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        if (item.empty()) return "empty weekday in '" + std::string(spec) + "'";
        const size_t dash = item.find('-');
        const std::string_view first = trim(item.substr(0, dash));
        const std::string_view last = dash == std::string_view::npos ? first : trim(item.substr(dash + 1));
        if (dash != std::string_view::npos && last.find('-') != std::string_view::npos)
            return "weekday range '" + std::string(item) + "' has more than one '-'";
        const auto a = day_index(first);
        if (!a) return "unknown weekday '" + std::string(first) + "' (use mon, tue, wed, thu, fri, sat, sun)";
        const auto b = day_index(last);
        if (!b) return "unknown weekday '" + std::string(last) + "' (use mon, tue, wed, thu, fri, sat, sun)";
        for (int d = *a;; d = (d + 1) % 7) {
            mask = static_cast<uint8_t>(mask | (1u << d));
            if (d == *b) break;
        }
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
    }
    return std::nullopt;
}

const date::time_zone* find_zone(const std::string& name) {
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        return nullptr;
    }
}

// $TZ as glibc reads it: an optional ':' then a zone name or a path into the zoneinfo
// directory. A POSIX rule string ("CST-8") names no zone and is ignored.
const date::time_zone* zone_from_env() {
    const char* env = std::getenv("TZ");
    if (env == nullptr) return nullptr;
    std::string name = env;
    if (!name.empty() && name.front() == ':') name.erase(0, 1);
    if (const auto p = name.find("zoneinfo/"); !name.empty() && name.front() == '/' && p != std::string::npos)
        name.erase(0, p + std::string_view("zoneinfo/").size());
    if (name.empty()) return nullptr;
    return find_zone(name);
}

Error peak_window_error(const std::string& text, const std::string& why) {
    return Error("invalid peak window '" + text + "': " + why);
}

}  // namespace

Result<PeakWindow> parse_peak_window(const std::string& text) {
    const std::string_view s = trim(text);
    const auto ws =
        std::find_if(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
    const std::string_view range = s.substr(0, static_cast<size_t>(ws - s.begin()));
    const std::string_view days = trim(s.substr(range.size()));

    const size_t dash = range.find('-');
    if (dash == std::string_view::npos)
        return peak_window_error(text, "expected HH:MM-HH:MM, optionally followed by weekdays such as mon-fri");
    PeakWindow w;
    if (auto why = parse_hhmm(range.substr(0, dash), false, w.start_min)) return peak_window_error(text, *why);
    if (auto why = parse_hhmm(range.substr(dash + 1), true, w.end_min)) return peak_window_error(text, *why);
    if (w.start_min == w.end_min) return peak_window_error(text, "start and end are equal");
    if (!days.empty()) {
        if (auto why = parse_weekdays(days, w.weekdays)) return peak_window_error(text, *why);
    }
    return w;
}

std::string format_peak_window(const PeakWindow& w) {
    std::string out = hhmm(w.start_min) + "-" + hhmm(w.end_min);
    const unsigned mask = w.weekdays & kAllDays;
    if (mask == kAllDays) return out;
    if (mask == 0) return out + " none";  // never peak; deliberately not parseable
    // Days are listed from Monday, except that a run wrapping past Sunday ("fri-mon") must
    // come out as one range: then scanning starts just after a day that is off.
    int from = 0;
    if ((mask & 0x01) && (mask & 0x40)) {
        while (mask & (1u << from)) ++from;
        ++from;
    }
    std::string spec;
    for (int i = 0; i < 7;) {
        const int d = (from + i) % 7;
        if (!(mask & (1u << d))) {
            ++i;
            continue;
        }
        int len = 1;
        while (i + len < 7 && (mask & (1u << ((from + i + len) % 7)))) ++len;
        const int last = (d + len - 1) % 7;
        if (!spec.empty()) spec += ",";
        spec += kDayNames[static_cast<size_t>(d)];
        // Two adjacent days read better as a list ("sat,sun") than as a range.
        if (len == 2) spec += "," + std::string(kDayNames[static_cast<size_t>(last)]);
        if (len > 2) spec += "-" + std::string(kDayNames[static_cast<size_t>(last)]);
        i += len;
    }
    return out + " " + spec;
}

std::string LocalDate::str() const {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
    return buf;
}

Result<LocalDate> parse_local_date(const std::string& s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !all_digits(std::string_view(s).substr(0, 4)) ||
        !all_digits(std::string_view(s).substr(5, 2)) || !all_digits(std::string_view(s).substr(8, 2)))
        return Error("invalid date '" + s + "': expected YYYY-MM-DD");
    const LocalDate d{to_int(std::string_view(s).substr(0, 4)), to_int(std::string_view(s).substr(5, 2)),
                      to_int(std::string_view(s).substr(8, 2))};
    if (!to_ymd(d).ok()) return Error("invalid date '" + s + "': no such day");
    return d;
}

std::string BillingMonth::str() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
    return buf;
}

Result<BillingMonth> parse_billing_month(const std::string& s) {
    if (s.size() != 7 || s[4] != '-' || !all_digits(std::string_view(s).substr(0, 4)) ||
        !all_digits(std::string_view(s).substr(5, 2)))
        return Error("invalid billing month '" + s + "': expected YYYY-MM");
    const BillingMonth m{to_int(std::string_view(s).substr(0, 4)), to_int(std::string_view(s).substr(5, 2))};
    if (m.month < 1 || m.month > 12) return Error("invalid billing month '" + s + "': month must be 01-12");
    return m;
}

Result<Calendar> Calendar::create(const std::string& tz_name, std::vector<PeakWindow> windows, int billing_day) {
    if (billing_day < 1 || billing_day > 28)
        return Error("invalid billing day " + std::to_string(billing_day), "", 0,
                     "use 1-28, so every month has the day");
    for (const auto& w : windows) {
        if (auto why = window_problem(w)) return peak_window_error(format_peak_window(w), *why);
    }
    Calendar c;
    if (!tz_name.empty()) {
        c.tz_ = find_zone(tz_name);
        if (c.tz_ == nullptr)
            return Error("unknown time zone '" + tz_name + "'", "", 0,
                         "use an IANA name such as Europe/Berlin, see /usr/share/zoneinfo");
    } else if ((c.tz_ = zone_from_env()) == nullptr) {
        try {
            c.tz_ = date::current_zone();
        } catch (const std::exception& e) {
            return Error("cannot determine the system time zone: " + std::string(e.what()), "", 0,
                         "set timezone in the config");
        }
    }
    c.tz_name_ = std::string(c.tz_->name());
    c.windows_ = std::move(windows);
    c.billing_day_ = billing_day;
    return c;
}

bool Calendar::is_peak(int64_t utc) const {
    const date::local_seconds lt = tz_->to_local(to_sys(utc));
    const date::local_days today = date::floor<date::days>(lt);
    const int minute = static_cast<int>(std::chrono::duration_cast<std::chrono::minutes>(lt - today).count());
    const int wd = weekday_index(today);
    const int yesterday = (wd + 6) % 7;
    for (const auto& w : windows_) {
        const bool starts_today = w.weekdays & (1u << wd);
        if (w.start_min < w.end_min) {
            if (starts_today && minute >= w.start_min && minute < w.end_min) return true;
        } else {
            // Crosses midnight: the part after 00:00 belongs to the window that started the
            // day before, so yesterday's weekday decides it.
            if (starts_today && minute >= w.start_min) return true;
            if ((w.weekdays & (1u << yesterday)) && minute < w.end_min) return true;
        }
    }
    return false;
}

LocalDate Calendar::local_date(int64_t utc) const {
    const date::local_seconds lt = tz_->to_local(to_sys(utc));
    return from_ymd(date::year_month_day{date::floor<date::days>(lt)});
}

int64_t Calendar::day_start(const LocalDate& d) const {
    // earliest: an ambiguous midnight (a fall-back at 01:00) starts at its first occurrence;
    // a nonexistent one (a spring-forward at 00:00) maps to the transition, the first
    // instant of the day that exists.
    return to_epoch(tz_->to_sys(date::local_days{to_ymd(d)}, date::choose::earliest));
}

int64_t Calendar::day_end(const LocalDate& d) const {
    return day_start(next_day(d));
}

LocalDate Calendar::next_day(const LocalDate& d) {
    return from_ymd(date::year_month_day{date::sys_days{to_ymd(d)} + date::days{1}});
}

int64_t Calendar::hour_start(int64_t utc) const {
    const date::sys_seconds t = to_sys(utc);
    const date::sys_info info = tz_->get_info(t);
    // The local hour under the offset in force now; if the offset changed within that hour
    // (DST, or a :30 shift) the hour only starts at the change, which is what makes the
    // repeated hour of a fall-back two distinct hours.
    const date::sys_seconds candidate = date::sys_seconds{date::floor<Hours>(t + info.offset)} - info.offset;
    date::sys_seconds begin = info.begin;
    // Transitions that change only the abbreviation or the DST flag keep the wall clock
    // continuous, so they do not split the hour.
    while (candidate < begin) {
        const date::sys_info prev = tz_->get_info(begin - Seconds{1});
        if (prev.offset != info.offset) break;
        begin = prev.begin;
    }
    return to_epoch(std::max(candidate, begin));
}

BillingMonth Calendar::billing_month(int64_t utc) const {
    const LocalDate d = local_date(utc);
    if (d.day >= billing_day_) return BillingMonth{d.year, d.month};
    return d.month == 1 ? BillingMonth{d.year - 1, 12} : BillingMonth{d.year, d.month - 1};
}

int64_t Calendar::month_start(const BillingMonth& m) const {
    return day_start(LocalDate{m.year, m.month, billing_day_});
}

int64_t Calendar::month_end(const BillingMonth& m) const {
    return month_start(next_month(m));
}

BillingMonth Calendar::next_month(const BillingMonth& m) {
    return m.month >= 12 ? BillingMonth{m.year + 1, 1} : BillingMonth{m.year, m.month + 1};
}

std::string Calendar::format_local(int64_t utc) const {
    const date::local_seconds lt = tz_->to_local(to_sys(utc));
    const date::local_days ld = date::floor<date::days>(lt);
    const date::year_month_day ymd{ld};
    const auto hms = date::hh_mm_ss<Seconds>{lt - ld};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

int Calendar::utc_offset_seconds(int64_t utc) const {
    return static_cast<int>(tz_->get_info(to_sys(utc)).offset.count());
}

double percentile95_bps(std::vector<uint64_t> bucket_bytes) {
    if (bucket_bytes.empty()) return 0.0;
    // Nearest rank ceil(0.95 * n) in integers: 0.95 is not exact in binary and 0.95 * 20
    // must be exactly 19.
    const size_t rank = (95 * bucket_bytes.size() + 99) / 100;
    const auto nth = bucket_bytes.begin() + static_cast<std::ptrdiff_t>(rank - 1);
    std::nth_element(bucket_bytes.begin(), nth, bucket_bytes.end());
    return static_cast<double>(*nth) * 8.0 / static_cast<double>(kBucketSeconds);
}

}  // namespace pf
