#pragma once
// The agent's heartbeat checks (docs/fleet.md, "Heartbeats from agents"): services that
// send no heartbeats themselves (Kafka, Redis, a database) are checked by the agent - a TCP
// connect, a systemd unit that must be active, a process that must run - and each passing
// check becomes a heartbeat sent through the collector link, so it survives an outage in
// the agent's history like every other record.

#include <ostream>
#include <string>

#include "peakflow/common/paths.hpp"
#include "peakflow/fleet/uplink_config.hpp"

namespace pf {

struct CheckResult {
    bool ok = false;
    std::string why;  // why it failed ("" when ok): "connect to 127.0.0.1:6379: Connection refused"
};

// Runs one check within its timeout. Process checks read `paths.procfs`.
CheckResult run_heartbeat_check(const HeartbeatCheck& c, const Paths& paths);

// The local address this host would use to reach `url`'s host (a UDP socket connected to
// it, nothing sent); "" when the host is not a numeric address with a route, or cannot be
// resolved.
std::string source_address_for(const std::string& url);

// The address a check's heartbeats carry: its `ip`; else a TCP check's host when that is a
// numeric address other than loopback; else `fallback` (the host's address towards the
// collector).
std::string heartbeat_ip(const HeartbeatCheck& c, const std::string& fallback);

// `peakflow-bpf heartbeat send`: one heartbeat to a heartbeat service by hand (scripts,
// cron), in the requirements' body. `url`: the collector (http(s)://host:port) or the full
// .../heartbeat/report URL. `ip` empty: the address this host uses towards the collector.
// `token`: a heartbeat token (pfh_...) or "" when the source address is allowed.
struct HeartbeatSendOptions {
    std::string url, service_name, ip, token, ca_file;
};
// 0: recorded (the answer's id and time printed); 1: refused or unreachable (why on err).
int send_heartbeat(const HeartbeatSendOptions& o, std::ostream& out, std::ostream& err);

}  // namespace pf
