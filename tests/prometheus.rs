//! The Prometheus rules in `packaging/prometheus/` checked with Prometheus itself (Debian's
//! `prometheus` package, which ships `promtool`):
//! - `promtool check rules` accepts them, `promtool check config` the example configuration;
//! - `promtool test rules` passes on `throttlewatch.test.yml` (series from lab runs of the
//!   daemon), and fails once a rule is broken, so the tests do test the rules;
//! - every metric the rules read is one docs/status.md documents;
//! - live: a real Prometheus, in the lab's router namespace, scrapes the daemon's /metrics
//!   during the policing scenario, loads the rules, and fires the throttling alert (root and
//!   the lab's tools too).
//!
//! Without promtool or prometheus (or root, for the live test) a test is reported `ignored`
//! with what is missing, or fails under `THROTTLEWATCH_REQUIRE_ALL=1` (CI).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        promtool_accepts_the_rules_and_example_config_not_a_broken_rule,
        rules_pass_their_promtool_tests_and_broken_rules_do_not,
        rules_read_only_documented_metrics,
        live_prometheus_scraping_the_lab_daemon_fires_the_throttling_alert,
    ])
}

fn dir() -> PathBuf {
    common::root().join("packaging/prometheus")
}

fn rules_path() -> PathBuf {
    dir().join("throttlewatch.rules.yml")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool() -> common::Ran {
    common::need(
        common::runs("promtool", &["--version"]),
        "promtool (Debian package prometheus: apt-get install prometheus)",
    )
}

fn promtool_run(args: &[&str], file: &Path) -> Output {
    Command::new("promtool").args(args).arg(file).output().expect("promtool runs")
}

fn both(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A fresh scratch folder under target/ for one test.
fn scratch(name: &str) -> PathBuf {
    let path = common::root().join("target/prometheus-tests").join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn promtool_accepts_the_rules_and_example_config_not_a_broken_rule() -> common::Ran {
    promtool()?;
    let text = read(&rules_path());
    let out = promtool_run(&["check", "rules"], &rules_path());
    assert!(out.status.success(), "{}", both(&out));
    let count = rule_count();
    assert!(count >= 16, "{count} rules");
    assert!(both(&out).contains(&format!("SUCCESS: {count} rules found")), "{}", both(&out));
    // The example configuration, with the rules it loads.
    let out = promtool_run(&["check", "config"], &dir().join("prometheus.example.yml"));
    assert!(out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("SUCCESS: 1 rule files found"), "{}", both(&out));
    // A range function without its range is refused.
    let broken = scratch("check").join("broken.rules.yml");
    std::fs::write(&broken, text.replacen("[10m]", "", 1)).unwrap();
    let out = promtool_run(&["check", "rules"], &broken);
    assert!(!out.status.success(), "a broken expression passed:\n{}", both(&out));
    Ok(())
}

/// Alerting and recording rules in the file.
fn rule_count() -> usize {
    read(&rules_path())
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("- alert:") || l.trim_start().starts_with("- record:")
        })
        .count()
}

/// Run `promtool test rules` on the committed tests against `rules` (the file's text).
fn promtool_test(rules: &str, name: &str) -> Output {
    let folder = scratch(&format!("test-{name}"));
    std::fs::write(folder.join("throttlewatch.rules.yml"), rules).unwrap();
    let tests = folder.join("throttlewatch.test.yml");
    std::fs::copy(dir().join("throttlewatch.test.yml"), &tests).unwrap();
    promtool_run(&["test", "rules"], &tests)
}

fn rules_pass_their_promtool_tests_and_broken_rules_do_not() -> common::Ran {
    promtool()?;
    let rules = read(&rules_path());
    let out = promtool_test(&rules, "as-shipped");
    assert!(out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("SUCCESS"), "{}", both(&out));
    // Each change to a rule must make a test fail.
    let mutants = [
        ("throttled-alert-on-reset", "finding=\"throttled\"}", "finding=\"reset\"}"),
        ("down-after-4m", "for: 5m", "for: 4m"),
        ("count-without-finding", "count by (service, finding)", "count by (service)"),
        ("not-evaluating-never", "[10m]) == 0", "[10m]) < 0"),
        ("refused-threshold", "flows_refused_total[10m]) > 0", "flows_refused_total[10m]) > 5000"),
        ("offload-at-once", "for: 1m", "for: 0m"),
        ("increase-over-10s", "verdicts_total[1h]", "verdicts_total[10s]"),
    ];
    for (name, from, to) in mutants {
        assert!(rules.contains(from), "{name}: `{from}` is not in the rules");
        let out = promtool_test(&rules.replacen(from, to, 1), name);
        assert!(!out.status.success(), "{name}: the broken rules passed the tests");
        assert!(both(&out).contains("FAILED"), "{name}: {}", both(&out));
    }
    Ok(())
}

/// The daemon's metric names the rules read (not the recording rules' own names).
fn metrics_read_by_rules() -> BTreeSet<String> {
    let text = read(&rules_path());
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("throttlewatch_") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

fn rules_read_only_documented_metrics() -> common::Ran {
    let names = metrics_read_by_rules();
    assert!(names.len() >= 8, "{names:?}");
    let doc = read(&common::root().join("docs/status.md"));
    for name in &names {
        assert!(doc.contains(&format!("| `{name}` |")), "{name} is not in docs/status.md");
    }
    Ok(())
}

// ------------------------------------------------------------------ live, in the lab

/// The whole live test's bound: the lab run (20 s of traffic, windows of 10 s) takes about
/// 35 s.
const LIVE_BOUND: Duration = Duration::from_secs(90);
const PROMETHEUS_ADDR: &str = "127.0.0.1:9090";

/// What the live test started, stopped whatever happens: the lab (SIGTERM: it removes its
/// namespaces, and with them Prometheus) and Prometheus.
struct Running {
    lab: Child,
    prometheus: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(p) = &mut self.prometheus {
            let _ = p.kill();
            let _ = p.wait();
        }
        if self.lab.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-s", "TERM", &self.lab.id().to_string()]).status();
            let _ = self.lab.wait();
        }
    }
}

