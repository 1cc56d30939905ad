// Flow export against the real programs: an expired flow is taken from the table by
// acknowledging what its slot holds at the take, so packets that hit it after the scan read
// it are in its final record, and the records of a flow add up exactly to what was sent,
// also with traffic (on another CPU) racing the idle expiry.
#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <thread>

#include "bpf_harness.hpp"
#include "peakflow/export/flow_export.hpp"

namespace pf::test {
namespace {

const Mac kPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const Mac kLocal{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

std::vector<uint8_t> udp_frame() {
    return PacketBuilder().eth(kPeer, kLocal).ipv4("198.18.0.2", "198.18.0.1").udp(40000, 5001).payload(100).build();
}

struct Sum {
    uint64_t packets = 0, bytes = 0;
    size_t records = 0;
    void add(const std::vector<FlowRecord>& recs) {
        for (const auto& r : recs) packets += r.packets, bytes += r.bytes, records++;
    }
};

TEST(FlowExportTake, PacketsBetweenReadAndDeleteAreInTheFinalRecord) {
    auto obj = LoadedObject::load();
    const auto f = udp_frame();
    send(obj, Hook::XdpIngress, f, 5);
    FlowTracker t("veth0", 1, std::chrono::seconds(300), std::chrono::seconds(0));  // idle at once
    // The scan reads 5 packets and expires the entry; 7 more arrive before it is taken out.
    auto res = scan_flow_map(obj.maps(), t, monotonic_ns(), 0, false, [&] { send(obj, Hook::XdpIngress, f, 7); });
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->expired, 1u);
    ASSERT_EQ(res->records.size(), 1u);
    EXPECT_EQ(res->records[0].packets, 12u);
    EXPECT_EQ(res->records[0].bytes, 12u * f.size());
    EXPECT_EQ(res->records[0].key.src_port, 40000);
    auto left = obj.maps().read_flows();
    ASSERT_TRUE(left);
    EXPECT_TRUE(left->empty()) << "the taken flow is still read";
}

TEST(FlowExportTake, RecordsAddUpExactlyWithTrafficRacingTheIdleExpiry) {
    LoadOptions lo;
    lo.flow_capacity = 64;  // a small map: each scan's read is quick, so scans race the sender
    auto obj = LoadedObject::load(lo);
    const auto f = udp_frame();
    constexpr uint32_t kRuns = 100, kRepeat = 30;
    std::atomic<bool> done{false};
    std::atomic<uint32_t> failed_runs{0};
    std::thread sender([&] {
        // The programs run on another CPU than the reader, as in the daemon.
        if (std::thread::hardware_concurrency() > 1) {
            cpu_set_t other;
            CPU_ZERO(&other);
            CPU_SET((sched_getcpu() + 1) % static_cast<int>(std::thread::hardware_concurrency()), &other);
            sched_setaffinity(0, sizeof other, &other);
        }
        for (uint32_t i = 0; i < kRuns; i++)
            if (obj.run(Hook::XdpIngress, f, kRepeat).err != 0) failed_runs++;
        done = true;
    });
    // Every scan finds the flow idle (idle timeout 0) and takes it while packets keep
    // coming: each take ends one record, the next packets start a new one.
    FlowTracker t("veth0", 1, std::chrono::seconds(300), std::chrono::seconds(0));
    Sum sum;
    size_t scans = 0, expired = 0;
    while (!done) {
        auto res = scan_flow_map(obj.maps(), t, monotonic_ns(), 0, false);
        ASSERT_TRUE(res) << res.error().message();
        sum.add(res->records);
        expired += res->expired;
        scans++;
    }
    sender.join();
    auto res = scan_flow_map(obj.maps(), t, monotonic_ns(), 0, true);  // shutdown flush
    ASSERT_TRUE(res);
    sum.add(res->records);
    ASSERT_EQ(failed_runs.load(), 0u);
    EXPECT_EQ(sum.packets, uint64_t{kRuns} * kRepeat);
    EXPECT_EQ(sum.bytes, uint64_t{kRuns} * kRepeat * f.size());
    EXPECT_GT(expired, 1u) << "the test did not race: only " << scans << " scans";
    RecordProperty("scans", static_cast<int>(scans));
    RecordProperty("records", static_cast<int>(sum.records));
    auto left = obj.maps().read_flows();
    ASSERT_TRUE(left);
    EXPECT_TRUE(left->empty());
}

}  // namespace
}  // namespace pf::test
