/* SPDX-License-Identifier: Apache-2.0 */
/* Tenant prefix maps and lookup, shared by the edge and super-node programs. */
#ifndef HSN_TENANT_H
#define HSN_TENANT_H

#include "hsn_parse.h"
#include "hsn_types.h"

/* IPv4 tenant prefixes -> tenant id (longest prefix wins). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct hsn_lpm_v4_key);
	__type(value, __u32);
	__uint(max_entries, HSN_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tenant_v4 SEC(".maps");

/* IPv6 tenant prefixes -> tenant id (longest prefix wins). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct hsn_lpm_v6_key);
	__type(value, __u32);
	__uint(max_entries, HSN_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tenant_v6 SEC(".maps");

static __always_inline __u32 *hsn_tenant_of(const struct hsn_pkt *pkt,
					    const __u8 *addr)
{
	if (pkt->is_v6) {
		struct hsn_lpm_v6_key k6 = {.prefixlen = 128};

		__builtin_memcpy(k6.addr, addr, 16);
		return bpf_map_lookup_elem(&tenant_v6, &k6);
	}
	struct hsn_lpm_v4_key k4 = {.prefixlen = 32};

	__builtin_memcpy(k4.addr, addr + 12, 4);
	return bpf_map_lookup_elem(&tenant_v4, &k4);
}

/* Destination first: traffic between two tenant prefixes is the
 * destination tenant's uplink. Returns 0 when neither address matches. */
static __always_inline int hsn_tenant_lookup(const struct hsn_pkt *pkt,
					     struct hsn_tenant_key *key)
{
	__u32 *tenant = hsn_tenant_of(pkt, pkt->daddr);

	if (tenant) {
		key->tenant = *tenant;
		key->dir = HSN_DIR_UPLINK;
		return 1;
	}
	tenant = hsn_tenant_of(pkt, pkt->saddr);
	if (tenant) {
		key->tenant = *tenant;
		key->dir = HSN_DIR_DOWNLINK;
		return 1;
	}
	return 0;
}

#endif /* HSN_TENANT_H */
