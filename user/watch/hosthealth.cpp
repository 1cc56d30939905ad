#include "peakflow/watch/hosthealth.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <utmp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "peakflow/common/fd.hpp"
#include "peakflow/common/text_file.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string l;
    std::getline(in, l);
    return l;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, sep)) out.push_back(cur);
    if (!s.empty() && s.back() == sep) out.emplace_back();
    return out;
}

uint64_t meminfo_kb(const std::string& text, const char* key) {
    size_t at = text.find(std::string("\n") + key);
    if (text.rfind(key, 0) == 0)
        at = 0;
    else if (at != std::string::npos)
        ++at;
    if (at == std::string::npos) return 0;
    return std::strtoull(text.c_str() + at + std::strlen(key), nullptr, 10);
}

// "\040" in /proc/self/mounts is a space.
std::string unescape_mount(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() + 0 && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string fixed(const char* field, size_t size) {
    return std::string(field, strnlen(field, size));
}

std::string mib(uint64_t bytes) {
    return std::to_string(bytes >> 20) + "M";
}

std::string pct(double v) {
    return fmt::format("{:.1f}%", v);
}

std::string temp_text(const std::optional<double>& t) {
    return t ? fmt::format("{:.1f}°C", *t) : "-";
}

std::string list_text(const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    return s + "]";
}

std::string no_spaces(std::string s) {
    std::replace(s.begin(), s.end(), ' ', '_');
    return s.empty() ? "-" : s;
}

struct Passwd {
    std::string name;
    long uid = -1, gid = -1;
};

std::vector<Passwd> read_passwd(const std::string& path) {
    std::vector<Passwd> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto f = split(line, ':');
        if (f.size() < 4 || f[0].empty() || f[0][0] == '#') continue;
        Passwd p;
        p.name = f[0];
        p.uid = std::strtol(f[2].c_str(), nullptr, 10);
        p.gid = std::strtol(f[3].c_str(), nullptr, 10);
        out.push_back(p);
    }
    return out;
}

double used_pct(uint64_t used, uint64_t avail) {
    return used + avail ? static_cast<double>(used) / static_cast<double>(used + avail) * 100.0 : 0;
}

}  // namespace

std::string health_level(double value, double note, double warning) {
    if (value > warning) return "warning";
    if (value >= note) return "note";
    return "normal";
}

double cpu_usage(const CpuTimes& a, const CpuTimes& b) {
    if (b.total <= a.total) return 0;
    double total = static_cast<double>(b.total - a.total);
    double idle = b.idle >= a.idle ? static_cast<double>(b.idle - a.idle) : 0;
    return std::clamp((total - idle) / total * 100.0, 0.0, 100.0);
}

HostHealth::HostHealth(std::string root, HealthLevels levels) : root_(std::move(root)), levels_(levels) {
    if (root_.empty() || root_.back() != '/') root_ += '/';
}

CpuTimes HostHealth::cpu_times() const {
    std::string l = first_line(path("proc/stat"));
    CpuTimes t;
    std::istringstream in(l);
    std::string name;
    in >> name;
    if (name != "cpu") return t;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    uint64_t v[8] = {};
    for (auto& x : v) in >> x;
    for (auto x : v) t.total += x;
    t.idle = v[3] + v[4];
    return t;
}

std::optional<double> HostHealth::temperature() const {
    std::optional<double> best;
    Dir d = open_dir(path("sys/class/thermal"));
    if (!d) return best;
    while (struct dirent* e = ::readdir(d.get())) {
        if (std::strncmp(e->d_name, "thermal_zone", 12) != 0) continue;
        std::string v = first_line(path("sys/class/thermal/") + e->d_name + "/temp");
        if (v.empty()) continue;
        double c = std::strtod(v.c_str(), nullptr) / 1000.0;
        if (c <= -50 || c >= 200) continue;  // a sensor that reports nonsense
        if (!best || c > *best) best = c;
    }
    return best;
}

