//! `throttlewatch run` outside the lab: bad configurations are refused before anything is
//! opened, naming the key; and, as root on the loopback interface, the daemon gives up root
//! once its capture is open and ends cleanly on SIGTERM and on SIGINT. (The lab runs it on a
//! router's LAN interface through every scenario: tests/lab.rs.)
//!
//! Faults it keeps watching through (issue 11), each as root, in namespaces these tests create
//! and remove, bounded in time: a `/metrics` flooded with idle connections, an interface
//! deleted and re-created, a full disk, log rotation, a privilege drop with unwritable outputs.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::binary()).arg("run").args(args).output().expect("the binary runs")
}

#[test]
fn bad_configurations_are_refused_with_the_key_named() {
    let dir = std::env::temp_dir().join(format!("tw-daemon-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("bad.toml");
    std::fs::write(&toml, "[daemon]\ninterfaces = [\"lo\"]\nsnaplen = 10\n").unwrap();
    let uci = dir.join("bad.uci");
    std::fs::write(
        &uci,
        "config throttlewatch 'main'\n\tlist interface 'lo'\n\toption colour 'red'\n",
    )
    .unwrap();
    let toml_arg = toml.to_str().unwrap();
    let uci_arg = uci.to_str().unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec![], "interfaces: at least one interface is needed"),
        (vec!["--config", toml_arg], "snaplen = 10: allowed values are 64..=65535"),
        (vec!["--uci", uci_arg], "bad.uci: line 3: unknown option \"colour\""),
        (vec!["-i", "lo", "--listen", "10.1.2.3:9737"], "not a loopback address"),
        (
            vec!["-i", "lo", "--control-sample", "3"],
            "control_sample = 3: allowed values are 1, 2, 4",
        ),
    ];
    for (args, message) in cases {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no events from a refused configuration");
    }
    // An interface that does not exist is named (as root: no such device; else: no permission).
    let out = run(&["-i", "nosuchif0", "--events", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchif0"));
}

/// A field of /proc/PID/status, e.g. `Uid:`.
fn proc_status(pid: u32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|l| l.starts_with(field)).map(|l| l[field.len()..].trim().to_string())
}

#[test]
fn it_gives_up_root_and_stops_cleanly_on_sigterm_and_sigint() {
    if !common::is_root() {
        return common::missing("root (the daemon opens a live capture)");
    }
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert!(!nobody.is_empty(), "the system has a nobody user");
    for signal in ["TERM", "INT"] {
        let mut daemon = Command::new(common::binary())
            .args(["run", "-i", "lo", "--user", "nobody", "--window", "1", "--events", "-"])
            .args(["--control-sample", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let pid = daemon.id();
        // Wait until the daemon runs as nobody (after its captures are open).
        let start = Instant::now();
        let uid = loop {
            let uid = proc_status(pid, "Uid:").unwrap_or_default();
            if uid.split_whitespace().all(|u| u == nobody)
                || start.elapsed() > Duration::from_secs(20)
            {
                break uid;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(uid.split_whitespace().all(|u| u == nobody), "uids {uid:?}, nobody is {nobody}");
        let gid = proc_status(pid, "Gid:").unwrap();
        assert!(!gid.split_whitespace().any(|g| g == "0"), "still in group root: {gid}");
        assert_eq!(proc_status(pid, "Groups:").unwrap(), "", "supplementary groups dropped");
        assert_eq!(proc_status(pid, "CapEff:").unwrap(), "0000000000000000", "no capabilities");
        std::thread::sleep(Duration::from_millis(1500)); // a window or so
        let killed = Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = daemon.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "SIG{signal}: still running");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        let mut out = String::new();
        daemon.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let mut err = String::new();
        daemon.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(err.contains("running as user nobody"), "{err}");
        let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.first().unwrap()["type"], "start", "{out}");
        let last = events.last().unwrap();
        assert_eq!(
            (last["type"].as_str(), last["reason"].as_str()),
            (Some("stop"), Some(format!("SIG{signal}").as_str()))
        );
    }
}

/// A daemon started for a test, its output in files of its own directory; ended (SIGTERM,
/// then SIGKILL) when dropped, so a failing test leaves nothing running.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    /// `throttlewatch run ARGS`, behind `prefix` (e.g. `ip netns exec NS`).
    fn start(prefix: &[&str], args: &[&str], dir: &Path) -> Daemon {
        std::fs::create_dir_all(dir).unwrap();
        let file = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let mut command = match prefix {
            [] => Command::new(common::binary()),
            [first, rest @ ..] => {
                let mut c = Command::new(first);
                c.args(rest).arg(common::binary());
                c
            }
        };
        let child = command
            .arg("run")
            .args(args)
            .stdout(file("stdout"))
            .stderr(file("stderr"))
            .spawn()
            .expect("the binary runs");
        Daemon { child, dir: dir.to_path_buf() }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill").args(["-s", name, &self.pid().to_string()]).status();
        assert!(ok.unwrap().success(), "kill -s {name}");
    }

    /// SIGTERM and the exit code, within 10 s.
    fn stop(&mut self) -> Option<i32> {
        self.signal("TERM");
        let status =
            wait_for("the daemon to exit after SIGTERM", 10, || self.child.try_wait().unwrap());
        status.code()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ =
                Command::new("kill").args(["-s", "TERM", &self.child.id().to_string()]).status();
            let start = Instant::now();
            while self.child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Poll `f` every 50 ms until it returns something, for at most `seconds`.
fn wait_for<T>(what: &str, seconds: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(seconds), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test's own temporary directory, emptied first.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tw-daemon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port nobody listens on now.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// curl's status line and the time the whole request took.
fn scrape(addr: SocketAddr) -> (Option<String>, Duration) {
    let start = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl runs");
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let ok = out.status.success()
        && text.ends_with("\n200")
        && text.contains("throttlewatch_build_info");
    (ok.then_some(text), took)
}

/// Send raw bytes and read the whole answer (the server closes after one response).
fn raw_request(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

/// Issue 11: 500 idle connections made every Prometheus scrape time out; 20 re-opened ones
/// made each take 4-5 s; bare-LF and NUL-laden requests got no answer.
#[test]
fn metrics_are_answered_while_hundreds_of_connections_idle() {
    if !common::is_root() {
        return common::missing("root (the daemon opens a live capture)");
    }
    if !common::tool("curl") {
        return common::missing("curl (a real HTTP client)");
    }
    let dir = test_dir("http");
    let addr = free_port();
    let listen = addr.to_string();
    let mut daemon = Daemon::start(
        &[],
        &["-i", "lo", "--listen", &listen, "--events", "-", "--control-sample", "1"],
        &dir,
    );
    wait_for("the metrics endpoint", 60, || scrape(addr).0);

    // 500 connections that send nothing, and 50 that send part of a request and stall.
    let idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metr").unwrap();
            s
        })
        .collect();
    for _ in 0..3 {
        let (answer, took) = scrape(addr);
        assert!(answer.is_some(), "no answer with 550 idle connections open");
        assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
    }

    // 20 connections re-opened as soon as they are closed, while scraping.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reopeners: Vec<_> = (0..20)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        let _ = s.read(&mut [0u8; 16]); // until the server closes it
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let (answer, took) = scrape(addr);
        assert!(answer.is_some() && took < Duration::from_secs(1), "a scrape took {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in reopeners {
        r.join().unwrap();
    }

    // Bare LF: the metrics. NUL and other control bytes: 400.
    let lf = raw_request(addr, b"GET /metrics HTTP/1.0\n\n");
    assert!(
        lf.starts_with("HTTP/1.1 200 OK\r\n") && lf.contains("throttlewatch_build_info"),
        "{lf}"
    );
    for bad in
        [&b"GET /metrics\0 HTTP/1.1\r\n\r\n"[..], b"\0\0\0\0\0\0\n\n", b"\x16\x03\x01\0\xa5\n\n"]
    {
        let answer = raw_request(addr, bad);
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad:?}: {answer:?}");
    }
    drop((idle, slow));
    assert!(daemon.running(), "{}", daemon.stderr());
    assert_eq!(daemon.stop(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
