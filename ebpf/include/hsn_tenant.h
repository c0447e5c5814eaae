/* SPDX-License-Identifier: Apache-2.0 */
/* Tenant tables and lookup, shared by the edge and super-node programs.
 *
 * Longest-prefix match without the kernel's LPM trie, whose lookup walks one
 * node per bit of depth (~17 levels, +100 ns, at 100,000 prefixes). Here:
 * - IPv4: the address's /16 indexes an array (an inlined lookup). Its entry
 *   says which prefix lengths > 16 occur inside the /16 and who owns the
 *   longest prefix <= 16 covering it (short prefixes are expanded into the
 *   blocks they cover, at most 65536). A block holding at most
 *   HSN_V4_INLINE (4) longer prefixes carries them, longest first, and is
 *   resolved by compares, without a probe; otherwise the lookup probes one
 *   hash per length present, longest first, and the first hit is the
 *   answer.
 * - IPv6: the same with /32 blocks in a hash (2^32 cannot be an array) and a
 *   per-generation bitmap of the lengths < 32 (probed when the address is in
 *   no block; tenants rarely have any).
 * A lookup costs one probe per prefix length present in the address's block
 * (none for an IPv4 block with at most 4 longer prefixes, which 100,000
 * prefixes spread over the address space leave nearly every block with),
 * whatever the table's size. At most 16 (IPv4) or 96 + 32 (IPv6). An IPv4
 * lookup that needs no probe is inlined into the program (hsn_tenant_lookup);
 * probing runs in a global function (hsn_tenant_lookup_probing). Memory:
 * the IPv4 block array is preallocated, 2 x 65536 x 64 B = 8 MiB per
 * program; the hashes grow with the table.
 *
 * Updates are atomic per table: every map holds two generations, the agent
 * writes the one no packet reads, then flips tenant_gen (one byte, 0 <-> 1).
 * It rewrites a generation only a quiet period after flipping away from it
 * (src/generation.rs), so no program run still reads it. The agent builds
 * the entries (src/layout.rs), with a reference lookup tested against a
 * naive longest-prefix match. */
#ifndef HSN_TENANT_H
#define HSN_TENANT_H

#include <bpf/bpf_endian.h>

#include "hsn_parse.h"
#include "hsn_types.h"

/* The generation packets read (key 0; 0 or 1). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} tenant_gen SEC(".maps");

/* Per generation (key = generation). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_tenant_ctl);
	__uint(max_entries, 2);
} tenant_ctl SEC(".maps");

/* Key (generation << 16) | (address >> 16). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct hsn_v4_block);
	__uint(max_entries, 2 << HSN_V4_BLOCK_BITS);
} tenant_v4_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_v4_long_key);
	__type(value, struct hsn_tenant_ref);
	__uint(max_entries, 2 * HSN_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tenant_v4_long SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_v6_block_key);
	__type(value, struct hsn_v6_block);
	__uint(max_entries, 2 * HSN_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tenant_v6_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_v6_long_key);
	__type(value, struct hsn_tenant_ref);
	__uint(max_entries, 2 * HSN_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tenant_v6_long SEC(".maps");

/* A tenant match: the owner and the direction it was found in. */
struct hsn_tenant_match {
	struct hsn_tenant_ref ref;
	__u32 dir;
};

/* Index of the highest set bit of x (x != 0). BPF has no clz instruction. */
static __always_inline __u32 hsn_fls(__u32 x)
{
	__u32 n = 0;

	if (x >> 16) {
		n += 16;
		x >>= 16;
	}
	if (x >> 8) {
		n += 8;
		x >>= 8;
	}
	if (x >> 4) {
		n += 4;
		x >>= 4;
	}
	if (x >> 2) {
		n += 2;
		x >>= 2;
	}
	if (x >> 1)
		n += 1;
	return n;
}

/* The top `len` bits set, len in 0..32. */
static __always_inline __u32 hsn_netmask(__u32 len)
{
	if (len == 0)
		return 0;
	if (len >= 32)
		return ~0U;
	return ~0U << (32 - len);
}

static __always_inline __u32 hsn_word(const __u8 *addr, int i)
{
	__u32 w;

	__builtin_memcpy(&w, addr + 4 * i, 4);
	return bpf_ntohl(w);
}

/* One IPv4 probe pass over the lengths > 16 in a block, longest first; run
 * through bpf_loop like the IPv6 one. */
struct hsn_probe_v4 {
	struct hsn_v4_long_key k;
	__u32 addr;
	__u32 lens;
	struct hsn_tenant_ref out;
	int found;
};

