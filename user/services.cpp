#include "peakflow/service.hpp"

#include <spdlog/spdlog.h>

#include <ranges>

#include "peakflow/daemon.hpp"
#include "peakflow/export_service.hpp"

namespace pf {

Services::~Services() {
    stop();
}

void Services::after_drain(int64_t now) {
    for (auto& s : list_) s->after_drain(now);
}

void Services::reload(const Config& cfg) {
    for (auto& s : list_) s->reload(cfg);
}

void Services::stats(DaemonStats& st) const {
    for (const auto& s : list_) s->stats(st);
}

void Services::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& s : std::views::reverse(list_)) {
        spdlog::debug("stopping {}", s->name());
        s->stop();
    }
}

Status start_services(Services& out, ServiceContext& ctx) {
    if (!ctx.alerts) ctx.alerts = &out.log_alerts;
    // Order matters: the push pipeline comes first, as it provides ctx.outbox and replaces
    // ctx.alerts with a sink that queues alerts for delivery; the others raise through it.
    // Flow export (issue 6): only when the config has an `export:` section.
    if (ctx.config.export_.enabled) {
        auto s = make_export_service(ctx.config.export_, ctx.ifaces, ctx.options, ctx.alerts);
        if (!s) return s.error();
        out.add(std::move(*s));
    }
    return Ok{};
}

}  // namespace pf
