#pragma once
// Traffic between address pairs per 5-minute bucket, from the flow records (docs/fleet.md,
// "Flows"): what the collector's heartbeat service joins with the services' addresses to
// measure the traffic between them. The flow scan adds each scan's records to the table
// flow_pairs of the history; the uplink sends settled buckets in its `flows` stream and
// takes off exactly what the collector acknowledged.
//
// A pair is direction-free: `server` is the side with the lower port (the service's), the
// other the `client`; both directions of a connection add to the one pair. `flows` counts
// the distinct connections (5-tuples) seen in the bucket.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/export/flow_export.hpp"

namespace pf {

// The table, a schema part of the history ("flow_pairs").
std::span<const SchemaPart> flow_pairs_schema();

struct FlowPair {
    int64_t ts = 0;  // bucket start, UTC seconds, multiple of 300
    std::string iface, client, server;
    int64_t proto = 0, port = 0;
    uint64_t bytes = 0, packets = 0, flows = 0;
    auto key() const { return std::tie(ts, iface, client, server, proto, port); }
};

// Records folded into pairs (bytes and packets summed; flows: each 5-tuple once per
// bucket, across calls, as `seen` remembers).
class FlowPairFolder {
  public:
    std::vector<FlowPair> fold(const std::vector<FlowRecord>& recs);

  private:
    // 5-tuples already counted, per bucket; buckets older than the newest two are forgotten.
    std::map<int64_t, std::set<std::string>> seen_;
};

class FlowPairLog {
  public:
    static Result<std::unique_ptr<FlowPairLog>> open(const std::string& database);
    // One transaction: each record's pair gains its bytes and packets.
    Status add(const std::vector<FlowRecord>& recs);

  private:
    SqliteDb db_;
    FlowPairFolder folder_;
};

}  // namespace pf
