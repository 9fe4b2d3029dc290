//! A JSON tree that keeps object members in document order and refuses duplicate keys.
//!
//! `serde_json::Value` keeps the last of two equal keys silently; in a policy that would let
//! `{"Effect": "Deny", ..., "Effect": "Allow"}` mean something other than what a reviewer reads,
//! so a document with a duplicate key is malformed.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value.
#[derive(Debug)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number, as its JSON text (`serde_json::Number`'s display).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in document order; keys are unique.
    Object(Vec<(String, Json)>),
}

/// The error a duplicate key raises inside the deserializer (recognised by its prefix).
pub(crate) const DUPLICATE_KEY: &str = "duplicate key ";

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY}{key}")));
            }
            let value = map.next_value::<Json>()?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Parses a document. Err carries the duplicate key's name, or None for any other error.
pub(crate) fn parse(text: &[u8]) -> Result<Json, Option<String>> {
    serde_json::from_slice::<Json>(text).map_err(|e| {
        let message = e.to_string();
        message
            .strip_prefix(DUPLICATE_KEY)
            .map(|rest| match rest.rfind(" at line ") {
                Some(at) => rest[..at].to_owned(),
                None => rest.to_owned(),
            })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn keeps_order_and_refuses_duplicates() {
        let j = parse(br#"{"b": 1, "a": [true, null, "x", 1.5]}"#).unwrap();
        let Json::Object(m) = j else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        assert_eq!(parse(br#"{"a": 1, "a": 2}"#).unwrap_err(), Some("a".to_owned()));
        assert_eq!(
            parse(br#"{"x": {"Effect": 1, "Effect": 2}}"#).unwrap_err(),
            Some("Effect".to_owned())
        );
        assert_eq!(parse(b"{").unwrap_err(), None);
    }
}
