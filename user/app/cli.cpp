#include "peakflow/app/cli.hpp"

#include <bpf/libbpf.h>
#include <spdlog/sinks/daily_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "peakflow/accounting/store.hpp"
#include "peakflow/app/central.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/app/import_tracker.hpp"
#include "peakflow/app/status.hpp"
#include "peakflow/common/config_parser.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/common/logging.hpp"
#include "peakflow/common/privileges.hpp"
#include "peakflow/daemon/daemon.hpp"
#include "peakflow/export/export_pipe.hpp"
#include "peakflow/export/export_service.hpp"
#include "peakflow/export/pmacct_conf.hpp"
#include "peakflow/fleet/central_config.hpp"
#include "peakflow/fleet/heartbeat.hpp"
#include "peakflow/fleet/heartbeat_checks.hpp"
#include "peakflow/kernel/ifaces.hpp"
#include "peakflow/push/customer_report.hpp"
#include "peakflow/push/outbox.hpp"
#include "peakflow/version.hpp"
#include "peakflow/watch/host_watch.hpp"

namespace pf {

std::string version_string() {
    return std::string("peakflow-bpf ") + kVersion + " (commit " + kGitCommit + ", libbpf " + libbpf_version_string() +
           ")";
}

namespace {

// `attach` and its options; the raw values are turned into overrides once parsed.
struct AttachRaw {
    std::string xdp_mode;
    double interval = 0;
    uint32_t mac_cap = 0, flow_cap = 0;
};

CLI::App* add_attach_command(CLI::App& app, CliCommand& c, AttachRaw& raw) {
    auto* attach = app.add_subcommand("attach", "Attach to interfaces and count in the foreground until stopped");
    attach->add_option("IFACE", c.ifaces, "Interfaces (default: the physical interface of the default route)");
    attach->add_option(
        "-f,--config", c.config_path,
        std::string("Config file (default: ") + kDefaultConfigPath + " if it exists, else built-in defaults)");
    attach
        ->add_option("--xdp-mode", raw.xdp_mode,
                     "auto (native, else generic with a warning), native, generic, or off (count ingress with TC)")
        ->check(CLI::IsMember({"auto", "native", "generic", "off"}));
    attach->add_option("--interval", raw.interval, "Seconds between map drains (default 10)")
        ->check(CLI::Range(0.05, 3600.0));
    attach->add_option("--mac-capacity", raw.mac_cap, "Peer MACs each CPU's kernel table holds (default 4096)")
        ->check(CLI::Range(16u, 1u << 20));
    attach->add_option("--flow-capacity", raw.flow_cap, "Flows the kernel tables hold (default 65536)")
        ->check(CLI::Range(16u, 1u << 22));
    attach->add_option("--database", c.database,
                       std::string("History database (default: ") + kDefaultDatabasePath + ")");
    attach->add_option("--metrics-listen", c.metrics_listen,
                       "Serve Prometheus /metrics on HOST:PORT (default 127.0.0.1:9977; \"\" turns it off)");
    attach->add_flag("--no-flows", c.no_flows, "Count interfaces and MACs only, no per-flow entries");
    attach->add_flag("--detach-on-exit", c.detach_on_exit,
                     "Remove programs and pins when stopped (default: they stay and keep counting)");
    return attach;
}

// `report` and its options; checked and combined by finish_report once parsed.
struct ReportRaw {
    std::string day, month, mac, iface;
    bool hours = false, five = false;
    int hour = -1;
};

CLI::App* add_report_command(CLI::App& app, CliCommand& c, ReportRaw& raw) {
    auto* report =
        app.add_subcommand("report", "Traffic history: today and this month, or a day, month, hours, 5 minutes");
    report->add_option("--day", raw.day, "Local day YYYY-MM-DD (default today)");
    report->add_option("--month", raw.month, "Billing month YYYY-MM (the month its billing period starts in)");
    auto* hours_flag = report->add_flag("--hours", raw.hours, "Hour by hour for the day");
    auto* five_flag =
        report->add_flag("--five-minutes", raw.five, "5-minute points for the day, or the hour with --hour");
    hours_flag->excludes(five_flag);
    report->add_option("--hour", raw.hour, "Local hour 0-23 (with --five-minutes)")
        ->check(CLI::Range(0, 23))
        ->needs(five_flag);
    report->add_option("--iface", raw.iface, "Only this interface");
    report->add_option("--mac", raw.mac, "Only this peer MAC (its rows instead of interface totals)");
    report->add_option("--top", c.report.top_macs, "Top MACs listed under each interface (default 10, 0 none)")
        ->check(CLI::Range(0, 100000));
    report->add_flag("--json", c.report.json, "JSON with stable keys (see README)");
    auto* customer_opt = report->add_option(
        "--customer-hour", c.customer_hour,
        "The customer hourly report's JSON body(ies) for the local hour YYYY-MM-DDTHH (with --mac: that MAC's)");
    auto* verify_flag =
        report->add_flag("--verify", c.customer_verify, "The customer report's verification outcomes, newest first");
    customer_opt->excludes(hours_flag)->excludes(five_flag)->excludes(verify_flag);
    report->add_option("-f,--config", c.config_path, "Config file (time zone, peak windows, billing day, database)");
    report->add_option("--database", c.database, "History database (default: the config's)");
    return report;
}

// The report view the options ask for, or a usage error (exit 2) in r.
void finish_report(CliParse& r, const ReportRaw& raw) {
    CliCommand& c = r.cmd;
    ReportOptions& ro = c.report;
    if (!raw.iface.empty()) ro.iface = raw.iface;
    auto usage = [&](const std::string& msg) {
        r.err = "report: " + msg + "\nRun with --help for more information.\n";
        r.exit_code = 2;
    };
    if (!raw.day.empty()) {
        auto d = parse_local_date(raw.day);
        if (!d) return usage(d.error().message());
        ro.day = *d;
    }
    if (!raw.month.empty()) {
        auto m = parse_billing_month(raw.month);
        if (!m) return usage(m.error().message());
        ro.month = *m;
    }
    if (!raw.mac.empty()) {
        ro.mac = parse_mac(raw.mac);
        if (!ro.mac) return usage("'" + raw.mac + "' is not a MAC address");
    }
    if ((!c.customer_hour.empty() || c.customer_verify) &&
        (ro.day || !raw.month.empty() || c.report.json || c.report.top_macs != ReportOptions{}.top_macs))
        return usage("--customer-hour and --verify do not combine with --day, --month, --json or --top");
    if (c.customer_verify && !raw.mac.empty()) return usage("--mac goes with --customer-hour, not --verify");
    if (ro.month && (ro.day || raw.hours || raw.five))
        return usage("--month does not combine with --day, --hours or --five-minutes");
    ro.kind = raw.hours  ? ReportOptions::Hours
              : raw.five ? ReportOptions::FiveMinutes
              : ro.month ? ReportOptions::Month
              : ro.day   ? ReportOptions::Day
                         : ReportOptions::Summary;
    if (raw.hour >= 0) ro.hour = raw.hour;
}

}  // namespace

CliParse parse_cli(const std::vector<std::string>& args) {
    CliParse r;
    CliCommand& c = r.cmd;
    CLI::App app{"peakflow-bpf: per-interface, per-MAC and per-flow traffic accounting with eBPF", "peakflow-bpf"};
    app.set_version_flag("-V,--version", version_string());
    app.require_subcommand(0, 1);
    app.fallthrough();  // global options may follow the subcommand
    std::string log_level;
    app.add_option("--log-level", log_level, "trace, debug, info, warn or error (default: info)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

    AttachRaw attach_raw;
    auto* attach = add_attach_command(app, c, attach_raw);

    auto* detach = app.add_subcommand("detach", "Remove our programs, the clsact qdisc if we made it, and the pins");
    detach->add_option("IFACE", c.ifaces, "Interfaces")->required();

    auto* dump = app.add_subcommand("dump", "Print live counters from the pinned maps (no daemon needed)");
    dump->add_option("IFACE", c.dump.ifaces, "Interfaces (default: all attached)");
    dump->add_flag("--json", c.dump.json, "One JSON object (one per line with --watch)");
    dump->add_option("--watch", c.dump.watch_seconds, "Print again every SECONDS, with rates")
        ->check(CLI::Range(0.1, 86400.0));
    dump->add_flag("--flows", c.dump.flows, "Include the top flows");
    dump->add_option("--top", c.dump.top, "Rows of MACs and flows to show (flows default 10, MACs all)")
        ->check(CLI::Range(1, 1000000));

    auto* status = app.add_subcommand(
        "status", "Is every interface counting? Programs, maps, daemon, history; exit 0 only when all count");
    status->add_option("IFACE", c.ifaces, "Interfaces (default: the configured and every attached one)");
    status->add_flag("--json", c.status_json, "One JSON object");
    status->add_option("--database", c.database, "History database (default: the config's)");
    status->add_option("-f,--config", c.config_path, "Config file (interfaces, database, time zone)");

    ReportRaw report_raw;
    auto* report = add_report_command(app, c, report_raw);

    auto* host = app.add_subcommand(
        "host", "Host health and the busiest processes, measured now (no daemon needed), one line per record");
    host->add_option("ITEM", c.host_item,
                     "cpu (load, usage over 0.5 s, temperature, level), mem, disk, sys, users, or procs (the "
                     "busiest five and every process above the thresholds, over 1 s); default: all")
        ->check(CLI::IsMember({"cpu", "mem", "disk", "sys", "users", "procs"}));
    host->add_flag("--json", c.host_json, "One JSON object per record");
    host->add_option("-f,--config", c.config_path, "Config file (thresholds and alarm levels of host_watch)");
    auto* history = app.add_subcommand("history", "Push history: every message queued for a sink and its outcome");
    history->add_flag("--failed", c.history_failed, "Only messages whose last delivery attempt failed");
    history->add_flag("--json", c.history_json, "JSON with stable keys (see README)");
    history->add_option("-f,--config", c.config_path, "Config file (time zone, database)");
    history->add_option("--database", c.database, "History database (default: the config's)");

    auto* push = app.add_subcommand("push", "Push sinks: send a test message now, or queue a message in the outbox");
    auto* push_test = push->add_flag("--test", c.push_test,
                                     "Send a test message now, directly (not via the outbox), to SINK or to every "
                                     "enabled sink; print each service's answer; exit 1 if any failed");
    auto* push_msg = push->add_option("--message", c.push_message,
                                      "Queue TEXT (markdown) in the outbox for SINK or every sink; the running "
                                      "daemon delivers it (recorded in the push history)");
    push_test->excludes(push_msg);
    push->add_option("--title", c.push_title, "Title of the --message (default: peakflow-bpf message)")
        ->needs(push_msg);
    push->add_option("SINK", c.push_sink, "A sink name from the config (default: all)");
    push->add_option("--sink", c.push_sink, "Same as SINK");
    push->add_option("-f,--config", c.config_path, "Config file with the push: section");
    push->add_option("--database", c.database, "History database holding the outbox (default: the config's)");

    auto* config = app.add_subcommand("config", "Configuration file tools");
    config->require_subcommand(1);
    auto* check = config->add_subcommand("check", "Validate a config file and print the effective config");
    check->add_option("FILE", c.config_path, std::string("Config file (default: ") + kDefaultConfigPath + ")");

    auto* exp = app.add_subcommand("export", "Flow export tools");
    exp->require_subcommand(1);
    auto* exp_status = exp->add_subcommand(
        "status",
        "What the flow export has spooled (finished files waiting for upload, open files) and its last status");
    exp_status->add_option("-f,--config", c.config_path, "Config file with the export: section");
    auto* exp_pipe = exp->add_subcommand(
        "pipe",
        "Read nfacctd's CSV (print plugin, print_output: csv) on stdin and write it through the export's rolling gzip "
        "files, upload and status, as the pmacct processor did: nfacctd -f pmacct.conf | peakflow-bpf export pipe "
        "--pmacct-conf pmacct.conf");
    exp_pipe->add_option("-f,--config", c.config_path,
                         "Config file: its export: section (files, upload, status) is the starting point");
    exp_pipe->add_option("--pmacct-conf", c.pmacct_conf,
                         "pmacct.conf whose processor_* keys (FTP, rotation, prefix, time zone, status report) "
                         "override the config's");
    exp_pipe->add_option("--data-dir", c.data_dir,
                         "Directory of the files (the processor's -data-dir; default: export.files.directory)");

    auto* imp = app.add_subcommand("import", "Carry over what another tool had");
    imp->require_subcommand(1);
    auto* imp_tracker = imp->add_subcommand(
        "peakflow-tracker",
        "PeakFlow_Tracker: print its config.yaml as peakflow config, import its history's daily totals");
    imp_tracker->add_option("DIR", c.import_dir,
                            "Its directory, with config.yaml and peakflow.db (default: /etc/Traffic)");
    imp_tracker->add_option("--write", c.import_write, "Write the config to FILE instead of printing it");
    imp_tracker->add_flag("--force", c.import_force, "With --write: replace an existing FILE");
    imp_tracker->add_option("--interface", c.import_iface,
                            "The interface the history was counted on (default: its config's)");
    imp_tracker->add_option("-f,--config", c.config_path,
                            "peakflow config: the history database and time zone to import into");
    imp_tracker->add_option("--database", c.database, "History database to import into (default: the config's)");

    auto* hb = app.add_subcommand("heartbeat", "Heartbeats to a heartbeat service (the collector's)");
    hb->require_subcommand(1);
    auto* hb_send = hb->add_subcommand(
        "send",
        "Send one heartbeat now, as a service does (POST /heartbeat/report with ip_address and service_name); for "
        "scripts and cron. The token is read from --token-file or the environment variable PEAKFLOW_HEARTBEAT_TOKEN, "
        "never from the command line");
    hb_send->add_option("--url", c.hb_url, "The collector (http(s)://HOST:PORT) or its .../heartbeat/report URL")
        ->required();
    hb_send
        ->add_option("--name", c.hb_name,
                     "service_name: its prefix decides the type (数据采集, kafka, redis, 后端, 前端)")
        ->required();
    hb_send->add_option("--ip", c.hb_ip, "ip_address (default: this host's address towards the collector)");
    hb_send->add_option("--token-file", c.hb_token_file, "File whose first line is a heartbeat token (pfh_...)");
    hb_send->add_option("--ca-file", c.hb_ca_file, "Trust this CA file for https:// instead of the system's");

    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err;
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e, out, err);
        r.out = out.str();
        r.err = err.str();
        r.exit_code = code == 0 ? 0 : 2;  // usage errors: 2, like most Unix tools
        return r;
    }
    if (!log_level.empty()) c.log_level = log_level;
    if (*attach) {
        c.kind = CliCommand::Attach;
        if (!attach_raw.xdp_mode.empty()) c.xdp_mode = attach_raw.xdp_mode;
        if (attach_raw.interval > 0) c.interval_seconds = attach_raw.interval;
        if (attach_raw.mac_cap) c.mac_capacity = attach_raw.mac_cap;
        if (attach_raw.flow_cap) c.flow_capacity = attach_raw.flow_cap;
    } else if (*detach) {
        c.kind = CliCommand::Detach;
    } else if (*dump) {
        c.kind = CliCommand::Dump;
    } else if (*status) {
        c.kind = CliCommand::Status;
    } else if (*check) {
        c.kind = CliCommand::ConfigCheck;
    } else if (*host) {
        c.kind = CliCommand::Host;
    } else if (*history) {
        c.kind = CliCommand::History;
    } else if (*push) {
        c.kind = CliCommand::Push;
        if (!c.push_test && c.push_message.empty()) {
            r.err = "push: give --test or --message TEXT\nRun with --help for more information.\n";
            r.exit_code = 2;
            return r;
        }
    } else if (*exp_status) {
        c.kind = CliCommand::ExportStatus;
    } else if (*exp_pipe) {
        c.kind = CliCommand::ExportPipe;
    } else if (*hb_send) {
        c.kind = CliCommand::HeartbeatSend;
    } else if (*imp_tracker) {
        c.kind = CliCommand::ImportTracker;
        if (c.import_force && c.import_write.empty()) {
            r.err = "import: --force needs --write FILE\nRun with --help for more information.\n";
            r.exit_code = 2;
            return r;
        }
    } else if (*report) {
        c.kind = CliCommand::Report;
        finish_report(r, report_raw);
    } else {
        r.out = app.help();
        r.exit_code = 2;
    }
    return r;
}

