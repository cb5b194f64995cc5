//! The row filter language: text → syntax tree. Types are checked later, against the input
//! schema (`filter.rs`).
//!
//! ```text
//! expr      := or
//! or        := and { OR and }
//! and       := not { AND not }
//! not       := NOT not | predicate
//! predicate := "(" expr ")"
//!            | operand [ op operand
//!                      | IS [NOT] NULL
//!                      | [NOT] IN "(" literal { "," literal } ")"
//!                      | [NOT] BETWEEN operand AND operand ]
//! operand   := column | literal
//! column    := name | "quoted name"
//! literal   := 'text' | number | TRUE | FALSE | DATE 'YYYY-MM-DD' | TIMESTAMP '…'
//! op        := = | != | <> | < | <= | > | >=
//! ```
//!
//! Keywords are case-insensitive; `''` inside a quoted text is one quote. A bare column (a
//! predicate without an operator) must be boolean: `consent` means `consent = true`.

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

/// A literal as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Text(String),
    Number(f64),
    Boolean(bool),
    /// `DATE '…'`: must be a date.
    Date(String),
    /// `TIMESTAMP '…'`: must be a timestamp.
    Timestamp(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Date(s) => write!(f, "date '{s}'"),
            Literal::Timestamp(s) => write!(f, "timestamp '{s}'"),
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Column(String),
    Literal(Literal),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    IsNull {
        column: String,
        negated: bool,
    },
    In {
        column: String,
        list: Vec<Literal>,
        negated: bool,
    },
    Between {
        operand: Operand,
        low: Operand,
        high: Operand,
        negated: bool,
    },
    /// A boolean column on its own.
    Column(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    /// A double-quoted name: never a keyword.
    Quoted(String),
    Text(String),
    Number(f64),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Quoted(n) => write!(f, "\"{n}\""),
            Token::Text(s) => write!(f, "'{s}'"),
            Token::Number(n) => write!(f, "{n}"),
            Token::Op(op) => write!(f, "`{op}`"),
            Token::LParen => f.write_str("`(`"),
            Token::RParen => f.write_str("`)`"),
            Token::Comma => f.write_str("`,`"),
        }
    }
}

/// Parse `source`; errors say what was expected where (`at character 12: expected a value
/// after \`=\``).
pub(crate) fn parse(source: &str) -> Result<Expr, String> {
    let tokens = lex(source)?;
    let mut parser = Parser { tokens, next: 0 };
    if parser.tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some((at, token)) => Err(format!(
            "at character {}: unexpected {token} (expected `and`, `or` or the end)",
            at + 1
        )),
    }
}

