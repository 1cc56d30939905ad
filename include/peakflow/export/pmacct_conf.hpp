#pragma once
// The pmacct processor's settings: the `processor_*` keys of a pmacct.conf, read with the
// processor's meanings (sizes in MB, intervals in seconds) into the `export:` settings that
// `export pipe` runs with. nfacctd's own keys in the same file are left to nfacctd.

#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/export/export_config.hpp"

namespace pf {

// One MB of processor_rotate_size_mb and processor_status_report_file_max_mb, in bytes.
inline constexpr uint64_t kPmacctMegabyte = 1024 * 1024;

// Applies the processor_* keys found in `text` (pmacct.conf syntax: "key: value" lines, '!'
// and '#' start comments, keys case-insensitive) over `cfg`; keys the file does not set keep
// cfg's values. An unknown processor_* key, a key given twice or a bad value is an error
// naming SOURCE:LINE and the key (never the FTP password).
Status apply_pmacct_conf(const std::string& text, const std::string& source, ExportConfig& cfg);
// The same, read from PATH.
Status load_pmacct_conf(const std::string& path, ExportConfig& cfg);

}  // namespace pf
