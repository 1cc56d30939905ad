// libFuzzer target: the CSV reader of `export pipe` (what nfacctd, or anything else piped in,
// writes on our stdin). It may not crash, hang or hold more than one capped line; every row
// it takes has the header's number of fields and comes out byte for byte as it went in; the
// same input in other chunks gives the same rows and the same error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "peakflow/export/nfacctd_csv.hpp"

namespace {

struct Outcome {
    std::vector<std::string> rows;
    std::string error;
    std::string header;
};

Outcome run(std::string_view in, size_t chunk) {
    pf::NfacctdCsvReader r;
    Outcome o;
    for (size_t i = 0; i < in.size() && o.error.empty(); i += chunk) {
        auto st = r.feed(in.substr(i, chunk), o.rows);
        if (!st) o.error = st.error().message();
        if (r.pending_bytes() > pf::NfacctdCsvReader::kMaxLine) abort();
    }
    if (o.error.empty())
        if (auto st = r.finish(o.rows); !st) o.error = st.error().message();
    o.header = r.header();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // The first byte picks the chunk size of the second pass.
    const size_t chunk = 1 + data[0] % 97;
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const Outcome whole = run(in, in.size() ? in.size() : 1);
    const Outcome pieces = run(in, chunk);
    if (whole.rows != pieces.rows || whole.error != pieces.error || whole.header != pieces.header) abort();
    std::vector<std::string> header_fields, fields;
    if (!whole.rows.empty() &&
        !pf::split_csv_line(whole.header, header_fields, pf::NfacctdCsvReader::kMaxColumns).empty())
        abort();
    for (const auto& row : whole.rows) {
        if (row.size() > pf::NfacctdCsvReader::kMaxLine || row.find('\n') != std::string::npos) abort();
        if (!pf::split_csv_line(row, fields, pf::NfacctdCsvReader::kMaxColumns).empty()) abort();
        if (fields.size() != header_fields.size()) abort();
        // Byte for byte: the row is in the input, as a whole line.
        if (in.find(row) == std::string_view::npos) abort();
    }
    return 0;
}
