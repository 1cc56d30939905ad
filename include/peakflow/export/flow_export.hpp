#pragma once
// Flow export: the kernel flow map turned into flow records with NetFlow/IPFIX style
// active and idle timeouts, written to rolling gzip CSV files (uploaded over FTP/SFTP) and
// sent as IPFIX (RFC 7011) over UDP.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/export/export_config.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

// One exported flow record: a delta of one kernel flow entry.
struct FlowRecord {
    pf_flow_key key{};
    std::string iface;
    uint32_t ifindex = 0;
    int64_t start_ms = 0;  // UTC milliseconds
    int64_t end_ms = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint8_t tcp_flags = 0;
};

// What the tracker knows of one flow entry: what was already exported. Saved to the
// state file so that a restart after a crash continues the deltas.
struct FlowSnapshot {
    pf_flow_key key{};
    uint64_t bytes = 0, packets = 0;  // exported so far
    uint64_t entry_id = 0;            // FlowRow::entry_id: a restarted entry differs
    uint64_t window_start_ns = 0;     // start of the not yet exported part
    uint64_t active_since_ns = 0;     // when the active timer started
    bool operator==(const FlowSnapshot& o) const {
        return FlowKeyEq{}(key, o.key) && bytes == o.bytes && packets == o.packets && entry_id == o.entry_id &&
               window_start_ns == o.window_start_ns && active_since_ns == o.active_since_ns;
    }
};

// Delta and timeout logic for one interface's flow map. Keeps, per flow, what was already
// exported, so records carry deltas and their sum equals the kernel counters exactly.
class FlowTracker {
  public:
    FlowTracker(std::string iface, uint32_t ifindex, std::chrono::seconds active, std::chrono::seconds idle)
        : iface_(std::move(iface)),
          ifindex_(ifindex),
          active_ns_(uint64_t(active.count()) * 1000000000ull),
          idle_ns_(uint64_t(idle.count()) * 1000000000ull) {}

    struct ScanResult {
        std::vector<FlowRecord> records;   // active timeouts
        std::vector<pf_flow_key> expired;  // idle flows (all with flush): take them out of the map, then finish()
    };
    // rows: the map now; now_ns: CLOCK_MONOTONIC_COARSE now; real_offset_ns: realtime minus
    // monotonic, to turn kernel times into UTC. flush (shutdown): expire every entry, so
    // that the next start does not export them again. Expired flows get their final record
    // from finish(), with the value the map held when the entry was removed.
    ScanResult scan(const std::vector<FlowRow>& rows, uint64_t now_ns, int64_t real_offset_ns, bool flush = false);
    // Final records of the flows the last scan expired: finals are the values removed from
    // the map (MapSet::take_flows), so packets that came after the scan's read are in them.
    // Expired flows without a final value (already gone) get none.
    std::vector<FlowRecord> finish(const std::vector<FlowRow>& finals, int64_t real_offset_ns);
    // The values the last scan read for these expired keys (fallback when the kernel cannot
    // take entries out with their values: they are deleted after the read).
    size_t tracked() const { return state_.size(); }
    // What was exported per flow (for the state file), and restoring it at start.
    std::vector<FlowSnapshot> snapshot() const;
    void restore(const std::vector<FlowSnapshot>& flows);
    const std::string& iface() const { return iface_; }

  private:
    struct State {
        uint64_t bytes = 0, packets = 0;  // exported so far
        uint64_t entry_id = 0;
        uint64_t window_start_ns = 0;  // start of the not yet exported part
        uint64_t active_since_ns = 0;  // when the active timer started
    };
    FlowRecord record(const FlowRow& row, const State& st, int64_t real_offset_ns) const;
    std::string iface_;
    uint32_t ifindex_;
    uint64_t active_ns_, idle_ns_;
    std::unordered_map<pf_flow_key, State, FlowKeyHash, FlowKeyEq> state_;
    std::unordered_map<pf_flow_key, State, FlowKeyHash, FlowKeyEq> pending_;  // expired, awaiting finish()
};

