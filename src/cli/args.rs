//! The command line's declaration: the commands, each option once (name, value, range,
//! default, help line), and the typed arguments read back from it. `--help` is generated from
//! these tables (parse.rs), so what is declared here is what the help shows.

use std::ffi::OsString;
use std::path::PathBuf;

use throttlewatch::config::{self, Overrides, Section};
use throttlewatch::time::Timestamp;

use super::parse::{Choice, Command, Kind, Matches, Operands, Opt, Parsed, Program, UsageError};

/// Evaluation windows allowed, in seconds (as the configuration file's `window_s`).
const WINDOW_S_MIN: u64 = 1;
const WINDOW_S_MAX: u64 = 86_400;

/// Most threads `analyze --jobs` starts.
const JOBS_MAX: u64 = 256;

/// The report formats of `analyze --format`, in the order of [`FORMAT_CHOICES`].
const FORMATS: [Format; 4] = [Format::Human, Format::Json, Format::Jsonl, Format::Html];
const FORMAT_CHOICES: [Choice; 4] = [
    Choice { name: "human", help: "The answer in words, then short tables, for people" },
    Choice { name: "json", help: "One JSON document, schema throttlewatch.report/1" },
    Choice {
        name: "jsonl",
        help: "JSON lines written while the trace is read (flows, verdicts, calls, a summary): \
               memory holds the flow table, not the trace",
    },
    Choice {
        name: "html",
        help: "One self-contained page: the answer, a plot of each verdict's evidence, the \
               tables (inline SVG and CSS, no script; not in router builds)",
    },
];

// `analyze`
const FORMAT: Opt = Opt::new(
    "format",
    Kind::Choice { value_name: "FORMAT", choices: &FORMAT_CHOICES, default: 0 },
    "Output format",
);
const SERVICES: Opt = Opt::new(
    "services",
    Kind::Path("FILE"),
    "Service catalogue (TOML) to use instead of the built-in one",
);
const MAX_FLOWS: Opt = Opt::new(
    "max-flows",
    Kind::Integer {
        value_name: "N",
        min: 1,
        max: config::MAX_MAX_FLOWS as u64,
        default: Some(config::DEFAULT_MAX_FLOWS as u64),
    },
    "Most flows held at once; beyond it idle flows are evicted and new ones refused",
);
const DETAIL_FLOWS: Opt = Opt::new(
    "detail-flows",
    Kind::Integer {
        value_name: "N",
        min: 0,
        max: config::MAX_MAX_FLOWS as u64,
        default: Some(config::DEFAULT_DETAIL_FLOWS as u64),
    },
    "Flows that keep throughput bins and windowed RTTs at once",
);
const BIN_MS: Opt = Opt::new(
    "bin-ms",
    Kind::Integer { value_name: "MS", min: 10, max: 60_000, default: Some(config::DEFAULT_BIN_MS) },
    "Width of a throughput bin in milliseconds",
);
const ALL: Opt = Opt::new(
    "all",
    Kind::Switch,
    "Human format: list every flow, not only the first messenger flows",
);
const OUTPUT: Opt = Opt::new(
    "output",
    Kind::Path("FILE"),
    "Write the report to FILE instead of standard output (an existing FILE is replaced only \
     with --force)",
)
.short('o');
const FORCE: Opt =
    Opt::new("force", Kind::Switch, "With --output: replace an existing FILE").requires("output");
const FAIL_ON_FINDING: Opt = Opt::new(
    "fail-on-finding",
    Kind::Switch,
    "Exit with status 3 when a verdict reports a finding (not none/inconclusive)",
);
const ANALYZE_WINDOW: Opt = Opt::new(
    "window",
    Kind::Integer { value_name: "S", min: WINDOW_S_MIN, max: WINDOW_S_MAX, default: None },
    "Evaluation window in seconds (packet time); overrides the configuration file",
);
const WINDOW_ORIGIN: Opt = Opt::new(
    "window-origin",
    Kind::UnixSeconds("UNIX_S"),
    "Start of the first window, in Unix seconds (e.g. 1795805164.166779): align the windows \
     with a daemon's (its verdict events give their windows); default: the first packet",
);
const JOBS: Opt = Opt::new(
    "jobs",
    Kind::Integer { value_name: "N", min: 1, max: JOBS_MAX, default: None },
    "Threads that measure the packets, sharing the file's reading and each measuring its own \
     flows (default 1: two are not yet 1.5 times as fast as one); standard input and pipes \
     are read by one thread; the results are the same for every N",
)
.short('j');
const ANALYZE_CONFIG: Opt = Opt::new(
    "config",
    Kind::Path("FILE"),
    "Configuration file (TOML); its [detect] table sets detector thresholds \
     (see samples/throttlewatch.toml)",
);
const ANALYZE_HISTORY: Opt = Opt::new(
    "history",
    Kind::Path("FILE"),
    "Per-service history of bulk goodput per hour (JSON): read if it exists, updated after",
);

