/* SPDX-License-Identifier: Apache-2.0 */
/* The datapath ABI, written here only: build.rs generates the Rust side
 * (src/abi.rs) from this header with bindgen, layout assertions included.
 * Keep structs free of implicit padding (the build refuses it). */
#ifndef HSN_TYPES_H
#define HSN_TYPES_H

#include <linux/types.h>

/* Direction of tenant traffic: uplink = towards a tenant prefix (matched by
 * destination), downlink = from a tenant prefix (matched by source). */
#define HSN_DIR_UPLINK	 0
#define HSN_DIR_DOWNLINK 1

/* Map sizes; Rust checks pinned maps against them before reusing a pin.
 * HSN_MAX_PREFIXES bounds the prefixes of one family in one table
 * generation; the tenant hashes hold two generations (hsn_tenant.h). 131072
 * leaves room for the 100,000 prefixes `make bench-datapath` measures, far
 * above what the HsnNetwork API can express today (64 tenants x 32
 * prefixes). HSN_MAX_TENANT_SLOTS bounds the tenants an edge ever counts
 * (slots are not reused, see ebpf/src/slots.rs). */
#define HSN_MAX_PREFIXES      131072
#define HSN_MAX_TENANT_SLOTS  4096
#define HSN_MAX_EDGE_COUNTERS 65536
#define HSN_MAX_EDGES	      4096
#define HSN_MAX_TX_PORTS      64
/* UE addresses a super node remembers the serving edge of (LRU). */
#define HSN_MAX_UES 65536

/* Edge <-> super tunnel: IP in IP (RFC 2003 for an IPv4 outer header, RFC
 * 2473 for IPv6), either family inside either. The outer header's size is
 * all it adds to a packet. */
#define HSN_TUNNEL_V4_OVERHEAD 20
#define HSN_TUNNEL_V6_OVERHEAD 40
/* The outer header's constant fields: TTL / hop limit, and DF (IPv4). */
#define HSN_OUTER_TTL 64
#define HSN_IP_DF     0x4000
/* Room for a tunnel's whole header template (hsn_next_hop.hdr), in 8-byte
 * words: Ethernet (14) and an outer IPv6 header (40), rounded up. */
#define HSN_OUTER_HDR_WORDS 7

/* Tenant tables (hsn_tenant.h): an IPv4 block is a /16, an IPv6 block a /32. */
#define HSN_V4_BLOCK_BITS 16
#define HSN_V6_BLOCK_BITS 32

/* Who owns an address: the tenant id (counted and reported) and, on the
 * edge, the tenant's counter slot (0 in the super node's tables). */
struct hsn_tenant_ref {
	__u32 tenant;
	__u32 slot;
};

/* Longer prefixes an IPv4 block resolves itself, by compares (hsn_tenant.h). */
#define HSN_V4_INLINE 4

/* One IPv4 /16 of one generation, one cache line. lens bit i: the block
 * holds prefixes of length 17 + i. inline_count: when the block holds at
 * most HSN_V4_INLINE such prefixes, how many (else 0); they are in
 * inline_len, inline_addr and inline_ref, longest first, so that the
 * program resolves them without a probe (and they are in no hash). has_ref:
 * `ref` owns the longest prefix of length <= 16 covering the whole block.
 * All zero: no prefix touches the block. */
struct hsn_v4_block {
	__u16 lens;
	__u8 inline_count;
	__u8 has_ref;
	struct hsn_tenant_ref ref;
	__u32 inline_addr[HSN_V4_INLINE]; /* host byte order */
	__u8 inline_len[HSN_V4_INLINE];
	struct hsn_tenant_ref inline_ref[HSN_V4_INLINE];
};

/* Prefixes longer than a block: (generation, length, masked address) ->
 * owner. The address is in host byte order. */
struct hsn_v4_long_key {
	__u8 gen;
	__u8 len;
	__u8 pad[2];
	__u32 addr;
};

/* An IPv6 /32 of one generation that holds prefixes of length >= 32. */
struct hsn_v6_block_key {
	__u32 gen;
	__u32 top; /* the first 32 bits, host byte order */
};

/* lens[w] bit i: the block holds prefixes of length 33 + 32 * w + i.
 * has_ref: `ref` owns the block's /32, or else the longest prefix shorter
 * than /32 covering it. */
struct hsn_v6_block {
	__u32 lens[3];
	__u32 has_ref;
	struct hsn_tenant_ref ref;
};

