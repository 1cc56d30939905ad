// export pipe: nfacctd's CSV reader, the processor_* keys of pmacct.conf, and the pipe itself
// (stdin -> rolling gzip files) on a real pipe and a real directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "peakflow/export/export_pipe.hpp"
#include "peakflow/export/flow_export.hpp"
#include "peakflow/export/nfacctd_csv.hpp"
#include "peakflow/export/pmacct_conf.hpp"

using namespace pf;

namespace {

// As nfacctd 1.7.7 wrote it (aggregate: src_mac, dst_mac, src_host, dst_host, src_port,
// dst_port, proto, timestamp_start; print_output: csv).
const std::string kHeader = "SRC_MAC,DST_MAC,SRC_IP,DST_IP,SRC_PORT,DST_PORT,PROTOCOL,TIMESTAMP_START,PACKETS,BYTES";
const std::string kRow1 =
    "02:70:66:00:00:0b,02:70:66:00:00:0a,198.18.0.2,198.18.0.1,40000,5001,udp,"
    "2026-12-06 08:43:06.646000,1,1000";
const std::string kRow2 =
    "02:70:66:00:00:0a,02:70:66:00:00:0b,2001:db8::1,2001:db8::2,5001,40000,17,"
    "2026-12-06 08:43:07.000000,3,4242";

struct Read {
    std::vector<std::string> rows;
    std::string error;  // "" when all was taken
};

Read read_all(const std::string& input, size_t chunk = 1 << 20) {
    NfacctdCsvReader r;
    Read out;
    for (size_t i = 0; i < input.size(); i += chunk) {
        auto st = r.feed(std::string_view(input).substr(i, chunk), out.rows);
        if (!st) {
            out.error = st.error().message();
            return out;
        }
    }
    if (auto st = r.finish(out.rows); !st) out.error = st.error().message();
    return out;
}

}  // namespace

TEST(NfacctdCsv, RowsAreKeptByteForByteWhateverTheChunks) {
    const std::string in = kHeader + "\n" + kRow1 + "\n" + kRow2 + "\n";
    for (size_t chunk : {size_t(1), size_t(7), size_t(64), in.size()}) {
        Read got = read_all(in, chunk);
        EXPECT_EQ(got.error, "") << chunk;
        EXPECT_EQ(got.rows, (std::vector<std::string>{kRow1, kRow2})) << chunk;
    }
    NfacctdCsvReader r;
    std::vector<std::string> rows;
    ASSERT_TRUE(r.feed(in, rows));
    EXPECT_EQ(r.header(), kHeader);
    EXPECT_EQ(r.lines(), 3u);
}

TEST(NfacctdCsv, MarkersBlankLinesCrLfAndARepeatedHeaderAreSkipped) {
    const std::string in = "--START (5484)--\n" + kHeader + "\r\n" + kRow1 + "\r\n\n--END (5484)--\n--END--\n" +
                           kHeader + "\n" + kRow2;  // the last line has no newline
    NfacctdCsvReader r;
    std::vector<std::string> rows;
    ASSERT_TRUE(r.feed(in, rows));
    EXPECT_EQ(rows, std::vector<std::string>{kRow1});
    EXPECT_EQ(r.pending_bytes(), kRow2.size());
    ASSERT_TRUE(r.finish(rows));
    EXPECT_EQ(rows, (std::vector<std::string>{kRow1, kRow2}));
    EXPECT_EQ(r.header(), kHeader);
    EXPECT_EQ(r.lines(), 8u);
    EXPECT_EQ(r.skipped(), 5u);  // START, blank, END, END, header again
}