// `run`
const RUN_CONFIG: Opt = Opt::new(
    "config",
    Kind::Path("FILE"),
    "Configuration file (TOML: [daemon] and [detect]; see samples/throttlewatch.toml)",
)
.conflicts_with("uci");
const UCI: Opt = Opt::new(
    "uci",
    Kind::Path("FILE"),
    "OpenWrt UCI configuration file (e.g. /etc/config/throttlewatch)",
);
const INTERFACE: Opt = Opt::new(
    "interface",
    Kind::TextList("IFACE"),
    "Interface to capture on (repeatable); replaces the file's list",
)
.short('i');
const RUN_WINDOW: Opt = Opt::new(
    "window",
    Kind::Integer { value_name: "S", min: WINDOW_S_MIN, max: WINDOW_S_MAX, default: None },
    "Evaluation window in seconds",
);
const EVENTS: Opt = Opt::new(
    "events",
    Kind::Text("PATH"),
    "Verdict events as JSON lines: a file appended to, or - for stdout",
);
const STATUS: Opt = Opt::new(
    "status",
    Kind::Text("PATH"),
    "Status file (JSON, replaced atomically after every window)",
);
const METRICS_FILE: Opt = Opt::new("metrics-file", Kind::Text("PATH"), "Prometheus textfile");
const LISTEN: Opt = Opt::new(
    "listen",
    Kind::Text("ADDR"),
    "Serve /metrics on IP:PORT (loopback unless the file allows more)",
);
const RUN_SERVICES: Opt = Opt::new(
    "services",
    Kind::Text("FILE"),
    "Service catalogue (TOML) instead of the built-in one",
);
const USER: Opt =
    Opt::new("user", Kind::Text("NAME"), "Switch to this user once the captures are open");
const SNAPLEN: Opt = Opt::new(
    "snaplen",
    Kind::Integer { value_name: "N", min: 0, max: u32::MAX as u64, default: None },
    "Bytes captured per packet",
);
const CONTROL_SAMPLE: Opt = Opt::new(
    "control-sample",
    Kind::Integer { value_name: "N", min: 0, max: u32::MAX as u64, default: None },
    "Capture 1 control flow in N (1, 2, 4, ..., 64; 1 = everything, no filter)",
);
const RUN_HISTORY: Opt =
    Opt::new("history", Kind::Text("FILE"), "Per-service history of bulk goodput (JSON)");

/// `run`'s options that set a key of the configuration (declared in src/config, once), each
/// with its key: given, the value lies over the file's (also after a reload). The link is
/// checked by a test: every key exists, with the option's type.
const RUN_OVERRIDES: [(Opt, Section, &str); 11] = [
    (INTERFACE, Section::Daemon, "interfaces"),
    (RUN_WINDOW, Section::Detect, "window_s"),
    (EVENTS, Section::Daemon, "events"),
    (STATUS, Section::Daemon, "status"),
    (METRICS_FILE, Section::Daemon, "metrics_file"),
    (LISTEN, Section::Daemon, "listen"),
    (RUN_SERVICES, Section::Daemon, "services"),
    (USER, Section::Daemon, "user"),
    (SNAPLEN, Section::Daemon, "snaplen"),
    (CONTROL_SAMPLE, Section::Daemon, "control_sample"),
    (RUN_HISTORY, Section::Daemon, "history"),
];

/// Which command the line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandId {
    Analyze,
    Run,
}

