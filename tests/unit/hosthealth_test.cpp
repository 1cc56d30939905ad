// Host health against a fake /proc, /sys and /etc tree (utmp and wtmp written with struct
// utmp): each item's exact text line as the monitoring requirements print it, the memory
// average, temperature levels, disk figures from a real statvfs, user lists, SQLite batching
// read back through a second connection, and the host_watch config section.

#include "peakflow/watch/hosthealth.hpp"
#include "peakflow/watch/host_watch.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <utmp.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "fake_root.hpp"
#include "peakflow/app/cli.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/daemon/daemon.hpp"

namespace pf {
namespace {

using testing::FakeRoot;

constexpr int64_t kWall = 1795273228;  // 2026-11-21 15:00:28 UTC

class HostHealthTest : public ::testing::Test {
  protected:
    void SetUp() override {
        setenv("TZ", "UTC", 1);
        tzset();
    }
    FakeRoot root;
};

TEST_F(HostHealthTest, MemoryLineAndDynamicAverage) {
    // 1,000,000 kB total, 200,000 kB available: 80% used; the first average is the value.
    root.write("proc/meminfo",
               "MemTotal:        1000000 kB\nMemFree:           10000 kB\nMemAvailable:     200000 kB\n");
    HostHealth h(root.dir());
    auto m = h.mem(kWall);
    EXPECT_EQ(m.total, 1024000000u);
    EXPECT_EQ(m.free, 204800000u);
    EXPECT_DOUBLE_EQ(m.used, 80.0);
    EXPECT_EQ(format_mem(m), "2026-11-21__15:00:28 976M 195M 80.0% 80.0%");
    // 40% used next: 0.3 x 80 + 0.7 x 40 = 52.
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:     600000 kB\n");
    m = h.mem(kWall + 5);
    EXPECT_NEAR(m.average, 52.0, 1e-9);
    EXPECT_EQ(format_mem(m), "2026-11-21__15:00:33 976M 585M 40.0% 52.0%");
    // 10% used: 0.3 x 52 + 0.7 x 10 = 22.6.
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:     900000 kB\n");
    m = h.mem(kWall + 10);
    EXPECT_NEAR(m.average, 22.6, 1e-9);
    EXPECT_EQ(format_mem(m), "2026-11-21__15:00:38 976M 878M 10.0% 22.6%");
    EXPECT_EQ(json_mem(m),
              R"({"time":1795273238,"total_bytes":1024000000,"free_bytes":921600000,"used":10.0,"average":22.6})");
}

TEST_F(HostHealthTest, CpuLineUsageOverTheWindowAndTemperature) {
    root.write("proc/loadavg", "0.50 0.40 0.30 2/180 4242\n");
    // total 1000 jiffies, idle+iowait 800; then 1500 and 1200: 100 busy of 500 = 20%.
    root.write("proc/stat", "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 100 0 100 700 100 0 0 0 0 0\n");
    root.write("sys/class/thermal/thermal_zone0/temp", "45000\n");
    root.write("sys/class/thermal/thermal_zone1/temp", "65000\n");
    HostHealth h(root.dir());
    double slept = 0;
    auto r = h.cpu(kWall, [&](double s) {
        slept = s;
        root.write("proc/stat", "cpu  150 0 150 1050 150 0 0 0 0 0\ncpu0 150 0 150 1050 150 0 0 0 0 0\n");
    });
    EXPECT_EQ(slept, 0.5);
    EXPECT_DOUBLE_EQ(r.usage, 20.0);
    EXPECT_EQ(format_cpu(r), "2026-11-21__15:00:28 0.50 0.40 0.30 20.0% 65.0°C note");
    // Without /sys/class/thermal: no temperature and no level.
    root.remove("sys");
    r = h.cpu(kWall, [](double) {});
    EXPECT_EQ(format_cpu(r), "2026-11-21__15:00:28 0.50 0.40 0.30 0.0% - -");
}

TEST_F(HostHealthTest, TemperatureLevels) {
    HealthLevels l;
    EXPECT_EQ(health_level(49.9, l.temp_note, l.temp_warning), "normal");
    EXPECT_EQ(health_level(50.0, l.temp_note, l.temp_warning), "note");
    EXPECT_EQ(health_level(70.0, l.temp_note, l.temp_warning), "note");
    EXPECT_EQ(health_level(70.1, l.temp_note, l.temp_warning), "warning");
    root.write("sys/class/thermal/thermal_zone0/temp", "71500\n");
    root.write("proc/stat", "cpu  1 0 0 1 0 0 0 0 0 0\n");
    HostHealth h(root.dir());
    auto r = h.cpu(kWall, [](double) {});
    EXPECT_EQ(r.level, "warning");
    EXPECT_EQ(*r.temp, 71.5);
}

TEST_F(HostHealthTest, DiskLinesFromStatvfsOfEachMountedBlockDevice) {
    root.write("proc/self/mounts",
               "/dev/sda1 / ext4 rw,relatime 0 0\n"
               "proc /proc proc rw 0 0\n"
               "tmpfs /run tmpfs rw 0 0\n"
               "/dev/sda2 /boot\\040efi vfat rw 0 0\n"
               "/dev/sda1 /mnt/again ext4 rw 0 0\n"
               "/dev/loop0 /snap/x squashfs ro 0 0\n");
    root.write("boot efi/.keep", "");
    struct statvfs sv {};
    ASSERT_EQ(statvfs(root.dir().c_str(), &sv), 0);
    uint64_t total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    uint64_t avail = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    uint64_t used = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    HostHealth h(root.dir());
    auto d = h.disks(kWall);
    ASSERT_EQ(d.size(), 3u);
    char pct[32], pct2[32];
    snprintf(pct, sizeof pct, "%.1f%%", 100.0 * static_cast<double>(used) / static_cast<double>(used + avail));
    snprintf(pct2, sizeof pct2, "%.1f%%",
             100.0 * static_cast<double>(2 * used) / static_cast<double>(2 * used + 2 * avail));
    auto m = [](uint64_t b) { return std::to_string(b >> 20) + "M"; };
    EXPECT_EQ(format_disk(d[0]), "2026-11-21__15:00:28 0 disk " + m(2 * total) + " " + m(2 * avail) + " " + pct2);
    EXPECT_EQ(format_disk(d[1]), "2026-11-21__15:00:28 1 / " + m(total) + " " + m(avail) + " " + pct);
    EXPECT_EQ(d[2].name, "/boot efi");
    EXPECT_EQ(format_disk(d[2]), "2026-11-21__15:00:28 1 /boot_efi " + m(total) + " " + m(avail) + " " + pct);
}

// A statvfs on a hung network or FUSE mount never returns: such mounts are not asked at
// all, even with a /dev/ source (ntfs-3g, network block devices). Their mount points exist
// in the fake root, so only the filter keeps them out.
TEST_F(HostHealthTest, DisksSkipNetworkAndFuseMounts) {
    const std::vector<std::pair<std::string, std::string>> skipped = {
        {"198.18.0.5:/export /mnt/nfs nfs4 rw 0 0", "mnt/nfs"},
        {"//198.18.0.5/share /mnt/smb cifs rw 0 0", "mnt/smb"},
        {"u@198.18.0.5:/ /mnt/ssh fuse.sshfs rw 0 0", "mnt/ssh"},
        {"/dev/sdb1 /mnt/ntfs fuseblk rw 0 0", "mnt/ntfs"},
        {"/dev/fuse /mnt/portal fuse.portal rw 0 0", "mnt/portal"},
        {"/dev/nbd0 /mnt/nbd ext4 rw 0 0", "mnt/nbd"},
        {"/dev/rbd0 /mnt/rbd xfs rw 0 0", "mnt/rbd"},
        {"/dev/sdc1 /mnt/ceph ceph rw 0 0", "mnt/ceph"},
        {"/dev/sdd1 /mnt/nine 9p rw 0 0", "mnt/nine"},
    };
    std::string mounts = "/dev/sda1 / ext4 rw,relatime 0 0\n";
    for (const auto& [line, dir] : skipped) {
        mounts += line + "\n";
        root.write(dir + "/.keep", "");
    }
    root.write("proc/self/mounts", mounts);
    HostHealth h(root.dir());
    auto d = h.disks(kWall);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].name, "disk");
    EXPECT_EQ(d[1].name, "/");
    EXPECT_EQ(d[0].total, d[1].total);
    for (const auto& [type, local] : std::vector<std::pair<std::string, bool>>{{"ext4", true},
                                                                               {"xfs", true},
                                                                               {"btrfs", true},
                                                                               {"vfat", true},
                                                                               {"nfs", false},
                                                                               {"smb3", false},
                                                                               {"fuse", false},
                                                                               {"fuse.rclone", false},
                                                                               {"glusterfs", false},
                                                                               {"virtiofs", false}})
        EXPECT_EQ(local_disk_mount("/dev/sda1", type), local) << type;
}

