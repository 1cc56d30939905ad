// Secrets on disk and on screen (issue 13, item 2): the config file's exposure to other
// local users, and credentials masked in `config check`, the export's errors, its status
// line and `export status`. Expected texts are written out by hand.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "peakflow/app/config.hpp"
#include "peakflow/common/redact.hpp"
#include "peakflow/export/export_service.hpp"
#include "peakflow/export/flow_export.hpp"

namespace fs = std::filesystem;

namespace pf {
namespace {

TEST(MaskUrl, PasswordAndQueryValuesAreMaskedTheRestKept) {
    EXPECT_EQ(mask_url_secrets("ftp://carol:ftp-pw@ftp.example:2121/in/"), "ftp://carol:****@ftp.example:2121/in/");
    EXPECT_EQ(mask_url_secrets("smtp://alice:p@ss:word@mail.example:587"), "smtp://alice:****@mail.example:587");
    EXPECT_EQ(mask_url_secrets("https://api.example/v1/check?token=T0K&x=1&flag&empty=#frag"),
              "https://api.example/v1/check?token=****&x=****&****&empty=#frag");
    EXPECT_EQ(mask_url_secrets("https://bob:pw@api.example?key=K"), "https://bob:****@api.example?key=****");
    // A user without a password, an URL without secrets, no URL at all: unchanged.
    EXPECT_EQ(mask_url_secrets("sftp://dave@sftp.example/x/"), "sftp://dave@sftp.example/x/");
    EXPECT_EQ(mask_url_secrets("ftp://127.0.0.1/in/"), "ftp://127.0.0.1/in/");
    EXPECT_EQ(mask_url_secrets("https://h.example/p#a?b=c"), "https://h.example/p#a?b=c");
    EXPECT_EQ(mask_url_secrets(""), "");
    EXPECT_EQ(mask_url_in("upload a to ftp://u:pw@h/d/ failed; ftp://u:pw@h/d/ again", "ftp://u:pw@h/d/"),
              "upload a to ftp://u:****@h/d/ failed; ftp://u:****@h/d/ again");
    EXPECT_EQ(mask_url_in("nothing to hide", ""), "nothing to hide");
}

TEST(ConfigCheck, CustomerQueryEmailAndUploadCredentialsAreMasked) {
    auto c = parse_config(R"(
push:
  sinks:
    - {name: cust, type: http, url: "http://127.0.0.1/api"}
    - {name: mail, type: email, url: "smtp://alice:s3cr3t@mail.example:587", starttls: true, from: a@b, to: [c@d]}
customer_report:
  enabled: true
  sink: cust
  provider_id: P-7
  isp_id: 3
  device_type: 12
  query_url: "https://bob:qpw@api.example/v1/check?token=QT0KEN&zone=5"
  query_headers: {Authorization: "Bearer HDRT0KEN", X-Trace: ""}
export:
  files: {directory: /var/spool/peakflow}
  upload: {url: "ftp://carol:ftp-pw@ftp.example/in/", user: carol, allow_plaintext_auth: true}
  status: {url: "https://eve:stpw@status.example/post"}
)",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    const std::string dump = dump_config(*c);
    for (const char* secret : {"s3cr3t", "qpw", "QT0KEN", "HDRT0KEN", "ftp-pw", "stpw"})
        EXPECT_EQ(dump.find(secret), std::string::npos) << secret << " in:\n" << dump;
    for (const char* line : {
             "\n      url: smtp://alice:****@mail.example:587\n",
             "\n  query_url: https://bob:****@api.example/v1/check?token=****&zone=****\n",
             "\n  query_headers:\n    Authorization: \"********\"\n    X-Trace: \"\"\n",
             "\n    url: ftp://carol:****@ftp.example/in/\n    user: carol\n",
             "\n    url: https://eve:****@status.example/post\n",
         })
        EXPECT_NE(dump.find(line), std::string::npos) << "no\n" << line << "\nin:\n" << dump;
}

// Nothing listens on port 1: the upload fails at once, and its error (for the log and the
// status line) names the server without the password.
TEST(ExportUpload, TheErrorNamesTheUrlWithoutItsPassword) {
    auto dir = fs::temp_directory_path() / ("pf_secret_up_" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "flows_1.csv.gz") << "x";
    ExportUploadConfig cfg;
    cfg.url = "ftp://carol:ftp-pw@127.0.0.1:1/in/";
    cfg.allow_plaintext_auth = true;
    Uploader up(cfg);
    auto st = up.upload((dir / "flows_1.csv.gz").string(), "flows_1.csv.gz");
    ASSERT_FALSE(st);
    const std::string msg = st.error().message();
    const std::string head = "upload flows_1.csv.gz to ftp://carol:****@127.0.0.1:1/in/: ";
    const std::string tail = " (server not reachable; files stay spooled and are retried)";
    EXPECT_EQ(msg.substr(0, head.size()), head) << msg;
    ASSERT_GE(msg.size(), tail.size());
    EXPECT_EQ(msg.substr(msg.size() - tail.size()), tail) << msg;
    EXPECT_EQ(msg.find("ftp-pw"), std::string::npos) << msg;
    fs::remove_all(dir);
}

TEST(ExportStartLine, TheUploadUrlIsMasked) {
    auto c = parse_config(
        "export:\n  files: {directory: /var/spool/pf}\n  upload: {url: \"ftp://carol:ftp-pw@ftp.example/in/\", "
        "allow_plaintext_auth: true}\n"
        "  ipfix: {collectors: [\"198.18.0.9:4739\"]}\n",
        "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(
        export_start_line(c->export_, {"eth0", "eth1"}),
        "export: flow records from eth0,eth1 every 5 s (active timeout 300 s, idle 60 s), files in /var/spool/pf, "
        "upload to ftp://carol:****@ftp.example/in/, IPFIX to 198.18.0.9:4739");
}

// `export status`: the upload URL masked, and so is a last error an older version wrote
// with the URL in clear.
TEST(ExportStatusCli, TheUploadUrlIsMasked) {
    auto dir = fs::temp_directory_path() / ("pf_secret_st_" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "status.jsonl")
        << "{\"files_written\":1,\"files_uploaded\":0,\"upload_failures\":1,\"records_dropped\":0,\"last_upload\":0,"
           "\"last_error\":\"upload x to ftp://carol:ftp-pw@ftp.example/in/: Access denied: 530\"}\n";
    auto c = parse_config("export:\n  files:\n    directory: " + dir.string() +
                              "\n  upload:\n    url: ftp://carol:ftp-pw@ftp.example/in/\n    allow_plaintext_auth: "
                              "true\n  status:\n    file: " +
                              dir.string() + "/status.jsonl\n",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    std::ostringstream out;
    EXPECT_EQ(run_export_status(c->export_, c->source, out), 0);
    EXPECT_EQ(out.str(), "spool directory: " + dir.string() +
                             "\nfinished files waiting for upload: 0 (0 bytes)\n"
                             "upload: ftp://carol:****@ftp.example/in/\n"
                             "last status (" +
                             dir.string() +
                             "/status.jsonl): files written 1, uploaded 0, failed uploads 1, records dropped 0\n"
                             "last upload: none since the daemon started\n"
                             "last error: upload x to ftp://carol:****@ftp.example/in/: Access denied: 530\n");
    fs::remove_all(dir);
}

// `attach` warns when another local user can read the config: the file readable by others
// and every directory above it searchable by them.
TEST(ConfigReadable, WarnsOnlyWhenOtherUsersCanReachAndReadTheFile) {
    char tmpl[] = "/tmp/pf-secret-cfg.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl, path = dir + "/config.yaml";
    std::ofstream(path) << "push: {}\n";
    ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
    ASSERT_EQ(chmod(path.c_str(), 0644), 0);
    EXPECT_EQ(config_readable_warning(path), "config " + path +
                                                 " is readable by every local user (mode 0644) and may hold tokens "
                                                 "and passwords: chmod o-r " +
                                                 path);
    ASSERT_EQ(chmod(path.c_str(), 0604), 0);
    EXPECT_EQ(config_readable_warning(path), "config " + path +
                                                 " is readable by every local user (mode 0604) and may hold tokens "
                                                 "and passwords: chmod o-r " +
                                                 path);
    ASSERT_EQ(chmod(path.c_str(), 0640), 0);  // as the packages install it
    EXPECT_EQ(config_readable_warning(path), "");
    ASSERT_EQ(chmod(path.c_str(), 0644), 0);
    ASSERT_EQ(chmod(dir.c_str(), 0700), 0);  // others cannot enter the directory
    EXPECT_EQ(config_readable_warning(path), "");
    EXPECT_EQ(config_readable_warning(dir + "/missing.yaml"), "");
    EXPECT_EQ(config_readable_warning(""), "");
    fs::remove_all(dir);
}

}  // namespace
}  // namespace pf
