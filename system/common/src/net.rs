//! The services' listening sockets. Every accepted connection gets
//! `TCP_NODELAY`: a gRPC answer is written as headers, message and trailers,
//! and with Nagle's algorithm on the trailers wait for the client's delayed
//! ACK (tens of milliseconds on loopback). Neither axum nor tonic sets it by
//! default.

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::TcpIncoming;

fn no_delay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::warn!(%err, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// `listener` for `axum::serve`, with `TCP_NODELAY` on every connection.
pub fn http_listener(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(no_delay as fn(&mut TcpStream))
}

/// `listener` for tonic's `serve_with_incoming`, with `TCP_NODELAY` on every connection.
pub fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_no_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = http_listener(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
