/* SPDX-License-Identifier: Apache-2.0 */
/* Super-node program state: maps and the two tunnel steps (uplink in from
 * an edge, downlink out to one). */
#ifndef HSN_SUPER_H
#define HSN_SUPER_H

#include "hsn_count.h"
#include "hsn_ctx.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_tunnel.h"
#include "hsn_types.h"

/* Bytes/packets per (edge, tenant, direction), per CPU; pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct hsn_edge_key);
	__type(value, struct hsn_counter);
	__uint(max_entries, HSN_MAX_EDGE_COUNTERS);
} super_counters SEC(".maps");

/* Packets per outcome (enum hsn_super_stat), per CPU; pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, HSN_SUPER_STAT_MAX);
} super_stats SEC(".maps");

/* The edges this super node serves, by address (the outer source of their
 * tunnel packets, the key their traffic is counted under) -> the way back
 * to each: the tunnel's ends, egress device and Ethernet header, resolved
 * by the agent ahead of time as the edge's next hop is (hsn_edge.h).
 * ifindex 0: known, no way back yet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_addr);
	__type(value, struct hsn_next_hop);
	__uint(max_entries, HSN_MAX_EDGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} super_edges SEC(".maps");

/* Egress devices the way back to an edge may use, keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(max_entries, HSN_MAX_TX_PORTS);
} super_tx_ports SEC(".maps");

/* UE address -> the edge whose tunnel its latest uplink came through: where
 * its downlink goes. Learned by the program; an LRU, so UEs gone quiet make
 * room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct hsn_addr);
	__type(value, struct hsn_addr);
	__uint(max_entries, HSN_MAX_UES);
} ue_edge SEC(".maps");

static __always_inline int hsn_super_pass(__u32 stat)
{
	hsn_stat_inc(&super_stats, stat);
	return HSN_ACT_PASS;
}

/* Counts packets `w` for (edge, tenant, dir); 0, or -1 when the map is
 * full. */
static __always_inline int hsn_super_count(const __u8 *edge, __u32 tenant,
					   __u32 dir, const struct hsn_wire *w)
{
	struct hsn_edge_key key = {};

	__builtin_memcpy(key.edge, edge, 16);
	key.tenant = tenant;
	key.dir = dir;
	if (hsn_counter_add(&super_counters, &key, w->packets, w->bytes)) {
		hsn_stat_inc(&super_stats, HSN_SUPER_STAT_COUNTER_FULL);
		return -1;
	}
	hsn_stat_inc(&super_stats, HSN_SUPER_STAT_TENANT);
	return 0;
}

/* Remembers that UE `ue` is served by `edge` (written only on a change). */
static __always_inline void hsn_super_learn(const __u8 *ue, const __u8 *edge)
{
	struct hsn_addr *cur = bpf_map_lookup_elem(&ue_edge, ue);
	__u64 a[2], b[2];

	if (cur) {
		/* No memcmp in BPF: two 8-byte compares. */
		__builtin_memcpy(a, cur->addr, 16);
		__builtin_memcpy(b, edge, 16);
		if (a[0] == b[0] && a[1] == b[1])
			return;
	}
	bpf_map_update_elem(&ue_edge, ue, edge, BPF_ANY);
}

#endif /* HSN_SUPER_H */
