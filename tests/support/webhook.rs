//! A webhook receiver on a free loopback port: it answers every POST with 200 and keeps
//! what Alertmanager sent, so a test sees which receiver got which alert.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::fleet::subject;

/// What one delivery said: (path, alertname, subject, status) of each alert in it.
type Seen = BTreeSet<(String, String, String, String)>;

/// The receiver; its thread ends with the test process (it holds no child process).
pub struct Webhook {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::new()));
        let keep = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let keep = Arc::clone(&keep);
                std::thread::spawn(move || serve(conn, &keep));
            }
        });
        Webhook { addr, seen }
    }

    /// Every (path, alertname, subject, status) delivered so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers the requests of one connection, keeping each alert they carry.
fn serve(conn: TcpStream, seen: &Mutex<Seen>) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut start = String::new();
        if reader.read_line(&mut start).unwrap_or(0) == 0 {
            return;
        }
        let path = start.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        for a in doc["alerts"].as_array().into_iter().flatten() {
            let text = |v: &Value| v.as_str().unwrap_or("").to_string();
            let alert = (path.clone(), text(&a["labels"]["alertname"]), subject(&a["labels"]), text(&a["status"]));
            seen.lock().unwrap().insert(alert);
        }
        if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}