TEST_F(HostHealthTest, SystemLine) {
    root.write("proc/sys/kernel/hostname", "pi1\n");
    root.write("proc/sys/kernel/osrelease", "6.1.0-13-arm64\n");
    root.write("etc/os-release",
               "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n");
    root.write("proc/uptime", "93784.52 100.00\n");  // 1 day 2 h 3 min
    root.write("proc/loadavg", "1.00 0.75 0.25 1/100 9\n");
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:      50000 kB\n");  // 95%
    root.write("sys/class/thermal/thermal_zone0/temp", "55300\n");
    root.write("proc/self/mounts", "");  // no disks: 0 and normal
    HostHealth h(root.dir());
    EXPECT_EQ(format_sys(h.sys(kWall)),
              "2026-11-21__15:00:28 pi1 Debian_GNU/Linux_12_(bookworm) 6.1.0-13-arm64 1d02h03m 1.00,0.75,0.25 0M 0.0% "
              "976M 95.0% 55.3°C normal warning note");
}

void put_utmp(std::ofstream& out, short type, pid_t pid, const char* user, const char* line, const char* ip,
              const char* host = "") {
    struct utmp u;
    std::memset(&u, 0, sizeof u);
    u.ut_type = type;
    u.ut_pid = pid;
    std::strncpy(u.ut_user, user, sizeof u.ut_user);
    std::strncpy(u.ut_line, line, sizeof u.ut_line);
    std::strncpy(u.ut_host, host, sizeof u.ut_host);
    if (ip) inet_pton(AF_INET, ip, &u.ut_addr_v6[0]);
    out.write(reinterpret_cast<const char*>(&u), sizeof u);
}

