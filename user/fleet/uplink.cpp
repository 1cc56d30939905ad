#include "peakflow/fleet/uplink.hpp"

#include "peakflow/fleet/central_config.hpp"
#include "peakflow/fleet/heartbeat_checks.hpp"

#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "peakflow/accounting/store.hpp"
#include "peakflow/common/guarded.hpp"
#include "peakflow/common/http.hpp"
#include "peakflow/kernel/maps.hpp"
#include "peakflow/version.hpp"

namespace pf {
namespace {

// The cursors (docs/fleet.md): per stream, the seq the collector holds and the key of the
// last record it acknowledged. c1..c3 by stream:
//   buckets  (ts, iface_id, mac)      of bucket5m, in that order
//   push     (time, id)               of push_history (time moves when a row changes)
//   host     (host_sys rowid, ended, id of proc_episodes)
//   heartbeat (id of uplink_heartbeats); acknowledged rows are deleted
constexpr SchemaPart kSchema[] = {{"uplink", 1, R"sql(
CREATE TABLE IF NOT EXISTS uplink_cursor(stream TEXT PRIMARY KEY, seq INTEGER NOT NULL,
  c1 INTEGER NOT NULL, c2 INTEGER NOT NULL, c3 INTEGER NOT NULL) WITHOUT ROWID;
)sql"},
                                  // Heartbeats of the agent's checks, until the collector has them.
                                  {"uplink", 2, R"sql(
CREATE TABLE IF NOT EXISTS uplink_heartbeats(id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
  service_name TEXT NOT NULL, ip_address TEXT NOT NULL);
)sql"}};

enum Stream { kBuckets = 0, kPush = 1, kHost = 2, kHeartbeat = 3, kFlows = 4 };
constexpr const auto& kStreams = kWireStreams;

int stream_index(const std::string& name) {
    for (size_t i = 0; i < kWireStreamCount; i++)
        if (name == kStreams[i]) return static_cast<int>(i);
    return -1;
}

constexpr size_t kAnswerCap = 64u << 10;
// Push history rows of the last seconds may still get a row with the same time and a lower
// id (another connection's transaction in flight): left for the next report.
constexpr int64_t kPushSettle = 2;

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

std::string random_spool() {
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0) got += static_cast<size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned char c : b) {
        s += hex[c >> 4];
        s += hex[c & 15];
    }
    return s;
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Resets a statement used in a loop when it goes out of scope.
struct Reset {
    SqlStmt& s;
    ~Reset() { s.reset(); }
};

std::string mac_text(int64_t mac) {
    return mac == kIfaceTotal ? "" : format_mac(mac_from_int(mac));
}

// Why an answer is not an ack, for the log: the collector's message when it gave one.
std::string refusal(long status, const std::string& body) {
    std::string msg;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) msg = j["message"].get<std::string>();
    if (msg.empty()) msg = body.substr(0, 200);
    return "HTTP " + std::to_string(status) + (msg.empty() ? "" : ": " + msg);
}

}  // namespace

Result<std::unique_ptr<Uplink>> Uplink::open(UplinkOptions o) {
    if (!o.clock) o.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
    if (o.host.empty()) o.host = host_name();
    if (o.boot_id.empty()) o.boot_id = read_boot_id(o.paths.procfs);
    std::unique_ptr<Uplink> u(new Uplink(std::move(o)));
    u->cfg_ = u->o_.cfg;
    // The store's tables (uplink_resend among them) exist before the uplink reads them.
    {
        auto st = Store::open(u->o_.database);
        if (!st) return st.error();
    }
    SqliteOptions so;
    so.mode = SqliteMode::ReadWrite;
    so.wal = true;
    so.synchronous = SqliteSync::Normal;
    so.busy_timeout_ms = 5000;
    so.open_context = "collector uplink: cannot open " + u->o_.database;
    so.error_context = "collector uplink: " + u->o_.database;
    auto db = SqliteDb::open(u->o_.database, so);
    if (!db) return db.error();
    u->db_ = std::move(*db);
    if (auto st = apply_schema(u->db_, kSchema); !st) return st.error();
    auto hb = SqliteDb::open(u->o_.database, so);
    if (!hb) return hb.error();
    u->hb_db_ = std::move(*hb);
    // The spool is drawn once: a new one tells the collector every stream starts again.
    auto ins = u->db_.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES('uplink.spool', ?)");
    if (!ins) return ins.error();
    if (auto st = u->db_.check(ins->bind(1, random_spool()).step(), "draw the spool id"); !st) return st.error();
    auto sel = u->db_.prepare("SELECT value FROM meta WHERE key = 'uplink.spool'");
    if (!sel) return sel.error();
    if (sel->step() != SQLITE_ROW) return u->db_.error(SQLITE_CORRUPT, "read the spool id");
    u->spool_ = sel->text(0);
    u->ifaces_ = u->o_.ifaces;
    auto central = load_central(u->o_.database);
    if (!central) return central.error();
    if (*central) u->central_version_ = (*central)->version;
    return u;
}

void Uplink::set_config(const UplinkConfig& c) {
    std::lock_guard l(mu_);
    cfg_ = c;
}

void Uplink::set_ifaces(const std::vector<std::string>& ifaces) {
    std::lock_guard l(mu_);
    ifaces_ = ifaces;
}

UplinkConfig Uplink::config() const {
    std::lock_guard l(mu_);
    return cfg_;
}

