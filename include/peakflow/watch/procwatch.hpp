#pragma once
// Runaway process watch: samples /proc/[pid]/stat, statm and status; a process above the
// CPU or memory threshold is a suspect, and still above in the next sample a runaway (one
// alert per episode, a notice when it ends). Processes are keyed by pid and start time, so
// a reused pid is a new process. Every path is under an injectable root, so tests run
// against a fake /proc tree.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/push/push_config.hpp"

namespace pf {

// Reads the files of one /proc tree (root "/" on a live host).
class ProcFs {
  public:
    explicit ProcFs(std::string root = "/", long clk_tck = 0, long page_size = 0);

    struct Stat {
        int pid = 0;
        std::string comm;        // the name in parentheses, up to 15 characters
        uint64_t ticks = 0;      // utime + stime, in clock ticks
        uint64_t starttime = 0;  // ticks after boot
        uint64_t rss_bytes = 0;  // resident pages (statm) x page size
    };

    std::vector<int> pids() const;
    // stat and statm of one process; nothing when it is gone (or unreadable).
    std::optional<Stat> stat(int pid) const;
    std::optional<uid_t> uid(int pid) const;  // real uid from status
    std::string cmdline(int pid) const;       // NULs as spaces; empty for kernel threads
    std::string cgroup(int pid) const;        // the v2 path ("0::/system.slice/x.service"), else the first
    std::string user_name(uid_t uid) const;   // from etc/passwd; the number when unknown
    uint64_t mem_total_bytes() const;         // MemTotal of proc/meminfo
    double uptime() const;                    // proc/uptime, seconds
    int cpu_count() const;                    // cpuN lines of proc/stat
    long clk_tck() const { return clk_tck_; }
    const std::string& root() const { return root_; }
    std::string path(const std::string& rel) const { return root_ + rel; }

  private:
    std::string root_;  // ends with '/'
    long clk_tck_;
    long page_size_;
};

struct ProcWatchOptions {
    double cpu_threshold = 50;               // percent
    double mem_threshold = 50;               // percent of MemTotal (resident memory)
    bool cpu_all_cpus = false;               // false: percent of one CPU, as top counts
    std::vector<std::string> allow_names;    // comm, exactly
    std::vector<std::string> allow_users;    // user name or uid
    std::vector<std::string> allow_cgroups;  // cgroup path prefix, e.g. "/system.slice/backup.service"
    bool operator==(const ProcWatchOptions&) const = default;
};

struct ProcInfo {
    int pid = 0;
    uint64_t starttime = 0;
    std::string name;
    std::string cmdline;
    std::string user;
    std::string cgroup;
    double cpu = 0;  // percent, as the options count it
    double mem = 0;  // percent of MemTotal
};

struct ProcEvent {
    enum class Kind { Runaway, Ended } kind = Kind::Runaway;
    ProcInfo proc;       // figures of the sample that decided it (the last seen for an exit)
    int64_t since = 0;   // UTC seconds of the first sample above the threshold
    int64_t time = 0;    // UTC seconds of this sample
    std::string reason;  // Ended: "below the thresholds" or "exited"
    double peak_cpu = 0, peak_mem = 0;
    std::string key() const { return "runaway:" + std::to_string(proc.pid) + ":" + std::to_string(proc.starttime); }
};

class ProcWatch {
  public:
    ProcWatch(ProcFs fs, ProcWatchOptions opts) : fs_(std::move(fs)), opts_(std::move(opts)) {}

    // One sample of every process. `mono` is a monotonic time in seconds (the CPU% window),
    // `wall` the UTC seconds written into events. Returns the runaways found and the
    // episodes that ended with this sample.
    std::vector<ProcEvent> sample(double mono, int64_t wall);

    // The processes of the last sample with their figures, highest CPU first (figures of a
    // process seen for the first time are counted since it started).
    const std::vector<ProcInfo>& last() const { return last_; }
    void set_options(ProcWatchOptions o);
    const ProcFs& fs() const { return fs_; }
    size_t tracked() const { return procs_.size(); }

  private:
    struct Key {
        int pid;
        uint64_t start;
        auto operator<=>(const Key&) const = default;
    };
    struct Tracked {
        uint64_t ticks = 0;
        double mono = 0;
        bool above = false;  // above a threshold in the last sample
        int64_t above_since = 0;
        bool runaway = false;
        std::optional<bool> allowed;  // decided once per process
        ProcInfo info;
        double peak_cpu = 0, peak_mem = 0;
    };
    bool allowed(int pid, const ProcInfo& info);
    void fill_details(int pid, ProcInfo& info) const;

    ProcFs fs_;
    ProcWatchOptions opts_;
    std::map<Key, Tracked> procs_;
    std::vector<ProcInfo> last_;
};

// "2026-11-21__15:00:28": local time as the monitoring requirements print it.
std::string host_stamp(int64_t utc);

// Alert text of an event (markdown body) and its title, in push.language.
std::string proc_event_title(const ProcEvent& e, Language lang = Language::En);
std::string proc_event_text(const ProcEvent& e, Language lang = Language::En);

}  // namespace pf
