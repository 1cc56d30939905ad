// The host watch service: the runaway process watch and host health on one thread of the
// daemon, their samples and episodes in the history database, their alerts through the sink.

#include "peakflow/watch/host_watch.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "peakflow/common/guarded.hpp"
#include "peakflow/service/service.hpp"
#include "peakflow/watch/hosthealth.hpp"

namespace pf {

ProcWatchOptions proc_options(const HostWatchConfig& c) {
    ProcWatchOptions o;
    o.cpu_threshold = c.cpu_threshold;
    o.mem_threshold = c.mem_threshold;
    o.cpu_all_cpus = c.cpu_all_cpus;
    o.allow_names = c.allow_names;
    o.allow_users = c.allow_users;
    o.allow_cgroups = c.allow_cgroups;
    return o;
}

Status run_host(const std::string& item, bool json, const HostWatchConfig& cfg, const std::string& root, int64_t now,
                const std::function<void(double)>& sleep, std::ostream& out) {
    static const char* items[] = {"cpu", "mem", "disk", "sys", "users", "procs"};
    bool known = item.empty();
    for (const char* i : items) known = known || item == i;
    if (!known) return Error("unknown item '" + item + "': expected cpu, mem, disk, sys, users or procs");
    HostHealth h(root, cfg.levels);
    auto want = [&](const char* i) { return item.empty() || item == i; };
    if (want("cpu")) {
        auto r = h.cpu(now, sleep);
        out << (json ? json_cpu(r) : format_cpu(r)) << "\n";
    }
    if (want("mem")) {
        auto r = h.mem(now);
        out << (json ? json_mem(r) : format_mem(r)) << "\n";
    }
    if (want("disk"))
        for (const auto& r : h.disks(now)) out << (json ? json_disk(r) : format_disk(r)) << "\n";
    if (want("sys")) {
        auto r = h.sys(now);
        out << (json ? json_sys(r) : format_sys(r)) << "\n";
    }
    if (want("users")) {
        auto r = h.users(now);
        out << (json ? json_users(r) : format_users(r)) << "\n";
    }
    if (want("procs")) {
        // Two samples 1 s apart: the busiest five processes and every suspect.
        ProcWatch w(ProcFs(root), proc_options(cfg));
        auto t0 = std::chrono::steady_clock::now();
        auto mono = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
        (void)w.sample(mono(), now);
        sleep(1.0);
        (void)w.sample(mono(), now);
        int shown = 0;
        for (auto p : w.last()) {
            bool suspect = p.cpu > cfg.cpu_threshold || p.mem > cfg.mem_threshold;
            if (shown >= 5 && !suspect) continue;
            ++shown;
            if (p.user.empty()) {
                auto uid = w.fs().uid(p.pid);
                p.user = uid ? w.fs().user_name(*uid) : "?";
            }
            if (p.cmdline.empty()) p.cmdline = w.fs().cmdline(p.pid);
            out << (json ? json_proc(now, p, suspect) : format_proc(now, p, suspect)) << "\n";
        }
    }
    return Ok{};
}

std::string health_what(const std::string& item, const std::string& disk, double value, double warning, Language lang) {
    const bool zh = lang == Language::Zh;
    if (item == "cpu_temperature")
        return zh ? fmt::format("CPU 温度 {:.1f} °C（告警线 {} °C）", value, warning)
                  : fmt::format("CPU temperature {:.1f} °C (warning above {} °C)", value, warning);
    if (item == "memory")
        return zh ? fmt::format("内存已用 {:.1f}%（告警线 {}%）", value, warning)
                  : fmt::format("memory used {:.1f}% (warning above {}%)", value, warning);
    return zh ? fmt::format("磁盘 {} 已用 {:.1f}%（告警线 {}%）", disk, value, warning)
              : fmt::format("disk {} used {:.1f}% (warning above {}%)", disk, value, warning);
}

std::string health_title(bool warning, const std::string& what, Language lang) {
    if (lang == Language::Zh) return (warning ? "警告：" : "恢复正常：") + what;
    return (warning ? "warning: " : "back to normal: ") + what;
}

namespace {

using Clock = std::chrono::steady_clock;

class HostWatchService : public Service {
  public:
    HostWatchService(const HostWatchConfig& cfg, std::unique_ptr<HostHistory> hist, AlertSink* alerts,
                     std::function<int64_t()> clock, std::string root, Language lang)
        : lang_(lang),
          cfg_(cfg),
          hist_(std::move(hist)),
          alerts_(alerts),
          clock_(std::move(clock)),
          watch_(ProcFs(root), proc_options(cfg)),
          health_(root, cfg.levels) {
        thread_ = std::thread([this] { run_guarded("host watch", [this] { run(); }); });
    }
    ~HostWatchService() override { stop(); }

