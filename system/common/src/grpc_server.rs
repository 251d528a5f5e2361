//! The services' gRPC server: tonic's routes on hyper's HTTP/2 connections,
//! without `tonic::transport::Server`.
//!
//! hyper hands every HTTP/2 stream to an executor, and tonic's server spawns
//! each one as a task of its own. On a service's single-threaded runtime
//! (see [`crate::runtime`]) that task waits in the run queue behind
//! everything else before its first poll, and its answer then waits for the
//! connection's task to be polled again to be written. Calls that can be
//! answered without waiting for anything, those turned away by admission
//! control above all, paid two waits for nothing: the overload scenario
//! measured gRPC's shed answers at 1.5-2x REST's tail, whose HTTP/1
//! requests hyper serves inside the connection's task. [`InlineFirst`] polls
//! each stream once where hyper accepts it, so such a call is answered within
//! the connection's own poll, and spawns only the streams still pending.
//!
//! What tonic's server did is kept: `TCP_NODELAY` on every connection (see
//! [`crate::net`]), no limit on a connection's concurrent streams, the
//! caller's `grpc-timeout` bounded by the server's own longest, and a
//! graceful shutdown that stops accepting and lets open calls finish. A call
//! past its deadline is answered `DEADLINE_EXCEEDED`, as the gRPC spec asks
//! and as REST answers 504, where tonic's server answered `CANCELLED`.

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::task::{Context, Waker};
use std::time::Duration;

use axum::serve::Listener;
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;
use tower::Service;

/// The header a gRPC caller sends its deadline in.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Serves `routes` on `listener` until `shutdown` resolves, then stops
/// accepting and returns once every open connection has finished its calls.
///
/// Each call runs for at most its `grpc-timeout`, and at most `longest`
/// when one is given.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    longest: Option<Duration>,
    shutdown: impl Future<Output = ()>,
) {
    let mut listener = crate::net::http_listener(listener);
    let mut builder = hyper::server::conn::http2::Builder::new(InlineFirst);
    // As tonic's server: the load generator multiplexes thousands of users
    // over a few connections, and hyper's default of 200 would queue them.
    builder.timer(TokioTimer::new()).max_concurrent_streams(None);
    let (closing, closed) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        // axum's `Listener` retries failed accepts itself (with a pause
        // when the process is out of file descriptors).
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let calls = Calls { routes: routes.clone(), longest };
        let connection = builder.serve_connection(TokioIo::new(stream), calls);
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => return log_end(result),
                _ = closed.wait_for(|closing| *closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            log_end(connection.await);
        });
    }
    // Dropping the listener closes its socket: new connections are refused
    // at once instead of waiting in the accept queue for the drain.
    drop(listener);
    drop(closed);
    closing.send_replace(true);
    closing.closed().await;
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        tracing::debug!(%err, "gRPC connection ended with an error");
    }
}

/// Runs each HTTP/2 stream's future once on the spot, inside the poll of
/// the connection that accepted it; only one that is still pending becomes
/// a task.
///
/// Polling it with a no-op waker loses no wakeup: a pending future is
/// spawned, and its task polls it again before anything else, registering
/// the task's own waker then.
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineFirst;

impl<F> hyper::rt::Executor<F> for InlineFirst
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        let mut future = Box::pin(future);
        if future.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending() {
            tokio::spawn(future);
        }
    }
}

/// The routes, each call under its deadline.
#[derive(Clone)]
struct Calls {
    routes: Routes,
    longest: Option<Duration>,
}

type Answer = Result<Response<tonic::body::Body>, Infallible>;

impl hyper::service::Service<Request<Incoming>> for Calls {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let deadline = deadline(request.headers(), self.longest);
        // `Routes` is an axum router: always ready, and cheap to clone.
        let answer = self.routes.clone().call(request);
        Box::pin(async move {
            let Some(deadline) = deadline else { return answer.await };
            // Dropping the call's future at its deadline drops its Redis and
            // inter-agent calls with it: no work goes on for a caller gone.
            match tokio::time::timeout(deadline, answer).await {
                Ok(answer) => answer,
                Err(_) => Ok(tonic::Status::deadline_exceeded("the call's deadline passed").into_http()),
            }
        })
    }
}

/// The shorter of the caller's `grpc-timeout` and `longest`. A header that
/// does not parse is ignored, as tonic's server did.
fn deadline(headers: &HeaderMap, longest: Option<Duration>) -> Option<Duration> {
    let asked = headers.get(GRPC_TIMEOUT).and_then(|value| parse_grpc_timeout(value.to_str().ok()?));
    match (asked, longest) {
        (Some(asked), Some(longest)) => Some(asked.min(longest)),
        (asked, longest) => asked.or(longest),
    }
}

