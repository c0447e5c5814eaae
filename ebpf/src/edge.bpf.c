// SPDX-License-Identifier: Apache-2.0
/* Edge ingress: parse, find the tenant, meter, steer uplink to the super
 * node. Anything not understood or not a tenant's goes to the kernel. */
#include "hsn_count.h"
#include "hsn_edge.h"
#include "hsn_parse.h"
#include "hsn_tenant.h"

/* xdp.frags: jumbo frames arrive as multi-buffer frames on most drivers. */
SEC("xdp.frags")
int hsn_edge(struct xdp_md *ctx)
{
	struct hsn_tenant_match m;
	struct hsn_pkt pkt = {};

	if (!hsn_edge_parse(ctx, &pkt))
		return hsn_edge_pass();
	if (!hsn_tenant_lookup(&pkt, &m))
		return hsn_edge_pass_because(HSN_EDGE_STAT_NON_TENANT);

	if (hsn_counter_add_at(&edge_counters, m.ref.slot * 2 + m.dir,
			       pkt.l3_len))
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_COUNTER_FULL);
	else
		hsn_stat_inc(&edge_stats, HSN_EDGE_STAT_TENANT);

	/* Downlink is headed to a UE, which the kernel routes. */
	if (m.dir != HSN_DIR_UPLINK || !cfg_redirect_uplink)
		return hsn_edge_pass();
	return hsn_edge_forward(ctx, &pkt);
}

/* Not GPL-compatible: GPL-only helpers (bpf_printk, ...) are unavailable. */
char LICENSE[] SEC("license") = "Apache-2.0";
