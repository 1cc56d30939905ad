#include "peakflow/fleet/wire.hpp"

#include <arpa/inet.h>
#include <zlib.h>

#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace pf {
namespace {

// Key order is what the agent sends and what people read in captures: keep insertion order.
using Json = nlohmann::ordered_json;

// nlohmann throws on strings that are not UTF-8 while dumping: replace such bytes instead,
// so a strange interface or process name never stops a report.
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Nesting of the raw text, brackets outside strings counted: checked before the parser
// sees the text, so a deeply nested body costs nothing.
bool too_deep(const std::string& s, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char ch : s) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (ch == '\\')
                escaped = true;
            else if (ch == '"')
                in_string = false;
            continue;
        }
        if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth) return true;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return false;
}

bool hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "aa:bb:cc:dd:ee:ff" (either case).
bool mac_shaped(const std::string& s) {
    if (s.size() != 17) return false;
    for (size_t i = 0; i < s.size(); i++) {
        if (i % 3 == 2) {
            if (s[i] != ':') return false;
        } else if (!hex_digit(s[i])) {
            return false;
        }
    }
    return true;
}

bool spool_shaped(const std::string& s) {
    if (s.size() != 32) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// Reads typed fields out of one JSON object; the first failure is kept as the reason
// (naming the field by its path) and every later read is a no-op returning false. No call
// here can throw: types are checked before any conversion.
class Fields {
  public:
    Fields(const Json& obj, std::string path, std::string& err) : o_(obj), path_(std::move(path)), err_(err) {}

    bool fail(const std::string& what) {
        if (err_.empty()) err_ = what;
        return false;
    }
    std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

    const Json* find(const char* key, bool required) {
        if (!err_.empty()) return nullptr;
        auto it = o_.find(key);
        if (it == o_.end()) {
            if (required) fail("missing field '" + name(key) + "'");
            return nullptr;
        }
        return &*it;
    }
    bool str(const char* key, std::string& out) {
        const Json* v = find(key, true);
        if (!v) return false;
        if (!v->is_string()) return fail("field '" + name(key) + "' must be a string");
        out = v->get_ref<const std::string&>();
        return true;
    }
    bool boolean(const char* key, bool& out) {
        const Json* v = find(key, true);
        if (!v) return false;
        if (!v->is_boolean()) return fail("field '" + name(key) + "' must be true or false");
        out = v->get<bool>();
        return true;
    }
    // A signed 64-bit integer in [lo, hi].
    bool i64(const char* key, int64_t& out, int64_t lo = std::numeric_limits<int64_t>::min(),
             int64_t hi = std::numeric_limits<int64_t>::max()) {
        const Json* v = find(key, true);
        if (!v) return false;
        if (!v->is_number_integer()) return fail("field '" + name(key) + "' must be an integer");
        int64_t x;
        if (v->is_number_unsigned()) {
            const uint64_t u = v->get<uint64_t>();
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return fail("field '" + name(key) + "' is out of range");
            x = static_cast<int64_t>(u);
        } else {
            x = v->get<int64_t>();
        }
        if (x < lo || x > hi)
            return fail("field '" + name(key) + "' must be between " + std::to_string(lo) + " and " +
                        std::to_string(hi) + ", got " + std::to_string(x));
        out = x;
        return true;
    }
    // A count: a non-negative integer that fits SQLite's signed 64 bits.
    bool u64(const char* key, uint64_t& out) {
        const Json* v = find(key, true);
        if (!v) return false;
        if (!v->is_number_unsigned()) return fail("field '" + name(key) + "' must be a non-negative integer");
        const uint64_t u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            return fail("field '" + name(key) + "' is out of range");
        out = u;
        return true;
    }
    // A number or null (absent counts as null).
    bool opt_f64(const char* key, std::optional<double>& out) {
        const Json* v = find(key, false);
        if (!err_.empty()) return false;
        if (!v || v->is_null()) {
            out.reset();
            return true;
        }
        if (!v->is_number()) return fail("field '" + name(key) + "' must be a number or null");
        out = v->get<double>();
        return true;
    }
    bool opt_i64(const char* key, std::optional<int64_t>& out) {
        const Json* v = find(key, false);
        if (!err_.empty()) return false;
        if (!v || v->is_null()) {
            out.reset();
            return true;
        }
        int64_t x = 0;
        if (!i64(key, x, 0)) return false;
        out = x;
        return true;
    }
    const Json* object(const char* key) {
        const Json* v = find(key, true);
        if (!v) return nullptr;
        if (!v->is_object()) {
            fail("field '" + name(key) + "' must be an object");
            return nullptr;
        }
        return v;
    }
    const Json* array(const char* key) {
        const Json* v = find(key, true);
        if (!v) return nullptr;
        if (!v->is_array()) {
            fail("field '" + name(key) + "' must be an array");
            return nullptr;
        }
        return v;
    }
    bool ok() const { return err_.empty(); }

  private:
    const Json& o_;
    std::string path_;
    std::string& err_;
};

// Every string in the document (keys too) against the cap.
bool strings_capped(const Json& j, std::string& err) {
    if (j.is_string()) {
        if (j.get_ref<const std::string&>().size() > kWireMaxString) {
            err = "a string over " + std::to_string(kWireMaxString) + " bytes";
            return false;
        }
        return true;
    }
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (it.key().size() > kWireMaxString) {
                err = "a key over " + std::to_string(kWireMaxString) + " bytes";
                return false;
            }
            if (!strings_capped(it.value(), err)) return false;
        }
    } else if (j.is_array()) {
        for (const auto& v : j)
            if (!strings_capped(v, err)) return false;
    }
    return true;
}

