//! OpenWrt's UCI file format (`/etc/config/throttlewatch`), read directly, so that the init
//! script only passes the file's path and nothing depends on OpenWrt's shell library:
//!
//! ```text
//! config throttlewatch 'main'
//!     option enabled '1'
//!     list interface 'br-lan'
//!     option window '60'
//! ```
//!
//! The section of type `throttlewatch` is turned into the TOML configuration's table and
//! read through the same declaration (super::layers): each option is the `[daemon]` key of
//! its name (`list interface` is `interfaces`; `window` is `[detect] window_s`; `enabled` is
//! the init script's), typed as the key's default is, so an unknown option or a bad value is
//! refused by the same code as in a TOML file. Values are quoted with `'` or `"` or bare; `#`
//! starts a comment line. Absent options take the router's defaults (`openwrt_defaults`: the
//! package's `throttlewatch` user, state under /var/run/throttlewatch, metrics on
//! 127.0.0.1:9737). Every error names the file, the line and the option.

use std::path::Path;

use super::layers::{from_table, to_table};
use super::{ConfigFile, DaemonConfig, Section};

/// One `option` or `list` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    line: usize,
    list: bool,
    name: String,
    value: String,
}

/// A `config TYPE ['NAME']` section with its items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UciSection {
    line: usize,
    kind: String,
    name: Option<String>,
    items: Vec<Item>,
}

/// Split a line into words: quotes group (and are removed), `\` escapes inside double quotes.
fn words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { return Ok(out) };
        let mut word = String::new();
        match first {
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote"),
                    }
                }
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.push(chars.next().ok_or("unterminated \" quote")?),
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote"),
                    }
                }
            }
            _ => {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    word.push(c);
                }
            }
        }
        out.push(word);
    }
}

fn parse_sections(text: &str) -> Result<Vec<UciSection>, String> {
    let mut sections: Vec<UciSection> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let w = words(trimmed).map_err(|e| format!("line {line}: {e}"))?;
        match w.first().map(String::as_str) {
            Some("config") => {
                let kind = w.get(1).ok_or(format!("line {line}: `config` without a type"))?;
                if w.len() > 3 {
                    return Err(format!("line {line}: `config` takes a type and a name"));
                }
                sections.push(UciSection {
                    line,
                    kind: kind.clone(),
                    name: w.get(2).cloned(),
                    items: Vec::new(),
                });
            }
            Some(keyword @ ("option" | "list")) => {
                let section = sections
                    .last_mut()
                    .ok_or(format!("line {line}: `{keyword}` before any `config` section"))?;
                let [_, name, value] = &w[..] else {
                    return Err(format!("line {line}: `{keyword}` takes a name and a value"));
                };
                section.items.push(Item {
                    line,
                    list: keyword == "list",
                    name: name.clone(),
                    value: value.clone(),
                });
            }
            Some(other) => {
                return Err(format!(
                    "line {line}: {other:?} is not a UCI keyword (config, option, list)"
                ));
            }
            None => {}
        }
    }
    Ok(sections)
}

/// UCI names that differ from the TOML keys they set: the UCI convention of a singular list
/// name, and the one `[detect]` key a router's file sets. Every other option is the
/// `[daemon]` key of its name.
const RENAMED: [(&str, Section, &str); 2] =
    [("interface", Section::Daemon, "interfaces"), ("window", Section::Detect, "window_s")];

/// Read by the init script, not the daemon; checked as a boolean all the same.
const ENABLED: &str = "enabled";

/// Where an option goes in the configuration's table. The TOML names of renamed options
/// are not UCI names.
fn target(item: &Item) -> Result<(Section, &str), String> {
    if let Some((uci, _, key)) = RENAMED.iter().find(|(_, _, key)| *key == item.name) {
        return Err(format!("line {}: option {key}: in UCI it is called {uci}", item.line));
    }
    Ok(match RENAMED.iter().find(|(uci, _, _)| *uci == item.name) {
        Some(&(_, section, key)) => (section, key),
        None => (Section::Daemon, &item.name),
    })
}