TEST_F(HostHealthTest, UsersLineFromPasswdGroupUtmpAndWtmp) {
    root.write("etc/passwd",
               "root:x:0:0:root:/root:/bin/bash\n"
               "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
               "alice:x:1000:1000::/home/alice:/bin/bash\n"
               "bob:x:1001:1001::/home/bob:/bin/bash\n"
               "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
               "carol:x:1002:27::/home/carol:/bin/bash\n"
               "toor:x:0:0::/root:/bin/sh\n");
    root.write("etc/group", "root:x:0:\nsudo:x:27:bob,alice\nusers:x:100:dave\n");
    root.write("proc/4242/stat", "x");
    root.write("proc/4243/stat", "x");
    root.write("var/log/wtmp", "");
    root.write("run/utmp", "");
    {
        std::ofstream w(root.path("var/log/wtmp"), std::ios::binary);
        put_utmp(w, USER_PROCESS, 100, "alice", "pts/0", "198.18.0.2");
        put_utmp(w, USER_PROCESS, 101, "bob", "pts/1", "198.18.0.3");
        put_utmp(w, DEAD_PROCESS, 101, "", "pts/1", nullptr);
        put_utmp(w, USER_PROCESS, 102, "alice", "pts/2", "198.18.0.2");
        put_utmp(w, USER_PROCESS, 103, "dave", "tty1", nullptr);
        put_utmp(w, BOOT_TIME, 0, "reboot", "~", nullptr);
        std::ofstream u(root.path("run/utmp"), std::ios::binary);
        put_utmp(u, USER_PROCESS, 4242, "alice", "pts/0", "198.18.0.2");
        put_utmp(u, USER_PROCESS, 4243, "bob", "tty1", nullptr);
        put_utmp(u, USER_PROCESS, 9999, "carol", "pts/5", "198.18.0.9");  // stale: no such process
        put_utmp(u, LOGIN_PROCESS, 4242, "LOGIN", "tty2", nullptr);
    }
    HostHealth h(root.dir());
    auto r = h.users(kWall);
    EXPECT_EQ(r.count, 3);  // alice, bob, carol (not nobody, not the system accounts)
    EXPECT_EQ(r.recent, (std::vector<std::string>{"dave", "alice", "bob"}));
    EXPECT_EQ(r.root, (std::vector<std::string>{"root", "toor", "carol", "bob", "alice"}));
    EXPECT_EQ(format_users(r),
              "2026-11-21__15:00:28 3 [dave,alice,bob] [root,toor,carol,bob,alice] "
              "[alice_198.18.0.2_pts/0,bob_local_tty1]");
    // UID_MIN from login.defs.
    root.write("etc/login.defs", "# comment\nUID_MIN\t\t\t 1001\nUID_MAX 60000\n");
    EXPECT_EQ(h.users(kWall).count, 2);
}

