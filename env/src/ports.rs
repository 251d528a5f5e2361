//! Free loopback ports.

use std::net::{SocketAddr, TcpListener};

use crate::error::EnvError;

/// A free port on 127.0.0.1 (the OS picks; nothing holds it afterwards).
pub fn free_addr() -> Result<SocketAddr, EnvError> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(EnvError::NoFreePort)
}
