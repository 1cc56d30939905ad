#pragma once
// The flow export service (see flow_export.hpp), started by the daemon when the config
// has an `export:` section.

#include <memory>
#include <ostream>
#include <string>

#include "peakflow/export/flow_export.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

// With an `export:` section: starts the scan thread (and the upload/status thread when
// configured). Errors: the export directory cannot be created or written, an IPFIX
// collector cannot be resolved, the password file cannot be read.
Result<std::unique_ptr<Service>> make_export_service(ServiceContext& ctx);

// `peakflow-bpf export status`: the spool (finished files waiting, open .part files) and
// the last line of the status file. Exit 0; 1 (FatalError) when export is not configured.
int run_export_status(const ExportConfig& e, const std::string& source, std::ostream& out);

}  // namespace pf