Status Uplink::record_heartbeat(const std::string& service_name, const std::string& ip, int64_t time_ms) {
    auto tx = SqliteTransaction::begin(hb_db_);
    if (!tx) return tx.error();
    auto ins =
        hb_db_.prepare("INSERT INTO uplink_heartbeats(time_ms, service_name, ip_address) VALUES (?1, ?2, ?3)", true);
    if (!ins) return ins.error();
    {
        Reset r{*ins};
        ins->bind(1, time_ms).bind(2, service_name).bind(3, ip);
        if (auto st = hb_db_.check(ins->step(), "store a heartbeat"); !st) return st;
    }
    // A collector away for long: the oldest go, the history does not grow without bound.
    auto trim =
        hb_db_.prepare("DELETE FROM uplink_heartbeats WHERE id <= (SELECT MAX(id) FROM uplink_heartbeats) - ?1", true);
    if (!trim) return trim.error();
    Reset r{*trim};
    if (auto st = hb_db_.check(trim->bind(1, kHeartbeatBacklog).step(), "trim heartbeats"); !st) return st;
    if (int n = sqlite3_changes(hb_db_.get()); n > 0)
        spdlog::warn("collector uplink: {} heartbeat(s) dropped: more than {} wait for the collector", n,
                     kHeartbeatBacklog);
    return tx->commit();
}

int64_t Uplink::central_version() const {
    std::lock_guard l(mu_);
    return central_version_;
}

// A version other than the stored one (newer, or an older one after the collector's
// database was restored: the collector decides) is stored before the daemon is asked to
// apply it, so a crash in between applies it at the next start.
void Uplink::take_central(const CentralConfig& c) {
    if (c.version == central_version()) return;
    if (auto st = save_central(db_, c); !st) {
        spdlog::error("collector uplink: cannot store central config v{}: {}", c.version, st.error().message());
        return;
    }
    {
        std::lock_guard l(mu_);
        central_version_ = c.version;
    }
    spdlog::info("collector: central config v{} received ({} value(s)); applying it", c.version, c.values.size());
    if (o_.on_central) o_.on_central();
}

int Uplink::interval() const {
    std::lock_guard l(mu_);
    return cfg_.interval;
}

CollectorFigures Uplink::figures() const {
    std::lock_guard l(mu_);
    return figures_;
}

Result<Uplink::Cursor> Uplink::read_cursor(const std::string& stream) {
    auto q = db_.prepare("SELECT seq, c1, c2, c3 FROM uplink_cursor WHERE stream = ?", true);
    if (!q) return q.error();
    Cursor c;
    int rc = q->bind(1, stream).step();
    if (rc == SQLITE_ROW) {
        c.seq = q->i64(0);
        for (int i = 0; i < 3; i++) c.c[i] = q->i64(1 + i);
    } else if (rc != SQLITE_DONE) {
        return db_.error(rc, "read the " + stream + " cursor");
    }
    return c;
}

Result<bool> Uplink::has_table(const char* name) {
    auto q = db_.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    if (!q) return q.error();
    int rc = q->bind(1, name).step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_.error(rc, "look for table " + std::string(name));
    return rc == SQLITE_ROW;
}

