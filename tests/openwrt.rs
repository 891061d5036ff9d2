//! The OpenWrt package feed in `openwrt/`: the `throttlewatch` package (Makefile, procd init
//! script, UCI file, `test.sh`) and `luci-app-throttlewatch` (views, menu, ACL).
//!
//! Nothing here has an OpenWrt build tree or a router, so each part is checked where it can
//! be run: the shell scripts under POSIX `sh` (and busybox's, OpenWrt's shell) with procd and
//! UCI stubbed, `test.sh` against this build's binary, the JavaScript with `node --check`,
//! the JSON with serde, and the status view rendered by headless Chromium through a small
//! shim of LuCI's runtime (`openwrt/luci-app-throttlewatch/tests/`). The Makefiles only get
//! a text check. A test whose tool is missing (node, shfmt, busybox, chromium) is reported
//! `ignored` with the tool's name, or fails under `THROTTLEWATCH_REQUIRE_ALL=1` (CI).

mod common;

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        luci_views_pass_node_check_and_a_broken_one_does_not,
        menu_and_acl_parse_and_the_acl_grants_only_the_status_file_and_its_uci,
        settings_form_edits_only_options_the_daemon_reads,
        shell_scripts_parse_and_sh_catches_an_error,
        shell_scripts_are_shfmt_clean,
        makefiles_have_the_expected_variables,
        makefile_builds_a_git_source_only_at_a_named_revision,
        init_script_drives_procd_as_documented,
        init_script_drives_procd_under_busybox_ash,
        package_test_script_passes_on_this_build,
        package_test_script_passes_under_busybox_ash,
        status_view_renders_the_latest_verdicts_in_plain_words,
        status_view_explains_a_missing_or_unreadable_status_file,
        status_view_shows_text_from_the_file_as_text,
    ])
}

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const STATUS_FILE: &str = "/var/run/throttlewatch/status.json";

