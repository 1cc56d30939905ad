#pragma once
// The flow export service (see flow_export.hpp), built by start_services when the config
// has an `export:` section.

#include <memory>
#include <string>
#include <vector>

#include "peakflow/alerts.hpp"
#include "peakflow/flow_export.hpp"
#include "peakflow/service.hpp"

namespace pf {

struct DaemonOptions;

// Starts the scan thread (and the upload/status thread when configured). Errors: the
// export directory cannot be created or written, an IPFIX collector cannot be resolved,
// the password file cannot be read.
Result<std::unique_ptr<Service>> make_export_service(const ExportConfig& cfg, const std::vector<std::string>& ifaces,
                                                     const DaemonOptions& o, AlertSink* alerts);

}  // namespace pf
