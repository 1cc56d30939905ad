#pragma once
// The flow export service (see flow_export.hpp), started by the daemon when the config
// has an `export:` section.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/export/flow_export.hpp"
#include "peakflow/push/push_config.hpp"
#include "peakflow/service/service.hpp"

namespace pf {

// What the daemon's export and `export pipe` share once rows are in files: the finished
// files uploaded every upload.interval, the spool limit and its alerts, and the status line
// (status.file, status.url). The source adds what it wrote to counters().
class ExportOutlet {
  public:
    struct Counters {
        std::atomic<uint64_t> records{0}, dropped{0}, files_written{0}, flow_map_full{0}, ipfix_errors{0};
    };
    // cfg.upload.password as read from password_file (make_export_service, export pipe).
    ExportOutlet(const ExportConfig& cfg, std::function<int64_t()> clock, AlertSink* alerts, Language lang);
    ~ExportOutlet();
    ExportOutlet(const ExportOutlet&) = delete;
    ExportOutlet& operator=(const ExportOutlet&) = delete;

    void start();  // the upload and status thread, when either is configured
    Counters& counters() { return counters_; }
    // Spool limit: finished files waiting for upload reached upload.spool_limit. One alert
    // when it is reached, one recovery when below again.
    bool spool_full();
    void set_error(const std::string& e);  // for the status line; URL secrets masked
    void set_language(Language l) { lang_ = l; }
    uint64_t queue_files() const { return queue_files_.load(); }
    // An upload in flight stops now (its file stays spooled), and so do later ones.
    void abort_uploads() { abort_ = true; }
    // Ends the thread (an upload in flight finishes unless aborted); with final_upload, one
    // more upload cycle for the files finished meanwhile; then the last status line.
    void stop(bool final_upload);
    std::string status_json();

  private:
    bool wait_for(std::chrono::seconds d);
    void background_loop();
    void upload_cycle();
    void write_status();
    void post_status();

    ExportConfig cfg_;
    std::function<int64_t()> clock_;
    AlertSink* alerts_;
    std::atomic<Language> lang_;
    std::atomic<bool> abort_{false};
    Uploader uploader_;
    Counters counters_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false, stopped_ = false;
    bool spool_alerted_ = false;
    std::atomic<uint64_t> uploaded_{0}, bytes_uploaded_{0}, failures_{0}, queue_files_{0};
    std::atomic<int64_t> last_upload_{0};
    std::mutex err_mu_;
    std::string last_error_;
};

// With an `export:` section: starts the scan thread (and the upload/status thread when
// configured). Errors: the export directory cannot be created or written, an IPFIX
// collector cannot be resolved, the password file cannot be read.
Result<std::unique_ptr<Service>> make_export_service(ServiceContext& ctx);

// Before the upload starts (the password of upload.password_file was read with the
// config, secret_file.hpp): an SFTP
// known_hosts file checked for reading, the store of host keys trusted on first use put
// beside the history `database` (an error logged when no host key is configured at all:
// SFTP uploads are then refused).
Status prepare_export_upload(ExportConfig& c, const std::string& database);

// The line the export logs at start: interfaces, timeouts, where records go (the upload
// URL with its password masked).
std::string export_start_line(const ExportConfig& c, const std::vector<std::string>& ifaces);

// The export's status line (status.file, status.url), as `export status` shows it.
struct ExportStatus {
    std::string instance_id;
    int64_t time = 0, last_upload = 0;
    uint64_t files_written = 0, files_uploaded = 0, upload_failures = 0, bytes_uploaded = 0, queue_files = 0,
             queue_bytes = 0, records_exported = 0, records_dropped = 0, flow_map_full = 0, ipfix_send_errors = 0;
    std::string last_error;  // as the server or the system said it: not always UTF-8
};
// One JSON object, keys in name order. Bytes that are not UTF-8 (an FTP server's answer in
// last_error) become U+FFFD: a strict dump would throw and stop the export's thread.
std::string export_status_json(const ExportStatus& s);

// `peakflow-bpf export status`: the spool (finished files waiting, open .part files) and
// the last line of the status file. Exit 0; 1 (FatalError) when export is not configured.
int run_export_status(const ExportConfig& e, const std::string& source, std::ostream& out);

}  // namespace pf
