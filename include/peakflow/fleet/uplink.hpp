#pragma once
// The agent's uplink to the fleet collector (docs/fleet.md, "The agent side"). The history
// database is the spool: for each stream (buckets, push, host) a cursor in uplink_cursor
// says what the collector has acknowledged, and each report carries what follows it,
// oldest first, in bounded batches. A cursor moves only after the collector's 200 names
// the batch's seq, in one transaction with the rest of the stream's state, so a crash or
// a lost answer sends the batch again (the collector acknowledges it without storing it
// twice). Runs on its own thread and its own connection, never on the drain path.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/paths.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/fleet/uplink_config.hpp"
#include "peakflow/fleet/wire.hpp"
#include "peakflow/service/service.hpp"
#include "peakflow/service/stats.hpp"

namespace pf {

struct UplinkOptions {
    std::string database;  // the agent's history
    UplinkConfig cfg;
    std::function<int64_t()> clock;   // UTC seconds; default time()
    std::vector<std::string> ifaces;  // the interfaces the daemon counts
    Paths paths;                      // sysfs for their MACs, procfs for the boot id
    std::string host;                 // default: gethostname()
    std::string boot_id;              // default: read from procfs
    // A new central config version arrived and is stored: the daemon reloads (SIGHUP's
    // rules) to apply it. Called on the uplink's thread.
    std::function<void()> on_central;
};

// What one report did.
struct UplinkOutcome {
    bool acked = false;   // the collector answered 200 with an ack
    size_t sent = 0;      // records in the report
    int64_t backlog = 0;  // records still waiting: after the report when acked, including it when not
    std::string error;    // why it was not acknowledged ("" when acked)
    std::string body;     // the report's JSON before gzip (tests, debugging)
};

class Uplink {
  public:
    // Opens its own connection to the history and brings up its tables (and the store's,
    // should the uplink come first); draws the spool id on first use.
    static Result<std::unique_ptr<Uplink>> open(UplinkOptions o);
    Uplink(const Uplink&) = delete;
    Uplink& operator=(const Uplink&) = delete;

    // One report: seals the buckets before the current 5-minute one, reads each stream's
    // batch after its cursor, POSTs it and applies the collector's ack. A collector that
    // cannot be reached or refuses is an outcome (counted and logged once per outage); an
    // error is the history database failing.
    Result<UplinkOutcome> report_once();

    // A heartbeat check passed (heartbeat_checks.hpp): the heartbeat is stored in the
    // history and goes with the next report. On its own connection: call it from one
    // thread. At most kHeartbeatBacklog wait; beyond, the oldest are dropped (logged).
    Status record_heartbeat(const std::string& service_name, const std::string& ip, int64_t time_ms);
    static constexpr int64_t kHeartbeatBacklog = 10000;
    // Flow pairs of a bucket go once the bucket ended this long ago (a few flow scans).
    static constexpr int64_t kFlowSettle = 15;

    // A reload: applies from the next report.
    void set_config(const UplinkConfig& c);
    UplinkConfig config() const;
    void set_ifaces(const std::vector<std::string>& ifaces);
    // The central config version stored (what the collector sent last; 0: none).
    int64_t central_version() const;
    int interval() const;
    const std::string& spool() const { return spool_; }
    CollectorFigures figures() const;

  private:
    struct Cursor {
        int64_t seq = 0;  // what the collector acknowledged
        int64_t c[3] = {INT64_MIN, INT64_MIN, INT64_MIN};
    };
    struct BucketKey {
        int64_t iface_id, ts, mac;
    };
    struct SentBucket {
        BucketKey key;
        uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
    };
    // What a report carries beyond its JSON: where each stream's cursor goes once acked.
    struct Pending {
        UplinkConfig cfg;
        WireReport report;
        std::vector<SentBucket> resent;                // buckets from uplink_resend
        std::vector<WireFlowPair> flow_rows;           // flow_pairs rows read, taken off once acknowledged
        std::optional<Cursor> next[kWireStreamCount];  // per stream (kWireStreams order), when it has a batch
    };

    explicit Uplink(UplinkOptions o) : o_(std::move(o)) {}
    Result<Cursor> read_cursor(const std::string& stream);
    Status read_buckets(Pending& p, int64_t now);
    Status read_push(Pending& p, int64_t now);
    Status read_host(Pending& p);
    Status read_heartbeat(Pending& p);
    Status read_flows(Pending& p, int64_t now);
    Status count_backlog(Pending& p, int64_t now);
    Result<bool> has_table(const char* name);
    Status apply_ack(const Pending& p, WireAck ack);
    void take_central(const CentralConfig& c);
    Status resync_seq(const Pending& p, WireAck ack);
    WireAgent agent(const UplinkConfig& cfg, int64_t now) const;
    void link_down(const std::string& why, int64_t waiting);
    void link_up(int64_t waiting);
    // The link's state in the history's meta table (uplink.last_attempt, .last_ack,
    // .backlog, .last_error), for `peakflow-bpf status` in another process.
    void note_link(int64_t now, int64_t backlog, const std::string& error);

    UplinkOptions o_;
    SqliteDb db_;
    SqliteDb hb_db_;  // record_heartbeat's own connection
    std::string spool_;
    std::map<int64_t, std::string> iface_names_;
    std::optional<bool> link_up_;  // unknown until the first report

    mutable std::mutex mu_;  // cfg (reload) and figures (metrics thread)
    UplinkConfig cfg_;
    std::vector<std::string> ifaces_;
    CollectorFigures figures_;
    int64_t central_version_ = 0;  // stored; only the uplink's thread writes it
};

// The uplink service: null without a collector: section.
Result<std::unique_ptr<Service>> make_uplink_service(ServiceContext& ctx);

}  // namespace pf
