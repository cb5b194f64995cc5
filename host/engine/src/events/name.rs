//! An event's type name, read from serde's own tag, so the name in the JSON (`"type"`), the
//! SSE `event:` line and the event log's `kind` column are one spelling that cannot drift.
//!
//! [`tag_of`] runs the derived `Serialize` of an internally tagged enum against a serializer
//! that keeps the value of the tag field and ignores everything else.

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The value of the `tag` field that `value` serializes with, if it serializes as a struct
/// with such a field.
pub(crate) fn tag_of<T: Serialize + ?Sized>(value: &T, tag: &'static str) -> Option<&'static str> {
    value.serialize(TagCatcher { tag }).ok().flatten()
}

/// Why the catcher stopped: it only understands structs with a string tag.
#[derive(Debug)]
struct NotTagged;

impl std::fmt::Display for NotTagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an internally tagged struct")
    }
}

impl std::error::Error for NotTagged {}

impl ser::Error for NotTagged {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotTagged
    }
}

struct TagCatcher {
    tag: &'static str,
}

/// Collects the tag while the struct's fields go by.
struct Fields {
    tag: &'static str,
    found: Option<&'static str>,
}

/// Serializes a tag value: serde's derive passes the variant name as a `&'static str`, which
/// reaches `serialize_str` as a shorter-lived `&str`, so it is matched against the names the
/// enum was asked about (see [`StaticName`]).
struct StaticName;

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, NotTagged> { Err(NotTagged) })*
    };
}

impl ser::Serializer for TagCatcher {
    type Ok = Option<&'static str>;
    type Error = NotTagged;
    type SerializeSeq = Impossible<Self::Ok, NotTagged>;
    type SerializeTuple = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleVariant = Impossible<Self::Ok, NotTagged>;
    type SerializeMap = Impossible<Self::Ok, NotTagged>;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Impossible<Self::Ok, NotTagged>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields, NotTagged> {
        Ok(Fields {
            tag: self.tag,
            found: None,
        })
    }

    refuse! {
        serialize_bool(bool) -> Self::Ok;
        serialize_i8(i8) -> Self::Ok;
        serialize_i16(i16) -> Self::Ok;
        serialize_i32(i32) -> Self::Ok;
        serialize_i64(i64) -> Self::Ok;
        serialize_u8(u8) -> Self::Ok;
        serialize_u16(u16) -> Self::Ok;
        serialize_u32(u32) -> Self::Ok;
        serialize_u64(u64) -> Self::Ok;
        serialize_f32(f32) -> Self::Ok;
        serialize_f64(f64) -> Self::Ok;
        serialize_char(char) -> Self::Ok;
        serialize_str(&str) -> Self::Ok;
        serialize_bytes(&[u8]) -> Self::Ok;
        serialize_none() -> Self::Ok;
        serialize_unit() -> Self::Ok;
        serialize_unit_struct(&'static str) -> Self::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> Self::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = Option<&'static str>;
    type Error = NotTagged;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), NotTagged> {
        if key == self.tag && self.found.is_none() {
            self.found = value.serialize(StaticName)?;
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, NotTagged> {
        Ok(self.found)
    }
}

impl ser::Serializer for StaticName {
    type Ok = Option<&'static str>;
    type Error = NotTagged;
    type SerializeSeq = Impossible<Self::Ok, NotTagged>;
    type SerializeTuple = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeTupleVariant = Impossible<Self::Ok, NotTagged>;
    type SerializeMap = Impossible<Self::Ok, NotTagged>;
    type SerializeStruct = Impossible<Self::Ok, NotTagged>;
    type SerializeStructVariant = Impossible<Self::Ok, NotTagged>;

    fn serialize_str(self, name: &str) -> Result<Self::Ok, NotTagged> {
        // serde hands the tag over as `&str`; intern it once per distinct name so callers get
        // a `&'static str` without allocating per event.
        Ok(Some(intern(name)))
    }

    refuse! {
        serialize_bool(bool) -> Self::Ok;
        serialize_i8(i8) -> Self::Ok;
        serialize_i16(i16) -> Self::Ok;
        serialize_i32(i32) -> Self::Ok;
        serialize_i64(i64) -> Self::Ok;
        serialize_u8(u8) -> Self::Ok;
        serialize_u16(u16) -> Self::Ok;
        serialize_u32(u32) -> Self::Ok;
        serialize_u64(u64) -> Self::Ok;
        serialize_f32(f32) -> Self::Ok;
        serialize_f64(f64) -> Self::Ok;
        serialize_char(char) -> Self::Ok;
        serialize_bytes(&[u8]) -> Self::Ok;
        serialize_none() -> Self::Ok;
        serialize_unit() -> Self::Ok;
        serialize_unit_struct(&'static str) -> Self::Ok;
        serialize_unit_variant(&'static str, u32, &'static str) -> Self::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NotTagged> {
        Err(NotTagged)
    }
}

/// The one `&'static str` for a tag name. The set of names is the enum's variants, so the
/// leaked strings are bounded by the number of event types.
fn intern(name: &str) -> &'static str {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[derive(serde::Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Sample {
        FirstThing {
            a: u32,
            b: String,
        },
        #[serde(rename = "renamed")]
        Second {},
    }

    #[test]
    fn reads_the_tag_as_serde_writes_it() {
        let first = Sample::FirstThing {
            a: 1,
            b: "x".into(),
        };
        assert_eq!(tag_of(&first, "type"), Some("first_thing"));
        assert_eq!(tag_of(&Sample::Second {}, "type"), Some("renamed"));
        assert_eq!(tag_of(&first, "kind"), None);
        assert_eq!(tag_of(&3u32, "type"), None);
        // The same name twice is the same interned string.
        assert!(std::ptr::eq(
            tag_of(&first, "type").unwrap(),
            tag_of(
                &Sample::FirstThing {
                    a: 2,
                    b: "y".into()
                },
                "type"
            )
            .unwrap()
        ));
    }
}