TEST(NfacctdCsv, ABadRowStopsWithItsLineNumberAndTheRowsBeforeIt) {
    const std::string bad_packets =
        "02:70:66:00:00:0b,02:70:66:00:00:0a,198.18.0.2,198.18.0.1,40000,5001,udp,2026-12-06 08:43:06,x1,1000";
    Read got = read_all("--START (1)--\n" + kHeader + "\n" + kRow1 + "\n" + bad_packets + "\n" + kRow2 + "\n");
    EXPECT_EQ(got.rows, std::vector<std::string>{kRow1});
    EXPECT_EQ(got.error, "line 4: column 9 (PACKETS): expected a count (0-18446744073709551615), got 'x1'");

    EXPECT_EQ(read_all(kHeader + "\n" + kRow1 + ",7\n").error, "line 2: 11 fields, the header has 10");
    EXPECT_EQ(read_all(kHeader + "\n" + kRow1 + "\nSRC_MAC,PACKETS\n").error,
              "line 3: a second header with other columns (2); one export pipe reads one nfacctd's output");
    EXPECT_EQ(read_all(kHeader + "\n02:70:66:00:00:0b,02:70:66:00:00:0a,198.18.0.999,198.18.0.1,1,2,udp,0,1,1\n").error,
              "line 2: column 3 (SRC_IP): expected an IPv4 or IPv6 address, got '198.18.0.999'");
    EXPECT_EQ(
        read_all(kHeader + "\n02:70:66:00:00:0b,02:70:66:00:00:0a,198.18.0.2,198.18.0.1,65536,2,udp,0,1,1\n").error,
        "line 2: column 5 (SRC_PORT): expected a port (0-65535), got '65536'");
    EXPECT_EQ(read_all(kHeader + "\n02:70:66:00:00:0b,02:70:66:00:00:0a,198.18.0.2,198.18.0.1,1,2,udp,0,1,"
                                 "18446744073709551616\n")
                  .error,
              "line 2: column 10 (BYTES): expected a count (0-18446744073709551615), got '18446744073709551616'");
    EXPECT_EQ(read_all(kHeader + "\n" + kRow1 + "\x01\n").error, "line 2: control character 0x01 at byte 107");
}

TEST(NfacctdCsv, TheFirstLineMustBeAHeader) {
    // A row first: nothing to check it against.
    EXPECT_EQ(read_all(kRow1 + "\n").error,
              "line 1: expected nfacctd's CSV header first (print_output: csv), but column 1 is "
              "'02:70:66:00:00:0b', not a column name");
    // print_output: formatted (columns padded with spaces).
    EXPECT_EQ(read_all("SRC_MAC            DST_MAC            PACKETS\n").error,
              "line 1: expected nfacctd's CSV header first (print_output: csv), but column 1 is "
              "'SRC_MAC            DST_MAC            PA...', not a column name");
    EXPECT_EQ(read_all("SRC_IP,PACKETS,SRC_IP\n").error, "line 1: the header names column SRC_IP twice");
}

TEST(NfacctdCsv, UnknownColumnsAreTextAndQuotedFieldsFollowRfc4180) {
    Read got = read_all("LABEL,MY_PRIMITIVE,PACKETS\n\"a,b\",\"say \"\"hi\"\"\",5\n,,0\n");
    EXPECT_EQ(got.error, "");
    EXPECT_EQ(got.rows, (std::vector<std::string>{"\"a,b\",\"say \"\"hi\"\"\",5", ",,0"}));
    std::vector<std::string> f;
    EXPECT_EQ(split_csv_line("\"a,b\",\"say \"\"hi\"\"\",5", f, 10), "");
    EXPECT_EQ(f, (std::vector<std::string>{"a,b", "say \"hi\"", "5"}));
    EXPECT_EQ(split_csv_line("a,,", f, 10), "");
    EXPECT_EQ(f, (std::vector<std::string>{"a", "", ""}));
    EXPECT_EQ(split_csv_line("\"open,1", f, 10), "the quote at byte 1 is never closed");
    EXPECT_EQ(split_csv_line("\"a\"b,1", f, 10), "text after the closing quote at byte 4");
    EXPECT_EQ(split_csv_line("a\"b,1", f, 10), "a quote inside an unquoted field at byte 2");
    EXPECT_EQ(split_csv_line("1,2,3", f, 2), "more than 2 fields");
}

