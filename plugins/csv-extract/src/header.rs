//! The columns of a file: its header record (or, without one, the width of its first record),
//! names made non-empty, the one policy for names that repeat, and the kinds from `types`.

use crate::checkpoint::Fnv;
use crate::config::{ColumnType, Config, DuplicateHeaders};
use crate::error::{Error, Result, io_error};
use crate::parser::{Outcome, Parser};
use std::fs::File;

/// What the start of the file says about the columns.
pub struct Header {
    /// Names as read (trimmed), or from `columns`; may be empty or repeat.
    pub names: Vec<String>,
    /// Hash of the raw header record (of nothing without a header).
    pub hash: u64,
}

/// The final columns of a file.
#[derive(Debug, PartialEq)]
pub struct Columns {
    /// Unique, non-empty names.
    pub names: Vec<String>,
    /// Kind of each column.
    pub types: Vec<ColumnType>,
    /// How a reject's reason names each column: `column "memo"`, or `column 3` where the
    /// name was made up (no header, an empty header field).
    pub labels: Vec<String>,
    /// Warnings for the host log (renamed duplicates).
    pub warnings: Vec<String>,
}

/// Read the header record (or, without one, peek at the first record to count its fields).
/// `young` says whether the file is still being written: then a header without its line
/// break may be incomplete and is not used.
pub fn read_header(
    config: &Config,
    path: &str,
    parser: &mut Parser<File>,
    young: impl FnOnce(&mut Parser<File>) -> Result<bool>,
) -> Result<Header> {
    if let (false, Some(names)) = (config.has_header, &config.columns) {
        return Ok(Header {
            names: names.clone(),
            hash: Fnv::hash(b""),
        });
    }
    let outcome = parser
        .next_record()
        .map_err(|e| io_error(path, "read failed", &e))?;
    let what = if config.has_header {
        "header"
    } else {
        "first record"
    };
    if outcome.is_some() && parser.unfinished() && young(parser)? {
        // Retryable: the names (or the width) are only known once the line is complete.
        return Err(Error::Unavailable(format!(
            "{path}: the {what} has no line break yet and the file is still being written \
             (modified less than settle_seconds ago); it is read once the file has settled"
        )));
    }
    match outcome {
        Some(Outcome::Record) => {}
        // Without a header the record is data (a reject when it is read as such); its width
        // still counts, since a stray quote does not change where fields end.
        Some(Outcome::StrayQuote { .. }) if !config.has_header => {}
        None if config.columns.is_some() => {
            return Ok(Header {
                names: Vec::new(),
                hash: Fnv::hash(b""),
            });
        }
        None => {
            return Err(Error::BadData(format!(
                "{path}: the file is empty, so it has no {what} to name the columns; set \
                 \"columns\" in the config to read such files"
            )));
        }
        Some(Outcome::StrayQuote { field, kind }) => {
            return Err(Error::BadData(format!(
                "{path}: line {}: the {what}, field {}: {}: {}",
                parser.record_line(),
                field + 1,
                kind.describe(),
                crate::encoding::shown(config.encoding, parser.stray_field())
            )));
        }
        Some(Outcome::Unterminated { quote_line }) => {
            return Err(Error::BadData(format!(
                "{path}: line {}: the {what} has an unterminated quoted field starting at line \
                 {quote_line}",
                parser.record_line()
            )));
        }
        Some(Outcome::Oversized { bytes }) => {
            return Err(Error::BadData(format!(
                "{path}: line {}: the {what} is {bytes} bytes long, more than max_record_bytes",
                parser.record_line()
            )));
        }
    }
    let count = parser.field_count();
    if !config.has_header {
        // Only the width was wanted; the reader rewinds to read this record as data.
        return Ok(Header {
            names: vec![String::new(); count],
            hash: Fnv::hash(b""),
        });
    }
    let names = (0..count)
        .map(|i| {
            let name = config.encoding.decode_lossy(parser.field(i));
            // Surrounding blanks in a header are never meant to be part of a column name.
            name.trim().to_owned()
        })
        .collect();
    Ok(Header {
        names,
        hash: Fnv::hash(parser.raw()),
    })
}