    std::string name() const override { return "host watch"; }

    void stats(DaemonStats& s) const override {
        std::lock_guard lk(figures_mu_);
        s.host = figures_;
    }

    void reload(const ServiceContext& next) override {
        std::lock_guard lk(mu_);
        pending_cfg_ = next.sections.get<HostWatchConfig>();
        lang_ = next.sections.get<PushConfig>().language;
        cv_.notify_all();
    }

    void stop() override {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
            cv_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
    }

  private:
    // Waits until `t` or stop; false on stop.
    bool wait_until(Clock::time_point t) {
        std::unique_lock lk(mu_);
        cv_.wait_until(lk, t, [&] { return stop_; });
        return !stop_;
    }
    bool stopping() {
        std::lock_guard lk(mu_);
        return stop_;
    }

    static Clock::duration secs(double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    }

    void apply_pending() {
        std::optional<HostWatchConfig> c;
        {
            std::lock_guard lk(mu_);
            c.swap(pending_cfg_);
        }
        if (!c) return;
        if (!c->enabled) spdlog::warn("host watch: host_watch.enabled: false takes effect at the next restart");
        cfg_ = *c;
        watch_.set_options(proc_options(cfg_));
        health_.set_levels(cfg_.levels);
        spdlog::info("host watch: new settings applied");
    }

    void raise(Alert::Kind kind, const std::string& source, const std::string& key, std::string title, std::string text,
               int64_t now) {
        Alert a;
        a.kind = kind;
        a.source = source;
        a.key = key;
        a.title = std::move(title);
        a.text = std::move(text);
        a.time = now;
        alerts_->alert(a);
    }

    void check(const std::string& key, bool warning, const std::string& what, int64_t now) {
        bool& on = health_alerts_[key];
        if (warning == on) return;
        on = warning;
        raise(warning ? Alert::Kind::Raised : Alert::Kind::Recovered, "host", key, health_title(warning, what, lang_),
              what + "\n", now);
    }

    void procs(int64_t now) {
        double mono = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
        for (const auto& e : watch_.sample(mono, now)) {
            std::string key = e.key();
            if (e.kind == ProcEvent::Kind::Runaway) {
                runaway_.insert(key);
                raise(Alert::Kind::Raised, "procwatch", key, proc_event_title(e, lang_), proc_event_text(e, lang_),
                      now);
                if (auto id = hist_->episode_start(e); id)
                    episodes_[key] = *id;
                else
                    spdlog::warn("host watch: {}", id.error().message());
            } else {
                runaway_.erase(key);
                raise(Alert::Kind::Recovered, "procwatch", key, proc_event_title(e, lang_), proc_event_text(e, lang_),
                      now);
                auto it = episodes_.find(key);
                if (it != episodes_.end()) {
                    if (auto s = hist_->episode_end(it->second, e); !s)
                        spdlog::warn("host watch: {}", s.error().message());
                    episodes_.erase(it);
                }
            }
        }
        publish_runaways();
    }

    void publish_runaways() {
        std::lock_guard lk(figures_mu_);
        if (figures_) figures_->runaway_processes = runaway_.size();
    }

    void note(const Status& s) {
        if (!s) spdlog::warn("host watch: {}", s.error().message());
    }

