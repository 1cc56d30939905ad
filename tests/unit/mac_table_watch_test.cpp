// MAC-table exhaustion alerts: one alert for a mac_map_full count that grows over many
// drains, a recovery once it stood still for the quiet time, a new episode after that;
// the first count and a count that went back (new maps) are baselines.

#include "peakflow/daemon/mac_table_watch.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pf {
namespace {

struct Seen {
    std::vector<Alert> alerts;
    void add(const std::optional<Alert>& a) {
        if (a) alerts.push_back(*a);
    }
};

TEST(MacTableWatch, OneAlertForACountGrowingOverManyDrains) {
    MacTableWatch w(600);
    Seen seen;
    int64_t now = 1795244400;
    // Already 7 when the daemon started (pinned maps from before): a baseline, no alert.
    for (uint64_t count : {7, 7, 12, 40, 41, 90, 200, 200, 350}) {
        seen.add(w.observe("eth0", count, now, 4096, Language::En));
        now += 10;
    }
    ASSERT_EQ(seen.alerts.size(), 1u);
    const Alert& a = seen.alerts[0];
    EXPECT_EQ(a.kind, Alert::Kind::Raised);
    EXPECT_EQ(a.source, "kernel");
    EXPECT_EQ(a.key, "mac_map_full:eth0");
    EXPECT_EQ(a.time, 1795244400 + 20);
    EXPECT_EQ(a.title, "MAC table of eth0 is full");
    EXPECT_EQ(a.text,
              "The MAC table (4096 addresses per CPU) is full: new peers' traffic is not counted per MAC "
              "(mac_map_full grew by 5). Interface totals are complete. A neighbour may be spoofing MAC addresses; "
              "or raise mac_capacity.");

    // Still for less than the quiet time: nothing; then the recovery, once.
    const int64_t last_growth = now - 10;
    for (; now < last_growth + 600; now += 10) seen.add(w.observe("eth0", 350, now, 4096, Language::En));
    EXPECT_EQ(seen.alerts.size(), 1u);
    for (int i = 0; i < 5; i++, now += 10) seen.add(w.observe("eth0", 350, now, 4096, Language::En));
    ASSERT_EQ(seen.alerts.size(), 2u);
    EXPECT_EQ(seen.alerts[1].kind, Alert::Kind::Recovered);
    EXPECT_EQ(seen.alerts[1].time, last_growth + 600);
    EXPECT_EQ(seen.alerts[1].title, "MAC table of eth0 no longer overflowing");

    // New maps (the count went back to 0) are a baseline; growth after it a new episode.
    seen.add(w.observe("eth0", 0, now, 4096, Language::En));
    EXPECT_EQ(seen.alerts.size(), 2u);
    seen.add(w.observe("eth0", 3, now + 10, 4096, Language::Zh));
    ASSERT_EQ(seen.alerts.size(), 3u);
    EXPECT_EQ(seen.alerts[2].title, "eth0 的 MAC 表已满");
}

TEST(MacTableWatch, EachInterfaceHasItsOwnEpisode) {
    MacTableWatch w(600);
    Seen seen;
    for (const char* i : {"eth0", "eth1"}) seen.add(w.observe(i, 0, 100, 8, Language::En));
    seen.add(w.observe("eth0", 1, 110, 8, Language::En));
    seen.add(w.observe("eth1", 0, 110, 8, Language::En));
    seen.add(w.observe("eth1", 2, 120, 8, Language::En));
    seen.add(w.observe("eth0", 9, 120, 8, Language::En));
    ASSERT_EQ(seen.alerts.size(), 2u);
    EXPECT_EQ(seen.alerts[0].key, "mac_map_full:eth0");
    EXPECT_EQ(seen.alerts[1].key, "mac_map_full:eth1");
}

}  // namespace
}  // namespace pf