/// GET a Prometheus API path (with `query` URL-encoded when given) inside the namespace.
fn api(namespace: &str, path: &str, query: Option<&str>) -> Option<Value> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", namespace, "curl", "-sS", "--max-time", "5", "-G"]);
    if let Some(q) = query {
        cmd.arg("--data-urlencode").arg(format!("query={q}"));
    }
    let out = cmd.arg(format!("http://{PROMETHEUS_ADDR}{path}")).output().ok()?;
    let body: Value = serde_json::from_slice(&out.stdout).ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

fn live_prometheus_scraping_the_lab_daemon_fires_the_throttling_alert() -> common::Ran {
    common::need(common::is_root(), "root (the live lab builds network namespaces)")?;
    for t in ["ip", "nft", "tc", "tcpdump", "python3", "curl"] {
        common::need(common::tool(t), format!("{t} (the lab's tools, .ci/run)"))?;
    }
    common::need(
        common::runs("prometheus", &["--version"]),
        "prometheus (Debian package prometheus: apt-get install prometheus)",
    )?;
    let deadline = Instant::now() + LIVE_BOUND;
    let work = scratch("live");
    let config = work.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: throttlewatch\n    static_configs:\n      \
             - targets: ['127.0.0.1:9737']\n",
            rules_path().display()
        ),
    )
    .unwrap();
    let prefix = work.join("police");
    let mut lab = Command::new("python3")
        .arg(common::root().join("lab/lab.py"))
        .args(["run", "police", "--seed", "1", "--duration", "20", "--out"])
        .arg(&prefix)
        .arg("--daemon")
        .arg(common::binary())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let (lines_tx, lines) = mpsc::channel();
    let stderr = BufReader::new(lab.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut running = Running { lab, prometheus: None };
    let mut log = Vec::new();
    // The lab says where the daemon serves /metrics once it does.
    let namespace = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the lab did not start the daemon:\n{}", log.join("\n")));
        log.push(line.clone());
        if let Some(rest) =
            line.strip_prefix("daemon metrics at http://127.0.0.1:9737/metrics in namespace ")
        {
            break rest.trim().to_string();
        }
    };
    let data = work.join("data");
    running.prometheus = Some(
        Command::new("ip")
            .args(["netns", "exec", &namespace, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={PROMETHEUS_ADDR}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus runs"),
    );
    // Poll the firing alerts until the throttling one is there.
    let firing = loop {
        assert!(
            Instant::now() < deadline,
            "no firing ThrottlewatchServiceThrottled within {LIVE_BOUND:?}; prometheus log: {}",
            work.join("prometheus.log").display()
        );
        assert!(
            running.lab.try_wait().unwrap().is_none(),
            "the lab ended before the alert fired:\n{}",
            log.join("\n")
        );
        let alerts = api(&namespace, "/api/v1/alerts", None);
        let found = alerts.as_ref().and_then(|a| a["alerts"].as_array()).and_then(|all| {
            all.iter()
                .find(|a| {
                    a["labels"]["alertname"] == "ThrottlewatchServiceThrottled"
                        && a["state"] == "firing"
                })
                .cloned()
        });
        if let Some(alert) = found {
            break alert;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let labels = &firing["labels"];
    assert_eq!(labels["service"], "msg", "{firing}");
    assert_eq!(labels["finding"], "throttled", "{firing}");
    assert_eq!(labels["instance"], "127.0.0.1:9737", "{firing}");
    assert_eq!(labels["job"], "throttlewatch", "{firing}");
    assert_eq!(labels["severity"], "warning", "{firing}");
    let confidence: f64 = firing["value"].as_str().unwrap().parse().unwrap();
    // Its text, from the templates (Prometheus drops an empty `mechanism` label).
    let summary = match labels["mechanism"].as_str() {
        Some(m) => format!("msg throttled ({m}), seen by 127.0.0.1:9737"),
        None => "msg throttled, seen by 127.0.0.1:9737".to_string(),
    };
    assert_eq!(firing["annotations"]["summary"], summary, "{firing}");
    // While the daemon runs: every rule evaluates without error on its real series, the
    // target is up, nothing else fires, and the rules read only metrics it serves.
    let rules = api(&namespace, "/api/v1/rules", None).expect("the rules API answers");
    let groups = rules["groups"].as_array().unwrap();
    let all: Vec<&Value> = groups.iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(all.len(), rule_count(), "rules loaded: {rules}");
    for rule in &all {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    let up = api(&namespace, "/api/v1/query", Some("up{job=\"throttlewatch\"}")).unwrap();
    assert_eq!(up["result"][0]["value"][1], "1", "{up}");
    let alerts = api(&namespace, "/api/v1/alerts", None).unwrap();
    let names: BTreeSet<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["ThrottlewatchServiceThrottled"]), "{alerts}");
    let scraped = api(
        &namespace,
        "/api/v1/query",
        Some("group by (__name__) ({__name__=~\"throttlewatch_.+\"})"),
    )
    .unwrap();
    let served: BTreeSet<String> = scraped["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["__name__"].as_str().unwrap().to_string())
        .collect();
    let needed = metrics_read_by_rules();
    assert!(needed.is_subset(&served), "read but not served: {:?}", needed.difference(&served));
    // The fleet view: its group is evaluated on its own schedule, at most one interval later.
    let fleet = loop {
        let fleet =
            api(&namespace, "/api/v1/query", Some("service_finding:throttlewatch_routers:count"))
                .unwrap();
        if fleet["result"].as_array().is_some_and(|r| !r.is_empty()) {
            break fleet;
        }
        assert!(Instant::now() < deadline, "no fleet count within {LIVE_BOUND:?}: {fleet}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(fleet["result"][0]["metric"]["finding"], "throttled", "{fleet}");
    assert_eq!(fleet["result"][0]["value"][1], "1", "{fleet}");
    // The lab ends on its own (and takes Prometheus with its namespace).
    let status = loop {
        if let Some(status) = running.lab.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the lab run outlasted {LIVE_BOUND:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    log.extend(lines.try_iter());
    assert!(status.success(), "lab.py failed:\n{}", log.join("\n"));
    // The alert's value is the confidence of a throttled verdict the daemon wrote.
    let events = read(&prefix.with_extension("events.jsonl"));
    let throttled: Vec<f64> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "verdict" && e["verdict"]["finding"] == "throttled")
        .map(|e| e["verdict"]["confidence"].as_f64().unwrap())
        .collect();
    assert!(throttled.contains(&confidence), "alert {confidence}, verdicts {throttled:?}");
    Ok(())
}
