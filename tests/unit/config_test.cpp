// The YAML config: every key's parsing, and error messages that point at the exact
// file, line, column and key. Expected positions are counted by hand from the inputs
// (1-based, as editors show them).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "peakflow/app/cli.hpp"
#include "peakflow/app/config.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

std::string parse_error(const std::string& yaml) {
    auto r = parse_config(yaml, "test.yaml");
    if (r.ok()) return "unexpected success";
    return r.error().message();
}

void expect_same(const Config& a, const Config& b) {
    EXPECT_EQ(a.interfaces, b.interfaces);
    EXPECT_EQ(a.xdp_mode, b.xdp_mode);
    EXPECT_EQ(a.drain_interval, b.drain_interval);
    EXPECT_EQ(a.mac_capacity, b.mac_capacity);
    EXPECT_EQ(a.flow_capacity, b.flow_capacity);
    EXPECT_EQ(a.flows, b.flows);
    EXPECT_EQ(a.log_level, b.log_level);
    EXPECT_EQ(a.log_dir, b.log_dir);
    EXPECT_EQ(a.metrics_listen, b.metrics_listen);
    EXPECT_EQ(a.metrics_mac_series, b.metrics_mac_series);
    // timezone, peak_windows, billing_day, database, retention, adjustments
    EXPECT_TRUE(a.accounting == b.accounting);
}

TEST(Config, EmptyFileGivesDefaults) {
    for (const char* text : {"", "\n", "# nothing configured yet\n", "---\n"}) {
        SCOPED_TRACE(text);
        auto r = parse_config(text, "test.yaml");
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_TRUE(r->interfaces.empty());
        EXPECT_EQ(r->xdp_mode, XdpMode::Auto);
        EXPECT_EQ(r->drain_interval, std::chrono::seconds(10));
        EXPECT_EQ(r->mac_capacity, 4096u);
        EXPECT_EQ(r->flow_capacity, 65536u);
        EXPECT_TRUE(r->flows);
        EXPECT_EQ(r->log_level, "info");
        EXPECT_EQ(r->source, "test.yaml");
    }
}

TEST(Config, EveryKeyIsParsed) {
    auto r = parse_config(R"(# peakflow config
interfaces:
  - eth0
  - enp3s0f1
xdp_mode: generic
drain_interval: 30
mac_capacity: 2048
flow_capacity: 131072
flows: false
log_level: debug
)",
                          "test.yaml");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->interfaces, (std::vector<std::string>{"eth0", "enp3s0f1"}));
    EXPECT_EQ(r->xdp_mode, XdpMode::Generic);
    EXPECT_EQ(r->drain_interval, std::chrono::seconds(30));
    EXPECT_EQ(r->mac_capacity, 2048u);
    EXPECT_EQ(r->flow_capacity, 131072u);
    EXPECT_FALSE(r->flows);
    EXPECT_EQ(r->log_level, "debug");
}

TEST(Config, EachXdpModeAndLogLevelIsAccepted) {
    const std::pair<const char*, XdpMode> modes[] = {
        {"auto", XdpMode::Auto}, {"native", XdpMode::Native}, {"generic", XdpMode::Generic}, {"off", XdpMode::Off}};
    for (const auto& [text, mode] : modes) {
        auto r = parse_config(std::string("xdp_mode: ") + text + "\n", "test.yaml");
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->xdp_mode, mode) << text;
    }
    for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
        auto r = parse_config(std::string("log_level: ") + level + "\n", "test.yaml");
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->log_level, level);
    }
}

TEST(Config, FlowStyleInterfaceListAndBoundaryValues) {
    auto r = parse_config(
        "interfaces: [eth0, wlan0]\ndrain_interval: 3600\nmac_capacity: 16\n"
        "flow_capacity: 4194304\n",
        "test.yaml");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->interfaces, (std::vector<std::string>{"eth0", "wlan0"}));
    EXPECT_EQ(r->drain_interval, std::chrono::seconds(3600));
    EXPECT_EQ(r->mac_capacity, 16u);
    EXPECT_EQ(r->flow_capacity, 4194304u);
}

TEST(Config, UnknownKeyNamesItsPosition) {
    EXPECT_EQ(parse_error("interfaces: [eth0]\nxdp_mode: native\nbogus: 1\n"),
              "test.yaml:3:1: key 'bogus': unknown key");
    // Indented under nothing is still top level; column counts the spaces before it.
    EXPECT_EQ(parse_error("  flows: true\n  drain_intervall: 5\n"),
              "test.yaml:2:3: key 'drain_intervall': unknown key");
}

