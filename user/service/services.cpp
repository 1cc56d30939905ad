#include "peakflow/service/service.hpp"

#include <spdlog/spdlog.h>

#include <ranges>

#include "peakflow/daemon/daemon.hpp"
#include "peakflow/export/export_service.hpp"
#include "peakflow/push/customer_report.hpp"
#include "peakflow/push/outbox.hpp"
#include "peakflow/push/push_reports.hpp"
#include "peakflow/watch/hosthealth.hpp"

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

DrainTicker::DrainTicker(std::function<void(int64_t)> fn) : fn_(std::move(fn)) {
    worker_ = std::thread([this] { run(); });
}

DrainTicker::~DrainTicker() {
    stop();
}

void DrainTicker::post(int64_t now) {
    {
        std::lock_guard<std::mutex> l(mu_);
        pending_ = now;
    }
    cv_.notify_one();
}

void DrainTicker::stop() {
    {
        std::lock_guard<std::mutex> l(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (worker_.joinable()) worker_.join();
}

void DrainTicker::run() {
    for (;;) {
        int64_t now = 0;
        {
            std::unique_lock<std::mutex> l(mu_);
            cv_.wait(l, [&] { return pending_ || stopping_; });
            if (!pending_) return;  // stopping, and nothing left to do
            now = *pending_;
            pending_.reset();
        }
        fn_(now);
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
        for (const auto& sink : ctx.config.push.sinks) ctx.sinks.emplace_back(sink.name, sink.type);
    }
    if (ctx.config.host_watch.enabled) {
        auto s = make_host_watch_service(ctx);
        if (!s) return s.error();
        out.add(std::move(*s));
    }

    // Scheduled reports and the customer's hourly report: only with the push pipeline.
    if (ctx.outbox && ctx.config.reports.enabled) {
        ReportService::Options ro;
        ro.database = ctx.options.database;
        ro.timezone = ctx.options.timezone;
        ro.peak_windows = ctx.options.peak_windows;
        ro.billing_day = ctx.options.billing_day;
        ro.reports = ctx.config.reports;
        ro.adjustments = ctx.config.adjustments;
        for (const auto& [name, type] : ctx.sinks) ro.sinks.push_back(name);
        ro.clock = ctx.options.clock;
        ro.accepts = [push = ctx.config.push](const std::string& sink, const std::string& kind) {
            const SinkConfig* s = push.find(sink);
            return !s || s->takes(kind);
        };
        auto s = ReportService::create(std::move(ro), *ctx.outbox);
        if (!s) return s.error();
        out.add(std::move(*s));
    }
    if (ctx.config.customer_report.enabled) {
        if (!ctx.outbox)
            return Error("customer_report is enabled but push is not configured", "", 0,
                         "add a push sink of type http and name it in customer_report.sink");
        auto co = customer_report_options(ctx);
        if (!co) return co.error();
        auto s = CustomerReportService::create(std::move(*co), *ctx.outbox);
        if (!s) return s.error();
        out.add(std::move(*s));
    }
    // Flow export (issue 6): only when the config has an `export:` section.
    if (ctx.config.export_.enabled) {
        auto s = make_export_service(ctx.config.export_, ctx.ifaces, ctx.options, ctx.alerts);
        if (!s) return s.error();
        out.add(std::move(*s));
    }
    return Ok{};
}

}  // namespace pf