/// Final column names and kinds: `columns` replaces the header's names; empty names become
/// `column_N`; repeated names follow `duplicate_headers`; `types` must name existing columns.
pub fn columns(config: &Config, path: &str, header: Vec<String>) -> Result<Columns> {
    let raw = match &config.columns {
        Some(names) if config.has_header && !header.is_empty() && names.len() != header.len() => {
            return Err(Error::InvalidConfig(format!(
                "\"columns\" has {} names but the header of {path} has {} fields",
                names.len(),
                header.len()
            )));
        }
        Some(names) => names.clone(),
        None => header,
    };
    let made_up: Vec<bool> = raw.iter().map(String::is_empty).collect();
    let named: Vec<String> = raw
        .into_iter()
        .enumerate()
        .map(|(i, n)| if n.is_empty() { column_n(i) } else { n })
        .collect();
    let describe = |i: usize| {
        if made_up[i] {
            format!("column {} (no name, read as {:?})", i + 1, named[i])
        } else {
            format!("column {} {:?}", i + 1, named[i])
        }
    };

    let mut warnings = Vec::new();
    let names = match (first_duplicate(&named), config.duplicate_headers) {
        (None, _) => named.clone(),
        (Some((first, second)), DuplicateHeaders::Error) => {
            let more = duplicates(&named).len() - 1;
            return Err(Error::BadData(format!(
                "{path}: the header names two columns the same: {} and {}{}{}; rename one in \
                 the file, or set \"duplicate_headers\" to \"rename\" to read the later one as \
                 {:?}",
                describe(first),
                describe(second),
                if named[first] == named[second] {
                    ""
                } else {
                    " (names are compared ignoring case, as most databases do)"
                },
                if more > 0 {
                    format!(", and {more} more repeated name(s)")
                } else {
                    String::new()
                },
                renamed(&named)[second]
            )));
        }
        (Some(_), DuplicateHeaders::Rename) => {
            let names = renamed(&named);
            let list: Vec<String> = duplicates(&named)
                .into_iter()
                .map(|(first, later)| {
                    format!(
                        "{} is read as {:?} (same name as {})",
                        describe(later),
                        names[later],
                        describe(first)
                    )
                })
                .collect();
            warnings.push(format!(
                "{path}: renamed repeated column names (duplicate_headers = \"rename\"): {}",
                list.join("; ")
            ));
            names
        }
    };

    let types = names
        .iter()
        .map(|n| config.types.get(n).copied().unwrap_or(ColumnType::Text))
        .collect();
    if let Some(missing) = config.types.keys().find(|k| !names.contains(k)) {
        return Err(Error::InvalidConfig(format!(
            "\"types\" names column \"{missing}\", which {path} does not have (columns: {})",
            names.join(", ")
        )));
    }
    let labels = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if made_up[i] {
                format!("column {}", i + 1)
            } else {
                format!("column {n:?}")
            }
        })
        .collect();
    Ok(Columns {
        names,
        types,
        labels,
        warnings,
    })
}

/// The made-up name of column `i` (0-based).
fn column_n(i: usize) -> String {
    format!("column_{}", i + 1)
}

/// The key two names are compared by: most databases (SQLite included) do not tell column
/// names apart by case, so `Name` and `name` would collide at the load.
fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Every (first occurrence, later occurrence) pair of names that are the same ignoring case,
/// in the order of the later ones.
fn duplicates(names: &[String]) -> Vec<(usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    let mut pairs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match seen.get(&fold(name)) {
            Some(&first) => pairs.push((first, i)),
            None => {
                seen.insert(fold(name), i);
            }
        }
    }
    pairs
}

/// The first pair of names that are the same ignoring case.
pub fn first_duplicate(names: &[String]) -> Option<(usize, usize)> {
    duplicates(names).into_iter().next()
}

