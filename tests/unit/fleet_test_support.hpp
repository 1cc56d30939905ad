#pragma once
// What the fleet tests send a collector: a report from a named agent (node beijing-1, host
// NAME.lan, one counted interface eth0) with the batches a test gives it.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "peakflow/fleet/wire.hpp"

namespace pf::testing {

inline const std::string kTestSpool = "0123456789abcdef0123456789abcdef";

inline WireReport agent_report(const std::string& agent, int64_t time, std::vector<WireBatch> batches = {},
                               const std::string& spool = kTestSpool) {
    WireReport r;
    r.agent.name = agent;
    r.agent.host = agent + ".lan";
    r.agent.node = "beijing-1";
    r.agent.version = "0.1.0";
    r.agent.boot_id = "boot";
    r.agent.interval = 60;
    r.agent.time = time;
    r.agent.interfaces = {{"eth0", "02:00:00:00:00:01", true}};
    r.spool = spool;
    r.batches = std::move(batches);
    return r;
}

// A batch of `stream` holding `rows` in the member of WireBatch that stream uses.
template <typename Row>
WireBatch batch_of(const char* stream, std::vector<Row> WireBatch::*member, int64_t seq, std::vector<Row> rows) {
    WireBatch b;
    b.stream = stream;
    b.seq = seq;
    b.*member = std::move(rows);
    return b;
}

inline WireBatch bucket_batch(int64_t seq, std::vector<WireBucket> rows) {
    return batch_of("buckets", &WireBatch::buckets, seq, std::move(rows));
}

inline WireBatch push_batch(int64_t seq, std::vector<WirePush> rows) {
    return batch_of("push", &WireBatch::push, seq, std::move(rows));
}

inline WireBatch host_batch(int64_t seq, std::vector<WireHost> rows) {
    return batch_of("host", &WireBatch::host, seq, std::move(rows));
}

}  // namespace pf::testing
