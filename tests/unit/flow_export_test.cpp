#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "peakflow/app/cli.hpp"
#include "peakflow/app/config.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/export/export_service.hpp"
#include "peakflow/export/flow_export.hpp"
#include "test_log_capture.hpp"

namespace pf {
namespace {

constexpr uint64_t kSec = 1000000000ull;

pf_flow_key v4_key(uint8_t last_src, uint16_t sport, uint16_t dport, uint8_t proto = 6) {
    pf_flow_key k{};
    k.src_addr[10] = k.src_addr[11] = 0xff;
    k.dst_addr[10] = k.dst_addr[11] = 0xff;
    uint8_t s[4] = {198, 18, 0, last_src}, d[4] = {198, 18, 0, 2};
    std::memcpy(k.src_addr + 12, s, 4);
    std::memcpy(k.dst_addr + 12, d, 4);
    uint8_t sm[6] = {2, 0, 0, 0, 0, 1}, dm[6] = {2, 0, 0, 0, 0, 2};
    std::memcpy(k.src_mac, sm, 6);
    std::memcpy(k.dst_mac, dm, 6);
    k.src_port = sport;
    k.dst_port = dport;
    k.proto = proto;
    k.dir = PF_DIR_RX;
    k.family = 4;
    return k;
}

FlowRow row(const pf_flow_key& k, uint64_t pk, uint64_t by, uint64_t first_s, uint64_t last_s) {
    FlowRow r;
    r.key = k;
    r.packets = pk;
    r.bytes = by;
    r.first_seen_ns = first_s * kSec;
    r.entry_id = first_s;  // the table stamps entries in jiffies
    r.last_seen_ns = last_s * kSec;
    r.tcp_flags = 0x12;
    return r;
}

// ---- delta and timeouts ----

TEST(FlowTracker, ActiveThenIdleDeltasAddUpExactly) {
    FlowTracker t("eth0", 3, std::chrono::seconds(300), std::chrono::seconds(60));
    auto k = v4_key(1, 40000, 443);
    const int64_t off = 1700000000ll * int64_t(kSec);  // realtime - monotonic

    auto r = t.scan({row(k, 5, 500, 1, 10)}, 20 * kSec, off);
    EXPECT_TRUE(r.records.empty());
    EXPECT_TRUE(r.expired.empty());
    EXPECT_EQ(t.tracked(), 1u);

    // Active timeout: 301 s after the first packet, a record for everything so far.
    r = t.scan({row(k, 8, 800, 1, 300)}, 301 * kSec, off);
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].packets, 8u);
    EXPECT_EQ(r.records[0].bytes, 800u);
    EXPECT_EQ(r.records[0].start_ms, 1700000001000);
    EXPECT_EQ(r.records[0].end_ms, 1700000300000);
    EXPECT_EQ(r.records[0].iface, "eth0");
    EXPECT_EQ(r.records[0].ifindex, 3u);
    EXPECT_EQ(r.records[0].tcp_flags, 0x12);
    EXPECT_TRUE(r.expired.empty());

    // Still active, timer restarted at 301: nothing.
    r = t.scan({row(k, 10, 1000, 1, 305)}, 310 * kSec, off);
    EXPECT_TRUE(r.records.empty());

    // Idle 60 s after the last packet: the entry is to be taken out of the map; its final
    // delta comes from the value removed.
    r = t.scan({row(k, 10, 1000, 1, 305)}, 365 * kSec, off);
    EXPECT_TRUE(r.records.empty());
    ASSERT_EQ(r.expired.size(), 1u);
    EXPECT_TRUE(FlowKeyEq{}(r.expired[0], k));
    EXPECT_EQ(t.tracked(), 0u);
    auto fin = t.finish({row(k, 10, 1000, 1, 305)}, off);
    ASSERT_EQ(fin.size(), 1u);
    EXPECT_EQ(fin[0].packets, 2u);
    EXPECT_EQ(fin[0].bytes, 200u);
    EXPECT_EQ(fin[0].start_ms, 1700000301000);  // after the previous export
    EXPECT_EQ(fin[0].end_ms, 1700000305000);
}

TEST(FlowTracker, FinalRecordHasThePacketsThatRacedTheIdleExpiry) {
    FlowTracker t("eth0", 1, std::chrono::seconds(10), std::chrono::seconds(60));
    auto k = v4_key(1, 1, 2);
    auto r = t.scan({row(k, 3, 300, 1, 2)}, 11 * kSec, 0);  // active timeout: 3 exported
    ASSERT_EQ(r.records.size(), 1u);
    r = t.scan({row(k, 5, 500, 1, 20)}, 80 * kSec, 0);  // idle: 5 read
    ASSERT_EQ(r.expired.size(), 1u);
    // Between the read and the removal 4 more packets came: the removed value has 9.
    auto fin = t.finish({row(k, 9, 900, 1, 80)}, 0);
    ASSERT_EQ(fin.size(), 1u);
    EXPECT_EQ(fin[0].packets, 6u);
    EXPECT_EQ(fin[0].bytes, 600u);
    EXPECT_EQ(fin[0].end_ms, 80000);
}

TEST(FlowTracker, IdleWithoutDeltaOnlyExpires) {
    FlowTracker t("eth0", 1, std::chrono::seconds(10), std::chrono::seconds(60));
    auto k = v4_key(1, 1, 2);
    auto r = t.scan({row(k, 3, 300, 1, 2)}, 11 * kSec, 0);  // active timeout: all 3
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].packets, 3u);
    r = t.scan({row(k, 3, 300, 1, 2)}, 62 * kSec, 0);  // idle, nothing new
    EXPECT_TRUE(r.records.empty());
    EXPECT_EQ(r.expired.size(), 1u);
    EXPECT_TRUE(t.finish({row(k, 3, 300, 1, 2)}, 0).empty());
}

