/* SPDX-License-Identifier: Apache-2.0 */
/* Structs and constants shared with Rust: src/abi.rs mirrors every one of them
 * (#[repr(C)], with size/offset tests). Change both sides together. */
#ifndef HSN_TYPES_H
#define HSN_TYPES_H

#include <linux/types.h>

/* Direction of tenant traffic: uplink = towards a tenant prefix (matched by
 * destination), downlink = from a tenant prefix (matched by source). */
#define HSN_DIR_UPLINK	 0
#define HSN_DIR_DOWNLINK 1

/* Map sizes; Rust checks pinned maps against them before reusing a pin.
 * HSN_MAX_PREFIXES bounds each tenant LPM trie. The tries are never
 * preallocated (LPM needs BPF_F_NO_PREALLOC) and never pinned, so the bound
 * costs no memory until used and no pin migration; 131072 leaves room for
 * the 100,000 prefixes `make bench-datapath` measures, far above what the
 * HsnNetwork API can express today (64 tenants x 32 prefixes). */
#define HSN_MAX_PREFIXES	131072
#define HSN_MAX_TENANT_COUNTERS 16384
#define HSN_MAX_EDGE_COUNTERS	65536
#define HSN_MAX_EDGES		4096
#define HSN_MAX_TX_PORTS	64

/* LPM trie key for IPv4 tenant prefixes (prefixlen first, as kernel wants). */
struct hsn_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

/* LPM trie key for IPv6 tenant prefixes. */
struct hsn_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Edge counter key: one (tenant, direction). No implicit padding: hash keys
 * are compared bytewise. */
struct hsn_tenant_key {
	__u32 tenant;
	__u32 dir;
};

/* Monotonic per-CPU counter value. */
struct hsn_counter {
	__u64 packets;
	__u64 bytes;
};

/* The current super node: egress device and the Ethernet header to write. */
struct hsn_next_hop {
	__u32 ifindex;
	__u8 dst_mac[6];
	__u8 src_mac[6];
};

/* Super-node counter key: edge address (IPv6, or IPv4 mapped as
 * ::ffff:a.b.c.d so one map serves both families), tenant, direction. */
struct hsn_edge_key {
	__u8 edge[16];
	__u32 tenant;
	__u32 dir;
};

/* Super-node key for identifying an edge by the source MAC it rewrote in. */
struct hsn_mac_key {
	__u8 mac[6];
	__u8 pad[2];
};

/* Edge node address (IPv6 or IPv4-mapped). */
struct hsn_edge_addr {
	__u8 addr[16];
};

/* Indexes of the edge program's stats array. */
enum hsn_edge_stat {
	HSN_EDGE_STAT_PACKETS,	      /* every packet seen */
	HSN_EDGE_STAT_PARSE_ERROR,    /* malformed/truncated: never metered */
	HSN_EDGE_STAT_NON_IP,	      /* not IPv4/IPv6 (ARP, LLDP, ...) */
	HSN_EDGE_STAT_NON_TENANT,     /* IP but no tenant prefix matched */
	HSN_EDGE_STAT_TENANT,	      /* metered tenant packets */
	HSN_EDGE_STAT_REDIRECTED,     /* tenant uplink sent to the super node */
	HSN_EDGE_STAT_NO_NEXT_HOP,    /* tenant uplink, no super node set */
	HSN_EDGE_STAT_REDIRECT_ERROR, /* next hop's device is unusable */
	HSN_EDGE_STAT_PASSED,	      /* every XDP_PASS verdict */
	HSN_EDGE_STAT_COUNTER_FULL,   /* tenant counter map full: not metered */
	HSN_EDGE_STAT_MAX,
};

/* Indexes of the super-node program's stats array. */
enum hsn_super_stat {
	HSN_SUPER_STAT_PACKETS,	     /* every packet seen */
	HSN_SUPER_STAT_PARSE_ERROR,  /* malformed or truncated */
	HSN_SUPER_STAT_NON_IP,	     /* not IPv4/IPv6 */
	HSN_SUPER_STAT_NON_TENANT,   /* IP but no tenant prefix matched */
	HSN_SUPER_STAT_TENANT,	     /* metered tenant packets */
	HSN_SUPER_STAT_EDGE_BY_MAC,  /* edge identified by source MAC */
	HSN_SUPER_STAT_EDGE_BY_ADDR, /* edge identified by IP source address */
	HSN_SUPER_STAT_UNKNOWN_EDGE, /* tenant packet from an unknown edge */
	HSN_SUPER_STAT_COUNTER_FULL, /* edge counter map full: not metered */
	HSN_SUPER_STAT_MAX,
};

#endif /* HSN_TYPES_H */