namespace {

// Optional files beside stderr, as the earlier tool kept them: a log per day
// (peakflow_YYYY-MM-DD.log), errors in error.log, and one traffic summary line per
// interface and finished day (traffic_YYYY-MM-DD.log, rotated at midnight).
Status add_agent_log_files(const std::string& dir) {
    if (auto st = add_log_files(dir, "peakflow"); !st) return st;
    try {
        auto traffic = std::make_shared<spdlog::logger>(
            "traffic", std::make_shared<spdlog::sinks::daily_file_sink_mt>(dir + "/traffic.log", 0, 0));
        traffic->set_pattern("%Y-%m-%d %H:%M:%S %v");
        spdlog::register_logger(traffic);
    } catch (const std::exception& e) {
        return Error("cannot write logs in " + dir + ": " + e.what());
    }
    return Ok{};
}

// What the central config did to the file's, when the agent reports to a collector.
struct CentralOutcome {
    std::optional<CentralConfig> central;  // as stored by the uplink; nullopt: none received
    std::vector<ConfigProblem> problems;
    std::vector<std::string> applied;
    std::string database;
};

// The effective config: built-in defaults, then the config file, then the central values the
// collector sent last (for their keys only), then the command line's overrides, applied once
// here for every command. A stored central config that cannot be read is a warning: the
// file's values run.
Result<Config> effective_config(const CliCommand& c, CentralOutcome* outcome = nullptr) {
    std::string path = c.config_path;
    if (path.empty() && std::filesystem::exists(kDefaultConfigPath)) path = kDefaultConfigPath;
    std::string text;
    if (!path.empty()) {
        auto t = read_config_text(path);
        if (!t) return t.error();
        text = std::move(*t);
    }
    auto loaded = parse_config(text, path);
    if (!loaded) return loaded.error();
    Config cfg = std::move(*loaded);
    const std::string database = c.database.empty() ? cfg.accounting.database : c.database;
    if (cfg.collector.configured) {
        auto central = load_central(database);
        if (!central) {
            spdlog::warn("central config: {}; the config file's values apply", central.error().message());
        } else if (*central) {
            auto applied = apply_central(text, path, **central);
            if (!applied) return applied.error();
            cfg = std::move(applied->cfg);
            if (outcome) {
                outcome->central = **central;
                outcome->problems = std::move(applied->problems);
                outcome->applied = std::move(applied->applied);
            }
        }
    }
    if (outcome) outcome->database = database;
    if (!c.ifaces.empty()) {
        cfg.interfaces = c.ifaces;
        if (outcome) {
            auto& a = outcome->applied;
            if (auto it = std::find(a.begin(), a.end(), "interfaces"); it != a.end()) {
                a.erase(it);
                outcome->problems.push_back(
                    {"interfaces", "the command line names the interfaces to attach to (attach IFACE...), which wins"});
            }
        }
    }
    if (c.xdp_mode) {
        auto m = parse_xdp_mode(*c.xdp_mode);
        if (!m) return m.error();
        cfg.xdp_mode = *m;
    }
    cfg.mac_capacity = c.mac_capacity.value_or(cfg.mac_capacity);
    cfg.flow_capacity = c.flow_capacity.value_or(cfg.flow_capacity);
    cfg.flows = cfg.flows && !c.no_flows;
    if (c.interval_seconds)
        cfg.drain_interval = std::chrono::milliseconds(static_cast<long>(*c.interval_seconds * 1000));
    cfg.accounting.database = database;
    cfg.log_level = c.log_level.value_or(cfg.log_level);
    cfg.metrics_listen = c.metrics_listen.value_or(cfg.metrics_listen);
    return cfg;
}

// What the daemon runs with: each part of the effective config goes to its owner.
DaemonOptions daemon_options(const Config& cfg, const CliCommand& c) {
    DaemonOptions o;
    o.ifaces = cfg.interfaces;
    o.attach.xdp_mode = cfg.xdp_mode;
    o.attach.load.mac_capacity = cfg.mac_capacity;
    o.attach.load.flow_capacity = cfg.flow_capacity;
    o.attach.load.flows = cfg.flows;
    o.interval = cfg.drain_interval;
    o.accounting = cfg.accounting;
    o.sections.set(cfg.push);
    o.sections.set(cfg.reports);
    o.sections.set(cfg.customer_report);
    o.sections.set(cfg.host_watch);
    // The collector's flows stream needs the flow scan's pairs, with or without export:.
    const bool pairs = cfg.collector.configured && cfg.flows && cfg.collector.flow_pairs > 0;
    o.sections.set(pairs ? with_flow_pairs(cfg.export_, cfg.accounting.database) : cfg.export_);
    o.sections.set(cfg.collector);
    o.log_level = cfg.log_level;
    o.metrics_listen = cfg.metrics_listen;
    o.mac_series_cap = cfg.metrics_mac_series;
    o.detach_on_exit = c.detach_on_exit;
    return o;
}

// The central config as the daemon runs it: what each new version changed goes to the log,
// and what could not be applied (by the parser, or by the daemon: an interface it cannot
// attach to) is stored for the uplink to report.
class CentralTracker {
  public:
    void loaded(const Config& cfg, CentralOutcome outcome) {
        std::lock_guard<std::mutex> l(mu_);
        const int64_t version = outcome.central ? outcome.central->version : 0;
        auto view = central_view(cfg);
        if (version != version_ && outcome.central) {
            spdlog::info("central config v{} from the collector: {} key(s) applied, {} not applied", version,
                         outcome.applied.size(), outcome.problems.size());
            for (const auto& [k, v] : view) {
                auto old = view_.find(k);
                if (!view_.empty() && (old == view_.end() || old->second != v))
                    spdlog::info("central config v{}: {}: {} -> {}", version, k,
                                 old == view_.end() ? "(unset)" : old->second, v);
            }
            for (const auto& p : outcome.problems)
                spdlog::warn("central config v{}: {} not applied: {}", version, p.key, p.message);
        }
        version_ = version;
        view_ = std::move(view);
        outcome_ = std::move(outcome);
    }

