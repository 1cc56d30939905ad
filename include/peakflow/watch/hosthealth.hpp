#pragma once
// Host health as the distributed-monitoring requirements ask for it: CPU and memory every
// 5 s, disk, system and users every minute, each item printed as one text line per record
// ("2026-11-21__15:00:28 1023M 200M 80.4% 60.8%"). All files are read under an injectable
// root ("/" on a live host), so tests use a fake /proc, /sys and /etc tree.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/service/service.hpp"
#include "peakflow/watch/host_watch_config.hpp"
#include "peakflow/watch/procwatch.hpp"

namespace pf {

// "normal" below `note`, "note" from `note` up to `warning`, "warning" above `warning`.
std::string health_level(double value, double note, double warning);

struct CpuTimes {
    uint64_t total = 0, idle = 0;  // jiffies of the "cpu" line; idle includes iowait
};
// Busy share of the time between two readings, percent.
double cpu_usage(const CpuTimes& a, const CpuTimes& b);

struct CpuReport {
    int64_t time = 0;
    double load1 = 0, load5 = 0, load15 = 0;
    double usage = 0;            // percent, over 0.5 s
    std::optional<double> temp;  // degrees C; none without /sys/class/thermal
    std::string level;           // of the temperature: normal, note, warning
};

struct MemReport {
    int64_t time = 0;
    uint64_t total = 0, free = 0;  // bytes; free is MemAvailable (what can be had without swapping)
    double used = 0;               // percent
    double average = 0;            // 0.3 x previous average + 0.7 x used
};

struct DiskReport {
    int64_t time = 0;
    int kind = 0;                  // 0: the whole disk space (all mounted block devices), 1: one partition
    std::string name;              // "disk", or the mount point
    uint64_t total = 0, free = 0;  // free: what users other than root can still have
    double used = 0;               // as df counts it: used / (used + free)
    uint64_t used_bytes = 0;
};

struct SysReport {
    int64_t time = 0;
    std::string hostname, os, kernel;
    uint64_t uptime = 0;  // seconds
    double load1 = 0, load5 = 0, load15 = 0;
    uint64_t disk_total = 0;
    double disk_used = 0;
    uint64_t mem_total = 0;
    double mem_used = 0;
    std::optional<double> temp;
    std::string disk_level, mem_level, cpu_level;
};

struct LoggedIn {
    std::string user, ip, tty;
    bool operator==(const LoggedIn&) const = default;
};

struct UsersReport {
    int64_t time = 0;
    int count = 0;                    // non-system users (uid from UID_MIN to UID_MAX of login.defs)
    std::vector<std::string> recent;  // the 3 most recently logged in (wtmp), newest first
    std::vector<std::string> root;    // uid 0 and members of sudo, wheel and admin
    std::vector<LoggedIn> online;     // utmp sessions whose process is alive
};

class HostHealth {
  public:
    explicit HostHealth(std::string root = "/", HealthLevels levels = {});

    // `sleep` waits the 0.5 s between the two /proc/stat readings (tests pass their own).
    CpuReport cpu(int64_t now, const std::function<void(double)>& sleep);
    MemReport mem(int64_t now);  // updates the dynamic average
    // Each mounted local block device (local_disk_mount) from <root>/proc/self/mounts.
    std::vector<DiskReport> disks(int64_t now) const;
    SysReport sys(int64_t now);
    UsersReport users(int64_t now) const;

    CpuTimes cpu_times() const;
    std::optional<double> temperature() const;  // the hottest thermal zone
    void set_levels(const HealthLevels& l) { levels_ = l; }
    const HealthLevels& levels() const { return levels_; }

  private:
    std::string path(const std::string& rel) const { return root_ + rel; }
    std::string root_;
    HealthLevels levels_;
    std::optional<double> mem_average_;
};

// The text lines of the requirements, one per record, no newline.
// Whether a /proc/self/mounts entry is a disk of this host the watch may statvfs: a block
// device, not a loop image, and of no file system type that can hang on the network or a
// user-space daemon (nfs, cifs, fuse.*, ceph, ...; nbd and rbd devices), as a statvfs on a
// hung mount blocks the host watch for good.
bool local_disk_mount(const std::string& device, const std::string& fs_type);

std::string format_cpu(const CpuReport& r);
std::string format_mem(const MemReport& r);
std::string format_disk(const DiskReport& r);
std::string format_sys(const SysReport& r);
std::string format_users(const UsersReport& r);
std::string format_proc(int64_t now, const ProcInfo& p, bool suspect);
// The same as one JSON object each.
std::string json_cpu(const CpuReport& r);
std::string json_mem(const MemReport& r);
std::string json_disk(const DiskReport& r);
std::string json_sys(const SysReport& r);
std::string json_users(const UsersReport& r);
std::string json_proc(int64_t now, const ProcInfo& p, bool suspect);

// Health samples and runaway episodes in their own tables of the history database, on their
// own connection. Samples are kept in memory and written every `batch` samples of any item,
// all in one transaction.
class HostHistory {
  public:
    static Result<std::unique_ptr<HostHistory>> open(const std::string& path, int batch = 10);
    ~HostHistory();
    HostHistory(const HostHistory&) = delete;
    HostHistory& operator=(const HostHistory&) = delete;

    Status add(const CpuReport& r);
    Status add(const MemReport& r);
    Status add(const std::vector<DiskReport>& r);
    Status add(const SysReport& r);
    Status add(const UsersReport& r);
    Status flush();  // what is pending, now
    Status prune(int64_t older_than);
    size_t pending() const { return pending_.size(); }

    // A runaway episode starts (returns its row id) and ends.
    Result<int64_t> episode_start(const ProcEvent& e);
    Status episode_end(int64_t id, const ProcEvent& e);

  private:
    HostHistory() = default;
    Status queue(std::function<Status(SqliteDb&)> row);
    SqliteDb db_;
    int batch_ = 10;
    int samples_ = 0;
    std::vector<std::function<Status(SqliteDb&)>> pending_;
};

}  // namespace pf
