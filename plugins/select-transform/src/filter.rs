//! Row filters: a parsed expression checked against the input schema (names resolved, literal
//! types matched to the columns they meet) and evaluated per row with SQL's three-valued
//! logic — a comparison with a null is unknown, and a row is kept only when its filter is true.

use std::cmp::Ordering;

use weir_sdk::{Cell, Kind, RowView};

use crate::expr::{Expr, Literal, Op, Operand};
use weir_sdk::time::{parse_date, parse_timestamp};

/// What values of a column compare as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// `integer`, `real`, `decimal`: 64-bit floats.
    Number,
    /// `text`, `json`: byte-wise.
    Text,
    Boolean,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01T00:00:00Z.
    Timestamp,
}

impl Domain {
    fn of(kind: Kind) -> Option<Domain> {
        Some(match kind {
            Kind::Integer | Kind::Real | Kind::Decimal => Domain::Number,
            Kind::Text | Kind::Json => Domain::Text,
            Kind::Boolean => Domain::Boolean,
            Kind::Date => Domain::Date,
            Kind::Timestamp => Domain::Timestamp,
            Kind::Blob => return None,
        })
    }

    /// How to write a value of this domain, for messages.
    fn example(self) -> &'static str {
        match self {
            Domain::Number => "a number (12.5)",
            Domain::Text => "quoted text ('active')",
            Domain::Boolean => "true or false",
            Domain::Date => "a date ('2026-01-31')",
            Domain::Timestamp => "a timestamp ('2026-01-31T08:00:00Z') or a date",
        }
    }
}

/// A value ready to compare.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Constant {
    Number(f64),
    Text(String),
    Boolean(bool),
    /// A date's days or a timestamp's microseconds.
    Instant(i64),
}

/// A value read from a row, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Val<'a> {
    Number(f64),
    Text(&'a str),
    Boolean(bool),
    Instant(i64),
}

impl Constant {
    fn as_val(&self) -> Val<'_> {
        match self {
            Constant::Number(n) => Val::Number(*n),
            Constant::Text(s) => Val::Text(s),
            Constant::Boolean(b) => Val::Boolean(*b),
            Constant::Instant(i) => Val::Instant(*i),
        }
    }
}

/// A column read by a filter: its index in the rows `apply` receives, its name and kind.
#[derive(Debug, Clone)]
pub(crate) struct ColumnRef {
    pub index: usize,
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Term {
    Column(ColumnRef, Domain),
    Constant(Constant),
}

/// A checked filter, ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(Term, Op, Term),
    IsNull(usize, bool),
    In(ColumnRef, Domain, Vec<Constant>, bool),
    Between(Term, Term, Term, bool),
    Boolean(ColumnRef),
}

/// Check `expr` against the columns `resolve` finds by name.
pub(crate) fn compile(
    expr: &Expr,
    resolve: &mut impl FnMut(&str) -> Result<ColumnRef, String>,
) -> Result<Filter, String> {
    Ok(match expr {
        Expr::And(a, b) => Filter::And(
            Box::new(compile(a, resolve)?),
            Box::new(compile(b, resolve)?),
        ),
        Expr::Or(a, b) => Filter::Or(
            Box::new(compile(a, resolve)?),
            Box::new(compile(b, resolve)?),
        ),
        Expr::Not(a) => Filter::Not(Box::new(compile(a, resolve)?)),
        Expr::Column(name) => {
            let column = resolve(name)?;
            if column.kind != Kind::Boolean {
                return Err(format!(
                    "column `{name}` is {} and cannot be a condition on its own; compare it (`{name} = …`)",
                    column.kind
                ));
            }
            Filter::Boolean(column)
        }
        Expr::IsNull { column, negated } => Filter::IsNull(resolve(column)?.index, *negated),
        Expr::Compare(left, op, right) => {
            let (left, right) = pair(left, right, resolve, &format!("`{op}`"))?;
            if domain_of(&left) == Some(Domain::Boolean) && !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!("booleans compare only with = and !=, not `{op}`"));
            }
            Filter::Compare(left, *op, right)
        }
        Expr::In {
            column,
            list,
            negated,
        } => {
            let column = resolve(column)?;
            let domain = column_domain(&column)?;
            let values = list
                .iter()
                .map(|l| constant(l, domain, &column.name))
                .collect::<Result<_, _>>()?;
            Filter::In(column, domain, values, *negated)
        }
        Expr::Between {
            operand,
            low,
            high,
            negated,
        } => {
            let (x, low) = pair(operand, low, resolve, "`between`")?;
            let (_, high) = pair(operand, high, resolve, "`between`")?;
            if domain_of(&x) == Some(Domain::Boolean) {
                return Err("`between` does not apply to booleans".into());
            }
            Filter::Between(x, low, high, *negated)
        }
    })
}

