#include "peakflow/collector/collector_cli.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <termios.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "peakflow/accounting/report.hpp"
#include "peakflow/app/central.hpp"
#include "peakflow/collector/collector_config.hpp"
#include "peakflow/common/logging.hpp"
#include "peakflow/fleet/central_config.hpp"
#include "peakflow/fleet/central_store.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/dashboard.hpp"
#include "peakflow/fleet/fleet_history.hpp"
#include "peakflow/fleet/fleet_store.hpp"
#include "peakflow/fleet/fleet_users.hpp"
#include "peakflow/fleet/heartbeat.hpp"
#include "peakflow/version.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kProg = "peakflow-collector";

std::string collector_version() {
    return std::string(kProg) + " " + kVersion + " (commit " + kGitCommit + ")";
}

int64_t now_seconds() {
    return static_cast<int64_t>(::time(nullptr));
}

Calendar calendar_of(const CollectorConfig& c) {
    return Calendar::create(c.timezone, {PeakWindow{}}, 1).take();
}

std::string pad(const std::string& s, size_t w) {
    return s.size() >= w ? s : s + std::string(w - s.size(), ' ');
}

// Columns padded to their widest cell, two spaces apart, the last one not padded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> w;
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size(); i++) {
            if (w.size() <= i) w.push_back(0);
            w[i] = std::max(w[i], r[i].size());
        }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); i++) line += i + 1 < r.size() ? pad(r[i], w[i]) + "  " : r[i];
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

Json opt_time(const Calendar& cal, const std::optional<int64_t>& t) {
    return t ? Json(cal.format_local(*t)) : Json(nullptr);
}
Json opt_epoch(const std::optional<int64_t>& t) {
    return t ? Json(*t) : Json(nullptr);
}

struct Opts {
    std::string config;
    std::string name;
    bool json = false;
    std::string agent, node, day, month;
    bool hours = false, five = false;
    std::string host, from, to;  // history
    bool failed = false;
    std::string log_level;  // --log-level: wins over the config's
    // user add and passwd; user token (0: the token never expires)
    std::string role, password_file;
    int expires_days = 0;
    std::string key, value;  // set, unset
    int limit = 50;          // audit
};

// ---- commands -------------------------------------------------------------------------

int cmd_config_check(const Opts& o) {
    const std::string path = o.config.empty() ? kDefaultCollectorConfigPath : o.config;
    CollectorConfig c = load_collector_config_file(path).take();
    c.timezone = calendar_of(c).tz_name();  // the zone really used
    std::cout << "# " << path << ": OK\n" << dump_collector_config(c);
    return 0;
}

int cmd_token_create(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    auto store = FleetStore::open(c.database).take();
    std::cout << store->create_token(o.name, now_seconds()).take() << "\n";
    return 0;
}

int cmd_token_revoke(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    auto store = FleetStore::open(c.database).take();
    if (auto st = store->revoke_token(o.name); !st) throw FatalError(st.error());
    std::cerr << "token of agent '" << o.name << "' revoked\n";
    return 0;
}