TEST(FlowTracker, FlushEmitsPendingDeltasAndExpiresEverything) {
    FlowTracker t("eth0", 1, std::chrono::seconds(300), std::chrono::seconds(60));
    auto a = v4_key(1, 1000, 80), b = v4_key(3, 2000, 80);
    auto r = t.scan({row(a, 4, 400, 1, 5), row(b, 7, 700, 2, 6)}, 10 * kSec, 0);
    EXPECT_TRUE(r.records.empty());
    r = t.scan({row(a, 4, 400, 1, 5), row(b, 9, 900, 2, 8)}, 11 * kSec, 0, true);
    EXPECT_TRUE(r.records.empty());
    // Shutdown: the entries leave the map, so the next start does not export them again.
    EXPECT_EQ(r.expired.size(), 2u);
    EXPECT_EQ(t.tracked(), 0u);
    auto fin = t.finish({row(a, 4, 400, 1, 5), row(b, 9, 900, 2, 8)}, 0);
    ASSERT_EQ(fin.size(), 2u);
    EXPECT_EQ(fin[0].packets + fin[1].packets, 13u);
    EXPECT_EQ(fin[0].bytes + fin[1].bytes, 1300u);
}

TEST(FlowTracker, RecreatedEntryStartsOverAndVanishedEntryIsForgotten) {
    FlowTracker t("eth0", 1, std::chrono::seconds(5), std::chrono::seconds(60));
    auto k = v4_key(1, 1, 2);
    auto r = t.scan({row(k, 10, 1000, 1, 5)}, 6 * kSec, 0);
    ASSERT_EQ(r.records.size(), 1u);
    // The entry was deleted and created again (fewer packets than already exported).
    r = t.scan({row(k, 2, 120, 20, 21)}, 26 * kSec, 0);
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].packets, 2u);
    EXPECT_EQ(r.records[0].bytes, 120u);
    r = t.scan({}, 27 * kSec, 0);
    EXPECT_EQ(t.tracked(), 0u);
}

TEST(FlowTracker, EntryRecreatedWithMoreCountsIsToldApartByItsFirstPacket) {
    FlowTracker t("eth0", 1, std::chrono::seconds(5), std::chrono::seconds(60));
    auto k = v4_key(1, 1, 2);
    ASSERT_EQ(t.scan({row(k, 10, 1000, 1, 5)}, 6 * kSec, 0).records.size(), 1u);
    // Same key, more packets than exported, but a later first packet: a new entry.
    auto r = t.scan({row(k, 12, 1200, 30, 31)}, 40 * kSec, 0);
    ASSERT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.records[0].packets, 12u);
    EXPECT_EQ(r.records[0].bytes, 1200u);
}

TEST(FlowTracker, SnapshotRestoredContinuesTheDeltas) {
    FlowTracker t("eth0", 1, std::chrono::seconds(5), std::chrono::seconds(60));
    auto a = v4_key(1, 1, 2), b = v4_key(2, 3, 4);
    ASSERT_EQ(t.scan({row(a, 10, 1000, 1, 5), row(b, 4, 400, 2, 5)}, 7 * kSec, 0).records.size(), 2u);
    // A new tracker (the daemon restarted) with the saved snapshot.
    FlowTracker u("eth0", 1, std::chrono::seconds(5), std::chrono::seconds(60));
    u.restore(t.snapshot());
    EXPECT_EQ(u.tracked(), 2u);
    auto r = u.scan({row(a, 15, 1500, 1, 12), row(b, 4, 400, 2, 5)}, 12 * kSec, 0);
    ASSERT_EQ(r.records.size(), 1u);  // b: nothing new
    EXPECT_EQ(r.records[0].packets, 5u);
    EXPECT_EQ(r.records[0].bytes, 500u);
    EXPECT_EQ(r.records[0].start_ms, 7000);  // after the export before the restart
}

TEST(FlowState, SavedAndLoadedExactly) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_state_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "state").string();
    auto none = load_flow_state(path);
    ASSERT_TRUE(none) << none.error().message();
    EXPECT_TRUE(none->ifaces.empty());

    FlowStateFile f;
    f.boot_id = "6f1e0c2a-1111-2222-3333-444455556666";
    auto k = v4_key(7, 40000, 443, 17);
    k.vlan[0] = 10;
    f.ifaces.push_back({"eth0", 42, {FlowSnapshot{k, 123456789012ull, 99, 5, 6, 7}}});
    f.ifaces.push_back({"eth1", 43, {}});
    ASSERT_TRUE(save_flow_state(path, f));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    auto back = load_flow_state(path);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(back->boot_id, f.boot_id);
    ASSERT_EQ(back->ifaces.size(), 2u);
    EXPECT_EQ(back->ifaces[0].name, "eth0");
    EXPECT_EQ(back->ifaces[0].flow_map_id, 42u);
    ASSERT_EQ(back->ifaces[0].flows.size(), 1u);
    EXPECT_EQ(back->ifaces[0].flows[0], f.ifaces[0].flows[0]);
    EXPECT_EQ(back->ifaces[1].flow_map_id, 43u);
    EXPECT_TRUE(back->ifaces[1].flows.empty());

    // A truncated file is an error, not a silently partial state.
    std::string text;
    {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    std::ofstream(path, std::ios::trunc) << text.substr(0, text.size() / 2);
    auto trunc = load_flow_state(path);
    ASSERT_FALSE(trunc);
    EXPECT_NE(trunc.error().message().find("read export state"), std::string::npos) << trunc.error().message();
    std::filesystem::remove_all(dir);
}