TEST(NfacctdCsv, TimesAsNfacctdPrintsThem) {
    const std::string hdr = "TIMESTAMP_END,PACKETS\n";
    for (const char* ok : {"2026-12-06 08:43:06.646000", "2026-12-06 08:43:06", "2026-12-06T08:43:06.646000+08:00",
                           "2026-12-06T08:43:06Z", "0000-00-00 00:00:00", "1796000000.646000", "1796000000"})
        EXPECT_EQ(read_all(hdr + ok + ",1\n").error, "") << ok;
    for (const char* bad : {"2026-13-06 08:43:06", "2026-12-06 24:00:00", "2026-12-06", "yesterday",
                            "2026-12-06 08:43:06.", "2026-12-06 08:43:06+8"})
        EXPECT_NE(read_all(hdr + bad + ",1\n").error, "") << bad;
    EXPECT_EQ(NfacctdCsvReader::column_type("PROTOCOL"), NfacctdCsvReader::Type::Protocol);
    EXPECT_EQ(NfacctdCsvReader::column_type("SOMETHING_NEW"), NfacctdCsvReader::Type::Text);
}

TEST(NfacctdCsv, LinesAreCappedNotBuffered) {
    NfacctdCsvReader r;
    std::vector<std::string> rows;
    ASSERT_TRUE(r.feed(kHeader + "\n", rows));
    const std::string big(1024, '9');
    Status st = Ok{};
    size_t fed = 0;
    while (st && fed < 10 * NfacctdCsvReader::kMaxLine) {
        st = r.feed(big, rows);
        fed += big.size();
    }
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(), "line 2: longer than 65536 bytes; not a row nfacctd writes");
    EXPECT_LE(r.pending_bytes(), NfacctdCsvReader::kMaxLine);
    EXPECT_LE(fed, NfacctdCsvReader::kMaxLine + big.size());
    // The error stays.
    EXPECT_FALSE(r.feed(kRow1 + "\n", rows));
    EXPECT_TRUE(rows.empty());
    // A header of more than kMaxColumns columns.
    std::string wide;
    for (size_t i = 0; i <= NfacctdCsvReader::kMaxColumns; i++) wide += (i ? ",C" : "C") + std::to_string(i);
    EXPECT_EQ(read_all(wide + "\n").error,
              "line 1: not nfacctd's CSV header (print_output: csv): more than 512 fields");
}

// ---- pmacct.conf ----

TEST(PmacctConf, TheProcessorDocumentsExampleWithItsMeanings) {
    // The example of the processor's README, as is.
    const std::string conf = R"(# pmacct 配置（略）
pcap_interface: eth0

# processor 配置（不要注释，否则不会生效）
processor_ftp_host: 10.0.0.10
processor_ftp_port: 21
processor_ftp_user: ftpuser
processor_ftp_pass: ftppass
processor_ftp_dir: /data/areaA

processor_rotate_interval_sec: 600
processor_rotate_size_mb: 100
processor_file_prefix: flows_

processor_upload_interval_sec: 600
processor_timezone: Asia/Shanghai

processor_status_report_enabled: false
processor_status_report_url: http://127.0.0.1:8080/api/uploadStatus
processor_status_report_interval_sec: 60
processor_status_report_uuid:
processor_status_report_file_path:
processor_status_report_file_max_mb: 10
processor_status_report_file_backups: 0
)";
    ExportConfig c;
    c.status.file = "/var/log/peakflow/export-status.jsonl";  // the config's, switched off by enabled: false
    ASSERT_TRUE(apply_pmacct_conf(conf, "pmacct.conf", c));
    EXPECT_EQ(c.upload.url, "ftp://10.0.0.10:21/data/areaA/");
    EXPECT_EQ(c.upload.user, "ftpuser");
    EXPECT_EQ(c.upload.password, "ftppass");
    EXPECT_TRUE(c.upload.allow_plaintext_auth);  // the processor's plain FTP, as it was
    EXPECT_EQ(c.files.rotate_interval, std::chrono::seconds(600));
    EXPECT_EQ(c.files.rotate_size, 104857600u);  // 100 MB of 1048576 bytes
    EXPECT_EQ(c.files.prefix, "flows_");
    EXPECT_EQ(c.upload.interval, std::chrono::seconds(600));
    EXPECT_EQ(c.files.timezone, "Asia/Shanghai");
    EXPECT_EQ(c.status.url, "");
    EXPECT_EQ(c.status.file, "");
}

