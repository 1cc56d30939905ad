#include "peakflow/fleet/fleet_users.hpp"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pf {

namespace {

constexpr SchemaPart kUsersSchema[] = {{"fleet_users", 1, R"(
CREATE TABLE IF NOT EXISTS fleet_users(
  name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK(role IN ('admin', 'viewer')),
  password TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_user_tokens(
  hash TEXT PRIMARY KEY, user TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fleet_user_tokens_user ON fleet_user_tokens(user);
CREATE TABLE IF NOT EXISTS fleet_sessions(
  hash TEXT PRIMARY KEY, user TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
  from_addr TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fleet_sessions_user ON fleet_sessions(user);
)"}};

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
// A session's last use is written at most once a minute: a dashboard polling every few
// seconds does not turn into a write per request.
constexpr int64_t kSessionTouchEvery = 60;
// LoginLimiter: keys kept at most; past it, a new address is counted by name only.
constexpr size_t kLimiterMaxKeys = 10000;

Status random_bytes(unsigned char* out, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return Error("getrandom", "", errno);
        }
        got += static_cast<size_t>(r);
    }
    return Ok{};
}

// 32 random bytes as 64 lowercase hex digits.
Result<std::string> random_hex32() {
    unsigned char raw[32];
    if (auto st = random_bytes(raw, sizeof raw); !st) return st.error();
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char b : raw) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

bool is_hex64(const std::string& s, size_t from) {
    if (s.size() != from + 64) return false;
    return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Error no_user(const std::string& name) {
    return Error("no user named '" + name + "'", "", 0, "peakflow-collector user list shows them");
}

// Runs `f(db)` in one IMMEDIATE transaction on the store's connection, committed when f
// returned Ok.
template <typename F>
Status in_transaction(FleetStore& store, F&& f) {
    return store.with_db([&](StoreDb& db) -> Status {
        auto tx = db.begin();
        if (!tx) return tx.error();
        if (auto st = f(db); !st) return st;
        return tx->commit();
    });
}

Status exec_bound(StoreDb& db, const char* sql, const std::string& a, const char* what) {
    auto q = db.prepare(sql);
    if (!q) return q.error();
    q->bind(1, a);
    return db.check(q->step(), what);
}

}  // namespace

Result<std::string> hash_password(const std::string& password, const Argon2Params& p) {
    unsigned char salt[kSaltBytes];
    if (auto st = random_bytes(salt, sizeof salt); !st) return st.error();
    std::string encoded(argon2_encodedlen(p.t_cost, p.m_cost_kib, p.parallelism, kSaltBytes, kHashBytes, Argon2_id),
                        '\0');
    const int rc = argon2id_hash_encoded(p.t_cost, p.m_cost_kib, p.parallelism, password.data(), password.size(), salt,
                                         sizeof salt, kHashBytes, encoded.data(), encoded.size());
    if (rc != ARGON2_OK) return Error(std::string("argon2id: ") + argon2_error_message(rc));
    encoded.resize(std::strlen(encoded.c_str()));
    return encoded;
}

bool verify_password(const std::string& encoded, const std::string& password) {
    if (encoded.rfind("$argon2id$", 0) != 0) return false;
    return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

Status check_new_password(const std::string& password) {
    if (password.size() < kMinPasswordLength)
        return Error("the password is too short: use at least " + std::to_string(kMinPasswordLength) + " characters");
    if (password.size() > kMaxPasswordLength)
        return Error("the password is too long: at most " + std::to_string(kMaxPasswordLength) + " bytes");
    return Ok{};
}

bool valid_role(const std::string& role) {
    return role == "admin" || role == "viewer";
}

std::string session_csrf_token(const std::string& session_id) {
    static constexpr char kLabel[] = "peakflow dashboard csrf v1";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), session_id.data(), static_cast<int>(session_id.size()),
         reinterpret_cast<const unsigned char*>(kLabel), sizeof kLabel - 1, md, &n);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; i++) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

bool csrf_token_matches(const std::string& session_id, const std::string& given) {
    const std::string want = session_csrf_token(session_id);
    return given.size() == want.size() && CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
}

Result<std::unique_ptr<FleetUsers>> FleetUsers::open(FleetStore& store, Argon2Params p) {
    if (auto st = store.with_db([](StoreDb& db) { return db.apply_schema(kUsersSchema); }); !st) return st.error();
    return std::unique_ptr<FleetUsers>(new FleetUsers(store, p));
}

Status FleetUsers::prepare_logins() {
    std::call_once(dummy_once_, [this] {
        // Of a random password: no input verifies against it.
        auto pw = random_hex32();
        auto dummy = pw ? hash_password(*pw, params_) : Result<std::string>(pw.error());
        if (dummy)
            dummy_hash_ = std::move(*dummy);
        else
            dummy_status_ = dummy.error();
    });
    return dummy_status_;
}

bool FleetUsers::verify_bounded(const std::string& encoded, const std::string& password) {
    hashing_.acquire();
    const bool ok = verify_password(encoded, password);
    hashing_.release();
    return ok;
}

Status FleetUsers::add(const std::string& name, const std::string& role, const std::string& password, int64_t now) {
    if (!valid_agent_name(name)) return Error("user name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
    if (!valid_role(role)) return Error("role '" + role + "': use admin or viewer");
    if (auto st = check_new_password(password); !st) return st;
    if (auto found = find(name); !found)
        return found.error();
    else if (*found)
        return Error("user '" + name + "' already exists", "", 0,
                     "peakflow-collector user passwd " + name + " changes the password");
    hashing_.acquire();
    auto hash = hash_password(password, params_);
    hashing_.release();
    if (!hash) return hash.error();
    return in_transaction(store_, [&](StoreDb& db) -> Status {
        auto q = db.prepare("INSERT INTO fleet_users(name, role, password, created, updated) VALUES (?,?,?,?,?)");
        if (!q) return q.error();
        q->bind(1, name).bind(2, role).bind(3, *hash).bind(4, now).bind(5, now);
        const int rc = q->step();
        if (rc == SQLITE_CONSTRAINT) return Error("user '" + name + "' already exists");
        return db.check(rc, "add user");
    });
}

Status FleetUsers::set_password(const std::string& name, const std::string& password, int64_t now) {
    if (auto st = check_new_password(password); !st) return st;
    hashing_.acquire();
    auto hash = hash_password(password, params_);
    hashing_.release();
    if (!hash) return hash.error();
    return in_transaction(store_, [&](StoreDb& db) -> Status {
        auto q = db.prepare("UPDATE fleet_users SET password = ?, updated = ? WHERE name = ?");
        if (!q) return q.error();
        q->bind(1, *hash).bind(2, now).bind(3, name);
        if (auto st = db.check(q->step(), "change password"); !st) return st;
        if (db.changes() == 0) return no_user(name);
        // Whoever logged in with the old password is logged out.
        return exec_bound(db, "DELETE FROM fleet_sessions WHERE user = ?", name, "end sessions");
    });
}

Status FleetUsers::remove(const std::string& name) {
    return in_transaction(store_, [&](StoreDb& db) -> Status {
        if (auto st = exec_bound(db, "DELETE FROM fleet_users WHERE name = ?", name, "delete user"); !st) return st;
        if (db.changes() == 0) return no_user(name);
        if (auto st = exec_bound(db, "DELETE FROM fleet_user_tokens WHERE user = ?", name, "delete tokens"); !st)
            return st;
        return exec_bound(db, "DELETE FROM fleet_sessions WHERE user = ?", name, "delete sessions");
    });
}

Result<std::vector<UserRow>> FleetUsers::list() {
    return store_.with_db([&](StoreDb& db) -> Result<std::vector<UserRow>> {
        auto q = db.prepare(
            "SELECT name, role, created, updated, (SELECT COUNT(*) FROM fleet_user_tokens t WHERE t.user = u.name) "
            "FROM fleet_users u ORDER BY name");
        if (!q) return q.error();
        std::vector<UserRow> out;
        int rc;
        while ((rc = q->step()) == SQLITE_ROW) out.push_back({q->text(0), q->text(1), q->i64(2), q->i64(3), q->i64(4)});
        if (auto st = db.check(rc, "list users"); !st) return st.error();
        return out;
    });
}

Result<std::optional<UserRow>> FleetUsers::find(const std::string& name) {
    auto all = list();
    if (!all) return all.error();
    for (auto& u : *all)
        if (u.name == name) return std::optional<UserRow>(std::move(u));
    return std::optional<UserRow>();
}

Result<std::string> FleetUsers::create_token(const std::string& name, int64_t now, std::optional<int64_t> expires) {
    auto hex = random_hex32();
    if (!hex) return hex.error();
    const std::string token = kUserTokenPrefix + *hex;
    auto st = in_transaction(store_, [&](StoreDb& db) -> Status {
        auto u = db.prepare("SELECT 1 FROM fleet_users WHERE name = ?");
        if (!u) return u.error();
        u->bind(1, name);
        const int rc = u->step();
        if (rc == SQLITE_DONE) return no_user(name);
        if (auto c = db.check(rc, "read user"); !c) return c;
        auto q = db.prepare("INSERT INTO fleet_user_tokens(hash, user, created, expires) VALUES (?,?,?,?)");
        if (!q) return q.error();
        q->bind(1, sha256_hex(token)).bind(2, name).bind(3, now);
        if (expires)
            q->bind(4, *expires);
        else
            q->bind_null(4);
        return db.check(q->step(), "store token");
    });
    if (!st) return st.error();
    return token;
}

Result<TokenLookup> FleetUsers::check_token(const std::string& token, int64_t now) {
    TokenLookup out;
    if (token.rfind(kUserTokenPrefix, 0) != 0 || !is_hex64(token, 4)) return out;
    const std::string hash = sha256_hex(token);
    return store_.with_db([&](StoreDb& db) -> Result<TokenLookup> {
        auto q = db.prepare(
            "SELECT t.user, u.role, t.expires FROM fleet_user_tokens t JOIN fleet_users u ON u.name = t.user "
            "WHERE t.hash = ?");
        if (!q) return q.error();
        q->bind(1, hash);
        const int rc = q->step();
        if (rc == SQLITE_DONE) return out;
        if (rc != SQLITE_ROW) return db.error(rc, "look up user token");
        out.who = {q->text(0), q->text(1)};
        out.outcome = !q->is_null(2) && now >= q->i64(2) ? TokenLookup::Expired : TokenLookup::Valid;
        return out;
    });
}

Result<std::optional<UserAuth>> FleetUsers::verify_login(const std::string& name, const std::string& password) {
    std::optional<std::pair<std::string, std::string>> row;  // hash, role
    if (valid_agent_name(name)) {
        auto got = store_.with_db([&](StoreDb& db) -> Status {
            auto q = db.prepare("SELECT password, role FROM fleet_users WHERE name = ?");
            if (!q) return q.error();
            q->bind(1, name);
            const int rc = q->step();
            if (rc == SQLITE_ROW) row.emplace(q->text(0), q->text(1));
            return db.check(rc, "read user");
        });
        if (!got) return got.error();
    }
    if (auto st = prepare_logins(); !st) return st.error();
    // The hash is verified outside the store's lock: 170 ms there would hold up reports.
    if (password.size() > kMaxPasswordLength || !row) {
        verify_bounded(dummy_hash_, password.substr(0, kMaxPasswordLength));
        return std::optional<UserAuth>();
    }
    if (!verify_bounded(row->first, password)) return std::optional<UserAuth>();
    return std::optional<UserAuth>(UserAuth{name, row->second});
}

Result<std::string> FleetUsers::create_session(const std::string& name, int64_t now, const std::string& from) {
    auto id = random_hex32();
    if (!id) return id.error();
    auto st = in_transaction(store_, [&](StoreDb& db) -> Status {
        // Ended sessions go here, so the table holds live ones and those of the last week.
        auto old = db.prepare("DELETE FROM fleet_sessions WHERE created <= ? OR last_used < ?");
        if (!old) return old.error();
        old->bind(1, now - kSessionMax).bind(2, now - kSessionIdle);
        if (auto c = db.check(old->step(), "drop ended sessions"); !c) return c;
        auto q = db.prepare("INSERT INTO fleet_sessions(hash, user, created, last_used, from_addr) VALUES (?,?,?,?,?)");
        if (!q) return q.error();
        q->bind(1, sha256_hex(*id)).bind(2, name).bind(3, now).bind(4, now).bind(5, from);
        return db.check(q->step(), "store session");
    });
    if (!st) return st.error();
    return *id;
}

Result<std::optional<UserAuth>> FleetUsers::check_session(const std::string& id, int64_t now) {
    if (!is_hex64(id, 0)) return std::optional<UserAuth>();
    const std::string hash = sha256_hex(id);
    return store_.with_db([&](StoreDb& db) -> Result<std::optional<UserAuth>> {
        auto q = db.prepare(
            "SELECT s.user, u.role, s.created, s.last_used FROM fleet_sessions s JOIN fleet_users u ON u.name = s.user "
            "WHERE s.hash = ?");
        if (!q) return q.error();
        q->bind(1, hash);
        const int rc = q->step();
        if (rc == SQLITE_DONE) return std::optional<UserAuth>();
        if (rc != SQLITE_ROW) return db.error(rc, "look up session");
        UserAuth who{q->text(0), q->text(1)};
        const int64_t created = q->i64(2), last_used = q->i64(3);
        const bool ended = now - created >= kSessionMax || now - last_used > kSessionIdle;
        if (ended || now - last_used >= kSessionTouchEvery) {
            auto w = db.prepare(ended ? "DELETE FROM fleet_sessions WHERE hash = ?2"
                                      : "UPDATE fleet_sessions SET last_used = ?1 WHERE hash = ?2");
            if (!w) return w.error();
            w->bind(1, now).bind(2, hash);
            if (auto st = db.check(w->step(), "update session"); !st) return st.error();
        }
        if (ended) return std::optional<UserAuth>();
        return std::optional<UserAuth>(std::move(who));
    });
}

Status FleetUsers::end_session(const std::string& id) {
    if (!is_hex64(id, 0)) return Ok{};
    return store_.with_db([&](StoreDb& db) {
        return exec_bound(db, "DELETE FROM fleet_sessions WHERE hash = ?", sha256_hex(id), "end session");
    });
}

// ---- LoginLimiter ---------------------------------------------------------------------

int64_t LoginLimiter::wait_for(std::deque<int64_t>& times, int64_t now) const {
    while (!times.empty() && times.front() <= now - window_) times.pop_front();
    if (static_cast<int>(times.size()) < max_) return 0;
    return std::max<int64_t>(1, times.front() + window_ - now);
}

void LoginLimiter::prune(int64_t now) {
    for (auto* m : {&by_addr_, &by_name_})
        for (auto it = m->begin(); it != m->end();) {
            wait_for(it->second, now);
            it = it->second.empty() ? m->erase(it) : std::next(it);
        }
}

int64_t LoginLimiter::retry_after(const std::string& addr, const std::string& name, int64_t now) {
    std::lock_guard<std::mutex> l(mu_);
    int64_t wait = 0;
    if (auto it = by_addr_.find(addr); it != by_addr_.end()) wait = wait_for(it->second, now);
    if (auto it = by_name_.find(name); it != by_name_.end()) wait = std::max(wait, wait_for(it->second, now));
    return wait;
}

void LoginLimiter::failed(const std::string& addr, const std::string& name, int64_t now) {
    std::lock_guard<std::mutex> l(mu_);
    if (by_addr_.size() >= kLimiterMaxKeys || by_name_.size() >= kLimiterMaxKeys) prune(now);
    for (auto [m, key] : {std::pair{&by_addr_, &addr}, std::pair{&by_name_, &name}}) {
        auto it = m->find(*key);
        if (it == m->end()) {
            if (m->size() >= kLimiterMaxKeys) continue;
            it = m->emplace(*key, std::deque<int64_t>{}).first;
        }
        wait_for(it->second, now);
        it->second.push_back(now);
    }
}

void LoginLimiter::succeeded(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    by_name_.erase(name);
}

}  // namespace pf
