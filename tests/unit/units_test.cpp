// Human-readable units: bytes in IEC (1 KiB = 1024 B, two decimals), rates in SI bit/s
// (1 kbit/s = 1000 bit/s, one decimal). Exact strings, including the unit boundaries.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "peakflow/common/units.hpp"

namespace pf {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = KiB * 1024;
constexpr uint64_t GiB = MiB * 1024;
constexpr uint64_t TiB = GiB * 1024;
constexpr uint64_t PiB = TiB * 1024;
constexpr uint64_t EiB = PiB * 1024;

TEST(HumanBytes, BelowOneKibibyteIsWholeBytes) {
    EXPECT_EQ(human_bytes(0), "0 B");
    EXPECT_EQ(human_bytes(1), "1 B");
    EXPECT_EQ(human_bytes(512), "512 B");
    EXPECT_EQ(human_bytes(1023), "1023 B");
}

TEST(HumanBytes, IecUnitsWithTwoDecimals) {
    EXPECT_EQ(human_bytes(1024), "1.00 KiB");
    EXPECT_EQ(human_bytes(1536), "1.50 KiB");
    EXPECT_EQ(human_bytes(1025), "1.00 KiB");
    EXPECT_EQ(human_bytes(100 * KiB), "100.00 KiB");
    EXPECT_EQ(human_bytes(MiB), "1.00 MiB");
    EXPECT_EQ(human_bytes(MiB + MiB / 2), "1.50 MiB");
    EXPECT_EQ(human_bytes(10 * GiB), "10.00 GiB");
    EXPECT_EQ(human_bytes(3 * TiB / 4), "768.00 GiB");
    EXPECT_EQ(human_bytes(TiB + TiB / 4), "1.25 TiB");
    EXPECT_EQ(human_bytes(2 * PiB), "2.00 PiB");
    EXPECT_EQ(human_bytes(EiB), "1.00 EiB");
}

TEST(HumanBytes, LargestCounterStaysInExbibytes) {
    // 2^64 - 1 rounds to 16 EiB; there is no larger unit to move to.
    EXPECT_EQ(human_bytes(std::numeric_limits<uint64_t>::max()), "16.00 EiB");
}

TEST(HumanBytes, ValuesThatRoundUpToTheNextUnitUseIt) {
    EXPECT_EQ(human_bytes(MiB - 1), "1.00 MiB");
    EXPECT_EQ(human_bytes(GiB - 1), "1.00 GiB");
}

TEST(HumanRate, BelowOneKilobitIsWholeBits) {
    EXPECT_EQ(human_rate(0), "0 bit/s");
    EXPECT_EQ(human_rate(1), "1 bit/s");
    EXPECT_EQ(human_rate(999), "999 bit/s");
}

TEST(HumanRate, SiUnitsWithOneDecimal) {
    EXPECT_EQ(human_rate(1000), "1.0 kbit/s");
    EXPECT_EQ(human_rate(1500), "1.5 kbit/s");
    EXPECT_EQ(human_rate(64000), "64.0 kbit/s");
    EXPECT_EQ(human_rate(12.3e6), "12.3 Mbit/s");
    EXPECT_EQ(human_rate(1e9), "1.0 Gbit/s");
    EXPECT_EQ(human_rate(25e9), "25.0 Gbit/s");
    EXPECT_EQ(human_rate(1.6e12), "1.6 Tbit/s");
}

TEST(HumanRate, TerabitIsTheLargestUnit) {
    EXPECT_EQ(human_rate(2.5e15), "2500.0 Tbit/s");
}

TEST(HumanRate, ValuesThatRoundUpToTheNextUnitUseIt) {
    EXPECT_EQ(human_rate(999.6), "1.0 kbit/s");
    EXPECT_EQ(human_rate(999999), "1.0 Mbit/s");
}

}  // namespace
}  // namespace pf
