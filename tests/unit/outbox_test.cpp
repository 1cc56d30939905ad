#include "peakflow/push/outbox.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "local_http_server.hpp"

namespace pf {
namespace {

// A sink whose answers the test scripts (the outbox is real: SQLite on a temp file, the
// clock is injected). Records what it was asked to send.
struct Script {
    std::deque<bool> answers;  // empty: ok
    std::vector<std::string> sent;
    std::vector<std::string> titles;
};

class ScriptedSink : public Sink {
  public:
    explicit ScriptedSink(Script& s) : s_(s) {}
    SendResult send(const OutboundMessage& m, const MessageMeta&) override {
        s_.sent.push_back(m.text);
        s_.titles.push_back(m.title);
        bool ok = true;
        if (!s_.answers.empty()) {
            ok = s_.answers.front();
            s_.answers.pop_front();
        }
        return ok ? SendResult{true, 200, R"({"errcode":0})", ""} : SendResult{false, 500, "down", "HTTP 500: down"};
    }

  private:
    Script& s_;
};

class OutboxTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            std::filesystem::temp_directory_path() / ("pf-outbox-" + std::to_string(getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        push_.configured = true;
        push_.node_name = "node1";
        push_.initial_backoff = 1.0;
        push_.max_backoff = 8.0;
        SinkConfig a;
        a.name = "a";
        a.type = "dingtalk";
        a.token = "t";
        a.msgtype = "markdown";
        SinkConfig b;
        b.name = "b";
        b.type = "serverchan";
        b.sendkey = "k";
        b.reports = {"daily"};
        push_.sinks = {a, b};
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<Outbox> open() {
        OutboxOptions o;
        o.database = (dir_ / "h.db").string();
        o.push = push_;
        o.host = "host1";
        o.now_ms = [this] { return now_; };
        o.mono_ms = [this] { return split_clocks_ ? mono_ : now_; };
        o.seed = 42;
        o.make_sink = [this](const SinkConfig& s) { return std::make_unique<ScriptedSink>(scripts_[s.name]); };
        return Outbox::open(o).take();
    }
    OutboundMessage msg(const std::string& sink, const std::string& text, const std::string& kind = "daily") {
        return OutboundMessage{sink, kind, "2026-11-21", "T", text, ""};
    }

    std::filesystem::path dir_;
    PushConfig push_;
    int64_t now_ = 1'700'000'000'000;
    bool split_clocks_ = false;  // true: durations from mono_, not from the wall clock now_
    int64_t mono_ = 5'000'000;
    std::map<std::string, Script> scripts_;
};

TEST_F(OutboxTest, FansOutByKindAndRecordsPending) {
    auto ob = open();
    ASSERT_TRUE(ob->enqueue(msg("", "d1", "daily")));
    ASSERT_TRUE(ob->enqueue(msg("", "m1", "monthly")));  // b takes daily only
    EXPECT_EQ(ob->depth(), 3u);
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].sink, "a");
    EXPECT_EQ(h[1].sink, "b");
    EXPECT_EQ(h[2].sink, "a");
    EXPECT_EQ(h[2].kind, "monthly");
    EXPECT_EQ(h[0].status, "pending");
    EXPECT_EQ(h[0].node, "node1");
    EXPECT_EQ(h[0].host, "host1");
    EXPECT_EQ(h[0].bytes, static_cast<int64_t>(
                              std::string(R"({"markdown":{"text":"d1","title":"T"},"msgtype":"markdown"})").size()));
    EXPECT_FALSE(ob->enqueue(msg("nosuch", "x")));
}

TEST_F(OutboxTest, FailingHeadBacksOffKeepsOrderAndBlocksOnlyItsSink) {
    auto ob = open();
    for (const char* t : {"m1", "m2", "m3"}) ASSERT_TRUE(ob->enqueue(msg("a", t)));
    ASSERT_TRUE(ob->enqueue(msg("b", "other")));
    scripts_["a"].answers = {false, false};  // down for two attempts, then back

    int64_t next = ob->step("a").take();
    // First retry after initial_backoff (1 s) with jitter in [0.5, 1] of it.
    EXPECT_GE(next - now_, 500);
    EXPECT_LE(next - now_, 1000);
    // Sink b is not held up by a's failure.
    EXPECT_GT(ob->step("b").take(), 0);
    EXPECT_EQ(scripts_["b"].sent, std::vector<std::string>{"other"});
    // Before the backoff is over nothing is sent.
    now_ = next - 1;
    EXPECT_EQ(ob->step("a").take(), next);
    EXPECT_EQ(scripts_["a"].sent.size(), 1u);
    now_ = next;
    int64_t next2 = ob->step("a").take();
    EXPECT_GE(next2 - now_, 1000);  // second failure: 2 s with jitter
    EXPECT_LE(next2 - now_, 2000);
    now_ = next2;
    while (ob->step("a").take() != 0) {
    }
    EXPECT_EQ(scripts_["a"].sent, (std::vector<std::string>{"m1", "m1", "m1", "m2", "m3"}));
    EXPECT_EQ(ob->depth(), 0u);
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 4u);
    EXPECT_EQ(h[0].status, "sent");
    EXPECT_EQ(h[0].attempts, 3);
    EXPECT_EQ(h[0].last_error, "");
    EXPECT_EQ(h[1].attempts, 1);
    EXPECT_EQ(h[3].sink, "b");
}

