#include "peakflow/push/sinks.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include "local_http_server.hpp"

#include <chrono>
#include <thread>

#include "peakflow/app/config.hpp"
#include "peakflow/watch/procwatch.hpp"

namespace pf {
namespace {

// Vectors computed independently of this code:
//   python3 -c 'import hmac,hashlib,base64; s="SECtest123"; ts=1700000000000;
//     print(base64.b64encode(hmac.new(s.encode(), f"{ts}\n{s}".encode(), hashlib.sha256).digest()).decode())'
//   printf '%s' "1700000000000
//   SECtest123" | openssl dgst -sha256 -hmac SECtest123 -binary | base64   (same result)
TEST(Sinks, DingTalkSignatureMatchesKnownVector) {
    EXPECT_EQ(dingtalk_sign("SECtest123", 1700000000000), "w3RMHXzixTMdzr8OHJUmVLS4IoPJVdu+Ut1LE48MePE=");
    EXPECT_EQ(url_encode(dingtalk_sign("SECtest123", 1700000000000)),
              "w3RMHXzixTMdzr8OHJUmVLS4IoPJVdu%2BUt1LE48MePE%3D");
}

//   python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"1700000000\nfsecret", b"",
//     hashlib.sha256).digest()).decode())'
TEST(Sinks, FeishuSignatureMatchesKnownVector) {
    EXPECT_EQ(feishu_sign("fsecret", 1700000000), "HLzt7YDW5Xjz5Mh4RVOd0NRODMm01O79OcTFVCyWBbQ=");
}

TEST(Sinks, CutTextKeepsLimitAndSaysHowMuchWasOmitted) {
    std::string text(100, 'a');
    EXPECT_EQ(cut_text(text, 100), text);
    std::string cut = cut_text(text, 60);
    EXPECT_LE(cut.size(), 60u);
    // "\n… (cut: 68 bytes omitted)" is 28 bytes (the ellipsis is 3): 32 'a' kept, 68 omitted.
    EXPECT_EQ(cut, std::string(32, 'a') + "\n… (cut: 68 bytes omitted)");
    EXPECT_EQ(cut.size(), 60u);
}

TEST(Sinks, CutTextNeverSplitsAUtf8Character) {
    std::string text;
    for (int i = 0; i < 50; ++i) text += "流量";  // 6 bytes per pair
    std::string cut = cut_text(text, 100);
    EXPECT_LE(cut.size(), 100u);
    std::string kept = cut.substr(0, cut.find('\n'));
    EXPECT_EQ(kept.size() % 3, 0u);
    EXPECT_EQ(cut, kept + "\n… (cut: " + std::to_string(text.size() - kept.size()) + " bytes omitted)");
    EXPECT_EQ(cut_chars("流量报告abc", 5), "流量报告a");
}

TEST(Sinks, DingTalkMarkdownRequestWithSignatureAndKeyword) {
    SinkConfig s;
    s.type = "dingtalk";
    s.url = "http://127.0.0.1:9/robot/send";
    s.token = "tok";
    s.secret = "SECtest123";
    s.keyword = "peakflow";
    s.msgtype = "markdown";
    OutboundMessage m{"d", "daily", "2026-11-21", "Daily report", "up 1 GB", ""};
    HttpRequest r = render_request(s, m, {}, 1700000000000);
    EXPECT_EQ(r.url,
              "http://127.0.0.1:9/robot/send?access_token=tok&timestamp=1700000000000&sign="
              "w3RMHXzixTMdzr8OHJUmVLS4IoPJVdu%2BUt1LE48MePE%3D");
    EXPECT_EQ(r.body, R"({"markdown":{"text":"up 1 GB\n\npeakflow","title":"Daily report"},"msgtype":"markdown"})");
}

TEST(Sinks, DingTalkTextIsCutToTheLimitIncludingTheKeyword) {
    SinkConfig s;
    s.type = "dingtalk";
    s.token = "t";
    s.keyword = "KW";
    s.msgtype = "text";
    OutboundMessage m{"d", "daily", "", "T", std::string(30000, 'x'), ""};
    auto j = nlohmann::json::parse(render_request(s, m, {}, 0).body);
    std::string content = j["text"]["content"];
    EXPECT_EQ(content.size(), kDingTalkTextLimit);
    EXPECT_EQ(content.substr(content.size() - 4), "\n\nKW");
    EXPECT_NE(content.find("bytes omitted)"), std::string::npos);
    EXPECT_EQ(render_request(s, m, {}, 0).url, "https://oapi.dingtalk.com/robot/send?access_token=t");
}

TEST(Sinks, ServerChanFormFieldsAndTitleLimit) {
    SinkConfig s;
    s.type = "serverchan";
    s.sendkey = "SCT1";
    OutboundMessage m{"s", "daily", "", "Traffic report for node alpha-01 on 2026-11-21 (daily)", "a&b=c", ""};
    HttpRequest r = render_request(s, m, {}, 0);
    EXPECT_EQ(r.url, "https://sctapi.ftqq.com/SCT1.send");
    EXPECT_TRUE(r.form);
    EXPECT_EQ(r.body, "title=Traffic%20report%20for%20node%20alpha-01&desp=a%26b%3Dc");  // title: 32 characters
}

TEST(Sinks, WeComMarkdownIsCutTo4096Bytes) {
    SinkConfig s;
    s.type = "wecom";
    s.key = "k";
    OutboundMessage m{"w", "daily", "", "T", std::string(5000, 'y'), ""};
    HttpRequest r = render_request(s, m, {}, 0);
    EXPECT_EQ(r.url, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k");
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["msgtype"], "markdown");
    EXPECT_EQ(j["markdown"]["content"].get<std::string>().size(), 4096u);
}

TEST(Sinks, FeishuBodyCarriesTimestampSecondsAndSign) {
    SinkConfig s;
    s.type = "feishu";
    s.token = "hook1";
    s.secret = "fsecret";
    OutboundMessage m{"f", "alert", "k", "Title", "Body", ""};
    HttpRequest r = render_request(s, m, {}, 1700000000123);
    EXPECT_EQ(r.url, "https://open.feishu.cn/open-apis/bot/v2/hook/hook1");
    EXPECT_EQ(r.body, R"({"content":{"text":"Title\n\nBody"},"msg_type":"text","sign":)"
                      R"("HLzt7YDW5Xjz5Mh4RVOd0NRODMm01O79OcTFVCyWBbQ=","timestamp":"1700000000"})");
}

// The bot takes request bodies up to 20 KB; the text was cut at 18000 bytes before JSON
// escaping, so a text of quotes or control characters made a body of 36 or 108 KB.
TEST(Sinks, FeishuLongTextIsCutSoTheBodyStaysWithin20KB) {
    SinkConfig s;
    s.type = "feishu";
    s.token = "hook1";
    s.secret = "fsecret";
    for (const std::string& fill : {std::string("x"), std::string("\""), std::string("\x01"), std::string("汉")}) {
        std::string text;
        while (text.size() < 30000) text += fill;
        OutboundMessage m{"f", "alert", "k", "Title", text, ""};
        HttpRequest r = render_request(s, m, {}, 1700000000123);
        EXPECT_LE(r.body.size(), kFeishuBodyLimit) << fill;
        const std::string got = nlohmann::json::parse(r.body)["content"]["text"];
        // Cut no further than needed: to the text limit, or close to the body limit.
        EXPECT_TRUE(got.size() + 3 >= kFeishuTextLimit || r.body.size() > kFeishuBodyLimit - 200)
            << fill << " " << got.size() << " " << r.body.size();
        const size_t note = got.find("\n… (cut: ");
        ASSERT_NE(note, std::string::npos) << fill;
        const size_t omitted = std::stoul(got.substr(note + std::string("\n… (cut: ").size()));
        EXPECT_EQ(got.substr(note), "\n… (cut: " + std::to_string(omitted) + " bytes omitted)");
        // What is kept is the start of the text, and with what was left out it is all of it.
        const std::string whole = "Title\n\n" + text;
        EXPECT_EQ(got.substr(0, note), whole.substr(0, note)) << fill;
        EXPECT_EQ(note + omitted, whole.size()) << fill;
    }
}

// Feishu's keyword rule, as DingTalk's: a keyword missing from the text is added, inside
// the limits.
TEST(Sinks, FeishuAddsAMissingKeyword) {
    SinkConfig s;
    s.type = "feishu";
    s.token = "hook1";
    s.keyword = "peakflow";
    OutboundMessage m{"f", "alert", "k", "Title", "Body", ""};
    EXPECT_EQ(render_request(s, m, {}, 0).body,
              R"({"content":{"text":"Title\n\nBody\n\npeakflow"},"msg_type":"text"})");
    m.text = "Body from peakflow";
    EXPECT_EQ(render_request(s, m, {}, 0).body,
              R"({"content":{"text":"Title\n\nBody from peakflow"},"msg_type":"text"})");
    m.text = std::string(30000, '"');
    const std::string got = nlohmann::json::parse(render_request(s, m, {}, 0).body)["content"]["text"];
    EXPECT_EQ(got.substr(got.size() - 10), "\n\npeakflow");
}

TEST(Sinks, WebhookTemplateEscapesPlaceholders) {
    SinkConfig s;
    s.type = "webhook";
    s.url = "http://127.0.0.1/x";
    s.tmpl = R"({"t":"{{title}}","x":"{{text}}","k":"{{kind}}","p":"{{period}}","n":"{{node}}","h":"{{host}}"})";
    s.headers = {{"X-Token", "abc"}};
    OutboundMessage m{"w", "daily", "2026-11", "say \"hi\"", "line1\nline2\t\\", ""};
    HttpRequest r = render_request(s, m, MessageMeta{"node1", "host1"}, 0);
    EXPECT_EQ(r.body, R"({"t":"say \"hi\"","x":"line1\nline2\t\\","k":"daily","p":"2026-11","n":"node1","h":"host1"})");
    EXPECT_EQ(r.headers, (std::vector<std::string>{"Content-Type: application/json", "X-Token: abc"}));
}

TEST(Sinks, HttpSinkPostsTheBodyAsIs) {
    SinkConfig s;
    s.type = "http";
    s.url = "http://127.0.0.1/api";
    s.headers = {{"Content-Type", "application/x-ndjson"}, {"Authorization", "Bearer t"}};
    OutboundMessage m{"h", "hourly", "2026-11-21T15", "", "", "{\"v0\":1}\n"};
    HttpRequest r = render_request(s, m, {}, 0);
    EXPECT_EQ(r.body, "{\"v0\":1}\n");
    EXPECT_EQ(r.headers, (std::vector<std::string>{"Content-Type: application/x-ndjson", "Authorization: Bearer t"}));
}

TEST(Sinks, AnswersNeedHttp2xxAndTheServiceSuccessCode) {
    SinkConfig d;
    d.type = "dingtalk";
    EXPECT_TRUE(judge_answer(d, 200, R"({"errcode":0,"errmsg":"ok"})").ok);
    auto r = judge_answer(d, 200, R"({"errcode":310000,"errmsg":"keywords not in content"})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "errcode 310000: keywords not in content");
    EXPECT_FALSE(judge_answer(d, 500, R"({"errcode":0})").ok);
    EXPECT_FALSE(judge_answer(d, 200, "<html>").ok);
    SinkConfig sc;
    sc.type = "serverchan";
    EXPECT_TRUE(judge_answer(sc, 200, R"({"code":0,"message":""})").ok);
    EXPECT_EQ(judge_answer(sc, 200, R"({"code":40001,"message":"quota"})").error, "code 40001: quota");
    SinkConfig f;
    f.type = "feishu";
    EXPECT_TRUE(judge_answer(f, 200, R"({"code":0,"msg":"success"})").ok);
    EXPECT_TRUE(judge_answer(f, 200, R"({"StatusCode":0,"StatusMessage":"success"})").ok);
    EXPECT_EQ(judge_answer(f, 200, R"({"code":19021,"msg":"sign match fail"})").error, "code 19021: sign match fail");
    SinkConfig w;
    w.type = "wecom";
    EXPECT_EQ(judge_answer(w, 200, R"({"errcode":45009,"errmsg":"api freq out of limit"})").error,
              "errcode 45009: api freq out of limit");
    SinkConfig h;
    h.type = "http";
    EXPECT_TRUE(judge_answer(h, 204, "").ok);
    EXPECT_EQ(judge_answer(h, 503, "busy").error, "HTTP 503: busy");
    // A NUL ends nlohmann's input: what follows it would have been ignored.
    EXPECT_EQ(judge_answer(d, 200, std::string(R"({"errcode":0})") + '\0' + "junk").error,
              std::string("answer is not a JSON object: {\"errcode\":0}") + '\0' + "junk");
    // The service's message is cut as its body is (the error goes to the history and the log).
    r = judge_answer(d, 200, R"({"errcode":1,"errmsg":")" + std::string(100000, 'x') + "\"}");
    EXPECT_EQ(r.error, "errcode 1: " + cut_text(std::string(100000, 'x'), 200));
    EXPECT_EQ(r.error.size(), 211u);
}

TEST(Sinks, EmailMessageHeadersAndBody) {
    SinkConfig s;
    s.type = "email";
    s.from = "peakflow@example.org";
    s.to = {"ops@example.org", "noc@example.org"};
    OutboundMessage m{"e", "daily", "2026-11-21", "日报 2026-11-21", "line 1\nline 2", ""};
    EXPECT_EQ(render_email(s, m, MessageMeta{"n", "h1"}, 1700000000),
              "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
              "From: peakflow@example.org\r\n"
              "To: ops@example.org, noc@example.org\r\n"
              "Subject: =?UTF-8?B?5pel5oqlIDIwMjYtMTEtMjE=?=\r\n"
              "Message-ID: <peakflow-1700000000-daily@h1>\r\n"
              "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 8bit\r\n"
              "\r\n"
              "line 1\r\nline 2\r\n");
}

// A process name and command line any local user chooses, through the process watch's
// alert into an email and chat messages: no header line, no markup of theirs.
TEST(Sinks, HostileProcessNameAndCommandLineAreEscapedForEachTarget) {
    setenv("TZ", "UTC", 1);
    tzset();
    ProcEvent e;
    e.proc.pid = 42;
    e.proc.name = "x\r\nBcc: y";
    e.proc.cmdline = "sh -c `rm -rf ~` **b** [x](http://e)\n# H";
    e.proc.user = "alice";
    e.proc.cgroup = "/user.slice/a_b";
    e.proc.cpu = 99.5;
    e.proc.mem = 1.26;
    e.since = 1795273228;  // 2026-11-21 15:00:28 UTC
    OutboundMessage m{"", "alert", e.key(), proc_event_title(e), proc_event_text(e), ""};
    const std::string title = R"(runaway process x\r\nBcc: y (pid 42): CPU 99.5% memory 1.3%)";
    const std::string text = R"(- pid: 42
- name: x\\r\\nBcc: y
- command: ``sh -c `rm -rf ~` **b** [x](http://e)\n# H``
- user: alice
- CPU: 99.5%
- memory: 1.3%
- since: 2026-11-21__15:00:28
- cgroup: /user.slice/a\_b
)";
    EXPECT_EQ(m.title, title);
    EXPECT_EQ(m.text, text);

    SinkConfig mail;
    mail.type = "email";
    mail.from = "peakflow@example.org";
    mail.to = {"ops@example.org"};
    std::string crlf_text;
    for (char c : text) crlf_text += c == '\n' ? std::string("\r\n") : std::string(1, c);
    EXPECT_EQ(render_email(mail, m, MessageMeta{"n", "h1"}, 1700000000),
              "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
              "From: peakflow@example.org\r\n"
              "To: ops@example.org\r\n"
              "Subject: " +
                  title +
                  "\r\n"
                  "Message-ID: <peakflow-1700000000-alert@h1>\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n"
                  "\r\n" +
                  crlf_text + "\r\n");

    SinkConfig ding;
    ding.type = "dingtalk";
    ding.token = "t";
    ding.msgtype = "markdown";
    EXPECT_EQ(render_request(ding, m, MessageMeta{}, 0).body,
              R"({"markdown":{"text":"- pid: 42\n- name: x\\\\r\\\\nBcc: y\n- command: ``sh -c `rm -rf ~` **b** )"
              R"([x](http://e)\\n# H``\n- user: alice\n- CPU: 99.5%\n- memory: 1.3%\n- since: 2026-11-21__15:00:28\n)"
              R"(- cgroup: /user.slice/a\\_b\n","title":"runaway process x\\r\\nBcc: y (pid 42): CPU 99.5% memory )"
              R"(1.3%"},"msgtype":"markdown"})");
    // WeCom puts the title into the markdown: escaped there.
    SinkConfig wecom;
    wecom.type = "wecom";
    wecom.key = "k";
    auto j = nlohmann::json::parse(render_request(wecom, m, MessageMeta{}, 0).body);
    EXPECT_EQ(j["markdown"]["content"], R"(**runaway process x\\r\\nBcc: y (pid 42): CPU 99.5% memory 1.3%**
)" + text);
}