// In one write transaction, so a drain is either before it (its rows are read now) or
// after it (it sees the new seal and lists what it writes into sealed buckets).
Status Uplink::read_buckets(Pending& p, int64_t now) {
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    const int64_t seal = now - ((now % kBucketSeconds) + kBucketSeconds) % kBucketSeconds;
    {
        // Never lowered: a clock stepped back must not let a late write into a bucket
        // already sent go unlisted.
        auto q = db_.prepare(
            "INSERT INTO meta(key, value) VALUES('uplink.sealed_until', ?1) ON CONFLICT(key) DO UPDATE SET "
            "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))");
        if (!q) return q.error();
        if (auto st = db_.check(q->bind(1, seal).step(), "seal buckets"); !st) return st;
    }
    int64_t sealed = seal;
    {
        auto q = db_.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.sealed_until'");
        if (!q) return q.error();
        if (q->step() == SQLITE_ROW) sealed = q->i64(0);
    }
    auto cur = read_cursor(kStreams[kBuckets]);
    if (!cur) return cur.error();
    {
        // Listed rows the cursor has not passed yet go with the cursor, at their latest totals.
        auto q = db_.prepare("DELETE FROM uplink_resend WHERE (ts, iface_id, mac) > (?1, ?2, ?3)");
        if (!q) return q.error();
        q->bind(1, cur->c[0]).bind(2, cur->c[1]).bind(3, cur->c[2]);
        if (auto st = db_.check(q->step(), "trim uplink_resend"); !st) return st;
    }
    iface_names_.clear();
    {
        auto q = db_.prepare("SELECT id, name FROM iface ORDER BY id");
        if (!q) return q.error();
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) iface_names_[q->i64(0)] = q->text(1);
        if (rc != SQLITE_DONE) return db_.error(rc, "read interfaces");
    }
    const size_t limit = static_cast<size_t>(p.cfg.batch);
    WireBatch batch;
    batch.stream = kStreams[kBuckets];
    batch.seq = cur->seq + 1;
    auto to_wire = [&](int64_t iface, int64_t ts, int64_t mac, const SqlStmt& s, int col) {
        WireBucket b;
        b.iface = iface_names_[iface];
        b.mac = mac_text(mac);
        b.ts = ts;
        b.peak = s.i64(col) != 0;
        b.rx_bytes = static_cast<uint64_t>(s.i64(col + 1));
        b.rx_packets = static_cast<uint64_t>(s.i64(col + 2));
        b.tx_bytes = static_cast<uint64_t>(s.i64(col + 3));
        b.tx_packets = static_cast<uint64_t>(s.i64(col + 4));
        return b;
    };
    // Rows written after the uplink passed them, first: they are the oldest news.
    {
        std::vector<BucketKey> gone;  // retention removed the bucket since
        auto q = db_.prepare(
            "SELECT r.iface_id, r.ts, r.mac, b.peak, b.rx_bytes, b.rx_packets, b.tx_bytes, b.tx_packets "
            "FROM uplink_resend r LEFT JOIN bucket5m b ON b.iface_id = r.iface_id AND b.ts = r.ts AND b.mac = r.mac "
            "ORDER BY r.ts, r.iface_id, r.mac LIMIT ?1");
        if (!q) return q.error();
        q->bind(1, static_cast<int64_t>(limit));
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) {
            BucketKey k{q->i64(0), q->i64(1), q->i64(2)};
            if (q->is_null(3)) {
                gone.push_back(k);
                continue;
            }
            WireBucket b = to_wire(k.iface_id, k.ts, k.mac, *q, 3);
            p.resent.push_back({k, b.rx_bytes, b.rx_packets, b.tx_bytes, b.tx_packets});
            batch.buckets.push_back(std::move(b));
        }
        if (rc != SQLITE_DONE) return db_.error(rc, "read uplink_resend");
        if (!gone.empty()) {
            auto d = db_.prepare("DELETE FROM uplink_resend WHERE iface_id = ?1 AND ts = ?2 AND mac = ?3", true);
            if (!d) return d.error();
            for (const auto& k : gone) {
                Reset r{*d};
                if (auto st = db_.check(d->bind(1, k.iface_id).bind(2, k.ts).bind(3, k.mac).step(), "trim resend"); !st)
                    return st;
            }
        }
    }
    // Then the rows after the cursor, in (ts, iface_id, mac) order. One range of the
    // primary key (iface_id, ts, mac) per interface, merged here: ordering by ts in SQL
    // would sort every bucket kept, each report.
    const size_t room = limit - batch.buckets.size();
    if (room > 0) {
        struct Row {
            int64_t ts, iface, mac;
            WireBucket b;
        };
        std::vector<Row> rows;
        auto q = db_.prepare(
            "SELECT ts, mac, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM bucket5m "
            "WHERE iface_id = ?1 AND (ts, mac) > (?2, ?3) AND ts < ?4 ORDER BY ts, mac LIMIT ?5",
            true);
        if (!q) return q.error();
        for (const auto& [id, name] : iface_names_) {
            // Keys (c1, id, m) > cursor (c1, c2, c3), for this interface.
            const int64_t from_mac = id > cur->c[1] ? INT64_MIN : id == cur->c[1] ? cur->c[2] : INT64_MAX;
            Reset r{*q};
            q->bind(1, id).bind(2, cur->c[0]).bind(3, from_mac).bind(4, sealed).bind(5, static_cast<int64_t>(room));
            int rc;
            while ((rc = q->step()) == SQLITE_ROW) {
                int64_t ts = q->i64(0), mac = q->i64(1);
                rows.push_back({ts, id, mac, to_wire(id, ts, mac, *q, 2)});
            }
            if (rc != SQLITE_DONE) return db_.error(rc, "read buckets");
        }
        std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
            return std::tie(a.ts, a.iface, a.mac) < std::tie(b.ts, b.iface, b.mac);
        });
        if (rows.size() > room) rows.resize(room);
        if (!rows.empty()) {
            Cursor next = *cur;
            next.c[0] = rows.back().ts;
            next.c[1] = rows.back().iface;
            next.c[2] = rows.back().mac;
            p.next[kBuckets] = next;
        }
        for (auto& r : rows) batch.buckets.push_back(std::move(r.b));
    }
    // The open buckets as they are now (docs/fleet.md, `live`): no seq, no cursor; their
    // closed values follow in the stream once the seal passes them.
    {
        auto q = db_.prepare(
            "SELECT ts, mac, peak, rx_bytes, rx_packets, tx_bytes, tx_packets FROM bucket5m "
            "WHERE iface_id = ?1 AND ts >= ?2 ORDER BY ts, mac LIMIT ?3",
            true);
        if (!q) return q.error();
        for (const auto& [id, name] : iface_names_) {
            const size_t left = limit > p.report.live.size() ? limit - p.report.live.size() : 0;
            if (left == 0) break;
            Reset r{*q};
            q->bind(1, id).bind(2, sealed).bind(3, static_cast<int64_t>(left));
            int rc;
            while ((rc = q->step()) == SQLITE_ROW) p.report.live.push_back(to_wire(id, q->i64(0), q->i64(1), *q, 2));
            if (rc != SQLITE_DONE) return db_.error(rc, "read open buckets");
        }
    }
    if (auto st = tx->commit(); !st) return st;
    if (!batch.buckets.empty()) {
        if (!p.next[kBuckets]) p.next[kBuckets] = *cur;  // only resent rows: the cursor stays
        p.report.batches.push_back(std::move(batch));
    }
    return Ok{};
}

Status Uplink::read_push(Pending& p, int64_t now) {
    auto has = has_table("push_history");
    if (!has) return has.error();
    if (!*has) return Ok{};
    auto cur = read_cursor(kStreams[kPush]);
    if (!cur) return cur.error();
    // The value column comes with outbox schema 2; a table the outbox has not brought up yet
    // has rows without values.
    auto col = db_.prepare("SELECT 1 FROM pragma_table_info('push_history') WHERE name = 'value'");
    if (!col) return col.error();
    const bool has_value = col->step() == SQLITE_ROW;
    auto q = db_.prepare(std::string("SELECT id, time, node, host, sink, kind, period, bytes, status, attempts, "
                                     "last_error, ") +
                         (has_value ? "value" : "NULL") +
                         " FROM push_history WHERE (time, id) > (?1, ?2) AND time <= ?3 ORDER BY time, id LIMIT ?4");
    if (!q) return q.error();
    q->bind(1, cur->c[0]).bind(2, cur->c[1]).bind(3, now - kPushSettle).bind(4, static_cast<int64_t>(p.cfg.batch));
    WireBatch batch;
    batch.stream = kStreams[kPush];
    batch.seq = cur->seq + 1;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) {
        WirePush w;
        w.id = q->i64(0);
        w.time = q->i64(1);
        w.node = q->text(2);
        w.host = q->text(3);
        w.sink = q->text(4);
        w.kind = q->text(5);
        w.period = q->text(6);
        w.bytes = q->i64(7);
        w.status = q->text(8);
        w.attempts = q->i64(9);
        w.error = q->text(10);
        if (!q->is_null(11)) w.value = q->i64(11);
        batch.push.push_back(std::move(w));
    }
    if (rc != SQLITE_DONE) return db_.error(rc, "read push_history");
    if (batch.push.empty()) return Ok{};
    Cursor next = *cur;
    next.c[0] = batch.push.back().time;
    next.c[1] = batch.push.back().id;
    p.next[kPush] = next;
    p.report.batches.push_back(std::move(batch));
    return Ok{};
}

