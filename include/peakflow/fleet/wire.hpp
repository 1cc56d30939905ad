#pragma once
// The report wire format both ends speak (docs/fleet.md, "Wire protocol"): the agent
// renders a Report, the collector parses and checks it. One definition of every field, so
// the two ends cannot drift apart.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"

namespace pf {

inline constexpr int kFleetProtocol = 1;
inline constexpr size_t kWireMaxCompressed = 4u << 20;     // request body as sent
inline constexpr size_t kWireMaxDecompressed = 32u << 20;  // after gunzip (gzip bombs)
inline constexpr size_t kWireMaxRecords = 20000;           // per batch
inline constexpr size_t kWireMaxString = 4096;             // bytes, any string field
inline constexpr int kWireMaxDepth = 8;                    // JSON nesting
inline constexpr int64_t kWireMaxClockAhead = 300;         // seconds a time may be ahead

struct WireInterface {
    std::string name;
    std::string mac;  // "aa:bb:cc:dd:ee:ff" or ""
    bool counted = false;
};

// A central value the agent could not apply, and why.
struct ConfigProblem {
    std::string key, message;
    bool operator==(const ConfigProblem&) const = default;
};

// The central configuration of one agent (docs/fleet.md, "Central configuration"): the
// fleet-wide values merged with the agent's own, keyed by dotted config key
// ("push.enabled", "push.sinks.NAME.url", ...), each value as compact JSON text. `version`
// grows with every change that reaches the agent; 0: nothing was ever set.
struct CentralConfig {
    int64_t version = 0;
    std::map<std::string, std::string> values;
    bool operator==(const CentralConfig&) const = default;
};
inline constexpr size_t kCentralMaxKeys = 256;
inline constexpr size_t kCentralMaxValue = 65536;  // bytes of one value's JSON

struct WireAgent {
    std::string name, host, node, version, boot_id;
    int64_t interval = 60;  // seconds between reports, 5..3600
    int64_t time = 0;       // the agent's clock, UTC seconds
    std::vector<WireInterface> interfaces;
    // The central config version the agent runs, and the values of it it could not apply.
    int64_t config_version = 0;
    std::vector<ConfigProblem> config_problems;
};

// One stored 5-minute row as absolute values.
struct WireBucket {
    std::string iface;
    std::string mac;  // "" for the interface's own totals
    int64_t ts = 0;   // multiple of 300
    bool peak = false;
    uint64_t rx_bytes = 0, rx_packets = 0, tx_bytes = 0, tx_packets = 0;
};

// One row of the agent's push history.
struct WirePush {
    int64_t id = 0;
    int64_t time = 0;
    std::string node, host, sink, kind, period;
    int64_t bytes = 0;
    std::string status;  // pending | failed | sent | skipped | rejected
    int64_t attempts = 0;
    std::string error;
    // The traffic the message reports, in bytes; none (absent or null on the wire) for
    // alerts, tests and free messages, and in every row of an agent before it had this.
    std::optional<int64_t> value{};
};

// A host-health sample ("sys") or an ended runaway-process episode ("episode").
struct WireHost {
    std::string type;  // "sys" | "episode"
    int64_t time = 0;  // sys: sample time; episode: end time
    // sys
    std::optional<double> load1, cpu, mem_used, disk_used, temperature;
    std::optional<int64_t> mem_total, disk_total;
    // episode
    int64_t id = 0, pid = 0, since = 0, detected = 0, ended = 0;
    std::string name, user, end_reason;
    std::optional<double> peak_cpu, peak_mem;
};

// A heartbeat an agent's check sent (docs/fleet.md, "Heartbeats from agents"): the service
// passed its check at time_ms.
struct WireHeartbeat {
    int64_t id = 0;       // the agent's row id, growing
    int64_t time_ms = 0;  // UTC milliseconds of the check
    std::string service_name, ip_address;
};

// The traffic between two addresses in one 5-minute bucket, from the agent's flow records
// (docs/fleet.md, "Flows"): `src` is the client side, `dst` the server side (the lower
// port), `port` the server port. The row with other=true sums the pairs beyond the
// agent's top N of that bucket (addresses empty, proto and port 0).
struct WireFlowPair {
    int64_t ts = 0;  // multiple of 300
    std::string iface, src, dst;
    int64_t proto = 0, port = 0;
    uint64_t bytes = 0, packets = 0, flows = 0;
    bool other = false;
};

inline constexpr const char* kWireStreams[] = {"buckets", "push", "host", "heartbeat", "flows"};
inline constexpr size_t kWireStreamCount = 5;

struct WireBatch {
    std::string stream;  // one of kWireStreams
    int64_t seq = 0;     // >= 1
    std::vector<WireBucket> buckets;
    std::vector<WirePush> push;
    std::vector<WireHost> host;
    std::vector<WireHeartbeat> heartbeat;
    std::vector<WireFlowPair> flows;
    size_t size() const { return buckets.size() + push.size() + host.size() + heartbeat.size() + flows.size(); }
};

struct WireReport {
    int protocol = kFleetProtocol;
    WireAgent agent;
    std::string spool;  // 32 lowercase hex digits
    // Records waiting after this report; heartbeat and flows absent from older agents (0).
    int64_t backlog_buckets = 0, backlog_push = 0, backlog_host = 0, backlog_heartbeat = 0, backlog_flows = 0;
    std::vector<WireBatch> batches;  // at most one per stream
    // The rows of the buckets still open at the agent (ts >= its sealed boundary), as they
    // are now: not part of any batch (no seq), sent with every report so the collector is
    // current to the last drain. Their closed values follow in the buckets stream.
    std::vector<WireBucket> live;
    int64_t backlog() const {
        return backlog_buckets + backlog_push + backlog_host + backlog_heartbeat + backlog_flows;
    }
};

// The collector's answer: the seq it holds for each stream of the spool, and the agent's
// central configuration (absent in a 409's answer).
struct WireAck {
    int64_t buckets = 0, push = 0, host = 0, heartbeat = 0, flows = 0;
    int64_t time = 0;  // the collector's clock
    std::optional<CentralConfig> config;
    int64_t* of(const std::string& stream);
};

// The central config as the answer carries it: {"version":N,"values":{KEY: VALUE}}.
std::string render_central(const CentralConfig& c);
// Checks sizes and types: at most kCentralMaxKeys keys of at most 256 bytes, each value
// any JSON of at most kCentralMaxValue bytes.
Result<CentralConfig> parse_central(const std::string& json);

// The JSON the agent sends (before gzip).
std::string render_report(const WireReport& r);

// Parses and checks a request body (already decompressed): types, required fields, sizes,
// nesting, the protocol, stream names, seq >= 1, a bucket ts a multiple of 300, a MAC
// shaped "aa:bb:cc:dd:ee:ff". `now` is the collector's clock: a time more than
// kWireMaxClockAhead ahead is refused. The error message is the reason for the 400.
Result<WireReport> parse_report(const std::string& json, int64_t now);

std::string render_ack(const WireAck& a);
Result<WireAck> parse_ack(const std::string& json);

// gzip (RFC 1952) of `data`, and its inverse with a cap on the output: more than
// `max_out` bytes is an error ("decompressed body over N bytes"), as is a corrupt stream.
std::string gzip_compress(const std::string& data);
Result<std::string> gzip_decompress(const std::string& data, size_t max_out);

}  // namespace pf
