//! The accept loop of `serve`: HTTP/1.1 connections with bounds on what a client that does not
//! finish its requests can hold (docs/deployment.md, "Connection limits"):
//!
//! * a request's head (request line and headers) must arrive within `header_timeout`, counted
//!   from the moment the connection waits for it (hyper's `header_read_timeout`), so a
//!   slow-header client and an idle keep-alive connection are both closed after it;
//! * a connection on which no byte moves in either direction for `idle_timeout` is closed
//!   (a stalled body, a client that stopped reading its answer);
//! * at most `max_connections` are open at once; a connection beyond the cap gets a short 503
//!   problem and is closed at once, so the front keeps file descriptors for the database and
//!   for the clients it serves.
//!
//! Shutdown: stop accepting, let each connection finish its request in flight (keep-alive
//! connections close after it), return when all are closed.
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

/// The connection bounds (flags `--header-timeout-ms`, `--idle-timeout-s`, `--max-connections`).
/// `None`: no such timeout.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Option<Duration>,
    pub body_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_args(args: &crate::config::ServeArgs) -> Self {
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        Limits {
            header_timeout: ms(args.header_timeout_ms),
            body_timeout: ms(args.body_timeout_ms),
            idle_timeout: ms(args.idle_timeout_s.saturating_mul(1000)),
            max_connections: args.max_connections.max(1),
        }
    }
}

/// The error a request body gives when it did not arrive within the body timeout (the body
/// reader answers 408 for it, see `body::read_limited`).
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body did not arrive within {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection beyond the cap (then closed).
fn over_capacity() -> String {
    let body = serde_json::json!({
        "type": format!("{}unavailable", crate::error::PROBLEM_BASE),
        "title": "Too many connections",
        "status": 503,
        "detail": "the server has reached its connection limit (--max-connections); retry later",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Serve `app` on `listener` until `shutdown` completes, then wait for the open connections to
/// finish (the caller bounds that wait with its grace period).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when the last one ended.
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning; connections that end
                    // free descriptors meanwhile.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                let stop = stop_rx.clone();
                let done = done_rx.clone();
                tokio::spawn(async move {
                    connection(stream, remote, app, limits, stop).await;
                    drop(permit);
                    drop(done);
                });
            }
            Err(_) => {
                tracing::debug!("connection from {remote} refused: --max-connections reached");
                tokio::spawn(refuse(stream));
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

/// A connection beyond the cap: a 503 problem (written within a second, or not at all), closed.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(over_capacity().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        started,
        last: activity.clone(),
        pending: None,
    });
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = match body_timeout {
            Some(limit) => request.map(|inner| {
                Body::new(TimedBody {
                    inner,
                    limit,
                    deadline: Box::pin(tokio::time::sleep(limit)),
                })
            }),
            None => request.map(Body::new),
        };
        request.extensions_mut().insert(ConnectInfo(remote));
        let mut app = app.clone();
        async move { app.call(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let watch_idle = limits.idle_timeout.is_some();
    let idle = limits.idle_timeout.unwrap_or(Duration::from_secs(86_400));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
        let deadline = tokio::time::Instant::from_std(last + idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection from {remote}: {e}");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep_until(deadline), if watch_idle => {
                let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
                if last.elapsed() >= idle {
                    tracing::debug!("connection from {remote} closed: idle for {idle:?}");
                    return;
                }
            }
        }
    }
}

/// A socket that notes when a byte last moved (milliseconds since `started`), and gives
/// hyper's own bodiless error answers (400, 414, 431 for a request it could not parse) an
/// RFC 9457 problem body like every other answer.
struct Watched {
    inner: TcpStream,
    started: Instant,
    last: Arc<AtomicU64>,
    /// A replacement answer being written, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

/// The problem answer replacing `head` when it is one of hyper's automatic error answers
/// (status line, `content-length: 0`, nothing else to follow).
fn automatic_problem(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let (status, title, detail) = match rest.get(..4)? {
        "400 " => (
            400,
            "Bad Request",
            "the request line or a header is malformed",
        ),
        "414 " => (
            414,
            "URI Too Long",
            "the request target is too long; send a long domain in fewer bytes",
        ),
        "431 " => (
            431,
            "Request Header Fields Too Large",
            "the request's headers are too large or too many",
        ),
        _ => return None,
    };
    if !text.ends_with("\r\n\r\n")
        || !text
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let kind = match status {
        400 => "invalid-request",
        414 => "uri-too-long",
        _ => "headers-too-large",
    };
    let body = serde_json::json!({
        "type": format!("{}{kind}", crate::error::PROBLEM_BASE),
        "title": title,
        "status": status,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\n\
             x-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl Watched {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none()
            && let Some(answer) = automatic_problem(data)
        {
            this.pending = Some((answer, 0));
        }
        if let Some((answer, written)) = &mut this.pending {
            while *written < answer.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.pending = None;
            this.touch();
            // hyper's bytes count as written: the answer replaced them
            return Poll::Ready(Ok(data.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        // one flat buffer per write, so that an automatic answer is seen whole
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_problem_response() {
        let text = over_capacity();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 503);
        assert!(head.starts_with("HTTP/1.1 503 "));
    }

    #[test]
    fn hypers_bodiless_error_answers_get_problem_bodies() {
        for (code, kind) in [
            (414, "uri-too-long"),
            (431, "headers-too-large"),
            (400, "invalid-request"),
        ] {
            let head = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\ndate: now\r\n\r\n");
            let answer = String::from_utf8(automatic_problem(head.as_bytes()).unwrap()).unwrap();
            let (h, body) = answer.split_once("\r\n\r\n").unwrap();
            assert!(h.starts_with(&format!("HTTP/1.1 {code} ")), "{h}");
            assert!(h.contains("application/problem+json"), "{h}");
            let len: usize = h
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, body.len());
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["status"], code);
            assert!(v["type"].as_str().unwrap().ends_with(kind));
        }
        // the application's own answers (with a body) and other statuses are left alone
        assert!(
            automatic_problem(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n").is_none()
        );
        assert!(automatic_problem(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(automatic_problem(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n").is_none());
    }
}
