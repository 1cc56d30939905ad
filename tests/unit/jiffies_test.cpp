#include "peakflow/kernel/jiffies.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>

#include "peakflow/hash_kern_user.h"
#include "peakflow/maps_kern_user.h"

namespace pf {
namespace {

TEST(JiffyClock, ConvertsStampsAroundTheSample) {
    const JiffyClock c(1'000'000, 50'000'000'000ull, 4'000'000);  // HZ=250
    EXPECT_EQ(c.to_ns(1'000'000), 50'000'000'000ull);
    EXPECT_EQ(c.to_ns(999'750), 49'000'000'000ull);  // 250 ticks: one second earlier
    EXPECT_EQ(c.to_ns(1'000'001), 50'004'000'000ull);
    EXPECT_EQ(c.to_ns(0), 0u) << "0 means never";
}

TEST(JiffyClock, ReadsConfigHz) {
    EXPECT_EQ(parse_config_hz("# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n"), 250u);
    EXPECT_EQ(parse_config_hz("CONFIG_HZ=1000"), 1000u);
    EXPECT_EQ(parse_config_hz("CONFIG_HZ_PERIODIC=y\n"), 0u);
    EXPECT_EQ(parse_config_hz("CONFIG_HZ=abc\n"), 0u);
    EXPECT_EQ(parse_config_hz(""), 0u);
}

TEST(JiffyClock, RoundsAMeasuredTickToAKernelHz) {
    EXPECT_EQ(hz_from_tick_ns(4'000'000), 250u);
    EXPECT_EQ(hz_from_tick_ns(3'700'000), 250u);
    EXPECT_EQ(hz_from_tick_ns(10'200'000), 100u);
    EXPECT_EQ(hz_from_tick_ns(3'333'333), 300u);
    EXPECT_EQ(hz_from_tick_ns(1'000'050), 1000u);
    EXPECT_EQ(hz_from_tick_ns(2'000'000), 0u) << "no kernel HZ is 500";
    EXPECT_EQ(hz_from_tick_ns(8'000'000), 0u) << "two ticks at 250 must not pass for 125";
}

// The home slots userspace computes must be the programs': the bpf tests check that
// against the real programs (take_flows finds every flow by this hash). Here: the seed
// and every word of the key move the slot.
TEST(Hash, TheSeedAndEveryWordOfTheKeyChangeTheHash) {
    static_assert(sizeof(pf_flow_key) == PF_FLOW_KEY_WORDS * 8);
    const __u64 w[PF_FLOW_KEY_WORDS] = {0, 0xffff0000ull << 32, 1, 2, 3, 4, 5};
    const __u64 h = pf_hash_flow(w, 7);
    EXPECT_NE(pf_hash_flow(w, 8), h) << "seed";
    for (int i = 0; i < PF_FLOW_KEY_WORDS; i++) {
        __u64 v[PF_FLOW_KEY_WORDS];
        std::copy(std::begin(w), std::end(w), v);
        v[i] ^= 1ull << 40;  // one bit of a port, an address or a MAC
        EXPECT_NE(pf_hash_flow(v, 7) & 0xffff, h & 0xffff) << "word " << i;
    }
    EXPECT_NE(pf_hash_mac(0x0100000000000002ull, 7), pf_hash_mac(0x0100000000000003ull, 7));
    EXPECT_NE(pf_hash_mac(0x0100000000000002ull, 7), pf_hash_mac(0x0100000000000002ull, 8));
}

TEST(Hash, AckTokenKeepsTheLow24BitsOfGenAnd40OfPackets) {
    EXPECT_EQ(pf_ack_token(1, 5), (1ull << 40) | 5);
    EXPECT_EQ(pf_ack_token(1ull << 24, 5), 5u);
    EXPECT_EQ(pf_ack_token(2, (1ull << 40) + 7), (2ull << 40) | 7);
}

}  // namespace
}  // namespace pf