TEST_F(OutboxTest, BackoffIsCappedAtMaxWithJitter) {
    auto ob = open();
    ASSERT_TRUE(ob->enqueue(msg("a", "m1")));
    scripts_["a"].answers = std::deque<bool>(10, false);
    for (int i = 1; i <= 10; ++i) {
        int64_t next = ob->step("a").take();
        double cap = std::min(8.0, 1.0 * (1 << (i - 1))) * 1000;
        EXPECT_GE(next - now_, cap / 2) << i;
        EXPECT_LE(next - now_, cap) << i;
        now_ = next;
    }
    auto failed = ob->history(true).take();
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0].status, "failed");
    EXPECT_EQ(failed[0].attempts, 10);
    EXPECT_EQ(failed[0].last_error, "HTTP 500: down");
}

TEST_F(OutboxTest, ThreeFailuresRaiseOneAlertElsewhereAndOneRecovery) {
    auto ob = open();
    ASSERT_TRUE(ob->enqueue(msg("a", "m1")));
    scripts_["a"].answers = {false, false, false, false, false};
    for (int i = 0; i < 5; ++i) now_ = ob->step("a").take();
    auto q = ob->queued_ids("b").take();
    ASSERT_EQ(q.size(), 1u);                              // one alert for the outage, not one per failure
    EXPECT_TRUE(ob->queued_ids("a").take().size() == 1);  // never to the failing sink itself
    ob->step("a").take();                                 // works again
    q = ob->queued_ids("b").take();
    ASSERT_EQ(q.size(), 2u);
    auto h = ob->history(false).take();
    std::vector<std::string> kinds;
    for (const auto& r : h)
        if (r.sink == "b") kinds.push_back(r.kind + " " + r.period);
    EXPECT_EQ(kinds, (std::vector<std::string>{"alert sink:a", "recovery sink:a"}));
    while (ob->step("b").take() != 0) {
    }
    ASSERT_EQ(scripts_["b"].sent.size(), 2u);
    EXPECT_NE(scripts_["b"].sent[0].find("failed 3 times in a row"), std::string::npos);
    EXPECT_NE(scripts_["b"].sent[1].find("works again"), std::string::npos);
}

