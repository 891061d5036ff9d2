//! Command line (docs/report.md). Exit codes: 0 done, 1 internal error, 2 bad usage, configuration
//! or input (the message names the file, key or packet), 3 with `--fail-on-finding` when a
//! verdict other than `none`/`inconclusive` exists. A closed stdout (`| head`) is not an error.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};

use throttlewatch::classify::Catalogue;
use throttlewatch::config::{self, PipelineConfig};
use throttlewatch::time::Timestamp;

const EXIT_INTERNAL: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_FINDING: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "throttlewatch",
    version,
    about = "Detect throttling of messenger services from the packets crossing a router"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyze pcap/pcapng trace files and report every flow to a messenger service.
    Analyze(AnalyzeArgs),
    /// Watch live interfaces: verdict events, a status file, Prometheus metrics.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Configuration file (TOML: [daemon] and [detect]; see samples/throttlewatch.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "uci")]
    config: Option<PathBuf>,
    /// OpenWrt UCI configuration file (e.g. /etc/config/throttlewatch).
    #[arg(long, value_name = "FILE")]
    uci: Option<PathBuf>,
    /// Interface to capture on (repeatable); replaces the file's list.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// Evaluation window in seconds.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    window: Option<u64>,
    /// Verdict events as JSON lines: a file appended to, or - for stdout.
    #[arg(long, value_name = "PATH")]
    events: Option<String>,
    /// Status file (JSON, replaced atomically after every window).
    #[arg(long, value_name = "PATH")]
    status: Option<String>,
    /// Prometheus textfile.
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<String>,
    /// Serve /metrics on IP:PORT (loopback unless the file allows more).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Service catalogue (TOML) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    services: Option<String>,
    /// Switch to this user once the captures are open.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Bytes captured per packet.
    #[arg(long, value_name = "N")]
    snaplen: Option<u32>,
    /// Capture 1 control flow in N (1, 2, 4, ..., 64; 1 = everything, no filter).
    #[arg(long, value_name = "N")]
    control_sample: Option<u32>,
    /// Per-service history of bulk goodput (JSON).
    #[arg(long, value_name = "FILE")]
    history: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A short table for people.
    Human,
    /// One JSON document, schema throttlewatch.report/1.
    Json,
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Trace files (pcap or pcapng, recognised by content), read in order as one capture.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Service catalogue (TOML) to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    services: Option<PathBuf>,
    /// Most flows held at once; beyond it idle flows are evicted and new ones refused.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_FLOWS,
          value_parser = clap::value_parser!(u64).range(1..=config::MAX_MAX_FLOWS as u64).map(|n| n as usize))]
    max_flows: usize,
    /// Flows that keep throughput bins and windowed RTTs at once.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_DETAIL_FLOWS,
          value_parser = clap::value_parser!(u64).range(0..=config::MAX_MAX_FLOWS as u64).map(|n| n as usize))]
    detail_flows: usize,
    /// Width of a throughput bin in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = config::DEFAULT_BIN_MS,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    bin_ms: u64,
    /// Human format: list every flow, not only the first messenger flows.
    #[arg(long)]
    all: bool,
    /// Exit with status 3 when a verdict reports a finding (not none/inconclusive).
    #[arg(long)]
    fail_on_finding: bool,
    /// Evaluation window in seconds (packet time); overrides the configuration file.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    window: Option<u64>,
    /// Start of the first window, in Unix seconds (e.g. 1795805164.166779): align the
    /// windows with a daemon's (its verdict events give their windows); default: the first
    /// packet.
    #[arg(long, value_name = "UNIX_S", value_parser = parse_unix_seconds)]
    window_origin: Option<Timestamp>,
    /// Configuration file (TOML); its [detect] table sets detector thresholds
    /// (see samples/throttlewatch.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Per-service history of bulk goodput per hour (JSON): read if it exists, updated after.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

