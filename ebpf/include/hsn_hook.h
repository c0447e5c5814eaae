/* SPDX-License-Identifier: Apache-2.0 */
/* What the two hooks do differently with a parsed packet (hsn_ctx.h has the
 * context itself): how many packets and bytes it is on the wire, and, for
 * TC, the tunnel's head adjustment (hsn_tunnel.h calls these). */
#ifndef HSN_HOOK_H
#define HSN_HOOK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "hsn_ctx.h"
#include "hsn_parse.h"
#include "hsn_types.h"

/* A parsed packet as it is (or will be) on the wire: what is metered, and
 * what must fit a tunnel. */
struct hsn_wire {
	__u32 packets;
	__u32 bytes;   /* IP bytes of those packets */
	__u32 max_len; /* IP length of the largest */
};

/* `pkt` on the wire. XDP sees every packet as sent: one, of its IP total
 * length. TC may see a GSO packet instead (segments GRO merged on receive,
 * or a local TSO send not cut yet): it stands for the segments the kernel
 * cuts it into, gso_size payload bytes each with its own copy of the IP and
 * TCP/UDP headers, and is counted as those, as XDP would have seen them.
 * So both hooks, and an edge and a super node whatever their GRO batches,
 * count the same packets and bytes. */
static __always_inline void
hsn_wire_of(struct hsn_ctx *ctx, const struct hsn_pkt *pkt, struct hsn_wire *w)
{
	w->packets = 1;
	w->bytes = pkt->l3_len;
	w->max_len = pkt->l3_len;
#ifdef HSN_TC
	void *data = hsn_data(ctx);
	void *data_end = hsn_data_end(ctx);
	__u32 gso = ctx->gso_size;
	__u32 off = pkt->l4_off;
	__u32 hdr, payload, segs;

	if (!gso || !off || off > HSN_MAX_L4_OFF + HSN_MAX_V6_CHAIN)
		return;
	if (pkt->l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = data + off;

		if ((void *)(th + 1) > data_end)
			return;
		hdr = th->doff * 4;
	} else if (pkt->l4_proto == IPPROTO_UDP) {
		hdr = sizeof(struct udphdr);
	} else {
		return;
	}
	hdr += off - pkt->l3_off;
	if (hdr >= pkt->l3_len)
		return;
	payload = pkt->l3_len - hdr;
	segs = (payload + gso - 1) / gso;
	w->packets = segs;
	w->bytes = pkt->l3_len + (segs - 1) * hdr;
	w->max_len = hdr + (payload < gso ? payload : gso);
#endif
}

#ifdef HSN_TC
/* BPF_F_ADJ_ROOM_DECAP_L3_* (Linux 6.3), missing from older UAPI headers:
 * the inner family after a decapsulation, when it is not the outer one. */
#define HSN_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define HSN_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)

/* A VLAN tag, as bpf_skb_vlan_push takes it. */
struct hsn_tag {
	__be16 proto;
	__u16 tci;
};

static __always_inline int hsn_tc_tagged(struct __sk_buff *skb)
{
	return skb->vlan_present || hsn_is_vlan((__be16)skb->protocol);
}

/* Removes every VLAN tag: the skb's own (the kernel takes the outer tag off
 * the frame before TC runs) and any left in the frame (QinQ's inner one, or
 * every tag of a test run's frame); one per pop. 0, or -1. */
static __always_inline int hsn_tc_pop_tags(struct __sk_buff *skb)
{
#pragma unroll
	for (int i = 0; i < HSN_MAX_VLAN_TAGS + 1; i++) {
		if (!hsn_tc_tagged(skb))
			return 0;
		if (bpf_skb_vlan_pop(skb))
			return -1;
	}
	return hsn_tc_tagged(skb) ? -1 : 0;
}

/* Room for the tunnel's outer header between the Ethernet header and the IP
 * packet, tags removed first: the encapsulated frame leaves untagged, as
 * from XDP. The kernel marks the skb encapsulated (GSO then cuts it as IP in
 * IP) and sets its protocol to the outer family; FIXED_GSO keeps the
 * segments' payload as the sender cut it (the MSS clamp left room for the
 * outer header). 0, or -1. */
static __always_inline int hsn_tc_encap_room(struct __sk_buff *skb,
					     __u8 outer_v6)
{
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	__s32 room = HSN_TUNNEL_V4_OVERHEAD;

	if (outer_v6) {
		flags |= BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
		room = HSN_TUNNEL_V6_OVERHEAD;
	} else {
		flags |= BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
	}
	if (hsn_tc_pop_tags(skb))
		return -1;
	return bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags) ? -1 : 0;
}

/* Removes the outer IP header of `outer` (inner packet `inner`): the
 * Ethernet header and the tags stay, the EtherType becomes the inner
 * family's, the skb's protocol too. The helper works on an untagged frame,
 * so the tags come off first and go back after, innermost first (each push
 * moves the previous tag into the frame): the outer one ends up in the
 * skb's metadata, where the kernel keeps it on receive. 0, or -1. */
static __always_inline int hsn_tc_decap(struct __sk_buff *skb,
					const struct hsn_pkt *outer,
					const struct hsn_pkt *inner)
{
	/* Outermost first: the skb's own, then the frame's. */
	struct hsn_tag meta = {}, tag1 = {}, tag2 = {};
	__u32 has_meta = skb->vlan_present, vlan_len = outer->vlan_len;
	__s32 strip = outer->l4_off - outer->l3_off;
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO;
	void *data = hsn_data(skb);
	void *data_end = hsn_data_end(skb);
	struct ethhdr *eth = data;
	struct hsn_vlan_hdr *vh = (void *)(eth + 1);

	if (has_meta) {
		meta.proto = skb->vlan_proto;
		meta.tci = skb->vlan_tci;
	}
	if (vlan_len >= 4) {
		if ((void *)(vh + 1) > data_end)
			return -1;
		tag1.proto = eth->h_proto;
		tag1.tci = bpf_ntohs(vh[0].tci);
	}
	if (vlan_len >= 8) {
		if ((void *)(vh + 2) > data_end)
			return -1;
		tag2.proto = vh[0].proto;
		tag2.tci = bpf_ntohs(vh[1].tci);
	}
	if (hsn_tc_pop_tags(skb))
		return -1;
	if (outer->is_v6 != inner->is_v6)
		flags |= inner->is_v6 ? HSN_ADJ_ROOM_DECAP_L3_IPV6
				      : HSN_ADJ_ROOM_DECAP_L3_IPV4;
	if (bpf_skb_adjust_room(skb, -strip, BPF_ADJ_ROOM_MAC, flags))
		return -1;
	data = hsn_data(skb);
	data_end = hsn_data_end(skb);
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	eth->h_proto = inner->l3_proto;
	if (vlan_len >= 8 && bpf_skb_vlan_push(skb, tag2.proto, tag2.tci))
		return -1;
	if (vlan_len >= 4 && bpf_skb_vlan_push(skb, tag1.proto, tag1.tci))
		return -1;
	if (has_meta && bpf_skb_vlan_push(skb, meta.proto, meta.tci))
		return -1;
	return 0;
}
#endif /* HSN_TC */

#endif /* HSN_HOOK_H */
