// The runaway process watch against a fake /proc tree: CPU% from two stat samples (100 ticks
// per second, 4096-byte pages, MemTotal 1,000,000 kB), the two-sample rule, spikes, exits,
// pid reuse and the allow-list. Expected figures are computed by hand in each test.

#include "peakflow/watch/procwatch.hpp"

#include <gtest/gtest.h>

#include "fake_root.hpp"

namespace pf {
namespace {

using testing::FakeRoot;

constexpr long kHz = 100;
constexpr long kPage = 4096;
constexpr int64_t kWall = 1795273228;  // 2026-11-21 15:00:28 UTC

class ProcWatchTest : public ::testing::Test {
  protected:
    void SetUp() override {
        root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemFree:          500000 kB\n");
        root.write("proc/uptime", "10000.00 30000.00\n");
        root.write("proc/stat",
                   "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\n"
                   "cpu2 1 2 3 4 5 6 7 8 0 0\ncpu3 1 2 3 4 5 6 7 8 0 0\nintr 0\n");
        root.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n");
        // Long-running and idle: started 100 s after boot, 50 ticks used in total.
        root.process(1, "init", 30, 20, 10000, 1000, 0, "/init.scope");
    }
    ProcWatch make(ProcWatchOptions o = {}) { return ProcWatch(ProcFs(root.dir(), kHz, kPage), o); }
    static const ProcInfo* find(const ProcWatch& w, int pid) {
        for (const auto& p : w.last())
            if (p.pid == pid) return &p;
        return nullptr;
    }
    FakeRoot root;
};

TEST_F(ProcWatchTest, CpuPercentFromTwoStatSamples) {
    root.process(42, "burn", 1000, 500, 500000, 2000, 1000);
    auto w = make();
    EXPECT_TRUE(w.sample(100.0, kWall).empty());
    // 5 s later: 200 + 100 more ticks = 3 s of CPU in 5 s at 100 ticks/s = 60% of one CPU.
    root.process(42, "burn", 1200, 600, 500000, 2000, 1000);
    (void)w.sample(105.0, kWall + 5);
    const ProcInfo* p = find(w, 42);
    ASSERT_NE(p, nullptr);
    EXPECT_DOUBLE_EQ(p->cpu, 300.0 / (5.0 * kHz) * 100.0);
    EXPECT_NEAR(p->cpu, 60.0, 1e-9);
    // 2000 pages x 4096 bytes of 1,000,000 kB.
    EXPECT_DOUBLE_EQ(p->mem, 2000.0 * 4096 / (1000000.0 * 1024) * 100.0);
    EXPECT_EQ(p->name, "burn");
    EXPECT_EQ(w.last().front().pid, 42);  // highest CPU first

    // Counted against all 4 CPUs: a quarter.
    ProcWatchOptions all;
    all.cpu_all_cpus = true;
    auto w4 = make(all);
    (void)w4.sample(200.0, kWall);
    root.process(42, "burn", 1400, 700, 500000, 2000, 1000);
    (void)w4.sample(205.0, kWall + 5);
    EXPECT_NEAR(find(w4, 42)->cpu, 15.0, 1e-9);
}

TEST_F(ProcWatchTest, FirstSightCountsSinceTheProcessStarted) {
    // Started at 9990 s of uptime (999000 ticks), 8 s of CPU since: 80% in its first sample.
    root.process(77, "fresh", 600, 200, 999000, 10, 0);
    auto w = make();
    (void)w.sample(1.0, kWall);
    EXPECT_NEAR(find(w, 77)->cpu, 80.0, 1e-9);
    EXPECT_NEAR(find(w, 1)->cpu, 50.0 / (9900.0 * kHz) * 100.0, 1e-12);
}

TEST_F(ProcWatchTest, RunawayOnlyOnTheSecondSampleAboveAndOnceAnEpisode) {
    uint64_t t = 1000;
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    auto w = make();
    EXPECT_TRUE(w.sample(0, kWall).empty());  // 1000 ticks over 5000 s: idle so far
    t += 400;                                 // 80% in this period: a suspect
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    EXPECT_TRUE(w.sample(5, kWall + 5).empty());
    t += 450;  // 90%: still above, a runaway
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    auto ev = w.sample(10, kWall + 10);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ProcEvent::Kind::Runaway);
    EXPECT_EQ(ev[0].key(), "runaway:42:500000");
    EXPECT_EQ(ev[0].since, kWall + 5);
    EXPECT_EQ(ev[0].time, kWall + 10);
    EXPECT_NEAR(ev[0].proc.cpu, 90.0, 1e-9);
    EXPECT_EQ(ev[0].proc.name, "burn");
    EXPECT_EQ(ev[0].proc.user, "alice");
    EXPECT_EQ(ev[0].proc.cmdline, "burn --busy");
    EXPECT_NEAR(ev[0].peak_cpu, 90.0, 1e-9);
    for (int i = 3; i < 6; ++i) {  // still spinning: no second alert
        t += 500;
        root.process(42, "burn", t, 0, 500000, 10, 1000);
        EXPECT_TRUE(w.sample(5.0 * i, kWall + 5 * i).empty()) << i;
    }
    t += 10;  // 2%: the episode ends
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    ev = w.sample(30, kWall + 30);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ProcEvent::Kind::Ended);
    EXPECT_EQ(ev[0].reason, "below the thresholds");
    EXPECT_EQ(ev[0].since, kWall + 5);
    EXPECT_NEAR(ev[0].peak_cpu, 100.0, 1e-9);
    // Above again later: a new episode, a new alert.
    t += 400;
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    EXPECT_TRUE(w.sample(35, kWall + 35).empty());
    t += 400;
    root.process(42, "burn", t, 0, 500000, 10, 1000);
    ev = w.sample(40, kWall + 40);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].since, kWall + 35);
}

