#pragma once
// The billing history in SQLite (WAL). Truth is the 5-minute bucket: bytes and packets per
// (interface, MAC, UTC 5-minute slot), rx and tx in one row. Each row also carries the
// kernel counters that its last update brought it to, so the snapshot that deltas are
// computed against is written in the same statement, and the same transaction, as the
// deltas themselves: after kill -9 the next drain neither loses nor repeats a byte.
// Hourly, daily and monthly rows are rolled up from buckets once their local hour, day or
// billing month is over; until then views are computed from the buckets.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/accounting/accounting_config.hpp"
#include "peakflow/accounting/calendar.hpp"
#include "peakflow/accounting/usage_source.hpp"
#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/kernel/maps.hpp"

namespace pf {

inline constexpr int kSchemaVersion = 1;

// One changed key in one drain.
struct BucketUpdate {
    int64_t ts = 0;             // bucket start, UTC
    int64_t mac = kIfaceTotal;  // 48-bit MAC or kIfaceTotal
    bool peak = false;
    Counter delta[PF_DIR_COUNT];
    Counter snap[PF_DIR_COUNT];  // kernel counters after this delta
};

// One interface's part of a drain.
struct DrainRows {
    std::string iface;
    uint32_t map_id = 0;  // identity of the kernel maps the snapshots belong to
    std::string boot_id;
    bool new_generation = false;  // maps were re-created: older snapshots must not be resumed
    std::vector<BucketUpdate> rows;
};

// Adds b into a (same iface): deltas add up, the later snapshot wins.
void merge_drain_rows(DrainRows& a, const DrainRows& b);

// Rows held in memory while the history cannot be written grow by a bucket of every MAC
// each 5 minutes: over `cap` rows, the peer MACs' rows of the oldest buckets are dropped
// first, then the oldest interface totals (what bills), so the bytes a bill counts are the
// last to go. Returns what was dropped: rows, and their bytes in both directions.
struct DroppedRows {
    uint64_t rows = 0, bytes = 0;
};
DroppedRows bound_pending_rows(std::vector<DrainRows>& pending, size_t cap);

// One local day's totals from another tool's history (`peakflow-bpf import`): interface
// totals only, peak and off-peak, no packet counts.
struct ImportedDay {
    LocalDate day;
    uint64_t peak_rx = 0, peak_tx = 0, offpeak_rx = 0, offpeak_tx = 0;
};
struct ImportOutcome {
    std::vector<std::string> imported;                         // days written now
    std::vector<std::string> already;                          // imported before: left as they are
    std::vector<std::pair<std::string, std::string>> skipped;  // day, why
};

// UsageRow, Filter and kIfaceTotal are in usage_source.hpp.
class Store : public UsageSource {
  public:
    // Creates the directory and the database on first use (not when read_only).
    static Result<std::unique_ptr<Store>> open(const std::string& path, bool read_only = false);
    ~Store() override;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::string& path() const { return path_; }

    // Checkpoints the WAL from a second connection on its own thread every `every`,
    // instead of inside whichever commit crosses the auto-checkpoint size: the drain
    // path never waits for one. Stops with the Store.
    Status start_background_checkpoints(std::chrono::milliseconds every);

    // Everything of one drain in one transaction. On failure nothing is written; the
    // caller keeps the rows and tries again with the next drain merged in.
    Status commit_drain(const std::vector<DrainRows>& drains);

    struct Resume {
        bool found = false;  // a generation row exists
        uint32_t map_id = 0;
        std::string boot_id;
        std::map<int64_t, std::array<Counter, PF_DIR_COUNT>> snapshots;  // mac -> kernel counters
    };
    Result<Resume> load_resume(const std::string& iface);

    // Rolls finished local days (with their hours) and billing months into their tables.
    Status finalize(const Calendar& cal, int64_t now);
    Status apply_retention(const Retention& r, int64_t now);

