// nfacctd's CSV on stdin (nfacctd_csv.hpp): lines split with a cap, the header, typed checks.

#include "peakflow/export/nfacctd_csv.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace pf {

namespace {

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A decimal number no larger than max (no sign, no spaces, at most 20 digits).
bool decimal_at_most(std::string_view s, uint64_t max) {
    if (!all_digits(s) || s.size() > 20) return false;
    uint64_t v = 0;
    for (char c : s) {
        const uint64_t d = uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    return v <= max;
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_mac(std::string_view s) {
    if (s.size() != 17) return false;
    for (size_t i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !is_hex(s[i])) return false;
    return true;
}

bool is_ip(std::string_view s) {
    char buf[64];
    if (s.empty() || s.size() >= sizeof buf) return false;
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = 0;
    unsigned char out[16];
    return inet_pton(AF_INET, buf, out) == 1 || inet_pton(AF_INET6, buf, out) == 1;
}

// A number (0-255) or a name from nfacctd's protocol table ("udp", "ipv6-icmp").
bool is_protocol(std::string_view s) {
    if (all_digits(s)) return decimal_at_most(s, 255);
    if (s.empty() || s.size() > 32 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '+';
    });
}

// Two digits in [lo, hi] at s[i].
bool two_digits(std::string_view s, size_t i, int lo, int hi) {
    if (i + 2 > s.size() || !all_digits(s.substr(i, 2))) return false;
    const int v = (s[i] - '0') * 10 + (s[i + 1] - '0');
    return v >= lo && v <= hi;
}

// As nfacctd prints times: "YYYY-MM-DD HH:MM:SS[.ffffff]" (timestamps_rfc3339: 'T' and a
// zone "Z" or "+08:00"), or seconds since the epoch "1700000000[.123456]"
// (timestamps_since_epoch). Zero dates (month and day 00) are what it prints for no time.
bool is_timestamp(std::string_view s) {
    if (s.size() > 40) return false;
    const size_t dot = s.find('.');
    if (all_digits(s.substr(0, dot)) && s.find('-') == std::string_view::npos) {
        return dot == std::string_view::npos ? s.size() <= 20
                                             : dot <= 20 && all_digits(s.substr(dot + 1)) && s.size() - dot - 1 <= 9;
    }
    if (s.size() < 19 || !all_digits(s.substr(0, 4)) || s[4] != '-' || !two_digits(s, 5, 0, 12) || s[7] != '-' ||
        !two_digits(s, 8, 0, 31) || (s[10] != ' ' && s[10] != 'T') || !two_digits(s, 11, 0, 23) || s[13] != ':' ||
        !two_digits(s, 14, 0, 59) || s[16] != ':' || !two_digits(s, 17, 0, 60))
        return false;
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        size_t j = i + 1;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') j++;
        if (j == i + 1 || j - i - 1 > 9) return false;
        i = j;
    }
    const std::string_view zone = s.substr(i);
    if (zone.empty() || zone == "Z") return true;
    if (zone[0] != '+' && zone[0] != '-') return false;
    if (zone.size() == 6) return two_digits(zone, 1, 0, 23) && zone[3] == ':' && two_digits(zone, 4, 0, 59);
    if (zone.size() == 5) return two_digits(zone, 1, 0, 23) && two_digits(zone, 3, 0, 59);
    return false;
}

const char* type_name(NfacctdCsvReader::Type t) {
    using T = NfacctdCsvReader::Type;
    switch (t) {
        case T::Mac: return "a MAC address (aa:bb:cc:dd:ee:ff)";
        case T::Ip: return "an IPv4 or IPv6 address";
        case T::Port: return "a port (0-65535)";
        case T::U8: return "a number 0-255";
        case T::Vlan: return "a VLAN id (0-4095)";
        case T::U16: return "a number 0-65535";
        case T::U32: return "a number 0-4294967295";
        case T::U64: return "a count (0-18446744073709551615)";
        case T::Protocol: return "a protocol (0-255 or a name such as udp)";
        case T::Timestamp: return "a time (YYYY-MM-DD HH:MM:SS[.ffffff] or seconds since the epoch)";
        case T::Text: break;
    }
    return "text";
}

bool valid(NfacctdCsvReader::Type t, std::string_view v) {
    using T = NfacctdCsvReader::Type;
    switch (t) {
        case T::Mac: return is_mac(v);
        case T::Ip: return is_ip(v);
        case T::Port: return decimal_at_most(v, 65535);
        case T::U8: return decimal_at_most(v, 255);
        case T::Vlan: return decimal_at_most(v, 4095);
        case T::U16: return decimal_at_most(v, 65535);
        case T::U32: return decimal_at_most(v, 0xffffffffull);
        case T::U64: return decimal_at_most(v, UINT64_MAX);
        case T::Protocol: return is_protocol(v);
        case T::Timestamp: return is_timestamp(v);
        case T::Text: break;
    }
    return true;
}

// A column name as nfacctd writes them (SRC_IP, PACKETS; custom primitives as named):
// a letter or '_' first, then letters, digits, '_', '-' or '.'.
bool is_column_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '_') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
}

