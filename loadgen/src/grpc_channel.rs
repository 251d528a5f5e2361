//! A gRPC channel on one HTTP/2 connection, driven with `h2` directly: the
//! user's task opens the stream, sends the message and reads the answer
//! itself. tonic's `Channel` hands every call to a `Buffer` worker task, and
//! hyper's HTTP/2 client to its dispatch task and a task per request body
//! and per response; on a loaded runtime each hand-off waits its turn in the
//! run queue, and the loadgen would record those waits as the gateway's
//! latency. What is left here is the one hand-off a multiplexed connection
//! needs: to and from the task that owns the socket.
//!
//! The channel serves tonic's generated clients (it is a
//! `tower::Service<http::Request<tonic::body::Body>>`), reconnects after the
//! connection is lost (a gateway restarted), and bounds each call by
//! [`REQUEST_TIMEOUT`], as the tonic channel it replaces did. Request bodies
//! are sent whole: unary and server-streaming calls, the only ones the
//! loadgen makes, carry one message.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::RecvStream;
use h2::client::SendRequest;
use http::Uri;
use http::uri::{Authority, Scheme};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::net::TcpStream;

use crate::connect::REQUEST_TIMEOUT;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Flow-control windows as hyper's client sets them: a project's update
/// stream is never held back by a window while its user reads slowly.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// One HTTP/2 connection to a gRPC server; clones share it.
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `host:port`; the scheme is always `http`.
    authority: Authority,
    /// The live connection's sender, and which connection it is, so that the
    /// end of an old connection does not forget a newer one.
    current: Mutex<Option<(u64, SendRequest<Bytes>)>>,
    /// Held while dialling: after a restart thousands of users find the
    /// connection gone at once, and one dial serves them all.
    dialling: tokio::sync::Mutex<u64>,
}

impl GrpcChannel {
    /// A channel to `url` (`http://host:port`) that dials on its first call.
    pub fn lazy(url: &str) -> Result<GrpcChannel, String> {
        let uri: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        let parts = uri.into_parts();
        let scheme = parts.scheme.ok_or_else(|| format!("`{url}` has no scheme"))?;
        if scheme != Scheme::HTTP {
            return Err(format!("`{url}`: only plaintext `http://` gRPC is supported"));
        }
        let authority = parts.authority.ok_or_else(|| format!("`{url}` has no host"))?;
        let inner = Inner { authority, current: Mutex::new(None), dialling: tokio::sync::Mutex::new(0) };
        Ok(GrpcChannel { inner: Arc::new(inner) })
    }

    /// A channel to `url` with its connection made now, so that a wrong URL
    /// fails before the run and not on every call.
    pub async fn connect(url: &str) -> Result<GrpcChannel, String> {
        let channel = GrpcChannel::lazy(url)?;
        channel.dial().await?;
        Ok(channel)
    }

    /// Makes the connection now, unless one is already up.
    pub async fn dial(&self) -> Result<(), String> {
        self.reconnect(None).await.map(drop).map_err(|e| e.to_string())
    }

    async fn call(self, request: http::Request<tonic::body::Body>) -> Result<http::Response<Body>, BoxError> {
        let (mut head, body) = request.into_parts();
        // tonic gives the path alone; HTTP/2 wants the scheme and authority too.
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.inner.authority.clone());
        uri.path_and_query = head.uri.path_and_query().cloned();
        head.uri = Uri::from_parts(uri)?;
        // One message, ready at once: nothing is waited for here.
        let message = body.collect().await?.to_bytes();
        let exchange = async {
            let mut sender = self.ready_sender().await?;
            let (response, mut stream) =
                sender.send_request(http::Request::from_parts(head, ()), message.is_empty())?;
            if !message.is_empty() {
                stream.send_data(message, true)?;
            }
            Ok::<_, BoxError>(response.await?)
        };
        let response =
            tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| tonic::TimeoutExpired(()))??;
        Ok(response.map(|stream| Body { stream, data_done: false }))
    }

    /// The connection's sender, ready to open a stream; the connection is made
    /// again if it was lost.
    async fn ready_sender(&self) -> Result<SendRequest<Bytes>, BoxError> {
        let current = self.inner.current.lock().expect("never poisoned").clone();
        let failed = match current {
            Some((generation, sender)) => match sender.ready().await {
                Ok(sender) => return Ok(sender),
                Err(_) => Some(generation),
            },
            None => None,
        };
        let sender = self.reconnect(failed).await?;
        Ok(sender.ready().await?)
    }

    /// Dials unless another call has already replaced the connection
    /// `failed` (or made the first one, when `failed` is `None`).
    async fn reconnect(&self, failed: Option<u64>) -> Result<SendRequest<Bytes>, BoxError> {
        let mut generation = self.inner.dialling.lock().await;
        if let Some((current, sender)) = self.inner.current.lock().expect("never poisoned").as_ref()
            && Some(*current) != failed
        {
            return Ok(sender.clone());
        }
        let tcp = TcpStream::connect(self.inner.authority.as_str())
            .await
            .map_err(|e| tonic::ConnectError(format!("cannot connect to {}: {e}", self.inner.authority).into()))?;
        tcp.set_nodelay(true).map_err(|e| tonic::ConnectError(e.into()))?;
        let (sender, connection) = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(tcp)
            .await
            .map_err(|e| tonic::ConnectError(e.into()))?;
        *generation += 1;
        let id = *generation;
        *self.inner.current.lock().expect("never poisoned") = Some((id, sender.clone()));
        // Weak: the connection ends once the last channel is dropped, and
        // then forgets itself if nothing newer took its place.
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let _ = connection.await;
            if let Some(inner) = inner.upgrade() {
                let mut current = inner.current.lock().expect("never poisoned");
                if current.as_ref().is_some_and(|(generation, _)| *generation == id) {
                    *current = None;
                }
            }
        });
        Ok(sender)
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for GrpcChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Stream capacity is waited for inside the call, per stream.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.clone().call(request))
    }
}

