//! The shipped service catalogue as the binary carries it: `data/services.toml` without its
//! comments, blank lines and indentation (about 4.6 kB of the router binary's 1.5 MB budget,
//! ARCHITECTURE.md, Budgets). Line by line, so that a value never moves: the catalogue has
//! no multi-line strings, and a `#` that starts a trimmed line is a comment.

use std::path::PathBuf;

fn main() {
    const SOURCE: &str = "data/services.toml";
    println!("cargo::rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).expect("data/services.toml is readable");
    let lines: Vec<&str> = (text.lines().map(str::trim))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("services.toml"), lines.join("\n") + "\n")
        .expect("OUT_DIR is writable");
}
