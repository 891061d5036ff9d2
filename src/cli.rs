//! Command line (docs/report.md). Exit codes: 0 done, 1 internal error, 2 bad usage, configuration
//! or input (the message names the file, key or packet), 3 with `--fail-on-finding` when a
//! verdict other than `none`/`inconclusive` exists. A closed stdout (`| head`) is not an error.
//! When no input could be read there is no report (stdout stays empty, no `--output` file is
//! made): only the errors, on stderr.
//! The options are declared in `args.rs`, once each; `parse.rs` reads and documents them.

mod args;
mod parse;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use throttlewatch::classify::{Catalogue, CatalogueFile};
use throttlewatch::config::{self, PipelineConfig};

use args::{AnalyzeArgs, Format, Invocation, RunArgs};

const EXIT_INTERNAL: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_FINDING: u8 = 3;

pub fn main() -> ExitCode {
    let command_line: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args::parse(&command_line) {
        Ok(Invocation::Analyze(args)) => analyze(args),
        Ok(Invocation::Run(args)) => run(args),
        Ok(Invocation::Print(text)) => {
            // A closed stdout (`--help | head`) is not an error.
            let _ = io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(usage) => {
            eprint!("{usage}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

#[cfg(feature = "pcap")]
fn run(args: RunArgs) -> ExitCode {
    use throttlewatch::daemon::{self, ConfigSource, RunError};
    let source = match (args.config, args.uci) {
        (Some(path), _) => ConfigSource::Toml(path),
        (None, Some(path)) => ConfigSource::Uci(path),
        (None, None) => ConfigSource::Flags,
    };
    match daemon::run(source, args.overrides) {
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
    eprintln!(
        "throttlewatch: error: this build has no live capture (built without the `pcap` \
         feature, libpcap); `analyze` reads trace files"
    );
    ExitCode::from(EXIT_BAD_INPUT)
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    use throttlewatch::analyze::{AnalyzeInput, run};
    use throttlewatch::detect::history::History;
    use throttlewatch::report::Report;

    // Refused before the work, not after it.
    if let Some(path) = &args.output
        && !args.force
        && path.symlink_metadata().is_ok()
    {
        eprintln!(
            "throttlewatch: error: {}: the report file exists (--force replaces it)",
            path.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
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
    if let Some(window) = args.window_s {
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
    let unread =
        report.summary.packets.read == 0 && report.summary.inputs.iter().all(|i| i.error.is_some());
    if !unread && let Err((status, e)) = write_report(&report, &args) {
        eprintln!("throttlewatch: error: {e}");
        return ExitCode::from(status);
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

/// The report in its format, to `--output` (created, or replaced with `--force`) or to
/// standard output (a closed one is not an error). A report file that could not be written
/// whole is removed (a regular file: not `/dev/full`); the error names it, with its exit
/// status (the user's path: bad input; standard output: internal).
fn write_report(
    report: &throttlewatch::report::Report,
    args: &AnalyzeArgs,
) -> Result<(), (u8, String)> {
    use std::fs::{File, OpenOptions};
    use throttlewatch::report::human;

    let write = |out: &mut dyn Write| {
        match args.format {
            Format::Json => report.write_json(out),
            Format::Human => human::write(report, args.all, out),
        }?;
        out.flush()
    };
    let Some(path) = &args.output else {
        return match write(&mut BufWriter::new(io::stdout().lock())) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err((EXIT_INTERNAL, format!("cannot write the report: {e}")))
            }
            _ => Ok(()),
        };
    };
    let file: io::Result<File> = if args.force {
        File::create(path)
    } else {
        OpenOptions::new().write(true).create_new(true).open(path)
    };
    let failed =
        |what: &str, e: io::Error| (EXIT_BAD_INPUT, format!("{}: {what}: {e}", path.display()));
    let file = file.map_err(|e| failed("cannot create the report file", e))?;
    write(&mut BufWriter::new(file)).map_err(|e| {
        if path.metadata().is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(path);
        }
        failed("cannot write the report", e)
    })
}
