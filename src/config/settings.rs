//! How a configuration table is declared: once, with `settings!`, which gives the struct
//! (serde, every key optional, unknown keys refused), its defaults, and
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
}

impl<C> std::fmt::Debug for Setting<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting").field("key", &self.key).field("reload", &self.reload).finish()
    }
}

/// A configuration table whose keys are declared with `settings!`.
pub trait Settings: Sized + 'static {
    /// Every key, in declaration order.
    const SETTINGS: &'static [Setting<Self>];

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
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(default, deny_unknown_fields)]
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
                },
            )*];
        }
    };
}

pub(crate) use settings;