// Host samples by rowid and ended episodes by (ended, id), merged by time.
Status Uplink::read_host(Pending& p) {
    auto has_sys = has_table("host_sys");
    if (!has_sys) return has_sys.error();
    auto has_ep = has_table("proc_episodes");
    if (!has_ep) return has_ep.error();
    if (!*has_sys && !*has_ep) return Ok{};
    auto cur = read_cursor(kStreams[kHost]);
    if (!cur) return cur.error();
    const int64_t limit = p.cfg.batch;
    struct Rec {
        WireHost h;
        int64_t key[2];  // sys: rowid; episode: (ended, id)
    };
    std::vector<Rec> sys, eps;
    if (*has_sys) {
        auto q = db_.prepare(
            "SELECT s.rowid, s.time, s.load1, s.mem_total, s.mem_used, s.disk_total, s.disk_used, s.temperature, "
            "(SELECT c.usage FROM host_cpu c WHERE c.time = s.time LIMIT 1) "
            "FROM host_sys s WHERE s.rowid > ?1 ORDER BY s.rowid LIMIT ?2");
        if (!q) return q.error();
        q->bind(1, cur->c[0]).bind(2, limit);
        auto opt = [&](int c) { return q->is_null(c) ? std::optional<double>() : std::optional<double>(q->f64(c)); };
        auto opt_i = [&](int c) {
            return q->is_null(c) ? std::optional<int64_t>() : std::optional<int64_t>(q->i64(c));
        };
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) {
            Rec r;
            r.key[0] = q->i64(0);
            r.h.type = "sys";
            r.h.time = q->i64(1);
            r.h.load1 = opt(2);
            r.h.mem_total = opt_i(3);
            r.h.mem_used = opt(4);
            r.h.disk_total = opt_i(5);
            r.h.disk_used = opt(6);
            r.h.temperature = opt(7);
            r.h.cpu = opt(8);
            sys.push_back(std::move(r));
        }
        if (rc != SQLITE_DONE) return db_.error(rc, "read host_sys");
    }
    if (*has_ep) {
        auto q = db_.prepare(
            "SELECT id, pid, name, user, since, detected, ended, end_reason, peak_cpu, peak_mem FROM proc_episodes "
            "WHERE ended IS NOT NULL AND (ended, id) > (?1, ?2) ORDER BY ended, id LIMIT ?3");
        if (!q) return q.error();
        q->bind(1, cur->c[1]).bind(2, cur->c[2]).bind(3, limit);
        auto opt = [&](int c) { return q->is_null(c) ? std::optional<double>() : std::optional<double>(q->f64(c)); };
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) {
            Rec r;
            r.h.type = "episode";
            r.h.id = q->i64(0);
            r.h.pid = q->i64(1);
            r.h.name = q->text(2);
            r.h.user = q->text(3);
            r.h.since = q->i64(4);
            r.h.detected = q->i64(5);
            r.h.ended = r.h.time = q->i64(6);
            r.h.end_reason = q->text(7);
            r.h.peak_cpu = opt(8);
            r.h.peak_mem = opt(9);
            r.key[0] = r.h.ended;
            r.key[1] = r.h.id;
            eps.push_back(std::move(r));
        }
        if (rc != SQLITE_DONE) return db_.error(rc, "read proc_episodes");
    }
    if (sys.empty() && eps.empty()) return Ok{};
    WireBatch batch;
    batch.stream = kStreams[kHost];
    batch.seq = cur->seq + 1;
    Cursor next = *cur;
    size_t i = 0, j = 0;
    while (static_cast<int64_t>(batch.host.size()) < limit && (i < sys.size() || j < eps.size())) {
        bool take_sys = j == eps.size() || (i < sys.size() && sys[i].h.time <= eps[j].h.time);
        if (take_sys) {
            next.c[0] = sys[i].key[0];
            batch.host.push_back(std::move(sys[i++].h));
        } else {
            next.c[1] = eps[j].key[0];
            next.c[2] = eps[j].key[1];
            batch.host.push_back(std::move(eps[j++].h));
        }
    }
    p.next[kHost] = next;
    p.report.batches.push_back(std::move(batch));
    return Ok{};
}

Status Uplink::read_heartbeat(Pending& p) {
    auto cur = read_cursor(kStreams[kHeartbeat]);
    if (!cur) return cur.error();
    auto q = db_.prepare(
        "SELECT id, time_ms, service_name, ip_address FROM uplink_heartbeats WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!q) return q.error();
    q->bind(1, cur->c[0] == INT64_MIN ? 0 : cur->c[0]).bind(2, static_cast<int64_t>(p.cfg.batch));
    WireBatch batch;
    batch.stream = kStreams[kHeartbeat];
    batch.seq = cur->seq + 1;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) batch.heartbeat.push_back({q->i64(0), q->i64(1), q->text(2), q->text(3)});
    if (rc != SQLITE_DONE) return db_.error(rc, "read uplink_heartbeats");
    if (batch.heartbeat.empty()) return Ok{};
    Cursor next = *cur;
    next.c[0] = batch.heartbeat.back().id;
    p.next[kHeartbeat] = next;
    p.report.batches.push_back(std::move(batch));
    return Ok{};
}

