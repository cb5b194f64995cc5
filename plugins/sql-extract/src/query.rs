//! The SQL `sql-extract` runs, as pure functions of the plan, so it is tested without a
//! database. Every name is quoted; every value is a parameter (`?N`, which the host rewrites
//! for PostgreSQL).
//!
//! Reading is keyset pagination: `WHERE (watermark, key…) > (last read) ORDER BY watermark,
//! key… LIMIT n`. Each batch is one statement, so it sees one consistent snapshot, and no
//! OFFSET means a batch costs the same at the end of a big table as at its start. Rows whose
//! watermark or key is NULL never compare greater than anything, so they are counted and
//! reported instead of being silently skipped.

use weir_sdk::Kind;
use weir_sdk::sql::{Dialect, quote_identifier as quote};

/// A column used for ordering (the watermark, then the key columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderColumn {
    pub name: String,
    pub kind: Kind,
}

/// Which rows of the source a partition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionFilter {
    /// The whole source.
    All,
    /// Rows whose `column`, as text, is `value` (`None`: is NULL).
    Value {
        column: String,
        value: Option<String>,
    },
}

/// What one partition reads and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub dialect: Dialect,
    /// The `FROM` item: a quoted table, or `(<query>) AS "q"`.
    pub from: String,
    /// The columns handed out, in order.
    pub output: Vec<String>,
    /// The watermark (if any) then the key columns.
    pub order: Vec<OrderColumn>,
    pub partition: PartitionFilter,
}

/// The `FROM` item of a table.
pub fn from_table(table: &str) -> String {
    quote(table)
}

/// The `FROM` item of a query.
pub fn from_query(query: &str) -> String {
    format!("({query}) AS \"q\"")
}

/// The columns and declared types of a table.
pub fn describe_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => r#"SELECT "name", "type", "notnull", "pk" FROM pragma_table_info(?1)"#,
        // The primary key's position per column (0 when not in it), from the standard views,
        // in the grant's schema (the connection's current schema).
        Dialect::Postgresql => {
            "SELECT c.column_name, c.data_type, CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, \
             COALESCE((SELECT k.ordinal_position FROM information_schema.table_constraints t \
             JOIN information_schema.key_column_usage k ON k.constraint_schema = t.constraint_schema \
             AND k.constraint_name = t.constraint_name \
             WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema \
             AND t.table_name = c.table_name AND k.column_name = c.column_name), 0) \
             FROM information_schema.columns c \
             WHERE c.table_schema = current_schema() AND c.table_name = ?1 \
             ORDER BY c.ordinal_position"
        }
    }
}

/// The result columns of a query, without reading a row.
pub fn describe_query(query: &str) -> String {
    format!("SELECT * FROM {} LIMIT 0", from_query(query))
}

/// The distinct values of the partition column, as text.
pub fn partition_values(from: &str, column: &str) -> String {
    let c = quote(column);
    format!("SELECT DISTINCT CAST({c} AS TEXT) FROM {from}")
}

impl ReadPlan {
    /// The partition's condition and its parameters, numbered from `first`.
    fn partition_condition(&self, first: usize) -> (Option<String>, Vec<String>) {
        match &self.partition {
            PartitionFilter::All => (None, Vec::new()),
            PartitionFilter::Value {
                column,
                value: None,
            } => (Some(format!("{} IS NULL", quote(column))), Vec::new()),
            PartitionFilter::Value {
                column,
                value: Some(value),
            } => (
                Some(format!("CAST({} AS TEXT) = ?{first}", quote(column))),
                vec![value.clone()],
            ),
        }
    }

    /// The conditions every statement shares and the partition's parameter values.
    fn base_conditions(&self) -> (Vec<String>, Vec<String>) {
        let (partition, params) = self.partition_condition(1);
        let mut conditions: Vec<String> = partition.into_iter().collect();
        conditions.extend(
            self.order
                .iter()
                .map(|c| format!("{} IS NOT NULL", quote(&c.name))),
        );
        (conditions, params)
    }

    /// `(watermark, key…) > (?a, ?b, …)`, the parameters numbered from `first`. PostgreSQL
    /// parameters come as text (the checkpoint keeps its values as text) and are cast to the
    /// column's type, so they compare as the column does.
    fn after_condition(&self, first: usize) -> String {
        let columns: Vec<String> = self.order.iter().map(|c| quote(&c.name)).collect();
        let params: Vec<String> = self
            .order
            .iter()
            .enumerate()
            .map(|(i, c)| match self.dialect {
                Dialect::Sqlite => format!("?{}", first + i),
                Dialect::Postgresql => format!(
                    "CAST(CAST(?{} AS TEXT) AS {})",
                    first + i,
                    crate::kinds::postgres_cast(c.kind)
                ),
            })
            .collect();
        format!("({}) > ({})", columns.join(", "), params.join(", "))
    }

    fn where_clause(conditions: &[String]) -> String {
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }

