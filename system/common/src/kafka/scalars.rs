//! An event payload read for its top-level numbers and booleans only.
//!
//! A completed task's event carries its generated code, kilobytes of escaped
//! JSON. The consumers that count events (audit, analytics, replay) read an
//! id and a few numbers of it; parsing the whole payload into a
//! `serde_json::Value` unescaped and copied the code once per group per
//! event. Here nested objects and arrays are skipped without being decoded,
//! and strings are dropped as they are read.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The payload's top-level fields whose values are numbers, booleans or
/// null; every other field is left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayloadScalars(pub Map<String, Value>);

impl From<PayloadScalars> for Value {
    fn from(scalars: PayloadScalars) -> Value {
        Value::Object(scalars.0)
    }
}

impl<'de> Deserialize<'de> for PayloadScalars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = PayloadScalars;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event payload")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PayloadScalars, A::Error> {
                let mut fields = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let Scalar(Some(value)) = map.next_value()? {
                        fields.insert(key, value);
                    }
                }
                Ok(PayloadScalars(fields))
            }

            // A payload that is not an object has no fields.
            fn visit_unit<E: de::Error>(self) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<PayloadScalars, E> {
                Ok(PayloadScalars::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<PayloadScalars, A::Error> {
                drain_seq(seq)?;
                Ok(PayloadScalars::default())
            }
        }
        deserializer.deserialize_any(Fields)
    }
}

/// One field's value: kept when it is a number, a boolean or null.
struct Scalar(Option<Value>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kept;
        impl<'de> Visitor<'de> for Kept {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(Some(Value::Null)))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(Value::Bool(v))))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.into())))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.into())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(serde_json::Number::from_f64(v).map(Value::Number)))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                // IgnoredAny takes serde_json's skipping path: strings are
                // scanned for their end, not unescaped.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq)?;
                Ok(Scalar(None))
            }
        }
        deserializer.deserialize_any(Kept)
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{AgentEvent, completed_event};

    #[test]
    fn only_top_level_numbers_booleans_and_nulls_are_kept() {
        let payload = json!({
            "duration_ms": 1250,
            "cost_dollars": 0.0042,
            "delta": -3,
            "cache_hit": false,
            "project": null,
            "attempt_note": "a \"quoted\"\nline",
            "result": { "code": "fn main() {\n    println!(\"{}\", [1, 2]);\n}\n", "tokens": 9 },
            "tags": [1, {"a": [2]}, "x"],
        });
        let scalars: PayloadScalars = serde_json::from_value(payload.clone()).unwrap();
        let from_text: PayloadScalars = serde_json::from_str(&payload.to_string()).unwrap();
        assert_eq!(scalars, from_text);
        assert_eq!(
            Value::from(scalars),
            json!({ "duration_ms": 1250, "cost_dollars": 0.0042, "delta": -3, "cache_hit": false, "project": null })
        );
        for not_an_object in ["null", "3", "\"x\"", "[1, [2]]"] {
            let scalars: PayloadScalars = serde_json::from_str(not_an_object).unwrap();
            assert_eq!(scalars, PayloadScalars::default(), "{not_an_object}");
        }
        assert!(serde_json::from_str::<PayloadScalars>(r#"{"a": [1, }"#).is_err(), "malformed JSON is refused");
    }

    #[test]
    fn an_event_read_for_its_scalars_is_the_event_with_those_fields() {
        let event = completed_event(json!({ "duration_ms": 7, "result": { "code": "x\ny" } }));
        let json = serde_json::to_vec(&event).unwrap();
        let read: AgentEvent<PayloadScalars> = serde_json::from_slice(&json).unwrap();
        let mut expected = event.clone();
        expected.payload = json!({ "duration_ms": 7 });
        assert_eq!(read.map_payload(Value::from), expected);
    }
}
