//! The `/metrics` endpoint: a minimal HTTP/1.1 server on the configured (by default loopback)
//! address. GET or HEAD of `/metrics` returns the latest exposition; anything else gets a
//! short error. Every connection is closed after one response.
//!
//! A scrape is answered whatever idle or slow clients do:
//! - the accept loop never waits: the kernel's queue is emptied at once, so a scraper's
//!   connection does not sit behind idle ones;
//! - a connection must send its first byte within [`FIRST_BYTE_TIMEOUT`] and its whole request
//!   head within [`REQUEST_TIMEOUT`] (8 KiB at most); the answer must be taken within
//!   [`WRITE_TIMEOUT`];
//! - at most [`MAX_CONNECTIONS`] connections are held, at most [`MAX_PER_PEER`] from one
//!   address. A connection beyond either budget first closes the oldest connection (of that
//!   address, or of anyone) that has not yet sent a whole request: idle connections go first.
//!   Only when every held connection is being answered is the new one closed instead.
//!
//! Requests: lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a server accept a bare
//! LF), so `GET /metrics HTTP/1.0\n\n` gets the metrics. A request line that is not
//! `METHOD SP TARGET SP HTTP/1.x`, or a head holding a NUL or another control byte in the
//! request line, gets `400 Bad Request`; a head over 8 KiB gets `431`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::Instant;

const MAX_REQUEST_BYTES: usize = 8192;
/// A client that sends nothing for this long after connecting is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(1);
/// The whole request head must have arrived this long after connecting.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The answer must have been taken this long after the request.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections held at once (well below the usual 1024 descriptors of a process).
pub const MAX_CONNECTIONS: usize = 256;
/// Connections held at once from one address.
pub const MAX_PER_PEER: usize = 32;

/// Serve `metrics` on `listener` from a task of the current runtime.
pub fn spawn(listener: std::net::TcpListener, metrics: Arc<Mutex<String>>) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| format!("metrics listener: {e}"))?;
    let listener = TcpListener::from_std(listener).map_err(|e| format!("metrics listener: {e}"))?;
    let held = Arc::new(Mutex::new(Held::default()));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(_) => {
                    // E.g. out of descriptors: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (id, closed) = lock(&held).admit(peer);
            for handle in closed {
                handle.abort();
            }
            let Some(id) = id else { continue }; // every held connection is being answered
            let (metrics, registry) = (Arc::clone(&metrics), Arc::clone(&held));
            let task = tokio::spawn(async move {
                let _leave = Leave { held: Arc::clone(&registry), id };
                let _ = serve(stream, &metrics, &registry, id).await;
            });
            lock(&held).set_abort(id, task.abort_handle());
        }
    });
    Ok(())
}

fn lock(held: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a held connection has sent its whole request yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected, request incomplete: may be closed to make room.
    Waiting,
    /// Being answered.
    Answering,
}

#[derive(Debug)]
struct Connection {
    id: u64,
    peer: IpAddr,
    phase: Phase,
    abort: Option<AbortHandle>,
}

/// The connections held, oldest first.
#[derive(Debug, Default)]
struct Held {
    next_id: u64,
    connections: Vec<Connection>,
}

impl Held {
    /// Take a new connection from `peer`: its id (`None` when no room could be made), and the
    /// connections closed to make room (to be aborted once the lock is released).
    fn admit(&mut self, peer: IpAddr) -> (Option<u64>, Vec<AbortHandle>) {
        let mut closed = Vec::new();
        let of_peer = self.connections.iter().filter(|c| c.peer == peer).count();
        let mut room = of_peer < MAX_PER_PEER || self.close_oldest_waiting(Some(peer), &mut closed);
        room = room
            && (self.connections.len() < MAX_CONNECTIONS
                || self.close_oldest_waiting(None, &mut closed));
        if !room {
            return (None, closed);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.connections.push(Connection { id, peer, phase: Phase::Waiting, abort: None });
        (Some(id), closed)
    }

    fn close_oldest_waiting(
        &mut self,
        peer: Option<IpAddr>,
        closed: &mut Vec<AbortHandle>,
    ) -> bool {
        let oldest = self
            .connections
            .iter()
            .position(|c| c.phase == Phase::Waiting && peer.is_none_or(|p| p == c.peer));
        match oldest {
            Some(i) => {
                closed.extend(self.connections.remove(i).abort);
                true
            }
            None => false,
        }
    }

    fn find(&mut self, id: u64) -> Option<&mut Connection> {
        self.connections.iter_mut().find(|c| c.id == id)
    }

    fn set_abort(&mut self, id: u64, abort: AbortHandle) {
        if let Some(c) = self.find(id) {
            c.abort = Some(abort);
        }
    }

    fn set_answering(&mut self, id: u64) {
        if let Some(c) = self.find(id) {
            c.phase = Phase::Answering;
        }
    }

    fn leave(&mut self, id: u64) {
        self.connections.retain(|c| c.id != id);
    }
}

/// Takes a connection off the list when its task ends, however it ends (also when aborted).
struct Leave {
    held: Arc<Mutex<Held>>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.held).leave(self.id);
    }
}

async fn serve(
    mut stream: TcpStream,
    metrics: &Mutex<String>,
    held: &Mutex<Held>,
    id: u64,
) -> std::io::Result<()> {
    let Some(request) = read_head(&mut stream).await? else { return Ok(()) };
    lock(held).set_answering(id);
    let metrics = metrics.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let response = respond(&request, &metrics);
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await
    .unwrap_or(Ok(()))
}