CpuReport HostHealth::cpu(int64_t now, const std::function<void(double)>& sleep) {
    CpuReport r;
    r.time = now;
    std::istringstream la(first_line(path("proc/loadavg")));
    la >> r.load1 >> r.load5 >> r.load15;
    CpuTimes a = cpu_times();
    sleep(0.5);
    r.usage = cpu_usage(a, cpu_times());
    r.temp = temperature();
    r.level = r.temp ? health_level(*r.temp, levels_.temp_note, levels_.temp_warning) : "-";
    return r;
}

MemReport HostHealth::mem(int64_t now) {
    MemReport r;
    r.time = now;
    std::string m = read_text_file(path("proc/meminfo"));
    r.total = meminfo_kb(m, "MemTotal:") * 1024;
    uint64_t avail = meminfo_kb(m, "MemAvailable:");
    if (m.find("MemAvailable:") == std::string::npos)  // kernels before 3.14
        avail = meminfo_kb(m, "MemFree:") + meminfo_kb(m, "Buffers:") + meminfo_kb(m, "Cached:");
    r.free = std::min(avail * 1024, r.total);
    r.used = r.total ? static_cast<double>(r.total - r.free) / static_cast<double>(r.total) * 100.0 : 0;
    r.average = mem_average_ ? 0.3 * *mem_average_ + 0.7 * r.used : r.used;
    mem_average_ = r.average;
    return r;
}

bool local_disk_mount(const std::string& device, const std::string& fs_type) {
    // Block devices only (not tmpfs, proc, overlay).
    if (device.rfind("/dev/", 0) != 0) return false;
    for (const char* p : {"/dev/loop", "/dev/nbd", "/dev/rbd"})
        if (device.rfind(p, 0) == 0) return false;
    // fuseblk: a disk read through a user-space daemon (ntfs-3g, exfat-fuse).
    if (fs_type == "fuse" || fs_type == "fuseblk" || fs_type.rfind("fuse.", 0) == 0) return false;
    static const std::set<std::string> kRemote = {"nfs",   "nfs4", "cifs",      "smb3",   "smbfs",    "ncpfs",
                                                  "9p",    "ceph", "glusterfs", "lustre", "gpfs",     "afs",
                                                  "ocfs2", "gfs2", "davfs",     "sshfs",  "virtiofs", "beegfs"};
    return !kRemote.count(fs_type);
}

std::vector<DiskReport> HostHealth::disks(int64_t now) const {
    std::vector<DiskReport> parts;
    std::set<std::string> seen;
    std::istringstream in(read_text_file(path("proc/self/mounts")));
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string dev, mnt, type;
        ls >> dev >> mnt >> type;
        // A device mounted twice counts once.
        if (!local_disk_mount(dev, type) || !seen.insert(dev).second) continue;
        mnt = unescape_mount(mnt);
        struct statvfs sv {};
        if (::statvfs((root_ + (mnt.size() > 1 ? mnt.substr(1) : "")).c_str(), &sv) != 0) continue;
        DiskReport d;
        d.time = now;
        d.kind = 1;
        d.name = mnt;
        d.total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
        d.free = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
        // As df counts it: used over what users can have (used + available to non-root).
        d.used_bytes = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
        d.used = used_pct(d.used_bytes, d.free);
        parts.push_back(d);
    }
    DiskReport all;
    all.time = now;
    all.kind = 0;
    all.name = "disk";
    for (const auto& p : parts) {
        all.total += p.total;
        all.free += p.free;
        all.used_bytes += p.used_bytes;
    }
    all.used = used_pct(all.used_bytes, all.free);
    std::vector<DiskReport> out{all};
    out.insert(out.end(), parts.begin(), parts.end());
    return out;
}