int cmd_token_list(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    auto agents = store->agents().take();
    if (o.json) {
        Json j;
        j["tokens"] = Json::array();
        for (const auto& a : agents)
            j["tokens"].push_back({{"name", a.name},
                                   {"created", cal.format_local(a.token_created)},
                                   {"created_epoch", a.token_created},
                                   {"revoked", a.revoked},
                                   {"last_seen", opt_time(cal, a.last_seen)},
                                   {"last_seen_epoch", opt_epoch(a.last_seen)}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "CREATED", "REVOKED", "LAST REPORT"}};
    for (const auto& a : agents)
        rows.push_back({a.name, cal.format_local(a.token_created), a.revoked ? "yes" : "no",
                        a.last_seen ? cal.format_local(*a.last_seen) : "-"});
    std::cout << table(rows);
    return 0;
}

// ---- heartbeat tokens (docs/fleet.md, "Heartbeat service") ----------------------------

int cmd_heartbeat_token_create(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    auto store = FleetStore::open(c.database).take();
    std::cout << heartbeat_token_create(*store, o.name, now_seconds()).take() << "\n";
    return 0;
}

int cmd_heartbeat_token_revoke(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    auto store = FleetStore::open(c.database).take();
    if (auto st = heartbeat_token_revoke(*store, o.name); !st) throw FatalError(st.error());
    std::cerr << "heartbeat token '" << o.name << "' revoked\n";
    return 0;
}

int cmd_heartbeat_token_list(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    // A store no collector of this version has served yet has no heartbeat tables.
    const bool has = store->with_db([](StoreDb& db) { return db.schema_version("heartbeat"); }).take().has_value();
    const auto tokens = has ? heartbeat_tokens(*store).take() : std::vector<HeartbeatTokenRow>{};
    auto last = [](const HeartbeatTokenRow& t) {
        return t.last_report_ms ? std::optional<int64_t>(*t.last_report_ms / 1000) : std::nullopt;
    };
    if (o.json) {
        Json j;
        j["tokens"] = Json::array();
        for (const auto& t : tokens)
            j["tokens"].push_back({{"name", t.name},
                                   {"created", cal.format_local(t.created)},
                                   {"created_epoch", t.created},
                                   {"revoked", t.revoked},
                                   {"last_report", opt_time(cal, last(t))},
                                   {"last_report_epoch", opt_epoch(last(t))}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "CREATED", "REVOKED", "LAST REPORT"}};
    for (const auto& t : tokens)
        rows.push_back({t.name, cal.format_local(t.created), t.revoked ? "yes" : "no",
                        last(t) ? cal.format_local(*last(t)) : "-"});
    std::cout << table(rows);
    return 0;
}

int cmd_agents(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    auto agents = store->agents().take();
    const int64_t now = now_seconds();
    if (o.json) {
        Json j;
        j["agents"] = Json::array();
        for (const auto& a : agents) j["agents"].push_back(agent_row_json(a, cal, now, c.offline_after));
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"NAME", "NODE", "HOST", "INTERFACE", "MAC", "VERSION", "LAST REPORT", "STATE", "BACKLOG"}};
    auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
    for (const auto& a : agents)
        rows.push_back({a.name, dash(a.node), dash(a.host), dash(a.iface), dash(a.mac), dash(a.version),
                        a.last_seen ? cal.format_local(*a.last_seen) : "-", agent_state(a, now, c.offline_after),
                        std::to_string(a.backlog)});
    std::cout << table(rows);
    return 0;
}

int cmd_alerts(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    auto alerts = store->alerts().take();
    if (o.json) {
        Json j;
        j["alerts"] = Json::array();
        for (const auto& a : alerts)
            j["alerts"].push_back({{"time", cal.format_local(a.time)},
                                   {"time_epoch", a.time},
                                   {"agent", a.agent},
                                   {"origin", a.origin},
                                   {"kind", a.kind},
                                   {"key", a.key},
                                   {"title", a.title},
                                   {"text", a.text}});
        std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"TIME", "AGENT", "ORIGIN", "KIND", "TITLE"}};
    for (const auto& a : alerts) rows.push_back({cal.format_local(a.time), a.agent, a.origin, a.kind, a.title});
    std::cout << table(rows);
    return 0;
}

// ---- users ----------------------------------------------------------------------------

struct UsersDb {
    std::unique_ptr<FleetStore> store;
    std::unique_ptr<FleetUsers> users;
};

UsersDb open_users(const CollectorConfig& c) {
    UsersDb u;
    u.store = FleetStore::open(c.database).take();
    u.users = FleetUsers::open(*u.store).take();
    return u;
}

// The password in FILE: all of it but one trailing newline (as `echo pw > FILE` leaves).
std::string password_from_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FatalError(Error("read password file", path, errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        std::cerr << kProg << ": warning: " << path << " is readable by other users: chmod 600 it\n";
    std::string pw;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && pw.size() <= kMaxPasswordLength + 2)
        pw.append(buf, static_cast<size_t>(n));
    const int err = errno;
    ::close(fd);
    if (n < 0) throw FatalError(Error("read password file", path, err));
    if (!pw.empty() && pw.back() == '\n') pw.pop_back();
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    return pw;
}

// The terminal's settings while echo is off, for the signal handler that puts them back.
struct termios g_saved_tty;

