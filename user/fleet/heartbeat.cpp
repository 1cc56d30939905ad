#include "peakflow/fleet/heartbeat.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "peakflow/fleet/fleet_store.hpp"
#include "pg_session.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Reports: one row each, `id` never reused (AUTOINCREMENT), pruned by time after the
// retention. `reporter` is the heartbeat token's name ('' for an allowed address).
constexpr SchemaPart kHeartbeatSchema[] = {{"heartbeat", 1, R"(
CREATE TABLE IF NOT EXISTS heartbeat_reports(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, ip_address TEXT NOT NULL,
  service_name TEXT NOT NULL, reporter TEXT NOT NULL DEFAULT '', source_addr TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS heartbeat_reports_time ON heartbeat_reports(time_ms);
CREATE TABLE IF NOT EXISTS heartbeat_tokens(
  name TEXT PRIMARY KEY, token_hash TEXT NOT NULL, created INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS heartbeat_tokens_hash ON heartbeat_tokens(token_hash);
)"},
                                           // Heartbeats agents sent from their backlog after an
                                           // outage (kHeartbeatLateMs): never counted as live.
                                           {"heartbeat", 2, R"(
ALTER TABLE heartbeat_reports ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
)"}};

// The requirements' answer to a stored report, verbatim: "heartbeat report recorded".
constexpr const char* kRecorded =
    "\xe6\x8e\xa2\xe6\xb4\xbb\xe6\x8a\xa5\xe5\x91\x8a\xe5\xb7\xb2\xe8\xae\xb0\xe5\xbd\x95";

const char* const kTrafficKeys[] = {"data_collection_to_kafka", "kafka_to_database", "database_to_backend",
                                    "redis_to_backend", "backend_to_frontend"};

std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

HeartbeatReply refused(int status, std::string message) {
    return HeartbeatReply{status, "", std::move(message)};
}

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with_nocase(const std::string& s, const std::string& prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); i++)
        if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
    return true;
}

bool valid_heartbeat_token_shape(const std::string& t) {
    const size_t n = std::strlen(kHeartbeatTokenPrefix);
    if (t.size() != n + 64 || t.compare(0, n, kHeartbeatTokenPrefix) != 0) return false;
    return std::all_of(t.begin() + static_cast<std::ptrdiff_t>(n), t.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

int64_t since_ms(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

struct PgFreeOptions {
    void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

std::unique_ptr<PQconninfoOption, PgFreeOptions> parse_conninfo(const std::string& conninfo) {
    char* err = nullptr;
    PQconninfoOption* o = PQconninfoParse(conninfo.c_str(), &err);
    if (err) PQfreemem(err);  // may quote the string, so never shown
    return std::unique_ptr<PQconninfoOption, PgFreeOptions>(o);
}

// The secrets a connection string holds (libpq marks them with dispchar '*').
std::vector<std::string> conninfo_secrets(const std::string& conninfo) {
    std::vector<std::string> out;
    auto opts = parse_conninfo(conninfo);
    if (!opts) return out;
    for (auto* o = opts.get(); o->keyword; o++)
        if (o->val && *o->val && o->dispchar && o->dispchar[0] == '*') out.emplace_back(o->val);
    return out;
}

// A message with every secret of `conninfo` as "***" (libpq does not echo a password, but
// the rule is kept here rather than trusted to every message).
std::string scrub(std::string msg, const std::string& conninfo) {
    for (const auto& s : conninfo_secrets(conninfo))
        for (size_t at; (at = msg.find(s)) != std::string::npos;) msg.replace(at, s.size(), "***");
    return msg;
}

// The numeric address a connection string names (hostaddr, else a host that is an
// address); "" for a socket directory or a host name.
std::string conninfo_address(const std::string& conninfo) {
    auto opts = parse_conninfo(conninfo);
    if (!opts) return "";
    std::string host, hostaddr;
    for (auto* o = opts.get(); o->keyword; o++) {
        if (!o->val) continue;
        if (std::strcmp(o->keyword, "host") == 0) host = o->val;
        if (std::strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
    }
    if (valid_ip_address(hostaddr)) return hostaddr;
    return valid_ip_address(host) ? host : "";
}

// The requirements' edges between service types, each `from_to`.
struct Edge {
    const char* key;
    const char* from;
    const char* to;
};
constexpr Edge kEdges[] = {{"data_collection_to_kafka", "data_collection", "kafka_process"},
                           {"kafka_to_database", "kafka_process", "database"},
                           {"database_to_backend", "database", "backend"},
                           {"redis_to_backend", "redis", "backend"},
                           {"backend_to_frontend", "backend", "frontend"}};

}  // namespace

// ---- types, addresses, formats ------------------------------------------------------

std::vector<HeartbeatType> default_heartbeat_types() {
    return {{"\xe6\x95\xb0\xe6\x8d\xae\xe9\x87\x87\xe9\x9b\x86", "data_collection", 120},  // 数据采集
            {"kafka", "kafka_process", 120},
            {"redis", "redis", 60},
            {"\xe5\x90\x8e\xe7\xab\xaf", "backend", 60},    // 后端
            {"\xe5\x89\x8d\xe7\xab\xaf", "frontend", 60}};  // 前端
}

const std::vector<std::string>& heartbeat_document_types() {
    static const std::vector<std::string> keys = {"data_collection", "kafka_process", "redis", "frontend", "backend"};
    return keys;
}

bool valid_ip_address(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Result<Cidr> Cidr::parse(const std::string& text) {
    Cidr c;
    const size_t slash = text.find('/');
    const std::string addr = text.substr(0, slash);
    if (inet_pton(AF_INET, addr.c_str(), c.bytes_) == 1) {
        c.family_ = AF_INET;
        c.bits_ = 32;
    } else if (inet_pton(AF_INET6, addr.c_str(), c.bytes_) == 1) {
        c.family_ = AF_INET6;
        c.bits_ = 128;
    } else {
        return Error("'" + text + "' is not an address block: use 10.0.0.0/8, fd00::/8 or one address");
    }
    if (slash != std::string::npos) {
        const std::string len = text.substr(slash + 1);
        const int max = c.bits_;
        if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) || std::stoi(len) > max)
            return Error("'" + text + "': the prefix length must be 0 to " + std::to_string(max));
        c.bits_ = std::stoi(len);
    }
    return c;
}

bool Cidr::contains(const std::string& address) const {
    unsigned char a[16] = {};
    int family = 0;
    if (inet_pton(AF_INET, address.c_str(), a) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, address.c_str(), a) == 1) {
        family = AF_INET6;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (family_ == AF_INET && std::memcmp(a, mapped, 12) == 0) {
            std::memmove(a, a + 12, 4);
            family = AF_INET;
        }
    }
    if (family == 0 || family != family_) return false;
    const int whole = bits_ / 8, rest = bits_ % 8;
    if (std::memcmp(a, bytes_, static_cast<size_t>(whole)) != 0) return false;
    if (rest == 0) return true;
    const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (bytes_[whole] & mask);
}

std::string conninfo_problem(const std::string& conninfo) {
    if (conninfo.empty()) return "must not be empty";
    if (!parse_conninfo(conninfo))
        return "is not a PostgreSQL connection string: use key=value pairs (host=db1 dbname=app user=probe) or a "
               "postgresql:// URI";
    return "";
}

std::string mask_conninfo(const std::string& conninfo) {
    auto opts = parse_conninfo(conninfo);
    if (!opts) return "(not a connection string)";
    std::string out;
    for (auto* o = opts.get(); o->keyword; o++) {
        if (!o->val) continue;
        std::string v = o->dispchar && o->dispchar[0] == '*' ? "***" : o->val;
        if (v.empty() || v.find_first_of(" '\\") != std::string::npos) {
            std::string q = "'";
            for (char ch : v) q += ch == '\'' || ch == '\\' ? std::string("\\") + ch : std::string(1, ch);
            v = q + "'";
        }
        out += (out.empty() ? "" : " ") + std::string(o->keyword) + "=" + v;
    }
    return out;
}

std::string iso8601_ms(int64_t ms) {
    const time_t s = static_cast<time_t>(ms / 1000);
    tm t{};
    gmtime_r(&s, &t);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

std::string replace_addresses(const std::string& text, const std::function<std::string(const std::string&)>& shown) {
    auto addr_char = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; };
    std::string out;
    for (size_t i = 0; i < text.size();) {
        if (!addr_char(text[i])) {
            out += text[i++];
            continue;
        }
        size_t j = i;
        while (j < text.size() && addr_char(text[j])) j++;
        std::string run = text.substr(i, j - i);
        std::string tail;
        while (!run.empty() && (run.back() == '.' || run.back() == ':')) {  // "...at 10.0.0.5."
            tail.insert(tail.begin(), run.back());
            run.pop_back();
        }
        // A run inside a word ("abc10.0.0.1") is not an address of its own.
        const bool word_before = i > 0 && std::isalnum(static_cast<unsigned char>(text[i - 1]));
        const bool word_after = j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]));
        out += !word_before && !word_after && valid_ip_address(run) ? shown(run) + tail : run + tail;
        i = j;
    }
    return out;
}