const PROGRAM: Program<CommandId> = Program {
    name: "throttlewatch",
    version: env!("CARGO_PKG_VERSION"),
    about: "Detect throttling of messenger services from the packets crossing a router",
    commands: &[
        Command {
            id: CommandId::Analyze,
            name: "analyze",
            about: "Analyze pcap/pcapng trace files and report every flow to a messenger service",
            operands: Some(Operands {
                value_name: "FILE",
                help: "Trace files (pcap or pcapng, recognised by content), read in order as \
                       one capture; - reads standard input (tcpdump -w - | throttlewatch \
                       analyze -)",
            }),
            options: &[
                FORMAT,
                SERVICES,
                MAX_FLOWS,
                DETAIL_FLOWS,
                BIN_MS,
                ALL,
                OUTPUT,
                FORCE,
                FAIL_ON_FINDING,
                ANALYZE_WINDOW,
                WINDOW_ORIGIN,
                JOBS,
                ANALYZE_CONFIG,
                ANALYZE_HISTORY,
            ],
        },
        Command {
            id: CommandId::Run,
            name: "run",
            about: "Watch live interfaces: verdict events, a status file, Prometheus metrics",
            operands: None,
            options: &[
                RUN_CONFIG,
                UCI,
                INTERFACE,
                RUN_WINDOW,
                EVENTS,
                STATUS,
                METRICS_FILE,
                LISTEN,
                RUN_SERVICES,
                USER,
                SNAPLEN,
                CONTROL_SAMPLE,
                RUN_HISTORY,
            ],
        },
    ],
};

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    Analyze(AnalyzeArgs),
    Run(RunArgs),
    /// Print this (the help or the version) to standard output; exit status 0.
    Print(String),
}

/// `analyze`'s arguments.
#[derive(Debug)]
pub struct AnalyzeArgs {
    pub files: Vec<PathBuf>,
    pub format: Format,
    pub services: Option<PathBuf>,
    pub max_flows: usize,
    pub detail_flows: usize,
    pub bin_ms: u64,
    pub all: bool,
    /// Where the report goes (`None`: standard output), and whether it may replace a file.
    pub output: Option<PathBuf>,
    pub force: bool,
    pub fail_on_finding: bool,
    pub window_s: Option<u64>,
    pub window_origin: Option<Timestamp>,
    /// `--jobs`; `None`: one.
    pub jobs: Option<usize>,
    pub config: Option<PathBuf>,
    pub history: Option<PathBuf>,
}

/// `run`'s arguments (unread in a build without live capture, which refuses `run`).
#[derive(Debug)]
#[cfg_attr(not(feature = "pcap"), allow(dead_code))]
pub struct RunArgs {
    pub config: Option<PathBuf>,
    pub uci: Option<PathBuf>,
    /// The keys [`RUN_OVERRIDES`] set.
    pub overrides: Overrides,
}

/// `analyze --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Jsonl,
    Html,
}

/// An option declared with a default: its value (the declaration guarantees one).
fn defaulted(m: &Matches, opt: &Opt) -> u64 {
    m.integer(opt).unwrap_or_else(|| unreachable!("--{} is declared with a default", opt.long))
}