// The alert and recovery texts, exactly, in each push.language.
TEST_F(OutboxTest, AlertAndRecoveryTextsInEnglishAndChinese) {
    const std::pair<Language, std::vector<std::string>> cases[] = {
        {Language::En,
         {"Delivery to sink **a** failed 3 times in a row (node1 / host1). Last error: HTTP 500: down\n\n"
          "Messages wait in the outbox and are sent when it works again.",
          "Delivery to sink **a** works again (node1 / host1)."}},
        {Language::Zh,
         {"推送到 **a** 连续失败 3 次（node1 / host1）。最后的错误：HTTP 500: down\n\n"
          "消息保留在发件箱中，恢复后即发送。",
          "推送到 **a** 已恢复正常（node1 / host1）。"}},
    };
    for (const auto& [lang, texts] : cases) {
        std::filesystem::remove_all(dir_);
        scripts_.clear();
        push_.language = lang;
        auto ob = open();
        ASSERT_TRUE(ob->enqueue(msg("a", "m1")));
        scripts_["a"].answers = {false, false, false};
        for (int i = 0; i < 4; ++i) now_ = ob->step("a").take();
        while (ob->step("b").take() != 0) {
        }
        EXPECT_EQ(scripts_["b"].sent, texts) << language_name(lang);
        const auto& titles = scripts_["b"].titles;
        if (lang == Language::Zh)
            EXPECT_EQ(titles, (std::vector<std::string>{"推送到 a 失败", "推送到 a 已恢复"}));
        else
            EXPECT_EQ(titles, (std::vector<std::string>{"push to a failing", "push to a works again"}));
    }
}

TEST_F(OutboxTest, OneAlertPerOutageAlsoAcrossRestarts) {
    {
        auto ob = open();
        ASSERT_TRUE(ob->enqueue(msg("a", "m1")));
        scripts_["a"].answers = {false, false, false};
        for (int i = 0; i < 3; ++i) now_ = ob->step("a").take();
        EXPECT_EQ(ob->queued_ids("b").take().size(), 1u);
    }
    auto ob = open();  // restarted during the outage
    scripts_["a"].answers = {false, false, false, true};
    for (int i = 0; i < 3; ++i) now_ = ob->step("a").take();
    EXPECT_EQ(ob->queued_ids("b").take().size(), 1u);  // no second alert
    ob->step("a").take();
    EXPECT_EQ(ob->queued_ids("b").take().size(), 2u);  // the recovery notice
    auto h = ob->history(false).take();
    EXPECT_EQ(h.back().kind, "recovery");
    EXPECT_EQ(h.front().attempts, 7);
}

TEST_F(OutboxTest, RateLimitTwentyPerMinute) {
    auto ob = open();
    for (int i = 0; i < 21; ++i) ASSERT_TRUE(ob->enqueue(msg("a", "m" + std::to_string(i))));
    int64_t start = now_;
    for (int i = 0; i < 20; ++i) {
        now_ = start + i * 100;
        ob->step("a").take();
    }
    EXPECT_EQ(scripts_["a"].sent.size(), 20u);
    now_ = start + 2100;
    EXPECT_EQ(ob->step("a").take(), start + 60000);  // the 21st waits for the oldest to age out
    EXPECT_EQ(scripts_["a"].sent.size(), 20u);
    now_ = start + 60000;
    ob->step("a").take();
    EXPECT_EQ(scripts_["a"].sent.size(), 21u);
    EXPECT_EQ(scripts_["a"].sent.back(), "m20");
}

// The wall clock stepped back an hour (NTP, an operator) stalls neither the backoff nor
// the rate limit: both count on the monotonic clock. The history keeps wall times.
TEST_F(OutboxTest, WallClockSteppedBackStallsNeitherBackoffNorRateLimit) {
    split_clocks_ = true;
    auto ob = open();
    for (int i = 0; i < 21; ++i) ASSERT_TRUE(ob->enqueue(msg("a", "m" + std::to_string(i))));
    scripts_["a"].answers = {false};
    int64_t next = ob->step("a").take();
    EXPECT_GE(next - mono_, 500);
    EXPECT_LE(next - mono_, 1000);
    now_ -= 3'600'000;
    mono_ = next;
    ob->step("a").take();  // the retry, on time
    EXPECT_EQ(scripts_["a"].sent, (std::vector<std::string>{"m0", "m0"}));
    auto h = ob->history(false).take();
    EXPECT_EQ(h[0].time, now_ / 1000);  // the record has the wall time
    for (int i = 1; i < 19; ++i) ob->step("a").take();
    EXPECT_EQ(scripts_["a"].sent.size(), 20u);  // 20 in the minute, counting the failed one
    now_ -= 3'600'000;
    mono_ += 1;
    EXPECT_GT(ob->step("a").take(), mono_);  // the 21st waits
    EXPECT_EQ(scripts_["a"].sent.size(), 20u);
    mono_ += 60'000;
    ob->step("a").take();
    EXPECT_EQ(scripts_["a"].sent.size(), 21u);
}