using pf::testing::LogCapture;

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A count the file cannot back (-1 reads as SIZE_MAX; more than any map holds) is a bad
// file, not an allocation: reserving it threw out of the export's start (exit 70).
TEST(FlowState, ACountTheFileCannotHoldIsAnError) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_state_count_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "state").string();
    for (const std::string count : {"18446744073709551615", "-1", "4194305", "1e9"}) {
        const std::string iface = "iface eth-0 42 " + count;
        std::ofstream(path, std::ios::trunc) << "peakflow-export-state 2\nboot b\n" << iface << "\n";
        auto st = load_flow_state(path);
        ASSERT_FALSE(st) << count;
        EXPECT_EQ(st.error().message(), "read export state (bad count: " + iface + ") " + path + ": Invalid argument");
    }
    // The largest map's count is still read (its lines missing here: truncated).
    std::ofstream(path, std::ios::trunc) << "peakflow-export-state 2\nboot b\niface eth-0 42 4194304\n";
    auto st = load_flow_state(path);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(), "read export state (truncated) " + path + ": Invalid argument");
    std::filesystem::remove_all(dir);
}

// At start, a damaged state file is set aside as .bad with one warning, and the export
// starts from an empty state; the next start finds no file and says nothing.
TEST(FlowState, ADamagedFileAtStartIsSetAsideWithOneWarning) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_state_bad_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / ".peakflow-export-state").string();
    const std::string text = "peakflow-export-state 2\nboot b\niface eth0 42 18446744073709551615\n";
    std::ofstream(path, std::ios::trunc) << text;
    {
        LogCapture log;
        FlowStateFile st = load_flow_state_at_start(path);
        EXPECT_EQ(st.boot_id, "");
        EXPECT_TRUE(st.ifaces.empty());
        EXPECT_EQ(log.text(), "warning export: read export state (bad count: iface eth0 42 18446744073709551615) " +
                                  path + ": Invalid argument; kept as " + path +
                                  ".bad; every flow entry in the maps is exported from zero\n");
    }
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_EQ(read_text(path + ".bad"), text);
    {
        LogCapture log;
        FlowStateFile st = load_flow_state_at_start(path);
        EXPECT_TRUE(st.ifaces.empty());
        EXPECT_EQ(log.text(), "");
    }
    // A good file is loaded as it is.
    FlowStateFile f;
    f.boot_id = "b";
    f.ifaces.push_back({"eth0", 42, {FlowSnapshot{v4_key(7, 40000, 443, 17), 1, 2, 3, 4, 5}}});
    ASSERT_TRUE(save_flow_state(path, f));
    FlowStateFile back = load_flow_state_at_start(path);
    ASSERT_EQ(back.ifaces.size(), 1u);
    EXPECT_EQ(back.ifaces[0].flows, f.ifaces[0].flows);
    std::filesystem::remove_all(dir);
}

// ---- status ----

// An FTP server's answer with a byte that is not UTF-8 ends up in last_error: the status
// line replaces it (U+FFFD) instead of throwing out of the upload thread.
TEST(ExportStatusJson, InvalidUtf8IsReplacedNotThrown) {
    ExportStatus s;
    s.instance_id = "m1";
    s.time = 1700000000;
    s.files_written = 3;
    s.queue_files = 1;
    s.queue_bytes = 700;
    s.last_error = "upload flows_1.csv.gz: 550 Datei \xfc\xe4 nicht gefunden";
    std::string j;
    ASSERT_NO_THROW(j = export_status_json(s));
    EXPECT_EQ(j,
              "{\"bytes_uploaded\":0,\"files_uploaded\":0,\"files_written\":3,\"flow_map_full\":0,"
              "\"instance_id\":\"m1\",\"ipfix_send_errors\":0,\"last_error\":\"upload flows_1.csv.gz: 550 Datei "
              "\xef\xbf\xbd\xef\xbf\xbd nicht gefunden\",\"last_upload\":0,\"queue_bytes\":700,\"queue_files\":1,"
              "\"records_dropped\":0,\"records_exported\":0,\"time\":1700000000,\"upload_failures\":0}");
}

// ---- CSV ----

FlowRecord sample_v4() {
    FlowRecord r;
    r.key = v4_key(1, 40000, 5201);
    r.key.vlan[0] = 100;
    r.iface = "veth0";
    r.ifindex = 7;
    r.start_ms = 1700000000123;
    r.end_ms = 1700000004567;
    r.packets = 100;
    r.bytes = 123456;
    r.tcp_flags = 0x1b;
    return r;
}