// ---- probes -------------------------------------------------------------------------

void probe_postgres(const std::string& conninfo, double timeout_s, DbProbe& out) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    const std::string budget = std::to_string(static_cast<int64_t>(timeout_s * 1000)) + " ms (heartbeat.probe_timeout)";
    std::string why;
    if (auto c = PgSession::connect(conninfo, deadline, budget); !c) {
        why = c.error().message();
    } else if (auto rows = c->query("SELECT 1", {}, deadline, "SELECT 1", budget); !rows) {
        why = rows.error().message();
    } else if (rows->size() != 1 || rows->front().size() != 1 || rows->front()[0] != "1") {
        why = "SELECT 1 did not answer 1";
    }
    out.probed = true;
    out.connected = why.empty();
    out.error = scrub(why, conninfo);
    out.duration_ms = since_ms(t0);
}

void probe_sqlite(const std::string& path, double timeout_s, DbProbe& out) {
    const auto t0 = Clock::now();
    out.probed = true;
    SqliteOptions o;
    o.mode = SqliteMode::ReadOnly;
    o.busy_timeout_ms = static_cast<int>(timeout_s * 1000);
    auto db = SqliteDb::open(path, o);
    std::string why;
    if (!db) {
        why = db.error().message();
    } else {
        for (const char* sql : {"SELECT 1", "PRAGMA schema_version"}) {
            auto q = db->prepare(sql);
            if (!q) {
                why = q.error().message();
                break;
            }
            if (const int rc = q->step(); rc != SQLITE_ROW) {
                why = db->error(rc, sql).message();
                break;
            }
        }
    }
    out.connected = why.empty();
    out.error = why;
    out.duration_ms = since_ms(t0);
}

