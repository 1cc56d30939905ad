// The report wire format (docs/fleet.md): what render_report writes parse_report reads
// back field for field, and each malformed report is refused with its exact reason.

#include "peakflow/fleet/wire.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace pf {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1796000000;  // 2026-11-30 00:53:20 UTC
constexpr int64_t kTs = 1795999800;   // 2026-11-30 00:50:00 UTC, a bucket start

WireReport sample() {
    WireReport r;
    r.agent.name = "nas-1";
    r.agent.host = "nas-1.lan";
    r.agent.node = "beijing-1";
    r.agent.version = "0.1.0 (commit abc)";
    r.agent.boot_id = "7c1a0c8e-1111-2222-3333-444455556666";
    r.agent.interval = 60;
    r.agent.time = kNow;
    r.agent.interfaces = {{"eth0", "02:00:00:00:00:01", true}, {"eth1", "", false}};
    r.spool = "9f0c0000000000000000000000000001";
    r.backlog_buckets = 7;
    r.backlog_push = 1;
    r.backlog_host = 2;
    WireBatch b;
    b.stream = "buckets";
    b.seq = 12;
    b.buckets = {{"eth0", "", kTs, false, 1234, 10, 567, 8},
                 {"eth0", "02:00:00:00:00:09", kTs, true, 18446744073709551615ull >> 1, 1, 2, 3}};
    r.batches.push_back(b);
    WireBatch p;
    p.stream = "push";
    p.seq = 3;
    p.push = {{41, kNow - 10, "beijing-1", "nas-1", "ding", "daily", "2026-11-29", 812, "sent", 1, ""}};
    r.batches.push_back(p);
    WireBatch h;
    h.stream = "host";
    h.seq = 5;
    WireHost sys;
    sys.type = "sys";
    sys.time = kNow - 10;
    sys.load1 = 0.25;
    sys.cpu = 3.5;
    sys.mem_total = 1024;
    sys.mem_used = 40.5;
    sys.disk_total = 1000;
    sys.disk_used = 12.5;
    WireHost ep;
    ep.type = "episode";
    ep.id = 7;
    ep.pid = 4242;
    ep.name = "spin";
    ep.user = "bob";
    ep.since = kNow - 1000;
    ep.detected = kNow - 995;
    ep.ended = kNow - 900;
    ep.end_reason = "exited";
    ep.peak_cpu = 99.0;
    ep.peak_mem = 1.0;
    h.host = {sys, ep};
    r.batches.push_back(h);
    return r;
}

std::string parse_error(const std::string& body, int64_t now = kNow) {
    auto r = parse_report(body, now);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.error().message();
}

// The sample rendered, changed by `edit`, rendered again.
std::string edited(const std::function<void(json&)>& edit) {
    json j = json::parse(render_report(sample()));
    edit(j);
    return j.dump();
}

