//! `data/refresh_ranges.py`, offline: run with `--from data/testdata/upstream` (saved copies in
//! the upstreams' own formats: RIPEstat announced-prefixes JSON, Microsoft 365 endpoints JSON,
//! Zoom's list, Meta's WhatsApp zip) on a copy of `data/`, it must
//! - rewrite each refreshed range file with the prefixes of its copies, merged and sorted,
//!   under a header naming the upstream, with the counts, the kept notes and the hand-added
//!   prefixes, keeping the `extra` section less what the new list covers;
//! - leave untouched, with a message naming why, the files whose source is missing, not JSON
//!   or suspiciously small, and those that have no machine-readable upstream;
//! - regenerate `services.toml` so that `build_catalogue.py --check` passes on the copy;
//! - with `--dry-run`, print the added and removed prefixes and write nothing;
//! - with `--fetch`, download the same copies over HTTP (a server on loopback stands in for
//!   the upstreams), make the same files of them, keep the downloads (`--save`) and name the
//!   HTTP error of a source that fails.
//!
//! Without python3 the tests are reported `ignored`, or fail under
//! `THROTTLEWATCH_REQUIRE_ALL=1` (CI).

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        dry_run_lists_the_changes_and_writes_nothing,
        refresh_rewrites_the_sources_read_and_leaves_the_failed_ones,
        refresh_of_good_sources_exits_zero_and_a_second_run_changes_nothing,
        fetch_over_http_makes_the_same_files_and_saves_the_downloads,
    ])
}

fn python() -> common::Ran {
    common::need(common::tool("python3"), "python3 (apt-get install python3)")
}

/// A copy of the repository's `data/` in a scratch directory: its `data` path.
fn data_copy(name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let data = common::synth::scratch(name).join("data");
    copy(&common::root().join("data"), &data);
    data
}

fn saved_copies() -> PathBuf {
    common::root().join("data/testdata/upstream")
}

fn python3(data: &Path, script: &str, args: &[&str]) -> Output {
    Command::new("python3").arg(data.join(script)).args(args).output().expect("python3 runs")
}

fn refresh(data: &Path, args: &[&str]) -> Output {
    let copies = saved_copies();
    let mut all = vec!["--from", copies.to_str().unwrap()];
    all.extend_from_slice(args);
    python3(data, "refresh_ranges.py", &all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn range_file(data: &Path, name: &str) -> String {
    fs::read_to_string(data.join("ranges").join(format!("{name}.txt"))).unwrap()
}

/// The prefixes of a range file before its `extra` section, and those in it.
fn prefixes(file: &str) -> (Vec<&str>, Vec<&str>) {
    fn cidrs(part: &str) -> Vec<&str> {
        part.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
    }
    let (main, extra) = file.split_once("# --- extra:").unwrap_or((file, ""));
    (cidrs(main), cidrs(extra.split_once('\n').map_or("", |(_, rest)| rest)))
}

/// Every file of the directory, by path relative to it, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                ));
            }
        }
    }
    files.sort();
    files
}

/// The sources of the saved copies that must fail, and the reason each names.
const FAILED: [(&str, &str); 5] = [
    ("discord", "no saved copy"),
    ("facebook_meta", "no saved copy"),
    ("threema", "suspiciously few"),
    ("vk", "not JSON"),
    ("webex", "no saved copy"),
];

/// The range files with no machine-readable upstream.
const MANUAL: [&str; 3] = ["google_meet", "imo", "viber"];