// ---- traffic_source: tables ----------------------------------------------------------

std::vector<TrafficTable> default_traffic_tables() {
    return {
        {"data_collection_to_kafka", "node_monitor_metrics", "created_at", "timestamp", "ip_address", "", "",
         "kafka_server"},
        {"kafka_to_database", "node_monitor_metrics", "created_at", "timestamp", "", "", "kafka_server", "database"},
        {"database_to_backend", "database_access_log", "access_time", "timestamp", "", "client_ip", "database", ""},
        {"redis_to_backend", "redis_access_log", "access_time", "timestamp", "", "client_ip", "redis_server", ""},
        {"backend_to_frontend", "access_logs", "access_time", "timestamp", "server_ip", "client_ip", "", ""}};
}

std::string sql_name_problem(const std::string& name, bool with_schema) {
    auto ident = [](const std::string& p) {
        return !p.empty() && p.size() <= 63 && !std::isdigit(static_cast<unsigned char>(p[0])) &&
               std::all_of(p.begin(), p.end(),
                           [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    };
    const size_t dot = with_schema ? name.find('.') : std::string::npos;
    const bool ok = dot == std::string::npos ? ident(name) : ident(name.substr(0, dot)) && ident(name.substr(dot + 1));
    if (ok) return "";
    return "'" + name + "': use a name of A-Z a-z 0-9 _ (up to 63, not starting with a digit)" +
           std::string(with_schema ? ", optionally schema.table" : "");
}

namespace {

// A checked name quoted, folded to lower case as PostgreSQL folds an unquoted one.
std::string sql_quote(const std::string& name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '.') {
            out += "\".\"";
            continue;
        }
        out += ascii_lower(c);
    }
    return out + "\"";
}

}  // namespace

std::vector<EdgeCount> count_traffic_tables(const std::string& conninfo, const std::vector<TrafficTable>& tables,
                                            int64_t start, int64_t end, double timeout_s) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    const std::string budget =
        std::to_string(static_cast<int64_t>(timeout_s * 1000)) + " ms (heartbeat.traffic_timeout)";
    std::vector<EdgeCount> out;
    for (const auto& t : tables) out.push_back(EdgeCount{t.edge, {}, false, ""});
    auto fail_rest = [&](size_t from, const std::string& why) {
        for (size_t i = from; i < out.size(); i++) out[i].error = scrub(why, conninfo);
    };
    auto c = PgSession::connect(conninfo, deadline, budget);
    if (!c) {
        fail_rest(0, c.error().message());
        return out;
    }
    // Only reads, and the server gives up on a query when we do.
    const std::string ms = std::to_string(std::max<int64_t>(1, static_cast<int64_t>(timeout_s * 1000)));
    if (auto r = c->query("SELECT set_config('statement_timeout', $1, false), "
                          "set_config('default_transaction_read_only', 'on', false)",
                          {ms}, deadline, "the session settings", budget);
        !r) {
        fail_rest(0, r.error().message());
        return out;
    }
    for (size_t i = 0; i < tables.size(); i++) {
        const TrafficTable& t = tables[i];
        std::vector<std::string> cols;
        if (!t.source.empty()) cols.push_back(t.source);
        if (!t.target.empty()) cols.push_back(t.target);
        std::string sql = "SELECT ";
        for (const auto& col : cols) sql += "CAST(" + sql_quote(col) + " AS text), ";
        const std::string at = sql_quote(t.time);
        const int64_t scale = t.time_type == "unix_ms" ? 1000 : 1;
        sql += "COUNT(*) FROM " + sql_quote(t.table) + " WHERE ";
        sql += t.time_type == "timestamp"
                   ? at + " >= to_timestamp($1::float8) AND " + at + " < to_timestamp($2::float8)"
                   : at + " >= $1::int8 AND " + at + " < $2::int8";
        if (!cols.empty()) {
            sql += " GROUP BY 1";
            if (cols.size() == 2) sql += ", 2";
            sql += " ORDER BY " + std::to_string(cols.size() + 1) + " DESC, 1";
            if (cols.size() == 2) sql += ", 2";
            sql += " LIMIT " + std::to_string(kTrafficTableMaxPairs + 1);
        }
        auto rows = c->query(sql, {std::to_string(start * scale), std::to_string(end * scale)}, deadline,
                             "the count of " + t.table, budget);
        if (!rows) {
            out[i].error = scrub(t.table + ": " + rows.error().message(), conninfo);
            // A query the deadline cut off leaves the connection busy: the rest are not counted.
            if (!c->idle()) {
                fail_rest(i + 1, "not counted: " + rows.error().message());
                break;
            }
            continue;
        }
        for (const auto& r : *rows) {
            if (out[i].pairs.size() == kTrafficTableMaxPairs) {
                out[i].truncated = true;
                break;
            }
            // A NULL address is a row of its own, not lost: shown as "".
            auto cell = [&](size_t k) { return r[k] ? r[k]->substr(0, kHeartbeatMaxName) : std::string(); };
            TableCount tc;
            size_t k = 0;
            tc.source = t.source.empty() ? t.source_label : cell(k++);
            tc.target = t.target.empty() ? t.target_label : cell(k++);
            tc.rows = r[k] ? std::stoll(*r[k]) : 0;
            if (tc.rows > 0) out[i].pairs.push_back(std::move(tc));
        }
    }
    return out;
}