static long hsn_probe_v4_step(__u32 i, void *arg)
{
	struct hsn_probe_v4 *p = arg;
	struct hsn_tenant_ref *ref;
	__u32 bit;

	if (!p->lens)
		return 1;
	bit = hsn_fls(p->lens) & 15;
	p->lens &= ~(1U << bit);
	p->k.len = 17 + bit;
	p->k.addr = p->addr & hsn_netmask(17 + bit);
	ref = bpf_map_lookup_elem(&tenant_v4_long, &p->k);
	if (!ref)
		return 0;
	p->out = *ref;
	p->found = 1;
	return 1;
}

/* What the IPv4 block of an address says without probing. */
enum hsn_v4_block_answer {
	HSN_V4_MISS,  /* no tenant owns the address */
	HSN_V4_HIT,   /* *out owns it */
	HSN_V4_PROBE, /* longer prefixes must be probed (hsn_tenant_v4) */
};

/* The /16 block of IPv4 address `addr` (host order) in generation `gen`. */
static __always_inline struct hsn_v4_block *hsn_v4_block_of(__u32 gen,
							    __u32 addr)
{
	__u32 idx = (gen << HSN_V4_BLOCK_BITS) | (addr >> 16);

	return bpf_map_lookup_elem(&tenant_v4_blocks, &idx);
}

/* The answer block `b` of `addr` gives on its own: its inline prefixes,
 * longest first, then its own owner. */
static __always_inline enum hsn_v4_block_answer
hsn_v4_block_answer(const struct hsn_v4_block *b, __u32 addr,
		    struct hsn_tenant_ref *out)
{
	if (!b)
		return HSN_V4_MISS;
	if (b->inline_count) {
		/* The block's few longer prefixes, longest first: no probe. */
		for (int i = 0; i < HSN_V4_INLINE; i++) {
			if (i >= b->inline_count)
				break;
			if ((addr & hsn_netmask(b->inline_len[i])) ==
			    b->inline_addr[i]) {
				*out = b->inline_ref[i];
				return HSN_V4_HIT;
			}
		}
	} else if (b->lens) {
		return HSN_V4_PROBE;
	}
	if (!b->has_ref)
		return HSN_V4_MISS;
	*out = b->ref;
	return HSN_V4_HIT;
}

static __always_inline enum hsn_v4_block_answer
hsn_tenant_v4_block(__u32 gen, const __u8 *addr16, struct hsn_tenant_ref *out)
{
	__u32 addr = hsn_word(addr16, 3);

	return hsn_v4_block_answer(hsn_v4_block_of(gen, addr), addr, out);
}

static __always_inline int hsn_tenant_v4(__u32 gen, const __u8 *addr16,
					 struct hsn_tenant_ref *out)
{
	__u32 addr = hsn_word(addr16, 3);
	struct hsn_v4_block *b = hsn_v4_block_of(gen, addr);
	enum hsn_v4_block_answer answer = hsn_v4_block_answer(b, addr, out);
	struct hsn_probe_v4 p = {.k = {.gen = gen}, .addr = addr};

	if (answer != HSN_V4_PROBE || !b)
		return answer == HSN_V4_HIT;
	p.lens = b->lens;
	bpf_loop(16, hsn_probe_v4_step, &p, 0);
	if (p.found) {
		*out = p.out;
		return 1;
	}
	if (!b->has_ref)
		return 0;
	*out = b->ref;
	return 1;
}

/* One IPv6 probe pass: the prefixes of length base + i for each bit i of
 * lens, longest first. Run through bpf_loop, so the verifier checks one
 * step, not every unrolled combination of up to 128 lengths. */
struct hsn_probe_v6 {
	struct hsn_v6_long_key k;
	__u32 w[4];
	__u32 lens;
	__u32 base;
	struct hsn_tenant_ref out;
	int found;
};

static long hsn_probe_v6_step(__u32 i, void *arg)
{
	struct hsn_probe_v6 *p = arg;
	struct hsn_tenant_ref *ref;
	__u32 bit, len;

	if (!p->lens)
		return 1;
	bit = hsn_fls(p->lens) & 31;
	p->lens &= ~(1U << bit);
	len = p->base + bit;
	p->k.len = len;
	p->k.addr[0] = p->w[0] & hsn_netmask(len);
	p->k.addr[1] = len > 32 ? p->w[1] & hsn_netmask(len - 32) : 0;
	p->k.addr[2] = len > 64 ? p->w[2] & hsn_netmask(len - 64) : 0;
	p->k.addr[3] = len > 96 ? p->w[3] & hsn_netmask(len - 96) : 0;
	ref = bpf_map_lookup_elem(&tenant_v6_long, &p->k);
	if (!ref)
		return 0;
	p->out = *ref;
	p->found = 1;
	return 1;
}