FlowRecord sample_v6() {
    FlowRecord r;
    r.key.family = 6;
    r.key.dir = PF_DIR_TX;
    r.key.proto = 58;
    r.key.dst_port = 128 << 8;  // echo request
    uint8_t s[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t d[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    std::memcpy(r.key.src_addr, s, 16);
    std::memcpy(r.key.dst_addr, d, 16);
    uint8_t sm[6] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    std::memcpy(r.key.src_mac, sm, 6);
    r.iface = "eth1";
    r.ifindex = 2;
    r.start_ms = 0;
    r.end_ms = 999;
    r.packets = 1;
    r.bytes = 104;
    return r;
}

const std::string kRowV4 =
    "2023-11-14 22:13:20.123,2023-11-14 22:13:24.567,veth0,rx,02:00:00:00:00:01,02:00:00:00:00:02,198.18.0.1,"
    "198.18.0.2,6,40000,5201,100,0,100,123456,27\n";
const std::string kRowV6 =
    "1970-01-01 00:00:00.000,1970-01-01 00:00:00.999,eth1,tx,aa:bb:cc:dd:ee:ff,00:00:00:00:00:00,2001:db8::1,"
    "2001:db8::2,58,0,32768,0,0,1,104,0\n";

TEST(FlowCsv, RowsAreExact) {
    std::string s;
    append_csv_row(s, sample_v4());
    EXPECT_EQ(s, kRowV4);
    s.clear();
    append_csv_row(s, sample_v6());
    EXPECT_EQ(s, kRowV6);
    EXPECT_EQ(std::string(kFlowCsvHeader),
              "start_time,end_time,interface,direction,src_mac,dst_mac,src_ip,dst_ip,protocol,src_port,dst_port,"
              "vlan,inner_vlan,packets,bytes,tcp_flags\n");
}

// ---- rolling files ----

std::string gunzip(const std::string& path) {
    gzFile g = gzopen(path.c_str(), "rb");
    EXPECT_NE(g, nullptr) << path;
    if (!g) return {};
    std::string out;
    char buf[4096];
    int n;
    while ((n = gzread(g, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    EXPECT_EQ(n, 0);
    EXPECT_EQ(gzclose(g), Z_OK);
    return out;
}

std::vector<std::string> names(const std::string& dir) {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
}

class RollingTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir =
            std::filesystem::temp_directory_path() / ("pf_export_test_" + std::to_string(getpid()) + "_" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir);
        cfg.directory = dir.string() + "/spool";
        cfg.timezone = "UTC";
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    std::filesystem::path dir;
    ExportFilesConfig cfg;
    int64_t now = 1700000000;  // 2023-11-14 22:13:20 UTC
    int64_t mono = 0;          // ms on the writer's monotonic clock
};

TEST_F(RollingTest, RotatesByTimeRenamingPartToCsvGz) {
    RollingCsvWriter w(
        cfg, [this] { return now; }, [this] { return mono; });
    ASSERT_TRUE(w.open_dir());
    EXPECT_TRUE(names(cfg.directory).empty());  // no file before there is a record
    ASSERT_TRUE(w.write({sample_v4(), sample_v6()}));
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231114_221320_000.part"});
    now += 599;
    mono += 599000;
    ASSERT_TRUE(w.tick());
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231114_221320_000.part"});
    now += 1;
    mono += 1000;
    ASSERT_TRUE(w.tick());
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231114_221320_000.csv.gz"});
    EXPECT_EQ(gunzip(cfg.directory + "/flows_20231114_221320_000.csv.gz"), kFlowCsvHeader + kRowV4 + kRowV6);
    // The next record opens the next file, with the next index.
    ASSERT_TRUE(w.write({sample_v6()}));
    ASSERT_TRUE(w.close());
    EXPECT_EQ(names(cfg.directory),
              (std::vector<std::string>{"flows_20231114_221320_000.csv.gz", "flows_20231114_222320_001.csv.gz"}));
    EXPECT_EQ(gunzip(cfg.directory + "/flows_20231114_222320_001.csv.gz"), kFlowCsvHeader + kRowV6);
    EXPECT_EQ(w.files_written(), 2u);
    EXPECT_EQ(w.records_written(), 3u);
}

// The wall clock stepped back an hour (NTP, an operator) stalls no rotation: the interval is
// timed on the monotonic clock; file names keep the wall time each file was opened at.
TEST_F(RollingTest, AWallClockSteppedBackStallsNoRotation) {
    RollingCsvWriter w(
        cfg, [this] { return now; }, [this] { return mono; });
    ASSERT_TRUE(w.open_dir());
    ASSERT_TRUE(w.write({sample_v4()}));
    now -= 3600;
    mono += 599999;
    ASSERT_TRUE(w.tick());
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231114_221320_000.part"});
    mono += 1;
    ASSERT_TRUE(w.tick());
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231114_221320_000.csv.gz"});
    ASSERT_TRUE(w.write({sample_v6()}));
    ASSERT_TRUE(w.close());
    EXPECT_EQ(names(cfg.directory),
              (std::vector<std::string>{"flows_20231114_211320_001.csv.gz", "flows_20231114_221320_000.csv.gz"}));
}

TEST_F(RollingTest, RotatesBySizeAndKeepsEveryRow) {
    cfg.rotate_size = 1024;
    cfg.prefix = "x_";
    RollingCsvWriter w(cfg, [this] { return now; });
    ASSERT_TRUE(w.open_dir());
    std::vector<FlowRecord> recs(20, sample_v4());
    ASSERT_TRUE(w.write(recs));
    ASSERT_TRUE(w.close());
    auto n = names(cfg.directory);
    // Header 137 bytes, rows 148: a file takes 6 rows (137 + 6 * 148 = 1025, the row that
    // passes 1024 included), so 20 rows make 6 + 6 + 6 + 2.
    ASSERT_EQ(kRowV4.size(), 148u);
    ASSERT_EQ(std::string(kFlowCsvHeader).size(), 137u);
    EXPECT_EQ(n, (std::vector<std::string>{"x_20231114_221320_000.csv.gz", "x_20231114_221320_001.csv.gz",
                                           "x_20231114_221320_002.csv.gz", "x_20231114_221320_003.csv.gz"}));
    std::string six;
    for (int i = 0; i < 6; i++) six += kRowV4;
    for (size_t i = 0; i < 3; i++) EXPECT_EQ(gunzip(cfg.directory + "/" + n[i]), kFlowCsvHeader + six) << n[i];
    EXPECT_EQ(gunzip(cfg.directory + "/" + n[3]), kFlowCsvHeader + kRowV4 + kRowV4);
    EXPECT_EQ(w.files_written(), 4u);
}

TEST_F(RollingTest, ShutdownFinishesTheOpenFileAndNamesUseTheZone) {
    cfg.timezone = "Asia/Shanghai";
    {
        RollingCsvWriter w(cfg, [this] { return now; });
        ASSERT_TRUE(w.open_dir());
        ASSERT_TRUE(w.write({sample_v4()}));
        EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231115_061320_000.part"});
    }  // destroyed = shutdown
    EXPECT_EQ(names(cfg.directory), std::vector<std::string>{"flows_20231115_061320_000.csv.gz"});
    EXPECT_EQ(gunzip(cfg.directory + "/flows_20231115_061320_000.csv.gz"), kFlowCsvHeader + kRowV4);
    auto spool = list_spool(cfg.directory, "flows_");
    ASSERT_EQ(spool.size(), 1u);
    EXPECT_EQ(spool[0].size, std::filesystem::file_size(cfg.directory + "/flows_20231115_061320_000.csv.gz"));
}

TEST_F(RollingTest, SameSecondRestartTakesTheNextIndex) {
    {
        RollingCsvWriter w(cfg, [this] { return now; });
        ASSERT_TRUE(w.open_dir());
        ASSERT_TRUE(w.write({sample_v4()}));
    }
    RollingCsvWriter w2(cfg, [this] { return now; });
    ASSERT_TRUE(w2.open_dir());
    ASSERT_TRUE(w2.write({sample_v6()}));
    ASSERT_TRUE(w2.close());
    EXPECT_EQ(names(cfg.directory),
              (std::vector<std::string>{"flows_20231114_221320_000.csv.gz", "flows_20231114_221320_001.csv.gz"}));
}

TEST_F(RollingTest, UnwritableDirectoryIsAnError) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "file") << "x";
    cfg.directory = (dir / "file" / "sub").string();
    RollingCsvWriter w(cfg, [this] { return now; });
    auto st = w.open_dir();
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("create export directory"), std::string::npos);
}

// ---- IPFIX ----

std::string hex(const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) h += d[c >> 4], h += d[c & 15];
    return h;
}