fn column_domain(column: &ColumnRef) -> Result<Domain, String> {
    Domain::of(column.kind).ok_or_else(|| {
        format!(
            "column `{}` is a blob; blobs can only be tested with `is null`",
            column.name
        )
    })
}

fn domain_of(term: &Term) -> Option<Domain> {
    match term {
        Term::Column(_, d) => Some(*d),
        Term::Constant(_) => None,
    }
}

/// Two operands that meet: at least one a column, the other of the same domain.
fn pair(
    left: &Operand,
    right: &Operand,
    resolve: &mut impl FnMut(&str) -> Result<ColumnRef, String>,
    what: &str,
) -> Result<(Term, Term), String> {
    match (left, right) {
        (Operand::Column(a), Operand::Column(b)) => {
            let (a, b) = (resolve(a)?, resolve(b)?);
            let (da, db) = (column_domain(&a)?, column_domain(&b)?);
            if da != db {
                return Err(format!(
                    "{what} compares `{}` ({}) with `{}` ({}), which do not compare",
                    a.name, a.kind, b.name, b.kind
                ));
            }
            Ok((Term::Column(a, da), Term::Column(b, db)))
        }
        (Operand::Column(c), Operand::Literal(l)) | (Operand::Literal(l), Operand::Column(c)) => {
            let column = resolve(c)?;
            let domain = column_domain(&column)?;
            let value = Term::Constant(constant(l, domain, &column.name)?);
            let column = Term::Column(column, domain);
            Ok(if matches!(left, Operand::Column(_)) {
                (column, value)
            } else {
                (value, column)
            })
        }
        (Operand::Literal(a), Operand::Literal(b)) => Err(format!(
            "{what} compares two values ({a} and {b}); one side must be a column"
        )),
    }
}

/// A literal as a value of `domain`, or why it is not one.
fn constant(literal: &Literal, domain: Domain, column: &str) -> Result<Constant, String> {
    let mismatch = || {
        format!(
            "column `{column}` needs {}, not {literal}",
            domain.example()
        )
    };
    Ok(match (domain, literal) {
        (Domain::Number, Literal::Number(n)) => Constant::Number(*n),
        (Domain::Text, Literal::Text(s)) => Constant::Text(s.clone()),
        (Domain::Boolean, Literal::Boolean(b)) => Constant::Boolean(*b),
        (Domain::Date, Literal::Text(s) | Literal::Date(s)) => {
            Constant::Instant(parse_date(s).ok_or_else(|| {
                format!("column `{column}` is a date and '{s}' is not one (YYYY-MM-DD)")
            })?)
        }
        (Domain::Timestamp, Literal::Text(s) | Literal::Date(s) | Literal::Timestamp(s)) => {
            Constant::Instant(parse_timestamp(s).ok_or_else(|| {
                format!(
                    "column `{column}` is a timestamp and '{s}' is not one (YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM], or a date for its midnight UTC)"
                )
            })?)
        }
        _ => return Err(mismatch()),
    })
}

impl Filter {
    /// `Some(true)` keep, `Some(false)` drop, `None` unknown (a null met a comparison: drop).
    /// `Err` when a row's value cannot be read as its column's kind says (a reject).
    pub(crate) fn eval(&self, row: &RowView<'_>) -> Result<Option<bool>, String> {
        Ok(match self {
            Filter::And(a, b) => match a.eval(row)? {
                Some(false) => Some(false),
                left => match (left, b.eval(row)?) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
            },
            Filter::Or(a, b) => match a.eval(row)? {
                Some(true) => Some(true),
                left => match (left, b.eval(row)?) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
            },
            Filter::Not(a) => a.eval(row)?.map(|v| !v),
            Filter::IsNull(index, negated) => Some(row.is_null(*index) != *negated),
            Filter::Boolean(column) => match row.get(column.index) {
                Cell::Null => None,
                Cell::Boolean(b) => Some(b),
                other => return Err(unreadable(column, other)),
            },
            Filter::Compare(left, op, right) => {
                let (Some(a), Some(b)) = (value(left, row)?, value(right, row)?) else {
                    return Ok(None);
                };
                compare(a, b).map(|ordering| holds(*op, ordering))
            }
            Filter::In(column, domain, list, negated) => {
                let Some(v) = read(column, *domain, row)? else {
                    return Ok(None);
                };
                let found = list
                    .iter()
                    .any(|c| compare(v, c.as_val()) == Some(Ordering::Equal));
                Some(found != *negated)
            }
            Filter::Between(x, low, high, negated) => {
                let (Some(x), Some(low), Some(high)) =
                    (value(x, row)?, value(low, row)?, value(high, row)?)
                else {
                    return Ok(None);
                };
                match (compare(x, low), compare(x, high)) {
                    (Some(l), Some(h)) => Some((l.is_ge() && h.is_le()) != *negated),
                    _ => None,
                }
            }
        })
    }
}