/// The configuration keys the line set, typed as the options are.
fn overrides(m: &Matches) -> Overrides {
    let mut overrides = Overrides::default();
    for (opt, section, key) in &RUN_OVERRIDES {
        let value = match opt.kind {
            Kind::TextList(_) => Some(m.texts(opt)).filter(|list| !list.is_empty()).map(|list| {
                toml::Value::Array(list.into_iter().map(toml::Value::String).collect())
            }),
            Kind::Text(_) => m.text(opt).map(toml::Value::String),
            // Declared ranges fit an i64; a value beyond is refused by the key's type.
            Kind::Integer { .. } => {
                m.integer(opt).map(|n| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
            }
            Kind::Switch | Kind::Path(_) | Kind::Choice { .. } | Kind::UnixSeconds(_) => None,
        };
        if let Some(value) = value {
            overrides.set(*section, key, value);
        }
    }
    overrides
}

/// Parses a whole command line (`args[0]` is the program's name).
pub fn parse(args: &[OsString]) -> Result<Invocation, UsageError> {
    Ok(match PROGRAM.parse(args)? {
        Parsed::Print(text) => Invocation::Print(text),
        Parsed::Command(CommandId::Analyze, m) => Invocation::Analyze(AnalyzeArgs {
            files: m.operands(),
            format: FORMATS[m.choice(&FORMAT)],
            services: m.path(&SERVICES),
            // Within MAX_MAX_FLOWS, which is a usize.
            max_flows: defaulted(&m, &MAX_FLOWS) as usize,
            detail_flows: defaulted(&m, &DETAIL_FLOWS) as usize,
            bin_ms: defaulted(&m, &BIN_MS),
            all: m.switch(&ALL),
            output: m.path(&OUTPUT),
            force: m.switch(&FORCE),
            fail_on_finding: m.switch(&FAIL_ON_FINDING),
            window_s: m.integer(&ANALYZE_WINDOW),
            window_origin: m.timestamp(&WINDOW_ORIGIN),
            // Within JOBS_MAX.
            jobs: m.integer(&JOBS).map(|n| n as usize),
            config: m.path(&ANALYZE_CONFIG),
            history: m.path(&ANALYZE_HISTORY),
        }),
        Parsed::Command(CommandId::Run, m) => Invocation::Run(RunArgs {
            config: m.path(&RUN_CONFIG),
            uci: m.path(&UCI),
            overrides: overrides(&m),
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt as _;

    use throttlewatch::config::ConfigFile;

    use super::*;

    fn parse_line(args: &[&str]) -> Result<Invocation, UsageError> {
        let line: Vec<OsString> = std::iter::once("throttlewatch")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&line)
    }

    fn analyze(args: &[&str]) -> AnalyzeArgs {
        match parse_line(args) {
            Ok(Invocation::Analyze(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn run(args: &[&str]) -> RunArgs {
        match parse_line(args) {
            Ok(Invocation::Run(r)) => r,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn printed(args: &[&str]) -> String {
        match parse_line(args) {
            Ok(Invocation::Print(text)) => text,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// The usage error's text, checked for the frame every usage error has.
    fn error(args: &[&str]) -> String {
        match parse_line(args) {
            Err(UsageError(text)) => {
                assert!(text.starts_with("error: "), "{text}");
                assert!(text.contains("\n\nUsage: throttlewatch "), "{text}");
                assert!(text.ends_with("\n\nFor more information, try '--help'.\n"), "{text}");
                text
            }
            Ok(other) => panic!("{args:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn analyze_defaults() {
        let a = analyze(&["analyze", "trace.pcap"]);
        assert_eq!(a.files, [PathBuf::from("trace.pcap")]);
        assert_eq!(a.format, Format::Human);
        assert_eq!(a.services, None);
        assert_eq!(a.max_flows, config::DEFAULT_MAX_FLOWS);
        assert_eq!(a.detail_flows, config::DEFAULT_DETAIL_FLOWS);
        assert_eq!(a.bin_ms, config::DEFAULT_BIN_MS);
        assert!(!a.all && !a.fail_on_finding);
        assert_eq!((a.window_s, a.window_origin), (None, None));
        assert_eq!((a.config, a.history), (None, None));
        assert_eq!(a.jobs, None, "one");
        assert_eq!(analyze(&["analyze", "-j", "3", "x"]).jobs, Some(3));
        assert_eq!(analyze(&["analyze", "--jobs=1", "x"]).jobs, Some(1));
        assert!(error(&["analyze", "-j", "two", "x"]).contains("'--jobs <N>'"));
    }

    #[test]
    fn analyze_every_option() {
        let a = analyze(&[
            "analyze",
            "a.pcap",
            "--format",
            "json",
            "--services=s.toml",
            "--max-flows",
            "100",
            "--detail-flows=0",
            "--bin-ms",
            "10",
            "b.pcapng",
            "--all",
            "--fail-on-finding",
            "--window",
            "86400",
            "--window-origin",
            "1795805164.166779",
            "--config",
            "c.toml",
            "--history",
            "h.json",
            "--",
            "--c.pcap",
            "-",
        ]);
        let files: Vec<PathBuf> = ["a.pcap", "b.pcapng", "--c.pcap", "-"].map(PathBuf::from).into();
        assert_eq!(a.files, files);
        assert_eq!(a.format, Format::Json);
        assert_eq!(a.services, Some(PathBuf::from("s.toml")));
        assert_eq!((a.max_flows, a.detail_flows, a.bin_ms), (100, 0, 10));
        assert!(a.all && a.fail_on_finding);
        assert_eq!(a.window_s, Some(86_400));
        assert_eq!(a.window_origin, Some(Timestamp::from_micros(1_795_805_164_166_779)));
        assert_eq!(a.config, Some(PathBuf::from("c.toml")));
        assert_eq!(a.history, Some(PathBuf::from("h.json")));
        assert_eq!(analyze(&["analyze", "--format=human", "x"]).format, Format::Human);
    }

    #[test]
    fn run_every_option() {
        let r = run(&[
            "run",
            "--config",
            "tw.toml",
            "-i",
            "br-lan",
            "-ieth0",
            "-i=wan",
            "--interface",
            "lo",
            "--interface=wlan0",
            "--window",
            "1",
            "--events",
            "-",
            "--status",
            "/tmp/s.json",
            "--metrics-file",
            "/tmp/m.prom",
            "--listen",
            "127.0.0.1:9737",
            "--services",
            "s.toml",
            "--user",
            "nobody",
            "--snaplen",
            "256",
            "--control-sample",
            "4",
            "--history",
            "h.json",
        ]);
        assert_eq!(r.config, Some(PathBuf::from("tw.toml")));
        assert_eq!(r.uci, None);
        let c = resolved(&r);
        let d = &c.daemon;
        assert_eq!(d.interfaces, ["br-lan", "eth0", "wan", "lo", "wlan0"]);
        assert_eq!(c.detect.window_s, 1);
        assert_eq!(d.events, "-");
        assert_eq!(d.status, "/tmp/s.json");
        assert_eq!(d.metrics_file, "/tmp/m.prom");
        assert_eq!(d.listen, "127.0.0.1:9737");
        assert_eq!(d.services, "s.toml");
        assert_eq!(d.user, "nobody");
        assert_eq!((d.snaplen, d.control_sample), (256, 4));
        assert_eq!(d.history, "h.json");
        let r = run(&["run", "--uci", "/etc/config/throttlewatch"]);
        assert_eq!(r.uci, Some(PathBuf::from("/etc/config/throttlewatch")));
        let r = run(&["run"]);
        assert!(r.config.is_none() && r.uci.is_none());
        assert_eq!(r.overrides, Overrides::default(), "nothing given, nothing overridden");
    }

    /// The configuration `r` gives over the defaults.
    fn resolved(r: &RunArgs) -> ConfigFile {
        r.overrides.apply(ConfigFile::default()).expect("the overrides are keys of the file")
    }

    /// The link between `run`'s options and the configuration's declaration: every option
    /// but the file's own sets a key, each key exists with the option's type, and giving the
    /// option changes that key and no other.
    #[test]
    fn run_options_set_configuration_keys_of_their_type() {
        let run_options = PROGRAM.commands[1].options;
        let linked: Vec<&str> = RUN_OVERRIDES.iter().map(|(o, _, _)| o.long).collect();
        for opt in run_options.iter().filter(|o| !["config", "uci"].contains(&o.long)) {
            assert!(linked.contains(&opt.long), "--{} sets no configuration key", opt.long);
        }
        let defaults = config::layers::to_table(&ConfigFile::default());
        for (opt, section, key) in &RUN_OVERRIDES {
            assert!(
                run_options.iter().any(|o| o.long == opt.long),
                "--{} is not a run option",
                opt.long
            );
            let value = &defaults[section.name()][*key];
            let (arg, expected_type) = match opt.kind {
                Kind::TextList(_) | Kind::Text(_) => {
                    ("64", if matches!(opt.kind, Kind::TextList(_)) { "array" } else { "string" })
                }
                Kind::Integer { .. } => ("64", "integer"),
                _ => panic!("--{}: an option of this kind sets no key", opt.long),
            };
            assert_eq!(
                value.type_str(),
                expected_type,
                "--{} sets [{}] {key}",
                opt.long,
                section.name()
            );
            let given = resolved(&run(&["run", &format!("--{}={arg}", opt.long)]));
            let given = config::layers::to_table(&given);
            for s in [Section::Detect, Section::Daemon] {
                for (k, v) in defaults[s.name()].as_table().unwrap() {
                    let changed = given[s.name()][k.as_str()] != *v;
                    assert_eq!(
                        changed,
                        (s, k.as_str()) == (*section, *key),
                        "--{}: [{}] {k}",
                        opt.long,
                        s.name()
                    );
                }
            }
        }
    }

    #[test]
    fn integers_outside_their_range_are_refused_with_the_range() {
        for (command, option, min, max) in [
            ("analyze", "--max-flows <N>", 1, 16_777_216),
            ("analyze", "--detail-flows <N>", 0, 16_777_216),
            ("analyze", "--bin-ms <MS>", 10, 60_000),
            ("analyze", "--window <S>", 1, 86_400),
            ("analyze", "--jobs <N>", 1, 256),
            ("run", "--window <S>", 1, 86_400),
            ("run", "--snaplen <N>", 0, u64::from(u32::MAX)),
            ("run", "--control-sample <N>", 0, u64::from(u32::MAX)),
        ] {
            let flag = option.split(' ').next().unwrap();
            let line = |value: &str| {
                let mut line = vec![command.to_string(), flag.to_string(), value.to_string()];
                if command == "analyze" {
                    line.push("x.pcap".to_string());
                }
                line
            };
            let ok = |value: u64| {
                let line = line(&value.to_string());
                let line: Vec<&str> = line.iter().map(String::as_str).collect();
                assert!(parse_line(&line).is_ok(), "{line:?}");
            };
            let refused = |value: &str| {
                let line = line(value);
                error(&line.iter().map(String::as_str).collect::<Vec<_>>())
            };
            ok(min);
            ok(max);
            let range = format!("{min}..={max}");
            let text = refused(&(max + 1).to_string());
            let expected = format!(
                "error: invalid value '{}' for '{option}': {} is not in {range}",
                max + 1,
                max + 1
            );
            assert!(text.starts_with(&expected), "{text}");
            if min > 0 {
                let text = refused(&(min - 1).to_string());
                assert!(text.contains(&format!("{} is not in {range}", min - 1)), "{text}");
            }
            let text = refused("abc");
            let expected =
                format!("invalid value 'abc' for '{option}': expected a whole number in {range}");
            assert!(text.contains(&expected), "{text}");
            assert!(refused("99999999999999999999").contains(&range));
        }
        // The values reach the arguments, converted.
        assert_eq!(analyze(&["analyze", "--max-flows", "16777216", "x"]).max_flows, 16_777_216);
        assert_eq!(resolved(&run(&["run", "--snaplen", "4294967295"])).daemon.snaplen, u32::MAX);
    }

    #[test]
    fn bad_format_lists_the_possible_values() {
        let text = error(&["analyze", "--format", "yaml", "x"]);
        assert!(text.starts_with("error: invalid value 'yaml' for '--format <FORMAT>'\n  [possible values: human, json, jsonl, html]"), "{text}");
        assert!(!text.contains("tip:"), "{text}");
        let text = error(&["analyze", "--format", "jsn", "x"]);
        assert!(text.contains("tip: a similar value exists: 'json'"), "{text}");
        assert_eq!(analyze(&["analyze", "--format", "jsonl", "x"]).format, Format::Jsonl);
        assert_eq!(analyze(&["analyze", "--format=html", "x"]).format, Format::Html);
        let text = error(&["analyze", "--format", "htm", "x"]);
        assert!(text.contains("tip: a similar value exists: 'html'"), "{text}");
    }

    #[test]
    fn bad_window_origin_is_refused() {
        let at = |text: &str| analyze(&["analyze", "--window-origin", text, "x"]).window_origin;
        assert_eq!(at("5"), Some(Timestamp::from_micros(5_000_000)));
        assert_eq!(at("1.5"), Some(Timestamp::from_micros(1_500_000)));
        assert_eq!(at("0.000001"), Some(Timestamp::from_micros(1)));
        for bad in ["1.1234567", "x", "1.-5", "1.5e3", "", "18446744073709551615", "1,5"] {
            let line = ["analyze", &format!("--window-origin={bad}"), "x"];
            let text = error(&line);
            let expected = format!(
                "invalid value '{bad}' for '--window-origin <UNIX_S>': expected Unix seconds such as 1795805164.166779"
            );
            assert!(text.contains(&expected), "{text}");
        }
    }

    #[test]
    fn missing_values_name_the_option() {
        for (command, option) in [
            ("analyze", "--format <FORMAT>"),
            ("analyze", "--services <FILE>"),
            ("analyze", "--max-flows <N>"),
            ("analyze", "--detail-flows <N>"),
            ("analyze", "--bin-ms <MS>"),
            ("analyze", "--window <S>"),
            ("analyze", "--window-origin <UNIX_S>"),
            ("analyze", "--jobs <N>"),
            ("analyze", "--config <FILE>"),
            ("analyze", "--history <FILE>"),
            ("run", "--config <FILE>"),
            ("run", "--uci <FILE>"),
            ("run", "--interface <IFACE>"),
            ("run", "--window <S>"),
            ("run", "--events <PATH>"),
            ("run", "--status <PATH>"),
            ("run", "--metrics-file <PATH>"),
            ("run", "--listen <ADDR>"),
            ("run", "--services <FILE>"),
            ("run", "--user <NAME>"),
            ("run", "--snaplen <N>"),
            ("run", "--control-sample <N>"),
            ("run", "--history <FILE>"),
        ] {
            let flag = option.split(' ').next().unwrap();
            let expected =
                format!("error: a value is required for '{option}' but none was supplied");
            // At the end of the line, and followed by another option.
            for line in [vec![command, "x", flag], vec![command, flag, "--all", "x"]] {
                let line: Vec<&str> =
                    line.into_iter().filter(|a| command == "analyze" || *a != "x").collect();
                let text = error(&line);
                assert!(text.starts_with(&expected), "{line:?}: {text}");
            }
        }
        let text = error(&["run", "-i"]);
        assert!(text.starts_with("error: a value is required for '--interface <IFACE>'"), "{text}");
        // A value that starts with '-' is taken when attached with '='.
        assert_eq!(resolved(&run(&["run", "--events=-x"])).daemon.events, "-x");
        assert_eq!(analyze(&["analyze", "--config=", "x"]).config, Some(PathBuf::new()));
    }

    #[test]
    fn unknown_arguments_are_named_with_a_similar_one() {
        let text = error(&["analyze", "--frmat", "json", "x"]);
        assert!(text.starts_with("error: unexpected argument '--frmat' found"), "{text}");
        assert!(text.contains("tip: a similar argument exists: '--format'"), "{text}");
        let text = error(&["analyze", "--window-orign=5", "x"]);
        assert!(text.contains("'--window-orign' found"), "{text}");
        assert!(text.contains("tip: a similar argument exists: '--window-origin'"), "{text}");
        let text = error(&["analyze", "-x", "x"]);
        assert!(text.starts_with("error: unexpected argument '-x' found"), "{text}");
        assert!(text.contains("tip: to pass '-x' as a value, use '-- -x'"), "{text}");
        let text = error(&["run", "--bogus"]);
        assert!(text.starts_with("error: unexpected argument '--bogus' found"), "{text}");
        assert!(!text.contains("tip:"), "{text}");
        // An option of the other command.
        let text = error(&["run", "--max-flows", "5"]);
        assert!(text.starts_with("error: unexpected argument '--max-flows' found"), "{text}");
        let text = error(&["run", "extra"]);
        assert!(text.starts_with("error: unexpected argument 'extra' found"), "{text}");
        let text = error(&["anlyze", "x"]);
        assert!(text.starts_with("error: unrecognized subcommand 'anlyze'"), "{text}");
        assert!(text.contains("tip: a similar subcommand exists: 'analyze'"), "{text}");
        assert!(text.contains("Usage: throttlewatch <COMMAND>"), "{text}");
        let text = error(&["bogus"]);
        assert!(!text.contains("tip:"), "{text}");
        let text = error(&["--bogus"]);
        assert!(text.starts_with("error: unexpected argument '--bogus' found"), "{text}");
        let text = error(&["help", "bogus"]);
        assert!(text.starts_with("error: unrecognized subcommand 'bogus'"), "{text}");
    }

    #[test]
    fn repeats_conflicts_operands_and_switch_values() {
        for (line, option) in [
            (&["analyze", "--all", "--all", "x"][..], "--all"),
            (&["analyze", "--format", "json", "--format=human", "x"], "--format <FORMAT>"),
            (&["run", "--window", "1", "--window", "2"], "--window <S>"),
            (&["run", "--user", "a", "--user", "b"], "--user <NAME>"),
        ] {
            let text = error(line);
            let expected = format!("error: the argument '{option}' cannot be used multiple times");
            assert!(text.starts_with(&expected), "{text}");
        }
        let text = error(&["run", "--config", "a", "--uci", "b"]);
        let expected = "error: the argument '--config <FILE>' cannot be used with '--uci <FILE>'";
        assert!(text.starts_with(expected), "{text}");
        let text = error(&["run", "--uci", "b", "--config", "a"]);
        assert!(text.starts_with(expected), "{text}");
        let text = error(&["analyze"]);
        let expected = "error: the following required arguments were not provided:\n  <FILE>...";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("Usage: throttlewatch analyze [OPTIONS] <FILE>..."), "{text}");
        let text = error(&["analyze", "--format", "json"]);
        assert!(text.starts_with(expected), "{text}");
        let text = error(&["analyze", "--all=1", "x"]);
        assert!(text.starts_with("error: unexpected value '1' for '--all' found"), "{text}");
        let text = error(&["analyze", "--fail-on-finding=", "x"]);
        assert!(text.starts_with("error: unexpected value '' for '--fail-on-finding'"), "{text}");
    }

    #[test]
    fn paths_may_be_any_bytes_and_text_must_be_utf8() {
        let name = OsString::from_vec(b"tr\xffce.pcap".to_vec());
        let mut services = OsString::from("--services=");
        services.push(&name);
        let line = vec![
            OsString::from("throttlewatch"),
            OsString::from("analyze"),
            services,
            OsString::from("--config"),
            name.clone(),
            name.clone(),
        ];
        let Ok(Invocation::Analyze(a)) = parse(&line) else { panic!("refused: {line:?}") };
        assert_eq!(a.files, [PathBuf::from(&name)]);
        assert_eq!(a.services, Some(PathBuf::from(&name)));
        assert_eq!(a.config, Some(PathBuf::from(&name)));
        for flag in ["--events", "-i"] {
            let line = vec![
                OsString::from("throttlewatch"),
                OsString::from("run"),
                flag.into(),
                name.clone(),
            ];
            let Err(UsageError(text)) = parse(&line) else { panic!("accepted: {line:?}") };
            assert!(text.contains("tr\u{fffd}ce.pcap"), "{text}");
            assert!(text.contains("invalid UTF-8"), "{text}");
        }
    }

    #[test]
    fn help_lists_every_option_with_its_value_default_and_description() {
        for (command, lines) in
            [("analyze", PROGRAM.commands[0].options), ("run", PROGRAM.commands[1].options)]
        {
            let help = printed(&[command, "--help"]);
            assert_eq!(printed(&[command, "-h"]), help);
            assert_eq!(printed(&["help", command]), help);
            let c = PROGRAM.commands.iter().find(|c| c.name == command).unwrap();
            assert!(
                help.starts_with(&format!(
                    "{}\n\nUsage: throttlewatch {command} [OPTIONS]",
                    c.about
                ))
            );
            for opt in lines {
                let line = help
                    .lines()
                    .find(|l| {
                        l.contains(&format!("--{} ", opt.long))
                            || l.ends_with(&format!("--{}", opt.long))
                    })
                    .unwrap_or_else(|| panic!("{command} --help lacks --{}:\n{help}", opt.long));
                assert!(line.contains(opt.help), "{line}");
                if let Some(value) = opt.value_name() {
                    assert!(line.contains(&format!("--{} <{value}>", opt.long)), "{line}");
                }
                if let Kind::Integer { default: Some(default), .. } = opt.kind {
                    assert!(line.ends_with(&format!(" [default: {default}]")), "{line}");
                }
            }
        }
        let analyze_help = printed(&["analyze", "x", "--max-flows", "5", "--help"]);
        assert!(
            analyze_help.ends_with("\n  -h, --help                    Print help\n"),
            "{analyze_help}"
        );
        assert!(
            analyze_help.contains("\n  <FILE>...  Trace files (pcap or pcapng"),
            "{analyze_help}"
        );
        assert!(analyze_help.contains(
            "      --format <FORMAT>         Output format [default: human]\n                                  human: The answer in words, then short tables, for people\n                                  json:  One JSON document"
        ), "{analyze_help}");
        assert!(analyze_help.contains("      --max-flows <N>           Most flows held at once; beyond it idle flows are evicted and new ones refused [default: 65536]\n"));
        let run_help = printed(&["run", "-h"]);
        assert!(
            run_help
                .contains("\n  -i, --interface <IFACE>    Interface to capture on (repeatable)"),
            "{run_help}"
        );
        assert!(run_help.ends_with("\n  -h, --help                 Print help\n"), "{run_help}");

        let top = printed(&["--help"]);
        assert_eq!(printed(&["-h"]), top);
        assert_eq!(printed(&["help"]), top);
        assert!(top.starts_with("Detect throttling of messenger services from the packets crossing a router\n\nUsage: throttlewatch <COMMAND>\n\nCommands:\n  analyze  Analyze pcap/pcapng trace files and report every flow to a messenger service\n  run      Watch live interfaces"), "{top}");
        assert!(
            top.ends_with(
                "Options:\n  -h, --help     Print help\n  -V, --version  Print version\n"
            ),
            "{top}"
        );
        // Without a command: the help, as a usage error.
        let Err(UsageError(text)) = parse_line(&[]) else { panic!("accepted an empty line") };
        assert_eq!(text, top);

        let version = format!("throttlewatch {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(printed(&["--version"]), version);
        assert_eq!(printed(&["-V"]), version);
        // The help uses the name the program was started as.
        let line = ["/usr/sbin/tw", "run", "--bogus"].map(OsString::from);
        let Err(UsageError(text)) = parse(&line) else { panic!("accepted") };
        assert!(text.contains("Usage: tw run [OPTIONS]"), "{text}");
    }
}