TEST(PmacctConf, StatusReportsWhenEnabledAndKeysTheFileDoesNotSetKeepTheConfigs) {
    ExportConfig c;
    c.files.directory = "/srv/flows";
    c.upload.interval = std::chrono::seconds(30);
    ASSERT_TRUE(
        apply_pmacct_conf("! nfacctd comment\nPROCESSOR_FTP_HOST: 2001:db8::10\nprocessor_ftp_dir: /in box\n"
                          "processor_status_report_enabled: true\n"
                          "processor_status_report_url: https://status.example/api/uploadStatus\n"
                          "processor_status_report_interval_sec: 15\n"
                          "processor_status_report_uuid: 3f1c\n"
                          "processor_status_report_file_path: /var/log/status.jsonl\n"
                          "processor_status_report_file_max_mb: 10\n"
                          "processor_status_report_file_backups: 3\n"
                          "#processor_rotate_size_mb: 1\n",
                          "p.conf", c));
    EXPECT_EQ(c.upload.url, "ftp://[2001:db8::10]:21/in%20box/");
    EXPECT_EQ(c.upload.user, "");
    EXPECT_EQ(c.upload.interval, std::chrono::seconds(30));
    EXPECT_EQ(c.files.directory, "/srv/flows");
    EXPECT_EQ(c.files.rotate_size, 100ull * 1000 * 1000);  // commented out: the default stays
    EXPECT_EQ(c.status.url, "https://status.example/api/uploadStatus");
    EXPECT_EQ(c.status.interval, std::chrono::seconds(15));
    EXPECT_EQ(c.status.instance_id, "3f1c");
    EXPECT_EQ(c.status.file, "/var/log/status.jsonl");
    EXPECT_EQ(c.status.file_max_size, 10485760u);
    EXPECT_EQ(c.status.file_backups, 3u);
}

TEST(PmacctConf, ErrorsNameTheLineAndTheKeyButNeverThePassword) {
    auto err = [](const std::string& text) {
        ExportConfig c;
        auto st = apply_pmacct_conf(text, "pmacct.conf", c);
        return st ? std::string() : st.error().message();
    };
    EXPECT_EQ(err("aggregate: src_host\nprocessor_ftp_hots: 10.0.0.1\n"),
              "pmacct.conf:2: unknown key 'processor_ftp_hots' (the processor's keys: processor_ftp_*, "
              "processor_rotate_*, processor_file_prefix, processor_upload_interval_sec, processor_timezone, "
              "processor_status_report_*)");
    EXPECT_EQ(err("processor_rotate_size_mb: 1\n\nprocessor_rotate_size_mb: 2\n"),
              "pmacct.conf:3: processor_rotate_size_mb: given twice (line 1 and line 3)");
    EXPECT_EQ(err("processor_rotate_interval_sec: 10m\n"),
              "pmacct.conf:1: processor_rotate_interval_sec: expected seconds (1-86400), got '10m'");
    EXPECT_EQ(err("processor_rotate_size_mb: 0\n"),
              "pmacct.conf:1: processor_rotate_size_mb: expected a size in MB (1-1048576), got '0'");
    EXPECT_EQ(err("processor_ftp_host: h\nprocessor_ftp_port: 70000\n"),
              "pmacct.conf:2: processor_ftp_port: expected a port (1-65535), got '70000'");
    EXPECT_EQ(err("processor_ftp_pass: s3cret-pw\n"), "pmacct.conf:1: processor_ftp_pass: needs processor_ftp_host");
    EXPECT_EQ(err("processor_ftp_host: ftp://h/\nprocessor_ftp_pass: s3cret-pw\n"),
              "pmacct.conf:1: processor_ftp_host: expected a host name or address, got 'ftp://h/'");
    EXPECT_EQ(err("processor_timezone: Mars/Base\n").rfind("pmacct.conf:1: processor_timezone: ", 0), 0u);
    EXPECT_EQ(err("processor_file_prefix: a/b\n"),
              "pmacct.conf:1: processor_file_prefix: must not contain '/', got 'a/b'");
    EXPECT_EQ(err("processor_status_report_enabled: maybe\n"),
              "pmacct.conf:1: processor_status_report_enabled: expected true or false, got 'maybe'");
    EXPECT_EQ(err("processor_status_report_enabled: true\n"),
              "pmacct.conf:1: processor_status_report_enabled: true, but neither processor_status_report_url nor "
              "processor_status_report_file_path is set");
    ExportConfig c;
    auto st = load_pmacct_conf("/nonexistent/pmacct.conf", c);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(), "read pmacct config /nonexistent/pmacct.conf: No such file or directory");
}

