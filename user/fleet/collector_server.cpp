#include "peakflow/fleet/collector_server.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "peakflow/push/outbox.hpp"

namespace pf {

namespace {

using Json = nlohmann::ordered_json;

int64_t system_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string error_body(const std::string& message) {
    Json j;
    j["status"] = "error";
    j["message"] = message;
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// What reading a request body gave: the body, or the status and reason it was refused.
struct Body {
    int status = 0;  // 0: read
    std::string message;
    std::string data;
};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The body, decompressed and capped. cpp-httplib inflates a gzip body while it reads it (it
// is built with zlib): our receiver sees the inflated bytes and stops at the cap, so a gzip
// bomb costs at most kWireMaxDecompressed. Built without zlib it would hand us the gzip
// stream itself: then gzip_decompress does it, with the same cap.
Body read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
               const std::string& encoding) {
    Body b;
    bool over = false;
    const bool ok = reader([&](const char* data, size_t n) {
        if (b.data.size() + n > kWireMaxDecompressed) {
            over = true;
            return false;
        }
        b.data.append(data, n);
        return true;
    });
    if (over) {
        b.status = 413;
        b.message = "decompressed body over " + std::to_string(kWireMaxDecompressed) + " bytes";
        return b;
    }
    if (!ok) {
        // cpp-httplib set 413 when the body as sent was over set_payload_max_length.
        if (res.status == 413) {
            b.status = 413;
            b.message = "body over " + std::to_string(kWireMaxCompressed) + " bytes";
        } else {
            b.status = 400;
            b.message = "cannot read the body: a corrupt gzip stream or a short read";
        }
        return b;
    }
    (void)req;
    if (encoding == "gzip" && b.data.size() >= 2 && static_cast<unsigned char>(b.data[0]) == 0x1f &&
        static_cast<unsigned char>(b.data[1]) == 0x8b) {
        auto d = gzip_decompress(b.data, kWireMaxDecompressed);
        if (!d) {
            const std::string m = d.error().message();
            b.status = m.rfind("decompressed body over", 0) == 0 ? 413 : 400;
            b.message = m;
            return b;
        }
        b.data = std::move(*d);
    }
    return b;
}

bool valid_token_shape(const std::string& t) {
    if (t.size() != 4 + 64 || t.compare(0, 4, kTokenPrefix) != 0) return false;
    for (size_t i = 4; i < t.size(); i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    return true;
}

}  // namespace

std::string human_duration(int64_t s) {
    if (s < 0) s = 0;
    auto two = [](int64_t a, const char* ua, int64_t b, const char* ub) {
        return std::to_string(a) + ua + " " + std::to_string(b) + ub;
    };
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return two(s / 60, "m", s % 60, "s");
    if (s < 86400) return two(s / 3600, "h", s % 3600 / 60, "m");
    return two(s / 86400, "d", s % 86400 / 3600, "h");
}

struct CollectorServer::Impl {
    CollectorOptions o;
    std::optional<Calendar> cal;
    std::unique_ptr<FleetStore> store;
    std::unique_ptr<Outbox> outbox;
    MessageQueue* queue = nullptr;
    std::unique_ptr<httplib::Server> http;
    int port = 0;
    std::thread listener;
    int64_t started = 0;  // collector clock at start: every agent gets a full grace period
    std::mutex alert_file_mu;

    std::thread watcher;
    std::mutex watch_mu;
    std::condition_variable watch_cv;
    bool stopping = false;
    bool stopped = false;

    int64_t now() const { return o.clock(); }

    // Alert file, log, push sinks: what every stored notice goes to.
    void dispatch(const StoredAlert& a, bool push) {
        const bool raised = a.kind == "alert";
        if (raised)
            spdlog::warn("{} ({}): {}", a.title, a.origin == "agent" ? "from the agent" : "collector", a.key);
        else
            spdlog::info("{} ({}): {}", a.title, a.origin == "agent" ? "from the agent" : "collector", a.key);
        append_alert_file(a);
        if (push && queue) {
            OutboundMessage m{"", raised ? "alert" : "recovery", a.key, a.title, a.text, ""};
            if (auto st = queue->enqueue(m); !st)
                spdlog::error("alert {}: cannot queue it: {}", a.key, st.error().message());
        }
    }

    void append_alert_file(const StoredAlert& a) {
        if (o.alert_file.empty()) return;
        std::string line = cal->format_local(a.time) + " " + a.kind + " " + a.agent + ": " + a.title;
        for (auto& c : line)
            if (c == '\n' || c == '\r') c = ' ';
        line += "\n";
        std::lock_guard<std::mutex> l(alert_file_mu);
        // Opened per line: a rotated file is picked up at once, and one write() of a line
        // with O_APPEND never interleaves with another writer's.
        int fd = ::open(o.alert_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            spdlog::error("alert file {}: {}", o.alert_file, std::strerror(errno));
            return;
        }
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            spdlog::error("alert file {}: short write: {}", o.alert_file, std::strerror(errno));
        ::fsync(fd);
        ::close(fd);
    }

    // An offline alert and its recovery share the key, so they pair up in every sink.
    static StoredAlert agent_notice(const AgentRow& a, int64_t now, const char* kind, std::string title,
                                    std::string text) {
        StoredAlert n;
        n.time = now;
        n.agent = a.name;
        n.origin = "collector";
        n.kind = kind;
        n.key = "agent-offline:" + a.name;
        n.node = a.node;
        n.host = a.host;
        n.title = std::move(title);
        n.text = std::move(text);
        return n;
    }

    StoredAlert offline_notice(const AgentRow& a, int64_t now) const {
        const int64_t last = a.last_seen.value_or(0);
        return agent_notice(a, now, "alert", a.name + " offline",
                            "No report from agent **" + a.name + "** (node " + (a.node.empty() ? "-" : a.node) +
                                ", host " + (a.host.empty() ? "-" : a.host) + ") since " + cal->format_local(last) +
                                ": " + human_duration(now - last) + ", more than " + std::to_string(o.offline_after) +
                                " x its " + std::to_string(a.interval) + " s interval.");
    }

    StoredAlert recovery_notice(const AgentRow& a, int64_t now, int64_t backlog) const {
        const int64_t last = a.last_seen.value_or(0);
        return agent_notice(a, now, "recovery", a.name + " back online",
                            "Agent **" + a.name + "** reports again after " + human_duration(now - last) +
                                " without a report (last report " + cal->format_local(last) +
                                "); backlog it announced: " + std::to_string(backlog) + " records.");
    }

    Status check_offline() {
        auto moved = store->mark_offline(now(), started, o.offline_after,
                                         [this](const AgentRow& a, int64_t t) { return offline_notice(a, t); });
        if (!moved) return moved.error();
        for (const auto& t : *moved) dispatch(t.notice, true);
        return Ok{};
    }

    void watch_loop() {
        std::unique_lock<std::mutex> l(watch_mu);
        while (!stopping) {
            watch_cv.wait_for(l, o.watch_every, [this] { return stopping; });
            if (stopping) break;
            l.unlock();
            if (auto st = check_offline(); !st) spdlog::error("offline watch: {}", st.error().message());
            l.lock();
        }
    }

    // The token of `Authorization: Bearer`, checked; the agent's name or a 401 in res.
    std::optional<std::string> authenticate(const httplib::Request& req, std::string& why) {
        const std::string h = req.get_header_value("Authorization");
        const std::string prefix = "Bearer ";
        if (h.compare(0, prefix.size(), prefix) != 0) {
            why = "missing Authorization: Bearer token";
            return std::nullopt;
        }
        const std::string token = h.substr(prefix.size());
        if (!valid_token_shape(token)) {
            why = "unknown or revoked token";
            return std::nullopt;
        }
        auto auth = store->authenticate(token);
        if (!auth) {
            spdlog::error("token lookup: {}", auth.error().message());
            why = "unknown or revoked token";
            return std::nullopt;
        }
        if (!*auth || (*auth)->revoked) {
            why = "unknown or revoked token";
            if (*auth) spdlog::info("{}: token of agent '{}' is revoked", req.remote_addr, (*auth)->agent);
            return std::nullopt;
        }
        return (*auth)->agent;
    }

    void refuse(httplib::Response& res, int status, const std::string& message, const std::string& what,
                const httplib::Request& req, const std::string& agent) {
        spdlog::info("{} from {}{}: refused ({}): {}", what, req.remote_addr,
                     agent.empty() ? "" : " (agent " + agent + ")", status, message);
        res.status = status;
        res.set_content(error_body(message), "application/json");
    }

    // Common to both endpoints: encoding, token, body. False when refused (res set).
    bool admit(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
               const char* what, std::string& agent, std::string& body) {
        const std::string enc = lower(req.get_header_value("Content-Encoding"));
        // The body is read before any refusal: a client still sending it would otherwise
        // get a reset instead of the answer.
        Body b = read_body(req, res, reader, enc);
        if (!enc.empty() && enc != "identity" && enc != "gzip") {
            refuse(res, 415, "Content-Encoding '" + enc + "' is not supported: use gzip or identity", what, req, "");
            return false;
        }
        std::string why;
        auto name = authenticate(req, why);
        if (!name) {
            refuse(res, 401, why, what, req, "");
            return false;
        }
        agent = *name;
        if (b.status) {
            refuse(res, b.status, b.message, what, req, agent);
            return false;
        }
        body = std::move(b.data);
        return true;
    }

    void handle_report(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string agent, body;
        if (!admit(req, res, reader, "report", agent, body)) return;
        const int64_t t = now();
        auto r = parse_report(body, t);
        if (!r) return refuse(res, 400, r.error().message(), "report", req, agent);
        if (r->agent.name != agent)
            return refuse(res, 403, "the token is agent '" + agent + "''s, not '" + r->agent.name + "'s", "report", req,
                          agent);
        const int64_t backlog = r->backlog();
        auto in =
            store->ingest(agent, *r, t, [&](const AgentRow& a, int64_t at) { return recovery_notice(a, at, backlog); });
        if (!in) {
            spdlog::error("report from {} (agent {}): {}", req.remote_addr, agent, in.error().message());
            res.status = 500;
            res.set_content(error_body("cannot store the report: " + in.error().message()), "application/json");
            return;
        }
        if (!in->gap.empty()) {
            refuse(res, 409, in->gap, "report", req, agent);
            Json j = Json::parse(error_body(in->gap));
            j["acked"] = {{"buckets", in->ack.buckets}, {"push", in->ack.push}, {"host", in->ack.host}};
            res.set_content(j.dump(), "application/json");
            return;
        }
        spdlog::info("report from {} (agent {}): accepted {} batch(es), {} record(s){}; backlog {}", req.remote_addr,
                     agent, in->batches, in->records,
                     in->duplicates ? ", " + std::to_string(in->duplicates) + " duplicate batch(es) acknowledged" : "",
                     backlog);
        if (in->notice) dispatch(*in->notice, true);
        res.status = 200;
        res.set_content(render_ack(in->ack), "application/json");
    }

    void handle_alert(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string agent, body;
        if (!admit(req, res, reader, "alert", agent, body)) return;
        StoredAlert a;
        std::string err;
        try {
            if (body.size() > kWireMaxCompressed) throw std::runtime_error("alert body too large");
            Json j = Json::parse(body);
            if (!j.is_object()) throw std::runtime_error("the alert must be a JSON object");
            auto str = [&](const char* k, std::string& out, bool required) {
                auto it = j.find(k);
                if (it == j.end()) {
                    if (required) throw std::runtime_error(std::string("missing field '") + k + "'");
                    return;
                }
                if (!it->is_string()) throw std::runtime_error(std::string("field '") + k + "' must be a string");
                out = it->get<std::string>();
                if (out.size() > kWireMaxString)
                    throw std::runtime_error("a string over " + std::to_string(kWireMaxString) + " bytes");
            };
            str("kind", a.kind, true);
            str("period", a.key, true);
            str("title", a.title, true);
            str("text", a.text, false);
            str("node", a.node, false);
            str("host", a.host, false);
            if (a.kind != "alert" && a.kind != "recovery")
                throw std::runtime_error("field 'kind' must be \"alert\" or \"recovery\"");
        } catch (const std::exception& e) {
            err = e.what();
        }
        if (!err.empty()) return refuse(res, 400, err, "alert", req, agent);
        a.time = now();
        a.agent = agent;
        a.origin = "agent";
        auto added = store->add_alert(a, sha256_hex(body));
        if (!added) {
            spdlog::error("alert from {} (agent {}): {}", req.remote_addr, agent, added.error().message());
            res.status = 500;
            res.set_content(error_body("cannot store the alert: " + added.error().message()), "application/json");
            return;
        }
        if (*added) {
            spdlog::info("alert from {} (agent {}): accepted", req.remote_addr, agent);
            StoredAlert shown = a;
            if (o.forward_alerts) shown.title = agent + ": " + a.title;
            dispatch(shown, o.forward_alerts);
        } else {
            spdlog::info("alert from {} (agent {}): accepted, already stored (a resend)", req.remote_addr, agent);
        }
        res.status = 200;
        res.set_content(R"({"status":"ok"})", "application/json");
    }
};

CollectorServer::CollectorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CollectorServer::~CollectorServer() {
    stop();
}

int CollectorServer::port() const {
    return impl_->port;
}

FleetStore& CollectorServer::store() {
    return *impl_->store;
}

Status CollectorServer::check_offline() {
    return impl_->check_offline();
}

void CollectorServer::stop() {
    Impl& m = *impl_;
    if (m.stopped) return;
    m.stopped = true;
    {
        std::lock_guard<std::mutex> l(m.watch_mu);
        m.stopping = true;
    }
    m.watch_cv.notify_all();
    if (m.watcher.joinable()) m.watcher.join();
    if (m.http) m.http->stop();
    if (m.listener.joinable()) m.listener.join();
    if (m.outbox) m.outbox->stop();
}

Result<std::unique_ptr<CollectorServer>> CollectorServer::start(CollectorOptions o) {
    auto impl = std::make_unique<Impl>();
    Impl& m = *impl;
    if (!o.clock) o.clock = system_seconds;
    m.o = std::move(o);
    auto cal = Calendar::create(m.o.timezone, {PeakWindow{}}, 1);
    if (!cal) return cal.error();
    m.cal = std::move(*cal);
    auto store = FleetStore::open(m.o.database);
    if (!store) return store.error();
    m.store = std::move(*store);
    m.started = m.now();
    if (!m.o.alert_file.empty()) {
        // Best effort: a failure shows at the first alert, with the reason, in the log.
        std::error_code ec;
        auto dir = std::filesystem::path(m.o.alert_file).parent_path();
        if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    }
    if (m.o.queue) {
        m.queue = m.o.queue;
    } else if (m.o.push.configured && !m.o.push.sinks.empty()) {
        OutboxOptions oo;
        oo.database = m.o.database;
        oo.push = m.o.push;
        auto ob = Outbox::open(std::move(oo));
        if (!ob) return ob.error();
        m.outbox = std::move(*ob);
        m.outbox->start();
        m.queue = m.outbox.get();
    }

    if (!m.o.tls_cert.empty() || !m.o.tls_key.empty()) {
        auto ssl = std::make_unique<httplib::SSLServer>(m.o.tls_cert.c_str(), m.o.tls_key.c_str());
        if (!ssl->is_valid())
            return Error("cannot load the TLS certificate " + m.o.tls_cert + " and key " + m.o.tls_key);
        m.http = std::move(ssl);
    } else {
        m.http = std::make_unique<httplib::Server>();
    }
    httplib::Server& s = *m.http;
    const int threads = m.o.threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.set_payload_max_length(kWireMaxCompressed);
    s.set_read_timeout(10, 0);
    s.set_write_timeout(10, 0);
    s.set_keep_alive_timeout(30);
    Impl* ip = &m;
    s.Post("/api/v1/agents/report", [ip](const httplib::Request& rq, httplib::Response& rs,
                                         const httplib::ContentReader& rd) { ip->handle_report(rq, rs, rd); });
    s.Post("/api/v1/agents/alert", [ip](const httplib::Request& rq, httplib::Response& rs,
                                        const httplib::ContentReader& rd) { ip->handle_alert(rq, rs, rd); });
    s.Get("/api/v1/health", [](const httplib::Request&, httplib::Response& rs) {
        rs.set_content(R"({"status":"ok"})", "application/json");
    });
    s.set_exception_handler([](const httplib::Request& rq, httplib::Response& rs, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        spdlog::error("{} {} from {}: internal error: {}", rq.method, rq.path, rq.remote_addr, what);
        rs.status = 500;
        rs.set_content(error_body("internal error"), "application/json");
    });

    if (m.o.port == 0) {
        m.port = s.bind_to_any_port(m.o.host);
        if (m.port < 0) return Error("cannot listen on " + m.o.host + " (any port)");
    } else {
        if (!s.bind_to_port(m.o.host, m.o.port))
            return Error("cannot listen on " + m.o.host + ":" + std::to_string(m.o.port), "", errno,
                         "is another collector running, or the address not local?");
        m.port = m.o.port;
    }
    m.listener = std::thread([ip] { ip->http->listen_after_bind(); });
    // cpp-httplib's stop() does nothing before the listener runs: a stop right after start
    // would leave the listener (and the join) waiting forever.
    for (int i = 0; i < 5000 && !m.http->is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (m.o.watch) m.watcher = std::thread([ip] { ip->watch_loop(); });
    return std::unique_ptr<CollectorServer>(new CollectorServer(std::move(impl)));
}

}  // namespace pf