    /// The next batch: the output columns, then the ordering columns again (as text on
    /// PostgreSQL) for the checkpoint. Returns the SQL and how many partition parameters come
    /// before the `after` values.
    pub fn batch(&self, after: bool, limit: u32) -> (String, Vec<String>) {
        let (mut conditions, params) = self.base_conditions();
        if after {
            conditions.push(self.after_condition(params.len() + 1));
        }
        let mut select: Vec<String> = self.output.iter().map(|c| quote(c)).collect();
        select.extend(self.order.iter().map(|c| match self.dialect {
            Dialect::Sqlite => quote(&c.name),
            Dialect::Postgresql => format!("CAST({} AS TEXT)", quote(&c.name)),
        }));
        let order: Vec<String> = self.order.iter().map(|c| quote(&c.name)).collect();
        let sql = format!(
            "SELECT {} FROM {}{} ORDER BY {} LIMIT {limit}",
            select.join(", "),
            self.from,
            Self::where_clause(&conditions),
            order.join(", ")
        );
        (sql, params)
    }

    /// How many rows are left after `after` (or in all), for progress.
    pub fn count_remaining(&self, after: bool) -> (String, Vec<String>) {
        let (mut conditions, params) = self.base_conditions();
        if after {
            conditions.push(self.after_condition(params.len() + 1));
        }
        let sql = format!(
            "SELECT count(*) FROM {}{}",
            self.from,
            Self::where_clause(&conditions)
        );
        (sql, params)
    }

    /// How many rows of the partition have a NULL watermark or key (never read).
    pub fn count_unreadable(&self) -> (String, Vec<String>) {
        let (partition, params) = self.partition_condition(1);
        let nulls: Vec<String> = self
            .order
            .iter()
            .map(|c| format!("{} IS NULL", quote(&c.name)))
            .collect();
        let mut conditions: Vec<String> = partition.into_iter().collect();
        conditions.push(format!("({})", nulls.join(" OR ")));
        let sql = format!(
            "SELECT count(*) FROM {}{}",
            self.from,
            Self::where_clause(&conditions)
        );
        (sql, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dialect: Dialect, partition: PartitionFilter) -> ReadPlan {
        ReadPlan {
            dialect,
            from: from_table("appointments"),
            output: vec!["id".into(), "starts_at".into(), "updated_at".into()],
            order: vec![
                OrderColumn {
                    name: "updated_at".into(),
                    kind: Kind::Timestamp,
                },
                OrderColumn {
                    name: "id".into(),
                    kind: Kind::Integer,
                },
            ],
            partition,
        }
    }

    #[test]
    fn sqlite_batches_are_keyset_pages() {
        let p = plan(Dialect::Sqlite, PartitionFilter::All);
        assert_eq!(
            p.batch(false, 500).0,
            r#"SELECT "id", "starts_at", "updated_at", "updated_at", "id" FROM "appointments" WHERE "updated_at" IS NOT NULL AND "id" IS NOT NULL ORDER BY "updated_at", "id" LIMIT 500"#
        );
        assert_eq!(
            p.batch(true, 500).0,
            r#"SELECT "id", "starts_at", "updated_at", "updated_at", "id" FROM "appointments" WHERE "updated_at" IS NOT NULL AND "id" IS NOT NULL AND ("updated_at", "id") > (?1, ?2) ORDER BY "updated_at", "id" LIMIT 500"#
        );
    }

    #[test]
    fn postgres_batches_cast_the_checkpoint_back_to_the_column_types() {
        let p = plan(
            Dialect::Postgresql,
            PartitionFilter::Value {
                column: "clinic".into(),
                value: Some("7".into()),
            },
        );
        let (sql, params) = p.batch(true, 100);
        assert_eq!(
            sql,
            r#"SELECT "id", "starts_at", "updated_at", CAST("updated_at" AS TEXT), CAST("id" AS TEXT) FROM "appointments" WHERE CAST("clinic" AS TEXT) = ?1 AND "updated_at" IS NOT NULL AND "id" IS NOT NULL AND ("updated_at", "id") > (CAST(CAST(?2 AS TEXT) AS timestamptz), CAST(CAST(?3 AS TEXT) AS bigint)) ORDER BY "updated_at", "id" LIMIT 100"#
        );
        assert_eq!(params, vec!["7".to_owned()]);
    }

    #[test]
    fn null_partitions_and_unreadable_rows_are_counted() {
        let p = plan(
            Dialect::Sqlite,
            PartitionFilter::Value {
                column: "clinic".into(),
                value: None,
            },
        );
        assert_eq!(
            p.count_unreadable().0,
            r#"SELECT count(*) FROM "appointments" WHERE "clinic" IS NULL AND ("updated_at" IS NULL OR "id" IS NULL)"#
        );
        assert_eq!(
            p.count_remaining(true).0,
            r#"SELECT count(*) FROM "appointments" WHERE "clinic" IS NULL AND "updated_at" IS NOT NULL AND "id" IS NOT NULL AND ("updated_at", "id") > (?1, ?2)"#
        );
    }

    #[test]
    fn queries_are_read_as_a_subquery() {
        assert_eq!(
            describe_query("SELECT a, b FROM t JOIN u USING (id)"),
            r#"SELECT * FROM (SELECT a, b FROM t JOIN u USING (id)) AS "q" LIMIT 0"#
        );
        assert_eq!(
            partition_values(&from_table("t"), "region"),
            r#"SELECT DISTINCT CAST("region" AS TEXT) FROM "t""#
        );
    }
}
