#pragma once
// The log both programs write: stderr (the journal under systemd) in one format, and with
// a log directory a file per day plus error.log beside it.

#include <string>

#include "peakflow/common/error.hpp"

namespace pf {

// The default logger `name` on stderr at `level`; called again (tests), it reuses it.
void setup_logging(const std::string& name, const std::string& level);

// Adds DIR/STEM.log (rotated daily to STEM_YYYY-MM-DD.log) and DIR/error.log (errors only)
// to the default logger, flushed every 5 s. The directory is created when missing.
Status add_log_files(const std::string& dir, const std::string& stem);

}  // namespace pf