// print_markers: "--START (PID)--", "--END (PID)--" (older: "--END--").
bool is_marker(std::string_view l) {
    return l.size() >= 7 && l.ends_with("--") && (l.starts_with("--START") || l.starts_with("--END"));
}

std::string shown(std::string_view v) {
    std::string s(v.substr(0, 40));
    if (v.size() > 40) s += "...";
    return "'" + s + "'";
}

}  // namespace

NfacctdCsvReader::Type NfacctdCsvReader::column_type(std::string_view name) {
    // The primitives of nfacctd's print plugin that carry a fixed type (CONFIG-KEYS, "aggregate").
    static const std::unordered_map<std::string_view, Type> kTypes = {
        {"SRC_MAC", Type::Mac},
        {"DST_MAC", Type::Mac},
        {"SRC_IP", Type::Ip},
        {"DST_IP", Type::Ip},
        {"PEER_SRC_IP", Type::Ip},
        {"PEER_DST_IP", Type::Ip},
        {"POST_NAT_SRC_IP", Type::Ip},
        {"POST_NAT_DST_IP", Type::Ip},
        {"SRC_PORT", Type::Port},
        {"DST_PORT", Type::Port},
        {"POST_NAT_SRC_PORT", Type::Port},
        {"POST_NAT_DST_PORT", Type::Port},
        {"PROTOCOL", Type::Protocol},
        {"TOS", Type::U8},
        {"COS", Type::U8},
        {"SRC_MASK", Type::U8},
        {"DST_MASK", Type::U8},
        {"TCP_FLAGS", Type::U16},
        {"VLAN", Type::Vlan},
        {"IN_VLAN", Type::Vlan},
        {"OUT_VLAN", Type::Vlan},
        {"IN_CVLAN", Type::Vlan},
        {"OUT_CVLAN", Type::Vlan},
        {"IN_IFACE", Type::U32},
        {"OUT_IFACE", Type::U32},
        {"SRC_AS", Type::U32},
        {"DST_AS", Type::U32},
        {"PEER_SRC_AS", Type::U32},
        {"PEER_DST_AS", Type::U32},
        {"SAMPLING_RATE", Type::U32},
        {"EXPORT_PROTO_SEQNO", Type::U32},
        {"EXPORT_PROTO_VERSION", Type::U16},
        {"TAG", Type::U64},
        {"TAG2", Type::U64},
        {"PACKETS", Type::U64},
        {"FLOWS", Type::U64},
        {"BYTES", Type::U64},
        {"TIMESTAMP_START", Type::Timestamp},
        {"TIMESTAMP_END", Type::Timestamp},
        {"TIMESTAMP_ARRIVAL", Type::Timestamp},
        {"TIMESTAMP_MIN", Type::Timestamp},
        {"TIMESTAMP_MAX", Type::Timestamp},
        {"STAMP_INSERTED", Type::Timestamp},
        {"STAMP_UPDATED", Type::Timestamp},
    };
    auto it = kTypes.find(name);
    return it == kTypes.end() ? Type::Text : it->second;
}