// ---- the pipe ----

namespace {

std::string gunzip(const std::string& path) {
    gzFile g = gzopen(path.c_str(), "rb");
    std::string out;
    char buf[4096];
    int n;
    while ((n = gzread(g, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    gzclose(g);
    return out;
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
}

class PipeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir =
            std::filesystem::temp_directory_path() / ("pf_pipe_test_" + std::to_string(getpid()) + "_" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir);
        o.cfg.files.directory = dir.string();
        o.cfg.files.timezone = "UTC";
        o.cfg.status.file = dir.string() + "/status.jsonl";
        o.cfg.status.instance_id = "test";
        o.clock = [] { return int64_t(1700000000); };  // 2023-11-14 22:13:20 UTC
        ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);
        o.in_fd = in[0];
    }
    void TearDown() override {
        if (in[0] >= 0) close(in[0]);
        if (in[1] >= 0) close(in[1]);
        std::filesystem::remove_all(dir);
    }
    void send(const std::string& s) { ASSERT_EQ(write(in[1], s.data(), s.size()), ssize_t(s.size())); }
    void end_input() {
        close(in[1]);
        in[1] = -1;
    }
    std::filesystem::path dir;
    ExportPipeOptions o;
    int in[2] = {-1, -1};
};

}  // namespace

TEST_F(PipeTest, EndOfInputFinishesTheFileWithNfacctdsHeaderAndRows) {
    send("--START (1)--\n" + kHeader + "\n" + kRow1 + "\n" + kRow2 + "\n--END (1)--\n");
    end_input();
    ASSERT_TRUE(run_export_pipe(o));
    EXPECT_EQ(files_in(dir.string()), (std::vector<std::string>{"flows_20231114_221320_000.csv.gz", "status.jsonl"}));
    EXPECT_EQ(gunzip(dir.string() + "/flows_20231114_221320_000.csv.gz"), kHeader + "\n" + kRow1 + "\n" + kRow2 + "\n");
    std::ifstream st(o.cfg.status.file);
    std::string line;
    std::getline(st, line);
    EXPECT_NE(line.find("\"files_written\":1,"), std::string::npos) << line;
    EXPECT_NE(line.find("\"records_exported\":2,"), std::string::npos) << line;
}