fn dry_run_lists_the_changes_and_writes_nothing() -> common::Ran {
    python()?;
    let data = data_copy("refresh-dry-run");
    let before = snapshot(&data);
    let out = refresh(&data, &["--dry-run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "sources fail, so exit 1: {stdout}\n{stderr}");
    for line in [
        "telegram: ipv4=8 ipv6=4 (+0 extra); 1 added, 1 removed",
        "  + 91.105.194.0/24",
        "  - 95.161.64.0/20",
        "whatsapp: ipv4=228 ipv6=0 (+0 extra); 1 added, 2 removed",
        "  + 57.144.110.32/32",
        "  - 3.33.221.48/32",
        "line: ipv4=14 ipv6=1 (+0 extra); 0 added, 0 removed",
    ] {
        assert!(stdout.lines().any(|l| l == line), "no line {line:?} in:\n{stdout}");
    }
    for (name, why) in FAILED {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("{name}: FAILED")) && l.contains(why)),
            "no failure of {name} ({why}) in:\n{stderr}"
        );
    }
    assert!(before == snapshot(&data), "--dry-run changed files in {}", data.display());
    assert!(!stdout.contains("wrote "), "--dry-run regenerated services.toml: {stdout}");
    Ok(())
}

fn refresh_rewrites_the_sources_read_and_leaves_the_failed_ones() -> common::Ran {
    python()?;
    let data = data_copy("refresh-from-saved");
    let original = common::root().join("data");
    let out = refresh(&data, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "sources fail, so exit 1: {stdout}\n{stderr}");

    // Telegram: five ASNs' answers merged (two /22 into the /21, two /48 into the /47, a
    // duplicate across ASNs once, an ASN announcing nothing), IPv4 first, sorted.
    let telegram = range_file(&data, "telegram");
    assert_eq!(
        prefixes(&telegram),
        (
            vec![
                "91.105.192.0/23",
                "91.105.194.0/24",
                "91.108.4.0/22",
                "91.108.8.0/21",
                "91.108.16.0/21",
                "91.108.56.0/22",
                "149.154.160.0/20",
                "185.76.151.0/24",
                "2001:67c:4e8::/48",
                "2001:b28:f23c::/47",
                "2001:b28:f23f::/48",
                "2a0a:f280:203::/48",
            ],
            vec![]
        ),
        "{telegram}"
    );
    let header: Vec<&str> = telegram.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(header[0], "# service: Telegram (MTProto DCs, calls relays)", "{telegram}");
    assert!(
        header[1].starts_with(
            "# source: RIPEstat announced prefixes of AS62041 AS62014 AS59930 AS44907 AS211157 "
        ) && header[1].contains("read from saved copies in upstream/ on 20"),
        "{telegram}"
    );
    assert!(header.contains(&"# counts: ipv4=8 ipv6=4"), "{telegram}");
    let old_telegram = fs::read_to_string(original.join("ranges/telegram.txt")).unwrap();
    let notes = |file: &str| -> Vec<String> {
        file.lines()
            .filter(|l| l.starts_with("# note:") || l.starts_with("# format:"))
            .map(String::from)
            .collect()
    };
    assert_eq!(notes(&telegram), notes(&old_telegram), "notes kept");
    assert!(!telegram.contains("ntop/nDPI src/lib"), "the old source line is gone: {telegram}");

    // Microsoft 365: only serviceArea Skype, entries without ips skipped, the two /16 merged.
    let skype = range_file(&data, "skype_teams");
    assert_eq!(
        prefixes(&skype).0,
        [
            "52.112.0.0/14",
            "52.122.0.0/15",
            "52.238.119.141/32",
            "2603:1027::/48",
            "2603:1037::/48",
            "2603:1047::/48",
            "2603:1057::/48",
            "2603:1063::/38",
            "2620:1ec:6::/48",
            "2620:1ec:40::/42",
        ],
        "{skype}"
    );

    // Zoom: the list plus the hand-added IPv6; the extra 16.63.29.0/24 is now covered.
    let zoom = range_file(&data, "zoom");
    let (zoom_main, zoom_extra) = prefixes(&zoom);
    assert!(zoom_main.contains(&"16.63.28.0/22") && !zoom_main.contains(&"3.7.35.0/25"), "{zoom}");
    assert_eq!(
        zoom_main[zoom_main.len() - 3..],
        ["2407:30c0::/32", "2600:9000:2600::/48", "2620:123:2000::/40"]
    );
    assert!(zoom_extra.is_empty() && !zoom.contains("# --- extra:"), "{zoom}");
    assert!(zoom.contains("# counts: ipv4=78 ipv6=3\n"), "{zoom}");

    // Apple: the extra section that the new list does not cover stays, with its mark.
    let apple = range_file(&data, "apple");
    let (apple_main, apple_extra) = prefixes(&apple);
    assert!(apple_main.contains(&"63.92.224.0/19") && !apple_main.contains(&"139.178.128.0/18"));
    assert_eq!(apple_extra, ["2620:0:1b00::/48"], "{apple}");
    assert!(apple.contains("# counts: ipv4=6 ipv6=4 (+1 extra, see below)"), "{apple}");

    // LINE: the ASN's prefixes plus the hand-added /24 are what the file had.
    let old_line = fs::read_to_string(original.join("ranges/line.txt")).unwrap();
    assert_eq!(prefixes(&range_file(&data, "line")), prefixes(&old_line));

    // WhatsApp: the zip's list (bare host addresses become /32), the PDF beside it ignored.
    let whatsapp = range_file(&data, "whatsapp");
    let (wa, _) = prefixes(&whatsapp);
    assert_eq!(wa.len(), 228, "{whatsapp}");
    assert!(wa.contains(&"57.144.110.32/32") && !wa.contains(&"3.33.221.48/32"));
    assert!(whatsapp.contains("(WhatsApp IPs (IPv4 Only) 2026-11-24 - 2026-11-28.txt)"));

    // Failed and manual sources: untouched, each with its message.
    for (name, why) in FAILED {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("{name}: FAILED, {name}.txt left as it is"))
                    && l.contains(why)),
            "no failure of {name} ({why}) in:\n{stderr}"
        );
    }
    for name in FAILED.iter().map(|(n, _)| *n).chain(MANUAL) {
        let old = fs::read_to_string(original.join(format!("ranges/{name}.txt"))).unwrap();
        assert_eq!(range_file(&data, name), old, "{name}.txt changed");
    }
    for name in MANUAL {
        assert!(stdout.contains(&format!("{name}: kept as it is (not refreshable: ")), "{stdout}");
    }

    // The catalogue: regenerated from the new files, and what build_catalogue.py makes.
    let catalogue = fs::read_to_string(data.join("services.toml")).unwrap();
    assert!(catalogue.contains("\"91.105.194.0/24\"") && !catalogue.contains("\"95.161.64.0/20\""));
    assert!(catalogue.contains("#   telegram: RIPEstat announced prefixes of AS62041"));
    let check = python3(&data, "build_catalogue.py", &["--check"]);
    assert!(check.status.success(), "--check on the refreshed copy: {}", text(&check.stderr));
    Ok(())
}