TEST(FleetWire, RoundTripKeepsEveryField) {
    const WireReport in = sample();
    auto r = parse_report(render_report(in), kNow);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const WireReport& out = *r;
    EXPECT_EQ(out.protocol, 1);
    EXPECT_EQ(out.agent.name, "nas-1");
    EXPECT_EQ(out.agent.host, "nas-1.lan");
    EXPECT_EQ(out.agent.node, "beijing-1");
    EXPECT_EQ(out.agent.version, "0.1.0 (commit abc)");
    EXPECT_EQ(out.agent.boot_id, in.agent.boot_id);
    EXPECT_EQ(out.agent.interval, 60);
    EXPECT_EQ(out.agent.time, kNow);
    ASSERT_EQ(out.agent.interfaces.size(), 2u);
    EXPECT_EQ(out.agent.interfaces[0].name, "eth0");
    EXPECT_EQ(out.agent.interfaces[0].mac, "02:00:00:00:00:01");
    EXPECT_TRUE(out.agent.interfaces[0].counted);
    EXPECT_FALSE(out.agent.interfaces[1].counted);
    EXPECT_EQ(out.spool, in.spool);
    EXPECT_EQ(out.backlog_buckets, 7);
    EXPECT_EQ(out.backlog_push, 1);
    EXPECT_EQ(out.backlog_host, 2);
    EXPECT_EQ(out.backlog(), 10);
    ASSERT_EQ(out.batches.size(), 3u);
    const auto& b = out.batches[0];
    EXPECT_EQ(b.stream, "buckets");
    EXPECT_EQ(b.seq, 12);
    ASSERT_EQ(b.buckets.size(), 2u);
    EXPECT_EQ(b.buckets[0].iface, "eth0");
    EXPECT_EQ(b.buckets[0].mac, "");
    EXPECT_EQ(b.buckets[0].ts, kTs);
    EXPECT_FALSE(b.buckets[0].peak);
    EXPECT_EQ(b.buckets[0].rx_bytes, 1234u);
    EXPECT_EQ(b.buckets[0].rx_packets, 10u);
    EXPECT_EQ(b.buckets[0].tx_bytes, 567u);
    EXPECT_EQ(b.buckets[0].tx_packets, 8u);
    EXPECT_EQ(b.buckets[1].mac, "02:00:00:00:00:09");
    EXPECT_TRUE(b.buckets[1].peak);
    EXPECT_EQ(b.buckets[1].rx_bytes, 9223372036854775807ull);
    const auto& p = out.batches[1];
    EXPECT_EQ(p.stream, "push");
    ASSERT_EQ(p.push.size(), 1u);
    EXPECT_EQ(p.push[0].id, 41);
    EXPECT_EQ(p.push[0].time, kNow - 10);
    EXPECT_EQ(p.push[0].sink, "ding");
    EXPECT_EQ(p.push[0].kind, "daily");
    EXPECT_EQ(p.push[0].period, "2026-11-29");
    EXPECT_EQ(p.push[0].bytes, 812);
    EXPECT_EQ(p.push[0].status, "sent");
    EXPECT_EQ(p.push[0].attempts, 1);
    const auto& h = out.batches[2];
    ASSERT_EQ(h.host.size(), 2u);
    EXPECT_EQ(h.host[0].type, "sys");
    EXPECT_EQ(h.host[0].time, kNow - 10);
    EXPECT_EQ(h.host[0].load1, 0.25);
    EXPECT_EQ(h.host[0].mem_total, 1024);
    EXPECT_EQ(h.host[0].disk_used, 12.5);
    EXPECT_FALSE(h.host[0].temperature.has_value());
    EXPECT_EQ(h.host[1].type, "episode");
    EXPECT_EQ(h.host[1].id, 7);
    EXPECT_EQ(h.host[1].pid, 4242);
    EXPECT_EQ(h.host[1].name, "spin");
    EXPECT_EQ(h.host[1].user, "bob");
    EXPECT_EQ(h.host[1].ended, kNow - 900);
    EXPECT_EQ(h.host[1].time, kNow - 900);
    EXPECT_EQ(h.host[1].end_reason, "exited");
    EXPECT_EQ(h.host[1].peak_cpu, 99.0);
}

// A push row's value: kept when set, left out of the JSON when none; absent and null both
// read as none (an agent from before values), anything but a count is refused.
TEST(FleetWire, PushValueIsOptional) {
    WireReport in = sample();
    in.batches[1].push.push_back({42, kNow - 5, "beijing-1", "nas-1", "customer", "hourly", "2026-11-30T08", 300,
                                  "failed", 3, "HTTP 500", 78000});
    const std::string text = render_report(in);
    json j = json::parse(text);
    const json& recs = j["batches"][1]["records"];
    EXPECT_FALSE(recs[0].contains("value"));
    EXPECT_EQ(recs[1]["value"], 78000);
    auto r = parse_report(text, kNow);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->batches[1].push[0].value.has_value());
    EXPECT_EQ(r->batches[1].push[1].value, std::optional<int64_t>(78000));
    EXPECT_EQ(render_report(*r), text);

    auto with_value = [](json v) { return edited([&](json& k) { k["batches"][1]["records"][0]["value"] = v; }); };
    auto n = parse_report(with_value(nullptr), kNow);
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_FALSE(n->batches[1].push[0].value.has_value());
    EXPECT_EQ(parse_error(with_value("812")), "field 'batches[1].records[0].value' must be an integer");
    EXPECT_EQ(parse_error(with_value(-1)),
              "field 'batches[1].records[0].value' must be between 0 and 9223372036854775807, got -1");
}

TEST(FleetWire, RenderedShapeMatchesTheDocs) {
    json j = json::parse(render_report(sample()));
    EXPECT_EQ(j["protocol"], 1);
    EXPECT_EQ(j["agent"]["interfaces"][0],
              json::parse(R"j({"name":"eth0","mac":"02:00:00:00:00:01","counted":true})j"));
    EXPECT_EQ(j["backlog"], json::parse(R"j({"buckets":7,"push":1,"host":2,"heartbeat":0,"flows":0})j"));
    EXPECT_EQ(j["batches"][0]["records"][0],
              json::parse(R"j({"iface":"eth0","mac":"","ts":1795999800,"peak":false,"rx_bytes":1234,"rx_packets":10,
                              "tx_bytes":567,"tx_packets":8})j"));
    EXPECT_EQ(j["batches"][2]["records"][0]["temperature"], nullptr);
}

