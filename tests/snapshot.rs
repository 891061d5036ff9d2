//! The JSON report of a shipped lab trace (police-128k), compared with `tests/snapshots/lab-police-128k.json`, so
//! that every change to the output shows as a diff. After an intended change:
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshot` and review the diff before committing.

mod common;

use std::path::{Path, PathBuf};

use throttlewatch::classify::{Catalogue, CatalogueFile};
use throttlewatch::report::Report;

#[test]
fn lab_police_json_report_snapshot() {
    // Relative paths, as a user would type them, keep the snapshot machine-independent.
    std::env::set_current_dir(common::root()).unwrap();
    let catalogue = Catalogue::from_file(Path::new("samples/lab-services.toml")).unwrap();
    let out = common::analyze(&[PathBuf::from("samples/lab/police-128k.pcap")], Some(catalogue));
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let report = Report::build(&out.analysis, out.inputs, Vec::new());
    let mut got = Vec::new();
    report.write_json(&mut got).unwrap();
    let got = String::from_utf8(got).unwrap();

    let path = common::root().join("tests/snapshots/lab-police-128k.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_SNAPSHOTS=1)", path.display()));
    if got != want {
        let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
        let first = g.iter().zip(&w).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
        let context = |lines: &[&str]| {
            lines[first.saturating_sub(3)..(first + 3).min(lines.len())].join("\n")
        };
        panic!(
            "the JSON report changed at line {} (of {} now, {} in the snapshot)\n--- snapshot\n{}\n+++ now\n{}\n\
             If the change is intended: UPDATE_SNAPSHOTS=1 cargo test --test snapshot",
            first + 1,
            g.len(),
            w.len(),
            context(&w),
            context(&g)
        );
    }
}