    void fast(int64_t now) {
        auto cpu = health_.cpu(now, [this](double s) { wait_until(Clock::now() + secs(s)); });
        auto mem = health_.mem(now);
        {
            std::lock_guard lk(figures_mu_);
            HostFigures f = figures_.value_or(HostFigures{});
            f.cpu_percent = cpu.usage;
            f.memory_percent = mem.used;
            f.temp_c = cpu.temp;
            f.runaway_processes = runaway_.size();
            figures_ = f;
        }
        note(hist_->add(cpu));
        note(hist_->add(mem));
        const auto& lv = cfg_.levels;
        if (cpu.temp)
            check("host:cpu_temperature", *cpu.temp > lv.temp_warning,
                  health_what("cpu_temperature", "", *cpu.temp, lv.temp_warning, lang_), now);
        check("host:memory", mem.used > lv.mem_warning, health_what("memory", "", mem.used, lv.mem_warning, lang_),
              now);
    }

    void slow(int64_t now) {
        auto d = health_.disks(now);
        for (const auto& x : d)
            if (x.kind == 1)
                check("host:disk:" + x.name, x.used > cfg_.levels.disk_warning,
                      health_what("disk", x.name, x.used, cfg_.levels.disk_warning, lang_), now);
        note(hist_->add(d));
        note(hist_->add(health_.sys(now)));
        note(hist_->add(health_.users(now)));
        if (cfg_.retention_days > 0 && now - last_prune_ >= 3600) {
            last_prune_ = now;
            note(hist_->prune(now - static_cast<int64_t>(cfg_.retention_days) * 86400));
        }
    }

    void run() {
        spdlog::info(
            "host watch: processes every {} s (CPU above {}%, memory above {}%), CPU and memory every {} s, "
            "disk, system and users every {} s",
            cfg_.proc_interval, cfg_.cpu_threshold, cfg_.mem_threshold, cfg_.health_interval, cfg_.slow_interval);
        auto next_proc = Clock::now(), next_fast = next_proc, next_slow = next_proc;
        while (!stopping()) {
            apply_pending();
            auto t = Clock::now();
            if (t >= next_proc) {
                procs(clock_());
                next_proc = std::max(next_proc + secs(cfg_.proc_interval), t);
            }
            if (t >= next_fast) {
                fast(clock_());
                next_fast = std::max(next_fast + secs(cfg_.health_interval), t);
            }
            if (t >= next_slow) {
                slow(clock_());
                next_slow = std::max(next_slow + secs(cfg_.slow_interval), t);
            }
            if (!wait_until(std::min({next_proc, next_fast, next_slow}))) break;
        }
        note(hist_->flush());
    }

    std::atomic<Language> lang_;  // push.language; a reload changes it between alerts
    HostWatchConfig cfg_;
    std::unique_ptr<HostHistory> hist_;
    AlertSink* alerts_;
    std::function<int64_t()> clock_;
    ProcWatch watch_;
    HostHealth health_;
    std::map<std::string, bool> health_alerts_;
    std::map<std::string, int64_t> episodes_;  // alert key -> proc_episodes row
    mutable std::mutex figures_mu_;
    std::optional<HostFigures> figures_;  // for /metrics, once sampled
    std::set<std::string> runaway_;       // alert keys of the runaway episodes going on
    int64_t last_prune_ = 0;

    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::optional<HostWatchConfig> pending_cfg_;
    std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Service>> make_host_watch_service(ServiceContext& ctx) {
    const HostWatchConfig& cfg = ctx.sections.get<HostWatchConfig>();
    if (!cfg.enabled) return std::unique_ptr<Service>();
    auto hist = HostHistory::open(ctx.accounting.database);
    if (!hist) return hist.error();
    auto clock = ctx.clock ? ctx.clock : [] { return static_cast<int64_t>(::time(nullptr)); };
    return std::unique_ptr<Service>(new HostWatchService(cfg, std::move(*hist), ctx.alerts, clock, ctx.paths.host_root,
                                                         ctx.sections.get<PushConfig>().language));
}

}  // namespace pf