TEST_F(OutboxTest, RestartResumesAndUpdatesTheSameHistoryRow) {
    {
        auto ob = open();
        ASSERT_TRUE(ob->enqueue(msg("a", "m1")));
        ASSERT_TRUE(ob->enqueue(msg("a", "m2")));
        scripts_["a"].answers = {true};
        ob->step("a").take();  // m1 confirmed; m2 never tried: the process "dies" here
    }
    auto ob = open();
    EXPECT_EQ(ob->depth(), 1u);
    while (ob->step("a").take() != 0) {
    }
    EXPECT_EQ(scripts_["a"].sent, (std::vector<std::string>{"m1", "m2"}));  // m1 not again
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[1].status, "sent");
    EXPECT_EQ(h[1].attempts, 1);
}

TEST_F(OutboxTest, SwitchedOffSinksRecordSkippedAndSendNothing) {
    push_.sinks[1].enabled = false;
    auto ob = open();
    ASSERT_TRUE(ob->enqueue(msg("", "d1", "daily")));
    EXPECT_EQ(ob->depth(), 1u);
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[1].sink, "b");
    EXPECT_EQ(h[1].status, "skipped");
    EXPECT_EQ(ob->step("b").take(), 0);
    EXPECT_TRUE(scripts_["b"].sent.empty());

    push_.enabled = false;
    auto off = open();
    ASSERT_TRUE(off->enqueue(msg("a", "d2")));
    EXPECT_EQ(off->depth(), 1u);  // the earlier row stays queued for when push is on again
    EXPECT_EQ(off->step("a").take(), 0);
    EXPECT_EQ(off->history(false).take().back().status, "skipped");
}

TEST_F(OutboxTest, AlertSinkQueuesForEverySinkThatTakesAlerts) {
    push_.sinks[0].alerts = false;
    SinkConfig c = push_.sinks[1];
    c.name = "c";
    push_.sinks.push_back(c);
    auto ob = open();
    OutboxAlertSink alerts(*ob);
    alerts.alert(Alert{Alert::Kind::Raised, "procwatch", "runaway:1234", "runaway process", "pid 1234", 0});
    alerts.alert(Alert{Alert::Kind::Recovered, "procwatch", "runaway:1234", "back to normal", "", 0});
    auto h = ob->history(false).take();
    std::vector<std::string> rows;
    for (const auto& r : h) rows.push_back(r.sink + " " + r.kind + " " + r.period + " " + r.status);
    EXPECT_EQ(rows, (std::vector<std::string>{"b alert runaway:1234 pending", "c alert runaway:1234 pending",
                                              "b recovery runaway:1234 pending", "c recovery runaway:1234 pending"}));
    EXPECT_TRUE(ob->queued_ids("a").take().empty());
    while (ob->step("b").take() != 0) {
    }
    EXPECT_EQ(scripts_["b"].sent, (std::vector<std::string>{"pid 1234", ""}));
}