SysReport HostHealth::sys(int64_t now) {
    SysReport r;
    r.time = now;
    r.hostname = first_line(path("proc/sys/kernel/hostname"));
    r.kernel = first_line(path("proc/sys/kernel/osrelease"));
    std::istringstream os(read_text_file(path("etc/os-release")));
    std::string l;
    while (std::getline(os, l))
        if (l.rfind("PRETTY_NAME=", 0) == 0) {
            r.os = l.substr(12);
            if (r.os.size() >= 2 && (r.os.front() == '"' || r.os.front() == '\''))
                r.os = r.os.substr(1, r.os.size() - 2);
        }
    r.uptime = static_cast<uint64_t>(std::strtod(first_line(path("proc/uptime")).c_str(), nullptr));
    std::istringstream la(first_line(path("proc/loadavg")));
    la >> r.load1 >> r.load5 >> r.load15;
    auto d = disks(now);
    r.disk_total = d[0].total;
    r.disk_used = d[0].used;
    std::string mi = read_text_file(path("proc/meminfo"));
    r.mem_total = meminfo_kb(mi, "MemTotal:") * 1024;
    uint64_t avail = std::min(meminfo_kb(mi, "MemAvailable:") * 1024, r.mem_total);
    r.mem_used = r.mem_total ? static_cast<double>(r.mem_total - avail) / static_cast<double>(r.mem_total) * 100.0 : 0;
    r.temp = temperature();
    double worst_disk = 0;
    for (const auto& x : d) worst_disk = std::max(worst_disk, x.used);
    r.disk_level = health_level(worst_disk, levels_.disk_note, levels_.disk_warning);
    r.mem_level = health_level(r.mem_used, levels_.mem_note, levels_.mem_warning);
    r.cpu_level = r.temp ? health_level(*r.temp, levels_.temp_note, levels_.temp_warning) : "-";
    return r;
}

UsersReport HostHealth::users(int64_t now) const {
    UsersReport r;
    r.time = now;
    long uid_min = 1000, uid_max = 60000;
    {
        std::istringstream in(read_text_file(path("etc/login.defs")));
        std::string l;
        while (std::getline(in, l)) {
            std::istringstream ls(l);
            std::string k;
            long v = 0;
            if (!(ls >> k >> v)) continue;
            if (k == "UID_MIN") uid_min = v;
            if (k == "UID_MAX") uid_max = v;
        }
    }
    auto pw = read_passwd(path("etc/passwd"));
    std::set<std::string> root_set;
    auto add_root = [&](const std::string& n) {
        if (root_set.insert(n).second) r.root.push_back(n);
    };
    for (const auto& p : pw) {
        if (p.uid >= uid_min && p.uid <= uid_max) ++r.count;
        if (p.uid == 0) add_root(p.name);
    }
    std::ifstream gin(path("etc/group"));
    std::string gl;
    while (std::getline(gin, gl)) {
        auto f = split(gl, ':');
        if (f.size() < 4 || (f[0] != "sudo" && f[0] != "wheel" && f[0] != "admin")) continue;
        long gid = std::strtol(f[2].c_str(), nullptr, 10);
        for (const auto& p : pw)
            if (p.gid == gid) add_root(p.name);
        for (const auto& m : split(f[3], ','))
            if (!m.empty()) add_root(m);
    }
    auto read_utmp = [&](const std::string& file) {
        std::vector<struct utmp> v;
        std::ifstream in(file, std::ios::binary);
        struct utmp u {};
        while (in.read(reinterpret_cast<char*>(&u), sizeof u)) v.push_back(u);
        return v;
    };
    // wtmp, newest last: the 3 users who logged in most recently, each once.
    auto wtmp = read_utmp(path("var/log/wtmp"));
    for (auto it = wtmp.rbegin(); it != wtmp.rend() && r.recent.size() < 3; ++it) {
        if (it->ut_type != USER_PROCESS) continue;
        std::string u = fixed(it->ut_user, sizeof it->ut_user);
        if (!u.empty() && std::find(r.recent.begin(), r.recent.end(), u) == r.recent.end()) r.recent.push_back(u);
    }
    for (const auto& u : read_utmp(path("run/utmp"))) {
        if (u.ut_type != USER_PROCESS) continue;
        // A session whose process is gone left a stale record (a crashed sshd).
        if (u.ut_pid <= 0 || ::access(path("proc/" + std::to_string(u.ut_pid)).c_str(), F_OK) != 0) continue;
        LoggedIn li;
        li.user = fixed(u.ut_user, sizeof u.ut_user);
        li.tty = fixed(u.ut_line, sizeof u.ut_line);
        const auto* a = u.ut_addr_v6;
        char buf[64] = {};
        if (a[1] || a[2] || a[3])
            inet_ntop(AF_INET6, a, buf, sizeof buf);
        else if (a[0])
            inet_ntop(AF_INET, a, buf, sizeof buf);
        li.ip = buf[0] ? buf : fixed(u.ut_host, sizeof u.ut_host);
        if (li.ip.empty()) li.ip = "local";
        r.online.push_back(li);
    }
    return r;
}