TEST_F(HostHealthTest, ProcLine) {
    ProcInfo p;
    p.pid = 42;
    p.name = "my burner";
    p.user = "alice";
    p.cpu = 99.94;
    p.mem = 0.04;
    EXPECT_EQ(format_proc(kWall, p, true), "2026-11-21__15:00:28 42 my_burner alice 99.9% 0.0% suspect");
}

TEST_F(HostHealthTest, RunHostPrintsTheItemAndRejectsUnknownOnes) {
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:     200000 kB\n");
    std::ostringstream out;
    ASSERT_TRUE(run_host(
                    "mem", false, HostWatchConfig{}, root.dir(), kWall, [](double) {}, out)
                    .ok());
    EXPECT_EQ(out.str(), "2026-11-21__15:00:28 976M 195M 80.0% 80.0%\n");
    auto st = run_host(
        "swap", false, HostWatchConfig{}, root.dir(), kWall, [](double) {}, out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(), "unknown item 'swap': expected cpu, mem, disk, sys, users or procs");
}

// ---- SQLite ----

int64_t count_rows(const std::string& db, const std::string& table) {
    sqlite3* c = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(c, ("SELECT count(*) FROM " + table).c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(c);
    return n;
}

TEST_F(HostHealthTest, SamplesReachTheDatabaseEveryTenSamplesInOneBatch) {
    std::string db = root.path("history.db");
    auto h = HostHistory::open(db);
    ASSERT_TRUE(h.ok()) << h.error().message();
    MemReport m;
    CpuReport c;
    for (int i = 0; i < 5; ++i) {
        m.time = kWall + i;
        c.time = kWall + i;
        ASSERT_TRUE((*h)->add(m).ok());
        if (i < 4) {
            ASSERT_TRUE((*h)->add(c).ok());
        }
    }
    EXPECT_EQ(count_rows(db, "host_mem"), 0);  // 9 samples: all still in memory
    EXPECT_EQ(count_rows(db, "host_cpu"), 0);
    EXPECT_EQ((*h)->pending(), 9u);
    c.time = kWall + 4;
    ASSERT_TRUE((*h)->add(c).ok());  // the 10th
    EXPECT_EQ(count_rows(db, "host_mem"), 5);
    EXPECT_EQ(count_rows(db, "host_cpu"), 5);
    EXPECT_EQ((*h)->pending(), 0u);
    // A disk sample with three rows counts as one sample.
    std::vector<DiskReport> d(3);
    for (auto& x : d) x.time = kWall;
    ASSERT_TRUE((*h)->add(d).ok());
    EXPECT_EQ(count_rows(db, "host_disk"), 0);
    ASSERT_TRUE((*h)->flush().ok());
    EXPECT_EQ(count_rows(db, "host_disk"), 3);
    // Retention: rows older than the cut go.
    ASSERT_TRUE((*h)->prune(kWall + 3).ok());
    EXPECT_EQ(count_rows(db, "host_mem"), 2);
    EXPECT_EQ(count_rows(db, "host_disk"), 0);
}

TEST_F(HostHealthTest, EpisodesAreRecorded) {
    std::string db = root.path("history.db");
    auto h = HostHistory::open(db);
    ASSERT_TRUE(h.ok());
    ProcEvent e;
    e.proc.pid = 42;
    e.proc.starttime = 500;
    e.proc.name = "burn";
    e.proc.cpu = 99;
    e.since = kWall;
    e.time = kWall + 5;
    auto id = (*h)->episode_start(e);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(count_rows(db, "proc_episodes WHERE ended IS NULL AND pid=42 AND name='burn' AND since=1795273228"), 1);
    e.kind = ProcEvent::Kind::Ended;
    e.time = kWall + 30;
    e.reason = "exited";
    ASSERT_TRUE((*h)->episode_end(*id, e).ok());
    EXPECT_EQ(count_rows(db, "proc_episodes WHERE ended=1795273258 AND end_reason='exited'"), 1);
}

TEST(HostWatchConfigTest, ParsesDumpsAndRejects) {
    auto c = parse_config(
        "host_watch:\n"
        "  proc_interval: 1\n"
        "  cpu_threshold: 80\n"
        "  cpu_all_cpus: true\n"
        "  allow:\n"
        "    names: [backup]\n"
        "    cgroups: [/system.slice/x.service]\n"
        "  levels:\n"
        "    disk_warning: 95\n"
        "  retention_days: 7\n",
        "t.yaml");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->host_watch.proc_interval, 1);
    EXPECT_EQ(c->host_watch.cpu_threshold, 80);
    EXPECT_TRUE(c->host_watch.cpu_all_cpus);
    EXPECT_TRUE(c->host_watch.enabled);
    EXPECT_EQ(c->host_watch.allow_names, std::vector<std::string>{"backup"});
    EXPECT_EQ(c->host_watch.levels.disk_warning, 95);
    EXPECT_EQ(c->host_watch.retention_days, 7);
    // What config check prints parses back to the same section.
    auto again = parse_config(dump_config(*c), "dump.yaml");
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->host_watch, c->host_watch);

    auto bad = parse_config("host_watch:\n  allow:\n    name: [x]\n", "t.yaml");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(), "t.yaml:3:5: key 'host_watch.allow.name': unknown key");
    bad = parse_config("host_watch:\n  mem_threshold: 150\n", "t.yaml");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(), "t.yaml:2:18: key 'host_watch.mem_threshold': must be between 1 and 100, got 150");
    bad = parse_config("host_watch:\n  levels: {mem_note: 95, mem_warning: 90}\n", "t.yaml");
    ASSERT_FALSE(bad.ok());
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

