// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* peakflow kernel side: one accounting body, three thin entry points (XDP ingress,
 * TC ingress for --xdp-mode off, TC egress). Passive by construction: every path ends in
 * XDP_PASS / TC_ACT_UNSPEC and nothing writes packet memory. Built from UAPI headers only. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "peakflow/hash_kern_user.h"
#include "peakflow/maps_kern_user.h"
#include "parse.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time knobs, set by the loader between open and load (from struct pf_conf when
 * the maps already exist). The defaults match the maps' default sizes. */
const volatile __u8 pf_flows_enabled = 1;
const volatile __u64 pf_seed = 0;
const volatile __u32 pf_mac_mask = 4 * PF_DEFAULT_MAC_CAPACITY - 1;
const volatile __u32 pf_mac_limit = PF_DEFAULT_MAC_CAPACITY;
const volatile __u32 pf_flow_mask = PF_DEFAULT_FLOW_CAPACITY - 1;
const volatile __u32 pf_flow_slots = PF_DEFAULT_FLOW_CAPACITY; /* per CPU */

/* Per-CPU maps need no atomics: a BPF program runs to completion on one CPU, and the
 * hooks we use do not nest on a CPU (XDP runs in NAPI softirq, TC egress with bottom
 * halves disabled), so each CPU's slot has a single writer. Userspace sums the slots. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_DIR_COUNT);
	__type(key, __u32);
	__type(value, struct pf_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_iface SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4 * PF_DEFAULT_MAC_CAPACITY); /* resized by the loader */
	__type(key, __u32);
	__type(value, struct pf_mac_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_mac SEC(".maps");

/* One flow table per CPU, in regions of pf_flow_slots: see maps_kern_user.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_DEFAULT_FLOW_CAPACITY); /* ncpus * flow slots, set by the loader */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pf_flow_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_flow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PF_DEFAULT_FLOW_CAPACITY); /* ncpus * flow slots, set by the loader */
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pf_flow_ack);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_flow_ack SEC(".maps");

/* Slots taken in this CPU's MAC table. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_used SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_conf);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_EV_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_events SEC(".maps");

static __always_inline void count_event(__u32 ev)
{
	__u64 *n = bpf_map_lookup_elem(&pf_events, &ev);

	if (n)
		*n += 1;
}

/* Takes a free slot of this CPU's MAC table, within the configured capacity. */
static __always_inline int take_mac_slot(struct pf_mac_slot *slot, __u64 word)
{
	__u32 zero = 0;
	__u64 *used = bpf_map_lookup_elem(&pf_used, &zero);

	if (!used || *used >= pf_mac_limit)
		return -1;
	*used += 1;
	*(__u64 *)slot = word;
	return 0;
}

static __always_inline void account_mac(const __u8 *mac, __u32 dir, __u64 len)
{
	union {
		struct {
			__u8 mac[6];
			__u8 used;
			__u8 pad;
		};
		__u64 word;
	} k = {};
	__u64 h;
	__u32 i;

	__builtin_memcpy(k.mac, mac, ETH_ALEN);
	k.used = 1;
	h = pf_hash_mac(k.word, pf_seed);
	for (i = 0; i < PF_MAC_PROBES; i++) {
		__u32 idx = (__u32)(h + i) & pf_mac_mask;
		struct pf_mac_slot *slot = bpf_map_lookup_elem(&pf_mac, &idx);
		__u64 have;

		if (!slot)
			break;
		have = *(__u64 *)slot;
		if (have != k.word) {
			if (have)
				continue;
			/* A never-used slot ends the probe: the MAC is not further on. */
			if (take_mac_slot(slot, k.word))
				break;
		}
		if (dir < PF_DIR_COUNT) {
			slot->dir[dir].bytes += len;
			slot->dir[dir].packets += 1;
		}
		return;
	}
	count_event(PF_EV_MAC_MAP_FULL);
}

static __always_inline int flow_key_eq(const struct pf_flow_key *a, const __u64 *b)
{
	const __u64 *w = (const __u64 *)a;

	return w[0] == b[0] && w[1] == b[1] && w[2] == b[2] && w[3] == b[3] && w[4] == b[4] && w[5] == b[5] &&
	       w[6] == b[6];
}

/* Userspace has acknowledged everything this slot holds: it may be reused. */
static __always_inline int flow_acked(const struct pf_flow_slot *slot, __u32 idx)
{
	struct pf_flow_ack *ack = bpf_map_lookup_elem(&pf_flow_ack, &idx);

	return ack && ack->token == pf_ack_token(slot->gen, slot->packets);
}

/* Gives the slot to a (new) flow: see struct pf_flow_slot for the gen protocol. The
 * flow's stores must land between the two generation updates for a reader on another
 * CPU. On x86-64 the atomic add without fetch (BPF_XADD, in every kernel with BPF) is a
 * lock add: a full barrier, as the lock xadd and xchg of the fetching forms, at the same
 * cost, so the program loads on kernels before 5.12 too. gen is read plainly: each CPU's
 * table has one writer (see pf_iface), and gen_tail == gen whenever no update runs. On
 * other architectures only the fetching forms order the stores (arm64 JITs them as
 * ldaddal and swpal, the plain add as stadd), so they keep them and need Linux 5.12. */