bool agent_name_ok(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

// Interface names become "agent/iface" in fleet views: no '/', nothing empty.
bool iface_name_ok(const std::string& s) {
    return !s.empty() && s.size() <= 64 && s.find('/') == std::string::npos;
}

std::string ahead(const std::string& what, int64_t t, int64_t now) {
    return what + " " + std::to_string(t) + " is " + std::to_string(t - now) +
           " s ahead of the collector's clock (at most " + std::to_string(kWireMaxClockAhead) + ")";
}

bool parse_agent(const Json& j, int64_t now, WireAgent& a, std::string& err) {
    Fields f(j, "agent", err);
    f.str("name", a.name) && f.str("host", a.host) && f.str("node", a.node) && f.str("version", a.version) &&
        f.str("boot_id", a.boot_id) && f.i64("interval", a.interval, 5, 3600) && f.i64("time", a.time, 0);
    if (!f.ok()) return false;
    if (!agent_name_ok(a.name)) return f.fail("agent.name must be 1 to 64 of A-Z a-z 0-9 . _ -");
    if (a.time > now + kWireMaxClockAhead) return f.fail(ahead("agent.time", a.time, now));
    const Json* ifs = f.array("interfaces");
    if (!ifs) return false;
    if (ifs->size() > 256) return f.fail("agent.interfaces: more than 256");
    for (size_t i = 0; i < ifs->size(); i++) {
        const Json& e = (*ifs)[i];
        const std::string path = "agent.interfaces[" + std::to_string(i) + "]";
        if (!e.is_object()) return f.fail(path + " must be an object");
        Fields g(e, path, err);
        WireInterface w;
        if (!(g.str("name", w.name) && g.str("mac", w.mac) && g.boolean("counted", w.counted))) return false;
        if (!iface_name_ok(w.name)) return g.fail(path + ".name must be 1 to 64 bytes without '/'");
        if (!w.mac.empty() && !mac_shaped(w.mac)) return g.fail(path + ".mac must look like aa:bb:cc:dd:ee:ff");
        a.interfaces.push_back(std::move(w));
    }
    // Optional: agents before the control plane do not send it.
    const Json* cfg = f.find("config", false);
    if (!f.ok()) return false;
    if (cfg) {
        if (!cfg->is_object()) return f.fail("agent.config must be an object");
        Fields g(*cfg, "agent.config", err);
        if (!g.i64("version", a.config_version, 0)) return false;
        const Json* probs = g.array("problems");
        if (!probs) return false;
        if (probs->size() > kCentralMaxKeys)
            return g.fail("agent.config.problems: more than " + std::to_string(kCentralMaxKeys));
        for (size_t i = 0; i < probs->size(); i++) {
            const Json& e = (*probs)[i];
            const std::string path = "agent.config.problems[" + std::to_string(i) + "]";
            if (!e.is_object()) return g.fail(path + " must be an object");
            Fields h(e, path, err);
            ConfigProblem p;
            if (!(h.str("key", p.key) && h.str("message", p.message))) return false;
            a.config_problems.push_back(std::move(p));
        }
    }
    return true;
}

bool parse_central_json(const Json& j, CentralConfig& c, std::string& err) {
    if (!j.is_object()) {
        err = "config must be an object";
        return false;
    }
    Fields f(j, "config", err);
    if (!f.i64("version", c.version, 0)) return false;
    const Json* vals = f.object("values");
    if (!vals) return false;
    if (vals->size() > kCentralMaxKeys) return f.fail("config.values: more than " + std::to_string(kCentralMaxKeys));
    for (auto it = vals->begin(); it != vals->end(); ++it) {
        if (it.key().empty() || it.key().size() > 256) return f.fail("config.values: a key of 0 or over 256 bytes");
        std::string v = it.value().dump(-1, ' ', false, Json::error_handler_t::strict);
        if (v.size() > kCentralMaxValue)
            return f.fail("config.values." + it.key() + ": over " + std::to_string(kCentralMaxValue) + " bytes");
        c.values.emplace(it.key(), std::move(v));
    }
    return true;
}

bool parse_bucket(const Json& e, const std::string& path, int64_t now, WireBucket& b, std::string& err) {
    Fields f(e, path, err);
    f.str("iface", b.iface) && f.str("mac", b.mac) && f.i64("ts", b.ts, 0) && f.boolean("peak", b.peak) &&
        f.u64("rx_bytes", b.rx_bytes) && f.u64("rx_packets", b.rx_packets) && f.u64("tx_bytes", b.tx_bytes) &&
        f.u64("tx_packets", b.tx_packets);
    if (!f.ok()) return false;
    if (!iface_name_ok(b.iface)) return f.fail(path + ".iface must be 1 to 64 bytes without '/'");
    if (!b.mac.empty() && !mac_shaped(b.mac)) return f.fail(path + ".mac must look like aa:bb:cc:dd:ee:ff or be \"\"");
    if (b.ts % 300 != 0) return f.fail(path + ".ts " + std::to_string(b.ts) + " is not a multiple of 300");
    if (b.ts > now + kWireMaxClockAhead) return f.fail(ahead(path + ".ts", b.ts, now));
    return true;
}

bool parse_push(const Json& e, const std::string& path, int64_t now, WirePush& p, std::string& err) {
    Fields f(e, path, err);
    f.i64("id", p.id, 0) && f.i64("time", p.time, 0) && f.str("node", p.node) && f.str("host", p.host) &&
        f.str("sink", p.sink) && f.str("kind", p.kind) && f.str("period", p.period) && f.i64("bytes", p.bytes, 0) &&
        f.str("status", p.status) && f.i64("attempts", p.attempts, 0) && f.str("error", p.error) &&
        f.opt_i64("value", p.value);
    if (!f.ok()) return false;
    if (p.time > now + kWireMaxClockAhead) return f.fail(ahead(path + ".time", p.time, now));
    return true;
}

bool parse_host(const Json& e, const std::string& path, int64_t now, WireHost& h, std::string& err) {
    Fields f(e, path, err);
    if (!f.str("type", h.type)) return false;
    if (h.type == "sys") {
        f.i64("time", h.time, 0) && f.opt_f64("load1", h.load1) && f.opt_f64("cpu", h.cpu) &&
            f.opt_i64("mem_total", h.mem_total) && f.opt_f64("mem_used", h.mem_used) &&
            f.opt_i64("disk_total", h.disk_total) && f.opt_f64("disk_used", h.disk_used) &&
            f.opt_f64("temperature", h.temperature);
        if (!f.ok()) return false;
        if (h.time > now + kWireMaxClockAhead) return f.fail(ahead(path + ".time", h.time, now));
        return true;
    }
    if (h.type == "episode") {
        f.i64("id", h.id, 0) && f.i64("pid", h.pid, 0) && f.str("name", h.name) && f.str("user", h.user) &&
            f.i64("since", h.since, 0) && f.i64("detected", h.detected, 0) && f.i64("ended", h.ended, 0) &&
            f.str("end_reason", h.end_reason) && f.opt_f64("peak_cpu", h.peak_cpu) && f.opt_f64("peak_mem", h.peak_mem);
        if (!f.ok()) return false;
        h.time = h.ended;
        if (h.ended > now + kWireMaxClockAhead) return f.fail(ahead(path + ".ended", h.ended, now));
        return true;
    }
    return f.fail(path + ".type must be \"sys\" or \"episode\", got \"" + h.type + "\"");
}

bool ip_shaped(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool parse_heartbeat(const Json& e, const std::string& path, int64_t now, WireHeartbeat& h, std::string& err) {
    Fields f(e, path, err);
    f.i64("id", h.id, 0) && f.i64("time_ms", h.time_ms, 0) && f.str("service_name", h.service_name) &&
        f.str("ip_address", h.ip_address);
    if (!f.ok()) return false;
    if (h.service_name.empty() || h.service_name.size() > 256)
        return f.fail(path + ".service_name must be 1 to 256 bytes");
    if (!ip_shaped(h.ip_address)) return f.fail(path + ".ip_address must be an IPv4 or IPv6 address");
    if (h.time_ms / 1000 > now + kWireMaxClockAhead) return f.fail(ahead(path + ".time_ms", h.time_ms / 1000, now));
    return true;
}

bool parse_flow_pair(const Json& e, const std::string& path, int64_t now, WireFlowPair& p, std::string& err) {
    Fields f(e, path, err);
    f.i64("ts", p.ts, 0) && f.str("iface", p.iface) && f.boolean("other", p.other) && f.str("src", p.src) &&
        f.str("dst", p.dst) && f.i64("proto", p.proto, 0, 255) && f.i64("port", p.port, 0, 65535) &&
        f.u64("bytes", p.bytes) && f.u64("packets", p.packets) && f.u64("flows", p.flows);
    if (!f.ok()) return false;
    if (!iface_name_ok(p.iface)) return f.fail(path + ".iface must be 1 to 64 bytes without '/'");
    if (p.ts % 300 != 0) return f.fail(path + ".ts " + std::to_string(p.ts) + " is not a multiple of 300");
    if (p.ts > now + kWireMaxClockAhead) return f.fail(ahead(path + ".ts", p.ts, now));
    if (p.other) {
        if (!p.src.empty() || !p.dst.empty() || p.proto != 0 || p.port != 0)
            return f.fail(path + ": the other row has no addresses, proto or port");
    } else if (!ip_shaped(p.src) || !ip_shaped(p.dst)) {
        return f.fail(path + ".src and .dst must be IPv4 or IPv6 addresses");
    }
    return true;
}

bool known_stream(const std::string& s) {
    for (const char* k : kWireStreams)
        if (s == k) return true;
    return false;
}

bool parse_batch(const Json& j, size_t index, int64_t now, WireBatch& b, std::string& err) {
    const std::string path = "batches[" + std::to_string(index) + "]";
    Fields f(j, path, err);
    if (!(f.str("stream", b.stream) && f.i64("seq", b.seq, 1))) return false;
    if (!known_stream(b.stream))
        return f.fail(path + ".stream must be buckets, push, host, heartbeat or flows, got \"" + b.stream + "\"");
    const Json* recs = f.array("records");
    if (!recs) return false;
    if (recs->size() > kWireMaxRecords)
        return f.fail("stream " + b.stream + ": " + std::to_string(recs->size()) + " records in one batch (at most " +
                      std::to_string(kWireMaxRecords) + ")");
    for (size_t i = 0; i < recs->size(); i++) {
        const Json& e = (*recs)[i];
        const std::string rp = path + ".records[" + std::to_string(i) + "]";
        if (!e.is_object()) return f.fail(rp + " must be an object");
        if (b.stream == "buckets") {
            if (!parse_bucket(e, rp, now, b.buckets.emplace_back(), err)) return false;
        } else if (b.stream == "push") {
            if (!parse_push(e, rp, now, b.push.emplace_back(), err)) return false;
        } else if (b.stream == "heartbeat") {
            if (!parse_heartbeat(e, rp, now, b.heartbeat.emplace_back(), err)) return false;
        } else if (b.stream == "flows") {
            if (!parse_flow_pair(e, rp, now, b.flows.emplace_back(), err)) return false;
        } else {
            if (!parse_host(e, rp, now, b.host.emplace_back(), err)) return false;
        }
    }
    return true;
}

Result<WireReport> parse_report_checked(const std::string& text, int64_t now) {
    if (too_deep(text, kWireMaxDepth)) return Error("nesting deeper than " + std::to_string(kWireMaxDepth));
    Json j;
    try {
        j = Json::parse(text);
    } catch (const std::exception& e) {
        return Error(std::string("not JSON: ") + e.what());
    }
    if (!j.is_object()) return Error("the report must be a JSON object");
    std::string err;
    if (!strings_capped(j, err)) return Error(err);
    WireReport r;
    Fields f(j, "", err);
    int64_t protocol = 0;
    if (!f.i64("protocol", protocol)) return Error(err);
    if (protocol != kFleetProtocol)
        return Error("protocol " + std::to_string(protocol) + " not supported (this collector speaks " +
                     std::to_string(kFleetProtocol) + ")");
    r.protocol = kFleetProtocol;
    const Json* agent = f.object("agent");
    if (!agent || !parse_agent(*agent, now, r.agent, err)) return Error(err);
    if (!f.str("spool", r.spool)) return Error(err);
    if (!spool_shaped(r.spool)) return Error("spool must be 32 lowercase hex digits");
    const Json* backlog = f.object("backlog");
    if (!backlog) return Error(err);
    {
        Fields g(*backlog, "backlog", err);
        if (!(g.i64("buckets", r.backlog_buckets, 0) && g.i64("push", r.backlog_push, 0) &&
              g.i64("host", r.backlog_host, 0)))
            return Error(err);
        // Streams agents have sent since heartbeats and flows came: absent from older ones.
        if (backlog->contains("heartbeat") && !g.i64("heartbeat", r.backlog_heartbeat, 0)) return Error(err);
        if (backlog->contains("flows") && !g.i64("flows", r.backlog_flows, 0)) return Error(err);
    }
    // `live` is optional: an agent with nothing open sends none.
    if (j.contains("live")) {
        const Json* live = f.array("live");
        if (!live) return Error(err);
        if (live->size() > kWireMaxRecords)
            return Error("live: " + std::to_string(live->size()) + " records (at most " +
                         std::to_string(kWireMaxRecords) + ")");
        for (size_t i = 0; i < live->size(); i++) {
            const Json& e = (*live)[i];
            const std::string rp = "live[" + std::to_string(i) + "]";
            if (!e.is_object()) return Error(rp + " must be an object");
            if (!parse_bucket(e, rp, now, r.live.emplace_back(), err)) return Error(err);
        }
    }
    const Json* batches = f.array("batches");
    if (!batches) return Error(err);
    if (batches->size() > kWireStreamCount) return Error("more than one batch for a stream");
    for (size_t i = 0; i < batches->size(); i++) {
        const Json& b = (*batches)[i];
        if (!b.is_object()) return Error("batches[" + std::to_string(i) + "] must be an object");
        WireBatch batch;
        if (!parse_batch(b, i, now, batch, err)) return Error(err);
        for (const auto& other : r.batches)
            if (other.stream == batch.stream) return Error("more than one batch for stream " + batch.stream);
        r.batches.push_back(std::move(batch));
    }
    return r;
}

Json render_host(const WireHost& h) {
    auto opt = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
    Json j;
    j["type"] = h.type;
    if (h.type == "episode") {
        j["id"] = h.id;
        j["pid"] = h.pid;
        j["name"] = h.name;
        j["user"] = h.user;
        j["since"] = h.since;
        j["detected"] = h.detected;
        j["ended"] = h.ended;
        j["end_reason"] = h.end_reason;
        j["peak_cpu"] = opt(h.peak_cpu);
        j["peak_mem"] = opt(h.peak_mem);
        return j;
    }
    j["time"] = h.time;
    j["load1"] = opt(h.load1);
    j["cpu"] = opt(h.cpu);
    j["mem_total"] = opt(h.mem_total);
    j["mem_used"] = opt(h.mem_used);
    j["disk_total"] = opt(h.disk_total);
    j["disk_used"] = opt(h.disk_used);
    j["temperature"] = opt(h.temperature);
    return j;
}

// zlib's stream state, freed with the scope.
struct ZStream {
    z_stream s{};
    bool inflating = false;
    bool ready = false;
    ~ZStream() {
        if (!ready) return;
        if (inflating)
            inflateEnd(&s);
        else
            deflateEnd(&s);
    }
};

}  // namespace

int64_t* WireAck::of(const std::string& stream) {
    if (stream == "buckets") return &buckets;
    if (stream == "push") return &push;
    if (stream == "host") return &host;
    if (stream == "heartbeat") return &heartbeat;
    if (stream == "flows") return &flows;
    return nullptr;
}

std::string render_report(const WireReport& r) {
    Json j;
    j["protocol"] = r.protocol;
    Json a;
    a["name"] = r.agent.name;
    a["host"] = r.agent.host;
    a["node"] = r.agent.node;
    a["version"] = r.agent.version;
    a["boot_id"] = r.agent.boot_id;
    a["interval"] = r.agent.interval;
    a["time"] = r.agent.time;
    a["interfaces"] = Json::array();
    for (const auto& i : r.agent.interfaces)
        a["interfaces"].push_back({{"name", i.name}, {"mac", i.mac}, {"counted", i.counted}});
    Json probs = Json::array();
    for (const auto& p : r.agent.config_problems) probs.push_back({{"key", p.key}, {"message", p.message}});
    a["config"] = {{"version", r.agent.config_version}, {"problems", std::move(probs)}};
    j["agent"] = std::move(a);
    j["spool"] = r.spool;
    j["backlog"] = {{"buckets", r.backlog_buckets},
                    {"push", r.backlog_push},
                    {"host", r.backlog_host},
                    {"heartbeat", r.backlog_heartbeat},
                    {"flows", r.backlog_flows}};
    auto bucket = [](const WireBucket& x) {
        return Json{{"iface", x.iface},
                    {"mac", x.mac},
                    {"ts", x.ts},
                    {"peak", x.peak},
                    {"rx_bytes", x.rx_bytes},
                    {"rx_packets", x.rx_packets},
                    {"tx_bytes", x.tx_bytes},
                    {"tx_packets", x.tx_packets}};
    };
    if (!r.live.empty()) {
        j["live"] = Json::array();
        for (const auto& x : r.live) j["live"].push_back(bucket(x));
    }
    j["batches"] = Json::array();
    for (const auto& b : r.batches) {
        Json jb;
        jb["stream"] = b.stream;
        jb["seq"] = b.seq;
        Json recs = Json::array();
        for (const auto& x : b.buckets) recs.push_back(bucket(x));
        for (const auto& x : b.push) {
            Json rec = {{"id", x.id},         {"time", x.time},         {"node", x.node},     {"host", x.host},
                        {"sink", x.sink},     {"kind", x.kind},         {"period", x.period}, {"bytes", x.bytes},
                        {"status", x.status}, {"attempts", x.attempts}, {"error", x.error}};
            // Left out when none: what an agent without values has always sent.
            if (x.value) rec["value"] = *x.value;
            recs.push_back(std::move(rec));
        }
        for (const auto& x : b.host) recs.push_back(render_host(x));
        for (const auto& x : b.heartbeat)
            recs.push_back(
                {{"id", x.id}, {"time_ms", x.time_ms}, {"service_name", x.service_name}, {"ip_address", x.ip_address}});
        for (const auto& x : b.flows)
            recs.push_back({{"ts", x.ts},
                            {"iface", x.iface},
                            {"other", x.other},
                            {"src", x.src},
                            {"dst", x.dst},
                            {"proto", x.proto},
                            {"port", x.port},
                            {"bytes", x.bytes},
                            {"packets", x.packets},
                            {"flows", x.flows}});
        jb["records"] = std::move(recs);
        j["batches"].push_back(std::move(jb));
    }
    return dump(j);
}

Result<WireReport> parse_report(const std::string& json, int64_t now) {
    // Nothing the checks call should throw; this is the last guard for a 400, not a crash.
    try {
        return parse_report_checked(json, now);
    } catch (const std::exception& e) {
        return Error(std::string("malformed report: ") + e.what());
    }
}

std::string render_ack(const WireAck& a) {
    Json j;
    j["status"] = "ok";
    j["acked"] = {
        {"buckets", a.buckets}, {"push", a.push}, {"host", a.host}, {"heartbeat", a.heartbeat}, {"flows", a.flows}};
    j["time"] = a.time;
    if (a.config) j["config"] = Json::parse(render_central(*a.config));
    return dump(j);
}

std::string render_central(const CentralConfig& c) {
    Json j;
    j["version"] = c.version;
    j["values"] = Json::object();
    for (const auto& [k, v] : c.values) {
        // Values were checked as JSON when they were set; one that is not stays a string.
        Json parsed = Json::parse(v, nullptr, false);
        j["values"][k] = parsed.is_discarded() ? Json(v) : std::move(parsed);
    }
    return dump(j);
}

Result<CentralConfig> parse_central(const std::string& json) {
    try {
        if (json.size() > kWireMaxDecompressed) return Error("config over " + std::to_string(kWireMaxDecompressed));
        if (too_deep(json, kWireMaxDepth)) return Error("config nested too deep");
        CentralConfig c;
        std::string err;
        if (!parse_central_json(Json::parse(json), c, err)) return Error(err);
        return c;
    } catch (const std::exception& e) {
        return Error(std::string("config not JSON: ") + e.what());
    }
}

Result<WireAck> parse_ack(const std::string& json) {
    try {
        if (too_deep(json, kWireMaxDepth)) return Error("answer nested too deep");
        Json j = Json::parse(json);
        if (!j.is_object()) return Error("the answer is not a JSON object");
        std::string err;
        Fields f(j, "", err);
        WireAck a;
        const Json* acked = f.object("acked");
        if (!acked) return Error(err);
        Fields g(*acked, "acked", err);
        if (!(g.i64("buckets", a.buckets, 0) && g.i64("push", a.push, 0) && g.i64("host", a.host, 0)))
            return Error(err);
        // Absent from a collector before heartbeats and flows: it holds none of them.
        if (acked->contains("heartbeat") && !g.i64("heartbeat", a.heartbeat, 0)) return Error(err);
        if (acked->contains("flows") && !g.i64("flows", a.flows, 0)) return Error(err);
        // An error answer (409) carries acked without a time.
        if (j.contains("time") && !f.i64("time", a.time, 0)) return Error(err);
        if (auto it = j.find("config"); it != j.end()) {
            CentralConfig c;
            if (!parse_central_json(*it, c, err)) return Error(err);
            a.config = std::move(c);
        }
        return a;
    } catch (const std::exception& e) {
        return Error(std::string("answer not JSON: ") + e.what());
    }
}

std::string gzip_compress(const std::string& data) {
    ZStream z;
    // 15 + 16: a gzip header and trailer rather than a raw zlib stream.
    if (deflateInit2(&z.s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
    z.ready = true;
    std::string out;
    out.resize(deflateBound(&z.s, static_cast<uLong>(data.size())) + 32);
    z.s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.s.avail_in = static_cast<uInt>(data.size());
    z.s.next_out = reinterpret_cast<Bytef*>(out.data());
    z.s.avail_out = static_cast<uInt>(out.size());
    // deflateBound holds the whole output: one call finishes.
    if (deflate(&z.s, Z_FINISH) != Z_STREAM_END) return {};
    out.resize(z.s.total_out);
    return out;
}

Result<std::string> gzip_decompress(const std::string& data, size_t max_out) {
    ZStream z;
    if (inflateInit2(&z.s, 15 + 16) != Z_OK) return Error("gzip: cannot initialise zlib");
    z.inflating = true;
    z.ready = true;
    z.s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.s.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        z.s.next_out = reinterpret_cast<Bytef*>(buf);
        z.s.avail_out = sizeof buf;
        int rc = inflate(&z.s, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return Error(std::string("corrupt gzip stream: ") + (z.s.msg ? z.s.msg : zError(rc)));
        const size_t n = sizeof buf - z.s.avail_out;
        // Checked per chunk: a bomb is refused after at most one chunk past the cap.
        if (out.size() + n > max_out) return Error("decompressed body over " + std::to_string(max_out) + " bytes");
        out.append(buf, n);
        if (rc == Z_STREAM_END) {
            if (z.s.avail_in != 0) return Error("corrupt gzip stream: data after its end");
            return out;
        }
        if (n == 0 && (rc == Z_BUF_ERROR || z.s.avail_in == 0)) return Error("corrupt gzip stream: truncated");
    }
}

}  // namespace pf