fn feed(rel: &str) -> PathBuf {
    common::root().join("openwrt").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn views() -> [PathBuf; 2] {
    let dir = "luci-app-throttlewatch/htdocs/luci-static/resources/view/throttlewatch";
    [feed(&format!("{dir}/status.js")), feed(&format!("{dir}/settings.js"))]
}

fn shell_scripts() -> [PathBuf; 2] {
    [feed("throttlewatch/files/throttlewatch.init"), feed("throttlewatch/test.sh")]
}

/// `program` runs (`--version` or the given probe arguments), else it is missing.
fn available(program: &str, probe: &[&str], package: &str) -> common::Ran {
    common::need(common::runs(program, probe), format!("{program} (Debian package {package})"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn luci_views_pass_node_check_and_a_broken_one_does_not() -> common::Ran {
    available("node", &["--version"], "nodejs")?;
    let shim = feed("luci-app-throttlewatch/tests/luci-shim.js");
    for js in views().iter().chain([&shim]) {
        let out = run(Command::new("node").arg("--check").arg(js));
        assert!(out.status.success(), "node --check {}: {}", js.display(), text(&out));
    }
    // The same check must catch a syntax error, or passing it would mean nothing.
    let dir = common::synth::scratch("node-check");
    let broken = dir.join("status.js");
    let source = read(&views()[0]);
    let cut = source.rfind("});").expect("the view ends with `});`");
    std::fs::write(&broken, &source[..cut]).unwrap();
    let out = run(Command::new("node").arg("--check").arg(&broken));
    assert!(!out.status.success(), "node --check accepted a view cut short");
    Ok(())
}

fn menu_and_acl_parse_and_the_acl_grants_only_the_status_file_and_its_uci() -> common::Ran {
    let root = "luci-app-throttlewatch/root/usr/share";
    let menu: Value = serde_json::from_str(&read(&feed(&format!(
        "{root}/luci/menu.d/luci-app-throttlewatch.json"
    ))))
    .expect("menu.d JSON parses");
    let acl: Value = serde_json::from_str(&read(&feed(&format!(
        "{root}/rpcd/acl.d/luci-app-throttlewatch.json"
    ))))
    .expect("acl.d JSON parses");

    // Status -> Throttlewatch, shown only to sessions holding this app's ACL.
    let top = &menu["admin/status/throttlewatch"];
    assert_eq!(top["depends"]["acl"], json!(["luci-app-throttlewatch"]));
    // Every view the menu names exists.
    let mut paths: Vec<&str> = menu
        .as_object()
        .unwrap()
        .values()
        .filter(|node| node["action"]["type"] == "view")
        .map(|node| node["action"]["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["throttlewatch/settings", "throttlewatch/status"]);
    for path in paths {
        let js =
            feed(&format!("luci-app-throttlewatch/htdocs/luci-static/resources/view/{path}.js"));
        assert!(js.is_file(), "menu names {path}, but {} is missing", js.display());
    }

    // Exactly: read the status file and the throttlewatch UCI package, write that package.
    let expected = json!({
        "luci-app-throttlewatch": {
            "description": acl["luci-app-throttlewatch"]["description"],
            "read": {
                "file": { STATUS_FILE: ["read"] },
                "uci": ["throttlewatch"]
            },
            "write": { "uci": ["throttlewatch"] }
        }
    });
    assert_eq!(acl, expected, "the ACL grants more (or other) than the status file and its UCI");
    assert!(acl["luci-app-throttlewatch"]["description"].is_string());

    // The file the ACL grants is the one the view reads and the daemon writes by default.
    assert!(read(&views()[0]).contains(&format!("'{STATUS_FILE}'")));
    assert!(
        read(&feed("throttlewatch/files/throttlewatch.config"))
            .contains(&format!("option status '{STATUS_FILE}'"))
    );
    Ok(())
}

fn settings_form_edits_only_options_the_daemon_reads() -> common::Ran {
    // The daemon refuses unknown UCI options; its unit tests read the shipped sample, which
    // these tests keep equal to the installed file: so every option the form writes must be
    // one the sample sets (`option NAME` or, for interfaces, `list NAME`).
    let settings = read(&views()[1]);
    let config = read(&feed("throttlewatch/files/throttlewatch.config"));
    let names: Vec<&str> = settings
        .split("s.option(")
        .skip(1)
        .map(|call| call.split('\'').nth(1).expect("s.option(Widget, 'name', ...)"))
        .collect();
    assert_eq!(
        names,
        [
            "enabled",
            "interface",
            "window",
            "snaplen",
            "control_sample",
            "listen",
            "user",
            "history"
        ]
    );
    for name in names {
        assert!(
            config.contains(&format!("\toption {name} '"))
                || config.contains(&format!("\tlist {name} '")),
            "the form edits {name:?}, which the shipped config does not set"
        );
    }
    assert!(settings.contains("form.NamedSection, 'main', 'throttlewatch'"));
    assert!(config.contains("config throttlewatch 'main'"));
    Ok(())
}

fn shell_scripts_parse_and_sh_catches_an_error() -> common::Ran {
    let dir = common::synth::scratch("shell-syntax");
    for script in shell_scripts() {
        let out = run(Command::new("sh").arg("-n").arg(&script));
        assert!(out.status.success(), "sh -n {}: {}", script.display(), text(&out));
    }
    // sh -n must catch an error: an `if` left open.
    let broken = dir.join("broken.sh");
    std::fs::write(&broken, format!("{}\nif true; then\n", read(&shell_scripts()[1]))).unwrap();
    assert!(!run(Command::new("sh").arg("-n").arg(&broken)).status.success());
    Ok(())
}

fn shell_scripts_are_shfmt_clean() -> common::Ran {
    available("shfmt", &["--version"], "shfmt")?;
    let dir = common::synth::scratch("shell-shfmt");
    // POSIX sh, indented with tabs (-i 0), as OpenWrt's scripts are.
    for script in shell_scripts() {
        let out = run(Command::new("shfmt").args(["-d", "-ln", "posix", "-i", "0"]).arg(&script));
        assert!(out.status.success(), "shfmt -d {}:\n{}", script.display(), text(&out));
    }
    // The scripts that build the router binaries and the OpenWrt packages: bash, indented
    // with four spaces.
    let packaging = common::root().join("packaging");
    let mut build_scripts = vec![packaging.join("release.sh"), packaging.join("release-check.sh")];
    for name in ["build.sh", "check.sh", "libpcap.sh", "musl.sh"] {
        build_scripts.push(packaging.join("cross").join(name));
    }
    for script in &build_scripts {
        let out = run(Command::new("shfmt").args(["-d", "-i", "4"]).arg(script));
        assert!(out.status.success(), "shfmt -d -i 4 {}:\n{}", script.display(), text(&out));
    }
    // ... and must object to the same script indented with spaces.
    let spaced = dir.join("spaced.sh");
    std::fs::write(&spaced, read(&shell_scripts()[1]).replace('\t', "    ")).unwrap();
    let out = run(Command::new("shfmt").args(["-d", "-ln", "posix", "-i", "0"]).arg(&spaced));
    assert!(!out.status.success(), "shfmt -d accepted space indentation");
    Ok(())
}

fn makefiles_have_the_expected_variables() -> common::Ran {
    let pkg = read(&feed("throttlewatch/Makefile"));
    for needle in [
        "include $(TOPDIR)/rules.mk",
        "PKG_NAME:=throttlewatch",
        &format!("PKG_VERSION:={}", env!("CARGO_PKG_VERSION")),
        "PKG_SOURCE_PROTO:=git",
        "PKG_LICENSE:=MIT OR Apache-2.0",
        "PKG_LICENSE_FILES:=LICENSE-MIT LICENSE-APACHE",
        "PKG_BUILD_DEPENDS:=rust/host",
        "include $(INCLUDE_DIR)/package.mk",
        "include $(TOPDIR)/feeds/packages/lang/rust/rust-package.mk",
        "DEPENDS:=$(RUST_ARCH_DEPENDS) +libpcap",
        "USERID:=throttlewatch=",
        "define Package/throttlewatch/conffiles\n/etc/config/throttlewatch\nendef",
        "$(PKG_INSTALL_DIR)/bin/throttlewatch $(1)/usr/bin/throttlewatch",
        "./files/throttlewatch.config $(1)/etc/config/throttlewatch",
        "./files/throttlewatch.init $(1)/etc/init.d/throttlewatch",
        // The router build: live capture, no HTML report (the size budget's feature set).
        "define Build/Compile\n\t$(call Build/Compile/Cargo,,--no-default-features --features pcap)\nendef",
        "$(eval $(call RustBinPackage,throttlewatch))",
        "$(eval $(call BuildPackage,throttlewatch))",
    ] {
        assert!(pkg.contains(needle), "openwrt/throttlewatch/Makefile lacks {needle:?}");
    }
    // The licence files it names are at the top of the tree the package is built from.
    for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(common::root().join(file).is_file(), "PKG_LICENSE_FILES names {file}: missing");
    }
    let luci = read(&feed("luci-app-throttlewatch/Makefile"));
    for needle in [
        "include $(TOPDIR)/rules.mk",
        "LUCI_TITLE:=",
        "LUCI_DEPENDS:=+throttlewatch +luci-base",
        "PKG_LICENSE:=MIT OR Apache-2.0",
        "include $(TOPDIR)/feeds/luci/luci.mk",
        "# call BuildPackage",
    ] {
        assert!(luci.contains(needle), "openwrt/luci-app-throttlewatch/Makefile lacks {needle:?}");
    }
    // make needs recipe lines (the install steps) to start with a tab.
    for (name, makefile) in [("throttlewatch", &pkg), ("luci-app-throttlewatch", &luci)] {
        for line in makefile.lines() {
            assert!(
                !(line.starts_with(' ') && line.trim_start().starts_with("$(")),
                "{name}/Makefile: recipe line not indented with a tab: {line:?}"
            );
        }
    }
    // The installed UCI file is the sample the daemon is tested with, unchanged.
    assert_eq!(
        read(&feed("throttlewatch/files/throttlewatch.config")),
        read(&common::root().join("samples/throttlewatch.uci")),
        "files/throttlewatch.config differs from samples/throttlewatch.uci"
    );
    Ok(())
}

/// The Makefile's source selection, run by make: the local tree by default; with TW_GIT_URL, a
/// git download of TW_GIT_REV, which has no default (no tag is published) and whose absence
/// stops make with a message that says what to set.
fn makefile_builds_a_git_source_only_at_a_named_revision() -> common::Ran {
    available("make", &["--version"], "make")?;
    let pkg = read(&feed("throttlewatch/Makefile"));
    let start = pkg.find("TW_GIT_URL?=").expect("Makefile: no TW_GIT_URL?=");
    let end =
        start + pkg[start..].find("\nendif\n").expect("Makefile: no endif after TW_GIT_URL?=");
    let dir = common::synth::scratch("makefile-source");
    let fragment = dir.join("source.mk");
    std::fs::write(
        &fragment,
        format!(
            "{}\nendif\nshow:\n\t@echo 'proto=$(PKG_SOURCE_PROTO) url=$(PKG_SOURCE_URL) rev=$(PKG_SOURCE_VERSION) tree=$(TW_TREE)'\n",
            &pkg[start..end]
        ),
    )
    .unwrap();
    let make = |args: &[&str]| {
        run(Command::new("make")
            .args(["-s", "-f"])
            .arg(&fragment)
            .args(args)
            .arg("show")
            .current_dir(feed("throttlewatch"))
            .env_remove("TW_GIT_URL")
            .env_remove("TW_GIT_REV"))
    };
    let local = make(&[]);
    assert!(local.status.success(), "{}", text(&local));
    let tree = common::root().canonicalize().unwrap();
    assert_eq!(text(&local).trim(), format!("proto= url= rev= tree={}", tree.display()));
    let git = make(&["TW_GIT_URL=file:///srv/throttlewatch", "TW_GIT_REV=0123abcd"]);
    assert!(git.status.success(), "{}", text(&git));
    assert_eq!(text(&git).trim(), "proto=git url=file:///srv/throttlewatch rev=0123abcd tree=");
    let no_rev = make(&["TW_GIT_URL=file:///srv/throttlewatch"]);
    assert!(!no_rev.status.success(), "a git source without TW_GIT_REV was accepted");
    assert!(
        text(&no_rev).contains("TW_GIT_URL is set but TW_GIT_REV is not"),
        "unclear message: {}",
        text(&no_rev)
    );
    Ok(())
}

/// Source the init script under `shell` with procd, UCI and the file-system commands stubbed
/// (each stub appends a line to a log), call `function`, and return the log.
fn init_script(shell: &[&str], function: &str, env: &[(&str, &str)]) -> String {
    let dir = common::synth::scratch(&format!("init-{}-{function}", shell.join("-")));
    let log = dir.join("calls.log");
    std::fs::write(&log, "").unwrap();
    // Stands in for /etc/rc.common, /lib/functions.sh and /lib/functions/procd.sh.
    let stubs = r#"
log() { echo "$*" >>"$LOG"; }
config_load() { log "config_load $*"; }
config_get_bool() {
	[ "$2 $3" = "main enabled" ] || log "unexpected config_get_bool $*"
	eval "$1=\${TW_ENABLED-\$4}"
}
config_get() {
	[ "$2 $3" = "main user" ] || log "unexpected config_get $*"
	eval "$1=\${TW_USER-\$4}"
}
mkdir() { log "mkdir $*"; }
chmod() { log "chmod $*"; }
chown() { log "chown $*"; }
procd_open_instance() { log "open_instance"; }
procd_set_param() { log "param $*"; }
procd_close_instance() { log "close_instance"; }
procd_add_reload_trigger() { log "reload_trigger $*"; }
procd_running() { log "running? $*"; [ "$TW_RUNNING" = 1 ]; }
procd_send_signal() { log "signal $*"; }
start() { log "start"; }
stop() { log "stop"; }
. "$INIT"
"$FUNCTION"
"#;
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg("-c")
        .arg(stubs)
        .env("LOG", &log)
        .env("INIT", feed("throttlewatch/files/throttlewatch.init"))
        .env("FUNCTION", function)
        .env_remove("TW_ENABLED")
        .env_remove("TW_USER")
        .env_remove("TW_RUNNING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{shell:?} {function}: {}", text(&out));
    read(&log)
}

fn check_init_script(shell: &[&str]) {
    // Enabled: the state folder for the default user, then one procd instance.
    let log = init_script(shell, "start_service", &[("TW_ENABLED", "1")]);
    let expected = "\
config_load throttlewatch
mkdir -p /var/run/throttlewatch
chmod 0750 /var/run/throttlewatch
chown throttlewatch: /var/run/throttlewatch
open_instance
param command /usr/bin/throttlewatch run --uci /etc/config/throttlewatch
param file /etc/config/throttlewatch
param respawn 3600 5 5
param stdout 1
param stderr 1
param no_new_privs 1
param term_timeout 10
close_instance
";
    assert_eq!(log, expected, "{shell:?}: start_service, enabled");

    // Another user; and '' keeps root, so nothing is given away.
    let log = init_script(shell, "start_service", &[("TW_ENABLED", "1"), ("TW_USER", "nobody")]);
    assert!(log.contains("chown nobody: /var/run/throttlewatch\n"), "{log}");
    let log = init_script(shell, "start_service", &[("TW_ENABLED", "1"), ("TW_USER", "")]);
    assert!(!log.contains("chown") && log.contains("param command"), "{log}");

    // Disabled (or `enabled` missing: the default is off): no instance.
    for env in [&[("TW_ENABLED", "0")][..], &[]] {
        let log = init_script(shell, "start_service", env);
        assert_eq!(log, "config_load throttlewatch\n", "{shell:?}: start_service, {env:?}");
    }

    // Config changes reload: SIGHUP to a running daemon, a start otherwise, a stop if disabled.
    let log = init_script(shell, "reload_service", &[("TW_ENABLED", "1"), ("TW_RUNNING", "1")]);
    assert!(log.ends_with("running? throttlewatch\nsignal throttlewatch * HUP\n"), "{log}");
    let log = init_script(shell, "reload_service", &[("TW_ENABLED", "1"), ("TW_RUNNING", "0")]);
    assert!(log.ends_with("running? throttlewatch\nstart\n"), "{log}");
    let log = init_script(shell, "reload_service", &[("TW_ENABLED", "0"), ("TW_RUNNING", "1")]);
    assert!(log.ends_with("stop\n") && !log.contains("signal"), "{log}");

    let log = init_script(shell, "service_triggers", &[]);
    assert_eq!(log, "reload_trigger throttlewatch\n");

    let init = read(&feed("throttlewatch/files/throttlewatch.init"));
    for needle in ["#!/bin/sh /etc/rc.common\n", "\nSTART=95\n", "\nUSE_PROCD=1\n"] {
        assert!(init.contains(needle), "the init script lacks {needle:?}");
    }
}

fn init_script_drives_procd_as_documented() -> common::Ran {
    check_init_script(&["sh"]);
    Ok(())
}

/// OpenWrt's shell is busybox ash.
fn init_script_drives_procd_under_busybox_ash() -> common::Ran {
    available("busybox", &["true"], "busybox")?;
    check_init_script(&["busybox", "sh"]);
    Ok(())
}

fn package_test(shell: &[&str], version: &str) -> Output {
    let bin_dir = common::binary().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    run(Command::new(shell[0])
        .args(&shell[1..])
        .arg(feed("throttlewatch/test.sh"))
        .args(["throttlewatch", version])
        .env("PATH", path))
}

fn package_test_script_passes_on_this_build() -> common::Ran {
    check_package_test(&["sh"]);
    Ok(())
}

fn package_test_script_passes_under_busybox_ash() -> common::Ran {
    available("busybox", &["true"], "busybox")?;
    check_package_test(&["busybox", "sh"]);
    Ok(())
}

fn check_package_test(shell: &[&str]) {
    let out = package_test(shell, env!("CARGO_PKG_VERSION"));
    assert!(out.status.success(), "{shell:?} test.sh: {}", text(&out));
    assert!(text(&out).contains("analyze read the trace"), "{}", text(&out));
    // A wrong version fails, so the version check is real.
    let out = package_test(shell, "0.0.0-not-this");
    assert!(!out.status.success(), "test.sh accepted a wrong version: {}", text(&out));
}

/// What the harness page left after rendering the status view in headless Chromium.
struct Rendered {
    /// The view's HTML at the end.
    html: String,
    /// Its text as shown, before and after the poll function ran.
    first: String,
    last: String,
    polls: String,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from =
        dom.find(start).unwrap_or_else(|| panic!("{start} not in the page:\n{dom}")) + start.len();
    let len = dom[from..].find(end).unwrap_or_else(|| panic!("{end} not in the page:\n{dom}"));
    &dom[from..from + len]
}

/// Render the status view with the status file's text (None: the file is missing) and,
/// when `after` is given, the text the poll function then finds; Chromium must be there.
fn render(
    name: &str,
    status: Option<&str>,
    after: Option<Option<&str>>,
) -> Result<Rendered, common::Missing> {
    available("chromium", &["--version"], "chromium")?;
    let dir = common::synth::scratch(&format!("luci-{name}"));
    let tests = feed("luci-app-throttlewatch/tests");
    for file in ["harness.html", "luci-shim.js"] {
        std::fs::copy(tests.join(file), dir.join(file)).unwrap();
    }
    let mut fixture = json!({ "source": read(&views()[0]), "status": status });
    if let Some(after) = after {
        fixture["after"] = json!(after);
    }
    std::fs::write(dir.join("fixture.js"), format!("var FIXTURE = {fixture};\n")).unwrap();

    // file:// only; no host name resolves, so the browser reaches no address at all.
    let dom_path = dir.join("dom.html");
    let mut child = common::offline_chromium(&dir.join("profile"))
        .args(["--virtual-time-budget=10000", "--dump-dom"])
        .arg(format!("file://{}", dir.join("harness.html").display()))
        .stdout(File::create(&dom_path).unwrap())
        .stderr(File::create(dir.join("chromium.log")).unwrap())
        .spawn()
        .expect("chromium starts");
    let status = common::finish_within_two_minutes(&mut child, &dir.join("chromium.log"));
    assert!(status.success(), "chromium failed: {}", read(&dir.join("chromium.log")));

    let dom = read(&dom_path);
    assert_eq!(
        between(&dom, "<pre id=\"done\">", "</pre>"),
        "done",
        "the harness did not finish:\n{dom}"
    );
    let errors = unescape(between(&dom, "<pre id=\"errors\">", "</pre>"));
    assert!(errors.is_empty(), "the view threw:\n{errors}");
    Ok(Rendered {
        html: between(&dom, "<div id=\"view\">", "<pre id=\"first\">").to_string(),
        first: unescape(between(&dom, "<pre id=\"first\">", "</pre>")),
        last: unescape(between(&dom, "<pre id=\"last\">", "</pre>")),
        polls: between(&dom, "<pre id=\"polls\">", "</pre>").to_string(),
    })
}

fn sample_status() -> String {
    read(&feed("luci-app-throttlewatch/tests/status.sample.json"))
}

fn status_view_renders_the_latest_verdicts_in_plain_words() -> common::Ran {
    let sample = sample_status();
    assert_eq!(serde_json::from_str::<Value>(&sample).unwrap()["schema"], "throttlewatch.status/1");
    let page = render("sample", Some(&sample), None)?;
    let text = &page.first;
    for needle in [
        // Services by name, the worst first.
        "WhatsApp",
        "Telegram",
        "Signal",
        // The finding's badge, the summary, the confidence, the mechanism in words, evidence.
        "Throttled whatsapp: downloads policed at ~128 kbit/s (3 flow(s), burst ~30 kB); \
         control traffic reached ~3.3 Mbit/s",
        "Confidence: 90 %",
        "How: a policer drops packets above a fixed rate",
        "rate 128 kbit/s",
        "control max goodput 3.3 Mbit/s",
        "Example flows (ids in the events file): 10, 11, 18",
        "Window: 2026-11-27 18:04:00 – 18:05:00 UTC",
        // Inconclusive with its reason; none with what was checked (and a p-value).
        "Inconclusive telegram: inconclusive: no control call to compare with",
        "Not decided (calls): no control call to compare with",
        "No interference seen signal: no sign of interference (2 checks)",
        "p-value (ks) 0.42",
        // A service of the catalogue without traffic.
        "No traffic seen in the latest windows from: Discord.",
        // The offload warning and the capture's drops.
        "Flow offloading is on: Software flow offloading is enabled: forwarded connections \
         bypass the capture after their first packets, so verdicts cannot be trusted.",
        "br-lan\t123456\t17\t0",
        "The capture lost packets",
        "Flows tracked: 42 / 65536",
    ] {
        assert!(text.contains(needle), "the view lacks {needle:?}; it shows:\n{text}");
    }
    let at = |needle: &str| text.find(needle).unwrap();
    assert!(at("WhatsApp") < at("Telegram") && at("Telegram") < at("Signal"), "{text}");
    // Only findings carry a confidence; an older window of a service is not shown.
    assert_eq!(text.matches("Confidence:").count(), 1, "{text}");
    assert!(!text.contains("superseded"), "{text}");
    // The offload warning comes before any verdict, as an error box; the badge is marked.
    let html = &page.html;
    let offload = html.find("throttlewatch-offload").expect("offload box");
    assert!(offload < html.find("Latest verdict per service").unwrap(), "{html}");
    assert!(html.contains("class=\"alert-message error throttlewatch-offload\""), "{html}");
    assert!(html.contains("<span class=\"label important\">Throttled</span>"), "{html}");
    // The chart of the latest windows, where the status has them (WhatsApp only): the
    // service's and the control traffic's throughput as two lines, a mark per window by
    // finding, each named on hover; drawn as SVG, before the verdicts.
    assert_eq!(html.matches("class=\"throttlewatch-chart\"").count(), 1, "{html}");
    let chart = between(html, "<svg class=\"throttlewatch-chart\"", "</svg>");
    assert_eq!(chart.matches("<polyline").count(), 2, "{chart}");
    assert!(chart.contains("class=\"throttlewatch-target_bps\""), "{chart}");
    assert_eq!(chart.matches("data-finding=\"none\"").count(), 8, "{chart}");
    assert_eq!(chart.matches("data-finding=\"inconclusive\"").count(), 1, "{chart}");
    assert_eq!(chart.matches("data-finding=\"throttled\"").count(), 3, "{chart}");
    assert!(chart.contains("<title>2026-11-27 18:05:00 UTC: Throttled</title>"), "{chart}");
    assert!(html.find("throttlewatch-chart").unwrap() < html.find("Confidence:").unwrap());
    assert!(text.contains("Latest 12 windows, oldest left"), "{text}");
    assert!(text.contains("up to 3.3 Mbit/s"), "{text}");
    assert_eq!(page.polls, "10", "the view polls every 10 s");
    Ok(())
}

fn status_view_explains_a_missing_or_unreadable_status_file() -> common::Ran {
    // Missing at first: a message; the next poll finds the file and shows the verdicts.
    let sample = sample_status();
    let page = render("missing", None, Some(Some(&sample)))?;
    assert!(
        page.first.contains(&format!(
            "No status yet: {STATUS_FILE} does not exist. Is throttlewatch enabled and running"
        )),
        "{}",
        page.first
    );
    assert!(!page.first.contains("WhatsApp"), "{}", page.first);
    assert!(
        page.last.contains("Confidence: 90 %") && !page.last.contains("No status yet"),
        "{}",
        page.last
    );

    // Not JSON, then JSON of another schema: each says what is wrong.
    let other = sample.replace("throttlewatch.status/1", "throttlewatch.status/9");
    let page = render("unreadable", Some("{\"schema\": "), Some(Some(&other)))?;
    assert!(
        page.first.contains(&format!("The status file {STATUS_FILE} is not valid JSON")),
        "{}",
        page.first
    );
    assert!(
        page.last.contains("is not of the expected format (throttlewatch.status/1)"),
        "{}",
        page.last
    );

    // The file disappears while the page is open.
    let page = render("vanished", Some(&sample), Some(None))?;
    assert!(
        page.first.contains("WhatsApp") && page.last.contains("No status yet"),
        "{}",
        page.last
    );
    Ok(())
}

fn status_view_shows_text_from_the_file_as_text() -> common::Ran {
    // A summary with markup (a catalogue is user-editable) must not become HTML.
    let sample = sample_status().replace(
        "telegram: inconclusive: no control call to compare with\"",
        "<img src=x onerror=document.title='owned'> & <b>bold</b>\"",
    );
    let page = render("markup", Some(&sample), None)?;
    assert!(
        page.first.contains("<img src=x onerror=document.title='owned'> & <b>bold</b>"),
        "{}",
        page.first
    );
    assert!(!page.html.contains("<b>bold</b>") && !page.html.contains("<img"), "{}", page.html);
    Ok(())
}