// ---- tokens -------------------------------------------------------------------------

std::span<const SchemaPart> heartbeat_schema() {
    return kHeartbeatSchema;
}

Result<std::string> heartbeat_token_create(FleetStore& store, const std::string& name, int64_t now) {
    if (!valid_agent_name(name)) return Error("heartbeat token name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
    unsigned char raw[32];
    for (size_t got = 0; got < sizeof raw;) {
        const ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error("getrandom", "", errno);
        }
        got += static_cast<size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string token = kHeartbeatTokenPrefix;
    for (unsigned char b : raw) {
        token += hex[b >> 4];
        token += hex[b & 15];
    }
    return store.with_db([&](StoreDb& db) -> Result<std::string> {
        auto tx = db.begin();
        if (!tx) return tx.error();
        auto q = db.prepare("SELECT revoked FROM heartbeat_tokens WHERE name = ?");
        if (!q) return q.error();
        q->bind(1, name);
        const int rc = q->step();
        if (rc == SQLITE_ROW && q->i64(0) == 0)
            return Error("heartbeat token '" + name + "' exists", "", 0,
                         "revoke it first: peakflow-collector heartbeat token revoke " + name);
        if (auto st = db.check(rc, "read heartbeat token"); !st) return st.error();
        auto up = db.prepare(
            "INSERT INTO heartbeat_tokens(name, token_hash, created, revoked) VALUES (?1, ?2, ?3, 0) "
            "ON CONFLICT(name) DO UPDATE SET token_hash = ?2, created = ?3, revoked = 0");
        if (!up) return up.error();
        up->bind(1, name).bind(2, sha256_hex(token)).bind(3, now);
        if (auto st = db.check(up->step(), "store heartbeat token"); !st) return st.error();
        if (auto st = tx->commit(); !st) return st.error();
        return token;
    });
}

Status heartbeat_token_revoke(FleetStore& store, const std::string& name) {
    return store.with_db([&](StoreDb& db) -> Status {
        auto q = db.prepare("UPDATE heartbeat_tokens SET revoked = 1 WHERE name = ?");
        if (!q) return q.error();
        q->bind(1, name);
        if (auto st = db.check(q->step(), "revoke heartbeat token"); !st) return st;
        if (db.changes() == 0)
            return Error("no heartbeat token named '" + name + "'", "", 0,
                         "peakflow-collector heartbeat token list shows them");
        return Ok{};
    });
}

Result<std::vector<HeartbeatTokenRow>> heartbeat_tokens(FleetStore& store) {
    return store.with_db([&](StoreDb& db) -> Result<std::vector<HeartbeatTokenRow>> {
        auto q = db.prepare(
            "SELECT name, created, revoked, (SELECT MAX(time_ms) FROM heartbeat_reports r WHERE r.reporter = t.name) "
            "FROM heartbeat_tokens t ORDER BY name");
        if (!q) return q.error();
        std::vector<HeartbeatTokenRow> out;
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) {
            HeartbeatTokenRow r{q->text(0), q->i64(1), q->i64(2) != 0, std::nullopt};
            if (!q->is_null(3)) r.last_report_ms = q->i64(3);
            out.push_back(std::move(r));
        }
        if (auto st = db.check(rc, "list heartbeat tokens"); !st) return st.error();
        return out;
    });
}

// ---- the service --------------------------------------------------------------------

HeartbeatService::HeartbeatService(FleetStore& store, HeartbeatConfig c, std::function<int64_t()> now_ms)
    : store_(store), c_(std::move(c)), now_ms_(std::move(now_ms)) {}

