// parse_cli: every option lands in CliCommand with its exact value, usage errors stop
// with exit code 2 and say which option was wrong, help and version stop with 0.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "peakflow/app/cli.hpp"

namespace pf {
namespace {

CliParse parse(std::vector<std::string> args) {
    args.insert(args.begin(), "peakflow-bpf");
    return parse_cli(args);
}

// A successful parse: nothing printed, nothing to stop for.
void expect_runs(const CliParse& r) {
    EXPECT_EQ(r.exit_code, -1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

TEST(Cli, AttachWithInterfacesAndNoFlagsLeavesEverythingUnset) {
    auto r = parse({"attach", "eth0", "eth1"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Attach);
    EXPECT_EQ(r.cmd.ifaces, (std::vector<std::string>{"eth0", "eth1"}));
    // Unset options must stay unset so the config file's values apply.
    EXPECT_EQ(r.cmd.config_path, "");
    EXPECT_FALSE(r.cmd.xdp_mode.has_value());
    EXPECT_FALSE(r.cmd.interval_seconds.has_value());
    EXPECT_FALSE(r.cmd.mac_capacity.has_value());
    EXPECT_FALSE(r.cmd.flow_capacity.has_value());
    EXPECT_FALSE(r.cmd.no_flows);
    EXPECT_FALSE(r.cmd.detach_on_exit);
    EXPECT_FALSE(r.cmd.log_level.has_value());
}

TEST(Cli, AttachWithoutInterfacesMeansTheDefaultRoute) {
    auto r = parse({"attach"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Attach);
    EXPECT_TRUE(r.cmd.ifaces.empty());
}

TEST(Cli, AttachEveryFlag) {
    auto r = parse({"attach", "--xdp-mode", "generic", "--interval", "2.5", "--mac-capacity", "8192", "--flow-capacity",
                    "32768", "--no-flows", "--detach-on-exit", "--config", "/tmp/pf.yaml", "eth0"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Attach);
    EXPECT_EQ(r.cmd.ifaces, (std::vector<std::string>{"eth0"}));
    EXPECT_EQ(r.cmd.xdp_mode, "generic");
    EXPECT_EQ(r.cmd.interval_seconds, 2.5);
    EXPECT_EQ(r.cmd.mac_capacity, 8192u);
    EXPECT_EQ(r.cmd.flow_capacity, 32768u);
    EXPECT_TRUE(r.cmd.no_flows);
    EXPECT_TRUE(r.cmd.detach_on_exit);
    EXPECT_EQ(r.cmd.config_path, "/tmp/pf.yaml");
}

TEST(Cli, AttachShortConfigOption) {
    auto r = parse({"attach", "-f", "/etc/pf/alt.yaml"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.config_path, "/etc/pf/alt.yaml");
}

TEST(Cli, EveryXdpModeIsAccepted) {
    for (const char* mode : {"auto", "native", "generic", "off"}) {
        auto r = parse({"attach", "--xdp-mode", mode});
        expect_runs(r);
        EXPECT_EQ(r.cmd.xdp_mode, mode);
    }
}

TEST(Cli, LogLevelBeforeTheSubcommand) {
    auto r = parse({"--log-level", "debug", "attach", "eth0"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Attach);
    EXPECT_EQ(r.cmd.log_level, "debug");
    EXPECT_EQ(r.cmd.ifaces, (std::vector<std::string>{"eth0"}));
}

TEST(Cli, LogLevelAfterTheSubcommand) {
    auto r = parse({"attach", "eth0", "--log-level", "trace"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Attach);
    EXPECT_EQ(r.cmd.log_level, "trace");
    EXPECT_EQ(r.cmd.ifaces, (std::vector<std::string>{"eth0"}));

    // Between the subcommand and its positional: the level must not be taken as an IFACE.
    auto m = parse({"attach", "--log-level", "warn", "eth1"});
    expect_runs(m);
    EXPECT_EQ(m.cmd.log_level, "warn");
    EXPECT_EQ(m.cmd.ifaces, (std::vector<std::string>{"eth1"}));
}

TEST(Cli, InvalidLogLevelIsAUsageError) {
    auto r = parse({"--log-level", "loud", "attach"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, "--log-level")) << r.err;
    EXPECT_TRUE(contains(r.err, "loud")) << r.err;
}

TEST(Cli, InvalidXdpModeIsAUsageErrorNamingTheOption) {
    auto r = parse({"attach", "--xdp-mode", "turbo", "eth0"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(contains(r.err, "--xdp-mode")) << r.err;
    EXPECT_TRUE(contains(r.err, "turbo")) << r.err;
}

TEST(Cli, OutOfRangeNumbersAreUsageErrors) {
    struct Case {
        std::vector<std::string> args;
        const char* option;
    };
    const Case cases[] = {
        {{"attach", "--interval", "0.01"}, "--interval"},
        {{"attach", "--interval", "3601"}, "--interval"},
        {{"attach", "--interval", "soon"}, "--interval"},
        {{"attach", "--mac-capacity", "15"}, "--mac-capacity"},
        {{"attach", "--mac-capacity", "1048577"}, "--mac-capacity"},
        {{"attach", "--flow-capacity", "4194305"}, "--flow-capacity"},
        {{"dump", "--top", "0"}, "--top"},
        {{"dump", "--watch", "0.05"}, "--watch"},
    };
    for (const auto& c : cases) {
        auto r = parse(c.args);
        EXPECT_EQ(r.exit_code, 2) << c.args[1] << " " << c.args[2];
        EXPECT_TRUE(contains(r.err, c.option)) << r.err;
    }
}

TEST(Cli, CapacityBoundariesAreAccepted) {
    auto r = parse({"attach", "--mac-capacity", "16", "--flow-capacity", "4194304", "--interval", "0.05"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.mac_capacity, 16u);
    EXPECT_EQ(r.cmd.flow_capacity, 4194304u);
    EXPECT_EQ(r.cmd.interval_seconds, 0.05);
}

TEST(Cli, DetachTakesInterfaces) {
    auto r = parse({"detach", "eth0", "eth1"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Detach);
    EXPECT_EQ(r.cmd.ifaces, (std::vector<std::string>{"eth0", "eth1"}));
}

TEST(Cli, DetachRequiresAnInterface) {
    auto r = parse({"detach"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.cmd.kind, CliCommand::None);
    EXPECT_TRUE(contains(r.err, "IFACE is required")) << r.err;
}

TEST(Cli, DumpDefaults) {
    auto r = parse({"dump"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Dump);
    EXPECT_TRUE(r.cmd.dump.ifaces.empty());
    EXPECT_FALSE(r.cmd.dump.json);
    EXPECT_FALSE(r.cmd.dump.flows);
    EXPECT_EQ(r.cmd.dump.top, 0);
    EXPECT_EQ(r.cmd.dump.watch_seconds, 0.0);
}

TEST(Cli, DumpFlags) {
    auto r = parse({"dump", "--json", "--watch", "2", "--flows", "--top", "5", "eth0"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::Dump);
    EXPECT_EQ(r.cmd.dump.ifaces, (std::vector<std::string>{"eth0"}));
    EXPECT_TRUE(r.cmd.dump.json);
    EXPECT_EQ(r.cmd.dump.watch_seconds, 2.0);
    EXPECT_TRUE(r.cmd.dump.flows);
    EXPECT_EQ(r.cmd.dump.top, 5);
    // Dump's interfaces go to the dump options, not to attach/detach's list.
    EXPECT_TRUE(r.cmd.ifaces.empty());
}

TEST(Cli, AttachOnlyOptionsAreRejectedByDump) {
    auto r = parse({"dump", "--no-flows"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, "--no-flows")) << r.err;
}

TEST(Cli, VersionFlag) {
    for (const char* flag : {"-V", "--version"}) {
        auto r = parse({flag});
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.err, "");
        EXPECT_TRUE(contains(r.out, "peakflow-bpf ")) << r.out;
        EXPECT_TRUE(contains(r.out, "libbpf ")) << r.out;
        EXPECT_EQ(r.out, version_string() + "\n");
    }
}

TEST(Cli, VersionStringNamesProgramCommitAndLibbpf) {
    std::string v = version_string();
    EXPECT_EQ(v.rfind("peakflow-bpf ", 0), 0u) << v;
    EXPECT_TRUE(contains(v, "(commit ")) << v;
    EXPECT_TRUE(contains(v, ", libbpf v")) << v;
    EXPECT_EQ(v.back(), ')') << v;
}

TEST(Cli, HelpExitsZeroAndListsSubcommands) {
    for (const char* flag : {"-h", "--help"}) {
        auto r = parse({flag});
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.err, "");
        EXPECT_TRUE(contains(r.out, "Usage: peakflow-bpf")) << r.out;
        for (const char* sub : {"attach", "detach", "dump", "config"}) EXPECT_TRUE(contains(r.out, sub)) << sub;
    }
}

TEST(Cli, SubcommandHelpShowsItsOptions) {
    auto r = parse({"attach", "--help"});
    EXPECT_EQ(r.exit_code, 0);
    for (const char* opt : {"--xdp-mode", "--interval", "--mac-capacity", "--flow-capacity", "--no-flows",
                            "--detach-on-exit", "-f,--config"})
        EXPECT_TRUE(contains(r.out, opt)) << opt;
}

TEST(Cli, NoSubcommandIsAUsageErrorWithHelp) {
    auto r = parse({});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.cmd.kind, CliCommand::None);
    EXPECT_TRUE(contains(r.out, "Usage: peakflow-bpf")) << r.out;
    EXPECT_TRUE(contains(r.out, "Subcommands:")) << r.out;
}

TEST(Cli, UnknownSubcommandIsAUsageError) {
    auto r = parse({"attack", "eth0"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, "attack")) << r.err;
}

TEST(Cli, ConfigCheckWithFile) {
    auto r = parse({"config", "check", "/etc/peakflow/test.yaml"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::ConfigCheck);
    EXPECT_EQ(r.cmd.config_path, "/etc/peakflow/test.yaml");
}

TEST(Cli, ConfigCheckWithoutFileUsesTheDefaultLater) {
    auto r = parse({"config", "check"});
    expect_runs(r);
    EXPECT_EQ(r.cmd.kind, CliCommand::ConfigCheck);
    EXPECT_EQ(r.cmd.config_path, "");
}

TEST(Cli, ConfigNeedsASubcommand) {
    auto r = parse({"config"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, "A subcommand is required")) << r.err;
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

TEST(CliCustomerReport, CustomerHourWithMacConfigAndDatabase) {
    auto r = parse_cli({"peakflow-bpf", "report", "--customer-hour", "2026-11-21T15", "--mac", "02:00:00:00:00:07",
                        "-f", "c.yaml", "--database", "h.db"});
    ASSERT_EQ(r.exit_code, -1) << r.err;
    EXPECT_EQ(r.cmd.kind, CliCommand::Report);
    EXPECT_EQ(r.cmd.customer_hour, "2026-11-21T15");
    ASSERT_TRUE(r.cmd.report.mac.has_value());
    EXPECT_EQ(format_mac(*r.cmd.report.mac), "02:00:00:00:00:07");
    EXPECT_EQ(r.cmd.config_path, "c.yaml");
    EXPECT_EQ(r.cmd.database, "h.db");
    EXPECT_FALSE(r.cmd.customer_verify);
}

TEST(CliCustomerReport, VerifyFlag) {
    auto r = parse_cli({"peakflow-bpf", "report", "--verify"});
    ASSERT_EQ(r.exit_code, -1) << r.err;
    EXPECT_TRUE(r.cmd.customer_verify);
    EXPECT_TRUE(r.cmd.customer_hour.empty());
}

TEST(CliCustomerReport, CombinationsThatMeanNothingAreUsageErrors) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"peakflow-bpf", "report", "--customer-hour", "2026-11-21T15", "--hours"},
             {"peakflow-bpf", "report", "--customer-hour", "2026-11-21T15", "--verify"},
             {"peakflow-bpf", "report", "--customer-hour", "2026-11-21T15", "--json"},
             {"peakflow-bpf", "report", "--customer-hour", "2026-11-21T15", "--day", "2026-11-21"},
             {"peakflow-bpf", "report", "--verify", "--mac", "02:00:00:00:00:07"},
         }) {
        auto r = parse_cli(args);
        EXPECT_EQ(r.exit_code, 2) << args.back();
        EXPECT_FALSE(r.err.empty());
    }
}

}  // namespace
}  // namespace pf
