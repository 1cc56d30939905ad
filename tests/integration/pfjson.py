#!/usr/bin/python3
"""Reads `peakflow-bpf dump --json` output for the integration tests.

pfjson.py FILE iface IFNAME            -> "rx_bytes rx_packets tx_bytes tx_packets xdp_mode"
pfjson.py FILE mac IFNAME MAC          -> "rx_bytes rx_packets tx_bytes tx_packets" (0s if no row)
pfjson.py FILE other-macs IFNAME MAC   -> one line per other MAC row with a non-zero counter
pfjson.py FILE events IFNAME           -> "mac_map_full flow_map_full unparsable non_ip"
pfjson.py FILE flow IFNAME DIR SRC DST SPORT DPORT PROTO -> "bytes packets" over matching rows

Checks the shape promised by the CLI contract on the way and exits 2 with a message
naming what is wrong.
"""
import json
import re
import sys

IFACE_KEYS = ["name", "ifindex", "xdp_mode", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets", "macs", "events"]
COUNTERS = ["rx_bytes", "rx_packets", "tx_bytes", "tx_packets"]
EVENTS = ["mac_map_full", "flow_map_full", "unparsable", "non_ip"]
FLOW_KEYS = ["src", "dst", "src_port", "dst_port", "proto", "family", "dir", "vlan", "src_mac", "dst_mac",
             "bytes", "packets"]
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
PROTO_NUM = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "ipv6-icmp": 58}


def die(msg):
    print(f"pfjson: {msg}", file=sys.stderr)
    sys.exit(2)


def is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_iface(path, ifname):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        die(f"dump output {path} is not one JSON object: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("interfaces"), list):
        die('dump output has no "interfaces" array')
    rows = [i for i in doc["interfaces"] if isinstance(i, dict) and i.get("name") == ifname]
    if len(rows) != 1:
        die(f"expected exactly one interface named {ifname} in the dump, found {len(rows)}")
    it = rows[0]
    missing = [k for k in IFACE_KEYS if k not in it]
    if missing:
        die(f"interface object lacks {missing}")
    for k in COUNTERS:
        if not is_count(it[k]):
            die(f"{k} is not a non-negative integer: {it[k]!r}")
    if not isinstance(it["macs"], list):
        die('"macs" is not an array')
    for m in it["macs"]:
        for k in ["mac"] + COUNTERS:
            if k not in m:
                die(f"MAC row lacks {k}: {m}")
        if not MAC_RE.match(m["mac"]):
            die(f"MAC string not lowercase aa:bb:cc:dd:ee:ff: {m['mac']!r}")
    for k in EVENTS:
        if not is_count(it["events"].get(k)):
            die(f'events.{k} missing or not a count: {it["events"]}')
    return it


def proto_matches(v, want):
    if isinstance(v, str):
        v = PROTO_NUM.get(v.lower(), v)
    return str(v) == str(PROTO_NUM.get(want.lower(), want))


def main(argv):
    if len(argv) < 4:
        die(__doc__)
    path, what, ifname = argv[1], argv[2], argv[3]
    it = load_iface(path, ifname)
    if what == "iface":
        print(*(it[k] for k in COUNTERS), str(it["xdp_mode"]).replace(" ", "_"))
    elif what == "mac":
        want = argv[4].lower()
        rows = [m for m in it["macs"] if m["mac"] == want]
        if len(rows) > 1:
            die(f"MAC {want} appears {len(rows)} times")
        print(*((rows[0][k] for k in COUNTERS) if rows else (0, 0, 0, 0)))
    elif what == "other-macs":
        want = argv[4].lower()
        for m in it["macs"]:
            if m["mac"] != want and any(m[k] for k in COUNTERS):
                print(m["mac"], *(m[k] for k in COUNTERS))
    elif what == "events":
        print(*(it["events"][k] for k in EVENTS))
    elif what == "flow":
        d, src, dst, sport, dport, proto = argv[4:10]
        flows = it.get("flows")
        if not isinstance(flows, list):
            die('no "flows" array (was --flows given?)')
        b = p = 0
        for fl in flows:
            missing = [k for k in FLOW_KEYS if k not in fl]
            if missing:
                die(f"flow row lacks {missing}: {fl}")
            if (fl["dir"] == d and fl["src"] == src and fl["dst"] == dst and str(fl["src_port"]) == sport
                    and str(fl["dst_port"]) == dport and proto_matches(fl["proto"], proto)):
                b += fl["bytes"]
                p += fl["packets"]
        print(b, p)
    else:
        die(f"unknown query {what}")


if __name__ == "__main__":
    main(sys.argv)