fn refresh_of_good_sources_exits_zero_and_a_second_run_changes_nothing() -> common::Ran {
    python()?;
    let data = data_copy("refresh-twice");
    let good = ["--only", "telegram", "skype_teams", "zoom", "whatsapp", "line", "viber"];
    let first = refresh(&data, &good);
    assert!(first.status.success(), "{}\n{}", text(&first.stdout), text(&first.stderr));
    let after_first = snapshot(&data);
    let second = refresh(&data, &good);
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{stdout}\n{}", text(&second.stderr));
    for name in ["telegram", "skype_teams", "zoom", "whatsapp", "line"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{name}: ")) && l.ends_with("; 0 added, 0 removed")),
            "{name} changed on the second run:\n{stdout}"
        );
    }
    let prefixes_of = |files: &[(PathBuf, Vec<u8>)]| -> Vec<(PathBuf, Vec<String>)> {
        files
            .iter()
            .map(|(p, b)| {
                (
                    p.clone(),
                    text(b).lines().filter(|l| !l.starts_with('#')).map(String::from).collect(),
                )
            })
            .collect()
    };
    assert_eq!(prefixes_of(&after_first), prefixes_of(&snapshot(&data)));
    let check = python3(&data, "build_catalogue.py", &["--check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    Ok(())
}

/// Python's HTTP server on a loopback port, serving a directory; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn serve(dir: &Path) -> Server {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server starts");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("http.server did not say its port: {line:?}");
        };
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a range file but its `source` line (which names where it was read from).
fn without_source(file: &str) -> Vec<&str> {
    file.lines().filter(|l| !l.starts_with("# source:")).collect()
}

