#pragma once
// The collector's users (docs/fleet.md, "Users and roles"): people who read the fleet
// (viewer) or also change it (admin), kept in the collector's database beside the agents.
//
//   users     name, role, argon2id password hash (libargon2's encoded string)
//   tokens    API tokens per user ("pfu_" + 64 hex), stored as SHA-256, optional expiry
//   sessions  the dashboard's logins: a random id in the pf_session cookie, stored as
//             SHA-256, ended after 12 h idle or 7 days
//
// A token or session id is 256 random bits, so a fast hash is as safe as a slow one; a
// password is not, so it gets argon2id. LoginLimiter counts failed logins in memory.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <vector>

#include "peakflow/common/error.hpp"
#include "peakflow/fleet/fleet_store.hpp"

namespace pf {

inline constexpr const char* kUserTokenPrefix = "pfu_";
inline constexpr const char* kSessionCookie = "pf_session";
inline constexpr size_t kMinPasswordLength = 8;
inline constexpr size_t kMaxPasswordLength = 1024;  // a bound on what a login makes us hash
inline constexpr int64_t kSessionIdle = 12 * 3600;
inline constexpr int64_t kSessionMax = 7 * 86400;
// What a viewer sees instead of an IP address: the heartbeat document's placeholder
// "隐私保护" ("privacy protected"), UTF-8.
inline constexpr const char* kHiddenIp = "\xe9\x9a\x90\xe7\xa7\x81\xe4\xbf\x9d\xe6\x8a\xa4";

// argon2id cost. The defaults are the production ones (OWASP's first argon2id choice is
// m=46 MiB, t=1; this is more): t=3 passes over 64 MiB, one lane, 16-byte salt, 32-byte
// hash, about 170 ms on one core of a 2020s x86 server. A hash carries its own parameters,
// so a change here applies to new and changed passwords only.
struct Argon2Params {
    uint32_t t_cost = 3;
    uint32_t m_cost_kib = 64 * 1024;
    uint32_t parallelism = 1;
};

// "$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>" with a fresh random salt.
Result<std::string> hash_password(const std::string& password, const Argon2Params& p = {});
// True when `encoded` is an argon2id hash of `password` (constant-time comparison inside
// libargon2); false for a wrong password and for anything that is not such a hash.
bool verify_password(const std::string& encoded, const std::string& password);
// Refuses a password that is too short or too long, with the reason.
Status check_new_password(const std::string& password);

bool valid_role(const std::string& role);  // admin | viewer

// The header a change made with the session cookie must carry (docs/fleet.md, "CSRF token").
inline constexpr const char* kCsrfHeader = "X-CSRF-Token";
// A session's CSRF token: HMAC-SHA256 keyed with the session id over a fixed label, as 64
// hex digits. Derived, so nothing more is stored and it lives exactly as long as the
// session (a collector restart keeps both); it tells nothing of the id (HMAC is one-way),
// and another site's page can neither read the HttpOnly cookie nor this token.
std::string session_csrf_token(const std::string& session_id);
// True when `given` is the token of `session_id`; compared in constant time.
bool csrf_token_matches(const std::string& session_id, const std::string& given);

struct UserRow {
    std::string name, role;
    int64_t created = 0, updated = 0;
    int64_t tokens = 0;  // its API tokens, expired ones included
};

struct UserAuth {
    std::string user, role;
};

// What an API token is.
struct TokenLookup {
    enum Outcome { Unknown, Expired, Valid } outcome = Unknown;
    UserAuth who;  // set for Expired and Valid
};

class FleetUsers {
  public:
    // Brings the "fleet_users" schema part up on the store's connection (the store must be
    // open read-write).
    static Result<std::unique_ptr<FleetUsers>> open(FleetStore& store, Argon2Params p = {});
    // Makes the dummy hash unknown names are verified against now rather than at the first
    // login (that login would take twice as long, and its time would tell the name was
    // unknown). The server calls it at start; verify_login makes it when nobody did.
    Status prepare_logins();

    // add: refuses a bad name or role, a short password and an existing name.
    Status add(const std::string& name, const std::string& role, const std::string& password, int64_t now);
    // A new password; the user's sessions end (its API tokens stay).
    Status set_password(const std::string& name, const std::string& password, int64_t now);
    // The user, its tokens and its sessions, in one transaction.
    Status remove(const std::string& name);
    Result<std::vector<UserRow>> list();
    Result<std::optional<UserRow>> find(const std::string& name);

    // A new API token for `name`, printed once by the caller; expires (collector clock) or
    // never.
    Result<std::string> create_token(const std::string& name, int64_t now, std::optional<int64_t> expires);
    Result<TokenLookup> check_token(const std::string& token, int64_t now);

    // The user when the password is right. An unknown name is verified against a dummy
    // hash of the same cost, so the answer takes the same time either way.
    Result<std::optional<UserAuth>> verify_login(const std::string& name, const std::string& password);

    // Sessions: the id goes in the cookie, its SHA-256 in the store.
    Result<std::string> create_session(const std::string& name, int64_t now, const std::string& from);
    // The session's user, its idle time renewed; nullopt (and the row gone) when it is
    // unknown, idle for more than kSessionIdle or older than kSessionMax.
    Result<std::optional<UserAuth>> check_session(const std::string& id, int64_t now);
    Status end_session(const std::string& id);

  private:
    FleetUsers(FleetStore& store, Argon2Params p) : store_(store), params_(p) {}
    bool verify_bounded(const std::string& encoded, const std::string& password);

    FleetStore& store_;
    Argon2Params params_;
    std::once_flag dummy_once_;
    Status dummy_status_ = Ok{};
    std::string dummy_hash_;
    // Each argon2 computation holds m_cost of memory: at most two at a time, so a burst of
    // logins on every server thread costs 128 MiB, not threads x 64 MiB.
    std::counting_semaphore<2> hashing_{2};
};

// Failed logins per remote address and per user name: `max_failures` within `window`
// seconds and the next attempt is refused (429) until the oldest of them leaves the
// window. Refused attempts do not count; a success clears the name's failures (not the
// address's, so one good account does not buy more guesses at others). Thread-safe.
class LoginLimiter {
  public:
    explicit LoginLimiter(int max_failures = 5, int64_t window = 300) : max_(max_failures), window_(window) {}
    // Seconds to wait (> 0) when the address or the name is over the limit, else 0.
    int64_t retry_after(const std::string& addr, const std::string& name, int64_t now);
    void failed(const std::string& addr, const std::string& name, int64_t now);
    void succeeded(const std::string& name);

  private:
    int64_t wait_for(std::deque<int64_t>& times, int64_t now) const;
    void prune(int64_t now);

    std::mutex mu_;
    int max_;
    int64_t window_;
    std::map<std::string, std::deque<int64_t>> by_addr_, by_name_;
};

}  // namespace pf
