//! The configuration, merged once from its layers: the defaults, a file (TOML, or OpenWrt's
//! UCI turned into the same table by [`super::uci`]), then the command line's overrides (also
//! after a reload). Every layer has the shape of [`ConfigFile`] and goes through its one
//! declaration (`settings!`, unknown keys refused), so a key is refused or accepted by the same code
//! whichever layer brought it; the merged result is validated once, naming the key.

use std::path::{Path, PathBuf};

use super::settings::Settings;
use super::{ConfigFile, DaemonConfig, DetectConfig};

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    Toml(PathBuf),
    Uci(PathBuf),
    /// Flags only.
    Flags,
}

/// A table of [`ConfigFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Detect,
    Daemon,
}

impl Section {
    /// The table's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Detect => "detect",
            Section::Daemon => "daemon",
        }
    }
}

/// Command-line settings that override the file: keys of [`ConfigFile`]'s tables with their
/// values, checked by the same declaration as the file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    table: toml::Table,
}

impl Overrides {
    /// Set `key` of `section` to `value` over whatever the file says.
    pub fn set(&mut self, section: Section, key: &str, value: toml::Value) {
        let slot = self
            .table
            .entry(section.name())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = slot {
            t.insert(key.to_string(), value);
        }
    }

    /// `file` with the overrides laid over it.
    pub fn apply(&self, file: ConfigFile) -> Result<ConfigFile, String> {
        if self.table.is_empty() {
            return Ok(file);
        }
        let mut table = to_table(&file);
        for (section, keys) in &self.table {
            match (table.get_mut(section), keys) {
                (Some(toml::Value::Table(into)), toml::Value::Table(keys)) => {
                    into.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => return Err(format!("[{section}]: not a table of the configuration")),
            }
        }
        from_table(table).map_err(|e| format!("command line: {e}"))
    }
}

/// `file` as a table, every key present.
pub fn to_table(file: &ConfigFile) -> toml::Table {
    toml::Table::from_iter([
        (Section::Detect.name().to_string(), file.detect.to_table().into()),
        (Section::Daemon.name().to_string(), file.daemon.to_table().into()),
    ])
}

/// A [`ConfigFile`]-shaped table read through the declaration: unknown sections and keys
/// and wrong values are errors that start with `[section] key`.
pub fn from_table(table: toml::Table) -> Result<ConfigFile, String> {
    let mut file = ConfigFile::default();
    for (section, value) in table {
        let toml::Value::Table(keys) = value else {
            return Err(format!(
                "{section}: {}",
                super::settings::invalid_type(&value, "a table of keys")
            ));
        };
        let at = |e: String| format!("[{section}] {e}");
        match section.as_str() {
            "detect" => file.detect = DetectConfig::from_table(keys).map_err(at)?,
            "daemon" => file.daemon = DaemonConfig::from_table(keys).map_err(at)?,
            _ => return Err(format!("unknown field `{section}`, expected `detect` or `daemon`")),
        }
    }
    Ok(file)
}

/// Read a TOML configuration file. `[daemon]` is checked by the daemon (it is not needed by
/// `analyze`); `[detect]` is checked here. The error names the file and the key. (Read as a
/// table first, then through the declaration as the other layers are: one deserializer of
/// the declaration in the binary instead of two.)
pub fn load_config(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))?;
    let file = from_table(table).map_err(|e| format!("{}: {e}", path.display()))?;
    file.detect.validate().map_err(|e| format!("{}: [detect] {e}", path.display()))?;
    Ok(file)
}

