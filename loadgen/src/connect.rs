//! What every target needs to reach a server: the request timeout, the error
//! of a set-up that failed, and a pool of gRPC channels.

use std::time::Duration;

use crate::grpc_channel::GrpcChannel;

/// How long one request may take before it counts as `error_timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Set-up against a server failed: the run cannot start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// `n` (at least one) HTTP/2 connections to `url`; `flag` names the URL and
/// `server` the server in errors.
pub(crate) async fn connect_channels(
    flag: &str,
    server: &str,
    url: &str,
    n: usize,
) -> Result<Vec<GrpcChannel>, SetupError> {
    let mut channels = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let channel = GrpcChannel::lazy(url).map_err(|e| SetupError(format!("{flag} {e}")))?;
        channel.dial().await.map_err(|e| SetupError(format!("cannot reach {server} at {url}: {e}")))?;
        channels.push(channel);
    }
    Ok(channels)
}