void restore_tty_and_die(int sig) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_tty);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// One line from the terminal on stdin with echo off (the prompt on stderr).
std::string read_hidden(const std::string& prompt) {
    std::cerr << prompt << std::flush;
    if (::tcgetattr(STDIN_FILENO, &g_saved_tty) != 0)
        throw FatalError(Error("read the terminal's settings", "", errno));
    struct termios quiet = g_saved_tty;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    auto old_int = ::signal(SIGINT, restore_tty_and_die);
    auto old_term = ::signal(SIGTERM, restore_tty_and_die);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_tty);
    ::signal(SIGINT, old_int);
    ::signal(SIGTERM, old_term);
    if (!got) throw FatalError("no password given (end of input)");
    return line;
}

// From --password-file, else asked twice on the terminal.
std::string new_password(const Opts& o) {
    std::string pw;
    if (!o.password_file.empty()) {
        pw = password_from_file(o.password_file);
    } else {
        if (!::isatty(STDIN_FILENO)) throw FatalError("no terminal to ask for the password: give --password-file FILE");
        pw = read_hidden("New password for '" + o.name + "': ");
        if (auto st = check_new_password(pw); !st) throw FatalError(st.error());
        if (read_hidden("Again: ") != pw) throw FatalError("the passwords do not match");
    }
    if (auto st = check_new_password(pw); !st) throw FatalError(st.error());
    return pw;
}

int cmd_user_add(const Opts& o) {
    if (!valid_role(o.role)) throw FatalError("role '" + o.role + "': use admin or viewer");
    if (!valid_agent_name(o.name)) throw FatalError("user name '" + o.name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
    CollectorConfig c = load_collector_config(o.config).take();
    UsersDb db = open_users(c);
    if (db.users->find(o.name).take()) throw FatalError("user '" + o.name + "' already exists");
    const std::string pw = new_password(o);
    if (auto st = db.users->add(o.name, o.role, pw, now_seconds()); !st) throw FatalError(st.error());
    std::cerr << "user '" << o.name << "' added (" << o.role << ")\n";
    return 0;
}

int cmd_user_passwd(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    UsersDb db = open_users(c);
    if (!db.users->find(o.name).take())
        throw FatalError("no user named '" + o.name + "' (peakflow-collector user list shows them)");
    const std::string pw = new_password(o);
    if (auto st = db.users->set_password(o.name, pw, now_seconds()); !st) throw FatalError(st.error());
    std::cerr << "password of user '" << o.name << "' changed; its sessions ended\n";
    return 0;
}

int cmd_user_del(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    UsersDb db = open_users(c);
    if (auto st = db.users->remove(o.name); !st) throw FatalError(st.error());
    std::cerr << "user '" << o.name << "' deleted, with its API tokens and sessions\n";
    return 0;
}

int cmd_user_list(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    UsersDb db = open_users(c);
    auto users = db.users->list().take();
    if (o.json) {
        Json j;
        j["users"] = Json::array();
        for (const auto& u : users)
            j["users"].push_back({{"name", u.name},
                                  {"role", u.role},
                                  {"created", cal.format_local(u.created)},
                                  {"created_epoch", u.created},
                                  {"updated", cal.format_local(u.updated)},
                                  {"updated_epoch", u.updated},
                                  {"tokens", u.tokens}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "ROLE", "CREATED", "UPDATED", "TOKENS"}};
    for (const auto& u : users)
        rows.push_back(
            {u.name, u.role, cal.format_local(u.created), cal.format_local(u.updated), std::to_string(u.tokens)});
    std::cout << table(rows);
    return 0;
}

int cmd_user_token(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    UsersDb db = open_users(c);
    const int64_t now = now_seconds();
    std::optional<int64_t> expires;
    if (o.expires_days > 0) expires = now + static_cast<int64_t>(o.expires_days) * 86400;
    const std::string token = db.users->create_token(o.name, now, expires).take();
    std::cout << token << "\n";
    std::cerr << "API token of user '" << o.name << "', "
              << (expires ? "valid until " + cal.format_local(*expires) : std::string("valid until revoked"))
              << "; it is shown once\n";
    return 0;
}

// The agents' push rows in the columns of the agent's `history`, with AGENT in front.
int cmd_history(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    PushQuery q;
    for (auto [value, into] : {std::pair{&o.agent, &q.agent}, std::pair{&o.node, &q.node}, std::pair{&o.host, &q.host}})
        if (!value->empty()) *into = *value;
    q.failed_only = o.failed;
    for (auto [flag, text, into] : {std::tuple{"--from", &o.from, &q.from}, std::tuple{"--to", &o.to, &q.to}}) {
        if (text->empty()) continue;
        auto t = parse_history_time(cal, *text);
        if (!t) throw FatalError(std::string(flag) + ": " + t.error().message());
        *into = *t;
    }
    if (q.from && q.to && *q.from >= *q.to) throw FatalError("--from must be before --to");
    auto store = FleetStore::open(c.database, true).take();
    auto page = store->push_history(q).take();
    std::cout << render_history(
        page.rows, o.json, [&](int64_t t) { return cal.format_local(t); }, true);
    return 0;
}

int cmd_report(const Opts& o, const ReportOptions& ro) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    FleetStore::Selection sel;
    if (!o.agent.empty()) {
        if (!store->agent(o.agent).take()) throw FatalError("no agent named '" + o.agent + "'");
        sel.agent = o.agent;
    }
    if (!o.node.empty()) sel.node = o.node;
    auto source = store->usage(sel);
    if (auto st = run_report(*source, cal, {}, ro, now_seconds(), std::cout); !st) throw FatalError(st.error());
    return 0;
}

// ---- central configuration ------------------------------------------------------------

// A YAML value from the command line as JSON: `false`, `1.05`, `[eth1]`, `{factor: 1.05}`,
// `"0042"` (quoted: a string). Plain scalars that read as a bool or a number are one.
Json yaml_to_json(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Sequence: {
            Json a = Json::array();
            for (const auto& e : n) a.push_back(yaml_to_json(e));
            return a;
        }
        case YAML::NodeType::Map: {
            Json m = Json::object();
            for (const auto& kv : n) m[kv.first.Scalar()] = yaml_to_json(kv.second);
            return m;
        }
        case YAML::NodeType::Scalar: {
            const std::string& v = n.Scalar();
            if (n.Tag() == "!") return v;  // quoted
            if (v == "true" || v == "false") return v == "true";
            if (v == "null" || v == "~") return nullptr;
            char* end = nullptr;
            errno = 0;
            const long long i = std::strtoll(v.c_str(), &end, 10);
            if (!v.empty() && *end == 0 && errno == 0) return i;
            const double d = std::strtod(v.c_str(), &end);
            if (!v.empty() && *end == 0 && v.find_first_not_of("0123456789.eE+-") == std::string::npos) return d;
            return v;
        }
        default: return nullptr;
    }
}

