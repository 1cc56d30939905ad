#include "peakflow/service.hpp"

#include <spdlog/spdlog.h>

#include <ranges>

#include "peakflow/daemon.hpp"
#include "peakflow/outbox.hpp"

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
    if (ctx.config.push.configured) {
        Status st = Ok{};
        auto push = make_push_service(ctx, out.keep, st);
        if (!st) return st;
        out.add(std::move(push));
    }
    return Ok{};
}

}  // namespace pf