// The pairs of every bucket that ended kFlowSettle ago, bucket by bucket (never one split
// over two reports): per bucket and interface the top flow_pairs by bytes, the rest in one
// `other` row. What is read is taken off the table once acknowledged (apply_ack), so pairs
// a later scan adds to a bucket already sent go in a later report.
Status Uplink::read_flows(Pending& p, int64_t now) {
    if (p.cfg.flow_pairs <= 0) return Ok{};
    auto has = has_table("flow_pairs");
    if (!has) return has.error();
    if (!*has) return Ok{};
    auto cur = read_cursor(kStreams[kFlows]);
    if (!cur) return cur.error();
    // A batch sent without an answer goes again as it was, with its seq: the collector may
    // hold it, and then takes the same rows as a duplicate, never other ones.
    {
        auto q = db_.prepare("SELECT value FROM meta WHERE key = 'uplink.flows_inflight'");
        if (!q) return q.error();
        if (q->step() == SQLITE_ROW) {
            auto j = nlohmann::json::parse(q->text(0), nullptr, false);
            if (j.is_object() && j.value("seq", int64_t(0)) == cur->seq + 1 && j["sent"].is_array() &&
                j["take"].is_array()) {
                WireBatch batch;
                batch.stream = kStreams[kFlows];
                batch.seq = cur->seq + 1;
                auto row = [](const nlohmann::json& r) {
                    WireFlowPair w;
                    w.ts = r.at(0);
                    w.iface = r.at(1);
                    w.other = r.at(2);
                    w.src = r.at(3);
                    w.dst = r.at(4);
                    w.proto = r.at(5);
                    w.port = r.at(6);
                    w.bytes = r.at(7);
                    w.packets = r.at(8);
                    w.flows = r.at(9);
                    return w;
                };
                for (const auto& r : j["sent"]) batch.flows.push_back(row(r));
                for (const auto& r : j["take"]) p.flow_rows.push_back(row(r));
                p.next[kFlows] = *cur;
                p.report.batches.push_back(std::move(batch));
                return Ok{};
            }
        }
    }
    auto q = db_.prepare(
        "SELECT ts, iface, client, server, proto, port, bytes, packets, flows FROM flow_pairs WHERE ts <= ?1 "
        "ORDER BY ts, iface, bytes DESC, client, server, proto, port");
    if (!q) return q.error();
    q->bind(1, now - kBucketSeconds - kFlowSettle);
    WireBatch batch;
    batch.stream = kStreams[kFlows];
    batch.seq = cur->seq + 1;
    std::vector<WireFlowPair> group;  // one bucket's rows of one interface
    bool full = false;
    auto flush = [&] {
        if (group.empty()) return;
        const size_t keep = static_cast<size_t>(p.cfg.flow_pairs);
        const size_t rows = std::min(group.size(), keep) + (group.size() > keep ? 1 : 0);
        if (batch.flows.size() + rows > static_cast<size_t>(p.cfg.batch)) {
            full = true;
            group.clear();
            return;
        }
        for (const auto& g : group) p.flow_rows.push_back(g);
        WireFlowPair other;
        other.ts = group[0].ts;
        other.iface = group[0].iface;
        other.other = true;
        for (size_t i = 0; i < group.size(); i++) {
            if (i < keep) {
                batch.flows.push_back(group[i]);
                continue;
            }
            other.bytes += group[i].bytes;
            other.packets += group[i].packets;
            other.flows += group[i].flows;
        }
        if (group.size() > keep) batch.flows.push_back(other);
        group.clear();
    };
    int rc;
    while (!full && (rc = q->step()) == SQLITE_ROW) {
        WireFlowPair w;
        w.ts = q->i64(0);
        w.iface = q->text(1);
        w.src = q->text(2);
        w.dst = q->text(3);
        w.proto = q->i64(4);
        w.port = q->i64(5);
        w.bytes = static_cast<uint64_t>(q->i64(6));
        w.packets = static_cast<uint64_t>(q->i64(7));
        w.flows = static_cast<uint64_t>(q->i64(8));
        if (!group.empty() && (group[0].ts != w.ts || group[0].iface != w.iface)) flush();
        if (!full) group.push_back(std::move(w));
    }
    if (!full) {
        if (rc != SQLITE_DONE) return db_.error(rc, "read flow_pairs");
        flush();
    }
    if (batch.flows.empty()) return Ok{};
    // Kept until acknowledged: what goes, and every row read (also those summed in `other`),
    // taken off the table then.
    auto rows = [](const std::vector<WireFlowPair>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& w : v)
            a.push_back({w.ts, w.iface, w.other, w.src, w.dst, w.proto, w.port, w.bytes, w.packets, w.flows});
        return a;
    };
    auto put = db_.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES('uplink.flows_inflight', ?1)");
    if (!put) return put.error();
    const nlohmann::json inflight = {{"seq", batch.seq}, {"sent", rows(batch.flows)}, {"take", rows(p.flow_rows)}};
    if (auto st =
            db_.check(put->bind(1, inflight.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).step(),
                      "keep the flows batch");
        !st)
        return st;
    p.next[kFlows] = *cur;
    p.report.batches.push_back(std::move(batch));
    return Ok{};
}

