//! `--format jsonl`: the report as JSON lines for pipelines, written while the trace is read
//! (docs/report.md). Each line is one object with a `type`: `flow` (`flow`: as in the JSON
//! report's `flows[]`), `verdict` (as in `verdicts[]`), then at the end `call` (as in
//! `calls[]`) and last `summary` (`schema` and `summary`, as in the JSON report). Flows come
//! as they finish, after the verdicts of the window they finished in.

use std::io::{self, Write};

use serde::Serialize;

use super::json::{Layout, write_layout};
use super::{FlowReport, SCHEMA, Summary};
use crate::analyze::Sink;
use crate::classify::Catalogue;
use crate::detect::Verdict;
use crate::pipeline::FinishedFlow;

/// Writes the lines; the first write error stops the writing and is kept for the caller.
pub struct JsonLines<'w> {
    out: &'w mut dyn Write,
    error: Option<io::Error>,
}

impl<'w> JsonLines<'w> {
    pub fn new(out: &'w mut dyn Write) -> JsonLines<'w> {
        JsonLines { out, error: None }
    }

    /// `{HEAD:value}` and a newline; `head` is `"type":"flow","flow"` and the like.
    fn line(&mut self, head: &str, value: &impl Serialize) {
        if self.error.is_some() {
            return;
        }
        let written = write!(self.out, "{{{head}:")
            .and_then(|()| write_layout(&mut *self.out, value, Layout::OneLine))
            .and_then(|()| self.out.write_all(b"}\n"));
        self.error = written.err();
    }

    pub fn call(&mut self, call: &serde_json::Value) {
        self.line(r#""type":"call","call""#, call);
    }

    /// The last line, then the output is flushed: the first error met, if any.
    pub fn finish(mut self, summary: &Summary) -> io::Result<()> {
        self.line(&format!(r#""type":"summary","schema":"{SCHEMA}","summary""#), summary);
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

impl Sink for JsonLines<'_> {
    fn flow(&mut self, flow: &FinishedFlow, catalogue: &Catalogue) {
        let report = FlowReport::build(flow, |s| catalogue.service(s).id.clone());
        self.line(r#""type":"flow","flow""#, &report);
    }

    fn verdicts(&mut self, verdicts: &[Verdict]) {
        for v in verdicts {
            self.line(r#""type":"verdict","verdict""#, v);
        }
    }
}