// A title with a line break or other control characters (from any producer) never goes
// into the Subject raw: RFC 2047, folded into encoded words of at most 75 characters.
TEST(Sinks, EmailSubjectIsEncodedUnlessPrintableAscii) {
    SinkConfig s;
    s.type = "email";
    s.from = "a@b";
    s.to = {"c@d"};
    auto subject = [&](const std::string& title) {
        std::string e = render_email(s, OutboundMessage{"e", "alert", "", title, "x", ""}, MessageMeta{}, 0);
        size_t at = e.find("\r\nSubject: ") + 11;
        return e.substr(at, e.find("\r\nMessage-ID:") - at);
    };
    EXPECT_EQ(subject("plain ascii title"), "plain ascii title");
    // base64 of "x\r\nBcc: y" and of "tab\there"
    EXPECT_EQ(subject("x\r\nBcc: y"), "=?UTF-8?B?eA0KQmNjOiB5?=");
    EXPECT_EQ(subject("tab\there"), "=?UTF-8?B?dGFiCWhlcmU=?=");
    // 60 Chinese characters (180 bytes): words of 15 characters (45 bytes), each 72 long.
    std::string zh;
    for (int i = 0; i < 60; i++) zh += "流";
    const std::string word = "=?UTF-8?B?" + base64(zh.substr(0, 45)) + "?=";
    EXPECT_EQ(word.size(), 72u);
    EXPECT_EQ(subject(zh), word + "\r\n " + word + "\r\n " + word + "\r\n " + word);
}

