//! Network-namespace topologies for tests and benchmarks, built with `ip` (iproute2).
//!
//! * [`Netns`]: a named namespace (`ip netns add`), deleted on drop, quiet by default (no
//!   router advertisements, DAD, link-local addresses or ICMP redirects, so the only packets
//!   on its links are the ones a test sends), with `ip` commands, sysctls, threads and child
//!   processes inside it.
//! * [`VethEnd`] + [`veth`]: a veth pair between two namespaces with MACs and IPv4/IPv6
//!   addresses (`nodad`), brought up; without ARP/ND by default, with static neighbours
//!   ([`VethPair::static_neighbours`]).
//! * [`LinkStats`]: an interface's own counters (`ip -j -s link`).
//! * [`Capture`]: every frame sent or received in a namespace (AF_PACKET), with its IP
//!   header, an independent count of what crossed a link.
//! * [`NsChild`]: a process running inside a namespace, SIGKILLed on drop and when the test
//!   process dies.
//!
//! Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2; [`is_root`] lets tests skip.
//!
//! ```no_run
//! # fn demo() -> Result<(), hsn_testkit::netns::Error> {
//! use hsn_core::MacAddr;
//! use hsn_testkit::netns::{Netns, VethEnd, veth};
//!
//! let a = Netns::unique("a")?;
//! let b = Netns::unique("b")?;
//! b.set_router()?; // forwarding on, ICMP redirects off; before its links, to keep them quiet
//! let link = veth(
//!     VethEnd::new(&a, "a0").addr("192.0.2.1/24").addr("2001:db8::1/64"),
//!     VethEnd::new(&b, "b0").mac(MacAddr([2, 0, 0, 0, 0, 2])).addr("192.0.2.2/24"),
//! )?;
//! link.static_neighbours()?; // no ARP/ND on the wire
//! let server = b.run(|| std::net::UdpSocket::bind("192.0.2.2:9000"))?.unwrap();
//! let before = b.link_stats("b0")?;
//! a.run(|| {
//!     let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
//!     s.send_to(b"hello", "192.0.2.2:9000").unwrap();
//! })?;
//! let mut buf = [0; 16];
//! assert_eq!(server.recv(&mut buf).unwrap(), 5);
//! assert_eq!(b.link_stats("b0")?.since(&before).rx_packets, 1);
//! # Ok(())
//! # }
//! ```
//! Everything created lives in the namespaces, so dropping the [`Netns`] values removes it.

mod capture;
mod child;
mod error;
mod link;
mod ns;
mod veth;

pub use capture::{Capture, Frame, IpHeader};
pub use child::NsChild;
pub use error::Error;
pub use link::LinkStats;
pub use ns::{Netns, is_root};
pub use veth::{IfAddr, VethEnd, VethPair, veth};
