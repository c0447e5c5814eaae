/* SPDX-License-Identifier: Apache-2.0 */
/* Monotonic per-CPU counters: the programs only ever add. Per-CPU values
 * need no atomics because a program (XDP or TC) runs to completion on one
 * CPU. */
#ifndef HSN_COUNT_H
#define HSN_COUNT_H

#include <linux/bpf.h>
#include <linux/errno.h>

#include <bpf/bpf_helpers.h>

#include "hsn_types.h"

static __always_inline void hsn_stat_inc(void *stats, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(stats, &idx);

	if (v)
		*v += 1;
}

/* Adds `packets` packets of `bytes` bytes in all (one, but for a GSO packet
 * in TC: hsn_wire) to the per-CPU array counter at `idx`. Returns -1 when
 * idx is out of range (the caller counts that). */
static __always_inline int hsn_counter_add_at(void *map, __u32 idx,
					      __u32 packets, __u32 bytes)
{
	struct hsn_counter *c = bpf_map_lookup_elem(map, &idx);

	if (!c)
		return -1;
	c->packets += packets;
	c->bytes += bytes;
	return 0;
}

/* Adds `packets` packets of `bytes` bytes in all to the per-CPU counter at
 * `key`, creating it on first use. Returns -1 when the map is full (the
 * caller counts that). */
static __always_inline int hsn_counter_add(void *map, const void *key,
					   __u32 packets, __u32 bytes)
{
	struct hsn_counter *c = bpf_map_lookup_elem(map, key);

	if (!c) {
		struct hsn_counter zero = {};
		long err = bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);

		/* -EEXIST: another CPU created it first, which is fine. */
		if (err && err != -EEXIST)
			return -1;
		c = bpf_map_lookup_elem(map, key);
		if (!c)
			return -1;
	}
	c->packets += packets;
	c->bytes += bytes;
	return 0;
}

#endif /* HSN_COUNT_H */