// Configured header values go into requests as they are: a line break in one would add
// header lines of its own. Refused at load, with the place.
TEST(PushConfig, HeaderValuesWithLineBreaksAreRefused) {
    auto c = parse_config(
        "push:\n  sinks:\n    - name: h\n      type: http\n      url: http://x/\n      headers:\n"
        "        Authorization: \"Bearer t\\r\\nX-Evil: 1\"\n",
        "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:7:24: key 'push.sinks[0].headers.Authorization': a header value must not contain CR, LF or "
              "other control characters");
    c = parse_config("push:\n  sinks:\n    - {name: h, type: http, url: 'http://x/', headers: {'X:Y': v}}\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:57: key 'push.sinks[0].headers.X:Y': not a valid header name (letters, digits and "
              "!#$%&'*+-.^_`|~)");
    c = parse_config("customer_report:\n  query_headers:\n    Authorization: \"a\\nb\"\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:20: key 'customer_report.query_headers.Authorization': a header value must not contain CR, "
              "LF or other control characters");
}

// SMTP credentials never cross the network in clear unless the config says so, by name.
TEST(PushConfig, SmtpAuthWithoutTlsIsRefusedUnlessAllowed) {
    auto c = parse_config(
        "push:\n  sinks:\n    - {name: m, type: email, url: 'smtp://mx:25', from: a@b, to: c@d, username: u, "
        "password: p}\n",
        "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:94: key 'push.sinks[0].password': smtp:// without starttls would send the SMTP password in "
              "clear: set starttls: true, use smtps://, or set allow_plaintext_auth: true");
    c = parse_config("push:\n  sinks:\n    - {name: m, type: email, url: 'smtp://u:p@mx:25', from: a@b, to: c@d}\n",
                     "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:35: key 'push.sinks[0].url': smtp:// without starttls would send the SMTP password in clear: "
              "set starttls: true, use smtps://, or set allow_plaintext_auth: true");
    for (const char* ok : {"url: 'smtp://mx:25', starttls: true, password: p", "url: 'smtps://mx:465', password: p",
                           "url: 'smtp://mx:25', password: p, allow_plaintext_auth: true", "url: 'smtp://mx:25'"}) {
        c = parse_config(std::string("push:\n  sinks:\n    - {name: m, type: email, from: a@b, to: c@d, ") + ok + "}\n",
                         "t.yaml");
        EXPECT_TRUE(c) << ok << ": " << c.error().message();
    }
    // A config built otherwise meets the same rule at the send, before any connection.
    SinkConfig s;
    s.type = "email";
    s.url = "smtp://127.0.0.1:9";
    s.from = "a@b";
    s.to = {"c@d"};
    s.password = "p";
    auto r = make_sink(s, 1)->send(OutboundMessage{"m", "test", "", "t", "x", ""}, MessageMeta{});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, kPlaintextAuth);
}

