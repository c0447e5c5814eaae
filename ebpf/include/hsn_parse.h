/* SPDX-License-Identifier: Apache-2.0 */
/* Packet parsing shared by the edge and super-node programs. A packet is
 * either fully understood (HSN_PARSE_OK), not IP (HSN_PARSE_NON_IP), or
 * rejected (HSN_PARSE_ERROR); only HSN_PARSE_OK packets may be metered. */
#ifndef HSN_PARSE_H
#define HSN_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "hsn_ctx.h"

/* 802.1Q/802.1ad tags accepted before the IP header (single or QinQ). */
#define HSN_MAX_VLAN_TAGS 2
/* IPv6 extension headers walked before the L4 header; more is an error. */
#define HSN_MAX_EXT_HDRS 6
/* Bound on the IPv6 header chain length; keeps packet offsets provably
 * small for the verifier, and real chains are far shorter. */
#define HSN_MAX_V6_CHAIN 512
/* ICMP/ICMPv6: type, code, checksum and the 4-byte rest-of-header. */
#define HSN_ICMP_HDR_LEN 8

#define HSN_IP_OFFSET  0x1fff
#define HSN_IP_MF      0x2000
#define HSN_IP6_OFFSET 0xfff8
#define HSN_IP6_MF     0x0001

enum hsn_parse_result {
	HSN_PARSE_OK,
	HSN_PARSE_NON_IP,
	HSN_PARSE_ERROR,
};

struct hsn_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Common prefix of hop-by-hop, routing, destination options and AH. */
struct hsn_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct hsn_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

/* Bound on where an L4 header (or a tunnelled packet) may start in a frame:
 * Ethernet, two tags, IPv4 with options or IPv6 with its chain. */
#define HSN_MAX_L4_OFF (14 + 8 + HSN_MAX_V6_CHAIN)
/* The furthest a parse reads into a frame: a tunnelled packet's L4 header
 * after its own IPv6 chain (TCP's, with options: 60 bytes). TC makes that
 * much linear first (hsn_pull). */
#define HSN_PULL_LEN (HSN_MAX_L4_OFF + HSN_MAX_V6_CHAIN + 60)

/* What the programs need from a parsed packet (or from the packet inside a
 * tunnel: offsets are always from the start of the frame). */
struct hsn_pkt {
	__u8 saddr[16];	 /* IPv6, or IPv4 mapped (::ffff:a.b.c.d) */
	__u8 daddr[16];	 /* same encoding as saddr */
	__be16 l3_proto; /* ethertype after the VLAN tags */
	__u16 l3_off;	 /* IP header */
	__u16 l4_off;	 /* L4 header; 0 for a non-first fragment */
	__u8 l4_proto;	 /* after the IPv6 extension headers */
	__u8 tos;	 /* IPv4 TOS or IPv6 traffic class */
	__u8 is_frag;	 /* a fragment (first or not) of a larger packet */
	__u32 l3_len;	 /* IP total length: what is metered */
	__u32 vlan_len;	 /* bytes of VLAN tags between MACs and IP header */
	__u8 is_v6;
};

/* The L4 header must be complete within the IP payload (l4_len bytes). */
static __always_inline int hsn_l4_ok(void *l4, void *data_end, __u32 l4_len,
				     __u8 proto)
{
	struct tcphdr *th = l4;

	switch (proto) {
	case IPPROTO_TCP:
		if (l4_len < sizeof(*th) || (void *)(th + 1) > data_end)
			return 0;
		return th->doff >= 5 && th->doff * 4 <= l4_len;
	case IPPROTO_UDP:
		return l4_len >= sizeof(struct udphdr);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return l4_len >= HSN_ICMP_HDR_LEN;
	default:
		/* Other protocols (GRE, ESP, SCTP...) are metered unparsed. */
		return 1;
	}
}

static __always_inline void hsn_map_v4(__u8 *dst, const void *addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, addr, 4);
}

/* Does an IP packet of `len` bytes at `off` fit what holds it? `avail`
 * bytes from the IP header are known to be there; with `whole` set, `avail`
 * is the frame's linear part only, and a longer packet is measured against
 * the whole frame (the fragments of a multi-buffer frame included). That
 * costs a helper call in XDP (hsn_frame_len), so only a packet longer than
 * the linear part pays it. */
static __always_inline int hsn_ip_len_ok(__u64 len, __u32 off, __u64 avail,
					 struct hsn_ctx *whole)
{
	if (len <= avail)
		return 1;
	return whole && len <= hsn_frame_len(whole) - off;
}

