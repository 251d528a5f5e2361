//! Free loopback ports.
//!
//! A port is picked here and bound later by another process, so something
//! else may take it in between. The kernel's own picks (port 0, every
//! outgoing connection, docker-proxy publishing a container's port) all come
//! from the ephemeral range, so ours come from below it: a port taken in the
//! gap is then another harness's pick, which is unlikely, rather than the
//! kernel's next one, which was likely under a docker run (seen: a loadgen's
//! metrics port taken by docker-proxy).

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::EnvError;

/// The lowest port we pick.
const LOWEST: u16 = 10_000;

/// The first port of the kernel's ephemeral range (32768 when unreadable).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|start| *start > LOWEST + 1_000)
        .unwrap_or(32_768)
}

/// A free port on 127.0.0.1 below the ephemeral range (nothing holds it afterwards).
pub fn free_addr() -> Result<SocketAddr, EnvError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(ephemeral_start() - LOWEST);
    // Where this process starts looking: spread by pid and time, so that
    // harnesses running side by side look in different places.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
    let mut last = None;
    for _ in 0..span.min(512) {
        let offset = seed.wrapping_add(NEXT.fetch_add(7_919, Ordering::Relaxed)) % span;
        let port = LOWEST + offset as u16;
        match TcpListener::bind(("127.0.0.1", port)).and_then(|l| l.local_addr()) {
            Ok(addr) => return Ok(addr),
            Err(err) => last = Some(err),
        }
    }
    // Nothing free below the range: let the kernel pick.
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| EnvError::NoFreePort(last.unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_differ() {
        let start = ephemeral_start();
        let ports: std::collections::BTreeSet<u16> = (0..50).map(|_| free_addr().unwrap().port()).collect();
        assert!(ports.iter().all(|p| (LOWEST..start).contains(p)), "{ports:?}");
        assert!(ports.len() >= 45, "picks spread out: {ports:?}");
    }
}
