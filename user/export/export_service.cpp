// The flow export service: a scan thread (flow map -> records -> gzip CSV and IPFIX), an
// upload thread (spooled files -> FTP/SFTP) and status reports.

#include "peakflow/export/export_service.hpp"
#include "peakflow/common/guarded.hpp"
#include "peakflow/common/mono_clock.hpp"

#include <net/if.h>
#include <spdlog/spdlog.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "peakflow/accounting/store.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/common/redact.hpp"
#include "peakflow/export/flow_pairs.hpp"
#include "peakflow/push/push_config.hpp"

namespace pf {

namespace {

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

class ExportService : public Service {
  public:
    ExportService(const ExportConfig& cfg, const ExportConfig& original, std::vector<std::string> ifaces, Paths paths,
                  std::function<int64_t()> clock, AlertSink* alerts, Language lang)
        : cfg_(cfg),
          original_(original),
          ifaces_(std::move(ifaces)),
          paths_(std::move(paths)),
          clock_(std::move(clock)),
          outlet_(cfg, clock_, alerts, lang) {
        for (const auto& i : ifaces_)
            trackers_.emplace_back(i, if_nametoindex(i.c_str()), cfg_.active_timeout, cfg_.idle_timeout);
        flow_full_.assign(ifaces_.size(), 0);
        flow_map_ids_.assign(ifaces_.size(), 0);
        maps_.resize(ifaces_.size());
        boot_id_ = read_boot_id(paths_.procfs);
    }

    Status start() {
        if (cfg_.files.enabled) {
            writer_ = std::make_unique<RollingCsvWriter>(cfg_.files, clock_);
            if (auto st = writer_->open_dir(); !st) return st;
            state_path_ = cfg_.files.directory + "/.peakflow-export-state";
        } else {
            // IPFIX or flow pairs only: no spool, and the state is worth nothing after a
            // reboot, so it lives in the run directory (gone with the boot).
            state_path_ = paths_.run_dir + "/" + fmt::format("{}", fmt::join(ifaces_, "+")) + ".export-state";
            run_state_ = true;
        }
        FlowStateFile saved = load_flow_state_at_start(state_path_);
        if (!saved.ifaces.empty() && saved.boot_id != boot_id_)
            spdlog::info("export: the saved export state is from another boot; flows are exported from zero");
        else
            saved_ = std::move(saved);
        if (!cfg_.ipfix.collectors.empty()) {
            auto s = IpfixSender::create(cfg_.ipfix);
            if (!s) return s.error();
            ipfix_ = std::make_unique<IpfixSender>(std::move(*s));
        }
        if (!cfg_.pairs_database.empty()) {
            auto log = FlowPairLog::open(cfg_.pairs_database);
            if (!log) return log.error();
            pairs_ = std::move(*log);
        }
        scan_thread_ = std::thread([this] { run_guarded("export scan", [this] { scan_loop(); }); });
        if (cfg_.pairs_only) {
            spdlog::info(
                "flows: traffic between address pairs for the collector, from the flow records of {} every {} s "
                "(active timeout {} s, idle {} s)",
                fmt::join(ifaces_, ","), cfg_.scan_interval.count(), cfg_.active_timeout.count(),
                cfg_.idle_timeout.count());
            return Ok{};
        }
        outlet_.start();
        spdlog::info("{}{}", export_start_line(cfg_, ifaces_), pairs_ ? "; address pairs for the collector too" : "");
        return Ok{};
    }

    std::string name() const override { return "export"; }

    void reload(const ServiceContext& next) override {
        outlet_.set_language(next.sections.get<PushConfig>().language);
        if (!(next.sections.get<ExportConfig>() == original_))
            spdlog::warn("reload: export settings take effect at the next start (the running export keeps its own)");
    }

    void stats(DaemonStats& s) const override { s.export_queue += outlet_.queue_files(); }

