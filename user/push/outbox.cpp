#include "peakflow/push/outbox.hpp"
#include "peakflow/common/escape.hpp"
#include "peakflow/common/guarded.hpp"
#include "peakflow/common/mono_clock.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <unistd.h>
#include <nlohmann/json.hpp>
#include "peakflow/common/sqlite.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>

namespace pf {
namespace {

// Message ids come from push_history (AUTOINCREMENT: never reused); the outbox row of a
// message carries the same id, so a resend after a restart updates the same history row.
constexpr SchemaPart kSchema[] = {{"outbox", 1, R"(
CREATE TABLE IF NOT EXISTS push_history(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created INTEGER NOT NULL,
  time INTEGER NOT NULL,
  node TEXT NOT NULL, host TEXT NOT NULL, sink TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY,
  sink TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
  title TEXT NOT NULL, text TEXT NOT NULL, body TEXT NOT NULL,
  node TEXT NOT NULL, host TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_sink ON outbox(sink, id);
CREATE TABLE IF NOT EXISTS push_sink_state(
  sink TEXT PRIMARY KEY, failures INTEGER NOT NULL, alerted INTEGER NOT NULL) WITHOUT ROWID;
)"},
                                  // The traffic the message reports (OutboundMessage::value); NULL: none.
                                  {"outbox", 2, "ALTER TABLE push_history ADD COLUMN value INTEGER;"},
                                  // OutboundMessage::once: the keys queued, with the message id.
                                  {"outbox", 3, R"(
CREATE TABLE IF NOT EXISTS outbox_once(
  sink TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY(sink, key)) WITHOUT ROWID;
)"}};

int64_t system_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

}  // namespace

Result<std::unique_ptr<Outbox>> Outbox::open(OutboxOptions o) {
    if (o.host.empty()) o.host = hostname();
    if (!o.now_ms) o.now_ms = system_ms;
    if (!o.mono_ms) o.mono_ms = steady_ms;
    if (!o.make_sink) {
        double t = o.push.timeout;
        o.make_sink = [t](const SinkConfig& s) { return pf::make_sink(s, t); };
    }
    std::unique_ptr<Outbox> ob(new Outbox(std::move(o)));
    std::error_code ec;
    auto dir = std::filesystem::path(ob->o_.database).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    SqliteOptions so;
    so.mode = SqliteMode::Create;
    so.wal = true;
    // FULL: a message is on disk before enqueue returns, even across a power cut.
    so.synchronous = SqliteSync::Full;
    so.open_context = "cannot open the outbox in " + ob->o_.database;
    so.error_context = "outbox database " + ob->o_.database;
    auto db = SqliteDb::open(ob->o_.database, so);
    if (!db) return db.error();
    ob->db_ = std::move(*db);
    if (auto st = apply_schema(ob->db_, kSchema); !st) return st.error();
    uint64_t seed = ob->o_.seed ? ob->o_.seed : std::random_device{}();
    for (const auto& s : ob->o_.push.sinks) {
        SinkState& st = ob->sinks_[s.name];
        st.cfg = &s;
        st.sink = ob->o_.make_sink(s);
        st.rng.seed(seed++);
        auto q = ob->db_.prepare("SELECT failures, alerted FROM push_sink_state WHERE sink=?");
        if (!q) return q.error();
        if (q->bind(1, s.name).step() == SQLITE_ROW) {
            st.failures = static_cast<int>(q->i64(0));
            st.alerted = q->i64(1) != 0;
        }
    }
    // Rows for sinks no longer in the config stay queued (nothing is dropped) until the
    // sink is configured again.
    auto q = ob->db_.prepare("SELECT sink, count(*) FROM outbox GROUP BY sink");
    if (!q) return q.error();
    while (q->step() == SQLITE_ROW)
        if (!ob->o_.push.find(q->text(0)))
            spdlog::warn(
                "push: {} message(s) queued for sink '{}', which is no longer in the config: they wait "
                "until it is configured again",
                q->i64(1), q->text(0));
    return ob;
}

Outbox::~Outbox() {
    stop();
}

int64_t Outbox::now_ms() const {
    return o_.now_ms();
}

int64_t Outbox::mono_ms() const {
    return o_.mono_ms();
}

Status Outbox::enqueue(const OutboundMessage& m) {
    std::lock_guard lk(db_mu_);
    auto tx = SqliteTransaction::begin(db_);
    if (!tx) return tx.error();
    Status st = Ok{};
    if (!m.sink.empty()) {
        const SinkConfig* s = o_.push.find(m.sink);
        if (!s) st = Error("no push sink named '" + m.sink + "' in the config");
        if (st) st = enqueue_locked(m, !o_.push.enabled || !s->enabled);
    } else {
        for (const auto& s : o_.push.sinks) {
            if (!s.takes(m.kind)) continue;
            OutboundMessage c = m;
            c.sink = s.name;
            st = enqueue_locked(c, !o_.push.enabled || !s.enabled);
            if (!st) break;
        }
    }
    if (!st) return st;  // rolled back with the transaction
    if (auto c = tx->commit(); !c) return c;
    wake();
    return Ok{};
}

Status Outbox::enqueue_locked(const OutboundMessage& m, bool skip) {
    const SinkConfig* s = o_.push.find(m.sink);
    MessageMeta meta{o_.push.node_name, o_.host};
    if (!m.once.empty()) {
        auto q = db_.prepare("SELECT id FROM outbox_once WHERE sink=? AND key=?");
        if (!q) return q.error();
        int rc = q->bind(1, m.sink).bind(2, m.once).step();
        if (rc == SQLITE_ROW) {
            spdlog::info("push: {} '{}' for sink {} is message {}, queued before: not again", m.kind, m.title, m.sink,
                         q->i64(0));
            return Ok{};
        }
        if (rc != SQLITE_DONE) return sql_error(db_, "read outbox_once");
    }
    int64_t now = now_ms();
    int64_t bytes = s->type == "email" ? static_cast<int64_t>(render_email(*s, m, meta, now / 1000).size())
                                       : static_cast<int64_t>(render_request(*s, m, meta, now).body.size());
    auto h = db_.prepare(
        "INSERT INTO push_history(created, time, node, host, sink, kind, period, bytes, status, value) "
        "VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!h) return h.error();
    h->bind(1, now / 1000).bind(2, now / 1000).bind(3, meta.node).bind(4, meta.host).bind(5, m.sink).bind(6, m.kind);
    h->bind(7, m.period).bind(8, bytes).bind(9, std::string(skip ? "skipped" : "pending"));
    if (m.value)
        h->bind(10, *m.value);
    else
        sqlite3_bind_null(h->get(), 10);
    if (h->step() != SQLITE_DONE) return sql_error(db_, "record push history");
    int64_t id = db_.last_insert_rowid();
    if (!m.once.empty()) {
        auto o = db_.prepare("INSERT INTO outbox_once(sink, key, id) VALUES(?,?,?)");
        if (!o) return o.error();
        if (o->bind(1, m.sink).bind(2, m.once).bind(3, id).step() != SQLITE_DONE)
            return sql_error(db_, "record outbox_once");
    }
    if (skip) {
        spdlog::info("push: {} '{}' for sink {} skipped (push switched off)", m.kind, m.title, m.sink);
        return Ok{};
    }
    auto q = db_.prepare(
        "INSERT INTO outbox(id, sink, kind, period, title, text, body, node, host) VALUES(?,?,?,?,?,?,?,?,?)");
    if (!q) return q.error();
    q->bind(1, id).bind(2, m.sink).bind(3, m.kind).bind(4, m.period).bind(5, m.title).bind(6, m.text).bind(7, m.body);
    q->bind(8, meta.node).bind(9, meta.host);
    if (q->step() != SQLITE_DONE) return sql_error(db_, "queue message");
    return Ok{};
}

Result<int64_t> Outbox::step(const std::string& name) {
    auto it = sinks_.find(name);
    if (it == sinks_.end()) return Error("no push sink named '" + name + "'");
    SinkState& st = it->second;
    // A send whose outcome is not on disk yet: record it, never send it again.
    if (st.unrecorded) return record(name, st);
    if (!o_.push.enabled || !st.cfg->enabled) return int64_t{0};  // queued rows wait for the switch
    int64_t now = mono_ms();
    if (now < st.not_before) return st.not_before;
    while (!st.sent.empty() && st.sent.front() <= now - 60000) st.sent.pop_front();
    int rate = st.cfg->effective_rate();
    if (rate > 0 && static_cast<int>(st.sent.size()) >= rate) return st.sent.front() + 60000;

    OutboundMessage m;
    MessageMeta meta;
    int64_t id = 0;
    {
        std::lock_guard lk(db_mu_);
        auto q = db_.prepare(
            "SELECT id, kind, period, title, text, body, node, host FROM outbox WHERE sink=? ORDER BY id LIMIT 1");
        if (!q) return q.error();
        int rc = q->bind(1, name).step();
        if (rc == SQLITE_DONE) return int64_t{0};
        if (rc != SQLITE_ROW) return sql_error(db_, "read outbox");
        id = q->i64(0);
        m = OutboundMessage{name, q->text(1), q->text(2), q->text(3), q->text(4), q->text(5)};
        meta = MessageMeta{q->text(6), q->text(7)};
    }
    SendResult r = st.sink->send(m, meta);
    const int64_t done_mono = mono_ms();
    st.sent.push_back(done_mono);
    st.unrecorded = SinkState::Outcome{id, m.kind, m.title, std::move(r), now_ms(), done_mono};
    return record(name, st);
}

// Records st.unrecorded. On failure it stays, and the next step() tries the record again
// instead of a send: a message the service confirmed is not sent twice while the database
// is busy, locked or full (only a crash before the record makes it, as after any send).
Result<int64_t> Outbox::record(const std::string& name, SinkState& st) {
    const SinkState::Outcome& o = *st.unrecorded;
    const SendResult& r = o.r;
    const int64_t id = o.id, done = o.done, done_mono = o.done_mono;
    // The sink's failure streak and whether its outage was announced are stored with the
    // outcome, and the alert or recovery notice is queued in the same transaction: one
    // alert per outage, also across restarts.
    int failures = r.ok ? 0 : st.failures + 1;
    bool alerted = r.ok ? false : (st.alerted || failures >= o_.push.alert_after);
    std::optional<Alert> notice;
    if (r.ok && st.alerted) notice = make_alert(name, true, "", done);
    if (!r.ok && alerted && !st.alerted) notice = make_alert(name, false, r.error, done);
    {
        std::lock_guard lk(db_mu_);
        const std::string what = "record delivery of message " + std::to_string(id) +
                                 (r.ok ? " (delivered; it is not sent again, the record is retried)" : "");
        auto tx = SqliteTransaction::begin(db_);
        if (!tx) return Error(what + ": " + sqlite3_errmsg(db_.get()));
        auto d = db_.prepare("DELETE FROM outbox WHERE id=?");
        auto h = db_.prepare("UPDATE push_history SET status=?, attempts=attempts+1, last_error=?, time=? WHERE id=?");
        auto ss = db_.prepare("INSERT OR REPLACE INTO push_sink_state(sink, failures, alerted) VALUES(?,?,?)");
        for (const auto* q : {&d, &h, &ss})
            if (!*q) return q->error();
        bool ok = true;
        if (r.ok) ok = d->bind(1, id).step() == SQLITE_DONE;
        h->bind(1, std::string(r.ok ? "sent" : "failed")).bind(2, r.error).bind(3, done / 1000).bind(4, id);
        ok = ok && h->step() == SQLITE_DONE;
        ss->bind(1, name).bind(2, int64_t{failures}).bind(3, int64_t{alerted ? 1 : 0});
        ok = ok && ss->step() == SQLITE_DONE;
        if (ok && notice)
            for (const auto& s : o_.push.sinks) {
                if (s.name == name || !s.alerts) continue;
                OutboundMessage a{s.name,       notice->kind == Alert::Kind::Raised ? "alert" : "recovery",
                                  notice->key,  notice->title,
                                  notice->text, ""};
                ok = ok && enqueue_locked(a, !o_.push.enabled || !s.enabled).ok();
            }
        // The message is sqlite's, taken before the transaction is rolled back.
        if (!ok || !tx->commit()) return Error(what + ": " + sqlite3_errmsg(db_.get()));
    }
    const std::string kind = o.kind, title = o.title, error = r.error;
    const bool delivered = r.ok;
    st.unrecorded.reset();
    st.failures = failures;
    st.alerted = alerted;
    if (notice) {
        if (log_alerts_) log_alerts_->alert(*notice);
        wake();
    }
    if (delivered) {
        spdlog::info("push: {} '{}' delivered to {} (message {})", kind, title, name, id);
        st.not_before = 0;
        return done_mono;
    }
    double delay = std::min(o_.push.max_backoff, o_.push.initial_backoff * std::pow(2.0, st.failures - 1));
    // Jitter in [delay/2, delay]: sinks that failed together do not all retry together.
    delay *= 0.5 + 0.5 * std::uniform_real_distribution<double>(0.0, 1.0)(st.rng);
    st.not_before = done_mono + static_cast<int64_t>(delay * 1000);
    spdlog::warn("push: delivery of message {} to {} failed (attempt {} in a row): {}; next try in {:.1f} s", id, name,
                 st.failures, error, delay);
    return st.not_before;
}

Alert Outbox::make_alert(const std::string& sink, bool recovered, const std::string& raw_error, int64_t now) const {
    Alert a;
    // The error quotes the service's answer: literal text in the markdown.
    const std::string error = md_text(raw_error);
    a.kind = recovered ? Alert::Kind::Recovered : Alert::Kind::Raised;
    a.source = "push";
    a.key = "sink:" + sink;
    a.time = now / 1000;
    std::string where = (o_.push.node_name.empty() ? "" : o_.push.node_name + " / ") + o_.host;
    if (o_.push.language == Language::Zh) {
        if (recovered) {
            a.title = "推送到 " + sink + " 已恢复";
            a.text = "推送到 **" + sink + "** 已恢复正常（" + where + "）。";
        } else {
            a.title = "推送到 " + sink + " 失败";
            a.text = "推送到 **" + sink + "** 连续失败 " + std::to_string(o_.push.alert_after) + " 次（" + where +
                     "）。最后的错误：" + error + "\n\n消息保留在发件箱中，恢复后即发送。";
        }
        return a;
    }
    if (recovered) {
        a.title = "push to " + sink + " works again";
        a.text = "Delivery to sink **" + sink + "** works again (" + where + ").";
    } else {
        a.title = "push to " + sink + " failing";
        a.text = "Delivery to sink **" + sink + "** failed " + std::to_string(o_.push.alert_after) +
                 " times in a row (" + where + "). Last error: " + error +
                 "\n\nMessages wait in the outbox and are sent when it works again.";
    }
    return a;
}

void Outbox::wake() {
    {
        std::lock_guard lk(wake_mu_);
        ++wake_gen_;
    }
    wake_cv_.notify_all();
}

void Outbox::worker(const std::string& name) {
    while (!stopping_) {
        uint64_t gen;
        {
            std::lock_guard lk(wake_mu_);
            gen = wake_gen_;
        }
        auto r = step(name);
        int64_t now = mono_ms();
        int64_t next;
        if (!r) {
            spdlog::error("push: {}: {}", name, r.error().message());
            next = now + 1000;
        } else {
            // Idle: look again now and then, for rows another process (push --message) added.
            next = *r == 0 ? now + static_cast<int64_t>(o_.idle_poll * 1000) : *r;
        }
        if (next <= now) continue;
        std::unique_lock lk(wake_mu_);
        wake_cv_.wait_for(lk, std::chrono::milliseconds(next - now),
                          [&] { return stopping_.load() || wake_gen_ != gen; });
    }
    // Stopping with a delivery not recorded yet: one more try (bounded by the busy
    // timeout); what is still not recorded is sent again after the restart.
    SinkState& st = sinks_.at(name);
    if (st.unrecorded && st.unrecorded->r.ok)
        if (auto r = record(name, st); !r)
            spdlog::error("push: {}: {}; it will be sent again after the restart", name, r.error().message());
}

void Outbox::start() {
    for (const auto& [name, st] : sinks_) {
        (void)st;
        threads_.emplace_back([this, n = name] { run_guarded("push " + n, [&] { worker(n); }); });
    }
}

void Outbox::stop() {
    stopping_ = true;
    wake();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

Status Outbox::reconfigure(const PushConfig& next) {
    std::vector<std::pair<std::string, std::string>> had, has;
    for (const auto& s : o_.push.sinks) had.emplace_back(s.name, s.type);
    for (const auto& s : next.sinks) has.emplace_back(s.name, s.type);
    std::sort(had.begin(), had.end());
    std::sort(has.begin(), has.end());
    if (had != has) return Error("push: sinks added, removed or of another type take effect after a restart");
    if (next == o_.push) return Ok{};
    const bool running = !threads_.empty();
    if (running) stop();
    {
        // enqueue() reads the config under the same lock; the workers are stopped.
        std::lock_guard lk(db_mu_);
        o_.push = next;
        for (const auto& s : o_.push.sinks) {
            SinkState& st = sinks_[s.name];
            st.cfg = &s;
            st.sink = o_.make_sink(s);
        }
    }
    stopping_ = false;
    if (running) start();
    reconfigured_++;
    wake();
    return Ok{};
}

uint64_t Outbox::depth() const {
    std::lock_guard lk(db_mu_);
    auto q = db_.prepare("SELECT count(*) FROM outbox");
    return q && q->step() == SQLITE_ROW ? static_cast<uint64_t>(q->i64(0)) : 0;
}

Result<std::vector<int64_t>> Outbox::queued_ids(const std::string& sink) const {
    std::lock_guard lk(db_mu_);
    auto q = db_.prepare("SELECT id FROM outbox WHERE sink=? ORDER BY id");
    if (!q) return q.error();
    q->bind(1, sink);
    std::vector<int64_t> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back(q->i64(0));
    if (rc != SQLITE_DONE) return sql_error(db_, "read outbox");
    return out;
}

namespace {

Result<std::vector<HistoryRow>> read_history(const SqliteDb& db, bool failed_only) {
    // `history` opens the file read-only: one the daemon has not brought to outbox schema 2
    // yet has no value column, and its rows have no value.
    auto c = db.prepare("SELECT 1 FROM pragma_table_info('push_history') WHERE name='value'");
    if (!c) return c.error();
    const bool has_value = c->step() == SQLITE_ROW;
    std::string sql = "SELECT id, time, node, host, sink, kind, period, bytes, status, attempts, last_error, ";
    sql += has_value ? "value" : "NULL";
    sql += failed_only ? " FROM push_history WHERE status='failed' ORDER BY id" : " FROM push_history ORDER BY id";
    auto p = db.prepare(sql);
    if (!p) return p.error();
    SqlStmt& q = *p;
    std::vector<HistoryRow> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
        out.push_back(HistoryRow{q.i64(0), q.i64(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.i64(7),
                                 q.text(8), q.i64(9), q.text(10),
                                 q.is_null(11) ? std::nullopt : std::optional<int64_t>(q.i64(11))});
    if (rc != SQLITE_DONE) return sql_error(db, "read push history");
    return out;
}

}  // namespace

Result<std::vector<HistoryRow>> Outbox::history(bool failed_only) const {
    std::lock_guard lk(db_mu_);
    return read_history(db_, failed_only);
}

Result<std::vector<HistoryRow>> read_push_history(const std::string& database, bool failed_only) {
    if (!std::filesystem::exists(database)) return Error("no history yet: " + database + " does not exist");
    SqliteOptions o;
    o.mode = SqliteMode::ReadOnly;
    o.no_mutex = false;  // as it has always opened: in the library's default threading mode
    auto db = SqliteDb::open(database, o);
    if (!db) return db.error();
    auto t = db->prepare("SELECT 1 FROM sqlite_master WHERE name='push_history'");
    if (!t) return t.error();
    if (t->step() != SQLITE_ROW) return std::vector<HistoryRow>{};
    return read_history(*db, failed_only);
}

std::string render_history(const std::vector<HistoryRow>& rows, bool json,
                           const std::function<std::string(int64_t)>& fmt, bool with_agent) {
    if (json) {
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (const auto& r : rows) {
            nlohmann::ordered_json o;
            if (with_agent) o["agent"] = r.agent;
            o["id"] = r.id;
            o["time"] = fmt(r.time);
            o["node"] = r.node;
            o["host"] = r.host;
            o["sink"] = r.sink;
            o["kind"] = r.kind;
            o["period"] = r.period;
            o["bytes"] = r.bytes;
            o["status"] = r.status;
            o["attempts"] = r.attempts;
            o["last_error"] = r.last_error;
            // Last: the keys before it keep their documented order.
            o["value"] = r.value ? nlohmann::ordered_json(*r.value) : nlohmann::ordered_json(nullptr);
            a.push_back(std::move(o));
        }
        nlohmann::ordered_json o = {{"history", a}};
        return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    std::vector<std::vector<std::string>> t;
    t.push_back(
        {"ID", "TIME", "NODE", "HOST", "SINK", "KIND", "PERIOD", "BYTES", "VALUE", "STATUS", "ATTEMPTS", "LAST ERROR"});
    // For a terminal: the error quotes a service's answer, and the collector's rows come from
    // other machines; control characters show as escapes.
    for (const auto& r : rows)
        t.push_back({std::to_string(r.id), fmt(r.time), r.node.empty() ? "-" : visible_controls(r.node),
                     visible_controls(r.host), visible_controls(r.sink), visible_controls(r.kind),
                     r.period.empty() ? "-" : visible_controls(r.period), std::to_string(r.bytes),
                     r.value ? std::to_string(*r.value) : "-", visible_controls(r.status), std::to_string(r.attempts),
                     visible_controls(r.last_error)});
    // Right-aligned: the numbers.
    std::vector<bool> right = {true, false, false, false, false, false, false, true, true, false, true, false};
    if (with_agent) {
        t[0].insert(t[0].begin(), "AGENT");
        for (size_t i = 1; i < t.size(); i++) t[i].insert(t[i].begin(), visible_controls(rows[i - 1].agent));
        right.insert(right.begin(), false);
    }
    std::vector<size_t> w(t[0].size(), 0);
    for (const auto& row : t)
        for (size_t i = 0; i + 1 < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
    std::ostringstream out;
    for (const auto& row : t) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            std::string cell = row[i];
            if (i + 1 < row.size()) {
                std::string pad(w[i] - cell.size(), ' ');
                cell = right[i] ? pad + cell : cell + pad;
                cell += "  ";
            }
            line += cell;
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
    if (rows.empty()) out << "(no messages yet)\n";
    return out.str();
}

void OutboxAlertSink::alert(const Alert& a) {
    log_.alert(a);
    OutboundMessage m{"", a.kind == Alert::Kind::Raised ? "alert" : "recovery", a.key, a.title, a.text, ""};
    if (auto st = q_.enqueue(m); !st) spdlog::error("alert {}: cannot queue it: {}", a.key, st.error().message());
}

int run_push_test(const PushConfig& c, const std::string& only, std::ostream& out) {
    if (c.sinks.empty()) {
        out << "no push sinks configured\n";
        return 1;
    }
    if (!only.empty() && !c.find(only)) throw FatalError("no push sink named '" + only + "' in the config");
    MessageMeta meta{c.node_name, hostname()};
    int rc = 0;
    for (const auto& s : c.sinks) {
        if (!only.empty() && s.name != only) continue;
        if (only.empty() && (!s.enabled || !c.enabled)) {
            out << s.name << " (" << s.type << "): skipped, switched off\n";
            continue;
        }
        OutboundMessage m{s.name,
                          "test",
                          "",
                          "peakflow-bpf test message",
                          "Test message from **" +
                              (meta.node.empty() ? meta.host : meta.node + "** on **" + meta.host) +
                              "**: this sink works.",
                          ""};
        SendResult r = make_sink(s, c.timeout)->send(m, meta);
        // The answer is the service's: shown with its control characters as escapes.
        out << s.name << " (" << s.type << "): " << (r.ok ? "ok" : "FAILED: " + visible_controls(r.error)) << "\n";
        out << "  answer: " << (s.type == "email" ? "" : "HTTP ") << r.http_status << " " << visible_controls(r.answer)
            << "\n";
        if (!r.ok) rc = 1;
    }
    return rc;
}

namespace {

// Owns the outbox and the alert sink that queues into it; started first and stopped last,
// so every other service's alerts have somewhere to go for as long as it runs.
class PushService : public Service {
  public:
    PushService(std::unique_ptr<Outbox> ob, PushConfig cfg) : ob_(std::move(ob)), alerts_(*ob_), cfg_(std::move(cfg)) {
        reconfigurer_ = std::thread([this] { run_guarded("push reload", [this] { reconfigure_loop(); }); });
    }
    ~PushService() override { stop(); }
    std::string name() const override { return "push"; }
    // A new push section waits for the sinks' workers to stop, and a worker may be inside a
    // send (up to the sink's timeout): that wait is on a thread of its own, never on the
    // daemon's main thread that handles SIGHUP. Reloads in quick succession coalesce.
    void reload(const ServiceContext& next) override {
        {
            std::lock_guard l(mu_);
            pending_ = next.sections.get<PushConfig>();
        }
        cv_.notify_all();
    }
    void stats(DaemonStats& s) const override { s.outbox_depth = ob_->depth(); }
    void stop() override {
        {
            std::lock_guard l(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        if (reconfigurer_.joinable()) reconfigurer_.join();
        ob_->stop();
    }
    Outbox& outbox() { return *ob_; }
    AlertSink& alerts() { return alerts_; }

  private:
    void reconfigure_loop() {
        for (;;) {
            PushConfig c;
            {
                std::unique_lock l(mu_);
                cv_.wait(l, [this] { return stopping_ || pending_; });
                if (stopping_) return;  // a reload not applied yet: the next start reads the file
                c = std::move(*pending_);
                pending_.reset();
            }
            if (c == cfg_) continue;
            if (auto st = ob_->reconfigure(c); !st) {
                spdlog::warn("{}", st.error().message());
                continue;
            }
            if (c.enabled != cfg_.enabled)
                spdlog::info("push: switched {}", c.enabled ? "on" : "off (messages are recorded as skipped)");
            cfg_ = c;
        }
    }

    std::unique_ptr<Outbox> ob_;
    OutboxAlertSink alerts_;
    PushConfig cfg_;  // the reconfigurer's
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<PushConfig> pending_;
    bool stopping_ = false;
    std::thread reconfigurer_;
};

}  // namespace

Result<std::unique_ptr<Service>> make_push_service(ServiceContext& ctx) {
    const PushConfig& push = ctx.sections.get<PushConfig>();
    if (!push.configured) return std::unique_ptr<Service>();
    OutboxOptions o;
    o.database = ctx.accounting.database;
    o.push = push;
    auto ob = Outbox::open(o);
    if (!ob) return ob.error();
    (*ob)->set_log_alerts(ctx.alerts);
    auto svc = std::make_unique<PushService>(std::move(*ob), push);
    ctx.outbox = &svc->outbox();
    ctx.alerts = &svc->alerts();
    for (const auto& sink : push.sinks) ctx.sinks.emplace_back(sink.name, sink.type);
    svc->outbox().start();
    spdlog::info("push: {} sink(s), {} message(s) waiting in the outbox{}", push.sinks.size(), svc->outbox().depth(),
                 push.enabled ? "" : " (push switched off: messages are recorded as skipped)");
    return std::unique_ptr<Service>(std::move(svc));
}

}  // namespace pf
