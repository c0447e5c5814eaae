/* SPDX-License-Identifier: Apache-2.0 */
/* One source, two hooks. Every program is compiled twice (build.rs): for
 * XDP (struct xdp_md, the default) and, with -DHSN_TC, as a TC classifier
 * (struct __sk_buff, attached to tcx ingress). The shared code names its
 * context `struct hsn_ctx` and goes through this header for what differs:
 * packet pointers, the frame's length, verdicts and the redirect; hsn_hook.h
 * has the rest (head adjustment, the TCP checksum, GSO).
 *
 * TC serves where XDP cannot: interfaces without native XDP, and it sees
 * packets the way the stack does (after GRO, VLAN tag in skb metadata). It
 * counts the same: the IP bytes of every packet on the wire, into the same
 * maps (see hsn_wire in hsn_hook.h for a GSO packet). */
#ifndef HSN_CTX_H
#define HSN_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#ifdef HSN_TC
#define hsn_ctx __sk_buff
/* aya names a SchedClassifier section "classifier" (libbpf's "tc"). */
#define HSN_PROG_SEC "classifier"
#define HSN_ACT_PASS TC_ACT_OK
#define HSN_ACT_DROP TC_ACT_SHOT
/* TC has no "aborted": a packet a program failed to rewrite is dropped. */
#define HSN_ACT_ABORTED	 TC_ACT_SHOT
#define HSN_ACT_REDIRECT TC_ACT_REDIRECT
#else
#define hsn_ctx		 xdp_md
/* xdp.frags: jumbo frames arrive as multi-buffer frames on most drivers. */
#define HSN_PROG_SEC	 "xdp.frags"
#define HSN_ACT_PASS	 XDP_PASS
#define HSN_ACT_DROP	 XDP_DROP
#define HSN_ACT_ABORTED	 XDP_ABORTED
#define HSN_ACT_REDIRECT XDP_REDIRECT
#endif

static __always_inline void *hsn_data(struct hsn_ctx *ctx)
{
	return (void *)(long)ctx->data;
}

static __always_inline void *hsn_data_end(struct hsn_ctx *ctx)
{
	return (void *)(long)ctx->data_end;
}

/* The whole frame's length: with the fragments of a multi-buffer frame
 * (XDP) or the paged part of the skb (TC); data..data_end is only the
 * linear part. */
static __always_inline __u64 hsn_frame_len(struct hsn_ctx *ctx)
{
#ifdef HSN_TC
	return ctx->len;
#else
	return bpf_xdp_get_buff_len(ctx);
#endif
}

/* TC: makes the first `len` bytes of the frame (or all of a shorter one)
 * linear, so that headers can be read directly. A no-op for a linear skb
 * and in XDP. On failure the parse finds the headers missing. */
static __always_inline void hsn_pull(struct hsn_ctx *ctx, __u32 len)
{
#ifdef HSN_TC
	__u32 want = ctx->len < len ? ctx->len : len;

	if (hsn_data(ctx) + want > hsn_data_end(ctx))
		bpf_skb_pull_data(ctx, want);
#endif
}

/* Prepares the redirect to egress device `ifindex`, which must be in
 * `devmap` (the devices a next hop may use). 1, or 0 when it is not there
 * (the device went away): the caller passes the packet to the kernel.
 * XDP: bpf_redirect_map. TC has no devmap redirect: the same devmap entry
 * is checked, then bpf_redirect to the device's egress. */
static __always_inline int hsn_redirect(void *devmap, __u32 ifindex)
{
#ifdef HSN_TC
	struct bpf_devmap_val *dev = bpf_map_lookup_elem(devmap, &ifindex);

	if (!dev)
		return 0;
	return bpf_redirect(dev->ifindex, 0) == TC_ACT_REDIRECT;
#else
	return bpf_redirect_map(devmap, ifindex, XDP_PASS) == XDP_REDIRECT;
#endif
}

#endif /* HSN_CTX_H */