std::string split_csv_line(std::string_view line, std::vector<std::string>& fields, size_t max_fields) {
    fields.clear();
    size_t i = 0;
    for (;;) {
        if (fields.size() == max_fields) return "more than " + std::to_string(max_fields) + " fields";
        std::string& f = fields.emplace_back();
        if (i < line.size() && line[i] == '"') {
            const size_t open = i++;
            for (;;) {
                const size_t q = line.find('"', i);
                if (q == std::string_view::npos)
                    return "the quote at byte " + std::to_string(open + 1) + " is never closed";
                f.append(line.substr(i, q - i));
                i = q + 1;
                if (i < line.size() && line[i] == '"') {
                    f += '"';
                    i++;
                    continue;
                }
                break;
            }
            if (i < line.size() && line[i] != ',')
                return "text after the closing quote at byte " + std::to_string(i + 1);
        } else {
            const size_t end = std::min(line.find(',', i), line.size());
            const std::string_view raw = line.substr(i, end - i);
            if (raw.find('"') != std::string_view::npos)
                return "a quote inside an unquoted field at byte " + std::to_string(i + raw.find('"') + 1);
            f.assign(raw);
            i = end;
        }
        if (i >= line.size()) return "";
        i++;  // the comma
    }
}

Status NfacctdCsvReader::fail(const std::string& what) {
    failed_ = true;
    error_ = Error("line " + std::to_string(lines_) + ": " + what);
    return error_;
}

Status NfacctdCsvReader::take_header(std::string_view line) {
    if (auto why = split_csv_line(line, fields_, kMaxColumns); !why.empty())
        return fail("not nfacctd's CSV header (print_output: csv): " + why);
    for (size_t i = 0; i < fields_.size(); i++) {
        if (!is_column_name(fields_[i]))
            return fail("expected nfacctd's CSV header first (print_output: csv), but column " + std::to_string(i + 1) +
                        " is " + shown(fields_[i]) + ", not a column name");
        for (size_t j = 0; j < i; j++)
            if (fields_[j] == fields_[i]) return fail("the header names column " + fields_[i] + " twice");
    }
    names_ = fields_;
    types_.clear();
    for (const auto& n : names_) types_.push_back(column_type(n));
    header_.assign(line);
    return Ok{};
}

Status NfacctdCsvReader::take_line(std::string_view line, std::vector<std::string>& rows) {
    lines_++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (size_t i = 0; i < line.size(); i++) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            return fail(std::string("control character ") + hex + " at byte " + std::to_string(i + 1));
        }
    }
    if (line.empty() || is_marker(line)) {
        skipped_++;
        return Ok{};
    }
    if (header_.empty()) return take_header(line);
    if (line == header_) {  // a second run's output appended (cat a.csv b.csv)
        skipped_++;
        return Ok{};
    }
    if (auto why = split_csv_line(line, fields_, kMaxColumns); !why.empty()) return fail(why);
    if (fields_.size() != names_.size()) {
        if (std::all_of(fields_.begin(), fields_.end(), [](const std::string& f) { return is_column_name(f); }))
            return fail("a second header with other columns (" + std::to_string(fields_.size()) +
                        "); one export pipe reads one nfacctd's output");
        return fail(std::to_string(fields_.size()) + " fields, the header has " + std::to_string(names_.size()));
    }
    for (size_t i = 0; i < fields_.size(); i++)
        if (!valid(types_[i], fields_[i]))
            return fail("column " + std::to_string(i + 1) + " (" + names_[i] + "): expected " + type_name(types_[i]) +
                        ", got " + shown(fields_[i]));
    rows.emplace_back(line);
    return Ok{};
}

Status NfacctdCsvReader::feed(std::string_view chunk, std::vector<std::string>& rows) {
    if (failed_) return error_;
    while (!chunk.empty()) {
        const size_t nl = chunk.find('\n');
        const size_t piece = nl == std::string_view::npos ? chunk.size() : nl;
        if (partial_.size() + piece > kMaxLine) {
            lines_++;
            return fail("longer than " + std::to_string(kMaxLine) + " bytes; not a row nfacctd writes");
        }
        if (nl == std::string_view::npos) {
            partial_.append(chunk);
            return Ok{};
        }
        Status st = Ok{};
        if (partial_.empty()) {
            st = take_line(chunk.substr(0, nl), rows);
        } else {
            partial_.append(chunk.substr(0, nl));
            st = take_line(partial_, rows);
            partial_.clear();
        }
        if (!st) return st;
        chunk.remove_prefix(nl + 1);
    }
    return Ok{};
}

Status NfacctdCsvReader::finish(std::vector<std::string>& rows) {
    if (failed_) return error_;
    if (partial_.empty()) return Ok{};
    std::string last = std::move(partial_);
    partial_.clear();
    return take_line(last, rows);
}

}  // namespace pf
