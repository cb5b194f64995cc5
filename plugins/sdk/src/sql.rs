//! SQL on the databases the pipeline granted, for control-plane work (DDL, lookups, history
//! rows), never once per data row. Only a host has databases: natively (unit tests) a call
//! panics, so keep SQL generation in plain functions and test those.
//!
//! ```no_run
//! use weir_sdk::{Error, Value, sql::Connection};
//!
//! fn forget(id: i64) -> Result<usize, Error> {
//!     let db = Connection::open("ledger")?;
//!     db.execute("DELETE FROM seen WHERE id = ?1", &[Value::Integer(id)])?;
//!     Ok(db.query("SELECT id FROM seen", &[])?.rows.len())
//! }
//! ```

pub use crate::bindings::extractor::weir::plugin::sql::{Connection, Dialect, QueryResult};

impl QueryResult {
    /// The position of result column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// `name` as an SQLite identifier: in double quotes, inner quotes doubled, so any table or
/// column name (spaces, keywords, quotes) is safe to splice into a statement.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_identifier("amount"), r#""amount""#);
        assert_eq!(quote_identifier(r#"a "b" c"#), r#""a ""b"" c""#);
    }
}