/// Unix seconds with up to six decimals, as a timestamp.
fn parse_unix_seconds(text: &str) -> Result<Timestamp, String> {
    let bad = || format!("{text:?}: expected Unix seconds such as 1795805164.166779");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: u64 = whole.parse().map_err(|_| bad())?;
    let micros: u64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(micros))
        .map(Timestamp::from_micros)
        .ok_or_else(bad)
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_BAD_INPUT),
            };
        }
    };
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Run(args) => run(args),
    }
}

#[cfg(feature = "pcap")]
fn run(args: RunArgs) -> ExitCode {
    use throttlewatch::daemon::{self, ConfigSource, Overrides, RunError};
    let source = match (args.config, args.uci) {
        (Some(path), _) => ConfigSource::Toml(path),
        (None, Some(path)) => ConfigSource::Uci(path),
        (None, None) => ConfigSource::Flags,
    };
    let overrides = Overrides {
        interfaces: args.interfaces,
        window_s: args.window,
        events: args.events,
        status: args.status,
        metrics_file: args.metrics_file,
        listen: args.listen,
        services: args.services,
        user: args.user,
        snaplen: args.snaplen,
        control_sample: args.control_sample,
        history: args.history,
    };
    match daemon::run(source, overrides) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Input(e)) => {
            eprintln!("throttlewatch: error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(RunError::Runtime(e)) => {
            eprintln!("throttlewatch: error: {e}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

#[cfg(not(feature = "pcap"))]
fn run(_args: RunArgs) -> ExitCode {
    eprintln!("throttlewatch: error: this build has no libpcap and cannot capture");
    ExitCode::from(EXIT_BAD_INPUT)
}

#[cfg(feature = "pcap")]
fn analyze(args: AnalyzeArgs) -> ExitCode {
    use throttlewatch::analyze::{AnalyzeInput, run};
    use throttlewatch::detect::history::History;
    use throttlewatch::report::{Report, human};

    let catalogue = match &args.services {
        Some(path) => match Catalogue::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("throttlewatch: error: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
        None => Catalogue::builtin(),
    };
    for warning in catalogue.warnings() {
        eprintln!("throttlewatch: warning: {}: {warning}", catalogue.source_name());
    }
    let config = PipelineConfig {
        max_flows: args.max_flows,
        detail_flows: args.detail_flows,
        bin_us: args.bin_ms * 1000,
        ..PipelineConfig::default()
    };
    let mut detect = match &args.config {
        Some(path) => match config::load_config(path) {
            Ok(c) => c.detect,
            Err(e) => {
                eprintln!("throttlewatch: error: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
        None => config::DetectConfig::default(),
    };
    if let Some(window) = args.window {
        detect.window_s = window;
    }
    let history = match &args.history {
        Some(path) => match History::load(path) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("throttlewatch: error: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
        None => None,
    };
    let output = run(AnalyzeInput {
        files: args.files.clone(),
        config,
        catalogue,
        detect,
        window_origin: args.window_origin,
        history,
    });
    if let (Some(h), Some(path)) = (&output.history, &args.history)
        && let Err(e) = h.save(path)
    {
        eprintln!("throttlewatch: error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let report = Report::build(&output.analysis, output.inputs, output.verdicts);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Json => report.write_json(&mut out),
        Format::Human => human::write(&report, args.all, &mut out),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
        eprintln!("throttlewatch: error: cannot write the report: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    for e in &output.errors {
        eprintln!("throttlewatch: error: {e}");
    }
    if !output.errors.is_empty() {
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if args.fail_on_finding && report.verdicts.iter().any(|v| v.is_finding()) {
        return ExitCode::from(EXIT_FINDING);
    }
    ExitCode::SUCCESS
}

#[cfg(not(feature = "pcap"))]
fn analyze(_args: AnalyzeArgs) -> ExitCode {
    eprintln!(
        "throttlewatch: error: this build has no libpcap (built without the `pcap` feature) and cannot read trace files"
    );
    ExitCode::from(EXIT_BAD_INPUT)
}