TEST_F(ProcWatchTest, OneSampleSpikeNeverAlerts) {
    root.process(42, "spiky", 0, 0, 500000, 10, 0);
    auto w = make();
    (void)w.sample(0, kWall);
    root.process(42, "spiky", 500, 0, 500000, 10, 0);  // 100% for one period
    EXPECT_TRUE(w.sample(5, kWall + 5).empty());
    root.process(42, "spiky", 510, 0, 500000, 10, 0);  // back to 2%
    EXPECT_TRUE(w.sample(10, kWall + 10).empty());
    root.process(42, "spiky", 1010, 0, 500000, 10, 0);  // one more spike, apart from the first
    EXPECT_TRUE(w.sample(15, kWall + 15).empty());
    root.process(42, "spiky", 1011, 0, 500000, 10, 0);
    EXPECT_TRUE(w.sample(20, kWall + 20).empty());
}

TEST_F(ProcWatchTest, MemoryAboveHalfOfRamIsARunawayToo) {
    // 150,000 pages x 4 KiB = 600,000 kB of 1,000,000: 60%.
    root.process(50, "hog", 0, 0, 500000, 150000, 0);
    auto w = make();
    EXPECT_TRUE(w.sample(0, kWall).empty());
    auto ev = w.sample(5, kWall + 5);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_NEAR(ev[0].proc.mem, 60.0, 1e-9);
    EXPECT_EQ(ev[0].proc.cpu, 0.0);
    EXPECT_EQ(ev[0].proc.user, "root");
    EXPECT_EQ(ev[0].since, kWall);
}