fn holds(op: Op, ordering: Ordering) -> bool {
    match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
    }
}

/// Values of one domain in order; `None` for a NaN.
fn compare(a: Val<'_>, b: Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Number(a), Val::Number(b)) => a.partial_cmp(&b),
        (Val::Text(a), Val::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Val::Boolean(a), Val::Boolean(b)) => Some(a.cmp(&b)),
        (Val::Instant(a), Val::Instant(b)) => Some(a.cmp(&b)),
        // `compile` only lets one domain meet itself.
        _ => None,
    }
}

fn value<'r>(term: &'r Term, row: &RowView<'r>) -> Result<Option<Val<'r>>, String> {
    match term {
        Term::Constant(c) => Ok(Some(c.as_val())),
        Term::Column(column, domain) => read(column, *domain, row),
    }
}

fn read<'r>(
    column: &ColumnRef,
    domain: Domain,
    row: &RowView<'r>,
) -> Result<Option<Val<'r>>, String> {
    let cell = row.get(column.index);
    let v = match (domain, cell) {
        (_, Cell::Null) => return Ok(None),
        (Domain::Number, Cell::Integer(i)) => Val::Number(i as f64),
        (Domain::Number, Cell::Real(r)) => Val::Number(r),
        (Domain::Number, Cell::Text(s)) => Val::Number(
            weir_sdk::exact_decimal(s.as_bytes(), b'.')
                .or_else(|| s.parse().ok())
                .ok_or_else(|| unreadable(column, cell))?,
        ),
        (Domain::Text, Cell::Text(s)) => Val::Text(s),
        (Domain::Boolean, Cell::Boolean(b)) => Val::Boolean(b),
        (Domain::Date, Cell::Text(s)) => {
            Val::Instant(parse_date(s).ok_or_else(|| unreadable(column, cell))?)
        }
        (Domain::Timestamp, Cell::Text(s)) => {
            Val::Instant(parse_timestamp(s).ok_or_else(|| unreadable(column, cell))?)
        }
        _ => return Err(unreadable(column, cell)),
    };
    Ok(Some(v))
}

