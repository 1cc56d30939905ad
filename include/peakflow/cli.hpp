#pragma once
// Command-line parsing, kept apart from running so tests can check every option.

#include <optional>
#include <string>
#include <vector>

#include "peakflow/dump.hpp"
#include "peakflow/report.hpp"

namespace pf {

struct CliCommand {
    enum Kind { None, Attach, Detach, Dump, ConfigCheck, Report, ExportStatus } kind = None;
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
    ReportOptions report;
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