static __always_inline int hsn_probe_v6(struct hsn_probe_v6 *p, __u32 lens,
					__u32 base, struct hsn_tenant_ref *out)
{
	if (!lens)
		return 0;
	p->lens = lens;
	p->base = base;
	p->found = 0;
	bpf_loop(32, hsn_probe_v6_step, p, 0);
	if (p->found)
		*out = p->out;
	return p->found;
}

static __always_inline int hsn_tenant_v6(__u32 gen, const __u8 *addr,
					 struct hsn_tenant_ref *out)
{
	struct hsn_probe_v6 p = {
	    .k = {.gen = gen},
	    .w = {hsn_word(addr, 0), hsn_word(addr, 1), hsn_word(addr, 2),
		  hsn_word(addr, 3)},
	};
	struct hsn_v6_block_key bk = {.gen = gen, .top = p.w[0]};
	struct hsn_v6_block *b = bpf_map_lookup_elem(&tenant_v6_blocks, &bk);
	struct hsn_tenant_ctl *ctl;

	if (b) {
		if (hsn_probe_v6(&p, b->lens[2], 97, out) ||
		    hsn_probe_v6(&p, b->lens[1], 65, out) ||
		    hsn_probe_v6(&p, b->lens[0], 33, out))
			return 1;
		if (!b->has_ref)
			return 0;
		*out = b->ref;
		return 1;
	}
	ctl = bpf_map_lookup_elem(&tenant_ctl, &gen);
	if (!ctl)
		return 0;
	return hsn_probe_v6(&p, ctl->v6_short_lens, 0, out);
}

static __always_inline int hsn_tenant_of(__u32 gen, const struct hsn_pkt *pkt,
					 const __u8 *addr,
					 struct hsn_tenant_ref *out)
{
	if (pkt->is_v6)
		return hsn_tenant_v6(gen, addr, out);
	return hsn_tenant_v4(gen, addr, out);
}

static __always_inline __u32 hsn_tenant_generation(void)
{
	__u32 zero = 0;
	__u32 *genp = bpf_map_lookup_elem(&tenant_gen, &zero);

	return genp ? *genp & 1 : 0;
}

/* Destination first: traffic between two tenant prefixes is the
 * destination tenant's uplink. Returns 0 when neither address matches.
 *
 * A global function, not inlined: the verifier checks it once, on its own,
 * instead of once per path the caller took to get here (every parse
 * outcome, each family, tunnelled or not, each hook), which multiplied the
 * bpf_loop callbacks above past the verifier's budget. The caller passes
 * initialised memory (the verifier requires it) and gets its result back
 * as unknown values, which it only indexes maps with. Callers use
 * hsn_tenant_lookup, which answers most IPv4 packets without this call. */
__noinline int hsn_tenant_lookup_probing(const struct hsn_pkt *pkt,
					 struct hsn_tenant_match *m)
{
	__u32 gen;

	/* The verifier cannot know a global function's pointers are set. */
	if (!pkt || !m)
		return 0;
	gen = hsn_tenant_generation();

	if (hsn_tenant_of(gen, pkt, pkt->daddr, &m->ref)) {
		m->dir = HSN_DIR_UPLINK;
		return 1;
	}
	if (hsn_tenant_of(gen, pkt, pkt->saddr, &m->ref)) {
		m->dir = HSN_DIR_DOWNLINK;
		return 1;
	}
	return 0;
}

/* The tenant of `pkt` (hsn_tenant_lookup_probing's answer). An IPv4 packet
 * whose two blocks answer without probing (nearly all: see the top of this
 * file) is answered here, inlined: measured on the bench's VM, calling the
 * global function for it cost 15 ns more per hit than the inlined lookup
 * (that kernel mitigates SRSO with Safe RET, which makes every return
 * dearer: the likely reason). Anything else takes the global function,
 * which redoes both addresses, on one generation. */
static __always_inline int hsn_tenant_lookup(const struct hsn_pkt *pkt,
					     struct hsn_tenant_match *m)
{
	__u32 gen;
	enum hsn_v4_block_answer answer;

	if (pkt->is_v6)
		return hsn_tenant_lookup_probing(pkt, m);
	gen = hsn_tenant_generation();
	answer = hsn_tenant_v4_block(gen, pkt->daddr, &m->ref);
	if (answer == HSN_V4_HIT) {
		m->dir = HSN_DIR_UPLINK;
		return 1;
	}
	if (answer == HSN_V4_MISS) {
		answer = hsn_tenant_v4_block(gen, pkt->saddr, &m->ref);
		if (answer == HSN_V4_HIT) {
			m->dir = HSN_DIR_DOWNLINK;
			return 1;
		}
		if (answer == HSN_V4_MISS)
			return 0;
	}
	return hsn_tenant_lookup_probing(pkt, m);
}

#endif /* HSN_TENANT_H */
