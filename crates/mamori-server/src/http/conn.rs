//! How connections are accepted and served (HTTP/1.1 on hyper, and HTTP/2 when a TLS client
//! asks for it by ALPN), with the limits that keep
//! unauthenticated clients from exhausting the server (`[limits]`, docs/server.md):
//!
//! - at most `max_connections` connections are served at once: the accept loop takes a permit
//!   before accepting, so further clients wait in the kernel's listen queue and the process
//!   never holds more sockets than that;
//! - a connection must deliver a request's whole header within `header_read_timeout_secs` of
//!   its start or of its previous response, else it is closed (slowloris, half-sent headers,
//!   idle keep-alive connections);
//! - a connection on which no byte moved in either direction for `idle_timeout_secs` (checked
//!   every half of it) is closed: stalled uploads after the request timeout answered, clients
//!   that stop reading;
//! - with TLS (`[tls]`, `http/tls.rs`), the handshake must end within `header_read_timeout_secs`
//!   too, and the idle check counts the encrypted bytes, so both limits hold as for plain HTTP;
//! - HTTP/2 (only over TLS, negotiated by ALPN `h2`) carries at most `H2_MAX_STREAMS` requests
//!   at once per connection, with headers bounded as HTTP/1.1's; the idle check applies as is;
//! - on shutdown, connections finish their request in flight and close (those still open a
//!   request timeout later are dropped); a connection accepted just before the signal is
//!   given until its first request (for at most a second), which it then finishes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Limits;

/// A socket that counts the reads and writes that moved bytes, for the idle check.
struct Counted {
    inner: TcpStream,
    progress: Arc<AtomicU64>,
}

