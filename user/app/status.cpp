#include "peakflow/app/status.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "peakflow/accounting/calendar.hpp"
#include "peakflow/common/fd.hpp"
#include "peakflow/common/sqlite.hpp"
#include "peakflow/kernel/dump.hpp"
#include "peakflow/kernel/loader.hpp"

namespace pf {

namespace {

// The pid in the interface's pid file when that process is alive and is peakflow-bpf (a
// pid file left by a kill -9 names a dead or reused pid).
std::optional<long> daemon_pid(const Paths& paths, const std::string& ifname) {
    std::ifstream in(paths.run_dir + "/" + ifname + ".pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 0) return std::nullopt;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return std::nullopt;
    std::ifstream comm(paths.procfs + "/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name != "peakflow-bpf") return std::nullopt;
    return pid;
}

// Slots taken in each CPU's MAC table (pf_used, one per-CPU value).
std::vector<uint64_t> mac_used(const std::string& pin_dir) {
    Fd fd(bpf_obj_get((pin_dir + "/" PF_MAP_USED).c_str()));
    if (!fd.valid()) return {};
    const int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0) return {};
    std::vector<uint64_t> v(static_cast<size_t>(ncpus));  // per-CPU values of 8 bytes: no padding
    uint32_t key = 0;
    if (bpf_map_lookup_elem(fd.get(), &key, v.data()) != 0) return {};
    return v;
}

void read_store(StoreStatus& s) {
    SqliteOptions o;
    o.mode = SqliteMode::ReadOnly;
    o.busy_timeout_ms = 2000;
    if (!std::filesystem::exists(s.path)) {
        s.error = "no history database yet (the daemon creates it)";
        return;
    }
    auto db = SqliteDb::open(s.path, o);
    if (!db) {
        s.error = db.error().message();
        return;
    }
    s.readable = true;
    auto one = [&](const char* sql) -> std::optional<int64_t> {
        auto q = db->prepare(sql);
        if (!q || q->step() != SQLITE_ROW || q->is_null(0)) return std::nullopt;
        return q->i64(0);
    };
    s.newest_bucket = one("SELECT MAX(ts) FROM bucket5m");
    s.outbox = one("SELECT COUNT(*) FROM outbox");
    s.uplink_attempt = one("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.last_attempt'");
    s.uplink_ack = one("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.last_ack'");
    s.uplink_backlog = one("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'uplink.backlog'");
    if (auto q = db->prepare("SELECT value FROM meta WHERE key = 'uplink.last_error'"); q && q->step() == SQLITE_ROW)
        s.uplink_error = q->text(0);
}

std::string why_not(const IfaceStatus& s) {
    if (!s.exists && !s.pinned) return "no such interface";
    if (!s.pinned) return "not attached (no pinned maps): peakflow-bpf attach " + s.name;
    if (!s.exists) return "the interface is gone; its maps are still pinned (peakflow-bpf detach " + s.name + ")";
    if (s.xdp == "none" && !s.tc_ingress) return "no ingress program attached";
    if (!s.tc_egress) return "no egress program attached";
    if (!s.daemon_pid) return "no daemon: the kernel counts, but nothing drains the counters into the history";
    return "";
}

}  // namespace

bool StatusReport::ok() const {
    if (ifaces.empty()) return false;
    return std::all_of(ifaces.begin(), ifaces.end(), [](const IfaceStatus& s) { return s.problem.empty(); });
}

StatusReport collect_status(std::vector<std::string> ifaces, const std::vector<std::string>& configured,
                            const std::string& database, const Paths& paths) {
    if (ifaces.empty()) {
        std::set<std::string> all(configured.begin(), configured.end());
        for (const auto& p : pinned_interfaces(paths)) all.insert(p);
        ifaces.assign(all.begin(), all.end());
    }
    StatusReport r;
    for (const auto& name : ifaces) {
        IfaceStatus s;
        s.name = name;
        s.exists = if_nametoindex(name.c_str()) != 0;
        const AttachState a = query_attach_state(name, paths);
        s.xdp = a.xdp_mode != XdpMode::Off ? to_string(a.xdp_mode) : "none";
        s.tc_ingress = a.tc_ingress;
        s.tc_egress = a.tc_egress;
        s.pinned = a.pinned;
        s.daemon_pid = daemon_pid(paths, name);
        if (s.pinned) {
            if (auto maps = MapSet::open_pinned(paths.pin_dir(name)); maps) {
                s.mac_capacity = maps->conf().mac_limit;
                s.flow_slots = maps->conf().flow_slots;
                s.mac_used = mac_used(paths.pin_dir(name));
                if (auto t = maps->read_iface(); t) {
                    s.rx_bytes = t->dir[PF_DIR_RX].bytes;
                    s.rx_packets = t->dir[PF_DIR_RX].packets;
                    s.tx_bytes = t->dir[PF_DIR_TX].bytes;
                    s.tx_packets = t->dir[PF_DIR_TX].packets;
                }
                if (auto f = maps->read_flows(); f) s.flows = f->size();
                if (auto e = maps->read_events(); e) s.events = *e;
            } else {
                s.problem = "pinned maps unreadable: " + maps.error().message();
            }
        }
        if (s.problem.empty()) s.problem = why_not(s);
        r.ifaces.push_back(std::move(s));
    }
    r.store.path = database;
    read_store(r.store);
    return r;
}

std::string render_status_text(const StatusReport& r, const Calendar& cal, int64_t now) {
    std::string out;
    if (r.ifaces.empty()) out += "no interface: none is attached or configured\n";
    for (const auto& s : r.ifaces) {
        std::string hooks;
        if (s.xdp != "none") hooks = "XDP " + s.xdp;
        if (s.tc_ingress) hooks += std::string(hooks.empty() ? "" : ", ") + "TC ingress";
        if (s.tc_egress) hooks += std::string(hooks.empty() ? "" : ", ") + "TC egress";
        out += s.name + ": " + (s.problem.empty() ? "counting" : "NOT counting: " + s.problem) + "\n";
        out += "  programs: " + (hooks.empty() ? std::string("none") : hooks) + "\n";
        out += "  daemon: " + (s.daemon_pid ? "pid " + std::to_string(*s.daemon_pid) : std::string("none")) + "\n";
        if (!s.pinned) continue;
        uint64_t used = 0, most = 0;
        for (uint64_t u : s.mac_used) {
            used += u;
            most = std::max(most, u);
        }
        out += "  maps: MAC slots " + std::to_string(most) + " of " + std::to_string(s.mac_capacity) +
               " on the fullest CPU (";
        for (size_t i = 0; i < s.mac_used.size(); i++)
            out += (i ? ", " : "") + std::string("cpu") + std::to_string(i) + " " + std::to_string(s.mac_used[i]);
        out += "); flows " + std::to_string(s.flows) + " (" + std::to_string(s.flow_slots) + " slots per CPU)\n";
        out += "  totals: rx " + std::to_string(s.rx_bytes) + " bytes " + std::to_string(s.rx_packets) +
               " packets, tx " + std::to_string(s.tx_bytes) + " bytes " + std::to_string(s.tx_packets) + " packets\n";
        out += "  events:";
        for (int e = 0; e < PF_EV_COUNT; e++)
            out += std::string(" ") + event_name(e) + "=" + std::to_string(s.events[static_cast<size_t>(e)]);
        out += "\n";
    }
    out += "history: " + r.store.path;
    if (!r.store.readable) {
        out += ": " + r.store.error + "\n";
    } else {
        out += r.store.newest_bucket ? "; newest 5-minute bucket " + cal.format_local(*r.store.newest_bucket) + " (" +
                                           std::to_string(now - *r.store.newest_bucket) + " s ago)"
                                     : "; no bucket yet";
        if (r.store.outbox) out += "; outbox " + std::to_string(*r.store.outbox) + " waiting";
        out += "\n";
    }
    if (const StoreStatus& st = r.store; st.uplink_attempt) {
        auto when = [&](int64_t t) { return cal.format_local(t) + " (" + std::to_string(now - t) + " s ago)"; };
        out += "collector: ";
        out += st.uplink_error.empty() ? "last report acknowledged " + when(*st.uplink_attempt)
                                       : "last report " + when(*st.uplink_attempt) + " failed: " + st.uplink_error +
                                             (st.uplink_ack ? "; last acknowledged " + when(*st.uplink_ack)
                                                            : std::string("; never acknowledged"));
        out += "; " + std::to_string(st.uplink_backlog.value_or(0)) + " records waiting\n";
    }
    return out;
}

std::string render_status_json(const StatusReport& r) {
    using json = nlohmann::ordered_json;
    json ifs = json::array();
    for (const auto& s : r.ifaces) {
        json j = {{"name", s.name},
                  {"counting", s.problem.empty()},
                  {"problem", s.problem.empty() ? json(nullptr) : json(s.problem)},
                  {"exists", s.exists},
                  {"xdp", s.xdp},
                  {"tc_ingress", s.tc_ingress},
                  {"tc_egress", s.tc_egress},
                  {"pinned", s.pinned},
                  {"daemon_pid", s.daemon_pid ? json(*s.daemon_pid) : json(nullptr)}};
        if (s.pinned) {
            j["mac_capacity_per_cpu"] = s.mac_capacity;
            j["mac_used_per_cpu"] = s.mac_used;
            j["flow_slots_per_cpu"] = s.flow_slots;
            j["flows"] = s.flows;
            j["rx"] = {{"bytes", s.rx_bytes}, {"packets", s.rx_packets}};
            j["tx"] = {{"bytes", s.tx_bytes}, {"packets", s.tx_packets}};
            json ev = json::object();
            for (int e = 0; e < PF_EV_COUNT; e++) ev[event_name(e)] = s.events[static_cast<size_t>(e)];
            j["events"] = ev;
        }
        ifs.push_back(std::move(j));
    }
    json store = {{"path", r.store.path},
                  {"readable", r.store.readable},
                  {"error", r.store.readable ? json(nullptr) : json(r.store.error)},
                  {"newest_bucket", r.store.newest_bucket ? json(*r.store.newest_bucket) : json(nullptr)},
                  {"outbox", r.store.outbox ? json(*r.store.outbox) : json(nullptr)}};
    json link = nullptr;
    if (r.store.uplink_attempt)
        link = {{"last_attempt", *r.store.uplink_attempt},
                {"last_ack", r.store.uplink_ack ? json(*r.store.uplink_ack) : json(nullptr)},
                {"backlog", r.store.uplink_backlog.value_or(0)},
                {"error", r.store.uplink_error.empty() ? json(nullptr) : json(r.store.uplink_error)}};
    return json{{"ok", r.ok()}, {"interfaces", ifs}, {"history", store}, {"collector", link}}.dump(
               -1, ' ', false, json::error_handler_t::replace) +
           "\n";
}

}  // namespace pf