/// `grpc-timeout`: at most eight ASCII digits and a unit, `H`ours,
/// `M`inutes, `S`econds, `m`illi-, `u`micro- or `n`anoseconds.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use q2o_proto::v1::auth_client::AuthClient;
    use q2o_proto::v1::auth_server::{Auth, AuthServer};
    use q2o_proto::v1::{LoginRequest, LoginResponse};
    use std::net::SocketAddr;
    use std::time::Instant;
    use tonic::transport::Channel;

    /// Answers at once, after a wait, or never, as the key asks.
    struct Login;

    #[tonic::async_trait]
    impl Auth for Login {
        async fn login(
            &self,
            request: tonic::Request<LoginRequest>,
        ) -> Result<tonic::Response<LoginResponse>, tonic::Status> {
            let key = request.into_inner().api_key;
            match key.split_once(':') {
                Some(("refuse", _)) => return Err(tonic::Status::unavailable("at the limit")),
                Some(("wait", ms)) => tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await,
                _ => {}
            }
            Ok(tonic::Response::new(LoginResponse { token: key, tenant: "t".into(), expires_in_seconds: 1 }))
        }
    }

    struct Server {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        served: tokio::task::JoinHandle<()>,
    }

    async fn start(longest: Option<Duration>) -> Server {
        let listener = crate::net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let routes = Routes::new(AuthServer::new(Login));
        let served = tokio::spawn(serve(listener, routes, longest, async {
            let _ = stopped.await;
        }));
        Server { addr, stop: Some(stop), served }
    }

    async fn connect(addr: SocketAddr) -> AuthClient<Channel> {
        AuthClient::new(Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap())
    }

    fn login(key: &str) -> LoginRequest {
        LoginRequest { api_key: key.to_owned() }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_answered_at_once_and_calls_that_wait_share_a_connection() {
        let server = start(None).await;
        let client = connect(server.addr).await;
        let calls = (0..200).map(|i| {
            let mut client = client.clone();
            async move {
                let key = match i % 3 {
                    0 => format!("refuse:{i}"),
                    1 => format!("wait:{}", i % 20),
                    _ => format!("now:{i}"),
                };
                (key.clone(), client.login(login(&key)).await)
            }
        });
        for (key, answer) in futures::future::join_all(calls).await {
            if key.starts_with("refuse") {
                let status = answer.expect_err(&key);
                assert_eq!((status.code(), status.message()), (tonic::Code::Unavailable, "at the limit"));
            } else {
                assert_eq!(answer.expect(&key).into_inner().token, key);
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_past_its_deadline_is_answered_deadline_exceeded() {
        // The server's bound is the shorter: tonic's client, which also
        // times a call out by its `grpc-timeout`, would answer first otherwise.
        let server = start(Some(Duration::from_millis(100))).await;
        let mut client = connect(server.addr).await;
        let mut request = tonic::Request::new(login("wait:3000"));
        request.metadata_mut().insert(GRPC_TIMEOUT, "2S".parse().unwrap());
        let started = Instant::now();
        let status = client.login(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

        // And when the caller sets none.
        let status = client.login(login("wait:3000")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert_eq!(client.login(login("wait:10")).await.unwrap().into_inner().token, "wait:10");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn shutdown_lets_a_call_in_flight_finish_and_refuses_new_connections() {
        let mut server = start(None).await;
        let mut client = connect(server.addr).await;
        let in_flight = tokio::spawn(async move { client.login(login("wait:300")).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.stop.take().unwrap().send(()).unwrap();
        assert_eq!(in_flight.await.unwrap().unwrap().into_inner().token, "wait:300");
        tokio::time::timeout(Duration::from_secs(5), &mut server.served).await.expect("the server stops").unwrap();
        assert!(tokio::net::TcpStream::connect(server.addr).await.is_err(), "the port still accepts");
    }

    #[test]
    fn a_grpc_timeout_is_read_in_its_unit_and_bounded_by_the_longest() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        for bad in ["", "m", "123456789m", "12x", "-1S", "1.5S", "１S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        let mut headers = HeaderMap::new();
        let longest = Some(Duration::from_secs(5));
        assert_eq!(deadline(&headers, longest), longest);
        assert_eq!(deadline(&headers, None), None);
        headers.insert(GRPC_TIMEOUT, "100m".parse().unwrap());
        assert_eq!(deadline(&headers, longest), Some(Duration::from_millis(100)));
        assert_eq!(deadline(&headers, None), Some(Duration::from_millis(100)));
        headers.insert(GRPC_TIMEOUT, "60S".parse().unwrap());
        assert_eq!(deadline(&headers, longest), longest);
        headers.insert(GRPC_TIMEOUT, "soon".parse().unwrap());
        assert_eq!(deadline(&headers, longest), longest);
    }
}
