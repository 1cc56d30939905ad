/* Shared by the BPF programs (bpf/) and userspace (user/): every struct and constant
 * that crosses the kernel/user boundary lives here and nowhere else. Plain C, UAPI types
 * only, explicit padding so both compilers agree on layout (the static_asserts at the
 * end hold the C++ side to the sizes and offsets the programs use). */
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
#define PF_MAP_FLOW_ACK "pf_flow_ack"
#define PF_MAP_USED "pf_used"
#define PF_MAP_CONF "pf_conf"

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

/* The MAC and flow tables are open-addressing hash tables that the programs keep in
 * arrays, one table per CPU, written only by that CPU: the packet path needs no locks, no
 * atomics and no helper calls (array lookups are inlined by the verifier). A key hashes
 * to a home slot (seeded hash, hash_kern_user.h) and is looked for in the next
 * PF_*_PROBES slots. Userspace sums the slots of one key over the CPUs. The MAC tables
 * are a per-CPU array; the flow tables are CPU-sized regions of one mmapable array
 * (index cpu * flow_slots + slot), which userspace reads in place instead of copying
 * element by element through the bpf syscall. */
#define PF_MAC_PROBES 32
#define PF_FLOW_PROBES 32

/* pf_mac: per-CPU array of slots, keyed by the peer MAC (source on ingress, destination
 * on egress). A slot, once taken, keeps its MAC for the life of the map: the counters
 * are exact totals. used = 1 marks a taken slot (the first 8 bytes, compared as one
 * 64-bit word, are never 0 then). */
struct pf_mac_slot {
	__u8 mac[6];
	__u8 used;
	__u8 pad;
	struct pf_counter dir[PF_DIR_COUNT];
};

/* pf_flow: array of ncpus * flow_slots slots, best effort. IPv4 addresses are stored IPv4-mapped
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

/* One flow slot of one CPU. gen numbers the slot's occupants (0: never used); a program
 * that gives the slot to a new flow first raises gen, then writes the flow, then sets
 * gen_tail = gen, both with atomic operations (full barriers), so a reader that sees
 * gen != gen_tail caught the slot being rewritten. Times are in jiffies
 * (bpf_jiffies64(), tick resolution); userspace converts them to CLOCK_MONOTONIC. */
struct pf_flow_slot {
	__u64 gen;
	struct pf_flow_key key;
	__u64 bytes;
	__u64 packets;
	__u64 first_seen; /* jiffies */
	__u64 last_seen;  /* jiffies */
	__u8 tcp_flags;   /* OR of every TCP flags byte seen */
	__u8 pad[7];
	__u64 gen_tail;
};

/* pf_flow_ack: mmapable array parallel to pf_flow, written by userspace only.
 * Userspace acknowledges a flow it has taken in full by writing the slot's counters and
 * then, in one 8-byte store, token = pf_ack_token(gen, packets). The program may give the
 * slot to another flow (or restart it as a new flow when it is seen again) only while
 * the slot's own token equals it, i.e. it still holds exactly what was acknowledged: no
 * packet is ever dropped unread. */
struct pf_flow_ack {
	__u64 token;
	__u64 gen;
	__u64 packets;
	__u64 bytes;
	__u64 last_seen; /* jiffies */
};

/* 24 bits of gen, 40 of packets: one word, so a reader never sees half an ack. */
static inline __u64 pf_ack_token(__u64 gen, __u64 packets)
{
	return (gen << 40) | (packets & 0xffffffffffULL);
}

/* pf_conf: array of one, written by the loader when the maps are made; a re-attach
 * reuses it, so programs loaded later hash keys to the same slots. */
struct pf_conf {
	__u64 seed;       /* hash seed, random per set of maps */
	__u32 mac_slots;  /* per CPU, a power of two */
	__u32 mac_limit;  /* MACs one CPU's table takes (the configured capacity) */
	__u32 flow_slots; /* per CPU, a power of two */
	__u32 ncpus;      /* possible CPUs the ack map was sized for */
};

#ifdef __cplusplus
#include <cstddef>
static_assert(sizeof(struct pf_counter) == 16);
static_assert(sizeof(struct pf_mac_slot) == 40 && offsetof(struct pf_mac_slot, dir) == 8);
static_assert(sizeof(struct pf_flow_key) == 56, "hashed as 7 64-bit words");
static_assert(sizeof(struct pf_flow_slot) == 112 && offsetof(struct pf_flow_slot, key) == 8 &&
	      offsetof(struct pf_flow_slot, gen_tail) == 104);
static_assert(sizeof(struct pf_flow_ack) == 40);
static_assert(sizeof(struct pf_conf) == 24);
#endif