TEST_F(OutboxTest, HistoryTableIsAligned) {
    std::vector<HistoryRow> rows = {{1, 0, "n", "h", "dingtalk", "daily", "2026-11-21", 120, "sent", 1, "", 1054720},
                                    {12, 0, "", "h", "sc", "alert", "sink:x", 9, "failed", 10, "HTTP 500"}};
    auto fmt = [](int64_t) { return std::string("2026-11-21 00:05:00"); };
    std::string out = render_history(rows, false, fmt);
    EXPECT_EQ(
        out,
        "ID  TIME                 NODE  HOST  SINK      KIND   PERIOD      BYTES    VALUE  STATUS  ATTEMPTS  LAST "
        "ERROR\n"
        " 1  2026-11-21 00:05:00  n     h     dingtalk  daily  2026-11-21    120  1054720  sent           1\n"
        "12  2026-11-21 00:05:00  -     h     sc        alert  sink:x          9        -  failed        10  HTTP "
        "500\n");
    EXPECT_EQ(render_history(rows, true, fmt),
              R"({"history":[{"id":1,"time":"2026-11-21 00:05:00","node":"n","host":"h","sink":"dingtalk",)"
              R"("kind":"daily","period":"2026-11-21","bytes":120,"status":"sent","attempts":1,"last_error":"",)"
              R"("value":1054720},{"id":12,"time":"2026-11-21 00:05:00","node":"","host":"h","sink":"sc",)"
              R"("kind":"alert","period":"sink:x","bytes":9,"status":"failed","attempts":10,)"
              R"("last_error":"HTTP 500","value":null}]})"
              "\n");
    // The collector's: the same with the agent in front.
    rows[0].agent = "nas-1";
    rows[1].agent = "nas-22";
    EXPECT_EQ(render_history(rows, false, fmt, true),
              "AGENT   ID  TIME                 NODE  HOST  SINK      KIND   PERIOD      BYTES    VALUE  STATUS  "
              "ATTEMPTS  LAST ERROR\n"
              "nas-1    1  2026-11-21 00:05:00  n     h     dingtalk  daily  2026-11-21    120  1054720  sent    "
              "       1\n"
              "nas-22  12  2026-11-21 00:05:00  -     h     sc        alert  sink:x          9        -  failed  "
              "      10  HTTP 500\n");
    EXPECT_EQ(render_history({rows[0]}, true, fmt, true),
              R"({"history":[{"agent":"nas-1","id":1,"time":"2026-11-21 00:05:00","node":"n","host":"h",)"
              R"("sink":"dingtalk","kind":"daily","period":"2026-11-21","bytes":120,"status":"sent","attempts":1,)"
              R"("last_error":"","value":1054720}]})"
              "\n");
}

// What a service answered (and names from other machines in the collector's view) reach a
// terminal: control characters show as escapes, never act (clear screen, set the title).
TEST_F(OutboxTest, HistoryTableAndPushTestShowControlCharactersAsEscapes) {
    std::vector<HistoryRow> rows = {
        {1, 0, "n\x1b[2J", "h", "s", "alert", "sink:x", 9, "failed", 1, "HTTP 500: \x1b]0;pwn\x07\r\nnext"}};
    auto fmt = [](int64_t) { return std::string("2026-11-21 00:05:00"); };
    EXPECT_EQ(render_history(rows, false, fmt),
              "ID  TIME                 NODE      HOST  SINK  KIND   PERIOD  BYTES  VALUE  STATUS  ATTEMPTS  "
              "LAST ERROR\n"
              " 1  2026-11-21 00:05:00  n\\x1b[2J  h     s     alert  sink:x      9      -  failed         1  "
              "HTTP 500: \\x1b]0;pwn\\x07\\r\\nnext\n");
    testing::LocalServer srv([](const httplib::Request&, httplib::Response& rs) {
        rs.status = 500;
        rs.set_content(
            "\x1b[31mred\x1b[0m\r\n\xc2\x9b"
            "2J",
            "text/plain");
    });
    PushConfig c;
    c.configured = true;
    SinkConfig h;
    h.name = "h";
    h.type = "http";
    h.url = srv.url("/x");
    c.sinks = {h};
    std::ostringstream out;
    EXPECT_EQ(run_push_test(c, "", out), 1);
    EXPECT_EQ(out.str(),
              "h (http): FAILED: HTTP 500: \\x1b[31mred\\x1b[0m\\r\\n\\u009b2J\n"
              "  answer: HTTP 500 \\x1b[31mred\\x1b[0m\\r\\n\\u009b2J\n");
}

