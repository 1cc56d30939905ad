/* The seeded hashes that place keys in the MAC and flow tables. Plain C shared by the
 * BPF programs and userspace: userspace computes the same home slot to find a flow it
 * acknowledges, and a unit test holds both sides to the same values.
 *
 * Cheap multiply-xorshift mixing over 64-bit words, two independent lanes for the flow
 * key so the multiplies overlap. The seed is random per set of maps (struct pf_conf), so
 * slot positions cannot be predicted from outside the host. */
#pragma once

#include <linux/types.h>

#define PF_HASH_P1 0x9e3779b97f4a7c15ULL
#define PF_HASH_P2 0xc2b2ae3d27d4eb4fULL
#define PF_HASH_P3 0xff51afd7ed558ccdULL
#define PF_HASH_P4 0xc4ceb9fe1a85ec53ULL

/* Words of a struct pf_flow_key (56 bytes). */
#define PF_FLOW_KEY_WORDS 7

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output bit. */
static inline __u64 pf_hash_final(__u64 h)
{
	h ^= h >> 33;
	h *= PF_HASH_P3;
	h ^= h >> 33;
	h *= PF_HASH_P4;
	return h ^ (h >> 33);
}

/* word: the first 8 bytes of a struct pf_mac_slot (MAC, used = 1, pad = 0). */
static inline __u64 pf_hash_mac(__u64 word, __u64 seed)
{
	return pf_hash_final((word ^ seed) * PF_HASH_P1);
}

static inline __u64 pf_hash_flow(const __u64 *w, __u64 seed)
{
	__u64 a = (w[0] ^ seed) * PF_HASH_P1;
	__u64 b = (w[1] ^ (seed >> 32 | seed << 32)) * PF_HASH_P2;

	a = (a ^ (a >> 32) ^ w[2]) * PF_HASH_P1;
	b = (b ^ (b >> 32) ^ w[3]) * PF_HASH_P2;
	a = (a ^ (a >> 32) ^ w[4]) * PF_HASH_P1;
	b = (b ^ (b >> 32) ^ w[5]) * PF_HASH_P2;
	a = (a ^ (a >> 32) ^ w[6]) * PF_HASH_P1;
	return pf_hash_final(a ^ (b >> 32 | b << 32));
}
