//! The accept loop over real loopback sockets, with limits short enough for a unit test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::*;

const SHORT: Limits = Limits {
    header_timeout: Duration::from_secs(10),
    lifetime: Duration::from_secs(60),
    grace: Duration::from_secs(5),
    max_connections: 4,
    per_peer: 4,
};

struct Server {
    addr: std::net::SocketAddr,
    rejected: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn start(limits: Limits) -> Server {
    start_with(limits, None).await
}

/// A TLS acceptor for a self-signed `localhost` certificate made by `openssl` in `dir`.
fn acceptor(dir: &std::path::Path) -> TlsAcceptor {
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=localhost", "-days", "2"])
        .current_dir(dir)
        .output()
        .expect("openssl runs (build/deps.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = "tls_server_config: {cert_file: c.pem, key_file: k.pem}\n";
    let config = super::super::web_config::parse(text, "web.yml", dir).unwrap();
    super::super::tls::acceptor(config.tls.as_ref().unwrap()).unwrap()
}

async fn start_with(limits: Limits, tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "slow"
        }),
    );
    let rejected = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&rejected);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(
        listener,
        router,
        move || tls.clone(),
        limits,
        move || {
            count.fetch_add(1, Ordering::SeqCst);
        },
        async move {
            let _ = stopped.await;
        },
    ));
    Server { addr, rejected, stop: Some(stop), task }
}

async fn request(tcp: &mut TcpStream, path: &str, close: bool) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: {connection}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await.expect("no answer").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Time until the server closes `tcp` (EOF or reset), at most `within`.
async fn closed_after(tcp: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout(within, tcp.read(&mut buf)).await.expect("the server kept the connection open") {
            Ok(0) | Err(_) => return start.elapsed(),
            // An answer such as 408 may come first; the close follows.
            Ok(_) => {}
        }
    }
}

#[test]
fn one_address_gets_a_quarter_of_the_slots() {
    assert_eq!(per_peer_for(MAX_CONNECTIONS), 64);
    assert_eq!(per_peer_for(MIN_CONNECTIONS), 2);
    assert_eq!(per_peer_for(1), 2);
}

#[test]
fn the_cap_keeps_the_reserve_under_any_limit() {
    assert_eq!(cap_for(1024), MAX_CONNECTIONS);
    assert_eq!(cap_for(8192), MAX_CONNECTIONS);
    assert_eq!(cap_for(RLIM_INFINITY), MAX_CONNECTIONS);
    assert_eq!(cap_for(600), 88);
    for soft in [600, 768, 1024, 4096] {
        assert!(soft - cap_for(soft) as u64 >= FD_RESERVE, "soft limit {soft}");
    }
    // Below the reserve the endpoint still answers someone.
    assert_eq!(cap_for(256), MIN_CONNECTIONS);
    assert_eq!(cap_for(0), MIN_CONNECTIONS);
}

#[tokio::test]
async fn past_the_cap_connections_are_closed_at_once_and_counted() {
    let server = start(SHORT).await;
    let mut held = Vec::new();
    for _ in 0..SHORT.max_connections {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        // An answer proves the connection holds a slot before the next one is opened.
        assert!(request(&mut tcp, "/", false).await.contains("200 OK"));
        held.push(tcp);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_after(&mut extra, Duration::from_secs(3)).await < Duration::from_secs(3));
    assert_eq!(server.rejected.load(Ordering::SeqCst), 1);

    // A freed slot is usable again right away.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_string(&mut answer)).await;
        if answer.contains("200 OK") {
            again = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "no slot came free after a held connection closed");
}

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn one_address_holds_its_share_and_leaves_the_rest_to_others() {
    let server = start(Limits { per_peer: 2, ..SHORT }).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = connect_from([127, 0, 0, 1], server.addr).await;
        assert!(request(&mut tcp, "/", false).await.contains("200 OK"));
        held.push(tcp);
    }
    let mut third = connect_from([127, 0, 0, 1], server.addr).await;
    assert!(closed_after(&mut third, Duration::from_secs(3)).await < Duration::from_secs(3));
    assert_eq!(server.rejected.load(Ordering::SeqCst), 1);
    // Another address is served while the first holds its share.
    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    assert!(request(&mut other, "/", false).await.contains("200 OK"));
    // A connection closed gives its address a slot back.
    drop(held.pop());
    let mut answered = false;
    for _ in 0..50 {
        let mut tcp = connect_from([127, 0, 0, 1], server.addr).await;
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_string(&mut answer)).await;
        if answer.contains("200 OK") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "the address got no slot back after one of its connections closed");
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let server = start(Limits { header_timeout: Duration::from_millis(300), ..SHORT }).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_after(&mut tcp, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}, before the timeout");
    // Kept alive after an answer, the next head has the same deadline.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    assert!(request(&mut tcp, "/", false).await.contains("200 OK"));
    assert!(closed_after(&mut tcp, Duration::from_secs(3)).await >= Duration::from_millis(250));
    drop(server);
}

#[tokio::test]
async fn a_busy_connection_is_closed_at_the_end_of_its_lifetime() {
    let server = start(Limits { lifetime: Duration::from_millis(400), ..SHORT }).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(3) {
        let mut buf = vec![0; 4096];
        if tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await.expect("no answer") {
            Ok(n) if n > 0 => answered += 1,
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    assert!(answered >= 2, "only {answered} answers before the close");
    assert!(took >= Duration::from_millis(350) && took < Duration::from_secs(3), "closed after {took:?}");
}

#[tokio::test]
async fn a_stop_lets_the_answer_in_progress_finish_and_ends_the_loop() {
    let mut server = start(SHORT).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.stop.take().unwrap().send(());

    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(3), tcp.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.contains("200 OK") && answer.ends_with("slow"), "{answer}");
    // The idle one is closed, not left to its header timeout.
    assert!(closed_after(&mut idle, Duration::from_secs(8)).await < Duration::from_secs(3));
    tokio::time::timeout(Duration::from_secs(8), server.task).await.expect("the loop did not end").unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err(), "still listening after the stop");
}

#[tokio::test]
async fn unfinished_tls_handshakes_hold_slots_only_until_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { header_timeout: Duration::from_millis(500), ..SHORT };
    let server = start_with(limits, Some(acceptor(dir.path()))).await;
    // Clients that connect and never say hello fill every slot…
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..SHORT.max_connections {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …so one more is turned away and counted, as past the cap of plain connections.
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_after(&mut extra, Duration::from_secs(3)).await < Duration::from_secs(3));
    assert_eq!(server.rejected.load(Ordering::SeqCst), 1);
    // Each silent one is dropped at the deadline, not before.
    for tcp in &mut silent {
        closed_after(tcp, Duration::from_secs(5)).await;
    }
    let took = opened.elapsed();
    assert!(took >= Duration::from_millis(450), "closed after {took:?}, before the timeout");
    // Plain HTTP is not served over the TLS port: the handshake fails and the connection closes.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), plain.read_to_end(&mut answer)).await.expect("left open");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "served over plain HTTP");
}