    // After the daemon applied it: its own problems (by config key) join the parser's.
    void daemon_applied(const std::vector<ConfigProblem>& runtime) {
        std::lock_guard<std::mutex> l(mu_);
        if (!outcome_.central) return;
        CentralStatus st{version_, outcome_.problems};
        for (const auto& p : runtime) {
            bool central = false;
            for (const auto& k : outcome_.applied) central = central || k == p.key;
            if (!central) continue;
            spdlog::warn("central config v{}: {} not applied: {}", version_, p.key, p.message);
            st.problems.push_back(p);
        }
        if (auto ok = save_central_status(outcome_.database, st); !ok)
            spdlog::error("central config: cannot record what was applied: {}", ok.error().message());
    }

  private:
    std::mutex mu_;
    int64_t version_ = 0;
    std::map<std::string, std::string> view_;
    CentralOutcome outcome_;
};

Result<DaemonOptions> load_daemon_options(const CliCommand& c, CentralTracker& tracker) {
    CentralOutcome outcome;
    auto cfg = effective_config(c, &outcome);
    if (!cfg) return cfg.error();
    if (!cfg->source.empty()) spdlog::info("config: {}", cfg->source);
    tracker.loaded(*cfg, std::move(outcome));
    return daemon_options(*cfg, c);
}

int run_attach(const CliCommand& c) {
    CentralOutcome outcome;
    Config cfg = effective_config(c, &outcome).take();
    if (!cfg.source.empty()) spdlog::info("config: {}", cfg.source);
    // Once, at start (a reload re-reads the same file).
    if (auto w = config_readable_warning(cfg.source); !w.empty()) spdlog::warn("{}", w);
    auto tracker = std::make_shared<CentralTracker>();
    tracker->loaded(cfg, std::move(outcome));
    DaemonOptions o = daemon_options(cfg, c);
    spdlog::set_level(spdlog::level::from_str(o.log_level));
    // As the systemd unit's UMask=0077, under SysV and OpenWrt too (umask 022 there): the
    // logs, the export spool and state, the databases are for root alone.
    ::umask(::umask(0) | 077);
    if (!cfg.log_dir.empty()) {
        // A start that has no interface to count on leaves no log directory behind either.
        check_start_interfaces(o).take();
        add_agent_log_files(cfg.log_dir).take();
    }
    o.reload = [c, tracker] { return load_daemon_options(c, *tracker); };
    o.applied = [tracker](const std::vector<ConfigProblem>& p) { tracker->daemon_applied(p); };
    return run_daemon(o);
}

int run_detach(const CliCommand& c) {
    if (auto st = check_attach_privileges(); !st) throw FatalError(st.error());
    int rc = 0;
    for (const auto& ifname : c.ifaces) {
        if (auto st = detach_interface(ifname); !st) {
            std::cerr << "peakflow-bpf: error: " << st.error().message() << "\n";
            rc = 1;
        }
    }
    return rc;
}

// The interface the customer report covers: its own setting, --iface, the configured
// interfaces, the only one with history, or the default-route interface (as the daemon).
std::string customer_iface(const Config& cfg, const CliCommand& c, Store& store) {
    if (!cfg.customer_report.iface.empty()) return cfg.customer_report.iface;
    if (c.report.iface) return *c.report.iface;
    if (!cfg.interfaces.empty()) return cfg.interfaces.front();
    auto known = store.interfaces().take();
    if (known.size() == 1) return known.front();
    return detect_default_interface(Paths{}).take().ifname;
}

int run_customer_cmd(const CliCommand& c, const Config& cfg, const Calendar& cal) {
    const std::string& db = cfg.accounting.database;
    if (c.customer_verify) {
        for (const auto& line : customer_verify_log(db, cal, 1000).take()) std::cout << line << "\n";
        return 0;
    }
    CustomerHourRequest r;
    r.database = db;
    r.hour_start = parse_local_hour(cal, c.customer_hour).take();
    r.mac = c.report.mac;
    {
        auto store = Store::open(db, true).take();
        r.iface = customer_iface(cfg, c, *store);
    }
    for (const auto& body : customer_hour_bodies(cfg.customer_report, cfg.accounting.adjustments, cal, r).take())
        std::cout << body << "\n";
    return 0;
}

int run_report_cmd(const CliCommand& c) {
    Config cfg = effective_config(c).take();
    Calendar cal = cfg.accounting.calendar().take();
    if (!c.customer_hour.empty() || c.customer_verify) return run_customer_cmd(c, cfg, cal);
    auto store = Store::open(cfg.accounting.database, true).take();
    if (auto st = run_report(*store, cal, cfg.accounting.adjustments, c.report, static_cast<int64_t>(::time(nullptr)),
                             std::cout);
        !st)
        throw FatalError(st.error());
    return 0;
}

int run_host_cmd(const CliCommand& c) {
    Config cfg = effective_config(c).take();
    auto sleep = [](double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); };
    if (auto st = run_host(c.host_item, c.host_json, cfg.host_watch, "/", static_cast<int64_t>(::time(nullptr)), sleep,
                           std::cout);
        !st)
        throw FatalError(st.error());
    return 0;
}

