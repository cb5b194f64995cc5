//! The rules plugin SQL runs under on a PostgreSQL grant — the same promise as the SQLite
//! authorizer (`weir_runtime::sql_guard`): a plugin may read and write tables of the granted
//! schema, create and alter them, and nothing else. It may not end or split the host's
//! transaction, change the session (`SET`, `RESET`, `set_config`, roles), reach the server's
//! files or programs (`COPY`, `pg_read_file`, large objects), run code (`DO`, `CALL`, `CREATE
//! FUNCTION`), take the host's advisory locks, or name another schema.
//!
//! PostgreSQL has no authorizer hook, so the statement is classified before it is sent: parsed
//! with `sqlparser`'s PostgreSQL dialect, and anything it cannot parse, or that is not on the
//! allow-list below, is refused. A statement the parser mis-reads can only be refused by the
//! server for running under a role without the right — which is why the README tells
//! operators to grant a role with only the grant's rights: defence in depth, not the first line.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, Expr, ObjectName, ObjectNamePart, ObjectType, Query, SetExpr, Statement,
    TableFactor, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// What a grant allows.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The granted schema: unqualified names resolve there, and it is the only one a name may
    /// be qualified with (queries may also read `information_schema` and `pg_catalog`).
    pub schema: &'a str,
    /// Only queries.
    pub read_only: bool,
    /// Tables only the host writes (lowercase).
    pub host_tables: &'a [String],
}

/// What an allowed statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A query: reads only.
    Read,
    /// Writes rows or changes a table.
    Write,
}

/// Prefix of the host's staging tables (temporary, per session).
pub const STAGING_PREFIX: &str = "_weir_stage";

/// Functions a plugin may not call, by name: they read or write server files, run SQL text the
/// classifier never saw, change settings, signal other sessions, or take advisory locks (the
/// host serializes partitions with them).
const DENIED_FUNCTIONS: &[&str] = &[
    "set_config",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "database_to_xml",
    "ts_stat",
    "ts_rewrite",
];

/// Function name prefixes a plugin may not call (same reasons).
const DENIED_FUNCTION_PREFIXES: &[&str] = &[
    "lo_",
    "dblink",
    "pg_advisory",
    "pg_try_advisory",
    "pg_read",
    "pg_ls_",
    "pg_stat_file",
    "pg_file",
    "pg_logical",
    "pg_replication",
    "pg_create_",
    "pg_drop_",
    "pg_terminate",
    "pg_cancel",
    "pg_reload",
    "pg_rotate",
    "pg_switch",
    "pg_promote",
    "pg_stat_reset",
    "pg_backup",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_import",
    "pg_notify",
    "pg_export",
    "pg_log_",
    "pg_wal",
];

/// Schemas a query may read besides the granted one: the catalogs loaders introspect.
const CATALOG_SCHEMAS: &[&str] = &["information_schema", "pg_catalog"];

/// Check one plugin statement (placeholders already `$N`). `Err` says why it is refused.
pub fn check(statement: &str, rules: &Rules<'_>) -> Result<Class, String> {
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, statement).map_err(|e| {
        format!(
            "statement refused: it is not a single statement weir can check ({e}); plugins may run one SELECT, INSERT, UPDATE, DELETE, CREATE/ALTER/DROP TABLE, CREATE/DROP INDEX or CREATE/DROP VIEW per call"
        )
    })?;
    let statement = match parsed.as_slice() {
        [one] => one,
        [] => return Err("statement refused: it is empty".to_owned()),
        _ => {
            return Err("statement refused: one statement per call (found several)".to_owned());
        }
    };
    let class = classify(statement)?;
    if class == Class::Write && rules.read_only {
        return Err(
            "statement refused: the database is granted read-only (only queries may run)"
                .to_owned(),
        );
    }
    let mut names = Names { rules, class };
    if let ControlFlow::Break(why) = statement.visit(&mut names) {
        return Err(format!("statement refused: {why}"));
    }
    // Names the parser's visitor does not see as relations: what DROP drops, and the name a
    // new index gets.
    let unvisited: Vec<(&ObjectName, bool)> = match statement {
        Statement::Drop {
            names: dropped,
            object_type,
            ..
        } => dropped
            .iter()
            .map(|n| (n, *object_type == ObjectType::Index))
            .collect(),
        Statement::CreateIndex(create) => create.name.iter().map(|n| (n, true)).collect(),
        _ => Vec::new(),
    };
    for (name, is_index) in unvisited {
        names
            .relation(name)
            .and_then(|()| if is_index { names.index(name) } else { Ok(()) })
            .map_err(|why| format!("statement refused: {why}"))?;
    }
    Ok(class)
}

