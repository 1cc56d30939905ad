// `export pipe` (export_pipe.hpp): stdin -> NfacctdCsvReader -> RollingCsvWriter, with the
// daemon's upload and status (ExportOutlet).

#include "peakflow/export/export_pipe.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <thread>
#include <vector>

#include "peakflow/common/mono_clock.hpp"
#include "peakflow/common/redact.hpp"
#include "peakflow/export/export_service.hpp"
#include "peakflow/export/flow_export.hpp"
#include "peakflow/export/nfacctd_csv.hpp"

namespace pf {

std::string export_pipe_start_line(const ExportConfig& c) {
    return fmt::format("export pipe: nfacctd CSV from stdin to {}/{}*.csv.gz (a new file every {} s or {} bytes){}",
                       c.files.directory, c.files.prefix, c.files.rotate_interval.count(), c.files.rotate_size,
                       c.upload.url.empty() ? std::string(", no upload")
                                            : fmt::format(", upload to {} every {} s", mask_url_secrets(c.upload.url),
                                                          c.upload.interval.count()));
}

namespace {

class Pipe {
  public:
    explicit Pipe(const ExportPipeOptions& o)
        : o_(o),
          clock_(o.clock ? o.clock : [] { return static_cast<int64_t>(::time(nullptr)); }),
          mono_ms_(o.mono_ms ? o.mono_ms : steady_ms),
          alerts_(o.alerts ? o.alerts : &log_alerts_),
          writer_(o.cfg.files, clock_, mono_ms_),
          outlet_(o.cfg, clock_, alerts_, o.language) {}

    Status run() {
        if (!o_.cfg.files.enabled) return Error("export pipe writes files: export.files.enabled is false");
        if (auto st = writer_.open_dir(); !st) return st;
        outlet_.start();
        spdlog::info("{}", export_pipe_start_line(o_.cfg));
        Status result = read_loop();
        finish();
        return result;
    }

  private:
    Status read_loop() {
        std::vector<char> buf(64 * 1024);
        last_sync_ms_ = mono_ms_();
        for (;;) {
            pollfd fds[2] = {{o_.in_fd, POLLIN, 0}, {o_.stop_fd, POLLIN, 0}};
            const int r = poll(fds, o_.stop_fd >= 0 ? 2 : 1, 1000);
            if (r < 0 && errno != EINTR) return Error("poll stdin", "", errno);
            if (r > 0 && o_.stop_fd >= 0 && (fds[1].revents & POLLIN)) {
                const std::string why = o_.read_stop ? o_.read_stop() : "stop";
                if (!why.empty()) {
                    if (reader_.pending_bytes())
                        spdlog::warn(
                            "export pipe: {} in the middle of line {}: its {} bytes read so far are not written", why,
                            reader_.lines() + 1, reader_.pending_bytes());
                    spdlog::info("export pipe: {}: finishing after {} lines", why, reader_.lines());
                    return Ok{};
                }
            }
            if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                const ssize_t n = ::read(o_.in_fd, buf.data(), buf.size());
                if (n < 0 && errno != EINTR && errno != EAGAIN) return Error("read stdin", "", errno);
                std::vector<std::string> rows;
                Status st = Ok{};
                if (n == 0) {
                    st = reader_.finish(rows);
                } else if (n > 0) {
                    st = reader_.feed(std::string_view(buf.data(), size_t(n)), rows);
                }
                // The rows before a bad line are good: written before stopping.
                if (auto w = write(rows); !w) return w;
                if (!st) return Error("export pipe: stdin " + st.error().message());
                if (n == 0) {
                    spdlog::info("export pipe: end of input after {} lines", reader_.lines());
                    return Ok{};
                }
            }
            if (auto st = writer_.tick(); !st) return st;
            // Rows on disk within a second: a crash loses at most that (the .part is finished
            // at the next start).
            if (dirty_ && mono_ms_() - last_sync_ms_ >= 1000) {
                if (auto st = writer_.sync(); !st) return st;
                dirty_ = false;
                last_sync_ms_ = mono_ms_();
            }
            outlet_.counters().files_written = writer_.files_written();
        }
    }

    Status write(const std::vector<std::string>& rows) {
        if (rows.empty()) return Ok{};
        // Rows come only after the header: every file starts with nfacctd's.
        if (!header_set_) writer_.set_header(reader_.header() + "\n"), header_set_ = true;
        auto& c = outlet_.counters();
        c.records += rows.size();
        if (outlet_.spool_full()) {
            c.dropped += rows.size();
            return writer_.close();
        }
        if (auto st = writer_.write_lines(rows); !st) {
            c.dropped += rows.size();
            outlet_.set_error(st.error().message());
            return st;
        }
        dirty_ = true;
        c.files_written = writer_.files_written();
        return Ok{};
    }

    // The open file finished, one more upload cycle, the last status line; a second stop
    // signal meanwhile aborts the upload (the files stay spooled).
    void finish() {
        if (auto st = writer_.close(); !st) {
            spdlog::error("export pipe: {}", st.error().message());
            outlet_.set_error(st.error().message());
        }
        outlet_.counters().files_written = writer_.files_written();
        std::atomic<bool> done{false};
        std::thread last([this, &done] {
            outlet_.stop(true);
            done = true;
        });
        while (!done && o_.stop_fd >= 0) {
            pollfd p{o_.stop_fd, POLLIN, 0};
            if (poll(&p, 1, 200) > 0 && (p.revents & POLLIN)) {
                const std::string why = o_.read_stop ? o_.read_stop() : "stop";
                if (!why.empty()) {
                    spdlog::warn("export pipe: {} again: the last upload is aborted; the files stay in {}", why,
                                 o_.cfg.files.directory);
                    outlet_.abort_uploads();
                }
            }
        }
        last.join();
        spdlog::info("export pipe: {} rows in {} files ({} lines skipped: blank, markers, repeated header)",
                     writer_.records_written(), writer_.files_written(), reader_.skipped());
    }

    const ExportPipeOptions& o_;
    std::function<int64_t()> clock_;
    std::function<int64_t()> mono_ms_;
    LogAlertSink log_alerts_;
    AlertSink* alerts_;
    RollingCsvWriter writer_;
    ExportOutlet outlet_;
    NfacctdCsvReader reader_;
    bool dirty_ = false, header_set_ = false;
    int64_t last_sync_ms_ = 0;
};

}  // namespace

Status run_export_pipe(const ExportPipeOptions& o) {
    Pipe p(o);
    return p.run();
}

}  // namespace pf
