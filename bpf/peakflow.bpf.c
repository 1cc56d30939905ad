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

#include "peakflow/maps_kern_user.h"
#include "parse.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time knob, set by the loader between open and load. */
const volatile __u8 pf_flows_enabled = 1;

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
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PF_DEFAULT_MAC_CAPACITY); /* resized by the loader */
	__type(key, struct pf_mac_key);
	__type(value, struct pf_mac_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_mac SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, PF_DEFAULT_FLOW_CAPACITY); /* resized by the loader */
	__type(key, struct pf_flow_key);
	__type(value, struct pf_flow_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_flow SEC(".maps");

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

static __always_inline void account_mac(const __u8 *mac, __u32 dir, __u64 len)
{
	struct pf_mac_key key = {};
	struct pf_mac_value *v;
	long err;

	__builtin_memcpy(key.mac, mac, ETH_ALEN);
	v = bpf_map_lookup_elem(&pf_mac, &key);
	if (!v) {
		struct pf_mac_value init = {};

		err = bpf_map_update_elem(&pf_mac, &key, &init, BPF_NOEXIST);
		/* -EEXIST: another CPU inserted it first; its slot for this CPU is zero. */
		if (err && err != -17 /* EEXIST */) {
			count_event(PF_EV_MAC_MAP_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&pf_mac, &key);
		if (!v)
			return;
	}
	if (dir < PF_DIR_COUNT) {
		v->dir[dir].bytes += len;
		v->dir[dir].packets += 1;
	}
}

static __always_inline void account_flow(struct pf_flow_key *key, __u8 tcp_flags, __u64 len)
{
	/* The coarse clock (tick resolution, a few ms) is plenty for flow start/end times
	 * and costs a fraction of bpf_ktime_get_ns() on the per-packet path. */
	__u64 now = bpf_ktime_get_coarse_ns();
	struct pf_flow_value *v = bpf_map_lookup_elem(&pf_flow, key);

	if (!v) {
		struct pf_flow_value init = {
			.bytes = len, .packets = 1, .first_seen_ns = now,
			.last_seen_ns = now, .tcp_flags = tcp_flags,
		};
		long err = bpf_map_update_elem(&pf_flow, key, &init, BPF_NOEXIST);

		if (!err)
			return;
		if (err != -17 /* EEXIST */) {
			count_event(PF_EV_FLOW_MAP_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&pf_flow, key);
		if (!v)
			return;
	}
	if (!v->first_seen_ns)
		v->first_seen_ns = now;
	v->bytes += len;
	v->packets += 1;
	v->last_seen_ns = now;
	v->tcp_flags |= tcp_flags;
}

/* The one accounting body. len is the L2 frame length without FCS (what the device's
 * own rx/tx_bytes count); hw_vlan is a tag the NIC took out of the frame (0 if none). */
static __always_inline void account(void *data, void *data_end, __u64 len, __u32 dir, __u16 hw_vlan)
{
	__u32 key = dir;
	struct pf_counter *c = bpf_map_lookup_elem(&pf_iface, &key);
	struct pf_flow_key fk;
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
	fk.dir = dir;
	res = pf_parse(data, data_end, hw_vlan, &fk, &tcp_flags);
	if (res == PF_PARSE_NON_IP) {
		count_event(PF_EV_NON_IP);
		return;
	}
	if (res == PF_PARSE_BAD) {
		count_event(PF_EV_UNPARSABLE);
		if (!fk.family)
			return;
		/* L3 known, L4 truncated: still a flow, without ports. */
	}
	account_flow(&fk, tcp_flags, len);
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