/// The allow-list: statement kinds a plugin may run, each checked for what it could reach.
fn classify(statement: &Statement) -> Result<Class, String> {
    let refuse = |what: &str| {
        Err(format!(
            "statement refused: {what} is not allowed on a granted database (plugin SQL may not end the host's transaction, change the session, reach the server's files or programs, or run code)"
        ))
    };
    match statement {
        Statement::Query(query) => {
            if selects_into(query) {
                return refuse("SELECT … INTO");
            }
            Ok(Class::Read)
        }
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => Ok(Class::Write),
        Statement::CreateTable(create) => {
            if create.temporary {
                return refuse("CREATE TEMPORARY TABLE (a temporary table outlives the call)");
            }
            Ok(Class::Write)
        }
        Statement::CreateIndex(_) | Statement::Truncate(_) => Ok(Class::Write),
        Statement::CreateView(view) => {
            if view.temporary || view.materialized {
                return refuse("CREATE TEMPORARY or MATERIALIZED VIEW");
            }
            Ok(Class::Write)
        }
        Statement::AlterTable(alter) => {
            for op in &alter.operations {
                let allowed = matches!(
                    op,
                    AlterTableOperation::AddColumn { .. }
                        | AlterTableOperation::DropColumn { .. }
                        | AlterTableOperation::RenameColumn { .. }
                        | AlterTableOperation::RenameTable { .. }
                        | AlterTableOperation::AlterColumn { .. }
                        | AlterTableOperation::AddConstraint { .. }
                        | AlterTableOperation::DropConstraint { .. }
                        | AlterTableOperation::RenameConstraint { .. }
                        | AlterTableOperation::ValidateConstraint { .. }
                );
                if !allowed {
                    return refuse(&format!("ALTER TABLE … {}", first_words(&op.to_string())));
                }
            }
            Ok(Class::Write)
        }
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View | ObjectType::Index,
            temporary: false,
            ..
        } => Ok(Class::Write),
        other => refuse(&format!("`{}`", first_words(&other.to_string()))),
    }
}

