//! How connections are accepted and served (HTTP/1.1 on hyper), with the limits that keep
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
//! - on shutdown, connections finish their request in flight and close (those still open a
//!   request timeout later are dropped); a connection accepted just before the signal is
//!   given until its first request (at most the header read timeout), which it then finishes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
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
    let shared = Shared {
        app,
        http: Arc::new(http),
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
                Ok(Ok(tls)) => drive(TokioIo::new(tls), addr, progress, shared).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }
    drop(permit);
}

/// Runs HTTP/1.1 on one (plain or TLS) connection until it ends, is idle for too long, or
/// the server stops.
async fn drive<I>(io: TokioIo<I>, addr: SocketAddr, progress: Arc<AtomicU64>, shared: Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Shared {
        app,
        http,
        idle,
        handshake,
        mut stop,
        close,
        ..
    } = shared;
    // Requests this connection has begun (their head parsed), for the shutdown below.
    let begun = Arc::new(AtomicU64::new(0));
    let counter = begun.clone();
    let svc = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        counter.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut().insert(ConnectInfo(addr));
        req
    });
    let conn = http.serve_connection(io, TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(idle / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut seen = progress.load(Ordering::Relaxed);
    let mut quiet_ticks = 0u32;
    // On shutdown hyper closes a connection at once if it has not read anything yet, even
    // when the client's request already waits in the socket (accepted just before the
    // signal: found by tests/api/sigterm.rs). So a connection that has begun no request is
    // given until its first one (or the header read timeout, which bounds it anyway) before
    // the graceful shutdown, which then lets that request finish. A keep-alive connection
    // idle after its requests is closed at once (clients retry on a reused connection).
    let mut stopping = *stop.borrow();
    let mut stop_deadline = stopping.then(|| tokio::time::Instant::now() + handshake);
    let mut shut = false;
    loop {
        if stopping
            && !shut
            && (begun.load(Ordering::Relaxed) > 0
                || stop_deadline.is_some_and(|d| tokio::time::Instant::now() >= d))
        {
            shut = true;
            conn.as_mut().graceful_shutdown();
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
                stop_deadline = Some(tokio::time::Instant::now() + handshake);
            }
            // While waiting for a fresh connection's first request: look again soon (the
            // request's start is seen by the counter, not by an event this loop awaits).
            () = tokio::time::sleep(Duration::from_millis(10)), if stopping && !shut => {}
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