Result<std::unique_ptr<HeartbeatService>> HeartbeatService::start(FleetStore& store, HeartbeatConfig c,
                                                                  std::function<int64_t()> now_ms, bool probe_thread) {
    std::unique_ptr<HeartbeatService> s(new HeartbeatService(store, std::move(c), std::move(now_ms)));
    for (const auto& a : s->c_.allow_from) {
        auto cidr = Cidr::parse(a);
        if (!cidr) return Error("heartbeat.allow_from: " + cidr.error().message());
        s->allow_.push_back(*cidr);
    }
    for (const auto& d : s->c_.databases)
        if (auto why = conninfo_problem(d); !why.empty()) return Error("heartbeat.databases: an entry " + why);
    if (s->c_.traffic_source == "tables") {
        std::string& db = s->c_.traffic_database;
        if (db.empty() && !s->c_.databases.empty()) db = s->c_.databases.front();
        if (db.empty())
            return Error(
                "heartbeat.traffic_source: tables needs heartbeat.traffic_database (or a heartbeat.databases "
                "entry): the PostgreSQL database that holds the tables");
        if (auto why = conninfo_problem(db); !why.empty()) return Error("heartbeat.traffic_database " + why);
        spdlog::info("heartbeat: data_count from the tables in {}", mask_conninfo(db));
    } else if (s->c_.traffic_source != "flows") {
        return Error("heartbeat.traffic_source: expected flows or tables, got '" + s->c_.traffic_source + "'");
    }
    auto named = [](std::string name, std::string target) {
        DbProbe p;
        p.name = std::move(name);
        p.target = std::move(target);
        return p;
    };
    s->probes_.push_back(named("collector", store.path()));
    for (size_t i = 0; i < s->c_.databases.size(); i++)
        s->probes_.push_back(named("postgresql " + std::to_string(i + 1), mask_conninfo(s->c_.databases[i])));
    for (size_t i = 1; i < s->probes_.size(); i++)
        spdlog::info("heartbeat: probing {} ({}) every {} s", s->probes_[i].name, s->probes_[i].target,
                     s->c_.probe_interval);
    if (probe_thread) s->prober_ = std::thread([p = s.get()] { p->probe_loop(); });
    return s;
}

HeartbeatService::~HeartbeatService() {
    stop();
}

void HeartbeatService::stop() {
    {
        std::lock_guard<std::mutex> l(stop_mu_);
        stopping_ = true;
    }
    stop_cv_.notify_all();
    if (prober_.joinable()) prober_.join();
}

void HeartbeatService::probe_loop() {
    const auto every = std::chrono::milliseconds(static_cast<int64_t>(c_.probe_interval * 1000));
    std::unique_lock<std::mutex> l(stop_mu_);
    while (!stopping_) {
        l.unlock();
        probe_now();
        if (now_ms_() - pruned_at_ms_ >= 600 * 1000) {
            if (auto n = prune_now(); !n) spdlog::error("heartbeat: pruning old reports: {}", n.error().message());
            pruned_at_ms_ = now_ms_();
        }
        l.lock();
        stop_cv_.wait_for(l, every, [this] { return stopping_; });
    }
}

void HeartbeatService::probe_now() {
    std::lock_guard<std::mutex> round(round_mu_);
    std::vector<DbProbe> results;
    {
        std::lock_guard<std::mutex> l(probe_mu_);
        results = probes_;
    }
    for (size_t i = 0; i < results.size(); i++) {
        DbProbe& p = results[i];
        const bool was = p.connected, first = !p.probed;
        p.time_ms = now_ms_();
        if (i == 0 && store_.engine() == SqlEngine::Sqlite)
            probe_sqlite(store_.path(), c_.probe_timeout, p);
        else if (i == 0)
            probe_postgres(store_.target(), c_.probe_timeout, p);
        else
            probe_postgres(c_.databases[i - 1], c_.probe_timeout, p);
        // Logged when it changes, not every round.
        if (p.connected && (first || !was))
            spdlog::info("heartbeat: database {} ({}): SELECT 1 answered in {} ms", p.name, p.target, p.duration_ms);
        else if (!p.connected && (first || was))
            spdlog::warn("heartbeat: database {} ({}): {}", p.name, p.target, p.error);
        std::lock_guard<std::mutex> l(probe_mu_);
        probes_[i] = p;
    }
}

std::vector<DbProbe> HeartbeatService::probes() const {
    std::lock_guard<std::mutex> l(probe_mu_);
    return probes_;
}