int run_history_cmd(const CliCommand& c) {
    Config cfg = effective_config(c).take();
    Calendar cal = cfg.accounting.calendar().take();
    auto rows = read_push_history(cfg.accounting.database, c.history_failed).take();
    std::cout << render_history(rows, c.history_json, [&](int64_t t) { return cal.format_local(t); });
    return 0;
}

int run_push_cmd(const CliCommand& c) {
    Config cfg = effective_config(c).take();
    if (!cfg.push.configured || cfg.push.sinks.empty())
        throw FatalError("no push sinks configured" + (cfg.source.empty() ? std::string() : " in " + cfg.source));
    if (c.push_test) return run_push_test(cfg.push, c.push_sink, std::cout);
    OutboxOptions o;
    o.database = cfg.accounting.database;
    o.push = cfg.push;
    auto ob = Outbox::open(o).take();
    OutboundMessage m{c.push_sink,    "message", "", c.push_title.empty() ? "peakflow-bpf message" : c.push_title,
                      c.push_message, ""};
    if (auto st = ob->enqueue(m); !st) throw FatalError(st.error());
    std::cout << "queued in " << o.database << "\n";
    return 0;
}

int run_config_check(const CliCommand& c) {
    CliCommand checked = c;
    checked.config_path = c.config_path.empty() ? kDefaultConfigPath : c.config_path;
    CentralOutcome outcome;
    Config cfg = effective_config(checked, &outcome).take();
    // Effective values: the time zone the daemon would really use.
    cfg.accounting.timezone = cfg.accounting.calendar().take().tz_name();
    std::cout << "# " << checked.config_path << ": OK\n" << dump_config(cfg);
    if (!cfg.collector.configured) return 0;
    // The keys the collector may set: their effective value and where it comes from.
    std::cout << "# central keys (collector "
              << (outcome.central ? "v" + std::to_string(outcome.central->version) : "config: none received yet")
              << ")\n";
    const std::string from = outcome.central ? "collector v" + std::to_string(outcome.central->version) : "";
    for (const auto& [k, v] : central_view(cfg)) {
        bool central = false;
        for (const auto& a : outcome.applied) central = central || a == k;
        std::cout << "#   " << k << " = " << v << "  (" << (central ? from : "file") << ")\n";
    }
    for (const auto& p : outcome.problems)
        std::cout << "#   " << p.key << ": not applied (" << from << "): " << p.message << "\n";
    return 0;
}

