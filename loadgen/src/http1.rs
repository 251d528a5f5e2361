//! A small HTTP/1.1 client for the open model's hot path: requests are
//! serialized once (the same bytes are sent again and again), each connection
//! carries one request at a time, and a response is parsed in place with
//! httparse. No per-request task, channel or header map: what is left per
//! request is a write, a read and the parse, as in wrk.

use std::sync::Mutex;
use std::time::Duration;

use hyper::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::connect::REQUEST_TIMEOUT;
use crate::outcome::{Outcome, Transport};

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    Connect(String),
    Io(String),
    Timeout,
}

impl Failure {
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Failure::Connect(_) => Outcome::Transport(Transport::Connect),
            Failure::Io(_) => Outcome::Transport(Transport::Io),
            Failure::Timeout => Outcome::Transport(Transport::Timeout),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) | Failure::Io(e) => f.write_str(e),
            Failure::Timeout => write!(f, "no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}

fn io(e: impl std::fmt::Display) -> Failure {
    Failure::Io(e.to_string())
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Connections to one server; a request takes an idle one (or opens one) and
/// gives it back once the whole answer has arrived, so open connections stay
/// bounded by the requests in flight, and by [`Pool::at_most`].
#[derive(Debug)]
pub(crate) struct Pool {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    idle: Mutex<Vec<Conn>>,
    /// One permit per connection a request may hold at once; `None` (the
    /// open model's pools) takes no permit on the hot path.
    connections: Option<Semaphore>,
}

/// An answer: its status and, when asked for, its body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The answer's `Retry-After`, if it had one (a 503 with it is a shed request).
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    /// How the request ended.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::of_http(self.status, self.retry_after.is_some())
    }
}

/// A `Retry-After` in seconds; its other form (an HTTP date) and nonsense
/// count as one second, the least a server that sets it means.
fn retry_after_seconds(value: &[u8]) -> Duration {
    let seconds = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
    Duration::from_secs(seconds)
}