/// `names` with every later duplicate renamed `name_2`, `name_3`, …, picking suffixes no
/// other column uses (so a real column `id_2` keeps its name).
fn renamed(names: &[String]) -> Vec<String> {
    let later: std::collections::HashSet<usize> =
        duplicates(names).into_iter().map(|(_, l)| l).collect();
    let mut taken: std::collections::HashSet<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !later.contains(i))
        .map(|(_, n)| fold(n))
        .collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if !later.contains(&i) {
                return name.clone();
            }
            let mut n = 2;
            loop {
                let candidate = format!("{name}_{n}");
                if taken.insert(fold(&candidate)) {
                    return candidate;
                }
                n += 1;
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!(r#"{{"path": "in/*.csv"{extra}}}"#)).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_and_case_insensitive_duplicates_are_one_error_by_default() {
        let c = config("");
        for (header, message) in [
            (
                &["id", "name", "name"][..],
                "in/a.csv: the header names two columns the same: column 2 \"name\" and column \
                 3 \"name\"; rename one in the file, or set \"duplicate_headers\" to \"rename\" \
                 to read the later one as \"name_2\"",
            ),
            (
                &["id", "Name", "name"][..],
                "in/a.csv: the header names two columns the same: column 2 \"Name\" and column \
                 3 \"name\" (names are compared ignoring case, as most databases do); rename \
                 one in the file, or set \"duplicate_headers\" to \"rename\" to read the later \
                 one as \"name_2\"",
            ),
        ] {
            match columns(&c, "in/a.csv", names(header)) {
                Err(Error::BadData(m)) => assert_eq!(m, message),
                other => panic!("{header:?}: {other:?}"),
            }
        }
        let Err(Error::BadData(m)) = columns(&c, "f", names(&["a", "A", "b", "B", "a"])) else {
            panic!()
        };
        assert!(m.contains("column 1 \"a\" and column 2 \"A\""), "{m}");
        assert!(m.contains(", and 2 more repeated name(s)"), "{m}");
    }

    #[test]
    fn rename_keeps_real_names_and_says_which() {
        let c = config(r#", "duplicate_headers": "rename""#);
        let got = columns(&c, "f", names(&["id", "", "Name", "id", "name", "id_2"])).unwrap();
        assert_eq!(
            got.names,
            ["id", "column_2", "Name", "id_3", "name_2", "id_2"]
        );
        assert_eq!(
            got.warnings,
            [
                "f: renamed repeated column names (duplicate_headers = \"rename\"): column 4 \
              \"id\" is read as \"id_3\" (same name as column 1 \"id\"); column 5 \"name\" is \
              read as \"name_2\" (same name as column 3 \"Name\")"
            ]
        );
        assert_eq!(
            got.labels,
            [
                "column \"id\"",
                "column 2",
                "column \"Name\"",
                "column \"id_3\"",
                "column \"name_2\"",
                "column \"id_2\""
            ]
        );
        // A made-up name that meets a real one counts as a repeat too.
        let got = columns(&c, "f", names(&["", "column_1"])).unwrap();
        assert_eq!(got.names, ["column_1", "column_1_2"]);
        assert!(
            got.warnings[0].contains("column 2 \"column_1\" is read as \"column_1_2\" (same name as column 1 (no name, read as \"column_1\"))"),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn unique_headers_are_untouched_and_types_apply_after_renaming() {
        let got = columns(&config(""), "f", names(&["a", "b"])).unwrap();
        assert_eq!(
            (got.names, got.warnings),
            (names(&["a", "b"]), Vec::<String>::new())
        );
        let c = config(r#", "duplicate_headers": "rename", "types": {"N_2": "integer"}"#);
        let got = columns(&c, "f", names(&["n", "N"])).unwrap();
        assert_eq!(got.types, [ColumnType::Text, ColumnType::Integer]);
        // Without a header, columns are numbered.
        let c = config(r#", "has_header": false"#);
        let got = columns(&c, "f", vec![String::new(); 2]).unwrap();
        assert_eq!(
            (got.names, got.labels),
            (
                names(&["column_1", "column_2"]),
                names(&["column 1", "column 2"])
            )
        );
    }
}
