#pragma once
// The background services the daemon runs, in start order (service_registry.cpp).

#include "peakflow/common/error.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

// Builds and starts every service the context's sections switch on, in order. A service
// that cannot start (bad credentials file, unwritable spool directory) is an error: the
// daemon does not start. Fills ctx.alerts, ctx.clock (when unset) and, with push,
// ctx.outbox and ctx.sinks, so a reload context can be built with the same ones.
Status start_services(Services& out, ServiceContext& ctx);

}  // namespace pf