class RecordingSink : public AlertSink {
  public:
    void alert(const Alert& a) override {
        std::lock_guard lk(mu);
        got.push_back(a);
    }
    std::vector<Alert> take() {
        std::lock_guard lk(mu);
        return got;
    }
    // Waits up to 10 s for an alert with this key and kind.
    bool wait_for(const std::string& key, Alert::Kind kind) {
        for (int i = 0; i < 1000; ++i) {
            for (const auto& a : take())
                if (a.key == key && a.kind == kind) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
    std::mutex mu;
    std::vector<Alert> got;
};

// Host health alert texts, exactly, in both push.language values.
TEST(HostWatchAlertText, EnglishAndChinese) {
    EXPECT_EQ(health_title(true, health_what("memory", "", 95, 90, Language::En), Language::En),
              "warning: memory used 95.0% (warning above 90%)");
    EXPECT_EQ(health_title(false, health_what("disk", "/", 50.3, 90, Language::En), Language::En),
              "back to normal: disk / used 50.3% (warning above 90%)");
    EXPECT_EQ(health_what("cpu_temperature", "", 71.5, 70, Language::En),
              "CPU temperature 71.5 °C (warning above 70 °C)");
    EXPECT_EQ(health_title(true, health_what("memory", "", 95, 90, Language::Zh), Language::Zh),
              "警告：内存已用 95.0%（告警线 90%）");
    EXPECT_EQ(health_title(false, health_what("disk", "/", 50.3, 90, Language::Zh), Language::Zh),
              "恢复正常：磁盘 / 已用 50.3%（告警线 90%）");
    EXPECT_EQ(health_what("cpu_temperature", "", 71.5, 70, Language::Zh), "CPU 温度 71.5 °C（告警线 70 °C）");
}

// The service on its own thread against the fake tree: a process holding 60% of RAM is a
// runaway on the second sample (alerted once, episode row), its exit ends the episode;
// memory above mem_warning raises a host alert and its drop a recovery; stop() joins and
// flushes the samples.
TEST(HostWatchServiceTest, AlertsEpisodesAndSamplesFromTheFakeTree) {
    FakeRoot root;
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:      50000 kB\n");
    root.write("proc/uptime", "10000.00 1.00\n");
    root.write("proc/stat", "cpu  1 0 0 1 0 0 0 0 0 0\n");
    root.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    root.process(77, "hog", 0, 0, 500000, 150000, 0);  // 600,000 kB of 1,000,000
    Config cfg;
    cfg.host_watch.proc_interval = 0.2;
    cfg.host_watch.health_interval = 1;
    RecordingSink sink;
    ServiceContext ctx;
    ctx.accounting.database = root.path("history.db");
    ctx.clock = [] { return kWall; };
    ctx.paths.host_root = root.dir();
    ctx.alerts = &sink;
    ctx.sections.set(cfg.host_watch);
    auto svc = make_host_watch_service(ctx);
    ASSERT_TRUE(svc.ok()) << svc.error().message();

    ASSERT_TRUE(sink.wait_for("runaway:77:500000", Alert::Kind::Raised));
    ASSERT_TRUE(sink.wait_for("host:memory", Alert::Kind::Raised));
    root.remove("proc/77");
    root.write("proc/meminfo", "MemTotal:        1000000 kB\nMemAvailable:     900000 kB\n");
    ASSERT_TRUE(sink.wait_for("runaway:77:500000", Alert::Kind::Recovered));
    ASSERT_TRUE(sink.wait_for("host:memory", Alert::Kind::Recovered));
    (*svc)->stop();

    int raised = 0;
    for (const auto& a : sink.take())
        if (a.key == "runaway:77:500000" && a.kind == Alert::Kind::Raised) {
            ++raised;
            EXPECT_EQ(a.source, "procwatch");
            EXPECT_EQ(a.title, "runaway process hog (pid 77): CPU 0.0% memory 60.0%");
            EXPECT_NE(a.text.find("- command: `hog --busy`\n"), std::string::npos);
        } else if (a.key == "host:memory") {
            EXPECT_EQ(a.title, a.kind == Alert::Kind::Raised ? "warning: memory used 95.0% (warning above 90%)"
                                                             : "back to normal: memory used 10.0% (warning above 90%)");
        }
    EXPECT_EQ(raised, 1);
    std::string db = root.path("history.db");
    EXPECT_EQ(count_rows(db, "proc_episodes WHERE pid=77 AND name='hog' AND end_reason='exited'"), 1);
    EXPECT_GE(count_rows(db, "host_mem"), 2);  // flushed by stop(), fewer than 10 samples
    EXPECT_GE(count_rows(db, "host_mem WHERE abs(used - 95.0) < 1e-9"), 1);
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

TEST(HostCliTest, ParsesItemJsonAndConfigAndRejectsUnknownItems) {
    auto p = parse_cli({"peakflow-bpf", "host", "mem", "--json", "-f", "x.yaml"});
    ASSERT_EQ(p.exit_code, -1) << p.err;
    EXPECT_EQ(p.cmd.kind, CliCommand::Host);
    EXPECT_EQ(p.cmd.host_item, "mem");
    EXPECT_TRUE(p.cmd.host_json);
    EXPECT_EQ(p.cmd.config_path, "x.yaml");
    p = parse_cli({"peakflow-bpf", "host"});
    ASSERT_EQ(p.exit_code, -1);
    EXPECT_EQ(p.cmd.host_item, "");
    EXPECT_FALSE(p.cmd.host_json);
    p = parse_cli({"peakflow-bpf", "host", "swap"});
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_NE(p.err.find("swap not in {cpu,mem,disk,sys,users,procs}"), std::string::npos) << p.err;
}

}  // namespace
}  // namespace pf
