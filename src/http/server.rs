//! The accept loop. Like `axum::serve`, plus what it leaves out, so a client cannot hold the
//! server's file descriptors and tasks for as long as it likes:
//! - a client must finish sending its request headers within the request time budget (slowloris);
//! - a connection with no request in flight and no byte moving for the idle timeout is closed,
//!   whatever its protocol (an HTTP/1 keep-alive, an HTTP/2 connection, a bare HTTP/2 preface,
//!   or a socket that never sent a byte), and so is one that has not started a request within
//!   the request time budget;
//! - connections are capped in all and per client address; one over a cap is refused at once
//!   with a 503, so the process never reaches its file limit and `/healthz` keeps answering.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::ConnectionSettings;

/// Open file descriptors kept free of connections: the databases, logs, the witness, webhooks.
const DESCRIPTORS_RESERVED: usize = 256;

/// What `serve` needs beyond the app: the header deadline and the connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request headers must arrive, and a connection's first request start, within this.
    pub header_timeout: Duration,
    pub connections: ConnectionSettings,
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open connections to
/// finish their requests (graceful drain).
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = protocol_builder(&limits);
    let open = Arc::new(OpenConnections::new(cap_below_file_limit(limits.connections.max), &limits.connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = open.admit(remote.ip()) else {
            refuse(stream);
            continue;
        };
        let connection = Connection { builder: builder.clone(), app: app.clone(), limits: limits.clone(), slot };
        tokio::spawn(connection.run(stream, remote, stopping.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    open.all_closed().await;
    Ok(())
}

fn protocol_builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    // No HTTP/2 pings: they would count as activity and keep an idle connection open; the idle
    // watch closes a connection whose peer has gone as surely as one that is there but idle.
    // Streams per connection are bounded as connections are.
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(64);
    builder
}

/// Over a cap: a short 503 if the socket takes it without waiting, then the connection is
/// closed. Nothing is read, so a refusal costs no task and holds no descriptor.
fn refuse(stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"too many open connections from this address or in all; close idle ones and retry"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    // Once a second at most: a flood of refusals must not become a flood of log lines.
    static LAST_WARNED_SECS: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if LAST_WARNED_SECS.swap(now, Ordering::Relaxed) != now {
        tracing::warn!("connections over the cap (in all or from one address) are being refused");
    }
}

/// One accepted connection: served until it closes, goes idle, or the server stops.
struct Connection {
    builder: Builder<TokioExecutor>,
    app: Router,
    limits: Limits,
    slot: Slot,
}

impl Connection {
    async fn run(self, stream: TcpStream, remote: SocketAddr, stopping: watch::Receiver<bool>) {
        // The slot is declared first, so it is given back last, after the socket is closed.
        let Connection { builder, app, limits, slot: _slot } = self;
        let activity = Arc::new(Activity::new());
        let app = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            req
        });
        let counted = activity.clone();
        let app = app.map_future(move |response| {
            let in_flight = counted.request_started();
            async move {
                let answered = response.await;
                drop(in_flight);
                answered
            }
        });
        let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
        let connection = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(app));
        let mut connection = std::pin::pin!(connection);
        let mut draining = false;
        let finished = loop {
            let idle = activity.until_idle(limits.connections.idle_timeout, limits.header_timeout);
            tokio::select! {
                result = connection.as_mut() => break Some(result),
                () = idle => break None,
                // Server shutdown: requests in flight finish, however long they take; an idle
                // connection still closes as above, so none can hold the drain open.
                () = stopped(stopping.clone()), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        };
        let result = match finished {
            Some(result) => result,
            // Never a request (a silent socket, a bare HTTP/2 preface): nothing to finish, and
            // HTTP/2 would wait for a handshake that never comes, so the socket is just closed.
            None if !activity.started.load(Ordering::Relaxed) => Ok(()),
            None => {
                tracing::debug!("closing an idle connection");
                connection.as_mut().graceful_shutdown();
                // Nothing was in flight: only a response stuck on a client that does not read it
                // can keep the connection past this.
                match tokio::time::timeout(limits.connections.idle_timeout, connection.as_mut()).await {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection closed with an error");
        }
    }
}

/// Completes when the server starts shutting down (or is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// When a connection last moved a byte, whether it has started a request, and how many of its
/// requests are in flight.
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    started: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.started.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Completes once the connection is idle: no request in flight and no byte moved for
    /// `idle`, or no request started within `first_request` of opening (a client trickling a
    /// preface, or sending nothing at all).
    async fn until_idle(&self, idle: Duration, first_request: Duration) {
        loop {
            let now = Instant::now();
            if !self.started.load(Ordering::Relaxed) && now >= self.opened + first_request {
                return;
            }
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet_until = last + idle;
            if self.in_flight.load(Ordering::Relaxed) == 0 && now >= quiet_until {
                return;
            }
            let mut next = if now < quiet_until { quiet_until } else { now + idle };
            if !self.started.load(Ordering::Relaxed) {
                next = next.min(self.opened + first_request);
            }
            tokio::time::sleep_until(next.max(now + Duration::from_millis(10))).await;
        }
    }
}

/// A request in flight on a connection, until dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that stamps its `Activity` whenever a byte moves.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Open connections, in all and per client address.
struct OpenConnections {
    max: usize,
    max_per_client: usize,
    by_client: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
    closed: tokio::sync::Notify,
}

impl OpenConnections {
    fn new(max: usize, settings: &ConnectionSettings) -> OpenConnections {
        OpenConnections {
            max,
            max_per_client: settings.max_per_client,
            by_client: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            closed: tokio::sync::Notify::new(),
        }
    }

    /// A slot for a new connection from `client`, or `None` over a cap.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let client = client.to_canonical();
        let mut by_client = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        let from_client = by_client.entry(client).or_insert(0);
        if *from_client >= self.max_per_client || self.total.load(Ordering::Relaxed) >= self.max {
            if *from_client == 0 {
                by_client.remove(&client);
            }
            return None;
        }
        *from_client += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Slot { open: self.clone(), client })
    }

    fn release(&self, client: IpAddr) {
        let mut by_client = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                by_client.remove(&client);
            }
        }
        self.total.fetch_sub(1, Ordering::Relaxed);
        self.closed.notify_waiters();
    }

    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            if self.total.load(Ordering::Relaxed) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// One admitted connection; gives its place back when dropped.
