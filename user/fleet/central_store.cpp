#include "peakflow/fleet/central_store.hpp"

#include <nlohmann/json.hpp>

namespace pf {

namespace {

using Json = nlohmann::json;

std::optional<std::string> opt_text(const StoreStmt& q, int c) {
    return q.is_null(c) ? std::nullopt : std::optional<std::string>(q.text(c));
}

Result<std::optional<std::string>> current_value(StoreDb& db, const std::string& scope, const std::string& key) {
    auto q = db.prepare("SELECT value FROM central_values WHERE scope = ? AND key = ?");
    if (!q) return q.error();
    q->bind(1, scope).bind(2, key);
    const int rc = q->step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(q->text(0));
    if (rc != SQLITE_DONE) return db.error(rc, "read central value");
    return std::optional<std::string>();
}

// The next version: one more than any scope's, so versions only grow, fleet-wide.
Result<int64_t> next_version(StoreDb& db) {
    auto q = db.prepare("SELECT coalesce(max(version), 0) + 1 FROM central_scopes");
    if (!q) return q.error();
    if (q->step() != SQLITE_ROW) return db.error(SQLITE_ERROR, "read central version");
    return q->i64(0);
}

Result<int64_t> scope_version(StoreDb& db, const std::string& scope) {
    auto q = db.prepare("SELECT version FROM central_scopes WHERE scope = ?");
    if (!q) return q.error();
    q->bind(1, scope);
    const int rc = q->step();
    if (rc == SQLITE_ROW) return q->i64(0);
    if (rc != SQLITE_DONE) return db.error(rc, "read central version");
    return int64_t{0};
}

// One change in one transaction: the value (or its removal), the scope's version, the audit row.
Result<int64_t> change(FleetStore& s, const std::string& scope, const std::string& key,
                       const std::optional<std::string>& value, const ChangeOrigin& o) {
    return s.with_db([&](StoreDb& db) -> Result<int64_t> {
        auto tx = db.begin();
        if (!tx) return tx.error();
        auto old = current_value(db, scope, key);
        if (!old) return old.error();
        if (!value && !*old)
            return Error("'" + key + "' is not set " + (scope.empty() ? "fleet-wide" : "for agent '" + scope + "'"));
        if (value && *old && **old == *value) return scope_version(db, scope);
        auto v = next_version(db);
        if (!v) return v.error();
        auto w = value ? db.prepare(
                             "INSERT INTO central_values(scope, key, value, version) VALUES(?1, ?2, ?3, ?4) "
                             "ON CONFLICT(scope, key) DO UPDATE SET value = ?3, version = ?4")
                       : db.prepare("DELETE FROM central_values WHERE scope = ?1 AND key = ?2");
        if (!w) return w.error();
        w->bind(1, scope).bind(2, key);
        if (value) w->bind(3, *value).bind(4, *v);
        if (auto st = db.check(w->step(), "store central value"); !st) return st.error();
        auto sv = db.prepare(
            "INSERT INTO central_scopes(scope, version) VALUES(?1, ?2) ON CONFLICT(scope) DO UPDATE SET version = ?2");
        if (!sv) return sv.error();
        sv->bind(1, scope).bind(2, *v);
        if (auto st = db.check(sv->step(), "store central version"); !st) return st.error();
        auto a = db.prepare(
            "INSERT INTO central_audit(time, version, who, origin, scope, key, old_value, new_value) "
            "VALUES(?,?,?,?,?,?,?,?)");
        if (!a) return a.error();
        a->bind(1, o.time).bind(2, *v).bind(3, o.who).bind(4, o.from).bind(5, scope).bind(6, key);
        if (*old)
            a->bind(7, **old);
        else
            a->bind_null(7);
        if (value)
            a->bind(8, *value);
        else
            a->bind_null(8);
        if (auto st = db.check(a->step(), "store audit row"); !st) return st.error();
        if (auto st = tx->commit(); !st) return st.error();
        return *v;
    });
}

Result<std::vector<CentralEntry>> entries_locked(StoreDb& db, const std::string& scope) {
    auto q = db.prepare("SELECT scope, key, value, version FROM central_values WHERE scope = ? ORDER BY key");
    if (!q) return q.error();
    q->bind(1, scope);
    std::vector<CentralEntry> out;
    int rc;
    while ((rc = q->step()) == SQLITE_ROW) out.push_back({q->text(0), q->text(1), q->text(2), q->i64(3)});
    if (rc != SQLITE_DONE) return db.error(rc, "read central values");
    return out;
}

}  // namespace

Result<int64_t> central_set(FleetStore& s, const std::string& scope, const std::string& key, const std::string& value,
                            const ChangeOrigin& o) {
    return change(s, scope, key, value, o);
}

Result<int64_t> central_unset(FleetStore& s, const std::string& scope, const std::string& key, const ChangeOrigin& o) {
    return change(s, scope, key, std::nullopt, o);
}

Result<std::vector<CentralEntry>> central_entries(FleetStore& s, const std::string& scope) {
    return s.with_db([&](StoreDb& db) { return entries_locked(db, scope); });
}

Result<CentralConfig> central_effective(FleetStore& s, const std::string& agent) {
    return s.with_db([&](StoreDb& db) -> Result<CentralConfig> {
        // One read transaction: the fleet's and the agent's values of the same moment.
        auto tx = db.begin(TxMode::Read);
        if (!tx) return tx.error();
        CentralConfig c;
        for (const std::string& scope : {std::string(), agent}) {
            auto e = entries_locked(db, scope);
            if (!e) return e.error();
            for (auto& x : *e) c.values[x.key] = std::move(x.value);
            auto v = scope_version(db, scope);
            if (!v) return v.error();
            c.version = std::max(c.version, *v);
        }
        return c;
    });
}

Result<std::map<std::string, std::string>> central_key_values(FleetStore& s, const std::string& key) {
    return s.with_db([&](StoreDb& db) -> Result<std::map<std::string, std::string>> {
        auto q = db.prepare("SELECT scope, value FROM central_values WHERE key = ?");
        if (!q) return q.error();
        q->bind(1, key);
        std::map<std::string, std::string> out;
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) out[q->text(0)] = q->text(1);
        if (auto c = db.check(rc, "read central config"); !c) return c.error();
        return out;
    });
}

