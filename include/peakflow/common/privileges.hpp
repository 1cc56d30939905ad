#pragma once

#include "peakflow/common/error.hpp"

namespace pf {

// Attach/detach need (CAP_BPF or CAP_SYS_ADMIN) and CAP_NET_ADMIN; reading maps needs
// CAP_BPF or CAP_SYS_ADMIN. The error names what is missing.
Status check_attach_privileges();
Status check_map_read_privileges();

}  // namespace pf