// Records still waiting after this report's batches: what the same conditions match,
// less what the batch took. Outside the write transaction, so a drain never waits for it.
Status Uplink::count_backlog(Pending& p, int64_t now) {
    auto count = [&](const std::string& sql, const std::function<void(SqlStmt&)>& bind) -> Result<int64_t> {
        auto q = db_.prepare(sql);
        if (!q) return q.error();
        bind(*q);
        int rc = q->step();
        if (rc != SQLITE_ROW) return db_.error(rc, "count the backlog");
        return q->i64(0);
    };
    auto sent = [&](Stream s) -> int64_t {
        for (const auto& b : p.report.batches)
            if (b.stream == kStreams[s]) return static_cast<int64_t>(b.size());
        return 0;
    };
    // Counted from the old cursors: the batch is part of the count, then taken off.
    auto bc = read_cursor(kStreams[kBuckets]);
    if (!bc) return bc.error();
    int64_t sealed = 0;
    {
        auto q = db_.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.sealed_until'");
        if (!q) return q.error();
        if (q->step() == SQLITE_ROW) sealed = q->i64(0);
    }
    int64_t buckets = 0;
    for (const auto& [id, name] : iface_names_) {
        const int64_t from_mac = id > bc->c[1] ? INT64_MIN : id == bc->c[1] ? bc->c[2] : INT64_MAX;
        auto n = count("SELECT COUNT(*) FROM bucket5m WHERE iface_id = ?1 AND (ts, mac) > (?2, ?3) AND ts < ?4",
                       [&](SqlStmt& q) { q.bind(1, id).bind(2, bc->c[0]).bind(3, from_mac).bind(4, sealed); });
        if (!n) return n.error();
        buckets += *n;
    }
    auto resend = count("SELECT COUNT(*) FROM uplink_resend", [](SqlStmt&) {});
    if (!resend) return resend.error();
    p.report.backlog_buckets = std::max<int64_t>(0, buckets + *resend - sent(kBuckets));

    auto has = has_table("push_history");
    if (!has) return has.error();
    if (*has) {
        auto pc = read_cursor(kStreams[kPush]);
        if (!pc) return pc.error();
        auto n = count("SELECT COUNT(*) FROM push_history WHERE (time, id) > (?1, ?2) AND time <= ?3",
                       [&](SqlStmt& q) { q.bind(1, pc->c[0]).bind(2, pc->c[1]).bind(3, now - kPushSettle); });
        if (!n) return n.error();
        p.report.backlog_push = std::max<int64_t>(0, *n - sent(kPush));
    }
    auto hc = read_cursor(kStreams[kHost]);
    if (!hc) return hc.error();
    int64_t host = 0;
    for (auto [table, sql] :
         {std::pair{"host_sys", "SELECT COUNT(*) FROM host_sys WHERE rowid > ?1"},
          std::pair{"proc_episodes",
                    "SELECT COUNT(*) FROM proc_episodes WHERE ended IS NOT NULL AND (ended, id) > (?2, ?3)"}}) {
        auto h = has_table(table);
        if (!h) return h.error();
        if (!*h) continue;
        auto n = count(sql, [&](SqlStmt& q) {
            if (std::string(table) == "host_sys")
                q.bind(1, hc->c[0]);
            else
                q.bind(2, hc->c[1]).bind(3, hc->c[2]);
        });
        if (!n) return n.error();
        host += *n;
    }
    p.report.backlog_host = std::max<int64_t>(0, host - sent(kHost));
    auto hbc = read_cursor(kStreams[kHeartbeat]);
    if (!hbc) return hbc.error();
    auto hbn = count("SELECT COUNT(*) FROM uplink_heartbeats WHERE id > ?1",
                     [&](SqlStmt& q) { q.bind(1, hbc->c[0] == INT64_MIN ? 0 : hbc->c[0]); });
    if (!hbn) return hbn.error();
    p.report.backlog_heartbeat = std::max<int64_t>(0, *hbn - sent(kHeartbeat));
    auto fp = has_table("flow_pairs");
    if (!fp) return fp.error();
    if (*fp && p.cfg.flow_pairs > 0) {
        auto n = count("SELECT COUNT(*) FROM flow_pairs WHERE ts <= ?1",
                       [&](SqlStmt& q) { q.bind(1, now - kBucketSeconds - kFlowSettle); });
        if (!n) return n.error();
        p.report.backlog_flows = std::max<int64_t>(0, *n - static_cast<int64_t>(p.flow_rows.size()));
    }
    return Ok{};
}

WireAgent Uplink::agent(const UplinkConfig& cfg, int64_t now) const {
    WireAgent a;
    a.name = cfg.name;
    a.host = o_.host;
    a.node = cfg.node;
    a.version = std::string(kVersion) + " (commit " + kGitCommit + ")";
    a.boot_id = o_.boot_id;
    a.interval = cfg.interval;
    a.time = now;
    std::vector<std::string> ifaces;
    {
        std::lock_guard l(mu_);
        ifaces = ifaces_;
    }
    for (const auto& i : ifaces) {
        std::string mac = first_line(o_.paths.sysfs + "/class/net/" + i + "/address");
        a.interfaces.push_back({i, parse_mac(mac) ? mac : "", true});
    }
    return a;
}

