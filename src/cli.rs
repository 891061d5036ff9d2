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

use std::path::Path;

use throttlewatch::analyze::{self, AnalyzeInput, AnalyzeOutput, Sink, run_streaming};
use throttlewatch::classify::{Catalogue, CatalogueFile};
use throttlewatch::config::{self, PipelineConfig};
use throttlewatch::detect::history::History;
use throttlewatch::report::jsonl::JsonLines;
use throttlewatch::report::{InputReport, Report, Summary, calls, human};

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
    if args.format == Format::Html && !cfg!(feature = "html") {
        eprintln!(
            "throttlewatch: error: this build has no HTML report (built without the `html` \
             feature, as router builds are); --format human, json or jsonl"
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if args.jobs.is_some_and(|n| n > 1) && !cfg!(feature = "jobs") {
        eprintln!(
            "throttlewatch: error: this build measures with one thread (built without the \
             `jobs` feature, as router builds are); -j 1"
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
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
    let input = AnalyzeInput {
        files: args.files.clone(),
        config,
        catalogue,
        detect,
        window_origin: args.window_origin,
        history,
        // SAFETY: isatty reads a file descriptor's state and has no other effect.
        #[allow(unsafe_code)]
        progress: unsafe { libc::isatty(libc::STDERR_FILENO) } == 1,
        jobs: args.jobs.unwrap_or(1),
    };
    let output = if args.format == Format::Jsonl {
        match stream_lines(input, &args) {
            Ok(output) => output,
            Err((status, e)) => {
                eprintln!("throttlewatch: error: {e}");
                return ExitCode::from(status);
            }
        }
    } else {
        let output = analyze::run(input);
        let report =
            Report::build(&output.analysis, output.inputs.clone(), output.verdicts.clone());
        if !nothing_read(&output.inputs, &output)
            && let Err((status, e)) = write_report(&report, &args)
        {
            eprintln!("throttlewatch: error: {e}");
            return ExitCode::from(status);
        }
        output
    };
    if let (Some(h), Some(path)) = (&output.history, &args.history)
        && let Err(e) = h.save(path)
    {
        eprintln!("throttlewatch: error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    for e in &output.errors {
        eprintln!("throttlewatch: error: {e}");
    }
    if !output.errors.is_empty() {
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if args.fail_on_finding && output.verdicts.iter().any(|v| v.is_finding()) {
        return ExitCode::from(EXIT_FINDING);
    }
    ExitCode::SUCCESS
}

/// Where the report goes: `--output` (created, or replaced with `--force`) or standard
/// output.
enum Output<'a> {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    File(BufWriter<std::fs::File>, &'a Path),
}

impl<'a> Output<'a> {
    fn open(args: &'a AnalyzeArgs) -> Result<Output<'a>, (u8, String)> {
        use std::fs::{File, OpenOptions};
        let Some(path) = &args.output else {
            return Ok(Output::Stdout(BufWriter::new(io::stdout().lock())));
        };
        let file = if args.force {
            File::create(path)
        } else {
            OpenOptions::new().write(true).create_new(true).open(path)
        };
        let file = file.map_err(|e| {
            (EXIT_BAD_INPUT, format!("{}: cannot create the report file: {e}", path.display()))
        })?;
        Ok(Output::File(BufWriter::new(file), path))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(w) => w,
            Output::File(w, _) => w,
        }
    }

    /// The report file made for nothing, or written in part, is removed (a regular file:
    /// not `/dev/full`).
    fn discard(self) {
        if let Output::File(_, path) = self
            && path.metadata().is_ok_and(|m| m.is_file())
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// What a write error means: a closed standard output is none; a report file is
    /// removed and named (the user's path: bad input), standard output is internal.
    fn failed(self, e: io::Error) -> Result<(), (u8, String)> {
        let message = match &self {
            Output::Stdout(_) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Output::Stdout(_) => {
                return Err((EXIT_INTERNAL, format!("cannot write the report: {e}")));
            }
            Output::File(_, path) => format!("{}: cannot write the report: {e}", path.display()),
        };
        self.discard();
        Err((EXIT_BAD_INPUT, message))
    }
}

/// No input could be read at all: there is no report, only the errors.
fn nothing_read(inputs: &[InputReport], output: &AnalyzeOutput) -> bool {
    output.analysis.stats.packets == 0 && inputs.iter().all(|i| i.error.is_some())
}

/// The whole report in its format (module docs: not when nothing was read).
fn write_report(report: &Report, args: &AnalyzeArgs) -> Result<(), (u8, String)> {
    let mut out = Output::open(args)?;
    let w = out.writer();
    let written = match args.format {
        Format::Json => report.write_json(w),
        Format::Human => human::write(report, args.all, w),
        Format::Jsonl => unreachable!("JSON lines are written while the trace is read"),
        #[cfg(feature = "html")]
        Format::Html => throttlewatch::report::html::write(report, w),
        #[cfg(not(feature = "html"))]
        Format::Html => unreachable!("refused before the work: no `html` feature"),
    }
    .and_then(|()| w.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) => out.failed(e),
    }
}

/// `--format jsonl`: flows and verdicts written as windows close, then the flows open at the
/// end, the calls and the summary.
fn stream_lines(input: AnalyzeInput, args: &AnalyzeArgs) -> Result<AnalyzeOutput, (u8, String)> {
    let mut out = Output::open(args)?;
    let mut lines = JsonLines::new(out.writer());
    let mut output = run_streaming(input, &mut lines);
    let catalogue = output.analysis.classifier.catalogue();
    let mut streamed = output.streamed.take().expect("a streaming run says what it wrote");
    for f in &output.analysis.flows {
        streamed.keep(f);
        lines.flow(f, catalogue);
    }
    if nothing_read(&output.inputs, &output) {
        drop(lines);
        out.discard();
        return Ok(output);
    }
    let mut legs = streamed.legs;
    throttlewatch::pipeline::sort_by_id(&mut legs);
    for call in calls::calls_of(&legs, &streamed.tcp_starts, catalogue) {
        lines.call(&call);
    }
    let summary = Summary::build(&output.analysis, output.inputs.clone(), &streamed.tally);
    match lines.finish(&summary) {
        Ok(()) => Ok(output),
        Err(e) => out.failed(e).map(|()| output),
    }
}