// `export pipe`: the config's export: section, then pmacct.conf's processor_* keys, then
// --data-dir; stops on SIGTERM, SIGINT and SIGQUIT (blocked in run_cli, read from a signalfd).
int run_export_pipe_cmd(const CliCommand& c) {
    Config cfg = effective_config(c).take();
    ExportPipeOptions o;
    o.cfg = cfg.export_;
    if (!c.pmacct_conf.empty()) load_pmacct_conf(c.pmacct_conf, o.cfg).take();
    if (!c.data_dir.empty()) {
        if (c.data_dir[0] != '/') throw FatalError("--data-dir: must be an absolute path, got '" + c.data_dir + "'");
        o.cfg.files.directory = c.data_dir;
    }
    o.cfg.files.enabled = true;
    prepare_export_upload(o.cfg, cfg.accounting.database).take();
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    sigset_t sigs;
    sigemptyset(&sigs);
    for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&sigs, s);
    Fd sfd(signalfd(-1, &sigs, SFD_CLOEXEC));
    if (!sfd.valid()) throw FatalError(Error("signalfd", "", errno));
    o.stop_fd = sfd.get();
    o.read_stop = [fd = sfd.get()]() -> std::string {
        signalfd_siginfo si{};
        if (::read(fd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) return "";
        if (si.ssi_signo == SIGHUP) {
            spdlog::info("export pipe: SIGHUP ignored (settings are read at start)");
            return "";
        }
        return std::string("SIG") + sigabbrev_np(static_cast<int>(si.ssi_signo));
    };
    o.language = cfg.push.language;
    if (auto st = run_export_pipe(o); !st) throw FatalError(st.error());
    return 0;
}