TEST(Config, WrongTypeNamesFileLineColumnAndKey) {
    // "drain_interval: " is 16 characters, so the value starts in column 17.
    EXPECT_EQ(parse_error("flows: true\ndrain_interval: abc\n"),
              "test.yaml:2:17: key 'drain_interval': expected an integer, got 'abc'");
    EXPECT_EQ(parse_error("drain_interval: 2.5\n"),
              "test.yaml:1:17: key 'drain_interval': expected an integer, got '2.5'");
    EXPECT_EQ(parse_error("mac_capacity: [1, 2]\n"), "test.yaml:1:15: key 'mac_capacity': expected an integer");
    EXPECT_EQ(parse_error("flows: maybe\n"), "test.yaml:1:8: key 'flows': expected true or false, got 'maybe'");
    EXPECT_EQ(parse_error("interfaces: eth0\n"),
              "test.yaml:1:13: key 'interfaces': expected a list of interface names");
    EXPECT_EQ(parse_error("xdp_mode: turbo\n"),
              "test.yaml:1:11: key 'xdp_mode': expected auto, native, generic or off, got 'turbo'");
    EXPECT_EQ(parse_error("log_level: verbose\n"),
              "test.yaml:1:12: key 'log_level': expected trace, debug, info, warn or error, got 'verbose'");
}