fn fetch_over_http_makes_the_same_files_and_saves_the_downloads() -> common::Ran {
    python()?;
    let scratch = common::synth::scratch("refresh-fetch");
    let served = scratch.join("served");
    fs::create_dir_all(&served).unwrap();
    for entry in fs::read_dir(saved_copies()).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, served.join(path.file_name().unwrap())).unwrap();
    }
    let server = Server::serve(&served);
    let base = format!("http://127.0.0.1:{}", server.port);
    // Meta's page links the zip; webex's second ASN is not served (404).
    fs::write(
        served.join("page.html"),
        format!(
            "<p><a href=\"{base}/whatsapp.zip?dl=1&amp;v=2\" target=\"_blank\">WhatsApp server IP \
             addresses and ranges (.zip file)</a></p>"
        ),
    )
    .unwrap();

    let data = data_copy("refresh-fetch-data");
    let upstreams = fs::read_to_string(data.join("upstreams.toml")).unwrap();
    let local = upstreams
        .replace(
            "https://stat.ripe.net/data/announced-prefixes/data.json?resource=",
            &format!("{base}/"),
        )
        .replace(
            "\"https://endpoints.office.com/endpoints/worldwide\"",
            &format!("\"{base}/skype_teams.json\""),
        )
        .replace("https://assets.zoom.us/docs/ipranges/Zoom.txt", &format!("{base}/zoom.txt"))
        .replace(
            "https://developers.facebook.com/docs/whatsapp/guides/network-requirements/",
            &format!("{base}/page.html"),
        );
    assert_eq!(local.matches(&base).count(), 4, "every upstream URL replaced:\n{local}");
    fs::write(data.join("upstreams.toml"), local.replace("{asn}\"", "{asn}.json\"")).unwrap();

    let names = ["telegram", "skype_teams", "zoom", "whatsapp", "apple", "webex"];
    let save = scratch.join("saved");
    let mut args = vec!["--fetch", "--save", save.to_str().unwrap(), "--only"];
    args.extend(names);
    let out = python3(&data, "refresh_ranges.py", &args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    drop(server);
    assert_eq!(out.status.code(), Some(1), "webex fails, so exit 1: {stdout}\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("webex: FAILED, webex.txt left as it is: ")
            && l.contains("/AS399937.json: HTTP Error 404")),
        "{stderr}"
    );
    let original = common::root().join("data");
    assert_eq!(
        range_file(&data, "webex"),
        fs::read_to_string(original.join("ranges/webex.txt")).unwrap()
    );

    // The same files as from the saved copies, but for where they were read.
    let from_saved = data_copy("refresh-fetch-compare");
    let mut only = vec!["--only"];
    only.extend(&names[..5]);
    let out = refresh(&from_saved, &only);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in &names[..5] {
        let (fetched, saved) = (range_file(&data, name), range_file(&from_saved, name));
        assert_eq!(without_source(&fetched), without_source(&saved), "{name}");
        assert!(fetched.contains(", fetched 20") && fetched.contains(&base), "{fetched}");
    }

    // The downloads are kept under the names --from reads.
    for file in [
        "AS62041.json",
        "AS211157.json",
        "AS714.json",
        "skype_teams.json",
        "zoom.txt",
        "whatsapp.zip",
    ] {
        assert_eq!(
            fs::read(save.join(file)).unwrap(),
            fs::read(served.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(
        fs::read_to_string(save.join("whatsapp.html"))
            .unwrap()
            .contains("whatsapp.zip?dl=1&amp;v=2")
    );
    let check = python3(&data, "build_catalogue.py", &["--check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    Ok(())
}
