// DeltaTracker turns monotonically growing kernel counters into per-drain increases.
// Every expectation is an exact Counter so an off-by-one or a wrapped subtraction fails.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <ostream>

#include "peakflow/accounting/deltas.hpp"

namespace pf {

// Readable failure output: "{bytes=120, packets=2}" instead of a raw byte dump.
static void PrintTo(const Counter& c, std::ostream* os) {
    *os << "{bytes=" << c.bytes << ", packets=" << c.packets << "}";
}

namespace {

constexpr uint8_t kRx = PF_DIR_RX;
constexpr uint8_t kTx = PF_DIR_TX;

DeltaKey iface_key(uint8_t dir) {
    return DeltaKey{DeltaKey::Iface, {}, dir};
}
DeltaKey mac_key(const MacAddr& mac, uint8_t dir) {
    return DeltaKey{DeltaKey::Mac, mac, dir};
}

const MacAddr kMacA{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
const MacAddr kMacB{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};

TEST(DeltaTracker, FirstUpdateReturnsTheWholeValue) {
    DeltaTracker t;
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1500, 3}), (Counter{1500, 3}));
    EXPECT_EQ(t.resets(), 0u);
}

TEST(DeltaTracker, IncrementsGiveExactDifferences) {
    DeltaTracker t;
    t.update(iface_key(kRx), Counter{1000, 10});
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1600, 14}), (Counter{600, 4}));
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1600, 14}), (Counter{0, 0}));
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1601, 15}), (Counter{1, 1}));
    EXPECT_EQ(t.resets(), 0u);
    EXPECT_EQ(t.snapshots().at(iface_key(kRx)), (Counter{1601, 15}));
}

TEST(DeltaTracker, LargeCountersNearTheTopOfTheRangeSubtractExactly) {
    // Far above 2^53: a detour through double would lose the low bits.
    constexpr uint64_t big = std::numeric_limits<uint64_t>::max() - 10;
    DeltaTracker t;
    t.update(iface_key(kRx), Counter{big, big});
    EXPECT_EQ(t.update(iface_key(kRx), Counter{big + 7, big + 3}), (Counter{7, 3}));
    EXPECT_EQ(t.resets(), 0u);
}

TEST(DeltaTracker, CounterThatWentDownYieldsTheCurrentValueAndCountsAReset) {
    DeltaTracker t;
    t.update(iface_key(kRx), Counter{50000, 400});
    // The map was re-created and counted from 0 again: all of it is new traffic, not
    // 2^64 - 49880 bytes.
    EXPECT_EQ(t.update(iface_key(kRx), Counter{120, 2}), (Counter{120, 2}));
    EXPECT_EQ(t.resets(), 1u);
    // Counting carries on from the new base.
    EXPECT_EQ(t.update(iface_key(kRx), Counter{220, 3}), (Counter{100, 1}));
    EXPECT_EQ(t.resets(), 1u);
}

TEST(DeltaTracker, PacketsGoingDownAloneIsAReset) {
    DeltaTracker t;
    t.update(iface_key(kTx), Counter{1000, 10});
    // Bytes grew but packets fell: only a fresh counter can do that.
    EXPECT_EQ(t.update(iface_key(kTx), Counter{2000, 5}), (Counter{2000, 5}));
    EXPECT_EQ(t.resets(), 1u);
}

TEST(DeltaTracker, NewMapGenerationMakesEveryKeyStartOver) {
    DeltaTracker t;
    t.observe_map_generation(17);
    t.update(iface_key(kRx), Counter{1000, 10});
    t.update(mac_key(kMacA, kRx), Counter{300, 3});

    // Same id again: nothing is forgotten.
    t.observe_map_generation(17);
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1100, 11}), (Counter{100, 1}));
    EXPECT_EQ(t.resets(), 0u);

    // A new map whose counters already exceed the old snapshots: only the id tells.
    t.observe_map_generation(42);
    EXPECT_EQ(t.resets(), 1u);
    EXPECT_TRUE(t.snapshots().empty());
    EXPECT_EQ(t.update(iface_key(kRx), Counter{5000, 50}), (Counter{5000, 50}));
    EXPECT_EQ(t.update(mac_key(kMacA, kRx), Counter{400, 4}), (Counter{400, 4}));
    EXPECT_EQ(t.resets(), 1u);
}

TEST(DeltaTracker, FirstObservedGenerationKeepsSeededSnapshots) {
    // After a restart the snapshots come from the store before any map id is known;
    // the first id seen must not throw them away.
    DeltaTracker t;
    t.seed(iface_key(kRx), Counter{1000, 10});
    t.observe_map_generation(9);
    EXPECT_EQ(t.resets(), 0u);
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1250, 12}), (Counter{250, 2}));
}

TEST(DeltaTracker, SeedThenUpdateGivesTheDifferenceFromTheSeed) {
    DeltaTracker t;
    t.seed(mac_key(kMacA, kTx), Counter{7000, 70});
    EXPECT_EQ(t.snapshots().at(mac_key(kMacA, kTx)), (Counter{7000, 70}));
    EXPECT_EQ(t.update(mac_key(kMacA, kTx), Counter{7500, 75}), (Counter{500, 5}));
    EXPECT_EQ(t.resets(), 0u);
}

TEST(DeltaTracker, IfaceAndMacKeysAreIndependent) {
    DeltaTracker t;
    // An all-zero MAC must still be a different key from the interface total.
    const MacAddr zero{};
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1000, 10}), (Counter{1000, 10}));
    EXPECT_EQ(t.update(mac_key(zero, kRx), Counter{100, 1}), (Counter{100, 1}));
    EXPECT_EQ(t.update(mac_key(kMacA, kRx), Counter{200, 2}), (Counter{200, 2}));
    EXPECT_EQ(t.update(mac_key(kMacB, kRx), Counter{300, 3}), (Counter{300, 3}));

    EXPECT_EQ(t.update(iface_key(kRx), Counter{1010, 11}), (Counter{10, 1}));
    EXPECT_EQ(t.update(mac_key(zero, kRx), Counter{150, 2}), (Counter{50, 1}));
    EXPECT_EQ(t.update(mac_key(kMacA, kRx), Counter{260, 4}), (Counter{60, 2}));
    EXPECT_EQ(t.update(mac_key(kMacB, kRx), Counter{370, 6}), (Counter{70, 3}));
    EXPECT_EQ(t.snapshots().size(), 4u);
    EXPECT_EQ(t.resets(), 0u);
}

TEST(DeltaTracker, DirectionsAreIndependent) {
    DeltaTracker t;
    t.update(iface_key(kRx), Counter{1000, 10});
    t.update(iface_key(kTx), Counter{9000, 90});
    t.update(mac_key(kMacA, kRx), Counter{10, 1});
    t.update(mac_key(kMacA, kTx), Counter{20, 2});

    // A reset on TX leaves RX untouched.
    EXPECT_EQ(t.update(iface_key(kTx), Counter{5, 1}), (Counter{5, 1}));
    EXPECT_EQ(t.update(iface_key(kRx), Counter{1300, 13}), (Counter{300, 3}));
    EXPECT_EQ(t.update(mac_key(kMacA, kRx), Counter{15, 2}), (Counter{5, 1}));
    EXPECT_EQ(t.update(mac_key(kMacA, kTx), Counter{30, 3}), (Counter{10, 1}));
    EXPECT_EQ(t.resets(), 1u);
}

}  // namespace
}  // namespace pf
