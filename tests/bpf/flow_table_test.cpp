// The per-CPU flow and MAC tables against the real programs: userspace finds the slots the
// programs chose (same seeded hash), a taken flow's slot is reused only once acknowledged,
// a flow seen again after it was taken is a new flow holding only the new packets, and a
// key counted on two CPUs is one row.
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bpf_harness.hpp"

namespace pf::test {
namespace {

const Mac kPeer{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const Mac kLocal{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

std::vector<uint8_t> udp(uint16_t sport, size_t payload) {
    return PacketBuilder()
        .eth(kPeer, kLocal)
        .ipv4("198.18.0.2", "198.18.0.1")
        .udp(sport, 5001)
        .payload(payload)
        .build();
}

pf_flow_key key(uint16_t sport) {
    return make_key({.dir = PF_DIR_RX,
                     .family = 4,
                     .proto = 17,
                     .src_addr = ipv4_mapped("198.18.0.2"),
                     .dst_addr = ipv4_mapped("198.18.0.1"),
                     .src_port = sport,
                     .dst_port = 5001,
                     .src_mac = kPeer,
                     .dst_mac = kLocal});
}

// Runs fn with the calling thread on `cpu`, then puts it back.
template <typename Fn>
void on_cpu(int cpu, Fn&& fn) {
    cpu_set_t old, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    fn();
    ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
}

void wait_ticks(int n) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(flow_time_slack_ns() * static_cast<uint64_t>(n)));
}

// `gap_ticks` = 0: the new packets come at once, mostly within the tick of the take (the
// reader subtracts the acknowledged counters). 2: a tick has passed, so the program
// restarts the slot as a new flow itself.
void taken_flow_seen_again(int gap_ticks) {
    auto obj = LoadedObject::load();
    const auto f = udp(40000, 100);
    send(obj, Hook::XdpIngress, f, 3);
    FlowTake first = obj.maps().take_flows({key(40000)});
    ASSERT_EQ(first.rows.size(), 1u);
    EXPECT_EQ(first.rows[0].packets, 3u);
    EXPECT_EQ(first.rows[0].bytes, 3 * f.size());
    EXPECT_TRUE(obj.maps().read_flows().take().empty()) << "a taken flow is still read";

    wait_ticks(gap_ticks);
    const uint64_t before = monotonic_ns();
    send(obj, Hook::XdpIngress, f, 2);
    const uint64_t after = monotonic_ns();
    auto rows = obj.maps().read_flows().take();
    ASSERT_EQ(rows.size(), 1u);
    expect_flow(rows[0], key(40000), 2 * f.size(), 2, 0, gap_ticks ? before : first.rows[0].last_seen_ns, after);

    FlowTake second = obj.maps().take_flows({key(40000)});
    ASSERT_EQ(second.rows.size(), 1u);
    EXPECT_EQ(second.rows[0].packets, 2u);
    EXPECT_EQ(second.rows[0].bytes, 2 * f.size());
    EXPECT_TRUE(obj.maps().read_flows().take().empty());
    expect_events(obj, events(0, 0, 0, 0));
}

TEST(FlowTable, ATakenFlowSeenAgainHoldsOnlyTheNewPackets) {
    taken_flow_seen_again(0);
}

TEST(FlowTable, ATakenFlowSeenAgainTicksLaterIsRestartedByTheProgram) {
    taken_flow_seen_again(2);
}

TEST(FlowTable, ASlotIsReusedOnlyOnceItsFlowWasTaken) {
    LoadOptions lo;
    lo.flow_capacity = 2;  // two slots per CPU
    auto obj = LoadedObject::load(lo);
    ASSERT_EQ(obj.maps().conf().flow_slots, 2u);
    const auto f1 = udp(1, 10), f2 = udp(2, 20), f3 = udp(3, 30);
    send(obj, Hook::XdpIngress, f1);
    send(obj, Hook::XdpIngress, f2);
    send(obj, Hook::XdpIngress, f3);  // full: refused and counted
    expect_events(obj, events(0, 1, 0, 0));

    FlowTake t = obj.maps().take_flows({key(1)});
    ASSERT_EQ(t.rows.size(), 1u);
    EXPECT_EQ(t.rows[0].bytes, f1.size());
    send(obj, Hook::XdpIngress, f3, 4);  // takes f1's acknowledged slot
    expect_events(obj, events(0, 1, 0, 0));
    expect_flows(obj, {{key(2), f2.size(), 1, 0}, {key(3), 4 * f3.size(), 4, 0}}, 0, monotonic_ns());

    send(obj, Hook::XdpIngress, f1);  // f2 and f3 are not taken: no room for f1
    expect_events(obj, events(0, 2, 0, 0));
    // Taking a flow that is not in the table takes nothing.
    EXPECT_TRUE(obj.maps().take_flows({key(1)}).rows.empty());
}

TEST(FlowTable, AKeyCountedOnTwoCpusIsOneRow) {
    if (libbpf_num_possible_cpus() < 2 || std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs two CPUs";
    auto obj = LoadedObject::load();
    const auto f = udp(40000, 100);
    on_cpu(0, [&] { send(obj, Hook::XdpIngress, f, 3); });
    on_cpu(1, [&] { send(obj, Hook::XdpIngress, f, 2); });
    expect_macs(obj, {mac_row(kPeer, PF_DIR_RX, 5 * f.size(), 5)});
    expect_flows(obj, {{key(40000), 5 * f.size(), 5, 0}}, 0, monotonic_ns());
    // Both CPUs' slots are taken together.
    FlowTake t = obj.maps().take_flows({key(40000)});
    ASSERT_EQ(t.rows.size(), 1u);
    EXPECT_EQ(t.rows[0].packets, 5u);
    EXPECT_EQ(t.rows[0].bytes, 5 * f.size());
    EXPECT_TRUE(obj.maps().read_flows().take().empty());
}

TEST(FlowTable, ManyFlowsAreAllFoundAndTaken) {
    // 3000 flows on one CPU's 8192-slot table: probe chains of many lengths, all found
    // by the reader's hash.
    LoadOptions lo;
    lo.flow_capacity = 8192;
    auto obj = LoadedObject::load(lo);
    std::vector<pf_flow_key> keys;
    for (uint16_t p = 1; p <= 3000; p++) {
        send(obj, Hook::XdpIngress, udp(p, p % 50));
        keys.push_back(key(p));
    }
    auto ev = obj.maps().read_events().take();
    const size_t refused = ev[PF_EV_FLOW_MAP_FULL];
    EXPECT_EQ(refused, 0u) << "refused at 37% of the table";
    // What was sent, independently of any reader: one packet of udp(p, p % 50) per flow.
    std::unordered_map<pf_flow_key, uint64_t, FlowKeyHash, FlowKeyEq> sent;
    uint64_t sent_bytes = 0;
    for (uint16_t p = 1; p <= 3000; p++) {
        sent[key(p)] = udp(p, p % 50).size();
        sent_bytes += udp(p, p % 50).size();
    }
    // Each flow exactly once, with its own packet's bytes: by the reader, then by the take.
    for (const std::vector<FlowRow>& got : {obj.maps().read_flows().take(), obj.maps().take_flows(keys).rows}) {
        ASSERT_EQ(got.size(), 3000u);
        std::unordered_map<pf_flow_key, uint64_t, FlowKeyHash, FlowKeyEq> seen;
        uint64_t bytes = 0;
        for (const auto& r : got) {
            auto it = sent.find(r.key);
            ASSERT_NE(it, sent.end()) << "a flow that was not sent";
            EXPECT_EQ(r.bytes, it->second);
            EXPECT_EQ(r.packets, 1u);
            EXPECT_TRUE(seen.emplace(r.key, r.bytes).second) << "a flow twice";
            bytes += r.bytes;
        }
        EXPECT_EQ(bytes, sent_bytes);
    }
    EXPECT_TRUE(obj.maps().read_flows().take().empty());
}

}  // namespace
}  // namespace pf::test