// Who runs the command, for the audit log: the user sudo was run by, else the account.
std::string cli_user() {
    if (const char* s = std::getenv("SUDO_USER"); s && *s) return s;
    if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
    return "uid " + std::to_string(::getuid());
}

std::unique_ptr<FleetStore> open_for_change(const CollectorConfig& c, const Opts& o) {
    auto store = FleetStore::open(c.database).take();
    if (!o.agent.empty() && !store->agent(o.agent).take())
        throw FatalError(Error("no agent named '" + o.agent + "' (see 'peakflow-collector token list')"));
    return store;
}

std::string scope_name(const Opts& o) {
    return o.agent.empty() ? "fleet-wide" : "for agent " + o.agent;
}

int cmd_set(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    if (auto why = central_key_problem(o.key); !why.empty()) throw FatalError(Error(why));
    YAML::Node n;
    try {
        n = YAML::Load(o.value);
    } catch (const YAML::Exception& e) {
        throw FatalError(Error("VALUE is not valid YAML: " + std::string(e.what())));
    }
    const std::string json = yaml_to_json(n).dump();
    if (auto why = check_central_value(o.key, json); !why.empty()) throw FatalError(Error(why));
    auto store = open_for_change(c, o);
    const int64_t v = central_set(*store, o.agent, o.key, json, {cli_user(), "cli", now_seconds()}).take();
    std::cout << o.key << " = " << json << " " << scope_name(o) << ": version " << v << "\n";
    return 0;
}

int cmd_unset(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    if (auto why = central_key_problem(o.key); !why.empty()) throw FatalError(Error(why));
    auto store = open_for_change(c, o);
    const int64_t v = central_unset(*store, o.agent, o.key, {cli_user(), "cli", now_seconds()}).take();
    std::cout << o.key << " unset " << scope_name(o) << ": version " << v << "\n";
    return 0;
}

