/* SPDX-License-Identifier: Apache-2.0 */
/* The edge <-> super tunnel: IP in IP, either family inside either (RFC
 * 2003, RFC 2473). Why IP in IP and not GUE, VXLAN or GENEVE:
 * - the outer source address is the whole identity the super node needs
 *   (it knows its edges' addresses from the routes table); no VNI, option
 *   or inner Ethernet header is needed, so the cheapest header serves: 20
 *   bytes (IPv4 outer) or 40 (IPv6), where GENEVE costs 50/70. Katran
 *   makes the same choice for its load balancer (IPIP/IP6IP6, GUE only as
 *   an option); Cilium uses VXLAN/GENEVE because its overlay carries L2
 *   frames and a security identity, which HSN does not.
 * - the kernel's own ipip/ip6tnl devices speak it, so a node without the
 *   program (or a debugging host) can terminate the tunnel, and the bench
 *   compares against the kernel's forwarding of the same packets.
 * - what it costs: NIC receive-side scaling hashes the outer header only,
 *   so one edge's traffic lands on one queue of its super node (GUE's
 *   UDP source port would spread it). Written down, not yet needed.
 * The outer header has DF set and copies the inner TOS/traffic class; no
 * packet is ever fragmented (see hsn_edge.h for what happens to a packet
 * that does not fit, and the MSS clamp below). */
#ifndef HSN_TUNNEL_H
#define HSN_TUNNEL_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "hsn_ctx.h"
#include "hsn_hook.h"
#include "hsn_parse.h"
#include "hsn_types.h"

/* TCP option kinds (RFC 9293). */
#define HSN_TCPOPT_EOL	 0
#define HSN_TCPOPT_NOP	 1
#define HSN_TCPOPT_MSS	 2
#define HSN_TCP_MAX_OPTS 40

static __always_inline __u16 hsn_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* One's-complement checksum `check` after a 16-bit field went from `from` to
 * `to` (RFC 1624: HC' = ~(~HC + ~m + m')); any byte order, if one. */
static __always_inline __u16 hsn_csum_replace(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from;
	sum += to;
	return hsn_csum_fold(sum);
}

/* The outer header's size for a tunnel whose outer family is `outer_v6`. */
static __always_inline __u32 hsn_tunnel_overhead(__u8 outer_v6)
{
	return outer_v6 ? HSN_TUNNEL_V6_OVERHEAD : HSN_TUNNEL_V4_OVERHEAD;
}

/* Writes the tunnel's Ethernet header and outer IP header (hop's template,
 * hsn_types.h) in front of `inner`, which starts right after them, then its
 * per-packet fields. Whole words are copied: the verifier allows unaligned
 * packet stores where the CPU does them (x86, arm64). Returns 0, or -1 when the
 * frame is shorter than the headers. */
static __always_inline int hsn_write_outer(void *data, void *data_end,
					   const struct hsn_next_hop *hop,
					   const struct hsn_pkt *inner)
{
	const __u64 *t = hop->hdr;
	__u64 *d = data;
	__u8 proto = inner->is_v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;

	if (hop->outer_v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u8 *tc = (void *)ip6;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		/* 54 bytes: six words, then 4 and 2 more. */
		d[0] = t[0];
		d[1] = t[1];
		d[2] = t[2];
		d[3] = t[3];
		d[4] = t[4];
		d[5] = t[5];
		*(__u32 *)(d + 6) = *(const __u32 *)(t + 6);
		*(__u16 *)((__u8 *)d + 52) = *(const __u16 *)((__u8 *)t + 52);
		/* Version 6, then the traffic class (the inner TOS) across the
		 * nibbles of bytes 0 and 1; the flow label stays 0. */
		tc[0] = 0x60 | (inner->tos >> 4);
		tc[1] = (inner->tos & 0xf) << 4;
		ip6->payload_len = bpf_htons(inner->l3_len);
		ip6->nexthdr = proto;
	} else {
		struct iphdr *iph = data + ETH_HLEN;
		__u16 *w = (void *)iph;

		if ((void *)(iph + 1) > data_end)
			return -1;
		/* 34 bytes: four words, then 2. */
		d[0] = t[0];
		d[1] = t[1];
		d[2] = t[2];
		d[3] = t[3];
		*(__u16 *)(d + 4) = *(const __u16 *)(t + 4);
		iph->tos = inner->tos;
		iph->tot_len =
		    bpf_htons(inner->l3_len + HSN_TUNNEL_V4_OVERHEAD);
		iph->protocol = proto;
		/* The constant words' sum, and words 0, 1 and 4 (version and
		 * TOS, total length, TTL and protocol) as just written. */
		iph->check = hsn_csum_fold(hop->hdr_sum + w[0] + w[1] + w[4]);
	}
	return 0;
}

/* Encapsulates the frame's IP packet `pkt` toward `hop`: its Ethernet
 * header and VLAN tags are replaced by hop's Ethernet header and an outer
 * IP header. Returns 0, or -1 (the frame may then have lost its L2 header:
 * abort). */
