//! Forwarding of `/api/v1/search*` to q2o-search, with the caller's tenant set
//! by the gateway (a client cannot choose it).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use q2o_common::domain::TenantId;

use crate::error::{ApiError, FAILURES};

/// How long a search may take before the gateway gives up.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled client of q2o-search.
#[derive(Clone, Debug)]
pub struct SearchProxy {
    base: Option<String>,
    client: Client<HttpConnector, Empty<Bytes>>,
    key: HeaderValue,
}

impl SearchProxy {
    /// A proxy to `base_url` presenting `service_key`; an empty URL means search is off.
    pub fn new(base_url: &str, service_key: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let base = (!base_url.is_empty()).then(|| base_url.trim_end_matches('/').to_owned());
        // Validated with the configuration; a key that is no header value presents nothing.
        let key = HeaderValue::from_str(service_key).unwrap_or(HeaderValue::from_static(""));
        SearchProxy { base, client, key }
    }

    /// Forwards `path` with the client's query parameters, `tenant` replaced by the caller's.
    pub async fn forward(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        tenant: &TenantId,
    ) -> Result<Response<Body>, ApiError> {
        let base = self.base.as_deref().ok_or(ApiError::Unavailable("search is not enabled on this gateway"))?;
        let mut params: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "tenant").collect();
        params.push(("tenant".into(), tenant.to_string()));
        let query = serde_urlencoded::to_string(&params).expect("string pairs encode");
        let uri: Uri = format!("{base}{path}?{query}").parse().map_err(|_| ApiError::Upstream("search"))?;
        let request = Request::get(uri)
            .header(q2o_common::service_key::HEADER, self.key.clone())
            .body(Empty::new())
            .expect("a static request shape is valid");
        let response = tokio::time::timeout(SEARCH_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                FAILURES.warn("search_timeout", &format_args!("no answer from search within {SEARCH_TIMEOUT:?}"));
                ApiError::Upstream("search")
            })?
            .map_err(|err| {
                FAILURES.warn("search_unreachable", &err);
                ApiError::Upstream("search")
            })?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response.into_body().collect().await.map_err(|_| ApiError::Upstream("search"))?.to_bytes();
        let mut forwarded = Response::builder().status(status);
        if let Some(content_type) = content_type {
            forwarded = forwarded.header(header::CONTENT_TYPE, content_type);
        }
        Ok(forwarded.body(Body::from(body)).expect("copied parts are valid"))
    }
}