/// An answer's body: its data frames, then its trailers (where a gRPC
/// status usually is).
#[derive(Debug)]
pub struct Body {
    stream: RecvStream,
    data_done: bool,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Read, so the peer may send as much again.
                    let _ = self.stream.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        Poll::Ready(ready!(self.stream.poll_trailers(cx)).transpose().map(|t| t.map(Frame::trailers)))
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    //! Against a real tonic server on loopback: what the gateway's gRPC
    //! answers with (a message, a trailers-only status with its metadata, a
    //! stream) must reach tonic's generated clients as tonic's own channel
    //! delivered it, and a restarted server must be dialled again.

    use std::pin::Pin;
    use std::time::Duration;

    use futures::Stream;
    use q2o_proto::v1 as pb;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tonic::{Code, Request, Response, Status};

    use super::GrpcChannel;

    struct Server;

    #[tonic::async_trait]
    impl pb::auth_server::Auth for Server {
        async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
            let key = request.into_inner().api_key;
            if key == "shed" {
                let mut status = Status::unavailable("over capacity");
                status.metadata_mut().insert("grpc-retry-pushback-ms", "250".parse().expect("ASCII"));
                return Err(status);
            }
            Ok(Response::new(pb::LoginResponse { token: format!("token of {key}"), ..Default::default() }))
        }
    }

    type Events = Pin<Box<dyn Stream<Item = Result<pb::AgentEvent, Status>> + Send>>;

    #[tonic::async_trait]
    impl pb::agent_monitor_server::AgentMonitor for Server {
        type StreamAgentActivityStream = Events;

        async fn stream_agent_activity(
            &self,
            request: Request<pb::StreamAgentActivityRequest>,
        ) -> Result<Response<Events>, Status> {
            let agent_type = request.into_inner().agent_type;
            let events = (0..3).map(move |i| {
                Ok(pb::AgentEvent { event_id: i.to_string(), agent_type: agent_type.clone(), ..Default::default() })
            });
            Ok(Response::new(Box::pin(futures::stream::iter(events))))
        }
    }

    /// Serves until the sender is dropped or fired; the task ends with the server.
    async fn serve(listener: TcpListener) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(pb::auth_server::AuthServer::new(Server))
                .add_service(pb::agent_monitor_server::AgentMonitorServer::new(Server))
                .serve_with_incoming_shutdown(q2o_common::net::grpc_incoming(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("the test server runs");
        });
        (stop, server)
    }

    async fn login(channel: &GrpcChannel, key: &str) -> Result<String, Status> {
        let mut auth = pb::auth_client::AuthClient::new(channel.clone());
        let login = auth.login(pb::LoginRequest { api_key: key.into() }).await?;
        Ok(login.into_inner().token)
    }

    #[tokio::test]
    async fn answers_statuses_and_streams_reach_the_generated_clients() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (_stop, _server) = serve(listener).await;
        let channel = GrpcChannel::connect(&url).await.expect("the server is up");

        assert_eq!(login(&channel, "k1").await.expect("an answer"), "token of k1");

        let shed = login(&channel, "shed").await.expect_err("shed");
        assert_eq!(shed.code(), Code::Unavailable);
        assert_eq!(crate::outcome::pushback(&shed), Some(Duration::from_millis(250)));

        let mut monitor = pb::agent_monitor_client::AgentMonitorClient::new(channel.clone());
        let request = pb::StreamAgentActivityRequest { agent_type: "coder".into() };
        let mut events = monitor.stream_agent_activity(request).await.expect("a stream").into_inner();
        let mut seen = Vec::new();
        while let Some(event) = events.message().await.expect("no stream error") {
            assert_eq!(event.agent_type, "coder");
            seen.push(event.event_id);
        }
        assert_eq!(seen, ["0", "1", "2"]);

        // Many calls at once share the one connection.
        let calls = (0..200).map(|i| {
            let channel = channel.clone();
            async move { login(&channel, &i.to_string()).await }
        });
        let tokens = futures::future::join_all(calls).await;
        for (i, token) in tokens.into_iter().enumerate() {
            assert_eq!(token.expect("an answer"), format!("token of {i}"));
        }
    }

    #[tokio::test]
    async fn a_restarted_server_is_dialled_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let url = format!("http://{addr}");
        let (stop, server) = serve(listener).await;
        let channel = GrpcChannel::connect(&url).await.expect("the server is up");
        assert!(login(&channel, "before").await.is_ok());

        stop.send(()).expect("the server listens for its stop");
        server.await.expect("the server stopped");
        let down = login(&channel, "down").await.expect_err("nobody listens");
        assert_eq!(down.code(), Code::Unavailable, "{down}");

        let (_stop, _server) = serve(TcpListener::bind(addr).await.expect("the same port again")).await;
        assert_eq!(login(&channel, "after").await.expect("dialled again"), "token of after");
    }

    #[tokio::test]
    async fn a_bad_url_or_a_closed_port_is_one_clear_error() {
        assert!(GrpcChannel::lazy("not a url").is_err());
        assert!(GrpcChannel::lazy("https://127.0.0.1:1").expect_err("TLS").contains("plaintext"));
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = closed.local_addr().expect("an address");
        drop(closed);
        let error = GrpcChannel::connect(&format!("http://{addr}")).await.expect_err("nobody listens");
        assert!(error.contains(&addr.to_string()), "{error}");
    }
}
