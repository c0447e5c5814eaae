//! The other validators a node dials: a file of `<node id>@<host>:<port>` lines (the
//! operator's ConfigMap, mounted, or the pod's agent's copy of it: [`relay`](super::relay)),
//! read at start into CometBFT's `persistent_peers` and then every few seconds, each new or moved peer dialled through CometBFT's RPC
//! (`dial_peers`, persistent). So validators that start before they know each other's
//! addresses still meet, and a super node rescheduled to another address is dialled there.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::watch;

use hsn_ledger_api::cometbft;

use super::relay::Copies;

/// How often the peers file is re-read.
pub const PEERS_INTERVAL: Duration = Duration::from_secs(2);

/// One validator's P2P address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    /// CometBFT's node id: 40 lower-case hex digits.
    pub id: String,
    /// `host:port`.
    pub address: String,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.address)
    }
}

impl FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, address) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?} is not <node id>@<host>:<port>"))?;
        if id.len() != 40
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("{s:?}: node id must be 40 lower-case hex digits"));
        }
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{s:?}: want <host>:<port>"));
        }
        if !address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return Err(format!("{s:?}: the host has characters no address has"));
        }
        Ok(Self {
            id: id.to_owned(),
            address: address.to_owned(),
        })
    }
}

/// The peers a file lists, without `own_id`; blank lines and `#` comments skipped. A line
/// that is no peer is an error naming it (the file is the operator's, so it is a bug).
pub fn parse(text: &str, own_id: &str) -> Result<Vec<Peer>, String> {
    let mut peers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let peer: Peer = line.parse().map_err(|e| format!("line {}: {e}", n + 1))?;
        if peer.id != own_id {
            peers.push(peer);
        }
    }
    peers.sort();
    peers.dedup();
    Ok(peers)
}

/// Reads the freshest copy of the peers file; none is no peers (the operator has not
/// written it yet).
pub fn read(copies: &Copies, own_id: &str) -> Result<Vec<Peer>, String> {
    let Some(path) = copies.freshest() else {
        return Ok(Vec::new());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, own_id).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Re-reads the peers file's `copies` every [`PEERS_INTERVAL`] and dials each peer that is
/// new or has moved, until `stop`. `known` are the peers CometBFT started with.
pub async fn follow(
    copies: Copies,
    own_id: String,
    rpc: SocketAddr,
    known: Vec<Peer>,
    mut stop: watch::Receiver<bool>,
) {
    let mut dialled: BTreeMap<String, String> =
        known.into_iter().map(|p| (p.id, p.address)).collect();
    loop {
        tokio::select! {
            () = tokio::time::sleep(PEERS_INTERVAL) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        let peers = match read(&copies, &own_id) {
            Ok(peers) => peers,
            Err(e) => {
                tracing::warn!(error = %e, "peers file unreadable; keeping the peers known");
                continue;
            }
        };
        let new: Vec<Peer> = peers
            .into_iter()
            .filter(|p| dialled.get(&p.id) != Some(&p.address))
            .collect();
        if new.is_empty() {
            continue;
        }
        match dial(rpc, &new).await {
            Ok(()) => {
                for peer in new {
                    tracing::info!(peer = %peer, "dialling a new peer");
                    dialled.insert(peer.id, peer.address);
                }
            }
            // CometBFT may not serve RPC yet: the next round tries again.
            Err(e) => tracing::debug!(error = %e, "dial_peers failed; retrying"),
        }
    }
}

/// CometBFT's `dial_peers` for `peers`, as persistent peers (redialled when lost).
async fn dial(rpc: SocketAddr, peers: &[Peer]) -> Result<(), cometbft::RpcError> {
    let list: Vec<String> = peers.iter().map(|p| format!("%22{p}%22")).collect();
    let path = format!("/dial_peers?persistent=true&peers=%5B{}%5D", list.join(","));
    cometbft::call(rpc, &path).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_peers_file_without_self_and_duplicates() {
        let text = format!(
            "# validators\n{A}@10.0.0.1:26656\n\n{B}@[fd00::2]:26656\n{B}@[fd00::2]:26656\n"
        );
        let peers = parse(&text, A).unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].to_string(), format!("{B}@[fd00::2]:26656"));
        for bad in [
            "10.0.0.1:26656",
            "XYZ@10.0.0.1:26656",
            &format!("{A}@10.0.0.1"),
            &format!("{A}@10.0.0.1:99999"),
            &format!("{A}@10.0.0.1:1&unsafe=1"),
        ] {
            assert!(parse(bad, B).is_err(), "{bad} refused");
        }
        assert!(parse("garbage", A).unwrap_err().contains("line 1"));
    }

    #[test]
    fn a_missing_file_is_no_peers() {
        let dir = tempfile::tempdir().unwrap();
        let copies = Copies::new(dir.path().join("peers"), Some(dir.path()));
        assert_eq!(read(&copies, A).unwrap(), vec![]);
    }
}