static __always_inline void start_flow(struct pf_flow_slot *slot, const struct pf_flow_key *key, __u8 tcp_flags,
				       __u64 len, __u64 now)
{
#if defined(__TARGET_ARCH_x86)
	__sync_fetch_and_add(&slot->gen, 1);
#else
	__u64 gen = __sync_fetch_and_add(&slot->gen, 1) + 1;
#endif

	__builtin_memcpy(&slot->key, key, sizeof(*key));
	slot->bytes = len;
	slot->packets = 1;
	slot->first_seen = now;
	slot->last_seen = now;
	slot->tcp_flags = tcp_flags;
#if defined(__TARGET_ARCH_x86)
	__sync_fetch_and_add(&slot->gen_tail, 1);
#else
	__sync_lock_test_and_set(&slot->gen_tail, gen);
#endif
}

static __always_inline void account_flow(const struct pf_flow_key *key, __u8 tcp_flags, __u64 len)
{
	/* jiffies: one inlined load, where even the coarse clock costs a helper call. */
	__u64 now = bpf_jiffies64();
	const __u64 *w = (const __u64 *)key;
	struct pf_flow_slot *slot;
	__u32 free_idx = (__u32)-1;
	__u64 h = pf_hash_flow(w, pf_seed);
	/* This CPU's table (bpf_get_smp_processor_id() is inlined on x86-64 and arm64). */
	__u32 base = bpf_get_smp_processor_id() * pf_flow_slots;
	__u32 i;

	for (i = 0; i < PF_FLOW_PROBES; i++) {
		__u32 idx = base + ((__u32)(h + i) & pf_flow_mask);

		slot = bpf_map_lookup_elem(&pf_flow, &idx);
		if (!slot)
			break;
		if (!slot->gen) {
			/* Never used: the flow is not further on. */
			if (free_idx == (__u32)-1)
				free_idx = idx;
			break;
		}
		if (flow_key_eq(&slot->key, w)) {
			/* Seen again after userspace took it (checked once per tick): a new flow. */
			if (slot->last_seen != now && flow_acked(slot, idx)) {
				start_flow(slot, key, tcp_flags, len, now);
				return;
			}
			slot->bytes += len;
			slot->packets += 1;
			slot->last_seen = now;
			slot->tcp_flags |= tcp_flags;
			return;
		}
		if (free_idx == (__u32)-1 && flow_acked(slot, idx))
			free_idx = idx;
	}
	if (free_idx == (__u32)-1) {
		count_event(PF_EV_FLOW_MAP_FULL);
		return;
	}
	slot = bpf_map_lookup_elem(&pf_flow, &free_idx);
	if (slot)
		start_flow(slot, key, tcp_flags, len, now);
}

/* The one accounting body. len is the L2 frame length without FCS (what the device's
 * own rx/tx_bytes count); hw_vlan is a tag the NIC took out of the frame (0 if none). */
static __always_inline void account(void *data, void *data_end, __u64 len, __u32 dir, __u16 hw_vlan)
{
	__u32 key = dir;
	struct pf_counter *c = bpf_map_lookup_elem(&pf_iface, &key);
	union {
		struct pf_flow_key k;
		__u64 w[PF_FLOW_KEY_WORDS];
	} fk;
	struct ethhdr *eth;
	__u8 tcp_flags = 0;
	int res;

	if (c) {
		c->bytes += len;
		c->packets += 1;
	}

	eth = data;
	if ((void *)(eth + 1) > data_end) {
		count_event(PF_EV_UNPARSABLE);
		return;
	}
	account_mac(dir == PF_DIR_RX ? eth->h_source : eth->h_dest, dir, len);

	if (!pf_flows_enabled)
		return;
	__builtin_memset(&fk, 0, sizeof(fk));
	fk.k.dir = dir;
	res = pf_parse(data, data_end, hw_vlan, &fk.k, &tcp_flags);
	/* Keep the key in memory: hashed and compared as 64-bit words, not rebuilt from
	 * the dozens of scalars clang would otherwise split it into. */
	asm volatile("" : : "r"(&fk) : "memory");
	if (res == PF_PARSE_NON_IP) {
		count_event(PF_EV_NON_IP);
		return;
	}
	if (res == PF_PARSE_BAD) {
		count_event(PF_EV_UNPARSABLE);
		if (!fk.k.family)
			return;
		/* L3 known, L4 truncated: still a flow, without ports. */
	}
	account_flow(&fk.k, tcp_flags, len);
}

SEC("xdp")
int pf_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	/* Programs without the frags flag only ever see single-buffer frames. */
	account(data, data_end, (__u64)(data_end - data), PF_DIR_RX, 0);
	return XDP_PASS;
}

/* Enough linear bytes for Ethernet, two VLAN tags, IPv6 with a few extension headers
 * and a TCP header with options. */
#define PF_PULL_LEN 192

static __always_inline void account_skb(struct __sk_buff *skb, __u32 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 linear = (__u32)(data_end - data);
	__u16 hw_vlan = skb->vlan_present ? (skb->vlan_tci & 0x0fff) : 0;

	/* Headers in paged data: make them readable. Pulling moves bytes into the linear
	 * area; the packet's content is unchanged. */
	if (linear < PF_PULL_LEN && linear < skb->len) {
		bpf_skb_pull_data(skb, skb->len < PF_PULL_LEN ? skb->len : PF_PULL_LEN);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	account(data, data_end, skb->len, dir, hw_vlan);
}

/* TC_ACT_UNSPEC: not a verdict; the next filter (or the default path) decides. */
SEC("tc")
int pf_tc_egress(struct __sk_buff *skb)
{
	account_skb(skb, PF_DIR_TX);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int pf_tc_ingress(struct __sk_buff *skb)
{
	account_skb(skb, PF_DIR_RX);
	return TC_ACT_UNSPEC;
}