// Templates are refreshed every template_refresh seconds of the monotonic clock: the wall
// clock stepped back an hour does not stall them; the export time stays the wall clock's.
TEST(Ipfix, AWallClockSteppedBackStallsNoTemplateRefresh) {
    Fd rx(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(rx.valid());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(rx.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t alen = sizeof a;
    ASSERT_EQ(getsockname(rx.get(), reinterpret_cast<sockaddr*>(&a), &alen), 0);
    ExportIpfixConfig c;
    c.collectors = {"127.0.0.1:" + std::to_string(ntohs(a.sin_port))};
    c.template_refresh = std::chrono::seconds(60);
    auto s = IpfixSender::create(c);
    ASSERT_TRUE(s) << s.error().message();
    const int64_t t = 1700000000;
    EXPECT_EQ(s->send({}, t, 5000), 0u);  // the first call sends the templates
    EXPECT_EQ(s->messages_sent(), 1u);
    EXPECT_EQ(s->send({}, t - 3600, 5000 + 59999), 0u);  // wall clock an hour back, 59.999 s on
    EXPECT_EQ(s->messages_sent(), 1u);
    EXPECT_EQ(s->send({}, t - 3599, 5000 + 60000), 0u);  // a minute on: templates again
    EXPECT_EQ(s->messages_sent(), 2u);
    // What arrived: two messages, each opening with the template set (id 2), their export
    // times the wall clock's.
    std::vector<uint32_t> times;
    char buf[2048];
    for (ssize_t n; (n = recv(rx.get(), buf, sizeof buf, MSG_DONTWAIT)) > 0;) {
        ASSERT_GE(n, 18);
        EXPECT_EQ((uint8_t(buf[16]) << 8) | uint8_t(buf[17]), 2) << "not a template set";
        times.push_back((uint32_t(uint8_t(buf[4])) << 24) | (uint32_t(uint8_t(buf[5])) << 16) |
                        (uint32_t(uint8_t(buf[6])) << 8) | uint8_t(buf[7]));
    }
    EXPECT_EQ(times, (std::vector<uint32_t>{uint32_t(t), uint32_t(t - 3599)}));
}

TEST(Ipfix, OneIPv4RecordIsByteExact) {
    IpfixEncoder e(42, 1500);
    auto m = e.encode({sample_v4()}, 1700000000, false);
    ASSERT_EQ(m.size(), 1u);
    // Hand-computed: header (version 10, length 90, export time, sequence 0, domain 42), data
    // set 256 (length 74), one 70-byte record in template order.
    EXPECT_EQ(hex(m[0]),
              "000a005a6553f100000000000000002a"
              "0100004a020000000001020000000002"
              "c6120001c61200029c40145106001b00"
              "0000000001e240000000000000006400"
              "00018bcfe5687b0000018bcfe579d700"
              "00000007000000000064");
    EXPECT_EQ(e.sequence(), 1u);
}

TEST(Ipfix, TemplatesAndSequenceNumbers) {
    IpfixEncoder e(1, 1500);
    auto m = e.encode({sample_v6()}, 1, true);
    ASSERT_EQ(m.size(), 1u);
    // Header 16 + template set 4 + 2 * (4 + 16 * 4) + data set 4 + 94.
    EXPECT_EQ(m[0].size(), 16u + 4 + 136 + 4 + 94);
    const std::string tset = hex(m[0].substr(16, 8));
    EXPECT_EQ(tset, "0002008c01000010");  // set 2, length 140, template 256, 16 fields
    // Template 257's field list holds sourceIPv6Address (27) and destinationIPv6Address (28), 16 bytes.
    const std::string t257 = hex(m[0].substr(16 + 4 + 68, 4 + 16 * 4));
    EXPECT_EQ(t257.substr(0, 8), "01010010");
    EXPECT_EQ(t257.substr(8 + 2 * 8, 16), "001b0010001c0010");
    EXPECT_EQ(hex(m[0].substr(156, 4)), "01010062");  // data set 257, length 98
    // The next message's sequence number counts the data record sent before it.
    auto m2 = e.encode({sample_v4()}, 2, false);
    EXPECT_EQ(hex(m2[0].substr(8, 4)), "00000001");
}

TEST(Ipfix, MessagesStayWithinTheMtu) {
    IpfixEncoder e(0, 576);  // 528 bytes of IPFIX: 16 + 4 + 7 * 70 = 510 fits, 8 records do not
    std::vector<FlowRecord> recs(20, sample_v4());
    auto m = e.encode(recs, 5, false);
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].size(), 510u);
    EXPECT_EQ(m[1].size(), 510u);
    EXPECT_EQ(m[2].size(), 16u + 4 + 6 * 70);
    EXPECT_EQ(hex(m[1].substr(8, 4)), "00000007");
    EXPECT_EQ(hex(m[2].substr(8, 4)), "0000000e");
    EXPECT_EQ(e.sequence(), 20u);
}

