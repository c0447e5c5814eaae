// SPDX-License-Identifier: Apache-2.0
/* Super-node ingress: meter tenant traffic per sending edge, the
 * independent observation that attests edge claims. Observe only: every
 * packet goes on to the kernel. */
#include "hsn_count.h"
#include "hsn_parse.h"
#include "hsn_super.h"
#include "hsn_tenant.h"

static __always_inline int hsn_super_pass(__u32 stat)
{
	hsn_stat_inc(&super_stats, stat);
	return XDP_PASS;
}

/* xdp.frags: jumbo frames arrive as multi-buffer frames on most drivers. */
SEC("xdp.frags")
int hsn_super(struct xdp_md *ctx)
{
	struct hsn_tenant_match m;
	struct hsn_edge_key key = {};
	struct hsn_pkt pkt = {};
	int res;

	hsn_stat_inc(&super_stats, HSN_SUPER_STAT_PACKETS);
	res = hsn_parse(ctx, &pkt);
	if (res == HSN_PARSE_NON_IP)
		return hsn_super_pass(HSN_SUPER_STAT_NON_IP);
	if (res != HSN_PARSE_OK)
		return hsn_super_pass(HSN_SUPER_STAT_PARSE_ERROR);
	if (!hsn_tenant_lookup(&pkt, &m))
		return hsn_super_pass(HSN_SUPER_STAT_NON_TENANT);
	if (!hsn_super_edge_of(&pkt, key.edge))
		return hsn_super_pass(HSN_SUPER_STAT_UNKNOWN_EDGE);

	key.tenant = m.ref.tenant;
	key.dir = m.dir;
	if (hsn_counter_add(&super_counters, &key, pkt.l3_len))
		return hsn_super_pass(HSN_SUPER_STAT_COUNTER_FULL);
	return hsn_super_pass(HSN_SUPER_STAT_TENANT);
}

/* Not GPL-compatible: GPL-only helpers (bpf_printk, ...) are unavailable. */
char LICENSE[] SEC("license") = "Apache-2.0";