TEST_F(ProcWatchTest, ExitsBetweenSamples) {
    root.process(42, "burn", 0, 0, 500000, 10, 0);
    root.process(43, "brief", 0, 0, 500000, 10, 0);
    auto w = make();
    (void)w.sample(0, kWall);
    root.process(42, "burn", 500, 0, 500000, 10, 0);
    root.process(43, "brief", 500, 0, 500000, 10, 0);
    EXPECT_TRUE(w.sample(5, kWall + 5).empty());  // both suspects
    root.remove("proc/43");                       // a suspect exits: nothing to say
    root.process(42, "burn", 1000, 0, 500000, 10, 0);
    auto ev = w.sample(10, kWall + 10);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].proc.pid, 42);
    root.remove("proc/42");  // the runaway exits: its episode ends
    ev = w.sample(15, kWall + 15);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ProcEvent::Kind::Ended);
    EXPECT_EQ(ev[0].reason, "exited");
    EXPECT_EQ(ev[0].proc.pid, 42);
    EXPECT_EQ(ev[0].key(), "runaway:42:500000");
    EXPECT_EQ(w.tracked(), 1u);  // only init is left
    EXPECT_TRUE(w.sample(20, kWall + 20).empty());
}

TEST_F(ProcWatchTest, ReusedPidIsAnotherProcess) {
    root.process(42, "burn", 0, 0, 500000, 10, 0);
    auto w = make();
    (void)w.sample(0, kWall);
    root.process(42, "burn", 500, 0, 500000, 10, 0);
    (void)w.sample(5, kWall + 5);
    root.process(42, "burn", 1000, 0, 500000, 10, 0);
    ASSERT_EQ(w.sample(10, kWall + 10).size(), 1u);
    // pid 42 now belongs to a new process (started 1 s ago at 9999 s, 90 ticks since: 90%):
    // the old episode ended, and the newcomer is only a suspect, however busy.
    root.write("proc/uptime", "10000.00 30000.00\n");
    root.process(42, "other", 90, 0, 999900, 10, 0);
    auto ev = w.sample(15, kWall + 15);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ProcEvent::Kind::Ended);
    EXPECT_EQ(ev[0].reason, "exited");
    EXPECT_EQ(ev[0].proc.name, "burn");
    EXPECT_NEAR(find(w, 42)->cpu, 90.0, 1e-9);
    root.process(42, "other", 590, 0, 999900, 10, 0);
    ev = w.sample(20, kWall + 20);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].kind, ProcEvent::Kind::Runaway);
    EXPECT_EQ(ev[0].key(), "runaway:42:999900");
    EXPECT_EQ(ev[0].proc.name, "other");
}

TEST_F(ProcWatchTest, AllowListByNameUserAndCgroup) {
    root.process(10, "backup", 0, 0, 500000, 10, 0, "/system.slice/other.service");
    root.process(11, "build", 0, 0, 500000, 10, 1000, "/user.slice");
    root.process(12, "encoder", 0, 0, 500000, 10, 0, "/system.slice/backup.service/worker");
    root.process(13, "miner", 0, 0, 500000, 10, 0, "/system.slice/backup.serviceX");
    root.process(14, "uidonly", 0, 0, 500000, 10, 4242, "/user.slice");
    ProcWatchOptions o;
    o.allow_names = {"backup"};
    o.allow_users = {"alice", "4242"};
    o.allow_cgroups = {"/system.slice/backup.service"};
    auto w = make(o);
    (void)w.sample(0, kWall);
    uint64_t t = 0;
    std::vector<ProcEvent> ev;
    for (int i = 1; i <= 3; ++i) {
        t += 500;
        for (int pid : {10, 11, 12, 13, 14}) {
            const char* names[] = {"backup", "build", "encoder", "miner", "uidonly"};
            const char* cg[] = {"/system.slice/other.service", "/user.slice", "/system.slice/backup.service/worker",
                                "/system.slice/backup.serviceX", "/user.slice"};
            unsigned uids[] = {0, 1000, 0, 0, 4242};
            root.process(pid, names[pid - 10], t, 0, 500000, 10, uids[pid - 10], cg[pid - 10]);
        }
        auto e = w.sample(5.0 * i, kWall + 5 * i);
        ev.insert(ev.end(), e.begin(), e.end());
    }
    // Only the miner: its cgroup only shares a prefix with the allowed one, not a component.
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].proc.name, "miner");
    EXPECT_EQ(ev[0].proc.cgroup, "/system.slice/backup.serviceX");
}

