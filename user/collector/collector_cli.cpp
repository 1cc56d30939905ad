#include "peakflow/collector/collector_cli.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "peakflow/accounting/report.hpp"
#include "peakflow/collector/collector_config.hpp"
#include "peakflow/common/logging.hpp"
#include "peakflow/fleet/collector_server.hpp"
#include "peakflow/fleet/fleet_store.hpp"
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
    std::string log_level;  // --log-level: wins over the config's
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

int cmd_agents(const Opts& o) {
    CollectorConfig c = load_collector_config(o.config).take();
    Calendar cal = calendar_of(c);
    auto store = FleetStore::open(c.database, true).take();
    auto agents = store->agents().take();
    const int64_t now = now_seconds();
    if (o.json) {
        Json j;
        j["agents"] = Json::array();
        for (const auto& a : agents)
            j["agents"].push_back({{"name", a.name},
                                   {"node", a.node},
                                   {"host", a.host},
                                   {"iface", a.iface},
                                   {"mac", a.mac},
                                   {"version", a.version},
                                   {"last_seen", opt_time(cal, a.last_seen)},
                                   {"last_seen_epoch", opt_epoch(a.last_seen)},
                                   {"state", agent_state(a, now, c.offline_after)},
                                   {"backlog", a.backlog}});
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

// ---- serve ----------------------------------------------------------------------------

int cmd_serve(const Opts& o, const sigset_t& sigs) {
    CollectorConfig c = load_collector_config(o.config).take();
    spdlog::set_level(spdlog::level::from_str(o.log_level.empty() ? c.log_level : o.log_level));
    if (!c.log_dir.empty()) add_log_files(c.log_dir, "peakflow-collector").take();
    spdlog::info("{} starting: listen {} ({}), database {}, config {}", collector_version(), c.listen,
                 c.tls() ? "HTTPS" : "HTTP", c.database, c.source.empty() ? "built-in defaults" : c.source);
    // The file may hold push secrets (tokens, signing secrets, SMTP passwords).
    if (struct stat st{}; !c.source.empty() && ::stat(c.source.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
        spdlog::warn("{} is readable by other users and may hold push secrets: chmod 600 it", c.source);
    if (c.plain_non_loopback())
        spdlog::warn(
            "plain HTTP on a non-loopback address (allow_plain_http): agent tokens and reports cross the "
            "network unencrypted on {}",
            c.listen);
    auto server = CollectorServer::start(c.server_options()).take();
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

    auto* alerts = app.add_subcommand("alerts", "Stored alerts, newest first");
    alerts->add_flag("--json", o.json, "JSON: {\"alerts\":[...]}");
    alerts->add_option("-f,--config", o.config, cfg_help);

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
        if (*agents) return cmd_agents(o);
        if (*report) return cmd_report(o, ro);
        if (*alerts) return cmd_alerts(o);
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
