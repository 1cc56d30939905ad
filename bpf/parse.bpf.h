/* Kernel-only packet parsing helpers. A cursor walks the frame; every helper checks its
 * own bounds against data_end before it reads, so the verifier sees each access proved. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "peakflow/maps_kern_user.h"

enum pf_parse_result {
	PF_PARSE_OK = 0,
	PF_PARSE_NON_IP = 1,
	PF_PARSE_BAD = 2, /* truncated header; fields found so far are filled */
};

#define PF_MAX_VLAN_TAGS 2
#define PF_MAX_IPV6_EXT 6

/* struct vlan_hdr lives in linux/if_vlan.h, which is not UAPI. */
struct pf_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Common layout of hop-by-hop, routing and destination options headers. */
struct pf_ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-octet units, not counting the first 8 */
};

struct pf_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | flags */
	__be32 identification;
};

struct pf_cursor {
	void *pos;
	void *end;
};

static __always_inline int pf_parse_l4(struct pf_cursor *cur, struct pf_flow_key *fk, __u8 *tcp_flags)
{
	switch (fk->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = cur->pos;

		if ((void *)(th + 1) > cur->end)
			return PF_PARSE_BAD;
		fk->src_port = bpf_ntohs(th->source);
		fk->dst_port = bpf_ntohs(th->dest);
		*tcp_flags = ((__u8 *)th)[13];
		return PF_PARSE_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = cur->pos;

		if ((void *)(uh + 1) > cur->end)
			return PF_PARSE_BAD;
		fk->src_port = bpf_ntohs(uh->source);
		fk->dst_port = bpf_ntohs(uh->dest);
		return PF_PARSE_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *icmp = cur->pos; /* type and code lead both ICMP and ICMPv6 */

		if ((void *)(icmp + 2) > cur->end)
			return PF_PARSE_BAD;
		fk->dst_port = (__u16)(icmp[0] << 8 | icmp[1]);
		return PF_PARSE_OK;
	}
	default:
		return PF_PARSE_OK;
	}
}

static __always_inline int pf_parse_ipv4(struct pf_cursor *cur, struct pf_flow_key *fk, __u8 *tcp_flags)
{
	struct iphdr *iph = cur->pos;
	__u32 hlen;

	if ((void *)(iph + 1) > cur->end)
		return PF_PARSE_BAD;
	hlen = iph->ihl * 4;
	if (hlen < sizeof(*iph) || cur->pos + hlen > cur->end)
		return PF_PARSE_BAD;
	fk->family = 4;
	fk->src_addr[10] = 0xff;
	fk->src_addr[11] = 0xff;
	__builtin_memcpy(&fk->src_addr[12], &iph->saddr, 4);
	fk->dst_addr[10] = 0xff;
	fk->dst_addr[11] = 0xff;
	__builtin_memcpy(&fk->dst_addr[12], &iph->daddr, 4);
	fk->proto = iph->protocol;
	/* Non-first fragments carry no transport header. */
	if (iph->frag_off & bpf_htons(0x1fff))
		return PF_PARSE_OK;
	cur->pos += hlen;
	return pf_parse_l4(cur, fk, tcp_flags);
}

static __always_inline int pf_parse_ipv6(struct pf_cursor *cur, struct pf_flow_key *fk, __u8 *tcp_flags)
{
	struct ipv6hdr *ip6h = cur->pos;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > cur->end)
		return PF_PARSE_BAD;
	fk->family = 6;
	__builtin_memcpy(fk->src_addr, &ip6h->saddr, 16);
	__builtin_memcpy(fk->dst_addr, &ip6h->daddr, 16);
	nexthdr = ip6h->nexthdr;
	cur->pos = ip6h + 1;

	/* One pass more than the headers we skip: the last pass reads the transport header. */
#pragma unroll
	for (i = 0; i <= PF_MAX_IPV6_EXT; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS: {
			struct pf_ipv6_opt_hdr *oh = cur->pos;

			if ((void *)(oh + 1) > cur->end)
				goto truncated;
			nexthdr = oh->nexthdr;
			cur->pos += (oh->hdrlen + 1) * 8;
			break;
		}
		case IPPROTO_AH: {
			struct pf_ipv6_opt_hdr *oh = cur->pos;

			if ((void *)(oh + 1) > cur->end)
				goto truncated;
			nexthdr = oh->nexthdr;
			cur->pos += (oh->hdrlen + 2) * 4;
			break;
		}
		case IPPROTO_FRAGMENT: {
			struct pf_ipv6_frag_hdr *fh = cur->pos;

			if ((void *)(fh + 1) > cur->end)
				goto truncated;
			fk->proto = fh->nexthdr;
			if (fh->frag_off & bpf_htons(0xfff8))
				return PF_PARSE_OK; /* non-first fragment: no transport header */
			nexthdr = fh->nexthdr;
			cur->pos = fh + 1;
			break;
		}
		default:
			fk->proto = nexthdr;
			return pf_parse_l4(cur, fk, tcp_flags);
		}
	}
	/* More extension headers than we follow: no transport header was found. */
	fk->proto = 0;
	return PF_PARSE_OK;
truncated:
	fk->proto = 0;
	return PF_PARSE_BAD;
}

/* Parse from the Ethernet header to the transport ports. The caller has checked that
 * the Ethernet header is in bounds. */
static __always_inline int pf_parse(void *data, void *data_end, __u16 hw_vlan, struct pf_flow_key *fk,
				    __u8 *tcp_flags)
{
	struct pf_cursor cur = { .pos = data, .end = data_end };
	struct ethhdr *eth = data;
	__u16 proto;
	int ntags = 0;
	int i;

	if ((void *)(eth + 1) > data_end)
		return PF_PARSE_BAD;
	__builtin_memcpy(fk->src_mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(fk->dst_mac, eth->h_dest, ETH_ALEN);
	proto = eth->h_proto;
	cur.pos = eth + 1;
	if (hw_vlan)
		fk->vlan[ntags++] = hw_vlan;

#pragma unroll
	for (i = 0; i < PF_MAX_VLAN_TAGS; i++) {
		struct pf_vlan_hdr *vh = cur.pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return PF_PARSE_BAD;
		/* Explicit slots: an indexed store becomes pointer arithmetic the verifier rejects. */
		if (ntags == 0)
			fk->vlan[0] = bpf_ntohs(vh->tci) & 0x0fff;
		else if (ntags == 1)
			fk->vlan[1] = bpf_ntohs(vh->tci) & 0x0fff;
		ntags++;
		proto = vh->encap_proto;
		cur.pos = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return pf_parse_ipv4(&cur, fk, tcp_flags);
	if (proto == bpf_htons(ETH_P_IPV6))
		return pf_parse_ipv6(&cur, fk, tcp_flags);
	return PF_PARSE_NON_IP;
}
