//! Loading a binary's configuration file, and the duration syntax used in it.
//!
//! Each binary owns one `Config` struct (serde, `deny_unknown_fields`, a default
//! for every field). The file is read here; flags and environment variables are
//! applied afterwards by the binary's clap parser, so the precedence is
//! flag/env > file > default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema. The message names
    /// the line and the key.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// toml's description, which names the line, column and key.
        message: String,
    },
    /// A value parsed but makes no sense (a zero rate, an empty list, ...).
    #[error("invalid value for `{key}`: {reason}")]
    Value {
        /// The offending key, dotted (`rate_limit.capacity`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Value`].
    pub fn value(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Value { key: key.into(), reason: reason.into() }
    }
}

/// Reads `path` as TOML into `T`; `None` gives `T::default()`.
pub fn load_file<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = path else { return Ok(T::default()) };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse_toml(&text).map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })
}

/// Parses TOML text into `T`, flattening toml's multi-line report into one line.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|err| {
        let location = err.span().map(|span| {
            let line = text[..span.start].matches('\n').count() + 1;
            format!("line {line}: ")
        });
        format!("{}{}", location.unwrap_or_default(), err.message())
    })
}

/// Parses `250ms`, `5s`, `2m`, `1h` or a combination such as `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration (expected e.g. 250ms, 5s, 2m, 1h)"));
        }
        let value: f64 = rest[..digits].parse().map_err(|_| format!("`{text}` has a malformed number"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => value / 1e3,
            "us" | "µs" => value / 1e6,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("`{text}` needs a unit (ms, s, m or h)")),
            unit => return Err(format!("`{text}` has an unknown unit `{unit}` (use ms, s, m or h)")),
        };
        total = Duration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("`{text}` is longer than a duration can be"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `#[serde(with = "q2o_common::config::duration")]` for `Duration` fields written as `"5s"`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `"5s"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    /// Deserializes `"5s"`, `"250ms"`, ...
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>` (with `#[serde(default)]`): absent is `None`.
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `Some` as `"5s"` and `None` as nothing.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&super::super::format_duration(*d)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes `"5s"` as `Some`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let text = String::deserialize(d)?;
            super::super::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit `d`"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("28350692516026331h").unwrap_err().contains("longer than a duration can be"));
    }

    #[test]
    fn durations_round_trip_through_format() {
        for d in ["250ms", "5s", "2m", "1h", "0s"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        port: u16,
    }

    #[test]
    fn toml_errors_name_line_and_key() {
        let err = parse_toml::<Sample>("\n\nprot = 1\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(err.contains("prot"), "{err}");
    }
}