TEST(Config, InvalidInterfaceNamesPointAtTheItem) {
    // Items of a block list: the name starts after "  - ", column 5.
    EXPECT_EQ(parse_error("interfaces:\n  - eth0\n  - eth/1\n"),
              "test.yaml:3:5: key 'interfaces': 'eth/1' is not a valid interface name");
    // 16 characters: one more than IFNAMSIZ - 1.
    EXPECT_EQ(parse_error("interfaces: [eth0, abcdefghijklmnop]\n"),
              "test.yaml:1:20: key 'interfaces': 'abcdefghijklmnop' is not a valid interface name");
    EXPECT_EQ(parse_error("interfaces: [\"\"]\n"),
              "test.yaml:1:14: key 'interfaces': '' is not a valid interface name");
    EXPECT_EQ(parse_error("interfaces: [[eth0]]\n"), "test.yaml:1:14: key 'interfaces': expected an interface name");
    // What the kernel refuses too (dev_valid_name), and bytes outside printable ASCII: the
    // config fuzz target found a 12-byte name with invalid UTF-8 that `config check` printed
    // longer than 15 bytes (each bad byte re-encoded), so its output no longer loaded.
    EXPECT_EQ(parse_error("interfaces: [\"eth0:1\"]\n"),
              "test.yaml:1:14: key 'interfaces': 'eth0:1' is not a valid interface name");
    EXPECT_EQ(parse_error("interfaces: [\"a b\"]\n"),
              "test.yaml:1:14: key 'interfaces': 'a b' is not a valid interface name");
    EXPECT_EQ(parse_error("interfaces: [\"..\"]\n"),
              "test.yaml:1:14: key 'interfaces': '..' is not a valid interface name");
    EXPECT_EQ(parse_error("interfaces: [\"ve\xff\xfeth1\"]\n"),
              "test.yaml:1:14: key 'interfaces': 've\xff\xfeth1' is not a valid interface name");
    auto c = parse_config("interfaces: [eth0.100, br-lan, wg_0, veth@x]\n", "test.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->interfaces, (std::vector<std::string>{"eth0.100", "br-lan", "wg_0", "veth@x"}));
}

TEST(Config, OutOfRangeValues) {
    EXPECT_EQ(parse_error("drain_interval: 0\n"),
              "test.yaml:1:17: key 'drain_interval': must be between 1 and 3600, got 0");
    EXPECT_EQ(parse_error("drain_interval: 3601\n"),
              "test.yaml:1:17: key 'drain_interval': must be between 1 and 3600, got 3601");
    EXPECT_EQ(parse_error("drain_interval: -5\n"),
              "test.yaml:1:17: key 'drain_interval': must be between 1 and 3600, got -5");
    EXPECT_EQ(parse_error("mac_capacity: 15\n"),
              "test.yaml:1:15: key 'mac_capacity': must be between 16 and 1048576, got 15");
    EXPECT_EQ(parse_error("mac_capacity: 1048577\n"),
              "test.yaml:1:15: key 'mac_capacity': must be between 16 and 1048576, got 1048577");
    EXPECT_EQ(parse_error("flow_capacity: 4194305\n"),
              "test.yaml:1:16: key 'flow_capacity': must be between 16 and 4194304, got 4194305");
    // Beyond uint32_t: must be refused, not truncated into range (2^32 + 100 -> 100).
    EXPECT_EQ(parse_error("mac_capacity: 4294967396\n"),
              "test.yaml:1:15: key 'mac_capacity': must be between 16 and 1048576, got 4294967396");
}

// Roll-up retentions shorter than a billing month would drop days from the monthly bill:
// refused with the position and the minimum; 0 (forever) and the minimum itself accepted.
TEST(Config, RetentionMinimumsCoverABillingMonth) {
    EXPECT_EQ(parse_error("retention:\n  daily_days: 1\n"),
              "test.yaml:2:15: key 'retention.daily_days': must be 0 (forever) or at least 32 (a billing month for "
              "the monthly roll-up)");
    EXPECT_EQ(parse_error("retention: {hourly_days: 5, daily_days: 31}\n"),
              "test.yaml:1:41: key 'retention.daily_days': must be 0 (forever) or at least 32 (a billing month for "
              "the monthly roll-up)");
    EXPECT_EQ(parse_error("retention:\n  five_minute_days: 31\n"),
              "test.yaml:2:21: key 'retention.five_minute_days': must be 0 (forever) or at least 32 (a billing "
              "month for the 95th percentile)");
    auto c = parse_config("retention: {five_minute_days: 32, hourly_days: 1, daily_days: 32, monthly_months: 1}\n",
                          "test.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->accounting.retention, (Retention{32, 1, 32, 1}));
    auto forever = parse_config("retention: {five_minute_days: 0, hourly_days: 0, daily_days: 0}\n", "test.yaml");
    ASSERT_TRUE(forever) << forever.error().message();
    EXPECT_EQ(forever->accounting.retention, (Retention{0, 0, 0, 0}));
}

TEST(Config, YamlSyntaxErrorNamesFileLineColumn) {
    // The second ':' on line 3 sits at index 11: column 12.
    EXPECT_EQ(parse_error("xdp_mode: native\nlog_level: debug\nflows: true: false\n"),
              "test.yaml:3:12: YAML syntax error: illegal map value");
}

TEST(Config, TopLevelMustBeAMapping) {
    EXPECT_EQ(parse_error("- eth0\n- eth1\n"), "test.yaml:1:1: expected a mapping of keys at the top level");
}

TEST(Config, KeyWithoutValuePointsAtTheKey) {
    EXPECT_EQ(parse_error("drain_interval:\nmac_capacity: 64\n"), "test.yaml:1:1: key 'drain_interval': missing value");
}

TEST(Config, DumpConfigRoundTrips) {
    Config c;
    c.interfaces = {"eth0", "enp3s0f1", "eth0.100"};
    c.xdp_mode = XdpMode::Off;
    c.drain_interval = std::chrono::seconds(45);
    c.mac_capacity = 1024;
    c.flow_capacity = 262144;
    c.flows = false;
    c.log_level = "warn";
    std::string text = dump_config(c);
    // What `config check` shows for these keys, one line each.
    for (const char* line : {"interfaces: [eth0, enp3s0f1, eth0.100]\n", "xdp_mode: off\n", "drain_interval: 45\n",
                             "mac_capacity: 1024\n", "flow_capacity: 262144\n", "flows: false\n", "log_level: warn\n"})
        EXPECT_NE(text.find(line), std::string::npos) << "missing " << line << "in:\n" << text;
    auto back = parse_config(text, "dumped.yaml");
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << text;
    expect_same(*back, c);
}

TEST(Config, DumpOfDefaultsRoundTrips) {
    Config defaults;
    auto back = parse_config(dump_config(defaults), "dumped.yaml");
    ASSERT_TRUE(back.ok()) << back.error().message();
    expect_same(*back, defaults);
}

TEST(Config, DumpRoundTripsInterfaceNamesYamlWouldReadAsOtherTypes) {
    // Valid Linux interface names that plain YAML reads as null, bool or int.
    Config c;
    c.interfaces = {"null", "~", "yes", "on", "123"};
    auto back = parse_config(dump_config(c), "dumped.yaml");
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << dump_config(c);
    EXPECT_EQ(back->interfaces, c.interfaces);
}

class ConfigFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pf_config_XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, const std::string& text) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path) << text;
        return path;
    }

    std::string dir_;
};