// ---- config ----

TEST(ExportConfig, ParsesKeysAndDefaults) {
    auto c = parse_config(
        "export:\n"
        "  active_timeout: 120\n"
        "  files:\n"
        "    prefix: area_a_\n"
        "    directory: /tmp/x\n"
        "    rotate_size: 2048\n"
        "  upload:\n"
        "    url: ftp://127.0.0.1:2121/in\n"
        "    user: u\n"
        "    password: p\n"
        "    allow_plaintext_auth: true\n"
        "  ipfix:\n"
        "    collectors: [\"127.0.0.1:4739\"]\n",
        "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE(c->export_.enabled);
    EXPECT_EQ(c->export_.active_timeout.count(), 120);
    EXPECT_EQ(c->export_.idle_timeout.count(), 60);
    EXPECT_EQ(c->export_.files.prefix, "area_a_");
    EXPECT_EQ(c->export_.files.rotate_size, 2048u);
    EXPECT_EQ(c->export_.files.rotate_interval.count(), 600);
    EXPECT_EQ(c->export_.upload.url, "ftp://127.0.0.1:2121/in/");
    EXPECT_EQ(c->export_.upload.interval.count(), 600);
    EXPECT_EQ(c->export_.upload.timeout.count(), 600);
    EXPECT_TRUE(c->export_.upload.passive);
    EXPECT_EQ(c->export_.ipfix.collectors, std::vector<std::string>{"127.0.0.1:4739"});
    EXPECT_EQ(c->export_.ipfix.mtu, 1500u);
    EXPECT_FALSE(parse_config("interfaces: []\n", "t.yaml")->export_.enabled);
}

TEST(ExportConfig, ErrorsNamePositionAndKey) {
    auto c = parse_config("export:\n  files:\n    rotate_sise: 5\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:3:5: key 'export.files.rotate_sise': unknown key");
    c = parse_config("export:\n  upload:\n    url: http://x/\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:10: key 'export.upload.url': expected an ftp://, ftps:// or sftp:// URL, got 'http://x/'");
    c = parse_config("export:\n  ipfix:\n    collectors: [\"nohost\"]\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("expected \"host:port\""), std::string::npos);
    c = parse_config("export:\n  upload:\n    url: ftp://x/\n    timeout: 0\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:4:14: key 'export.upload.timeout': must be between 1 and 86400, got 0");
}

TEST(ExportConfig, SftpHostKeyAsSshKeygenPrintsIt) {
    const std::string fp = "Y65YRuY+U4yXI/naNopX0V8mAJ32OpYMY7yWlQlBxFs";
    auto c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    host_key_sha256: \"SHA256:" + fp + "\"\n",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->export_.upload.host_key_sha256, fp);  // without the prefix, as libcurl takes it
    c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    host_key_sha256: \"" + fp + "=\"\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->export_.upload.host_key_sha256, fp);  // base64 padding dropped
    c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    host_key_sha256: \"MD5:ab:cd\"\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:4:22: key 'export.upload.host_key_sha256': expected a fingerprint as ssh-keygen -l -E sha256 "
              "prints it (SHA256: and 43 base64 characters)");
    c = parse_config("export:\n  upload:\n    url: ftp://h/d/\n    known_hosts: /root/.ssh/known_hosts\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:4:18: key 'export.upload': host_key_sha256, known_hosts and trust_first_host_key are for "
              "sftp:// URLs");
}

TEST(ExportConfig, SftpTrustFirstHostKeyOnlyWithoutAKey) {
    auto c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    trust_first_host_key: true\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE(c->export_.upload.trust_first_host_key);
    EXPECT_NE(dump_config(*c).find("    trust_first_host_key: true\n"), std::string::npos) << dump_config(*c);
    // Where the key goes: beside the history database.
    ExportConfig e = c->export_;
    ASSERT_TRUE(prepare_export_upload(e, "/var/lib/peakflow/peakflow.db"));
    EXPECT_EQ(e.upload.host_key_store, "/var/lib/peakflow/sftp_host_keys");
    c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    known_hosts: /k\n    trust_first_host_key: true\n",
                     "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:5:27: key 'export.upload.trust_first_host_key': only without host_key_sha256 and known_hosts "
              "(they already name the key)");
    c = parse_config("export:\n  upload:\n    url: ftp://h/d/\n    trust_first_host_key: true\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:4:27: key 'export.upload': host_key_sha256, known_hosts and trust_first_host_key are for "
              "sftp:// URLs");
}

