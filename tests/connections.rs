//! Nobody who can reach the health port can fail a good boot: a flood of idle connections
//! larger than the daemon's open-file limit leaves the gate, its checks and its verdict file
//! untouched, and connections that never send a whole request head are closed.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use support::tls::{Pki, curl};
use support::{Daemon, HangingListener, Launch, NotifySocket, connect_from};

/// systemd's default soft open-file limit, which the daemon gets here as its hard limit too,
/// so it cannot raise it away.
const DAEMON_FD_LIMIT: u64 = 1024;
/// More connections than the daemon has descriptors.
const FLOOD: usize = 1100;
/// The endpoint's cap under a 1024 limit (`server::conn::MAX_CONNECTIONS`).
const CAP: usize = 256;
/// The endpoint's header timeout (`server::conn::HEADER_TIMEOUT`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn raise_own_fd_limit() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("cannot read the open-file limit");
    assert!(hard >= 2 * FLOOD as u64, "this test needs a hard open-file limit of {} (have {hard})", 2 * FLOOD);
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("cannot raise the open-file limit");
}

fn start_limited(gate: &str, checks: &str) -> Daemon {
    Launch::gate(gate, checks).fd_limit(DAEMON_FD_LIMIT).start()
}

/// The soft "Max open files" of `pid`.
fn fd_limit_of(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("cannot read the daemon's limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("no open-file limit listed");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("unreadable open-file limit")
}

/// [`FLOOD`] connections to `addr`, opened from several threads, each from its own loopback
/// address (127.0.0.11 on): the endpoint lets one address hold only a quarter of its slots,
/// and ten flooding addresses fill them all. Threads, because a connect whose SYN met a
/// full accept queue is retried by the kernel only after a second, and the stalls overlap.
fn open_flood(addr: SocketAddr) -> Vec<TcpStream> {
    const THREADS: u8 = 10;
    thread::scope(|scope| {
        let openers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let from = Ipv4Addr::new(127, 0, 0, 11 + t);
                    (0..FLOOD / usize::from(THREADS))
                        .map(|_| connect_from(from, addr).unwrap_or_else(|e| panic!("a flood connection failed: {e}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        openers.into_iter().flat_map(|t| t.join().expect("a flood thread panicked")).collect()
    })
}

/// Whether the server still holds `tcp` open (it has neither closed nor reset it).
fn still_open(tcp: &TcpStream) -> bool {
    tcp.set_nonblocking(true).expect("cannot make a socket non-blocking");
    let mut buf = [0; 64];
    let open = matches!((&*tcp).read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).expect("cannot make a socket blocking again");
    open
}

fn wait_for_file(path: &Path, bg: &Daemon, timeout: Duration) -> serde_json::Value {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(value) = serde_json::from_str(&text)
        {
            return value;
        }
        assert!(Instant::now() < end, "no {} after {timeout:?}:\n{}", path.display(), bg.stderr());
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_idle_flood_beyond_the_fd_limit_does_not_fail_the_gate() {
    raise_own_fd_limit();
    let peer = HangingListener::tcp();
    let target = peer.addr().to_string();
    let targets = vec![format!("'{target}'"); 8].join(", ");
    // Each check opens descriptors of its own: eight sockets, a child's pipes, a statvfs.
    let checks = format!(
        "  - {{name: api, kind: tcp, targets: [{targets}]}}\n\
         \x20 - {{name: db, kind: tcp, targets: [{targets}]}}\n\
         \x20 - {{name: cache, kind: tcp, targets: [{targets}]}}\n\
         \x20 - {{name: tool, kind: exec, command: ['/bin/true']}}\n\
         \x20 - {{name: root, kind: disk, path: /, min_free_percent: 0}}\n"
    );
    let started = Instant::now();
    // The settle gives the flood time to be in place before the first check runs (wide:
    // a loaded machine takes seconds to open 1,100 connections), yet ends well before the
    // flood's 10 s header timeout, so the gate runs while the flood is held.
    let settle = Duration::from_secs(8);
    let mut bg = start_limited("{settle: 8s, deadline: 30s, on_failure: stay}", &checks);
    bg.wait_listening(Duration::from_secs(15));
    assert_eq!(fd_limit_of(bg.pid()), DAEMON_FD_LIMIT, "the daemon must run under systemd's default limit");

    let flood = open_flood(bg.addr());
    let flooded = started.elapsed();
    assert!(flooded < settle, "the flood took {flooded:?}, longer than the settle: the gate ran before it");

    let verdict = wait_for_file(&bg.run_dir().join("verdict.json"), &bg, Duration::from_secs(30));
    assert_eq!(verdict["gate"], "passed", "{verdict}\n{}", bg.stderr());
    // The flood was still there when the verdict was written: the endpoint held its cap
    // until the header timeout and had closed the rest at once.
    let held = flood.iter().filter(|tcp| still_open(tcp)).count();
    assert!((CAP - 8..=CAP).contains(&held), "{held} flood connections held, expected about {CAP}");
    assert!(started.elapsed() < flooded + HEADER_TIMEOUT, "the verdict came after the flood timed out");

    // Full: a new client is turned away at once, not left hanging in the backlog.
    let asked = Instant::now();
    assert!(bg.request("GET", "/api/v1/system/health", &[]).is_err(), "a request past the cap was answered");
    assert!(asked.elapsed() < Duration::from_secs(3), "refused only after {:?}", asked.elapsed());

    drop(flood);
    let freed = Instant::now();
    let health = bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(3));
    assert!(freed.elapsed() < Duration::from_secs(3), "health answered {:?} after the flood", freed.elapsed());
    assert_eq!(health.json()["startup_health_check"], "passed");

    let metrics = bg.get("/metrics").body;
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("bootgate_http_connections_rejected_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rejected-connections counter in:\n{metrics}"));
    assert!(rejected >= (FLOOD - CAP) as f64, "only {rejected} connections counted as rejected");
    let log = bg.stderr();
    assert!(!log.contains("Too many open files"), "{log}");
}

/// The first bytes of a TLS ClientHello: a handshake record that announces 512 bytes and
/// sends four, so the server waits for the rest.
const HALF_HELLO: [u8; 9] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

#[test]
fn a_thousand_half_open_tls_handshakes_starve_neither_the_gate_nor_a_scrape() {
    const HALF_OPEN: usize = 1000;
    /// One address's share of the 256 slots (`server::conn::per_peer_for`).
    const PER_PEER: usize = 64;
    raise_own_fd_limit();
    let pki = Pki::new();
    let web = pki.path("web.yml");
    std::fs::write(&web, "tls_server_config: {cert_file: server.crt, key_file: server.key}\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let started = Instant::now();
    // The settle holds the checks back until the flood is in place (wide for a busy machine).
    let mut bg = Launch::gate(
        "{settle: 8s, deadline: 30s, on_failure: stay}",
        "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n",
    )
    .env("BOOTGATE_WEB_CONFIG", &web)
    .notify(&notify)
    .start();
    bg.wait_listening(Duration::from_secs(15));

    let flood: Vec<TcpStream> = (0..HALF_OPEN)
        .filter_map(|_| {
            let mut tcp = connect_from(Ipv4Addr::LOCALHOST, bg.addr()).ok()?;
            // Past the share the server has closed it already: the write may fail.
            let _ = tcp.write_all(&HALF_HELLO);
            Some(tcp)
        })
        .collect();

    // A scraper on another address is served, over TLS, while the flood holds its share
    // (the flood is a few seconds old; it would be let go at 10 s).
    let url = format!("https://localhost:{}/api/v1/system/health", bg.port());
    let resolve = format!("localhost:{}:127.0.0.1", bg.port());
    let scrape = curl(&pki.path("ca.crt"), &url, &["--resolve", &resolve, "--interface", "127.0.0.2"]);
    assert!(scrape.status == 200 || scrape.status == 503, "{scrape:?}\n{}", bg.stderr());
    assert!(scrape.body.contains("startup_health_check"), "{scrape:?}");
    let held = flood.iter().filter(|tcp| still_open(tcp)).count();
    assert_eq!(held, PER_PEER, "half-open handshakes held while the scrape was served");

    // The gate decides and says so meanwhile.
    notify.wait_for("READY=1", started, Duration::from_secs(60), |m| m.contains("READY=1"));
    let verdict = wait_for_file(&bg.run_dir().join("verdict.json"), &bg, Duration::from_secs(30));
    assert_eq!(verdict["gate"], "passed", "{verdict}\n{}", bg.stderr());
    // The flood's own address is turned away at once, not left in the backlog.
    let mut again = connect_from(Ipv4Addr::LOCALHOST, bg.addr()).unwrap();
    let _ = again.write_all(&HALF_HELLO);
    again.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0; 16];
    assert!(matches!(again.read(&mut buf), Ok(0) | Err(_)), "a connection past the share was kept");
    // Held handshakes end at the header timeout.
    let end = Instant::now() + HEADER_TIMEOUT + Duration::from_secs(10);
    while flood.iter().any(still_open) {
        assert!(Instant::now() < end, "half-open handshakes still held past the header timeout");
        thread::sleep(Duration::from_millis(200));
    }
    assert!(!bg.stderr().contains("Too many open files"), "{}", bg.stderr());
}

/// A daemon whose gate passes at once.
fn start_plain() -> Daemon {
    let mut bg = Launch::gate(
        "{deadline: 30s, on_failure: stay}",
        "  - {name: root, kind: disk, path: /, min_free_percent: 0}\n",
    )
    .start();
    bg.wait_status("/api/v1/system/health", 200, Duration::from_secs(15));
    bg
}

/// Asserts that the server closed `tcp` between the header timeout and 3 s after it.
fn assert_closed_at_header_timeout(took: Duration, what: &str) {
    assert!(
        took >= HEADER_TIMEOUT - Duration::from_millis(500) && took < HEADER_TIMEOUT + Duration::from_secs(3),
        "{what} closed after {took:?}, header timeout {HEADER_TIMEOUT:?}"
    );
}

#[test]
fn a_slowloris_connection_is_closed_at_the_header_timeout() {
    let bg = start_plain();
    let head = format!("GET /api/v1/system/health HTTP/1.1\r\nHost: {}\r\nX-Slow: {}", bg.addr(), "a".repeat(64));
    let mut clients: Vec<(TcpStream, Instant, Option<Duration>)> = (0..5)
        .map(|_| {
            let tcp = TcpStream::connect(bg.addr()).expect("cannot connect");
            tcp.set_nonblocking(true).expect("cannot make a socket non-blocking");
            (tcp, Instant::now(), None)
        })
        .collect();
    let end = Instant::now() + HEADER_TIMEOUT + Duration::from_secs(5);
    for byte in head.bytes().cycle() {
        assert!(Instant::now() < end, "slow clients still open after {:?}", HEADER_TIMEOUT + Duration::from_secs(5));
        for (tcp, since, closed) in clients.iter_mut().filter(|c| c.2.is_none()) {
            let mut buf = [0; 512];
            let gone = tcp.write_all(&[byte]).is_err()
                || match tcp.read(&mut buf) {
                    Ok(0) => true,
                    // A 408 answer may come before the close; the next read sees the close.
                    Ok(_) => false,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                };
            if gone {
                *closed = Some(since.elapsed());
            }
        }
        if clients.iter().all(|c| c.2.is_some()) {
            break;
        }
        thread::sleep(Duration::from_secs(1));
    }
    for (_, _, closed) in &clients {
        assert_closed_at_header_timeout(closed.expect("checked above"), "a slow client");
    }
}

#[test]
fn an_idle_connection_is_closed_at_the_header_timeout() {
    let bg = start_plain();
    let mut tcp = TcpStream::connect(bg.addr()).expect("cannot connect");
    let since = Instant::now();
    tcp.set_read_timeout(Some(HEADER_TIMEOUT + Duration::from_secs(5))).expect("cannot set a read timeout");
    let mut buf = [0; 512];
    // The server may answer 408 first; the close follows.
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("an idle connection was still open after {:?}", since.elapsed())
            }
            Err(_) => break,
        }
    }
    assert_closed_at_header_timeout(since.elapsed(), "an idle connection");
    // The endpoint itself is fine.
    assert_eq!(bg.get("/livez").status, 200);
}