impl Pool {
    /// A pool for the server of `url` (`http://host:port/...`); `flag` names it in errors.
    pub(crate) fn new(flag: &str, url: &str) -> Result<(Pool, String), String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{flag} `{url}`: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{flag} `{url}`: only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| format!("{flag} `{url}`: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/".to_owned(), |p| p.as_str().to_owned());
        let pool =
            Pool { authority: format!("{}:{port}", authority.host()), idle: Mutex::default(), connections: None };
        Ok((pool, path))
    }

    /// The pool with at most `connections` open at once: a request beyond
    /// them waits for one (within its timeout), as a browser's or an HTTP
    /// client's per-host limit makes it. Without a limit, every request in
    /// flight holds a connection, and a process whose server stalls runs
    /// out of open files.
    pub(crate) fn at_most(self, connections: usize) -> Pool {
        Pool { connections: Some(Semaphore::new(connections.clamp(1, Semaphore::MAX_PERMITS))), ..self }
    }

    /// The bytes of a request with at most one extra header (a credential),
    /// ready to send as often as needed.
    pub(crate) fn request(&self, method: &str, path: &str, header: Option<(&str, &str)>, body: Option<&[u8]>) -> Bytes {
        // Sent as it is: the callers' paths are ASCII without spaces, already encoded.
        debug_assert!(path.bytes().all(|b| b.is_ascii_graphic()), "unencoded request path {path:?}");
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.authority);
        if let Some((name, value)) = header {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        Bytes::from(bytes)
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let connect = TcpStream::connect(&self.authority);
        let stream = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
            Err(_) => return Err(Failure::Connect("connect timed out".into())),
        };
        stream.set_nodelay(true).map_err(|e| Failure::Connect(e.to_string()))?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends `request` and reads the whole answer (keeping the body if `keep_body`).
    pub(crate) async fn exchange(&self, request: &[u8], keep_body: bool) -> Result<Answer, Failure> {
        let call = async {
            let _held = match &self.connections {
                Some(connections) => Some(connections.acquire().await.expect("the semaphore is never closed")),
                None => None,
            };
            let idle = self.idle.lock().expect("never poisoned").pop();
            let (mut conn, reused) = match idle {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            let result = match roundtrip(&mut conn, request, keep_body).await {
                // The server closed an idle connection: once more on a new one.
                Err(Retry::Stale) if reused => {
                    conn = self.connect().await?;
                    roundtrip(&mut conn, request, keep_body).await
                }
                other => other,
            };
            match result {
                Ok((answer, keep_alive)) => {
                    if keep_alive {
                        self.idle.lock().expect("never poisoned").push(conn);
                    }
                    Ok(answer)
                }
                Err(Retry::Stale) => Err(Failure::Io("connection closed before an answer".into())),
                Err(Retry::Failed(failure)) => Err(failure),
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, call).await.unwrap_or(Err(Failure::Timeout))
    }

    /// Sends `request`: `ok`, `http_<status>` or the transport error.
    pub(crate) async fn send(&self, request: &[u8]) -> Outcome {
        match self.exchange(request, false).await {
            Ok(answer) => answer.outcome(),
            Err(failure) => failure.outcome(),
        }
    }
}

/// A round trip that failed: before any answer on a reused connection (worth
/// one retry), or for good.
enum Retry {
    Stale,
    Failed(Failure),
}

/// Reads more of an answer whose end has not arrived: the peer closing now is an error.
async fn more(conn: &mut Conn) -> Result<(), Retry> {
    match fill(conn).await.map_err(Retry::Failed)? {
        0 => Err(Retry::Failed(Failure::Io("connection closed mid-body".into()))),
        _ => Ok(()),
    }
}

/// Reads more into the buffer; 0 bytes means the peer closed.
async fn fill(conn: &mut Conn) -> Result<usize, Failure> {
    if conn.buf.capacity() - conn.buf.len() < 1024 {
        conn.buf.reserve(4096);
    }
    conn.stream.read_buf(&mut conn.buf).await.map_err(io)
}

async fn roundtrip(conn: &mut Conn, request: &[u8], keep_body: bool) -> Result<(Answer, bool), Retry> {
    conn.buf.clear();
    if conn.stream.write_all(request).await.is_err() {
        return Err(Retry::Stale);
    }
    // The head.
    let (status, head_len, length, chunked, keep_alive, retry_after) = loop {
        match fill(conn).await {
            Ok(0) if conn.buf.is_empty() => return Err(Retry::Stale),
            Ok(0) => return Err(Retry::Failed(Failure::Io("connection closed mid-answer".into()))),
            Ok(_) => {}
            Err(failure) => return Err(if conn.buf.is_empty() { Retry::Stale } else { Retry::Failed(failure) }),
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&conn.buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.unwrap_or(0);
                let (mut length, mut chunked, mut keep_alive, mut retry_after) = (None, false, true, None);
                for header in response.headers.iter() {
                    let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
                    if header.name.eq_ignore_ascii_case("content-length") {
                        length = value.parse::<usize>().ok();
                    } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = value.eq_ignore_ascii_case("chunked");
                    } else if header.name.eq_ignore_ascii_case("connection") {
                        keep_alive = !value.eq_ignore_ascii_case("close");
                    } else if header.name.eq_ignore_ascii_case("retry-after") {
                        retry_after = Some(retry_after_seconds(header.value));
                    }
                }
                break (status, head_len, length, chunked, keep_alive, retry_after);
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(Retry::Failed(io(format!("bad response: {e}")))),
        }
    };
    // The body.
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = head_len;
        loop {
            match httparse::parse_chunk_size(&conn.buf[at..]) {
                Ok(httparse::Status::Complete((line, size))) => {
                    let size = size as usize;
                    // Chunk, then CRLF; the last (empty) chunk is followed by a CRLF too.
                    while conn.buf.len() < at + line + size + 2 {
                        more(conn).await?;
                    }
                    if keep_body {
                        body.extend_from_slice(&conn.buf[at + line..at + line + size]);
                    }
                    at += line + size + 2;
                    if size == 0 {
                        break body;
                    }
                }
                Ok(httparse::Status::Partial) => more(conn).await?,
                Err(e) => return Err(Retry::Failed(io(format!("bad chunk: {e}")))),
            }
        }
    } else {
        let length = match length {
            Some(length) => length,
            None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
            None => {
                // No length: the body runs to the end of the connection.
                while fill(conn).await.map_err(Retry::Failed)? > 0 {}
                conn.buf.len() - head_len
            }
        };
        while conn.buf.len() < head_len + length {
            more(conn).await?;
        }
        if keep_body { conn.buf[head_len..head_len + length].to_vec() } else { Vec::new() }
    };
    let keep_alive = keep_alive && (length.is_some() || chunked || status == 204 || status == 304);
    Ok((Answer { status, body, retry_after }, keep_alive))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers each request with the next canned response.
    async fn canned(responses: Vec<&'static [u8]>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            for response in responses {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await.unwrap();
                socket.write_all(response).await.unwrap();
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_by_length_and_by_chunks_are_read_whole_on_one_connection() {
        let url = canned(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let (pool, path) = Pool::new("--url", &url).unwrap();
        let request = pool.request("GET", &path, None, None);
        let first = pool.exchange(&request, true).await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
        let second = pool.exchange(&request, true).await.unwrap();
        assert_eq!((second.status, second.body.as_slice()), (201, &b"abcde"[..]));
        assert_eq!(pool.send(&request).await, Outcome::Http(503), "the same connection served all three");
    }

    #[tokio::test]
    async fn a_shed_answer_says_how_long_to_wait() {
        let url = canned(vec![
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 3\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: Fri, 04 Dec 2026 10:00:00 GMT\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let (pool, path) = Pool::new("--url", &url).unwrap();
        let request = pool.request("GET", &path, None, None);
        let told = pool.exchange(&request, false).await.unwrap();
        assert_eq!((told.outcome(), told.retry_after), (Outcome::Shed, Some(Duration::from_secs(3))));
        let dated = pool.exchange(&request, false).await.unwrap();
        assert_eq!(dated.retry_after, Some(Duration::from_secs(1)), "a date counts as the least wait");
    }

    #[tokio::test]
    async fn requests_beyond_the_pools_connections_wait_for_one_instead_of_opening_more() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {
                        // Slow enough that the ten requests overlap.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        socket.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        let (pool, path) = Pool::new("--url", &format!("http://{addr}/")).unwrap();
        let pool = pool.at_most(2);
        let request = pool.request("GET", &path, None, None);
        let outcomes = futures::future::join_all((0..10).map(|_| pool.send(&request))).await;
        assert!(outcomes.iter().all(|o| *o == Outcome::Ok), "{outcomes:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 2, "ten requests on two connections");
    }

    #[test]
    fn requests_carry_host_token_and_length() {
        let (pool, _) = Pool::new("--url", "http://127.0.0.1:8080/x").unwrap();
        let bytes = pool.request("POST", "/api", Some(("authorization", "Bearer t0k")), Some(b"{}"));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("POST /api HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nauthorization: Bearer t0k\r\n"));
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"));
        assert!(Pool::new("--url", "https://x/").unwrap_err().contains("only http://"));
    }
}