/// Read a request head within the time limits. `None`: the client sent nothing, or too slowly.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let started = Instant::now();
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head_complete(&request) && request.len() < MAX_REQUEST_BYTES {
        let deadline =
            started + if request.is_empty() { FIRST_BYTE_TIMEOUT } else { REQUEST_TIMEOUT };
        let Ok(read) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await else {
            return Ok(None);
        };
        let n = read?;
        if n == 0 {
            break; // the client ended its side: answer what came, if anything
        }
        request.extend_from_slice(&buf[..n]);
    }
    Ok((!request.is_empty()).then_some(request))
}

/// An empty line ends the head; lines end in CRLF or a bare LF.
fn head_complete(request: &[u8]) -> bool {
    request.windows(2).any(|w| w == b"\n\n") || request.windows(3).any(|w| w == b"\n\r\n")
}

/// The whole response (head and body) to a request head.
fn respond(request: &[u8], metrics: &str) -> Vec<u8> {
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let printable = line.iter().all(|&b| b == b' ' || (b.is_ascii_graphic()));
    let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let (status, extra, body, head_only) = match words[..] {
        _ if !head_complete(request) && request.len() >= MAX_REQUEST_BYTES => {
            ("431 Request Header Fields Too Large", "", "request head over 8 KiB\n", false)
        }
        [method, target, version] if printable && version.starts_with(b"HTTP/1.") => {
            let path = target.split(|&b| b == b'?').next().unwrap_or_default();
            match (method, path) {
                (b"GET" | b"HEAD", b"/metrics") => ("200 OK", "", metrics, method == b"HEAD"),
                (b"GET" | b"HEAD", _) => ("404 Not Found", "", "try /metrics\n", method == b"HEAD"),
                _ => ("405 Method Not Allowed", "Allow: GET, HEAD\r\n", "GET /metrics\n", false),
            }
        }
        _ => ("400 Bad Request", "", "expected: GET /metrics HTTP/1.1\n", false),
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(request: &[u8]) -> String {
        let response = String::from_utf8(respond(request, "m 1\n")).unwrap();
        response.lines().next().unwrap().to_string()
    }

    #[test]
    fn requests_and_their_answers() {
        let ok = "HTTP/1.1 200 OK";
        assert_eq!(status_of(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), ok);
        assert_eq!(status_of(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), ok);
        // Bare LF line ends (issue 11: no answer at all).
        assert!(head_complete(b"GET /metrics HTTP/1.0\n\n"));
        assert!(head_complete(b"GET /metrics HTTP/1.0\r\nA: b\n\r\n"));
        assert!(!head_complete(b"GET /metrics HTTP/1.0\r\nA: b\r\n"));
        assert_eq!(status_of(b"GET /metrics HTTP/1.0\n\n"), ok);
        let body = String::from_utf8(respond(b"GET /metrics HTTP/1.0\n\n", "m 1\n")).unwrap();
        assert!(body.ends_with("\r\n\r\nm 1\n") && body.contains("Content-Length: 4\r\n"));
        let head = String::from_utf8(respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", "m 1\n")).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head:?}");
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
        assert_eq!(status_of(b"POST /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 405 Method Not Allowed");
        // NULs and other control bytes, and what is not a request line: 400.
        for bad in [
            &b"GET /metrics\0 HTTP/1.1\r\n\r\n"[..],
            b"\0\0\0\0\r\n\r\n",
            b"GET\t/metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
            &[0xff, 0xfe, b'\n', b'\n'],
        ] {
            assert_eq!(status_of(bad), "HTTP/1.1 400 Bad Request", "{bad:?}");
        }
        assert_eq!(
            status_of(&[b'A'; MAX_REQUEST_BYTES]),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }

    #[test]
    fn idle_connections_make_room_first() {
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let mut held = Held::default();
        let first = held.admit(a).0.unwrap();
        for _ in 1..MAX_PER_PEER {
            assert!(held.admit(a).0.is_some());
        }
        // Over the address's budget: its oldest waiting connection goes.
        let (id, _) = held.admit(a);
        assert!(id.is_some() && held.find(first).is_none());
        assert_eq!(held.connections.len(), MAX_PER_PEER);
        // Answering connections are kept: with all of them answering, the new one is refused.
        let ids: Vec<u64> = held.connections.iter().map(|c| c.id).collect();
        for id in ids {
            held.set_answering(id);
        }
        assert_eq!(held.admit(a).0, None);
        // Another address has its own budget.
        for _ in 0..2 * MAX_PER_PEER {
            assert!(held.admit(b).0.is_some());
        }
        assert_eq!(held.connections.len(), 2 * MAX_PER_PEER);
        // The total is bounded too: many addresses push out the oldest waiting connections
        // (b's), never the answering ones (a's).
        for n in 0..1000u32 {
            assert!(
                held.admit(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))).0.is_some()
            );
        }
        assert_eq!(held.connections.len(), MAX_CONNECTIONS);
        assert_eq!(held.connections.iter().filter(|c| c.peer == a).count(), MAX_PER_PEER);
        assert!(held.connections.iter().all(|c| c.peer != b));
        let last = held.connections.last().unwrap().id;
        held.leave(last);
        assert_eq!(held.connections.len(), MAX_CONNECTIONS - 1);
    }
}
