#pragma once
// The flow export service (see flow_export.hpp), started by the daemon when the config
// has an `export:` section.

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/export/flow_export.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

// With an `export:` section: starts the scan thread (and the upload/status thread when
// configured). Errors: the export directory cannot be created or written, an IPFIX
// collector cannot be resolved, the password file cannot be read.
Result<std::unique_ptr<Service>> make_export_service(ServiceContext& ctx);

// The line the export logs at start: interfaces, timeouts, where records go (the upload
// URL with its password masked).
std::string export_start_line(const ExportConfig& c, const std::vector<std::string>& ifaces);

// The export's status line (status.file, status.url), as `export status` shows it.
struct ExportStatus {
    std::string instance_id;
    int64_t time = 0, last_upload = 0;
    uint64_t files_written = 0, files_uploaded = 0, upload_failures = 0, bytes_uploaded = 0, queue_files = 0,
             queue_bytes = 0, records_exported = 0, records_dropped = 0, flow_map_full = 0, ipfix_send_errors = 0;
    std::string last_error;  // as the server or the system said it: not always UTF-8
};
// One JSON object, keys in name order. Bytes that are not UTF-8 (an FTP server's answer in
// last_error) become U+FFFD: a strict dump would throw and stop the export's thread.
std::string export_status_json(const ExportStatus& s);

// `peakflow-bpf export status`: the spool (finished files waiting, open .part files) and
// the last line of the status file. Exit 0; 1 (FatalError) when export is not configured.
int run_export_status(const ExportConfig& e, const std::string& source, std::ostream& out);

}  // namespace pf