// One pass over an interface's flow tables: read them, records for active timeouts,
// expired flows taken (MapSet::take_flows) and their final records.
// before_take (tests): runs between the read and the take.
struct MapScan {
    std::vector<FlowRecord> records;
    size_t expired = 0;
};
Result<MapScan> scan_flow_map(const MapSet& maps, FlowTracker& tracker, uint64_t now_ns, int64_t real_offset_ns,
                              bool flush, const std::function<void()>& before_take = {});

// The export state file: per interface, the flow map it belongs to and what was exported
// per flow. Saved after each scan's records are on disk, loaded at start; entries of
// another boot or another (re-created) flow map are not restored.
struct FlowStateFile {
    std::string boot_id;
    struct Iface {
        std::string name;
        uint32_t flow_map_id = 0;
        std::vector<FlowSnapshot> flows;
    };
    std::vector<Iface> ifaces;
};
// Written to PATH.tmp, fsynced, renamed over PATH (atomic: a crash leaves the old or the new).
Status save_flow_state(const std::string& path, const FlowStateFile& st);
// A missing file is an empty state; a malformed one is an error (the caller starts from zero).
Result<FlowStateFile> load_flow_state(const std::string& path);
// The file's text, and reading it (path only names it in errors): what the two above write
// and read, apart for the fuzz target (tests/fuzz/export_state_fuzz.cpp).
std::string render_flow_state(const FlowStateFile& st);
Result<FlowStateFile> parse_flow_state_text(const std::string& text, const std::string& path);
// At start: the saved state, or, when the file cannot be used, an empty state, the file
// renamed to PATH.bad and one warning. Never fails: a damaged file must not stop the start.
FlowStateFile load_flow_state_at_start(const std::string& path);

// CSV: the header line and one row per record (both end in '\n').
extern const char* const kFlowCsvHeader;
void append_csv_row(std::string& out, const FlowRecord& r);

// Rolling gzip CSV files: {prefix}{YYYYMMDD_HHMMSS}_{index}.part while open, renamed to
// .csv.gz after flush + fsync on rotation and close. Each file starts with the header line.
class RollingCsvWriter {
  public:
    using Clock = std::function<int64_t()>;  // UTC seconds
    // clock names the files (a timestamp); mono_ms (milliseconds on a monotonic clock, null:
    // steady_clock) times rotate_interval, so a wall clock stepped back does not stall it.
    RollingCsvWriter(ExportFilesConfig cfg, Clock clock, Clock mono_ms = {});
    ~RollingCsvWriter();
    RollingCsvWriter(const RollingCsvWriter&) = delete;
    RollingCsvWriter& operator=(const RollingCsvWriter&) = delete;

    // Creates the directory and takes it for this writer (an flock on the directory, held
    // until the writer is gone: two writers, say the daemon and `export pipe`, would rename
    // each other's .part files and upload the same files). Startup check.
    Status open_dir();
    // The header of the files opened from now on (default kFlowCsvHeader); ends in '\n'.
    void set_header(std::string header) { header_ = std::move(header); }
    Status write(const std::vector<FlowRecord>& recs);
    // Rows already in CSV (`export pipe`), each without its '\n'.
    Status write_lines(const std::vector<std::string>& rows);
    // Rotates when the open file is older than the interval (call periodically).
    Status tick();
    Status close();  // finish the open file (flush, fsync, rename)
    // Puts the open file's rows on disk (gzip sync flush + fdatasync): after a crash, the
    // .part renamed at the next start holds every row written before this call.
    Status sync();
    bool is_open() const { return gz_ != nullptr; }
    uint64_t files_written() const { return files_written_; }
    uint64_t records_written() const { return records_written_; }
    std::string current_part() const { return part_path_; }
    // Test hook: the finished file names in order.
    static std::string file_name(const std::string& prefix, const std::string& stamp, uint32_t index, const char* ext);

