//! SIGHUP: the events file is reopened (logrotate's convention) and the configuration and
//! the catalogue are read again, through the same layers as at start (file, then the
//! command line's overrides). A bad file keeps the old configuration running. Keys declared
//! `Restart` (src/config) keep their old values and are named in the `reload` event; the
//! others take effect from the next window: a new events path or cap reopens the sink, a new
//! history file is loaded, a changed catalogue goes to the capture threads, which take it at
//! the end of the window in progress (all at the same window, whatever each has read).

use std::path::Path;

use super::capture::ToCapture;
use super::outputs::{EventKind, EventSink, Output};
use super::{Main, load_catalogue, log, services_text};
use crate::capture::kernel_clock;
use crate::config::{Settings, load};
use crate::detect::history::History;

impl Main {
    /// SIGHUP: reopen the events file (logrotate's convention: it may have been moved away);
    /// read the configuration and the catalogue again, keeping the old ones on error. The
    /// outputs show the reload at once.
    pub(super) fn reload(&mut self) {
        if let Err(e) = self.events.reopen() {
            log(&format!("reload: {e}; events go on to the file open before"));
            self.state.output_failed(Output::Events, &e);
        }
        self.reload_configuration();
        self.publish();
    }

    fn reload_configuration(&mut self) {
        let attempt = load(&self.source, &self.overrides).and_then(|file| {
            let catalogue = load_catalogue(&file.daemon)?;
            Ok((file, catalogue))
        });
        let (file, catalogue) = match attempt {
            Ok(ok) => ok,
            Err(e) => {
                self.state.failed_reloads += 1;
                log(&format!("reload failed, the previous configuration stays: {e}"));
                self.emit(EventKind::ReloadFailed { error: &e });
                return;
            }
        };
        // What needs a restart keeps its old value.
        let mut file = file;
        let mut restart = self.file.daemon.keep_restart_keys(&mut file.daemon);
        restart.extend(self.file.detect.keep_restart_keys(&mut file.detect));
        let (old, new) = (&self.file.daemon, &file.daemon);
        if new.events != old.events || new.events_max_kib != old.events_max_kib {
            match EventSink::open(&new.events, new.events_max_kib) {
                Ok(sink) => self.events.replace(sink),
                Err(e) => {
                    log(&format!("reload: {e}; events stay at {}", old.events));
                    self.state.output_failed(Output::Events, &e);
                }
            }
        }
        if new.history != old.history {
            self.history = match new.history.as_str() {
                "" => None,
                path => History::load(Path::new(path)).map_err(|e| log(&e)).ok(),
            };
        }
        let text = services_text(new);
        let catalogue_changed = text != self.services_text || new.services != old.services;
        if catalogue_changed {
            let from = self.grid.end_of(kernel_clock()).unwrap_or_else(kernel_clock);
            self.tell_workers(|| ToCapture::Catalogue(Box::new(catalogue.clone()), from));
            self.services_text = text;
        }
        self.file = file;
        self.state.reloads += 1;
        log(&format!(
            "reloaded{}{}",
            if catalogue_changed {
                "; a new catalogue from the next window (the kernel filter keeps the old one's \
                 ranges until a restart)"
            } else {
                ""
            },
            if restart.is_empty() {
                String::new()
            } else {
                format!("; these take a restart and keep their old values: {}", restart.join(", "))
            }
        ));
        self.emit(EventKind::Reload { needs_restart: &restart, catalogue_changed });
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{DaemonConfig, DetectConfig, Reload, Setting, Settings};

    /// docs/events.md names exactly the keys declared `Restart` in the `reload` row.
    #[test]
    fn the_events_page_lists_the_keys_that_need_a_restart() {
        let doc = include_str!("../../docs/events.md");
        let row = doc.lines().find(|l| l.starts_with("| `reload` |")).unwrap();
        fn check<C>(row: &str, settings: &[Setting<C>]) {
            for s in settings {
                let named = row.contains(&format!("`{}`", s.key));
                assert_eq!(named, s.reload == Reload::Restart, "{}", s.key);
            }
        }
        check(row, DaemonConfig::SETTINGS);
        check(row, DetectConfig::SETTINGS);
    }
}