// An FTP password never crosses the network in clear unless the config says so.
TEST(ExportConfig, FtpPasswordNeedsTlsOrAnOptIn) {
    const std::string refused =
        "ftp:// without tls: required would send the FTP password in clear: set tls: required, use ftps://, or set "
        "allow_plaintext_auth: true";
    auto c = parse_config("export:\n  upload:\n    url: ftp://h/d/\n    user: u\n    password: pw\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:5:15: key 'export.upload.password': " + refused);
    const std::string pw =
        (std::filesystem::temp_directory_path() / ("pf_ftp_pw_" + std::to_string(getpid()))).string();
    std::ofstream(pw) << "pw\n";
    std::filesystem::permissions(pw, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    c = parse_config("export:\n  upload:\n    url: ftp://h/d/\n    password_file: " + pw + "\n", "t.yaml");
    std::filesystem::remove(pw);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:4:20: key 'export.upload.password_file': " + refused);
    c = parse_config("export:\n  upload:\n    url: ftp://u:pw@h/d/\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:3:10: key 'export.upload.url': " + refused);
    EXPECT_EQ(c.error().message().find(":pw@"), std::string::npos);
    // No password (anonymous), TLS, ftps:// or the explicit opt-in: accepted.
    for (const char* ok :
         {"url: ftp://anonymous@h/d/", "url: ftp://h/d/\n    password: pw\n    tls: required",
          "url: ftps://h/d/\n    password: pw", "url: ftp://h/d/\n    password: pw\n    allow_plaintext_auth: true"}) {
        c = parse_config(std::string("export:\n  upload:\n    ") + ok + "\n", "t.yaml");
        EXPECT_TRUE(c) << ok << ": " << c.error().message();
    }
    c = parse_config(
        "export:\n  upload:\n    url: ftp://h/d/\n    tls: required\n    ca_file: /etc/pf/ca.pem\n"
        "    pinned_public_key: \"sha256//AAAA\"\n",
        "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE(c->export_.upload.tls_required);
    EXPECT_EQ(c->export_.upload.ca_file, "/etc/pf/ca.pem");
    EXPECT_EQ(c->export_.upload.pinned_public_key, "sha256//AAAA");
    EXPECT_NE(
        dump_config(*c).find("    tls: required\n    ca_file: /etc/pf/ca.pem\n    pinned_public_key: sha256//AAAA\n"),
        std::string::npos)
        << dump_config(*c);
    c = parse_config("export:\n  upload:\n    url: ftp://h/d/\n    tls: yes\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:4:10: key 'export.upload.tls': expected required or none, got 'yes'");
    c = parse_config("export:\n  upload:\n    url: sftp://h/d/\n    tls: required\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:4:10: key 'export.upload': tls, ca_file, pinned_public_key and allow_plaintext_auth are for FTP");
}

// Built without the config's check, the uploader refuses too (before connecting).
TEST(ExportUpload, FtpPasswordInClearIsRefused) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_ftp_clear_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "flows_1.csv.gz") << "data";
    ExportUploadConfig u;
    u.url = "ftp://ftp.invalid/in/";
    u.password = "secret";
    auto st = Uploader(u).upload((dir / "flows_1.csv.gz").string(), "flows_1.csv.gz");
    ASSERT_FALSE(st);
    EXPECT_EQ(
        st.error().message(),
        "upload flows_1.csv.gz to ftp://ftp.invalid/in/: refused: ftp:// without tls: required would send the FTP "
        "password in clear: set tls: required, use ftps://, or set allow_plaintext_auth: true");
    std::filesystem::remove_all(dir);
}

// No host key configured: refused before any connection (the address is not even
// resolved), the file stays where it is.
TEST(ExportUpload, SftpWithoutAHostKeyIsRefused) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_sftp_nokey_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "flows_1.csv.gz") << "data";
    ExportUploadConfig u;
    u.url = "sftp://user:secret@sftp.invalid/in/";
    u.password = "secret";
    auto st = Uploader(u).upload((dir / "flows_1.csv.gz").string(), "flows_1.csv.gz");
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message(),
              "upload flows_1.csv.gz to sftp://user:****@sftp.invalid/in/: refused: the SFTP server's host key is not "
              "configured (set export.upload.host_key_sha256 or known_hosts, or trust_first_host_key: true; the "
              "files stay spooled)");
    auto r = Uploader(u).run_cycle(dir.string(), "flows_");
    EXPECT_EQ(r.failed, 1u);
    EXPECT_EQ(r.uploaded, 0u);
    EXPECT_TRUE(std::filesystem::exists(dir / "flows_1.csv.gz"));
    std::filesystem::remove_all(dir);
}

// ---- CLI ----