TEST_F(ProcWatchTest, NamesWithSpacesAndParentheses) {
    root.process(60, "a) (b c", 0, 0, 500000, 10, 0);
    auto w = make();
    (void)w.sample(0, kWall);
    root.process(60, "a) (b c", 300, 200, 500000, 10, 0);
    (void)w.sample(5, kWall + 5);
    ASSERT_NE(find(w, 60), nullptr);
    EXPECT_EQ(find(w, 60)->name, "a) (b c");
    EXPECT_NEAR(find(w, 60)->cpu, 100.0, 1e-9);
}

TEST_F(ProcWatchTest, AlertTextNamesTheProcess) {
    setenv("TZ", "UTC", 1);
    tzset();
    ProcEvent e;
    e.proc.pid = 42;
    e.proc.starttime = 500000;
    e.proc.name = "burn";
    e.proc.cmdline = "burn --busy";
    e.proc.user = "alice";
    e.proc.cgroup = "/user.slice";
    e.proc.cpu = 99.5;
    e.proc.mem = 1.26;
    e.since = kWall;
    e.time = kWall + 5;
    EXPECT_EQ(proc_event_title(e), "runaway process burn (pid 42): CPU 99.5% memory 1.3%");
    EXPECT_EQ(proc_event_text(e),
              "- pid: 42\n- name: burn\n- command: `burn --busy`\n- user: alice\n- CPU: 99.5%\n- memory: 1.3%\n"
              "- since: 2026-11-21__15:00:28\n- cgroup: /user.slice\n");
    e.kind = ProcEvent::Kind::Ended;
    e.reason = "exited";
    e.peak_cpu = 100;
    e.peak_mem = 2;
    EXPECT_EQ(proc_event_title(e), "runaway process burn (pid 42) ended: exited");
    EXPECT_NE(proc_event_text(e).find("- ended: 2026-11-21__15:00:33 (exited), peak CPU 100.0% memory 2.0%\n"),
              std::string::npos);
}

TEST_F(ProcWatchTest, AlertTextInChinese) {
    setenv("TZ", "UTC", 1);
    tzset();
    ProcEvent e;
    e.proc.pid = 42;
    e.proc.name = "burn";
    e.proc.cmdline = "burn --busy";
    e.proc.user = "alice";
    e.proc.cgroup = "/user.slice";
    e.proc.cpu = 99.5;
    e.proc.mem = 1.26;
    e.since = kWall;
    e.time = kWall + 5;
    EXPECT_EQ(proc_event_title(e, Language::Zh), "失控进程 burn（pid 42）：CPU 99.5% 内存 1.3%");
    EXPECT_EQ(proc_event_text(e, Language::Zh),
              "- pid：42\n- 名称：burn\n- 命令：`burn --busy`\n- 用户：alice\n- CPU：99.5%\n- 内存：1.3%\n"
              "- 开始于：2026-11-21__15:00:28\n- cgroup：/user.slice\n");
    e.kind = ProcEvent::Kind::Ended;
    e.reason = "below the thresholds";
    e.peak_cpu = 100;
    e.peak_mem = 2;
    EXPECT_EQ(proc_event_title(e, Language::Zh), "失控进程 burn（pid 42）已结束：已低于阈值");
    EXPECT_EQ(proc_event_text(e, Language::Zh),
              "- pid：42\n- 名称：burn\n- 命令：`burn --busy`\n- 用户：alice\n- CPU：99.5%\n- 内存：1.3%\n"
              "- 开始于：2026-11-21__15:00:28\n- cgroup：/user.slice\n"
              "- 结束：2026-11-21__15:00:33（已低于阈值），CPU 峰值 100.0% 内存峰值 2.0%\n");
}

}  // namespace
}  // namespace pf
