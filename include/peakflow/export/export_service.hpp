#pragma once
// The flow export service (see flow_export.hpp), built by start_services when the config
// has an `export:` section.

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "peakflow/app/config.hpp"
#include "peakflow/export/flow_export.hpp"
#include "peakflow/service/alerts.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

struct DaemonOptions;

// Starts the scan thread (and the upload/status thread when configured). Errors: the
// export directory cannot be created or written, an IPFIX collector cannot be resolved,
// the password file cannot be read.
Result<std::unique_ptr<Service>> make_export_service(const ExportConfig& cfg, const std::vector<std::string>& ifaces,
                                                     const DaemonOptions& o, AlertSink* alerts);

// `peakflow-bpf export status`: the spool (finished files waiting, open .part files) and
// the last line of the status file. Exit 0; 1 (FatalError) when export is not configured.
int run_export_status(const Config& cfg, std::ostream& out);

}  // namespace pf
