//! The `throttlewatch` command: argument parsing and exit codes; the library does the work.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