std::string format_cpu(const CpuReport& r) {
    return fmt::format("{} {:.2f} {:.2f} {:.2f} {} {} {}", host_stamp(r.time), r.load1, r.load5, r.load15, pct(r.usage),
                       temp_text(r.temp), r.level);
}

std::string format_mem(const MemReport& r) {
    return fmt::format("{} {} {} {} {}", host_stamp(r.time), mib(r.total), mib(r.free), pct(r.used), pct(r.average));
}

std::string format_disk(const DiskReport& r) {
    return fmt::format("{} {} {} {} {} {}", host_stamp(r.time), r.kind, no_spaces(r.name), mib(r.total), mib(r.free),
                       pct(r.used));
}

std::string format_sys(const SysReport& r) {
    return fmt::format("{} {} {} {} {}d{:02}h{:02}m {:.2f},{:.2f},{:.2f} {} {} {} {} {} {} {} {}", host_stamp(r.time),
                       no_spaces(r.hostname), no_spaces(r.os), no_spaces(r.kernel), r.uptime / 86400,
                       r.uptime / 3600 % 24, r.uptime / 60 % 60, r.load1, r.load5, r.load15, mib(r.disk_total),
                       pct(r.disk_used), mib(r.mem_total), pct(r.mem_used), temp_text(r.temp), r.disk_level,
                       r.mem_level, r.cpu_level);
}

std::string format_users(const UsersReport& r) {
    std::vector<std::string> online;
    for (const auto& o : r.online) online.push_back(o.user + "_" + o.ip + "_" + o.tty);
    return fmt::format("{} {} {} {} {}", host_stamp(r.time), r.count, list_text(r.recent), list_text(r.root),
                       list_text(online));
}

std::string format_proc(int64_t now, const ProcInfo& p, bool suspect) {
    return fmt::format("{} {} {} {} {} {} {}", host_stamp(now), p.pid, no_spaces(p.name), no_spaces(p.user), pct(p.cpu),
                       pct(p.mem), suspect ? "suspect" : "normal");
}

namespace {
double round1(double v) {
    return std::round(v * 10.0) / 10.0;
}
Json opt_temp(const std::optional<double>& t) {
    return t ? Json(round1(*t)) : Json(nullptr);
}
}  // namespace

std::string json_cpu(const CpuReport& r) {
    Json j{{"time", r.time},     {"load1", r.load1},         {"load5", r.load5},
           {"load15", r.load15}, {"usage", round1(r.usage)}, {"temperature", opt_temp(r.temp)},
           {"level", r.level}};
    return j.dump();
}

std::string json_mem(const MemReport& r) {
    Json j{{"time", r.time},
           {"total_bytes", r.total},
           {"free_bytes", r.free},
           {"used", round1(r.used)},
           {"average", round1(r.average)}};
    return j.dump();
}

std::string json_disk(const DiskReport& r) {
    Json j{{"time", r.time},       {"kind", r.kind == 0 ? "disk" : "partition"},
           {"name", r.name},       {"total_bytes", r.total},
           {"free_bytes", r.free}, {"used", round1(r.used)}};
    return j.dump();
}

std::string json_sys(const SysReport& r) {
    Json j{{"time", r.time},
           {"hostname", r.hostname},
           {"os", r.os},
           {"kernel", r.kernel},
           {"uptime_seconds", r.uptime},
           {"load", {r.load1, r.load5, r.load15}},
           {"disk_total_bytes", r.disk_total},
           {"disk_used", round1(r.disk_used)},
           {"mem_total_bytes", r.mem_total},
           {"mem_used", round1(r.mem_used)},
           {"temperature", opt_temp(r.temp)},
           {"disk_level", r.disk_level},
           {"mem_level", r.mem_level},
           {"cpu_level", r.cpu_level}};
    return j.dump();
}