TEST_F(OutboxTest, ValueIsRecordedBesideTheRequestSizeAndKeptThroughDelivery) {
    auto ob = open();
    OutboundMessage daily = msg("a", "d1");
    daily.value = 1054720;
    ASSERT_TRUE(ob->enqueue(daily));
    ASSERT_TRUE(ob->enqueue(msg("a", "alert text", "alert")));
    scripts_["a"].answers = {false};
    ob->step("a").take();
    now_ += 10000;
    while (ob->step("a").take() != 0) now_ += 10000;
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].value, std::optional<int64_t>(1054720));
    EXPECT_EQ(h[0].status, "sent");
    EXPECT_EQ(h[0].attempts, 2);
    EXPECT_FALSE(h[1].value.has_value());
    // `history` reads the same from the file.
    auto again = read_push_history((dir_ / "h.db").string(), false).take();
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(again[0].value, std::optional<int64_t>(1054720));
    EXPECT_FALSE(again[1].value.has_value());
}

// A history written before outbox schema 2: `history` reads it as it is (no values), and
// the outbox brings it up with ALTER TABLE, keeping its rows.
TEST_F(OutboxTest, SchemaOneHistoryIsReadAndMigrated) {
    std::filesystem::create_directories(dir_);
    const std::string path = (dir_ / "h.db").string();
    {
        SqliteOptions so;
        so.mode = SqliteMode::Create;
        auto db = SqliteDb::open(path, so).take();
        ASSERT_TRUE(db.exec(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
            "INSERT INTO meta VALUES('schema_version.outbox', 1);"
            "CREATE TABLE outbox(id INTEGER PRIMARY KEY, sink TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL, "
            "title TEXT NOT NULL, text TEXT NOT NULL, body TEXT NOT NULL, node TEXT NOT NULL, host TEXT NOT NULL);"
            "CREATE TABLE push_sink_state(sink TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
            "alerted INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE push_history(id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL, "
            "time INTEGER NOT NULL, node TEXT NOT NULL, host TEXT NOT NULL, sink TEXT NOT NULL, kind TEXT NOT NULL, "
            "period TEXT NOT NULL, bytes INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
            "last_error TEXT NOT NULL DEFAULT '');"
            "INSERT INTO push_history(created, time, node, host, sink, kind, period, bytes, status, attempts) "
            "VALUES(1, 2, 'n', 'h', 'a', 'daily', '2026-11-20', 99, 'sent', 1);"));
    }
    auto old = read_push_history(path, false).take();
    ASSERT_EQ(old.size(), 1u);
    EXPECT_EQ(old[0].bytes, 99);
    EXPECT_FALSE(old[0].value.has_value());
    auto ob = open();
    OutboundMessage m = msg("a", "d2");
    m.value = 7;
    ASSERT_TRUE(ob->enqueue(m));
    auto h = ob->history(false).take();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].period, "2026-11-20");
    EXPECT_FALSE(h[0].value.has_value());
    EXPECT_EQ(h[1].value, std::optional<int64_t>(7));
    SqliteOptions ro;
    ro.mode = SqliteMode::ReadOnly;
    auto db = SqliteDb::open(path, ro).take();
    EXPECT_EQ(read_schema_version(db, "outbox").take(), std::optional<int>(3));
}

// A stand-in for the customer's API (sink type http): answers 200 and keeps every body it
// received, in order.
class CountingServer {
  public:
    CountingServer()
        : srv_([this](const httplib::Request& rq, httplib::Response& rs) {
              std::lock_guard lk(mu_);
              bodies_.push_back(rq.body);
              rs.set_content("{}", "application/json");
          }) {}
    std::vector<std::string> bodies() {
        std::lock_guard lk(mu_);
        return bodies_;
    }
    std::string url() const { return srv_.url("/api"); }