int cmd_show(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    auto store = FleetStore::open(c.database).take();
    if (!o.agent.empty() && !store->agent(o.agent).take())
        throw FatalError(Error("no agent named '" + o.agent + "' (see 'peakflow-collector token list')"));
    auto fleet = central_entries(*store, "").take();
    std::vector<CentralEntry> own;
    if (!o.agent.empty()) own = central_entries(*store, o.agent).take();
    std::map<std::string, const CentralEntry*> by_key;
    for (const auto& e : fleet) by_key[e.key] = &e;
    for (const auto& e : own) by_key[e.key] = &e;
    const CentralConfig eff =
        o.agent.empty() ? central_fleet(*store).take() : central_effective(*store, o.agent).take();
    std::optional<AgentConfigState> runs;
    if (!o.agent.empty()) runs = agent_config_state(*store, o.agent).take();
    auto source = [](const CentralEntry& e) {
        return (e.scope.empty() ? "fleet v" : "agent v") + std::to_string(e.version);
    };
    if (o.json) {
        Json j;
        j["agent"] = o.agent.empty() ? Json(nullptr) : Json(o.agent);
        j["version"] = eff.version;
        j["values"] = Json::array();
        for (const auto& [k, e] : by_key)
            j["values"].push_back({{"key", k}, {"value", Json::parse(e->value)}, {"source", source(*e)}});
        if (runs) {
            Json p = Json::array();
            for (const auto& x : runs->problems) p.push_back({{"key", x.key}, {"message", x.message}});
            j["applied"] = {{"version", runs->version}, {"problems", std::move(p)}};
        }
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << "central config " << scope_name(o) << ": version " << eff.version;
    if (runs)
        std::cout << "; the agent runs version " << runs->version
                  << (runs->version == eff.version ? "" : " (it applies the new one at its next report)");
    std::cout << "\n";
    if (by_key.empty()) {
        std::cout << "nothing set: the agents' own config files apply\n";
    } else {
        std::vector<std::vector<std::string>> rows{{"KEY", "VALUE", "SOURCE"}};
        for (const auto& [k, e] : by_key) rows.push_back({k, e->value, source(*e)});
        std::cout << table(rows);
    }
    if (runs)
        for (const auto& x : runs->problems) std::cout << "not applied: " << x.key << ": " << x.message << "\n";
    return 0;
}

int cmd_audit(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database).take();
    std::optional<std::string> scope;
    if (!o.agent.empty()) scope = o.agent;
    auto rows = central_audit(*store, static_cast<size_t>(o.limit), scope).take();
    auto shown = [](const std::optional<std::string>& v) { return v ? *v : std::string("-"); };
    if (o.json) {
        Json j;
        j["audit"] = Json::array();
        for (const auto& r : rows)
            j["audit"].push_back({{"id", r.id},
                                  {"time", cal.format_local(r.time)},
                                  {"time_epoch", r.time},
                                  {"version", r.version},
                                  {"who", r.who},
                                  {"from", r.from},
                                  {"agent", r.scope.empty() ? Json(nullptr) : Json(r.scope)},
                                  {"key", r.key},
                                  {"old", r.old_value ? Json::parse(*r.old_value) : Json(nullptr)},
                                  {"new", r.new_value ? Json::parse(*r.new_value) : Json(nullptr)}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> t{{"TIME", "VERSION", "WHO", "FROM", "SCOPE", "KEY", "OLD", "NEW"}};
    for (const auto& r : rows)
        t.push_back({cal.format_local(r.time), std::to_string(r.version), r.who, r.from,
                     r.scope.empty() ? "fleet" : r.scope, r.key, shown(r.old_value), shown(r.new_value)});
    std::cout << table(t);
    return 0;
}

// ---- serve ----------------------------------------------------------------------------

int cmd_serve(const Opts& o, const sigset_t& sigs) {
    CollectorConfig c = load_collector_config(o.config).take();
    spdlog::set_level(spdlog::level::from_str(o.log_level.empty() ? c.log_level : o.log_level));
    // As the systemd unit's UMask=0077, under SysV and OpenWrt too (umask 022 there): logs,
    // alert file and store for the collector's user alone.
    ::umask(::umask(0) | 077);
    if (!c.log_dir.empty()) add_log_files(c.log_dir, "peakflow-collector").take();
    spdlog::info("{} starting: listen {} ({}), database {}, config {}", collector_version(), c.listen,
                 c.tls() ? "HTTPS" : "HTTP", redact_database(c.database),
                 c.source.empty() ? "built-in defaults" : c.source);
    // The file may hold push secrets (tokens, signing secrets, SMTP passwords).
    if (struct stat st{}; !c.source.empty() && ::stat(c.source.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
        spdlog::warn("{} is readable by other users and may hold push secrets: chmod 600 it", c.source);
    if (c.plain_non_loopback())
        spdlog::warn(
            "plain HTTP on a non-loopback address (allow_plain_http): agent tokens and reports cross the "
            "network unencrypted on {}",
            c.listen);
    CollectorOptions so = c.server_options();
    so.check_central = check_central_value;  // the agent's own parser judges central values
    auto server = CollectorServer::start(std::move(so)).take();
    spdlog::info("listening on {}:{}; an agent is offline after {} of its report intervals without a report",
                 c.listen_host, server->port(), c.offline_after);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s", c.listen.c_str());

    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const int64_t wait_ns = watchdog ? static_cast<int64_t>(watchdog_usec) * 1000 / 2 : 3600LL * 1000000000;
    int sig = 0;
    for (;;) {
        timespec ts{static_cast<time_t>(wait_ns / 1000000000), static_cast<long>(wait_ns % 1000000000)};
        siginfo_t info{};
        sig = sigtimedwait(&sigs, &info, &ts);
        if (sig < 0) {
            if (errno != EAGAIN && errno != EINTR) spdlog::warn("sigtimedwait: {}", std::strerror(errno));
            if (watchdog) sd_notify(0, "WATCHDOG=1");
            continue;
        }
        break;
    }
    spdlog::info("{}: stopping", strsignal(sig));
    sd_notify(0, "STOPPING=1");
    server->stop();
    spdlog::info("stopped");
    return 0;
}

}  // namespace

int run_collector_cli(int argc, char** argv) {
    CLI::App app{"peakflow-collector: the fleet collector for peakflow-bpf agents", kProg};
    app.set_version_flag("-V,--version", collector_version());
    app.require_subcommand(1);
    app.fallthrough();
    std::string log_level;
    app.add_option("--log-level", log_level, "trace, debug, info, warn or error (default: the config's)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    Opts o;
    const std::string cfg_help =
        std::string("Config file (default: ") + kDefaultCollectorConfigPath + " if it exists, else built-in defaults)";

    auto* serve = app.add_subcommand("serve", "Run the collector in the foreground until stopped");
    serve->add_option("-f,--config", o.config, cfg_help);

    auto* config = app.add_subcommand("config", "Configuration file tools");
    config->require_subcommand(1);
    auto* check = config->add_subcommand("check", "Validate a config file and print the effective config");
    check->add_option("FILE", o.config, std::string("Config file (default: ") + kDefaultCollectorConfigPath + ")");
    check->add_option("-f,--config", o.config, "Same as FILE");

    auto* token = app.add_subcommand("token", "Agent tokens");
    token->require_subcommand(1);
    auto* t_create = token->add_subcommand("create", "Create the token of agent NAME; prints it once, alone");
    t_create->add_option("NAME", o.name, "Agent name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
    t_create->add_option("-f,--config", o.config, cfg_help);
    auto* t_list = token->add_subcommand("list", "Agents with a token: created, revoked, last report");
    t_list->add_flag("--json", o.json, "JSON");
    t_list->add_option("-f,--config", o.config, cfg_help);
    auto* t_revoke = token->add_subcommand("revoke", "Revoke the token of agent NAME (its data stays)");
    t_revoke->add_option("NAME", o.name, "Agent name")->required();
    t_revoke->add_option("-f,--config", o.config, cfg_help);

    auto* heartbeat = app.add_subcommand("heartbeat", "The heartbeat service: tokens of the services that report");
    heartbeat->require_subcommand(1);
    auto* hb_token = heartbeat->add_subcommand("token", "Heartbeat tokens (Authorization: Bearer pfh_...)");
    hb_token->require_subcommand(1);
    auto* hb_create = hb_token->add_subcommand("create", "Create heartbeat token NAME; prints it once, alone");
    hb_create->add_option("NAME", o.name, "Token name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
    hb_create->add_option("-f,--config", o.config, cfg_help);
    auto* hb_list = hb_token->add_subcommand("list", "Heartbeat tokens: created, revoked, last report");
    hb_list->add_flag("--json", o.json, "JSON: {\"tokens\":[...]}");
    hb_list->add_option("-f,--config", o.config, cfg_help);
    auto* hb_revoke = hb_token->add_subcommand("revoke", "Revoke heartbeat token NAME (401 from then on)");
    hb_revoke->add_option("NAME", o.name, "Token name")->required();
    hb_revoke->add_option("-f,--config", o.config, cfg_help);

    auto* agents = app.add_subcommand("agents", "One row per agent: identity, last report, state, backlog");
    agents->add_flag("--json", o.json, "JSON: {\"agents\":[...]}");
    agents->add_option("-f,--config", o.config, cfg_help);

    auto* report = app.add_subcommand("report", "The agents' traffic: the agent's report views over the fleet");
    auto* agent_opt = report->add_option("--agent", o.agent, "One agent (its interface names as they are)");
    auto* node_opt = report->add_option("--node", o.node, "The agents of one node (interfaces named agent/iface)");
    agent_opt->excludes(node_opt);
    report->add_option("--day", o.day, "Local day YYYY-MM-DD (default today)");
    report->add_option("--month", o.month, "Billing month YYYY-MM");
    auto* hours_flag = report->add_flag("--hours", o.hours, "Hour by hour for the day");
    auto* five_flag = report->add_flag("--five-minutes", o.five, "5-minute points for the day");
    hours_flag->excludes(five_flag);
    report->add_flag("--json", o.json, "JSON with the agent report's keys");
    report->add_option("-f,--config", o.config, cfg_help);

    auto* history = app.add_subcommand("history", "The agents' push history, newest first: every message and sink");
    history->add_option("--node", o.node, "Only agents of this node");
    history->add_option("--host", o.host, "Only this host name");
    history->add_option("--agent", o.agent, "Only this agent");
    history->add_flag("--failed", o.failed, "Only messages whose last delivery attempt failed");
    history->add_option("--from", o.from, "From this time on: YYYY-MM-DD[ HH:MM[:SS]] (local) or unix seconds");
    history->add_option("--to", o.to, "Before this time: YYYY-MM-DD[ HH:MM[:SS]] (local) or unix seconds");
    history->add_flag("--json", o.json, "JSON: {\"history\":[...]}, the agent's keys with \"agent\" first");
    history->add_option("-f,--config", o.config, cfg_help);

    auto* alerts = app.add_subcommand("alerts", "Stored alerts, newest first");
    alerts->add_flag("--json", o.json, "JSON: {\"alerts\":[...]}");
    alerts->add_option("-f,--config", o.config, cfg_help);

    auto* user = app.add_subcommand("user", "Users of the JSON API and the dashboard: admins and viewers");
    user->require_subcommand(1);
    auto* u_add = user->add_subcommand("add", "Add user NAME with a role; the password from a prompt or a file");
    u_add->add_option("NAME", o.name, "User name: 1 to 64 of A-Z a-z 0-9 . _ -")->required();
    u_add->add_option("--role", o.role, "admin (changes configuration, sees everything) or viewer (reads)")->required();
    u_add->add_option("--password-file", o.password_file, "Read the password from FILE (one trailing newline dropped)");
    u_add->add_option("-f,--config", o.config, cfg_help);
    auto* u_passwd = user->add_subcommand("passwd", "Set a new password for user NAME (its sessions end)");
    u_passwd->add_option("NAME", o.name, "User name")->required();
    u_passwd->add_option("--password-file", o.password_file, "Read the password from FILE");
    u_passwd->add_option("-f,--config", o.config, cfg_help);
    auto* u_del = user->add_subcommand("del", "Delete user NAME with its API tokens and sessions");
    u_del->add_option("NAME", o.name, "User name")->required();
    u_del->add_option("-f,--config", o.config, cfg_help);
    auto* u_list = user->add_subcommand("list", "Users: name, role, created, updated, API tokens; never a hash");
    u_list->add_flag("--json", o.json, "JSON: {\"users\":[...]}");
    u_list->add_option("-f,--config", o.config, cfg_help);
    auto* u_token = user->add_subcommand("token", "A new API token for user NAME, printed once, alone on stdout");
    u_token->add_option("NAME", o.name, "User name")->required();
    u_token->add_option("--expires", o.expires_days, "Days until it stops working (default: never)")
        ->check(CLI::Range(1, 3650));
    u_token->add_option("-f,--config", o.config, cfg_help);

    std::string keys;
    for (const auto& k : central_key_patterns()) keys += (keys.empty() ? "" : ", ") + k;
    auto* set = app.add_subcommand("set", "Set a central config KEY to VALUE, fleet-wide or for one agent");
    set->add_option("KEY", o.key, "One of: " + keys)->required();
    set->add_option("VALUE", o.value, "A YAML value: false, \"0042\", [eth1], {factor: 1.05}")->required();
    set->add_option("--agent", o.agent, "Only this agent (overrides the fleet-wide value)");
    set->add_option("-f,--config", o.config, cfg_help);
    auto* unset = app.add_subcommand("unset", "Remove a central config KEY: the fleet's (or the agent's file) applies");
    unset->add_option("KEY", o.key, "A key set before")->required();
    unset->add_option("--agent", o.agent, "Only this agent's value");
    unset->add_option("-f,--config", o.config, cfg_help);
    auto* show = app.add_subcommand("show", "The central config: each key set, its value and where it comes from");
    show->add_option("--agent", o.agent, "What this agent gets (its own values over the fleet's), and what it runs");
    show->add_flag("--json", o.json, "JSON");
    show->add_option("-f,--config", o.config, cfg_help);
    auto* audit = app.add_subcommand("audit", "Every central config change, newest first: who, when, from where");
    audit->add_option("--agent", o.agent, "Only changes of this agent's values");
    audit->add_option("--limit", o.limit, "At most N rows (default 50)")->check(CLI::Range(1, 100000));
    audit->add_flag("--json", o.json, "JSON: {\"audit\":[...]}");
    audit->add_option("-f,--config", o.config, cfg_help);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }

    ReportOptions ro;
    if (*report) {
        auto usage = [&](const std::string& m) {
            std::cerr << "report: " << m << "\nRun with --help for more information.\n";
            return 2;
        };
        if (!o.day.empty()) {
            auto d = parse_local_date(o.day);
            if (!d) return usage(d.error().message());
            ro.day = *d;
        }
        if (!o.month.empty()) {
            auto m = parse_billing_month(o.month);
            if (!m) return usage(m.error().message());
            ro.month = *m;
        }
        if (ro.month && (ro.day || o.hours || o.five))
            return usage("--month does not combine with --day, --hours or --five-minutes");
        ro.kind = o.hours    ? ReportOptions::Hours
                  : o.five   ? ReportOptions::FiveMinutes
                  : ro.month ? ReportOptions::Month
                  : ro.day   ? ReportOptions::Day
                             : ReportOptions::Summary;
        ro.json = o.json;
    }

    // Before any thread exists (the logger's flusher, the server's), so every thread
    // inherits the mask and SIGTERM waits for sigtimedwait.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGQUIT);  // like SIGTERM: an old unit's `kill -s QUIT` stops it cleanly
    if (*serve) {
        pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
        signal(SIGPIPE, SIG_IGN);
    }
    setup_logging("peakflow-collector", log_level.empty() ? "info" : log_level);
    try {
        if (*serve) {
            o.log_level = log_level;
            return cmd_serve(o, sigs);
        }
        if (*check) return cmd_config_check(o);
        if (*t_create) return cmd_token_create(o);
        if (*t_list) return cmd_token_list(o);
        if (*t_revoke) return cmd_token_revoke(o);
        if (*hb_create) return cmd_heartbeat_token_create(o);
        if (*hb_list) return cmd_heartbeat_token_list(o);
        if (*hb_revoke) return cmd_heartbeat_token_revoke(o);
        if (*agents) return cmd_agents(o);
        if (*report) return cmd_report(o, ro);
        if (*alerts) return cmd_alerts(o);
        if (*history) return cmd_history(o);
        if (*set) return cmd_set(o);
        if (*unset) return cmd_unset(o);
        if (*show) return cmd_show(o);
        if (*audit) return cmd_audit(o);
        if (*u_add) return cmd_user_add(o);
        if (*u_passwd) return cmd_user_passwd(o);
        if (*u_del) return cmd_user_del(o);
        if (*u_list) return cmd_user_list(o);
        if (*u_token) return cmd_user_token(o);
    } catch (const FatalError& e) {
        std::cerr << kProg << ": error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << kProg << ": internal error: " << e.what() << "\n";
        return 70;
    }
    std::cerr << app.help();
    return 2;
}

}  // namespace pf