/* avail, whole: what hsn_ip_len_ok validates the total length with. */
static __always_inline int hsn_parse_v4(void *data, __u32 off, void *data_end,
					__u64 avail, struct hsn_ctx *whole,
					struct hsn_pkt *pkt)
{
	void *l3 = data + off;
	struct iphdr *iph = l3;
	__u32 hlen, tot;

	if ((void *)(iph + 1) > data_end)
		return HSN_PARSE_ERROR;
	if (iph->version != 4 || iph->ihl < 5)
		return HSN_PARSE_ERROR;
	hlen = iph->ihl * 4;
	tot = bpf_ntohs(iph->tot_len);
	if (tot < hlen || !hsn_ip_len_ok(tot, off, avail, whole) ||
	    l3 + hlen > data_end)
		return HSN_PARSE_ERROR;

	hsn_map_v4(pkt->saddr, &iph->saddr);
	hsn_map_v4(pkt->daddr, &iph->daddr);
	pkt->l3_off = off;
	pkt->l3_len = tot;
	pkt->l4_proto = iph->protocol;
	pkt->tos = iph->tos;
	pkt->is_v6 = 0;

	/* Non-first fragments carry no L4 header; first ones must. */
	pkt->is_frag =
	    !!(bpf_ntohs(iph->frag_off) & (HSN_IP_OFFSET | HSN_IP_MF));
	if (bpf_ntohs(iph->frag_off) & HSN_IP_OFFSET)
		return HSN_PARSE_OK;
	if (!hsn_l4_ok(l3 + hlen, data_end, tot - hlen, iph->protocol))
		return HSN_PARSE_ERROR;
	pkt->l4_off = off + hlen;
	return HSN_PARSE_OK;
}

static __always_inline int hsn_is_ext_hdr(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
	       next == IPPROTO_FRAGMENT || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_AH;
}

static __always_inline int hsn_parse_v6(void *data, __u32 l3_off,
					void *data_end, __u64 avail,
					struct hsn_ctx *whole,
					struct hsn_pkt *pkt)
{
	void *l3 = data + l3_off;
	struct ipv6hdr *ip6 = l3;
	__u32 len, off = sizeof(*ip6);
	__u8 next;

	if ((void *)(ip6 + 1) > data_end)
		return HSN_PARSE_ERROR;
	if (ip6->version != 6)
		return HSN_PARSE_ERROR;
	len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (!hsn_ip_len_ok(len, l3_off, avail, whole))
		return HSN_PARSE_ERROR;

	__builtin_memcpy(pkt->saddr, &ip6->saddr, 16);
	__builtin_memcpy(pkt->daddr, &ip6->daddr, 16);
	pkt->l3_off = l3_off;
	pkt->l3_len = len;
	pkt->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	pkt->is_v6 = 1;
	next = ip6->nexthdr;

	for (int i = 0; i < HSN_MAX_EXT_HDRS; i++) {
		struct hsn_ext_hdr *eh = l3 + off;
		struct hsn_frag_hdr *fh = l3 + off;

		if (!hsn_is_ext_hdr(next))
			break;
		/* Every extension header is at least 8 bytes. */
		if ((void *)(fh + 1) > data_end || off + sizeof(*fh) > len)
			return HSN_PARSE_ERROR;
		if (next == IPPROTO_FRAGMENT) {
			/* An atomic fragment (offset 0, no M: RFC 6946) is a
			 * whole packet. */
			pkt->is_frag = !!(bpf_ntohs(fh->frag_off) &
					  (HSN_IP6_OFFSET | HSN_IP6_MF));
			if (bpf_ntohs(fh->frag_off) & HSN_IP6_OFFSET) {
				pkt->l4_proto = fh->nexthdr;
				return HSN_PARSE_OK;
			}
			next = fh->nexthdr;
			off += sizeof(*fh);
			continue;
		}
		/* AH counts 4-byte units minus 2, the others 8-byte units
		 * minus 1 (RFC 4302, RFC 8200). */
		if (next == IPPROTO_AH)
			off += (eh->hdrlen + 2) * 4;
		else
			off += (eh->hdrlen + 1) * 8;
		next = eh->nexthdr;
		if (off > len || off > HSN_MAX_V6_CHAIN)
			return HSN_PARSE_ERROR;
	}
	if (hsn_is_ext_hdr(next))
		return HSN_PARSE_ERROR;
	pkt->l4_proto = next;
	if (!hsn_l4_ok(l3 + off, data_end, len - off, next))
		return HSN_PARSE_ERROR;
	pkt->l4_off = l3_off + off;
	return HSN_PARSE_OK;
}