/// The first two words of a statement, for the message (never the whole, which may be long).
fn first_words(text: &str) -> String {
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `SELECT … INTO new_table` creates a table: a write dressed as a query.
fn selects_into(query: &Query) -> bool {
    struct Into(bool);
    impl Visitor for Into {
        type Break = ();
        fn pre_visit_select(&mut self, select: &sqlparser::ast::Select) -> ControlFlow<()> {
            if select.into.is_some() {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = Into(false);
    let _ = query.visit(&mut found);
    found.0
        || matches!(
            &*query.body,
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
        )
}

/// Checks every table and function name of a statement against the rules.
struct Names<'r, 'a> {
    rules: &'r Rules<'a>,
    class: Class,
}

/// An identifier as PostgreSQL resolves it: unquoted names fold to lower case.
fn resolved(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

impl Names<'_, '_> {
    fn parts(name: &ObjectName) -> Result<Vec<String>, String> {
        name.0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => Ok(resolved(ident)),
                ObjectNamePart::Function(_) => Err(format!("name `{name}` is computed")),
            })
            .collect()
    }

    /// A table, view or table function named in the statement.
    fn relation(&self, name: &ObjectName) -> Result<(), String> {
        let parts = Self::parts(name)?;
        let (schema, table) = match parts.as_slice() {
            [table] => (None, table.as_str()),
            [schema, table] => (Some(schema.as_str()), table.as_str()),
            _ => {
                return Err(format!(
                    "`{name}` names another database; only tables of schema \"{}\" are granted",
                    self.rules.schema
                ));
            }
        };
        if let Some(schema) = schema
            && schema != self.rules.schema
            && !(self.class == Class::Read && CATALOG_SCHEMAS.contains(&schema))
        {
            return Err(format!(
                "`{name}` is in schema \"{schema}\"; only schema \"{}\" is granted{}",
                self.rules.schema,
                if CATALOG_SCHEMAS.contains(&schema) {
                    " (catalogs may be read by queries only)"
                } else {
                    ""
                }
            ));
        }
        let lower = table.to_lowercase();
        if lower.starts_with(STAGING_PREFIX) {
            return Err(format!("`{name}` is a staging table of the host"));
        }
        if self.class == Class::Write && self.rules.host_tables.contains(&lower) {
            return Err(format!(
                "`{name}` is a table only the host writes (a statement that writes may not name it)"
            ));
        }
        // `FROM pg_ls_dir('/')` is a function in table position.
        denied_function(&lower).map_or(Ok(()), |why| Err(format!("`{name}`: {why}")))
    }

    /// An index name: the host's tables' indexes are named after them.
    fn index(&self, name: &ObjectName) -> Result<(), String> {
        let parts = Self::parts(name)?;
        let index = parts.last().map(|s| s.to_lowercase()).unwrap_or_default();
        if let Some(table) = self
            .rules
            .host_tables
            .iter()
            .find(|t| index.starts_with(t.as_str()))
        {
            return Err(format!(
                "`{name}` is an index of `{table}`, a table only the host writes"
            ));
        }
        Ok(())
    }

    fn function(&self, name: &ObjectName) -> Result<(), String> {
        let parts = Self::parts(name)?;
        if let [schema, _] = parts.as_slice()
            && schema != self.rules.schema
            && schema != "pg_catalog"
        {
            return Err(format!(
                "function `{name}` is in schema \"{schema}\"; only schema \"{}\" is granted",
                self.rules.schema
            ));
        }
        if parts.len() > 2 {
            return Err(format!("function `{name}` names another database"));
        }
        let last = parts.last().map(|s| s.to_lowercase()).unwrap_or_default();
        denied_function(&last).map_or(Ok(()), |why| Err(format!("function `{name}`: {why}")))
    }
}

fn denied_function(name: &str) -> Option<&'static str> {
    (DENIED_FUNCTIONS.contains(&name) || DENIED_FUNCTION_PREFIXES.iter().any(|p| name.starts_with(p)))
        .then_some("not allowed (it reaches server files, runs SQL text, changes settings, signals sessions or takes advisory locks)")
}

impl Visitor for Names<'_, '_> {
    type Break = String;

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<String> {
        match self.relation(relation) {
            Ok(()) => ControlFlow::Continue(()),
            Err(why) => ControlFlow::Break(why),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        let outcome = match factor {
            TableFactor::Function { name, .. } => self.function(name),
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => ControlFlow::Continue(()),
            Err(why) => ControlFlow::Break(why),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        if let Expr::Function(f) = expr
            && let Err(why) = self.function(&f.name)
        {
            return ControlFlow::Break(why);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(read_only: bool) -> (String, Vec<String>, bool) {
        ("public".into(), vec!["_weir_rejects".into()], read_only)
    }

    fn run(sql: &str, read_only: bool) -> Result<Class, String> {
        let (schema, host, ro) = rules(read_only);
        check(
            sql,
            &Rules {
                schema: &schema,
                read_only: ro,
                host_tables: &host,
            },
        )
    }

    #[track_caller]
    fn refused(sql: &str, expect: &str) {
        match run(sql, false) {
            Ok(c) => panic!("{sql:?} was allowed as {c:?}"),
            Err(why) => assert!(why.contains(expect), "{sql:?}: {why}"),
        }
    }

    #[test]
    fn plain_reads_writes_and_ddl_are_allowed() {
        for (sql, class) in [
            (
                "SELECT a, b FROM t WHERE c = $1 ORDER BY a LIMIT 10",
                Class::Read,
            ),
            (
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
                Class::Read,
            ),
            (
                "SELECT 1 FROM pg_catalog.pg_index x JOIN pg_class c ON c.oid = x.indrelid",
                Class::Read,
            ),
            ("SELECT * FROM public.t", Class::Read),
            ("SELECT * FROM _weir_rejects", Class::Read),
            (
                "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = excluded.a",
                Class::Write,
            ),
            ("UPDATE t SET a = 1 WHERE b = 2", Class::Write),
            ("DELETE FROM t WHERE a = $1", Class::Write),
            (
                "CREATE TABLE IF NOT EXISTS t (a text NOT NULL PRIMARY KEY, b bigint)",
                Class::Write,
            ),
            (
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS c text",
                Class::Write,
            ),
            ("CREATE INDEX IF NOT EXISTS ti ON t (a)", Class::Write),
            ("DROP TABLE IF EXISTS t", Class::Write),
        ] {
            assert_eq!(run(sql, false), Ok(class), "{sql}");
        }
    }

    #[test]
    fn statements_that_leave_the_grant_or_end_the_transaction_are_refused() {
        for sql in [
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT s",
            "RELEASE SAVEPOINT s",
            "ROLLBACK TO SAVEPOINT s",
            "PREPARE TRANSACTION 'x'",
            "SET ROLE postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SET search_path = other",
            "RESET ALL",
            "COPY t TO PROGRAM 'id'",
            "COPY t FROM '/etc/passwd'",
            "DO $$ BEGIN PERFORM 1; END $$",
            "CALL p()",
            "LISTEN x",
            "NOTIFY x",
            "GRANT ALL ON t TO public",
            "REVOKE ALL ON t FROM public",
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
            "CREATE EXTENSION dblink",
            "CREATE ROLE evil",
            "ALTER SYSTEM SET fsync = off",
            "VACUUM t",
            "DISCARD ALL",
            "CREATE TEMPORARY TABLE x (a int)",
            "ALTER TABLE t OWNER TO evil",
            "DROP SCHEMA public",
        ] {
            assert!(run(sql, false).is_err(), "{sql} was allowed");
        }
    }

    #[test]
    fn names_outside_the_granted_schema_and_host_tables_are_refused() {
        refused("SELECT * FROM other.t", "schema \"other\"");
        refused("SELECT * FROM db.public.t", "another database");
        refused("INSERT INTO other.t VALUES (1)", "schema \"other\"");
        refused("DELETE FROM _weir_rejects", "only the host writes");
        refused("DROP TABLE _weir_rejects", "only the host writes");
        refused("DROP TABLE t, _weir_rejects", "only the host writes");
        refused("DROP VIEW other.v", "schema \"other\"");
        refused("DROP INDEX _weir_rejects_by_run", "only the host writes");
        refused(
            "CREATE INDEX _weir_rejects_x ON t (a)",
            "only the host writes",
        );
        refused("CREATE INDEX other.i ON t (a)", "schema \"other\"");
        refused(
            "INSERT INTO \"_weir_rejects\" SELECT * FROM t",
            "only the host writes",
        );
        refused(
            "UPDATE t SET a = (SELECT 1 FROM _WEIR_REJECTS)",
            "only the host writes",
        );
        refused(
            "DELETE FROM information_schema.tables",
            "catalogs may be read by queries only",
        );
        refused("SELECT * FROM _weir_stage_1", "staging table");
    }

    #[test]
    fn dangerous_functions_are_refused_wherever_they_appear() {
        refused("SELECT set_config('role', 'postgres', false)", "set_config");
        refused(
            "SELECT pg_catalog.set_config('search_path', 'x', false)",
            "set_config",
        );
        refused("SELECT pg_read_file('/etc/passwd')", "pg_read_file");
        refused("SELECT * FROM pg_ls_dir('/')", "pg_ls_dir");
        refused("SELECT lo_import('/etc/passwd')", "lo_import");
        refused("SELECT pg_advisory_xact_lock(1)", "pg_advisory_xact_lock");
        refused(
            "SELECT query_to_xml('select 1', true, true, '')",
            "query_to_xml",
        );
        refused(
            "SELECT a FROM t WHERE a IN (SELECT pg_terminate_backend(1))",
            "pg_terminate_backend",
        );
        refused("SELECT other.f(1)", "schema \"other\"");
    }

    #[test]
    fn several_statements_and_unparsable_text_are_refused() {
        refused("SELECT 1; SELECT 2", "one statement per call");
        refused("SELECT 1; COMMIT", "one statement per call");
        refused("SELEKT 1", "not a single statement");
        refused("", "empty");
        refused("SELECT * INTO newt FROM t", "SELECT … INTO");
    }

    #[test]
    fn read_only_grants_allow_queries_only() {
        assert_eq!(run("SELECT 1", true), Ok(Class::Read));
        for sql in [
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t (a int)",
            "DELETE FROM t",
        ] {
            let why = run(sql, true).unwrap_err();
            assert!(why.contains("read-only"), "{sql}: {why}");
        }
    }
}