TEST_F(ConfigFileTest, LoadsAFileAndRemembersItsPath) {
    std::string path = write("peakflow.yaml", "interfaces: [eth1]\ndrain_interval: 5\n");
    auto r = load_config_file(path);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->interfaces, (std::vector<std::string>{"eth1"}));
    EXPECT_EQ(r->drain_interval, std::chrono::seconds(5));
    EXPECT_EQ(r->source, path);
}

TEST_F(ConfigFileTest, ErrorsInAFileNameThatFile) {
    std::string path = write("bad.yaml", "flows: true\ndrain_interval: abc\n");
    auto r = load_config_file(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), path + ":2:17: key 'drain_interval': expected an integer, got 'abc'");
}

TEST_F(ConfigFileTest, MissingFileIsAnErrorNamingThePath) {
    std::string path = dir_ + "/does-not-exist.yaml";
    auto r = load_config_file(path);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "cannot read config file " + path + ": No such file or directory");
    // An explicit --config must not fall back to defaults either.
    auto e = load_config(path);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().message(), "cannot read config file " + path + ": No such file or directory");
}

TEST_F(ConfigFileTest, DirectoryIsNotAnEmptyConfig) {
    auto r = load_config_file(dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "cannot read config file " + dir_ + ": Is a directory");
}

// The accounting, metrics and log keys from YAML, each value as written; then through
// `config check` (the real command): what it prints is the config again, and loads back
// into the same values.
TEST_F(ConfigFileTest, AccountingMetricsAndLogKeysRoundTripThroughConfigCheck) {
    const std::string path = write("full.yaml", R"(timezone: Asia/Shanghai
peak_windows: ["08:00-12:00", "18:00-24:00"]
billing_day: 15
database: /var/lib/peakflow/test.db
log_dir: /var/log/peakflow-test
metrics_listen: "[::1]:9978"
metrics_mac_series: 0
retention: {five_minute_days: 40, hourly_days: 100, daily_days: 400, monthly_months: 24}
adjustments:
  - {direction: tx, factor: 1.05}
  - {iface: eth0, mac: "02:00:00:00:00:01", direction: rx, offset_bytes: -1000}
)");
    auto c = load_config_file(path);
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->accounting.timezone, "Asia/Shanghai");
    ASSERT_EQ(c->accounting.peak_windows.size(), 2u);
    EXPECT_EQ(format_peak_window(c->accounting.peak_windows[0]), "08:00-12:00");
    EXPECT_EQ(format_peak_window(c->accounting.peak_windows[1]), "18:00-24:00");
    EXPECT_EQ(c->accounting.billing_day, 15);
    EXPECT_EQ(c->accounting.database, "/var/lib/peakflow/test.db");
    EXPECT_EQ(c->log_dir, "/var/log/peakflow-test");
    EXPECT_EQ(c->metrics_listen, "[::1]:9978");
    EXPECT_EQ(c->metrics_mac_series, 0u);
    EXPECT_EQ(c->accounting.retention, (Retention{40, 100, 400, 24}));
    EXPECT_EQ(c->accounting.adjustments,
              (std::vector<Adjustment>{Adjustment{"", std::nullopt, "tx", 1.05, 0},
                                       Adjustment{"eth0", MacAddr{0x02, 0, 0, 0, 0, 0x01}, "rx", 1.0, -1000}}));

    std::string argv0 = "peakflow-bpf", cmd = "config", sub = "check", file = path;
    std::vector<char*> argv{argv0.data(), cmd.data(), sub.data(), file.data()};
    ::testing::internal::CaptureStdout();
    const int rc = run_cli(static_cast<int>(argv.size()), argv.data());
    const std::string out = ::testing::internal::GetCapturedStdout();
    ASSERT_EQ(rc, 0) << out;
    EXPECT_EQ(out, "# " + path + ": OK\n" + dump_config(*c));
    for (const char* line : {"billing_day: 15\n", "database: /var/lib/peakflow/test.db\n",
                             "log_dir: /var/log/peakflow-test\n", "metrics_mac_series: 0\n", "  five_minute_days: 40\n",
                             "  hourly_days: 100\n", "  daily_days: 400\n", "  monthly_months: 24\n"})
        EXPECT_NE(out.find(line), std::string::npos) << "missing " << line << "in:\n" << out;
    auto back = load_config_file(write("checked.yaml", out));
    ASSERT_TRUE(back.ok()) << back.error().message() << "\n" << out;
    expect_same(*back, *c);
}

}  // namespace
}  // namespace pf
