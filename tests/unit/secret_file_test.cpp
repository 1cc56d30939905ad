// Every secret of the config also as NAME_file (secret_file.hpp): the same value as the
// inline form, exactly one of the two forms, and a file other local users could read (or
// that someone else owns) refused with a one-line error naming file:line and the key.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "peakflow/app/config.hpp"
#include "peakflow/common/secret_file.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

class SecretFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("pf_secret_file_" + std::to_string(getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
    std::string file(const std::string& name, const std::string& content, mode_t mode = 0600) {
        const std::string p = (dir / name).string();
        std::ofstream(p) << content;
        EXPECT_EQ(::chmod(p.c_str(), mode), 0);
        return p;
    }
    fs::path dir;
};

TEST_F(SecretFileTest, OwnerAndModeAreChecked) {
    EXPECT_EQ(*read_secret_line(file("a", "  s3cret \nsecond line\n")), "s3cret");
    EXPECT_EQ(*read_secret_line(file("b", "s3cret", 0640)), "s3cret");
    EXPECT_EQ(*read_secret_line(file("c", "s3cret", 0400)), "s3cret");
    const std::string open = file("d", "s3cret", 0644);
    EXPECT_EQ(read_secret_line(open).error().message(), open + " is readable by other users (mode 0644): chmod 600 it");
    const std::string group_writes = file("e", "s3cret", 0660);
    EXPECT_EQ(read_secret_line(group_writes).error().message(),
              group_writes + " is writable by its group (mode 0660): chmod 600 it");
    const std::string missing = (dir / "missing").string();
    EXPECT_EQ(read_secret_line(missing).error().message(), "cannot read " + missing + ": No such file or directory");
    EXPECT_EQ(read_secret_line(dir.string()).error().message(), dir.string() + " is not a regular file");
    if (::geteuid() != 0) GTEST_SKIP() << "the owner check needs root to give a file away";
    const std::string theirs = file("f", "s3cret");
    ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
    EXPECT_EQ(read_secret_line(theirs).error().message(),
              theirs + " belongs to user id 65534, not to root or the user running peakflow (id 0): chown it");
}

const std::string kToken = "pfc_" + std::string(64, 'a');

// The config with every secret inline, and the same with every secret in a file.
std::string config(const std::function<std::string(const std::string&, const std::string&)>& secret) {
    return "push:\n  sinks:\n"
           "    - {name: ding, type: dingtalk, " +
           secret("token", "T1") + ", " + secret("secret", "S1") +
           "}\n"
           "    - {name: sc, type: serverchan, " +
           secret("sendkey", "K2") +
           "}\n"
           "    - {name: wc, type: wecom, " +
           secret("key", "K3") +
           "}\n"
           "    - {name: hook, type: webhook, " +
           secret("url", "https://hooks.example/abc/T4") + ", " +
           secret("headers", "{Authorization: \"Bearer H5\", X-Trace: \"\"}") +
           "}\n"
           "    - {name: mail, type: email, " +
           secret("url", "smtps://mail.example:465") + ", from: a@example, to: b@example, username: u, " +
           secret("password", "P6") +
           "}\n"
           "customer_report:\n  enabled: true\n  sink: hook\n  provider_id: P-7\n  isp_id: 3\n  device_type: 12\n  " +
           secret("query_url", "https://api.example/v1/check?token=Q7") + "\n  " +
           secret("query_headers", "{Authorization: \"Bearer Q8\"}") +
           "\n"
           "export:\n  files: {directory: /var/spool/peakflow}\n"
           "  upload: {url: \"sftp://h/in/\", user: carol, " +
           secret("password", "P9") +
           "}\n"
           "collector:\n  url: https://collector.example\n  " +
           secret("token", kToken) + "\n";
}

TEST_F(SecretFileTest, EverySecretAlsoFromAFile) {
    auto inline_cfg =
        parse_config(config([](const std::string& k, const std::string& v) { return k + ": " + v; }), "inline.yaml");
    ASSERT_TRUE(inline_cfg) << inline_cfg.error().message();
    auto from_files = parse_config(
        config([&](const std::string& k, const std::string& v) {
            // Header maps are YAML in their file; a value one line.
            std::string content = v;
            if (v.front() == '{') content = v + "\n";
            return k + "_file: " + file(k + "-" + std::to_string(std::hash<std::string>{}(v)), content + "\n");
        }),
        "files.yaml");
    ASSERT_TRUE(from_files) << from_files.error().message();
    const Config& a = *inline_cfg;
    const Config& b = *from_files;
    ASSERT_EQ(b.push.sinks.size(), 6u);  // and the collector: section's alert sink
    EXPECT_EQ(b.push.sinks[0].token, "T1");
    EXPECT_EQ(b.push.sinks[3].url, "https://hooks.example/abc/T4");
    EXPECT_EQ(b.push.sinks[3].headers,
              (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer H5"}, {"X-Trace", ""}}));
    EXPECT_EQ(b.push.sinks[4].password, "P6");
    for (size_t i = 0; i < a.push.sinks.size(); i++) EXPECT_EQ(a.push.sinks[i], b.push.sinks[i]) << i;
    EXPECT_EQ(b.customer_report.query_url, "https://api.example/v1/check?token=Q7");
    EXPECT_EQ(b.customer_report.query_headers,
              (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer Q8"}}));
    EXPECT_EQ(a.customer_report, b.customer_report);
    EXPECT_EQ(b.export_.upload.password, "P9");
    EXPECT_EQ(b.export_.upload.password_file,
              (dir / ("password-" + std::to_string(std::hash<std::string>{}("P9")))).string());
    EXPECT_EQ(b.collector.token, kToken);
    EXPECT_EQ(a.collector.token, b.collector.token);
    // config check shows the file, never the secret.
    const std::string dump = dump_config(b);
    for (const char* secret : {"T1", "S1", "K2", "K3", "T4", "H5", "P6", "Q7", "Q8", "P9"})
        EXPECT_EQ(dump.find(secret), std::string::npos) << secret << " in:\n" << dump;
}

TEST_F(SecretFileTest, OneFormOnlyAndOpenFilesRefused) {
    const std::string ok = file("ok", "T1\n");
    auto c = parse_config(
        "push:\n  sinks:\n    - name: ding\n      type: dingtalk\n      token: T1\n      token_file: " + ok + "\n",
        "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:6:19: key 'push.sinks[0].token_file': give token or token_file, not both");
    const std::string open = file("open", "Q7\n", 0644);
    c = parse_config("customer_report:\n  query_url_file: " + open + "\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:2:19: key 'customer_report.query_url_file': " + open +
                                       " is readable by other users (mode 0644): chmod 600 it");
    const std::string bad_header = file("h", "{\"Bad Name\": x}\n");
    c = parse_config("customer_report:\n  query_headers_file: " + bad_header + "\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), bad_header +
                                       ":1:2: key 'customer_report.query_headers.Bad Name': not a valid header name "
                                       "(letters, digits and !#$%&'*+-.^_`|~)");
    const std::string token = file("token", kToken + "\n", 0644);
    c = parse_config("collector:\n  url: http://c\n  token_file: " + token + "\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:3:15: key 'collector.token_file': " + token +
                                       " is readable by other users (mode 0644): chmod 600 it");
}

}  // namespace
}  // namespace pf