/* IPv6 prefixes other than /32: (generation, length, masked address as four
 * host-order words) -> owner. */
struct hsn_v6_long_key {
	__u8 gen;
	__u8 len;
	__u8 pad[2];
	__u32 addr[4];
};

/* Per generation: bit n set when the table has IPv6 prefixes of length n
 * (0..31), probed for addresses in no block. */
struct hsn_tenant_ctl {
	__u32 v6_short_lens;
};

/* Edge counter slot: which tenant owns it (pinned with the counters, so a
 * restarted agent keeps attributing each slot to the same tenant). */
struct hsn_slot {
	__u32 tenant;
	__u32 used;
};

/* Monotonic per-CPU counter value. */
struct hsn_counter {
	__u64 packets;
	__u64 bytes;
};

/* One end of an edge <-> super tunnel toward the other: egress device, the
 * Ethernet header to write (toward the peer, or the router on the way) and
 * the outer addresses. The edge's next hop, and a super node's way back to
 * each of its edges. Addresses are IPv6 or IPv4-mapped; outer_v6 says
 * which.
 *
 * hdr and hdr_sum are those fields again as the packet carries them, made
 * by the agent when it writes the entry (ebpf/src/tunnel.rs), so that a
 * packet costs whole-word copies rather than a field-by-field build: the
 * frame's new first bytes (Ethernet header, then the outer header with its
 * per-packet fields zero: IPv4 TOS, total length, protocol and checksum;
 * IPv6 traffic class, payload length and next header), and for IPv4 the
 * ones'-complement sum of the outer header's constant 16-bit words (2, 3
 * and 6 to 9: identification, flags, addresses) as this machine reads them.
 * hdr is bytes in memory order, kept as words for their alignment. */
struct hsn_next_hop {
	__u32 ifindex;
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u8 local[16];	 /* this node: the outer source */
	__u8 remote[16]; /* the peer: the outer destination */
	__u16 mtu;	 /* largest outer packet the path carries */
	__u8 outer_v6;
	__u8 pad;
	__u32 hdr_sum;
	__u64 hdr[HSN_OUTER_HDR_WORDS];
};

/* Super-node counter key: edge address (IPv6, or IPv4 mapped as
 * ::ffff:a.b.c.d so one map serves both families), tenant, direction. */
struct hsn_edge_key {
	__u8 edge[16];
	__u32 tenant;
	__u32 dir;
};

/* A node or UE address (IPv6 or IPv4-mapped). */
struct hsn_addr {
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
	HSN_EDGE_STAT_COUNTER_FULL, /* tenant slot out of range: not metered */
	HSN_EDGE_STAT_DECAPSULATED, /* tenant downlink from a super node */
	HSN_EDGE_STAT_UNKNOWN_PEER, /* tunnel packet of no known super: passed
				     */
	HSN_EDGE_STAT_TOO_BIG,	    /* tenant uplink too big for the tunnel */
	HSN_EDGE_STAT_MSS_CLAMPED,  /* TCP SYN whose MSS was lowered */
	HSN_EDGE_STAT_MAX,
};

/* Indexes of the super-node program's stats array. */
enum hsn_super_stat {
	HSN_SUPER_STAT_PACKETS,	     /* every packet seen */
	HSN_SUPER_STAT_PARSE_ERROR,  /* malformed or truncated */
	HSN_SUPER_STAT_NON_IP,	     /* not IPv4/IPv6 */
	HSN_SUPER_STAT_NON_TENANT,   /* IP but no tenant prefix matched */
	HSN_SUPER_STAT_TENANT,	     /* metered tenant packets */
	HSN_SUPER_STAT_DECAPSULATED, /* tenant uplink from a known edge */
	HSN_SUPER_STAT_ENCAPSULATED, /* tenant downlink sent to its edge */
	HSN_SUPER_STAT_UNKNOWN_EDGE, /* tenant uplink not tunnelled by a known
				      * edge: passed, not metered */
	HSN_SUPER_STAT_UNKNOWN_UE,   /* downlink to a UE no edge serves */
	HSN_SUPER_STAT_NO_ROUTE,     /* no way back to the UE's edge yet */
	HSN_SUPER_STAT_TOO_BIG,	     /* downlink too big for the tunnel */
	HSN_SUPER_STAT_COUNTER_FULL, /* edge counter map full: not metered */
	HSN_SUPER_STAT_MAX,
};

#endif /* HSN_TYPES_H */
