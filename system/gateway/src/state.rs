use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use q2o_common::store::Store;
use tokio::sync::watch;

use crate::admission::Admission;
use crate::auth::Gatekeeper;
use crate::config::Config;
use crate::metrics::GatewayMetrics;
use crate::search_proxy::SearchProxy;

/// What every REST handler and gRPC method shares. One `Arc`: axum clones
/// the state for every middleware and handler a request passes, and a clone
/// of the fields themselves (metric handles, the search client) was a dozen
/// atomic increments and as many decrements per request.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

/// The state's fields, reached through [`AppState`]'s `Deref`.
#[derive(Debug)]
pub struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) gate: Arc<Gatekeeper>,
    pub(crate) metrics: GatewayMetrics,
    pub(crate) registry: Registry,
    pub(crate) search: SearchProxy,
    pub(crate) admission: Arc<Admission>,
    /// The deadline of a request whose caller set none, and the longest one allowed.
    pub(crate) request_timeout: Duration,
    /// Turns true when the gateway starts draining: its servers stop
    /// accepting, and open streams end instead of holding the drain up for
    /// its whole grace.
    pub(crate) stopping: watch::Sender<bool>,
}

impl AppState {
    /// State for a gateway with this configuration over this store, exporting into `registry`.
    pub fn new(config: &Config, store: Arc<dyn Store>, registry: Registry) -> Self {
        let metrics = GatewayMetrics::new(&registry);
        let gate = Gatekeeper::new(
            &config.tenants,
            Arc::clone(&store),
            config.rate_limit,
            config.session_ttl,
            metrics.clone(),
        );
        let admission = Admission::new(config.admission, &registry);
        AppState(Arc::new(Shared {
            store,
            gate: Arc::new(gate),
            metrics,
            registry,
            search: SearchProxy::new(&config.search_url, &config.service_key),
            admission,
            request_timeout: config.request_timeout,
            stopping: watch::Sender::new(false),
        }))
    }
}

impl Shared {
    /// Resolves once the gateway starts draining.
    pub(crate) fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