Result<int64_t> HeartbeatService::prune_now() {
    const int64_t before = now_ms_() - c_.retention * 1000;
    return store_.with_db([&](StoreDb& db) -> Result<int64_t> {
        auto tx = db.begin();
        if (!tx) return tx.error();
        auto q = db.prepare("DELETE FROM heartbeat_reports WHERE time_ms < ?");
        if (!q) return q.error();
        q->bind(1, before);
        if (auto st = db.check(q->step(), "prune heartbeat reports"); !st) return st.error();
        int64_t n = db.changes();
        // The agents' flow pairs serve traffic_status alone, whose range ends at the retention.
        auto f = db.prepare("DELETE FROM fleet_flows WHERE ts < ?");
        if (!f) return f.error();
        f->bind(1, before / 1000);
        if (auto st = db.check(f->step(), "prune flow pairs"); !st) return st.error();
        n += db.changes();
        if (auto st = tx->commit(); !st) return st.error();
        return n;
    });
}

std::optional<std::string> HeartbeatService::reporter(const std::string& authorization, const std::string& remote_addr,
                                                      std::string& why) {
    if (!authorization.empty()) {
        // A token given is checked, also from an allowed address: a revoked one is refused
        // rather than quietly accepted for where it came from.
        const std::string token = authorization.rfind("Bearer ", 0) == 0 ? authorization.substr(7) : "";
        if (!valid_heartbeat_token_shape(token)) {
            why =
                "not a heartbeat token: send Authorization: Bearer pfh_... (peakflow-collector heartbeat token create)";
            return std::nullopt;
        }
        const std::string hash = sha256_hex(token);
        auto found = store_.with_db([&](StoreDb& db) -> Result<std::optional<std::string>> {
            auto q = db.prepare("SELECT name, token_hash FROM heartbeat_tokens WHERE token_hash = ? AND revoked = 0");
            if (!q) return q.error();
            q->bind(1, hash);
            const int rc = q->step();
            if (rc == SQLITE_DONE) return std::optional<std::string>();
            if (rc != SQLITE_ROW) return db.error(rc, "look up heartbeat token");
            const std::string stored = q->text(1);
            if (stored.size() != hash.size() || CRYPTO_memcmp(stored.data(), hash.data(), hash.size()) != 0)
                return std::optional<std::string>();
            return std::optional<std::string>(q->text(0));
        });
        if (!found) spdlog::error("heartbeat token lookup: {}", found.error().message());
        if (found && *found) return **found;
        why = "unknown or revoked heartbeat token";
        return std::nullopt;
    }
    for (const auto& c : allow_)
        if (c.contains(remote_addr)) return std::string();
    why =
        "missing credentials: send Authorization: Bearer with a heartbeat token, or report from an address in "
        "heartbeat.allow_from";
    return std::nullopt;
}

HeartbeatReply HeartbeatService::report(const std::string& authorization, const std::string& remote_addr,
                                        const std::string& body) {
    std::string why;
    auto who = reporter(authorization, remote_addr, why);
    if (!who) return refused(401, why);
    if (body.size() > kHeartbeatMaxBody)
        return refused(413, "body over " + std::to_string(kHeartbeatMaxBody) + " bytes");
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return refused(400, "the body must be a JSON object {\"ip_address\", \"service_name\"}");
    std::string fields[2];
    const char* names[2] = {"ip_address", "service_name"};
    for (int i = 0; i < 2; i++) {
        auto it = j.find(names[i]);
        if (it == j.end()) return refused(400, std::string("missing field '") + names[i] + "'");
        if (!it->is_string()) return refused(400, std::string("field '") + names[i] + "' must be a string");
        fields[i] = it->get<std::string>();
    }
    const std::string& ip = fields[0];
    const std::string& name = fields[1];
    if (!valid_ip_address(ip))
        return refused(400, "field 'ip_address' must be an IPv4 or IPv6 address, got '" + ip.substr(0, 64) + "'");
    if (name.empty()) return refused(400, "field 'service_name' must not be empty");
    if (name.size() > kHeartbeatMaxName)
        return refused(400, "field 'service_name' is over " + std::to_string(kHeartbeatMaxName) + " bytes");
    if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return refused(400, "field 'service_name' must not contain control characters");

    const int64_t t = now_ms_();
    auto id = store_.with_db([&](StoreDb& db) -> Result<int64_t> {
        auto q = db.prepare(
            "INSERT INTO heartbeat_reports(time_ms, ip_address, service_name, reporter, source_addr) VALUES "
            "(?,?,?,?,?)");
        if (!q) return q.error();
        q->bind(1, t).bind(2, ip).bind(3, name).bind(4, *who).bind(5, remote_addr);
        if (auto st = db.check(q->step(), "store heartbeat report"); !st) return st.error();
        return db.last_insert_id();
    });
    if (!id) return refused(500, "cannot store the report: " + id.error().message());
    spdlog::debug("heartbeat report from {} ({}): {} {}", remote_addr,
                  who->empty() ? "allowed address" : "token " + *who, name, ip);
    Json out;
    out["status"] = "success";
    out["message"] = kRecorded;
    out["data"] = {{"id", *id}, {"ip_address", ip}, {"service_name", name}, {"report_time", iso8601_ms(t)}};
    return HeartbeatReply{200, dump(out), ""};
}