// The token from --token-file (its first line) or PEAKFLOW_HEARTBEAT_TOKEN; never from the
// command line, where every local user sees it in ps.
int run_heartbeat_send(const CliCommand& c) {
    HeartbeatSendOptions o;
    o.url = c.hb_url;
    o.service_name = c.hb_name;
    o.ip = c.hb_ip;
    o.ca_file = c.hb_ca_file;
    if (!c.hb_token_file.empty()) {
        std::ifstream in(c.hb_token_file);
        if (!in) throw FatalError("heartbeat send: cannot read " + c.hb_token_file + ": " + std::strerror(errno));
        std::getline(in, o.token);
        while (!o.token.empty() && std::isspace(static_cast<unsigned char>(o.token.back()))) o.token.pop_back();
    } else if (const char* t = std::getenv("PEAKFLOW_HEARTBEAT_TOKEN"); t && *t) {
        o.token = t;
    }
    if (!o.ip.empty() && !valid_ip_address(o.ip))
        throw FatalError("heartbeat send: --ip " + o.ip + " is not an IP address");
    return send_heartbeat(o, std::cout, std::cerr);
}

}  // namespace

int run_cli(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    CliParse p = parse_cli(args);
    std::cout << p.out;
    std::cerr << p.err;
    if (p.exit_code >= 0) return p.exit_code;

    // The daemon's stop and reload signals are blocked before the first thread (spdlog's
    // flusher when log_dir is set) so that every thread inherits the mask. Only for
    // `attach` and `export pipe` (which read them from a signalfd): the others keep Ctrl-C.
    if (p.cmd.kind == CliCommand::Attach || p.cmd.kind == CliCommand::ExportPipe) block_stop_signals();
    setup_logging("peakflow", p.cmd.log_level.value_or("info"));
    install_libbpf_logger();
    try {
        switch (p.cmd.kind) {
            case CliCommand::Attach: return run_attach(p.cmd);
            case CliCommand::Detach: return run_detach(p.cmd);
            case CliCommand::Dump: return run_dump(p.cmd.dump, Paths{}, std::cout);
            case CliCommand::ConfigCheck: return run_config_check(p.cmd);
            case CliCommand::Report: return run_report_cmd(p.cmd);
            case CliCommand::Status: {
                auto cfg = effective_config(p.cmd).take();
                Calendar cal = cfg.accounting.calendar().take();
                // What attach would count: the configured interfaces, else the default route's.
                std::vector<std::string> configured = cfg.interfaces;
                if (configured.empty())
                    if (auto d = detect_default_interface(Paths{}); d) configured.push_back(d->ifname);
                auto r = collect_status(p.cmd.ifaces, configured, cfg.accounting.database, Paths{});
                std::cout << (p.cmd.status_json ? render_status_json(r)
                                                : render_status_text(r, cal, static_cast<int64_t>(::time(nullptr))));
                return r.ok() ? 0 : 1;
            }
            case CliCommand::Host: return run_host_cmd(p.cmd);
            case CliCommand::History: return run_history_cmd(p.cmd);
            case CliCommand::Push: return run_push_cmd(p.cmd);
            case CliCommand::ExportStatus: {
                auto cfg = effective_config(p.cmd).take();
                return run_export_status(cfg.export_, cfg.source, std::cout);
            }
            case CliCommand::ExportPipe: return run_export_pipe_cmd(p.cmd);
            case CliCommand::ImportTracker: {
                auto cfg = effective_config(p.cmd).take();
                Calendar cal = cfg.accounting.calendar().take();
                ImportTrackerOptions io;
                io.dir = p.cmd.import_dir;
                io.write = p.cmd.import_write;
                io.force = p.cmd.import_force;
                io.interface = p.cmd.import_iface;
                io.database = cfg.accounting.database;
                io.calendar = &cal;
                return run_import_tracker(io, std::cout, std::cerr);
            }
            case CliCommand::HeartbeatSend: return run_heartbeat_send(p.cmd);
            case CliCommand::None: break;
        }
    } catch (const FatalError& e) {
        std::cerr << "peakflow-bpf: error: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "peakflow-bpf: internal error: " << e.what() << "\n";
        return 70;
    }
    return 2;
}

}  // namespace pf