fn unreadable(column: &ColumnRef, cell: Cell<'_>) -> String {
    format!(
        "{}: {} is not a {} value",
        column.name,
        cell.describe(),
        column.kind
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use weir_sdk::{Column, RowsBuilder, RowsView, Schema};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("consent", Kind::Boolean, true),
                Column::new("status", Kind::Text, true),
                Column::new("age", Kind::Integer, true),
                Column::new("visit", Kind::Date, true),
                Column::new("seen_at", Kind::Timestamp, true),
                Column::new("balance", Kind::Decimal, true),
                Column::new("photo", Kind::Blob, true),
            ],
            primary_key: vec![],
        }
    }

    fn check(source: &str) -> Result<Filter, String> {
        let schema = schema();
        let expr = parse(source)?;
        compile(&expr, &mut |name: &str| {
            let index = schema
                .column_index(name)
                .ok_or_else(|| format!("no column `{name}`"))?;
            Ok(ColumnRef {
                index,
                name: name.to_owned(),
                kind: schema.columns[index].kind,
            })
        })
    }

    /// Rows: (consent, status, age, visit, seen_at, balance).
    type Row<'a> = (
        Option<bool>,
        Option<&'a str>,
        Option<i64>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );

    fn rows(data: &[Row<'_>]) -> weir_sdk::Rows {
        let mut b = RowsBuilder::new(&schema());
        for r in data {
            b.push_row([
                r.0.into(),
                r.1.into(),
                r.2.into(),
                r.3.into(),
                r.4.into(),
                r.5.into(),
                Cell::Null,
            ])
            .unwrap();
        }
        b.finish()
    }

    fn outcomes(source: &str, data: &[Row<'_>]) -> Vec<Option<bool>> {
        let filter = check(source).unwrap();
        let rows = rows(data);
        let view = RowsView::new(&rows);
        view.rows().map(|r| filter.eval(&r).unwrap()).collect()
    }

    const ALICE: Row<'static> = (
        Some(true),
        Some("active"),
        Some(34),
        Some("2026-03-02"),
        Some("2026-03-02T09:30:00+01:00"),
        Some("120.50"),
    );
    const BOB: Row<'static> = (
        Some(false),
        Some("closed"),
        Some(70),
        Some("2025-12-31"),
        Some("2025-12-31T23:59:59Z"),
        Some("-3"),
    );
    const NOBODY: Row<'static> = (None, None, None, None, None, None);

    #[test]
    fn comparisons_follow_each_kind() {
        let data = [ALICE, BOB, NOBODY];
        assert_eq!(outcomes("consent", &data), [Some(true), Some(false), None]);
        assert_eq!(
            outcomes("consent = true", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes("status in ('active', 'pending')", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes("status not in ('active')", &data),
            [Some(false), Some(true), None]
        );
        assert_eq!(
            outcomes("age >= 65", &data),
            [Some(false), Some(true), None]
        );
        assert_eq!(outcomes("65 > age", &data), [Some(true), Some(false), None]);
        assert_eq!(
            outcomes("visit between '2026-01-01' and date '2026-12-31'", &data),
            [Some(true), Some(false), None]
        );
        // 09:30+01:00 is 08:30Z.
        assert_eq!(
            outcomes("seen_at < '2026-03-02T08:31:00Z'", &data),
            [Some(true), Some(true), None]
        );
        assert_eq!(
            outcomes("seen_at >= '2026-01-01'", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes("balance > 100", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes("status is null", &data),
            [Some(false), Some(false), Some(true)]
        );
        assert_eq!(
            outcomes("photo is not null", &data),
            [Some(false), Some(false), Some(false)]
        );
    }

    #[test]
    fn nulls_make_comparisons_unknown_and_unknown_propagates() {
        let data = [ALICE, BOB, NOBODY];
        // Unknown AND false is false; unknown OR true is true; NOT unknown is unknown.
        assert_eq!(
            outcomes("consent and age > 200", &data),
            [Some(false), Some(false), None]
        );
        assert_eq!(
            outcomes("consent and status is not null", &data),
            [Some(true), Some(false), Some(false)]
        );
        assert_eq!(
            outcomes("consent or status is null", &data),
            [Some(true), Some(false), Some(true)]
        );
        assert_eq!(
            outcomes("consent or age > 200", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes("not (age > 50)", &data),
            [Some(true), Some(false), None]
        );
        assert_eq!(
            outcomes(
                "consent and status = 'active' and age between 18 and 65",
                &data
            ),
            [Some(true), Some(false), None]
        );
    }

    #[test]
    fn types_are_checked_when_the_filter_is_opened() {
        for (source, message) in [
            (
                "consent = 'yes'",
                "column `consent` needs true or false, not 'yes'",
            ),
            (
                "status = 3",
                "column `status` needs quoted text ('active'), not 3",
            ),
            (
                "visit > '2026-02-30'",
                "'2026-02-30' is not one (YYYY-MM-DD)",
            ),
            (
                "visit > timestamp '2026-01-01T00:00:00Z'",
                "column `visit` needs a date",
            ),
            (
                "seen_at > 'yesterday'",
                "column `seen_at` is a timestamp and 'yesterday' is not one",
            ),
            (
                "age",
                "column `age` is integer and cannot be a condition on its own",
            ),
            ("consent > false", "booleans compare only with = and !="),
            ("photo = 'x'", "blobs can only be tested with `is null`"),
            (
                "age = status",
                "compares `age` (integer) with `status` (text)",
            ),
            ("1 = 1", "one side must be a column"),
            ("nope = 1", "no column `nope`"),
            (
                "consent between true and false",
                "`between` does not apply to booleans",
            ),
        ] {
            let err = check(source).unwrap_err();
            assert!(err.contains(message), "{source}: {err}");
        }
    }

    #[test]
    fn a_value_that_is_not_its_kind_is_an_error_for_the_row() {
        let schema = Schema {
            columns: vec![Column::new("visit", Kind::Date, true)],
            primary_key: vec![],
        };
        let mut b = RowsBuilder::new(&schema);
        b.push_row([Cell::Text("31.01.2026")]).unwrap();
        let rows = b.finish();
        let view = RowsView::new(&rows);
        let filter = compile(&parse("visit > '2026-01-01'").unwrap(), &mut |_: &str| {
            Ok(ColumnRef {
                index: 0,
                name: "visit".into(),
                kind: Kind::Date,
            })
        })
        .unwrap();
        assert_eq!(
            filter.eval(&view.row(0)).unwrap_err(),
            r#"visit: "31.01.2026" is not a date value"#
        );
    }
}
