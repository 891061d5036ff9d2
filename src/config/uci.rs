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
//! The section of type `throttlewatch` maps onto the `[daemon]` keys of the TOML
//! configuration (`list interface` onto `interfaces`; `window` onto `[detect] window_s`;
//! `enabled` is the init script's). Values are quoted with `'` or `"` or bare; `#` starts a
//! comment line. Absent options take the router's defaults (`openwrt_defaults`: the
//! package's `throttlewatch` user, state under /var/run/throttlewatch, metrics on
//! 127.0.0.1:9737). Every error names the file, the line and the option.

use std::path::Path;

use super::{ConfigFile, DaemonConfig};

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
struct Section {
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

fn parse_sections(text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
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
                sections.push(Section {
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

const OPTIONS: &[&str] = &[
    "enabled",
    "interface",
    "window",
    "snaplen",
    "classify_snaplen",
    "buffer_kib",
    "control_sample",
    "events",
    "events_max_kib",
    "status",
    "metrics_file",
    "listen",
    "allow_remote_metrics",
    "user",
    "services",
    "history",
    "max_flows",
    "detail_flows",
];

fn number<T: std::str::FromStr>(item: &Item) -> Result<T, String> {
    item.value.parse().map_err(|_| {
        format!("line {}: option {}: {:?} is not a number", item.line, item.name, item.value)
    })
}

fn boolean(item: &Item) -> Result<bool, String> {
    match item.value.as_str() {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        other => Err(format!(
            "line {}: option {}: {other:?} is not a boolean (allowed: 0, 1)",
            item.line, item.name
        )),
    }
}

/// What an OpenWrt router runs with when an option is absent: the package's user, state in
/// RAM under /var/run/throttlewatch (the events file capped at 256 KiB, 512 KiB with its
/// rotated generation), metrics on loopback.
fn openwrt_defaults() -> DaemonConfig {
    DaemonConfig {
        user: "throttlewatch".into(),
        events: "/var/run/throttlewatch/events.jsonl".into(),
        events_max_kib: 256,
        status: "/var/run/throttlewatch/status.json".into(),
        listen: "127.0.0.1:9737".into(),
        ..DaemonConfig::default()
    }
}

/// The configuration a UCI text describes; errors without the file name.
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
    let mut file = ConfigFile { daemon: openwrt_defaults(), ..ConfigFile::default() };
    let d: &mut DaemonConfig = &mut file.daemon;
    for item in &section.items {
        if !OPTIONS.contains(&item.name.as_str()) {
            return Err(format!(
                "line {}: unknown option {:?} (known: {})",
                item.line,
                item.name,
                OPTIONS.join(", ")
            ));
        }
        if item.list != (item.name == "interface") {
            return Err(format!(
                "line {}: {} must be given with `{}`",
                item.line,
                item.name,
                if item.name == "interface" { "list" } else { "option" }
            ));
        }
        match item.name.as_str() {
            "enabled" => {
                boolean(item)?;
            }
            "interface" => d.interfaces.push(item.value.clone()),
            "window" => file.detect.window_s = number(item)?,
            "snaplen" => d.snaplen = number(item)?,
            "classify_snaplen" => d.classify_snaplen = number(item)?,
            "buffer_kib" => d.buffer_kib = number(item)?,
            "control_sample" => d.control_sample = number(item)?,
            "events" => d.events = item.value.clone(),
            "events_max_kib" => d.events_max_kib = number(item)?,
            "status" => d.status = item.value.clone(),
            "metrics_file" => d.metrics_file = item.value.clone(),
            "listen" => d.listen = item.value.clone(),
            "allow_remote_metrics" => d.allow_remote_metrics = boolean(item)?,
            "user" => d.user = item.value.clone(),
            "services" => d.services = item.value.clone(),
            "history" => d.history = item.value.clone(),
            "max_flows" => d.max_flows = number(item)?,
            "detail_flows" => d.detail_flows = number(item)?,
            _ => unreachable!("every name in OPTIONS is handled"),
        }
    }
    file.detect.validate()?;
    file.daemon.validate()?;
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

    #[test]
    fn every_bad_input_names_its_line_and_option() {
        let base = "config throttlewatch 'main'\n\tlist interface 'br-lan'\n";
        for (extra, message) in [
            ("\toption snaplen 'big'\n", "line 3: option snaplen: \"big\" is not a number"),
            ("\toption snaplen '10'\n", "snaplen = 10: allowed values are 64..=65535"),
            ("\toption colour 'red'\n", "line 3: unknown option \"colour\""),
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
            let err = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(err.contains(message), "{extra:?}: {err}");
        }
        assert!(parse("option a 'b'\n").unwrap_err().contains("before any `config` section"));
        assert!(parse("").unwrap_err().contains("no `config throttlewatch` section"));
        let no_interface = parse("config throttlewatch 'main'\n").unwrap_err();
        assert!(no_interface.contains("interfaces: at least one interface"), "{no_interface}");
        let two = "config throttlewatch 'a'\n\tlist interface x\nconfig throttlewatch 'b'\n";
        assert!(parse(two).unwrap_err().contains("none named 'main'"));
    }
}