TEST(FleetWire, HeartbeatWithoutBatches) {
    WireReport r = sample();
    r.batches.clear();
    auto p = parse_report(render_report(r), kNow);
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_TRUE(p->batches.empty());
}

TEST(FleetWire, RefusesMalformedReportsWithTheReason) {
    EXPECT_EQ(parse_error("{\"protocol\": 1,").substr(0, 10), "not JSON: ");
    EXPECT_EQ(parse_error("[1]"), "the report must be a JSON object");
    EXPECT_EQ(parse_error(edited([](json& j) { j["protocol"] = 2; })),
              "protocol 2 not supported (this collector speaks 1)");
    EXPECT_EQ(parse_error(edited([](json& j) { j["protocol"] = "1"; })), "field 'protocol' must be an integer");
    EXPECT_EQ(parse_error(edited([](json& j) { j.erase("spool"); })), "missing field 'spool'");
    EXPECT_EQ(parse_error(edited([](json& j) { j["spool"] = "XYZ"; })), "spool must be 32 lowercase hex digits");
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["interval"] = "60"; })),
              "field 'agent.interval' must be an integer");
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["interval"] = 4; })),
              "field 'agent.interval' must be between 5 and 3600, got 4");
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["name"] = "a/b"; })),
              "agent.name must be 1 to 64 of A-Z a-z 0-9 . _ -");
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["interfaces"][0]["counted"] = 1; })),
              "field 'agent.interfaces[0].counted' must be true or false");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["rx_bytes"] = -1; })),
              "field 'batches[0].records[0].rx_bytes' must be a non-negative integer");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["rx_bytes"] = 1.5; })),
              "field 'batches[0].records[0].rx_bytes' must be a non-negative integer");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["rx_bytes"] = 18446744073709551615ull; })),
              "field 'batches[0].records[0].rx_bytes' is out of range");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["ts"] = kTs + 1; })),
              "batches[0].records[0].ts 1795999801 is not a multiple of 300");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["mac"] = "02:00:00:00:00"; })),
              "batches[0].records[0].mac must look like aa:bb:cc:dd:ee:ff or be \"\"");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["seq"] = 0; })),
              "field 'batches[0].seq' must be between 1 and 9223372036854775807, got 0");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["stream"] = "pings"; })),
              "batches[0].stream must be buckets, push, host, heartbeat or flows, got \"pings\"");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["stream"] = "flows"; })),
              "missing field 'batches[0].records[0].other'");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][1] = j["batches"][0]; })),
              "more than one batch for stream buckets");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][1]["stream"] = "buckets"; })),
              "missing field 'batches[1].records[0].iface'");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][2]["records"][0]["type"] = "cpu"; })),
              "batches[2].records[0].type must be \"sys\" or \"episode\", got \"cpu\"");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][2]["records"][0]["cpu"] = "high"; })),
              "field 'batches[2].records[0].cpu' must be a number or null");
}

TEST(FleetWire, RefusesTheFuture) {
    // 300 s ahead is allowed, 301 s is not.
    EXPECT_TRUE(parse_report(edited([](json& j) { j["agent"]["time"] = kNow + 300; }), kNow).ok());
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["time"] = kNow + 301; })),
              "agent.time 1796000301 is 301 s ahead of the collector's clock (at most 300)");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][0]["records"][0]["ts"] = kTs + 900; })),
              "batches[0].records[0].ts 1796000700 is 700 s ahead of the collector's clock (at most 300)");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][1]["records"][0]["time"] = kNow + 1000; })),
              "batches[1].records[0].time 1796001000 is 1000 s ahead of the collector's clock (at most 300)");
    EXPECT_EQ(parse_error(edited([](json& j) { j["batches"][2]["records"][1]["ended"] = kNow + 400; })),
              "batches[2].records[1].ended 1796000400 is 400 s ahead of the collector's clock (at most 300)");
}