TEST(PushConfig, ParsesSinksAndMasksSecrets) {
    auto c = parse_config(R"(
push:
  node_name: edge-1
  retry: {initial_backoff: 0.5, max_backoff: 30}
  sinks:
    - {name: d, type: dingtalk, token: T0KEN, secret: S3CRET, keyword: kw}
    - {name: m, type: email, url: "smtp://127.0.0.1:25", starttls: true, from: a@b, to: [c@d], password: P4SS, reports: [daily]}
)",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(c->push.sinks.size(), 2u);
    EXPECT_EQ(c->push.sinks[0].msgtype, "markdown");
    EXPECT_EQ(c->push.sinks[0].effective_rate(), 20);
    EXPECT_EQ(c->push.initial_backoff, 0.5);
    EXPECT_TRUE(c->push.sinks[0].takes("startup"));
    EXPECT_FALSE(c->push.sinks[1].takes("monthly"));
    EXPECT_TRUE(c->push.sinks[1].takes("alert"));
    std::string dump = dump_config(*c);
    for (const char* secret : {"T0KEN", "S3CRET", "P4SS"}) EXPECT_EQ(dump.find(secret), std::string::npos) << secret;
    EXPECT_NE(dump.find("node_name: edge-1"), std::string::npos);
}

TEST(PushConfig, AnHttpSinkTakesNoAlertsOrChatReportsUnlessAsked) {
    auto c = parse_config(R"(
push:
  sinks:
    - {name: cust, type: http, url: "http://127.0.0.1/api"}
    - {name: cust2, type: http, url: "http://127.0.0.1/api", alerts: true, reports: [startup]}
    - {name: hook, type: webhook, url: "http://127.0.0.1/hook"}
)",
                          "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    const auto& s = c->push.sinks;
    EXPECT_FALSE(s[0].takes("alert"));
    EXPECT_FALSE(s[0].takes("recovery"));
    EXPECT_FALSE(s[0].takes("startup"));
    EXPECT_FALSE(s[0].takes("hourly"));  // the customer report names its sink itself
    EXPECT_TRUE(s[1].takes("alert"));
    EXPECT_TRUE(s[1].takes("recovery"));
    EXPECT_TRUE(s[1].takes("startup"));
    EXPECT_TRUE(s[2].takes("alert"));
    EXPECT_TRUE(s[2].takes("startup"));
}