    // Imported days become finalized daily rows (mac = kIfaceTotal, 0 packets), each listed
    // in the table `imported` with its source, and the billing months they touch are rolled
    // up again. Nothing is counted twice: a day already imported is left as it is, and a
    // day that is not over at `now` or that peakflow counted itself (it ends after the
    // first bucket) is skipped. One transaction.
    Result<ImportOutcome> import_days(const Calendar& cal, const std::string& iface, const std::string& source,
                                      const std::vector<ImportedDay>& days, int64_t now);
    Result<std::vector<std::string>> interfaces() override;
    // Raw 5-minute rows with ts in [from, to).
    Result<std::vector<UsageRow>> buckets(const Filter& f, int64_t from, int64_t to) override;
    // Hourly rows (rolled-up hours and the hours still in buckets) in [from, to).
    Result<std::vector<UsageRow>> hours(const Filter& f, const Calendar& cal, int64_t from, int64_t to) override;
    // Sums per (iface, mac, peak) over [from, to): finished days from the daily table,
    // everything else from the buckets.
    Result<std::vector<UsageRow>> totals(const Filter& f, int64_t from, int64_t to) override;
    std::string describe() const override { return path_; }

  private:
    // What commit_drain() needs to know about the roll-ups before it writes late rows.
    struct RollupBounds {
        int64_t finalized_until = 0;  // end of the last finalized day; rows before it are late
        int64_t buckets_from = 0;     // days starting before this have lost buckets to retention
    };

    Store() = default;
    Status exec(const char* sql);
    Status check(int rc, const char* what);
    Result<int64_t> iface_id(const std::string& name, bool create);
    // The kept statement for `sql`, prepared on first use.
    Result<SqlStmt*> prepare(const std::string& sql);
    // INSERT ... VALUES (..),(..) ... for `rows` rows, many per statement; bind(stmt,
    // first parameter, row) binds one row's `columns` values.
    Status upsert_rows(const char* what, const char* head, int columns, size_t rows, const char* tail,
                       const std::function<void(SqlStmt&, int, size_t)>& bind);

    // commit_drain(), inside its transaction.
    Result<RollupBounds> read_rollup_bounds();
    Status write_drain(const DrainRows& d, const RollupBounds& bounds, std::set<int64_t>& late_ts);
    Status write_generation(int64_t iface, const DrainRows& d);
    Status forget_snapshots(int64_t iface);
    Status write_buckets(int64_t iface, const std::vector<BucketUpdate>& rows);
    Status write_key_registry(int64_t iface, const std::vector<BucketUpdate>& rows);
    Status handle_late_rows(int64_t iface, const std::vector<BucketUpdate>& rows, const RollupBounds& bounds,
                            std::set<int64_t>& late_ts);
    Status add_late_row_to_rollups(int64_t iface, const BucketUpdate& r, const std::string& day, int64_t day_start);
    Status reopen_rollups_from(int64_t ts);
    // Rows written before meta 'uplink.sealed_until' into uplink_resend (fleet uplink).
    Status record_uplink_resends(const std::vector<DrainRows>& drains);

    // finalize(), one transaction per day and per month.
    Result<std::optional<int64_t>> first_day_to_roll_up(const Calendar& cal);
    Status roll_up_days(const Calendar& cal, int64_t from, int64_t now);
    Status roll_up_day(const Calendar& cal, const LocalDate& d);
    Status roll_up_months(const Calendar& cal, int64_t now);
    Status roll_up_month(const Calendar& cal, const BillingMonth& m);
    Status mark_finalized(const char* kind, const std::string& period, int64_t start, int64_t end,
                          const std::string& tz);

    SqliteDb db_;
    std::string path_;
    bool read_only_ = false;
    std::map<std::string, int64_t> iface_ids_;
    std::map<std::pair<int64_t, int64_t>, int64_t> last_ts_;  // (iface_id, mac) -> bucket of its snapshot
    std::map<std::string, SqlStmt> stmts_;                    // after db_: finalized before it closes

    std::thread checkpointer_;
    std::mutex checkpoint_mu_;
    std::condition_variable checkpoint_cv_;
    bool stopping_ = false;
};

// The kernel's boot id (<procfs>/sys/kernel/random/boot_id): a reboot re-creates all maps.
std::string read_boot_id(const std::string& procfs = "/proc");

}  // namespace pf