Result<CentralConfig> central_fleet(FleetStore& s) {
    return s.with_db([&](StoreDb& db) -> Result<CentralConfig> {
        auto tx = db.begin(TxMode::Read);
        if (!tx) return tx.error();
        CentralConfig c;
        auto e = entries_locked(db, "");
        if (!e) return e.error();
        for (auto& x : *e) c.values[x.key] = std::move(x.value);
        auto v = scope_version(db, "");
        if (!v) return v.error();
        c.version = *v;
        return c;
    });
}

Result<std::vector<AuditRow>> central_audit(FleetStore& s, size_t limit, const std::optional<std::string>& scope) {
    return s.with_db([&](StoreDb& db) -> Result<std::vector<AuditRow>> {
        auto q = db.prepare(
            "SELECT id, time, version, who, origin, scope, key, old_value, new_value FROM central_audit "
            "WHERE CAST(?1 AS TEXT) IS NULL OR scope = ?1 ORDER BY id DESC LIMIT ?2");
        if (!q) return q.error();
        if (scope)
            q->bind(1, *scope);
        else
            q->bind_null(1);
        q->bind(2, static_cast<int64_t>(limit));
        std::vector<AuditRow> out;
        int rc;
        while ((rc = q->step()) == SQLITE_ROW)
            out.push_back({q->i64(0), q->i64(1), q->i64(2), q->text(3), q->text(4), q->text(5), q->text(6),
                           opt_text(*q, 7), opt_text(*q, 8)});
        if (rc != SQLITE_DONE) return db.error(rc, "read audit log");
        return out;
    });
}

Status note_agent_config(FleetStore& s, const std::string& agent, const AgentConfigState& st) {
    Json p = Json::array();
    for (const auto& x : st.problems) p.push_back({{"key", x.key}, {"message", x.message}});
    return s.with_db([&](StoreDb& db) -> Status {
        auto q = db.prepare(
            "INSERT INTO central_agent_state(agent, version, problems) VALUES(?1, ?2, ?3) "
            "ON CONFLICT(agent) DO UPDATE SET version = ?2, problems = ?3");
        if (!q) return q.error();
        q->bind(1, agent).bind(2, st.version).bind(3, p.dump(-1, ' ', false, Json::error_handler_t::replace));
        return db.check(q->step(), "store agent config state");
    });
}

Result<AgentConfigState> agent_config_state(FleetStore& s, const std::string& agent) {
    return s.with_db([&](StoreDb& db) -> Result<AgentConfigState> {
        AgentConfigState st;
        auto q = db.prepare("SELECT version, problems FROM central_agent_state WHERE agent = ?");
        if (!q) return q.error();
        q->bind(1, agent);
        const int rc = q->step();
        if (rc == SQLITE_DONE) return st;
        if (rc != SQLITE_ROW) return db.error(rc, "read agent config state");
        st.version = q->i64(0);
        Json p = Json::parse(q->text(1), nullptr, false);
        if (p.is_array())
            for (const auto& x : p)
                if (x.is_object() && x.value("key", Json()).is_string() && x.value("message", Json()).is_string())
                    st.problems.push_back({x["key"].get<std::string>(), x["message"].get<std::string>()});
        return st;
    });
}

}  // namespace pf
