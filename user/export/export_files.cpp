// Rolling gzip CSV files and the spool of finished files.

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/common/mono_clock.hpp"
#include "peakflow/export/flow_export.hpp"

namespace pf {

RollingCsvWriter::RollingCsvWriter(ExportFilesConfig cfg, Clock clock, Clock mono_ms)
    : cfg_(std::move(cfg)), clock_(std::move(clock)), mono_ms_(std::move(mono_ms)), header_(kFlowCsvHeader) {
    if (!mono_ms_) mono_ms_ = steady_ms;
    auto cal = Calendar::create(cfg_.timezone, {}, 1);
    if (cal) {
        auto c = std::make_shared<Calendar>(std::move(*cal));
        offset_ = [c](int64_t t) { return c->utc_offset_seconds(t); };
    } else {
        spdlog::warn("export: time zone for file names: {}; using UTC", cal.error().message());
        offset_ = [](int64_t) { return 0; };
    }
}

RollingCsvWriter::~RollingCsvWriter() {
    if (gz_) (void)close();
    if (dir_lock_ >= 0) ::close(dir_lock_);
}

std::string RollingCsvWriter::file_name(const std::string& prefix, const std::string& stamp, uint32_t index,
                                        const char* ext) {
    char idx[16];
    std::snprintf(idx, sizeof idx, "%03u", index);
    return prefix + stamp + "_" + idx + ext;
}

Status RollingCsvWriter::open_dir() {
    std::error_code ec;
    std::filesystem::create_directories(cfg_.directory, ec);
    if (ec) return Error("create export directory", cfg_.directory, ec.value());
    if (access(cfg_.directory.c_str(), W_OK) != 0) return Error("write to export directory", cfg_.directory, errno);
    if (dir_lock_ < 0) {
        int fd = ::open(cfg_.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return Error("open export directory", cfg_.directory, errno);
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            ::close(fd);
            if (e == EWOULDBLOCK)
                return Error("export directory " + cfg_.directory +
                             " is in use by another peakflow-bpf (the daemon's export or an export pipe); give each "
                             "its own directory");
            return Error("lock export directory", cfg_.directory, e);
        }
        dir_lock_ = fd;
    }
    // .part files left by a crash: finish them as far as they got (gzip readers stop at the
    // truncated end; zcat reports "unexpected end of file" after printing the rows).
    for (const auto& e : std::filesystem::directory_iterator(cfg_.directory, ec)) {
        auto name = e.path().filename().string();
        if (name.rfind(cfg_.prefix, 0) != 0 || !name.ends_with(".part")) continue;
        auto fin = e.path();
        fin.replace_extension(".csv.gz");
        spdlog::warn("export: {} was left open by an earlier run; renamed to {}", name, fin.filename().string());
        std::filesystem::rename(e.path(), fin, ec);
    }
    return Ok{};
}

Status RollingCsvWriter::open_new() {
    int64_t now = clock_();
    time_t local = static_cast<time_t>(now + offset_(now));
    struct tm tm {};
    gmtime_r(&local, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm);
    for (;; index_++) {
        part_path_ = cfg_.directory + "/" + file_name(cfg_.prefix, stamp, index_, ".part");
        final_path_ = cfg_.directory + "/" + file_name(cfg_.prefix, stamp, index_, ".csv.gz");
        if (access(part_path_.c_str(), F_OK) != 0 && access(final_path_.c_str(), F_OK) != 0) break;
    }
    index_++;
    fd_ = ::open(part_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd_ < 0) return Error("create export file", part_path_, errno);
    int gfd = dup(fd_);
    gzFile gz = gfd >= 0 ? gzdopen(gfd, "wb1") : nullptr;
    if (!gz) {
        int e = errno;
        if (gfd >= 0) ::close(gfd);
        ::close(fd_);
        fd_ = -1;
        unlink(part_path_.c_str());
        return Error("open gzip stream", part_path_, e);
    }
    gzbuffer(gz, 256 * 1024);
    gz_ = gz;
    opened_mono_ms_ = mono_ms_();
    raw_size_ = 0;
    buf_ = header_;
    return Ok{};
}

Status RollingCsvWriter::write(const std::vector<FlowRecord>& recs) {
    return write_rows(recs.size(), [&recs](std::string& out, size_t i) { append_csv_row(out, recs[i]); });
}

Status RollingCsvWriter::write_lines(const std::vector<std::string>& rows) {
    return write_rows(rows.size(), [&rows](std::string& out, size_t i) {
        out += rows[i];
        out += '\n';
    });
}

Status RollingCsvWriter::write_rows(size_t n, const std::function<void(std::string&, size_t)>& append) {
    if (n == 0) return Ok{};
    if (auto st = tick(); !st) return st;
    size_t i = 0;
    while (i < n) {
        if (!gz_)
            if (auto st = open_new(); !st) return st;
        // Rows go out in chunks; a file rotates once its uncompressed size passes the limit.
        for (; i < n && raw_size_ + buf_.size() <= cfg_.rotate_size && buf_.size() < 1 << 20; i++)
            append(buf_, i), records_written_++;
        if (!buf_.empty()) {
            if (gzwrite(static_cast<gzFile>(gz_), buf_.data(), static_cast<unsigned>(buf_.size())) !=
                static_cast<int>(buf_.size())) {
                int errnum = 0;
                std::string msg = gzerror(static_cast<gzFile>(gz_), &errnum);
                return Error("write export file (" + msg + ")", part_path_, errno);
            }
            raw_size_ += buf_.size();
            buf_.clear();
        }
        if (raw_size_ >= cfg_.rotate_size)
            if (auto st = close(); !st) return st;
    }
    return Ok{};
}

Status RollingCsvWriter::sync() {
    if (!gz_) return Ok{};
    gzFile gz = static_cast<gzFile>(gz_);
    if (!buf_.empty()) {
        if (gzwrite(gz, buf_.data(), static_cast<unsigned>(buf_.size())) != static_cast<int>(buf_.size()))
            return Error("write export file", part_path_, errno);
        raw_size_ += buf_.size();
        buf_.clear();
    }
    if (gzflush(gz, Z_SYNC_FLUSH) != Z_OK) return Error("flush export file", part_path_, errno);
    if (fdatasync(fd_) != 0) return Error("sync export file", part_path_, errno);
    return Ok{};
}

Status RollingCsvWriter::tick() {
    if (gz_ && mono_ms_() - opened_mono_ms_ >= cfg_.rotate_interval.count() * 1000) return close();
    return Ok{};
}

Status RollingCsvWriter::close() {
    if (!gz_) return Ok{};
    gzFile gz = static_cast<gzFile>(gz_);
    gz_ = nullptr;
    int zr = Z_OK;
    if (!buf_.empty()) {
        if (gzwrite(gz, buf_.data(), static_cast<unsigned>(buf_.size())) != static_cast<int>(buf_.size())) zr = Z_ERRNO;
        raw_size_ += buf_.size();
        buf_.clear();
    }
    int cr = gzclose(gz);  // writes the trailer, closes the dup'ed fd
    int err = errno;
    int fr = fsync(fd_);
    if (fr != 0) err = errno;
    ::close(fd_);
    fd_ = -1;
    if (zr != Z_OK || cr != Z_OK || fr != 0) return Error("finish export file", part_path_, err);
    if (std::rename(part_path_.c_str(), final_path_.c_str()) != 0)
        return Error("rename export file", part_path_, errno);
    fsync_dir(cfg_.directory);
    files_written_++;
    spdlog::info("export: finished {} ({} bytes uncompressed, {} s)", final_path_, raw_size_,
                 (mono_ms_() - opened_mono_ms_) / 1000);
    part_path_.clear();
    return Ok{};
}

std::vector<SpoolFile> list_spool(const std::string& dir, const std::string& prefix) {
    std::vector<SpoolFile> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        auto name = e.path().filename().string();
        if (name.rfind(prefix, 0) != 0 || !name.ends_with(".csv.gz")) continue;
        std::error_code ec2;
        auto sz = e.file_size(ec2);
        if (ec2) continue;
        out.push_back({name, static_cast<uint64_t>(sz)});
    }
    std::sort(out.begin(), out.end(), [](const SpoolFile& a, const SpoolFile& b) { return a.name < b.name; });
    return out;
}

}  // namespace pf
