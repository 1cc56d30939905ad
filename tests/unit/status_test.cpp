// `peakflow-bpf status`: what it prints and its verdict, for reports built here (the
// integration test test_status.sh runs it against real attached programs).
#include "peakflow/app/status.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "peakflow/accounting/calendar.hpp"

namespace pf {
namespace {

StatusReport counting() {
    StatusReport r;
    IfaceStatus s;
    s.name = "eth0";
    s.exists = true;
    s.xdp = "native";
    s.tc_egress = true;
    s.pinned = true;
    s.daemon_pid = 1234;
    s.mac_capacity = 4096;
    s.mac_used = {3, 2};
    s.flow_slots = 65536;
    s.flows = 17;
    s.rx_bytes = 1850320;
    s.rx_packets = 1642;
    s.tx_bytes = 201880;
    s.tx_packets = 1210;
    s.events[PF_EV_NON_IP] = 12;
    r.ifaces.push_back(s);
    r.store.path = "/var/lib/peakflow/peakflow.db";
    r.store.readable = true;
    r.store.newest_bucket = 1765029900;  // 2025-12-06 14:05:00 UTC
    r.store.outbox = 0;
    return r;
}

TEST(Status, CountingTextAndJson) {
    const StatusReport r = counting();
    EXPECT_TRUE(r.ok());
    auto cal = Calendar::create("UTC", {}, 1).take();
    EXPECT_EQ(render_status_text(r, cal, 1765029941),
              "eth0: counting\n"
              "  programs: XDP native, TC egress\n"
              "  daemon: pid 1234\n"
              "  maps: MAC slots 3 of 4096 on the fullest CPU (cpu0 3, cpu1 2); flows 17 (65536 slots per CPU)\n"
              "  totals: rx 1850320 bytes 1642 packets, tx 201880 bytes 1210 packets\n"
              "  events: mac_map_full=0 flow_map_full=0 unparsable=0 non_ip=12\n"
              "history: /var/lib/peakflow/peakflow.db; newest 5-minute bucket 2025-12-06 14:05:00 (41 s ago); outbox "
              "0 waiting\n");
    auto j = nlohmann::json::parse(render_status_json(r));
    EXPECT_EQ(j["ok"], true);
    EXPECT_EQ(j["interfaces"][0]["mac_used_per_cpu"], nlohmann::json::parse("[3,2]"));
    EXPECT_EQ(j["interfaces"][0]["problem"], nullptr);
    EXPECT_EQ(j["interfaces"][0]["events"]["non_ip"], 12);
    EXPECT_EQ(j["history"]["newest_bucket"], 1765029900);
}

TEST(Status, NotCountingIsExitOneWithTheReason) {
    StatusReport r = counting();
    r.ifaces[0].daemon_pid.reset();
    r.ifaces[0].problem = "no daemon: the kernel counts, but nothing drains the counters into the history";
    EXPECT_FALSE(r.ok());
    auto cal = Calendar::create("UTC", {}, 1).take();
    const std::string text = render_status_text(r, cal, 1765029941);
    EXPECT_EQ(text.substr(0, text.find('\n')),
              "eth0: NOT counting: no daemon: the kernel counts, but nothing drains the counters into the history");
    // The collector link: shown, not part of the verdict (counting goes on without it).
    r.ifaces[0].daemon_pid = 1234;
    r.ifaces[0].problem.clear();
    r.store.uplink_attempt = 1765029930;
    r.store.uplink_ack = 1765029870;
    r.store.uplink_backlog = 42;
    r.store.uplink_error = "Couldn't connect to server";
    EXPECT_TRUE(r.ok());
    const std::string with_link = render_status_text(r, cal, 1765029941);
    EXPECT_EQ(with_link.substr(with_link.rfind("collector:")),
              "collector: last report 2025-12-06 14:05:30 (11 s ago) failed: Couldn't connect to server; last "
              "acknowledged 2025-12-06 14:04:30 (71 s ago); 42 records waiting\n");
    EXPECT_EQ(nlohmann::json::parse(render_status_json(r))["collector"],
              nlohmann::json::parse(R"({"last_attempt":1765029930,"last_ack":1765029870,"backlog":42,
                                        "error":"Couldn't connect to server"})"));
    EXPECT_FALSE(StatusReport{}.ok());  // no interface at all is not healthy
    StatusReport none;
    none.store.path = "/nonexistent.db";
    none.store.error = "no history database yet (the daemon creates it)";
    EXPECT_EQ(render_status_text(none, cal, 0),
              "no interface: none is attached or configured\n"
              "history: /nonexistent.db: no history database yet (the daemon creates it)\n");
}

}  // namespace
}  // namespace pf