static __always_inline int hsn_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) ||
	       proto == bpf_htons(ETH_P_8021AD);
}

/* The frame's Ethernet header, VLAN tags and IP packet. */
static __always_inline int hsn_parse(struct hsn_ctx *ctx, struct hsn_pkt *pkt)
{
	__u64 linear;
	void *data, *data_end;
	struct ethhdr *eth;
	__u32 off = sizeof(*eth);
	__be16 proto;

	hsn_pull(ctx, HSN_PULL_LEN);
	data = hsn_data(ctx);
	data_end = hsn_data_end(ctx);
	linear = data_end - data;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return HSN_PARSE_ERROR;
	proto = eth->h_proto;

	for (int i = 0; i < HSN_MAX_VLAN_TAGS; i++) {
		struct hsn_vlan_hdr *vh = data + off;

		if (!hsn_is_vlan(proto))
			break;
		if ((void *)(vh + 1) > data_end)
			return HSN_PARSE_ERROR;
		proto = vh->proto;
		off += sizeof(*vh);
	}
	pkt->vlan_len = off - sizeof(*eth);
	pkt->l3_proto = proto;

	if (proto == bpf_htons(ETH_P_IP))
		return hsn_parse_v4(data, off, data_end, linear - off, ctx,
				    pkt);
	if (proto == bpf_htons(ETH_P_IPV6))
		return hsn_parse_v6(data, off, data_end, linear - off, ctx,
				    pkt);
	/* A third tag: an encapsulation we do not meter, so not "non-IP". */
	if (hsn_is_vlan(proto))
		return HSN_PARSE_ERROR;
	return HSN_PARSE_NON_IP;
}

/* IPv4-mapped (::ffff:a.b.c.d)? */
static __always_inline int hsn_is_mapped_v4(const __u8 *a)
{
	__u64 lo;
	__u32 mid;

	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return lo == 0 && mid == bpf_htonl(0x0000ffff);
}

/* The tunnel protocol of an IP-in-IP packet (IPPROTO_IPIP: IPv4 inside,
 * IPPROTO_IPV6: IPv6 inside), or 0: not a tunnel packet whose inner packet
 * can be read whole. Not one: a fragment of the outer packet (the inner
 * packet is only whole after reassembly), and an IPv6 outer packet from an
 * IPv4-mapped source (the peer maps hold IPv4 peers in that form; Linux
 * drops such packets too). */
static __always_inline __u8 hsn_tunnel_proto(const struct hsn_pkt *outer)
{
	if (!outer->l4_off || outer->is_frag)
		return 0;
	if (outer->is_v6 && hsn_is_mapped_v4(outer->saddr))
		return 0;
	if (outer->l4_proto == IPPROTO_IPIP || outer->l4_proto == IPPROTO_IPV6)
		return outer->l4_proto;
	return 0;
}

/* The packet inside an IP-in-IP `outer` (hsn_tunnel_proto != 0): it must
 * fill the outer payload exactly, and parse like any packet. */
static __always_inline int hsn_parse_inner(struct hsn_ctx *ctx,
					   const struct hsn_pkt *outer,
					   struct hsn_pkt *inner)
{
	void *data = hsn_data(ctx);
	void *data_end = hsn_data_end(ctx);
	__u32 off = outer->l4_off;
	__u32 outer_end = outer->l3_off + outer->l3_len;
	int res;

	if (off > HSN_MAX_L4_OFF || off >= outer_end)
		return HSN_PARSE_ERROR;
	inner->vlan_len = outer->vlan_len;
	if (outer->l4_proto == IPPROTO_IPIP) {
		inner->l3_proto = bpf_htons(ETH_P_IP);
		res = hsn_parse_v4(data, off, data_end, outer_end - off, NULL,
				   inner);
	} else {
		inner->l3_proto = bpf_htons(ETH_P_IPV6);
		res = hsn_parse_v6(data, off, data_end, outer_end - off, NULL,
				   inner);
	}
	if (res == HSN_PARSE_OK && inner->l3_len != outer_end - off)
		return HSN_PARSE_ERROR;
	return res;
}

#endif /* HSN_PARSE_H */
