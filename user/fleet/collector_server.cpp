#include "peakflow/fleet/collector_server.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "peakflow/fleet/central_config.hpp"
#include "peakflow/fleet/central_store.hpp"
#include "peakflow/fleet/dashboard.hpp"
#include "peakflow/fleet/fleet_history.hpp"
#include "peakflow/push/outbox.hpp"

namespace pf {

namespace {

// The answer when the store could not be asked (a database that went away): not the
// caller's fault, and worth trying again.
constexpr const char* kStoreDown = "the collector cannot read its database now: try again";

using Json = nlohmann::ordered_json;

int64_t system_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string error_body(const std::string& message) {
    Json j;
    j["status"] = "error";
    j["message"] = message;
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// What reading a request body gave: the body, or the status and reason it was refused.
struct Body {
    int status = 0;  // 0: read
    std::string message;
    std::string data;
};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The body, decompressed and capped. cpp-httplib inflates a gzip body while it reads it (it
// is built with zlib): our receiver sees the inflated bytes and stops at the cap, so a gzip
// bomb costs at most kWireMaxDecompressed. Built without zlib it would hand us the gzip
// stream itself: then gzip_decompress does it, with the same cap.
Body read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
               const std::string& encoding) {
    Body b;
    bool over = false;
    const bool ok = reader([&](const char* data, size_t n) {
        if (b.data.size() + n > kWireMaxDecompressed) {
            over = true;
            return false;
        }
        b.data.append(data, n);
        return true;
    });
    if (over) {
        b.status = 413;
        b.message = "decompressed body over " + std::to_string(kWireMaxDecompressed) + " bytes";
        return b;
    }
    if (!ok) {
        // cpp-httplib set 413 when the body as sent was over set_payload_max_length.
        if (res.status == 413) {
            b.status = 413;
            b.message = "body over " + std::to_string(kWireMaxCompressed) + " bytes";
        } else {
            b.status = 400;
            b.message = "cannot read the body: a corrupt gzip stream or a short read";
        }
        return b;
    }
    (void)req;
    if (encoding == "gzip" && b.data.size() >= 2 && static_cast<unsigned char>(b.data[0]) == 0x1f &&
        static_cast<unsigned char>(b.data[1]) == 0x8b) {
        auto d = gzip_decompress(b.data, kWireMaxDecompressed);
        if (!d) {
            const std::string m = d.error().message();
            b.status = m.rfind("decompressed body over", 0) == 0 ? 413 : 400;
            b.message = m;
            return b;
        }
        b.data = std::move(*d);
    }
    return b;
}

bool valid_token_shape(const std::string& t) {
    if (t.size() != 4 + 64 || t.compare(0, 4, kTokenPrefix) != 0) return false;
    for (size_t i = 4; i < t.size(); i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    return true;
}

}  // namespace

std::string human_duration(int64_t s) {
    if (s < 0) s = 0;
    auto two = [](int64_t a, const char* ua, int64_t b, const char* ub) {
        return std::to_string(a) + ua + " " + std::to_string(b) + ub;
    };
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return two(s / 60, "m", s % 60, "s");
    if (s < 86400) return two(s / 3600, "h", s % 3600 / 60, "m");
    return two(s / 86400, "d", s % 86400 / 3600, "h");
}

struct CollectorServer::Impl {
    CollectorOptions o;
    std::optional<Calendar> cal;
    std::unique_ptr<FleetStore> store;
    std::unique_ptr<Outbox> outbox;
    MessageQueue* queue = nullptr;
    std::unique_ptr<httplib::Server> http;
    int port = 0;
    std::thread listener;
    int64_t started = 0;  // collector clock at start: every agent gets a full grace period
    std::mutex alert_file_mu;

    std::thread watcher;
    std::mutex watch_mu;
    std::condition_variable watch_cv;
    bool stopping = false;
    bool stopped = false;

    int64_t now() const { return o.clock(); }

    // Alert file, log, push sinks: what every stored notice goes to.
    void dispatch(const StoredAlert& a, bool push) {
        const bool raised = a.kind == "alert";
        if (raised)
            spdlog::warn("{} ({}): {}", a.title, a.origin == "agent" ? "from the agent" : "collector", a.key);
        else
            spdlog::info("{} ({}): {}", a.title, a.origin == "agent" ? "from the agent" : "collector", a.key);
        append_alert_file(a);
        if (push && queue) {
            OutboundMessage m{"", raised ? "alert" : "recovery", a.key, a.title, a.text, ""};
            if (auto st = queue->enqueue(m); !st)
                spdlog::error("alert {}: cannot queue it: {}", a.key, st.error().message());
        }
    }

    void append_alert_file(const StoredAlert& a) {
        if (o.alert_file.empty()) return;
        std::string line = cal->format_local(a.time) + " " + a.kind + " " + a.agent + ": " + a.title;
        for (auto& c : line)
            if (c == '\n' || c == '\r') c = ' ';
        line += "\n";
        std::lock_guard<std::mutex> l(alert_file_mu);
        // Opened per line: a rotated file is picked up at once, and one write() of a line
        // with O_APPEND never interleaves with another writer's.
        int fd = ::open(o.alert_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            spdlog::error("alert file {}: {}", o.alert_file, std::strerror(errno));
            return;
        }
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            spdlog::error("alert file {}: short write: {}", o.alert_file, std::strerror(errno));
        ::fsync(fd);
        ::close(fd);
    }

    // An offline alert and its recovery share the key, so they pair up in every sink.
    static StoredAlert agent_notice(const AgentRow& a, int64_t now, const char* kind, std::string title,
                                    std::string text) {
        StoredAlert n;
        n.time = now;
        n.agent = a.name;
        n.origin = "collector";
        n.kind = kind;
        n.key = "agent-offline:" + a.name;
        n.node = a.node;
        n.host = a.host;
        n.title = std::move(title);
        n.text = std::move(text);
        return n;
    }

    StoredAlert offline_notice(const AgentRow& a, int64_t now) const {
        const int64_t last = a.last_seen.value_or(0);
        return agent_notice(a, now, "alert", a.name + " offline",
                            "No report from agent **" + a.name + "** (node " + (a.node.empty() ? "-" : a.node) +
                                ", host " + (a.host.empty() ? "-" : a.host) + ") since " + cal->format_local(last) +
                                ": " + human_duration(now - last) + ", more than " + std::to_string(o.offline_after) +
                                " x its " + std::to_string(a.interval) + " s interval.");
    }

    StoredAlert recovery_notice(const AgentRow& a, int64_t now, int64_t backlog) const {
        const int64_t last = a.last_seen.value_or(0);
        return agent_notice(a, now, "recovery", a.name + " back online",
                            "Agent **" + a.name + "** reports again after " + human_duration(now - last) +
                                " without a report (last report " + cal->format_local(last) +
                                "); backlog it announced: " + std::to_string(backlog) + " records.");
    }

    std::optional<bool> leading;  // check_offline: whether this collector ran the watch last time

    Status check_offline() {
        // Several collectors on one PostgreSQL database: one of them watches, so an agent
        // going quiet raises one alert; another takes over when its connection ends.
        auto lead = store->lead("offline-watch");
        if (!lead) return lead.error();
        if (leading != *lead)
            spdlog::info(*lead ? "offline watch: this collector runs it"
                               : "offline watch: another collector on this database runs it");
        leading = *lead;
        if (!*lead) return Ok{};
        auto moved = store->mark_offline(now(), started, o.offline_after,
                                         [this](const AgentRow& a, int64_t t) { return offline_notice(a, t); });
        if (!moved) return moved.error();
        for (const auto& t : *moved) dispatch(t.notice, true);
        // The days that ended since, or took late rows, rolled up before a reader needs them:
        // the 40 days back cover a billing month and the month before it, mostly.
        if (auto n = store->settle_days(now() - 40 * 86400, now()); !n)
            spdlog::warn("day roll-ups: {}", n.error().message());
        return Ok{};
    }

    void watch_loop() {
        std::unique_lock<std::mutex> l(watch_mu);
        while (!stopping) {
            watch_cv.wait_for(l, o.watch_every, [this] { return stopping; });
            if (stopping) break;
            l.unlock();
            if (auto st = check_offline(); !st) spdlog::error("offline watch: {}", st.error().message());
            l.lock();
        }
    }

    // The token of `Authorization: Bearer`, checked: the agent's name, or why not and the
    // status to answer (401; 500 when the store could not be asked).
    std::optional<std::string> authenticate(const httplib::Request& req, std::string& why, int& status) {
        const std::string h = req.get_header_value("Authorization");
        const std::string prefix = "Bearer ";
        if (h.compare(0, prefix.size(), prefix) != 0) {
            why = "missing Authorization: Bearer token";
            return std::nullopt;
        }
        const std::string token = h.substr(prefix.size());
        if (!valid_token_shape(token)) {
            why = "unknown or revoked token";
            return std::nullopt;
        }
        auto auth = store->authenticate(token);
        if (!auth) {
            // Not the token's fault: the agent keeps its report and sends it again.
            spdlog::error("token lookup: {}", auth.error().message());
            why = kStoreDown;
            status = 500;
            return std::nullopt;
        }
        if (!*auth || (*auth)->revoked) {
            why = "unknown or revoked token";
            if (*auth) spdlog::info("{}: token of agent '{}' is revoked", req.remote_addr, (*auth)->agent);
            return std::nullopt;
        }
        return (*auth)->agent;
    }

    // Who calls a JSON API endpoint: a user (role admin or viewer) or, where `agent_ok`, an
    // agent by its token (role "agent", `agent` set: it may read only what is its own).
    // nullopt: refused, `res` holds the 401 and its reason.
    struct Caller {
        std::string user;     // "" for an agent
        std::string role;     // admin | viewer | agent
        std::string agent;    // the agent's name when role is agent
        std::string from;     // the remote address, for the audit log
        std::string session;  // the session id when the cookie authenticated, else ""
        bool admin() const { return role == "admin"; }
    };
    // A request that may change something: every method but GET and HEAD.
    static bool is_change(const httplib::Request& req) { return req.method != "GET" && req.method != "HEAD"; }
    // Why a change made with session `sid` is refused for its CSRF token ("" when it carries
    // the right one). The cookie goes with any request to us, another site's included; the
    // token only with what our own page sends.
    static std::string csrf_problem(const httplib::Request& req, const std::string& sid) {
        if (req.get_header_value(kCsrfHeader).empty())
            return std::string("missing ") + kCsrfHeader +
                   " header: a change made with the session cookie needs the session's csrf_token (of the login or "
                   "GET /api/v1/me)";
        if (!csrf_token_matches(sid, req.get_header_value(kCsrfHeader)))
            return std::string("wrong ") + kCsrfHeader + " for this session: reload the page";
        return "";
    }
    // Tried in this order: a user's API token (Authorization: Bearer pfu_...), the
    // dashboard's session cookie (a change also needs its CSRF token: else 403), then
    // (agent_ok) an agent's token (Bearer pfc_...). A bearer token is no ambient credential:
    // no CSRF token with it.
    std::optional<Caller> caller(const httplib::Request& req, httplib::Response& res, bool agent_ok) {
        const std::string what = req.method + " " + req.path;
        const std::string h = req.get_header_value("Authorization");
        const std::string bearer = h.rfind("Bearer ", 0) == 0 ? h.substr(7) : "";
        if (bearer.rfind(kUserTokenPrefix, 0) == 0) {
            auto t = users->check_token(bearer, now());
            if (!t) {
                spdlog::error("user token lookup: {}", t.error().message());
                refuse(res, 500, kStoreDown, what, req, "");
                return std::nullopt;
            }
            if (t && t->outcome == TokenLookup::Valid) return Caller{t->who.user, t->who.role, "", req.remote_addr, ""};
            const bool expired = t && t->outcome == TokenLookup::Expired;
            refuse(res, 401, expired ? "token expired" : "unknown or revoked token", what, req, "");
            if (expired) spdlog::info("{}: API token of user '{}' expired", req.remote_addr, t->who.user);
            return std::nullopt;
        }
        std::string why = "missing credentials: log in, or send Authorization: Bearer with a user's API token";
        int status = 401;
        if (const std::string sid = cookie(req, kSessionCookie); !sid.empty()) {
            auto s = users->check_session(sid, now());
            if (!s) spdlog::error("session lookup: {}", s.error().message());
            if (s && *s) {
                if (is_change(req)) {
                    if (const std::string bad = csrf_problem(req, sid); !bad.empty()) {
                        refuse(res, 403, bad, what, req, "");
                        return std::nullopt;
                    }
                }
                return Caller{(*s)->user, (*s)->role, "", req.remote_addr, sid};
            }
            why = "the session ended (logged out, idle for 12 h or 7 days old): log in again";
        }
        if (agent_ok && !bearer.empty()) {
            if (auto name = authenticate(req, why, status)) return Caller{"", "agent", *name, req.remote_addr, ""};
        } else if (!bearer.empty()) {
            why = "an agent's token is not accepted here: use a user's API token (pfu_...) or log in";
        }
        refuse(res, status, why, what, req, "");
        return std::nullopt;
    }

    // 403 unless the caller is an admin.
    bool require_admin(const Caller& c, const httplib::Request& req, httplib::Response& res) {
        if (c.admin()) return true;
        refuse(res, 403, "this needs the admin role", req.method + " " + req.path, req, c.agent);
        return false;
    }

    // ---- users: login, sessions, roles (docs/fleet.md, "Users and roles") --------------

    std::unique_ptr<FleetUsers> users;
    LoginLimiter login_limiter;

    // An IP address as the caller may see it: admins the address, everyone else (viewers,
    // and agents) the heartbeat document's placeholder.
    std::string shown_ip(const Caller& c, const std::string& ip) const { return c.admin() ? ip : kHiddenIp; }

    // The value of cookie `name` in the Cookie header(s), "" when there is none.
    static std::string cookie(const httplib::Request& req, const std::string& name) {
        const size_t n = req.get_header_value_count("Cookie");
        for (size_t i = 0; i < n; i++) {
            const std::string h = req.get_header_value("Cookie", i);
            for (size_t start = 0; start < h.size();) {
                size_t end = h.find(';', start);
                if (end == std::string::npos) end = h.size();
                size_t b = start;
                while (b < end && h[b] == ' ') b++;
                if (h.compare(b, name.size() + 1, name + "=") == 0 && b + name.size() + 1 <= end)
                    return h.substr(b + name.size() + 1, end - b - name.size() - 1);
                start = end + 1;
            }
        }
        return "";
    }

    std::string session_cookie(const std::string& value, int64_t max_age) const {
        return std::string(kSessionCookie) + "=" + value + "; Path=/; Max-Age=" + std::to_string(max_age) +
               "; HttpOnly; SameSite=Strict" + (o.tls_cert.empty() ? "" : "; Secure");
    }

    void answer_json(httplib::Response& res, int status, const Json& j) {
        res.status = status;
        res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    }

    // POST /api/v1/login {"user", "password"}: a session cookie, or one generic 401.
    void handle_login(const httplib::Request& req, httplib::Response& res) {
        const char* what = "POST /api/v1/login";
        constexpr size_t kMaxLoginBody = 16 * 1024;
        if (req.body.size() > kMaxLoginBody)
            return refuse(res, 413, "body over " + std::to_string(kMaxLoginBody) + " bytes", what, req, "");
        // Another site's form can post text/plain that reads as JSON, but never
        // application/json (that needs a CORS preflight, which we never answer): a login only
        // in JSON cannot be forged to log a browser in as someone else.
        std::string type = lower(req.get_header_value("Content-Type"));
        type = type.substr(0, type.find(';'));
        while (!type.empty() && type.back() == ' ') type.pop_back();
        if (type != "application/json") return refuse(res, 415, "Content-Type must be application/json", what, req, "");
        std::string name, password;
        {
            Json j = Json::parse(req.body, nullptr, false);
            if (j.is_discarded()) return refuse(res, 400, "the body is not JSON", what, req, "");
            if (!j.is_object())
                return refuse(res, 400, "the body must be a JSON object {\"user\", \"password\"}", what, req, "");
            for (const char* k : {"user", "password"}) {
                auto it = j.find(k);
                if (it == j.end()) return refuse(res, 400, std::string("missing field '") + k + "'", what, req, "");
                if (!it->is_string())
                    return refuse(res, 400, std::string("field '") + k + "' must be a string", what, req, "");
            }
            name = j["user"].get<std::string>();
            password = j["password"].get<std::string>();
        }
        // Logged and counted as given only when it can be a name (no control bytes, bounded).
        const bool plausible = valid_agent_name(name);
        const std::string shown = plausible ? "'" + name + "'" : "(not a valid user name)";
        const std::string key = plausible ? name : "";
        const int64_t t = now();
        if (const int64_t wait = login_limiter.retry_after(req.remote_addr, key, t); wait > 0) {
            spdlog::warn("login from {} as {}: refused (429): too many failed logins, retry in {} s", req.remote_addr,
                         shown, wait);
            res.set_header("Retry-After", std::to_string(wait));
            res.status = 429;
            res.set_content(error_body("too many failed logins: try again in " + std::to_string(wait) + " s"),
                            "application/json");
            return;
        }
        auto who = users->verify_login(name, password);
        if (!who) return fail_login_500(res, req, who.error());
        if (!*who) {
            login_limiter.failed(req.remote_addr, key, t);
            spdlog::warn("login from {} as {}: refused (401): wrong user name or password", req.remote_addr, shown);
            res.status = 401;
            res.set_content(error_body("wrong user name or password"), "application/json");
            return;
        }
        login_limiter.succeeded(key);
        auto sid = users->create_session(name, t, req.remote_addr);
        if (!sid) return fail_login_500(res, req, sid.error());
        spdlog::info("login from {} as {}: accepted (role {})", req.remote_addr, shown, (*who)->role);
        res.set_header("Set-Cookie", session_cookie(*sid, kSessionMax));
        answer_json(res, 200,
                    Json{{"user", (*who)->user}, {"role", (*who)->role}, {"csrf_token", session_csrf_token(*sid)}});
    }

    void fail_login_500(httplib::Response& res, const httplib::Request& req, const Error& e) {
        spdlog::error("{} {} from {}: {}", req.method, req.path, req.remote_addr, e.message());
        res.status = 500;
        res.set_content(error_body("cannot read the users: " + e.message()), "application/json");
    }

    // POST /api/v1/logout: the session ends here and in the browser. A live session's
    // logout is a change like any other (its CSRF token); an ended one's only clears the cookie.
    void handle_logout(const httplib::Request& req, httplib::Response& res) {
        const std::string sid = cookie(req, kSessionCookie);
        if (!sid.empty()) {
            auto who = users->check_session(sid, now());
            if (!who) return fail_login_500(res, req, who.error());
            if (*who) {
                if (const std::string bad = csrf_problem(req, sid); !bad.empty())
                    return refuse(res, 403, bad, "POST /api/v1/logout", req, "");
            }
            if (auto st = users->end_session(sid); !st) return fail_login_500(res, req, st.error());
            if (who && *who) spdlog::info("logout from {}: user '{}'", req.remote_addr, (*who)->user);
        }
        res.set_header("Set-Cookie", session_cookie("", 0));
        answer_json(res, 200, Json{{"status", "ok"}});
    }

    // GET /api/v1/me: who the session or token is.
    void handle_me(const httplib::Request& req, httplib::Response& res) {
        auto c = caller(req, res, false);
        if (!c) return;
        Json j{{"user", c->user}, {"role", c->role}};
        if (!c->session.empty()) j["csrf_token"] = session_csrf_token(c->session);
        answer_json(res, 200, j);
    }

    // GET /api/v1/users: admins; what `user list --json` shows.
    void handle_users(const httplib::Request& req, httplib::Response& res) {
        auto c = caller(req, res, false);
        if (!c || !require_admin(*c, req, res)) return;
        auto all = users->list();
        if (!all) return fail_login_500(res, req, all.error());
        Json out = Json::array();
        for (const auto& u : *all)
            out.push_back({{"name", u.name},
                           {"role", u.role},
                           {"created", cal->format_local(u.created)},
                           {"created_epoch", u.created},
                           {"updated", cal->format_local(u.updated)},
                           {"updated_epoch", u.updated},
                           {"tokens", u.tokens}});
        answer_json(res, 200, Json{{"users", std::move(out)}});
    }

    // ---- the dashboard (dashboard.hpp) --------------------------------------------------

    std::unique_ptr<DashboardFiles> files;

    // GET / and /ui/...: the embedded files; no credentials (the pages hold no data).
    void handle_file(const httplib::Request& req, httplib::Response& res) {
        WebAnswer a = files->get(req.path, req.get_header_value("If-None-Match"));
        res.status = a.status;
        for (const auto& [k, v] : a.headers) res.set_header(k, v);
        if (!a.body.empty()) res.set_content(std::move(a.body), a.content_type);
    }

    // The dashboard's JSON (users, admin or viewer: it holds no address and changes nothing).
    void handle_dashboard(const httplib::Request& req, httplib::Response& res,
                          ApiAnswer (*make)(const DashboardContext&, const httplib::Request&)) {
        auto c = caller(req, res, false);
        if (!c) return;
        ApiAnswer a = make(DashboardContext{*store, *cal, now(), o.offline_after, o.fleet_name}, req);
        if (a.status != 200) {
            const Json e = Json::parse(a.body, nullptr, false);
            const bool has = e.is_object() && e.contains("message") && e["message"].is_string();
            const std::string why = has ? e["message"].get<std::string>() : a.body;
            if (a.status < 500)
                spdlog::info("{} {} from {}: refused ({}): {}", req.method, req.path, req.remote_addr, a.status, why);
            else
                spdlog::error("{} {}: {}", req.method, req.path, why);
        }
        res.status = a.status;
        res.set_content(std::move(a.body), "application/json");
    }

    // ---- heartbeat service (heartbeat.hpp) ---------------------------------------------

    std::unique_ptr<HeartbeatService> heartbeat;

    // POST /heartbeat/report: a heartbeat token or an allowed address (checked by the
    // service). POST /heartbeat/status: users, each IP address through shown_ip.
    void handle_heartbeat(const httplib::Request& req, httplib::Response& res, bool report) {
        const std::string what = req.method + " " + req.path;
        HeartbeatReply r;
        if (report) {
            r = heartbeat->report(req.get_header_value("Authorization"), req.remote_addr, req.body);
        } else {
            auto c = caller(req, res, false);
            if (!c) return;
            r = heartbeat->status(req.body, {[&](const std::string& ip) { return shown_ip(*c, ip); }, c->admin()});
        }
        if (r.status != 200) return refuse(res, r.status, r.message, what, req, "");
        res.status = 200;
        res.set_content(r.body, "application/json");
    }

    void refuse(httplib::Response& res, int status, const std::string& message, const std::string& what,
                const httplib::Request& req, const std::string& agent) {
        spdlog::info("{} from {}{}: refused ({}): {}", what, req.remote_addr,
                     agent.empty() ? "" : " (agent " + agent + ")", status, message);
        res.status = status;
        res.set_content(error_body(message), "application/json");
    }

    // Common to both endpoints: encoding, token, body. False when refused (res set).
    bool admit(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
               const char* what, std::string& agent, std::string& body) {
        const std::string enc = lower(req.get_header_value("Content-Encoding"));
        // The body is read before any refusal: a client still sending it would otherwise
        // get a reset instead of the answer.
        Body b = read_body(req, res, reader, enc);
        if (!enc.empty() && enc != "identity" && enc != "gzip") {
            refuse(res, 415, "Content-Encoding '" + enc + "' is not supported: use gzip or identity", what, req, "");
            return false;
        }
        std::string why;
        int status = 401;
        auto name = authenticate(req, why, status);
        if (!name) {
            refuse(res, status, why, what, req, "");
            return false;
        }
        agent = *name;
        if (b.status) {
            refuse(res, b.status, b.message, what, req, agent);
            return false;
        }
        body = std::move(b.data);
        return true;
    }

    void handle_report(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string agent, body;
        if (!admit(req, res, reader, "report", agent, body)) return;
        const int64_t t = now();
        auto r = parse_report(body, t);
        if (!r) return refuse(res, 400, r.error().message(), "report", req, agent);
        if (r->agent.name != agent)
            return refuse(res, 403, "the token is agent '" + agent + "''s, not '" + r->agent.name + "'s", "report", req,
                          agent);
        const int64_t backlog = r->backlog();
        auto in =
            store->ingest(agent, *r, t, [&](const AgentRow& a, int64_t at) { return recovery_notice(a, at, backlog); });
        if (!in) {
            spdlog::error("report from {} (agent {}): {}", req.remote_addr, agent, in.error().message());
            res.status = 500;
            res.set_content(error_body("cannot store the report: " + in.error().message()), "application/json");
            return;
        }
        if (!in->gap.empty()) {
            refuse(res, 409, in->gap, "report", req, agent);
            Json j = Json::parse(error_body(in->gap));
            j["acked"] = {{"buckets", in->ack.buckets},
                          {"push", in->ack.push},
                          {"host", in->ack.host},
                          {"heartbeat", in->ack.heartbeat},
                          {"flows", in->ack.flows}};
            res.set_content(j.dump(), "application/json");
            return;
        }
        spdlog::info("report from {} (agent {}): accepted {} batch(es), {} record(s){}; backlog {}", req.remote_addr,
                     agent, in->batches, in->records,
                     in->duplicates ? ", " + std::to_string(in->duplicates) + " duplicate batch(es) acknowledged" : "",
                     backlog);
        if (in->notice) dispatch(*in->notice, true);
        for (const auto& n : in->push_notices) dispatch(n, true);
        note_config_state(agent, r->agent);
        // The central config goes with the answer when the agent runs another version than
        // its current one (also an older one: a restored collector database is the truth).
        WireAck ack = in->ack;
        auto central = central_effective(*store, agent);
        if (!central)
            spdlog::error("central config of agent {}: {}", agent, central.error().message());
        else if (central->version != r->agent.config_version)
            ack.config = std::move(*central);
        res.status = 200;
        res.set_content(render_ack(ack), "application/json");
    }

    // ---- central configuration ---------------------------------------------------------

    std::mutex config_state_mu;
    std::map<std::string, AgentConfigState> config_state;  // as last stored, per agent

    // What the agent says it runs: stored when it changed, its problems logged once.
    void note_config_state(const std::string& agent, const WireAgent& a) {
        {
            std::lock_guard<std::mutex> l(config_state_mu);
            auto it = config_state.find(agent);
            if (it != config_state.end() && it->second.version == a.config_version &&
                it->second.problems == a.config_problems)
                return;
        }
        AgentConfigState st{a.config_version, a.config_problems};
        if (auto ok = note_agent_config(*store, agent, st); !ok) {
            spdlog::error("agent {}: cannot store its config state: {}", agent, ok.error().message());
            return;
        }
        for (const auto& p : a.config_problems)
            spdlog::warn("agent {} cannot apply central config v{} key {}: {}", agent, a.config_version, p.key,
                         p.message);
        std::lock_guard<std::mutex> l(config_state_mu);
        config_state[agent] = std::move(st);
    }

    static void answer(httplib::Response& res, int status, const Json& j) {
        res.status = status;
        res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    }

    void fail_500(httplib::Response& res, const httplib::Request& req, const Error& e) {
        spdlog::error("{} {}: {}", req.method, req.path, e.message());
        answer(res, 500, Json::parse(error_body(e.message())));
    }

    // Dotted keys to nested objects: {"push.sinks.a.url": "x"} -> {"push":{"sinks":{"a":{"url":"x"}}}}.
    static Json nested(const std::map<std::string, std::string>& values) {
        Json out = Json::object();
        for (const auto& [k, v] : values) {
            Json* at = &out;
            size_t start = 0;
            for (size_t dot; (dot = k.find('.', start)) != std::string::npos; start = dot + 1) {
                Json& next = (*at)[k.substr(start, dot - start)];
                if (!next.is_object()) next = Json::object();
                at = &next;
            }
            Json parsed = Json::parse(v, nullptr, false);
            (*at)[k.substr(start)] = parsed.is_discarded() ? Json(v) : std::move(parsed);
        }
        return out;
    }

    static Json value_json(const std::string& v) {
        Json parsed = Json::parse(v, nullptr, false);
        return parsed.is_discarded() ? Json(v) : parsed;
    }

    // The agent `name` must hold a token (revoked or not): a typo must not configure nobody.
    bool known_agent(const std::string& name, const httplib::Request& req, httplib::Response& res,
                     const std::string& what) {
        auto a = store->agent(name);
        if (!a) {
            fail_500(res, req, a.error());
            return false;
        }
        if (!*a) {
            refuse(res, 404, "no agent named '" + name + "'", what, req, "");
            return false;
        }
        return true;
    }

    // The effective config of one agent, each value with where it comes from.
    Result<Json> agent_config_json(const std::string& agent) {
        auto fleet = central_entries(*store, "");
        if (!fleet) return fleet.error();
        auto own = central_entries(*store, agent);
        if (!own) return own.error();
        auto eff = central_effective(*store, agent);
        if (!eff) return eff.error();
        auto reported = agent_config_state(*store, agent);
        if (!reported) return reported.error();
        std::map<std::string, const CentralEntry*> by_key;
        for (const auto& e : *fleet) by_key[e.key] = &e;
        for (const auto& e : *own) by_key[e.key] = &e;
        Json j;
        j["agent"] = agent;
        j["version"] = eff->version;
        j["config"] = nested(eff->values);
        j["entries"] = Json::array();
        for (const auto& [k, e] : by_key)
            j["entries"].push_back(
                {{"key", k},
                 {"value", value_json(e->value)},
                 {"source", (e->scope.empty() ? "fleet v" : "agent v") + std::to_string(e->version)}});
        Json probs = Json::array();
        for (const auto& p : reported->problems) probs.push_back({{"key", p.key}, {"message", p.message}});
        j["applied"] = {{"version", reported->version}, {"problems", std::move(probs)}};
        return j;
    }

    Result<Json> fleet_config_json() {
        auto f = central_fleet(*store);
        if (!f) return f.error();
        auto entries = central_entries(*store, "");
        if (!entries) return entries.error();
        Json j;
        j["version"] = f->version;
        j["config"] = nested(f->values);
        j["entries"] = Json::array();
        for (const auto& e : *entries)
            j["entries"].push_back(
                {{"key", e.key}, {"value", value_json(e.value)}, {"source", "fleet v" + std::to_string(e.version)}});
        return j;
    }

    // GET /api/v1/config[?agent=NAME]: users, and an agent for its own.
    void handle_config_get(const httplib::Request& req, httplib::Response& res) {
        auto c = caller(req, res, true);
        if (!c) return;
        const std::string agent = req.get_param_value("agent");
        if (c->role == "agent" && agent != c->agent)
            return refuse(res, 403, "an agent token reads only its own config (?agent=" + c->agent + ")",
                          "GET /api/v1/config", req, c->agent);
        if (!agent.empty() && !known_agent(agent, req, res, "GET /api/v1/config")) return;
        auto j = agent.empty() ? fleet_config_json() : agent_config_json(agent);
        if (!j) return fail_500(res, req, j.error());
        answer(res, 200, *j);
    }

    // PUT /api/v1/config {"agent"?, "key", "value"} and DELETE /api/v1/config?agent=&key=: admins.
    void handle_config_change(const httplib::Request& req, httplib::Response& res, bool set) {
        const std::string what = req.method + " /api/v1/config";
        auto c = caller(req, res, false);
        if (!c || !require_admin(*c, req, res)) return;
        std::string agent, key, value;
        if (set) {
            if (req.body.size() > kCentralMaxValue + 4096)
                return refuse(res, 413, "body over " + std::to_string(kCentralMaxValue + 4096) + " bytes", what, req,
                              "");
            Json j = Json::parse(req.body, nullptr, false);
            if (j.is_discarded() || !j.is_object())
                return refuse(res, 400, "the body must be a JSON object {\"key\", \"value\", \"agent\"?}", what, req,
                              "");
            if (!j.contains("key") || !j["key"].is_string())
                return refuse(res, 400, "missing string field 'key'", what, req, "");
            if (!j.contains("value")) return refuse(res, 400, "missing field 'value'", what, req, "");
            if (j.contains("agent") && !j["agent"].is_null()) {
                if (!j["agent"].is_string()) return refuse(res, 400, "field 'agent' must be a string", what, req, "");
                agent = j["agent"].get<std::string>();
            }
            key = j["key"].get<std::string>();
            value = j["value"].dump();
        } else {
            agent = req.get_param_value("agent");
            key = req.get_param_value("key");
            if (key.empty()) return refuse(res, 400, "missing parameter 'key'", what, req, "");
        }
        if (!agent.empty() && !known_agent(agent, req, res, what)) return;
        if (auto why = central_key_problem(key); !why.empty()) return refuse(res, 400, why, what, req, "");
        if (set) {
            const std::string why = o.check_central ? o.check_central(key, value) : central_value_problem(key, value);
            if (!why.empty()) return refuse(res, 400, why, what, req, "");
        }
        ChangeOrigin origin{c->user, req.remote_addr, now()};
        auto v = set ? central_set(*store, agent, key, value, origin) : central_unset(*store, agent, key, origin);
        if (!v) {
            if (!set && v.error().message().find("is not set") != std::string::npos)
                return refuse(res, 404, v.error().message(), what, req, "");
            return fail_500(res, req, v.error());
        }
        spdlog::info("central config v{}: {} {}{} by {} from {}", *v, set ? "set" : "unset", key,
                     agent.empty() ? " (fleet)" : " (agent " + agent + ")", c->user, req.remote_addr);
        answer(res, 200, Json{{"status", "ok"}, {"version", *v}});
    }

    // GET /api/v1/audit[?agent=NAME][&limit=N]: users.
    void handle_audit(const httplib::Request& req, httplib::Response& res) {
        auto c = caller(req, res, false);
        if (!c) return;
        size_t limit = 200;
        if (req.has_param("limit")) {
            const std::string l = req.get_param_value("limit");
            char* end = nullptr;
            const long v = std::strtol(l.c_str(), &end, 10);
            if (l.empty() || *end || v < 1 || v > 10000)
                return refuse(res, 400, "limit must be 1 to 10000", "GET /api/v1/audit", req, "");
            limit = static_cast<size_t>(v);
        }
        std::optional<std::string> scope;
        if (req.has_param("agent")) scope = req.get_param_value("agent");
        if (req.has_param("fleet")) scope = "";
        auto rows = central_audit(*store, limit, scope);
        if (!rows) return fail_500(res, req, rows.error());
        Json out = Json::array();
        for (const auto& r : *rows)
            out.push_back({{"id", r.id},
                           {"time", cal->format_local(r.time)},
                           {"time_epoch", r.time},
                           {"version", r.version},
                           {"who", r.who},
                           {"from", r.from == "cli" ? r.from : shown_ip(*c, r.from)},
                           {"scope", r.scope.empty() ? "fleet" : "agent"},
                           {"agent", r.scope.empty() ? Json(nullptr) : Json(r.scope)},
                           {"key", r.key},
                           {"old", r.old_value ? value_json(*r.old_value) : Json(nullptr)},
                           {"new", r.new_value ? value_json(*r.new_value) : Json(nullptr)}});
        answer(res, 200, Json{{"audit", std::move(out)}});
    }

    // GET /agent/config/?name=NAME or ?mac=MAC (the requirements' API): users, and an agent
    // for its own.
    void handle_compat_config(const httplib::Request& req, httplib::Response& res) {
        const std::string what = "GET /agent/config/";
        auto c = caller(req, res, true);
        if (!c) return;
        std::string name = req.get_param_value("name");
        const std::string mac = lower(req.get_param_value("mac"));
        if (name.empty() == mac.empty()) return refuse(res, 400, "give one of name= or mac=", what, req, "");
        if (name.empty()) {
            auto agents = store->agents();
            if (!agents) return fail_500(res, req, agents.error());
            for (const auto& a : *agents) {
                size_t start = 0;
                const std::string macs = lower(a.mac);
                for (size_t comma; start <= macs.size(); start = comma + 1) {
                    comma = macs.find(',', start);
                    if (comma == std::string::npos) comma = macs.size();
                    if (macs.compare(start, comma - start, mac) == 0) name = a.name;
                }
                if (!name.empty()) break;
            }
            if (name.empty()) return refuse(res, 404, "no agent reported the MAC " + mac, what, req, "");
        }
        if (c->role == "agent" && name != c->agent)
            return refuse(res, 403, "an agent token reads only its own config", what, req, c->agent);
        auto a = store->agent(name);
        if (!a) return fail_500(res, req, a.error());
        if (!*a) return refuse(res, 404, "no agent named '" + name + "'", what, req, "");
        auto j = agent_config_json(name);
        if (!j) return fail_500(res, req, j.error());
        Json out;
        out["status"] = "ok";
        out["name"] = name;
        out["node"] = (*a)->node;
        out["host"] = (*a)->host;
        out["mac"] = (*a)->mac;
        out["iface"] = (*a)->iface;
        for (auto it = j->begin(); it != j->end(); ++it)
            if (it.key() != "agent") out[it.key()] = it.value();
        answer(res, 200, out);
    }

    // GET /agent/get_global_config/: users and agents.
    void handle_compat_global(const httplib::Request& req, httplib::Response& res) {
        auto c = caller(req, res, true);
        if (!c) return;
        auto j = fleet_config_json();
        if (!j) return fail_500(res, req, j.error());
        Json out;
        out["status"] = "ok";
        for (auto it = j->begin(); it != j->end(); ++it) out[it.key()] = it.value();
        answer(res, 200, out);
    }

    // GET /agent/history/ and /api/v1/history: the fleet's push history, newest first, for
    // users (admin or viewer); the same query and answer on both paths.
    void handle_history(const httplib::Request& req, httplib::Response& res) {
        auto who = caller(req, res, false);
        if (!who) return;
        auto q = parse_history_params(*cal, req.params);
        if (!q) return refuse(res, 400, q.error().message(), req.method + " " + req.path, req, "");
        auto page = store->push_history(*q);
        if (!page) {
            spdlog::error("{} {}: {}", req.method, req.path, page.error().message());
            res.status = 500;
            res.set_content(error_body("cannot read the push history: " + page.error().message()), "application/json");
            return;
        }
        res.status = 200;
        res.set_content(render_history_page(*page, *q, *cal), "application/json");
    }

    // GET /api/v1/history.csv: the same filters, every matching row (no pages), as CSV.
    void handle_history_csv(const httplib::Request& req, httplib::Response& res) {
        auto who = caller(req, res, false);
        if (!who) return;
        auto q = parse_history_params(*cal, req.params);
        if (!q) return refuse(res, 400, q.error().message(), req.method + " " + req.path, req, "");
        q->page = 1;
        q->limit = 0;
        auto page = store->push_history(*q);
        if (!page) return fail_500(res, req, page.error());
        res.status = 200;
        res.set_header("Content-Disposition", "attachment; filename=\"push-history.csv\"");
        res.set_content(history_csv(render_history_page(*page, *q, *cal)), "text/csv; charset=utf-8");
    }

    void handle_alert(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string agent, body;
        if (!admit(req, res, reader, "alert", agent, body)) return;
        StoredAlert a;
        std::string err;
        try {
            if (body.size() > kWireMaxCompressed) throw std::runtime_error("alert body too large");
            Json j = Json::parse(body);
            if (!j.is_object()) throw std::runtime_error("the alert must be a JSON object");
            auto str = [&](const char* k, std::string& out, bool required) {
                auto it = j.find(k);
                if (it == j.end()) {
                    if (required) throw std::runtime_error(std::string("missing field '") + k + "'");
                    return;
                }
                if (!it->is_string()) throw std::runtime_error(std::string("field '") + k + "' must be a string");
                out = it->get<std::string>();
                if (out.size() > kWireMaxString)
                    throw std::runtime_error("a string over " + std::to_string(kWireMaxString) + " bytes");
            };
            str("kind", a.kind, true);
            str("period", a.key, true);
            str("title", a.title, true);
            str("text", a.text, false);
            str("node", a.node, false);
            str("host", a.host, false);
            if (a.kind != "alert" && a.kind != "recovery")
                throw std::runtime_error("field 'kind' must be \"alert\" or \"recovery\"");
        } catch (const std::exception& e) {
            err = e.what();
        }
        if (!err.empty()) return refuse(res, 400, err, "alert", req, agent);
        a.time = now();
        a.agent = agent;
        a.origin = "agent";
        auto added = store->add_alert(a, sha256_hex(body));
        if (!added) {
            spdlog::error("alert from {} (agent {}): {}", req.remote_addr, agent, added.error().message());
            res.status = 500;
            res.set_content(error_body("cannot store the alert: " + added.error().message()), "application/json");
            return;
        }
        if (*added) {
            spdlog::info("alert from {} (agent {}): accepted", req.remote_addr, agent);
            StoredAlert shown = a;
            if (o.forward_alerts) shown.title = agent + ": " + a.title;
            dispatch(shown, o.forward_alerts);
        } else {
            spdlog::info("alert from {} (agent {}): accepted, already stored (a resend)", req.remote_addr, agent);
        }
        res.status = 200;
        res.set_content(R"({"status":"ok"})", "application/json");
    }
};

CollectorServer::CollectorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CollectorServer::~CollectorServer() {
    stop();
}

int CollectorServer::port() const {
    return impl_->port;
}

FleetStore& CollectorServer::store() {
    return *impl_->store;
}

HeartbeatService& CollectorServer::heartbeat() {
    return *impl_->heartbeat;
}

Status CollectorServer::check_offline() {
    return impl_->check_offline();
}

void CollectorServer::stop() {
    Impl& m = *impl_;
    if (m.stopped) return;
    m.stopped = true;
    {
        std::lock_guard<std::mutex> l(m.watch_mu);
        m.stopping = true;
    }
    m.watch_cv.notify_all();
    if (m.watcher.joinable()) m.watcher.join();
    if (m.http) m.http->stop();
    if (m.listener.joinable()) m.listener.join();
    if (m.heartbeat) m.heartbeat->stop();
    if (m.outbox) m.outbox->stop();
}

Result<std::unique_ptr<CollectorServer>> CollectorServer::start(CollectorOptions o) {
    auto impl = std::make_unique<Impl>();
    Impl& m = *impl;
    if (!o.clock_ms && o.clock)
        o.clock_ms = [c = o.clock] { return c() * 1000; };
    else if (!o.clock_ms)
        o.clock_ms = [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    if (!o.clock) o.clock = system_seconds;
    m.o = std::move(o);
    auto cal = Calendar::create(m.o.timezone, {PeakWindow{}}, 1);
    if (!cal) return cal.error();
    m.cal = std::move(*cal);
    auto store = FleetStore::open(m.o.database);
    if (!store) return store.error();
    m.store = std::move(*store);
    m.store->set_push_alerts(m.o.push_failure_alert_after, push_failure_notice);
    // The dashboard's and report's sums over whole days come from day roll-ups of the
    // collector's time zone (docs/fleet.md, "Roll-ups").
    if (auto st = m.store->use_day_rollups(*m.cal, m.o.clock); !st) return st.error();
    auto users = FleetUsers::open(*m.store, m.o.password_hash);
    if (!users) return users.error();
    m.users = std::move(*users);
    if (auto st = m.users->prepare_logins(); !st) return st.error();
    auto hb = HeartbeatService::start(*m.store, m.o.heartbeat, m.o.clock_ms, m.o.probe);
    if (!hb) return hb.error();
    m.heartbeat = std::move(*hb);
    m.files = std::make_unique<DashboardFiles>(embedded_dashboard_files());
    m.started = m.now();
    if (!m.o.alert_file.empty()) {
        // Best effort: a failure shows at the first alert, with the reason, in the log.
        std::error_code ec;
        auto dir = std::filesystem::path(m.o.alert_file).parent_path();
        if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    }
    if (m.o.queue) {
        m.queue = m.o.queue;
    } else if (m.o.push.configured && !m.o.push.sinks.empty()) {
        OutboxOptions oo;
        oo.database = m.o.database;
        oo.push = m.o.push;
        auto ob = Outbox::open(std::move(oo));
        if (!ob) return ob.error();
        m.outbox = std::move(*ob);
        m.outbox->start();
        m.queue = m.outbox.get();
    }

    if (!m.o.tls_cert.empty() || !m.o.tls_key.empty()) {
        auto ssl = std::make_unique<httplib::SSLServer>(m.o.tls_cert.c_str(), m.o.tls_key.c_str());
        if (!ssl->is_valid())
            return Error("cannot load the TLS certificate " + m.o.tls_cert + " and key " + m.o.tls_key);
        m.http = std::move(ssl);
    } else {
        m.http = std::make_unique<httplib::Server>();
    }
    httplib::Server& s = *m.http;
    const int threads = m.o.threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.set_payload_max_length(kWireMaxCompressed);
    s.set_read_timeout(10, 0);
    s.set_write_timeout(10, 0);
    s.set_keep_alive_timeout(30);
    Impl* ip = &m;
    s.Post("/api/v1/agents/report", [ip](const httplib::Request& rq, httplib::Response& rs,
                                         const httplib::ContentReader& rd) { ip->handle_report(rq, rs, rd); });
    s.Post("/api/v1/agents/alert", [ip](const httplib::Request& rq, httplib::Response& rs,
                                        const httplib::ContentReader& rd) { ip->handle_alert(rq, rs, rd); });
    s.Get("/api/v1/config", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_config_get(rq, rs); });
    s.Put("/api/v1/config",
          [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_config_change(rq, rs, true); });
    s.Delete("/api/v1/config",
             [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_config_change(rq, rs, false); });
    s.Get("/api/v1/audit", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_audit(rq, rs); });
    s.Get("/agent/config/",
          [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_compat_config(rq, rs); });
    s.Get("/agent/get_global_config/",
          [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_compat_global(rq, rs); });
    for (const char* path : {"/agent/history/", "/agent/history", "/api/v1/history"})
        s.Get(path, [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_history(rq, rs); });
    s.Get("/api/v1/history.csv",
          [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_history_csv(rq, rs); });
    s.Get("/api/v1/health", [](const httplib::Request&, httplib::Response& rs) {
        rs.set_content(R"({"status":"ok"})", "application/json");
    });
    s.Post("/api/v1/login", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_login(rq, rs); });
    s.Post("/api/v1/logout", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_logout(rq, rs); });
    s.Get("/api/v1/me", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_me(rq, rs); });
    s.Get("/api/v1/users", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_users(rq, rs); });
    s.Get("/", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_file(rq, rs); });
    s.Get("/ui/.*", [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_file(rq, rs); });
    s.Get("/api/v1/agents", [ip](const httplib::Request& rq, httplib::Response& rs) {
        ip->handle_dashboard(rq, rs,
                             [](const DashboardContext& c, const httplib::Request&) { return dashboard_agents(c); });
    });
    s.Get("/api/v1/traffic", [ip](const httplib::Request& rq, httplib::Response& rs) {
        ip->handle_dashboard(rq, rs, [](const DashboardContext& c, const httplib::Request& r) {
            return dashboard_traffic(c, r.params);
        });
    });
    s.Get("/api/v1/host", [ip](const httplib::Request& rq, httplib::Response& rs) {
        ip->handle_dashboard(
            rq, rs, [](const DashboardContext& c, const httplib::Request& r) { return dashboard_host(c, r.params); });
    });
    s.Get("/api/v1/overview", [ip](const httplib::Request& rq, httplib::Response& rs) {
        ip->handle_dashboard(rq, rs,
                             [](const DashboardContext& c, const httplib::Request&) { return dashboard_overview(c); });
    });
    s.Post("/heartbeat/report",
           [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_heartbeat(rq, rs, true); });
    s.Post("/heartbeat/status",
           [ip](const httplib::Request& rq, httplib::Response& rs) { ip->handle_heartbeat(rq, rs, false); });
    s.set_exception_handler([](const httplib::Request& rq, httplib::Response& rs, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        spdlog::error("{} {} from {}: internal error: {}", rq.method, rq.path, rq.remote_addr, what);
        rs.status = 500;
        rs.set_content(error_body("internal error"), "application/json");
    });

    if (m.o.port == 0) {
        m.port = s.bind_to_any_port(m.o.host);
        if (m.port < 0) return Error("cannot listen on " + m.o.host + " (any port)");
    } else {
        if (!s.bind_to_port(m.o.host, m.o.port))
            return Error("cannot listen on " + m.o.host + ":" + std::to_string(m.o.port), "", errno,
                         "is another collector running, or the address not local?");
        m.port = m.o.port;
    }
    m.listener = std::thread([ip] { ip->http->listen_after_bind(); });
    // cpp-httplib's stop() does nothing before the listener runs: a stop right after start
    // would leave the listener (and the join) waiting forever.
    for (int i = 0; i < 5000 && !m.http->is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (m.o.watch) m.watcher = std::thread([ip] { ip->watch_loop(); });
    return std::unique_ptr<CollectorServer>(new CollectorServer(std::move(impl)));
}

}  // namespace pf
