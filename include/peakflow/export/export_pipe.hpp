#pragma once
// `peakflow-bpf export pipe`: nfacctd's CSV on stdin (`nfacctd -f pmacct.conf | peakflow-bpf
// export pipe ...`, as the pmacct processor ran) written through the same rolling gzip files,
// upload and status line as the daemon's kernel flows, so flows from routers and other
// IPFIX/NetFlow exporters reach the same FTP/SFTP server. The files carry nfacctd's header
// and rows byte for byte.

#include <cstdint>
#include <functional>
#include <string>

#include "peakflow/common/error.hpp"
#include "peakflow/export/export_config.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/service/alerts.hpp"

namespace pf {

struct ExportPipeOptions {
    ExportConfig cfg;  // files, upload, status (timeouts and IPFIX do not apply)
    int in_fd = 0;     // the CSV
    // Readable when the pipe should stop (a signalfd); read_stop() reads it and names the
    // reason ("SIGTERM"), or "" for a signal that does not stop it. -1: none.
    int stop_fd = -1;
    std::function<std::string()> read_stop;
    std::function<int64_t()> clock;    // UTC seconds (file names); null: time()
    std::function<int64_t()> mono_ms;  // ms, rotation and syncs; null: steady_clock
    AlertSink* alerts = nullptr;       // the spool limit's alerts; null: the log
    Language language = Language::En;
};

// Reads until end of input, a stop signal or the first line it cannot take. Every row read
// before that is written, the open file finished, and the finished files get one more upload
// cycle (a second signal aborts it: they stay spooled for the next run). Ok at end of input or
// a stop; the error otherwise ("stdin line 7: column 9 (PACKETS): ..."), after the same
// finishing.
Status run_export_pipe(const ExportPipeOptions& o);

// The line `export pipe` logs at start: where the rows go (the URL with its password masked).
std::string export_pipe_start_line(const ExportConfig& c);

}  // namespace pf
