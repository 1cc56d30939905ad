// start_services with an outbox: the report services are registered from the config and
// the daemon's context, and refuse a customer report sink that is not an http push sink.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "peakflow/app/config.hpp"
#include "peakflow/daemon/service_registry.hpp"
#include "peakflow/service/service.hpp"
#include "report_test_support.hpp"

namespace pf {
namespace {

using testing::HistoryFile;
using testing::RecordingQueue;

constexpr int64_t kSh21_2100 = 1795266000;  // 2026-11-21 21:00 Asia/Shanghai

class ReportServices : public HistoryFile {
  protected:
    // The daemon's context for these sections, with `q` standing in for the outbox.
    ServiceContext context(const Config& cfg, MessageQueue* q, std::vector<std::pair<std::string, std::string>> sinks) {
        ServiceContext c;
        c.accounting.database = db_;
        c.accounting.timezone = "Asia/Shanghai";
        c.clock = [] { return kSh21_2100; };
        c.paths.sysfs = dir_ + "/sys";
        c.ifaces = {"eth0"};
        c.outbox = q;
        c.sinks = std::move(sinks);
        c.sections.set(cfg.push);
        c.sections.set(cfg.reports);
        c.sections.set(cfg.customer_report);
        return c;
    }
};

TEST_F(ReportServices, ReportsRunWithAnOutboxAndSendTheStartupReportToEverySink) {
    Config cfg;
    // A sink's own reports list decides which kinds it takes: an http sink (the customer
    // API) takes none by default, so it gets no startup report.
    SinkConfig cust;
    cust.name = "cust";
    cust.type = "http";
    cust.reports.clear();
    cfg.push.sinks.push_back(cust);
    RecordingQueue q;
    ServiceContext ctx = context(cfg, &q, {{"ding", "dingtalk"}, {"cust", "http"}, {"mail", "smtp"}});
    Services services;
    ASSERT_TRUE(start_services(services, ctx).ok());
    services.after_drain(kSh21_2100);
    services.stop();
    auto m = q.take();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].sink, "ding");
    EXPECT_EQ(m[1].sink, "mail");
    EXPECT_EQ(m[0].kind, "startup");
    EXPECT_EQ(m[0].period, "2026-11-21 21:00:00");
}

TEST_F(ReportServices, NothingWithoutAnOutboxOrWhenSwitchedOff) {
    Config cfg;
    RecordingQueue q;
    {
        ServiceContext ctx = context(cfg, nullptr, {});
        Services services;
        ASSERT_TRUE(start_services(services, ctx).ok());
        services.after_drain(kSh21_2100);
    }
    cfg.reports.enabled = false;
    ServiceContext ctx = context(cfg, &q, {{"ding", "dingtalk"}});
    Services services;
    ASSERT_TRUE(start_services(services, ctx).ok());
    services.after_drain(kSh21_2100);
    services.stop();
    EXPECT_TRUE(q.take().empty());
}

TEST_F(ReportServices, CustomerReportNeedsPushAndAnHttpSink) {
    Config cfg;
    cfg.reports.enabled = false;
    cfg.customer_report.enabled = true;
    cfg.customer_report.sink = "ding";
    RecordingQueue q;
    {
        ServiceContext ctx = context(cfg, nullptr, {});
        Services services;
        auto st = start_services(services, ctx);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().message(),
                  "customer_report is enabled but push is not configured (add a push sink of type http and name it in "
                  "customer_report.sink)");
    }
    ServiceContext ctx = context(cfg, &q, {{"ding", "dingtalk"}});
    Services services;
    auto st = start_services(services, ctx);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(),
              "customer_report.sink: 'ding' is of type dingtalk, the customer report needs type http (the body is "
              "POSTed as is)");
}

// The metrics server starts before the services and scrapes while start_services adds
// them: stats() reads the list under its lock (a race TSan reports without it; a plain
// build sees every scrape add up to a whole number of services).
TEST(ServicesList, StatsWhileServicesAreAdded) {
    struct One : Service {
        std::string name() const override { return "one"; }
        void stats(DaemonStats& s) const override { s.outbox_depth++; }
    };
    Services services;
    std::atomic<bool> done{false};
    uint64_t last = 0;
    bool monotonic = true;
    std::thread scraper([&] {
        while (!done) {
            DaemonStats s;
            services.stats(s);
            monotonic = monotonic && s.outbox_depth >= last;
            last = s.outbox_depth;
        }
    });
    for (int i = 0; i < 2000; i++) services.add(std::make_unique<One>());
    done = true;
    scraper.join();
    EXPECT_TRUE(monotonic);
    DaemonStats s;
    services.stats(s);
    EXPECT_EQ(s.outbox_depth, 2000u);
}

}  // namespace
}  // namespace pf
