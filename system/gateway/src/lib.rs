/*!
The Q2O API gateway: one process serving REST (axum) and gRPC (tonic) over the
same operations, with authentication, per-tenant rate limiting and sessions
shared through the [`Store`].

# Brief overview

* [`Config`] is everything the gateway can be told; [`config::Flags`] layers the
  command line and environment on top of a file.
* [`auth::Gatekeeper`] turns a credential into a tenant and takes a rate-limit
  token; both front-ends call it.
* [`operations`] is what the gateway does; [`rest`] and [`grpc`] only translate.
* [`Gateway`] binds both listeners and serves until a shutdown signal.

# Example

```no_run
# async fn example() -> Result<(), Box<dyn std::error::Error>> {
use std::sync::Arc;
use q2o_common::store::MemoryStore;
use q2o_gateway::{Config, Gateway};

let gateway = Gateway::bind(&Config::default(), Arc::new(MemoryStore::new()), prometheus::Registry::new()).await?;
println!("REST on {}", gateway.http_addr());
gateway.serve(q2o_common::telemetry::shutdown_signal()).await?;
# Ok(()) }
```
*/

pub mod admission;
pub mod auth;
pub mod config;
pub mod error;
pub mod grpc;
mod lease;
pub mod metrics;
pub mod operations;
pub mod rest;
pub mod search_proxy;
mod sessions;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use q2o_common::store::Store;
use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;

/// How long in-flight requests and open streams get after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `http` or `grpc`.
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// Why (address in use, permission ...).
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
}

/// A gateway with both listeners bound, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    http: TcpListener,
    grpc: TcpListener,
    state: AppState,
    max_body_bytes: usize,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    q2o_common::net::listen(addr).map_err(|source| GatewayError::Bind { what, addr, source })
}

impl Gateway {
    /// Binds the REST and gRPC listeners (port 0 picks a free port).
    pub async fn bind(
        config: &Config,
        store: Arc<dyn Store>,
        registry: prometheus::Registry,
    ) -> Result<Gateway, GatewayError> {
        Ok(Gateway {
            http: bind("http", config.http_addr).await?,
            grpc: bind("grpc", config.grpc_addr).await?,
            state: AppState::new(config, store, registry),
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Where REST listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("a bound listener has an address")
    }

    /// Where gRPC listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("a bound listener has an address")
    }

    /// Serves both APIs until `shutdown` resolves, then drains for up to five seconds.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), GatewayError> {
        // One signal for the servers and the open streams: both start
        // draining when it turns.
        let state = self.state.clone();
        let app = rest::app(self.state.clone(), self.max_body_bytes);
        let http = axum::serve(q2o_common::net::http_listener(self.http), app).with_graceful_shutdown(state.draining());
        // Each call is bounded by the shorter of its `grpc-timeout` and this.
        let longest = Some(self.state.request_timeout);
        let grpc = q2o_common::grpc_server::serve(self.grpc, grpc::routes(self.state), longest, state.draining());
        let servers = async {
            let (http, ()) = tokio::join!(http, grpc);
            http.map_err(GatewayError::Http)
        };
        let deadline = async move {
            shutdown.await;
            tracing::info!("shutting down");
            state.stopping.send_replace(true);
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!("open connections did not finish within {SHUTDOWN_GRACE:?}; closing them");
        };
        tokio::select! {
            result = servers => result,
            () = deadline => Ok(()),
        }
    }
}