  private:
    std::mutex mu_;
    std::vector<std::string> bodies_;
    testing::LocalServer srv_;
};

class OutboxStorageTest : public OutboxTest {
  protected:
    // One http sink "a" to the stand-in, real sinks (no script), three messages queued.
    std::unique_ptr<Outbox> open_real(const std::string& db, const std::string& url) {
        SinkConfig a;
        a.name = "a";
        a.type = "http";
        a.url = url;
        push_.sinks = {a};
        OutboxOptions o;
        o.database = db;
        o.push = push_;
        o.host = "host1";
        o.seed = 42;
        o.idle_poll = 0.1;
        auto ob = Outbox::open(o).take();
        for (const char* b : {"m1", "m2", "m3"})
            EXPECT_TRUE(ob->enqueue(OutboundMessage{"a", "hourly", b, "T", "", b}));
        return ob;
    }
    static std::string statuses(Outbox& ob) {
        std::string s;
        for (const auto& r : ob.history(false).take())
            s += r.period + ":" + r.status + "/" + std::to_string(r.attempts) + " ";
        return s;
    }
};

// Another connection holds the write lock for 10 s (longer than the outbox's 5 s busy
// timeout): the confirmed first message is recorded when the lock goes, never sent again.
TEST_F(OutboxStorageTest, DatabaseLockedForTenSecondsSendsEachMessageOnce) {
    std::filesystem::create_directories(dir_);
    const std::string db = (dir_ / "h.db").string();
    CountingServer server;
    auto ob = open_real(db, server.url());
    SqliteOptions so;
    so.mode = SqliteMode::ReadWrite;
    auto other = SqliteDb::open(db, so).take();
    ASSERT_TRUE(other.exec("BEGIN IMMEDIATE"));
    ob->start();
    std::this_thread::sleep_for(std::chrono::seconds(10));
    ASSERT_TRUE(other.exec("COMMIT"));
    for (int i = 0; i < 300 && ob->depth() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ob->stop();  // the workers are idle and joined: nothing can arrive after this
    EXPECT_EQ(ob->depth(), 0u);
    EXPECT_EQ(server.bodies(), (std::vector<std::string>{"m1", "m2", "m3"}));
    EXPECT_EQ(statuses(*ob), "m1:sent/1 m2:sent/1 m3:sent/1 ");
}

// What a child process reports back through a pipe: "SKIP <reason>" or the result.
std::string run_in_child(const std::function<std::string()>& f) {
    int fd[2];
    if (pipe(fd) != 0) return std::string("FAIL pipe: ") + std::strerror(errno);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        std::string out = f();
        (void)!write(fd[1], out.data(), out.size());
        _exit(0);
    }
    close(fd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out = "FAIL child ended with status " + std::to_string(status);
    return out;
}

// The disk under the history database is full (a 1 MiB tmpfs, mounted in the child's own
// mount namespace, so nothing outside the test sees it): the send of the first message
// is confirmed but cannot be recorded. It is not sent again; once there is room, the
// record is made and the others follow, each exactly once.
TEST_F(OutboxStorageTest, DiskFullSendsEachMessageOnce) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: mounts a small tmpfs in a private mount namespace";
    const std::filesystem::path mnt = dir_ / "full";
    std::filesystem::create_directories(mnt);
    std::string out = run_in_child([&]() -> std::string {
        if (unshare(CLONE_NEWNS) != 0) return std::string("SKIP unshare(CLONE_NEWNS): ") + std::strerror(errno);
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            return std::string("SKIP make / private: ") + std::strerror(errno);
        if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
            return std::string("SKIP mount tmpfs: ") + std::strerror(errno);
        std::string result;
        {
            CountingServer server;
            auto ob = open_real((mnt / "h.db").string(), server.url());
            const std::string filler = (mnt / "filler").string();
            int f = ::open(filler.c_str(), O_WRONLY | O_CREAT, 0600);
            std::string block(4096, 'x');
            while (::write(f, block.data(), block.size()) > 0) {
            }
            while (::write(f, "x", 1) > 0) {
            }
            ::close(f);
            auto first = ob->step("a");
            result += first ? "recorded " : "error: " + first.error().message() + "\n";
            auto again = ob->step("a");  // still full
            result += again ? "recorded " : "error again\n";
            result += "while full: " + std::to_string(server.bodies().size()) + "\n";
            std::filesystem::remove(filler);
            for (int i = 0; i < 10; i++)
                if (auto r = ob->step("a"); !r || *r == 0) break;
            for (const auto& b : server.bodies()) result += b + " ";
            result += "\n" + statuses(*ob);
        }
        umount2(mnt.c_str(), 0);
        return result;
    });
    if (out.rfind("SKIP ", 0) == 0) GTEST_SKIP() << out.substr(5);
    EXPECT_EQ(out,
              "error: record delivery of message 1 (delivered; it is not sent again, the record is retried): "
              "database or disk is full\n"
              "error again\n"
              "while full: 1\n"
              "m1 m2 m3 \n"
              "m1:sent/1 m2:sent/1 m3:sent/1 ");
}