// In one transaction per ack: each stream the collector now holds moves its cursor to the
// last record sent and forgets the resent rows that have not changed since they were read.
Status Uplink::apply_ack(const Pending& p, WireAck ack) {
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    auto put = db_.prepare(
        "INSERT INTO uplink_cursor(stream, seq, c1, c2, c3) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(stream) DO UPDATE "
        "SET seq = excluded.seq, c1 = excluded.c1, c2 = excluded.c2, c3 = excluded.c3");
    if (!put) return put.error();
    for (const auto& b : p.report.batches) {
        const int s = stream_index(b.stream);
        int64_t acked = *ack.of(b.stream);
        if (s < 0 || acked < b.seq || !p.next[s]) continue;  // not held: the same batch goes again
        const Cursor& n = *p.next[s];
        Reset r{*put};
        put->bind(1, b.stream).bind(2, acked).bind(3, n.c[0]).bind(4, n.c[1]).bind(5, n.c[2]);
        if (auto st = db_.check(put->step(), "move the " + b.stream + " cursor"); !st) return st;
        if (s == kFlows) {
            // Exactly what was sent comes off: a scan may have added to a row since.
            auto sub = db_.prepare(
                "UPDATE flow_pairs SET bytes = bytes - ?7, packets = packets - ?8, flows = flows - ?9 WHERE ts = ?1 "
                "AND iface = ?2 AND client = ?3 AND server = ?4 AND proto = ?5 AND port = ?6",
                true);
            if (!sub) return sub.error();
            for (const auto& f : p.flow_rows) {
                Reset rs{*sub};
                sub->bind(1, f.ts).bind(2, f.iface).bind(3, f.src).bind(4, f.dst).bind(5, f.proto).bind(6, f.port);
                sub->bind(7, f.bytes).bind(8, f.packets).bind(9, f.flows);
                if (auto st = db_.check(sub->step(), "take sent flow pairs off"); !st) return st;
            }
            if (auto st = db_.exec(
                    "DELETE FROM flow_pairs WHERE bytes <= 0 AND packets <= 0 AND flows <= 0; DELETE FROM meta WHERE "
                    "key = 'uplink.flows_inflight'");
                !st)
                return st;
            continue;
        }
        if (s == kHeartbeat) {
            // The collector holds them: nothing here needs them any more.
            auto del = db_.prepare("DELETE FROM uplink_heartbeats WHERE id <= ?1");
            if (!del) return del.error();
            if (auto st = db_.check(del->bind(1, n.c[0]).step(), "forget sent heartbeats"); !st) return st;
            continue;
        }
        if (s != kBuckets || p.resent.empty()) continue;
        // A drain since the read changed a row: it stays listed and goes again.
        auto del = db_.prepare(
            "DELETE FROM uplink_resend WHERE iface_id = ?1 AND ts = ?2 AND mac = ?3 AND NOT EXISTS (SELECT 1 FROM "
            "bucket5m b WHERE b.iface_id = ?1 AND b.ts = ?2 AND b.mac = ?3 AND NOT (b.rx_bytes = ?4 AND "
            "b.rx_packets = ?5 AND b.tx_bytes = ?6 AND b.tx_packets = ?7))",
            true);
        if (!del) return del.error();
        for (const auto& x : p.resent) {
            Reset rd{*del};
            del->bind(1, x.key.iface_id).bind(2, x.key.ts).bind(3, x.key.mac);
            del->bind(4, x.rx_bytes).bind(5, x.rx_packets).bind(6, x.tx_bytes).bind(7, x.tx_packets);
            if (auto st = db_.check(del->step(), "forget resent buckets"); !st) return st;
        }
    }
    return tx->commit();
}

// A 409: the collector holds less than this agent thinks (its database was restored).
// The next batch takes the seq after what it holds; the records stay where they are.
Status Uplink::resync_seq(const Pending& p, WireAck ack) {
    auto q = db_.prepare("UPDATE uplink_cursor SET seq = ?2 WHERE stream = ?1");
    if (!q) return q.error();
    for (const auto& b : p.report.batches) {
        int64_t acked = *ack.of(b.stream);
        if (acked >= b.seq - 1) continue;
        spdlog::warn("collector holds {} batch {} of this agent, not {}: sending from {}", b.stream, acked, b.seq - 1,
                     acked + 1);
        Reset r{*q};
        if (auto st = db_.check(q->bind(1, b.stream).bind(2, acked).step(), "resync seq"); !st) return st;
    }
    return Ok{};
}

void Uplink::link_down(const std::string& why, int64_t waiting) {
    {
        std::lock_guard l(mu_);
        figures_.errors++;
        figures_.backlog = static_cast<uint64_t>(waiting);
    }
    if (link_up_ == false) return;
    link_up_ = false;
    spdlog::warn("collector unreachable: {}; {} records waiting", why, waiting);
}