std::string json_users(const UsersReport& r) {
    Json online = Json::array();
    for (const auto& o : r.online) online.push_back({{"user", o.user}, {"ip", o.ip}, {"tty", o.tty}});
    Json j{{"time", r.time}, {"users", r.count}, {"recent", r.recent}, {"root", r.root}, {"online", online}};
    return j.dump();
}

std::string json_proc(int64_t now, const ProcInfo& p, bool suspect) {
    Json j{{"time", now},          {"pid", p.pid},         {"name", p.name},       {"user", p.user},
           {"command", p.cmdline}, {"cpu", round1(p.cpu)}, {"mem", round1(p.mem)}, {"suspect", suspect}};
    return j.dump();
}

// ---- SQLite ----

namespace {

// Binds each value in order (integers, double, string, optional<double> as NULL) and steps once.
template <typename... A>
Status run(SqliteDb& db, const char* sql, const A&... args) {
    auto st = db.prepare(sql);
    if (!st) return st.error();
    int i = 0;
    (st->bind(++i, args), ...);
    int rc = st->step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_error(db, "host history write");
    return Ok{};
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    return s;
}

constexpr SchemaPart kSchema[] = {{"host_history", 1, R"SQL(
CREATE TABLE IF NOT EXISTS host_cpu(time INTEGER NOT NULL, load1 REAL, load5 REAL, load15 REAL, usage REAL,
  temperature REAL, level TEXT);
CREATE INDEX IF NOT EXISTS host_cpu_time ON host_cpu(time);
CREATE TABLE IF NOT EXISTS host_mem(time INTEGER NOT NULL, total INTEGER, free INTEGER, used REAL, average REAL);
CREATE INDEX IF NOT EXISTS host_mem_time ON host_mem(time);
CREATE TABLE IF NOT EXISTS host_disk(time INTEGER NOT NULL, kind INTEGER, name TEXT, total INTEGER, free INTEGER,
  used REAL);
CREATE INDEX IF NOT EXISTS host_disk_time ON host_disk(time);
CREATE TABLE IF NOT EXISTS host_sys(time INTEGER NOT NULL, hostname TEXT, os TEXT, kernel TEXT, uptime INTEGER,
  load1 REAL, load5 REAL, load15 REAL, disk_total INTEGER, disk_used REAL, mem_total INTEGER, mem_used REAL,
  temperature REAL, disk_level TEXT, mem_level TEXT, cpu_level TEXT);
CREATE INDEX IF NOT EXISTS host_sys_time ON host_sys(time);
CREATE TABLE IF NOT EXISTS host_users(time INTEGER NOT NULL, users INTEGER, recent TEXT, root TEXT, online TEXT);
CREATE INDEX IF NOT EXISTS host_users_time ON host_users(time);
CREATE TABLE IF NOT EXISTS proc_episodes(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, starttime INTEGER NOT NULL,
  name TEXT, cmdline TEXT, user TEXT, cgroup TEXT, since INTEGER NOT NULL, detected INTEGER NOT NULL,
  cpu REAL, mem REAL, ended INTEGER, end_reason TEXT, peak_cpu REAL, peak_mem REAL);
CREATE INDEX IF NOT EXISTS proc_episodes_since ON proc_episodes(since);
)SQL"}};

}  // namespace

Result<std::unique_ptr<HostHistory>> HostHistory::open(const std::string& path, int batch) {
    std::unique_ptr<HostHistory> h(new HostHistory());
    h->batch_ = std::max(batch, 1);
    SqliteOptions o;
    o.mode = SqliteMode::Create;
    o.wal = true;
    o.synchronous = SqliteSync::Normal;
    o.open_context = "cannot open database " + path + " for the host watch";
    o.error_context = "host history";
    auto db = SqliteDb::open(path, o);
    if (!db) return db.error();
    h->db_ = std::move(*db);
    if (auto s = apply_schema(h->db_, kSchema); !s) return s.error();
    return h;
}

HostHistory::~HostHistory() = default;

Status HostHistory::queue(std::function<Status(SqliteDb&)> row) {
    pending_.push_back(std::move(row));
    return Ok{};
}

Status HostHistory::flush() {
    samples_ = 0;
    if (pending_.empty()) return Ok{};
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    for (auto& row : pending_)
        if (auto s = row(db_); !s) {
            pending_.clear();  // a row SQLite refuses would block every later batch
            return s;          // rolled back with the transaction
        }
    pending_.clear();
    return tx->commit();
}

Status HostHistory::prune(int64_t older_than) {
    static const char* tables[] = {"host_cpu", "host_mem", "host_disk", "host_sys", "host_users"};
    for (const char* t : tables)
        if (auto s = run(db_, fmt::format("DELETE FROM {} WHERE time < ?", t).c_str(), older_than); !s) return s;
    return run(db_, "DELETE FROM proc_episodes WHERE ended IS NOT NULL AND ended < ?", older_than);
}

#define PF_HOST_SAMPLE_DONE()                 \
    if (++samples_ >= batch_) return flush(); \
    return Ok {}

Status HostHistory::add(const CpuReport& r) {
    (void)queue([r](SqliteDb& db) {
        return run(db, "INSERT INTO host_cpu VALUES(?,?,?,?,?,?,?)", r.time, r.load1, r.load5, r.load15, r.usage,
                   r.temp, r.level);
    });
    PF_HOST_SAMPLE_DONE();
}

Status HostHistory::add(const MemReport& r) {
    (void)queue([r](SqliteDb& db) {
        return run(db, "INSERT INTO host_mem VALUES(?,?,?,?,?)", r.time, r.total, r.free, r.used, r.average);
    });
    PF_HOST_SAMPLE_DONE();
}

Status HostHistory::add(const std::vector<DiskReport>& v) {
    for (const auto& r : v)
        (void)queue([r](SqliteDb& db) {
            return run(db, "INSERT INTO host_disk VALUES(?,?,?,?,?,?)", r.time, r.kind, r.name, r.total, r.free,
                       r.used);
        });
    PF_HOST_SAMPLE_DONE();
}

Status HostHistory::add(const SysReport& r) {
    (void)queue([r](SqliteDb& db) {
        return run(db, "INSERT INTO host_sys VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", r.time, r.hostname, r.os,
                   r.kernel, r.uptime, r.load1, r.load5, r.load15, r.disk_total, r.disk_used, r.mem_total, r.mem_used,
                   r.temp, r.disk_level, r.mem_level, r.cpu_level);
    });
    PF_HOST_SAMPLE_DONE();
}

Status HostHistory::add(const UsersReport& r) {
    std::vector<std::string> online;
    for (const auto& o : r.online) online.push_back(o.user + "_" + o.ip + "_" + o.tty);
    (void)queue([r, on = join(online)](SqliteDb& db) {
        return run(db, "INSERT INTO host_users VALUES(?,?,?,?,?)", r.time, r.count, join(r.recent), join(r.root), on);
    });
    PF_HOST_SAMPLE_DONE();
}

#undef PF_HOST_SAMPLE_DONE

Result<int64_t> HostHistory::episode_start(const ProcEvent& e) {
    const auto& p = e.proc;
    if (auto s = run(db_,
                     "INSERT INTO proc_episodes(pid,starttime,name,cmdline,user,cgroup,since,detected,cpu,mem,"
                     "peak_cpu,peak_mem) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                     p.pid, static_cast<int64_t>(p.starttime), p.name, p.cmdline, p.user, p.cgroup, e.since, e.time,
                     p.cpu, p.mem, e.peak_cpu, e.peak_mem);
        !s)
        return s.error();
    return db_.last_insert_rowid();
}

Status HostHistory::episode_end(int64_t id, const ProcEvent& e) {
    return run(db_, "UPDATE proc_episodes SET ended=?, end_reason=?, peak_cpu=?, peak_mem=? WHERE id=?", e.time,
               e.reason, e.peak_cpu, e.peak_mem, id);
}

}  // namespace pf