/// The daemon's configuration: `source`, then `overrides`, every key checked.
pub fn load(source: &ConfigSource, overrides: &Overrides) -> Result<ConfigFile, String> {
    let file = match source {
        ConfigSource::Toml(path) => load_config(path)?,
        ConfigSource::Uci(path) => super::uci::load(path)?,
        ConfigSource::Flags => ConfigFile::default(),
    };
    let file = overrides.apply(file)?;
    file.detect.validate()?;
    file.daemon.validate()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DaemonConfig, DetectConfig, Reload, Setting, Settings};

    /// The shipped sample lists every key of both tables, each with its default: parsed, it
    /// is the defaults' own table (no key missing, none extra, no value different).
    #[test]
    fn the_sample_configuration_lists_exactly_the_defaults() {
        let text = include_str!("../../samples/throttlewatch.toml");
        let sample: toml::Table = toml::from_str(text).unwrap();
        let defaults = to_table(&ConfigFile::default());
        for section in [Section::Detect, Section::Daemon] {
            let (s, d) = (&sample[section.name()], &defaults[section.name()]);
            let (s, d) = (s.as_table().unwrap(), d.as_table().unwrap());
            for (key, value) in d {
                assert_eq!(s.get(key), Some(value), "[{}] {key}", section.name());
            }
            for key in s.keys() {
                assert!(d.contains_key(key), "[{}] {key} is not a key", section.name());
            }
        }
        assert_eq!(sample, defaults);
        // Every key of the declaration is in the table, and nothing else.
        let keys = |t: &toml::Value| t.as_table().unwrap().keys().cloned().collect::<Vec<_>>();
        fn declared<C>(settings: &[Setting<C>]) -> Vec<String> {
            let mut keys: Vec<String> = settings.iter().map(|s| s.key.to_string()).collect();
            keys.sort();
            keys
        }
        assert_eq!(keys(&defaults["detect"]), declared(DetectConfig::SETTINGS));
        assert_eq!(keys(&defaults["daemon"]), declared(DaemonConfig::SETTINGS));
    }

    /// The Debian package's configuration is read by the same declaration and is valid as
    /// shipped: only its paths and interface differ from the defaults.
    #[test]
    fn the_packaged_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/throttlewatch.toml");
        let file = load(&ConfigSource::Toml(path), &Overrides::default()).unwrap();
        assert_eq!(file.detect, DetectConfig::default());
        let d = &file.daemon;
        assert_eq!(d.interfaces, ["eth0"]);
        assert_eq!(d.events, "/run/throttlewatch/events.jsonl");
        assert_eq!(d.listen, "127.0.0.1:9737");
        let paths = DaemonConfig {
            interfaces: d.interfaces.clone(),
            events: d.events.clone(),
            status: d.status.clone(),
            listen: d.listen.clone(),
            history: d.history.clone(),
            ..DaemonConfig::default()
        };
        assert_eq!(*d, paths, "everything else is the default");
    }

    #[test]
    fn overrides_lie_over_the_file_and_unknown_keys_are_refused_alike() {
        let file = ConfigFile::default();
        let mut o = Overrides::default();
        o.set(Section::Daemon, "interfaces", toml::Value::Array(vec!["lo".into()]));
        o.set(Section::Detect, "window_s", toml::Value::Integer(5));
        o.set(Section::Daemon, "snaplen", toml::Value::Integer(300));
        let merged = o.apply(file.clone()).unwrap();
        assert_eq!(merged.daemon.interfaces, ["lo"]);
        assert_eq!((merged.detect.window_s, merged.daemon.snaplen), (5, 300));
        assert_eq!(merged.daemon.events, file.daemon.events, "the rest stays");
        o.set(Section::Daemon, "colour", toml::Value::String("red".into()));
        let err = o.apply(file).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
        // The restart list comes from the declaration.
        let (old, mut new) = (ConfigFile::default(), merged);
        let kept = old.daemon.keep_restart_keys(&mut new.daemon);
        assert_eq!(kept, ["interfaces", "snaplen"]);
        assert_eq!(new.daemon, old.daemon, "a reload keeps what needs a restart");
        assert_eq!(old.detect.keep_restart_keys(&mut new.detect), ["window_s"]);
        let live = DaemonConfig::SETTINGS.iter().filter(|s| s.reload == Reload::Live);
        let live: Vec<&str> = live.map(|s| s.key).collect();
        assert_eq!(
            live,
            ["events", "events_max_kib", "status", "metrics_file", "services", "history"]
        );
    }

    /// A value of the wrong type names its section and key, in a file and on the command
    /// line alike; a TOML syntax error keeps its line.
    #[test]
    fn errors_name_the_section_and_key() {
        let path = std::env::temp_dir().join(format!("tw-layers-{}.toml", std::process::id()));
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load_config(&path).unwrap_err()
        };
        let err = read("[detect]\nwindow_s = 5\n[daemon]\nsnaplen = \"big\"\n");
        assert!(err.contains("[daemon] snaplen: invalid type: string \"big\""), "{err}");
        let err = read("[detect]\nwindow_s = 5\nalpha = 0.05\ncall_loss = true\n");
        assert!(err.contains("[detect] call_loss: invalid type: boolean"), "{err}");
        let err = read("[detect]\nwindow_s = = 5\n");
        assert!(err.contains("line 2"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let mut o = Overrides::default();
        o.set(Section::Detect, "alpha", toml::Value::String("small".into()));
        let err = o.apply(ConfigFile::default()).unwrap_err();
        assert!(err.starts_with("command line: [detect] alpha: invalid type"), "{err}");
    }
}
