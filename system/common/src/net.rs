//! The services' listening sockets. Every accepted connection gets
//! `TCP_NODELAY`: a gRPC answer is written as headers, message and trailers,
//! and with Nagle's algorithm on the trailers wait for the client's delayed
//! ACK (tens of milliseconds on loopback). Neither axum nor tonic sets it by
//! default.
//!
//! They are bound through [`listen`], with a backlog of [`BACKLOG`]
//! connections instead of tokio's 1,024: a surge of new users opens
//! thousands of connections within a second, and a full accept queue drops
//! their SYNs, which the clients resend only after 1 s and then 3 s (the
//! overload scenario measured shed answers at 2.5 s at p99 that way, with
//! the kernel's ListenOverflows counter in the thousands).

use std::net::SocketAddr;

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tonic::transport::server::TcpIncoming;

/// Connections the kernel queues for `accept`: Linux's default `somaxconn`,
/// which caps any larger value anyway.
pub const BACKLOG: u32 = 4096;

/// A listener on `addr` (port 0 picks a free one) with a [`BACKLOG`]-deep accept queue.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std's and tokio's `bind`: a restarted service may bind its port
    // while connections of its previous life are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

fn no_delay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::warn!(%err, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// `listener` for `axum::serve`, with `TCP_NODELAY` on every connection.
pub fn http_listener(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(no_delay as fn(&mut TcpStream))
}

/// `listener` for tonic's own `Server::serve_with_incoming`, with `TCP_NODELAY`
/// on every connection. The services serve gRPC with [`crate::grpc_server`];
/// the load generator's tests check its client against tonic's server.
pub fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_no_delay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = http_listener(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