struct Slot {
    open: Arc<OpenConnections>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.release(self.client);
    }
}

/// `max`, lowered to stay `DESCRIPTORS_RESERVED` below the process's soft file limit where
/// that is known (Linux), so the cap is what is reached first, never the limit.
fn cap_below_file_limit(max: usize) -> usize {
    let Some(limit) = soft_file_limit() else { return max };
    let room = limit.saturating_sub(DESCRIPTORS_RESERVED).max(16);
    if room < max {
        tracing::warn!(
            max_connections = max,
            file_limit = limit,
            "the file limit is low: connections capped at {room}; raise `ulimit -n` (LimitNOFILE) to allow more"
        );
    }
    room.min(max)
}

/// The soft limit on open files, from /proc/self/limits.
fn soft_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(max: usize, max_per_client: usize) -> Arc<OpenConnections> {
        let settings = ConnectionSettings { max_per_client, ..ConnectionSettings::default() };
        Arc::new(OpenConnections::new(max, &settings))
    }

    #[test]
    fn one_address_gets_its_cap_and_others_still_get_in_until_the_total() {
        let open = open(3, 2);
        let (a, b, c) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), [10, 0, 0, 3].into());
        let first = open.admit(a).expect("first from a");
        let _second = open.admit(a).expect("second from a");
        assert!(open.admit(a).is_none(), "a third from a is over its cap");
        let _from_b = open.admit(b).expect("b is still served");
        assert!(open.admit(c).is_none(), "the total is reached");
        drop(first);
        assert!(open.admit(c).is_some(), "a closed connection frees its place");
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_the_ipv4_one() {
        let open = open(10, 1);
        let _v4 = open.admit([10, 0, 0, 2].into()).expect("first");
        assert!(open.admit("::ffff:10.0.0.2".parse().unwrap()).is_none());
    }

    #[test]
    fn the_file_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(soft_file_limit().is_some_and(|n| n > 0));
        }
    }
}