void Uplink::note_link(int64_t now, int64_t backlog, const std::string& error) {
    auto put = db_.prepare("INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
    if (!put) return;
    auto set = [&](const char* key, const std::string& value) {
        Reset r{*put};
        put->bind(1, key).bind(2, value);
        if (auto st = db_.check(put->step(), "note the collector link"); !st)
            spdlog::debug("collector uplink: {}", st.error().message());
    };
    set("uplink.last_attempt", std::to_string(now));
    if (error.empty()) set("uplink.last_ack", std::to_string(now));
    set("uplink.backlog", std::to_string(backlog));
    set("uplink.last_error", error);
}

void Uplink::link_up(int64_t waiting) {
    if (link_up_ == false) spdlog::info("collector reachable again; {} records were waiting", waiting);
    link_up_ = true;
}

Result<UplinkOutcome> Uplink::report_once() {
    Pending p;
    {
        std::lock_guard l(mu_);
        p.cfg = cfg_;
    }
    const int64_t now = o_.clock();
    Status st = read_buckets(p, now);
    if (st) st = read_push(p, now);
    if (st) st = read_host(p);
    if (st) st = read_heartbeat(p);
    if (st) st = read_flows(p, now);
    if (st) st = count_backlog(p, now);
    if (!st) {
        std::lock_guard l(mu_);
        figures_.errors++;
        return st.error();
    }
    p.report.agent = agent(p.cfg, now);
    if (auto cs = load_central_status(db_); cs) {
        p.report.agent.config_version = cs->version;
        p.report.agent.config_problems = cs->problems;
    }
    p.report.spool = spool_;
    UplinkOutcome out;
    for (const auto& b : p.report.batches) out.sent += b.size();
    out.body = render_report(p.report);
    const int64_t waiting = static_cast<int64_t>(out.sent) + p.report.backlog();

    curl_init_once();
    HttpRequest req;
    req.method = HttpMethod::Post;
    req.url = p.cfg.url + "/api/v1/agents/report";
    req.headers = {"Authorization: Bearer " + p.cfg.token, "Content-Type: application/json", "Content-Encoding: gzip"};
    req.body = gzip_compress(out.body);
    req.ca_file = p.cfg.ca_file;
    req.user_agent = "peakflow-bpf/" + std::string(kVersion);
    req.connect_timeout = std::chrono::seconds(10);
    req.timeout = std::chrono::seconds(30);
    req.max_response_bytes = kAnswerCap;
    req.over_cap = OverCap::Fail;
    auto r = http_request(req);
    if (!r) {
        out.error = r.error().message();
    } else if (r->status != 200) {
        out.error = refusal(r->status, r->body);
        if (r->status == 409)
            if (auto ack = parse_ack(r->body); ack)
                if (auto s = resync_seq(p, *ack); !s) spdlog::warn("collector uplink: {}", s.error().message());
    } else if (auto ack = parse_ack(r->body); !ack) {
        out.error = "bad answer: " + ack.error().message();
    } else if (auto s = apply_ack(p, *ack); !s) {
        // The collector holds the batch; the cursor did not move: it goes again, and is
        // acknowledged without being stored twice.
        std::lock_guard l(mu_);
        figures_.errors++;
        return s.error();
    } else {
        out.acked = true;
        if (ack->config) take_central(*ack->config);
    }
    if (!out.acked) {
        out.backlog = waiting;
        link_down(out.error, waiting);
        note_link(now, waiting, out.error);
        return out;
    }
    out.backlog = p.report.backlog();
    link_up(waiting);
    note_link(now, out.backlog, "");
    {
        std::lock_guard l(mu_);
        figures_.backlog = static_cast<uint64_t>(out.backlog);
        figures_.last_ack = now;
    }
    return out;
}

// ---- the service ---------------------------------------------------------------------

namespace {

// Reports every interval on its own thread, and again at once while a backlog remains and
// the collector keeps acknowledging: an outage drains as fast as the collector takes it. A
// second thread runs the heartbeat checks and has each passing one reported at once.
class UplinkService : public Service {
  public:
    UplinkService(std::unique_ptr<Uplink> u, Paths paths) : u_(std::move(u)), paths_(std::move(paths)) {
        th_ = std::thread([this] { run_guarded("collector uplink", [this] { run(); }); });
        checks_th_ = std::thread([this] { run_guarded("heartbeat checks", [this] { run_checks(); }); });
    }
    ~UplinkService() override { stop(); }
    std::string name() const override { return "collector"; }
    void reload(const ServiceContext& next) override {
        const UplinkConfig& c = next.sections.get<UplinkConfig>();
        if (!c.configured) {
            spdlog::warn("collector: removing the collector section takes effect after a restart");
            return;
        }
        u_->set_config(c);
        u_->set_ifaces(next.ifaces);
        cv_.notify_all();  // the checks thread picks up a changed list
    }
    void stats(DaemonStats& s) const override { s.collector = u_->figures(); }
    void stop() override {
        {
            std::lock_guard l(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        if (th_.joinable()) th_.join();
        if (checks_th_.joinable()) checks_th_.join();
    }

  private:
    void run() {
        std::unique_lock l(mu_);
        while (!stopping_) {
            nudged_ = false;
            l.unlock();
            bool more = false;
            run_once_guarded("collector uplink", [&] {
                auto o = u_->report_once();
                if (!o) {
                    spdlog::warn("collector uplink: {}", o.error().message());
                    return;
                }
                more = o->acked && o->sent > 0 && o->backlog > 0;
            });
            l.lock();
            if (!more) cv_.wait_for(l, std::chrono::seconds(u_->interval()), [this] { return stopping_ || nudged_; });
        }
    }

    // Each check on its own interval; a passing one is stored and reported now. A check's
    // state changes are logged once (failing with why, passing again).
    void run_checks() {
        using SteadyClock = std::chrono::steady_clock;
        std::map<std::string, SteadyClock::time_point> due;
        std::map<std::string, bool> passing;
        std::unique_lock l(mu_);
        while (!stopping_) {
            l.unlock();
            const UplinkConfig cfg = u_->config();
            auto next = SteadyClock::now() + std::chrono::seconds(60);
            std::string fallback;
            bool recorded = false;
            for (const auto& c : cfg.heartbeats) {
                auto now = SteadyClock::now();
                auto [it, fresh] = due.try_emplace(c.service_name, now);
                if (it->second <= now) {
                    it->second = now + std::chrono::seconds(c.interval);
                    CheckResult r = run_heartbeat_check(c, paths_);
                    auto [was, first] = passing.try_emplace(c.service_name, !r.ok);
                    if (r.ok != was->second || first) {
                        if (r.ok)
                            spdlog::info("heartbeat {}: {} passes", c.service_name, c.check);
                        else
                            spdlog::warn("heartbeat {}: {} fails: {}; no heartbeat is sent until it passes",
                                         c.service_name, c.check, r.why);
                        was->second = r.ok;
                    }
                    if (r.ok) {
                        if (fallback.empty()) fallback = source_address_for(cfg.url);
                        if (fallback.empty()) fallback = "127.0.0.1";
                        const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count();
                        if (auto st = u_->record_heartbeat(c.service_name, heartbeat_ip(c, fallback), ms); !st)
                            spdlog::warn("heartbeat {}: {}", c.service_name, st.error().message());
                        else
                            recorded = true;
                    }
                }
                next = std::min(next, it->second);
            }
            l.lock();
            if (recorded) {
                nudged_ = true;
                cv_.notify_all();
            }
            cv_.wait_until(l, next, [&] { return stopping_ || u_->config().heartbeats != cfg.heartbeats; });
        }
    }

    std::unique_ptr<Uplink> u_;
    Paths paths_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    bool nudged_ = false;
    std::thread th_, checks_th_;
};

}  // namespace

Result<std::unique_ptr<Service>> make_uplink_service(ServiceContext& ctx) {
    const UplinkConfig& cfg = ctx.sections.get<UplinkConfig>();
    if (!cfg.configured) return std::unique_ptr<Service>();
    UplinkOptions o;
    o.database = ctx.accounting.database;
    o.cfg = cfg;
    o.clock = ctx.clock;
    o.ifaces = ctx.ifaces;
    o.paths = ctx.paths;
    o.on_central = ctx.request_reload;
    auto u = Uplink::open(std::move(o));
    if (!u) return u.error();
    spdlog::info("collector: reporting to {} as {} every {} s (spool {})", cfg.url, cfg.name, cfg.interval,
                 (*u)->spool());
    if (!cfg.heartbeats.empty())
        spdlog::info("collector: {} heartbeat check(s), sent through the collector link", cfg.heartbeats.size());
    return std::unique_ptr<Service>(std::make_unique<UplinkService>(std::move(*u), ctx.paths));
}

}  // namespace pf