  private:
    Status open_new();
    // n rows, row i appended to the buffer by append(buf, i); rotates by size between rows.
    Status write_rows(size_t n, const std::function<void(std::string&, size_t)>& append);
    ExportFilesConfig cfg_;
    Clock clock_;
    Clock mono_ms_;
    std::string header_;
    void* gz_ = nullptr;  // gzFile
    int fd_ = -1;
    int dir_lock_ = -1;
    std::string part_path_, final_path_;
    int64_t opened_mono_ms_ = 0;
    uint64_t raw_size_ = 0;
    uint32_t index_ = 0;
    uint64_t files_written_ = 0, records_written_ = 0;
    std::string buf_;
    std::function<int(int64_t)> offset_;
};

// Finished files (*.csv.gz) in a directory, in name order, with sizes.
struct SpoolFile {
    std::string name;
    uint64_t size = 0;
};
std::vector<SpoolFile> list_spool(const std::string& dir, const std::string& prefix);

// Uploads finished files with libcurl (FTP: temporary name then RNFR/RNTO; SFTP: rename).
// Why an SFTP upload with no host key configured is refused (before connecting).
inline constexpr const char* kSftpHostKeyUnset =
    "refused: the SFTP server's host key is not configured (set export.upload.host_key_sha256 or known_hosts, or "
    "trust_first_host_key: true; the files stay spooled)";

class Uploader {
  public:
    explicit Uploader(ExportUploadConfig cfg) : cfg_(std::move(cfg)) {}
    // Uploads one file; on success the server has it under its final name.
    Status upload(const std::string& local_path, const std::string& name) const;
    // Uploads every finished file in name order, deleting each after success; stops at the
    // first failure (later files wait, to keep the order). Returns how many were uploaded.
    struct CycleResult {
        uint64_t uploaded = 0, bytes = 0, failed = 0;
        std::string last_error;
    };
    CycleResult run_cycle(const std::string& dir, const std::string& prefix) const;
    // A transfer in progress is aborted (and the cycle ends) once *flag is true (shutdown).
    void set_abort_flag(const std::atomic<bool>* flag) { abort_ = flag; }

  private:
    ExportUploadConfig cfg_;
    const std::atomic<bool>* abort_ = nullptr;
};

// IPFIX (RFC 7011) message encoding. Template 256: IPv4 flows, 257: IPv6 flows.
class IpfixEncoder {
  public:
    IpfixEncoder(uint32_t observation_domain, size_t mtu);
    // Encodes records into messages no larger than the MTU budget (IP+UDP headers taken
    // off). with_templates: put both templates at the start of the first message.
    // export_time: UTC seconds for the header. Sequence numbers count data records.
    std::vector<std::string> encode(const std::vector<FlowRecord>& recs, uint32_t export_time, bool with_templates);
    uint32_t sequence() const { return seq_; }
    size_t max_message() const { return max_msg_; }

  private:
    uint32_t domain_;
    size_t max_msg_;
    uint32_t seq_ = 0;
};

// Sends IPFIX messages over UDP to the collectors.
class IpfixSender {
  public:
    static Result<IpfixSender> create(const ExportIpfixConfig& cfg);
    IpfixSender(IpfixSender&&) noexcept;
    IpfixSender& operator=(IpfixSender&&) noexcept;
    ~IpfixSender();
    // Sends; templates at least every template_refresh seconds, timed on mono_ms
    // (milliseconds on a monotonic clock); now (UTC seconds) is the messages' export time.
    // Returns the count of send errors.
    uint64_t send(const std::vector<FlowRecord>& recs, int64_t now, int64_t mono_ms);
    uint64_t messages_sent() const { return messages_; }

  private:
    IpfixSender() = default;
    struct Target {
        int fd = -1;
        std::string name;
    };
    std::vector<Target> targets_;
    std::unique_ptr<IpfixEncoder> enc_;
    bool templates_sent_ = false;
    int64_t last_template_ms_ = 0;
    int64_t refresh_ms_ = 60000;
    uint64_t messages_ = 0;
};

}  // namespace pf
