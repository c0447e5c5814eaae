/* SPDX-License-Identifier: Apache-2.0 */
/* Super-node program state: load-time settings, maps, edge identification. */
#ifndef HSN_SUPER_H
#define HSN_SUPER_H

#include "hsn_count.h"
#include "hsn_parse.h"
#include "hsn_types.h"

/* Load-time setting: identify an edge by IP source address when its MAC is
 * not in edge_by_mac (edges that route or tunnel instead of redirecting). */
const volatile __u8 cfg_edge_by_addr = 1;

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

/* Edge source MAC -> edge address. Edges L2-redirect UE traffic, so the IP
 * source is the UE's; the MAC the edge wrote is what identifies it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hsn_mac_key);
	__type(value, struct hsn_edge_addr);
	__uint(max_entries, HSN_MAX_EDGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} edge_by_mac SEC(".maps");

/* Writes the sending edge's address to `edge`; 0 when it is unknown. */
static __always_inline int hsn_super_edge_of(const struct hsn_pkt *pkt,
					     __u8 *edge)
{
	struct hsn_mac_key mk = {};
	struct hsn_edge_addr *addr;

	__builtin_memcpy(mk.mac, pkt->src_mac, ETH_ALEN);
	addr = bpf_map_lookup_elem(&edge_by_mac, &mk);
	if (addr) {
		__builtin_memcpy(edge, addr->addr, 16);
		hsn_stat_inc(&super_stats, HSN_SUPER_STAT_EDGE_BY_MAC);
		return 1;
	}
	if (!cfg_edge_by_addr)
		return 0;
	__builtin_memcpy(edge, pkt->saddr, 16);
	hsn_stat_inc(&super_stats, HSN_SUPER_STAT_EDGE_BY_ADDR);
	return 1;
}

#endif /* HSN_SUPER_H */