    void stop() override {
        {
            std::lock_guard l(mu_);
            if (stopping_) return;
            stopping_ = true;
        }
        outlet_.abort_uploads();  // an upload in flight ends now; the file stays spooled
        cv_.notify_all();
        if (scan_thread_.joinable()) scan_thread_.join();
        // The pending deltas of every flow, then the open file is finished.
        scan_once(true);
        // Every flow was taken out of the maps: a state in the run directory says nothing
        // more, and is not left behind.
        if (run_state_ && ::unlink(state_path_.c_str()) != 0 && errno != ENOENT)
            spdlog::warn("export: cannot remove {}: {}", state_path_, std::strerror(errno));
        if (writer_)
            if (auto st = writer_->close(); !st) spdlog::error("export: {}", st.error().message());
        if (writer_) outlet_.counters().files_written = writer_->files_written();
        outlet_.stop(false);
    }

  private:
    static void monotonic_pair(uint64_t& mono_ns, int64_t& offset_ns) {
        timespec m{}, r{};
        clock_gettime(CLOCK_MONOTONIC_COARSE, &m);
        clock_gettime(CLOCK_REALTIME, &r);
        mono_ns = uint64_t(m.tv_sec) * 1000000000ull + uint64_t(m.tv_nsec);
        offset_ns = (int64_t(r.tv_sec) * 1000000000ll + r.tv_nsec) - int64_t(mono_ns);
    }

    bool wait_for(std::chrono::seconds d) {
        std::unique_lock l(mu_);
        return !cv_.wait_for(l, d, [this] { return stopping_; });
    }

    void scan_loop() {
        while (wait_for(cfg_.scan_interval)) scan_once(false);
    }

    // What was exported of each flow in the last daemon run (kill -9): restored once per
    // interface when its flow map is the same one (same map id, same boot).
    void restore_state(size_t i, uint32_t map_id) {
        flow_map_ids_[i] = map_id;
        for (auto& s : saved_.ifaces) {
            if (s.name != ifaces_[i] || s.flows.empty()) continue;
            if (s.flow_map_id == map_id) {
                trackers_[i].restore(s.flows);
                spdlog::info("export: {}: continuing {} flows from the saved export state", ifaces_[i], s.flows.size());
            } else {
                spdlog::info("export: {}: the flow map was re-created (id {} was {}); its flows are exported from zero",
                             ifaces_[i], map_id, s.flow_map_id);
            }
            s.flows.clear();
        }
    }

    void scan_once(bool flush) {
        auto& counters = outlet_.counters();
        std::vector<FlowRecord> all;
        for (size_t i = 0; i < ifaces_.size(); i++) {
            // The open maps (and their mapped flow tables) are kept while the pins are the same.
            const std::string dir = paths_.pin_dir(ifaces_[i]);
            if (!maps_[i] || maps_[i]->flow_map_id() != MapSet::pinned_flow_map_id(dir)) {
                maps_[i].reset();
                auto opened = MapSet::open_pinned(dir);
                if (!opened) {
                    spdlog::debug("export: {}: {}", ifaces_[i], opened.error().message());
                    continue;
                }
                maps_[i].emplace(std::move(*opened));
            }
            auto& maps = maps_[i];
            if (maps->flow_map_id() != flow_map_ids_[i]) restore_state(i, maps->flow_map_id());
            uint64_t mono = 0;
            int64_t off = 0;
            monotonic_pair(mono, off);
            auto res = scan_flow_map(*maps, trackers_[i], mono, off, flush);
            maps->unmap_flows();  // not resident between scans
            if (!res) {
                spdlog::warn("export: {}: {}", ifaces_[i], res.error().message());
                continue;
            }
            if (auto ev = maps->read_events(); ev) {
                uint64_t full = (*ev)[PF_EV_FLOW_MAP_FULL];
                if (full > flow_full_[i])
                    spdlog::warn(
                        "export: {}: the flow map was full for {} new flows (flow_capacity); their packets "
                        "are in the interface totals but in no flow record",
                        ifaces_[i], full - flow_full_[i]);
                counters.flow_map_full += full - std::min(full, flow_full_[i]);
                flow_full_[i] = full;
            }
            for (auto& r : res->records) all.push_back(std::move(r));
        }
        counters.records += all.size();
        int64_t now = clock_();
        if (ipfix_) counters.ipfix_errors += ipfix_->send(all, now, steady_ms());
        if (pairs_)
            if (auto st = pairs_->add(all); !st) spdlog::warn("flows: {}", st.error().message());
        if (!writer_) {
            // What was sent and counted, so that a kill -9 does not count it again.
            if (!all.empty()) save_state();
            return;
        }
        if (outlet_.spool_full()) {
            counters.dropped += all.size();
            if (auto st = writer_->close(); !st) spdlog::error("export: {}", st.error().message());
            save_state();
            return;
        }
        auto st = writer_->write(all);
        if (st) st = writer_->tick();
        if (st && all.empty()) {
            // Nothing exported since the last save: the state on disk is current, and a
            // quiet host does not rewrite it (and fsync) every scan.
            counters.files_written = writer_->files_written();
            return;
        }
        // The rows on disk before the state that says they were exported.
        if (st) st = writer_->sync();
        if (!st) {
            counters.dropped += all.size();
            outlet_.set_error(st.error().message());
            spdlog::error("export: {}", st.error().message());
        }
        counters.files_written = writer_->files_written();
        save_state();
    }