TEST_F(PipeTest, ABadRowStopsWithTheLineNumberAndKeepsTheRowsBefore) {
    o.cfg.files.rotate_size = 1024;  // the header and 9 rows pass 1024 bytes: the 10th starts a file
    std::string in_text = kHeader + "\n";
    for (int i = 0; i < 10; i++) in_text += kRow1 + "\n";
    send(in_text + "1,2,3\n" + kRow2 + "\n");
    end_input();
    auto st = run_export_pipe(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(), "export pipe: stdin line 12: 3 fields, the header has 10");
    auto names = files_in(dir.string());
    ASSERT_EQ(names, (std::vector<std::string>{"flows_20231114_221320_000.csv.gz", "flows_20231114_221320_001.csv.gz",
                                               "status.jsonl"}));
    std::string want;
    for (int i = 0; i < 10; i++) want += kRow1 + "\n";
    // Each file starts with the header; together they hold the 10 good rows, nothing else.
    EXPECT_EQ(gunzip(dir.string() + "/" + names[1]).rfind(kHeader + "\n", 0), 0u);
    std::string joined;
    for (const auto& n : {names[0], names[1]}) joined += gunzip(dir.string() + "/" + n).substr(kHeader.size() + 1);
    EXPECT_EQ(joined, want);
}

TEST_F(PipeTest, AStopSignalFinishesWhatWasRead) {
    int stop[2];
    ASSERT_EQ(pipe2(stop, O_CLOEXEC), 0);
    o.stop_fd = stop[0];
    int reads = 0;
    o.read_stop = [&]() -> std::string {
        char c;
        if (read(stop[0], &c, 1) != 1) return "";
        return ++reads == 1 ? "" : "SIGTERM";  // the first is ignored (as SIGHUP is)
    };
    send(kHeader + "\n" + kRow1 + "\n" + kRow2.substr(0, 20));  // stdin stays open
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        EXPECT_EQ(write(stop[1], "h", 1), 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        EXPECT_EQ(write(stop[1], "t", 1), 1);
    });
    auto st = run_export_pipe(o);
    t.join();
    close(stop[0]);
    close(stop[1]);
    ASSERT_TRUE(st);
    EXPECT_EQ(reads, 2);
    EXPECT_EQ(gunzip(dir.string() + "/flows_20231114_221320_000.csv.gz"), kHeader + "\n" + kRow1 + "\n");
}

TEST_F(PipeTest, AnotherWriterOnTheDirectoryIsRefused) {
    RollingCsvWriter other(o.cfg.files, o.clock);
    ASSERT_TRUE(other.open_dir());
    end_input();
    auto st = run_export_pipe(o);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(),
              "export directory " + dir.string() +
                  " is in use by another peakflow-bpf (the daemon's export or an export pipe); give each its own "
                  "directory");
}

TEST_F(PipeTest, TheStatusFileRotatesPastItsSizeKeepingItsBackups) {
    // processor_status_report_file_max_mb / _file_backups: FILE -> FILE.1 -> FILE.2, the oldest dropped.
    o.cfg.status.file_max_size = 1024;
    o.cfg.status.file_backups = 2;
    std::filesystem::create_directories(dir);
    const std::string big(2000, 'x');
    std::ofstream(o.cfg.status.file) << big << "\n";
    std::ofstream(o.cfg.status.file + ".1") << "older\n";
    std::ofstream(o.cfg.status.file + ".2") << "oldest\n";
    end_input();
    ASSERT_TRUE(run_export_pipe(o));
    auto content = [](const std::string& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(content(o.cfg.status.file + ".2"), "older\n");
    EXPECT_EQ(content(o.cfg.status.file + ".1"), big + "\n");
    EXPECT_EQ(content(o.cfg.status.file).rfind("{\"bytes_uploaded\":0,", 0), 0u) << content(o.cfg.status.file);
    EXPECT_FALSE(std::filesystem::exists(o.cfg.status.file + ".3"));
    // No backups: the file starts anew.
    o.cfg.status.file_backups = 0;
    std::ofstream(o.cfg.status.file, std::ios::app) << big << "\n";
    close(in[0]);
    ASSERT_EQ(pipe2(in, O_CLOEXEC), 0);  // a new, empty input
    o.in_fd = in[0];
    end_input();
    ASSERT_TRUE(run_export_pipe(o));
    EXPECT_EQ(content(o.cfg.status.file + ".1"), big + "\n");
    const std::string now = content(o.cfg.status.file);
    EXPECT_EQ(std::count(now.begin(), now.end(), '\n'), 1) << now;
}
