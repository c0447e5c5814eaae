//! Free TCP ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use crate::Error;

/// Ports already handed out in this process: the OS may offer a port again once its probe
/// listener is closed, before the component that got it has bound it.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `n` distinct ports that were free on 127.0.0.1 a moment ago, never repeated in-process.
pub fn free_ports(n: usize) -> Result<Vec<u16>, Error> {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = guard.get_or_insert_with(HashSet::new);
    // Keep every probe listener open until all are chosen so the OS gives distinct ports.
    let mut listeners = Vec::new();
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::FreePort)?;
        let port = listener.local_addr().map_err(Error::FreePort)?.port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}
