//! A small command-line parser driven by tables: each option is declared once, as an [`Opt`],
//! and that declaration parses it, checks its value (integer ranges, choices) and documents it
//! in the help. Hand-written because a general-purpose parser cost the router binary about
//! 180 KB of its 1.5 MB budget (ARCHITECTURE.md, budgets).
//!
//! Syntax: `--name value`, `--name=value`, `-x value`, `-xvalue`, `-x=value`; options and
//! operands in any order; `--` ends the options. A value may not start with `-` (except `-`
//! itself) unless written `--name=value`. An option given twice is an error unless it is a
//! list ([`Kind::TextList`]). `-h`/`--help` anywhere prints the help.
//!
//! Every refusal is a [`UsageError`] whose text names the argument, the bad value and what is
//! allowed (the range, the possible values, a similar name when there is one); the caller
//! prints it to standard error and exits with status 2.

use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use throttlewatch::time::Timestamp;

/// A program with subcommands, each with its own options.
pub struct Program<C: 'static> {
    /// The name `--version` prints (the help uses the name the program was started as).
    pub name: &'static str,
    pub version: &'static str,
    /// One line for the top of the help.
    pub about: &'static str,
    pub commands: &'static [Command<C>],
}

/// A subcommand: its name, its operands and its options.
pub struct Command<C> {
    /// What the caller gets back when this command is chosen.
    pub id: C,
    pub name: &'static str,
    /// One line, in the program's help and at the top of the command's.
    pub about: &'static str,
    /// The operands (arguments that are not options) it needs, one or more; `None`: none.
    pub operands: Option<Operands>,
    pub options: &'static [Opt],
}

/// Operands a command needs: one or more, shown as `<VALUE_NAME>...`.
pub struct Operands {
    pub value_name: &'static str,
    pub help: &'static str,
}

/// One option: its names, the kind of value it takes, and its line in the help.
pub struct Opt {
    /// The long name, without the leading `--`.
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// One line for the help.
    pub help: &'static str,
    /// The long name of another option that cannot be given with this one.
    pub conflicts_with: Option<&'static str>,
    /// The long name of another option without which this one means nothing.
    pub requires: Option<&'static str>,
}

