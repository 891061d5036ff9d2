//! `throttlewatch run` outside the lab: bad configurations are refused before anything is
//! opened, naming the key; and, as root on the loopback interface, the daemon gives up root
//! once its capture is open and ends cleanly on SIGTERM and on SIGINT. (The lab runs it on a
//! router's LAN interface through every scenario: tests/lab.rs.)

mod common;

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        bad_configurations_are_refused_with_the_key_named,
        it_gives_up_root_and_stops_cleanly_on_sigterm_and_sigint,
    ])
}

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::binary()).arg("run").args(args).output().expect("the binary runs")
}

fn bad_configurations_are_refused_with_the_key_named() -> common::Ran {
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
    Ok(())
}

/// A field of /proc/PID/status, e.g. `Uid:`.
fn proc_status(pid: u32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|l| l.starts_with(field)).map(|l| l[field.len()..].trim().to_string())
}

fn it_gives_up_root_and_stops_cleanly_on_sigterm_and_sigint() -> common::Ran {
    common::need(common::is_root(), "root (the daemon opens a live capture)")?;
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
    Ok(())
}
