//! The index's mapping when the plugin creates it: each column's field type from its kind,
//! `dynamic: strict` so that nothing but the stream's columns ever enters the index.

use serde_json::{Map, Value, json};
use weir_sdk::{Kind, Schema};

/// The field mapping of a column of `kind`.
pub(crate) fn field(kind: Kind) -> Value {
    match kind {
        // Full-text search on the words, exact matches and sorting on `<name>.keyword`.
        Kind::Text => json!({
            "type": "text",
            "fields": { "keyword": { "type": "keyword", "ignore_above": 256 } }
        }),
        Kind::Integer => json!({ "type": "long" }),
        Kind::Real => json!({ "type": "double" }),
        // Kept exactly as text in `_source`; indexed as a number for range queries.
        Kind::Decimal => json!({ "type": "double" }),
        Kind::Boolean => json!({ "type": "boolean" }),
        Kind::Date | Kind::Timestamp => json!({ "type": "date" }),
        Kind::Blob => json!({ "type": "binary" }),
        // Kept in `_source`, not indexed: its shape is the source's business.
        Kind::Json => json!({ "type": "object", "enabled": false }),
    }
}

/// `properties` for `columns` of `schema`.
pub(crate) fn properties<'a>(
    schema: &'a Schema,
    columns: impl Iterator<Item = &'a str>,
) -> Map<String, Value> {
    columns
        .filter_map(|name| schema.column(name))
        .map(|c| (c.name.clone(), field(c.kind)))
        .collect()
}

/// The mappings of a new index for `schema`.
pub(crate) fn derived(schema: &Schema) -> Map<String, Value> {
    let all = properties(schema, schema.columns.iter().map(|c| c.name.as_str()));
    let mut m = Map::new();
    m.insert("dynamic".into(), Value::String("strict".into()));
    m.insert("properties".into(), Value::Object(all));
    m
}

/// The columns of `schema` missing from an index's `GET /<index>/_mapping` answer.
pub(crate) fn missing<'a>(schema: &'a Schema, answer: &Value) -> Vec<&'a str> {
    // `{"<concrete index>": {"mappings": {"properties": {…}}}}`; an alias answers with its
    // index's name, so take the first entry whatever its name.
    let known = answer
        .as_object()
        .and_then(|indexes| indexes.values().next())
        .and_then(|index| index.pointer("/mappings/properties"))
        .and_then(Value::as_object);
    schema
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| known.is_none_or(|k| !k.contains_key(*name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::Column;

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
                Column::new("visit", Kind::Date, true),
            ],
            primary_key: vec![],
        }
    }

    #[test]
    fn a_new_index_maps_every_column_and_nothing_else() {
        let m = Value::Object(derived(&schema()));
        assert_eq!(m["dynamic"], "strict");
        assert_eq!(m["properties"]["id"], json!({"type": "long"}));
        assert_eq!(
            m["properties"]["name"]["fields"]["keyword"]["type"],
            "keyword"
        );
        assert_eq!(m["properties"]["visit"], json!({"type": "date"}));
        assert_eq!(m["properties"].as_object().unwrap().len(), 3);
    }

    #[test]
    fn columns_an_existing_index_lacks_are_found() {
        let answer = json!({"patients-v2": {"mappings": {"properties": {"id": {"type": "long"}}}}});
        assert_eq!(missing(&schema(), &answer), ["name", "visit"]);
        assert_eq!(
            missing(&schema(), &json!({"p": {"mappings": {}}})),
            ["id", "name", "visit"]
        );
    }
}