/// The value an option takes, and how it is checked.
pub enum Kind {
    /// No value: given or not.
    Switch,
    /// A path (any bytes); the value's name in the help.
    Path(&'static str),
    /// UTF-8 text; the value's name in the help.
    Text(&'static str),
    /// UTF-8 text, repeatable: every occurrence is kept, in order.
    TextList(&'static str),
    /// A whole number in `min..=max`, with the value used when the option is not given.
    Integer { value_name: &'static str, min: u64, max: u64, default: Option<u64> },
    /// One of `choices` (its index is the value); `default` indexes the one used when the
    /// option is not given.
    Choice { value_name: &'static str, choices: &'static [Choice], default: usize },
    /// Unix seconds with up to six decimals.
    UnixSeconds(&'static str),
}

/// A possible value of a [`Kind::Choice`] option.
pub struct Choice {
    pub name: &'static str,
    pub help: &'static str,
}

impl Opt {
    pub const fn new(long: &'static str, kind: Kind, help: &'static str) -> Self {
        Opt { long, short: None, kind, help, conflicts_with: None, requires: None }
    }

    pub const fn short(self, short: char) -> Self {
        Opt { short: Some(short), ..self }
    }

    pub const fn conflicts_with(self, long: &'static str) -> Self {
        Opt { conflicts_with: Some(long), ..self }
    }

    pub const fn requires(self, long: &'static str) -> Self {
        Opt { requires: Some(long), ..self }
    }

    /// The value's name in the help (`None` for a switch).
    pub fn value_name(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Switch => None,
            Kind::Path(name) | Kind::Text(name) | Kind::TextList(name) => Some(name),
            Kind::UnixSeconds(name) => Some(name),
            Kind::Integer { value_name, .. } | Kind::Choice { value_name, .. } => Some(value_name),
        }
    }

    /// `--long <VALUE>`, as errors name the option.
    fn display(&self) -> String {
        match self.value_name() {
            Some(value) => format!("--{} <{value}>", self.long),
            None => format!("--{}", self.long),
        }
    }

    /// Parses one occurrence's value (`None` for a switch).
    fn parse(&self, value: Option<&OsStr>) -> Result<Value, String> {
        let Some(value) = value else { return Ok(Value::Switch) };
        let invalid = |why: &str| {
            format!("invalid value '{}' for '{}'{why}", value.to_string_lossy(), self.display())
        };
        let text = || value.to_str().ok_or_else(|| invalid(": invalid UTF-8"));
        Ok(match self.kind {
            Kind::Switch => Value::Switch,
            Kind::Path(_) => Value::Path(PathBuf::from(value)),
            Kind::Text(_) | Kind::TextList(_) => Value::Text(text()?.to_string()),
            Kind::Integer { min, max, .. } => {
                let n: u64 = text()?
                    .parse()
                    .map_err(|_| invalid(&format!(": expected a whole number in {min}..={max}")))?;
                if !(min..=max).contains(&n) {
                    return Err(invalid(&format!(": {n} is not in {min}..={max}")));
                }
                Value::Integer(n)
            }
            Kind::Choice { choices, .. } => {
                let text = text()?;
                match choices.iter().position(|c| c.name == text) {
                    Some(index) => Value::Choice(index),
                    None => {
                        let names: Vec<&str> = choices.iter().map(|c| c.name).collect();
                        let mut message =
                            invalid(&format!("\n  [possible values: {}]", names.join(", ")));
                        if let Some(similar) = similar(text, names.iter().copied()) {
                            let _ =
                                write!(message, "\n\n  tip: a similar value exists: '{similar}'");
                        }
                        return Err(message);
                    }
                }
            }
            Kind::UnixSeconds(_) => Value::Time(
                parse_unix_seconds(text()?)
                    .ok_or_else(|| invalid(": expected Unix seconds such as 1795805164.166779"))?,
            ),
        })
    }

    /// The option's line in the help: names, description, default and possible values.
    fn help_row(&self) -> (String, String) {
        let short = self.short.map_or(String::from("    "), |c| format!("-{c}, "));
        let mut names = format!("  {short}--{}", self.long);
        if let Some(value) = self.value_name() {
            let _ = write!(names, " <{value}>");
        }
        let mut description = self.help.to_string();
        match self.kind {
            Kind::Integer { default: Some(default), .. } => {
                let _ = write!(description, " [default: {default}]");
            }
            Kind::Choice { choices, default, .. } => {
                let _ = write!(description, " [default: {}]", choices[default].name);
                let width = choices.iter().map(|c| c.name.len()).max().unwrap_or(0) + 1;
                for choice in choices {
                    let name = format!("{}:", choice.name);
                    let _ = write!(description, "\n  {name:<width$} {}", choice.help);
                }
            }
            _ => {}
        }
        (names, description)
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed<C> {
    /// Run this command with these arguments.
    Command(C, Matches),
    /// Print this text (the help or the version) to standard output and exit with status 0.
    Print(String),
}

/// A usage error: the whole text to print to standard error (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One parsed option value.
#[derive(Debug)]
enum Value {
    Switch,
    Path(PathBuf),
    Text(String),
    Integer(u64),
    Choice(usize),
    Time(Timestamp),
}

/// The options and operands of a command line, read back through the options' declarations.
#[derive(Debug, Default)]
pub struct Matches {
    /// (long name, value), in command-line order.
    given: Vec<(&'static str, Value)>,
    operands: Vec<OsString>,
}

impl Matches {
    fn values<'m>(&'m self, opt: &'m Opt) -> impl Iterator<Item = &'m Value> + 'm {
        self.given.iter().filter(move |(long, _)| *long == opt.long).map(|(_, v)| v)
    }

    fn has(&self, long: &str) -> bool {
        self.given.iter().any(|(l, _)| *l == long)
    }

    /// A [`Kind::Switch`] option: whether it was given.
    pub fn switch(&self, opt: &Opt) -> bool {
        self.values(opt).next().is_some()
    }

    /// A [`Kind::Path`] option's value.
    pub fn path(&self, opt: &Opt) -> Option<PathBuf> {
        self.values(opt).find_map(|v| match v {
            Value::Path(p) => Some(p.clone()),
            _ => None,
        })
    }

    /// A [`Kind::Text`] option's value.
    pub fn text(&self, opt: &Opt) -> Option<String> {
        self.texts(opt).pop()
    }

    /// A [`Kind::TextList`] option's values, in command-line order.
    pub fn texts(&self, opt: &Opt) -> Vec<String> {
        self.values(opt)
            .filter_map(|v| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// A [`Kind::Integer`] option's value, or its default.
    pub fn integer(&self, opt: &Opt) -> Option<u64> {
        let given = self.values(opt).find_map(|v| match v {
            Value::Integer(n) => Some(*n),
            _ => None,
        });
        match opt.kind {
            Kind::Integer { default, .. } => given.or(default),
            _ => None,
        }
    }

    /// A [`Kind::Choice`] option's value (an index into its choices), or its default.
    pub fn choice(&self, opt: &Opt) -> usize {
        let given = self.values(opt).find_map(|v| match v {
            Value::Choice(index) => Some(*index),
            _ => None,
        });
        match opt.kind {
            Kind::Choice { default, .. } => given.unwrap_or(default),
            _ => 0,
        }
    }

    /// A [`Kind::UnixSeconds`] option's value.
    pub fn timestamp(&self, opt: &Opt) -> Option<Timestamp> {
        self.values(opt).find_map(|v| match v {
            Value::Time(t) => Some(*t),
            _ => None,
        })
    }

    /// The operands, in command-line order, as paths.
    pub fn operands(&self) -> Vec<PathBuf> {
        self.operands.iter().map(PathBuf::from).collect()
    }
}

impl<C: Copy> Program<C> {
    /// Parses a whole command line, `args[0]` being the program's name.
    pub fn parse(&self, args: &[OsString]) -> Result<Parsed<C>, UsageError> {
        let bin = args
            .first()
            .and_then(|a| Path::new(a).file_name())
            .map_or(self.name.to_string(), |n| n.to_string_lossy().into_owned());
        let Some(first) = args.get(1) else {
            // No command: the help, as an error.
            return Err(UsageError(self.help(&bin)));
        };
        let first = first.to_string_lossy();
        match &*first {
            "-h" | "--help" => Ok(Parsed::Print(self.help(&bin))),
            "-V" | "--version" => Ok(Parsed::Print(format!("{} {}\n", self.name, self.version))),
            "help" => match args.get(2) {
                None => Ok(Parsed::Print(self.help(&bin))),
                Some(name) => Ok(Parsed::Print(self.command(&bin, name)?.help(&bin))),
            },
            flag if flag.starts_with('-') && flag.len() > 1 => {
                Err(self.error(&bin, &format!("unexpected argument '{flag}' found")))
            }
            _ => self.command(&bin, &args[1])?.parse(&bin, &args[2..]),
        }
    }

    fn command(&self, bin: &str, name: &OsStr) -> Result<&Command<C>, UsageError> {
        let name = name.to_string_lossy();
        self.commands.iter().find(|c| c.name == name).ok_or_else(|| {
            let mut message = format!("unrecognized subcommand '{name}'");
            if let Some(similar) = similar(&name, self.commands.iter().map(|c| c.name)) {
                let _ = write!(message, "\n\n  tip: a similar subcommand exists: '{similar}'");
            }
            self.error(bin, &message)
        })
    }

    fn error(&self, bin: &str, message: &str) -> UsageError {
        usage_error(message, &format!("{bin} <COMMAND>"))
    }

    /// The program's help: its commands and options.
    pub fn help(&self, bin: &str) -> String {
        let mut commands: Vec<(String, String)> =
            self.commands.iter().map(|c| (format!("  {}", c.name), c.about.to_string())).collect();
        commands.push((
            "  help".to_string(),
            "Print this message or the help of the given subcommand(s)".to_string(),
        ));
        let options = [
            ("  -h, --help".to_string(), "Print help".to_string()),
            ("  -V, --version".to_string(), "Print version".to_string()),
        ];
        format!(
            "{}\n\nUsage: {bin} <COMMAND>\n\nCommands:\n{}\nOptions:\n{}",
            self.about,
            rows(&commands),
            rows(&options)
        )
    }
}

impl<C: Copy> Command<C> {
    fn usage(&self, bin: &str) -> String {
        match &self.operands {
            Some(o) => format!("{bin} {} [OPTIONS] <{}>...", self.name, o.value_name),
            None => format!("{bin} {} [OPTIONS]", self.name),
        }
    }

    fn error(&self, bin: &str, message: &str) -> UsageError {
        usage_error(message, &self.usage(bin))
    }

    /// The command's help: its operands and every option.
    pub fn help(&self, bin: &str) -> String {
        let mut text = format!("{}\n\nUsage: {}\n\n", self.about, self.usage(bin));
        if let Some(o) = &self.operands {
            let row = (format!("  <{}>...", o.value_name), o.help.to_string());
            let _ = write!(text, "Arguments:\n{}\n", rows(&[row]));
        }
        let mut options: Vec<(String, String)> = self.options.iter().map(Opt::help_row).collect();
        options.push(("  -h, --help".to_string(), "Print help".to_string()));
        let _ = write!(text, "Options:\n{}", rows(&options));
        text
    }

    fn option(&self, bin: &str, arg: &str) -> Result<&Opt, UsageError> {
        let found = match arg.strip_prefix("--") {
            Some(long) => self.options.iter().find(|o| o.long == long),
            None => self.options.iter().find(|o| arg[1..].chars().eq(o.short)),
        };
        found.ok_or_else(|| {
            let mut message = format!("unexpected argument '{arg}' found");
            let longs = self.options.iter().map(|o| o.long);
            match arg.strip_prefix("--").and_then(|long| similar(long, longs)) {
                Some(similar) => {
                    let _ = write!(message, "\n\n  tip: a similar argument exists: '--{similar}'");
                }
                None if self.operands.is_some() => {
                    let _ =
                        write!(message, "\n\n  tip: to pass '{arg}' as a value, use '-- {arg}'");
                }
                None => {}
            }
            self.error(bin, &message)
        })
    }

    fn parse(&self, bin: &str, args: &[OsString]) -> Result<Parsed<C>, UsageError> {
        let mut matches = Matches::default();
        let mut args = args.iter();
        let mut options_ended = false;
        while let Some(arg) = args.next() {
            let bytes = arg.as_bytes();
            if options_ended || bytes.len() < 2 || bytes[0] != b'-' {
                if self.operands.is_none() {
                    let message = format!("unexpected argument '{}' found", arg.to_string_lossy());
                    return Err(self.error(bin, &message));
                }
                matches.operands.push(arg.clone());
                continue;
            }
            if bytes == b"--" {
                options_ended = true;
                continue;
            }
            if bytes == b"-h" || bytes == b"--help" {
                return Ok(Parsed::Print(self.help(bin)));
            }
            // The option's name, and the value written into the same argument if any:
            // `--name=value`, `-xvalue`, `-x=value`.
            let (name, inline) = if bytes.starts_with(b"--") {
                match bytes.iter().position(|&b| b == b'=') {
                    Some(eq) => (&bytes[..eq], Some(OsStr::from_bytes(&bytes[eq + 1..]))),
                    None => (bytes, None),
                }
            } else {
                let short_len = 1 + first_char_len(&bytes[1..]);
                let rest = &bytes[short_len..];
                let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                (&bytes[..short_len], (!rest.is_empty()).then(|| OsStr::from_bytes(rest)))
            };
            let opt = self.option(bin, &String::from_utf8_lossy(name))?;
            let value = match (&opt.kind, inline) {
                (Kind::Switch, None) => None,
                (Kind::Switch, Some(value)) => {
                    let message = format!(
                        "unexpected value '{}' for '{}' found; no more were expected",
                        value.to_string_lossy(),
                        opt.display()
                    );
                    return Err(self.error(bin, &message));
                }
                (_, Some(value)) => Some(value),
                (_, None) => match args.next() {
                    Some(next) if next.len() == 1 || !next.as_bytes().starts_with(b"-") => {
                        Some(next.as_os_str())
                    }
                    _ => {
                        let message = format!(
                            "a value is required for '{}' but none was supplied",
                            opt.display()
                        );
                        return Err(self.error(bin, &message));
                    }
                },
            };
            if matches.has(opt.long) && !matches!(opt.kind, Kind::TextList(_)) {
                let message =
                    format!("the argument '{}' cannot be used multiple times", opt.display());
                return Err(self.error(bin, &message));
            }
            let value = opt.parse(value).map_err(|message| self.error(bin, &message))?;
            matches.given.push((opt.long, value));
        }
        for opt in self.options {
            if let Some(other) = opt.conflicts_with
                && matches.has(opt.long)
                && let Some(other) =
                    self.options.iter().find(|o| o.long == other && matches.has(o.long))
            {
                let message = format!(
                    "the argument '{}' cannot be used with '{}'",
                    opt.display(),
                    other.display()
                );
                return Err(self.error(bin, &message));
            }
            if let Some(needed) = opt.requires
                && matches.has(opt.long)
                && !matches.has(needed)
                && let Some(needed) = self.options.iter().find(|o| o.long == needed)
            {
                let message =
                    format!("the argument '{}' requires '{}'", opt.display(), needed.display());
                return Err(self.error(bin, &message));
            }
        }
        if let Some(o) = &self.operands
            && matches.operands.is_empty()
        {
            let message = format!(
                "the following required arguments were not provided:\n  <{}>...",
                o.value_name
            );
            return Err(self.error(bin, &message));
        }
        Ok(Parsed::Command(self.id, matches))
    }
}

/// The length in bytes of the first character of `bytes` (1 if it is not UTF-8).
fn first_char_len(bytes: &[u8]) -> usize {
    let head = &bytes[..bytes.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    valid.chars().next().map_or(1, char::len_utf8)
}

fn usage_error(message: &str, usage: &str) -> UsageError {
    UsageError(format!(
        "error: {message}\n\nUsage: {usage}\n\nFor more information, try '--help'.\n"
    ))
}

/// Two columns, the second aligned two spaces after the widest first; continuation lines of
/// the second column are indented to it.
fn rows(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(left, _)| left.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for (left, right) in rows {
        let indent = format!("\n{:width$}  ", "");
        let _ = writeln!(text, "{left:<width$}  {}", right.replace('\n', &indent));
    }
    text
}

/// The candidate closest to `word`, if it is a likely typo of it (an edit distance of at most
/// a third of its length, at least 1).
fn similar<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(distance, c)| distance <= (c.len() / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Unix seconds with up to six decimals (`1795805164.166779`), as a timestamp.
fn parse_unix_seconds(text: &str) -> Option<Timestamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let micros: u64 = format!("{fraction:0<6}").parse().ok()?;
    seconds.checked_mul(1_000_000)?.checked_add(micros).map(Timestamp::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_names_are_typos_within_a_third_of_the_length() {
        assert_eq!(edit_distance("frmat", "format"), 1);
        assert_eq!(edit_distance("", "run"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let names = ["analyze", "run"];
        assert_eq!(similar("anlyze", names.into_iter()), Some("analyze"));
        assert_eq!(similar("analzye", names.into_iter()), Some("analyze"));
        assert_eq!(similar("rn", names.into_iter()), Some("run"));
        assert_eq!(similar("bogus", names.into_iter()), None);
        assert_eq!(similar("x", ["all"].into_iter()), None);
    }
}