TEST(FleetWire, RefusesDepthLongStringsAndHugeBatches) {
    // Depth 8 is allowed (a report's own depth is 5), 9 is not.
    EXPECT_TRUE(parse_report(edited([](json& j) { j["extra"] = json::parse("[[[[[[[1]]]]]]]"); }), kNow).ok());
    EXPECT_EQ(parse_error(edited([](json& j) { j["extra"] = json::parse("[[[[[[[[1]]]]]]]]"); })),
              "nesting deeper than 8");
    // Brackets inside strings do not count.
    EXPECT_TRUE(parse_report(edited([](json& j) { j["agent"]["host"] = std::string(100, '['); }), kNow).ok());
    EXPECT_TRUE(parse_report(edited([](json& j) { j["agent"]["host"] = std::string(4096, 'h'); }), kNow).ok());
    EXPECT_EQ(parse_error(edited([](json& j) { j["agent"]["host"] = std::string(4097, 'h'); })),
              "a string over 4096 bytes");
    EXPECT_EQ(parse_error(edited([](json& j) { j["unknown"] = std::string(5000, 'x'); })), "a string over 4096 bytes");
    auto many = [](size_t n) {
        return edited([n](json& j) {
            json rec = j["batches"][0]["records"][0];
            json recs = json::array();
            for (size_t i = 0; i < n; i++) recs.push_back(rec);
            j["batches"][0]["records"] = recs;
        });
    };
    auto ok = parse_report(many(20000), kNow);
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_EQ(ok->batches[0].buckets.size(), 20000u);
    EXPECT_EQ(parse_error(many(20001)), "stream buckets: 20001 records in one batch (at most 20000)");
}

TEST(FleetWire, AckRoundTrip) {
    WireAck a;
    a.buckets = 12;
    a.push = 3;
    a.host = 5;
    a.time = 1796000001;
    a.heartbeat = 2;
    EXPECT_EQ(
        render_ack(a),
        R"j({"status":"ok","acked":{"buckets":12,"push":3,"host":5,"heartbeat":2,"flows":0},"time":1796000001})j");
    auto b = parse_ack(render_ack(a));
    ASSERT_TRUE(b.ok()) << b.error().message();
    EXPECT_EQ(b->buckets, 12);
    EXPECT_EQ(b->push, 3);
    EXPECT_EQ(b->host, 5);
    EXPECT_EQ(b->time, 1796000001);
    ASSERT_NE(b->of("push"), nullptr);
    EXPECT_EQ(*b->of("push"), 3);
    EXPECT_EQ(*b->of("heartbeat"), 2);
    EXPECT_EQ(b->of("pings"), nullptr);
    // A collector from before heartbeats and flows: it holds none of them.
    auto old = parse_ack(R"j({"status":"ok","acked":{"buckets":1,"push":2,"host":3},"time":4})j");
    ASSERT_TRUE(old.ok()) << old.error().message();
    EXPECT_EQ(old->heartbeat, 0);
    EXPECT_EQ(old->flows, 0);
    // A 409's body carries acked without a time.
    auto c = parse_ack(
        R"j({"status":"error","message":"stream buckets: sequence gap: holds 2, got 4","acked":{"buckets":2,"push":0,"host":0}})j");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->buckets, 2);
    EXPECT_EQ(c->time, 0);
    EXPECT_FALSE(parse_ack("nope").ok());
    EXPECT_FALSE(parse_ack(R"j({"acked":{"buckets":-1,"push":0,"host":0}})j").ok());
}

TEST(FleetWire, GzipRoundTripAndCaps) {
    const std::string text = render_report(sample());
    const std::string z = gzip_compress(text);
    ASSERT_GE(z.size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>(z[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(z[1]), 0x8b);
    auto back = gzip_decompress(z, kWireMaxDecompressed);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(*back, text);
    EXPECT_EQ(*gzip_decompress(gzip_compress(""), 10), "");

    // Exactly at the cap is fine, one byte over is not.
    const std::string zeros(1 << 20, '\0');
    const std::string zz = gzip_compress(zeros);
    EXPECT_TRUE(gzip_decompress(zz, zeros.size()).ok());
    auto over = gzip_decompress(zz, zeros.size() - 1);
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.error().message(), "decompressed body over 1048575 bytes");

    auto truncated = gzip_decompress(z.substr(0, z.size() / 2), kWireMaxDecompressed);
    ASSERT_FALSE(truncated.ok());
    EXPECT_EQ(truncated.error().message(), "corrupt gzip stream: truncated");
    auto garbage = gzip_decompress("not gzip at all", kWireMaxDecompressed);
    ASSERT_FALSE(garbage.ok());
    EXPECT_EQ(garbage.error().message().substr(0, 20), "corrupt gzip stream:");
    auto trailing = gzip_decompress(z + "x", kWireMaxDecompressed);
    ASSERT_FALSE(trailing.ok());
    EXPECT_EQ(trailing.error().message(), "corrupt gzip stream: data after its end");
}

}  // namespace
}  // namespace pf