TEST(ExportCli, StatusParsesAndReportsTheSpool) {
    auto p = parse_cli({"peakflow-bpf", "export", "status", "-f", "/etc/peakflow/x.yaml"});
    EXPECT_EQ(p.exit_code, -1) << p.err;
    EXPECT_EQ(p.cmd.kind, CliCommand::ExportStatus);
    EXPECT_EQ(p.cmd.config_path, "/etc/peakflow/x.yaml");
    EXPECT_EQ(parse_cli({"peakflow-bpf", "export"}).exit_code, 2);

    auto dir = std::filesystem::temp_directory_path() / ("pf_export_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "flows_20231114_221320_001.csv.gz") << "12345";
    std::ofstream(dir / "flows_20231114_221320_000.csv.gz") << "123";
    std::ofstream(dir / "flows_20231114_223320_002.part") << "1";
    std::ofstream(dir / "status.jsonl") << "{\"files_written\":3,\"files_uploaded\":1,\"upload_failures\":2,"
                                           "\"records_dropped\":0,\"last_upload\":1700000000,"
                                           "\"last_error\":\"upload x: Access denied: 530\"}\n";
    auto c = parse_config("export:\n  files:\n    directory: " + dir.string() +
                              "\n  upload:\n    url: ftp://127.0.0.1/in/\n  status:\n    file: " + dir.string() +
                              "/status.jsonl\n",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    std::ostringstream out;
    EXPECT_EQ(run_export_status(c->export_, c->source, out), 0);
    EXPECT_EQ(out.str(), "spool directory: " + dir.string() +
                             "\nfinished files waiting for upload: 2 (8 bytes)\n"
                             "  oldest: flows_20231114_221320_000.csv.gz\n"
                             "  newest: flows_20231114_221320_001.csv.gz\n"
                             "open file: flows_20231114_223320_002.part\n"
                             "upload: ftp://127.0.0.1/in/\n"
                             "last status (" +
                             dir.string() +
                             "/status.jsonl): files written 3, uploaded 1, failed "
                             "uploads 2, records dropped 0\n"
                             "last upload: 2023-11-14 22:13:20 UTC\n"
                             "last error: upload x: Access denied: 530\n");
    std::filesystem::remove_all(dir);
    EXPECT_THROW(run_export_status(parse_config("", "t.yaml")->export_, "t.yaml", out), FatalError);
}

// An FTP server that answers the login and STOR like any other, then reads the file's
// bytes at 20 a second over a data connection with a small receive buffer: faster than the
// 1 B/s low-speed limit, so only a total timeout ends the transfer. Every socket is its own
// and closed with it.
class TrickleFtp {
  public:
    TrickleFtp() : ctl_(listen_on(0)), data_(listen_on(1024)) {
        th_ = std::thread([this] { serve(); });
    }
    ~TrickleFtp() {
        stop_ = true;
        th_.join();
        for (int fd : {ctl_, data_}) ::close(fd);
    }
    int port() const { return port_of(ctl_); }
    uint64_t received() const { return received_.load(); }

  private:
    static int listen_on(int rcvbuf) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // accepted sockets inherit it
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) ADD_FAILURE();
        return fd;
    }
    static int port_of(int fd) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        return ntohs(a.sin_port);
    }
    // Waits for fd to be readable, up to 100 ms; false when stopping.
    bool ready(int fd) {
        pollfd p{fd, POLLIN, 0};
        while (!stop_)
            if (::poll(&p, 1, 100) > 0) return true;
        return false;
    }
    void say(int fd, const std::string& line) {
        const std::string l = line + "\r\n";
        (void)!::write(fd, l.data(), l.size());
    }
    void serve() {
        if (!ready(ctl_)) return;
        const int c = ::accept4(ctl_, nullptr, nullptr, SOCK_CLOEXEC);
        say(c, "220 trickle");
        std::string buf;
        int d = -1;
        while (ready(c)) {
            char chunk[512];
            const ssize_t n = ::read(c, chunk, sizeof chunk);
            if (n <= 0) break;
            buf.append(chunk, static_cast<size_t>(n));
            for (size_t eol; (eol = buf.find("\r\n")) != std::string::npos; buf.erase(0, eol + 2)) {
                const std::string cmd = buf.substr(0, 4);
                if (cmd == "USER")
                    say(c, "331 password");
                else if (cmd == "PASS")
                    say(c, "230 in");
                else if (cmd == "PWD")
                    say(c, "257 \"/\"");
                else if (cmd == "EPSV")
                    say(c, "229 passive (|||" + std::to_string(port_of(data_)) + "|)");
                else if (cmd == "STOR") {
                    if (ready(data_)) d = ::accept4(data_, nullptr, nullptr, SOCK_CLOEXEC);
                    say(c, "150 go on");
                    char byte[2];
                    while (d >= 0 && ready(d) && ::read(d, byte, sizeof byte) > 0) {
                        received_ += 2;
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    }
                } else
                    say(c, cmd == "QUIT" ? "221 bye" : "250 ok");
            }
        }
        if (d >= 0) ::close(d);
        ::close(c);
    }

    int ctl_, data_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> received_{0};
    std::thread th_;
};

// A server that takes the file at a trickle: the upload fails once export.upload.timeout
// has passed, with an error that says so, and the file stays where it was.
TEST(ExportUpload, ATricklingServerFailsTheFileAfterTheTimeout) {
    auto dir = std::filesystem::temp_directory_path() / ("pf_trickle_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const auto file = dir / "flows_1.csv.gz";
    // Larger than what the kernel's socket buffers can take off the sender at once.
    std::ofstream(file, std::ios::binary) << std::string(8u << 20, 'x');
    TrickleFtp server;
    ExportUploadConfig cfg;
    cfg.url = "ftp://127.0.0.1:" + std::to_string(server.port()) + "/in/";
    cfg.user = "u";
    cfg.password = "p";
    cfg.allow_plaintext_auth = true;  // the stand-in speaks plain FTP
    cfg.timeout = std::chrono::seconds(1);
    Uploader up(cfg);
    auto st = up.upload(file.string(), "flows_1.csv.gz");
    ASSERT_FALSE(st);
    const std::string msg = st.error().message();
    const std::string head = "upload flows_1.csv.gz to " + cfg.url + ": Operation timed out after ";
    const std::string tail = " (timed out: export.upload.timeout is 1 s; the file stays spooled and is retried)";
    EXPECT_EQ(msg.substr(0, head.size()), head) << msg;
    ASSERT_GE(msg.size(), tail.size());
    EXPECT_EQ(msg.substr(msg.size() - tail.size()), tail) << msg;
    EXPECT_GT(server.received(), 0u);  // the transfer had started: the data, not the login, timed out
    EXPECT_EQ(std::filesystem::file_size(file), 8u << 20);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pf
