//! How a configuration table is declared: once, with `settings!`, which gives the struct, its
//! defaults, its reading from and writing to a TOML table (every key optional, unknown keys
//! and wrong values refused with serde's words, naming the key; [`TomlValue`]), and
//! [`Settings::SETTINGS`]: every key with how a running daemon takes a new value of it.
//! Everything that walks the keys (the restart list of a reload, the sample file's test, the
//! UCI reader's types, the command line's overrides) reads them from there, so a key is
//! written down in one place.

/// How a running daemon takes a new value of a key on SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Used from the next window on.
    Live,
    /// Needs a restart (the captures, the listener, the user or the flow table are set up
    /// with it): a reload keeps the old value and names the key in its event.
    Restart,
}

/// One key of a configuration table.
pub struct Setting<C> {
    /// The key's name in the TOML table.
    pub key: &'static str,
    pub reload: Reload,
    /// Whether two configurations differ in this key.
    pub differs: fn(&C, &C) -> bool,
    /// Give `to` the key's value in `from`.
    pub copy: fn(&mut C, &C),
    /// Set the key from a TOML value ([`TomlValue::read`]).
    pub read: fn(&mut C, toml::Value) -> Result<(), String>,
    /// The key's value as TOML.
    pub write: fn(&C) -> toml::Value,
}

impl<C> std::fmt::Debug for Setting<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting").field("key", &self.key).field("reload", &self.reload).finish()
    }
}

/// A configuration table whose keys are declared with `settings!`.
pub trait Settings: Sized + Default + 'static {
    /// Every key, in declaration order.
    const SETTINGS: &'static [Setting<Self>];

    /// Read from a TOML table: an absent key keeps its default; an unknown key or a wrong
    /// value is an error that starts with the key.
    fn from_table(table: toml::Table) -> Result<Self, String> {
        let mut out = Self::default();
        for (key, value) in table {
            let Some(setting) = Self::SETTINGS.iter().find(|s| s.key == key) else {
                let keys: Vec<&str> = Self::SETTINGS.iter().map(|s| s.key).collect();
                return Err(unknown_key(&key, &keys));
            };
            (setting.read)(&mut out, value).map_err(|e| format!("{key}: {e}"))?;
        }
        Ok(out)
    }

    /// Every key as a TOML table.
    fn to_table(&self) -> toml::Table {
        Self::SETTINGS.iter().map(|s| (s.key.to_string(), (s.write)(self))).collect()
    }

    /// The keys that need a restart and differ between `self` and `new`; `new` takes
    /// `self`'s values of them.
    fn keep_restart_keys(&self, new: &mut Self) -> Vec<&'static str> {
        let mut kept = Vec::new();
        for s in Self::SETTINGS {
            if s.reload == Reload::Restart && (s.differs)(self, new) {
                (s.copy)(new, self);
                kept.push(s.key);
            }
        }
        kept
    }
}

/// A key's value as TOML has it: read with serde's words for a value it cannot take
/// (`invalid type: string "big", expected u32`), written back for the layers that merge
/// tables.
pub trait TomlValue: Sized {
    fn read(value: toml::Value) -> Result<Self, String>;
    fn write(&self) -> toml::Value;
}

/// `key: unknown field `key`, expected one of ...`, as serde words it.
pub fn unknown_key(key: &str, keys: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    format!("{key}: unknown field `{key}`, expected one of {}", keys.join(", "))
}

/// serde's error for a value of the wrong type.
pub fn invalid_type(value: &toml::Value, expected: &str) -> String {
    let found = match value {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(f) => format!("floating point `{f}`"),
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Datetime(d) => format!("datetime `{d}`"),
        toml::Value::Array(_) => "sequence".into(),
        toml::Value::Table(_) => "map".into(),
    };
    format!("invalid type: {found}, expected {expected}")
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl TomlValue for $t {
            fn read(value: toml::Value) -> Result<Self, String> {
                match value {
                    toml::Value::Integer(i) => <$t>::try_from(i).map_err(|_| {
                        format!("invalid value: integer `{i}`, expected {}", stringify!($t))
                    }),
                    other => Err(invalid_type(&other, stringify!($t))),
                }
            }

            fn write(&self) -> toml::Value {
                toml::Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}

unsigned!(u32, u64, usize);

impl TomlValue for f64 {
    fn read(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Float(f) => Ok(f),
            toml::Value::Integer(i) => Ok(i as f64),
            other => Err(invalid_type(&other, "f64")),
        }
    }

    fn write(&self) -> toml::Value {
        toml::Value::Float(*self)
    }
}

impl TomlValue for bool {
    fn read(value: toml::Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| invalid_type(&value, "a boolean"))
    }

    fn write(&self) -> toml::Value {
        toml::Value::Boolean(*self)
    }
}

impl TomlValue for String {
    fn read(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Ok(s),
            other => Err(invalid_type(&other, "a string")),
        }
    }

    fn write(&self) -> toml::Value {
        toml::Value::String(self.clone())
    }
}

impl TomlValue for Vec<String> {
    fn read(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Array(items) => items.into_iter().map(String::read).collect(),
            other => Err(invalid_type(&other, "a sequence")),
        }
    }

    fn write(&self) -> toml::Value {
        toml::Value::Array(self.iter().map(String::write).collect())
    }
}

/// Declare a configuration table: `key: Type = default, Live | Restart;` per key, each with
/// its doc comment.
macro_rules! settings {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $( $(#[doc = $doc:literal])* $key:ident : $ty:ty = $default:expr, $reload:ident; )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $key: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $key: $default, )* }
            }
        }

        impl $crate::config::settings::Settings for $name {
            const SETTINGS: &'static [$crate::config::settings::Setting<$name>] = &[$(
                $crate::config::settings::Setting {
                    key: stringify!($key),
                    reload: $crate::config::settings::Reload::$reload,
                    differs: |a, b| a.$key != b.$key,
                    copy: |to, from| to.$key = Clone::clone(&from.$key),
                    read: |to, value| {
                        to.$key = $crate::config::settings::TomlValue::read(value)?;
                        Ok(())
                    },
                    write: |from| $crate::config::settings::TomlValue::write(&from.$key),
                },
            )*];
        }
    };
}

pub(crate) use settings;
