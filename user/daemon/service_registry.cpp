#include "peakflow/daemon/service_registry.hpp"

#include "peakflow/export/export_service.hpp"
#include "peakflow/fleet/uplink.hpp"
#include "peakflow/push/customer_report.hpp"
#include "peakflow/push/outbox.hpp"
#include "peakflow/push/push_reports.hpp"
#include "peakflow/watch/host_watch.hpp"

namespace pf {
namespace {

// Adding a service is one line here. The order is the start order (stop is the reverse):
// the push pipeline comes first, as it provides ctx.outbox and replaces ctx.alerts with a
// sink that queues alerts for delivery; the others raise and queue through it.
constexpr ServiceFactory kServices[] = {
    make_push_service,             // push: the durable outbox and its sinks
    make_uplink_service,           // collector: reports the history to the fleet collector
    make_host_watch_service,       // host_watch: runaway processes, host health
    make_report_service,           // reports: daily, monthly, startup (needs push)
    make_customer_report_service,  // customer_report: the hourly API report (needs push)
    make_export_service,           // export: flow records to files, FTP/SFTP, IPFIX
};

}  // namespace

Status start_services(Services& out, ServiceContext& ctx) {
    if (!ctx.alerts) ctx.alerts = &out.log_alerts;
    if (!ctx.clock) ctx.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    for (ServiceFactory make : kServices) {
        auto s = make(ctx);
        if (!s) return s.error();
        if (*s) out.add(std::move(*s));
    }
    return Ok{};
}

}  // namespace pf
