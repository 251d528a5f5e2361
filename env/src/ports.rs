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
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::EnvError;

/// The lowest port we pick.
const LOWEST: u16 = 10_000;

/// Between two picks of a process: a prime above any span of ports, so it
/// shares no factor with one and the walk visits every port once.
const STRIDE: u64 = 65_537;

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
    static START: OnceLock<u32> = OnceLock::new();
    let span = u32::from(ephemeral_start() - LOWEST);
    // Where this process starts looking, once: spread by pid and time, so
    // that harnesses running side by side look in different places. From
    // there the picks walk the range in strides of a prime that does not
    // divide it, so a process never picks a port twice: a port picked for a
    // process that binds it later (a loadgen's metrics, named to Prometheus
    // before the services start) is not handed to a service meanwhile. A
    // start drawn anew per pick did that (a loadgen's metrics port taken by
    // a service of the same run).
    let start = *START.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % span
    });
    let mut last = None;
    for _ in 0..span.min(512) {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let offset = ((u64::from(start) + u64::from(step) * STRIDE) % u64::from(span)) as u32;
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

    #[test]
    fn a_process_never_picks_a_port_twice() {
        // Random picks would repeat here (a birthday collision among 2,000
        // of ~22,000 ports is near certain); a port picked and not yet bound
        // must not go to someone else of the same run.
        let ports: Vec<u16> = (0..2_000).map(|_| free_addr().unwrap().port()).collect();
        let distinct: std::collections::BTreeSet<&u16> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
    }
}