static __always_inline int hsn_encap(struct hsn_ctx *ctx,
				     const struct hsn_pkt *pkt,
				     const struct hsn_next_hop *hop)
{
#ifdef HSN_TC
	if (hsn_tc_encap_room(ctx, hop->outer_v6))
		return -1;
#else
	int grow = (int)hsn_tunnel_overhead(hop->outer_v6) - (int)pkt->vlan_len;

	if (bpf_xdp_adjust_head(ctx, -grow))
		return -1;
#endif
	return hsn_write_outer(hsn_data(ctx), hsn_data_end(ctx), hop, pkt);
}

/* Removes the outer IP header of `outer`, whose inner packet `inner` was
 * parsed: the Ethernet header and VLAN tags stay, the EtherType becomes the
 * inner packet's. Returns 0, or -1 (abort). */
static __always_inline int hsn_decap(struct hsn_ctx *ctx,
				     const struct hsn_pkt *outer,
				     const struct hsn_pkt *inner)
{
#ifdef HSN_TC
	return hsn_tc_decap(ctx, outer, inner);
#else
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 strip = outer->l4_off - outer->l3_off;
	__u32 vlan_len = outer->vlan_len;
	__u8 l2[ETH_HLEN + 4 * HSN_MAX_VLAN_TAGS];

	if (data + sizeof(l2) > data_end)
		return -1;
	__builtin_memcpy(l2, data, sizeof(l2));
	if (bpf_xdp_adjust_head(ctx, strip))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	/* The inner IP header is at least 20 bytes after the L2 header. */
	if (data + sizeof(l2) > data_end)
		return -1;
	__builtin_memcpy(data, l2, 2 * ETH_ALEN);
	if (vlan_len >= 4)
		__builtin_memcpy(data + 12, l2 + 12, 4);
	if (vlan_len >= 8)
		__builtin_memcpy(data + 16, l2 + 16, 4);
	if (vlan_len == 0)
		*(__be16 *)(data + 12) = inner->l3_proto;
	else if (vlan_len == 4)
		*(__be16 *)(data + 16) = inner->l3_proto;
	else
		*(__be16 *)(data + 20) = inner->l3_proto;
	return 0;
#endif
}

/* Lowers the MSS option of a TCP SYN in `pkt` to at most `mss`, fixing the
 * TCP checksum incrementally. Returns 1 when it lowered it. The option list
 * is walked within the TCP header's bound; anything malformed is left. TC
 * fixes the checksum through the kernel, which knows whether the packet's
 * checksum is filled in yet (a local sender's may be left to the device,
 * CHECKSUM_PARTIAL: then the checksum field holds only the pseudo-header's
 * sum, which the new MSS does not change). */
static __always_inline int hsn_clamp_mss(struct hsn_ctx *ctx,
					 const struct hsn_pkt *pkt, __u16 mss)
{
	void *data = hsn_data(ctx);
	void *data_end = hsn_data_end(ctx);
	__u32 off = pkt->l4_off;
	struct tcphdr *th;
	__u32 opt_end, i;
	__u8 *p;

	if (pkt->l4_proto != IPPROTO_TCP || !off || off > HSN_MAX_L4_OFF + 40)
		return 0;
	th = data + off;
	if ((void *)(th + 1) > data_end || !th->syn)
		return 0;
	opt_end = th->doff * 4 - sizeof(*th);
	p = (void *)(th + 1);
	for (i = 0; i < HSN_TCP_MAX_OPTS && i < opt_end;) {
		__u8 *o = p + (i & 63);
		__u16 old, new;

		if ((void *)(o + 1) > data_end)
			return 0;
		if (o[0] == HSN_TCPOPT_EOL)
			return 0;
		if (o[0] == HSN_TCPOPT_NOP) {
			i++;
			continue;
		}
		if ((void *)(o + 4) > data_end || o[1] < 2)
			return 0;
		if (o[0] != HSN_TCPOPT_MSS) {
			i += o[1];
			continue;
		}
		if (o[1] != 4 || i + 4 > opt_end)
			return 0;
		__builtin_memcpy(&old, o + 2, 2);
		if (bpf_ntohs(old) <= mss)
			return 0;
		new = bpf_htons(mss);
		__builtin_memcpy(o + 2, &new, 2);
#ifdef HSN_TC
		bpf_l4_csum_replace(ctx, off + offsetof(struct tcphdr, check),
				    old, new, sizeof(new));
#else
		th->check = hsn_csum_replace(th->check, old, new);
#endif
		return 1;
	}
	return 0;
}

/* The largest MSS a TCP segment of `pkt`'s family may announce so that it
 * fits a tunnel carrying outer packets of `mtu` bytes. */
static __always_inline __u16 hsn_tunnel_mss(const struct hsn_pkt *pkt,
					    __u32 mtu, __u8 outer_v6)
{
	__u32 hdrs =
	    hsn_tunnel_overhead(outer_v6) +
	    (pkt->is_v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr)) +
	    sizeof(struct tcphdr);

	return mtu > hdrs ? mtu - hdrs : 0;
}

#endif /* HSN_TUNNEL_H */
