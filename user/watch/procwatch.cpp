#include "peakflow/watch/procwatch.hpp"

#include "peakflow/common/escape.hpp"
#include "peakflow/common/fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace pf {

namespace {

// Small /proc files in one read(); false when the file is gone.
bool slurp(const std::string& path, std::string& out, size_t limit = 64 * 1024) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return false;
    out.clear();
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() >= limit) break;
    }
    return true;
}

uint64_t to_u64(const char* s) {
    return std::strtoull(s, nullptr, 10);
}

}  // namespace

std::string host_stamp(int64_t utc) {
    time_t t = static_cast<time_t>(utc);
    struct tm tm {};
    localtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d__%H:%M:%S", &tm);
    return buf;
}

ProcFs::ProcFs(std::string root, long clk_tck, long page_size)
    : root_(std::move(root)),
      clk_tck_(clk_tck > 0 ? clk_tck : sysconf(_SC_CLK_TCK)),
      page_size_(page_size > 0 ? page_size : sysconf(_SC_PAGESIZE)) {
    if (root_.empty() || root_.back() != '/') root_ += '/';
}

std::vector<int> ProcFs::pids() const {
    std::vector<int> out;
    Dir d = open_dir(path("proc"));
    if (!d) return out;
    while (struct dirent* e = ::readdir(d.get())) {
        const char* n = e->d_name;
        if (*n < '1' || *n > '9') continue;
        char* end = nullptr;
        long v = std::strtol(n, &end, 10);
        if (*end == 0 && v > 0) out.push_back(static_cast<int>(v));
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<ProcFs::Stat> ProcFs::stat(int pid) const {
    std::string base = path("proc/" + std::to_string(pid) + "/");
    std::string s;
    if (!slurp(base + "stat", s)) return std::nullopt;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    size_t open = s.find('('), close = s.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
    Stat st;
    st.pid = pid;
    st.comm = s.substr(open + 1, close - open - 1);
    // Fields after ')': 3 state ... 14 utime 15 stime ... 22 starttime (1-based, man 5 proc).
    std::vector<const char*> f;
    for (size_t i = close + 1; i < s.size(); ++i)
        if (s[i] == ' ' && i + 1 < s.size() && s[i + 1] != ' ') f.push_back(s.c_str() + i + 1);
    if (f.size() < 20) return std::nullopt;
    st.ticks = to_u64(f[14 - 3]) + to_u64(f[15 - 3]);
    st.starttime = to_u64(f[22 - 3]);
    std::string m;
    if (!slurp(base + "statm", m)) return std::nullopt;
    std::istringstream ms(m);
    uint64_t size = 0, resident = 0;
    ms >> size >> resident;
    st.rss_bytes = resident * static_cast<uint64_t>(page_size_);
    return st;
}

std::optional<uid_t> ProcFs::uid(int pid) const {
    std::string s;
    if (!slurp(path("proc/" + std::to_string(pid) + "/status"), s)) return std::nullopt;
    size_t at = s.find("\nUid:");
    if (at == std::string::npos) return std::nullopt;
    return static_cast<uid_t>(std::strtoul(s.c_str() + at + 5, nullptr, 10));
}

std::string ProcFs::cmdline(int pid) const {
    std::string s;
    if (!slurp(path("proc/" + std::to_string(pid) + "/cmdline"), s, 4096)) return {};
    while (!s.empty() && s.back() == '\0') s.pop_back();
    std::replace(s.begin(), s.end(), '\0', ' ');
    return s;
}

std::string ProcFs::cgroup(int pid) const {
    std::string s;
    if (!slurp(path("proc/" + std::to_string(pid) + "/cgroup"), s)) return {};
    std::istringstream in(s);
    std::string line, first;
    while (std::getline(in, line)) {
        // "hierarchy-id:controllers:path"; the v2 line is "0::path".
        size_t c2 = line.find(':', line.find(':') + 1);
        if (c2 == std::string::npos) continue;
        std::string p = line.substr(c2 + 1);
        if (line.rfind("0::", 0) == 0) return p;
        if (first.empty()) first = p;
    }
    return first;
}

std::string ProcFs::user_name(uid_t uid) const {
    std::ifstream in(path("etc/passwd"));
    std::string line;
    while (std::getline(in, line)) {
        size_t a = line.find(':'), b = line.find(':', a + 1), c = line.find(':', b + 1);
        if (c == std::string::npos) continue;
        if (line.substr(b + 1, c - b - 1) == std::to_string(uid)) return line.substr(0, a);
    }
    return std::to_string(uid);
}

uint64_t ProcFs::mem_total_bytes() const {
    std::string s;
    if (!slurp(path("proc/meminfo"), s)) return 0;
    size_t at = s.find("MemTotal:");
    if (at == std::string::npos) return 0;
    return to_u64(s.c_str() + at + 9 + std::strspn(s.c_str() + at + 9, " ")) * 1024;
}

double ProcFs::uptime() const {
    std::string s;
    if (!slurp(path("proc/uptime"), s)) return 0;
    return std::strtod(s.c_str(), nullptr);
}

int ProcFs::cpu_count() const {
    std::string s;
    if (!slurp(path("proc/stat"), s)) return 1;
    int n = 0;
    for (size_t at = s.find("\ncpu"); at != std::string::npos; at = s.find("\ncpu", at + 1))
        if (at + 4 < s.size() && s[at + 4] >= '0' && s[at + 4] <= '9') ++n;
    return std::max(n, 1);
}

void ProcWatch::set_options(ProcWatchOptions o) {
    opts_ = std::move(o);
    for (auto& [k, t] : procs_) t.allowed.reset();
}

void ProcWatch::fill_details(int pid, ProcInfo& info) const {
    if (info.user.empty()) {
        auto u = fs_.uid(pid);
        info.user = u ? fs_.user_name(*u) : "?";
    }
    if (info.cmdline.empty()) info.cmdline = fs_.cmdline(pid);
    if (info.cmdline.empty()) info.cmdline = "[" + info.name + "]";
    if (info.cgroup.empty()) info.cgroup = fs_.cgroup(pid);
}

bool ProcWatch::allowed(int pid, const ProcInfo& info) {
    (void)pid;
    for (const auto& n : opts_.allow_names)
        if (n == info.name) return true;
    for (const auto& u : opts_.allow_users)
        if (u == info.user) return true;
    if (!opts_.allow_users.empty()) {
        auto uid = fs_.uid(pid);
        for (const auto& u : opts_.allow_users)
            if (uid && u == std::to_string(*uid)) return true;
    }
    for (const auto& c : opts_.allow_cgroups) {
        if (c.empty() || info.cgroup.rfind(c, 0) != 0) continue;
        // A prefix matches whole path components only: "/system.slice/a" is not "/system.slice/ab".
        if (info.cgroup.size() == c.size() || c.back() == '/' || info.cgroup[c.size()] == '/') return true;
    }
    return false;
}

std::vector<ProcEvent> ProcWatch::sample(double mono, int64_t wall) {
    std::vector<ProcEvent> events;
    double hz = static_cast<double>(fs_.clk_tck());
    double cpus = opts_.cpu_all_cpus ? fs_.cpu_count() : 1;
    double mem_total = static_cast<double>(fs_.mem_total_bytes());
    double uptime = -1;  // read once, only when a new process needs it
    std::map<Key, Tracked> next;
    last_.clear();
    for (int pid : fs_.pids()) {
        auto st = fs_.stat(pid);
        if (!st) continue;  // exited while we listed
        Key k{pid, st->starttime};
        auto it = procs_.find(k);
        Tracked t;
        double cpu = 0;
        if (it != procs_.end()) {
            t = std::move(it->second);
            double dt = mono - t.mono;
            if (dt > 0 && st->ticks >= t.ticks) cpu = static_cast<double>(st->ticks - t.ticks) / (dt * hz) * 100.0;
        } else {
            // First seen: its average since it started, so a process that starts spinning
            // between samples is a suspect in its first sample, not one period later.
            if (uptime < 0) uptime = fs_.uptime();
            double age = uptime - static_cast<double>(st->starttime) / hz;
            if (age >= 0.2) cpu = static_cast<double>(st->ticks) / (age * hz) * 100.0;
            t.info.pid = pid;
            t.info.starttime = st->starttime;
        }
        cpu /= cpus;
        t.info.name = st->comm;
        t.info.cpu = cpu;
        t.info.mem = mem_total > 0 ? static_cast<double>(st->rss_bytes) / mem_total * 100.0 : 0;
        t.ticks = st->ticks;
        t.mono = mono;
        bool above = t.info.cpu > opts_.cpu_threshold || t.info.mem > opts_.mem_threshold;
        if (above && !t.allowed) {
            fill_details(pid, t.info);
            t.allowed = allowed(pid, t.info);
        }
        if (above && *t.allowed) above = false;
        if (above) {
            if (!t.above) {
                t.above_since = wall;
                t.peak_cpu = t.peak_mem = 0;
            }
            t.peak_cpu = std::max(t.peak_cpu, t.info.cpu);
            t.peak_mem = std::max(t.peak_mem, t.info.mem);
            if (t.above && !t.runaway) {
                // The second sample in a row above: a runaway, reported once. Details are read
                // again: the process may have exec'd since (same pid and start time).
                t.runaway = true;
                t.info.cmdline.clear();
                t.info.user.clear();
                t.info.cgroup.clear();
                fill_details(pid, t.info);
                events.push_back(
                    ProcEvent{ProcEvent::Kind::Runaway, t.info, t.above_since, wall, {}, t.peak_cpu, t.peak_mem});
            }
        } else if (t.runaway) {
            t.runaway = false;
            events.push_back(ProcEvent{ProcEvent::Kind::Ended, t.info, t.above_since, wall, "below the thresholds",
                                       t.peak_cpu, t.peak_mem});
        }
        t.above = above;
        last_.push_back(t.info);
        next.emplace(k, std::move(t));
        if (it != procs_.end()) procs_.erase(it);
    }
    // What is left exited (or its pid now belongs to another process).
    for (auto& [k, t] : procs_)
        if (t.runaway)
            events.push_back(
                ProcEvent{ProcEvent::Kind::Ended, t.info, t.above_since, wall, "exited", t.peak_cpu, t.peak_mem});
    procs_ = std::move(next);
    std::stable_sort(last_.begin(), last_.end(), [](const ProcInfo& a, const ProcInfo& b) { return a.cpu > b.cpu; });
    return events;
}

namespace {

std::string reason_zh(const std::string& r) {
    if (r == "exited") return "已退出";
    if (r == "below the thresholds") return "已低于阈值";
    return r;
}

}  // namespace

// The name, command line, user and cgroup are the process owner's choice: the title (plain
// text everywhere: chat titles, the email Subject, the log) shows control characters as
// escapes, the text (markdown) has them as literal text.
std::string proc_event_title(const ProcEvent& e, Language lang) {
    const std::string name = visible_controls(e.proc.name);
    if (lang == Language::Zh) {
        if (e.kind == ProcEvent::Kind::Runaway)
            return fmt::format("失控进程 {}（pid {}）：CPU {:.1f}% 内存 {:.1f}%", name, e.proc.pid, e.proc.cpu,
                               e.proc.mem);
        return fmt::format("失控进程 {}（pid {}）已结束：{}", name, e.proc.pid, reason_zh(e.reason));
    }
    if (e.kind == ProcEvent::Kind::Runaway)
        return fmt::format("runaway process {} (pid {}): CPU {:.1f}% memory {:.1f}%", name, e.proc.pid, e.proc.cpu,
                           e.proc.mem);
    return fmt::format("runaway process {} (pid {}) ended: {}", name, e.proc.pid, e.reason);
}

std::string proc_event_text(const ProcEvent& e, Language lang) {
    const std::string name = md_text(e.proc.name), cmd = md_code(e.proc.cmdline), user = md_text(e.proc.user),
                      cgroup = md_text(e.proc.cgroup);
    if (lang == Language::Zh) {
        std::string s = fmt::format(
            "- pid：{}\n- 名称：{}\n- 命令：{}\n- 用户：{}\n- CPU：{:.1f}%\n- 内存：{:.1f}%\n- 开始于：{}\n",
            e.proc.pid, name, cmd, user, e.proc.cpu, e.proc.mem, host_stamp(e.since));
        if (!e.proc.cgroup.empty()) s += "- cgroup：" + cgroup + "\n";
        if (e.kind == ProcEvent::Kind::Ended)
            s += fmt::format("- 结束：{}（{}），CPU 峰值 {:.1f}% 内存峰值 {:.1f}%\n", host_stamp(e.time),
                             reason_zh(e.reason), e.peak_cpu, e.peak_mem);
        return s;
    }
    std::string s = fmt::format(
        "- pid: {}\n- name: {}\n- command: {}\n- user: {}\n- CPU: {:.1f}%\n- memory: {:.1f}%\n- since: {}\n",
        e.proc.pid, name, cmd, user, e.proc.cpu, e.proc.mem, host_stamp(e.since));
    if (!e.proc.cgroup.empty()) s += "- cgroup: " + cgroup + "\n";
    if (e.kind == ProcEvent::Kind::Ended)
        s += fmt::format("- ended: {} ({}), peak CPU {:.1f}% memory {:.1f}%\n", host_stamp(e.time), e.reason,
                         e.peak_cpu, e.peak_mem);
    return s;
}

}  // namespace pf
