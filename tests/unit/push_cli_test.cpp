#include <gtest/gtest.h>

#include "peakflow/app/cli.hpp"

namespace pf {
namespace {

TEST(PushCli, HistoryOptions) {
    auto r = parse_cli({"peakflow-bpf", "history", "--failed", "--json", "--database", "/tmp/h.db"});
    ASSERT_EQ(r.exit_code, -1) << r.err;
    EXPECT_EQ(r.cmd.kind, CliCommand::History);
    EXPECT_TRUE(r.cmd.history_failed);
    EXPECT_TRUE(r.cmd.history_json);
    EXPECT_EQ(r.cmd.database, "/tmp/h.db");
}

TEST(PushCli, TestAndMessage) {
    auto r = parse_cli({"peakflow-bpf", "push", "--test", "ding", "-f", "c.yaml"});
    ASSERT_EQ(r.exit_code, -1) << r.err;
    EXPECT_EQ(r.cmd.kind, CliCommand::Push);
    EXPECT_TRUE(r.cmd.push_test);
    EXPECT_EQ(r.cmd.push_sink, "ding");
    EXPECT_EQ(r.cmd.config_path, "c.yaml");
    r = parse_cli({"peakflow-bpf", "push", "--message", "hello", "--title", "T", "--sink", "sc"});
    ASSERT_EQ(r.exit_code, -1) << r.err;
    EXPECT_FALSE(r.cmd.push_test);
    EXPECT_EQ(r.cmd.push_message, "hello");
    EXPECT_EQ(r.cmd.push_title, "T");
    EXPECT_EQ(r.cmd.push_sink, "sc");
}

TEST(PushCli, UsageErrors) {
    auto r = parse_cli({"peakflow-bpf", "push"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "push: give --test or --message TEXT\nRun with --help for more information.\n");
    EXPECT_EQ(parse_cli({"peakflow-bpf", "push", "--test", "--message", "x"}).exit_code, 2);
    EXPECT_EQ(parse_cli({"peakflow-bpf", "push", "--test", "--title", "x"}).exit_code, 2);
    EXPECT_EQ(parse_cli({"peakflow-bpf", "history", "--bogus"}).exit_code, 2);
}

}  // namespace
}  // namespace pf