    void save_state() {
        FlowStateFile f;
        f.boot_id = boot_id_;
        for (size_t i = 0; i < ifaces_.size(); i++) {
            if (flow_map_ids_[i] == 0) continue;
            f.ifaces.push_back({ifaces_[i], flow_map_ids_[i], trackers_[i].snapshot()});
        }
        if (auto st = save_flow_state(state_path_, f); !st) {
            outlet_.set_error(st.error().message());
            if (!state_failing_)  // once per failure streak, not every scan
                spdlog::error("export: {} (until it works again, a restart after a crash may export flows twice)",
                              st.error().message());
            state_failing_ = true;
        } else if (state_failing_) {
            state_failing_ = false;
            spdlog::info("export: the export state is saved again");
        }
    }

    ExportConfig cfg_;
    ExportConfig original_;  // as in the config file (reload compares against it)
    std::vector<std::string> ifaces_;
    Paths paths_;
    std::function<int64_t()> clock_;
    ExportOutlet outlet_;
    std::vector<FlowTracker> trackers_;
    std::vector<uint64_t> flow_full_;
    std::vector<uint32_t> flow_map_ids_;  // per interface, the flow map the tracker follows
    std::vector<std::optional<MapSet>> maps_;
    std::string boot_id_, state_path_;
    bool run_state_ = false;  // state_path_ is in the run directory
    FlowStateFile saved_;
    bool state_failing_ = false;
    std::unique_ptr<RollingCsvWriter> writer_;
    std::unique_ptr<IpfixSender> ipfix_;
    std::unique_ptr<FlowPairLog> pairs_;
    std::thread scan_thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
};

}  // namespace

ExportOutlet::ExportOutlet(const ExportConfig& cfg, std::function<int64_t()> clock, AlertSink* alerts, Language lang)
    : cfg_(cfg), clock_(std::move(clock)), alerts_(alerts), lang_(lang), uploader_(cfg.upload) {
    uploader_.set_abort_flag(&abort_);
    if (cfg_.status.instance_id.empty()) cfg_.status.instance_id = read_first_line("/etc/machine-id");
}

ExportOutlet::~ExportOutlet() {
    abort_ = true;
    {
        std::lock_guard l(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ExportOutlet::start() {
    if (!cfg_.upload.url.empty() || !cfg_.status.url.empty() || !cfg_.status.file.empty())
        thread_ = std::thread([this] { run_guarded("export upload", [this] { background_loop(); }); });
}

void ExportOutlet::stop(bool final_upload) {
    {
        std::lock_guard l(mu_);
        if (stopped_) return;
        stopped_ = stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (final_upload && !cfg_.upload.url.empty() && !abort_) upload_cycle();
    write_status();
}

bool ExportOutlet::wait_for(std::chrono::seconds d) {
    std::unique_lock l(mu_);
    return !cv_.wait_for(l, d, [this] { return stopping_; });
}

bool ExportOutlet::spool_full() {
    if (cfg_.upload.spool_limit == 0) return false;
    uint64_t bytes = 0;
    for (const auto& f : list_spool(cfg_.files.directory, cfg_.files.prefix)) bytes += f.size;
    const bool full = bytes >= cfg_.upload.spool_limit;
    if (full != spool_alerted_) {
        spool_alerted_ = full;
        Alert a;
        a.kind = full ? Alert::Kind::Raised : Alert::Kind::Recovered;
        a.source = "export";
        a.key = "spool";
        a.time = clock_();
        if (lang_ == Language::Zh) {
            a.title = full ? "流导出缓存区已满" : "流导出缓存区已低于上限";
            a.text = full ? "导出缓存目录 " + cfg_.files.directory + " 已有 " + std::to_string(bytes) + " 字节（上限 " +
                                std::to_string(cfg_.upload.spool_limit) +
                                "）：在上传赶上之前不再写新文件，流记录将被丢弃。"
                          : "上传已赶上：流记录恢复写入。";
            alerts_->alert(a);
            return full;
        }
        a.title = full ? "flow export spool full" : "flow export spool below its limit";
        a.text = full ? "The export spool " + cfg_.files.directory + " holds " + std::to_string(bytes) +
                            " bytes (limit " + std::to_string(cfg_.upload.spool_limit) +
                            "): no new files are written and flow records are dropped until uploads catch up."
                      : "Uploads caught up: flow records are written again.";
        alerts_->alert(a);
    }
    return full;
}

void ExportOutlet::set_error(const std::string& e) {
    std::lock_guard l(err_mu_);
    last_error_ = mask_url_in(e, cfg_.upload.url);  // it goes into the status line
}

void ExportOutlet::background_loop() {
    const int64_t up = cfg_.upload.url.empty() ? 0 : cfg_.upload.interval.count();
    const int64_t st = cfg_.status.url.empty() && cfg_.status.file.empty() ? 0 : cfg_.status.interval.count();
    int64_t t = 0;
    do {
        if (up && t % up == 0) upload_cycle();
        if (st && t % st == 0 && t > 0) {
            write_status();
            post_status();
        }
        t++;
    } while (wait_for(std::chrono::seconds(1)));
}

void ExportOutlet::upload_cycle() {
    auto r = uploader_.run_cycle(cfg_.files.directory, cfg_.files.prefix);
    uploaded_ += r.uploaded;
    bytes_uploaded_ += r.bytes;
    failures_ += r.failed;
    if (r.uploaded) last_upload_ = clock_();
    if (!r.last_error.empty()) set_error(r.last_error);
    queue_files_ = list_spool(cfg_.files.directory, cfg_.files.prefix).size();
}

std::string ExportOutlet::status_json() {
    ExportStatus s;
    if (cfg_.files.enabled)
        for (const auto& f : list_spool(cfg_.files.directory, cfg_.files.prefix))
            s.queue_bytes += f.size, s.queue_files++;
    s.instance_id = cfg_.status.instance_id;
    s.time = clock_();
    s.files_written = counters_.files_written.load();
    s.files_uploaded = uploaded_.load();
    s.upload_failures = failures_.load();
    s.bytes_uploaded = bytes_uploaded_.load();
    s.records_exported = counters_.records.load();
    s.records_dropped = counters_.dropped.load();
    s.flow_map_full = counters_.flow_map_full.load();
    s.last_upload = last_upload_.load();
    s.ipfix_send_errors = counters_.ipfix_errors.load();
    {
        std::lock_guard l(err_mu_);
        s.last_error = last_error_;
    }
    return export_status_json(s);
}

void ExportOutlet::write_status() {
    if (cfg_.status.file.empty()) return;
    const std::string& f = cfg_.status.file;
    std::error_code ec;
    if (std::filesystem::file_size(f, ec) > cfg_.status.file_max_size && !ec) {
        // FILE.(n-1) -> FILE.n, ..., FILE -> FILE.1; the oldest goes.
        const uint32_t n = cfg_.status.file_backups;
        if (n == 0) {
            std::filesystem::remove(f, ec);
        } else {
            std::filesystem::remove(f + "." + std::to_string(n), ec);
            for (uint32_t i = n - 1; i >= 1; i--)
                std::filesystem::rename(f + "." + std::to_string(i), f + "." + std::to_string(i + 1), ec);
            std::filesystem::rename(f, f + ".1", ec);
        }
    }
    std::ofstream out(f, std::ios::app);
    out << status_json() << "\n";
    if (!out) spdlog::warn("export: cannot write status file {}", f);
}

void ExportOutlet::post_status() {
    if (cfg_.status.url.empty()) return;
    HttpRequest req;
    req.method = HttpMethod::Post;
    req.url = cfg_.status.url;
    req.headers = {"Content-Type: application/json"};
    req.body = status_json();
    req.timeout = std::chrono::seconds(10);
    req.connect_timeout = std::chrono::seconds(5);
    // The answer is only logged: kept short, not an error when longer.
    req.max_response_bytes = 4096;
    req.over_cap = OverCap::Truncate;
    auto r = http_request(req);
    if (!r) {
        spdlog::warn("export: status report to {} failed: {}", mask_url_secrets(cfg_.status.url),
                     mask_url_in(r.error().message(), cfg_.status.url));
        return;
    }
    spdlog::debug("export: status report to {}: HTTP {} {}", mask_url_secrets(cfg_.status.url), r->status, r->body);
    // 4xx and 5xx are failures, in the words of curl's fail-on-error used here before.
    if (r->status >= 400)
        spdlog::warn("export: status report to {} failed: {}", mask_url_secrets(cfg_.status.url),
                     curl_easy_strerror(CURLE_HTTP_RETURNED_ERROR));
}

std::string export_start_line(const ExportConfig& c, const std::vector<std::string>& ifaces) {
    return fmt::format(
        "export: flow records from {} every {} s (active timeout {} s, idle {} s){}{}{}", fmt::join(ifaces, ","),
        c.scan_interval.count(), c.active_timeout.count(), c.idle_timeout.count(),
        c.files.enabled ? ", files in " + c.files.directory : "",
        c.upload.url.empty() ? "" : ", upload to " + mask_url_secrets(c.upload.url),
        c.ipfix.collectors.empty() ? "" : ", IPFIX to " + fmt::format("{}", fmt::join(c.ipfix.collectors, ",")));
}

std::string export_status_json(const ExportStatus& s) {
    nlohmann::json j;
    j["instance_id"] = s.instance_id;
    j["time"] = s.time;
    j["files_written"] = s.files_written;
    j["files_uploaded"] = s.files_uploaded;
    j["upload_failures"] = s.upload_failures;
    j["bytes_uploaded"] = s.bytes_uploaded;
    j["queue_files"] = s.queue_files;
    j["queue_bytes"] = s.queue_bytes;
    j["records_exported"] = s.records_exported;
    j["records_dropped"] = s.records_dropped;
    j["flow_map_full"] = s.flow_map_full;
    j["last_upload"] = s.last_upload;
    j["ipfix_send_errors"] = s.ipfix_send_errors;
    j["last_error"] = s.last_error;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status prepare_export_upload(ExportConfig& c, const std::string& database) {
    if (!c.upload.ca_file.empty() && ::access(c.upload.ca_file.c_str(), R_OK) != 0)
        return Error("read export.upload.ca_file", c.upload.ca_file, errno);
    if (c.upload.allow_plaintext_auth && c.upload.url.rfind("ftp://", 0) == 0 && !c.upload.tls_required &&
        (!c.upload.password.empty() || c.upload.url.find('@') != std::string::npos))
        spdlog::warn(
            "export: the FTP password goes to {} in clear (allow_plaintext_auth); use ftps:// or tls: required",
            mask_url_secrets(c.upload.url));
    if (c.upload.url.rfind("sftp://", 0) == 0) {
        if (!c.upload.known_hosts.empty() && ::access(c.upload.known_hosts.c_str(), R_OK) != 0)
            return Error("read export.upload.known_hosts", c.upload.known_hosts, errno);
        if (c.upload.trust_first_host_key)
            c.upload.host_key_store =
                std::filesystem::path(database).parent_path().append("sftp_host_keys").lexically_normal().string();
        else if (c.upload.host_key_sha256.empty() && c.upload.known_hosts.empty())
            spdlog::error("export: uploads to {} {}", mask_url_secrets(c.upload.url), kSftpHostKeyUnset);
    }
    return Ok{};
}

Result<std::unique_ptr<Service>> make_export_service(ServiceContext& ctx) {
    const ExportConfig& cfg = ctx.sections.get<ExportConfig>();
    if (!cfg.enabled) return std::unique_ptr<Service>();
    ExportConfig c = cfg;
    if (auto st = prepare_export_upload(c, ctx.accounting.database); !st) return st.error();
    std::function<int64_t()> clock = ctx.clock;
    if (!clock) clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    auto s = std::make_unique<ExportService>(c, cfg, ctx.ifaces, ctx.paths, clock, ctx.alerts,
                                             ctx.sections.get<PushConfig>().language);
    if (auto st = s->start(); !st) return st.error();
    return std::unique_ptr<Service>(std::move(s));
}

int run_export_status(const ExportConfig& e, const std::string& source, std::ostream& out) {
    if (!e.enabled)
        throw FatalError("flow export is not configured (no export: section in " +
                         (source.empty() ? std::string("the config") : source) + ")");
    out << "spool directory: " << e.files.directory << "\n";
    uint64_t bytes = 0;
    auto files = list_spool(e.files.directory, e.files.prefix);
    for (const auto& f : files) bytes += f.size;
    out << "finished files waiting for upload: " << files.size() << " (" << bytes << " bytes)";
    if (e.upload.spool_limit) out << ", spool limit " << e.upload.spool_limit << " bytes";
    out << "\n";
    if (!files.empty()) out << "  oldest: " << files.front().name << "\n  newest: " << files.back().name << "\n";
    std::error_code ec;
    for (const auto& d : std::filesystem::directory_iterator(e.files.directory, ec)) {
        auto n = d.path().filename().string();
        if (n.rfind(e.files.prefix, 0) == 0 && n.ends_with(".part")) out << "open file: " << n << "\n";
    }
    out << "upload: " << (e.upload.url.empty() ? "not configured" : mask_url_secrets(e.upload.url)) << "\n";
    if (!e.status.file.empty()) {
        std::ifstream in(e.status.file);
        std::string line, last;
        while (std::getline(in, line))
            if (!line.empty()) last = line;
        if (last.empty()) {
            out << "status file " << e.status.file << ": no status yet\n";
        } else {
            auto j = nlohmann::json::parse(last, nullptr, false);
            if (!j.is_discarded()) {
                int64_t lu = j.value("last_upload", int64_t(0));
                out << "last status (" << e.status.file << "): files written " << j.value("files_written", 0)
                    << ", uploaded " << j.value("files_uploaded", 0) << ", failed uploads "
                    << j.value("upload_failures", 0) << ", records dropped " << j.value("records_dropped", 0) << "\n";
                if (lu > 0) {
                    time_t t = static_cast<time_t>(lu);
                    char buf[32];
                    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
                    out << "last upload: " << buf << "\n";
                } else {
                    out << "last upload: none since the daemon started\n";
                }
                std::string err = j.value("last_error", std::string());
                // Masked again: a status line written before the URL was masked may hold it.
                if (!err.empty()) out << "last error: " << mask_url_in(err, e.upload.url) << "\n";
            }
        }
    }
    return 0;
}

}  // namespace pf
