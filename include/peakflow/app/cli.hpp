#pragma once
// Command-line parsing, kept apart from running so tests can check every option.

#include <optional>
#include <string>
#include <vector>

#include "peakflow/accounting/report.hpp"
#include "peakflow/kernel/dump.hpp"

namespace pf {

struct CliCommand {
    enum Kind {
        None,
        Attach,
        Detach,
        Dump,
        ConfigCheck,
        Report,
        Host,
        History,
        Push,
        ExportStatus,
        ExportPipe,
        ImportTracker,
        HeartbeatSend,
        Status
    } kind = None;
    std::vector<std::string> ifaces;
    std::string config_path;
    std::string database;  // overrides the config's database path
    std::optional<std::string> metrics_listen;
    std::optional<std::string> xdp_mode;
    std::optional<double> interval_seconds;
    std::optional<uint32_t> mac_capacity;
    std::optional<uint32_t> flow_capacity;
    bool no_flows = false;
    bool detach_on_exit = false;
    std::optional<std::string> log_level;
    DumpOptions dump;
    bool status_json = false;
    ReportOptions report;
    std::string host_item;  // host: cpu, mem, disk, sys, users, procs; empty: all
    bool host_json = false;
    std::string customer_hour;     // report --customer-hour YYYY-MM-DDTHH
    bool customer_verify = false;  // report --verify
    bool history_failed = false;   // history: failed deliveries only
    bool history_json = false;
    bool push_test = false;    // push --test [SINK]
    std::string push_sink;     // push: one sink (default: all)
    std::string push_message;  // push --message TEXT: queue it in the outbox
    std::string push_title;
    std::string import_dir = "/etc/Traffic";  // import peakflow-tracker [DIR]
    std::string import_write;                 // --write FILE
    bool import_force = false;
    std::string import_iface;  // --interface
    std::string pmacct_conf;   // export pipe --pmacct-conf FILE: its processor_* keys
    std::string data_dir;      // export pipe --data-dir DIR: export.files.directory
    // heartbeat send --url URL --name NAME [--ip IP] [--token-file FILE] [--ca-file FILE]
    std::string hb_url, hb_name, hb_ip, hb_token_file, hb_ca_file;
};

struct CliParse {
    int exit_code = -1;  // >= 0: stop with this code (help, version, usage error)
    std::string out;     // what to print on stdout
    std::string err;     // what to print on stderr
    CliCommand cmd;
};

CliParse parse_cli(const std::vector<std::string>& args);  // args[0] is the program name

std::string version_string();

int run_cli(int argc, char** argv);

}  // namespace pf
