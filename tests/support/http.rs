//! The one HTTP client for real sockets: a blocking HTTP/1.1 request over a new
//! connection (`Connection: close`), read whole or, for a stream such as the event
//! stream, line by line as it arrives.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a connect may take; loopback answers at once, a loaded machine gets room.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole answer may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET `path` from `addr`.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Reply> {
    request(addr, "GET", path, &[])
}

/// `METHOD path` with `headers` (and no body), read to the end within 10 s.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<Reply> {
    let mut stream = send(addr, method, path, headers)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP answer: {raw:?}")))
}

/// GET `path` and hand every line of the answer (status line and headers included) to
/// the receiver as it arrives, with its arrival time, until the server closes.
pub fn lines(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> mpsc::Receiver<(Instant, String)> {
    let stream = send(addr, "GET", path, headers).unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next `data:` of an event named `name` on a stream of [`lines`] whose data
/// satisfies `pred`, with its arrival time.
pub fn next_event(
    rx: &mpsc::Receiver<(Instant, String)>,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> (Instant, Value) {
    let end = Instant::now() + timeout;
    let mut current = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (at, line) = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no `{name}` event within {timeout:?}"));
        if let Some(e) = line.strip_prefix("event: ") {
            current = e.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && current == name
        {
            let v: Value = serde_json::from_str(data).unwrap();
            if pred(&v) {
                return (at, v);
            }
        }
    }
}

/// Connects and sends the request head.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if method != "GET" && method != "HEAD" {
        head.push_str("Content-Length: 0\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    Ok(stream)
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    }
    Some(Reply { status, headers, body: String::from_utf8(body).ok()? })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
