#include "peakflow/service/service.hpp"

#include <spdlog/spdlog.h>

#include <ranges>

#include "peakflow/common/guarded.hpp"
namespace pf {

Services::~Services() {
    stop();
}

void Services::after_drain(int64_t now) {
    for (auto& s : list_) s->after_drain(now);
}

void Services::reload(const ServiceContext& next) {
    for (auto& s : list_) s->reload(next);
}

void Services::stats(DaemonStats& st) const {
    std::lock_guard l(list_mu_);
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
        run_once_guarded("drain tick", [&] { fn_(now); });
    }
}

void TickedService::after_drain(int64_t now) {
    if (ticker_) ticker_->post(now);
}

void TickedService::reload(const ServiceContext& next) {
    std::lock_guard<std::mutex> w(work_mu_);
    if (auto cal = next.accounting.calendar()) cal_ = std::move(*cal);  // the daemon checked it before
    reload_locked(next);
}

void TickedService::stop() {
    if (ticker_) ticker_->stop();
}

Result<int64_t> TickedService::first_start(SqliteDb& db, const std::string& state_table, int64_t now) {
    auto ins = db.prepare("INSERT OR IGNORE INTO " + state_table + "(key, value) VALUES('first_start', ?1)");
    if (!ins) return ins.error();
    if (ins->bind(1, now).step() != SQLITE_DONE) return sql_error(db.get(), "record first start");
    auto q = db.prepare("SELECT value FROM " + state_table + " WHERE key = 'first_start'");
    if (!q) return q.error();
    if (q->step() != SQLITE_ROW) return sql_error(db.get(), "read first start");
    return q->i64(0);
}

void TickedService::start_ticker() {
    ticker_ = std::make_unique<DrainTicker>([this](int64_t now) {
        if (auto st = tick(now); !st)
            spdlog::warn("{}: {} (tried again after the next drain)", name(), st.error().message());
    });
}

}  // namespace pf
