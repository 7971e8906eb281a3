//! STUB — to be replaced by the DNS helper. Interface is fixed.

use crate::zone::SharedZones;
use std::net::SocketAddr;

/// Bind UDP and TCP on `addr` and answer from `zones` until the process ends.
/// Returns once both sockets are bound; serving continues on a spawned task.
pub async fn spawn(addr: SocketAddr, zones: SharedZones) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let _ = (addr, zones);
    Ok(tokio::spawn(async {}))
}