fn boolean(value: &str) -> Option<bool> {
    match value {
        "1" | "yes" | "on" | "true" | "enabled" => Some(true),
        "0" | "no" | "off" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

/// The option's text as a TOML value of the type the key's default has (UCI values are all
/// text); text that is not of that type stays text, for the declaration to refuse with the
/// type it expected.
fn typed(value: &str, like: Option<&toml::Value>) -> toml::Value {
    let text = || toml::Value::String(value.to_string());
    match like {
        Some(toml::Value::Integer(_)) => {
            value.parse().map_or_else(|_| text(), toml::Value::Integer)
        }
        Some(toml::Value::Float(_)) => value.parse().map_or_else(|_| text(), toml::Value::Float),
        Some(toml::Value::Boolean(_)) => boolean(value).map_or_else(text, toml::Value::Boolean),
        _ => text(),
    }
}

/// What an OpenWrt router runs with when an option is absent: the package's user, state in
/// RAM under /var/run/throttlewatch (the events file capped at 256 KiB, 512 KiB with its
/// rotated generation), metrics on loopback, and a flow table sized for a 128 MB router
/// (README, Router CPUs: a tracked flow costs up to ~2.7 kB with its record waiting for the
/// window, so 4,096 flows and 512 detail slots keep the daemon within 24 MB under a flood
/// of unique 5-tuples).
fn openwrt_defaults() -> DaemonConfig {
    DaemonConfig {
        user: "throttlewatch".into(),
        events: "/var/run/throttlewatch/events.jsonl".into(),
        events_max_kib: 256,
        status: "/var/run/throttlewatch/status.json".into(),
        listen: "127.0.0.1:9737".into(),
        max_flows: ROUTER_MAX_FLOWS,
        detail_flows: ROUTER_DETAIL_FLOWS,
        ..DaemonConfig::default()
    }
}

/// Flows a router's table holds at once (`max_flows` where the UCI file does not say).
const ROUTER_MAX_FLOWS: usize = 4_096;
/// Detail slots on a router (`detail_flows` where the UCI file does not say).
const ROUTER_DETAIL_FLOWS: usize = 512;

/// The table of `section`'s options laid over `base` (the router's defaults).
fn table(base: &toml::Table, items: &[&Item]) -> Result<toml::Table, String> {
    let mut table = base.clone();
    let mut lists_begun: Vec<&str> = Vec::new();
    for item in items {
        let (section, key) = target(item)?;
        let Some(toml::Value::Table(keys)) = table.get_mut(section.name()) else {
            return Err(format!("[{}]: not a table of the configuration", section.name()));
        };
        let list = matches!(keys.get(key), Some(toml::Value::Array(_)));
        if keys.contains_key(key) && item.list != list {
            return Err(format!(
                "line {}: {} must be given with `{}`",
                item.line,
                item.name,
                if list { "list" } else { "option" }
            ));
        }
        if item.list {
            // The first `list` line replaces the default list; the others add to it.
            let value = toml::Value::String(item.value.clone());
            match keys.get_mut(key) {
                Some(toml::Value::Array(values)) if lists_begun.contains(&item.name.as_str()) => {
                    values.push(value)
                }
                _ => {
                    keys.insert(key.to_string(), toml::Value::Array(vec![value]));
                    lists_begun.push(&item.name);
                }
            }
        } else {
            let value = typed(&item.value, keys.get(key));
            keys.insert(key.to_string(), value);
        }
    }
    Ok(table)
}

/// The configuration a UCI text describes, `[detect]` checked (`[daemon]` is checked once
/// the command line's overrides are laid over it); errors without the file name.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let sections = parse_sections(text)?;
    if let Some(other) = sections.iter().find(|s| s.kind != "throttlewatch") {
        return Err(format!(
            "line {}: section type {:?}: only `config throttlewatch` sections are read",
            other.line, other.kind
        ));
    }
    let section = match &sections[..] {
        [] => return Err("no `config throttlewatch` section".into()),
        [one] => one,
        many => many
            .iter()
            .find(|s| s.name.as_deref() == Some("main"))
            .ok_or("several `config throttlewatch` sections and none named 'main'".to_string())?,
    };
    let mut items = Vec::new();
    for item in &section.items {
        if item.name != ENABLED {
            items.push(item);
        } else if item.list || boolean(&item.value).is_none() {
            return Err(format!(
                "line {}: option {}: {:?} is not a boolean (allowed: 0, 1)",
                item.line, item.name, item.value
            ));
        }
    }
    let base = to_table(&ConfigFile { daemon: openwrt_defaults(), ..ConfigFile::default() });
    let file = from_table(table(&base, &items)?).map_err(|e| {
        // The declaration refused the table: name the first line it refuses alone.
        let line = items.iter().find_map(|item| {
            let alone = table(&base, &[item]).ok()?;
            // The declaration's error starts with `[section] key: `; the line names both.
            let e = from_table(alone).err()?;
            let message = e.split_once(": ").map_or(e.as_str(), |(_, m)| m);
            Some(format!("line {}: option {}: {message}", item.line, item.name))
        });
        line.unwrap_or(e)
    })?;
    file.detect.validate()?;
    Ok(file)
}

/// Read a UCI file; the error names the file.
pub fn load(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the UCI configuration: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sample_reads() {
        let text = include_str!("../../samples/throttlewatch.uci");
        let c = parse(text).unwrap();
        assert_eq!(c.daemon.interfaces, ["br-lan"]);
        assert_eq!(c.detect.window_s, 60);
        assert_eq!(c.daemon.listen, "127.0.0.1:9737");
        assert_eq!(c.daemon.user, "throttlewatch");
        assert_eq!(c.daemon.status, "/var/run/throttlewatch/status.json");
        assert_eq!(c.daemon.events_max_kib, 256, "a small cap: the file sits in RAM");
        assert_eq!((c.daemon.max_flows, c.daemon.detail_flows), (4_096, 512), "a 128 MB router");
    }

    #[test]
    fn quoting_comments_lists_and_the_main_section() {
        let text = "# comment\n\nconfig throttlewatch 'other'\n\tlist interface eth9\n\
                    config throttlewatch \"main\"\n\tlist interface 'br-lan'\n\
                    \tlist interface \"wan 2\"\n\toption snaplen 300\n\
                    \toption allow_remote_metrics 'yes'\n\toption listen '0.0.0.0:9737'\n";
        let c = parse(text).unwrap();
        assert_eq!(c.daemon.interfaces, ["br-lan", "wan 2"]);
        assert_eq!(c.daemon.user, "throttlewatch", "the router's default");
        assert_eq!(c.daemon.events, "/var/run/throttlewatch/events.jsonl");
        assert_eq!(c.daemon.snaplen, 300);
        assert!(c.daemon.allow_remote_metrics);
    }

    /// `parse`, then the daemon's checks.
    fn checked(text: &str) -> Result<ConfigFile, String> {
        let file = parse(text)?;
        file.daemon.validate()?;
        Ok(file)
    }

    #[test]
    fn every_bad_input_names_its_line_and_option() {
        let base = "config throttlewatch 'main'\n\tlist interface 'br-lan'\n";
        for (extra, message) in [
            (
                "\toption snaplen 'big'\n",
                "line 3: option snaplen: invalid type: string \"big\", expected u32",
            ),
            ("\toption max_flows '-5'\n", "line 3: option max_flows: invalid value: integer"),
            (
                "\toption allow_remote_metrics 'maybe'\n",
                "line 3: option allow_remote_metrics: invalid type: string \"maybe\", expected a \
                 boolean",
            ),
            (
                "\toption interfaces 'x'\n",
                "line 3: option interfaces: in UCI it is called interface",
            ),
            ("\toption window_s '5'\n", "line 3: option window_s: in UCI it is called window"),
            ("\toption snaplen '10'\n", "snaplen = 10: allowed values are 64..=65535"),
            // Refused by the declaration, as an unknown key of a TOML file is.
            ("\toption colour 'red'\n", "line 3: option colour: unknown field `colour`"),
            ("\tlist colour 'red'\n", "line 3: option colour: unknown field `colour`"),
            ("\toption interface 'eth0'\n", "line 3: interface must be given with `list`"),
            ("\tlist window '5'\n", "line 3: window must be given with `option`"),
            ("\toption enabled 'maybe'\n", "line 3: option enabled: \"maybe\" is not a boolean"),
            ("\toption listen '10.0.0.1:9737'\n", "not a loopback address"),
            ("\toption control_sample '3'\n", "control_sample = 3: allowed values are 1, 2, 4"),
            (
                "\toption classify_snaplen '200'\n",
                "classify_snaplen = 200: allowed values are 0 (off) or above snaplen (256)",
            ),
            ("\toption window '0'\n", "window_s = 0: allowed values are 1..=86400"),
            ("\toption events_max_kib '8'\n", "events_max_kib = 8: allowed values are 0"),
            ("\toption events 'unterminated\n", "line 3: unterminated ' quote"),
            ("\toption user\n", "line 3: `option` takes a name and a value"),
            ("config firewall 'x'\n", "line 3: section type \"firewall\""),
            ("frobnicate\n", "line 3: \"frobnicate\" is not a UCI keyword"),
        ] {
            let err = checked(&format!("{base}{extra}")).unwrap_err();
            assert!(err.contains(message), "{extra:?}: {err}");
        }
        assert!(checked("option a 'b'\n").unwrap_err().contains("before any `config` section"));
        assert!(parse("").unwrap_err().contains("no `config throttlewatch` section"));
        let no_interface = checked("config throttlewatch 'main'\n").unwrap_err();
        assert!(no_interface.contains("interfaces: at least one interface"), "{no_interface}");
        let two = "config throttlewatch 'a'\n\tlist interface x\nconfig throttlewatch 'b'\n";
        assert!(parse(two).unwrap_err().contains("none named 'main'"));
    }
}