impl Counted {
    fn moved(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Errors of `accept` that concern one connection only (the next accept may succeed at once).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` completes, then
/// waits for the connections to finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs.max(1)))
        .keep_alive(true);
    // Sends `true` when the server stops; every connection task holds a `close_rx` until it
    // ends, so `close_tx.closed()` tells when all are done.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (close_tx, close_rx) = watch::channel(());
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_BYTES);
    let shared = Shared {
        app,
        http: Arc::new(http),
        h2: Arc::new(h2),
        tls,
        handshake: Duration::from_secs(limits.header_read_timeout_secs.max(1)),
        idle: Duration::from_secs(limits.idle_timeout_secs.max(1)),
        stop: stop_rx,
        close: close_rx,
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors or memory: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(serve_one(stream, addr, permit, shared.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(shared);
    // Requests in flight end within the request timeout; a connection still open after it
    // (a client sending its header slowly) is dropped with the runtime.
    let grace = Duration::from_secs(limits.request_timeout_secs.saturating_add(1));
    if tokio::time::timeout(grace, close_tx.closed())
        .await
        .is_err()
    {
        tracing::info!("closing the connections still open at shutdown");
    }
}

/// What every connection of one server shares.
#[derive(Clone)]
struct Shared {
    /// The routes.
    app: Router,
    /// HTTP/1 settings (header read timeout, keep-alive).
    http: Arc<hyper::server::conn::http1::Builder>,
    /// HTTP/2 settings (streams per connection, header size).
    h2: Arc<hyper::server::conn::http2::Builder<TokioExecutor>>,
    /// The TLS acceptor, when the server speaks HTTPS itself.
    tls: Option<TlsAcceptor>,
    /// How long a TLS handshake may take (the header read timeout).
    handshake: Duration,
    /// How long a connection may stay without progress.
    idle: Duration,
    /// Becomes `true` when the server stops.
    stop: watch::Receiver<bool>,
    /// Held until the connection ends, so the server knows when all have.
    close: watch::Receiver<()>,
}

/// Serves one connection, holding `permit` (one of `limits.max_connections`) until it ends.
async fn serve_one(
    stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
    shared: Shared,
) {
    let progress = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: stream,
        progress: progress.clone(),
    };
    match shared.tls.clone() {
        None => drive(TokioIo::new(counted), addr, progress, shared).await,
        Some(acceptor) => {
            // A client that connects and never completes the handshake holds a permit just
            // as one that never sends its header does: the same bound.
            match tokio::time::timeout(shared.handshake, acceptor.accept(counted)).await {
                Ok(Ok(tls)) => {
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    if h2 {
                        drive_h2(TokioIo::new(tls), addr, progress, shared).await
                    } else {
                        drive(TokioIo::new(tls), addr, progress, shared).await
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }
    drop(permit);
}

/// Requests one HTTP/2 connection may carry at once: as many as a browser opens, far below
/// hyper's default (200), so one connection cannot take a large share of the server.
const H2_MAX_STREAMS: u32 = 64;
/// The largest header block an HTTP/2 request may send (HTTP/1.1's is bounded by hyper's
/// buffer, which is about as large).
const H2_MAX_HEADER_BYTES: u32 = 64 * 1024;

/// A connection served by hyper, HTTP/1.1 or HTTP/2: a future that ends with it, and a way
/// to ask it to finish the requests in flight and close.
trait Served: std::future::Future<Output = Result<(), hyper::Error>> {
    fn shut(self: Pin<&mut Self>);
}

impl<I, S, B> Served for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shut(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Served for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn shut(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The routes of one connection, with the client's address given to each request and the
/// requests in flight counted in `inflight` (a response produced ends one).
type ConnService = tower::util::BoxCloneService<
    axum::http::Request<Incoming>,
    axum::response::Response,
    std::convert::Infallible,
>;

fn service(
    app: Router,
    addr: SocketAddr,
    inflight: Arc<AtomicUsize>,
    begun: Arc<AtomicU64>,
) -> ConnService {
    let started = inflight.clone();
    let svc = app
        .map_request(move |mut req: axum::http::Request<Incoming>| {
            started.fetch_add(1, Ordering::Relaxed);
            begun.fetch_add(1, Ordering::Relaxed);
            req.extensions_mut().insert(ConnectInfo(addr));
            req
        })
        .map_response(move |resp| {
            inflight.fetch_sub(1, Ordering::Relaxed);
            resp
        });
    tower::util::BoxCloneService::new(svc)
}

/// Runs HTTP/1.1 on one (plain or TLS) connection.
async fn drive<I>(io: TokioIo<I>, addr: SocketAddr, progress: Arc<AtomicU64>, shared: Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inflight = Arc::new(AtomicUsize::new(0));
    let begun = Arc::new(AtomicU64::new(0));
    let conn = shared.http.serve_connection(
        io,
        TowerToHyperService::new(service(shared.app.clone(), addr, inflight, begun.clone())),
    );
    // HTTP/1.1 closes by itself at shutdown once its request in flight is answered.
    watch_over(conn, addr, progress, None, begun, shared).await;
}

/// Runs HTTP/2 on one TLS connection that negotiated `h2`.
async fn drive_h2<I>(io: TokioIo<I>, addr: SocketAddr, progress: Arc<AtomicU64>, shared: Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let inflight = Arc::new(AtomicUsize::new(0));
    let begun = Arc::new(AtomicU64::new(0));
    let conn = shared.h2.serve_connection(
        io,
        TowerToHyperService::new(service(
            shared.app.clone(),
            addr,
            inflight.clone(),
            begun.clone(),
        )),
    );
    watch_over(conn, addr, progress, Some(inflight), begun, shared).await;
}

/// Drives a connection until it ends, is idle for too long, or the server stops.
///
/// At shutdown an HTTP/2 connection sends GOAWAY and then waits for the client's answer to a
/// ping before closing; a client that never answers would hold the shutdown for the whole
/// grace period. So with `inflight` given, the connection is closed once no request is in
/// flight and no byte moved for `SETTLE`.
///
/// On shutdown hyper closes a connection at once if it has not read anything yet, even when
/// the client's request already waits in the socket (accepted just before the signal: found
/// by tests/api/sigterm.rs, #21). So a connection that has begun no request (`begun`) is given
/// until its first one, for at most `FIRST_REQUEST_GRACE` (a request already in the socket is
/// read within milliseconds; a client that only connected must not hold the shutdown for the
/// whole header read timeout), before the graceful shutdown, which then lets that request
/// finish. A keep-alive connection idle after
/// its requests is closed at once (clients retry on a reused connection).
async fn watch_over<C: Served>(
    conn: C,
    addr: SocketAddr,
    progress: Arc<AtomicU64>,
    inflight: Option<Arc<AtomicUsize>>,
    begun: Arc<AtomicU64>,
    shared: Shared,
) {
    const SETTLE: Duration = Duration::from_millis(200);
    const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);
    let Shared {
        idle,
        handshake,
        mut stop,
        close,
        ..
    } = shared;
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(idle / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut settle = tokio::time::interval(SETTLE);
    settle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = progress.load(Ordering::Relaxed);
    let mut settled_at = seen;
    let mut quiet_ticks = 0u32;
    let mut stopping = *stop.borrow();
    let mut stop_deadline =
        stopping.then(|| tokio::time::Instant::now() + handshake.min(FIRST_REQUEST_GRACE));
    let mut shut = false;
    loop {
        if stopping
            && !shut
            && (begun.load(Ordering::Relaxed) > 0
                || stop_deadline.is_some_and(|d| tokio::time::Instant::now() >= d))
        {
            shut = true;
            conn.as_mut().shut();
        }
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %addr, "connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                stop_deadline = Some(tokio::time::Instant::now() + handshake.min(FIRST_REQUEST_GRACE));
            }
            // While waiting for a fresh connection's first request: look again soon (the
            // request's start is seen by the counter, not by an event this loop awaits).
            () = tokio::time::sleep(Duration::from_millis(10)), if stopping && !shut => {}
            _ = settle.tick(), if shut && inflight.is_some() => {
                let now = progress.load(Ordering::Relaxed);
                let idle_now = inflight
                    .as_ref()
                    .is_some_and(|n| n.load(Ordering::Relaxed) == 0);
                if idle_now && now == settled_at {
                    tracing::debug!(%addr, "closing an HTTP/2 connection at shutdown");
                    break;
                }
                settled_at = now;
            }
            _ = tick.tick() => {
                let now = progress.load(Ordering::Relaxed);
                if now == seen {
                    quiet_ticks += 1;
                    if quiet_ticks >= 2 {
                        tracing::debug!(%addr, "closing a connection idle for too long");
                        break;
                    }
                } else {
                    seen = now;
                    quiet_ticks = 0;
                }
            }
        }
    }
    drop(close);
}
