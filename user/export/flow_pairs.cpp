#include "peakflow/export/flow_pairs.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace pf {
namespace {

constexpr SchemaPart kSchema[] = {{"flow_pairs", 1, R"(
CREATE TABLE IF NOT EXISTS flow_pairs(
  ts INTEGER NOT NULL, iface TEXT NOT NULL, client TEXT NOT NULL, server TEXT NOT NULL,
  proto INTEGER NOT NULL, port INTEGER NOT NULL,
  bytes INTEGER NOT NULL, packets INTEGER NOT NULL, flows INTEGER NOT NULL,
  PRIMARY KEY(ts, iface, client, server, proto, port)) WITHOUT ROWID;
)"}};

std::string addr_text(const pf_flow_key& k, const uint8_t* a) {
    char b[INET6_ADDRSTRLEN] = {};
    if (k.family == 4)
        inet_ntop(AF_INET, a + 12, b, sizeof b);
    else
        inet_ntop(AF_INET6, a, b, sizeof b);
    return b;
}

}  // namespace

std::span<const SchemaPart> flow_pairs_schema() {
    return kSchema;
}

std::vector<FlowPair> FlowPairFolder::fold(const std::vector<FlowRecord>& recs) {
    std::map<std::tuple<int64_t, std::string, std::string, std::string, int64_t, int64_t>, FlowPair> out;
    for (const auto& r : recs) {
        FlowPair p;
        p.ts = (r.end_ms / 1000) / 300 * 300;
        p.iface = r.iface;
        p.proto = r.key.proto;
        std::string src = addr_text(r.key, r.key.src_addr), dst = addr_text(r.key, r.key.dst_addr);
        const bool ports = r.key.proto == IPPROTO_TCP || r.key.proto == IPPROTO_UDP || r.key.proto == IPPROTO_SCTP;
        bool src_serves;
        if (ports && r.key.src_port != r.key.dst_port)
            src_serves = r.key.src_port < r.key.dst_port;
        else
            src_serves = src < dst;  // no ports to tell: one order for both directions
        p.server = src_serves ? src : dst;
        p.client = src_serves ? dst : src;
        p.port = ports ? (src_serves ? r.key.src_port : r.key.dst_port) : 0;
        const int64_t client_port = ports ? (src_serves ? r.key.dst_port : r.key.src_port) : 0;
        const std::string tuple = p.client + " " + std::to_string(client_port) + " " + p.server + " " +
                                  std::to_string(p.port) + " " + std::to_string(p.proto);
        FlowPair& acc =
            out.try_emplace(std::tuple(p.ts, p.iface, p.client, p.server, p.proto, p.port), p).first->second;
        acc.bytes += r.bytes;
        acc.packets += r.packets;
        if (seen_[p.ts].insert(tuple).second) acc.flows++;
    }
    while (seen_.size() > 2) seen_.erase(seen_.begin());
    std::vector<FlowPair> v;
    v.reserve(out.size());
    for (auto& [k, p] : out) v.push_back(std::move(p));
    return v;
}

Result<std::unique_ptr<FlowPairLog>> FlowPairLog::open(const std::string& database) {
    SqliteOptions so;
    so.mode = SqliteMode::ReadWrite;
    so.wal = true;
    so.synchronous = SqliteSync::Normal;
    so.busy_timeout_ms = 5000;
    so.open_context = "flow pairs: cannot open " + database;
    so.error_context = "flow pairs: " + database;
    auto db = SqliteDb::open(database, so);
    if (!db) return db.error();
    std::unique_ptr<FlowPairLog> log(new FlowPairLog());
    log->db_ = std::move(*db);
    if (auto st = apply_schema(log->db_, kSchema); !st) return st.error();
    return log;
}

Status FlowPairLog::add(const std::vector<FlowRecord>& recs) {
    auto pairs = folder_.fold(recs);
    if (pairs.empty()) return Ok{};
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    auto q = db_.prepare(
        "INSERT INTO flow_pairs(ts, iface, client, server, proto, port, bytes, packets, flows) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(ts, iface, client, server, proto, port) DO UPDATE "
        "SET bytes = bytes + excluded.bytes, packets = packets + excluded.packets, flows = flows + excluded.flows",
        true);
    if (!q) return q.error();
    for (const auto& p : pairs) {
        q->bind(1, p.ts).bind(2, p.iface).bind(3, p.client).bind(4, p.server).bind(5, p.proto).bind(6, p.port);
        q->bind(7, p.bytes).bind(8, p.packets).bind(9, p.flows);
        int rc = q->step();
        q->reset();
        if (auto st = db_.check(rc, "store flow pairs"); !st) return st;
    }
    return tx->commit();
}

}  // namespace pf