fn lex(source: &str) -> Result<Vec<(usize, Token)>, String> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        let token = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '(' | ')' | ',' => {
                chars.next();
                match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    _ => Token::Comma,
                }
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|&(_, c)| c);
                let (op, two) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, true),
                    ('=', _) => (Op::Eq, false),
                    ('!', Some('=')) => (Op::Ne, true),
                    ('<', Some('>')) => (Op::Ne, true),
                    ('<', Some('=')) => (Op::Le, true),
                    ('<', _) => (Op::Lt, false),
                    ('>', Some('=')) => (Op::Ge, true),
                    ('>', _) => (Op::Gt, false),
                    _ => {
                        return Err(format!(
                            "at character {}: `!` must be followed by `=` (use `not` for negation)",
                            at + 1
                        ));
                    }
                };
                if two {
                    chars.next();
                }
                Token::Op(op)
            }
            '\'' | '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "at character {}: the quote {c} opened here is never closed",
                                at + 1
                            ));
                        }
                        Some((_, q)) if q == c => {
                            // A doubled quote is the quote itself.
                            if chars.peek().map(|&(_, n)| n) == Some(c) {
                                chars.next();
                                text.push(c);
                            } else {
                                break;
                            }
                        }
                        Some((_, other)) => text.push(other),
                    }
                }
                if c == '\'' {
                    Token::Text(text)
                } else {
                    Token::Quoted(text)
                }
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut text = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    let sign_after_exponent =
                        (d == '-' || d == '+') && (text.is_empty() || text.ends_with(['e', 'E']));
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || sign_after_exponent
                    {
                        text.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let n: f64 = text
                    .parse()
                    .map_err(|_| format!("at character {}: `{text}` is not a number", at + 1))?;
                Token::Number(n)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        name.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                Token::Name(name)
            }
            other => {
                return Err(format!(
                    "at character {}: unexpected `{other}`; quote text with '…' and names with \"…\"",
                    at + 1
                ));
            }
        };
        tokens.push((at, token));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.next).map(|(at, t)| (*at, t))
    }

    /// Where the next token is, for messages (the end counts as one past the last).
    fn here(&self) -> String {
        match self.tokens.get(self.next) {
            Some((at, _)) => format!("at character {}", at + 1),
            None => "at the end".to_owned(),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some((_, Token::Name(n))) if n.eq_ignore_ascii_case(word) => {
                self.next += 1;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), String> {
        match self.peek() {
            Some((_, t)) if t == token => {
                self.next += 1;
                Ok(())
            }
            Some((at, t)) => Err(format!(
                "at character {}: expected {what}, found {t}",
                at + 1
            )),
            None => Err(format!("at the end: expected {what}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, String> {
        if let Some((_, Token::LParen)) = self.peek() {
            self.next += 1;
            let inner = self.or()?;
            self.expect(&Token::RParen, "`)`")?;
            return Ok(inner);
        }
        let at = self.here();
        let left = self.operand()?;
        if let Some((_, Token::Op(op))) = self.peek() {
            let op = *op;
            self.next += 1;
            let right = self.operand().map_err(|e| format!("after `{op}`: {e}"))?;
            return Ok(Expr::Compare(left, op, right));
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return Err(format!("{}: expected `null` after `is`", self.here()));
            }
            let column = column_of(left, &at, "is null")?;
            return Ok(Expr::IsNull { column, negated });
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            let column = column_of(left, &at, "in")?;
            self.expect(&Token::LParen, "`(` after `in`")?;
            let mut list = Vec::new();
            loop {
                match self.operand()? {
                    Operand::Literal(l) => list.push(l),
                    Operand::Column(c) => {
                        return Err(format!(
                            "`in` takes a list of values, not column `{c}` (quote text: '{c}')"
                        ));
                    }
                }
                if let Some((_, Token::Comma)) = self.peek() {
                    self.next += 1;
                    continue;
                }
                self.expect(&Token::RParen, "`,` or `)` in the `in` list")?;
                break;
            }
            return Ok(Expr::In {
                column,
                list,
                negated,
            });
        }
        if self.keyword("between") {
            let low = self.operand()?;
            if !self.keyword("and") {
                return Err(format!(
                    "{}: expected `and` between the bounds of `between`",
                    self.here()
                ));
            }
            let high = self.operand()?;
            return Ok(Expr::Between {
                operand: left,
                low,
                high,
                negated,
            });
        }
        if negated {
            return Err(format!(
                "{}: expected `in` or `between` after `not`",
                self.here()
            ));
        }
        match left {
            Operand::Column(c) => Ok(Expr::Column(c)),
            Operand::Literal(l) => Err(format!(
                "{at}: {l} on its own is not a condition (compare a column with it)"
            )),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let Some((at, token)) = self.peek() else {
            return Err("at the end: expected a column or a value".into());
        };
        let token = token.clone();
        self.next += 1;
        Ok(match token {
            Token::Quoted(name) => Operand::Column(name),
            Token::Text(s) => Operand::Literal(Literal::Text(s)),
            Token::Number(n) => Operand::Literal(Literal::Number(n)),
            Token::Name(n) if n.eq_ignore_ascii_case("true") => {
                Operand::Literal(Literal::Boolean(true))
            }
            Token::Name(n) if n.eq_ignore_ascii_case("false") => {
                Operand::Literal(Literal::Boolean(false))
            }
            Token::Name(n) if n.eq_ignore_ascii_case("null") => {
                return Err(format!(
                    "at character {}: nothing equals null; write `column is null` or `column is not null`",
                    at + 1
                ));
            }
            Token::Name(n)
                if n.eq_ignore_ascii_case("date") || n.eq_ignore_ascii_case("timestamp") =>
            {
                match self.peek() {
                    Some((_, Token::Text(s))) => {
                        let s = s.clone();
                        self.next += 1;
                        Operand::Literal(if n.eq_ignore_ascii_case("date") {
                            Literal::Date(s)
                        } else {
                            Literal::Timestamp(s)
                        })
                    }
                    // A column that happens to be called `date`.
                    _ => Operand::Column(n),
                }
            }
            Token::Name(n) if is_reserved(&n) => {
                return Err(format!(
                    "at character {}: expected a column or a value, found the keyword `{n}` (quote a column named so: \"{n}\")",
                    at + 1
                ));
            }
            Token::Name(n) => Operand::Column(n),
            other => {
                return Err(format!(
                    "at character {}: expected a column or a value, found {other}",
                    at + 1
                ));
            }
        })
    }
}

fn is_reserved(word: &str) -> bool {
    ["and", "or", "not", "is", "in", "between"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

fn column_of(operand: Operand, at: &str, what: &str) -> Result<String, String> {
    match operand {
        Operand::Column(c) => Ok(c),
        Operand::Literal(l) => Err(format!(
            "{at}: `{what}` needs a column on its left, not {l}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Operand {
        Operand::Column(name.into())
    }

    fn text(s: &str) -> Literal {
        Literal::Text(s.into())
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let e = parse("a = 1 or not b and c").unwrap();
        assert_eq!(
            e,
            Expr::Or(
                Box::new(Expr::Compare(
                    col("a"),
                    Op::Eq,
                    Operand::Literal(Literal::Number(1.0))
                )),
                Box::new(Expr::And(
                    Box::new(Expr::Not(Box::new(Expr::Column("b".into())))),
                    Box::new(Expr::Column("c".into()))
                ))
            )
        );
        let grouped = parse("(a = 1 OR b) AND c").unwrap();
        assert!(matches!(grouped, Expr::And(..)), "{grouped:?}");
    }

    #[test]
    fn every_predicate_form_parses() {
        assert_eq!(
            parse("status in ('a', 'it''s')").unwrap(),
            Expr::In {
                column: "status".into(),
                list: vec![text("a"), text("it's")],
                negated: false
            }
        );
        assert_eq!(
            parse("status NOT IN ('x')").unwrap(),
            Expr::In {
                column: "status".into(),
                list: vec![text("x")],
                negated: true
            }
        );
        assert_eq!(
            parse("email is not null").unwrap(),
            Expr::IsNull {
                column: "email".into(),
                negated: true
            }
        );
        assert_eq!(
            parse("visit between date '2026-01-01' and '2026-12-31'").unwrap(),
            Expr::Between {
                operand: col("visit"),
                low: Operand::Literal(Literal::Date("2026-01-01".into())),
                high: Operand::Literal(text("2026-12-31")),
                negated: false
            }
        );
        assert_eq!(
            parse("10 <= \"the age\"").unwrap(),
            Expr::Compare(
                Operand::Literal(Literal::Number(10.0)),
                Op::Le,
                col("the age")
            )
        );
        for (src, op) in [
            ("a != 1", Op::Ne),
            ("a <> 1", Op::Ne),
            ("a == 1", Op::Eq),
            ("a >= -1.5e2", Op::Ge),
            ("a > 1", Op::Gt),
            ("a < 1", Op::Lt),
        ] {
            assert!(
                matches!(parse(src).unwrap(), Expr::Compare(_, o, _) if o == op),
                "{src}"
            );
        }
        assert_eq!(
            parse("date = timestamp '2026-01-01T00:00:00Z'").unwrap(),
            Expr::Compare(
                col("date"),
                Op::Eq,
                Operand::Literal(Literal::Timestamp("2026-01-01T00:00:00Z".into()))
            )
        );
    }

    #[test]
    fn mistakes_say_where_and_what_was_expected() {
        for (src, message) in [
            ("", "the expression is empty"),
            ("a =", "after `=`: at the end: expected a column or a value"),
            (
                "a = 'x",
                "at character 5: the quote ' opened here is never closed",
            ),
            ("a = null", "write `column is null`"),
            ("a is 1", "expected `null` after `is`"),
            ("a in 'x'", "expected `(` after `in`"),
            ("a in ('x' 'y')", "expected `,` or `)` in the `in` list"),
            ("a in (b)", "a list of values, not column `b`"),
            ("a between 1 2", "expected `and` between the bounds"),
            ("a not like 'x'", "expected `in` or `between` after `not`"),
            ("'x'", "'x' on its own is not a condition"),
            (
                "a = 1 b = 2",
                "at character 7: unexpected `b` (expected `and`, `or` or the end)",
            ),
            ("a = ; ", "unexpected `;`"),
            ("a ! b", "use `not` for negation"),
            ("(a = 1", "at the end: expected `)`"),
            ("a = and", "found the keyword `and`"),
            ("1 is null", "`is null` needs a column on its left"),
        ] {
            let err = parse(src).unwrap_err();
            assert!(err.contains(message), "{src:?}: {err}");
        }
    }
}