const HeartbeatType* HeartbeatService::type_of(const std::string& service_name) const {
    for (const auto& t : c_.types)
        if (starts_with_nocase(service_name, t.prefix)) return &t;
    return nullptr;
}

HeartbeatReply HeartbeatService::status(const std::string& body, const HeartbeatViewer& viewer) {
    if (body.size() > kHeartbeatMaxBody)
        return refused(413, "body over " + std::to_string(kHeartbeatMaxBody) + " bytes");
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return refused(400, "the body must be a JSON object {\"start_time\", \"end_time\"} (unix seconds)");
    int64_t range[2];
    const char* names[2] = {"start_time", "end_time"};
    for (int i = 0; i < 2; i++) {
        auto it = j.find(names[i]);
        if (it == j.end()) return refused(400, std::string("missing field '") + names[i] + "'");
        if (!it->is_number_integer() || it->get<int64_t>() < 0)
            return refused(400, std::string("field '") + names[i] + "' must be unix seconds (an integer from 0)");
        range[i] = it->get<int64_t>();
    }
    const int64_t start = range[0], end = range[1];
    const int64_t now_ms = now_ms_();
    const int64_t now = now_ms / 1000;
    if (start >= end)
        return refused(400, "the time range is reversed: start_time " + std::to_string(start) +
                                " must be before end_time " + std::to_string(end));
    if (start > now || end > now + kHeartbeatFutureSlack)
        return refused(400, "the time range is in the future: " +
                                std::string(start > now ? "start_time " + std::to_string(start)
                                                        : "end_time " + std::to_string(end)) +
                                " is after the collector's clock (" + std::to_string(now) + ")");
    if (end - start > c_.retention)
        return refused(400, "the time range is " + std::to_string(end - start) + " s, longer than the retention of " +
                                std::to_string(c_.retention) + " s (heartbeat.retention)");

    struct Seen {
        std::string name, ip;
        int64_t last_ms;
        std::optional<int64_t> live_ms;  // the newest report that was not late
    };
    auto rows = store_.with_db([&](StoreDb& db) -> Result<std::vector<Seen>> {
        auto q = db.prepare(
            "SELECT service_name, ip_address, MAX(time_ms), MAX(CASE WHEN late = 0 THEN time_ms END) "
            "FROM heartbeat_reports WHERE time_ms >= ? AND time_ms <= ? "
            "GROUP BY service_name, ip_address ORDER BY service_name, ip_address");
        if (!q) return q.error();
        q->bind(1, start * 1000).bind(2, end * 1000 + 999);
        std::vector<Seen> out;
        int rc;
        while ((rc = q->step()) == SQLITE_ROW)
            out.push_back(
                {q->text(0), q->text(1), q->i64(2), q->is_null(3) ? std::nullopt : std::optional<int64_t>(q->i64(3))});
        if (auto st = db.check(rc, "read heartbeat reports"); !st) return st.error();
        return out;
    });
    if (!rows) return refused(500, "cannot read the reports: " + rows.error().message());

    // The state at the end of the range, or now when the range reaches it.
    const int64_t at_ms = std::min(now_ms, end * 1000 + 999);
    Json services = Json::object();
    for (const auto& k : heartbeat_document_types()) services[k] = Json::array();
    for (const auto& t : c_.types)
        if (!services.contains(t.type)) services[t.type] = Json::array();
    services["other"] = Json::array();
    for (const auto& r : *rows) {
        const HeartbeatType* t = type_of(r.name);
        const int64_t timeout = t ? t->timeout : c_.other_timeout;
        services[t ? t->type : "other"].push_back({{"service_name", r.name},
                                                   {"ip_address", viewer.ip(r.ip)},
                                                   {"is_online", r.live_ms && at_ms - *r.live_ms <= timeout * 1000},
                                                   {"last_report_time", iso8601_ms(r.last_ms)}});
    }

    // The requirements' one database object sums up every probed database; `databases`
    // has each of them.
    const auto all = probes();
    bool connected = true;
    int64_t latest = 0;
    std::string errors;
    Json each = Json::array();
    for (const auto& p : all) {
        const std::string err = p.probed ? p.error : "not probed yet";
        connected = connected && p.probed && p.connected;
        latest = std::max(latest, p.probed ? p.time_ms : 0);
        if (!err.empty()) errors += (errors.empty() ? "" : "; ") + p.name + ": " + err;
        each.push_back({{"name", p.name},
                        {"target", viewer.ip(p.target)},
                        {"is_connected", p.probed && p.connected},
                        {"connection_time", p.probed ? Json(iso8601_ms(p.time_ms)) : Json(nullptr)},
                        {"error_message", err.empty() ? Json(nullptr) : Json(replace_addresses(err, viewer.ip))},
                        {"duration_ms", p.probed ? Json(p.duration_ms) : Json(nullptr)}});
    }
    services["database"] = {
        {"is_connected", connected},
        {"connection_time", latest ? Json(iso8601_ms(latest)) : Json(nullptr)},
        {"error_message", errors.empty() ? Json(nullptr) : Json(replace_addresses(errors, viewer.ip))},
        {"databases", std::move(each)}};

    // Measured traffic between the services' addresses (docs/fleet.md, "Traffic between
    // services"): the agents' flow pairs of the range's buckets. A pair both ends' agents
    // measured counts once per bucket (the larger figure). A viewer gets the lists empty.
    Json traffic = Json::object();
    Json traffic_errors;  // edge -> why its tables were not (all) counted
    for (const char* k : kTrafficKeys) traffic[k] = Json::array();
    if (viewer.traffic) {
        std::map<std::string, std::set<std::string>> types;  // address -> service types
        for (const auto& r : *rows) {
            const HeartbeatType* t = type_of(r.name);
            types[r.ip].insert(t ? t->type : "other");
        }
        for (const auto& d : c_.databases)
            if (auto a = conninfo_address(d); !a.empty()) types[a].insert("database");
        struct Measured {
            int64_t bytes = 0, packets = 0, flows = 0;
        };
        auto pairs =
            store_.with_db([&](StoreDb& db) -> Result<std::map<std::pair<std::string, std::string>, Measured>> {
                auto q = db.prepare(
                    "SELECT src, dst, SUM(b), SUM(p), SUM(f) FROM (SELECT ts, src, dst, proto, port, MAX(bytes) AS b, "
                    "MAX(packets) AS p, MAX(flows) AS f FROM fleet_flows WHERE other = 0 AND ts >= ?1 AND ts < ?2 "
                    "GROUP BY ts, src, dst, proto, port) AS per_bucket GROUP BY src, dst ORDER BY src, dst");
                if (!q) return q.error();
                q->bind(1, start).bind(2, end);
                std::map<std::pair<std::string, std::string>, Measured> out;
                int rc;
                while ((rc = q->step()) == SQLITE_ROW)
                    out[{q->text(0), q->text(1)}] = Measured{q->i64(2), q->i64(3), q->i64(4)};
                if (auto st = db.check(rc, "read flow pairs"); !st) return st.error();
                return out;
            });
        if (!pairs) return refused(500, "cannot read the flow pairs: " + pairs.error().message());
        auto is = [&](const std::string& ip, const char* type) {
            auto it = types.find(ip);
            return it != types.end() && it->second.count(type) > 0;
        };
        // With traffic_source: tables, data_count is the rows the tables hold per pair; a pair
        // only one side knows is listed with zeros for the other.
        std::map<std::string, std::map<std::pair<std::string, std::string>, int64_t>> counted;
        Json errors = Json::object();
        if (c_.traffic_source == "tables") {
            for (auto& ec :
                 count_traffic_tables(c_.traffic_database, c_.traffic_tables, start, end, c_.traffic_timeout)) {
                if (!ec.error.empty()) {
                    spdlog::warn("heartbeat: traffic_source tables: {}: {}", ec.edge, ec.error);
                    errors[ec.edge] = ec.error;
                } else if (ec.truncated) {
                    errors[ec.edge] = "over " + std::to_string(kTrafficTableMaxPairs) + " pairs: the " +
                                      std::to_string(kTrafficTableMaxPairs) + " largest are listed";
                }
                for (auto& p : ec.pairs) counted[ec.edge][{p.source, p.target}] += p.rows;
            }
        }
        for (const Edge& e : kEdges) {
            // (source_ip, target_ip) -> sums over protocols, ports and both directions.
            std::map<std::pair<std::string, std::string>, Measured> edge;
            for (const auto& [pair, m] : *pairs) {
                const auto& [client, server] = pair;
                std::optional<std::pair<std::string, std::string>> at;
                if (is(client, e.from) && is(server, e.to))
                    at = std::pair{client, server};
                else if (is(server, e.from) && is(client, e.to))
                    at = std::pair{server, client};
                if (!at) continue;
                Measured& x = edge[*at];
                x.bytes += m.bytes;
                x.packets += m.packets;
                x.flows += m.flows;
            }
            const bool tables = c_.traffic_source == "tables";
            auto& rows = counted[e.key];
            for (const auto& [ips, n] : rows) edge.try_emplace(ips);
            for (const auto& [ips, m] : edge) {
                auto n = rows.find(ips);
                traffic[e.key].push_back({{"source_ip", viewer.ip(ips.first)},
                                          {"target_ip", viewer.ip(ips.second)},
                                          {"data_count", tables ? (n == rows.end() ? 0 : n->second) : m.flows},
                                          {"bytes", m.bytes},
                                          {"packets", m.packets},
                                          {"flows", m.flows}});
            }
        }
        if (!errors.empty()) traffic_errors = std::move(errors);
    }

    Json out;
    out["service_status"] = std::move(services);
    out["traffic_status"] = std::move(traffic);
    if (!traffic_errors.is_null()) out["traffic_errors"] = std::move(traffic_errors);
    return HeartbeatReply{200, dump(out), ""};
}

}  // namespace pf