// A reload (SIGHUP, the daemon's main thread) that changes the push section must not wait
// for a send in flight: the service the daemon runs, with an http sink whose server holds
// the first request until the reload has returned. The new header reaches the next send.
TEST(PushServiceReload, ReloadDoesNotWaitForASendInFlight) {
    const auto dir = std::filesystem::temp_directory_path() / ("pf-push-reload-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::mutex mu;
    std::condition_variable cv;
    bool hold = true, holding = false;
    std::vector<std::string> got;  // the X-Tag header of each request, in order
    int answered = 0;
    {
        testing::LocalServer server([&](const httplib::Request& rq, httplib::Response& rs) {
            std::unique_lock l(mu);
            got.push_back(rq.get_header_value("X-Tag"));
            holding = true;
            cv.notify_all();
            cv.wait(l, [&] { return !hold; });
            answered++;
            cv.notify_all();
            rs.set_content("ok", "text/plain");
        });
        PushConfig push;
        push.configured = true;
        push.node_name = "node1";
        SinkConfig c;
        c.name = "c";
        c.type = "http";
        c.url = server.url("/in");
        c.headers = {{"X-Tag", "old"}};
        push.sinks = {c};
        ServiceContext ctx;
        ctx.accounting.database = (dir / "h.db").string();
        ctx.sections.set(push);
        auto svc = make_push_service(ctx).take();
        ASSERT_TRUE(ctx.outbox->enqueue(OutboundMessage{"c", "message", "p1", "T", "one", "{}"}).ok());
        {
            std::unique_lock l(mu);
            cv.wait(l, [&] { return holding; });
        }
        push.sinks[0].headers = {{"X-Tag", "new"}};
        ServiceContext next;
        next.sections.set(push);
        auto reload = std::async(std::launch::async, [&] { svc->reload(next); });
        // The bound only keeps a failing run from hanging: before the fix the reload joined
        // the sink's worker, which the server holds until released below.
        const bool reloaded = reload.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        int answered_at_reload;
        {
            std::lock_guard l(mu);
            answered_at_reload = answered;
            hold = false;
        }
        cv.notify_all();
        reload.wait();
        EXPECT_TRUE(reloaded);
        EXPECT_EQ(answered_at_reload, 0);
        // The new section is in use once the held send ended.
        auto& outbox = dynamic_cast<Outbox&>(*ctx.outbox);
        while (outbox.reconfigured() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ASSERT_TRUE(ctx.outbox->enqueue(OutboundMessage{"c", "message", "p2", "T", "two", "{}"}).ok());
        {
            std::unique_lock l(mu);
            cv.wait(l, [&] { return answered == 2; });
            EXPECT_EQ(got, (std::vector<std::string>{"old", "new"}));
        }
        svc->stop();
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pf
