#pragma once
// nfacctd's print plugin CSV (`print_output: csv` to stdout), as `export pipe` reads it: a
// header line naming the columns, then one row per aggregate. Rows are checked (field count,
// the type of every column nfacctd documents) and kept byte for byte; print_markers lines
// and blank lines are skipped. Memory is bounded: a line longer than kMaxLine is an error,
// never a bigger buffer.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peakflow/common/error.hpp"

namespace pf {

class NfacctdCsvReader {
  public:
    static constexpr size_t kMaxLine = 64 * 1024;  // bytes, without the newline
    static constexpr size_t kMaxColumns = 512;

    // Takes a chunk of input; the complete rows it ends (without '\n' or "\r\n") are appended
    // to `rows`. At the first line it cannot take it stops: rows before that line are in
    // `rows`, and the error says "line N: ..." (the header is line 1 when it comes first).
    // After an error every call returns it again.
    Status feed(std::string_view chunk, std::vector<std::string>& rows);
    // End of input: a last line without a newline counts as a line.
    Status finish(std::vector<std::string>& rows);

    const std::string& header() const { return header_; }  // the header line; "" until read
    uint64_t lines() const { return lines_; }              // lines taken so far
    uint64_t skipped() const { return skipped_; }          // blank, marker and repeated header lines
    size_t pending_bytes() const { return partial_.size(); }

    enum class Type { Text, Mac, Ip, Port, U8, Vlan, U16, U32, U64, Protocol, Timestamp };
    // The type a column name is checked as (Text: anything printable, as for columns
    // nfacctd's docs do not type or custom primitives).
    static Type column_type(std::string_view name);

  private:
    Status take_line(std::string_view line, std::vector<std::string>& rows);
    Status take_header(std::string_view line);
    Status fail(const std::string& what);
    std::string partial_;
    uint64_t lines_ = 0, skipped_ = 0;
    std::string header_;
    std::vector<std::string> names_;
    std::vector<Type> types_;
    std::vector<std::string> fields_;  // reused per row
    bool failed_ = false;
    Error error_;
};

// Splits one CSV line into its fields (RFC 4180: a field may be quoted, "" is a quote in a
// quoted field). Returns "" or why the line is malformed. At most `max_fields` fields.
std::string split_csv_line(std::string_view line, std::vector<std::string>& fields, size_t max_fields);

}  // namespace pf
