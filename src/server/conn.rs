//! The accept loop behind [`super::serve`]. Whoever can reach the port must not be able to
//! fail a good boot, so the endpoint holds a bounded number of connections, each with a
//! deadline for its request heads and for its whole life, and the file descriptors the
//! gate's checks and the verdict file need stay free however many clients connect. One
//! address holds at most a quarter of the slots, so a single flooding client leaves room
//! for the scraper.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Time a client gets to send a whole request head, counted from the moment the server waits
/// for one: on a new connection and again after every answer on a kept-alive one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is asked to close after this long, however busy it is.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// Time a connection asked to close (lifetime over, or the server stopping) gets to finish
/// its answer before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Open connections at most, when the descriptor limit leaves room for them.
pub const MAX_CONNECTIONS: usize = 256;
/// Descriptors kept for everything but the endpoint: checks, the verdict and history files,
/// the runtime itself.
pub const FD_RESERVE: u64 = 512;
/// The cap never goes below this, even under a tiny descriptor limit.
const MIN_CONNECTIONS: usize = 8;
/// How far the soft descriptor limit is raised at most. Exec checks inherit it, and some
/// programs close every descriptor up to the limit at start: a limit of a million makes them slow.
const RAISE_NOFILE_TO: u64 = 8192;
/// Pause after an accept error that is not the peer's doing (EMFILE, ENFILE, ENOBUFS).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A request head larger than this is refused (431): the endpoint's GETs need a few hundred
/// bytes, and hyper's default (~400 KiB) times the cap would be 100 MiB of buffers.
const MAX_BUF: usize = 16 * 1024;

/// What bounds the endpoint's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub lifetime: Duration,
    pub grace: Duration,
    pub max_connections: usize,
    /// Open connections from one address at most.
    pub per_peer: usize,
}

impl Limits {
    /// The production limits, the cap sized to this process's descriptor limit after raising it.
    pub fn for_this_process() -> Limits {
        let soft = raise_nofile();
        let max_connections = cap_for(soft);
        if soft.saturating_sub(max_connections as u64) < FD_RESERVE {
            tracing::warn!(
                fd_limit = soft,
                max_connections,
                "the open-file limit leaves fewer than {FD_RESERVE} descriptors beside the endpoint (raise LimitNOFILE=)"
            );
        }
        tracing::debug!(fd_limit = soft, max_connections, "endpoint connection limits");
        Limits {
            header_timeout: HEADER_TIMEOUT,
            lifetime: MAX_LIFETIME,
            grace: CLOSE_GRACE,
            max_connections,
            per_peer: per_peer_for(max_connections),
        }
    }
}

/// Raises the soft RLIMIT_NOFILE towards the hard one and returns the soft limit in force.
///
/// Under the unit `LimitNOFILE=` has already set both; elsewhere a refusal (a seccomp filter,
/// a container's limits) is only logged and the cap is sized to the limit in force.
fn raise_nofile() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            return 1024;
        }
    };
    let target = hard.min(RAISE_NOFILE_TO);
    if soft == RLIM_INFINITY || soft >= target {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(e) => {
            tracing::debug!(error = %e, soft, target, "cannot raise the open-file limit");
            soft
        }
    }
}

/// The connection cap under a soft descriptor limit of `soft`.
fn cap_for(soft: u64) -> usize {
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    room.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The cap for one address: a quarter of the slots (64 of 256), at least two.
fn per_peer_for(max_connections: usize) -> usize {
    (max_connections / 4).max(2)
}

/// The slots each address holds.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One connection of an address, given back when dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A slot for `ip`, unless it holds `cap` already.
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<PeerSlot> {
        // An IPv4 client of a dual-stack socket is one address, however it arrives.
        let ip = ip.to_canonical();
        let mut held = self.0.lock().ok()?;
        let count = held.entry(ip).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot { peers: Arc::clone(self), ip })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.peers.0.lock()
            && let Some(count) = held.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then stops
/// accepting and waits for the open connections to finish their answers. When `tls` gives
/// an acceptor (asked once per connection, so a reload applies to the next one), the
/// connection is a TLS handshake first, inside its slot and within `limits.header_timeout`,
/// so clients that never finish one hold a slot no longer than a silent plain client.
///
/// Past the cap, or past its address's share, a connection is accepted and closed at once,
/// counted by `rejected`: the
/// client learns right away instead of waiting in the kernel's backlog behind the clients
/// that fill the endpoint, and the backlog stays empty for when a slot frees.
pub async fn run(
    listener: TcpListener,
    router: Router,
    tls: impl Fn() -> Option<TlsAcceptor>,
    limits: Limits,
    rejected: impl Fn() + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_BUF);
    let service = TowerToHyperService::new(router);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    // Dropped to tell every connection to close once its answer is out.
    let (stop, stopping) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut starved = false;
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_peer_error(&e) => continue,
                Err(e) => {
                    if !starved {
                        tracing::warn!(error = %e, "cannot accept a connection; retrying every {ACCEPT_BACKOFF:?}");
                    }
                    starved = true;
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        if std::mem::take(&mut starved) {
            tracing::info!("accepting connections again");
        }
        let Some(slot) = peers.take(peer.ip(), limits.per_peer) else {
            rejected();
            drop(tcp);
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned().map(|global| (global, slot)) else {
            rejected();
            drop(tcp);
            continue;
        };
        // Small answers: do not let Nagle hold them back waiting for an ACK.
        let _ = tcp.set_nodelay(true);
        let (builder, service, stopping, tls) = (builder.clone(), service.clone(), stopping.clone(), tls());
        tokio::spawn(async move {
            match tls {
                None => drive(builder.serve_connection(TokioIo::new(tcp), service), stopping, limits).await,
                Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        drive(builder.serve_connection(TokioIo::new(stream), service), stopping, limits).await
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake not finished within {:?}", limits.header_timeout),
                },
            }
            drop(slot);
        });
    }
    drop(listener);
    drop(stop);
    // Every slot back means every connection has ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

type Connection<I> = http1::Connection<TokioIo<I>, TowerToHyperService<Router>>;

/// Runs one connection until it ends, its lifetime is over or the server stops; the last two
/// let the answer in progress finish, for at most `limits.grace`.
async fn drive<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    conn: Connection<I>,
    mut stopping: watch::Receiver<()>,
    limits: Limits,
) {
    let mut conn = pin!(conn);
    tokio::select! {
        done = conn.as_mut() => return log_end(done),
        // Only an error ever arrives: the sender never sends, it is dropped.
        _ = stopping.changed() => {}
        () = tokio::time::sleep(limits.lifetime) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Ok(done) = tokio::time::timeout(limits.grace, conn).await {
        log_end(done);
    }
}

/// Clients that time out or hang up are routine for a health port: debug level only.
fn log_end(done: hyper::Result<()>) {
    if let Err(e) = done {
        tracing::debug!(error = %e, "health endpoint connection ended");
    }
}

/// Errors about one connection that vanished before it was accepted; the next accept is fine.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
