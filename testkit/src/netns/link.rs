//! An interface's own counters.

/// Counters of one interface, as the kernel keeps them (`ip -s link`, 64-bit). Bytes are
/// frame bytes without the FCS (for veth: Ethernet header + payload).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Frames dropped on receive (for veth also XDP drops and failed XDP transmits).
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Frames dropped on transmit (for veth: the peer could not take them).
    pub tx_dropped: u64,
}

impl LinkStats {
    /// What changed between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            rx_packets: self.rx_packets.wrapping_sub(earlier.rx_packets),
            rx_bytes: self.rx_bytes.wrapping_sub(earlier.rx_bytes),
            rx_errors: self.rx_errors.wrapping_sub(earlier.rx_errors),
            rx_dropped: self.rx_dropped.wrapping_sub(earlier.rx_dropped),
            tx_packets: self.tx_packets.wrapping_sub(earlier.tx_packets),
            tx_bytes: self.tx_bytes.wrapping_sub(earlier.tx_bytes),
            tx_errors: self.tx_errors.wrapping_sub(earlier.tx_errors),
            tx_dropped: self.tx_dropped.wrapping_sub(earlier.tx_dropped),
        }
    }

    /// Errors and drops in both directions.
    pub fn lost(&self) -> u64 {
        self.rx_errors + self.rx_dropped + self.tx_errors + self.tx_dropped
    }

    /// Parses `ip -j -s link show dev <one interface>`.
    pub(crate) fn from_ip_json(json: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let stats = &value[0]["stats64"];
        let get = |dir: &str, key: &str| {
            stats[dir][key]
                .as_u64()
                .ok_or_else(|| format!("no stats64.{dir}.{key}"))
        };
        Ok(Self {
            rx_packets: get("rx", "packets")?,
            rx_bytes: get("rx", "bytes")?,
            rx_errors: get("rx", "errors")?,
            rx_dropped: get("rx", "dropped")?,
            tx_packets: get("tx", "packets")?,
            tx_bytes: get("tx", "bytes")?,
            tx_errors: get("tx", "errors")?,
            tx_dropped: get("tx", "dropped")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_json_and_subtracts() {
        let json = r#"[{"ifindex":2,"ifname":"v0","stats64":{
            "rx":{"bytes":100,"packets":2,"errors":0,"dropped":1,"over_errors":0,"multicast":0},
            "tx":{"bytes":300,"packets":4,"errors":0,"dropped":0,"carrier_errors":0,"collisions":0}}}]"#;
        let s = LinkStats::from_ip_json(json).unwrap();
        assert_eq!((s.rx_bytes, s.rx_packets, s.rx_dropped), (100, 2, 1));
        assert_eq!((s.tx_bytes, s.tx_packets), (300, 4));
        assert_eq!(s.lost(), 1);
        let zero = LinkStats::default();
        assert_eq!(s.since(&zero), s);
        assert_eq!(s.since(&s), zero);
        assert!(LinkStats::from_ip_json("[{}]").is_err());
        assert!(LinkStats::from_ip_json("nope").is_err());
    }
}
