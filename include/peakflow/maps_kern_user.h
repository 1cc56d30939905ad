/* Shared by the BPF programs (bpf/) and userspace (user/): every struct and constant
 * that crosses the kernel/user boundary lives here and nowhere else. Plain C, UAPI types
 * only, explicit padding so both compilers agree on layout (user/abi_check.cpp
 * static_asserts the sizes). */
#pragma once

#include <linux/types.h>

#define PF_DIR_RX 0 /* ingress: XDP, or TC ingress with --xdp-mode off */
#define PF_DIR_TX 1 /* egress: TC */
#define PF_DIR_COUNT 2

#define PF_DEFAULT_MAC_CAPACITY 4096
#define PF_DEFAULT_FLOW_CAPACITY 65536

/* Events counted in the events map (per-CPU array indexed by this enum). */
enum pf_event {
	PF_EV_MAC_MAP_FULL = 0,  /* a new peer MAC could not be inserted: MAC totals incomplete */
	PF_EV_FLOW_MAP_FULL = 1, /* a new flow could not be inserted (best effort map) */
	PF_EV_UNPARSABLE = 2,    /* frame too short or a truncated L2/L3/L4 header */
	PF_EV_NON_IP = 3,        /* valid Ethernet frame that is neither IPv4 nor IPv6 (ARP, LLDP...) */
	PF_EV_COUNT = 4,
};

/* Map names: the pin file names under /sys/fs/bpf/peakflow/<ifname>/. */
#define PF_MAP_IFACE "pf_iface"
#define PF_MAP_MAC "pf_mac"
#define PF_MAP_FLOW "pf_flow"
#define PF_MAP_EVENTS "pf_events"

/* Program names as the kernel reports them (BPF_OBJ_NAME_LEN is 16). */
#define PF_PROG_XDP "pf_xdp_ingress"
#define PF_PROG_TC_INGRESS "pf_tc_ingress"
#define PF_PROG_TC_EGRESS "pf_tc_egress"

/* Priority/handle of our TC filters on the clsact hook: fixed, so detach finds them.
 * We run early and return TC_ACT_UNSPEC, so filters after ours still run. */
#define PF_TC_PRIORITY 16 /* before filters tc numbers by default (49152 and down) */
#define PF_TC_HANDLE 0xbf01

/* pf_iface: per-CPU array, key = direction. */
struct pf_counter {
	__u64 bytes;
	__u64 packets;
};

/* pf_mac: per-CPU hash keyed by the peer MAC (source on ingress, destination on egress). */
struct pf_mac_key {
	__u8 mac[6];
	__u8 pad[2];
};

struct pf_mac_value {
	struct pf_counter dir[PF_DIR_COUNT];
};

/* pf_flow: per-CPU hash, best effort. IPv4 addresses are stored IPv4-mapped
 * (::ffff:a.b.c.d) so one key serves both families. Ports in host byte order; for
 * ICMP/ICMPv6 src_port = 0 and dst_port = type << 8 | code, as NetFlow exporters do. */
struct pf_flow_key {
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u16 src_port;
	__u16 dst_port;
	__u16 vlan[2]; /* outer and inner VLAN id, 0 when absent */
	__u8 proto;    /* IPPROTO_* of the transport header, 0 if none was found */
	__u8 dir;      /* PF_DIR_* */
	__u8 family;   /* 4 or 6 */
	__u8 pad;
};

struct pf_flow_value {
	__u64 bytes;
	__u64 packets;
	__u64 first_seen_ns; /* CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns) */
	__u64 last_seen_ns;
	__u8 tcp_flags;      /* OR of every TCP flags byte seen */
	__u8 pad[7];
};