TEST(PushConfig, ErrorsNameFileLineColumnAndKey) {
    auto c = parse_config("push:\n  sinks:\n    - {name: d, type: dingtalk}\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:3:7: key 'push.sinks[0].token': a dingtalk sink needs token");
    c = parse_config("push:\n  sinks:\n    - {name: d, type: slack}\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "t.yaml:3:23: key 'push.sinks[0].type': expected dingtalk, serverchan, wecom, feishu, webhook, http, "
              "email or collector, got 'slack'");
    c = parse_config(
        "push:\n  sinks:\n    - {name: d, type: http, url: 'http://x'}\n    - {name: d, type: http, url: 'http://y'}\n",
        "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:4:14: key 'push.sinks[1].name': sink name 'd' is used twice");
    c = parse_config("push:\n  retries: 3\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:2:3: key 'push.retries': unknown key");
}

TEST(PushConfig, LanguageIsEnglishUnlessZhIsAsked) {
    auto c = parse_config("push:\n  sinks: []\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->push.language, Language::En);
    c = parse_config("push:\n  language: zh\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->push.language, Language::Zh);
    EXPECT_NE(dump_config(*c).find("language: zh"), std::string::npos);
    c = parse_config("push:\n  language: fr\n", "t.yaml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(), "t.yaml:2:13: key 'push.language': expected zh or en, got 'fr'");
}

// Chinese text is cut in bytes of UTF-8 (the services' limits), never inside a character.
TEST(Sinks, ChineseTextIsCutInUtf8BytesForWeCom) {
    SinkConfig s;
    s.type = "wecom";
    s.key = "k";
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "流量";  // 12000 bytes
    OutboundMessage m{"w", "daily", "2026-11-21", "每日流量 2026-11-21", text, ""};
    auto r = render_request(s, m, MessageMeta{}, 0);
    auto j = nlohmann::json::parse(r.body);
    const std::string content = j["markdown"]["content"];
    EXPECT_LE(content.size(), 4096u);
    EXPECT_EQ(content.rfind("**每日流量 2026-11-21**\n流量", 0), 0u);
    EXPECT_TRUE(nlohmann::json::parse(nlohmann::json(content).dump()).is_string());  // valid UTF-8
}

}  // namespace
}  // namespace pf

namespace pf {
namespace {

// The real libcurl sink against a real local HTTP server.
using testing::LocalServer;

TEST(CurlSink, HttpSinkSendsBodyAndHeadersAndJudgesTheAnswer) {
    std::string got_body, got_auth, got_ct, got_target;
    LocalServer srv([&](const httplib::Request& rq, httplib::Response& rs) {
        got_body = rq.body;
        got_auth = rq.get_header_value("Authorization");
        got_ct = rq.get_header_value("Content-Type");
        got_target = rq.target;
        rs.status = rq.body == "fail" ? 503 : 201;
        rs.set_content("{\"id\":7}", "application/json");
    });
    SinkConfig s;
    s.type = "http";
    s.url = srv.url("/api/v1/points?x=1");
    s.headers = {{"Authorization", "Bearer t0k"}};
    auto sink = make_sink(s, 5);
    SendResult r = sink->send(OutboundMessage{"h", "hourly", "p", "", "", "{\"v0\":12}"}, {});
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.http_status, 201);
    EXPECT_EQ(r.answer, "{\"id\":7}");
    EXPECT_EQ(got_body, "{\"v0\":12}");
    EXPECT_EQ(got_auth, "Bearer t0k");
    EXPECT_EQ(got_ct, "application/json");
    EXPECT_EQ(got_target, "/api/v1/points?x=1");
    r = sink->send(OutboundMessage{"h", "hourly", "p", "", "", "fail"}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "HTTP 503: {\"id\":7}");
}

TEST(CurlSink, ASilentServerTimesOut) {
    LocalServer srv([](const httplib::Request&, httplib::Response& rs) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        rs.set_content("{\"errcode\":0}", "application/json");
    });
    SinkConfig s;
    s.type = "dingtalk";
    s.token = "t";
    s.msgtype = "markdown";
    s.url = srv.url("/robot/send");
    auto start = std::chrono::steady_clock::now();
    SendResult r = make_sink(s, 0.3)->send(OutboundMessage{"d", "test", "", "T", "x", ""}, {});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.http_status, 0);
    EXPECT_EQ(r.error, "Timeout was reached");
    EXPECT_LT(took, std::chrono::milliseconds(1400));  // gave up before the answer came
}

TEST(CurlSink, RefusedConnectionIsAFailure) {
    SinkConfig s;
    s.type = "webhook";
    s.url = "http://127.0.0.1:1/hook";
    SendResult r = make_sink(s, 2)->send(OutboundMessage{"w", "test", "", "T", "x", ""}, {});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "Couldn't connect to server");
}

}  // namespace
}  // namespace pf
