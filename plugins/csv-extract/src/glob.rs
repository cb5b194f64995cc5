//! File-name globs: `dir/part/*.csv` → the matching files of one directory, sorted.
//!
//! Only the file-name part may hold wildcards: `*` (any run, not a leading `.`), `?` (one
//! character) and `[...]` (a class with ranges, negated by a leading `!` or `^`; a `]` right
//! after the opening bracket is literal). The directory part is used as written, because the
//! host preopens each granted directory at exactly the path string of `grants.read_dirs`.

use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;

/// One matching file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMatch {
    /// The path as the guest opens it: the configured directory part plus the file name.
    pub path: String,
    /// Length in bytes when listed.
    pub size: u64,
}

/// What [`list`] found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Matching regular files, sorted by path.
    pub files: Vec<FileMatch>,
    /// Entries that matched but were skipped, with why (for a log warning).
    pub skipped: Vec<String>,
}

/// One token of a compiled file-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled file-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compile a file-name pattern; errors name the problem.
    pub fn new(pattern: &str) -> std::result::Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyOne,
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(lo) = chars.next() else {
                            return Err(format!("unclosed \"[\" in \"{pattern}\""));
                        };
                        if lo == ']' && !first {
                            break;
                        }
                        first = false;
                        let hi = if chars.peek() == Some(&'-') {
                            let mut ahead = chars.clone();
                            ahead.next();
                            match ahead.next() {
                                // `[a-]`: the dash is literal.
                                Some(']') | None => lo,
                                Some(hi) => {
                                    chars = ahead;
                                    hi
                                }
                            }
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    Token::Class { negated, ranges }
                }
                c => Token::Literal(c),
            });
        }
        Ok(Self { tokens })
    }

    /// Whether the pattern has any wildcard.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        // Like a shell, wildcards do not match a hidden file's leading dot.
        if name.starts_with('.') && !matches!(self.tokens.first(), Some(Token::Literal('.'))) {
            return false;
        }
        let name: Vec<char> = name.chars().collect();
        let (mut t, mut n) = (0, 0);
        // The last `*` seen and the name index it currently stops at, to backtrack to.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(t) {
                Some(Token::AnyRun) => {
                    star = Some((t, n));
                    t += 1;
                }
                Some(tok) if tok.matches_one(name[n]) => {
                    t += 1;
                    n += 1;
                }
                _ => match star {
                    Some((st, sn)) => {
                        t = st + 1;
                        n = sn + 1;
                        star = Some((st, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
    }
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne => true,
            Token::AnyRun => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// Split `path` into its literal directory part (with the trailing `/`, or empty) and its
/// compiled file-name pattern.
pub fn split(path: &str) -> Result<(&str, Pattern)> {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (dir, name) = path.split_at(cut);
    if name.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "\"path\" {path:?} names a directory; add a file name or pattern such as \"*.csv\""
        )));
    }
    if dir.contains(['*', '?', '[']) {
        return Err(Error::InvalidConfig(format!(
            "\"path\" {path:?}: wildcards are only allowed in the file name, not in the directory"
        )));
    }
    let pattern = Pattern::new(name).map_err(|e| Error::InvalidConfig(format!("\"path\": {e}")))?;
    Ok((dir, pattern))
}

/// The regular files matching `path`, sorted by path.
pub fn list(path: &str) -> Result<Listing> {
    let (dir, pattern) = split(path)?;
    let read_path = match dir {
        "" => ".",
        "/" => "/",
        d => d.trim_end_matches('/'),
    };
    let entries = fs::read_dir(read_path).map_err(|e| dir_error(read_path, path, &e))?;
    let mut listing = Listing::default();
    for entry in entries {
        let entry = entry.map_err(|e| dir_error(read_path, path, &e))?;
        let Ok(name) = entry.file_name().into_string() else {
            listing.skipped.push(format!(
                "{read_path}: skipped a file whose name is not UTF-8: {:?}",
                entry.file_name()
            ));
            continue;
        };
        if !pattern.matches(&name) {
            continue;
        }
        let file = format!("{dir}{name}");
        // `fs::metadata` follows symlinks, so a link to a file counts as that file.
        match fs::metadata(&file) {
            Ok(m) if m.is_file() => listing.files.push(FileMatch {
                path: file,
                size: m.len(),
            }),
            Ok(_) => listing
                .skipped
                .push(format!("{file}: skipped: not a regular file")),
            Err(e) => listing.skipped.push(format!("{file}: skipped: {e}")),
        }
    }
    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

fn dir_error(dir: &str, path: &str, e: &std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::InvalidConfig(format!(
            "directory {dir:?} of \"path\" {path:?} does not exist or is not granted: it must \
             exist and be listed in the pipeline's grants.read_dirs exactly as written in \"path\""
        )),
        ErrorKind::NotADirectory => {
            Error::InvalidConfig(format!("{dir:?} of \"path\" {path:?} is not a directory"))
        }
        _ => Error::AccessDenied(format!(
            "cannot read directory {dir:?} of \"path\" {path:?} ({e}): it must be listed in the \
             pipeline's grants.read_dirs exactly as written in \"path\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, name: &str) -> bool {
        Pattern::new(p).unwrap().matches(name)
    }

    #[test]
    fn wildcards() {
        assert!(m("*.csv", "2026-01.csv"));
        assert!(!m("*.csv", ".csv"), "no hidden files");
        assert!(m(".*.csv", ".x.csv"));
        assert!(!m("*.csv", "a.csv.part"));
        assert!(m("a*b*c", "aXXbYYbZc"));
        assert!(m("*", "x"));
        assert!(m("?.csv", "1.csv") && !m("?.csv", "12.csv"));
        assert!(m("20[0-9][0-9]-*.csv", "2026-01.csv"));
        assert!(!m("[!0-9]*", "1a") && m("[^0-9]*", "a1"));
        assert!(m("[]a]x", "]x") && m("[a-]", "-"));
        assert!(m("ü*", "über"));
        assert!(m("exact.csv", "exact.csv") && !m("exact.csv", "exact.csvx"));
        assert!(Pattern::new("exact.csv").unwrap().is_literal());
        assert!(Pattern::new("[a").is_err());
    }

    #[test]
    fn split_keeps_the_directory_as_written() {
        let (dir, pat) = split("examples/bank-recon/inbox/*.csv").unwrap();
        assert_eq!(dir, "examples/bank-recon/inbox/");
        assert!(pat.matches("2026-01.csv"));
        assert_eq!(split("*.csv").unwrap().0, "");
        assert_eq!(split("/x.csv").unwrap().0, "/");
        assert!(matches!(split("in/"), Err(Error::InvalidConfig(_))));
        assert!(matches!(split("i*/x.csv"), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn lists_sorted_regular_files() {
        let dir = std::env::temp_dir().join(format!("csvx-glob-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub.csv")).unwrap();
        for (name, body) in [
            ("b.csv", "12"),
            ("a.csv", "1"),
            ("c.txt", ""),
            (".h.csv", ""),
        ] {
            fs::write(dir.join(name), body).unwrap();
        }
        let base = dir.to_str().unwrap();
        let listing = list(&format!("{base}/*.csv")).unwrap();
        let got: Vec<_> = listing
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size))
            .collect();
        assert_eq!(
            got,
            [(format!("{base}/a.csv"), 1), (format!("{base}/b.csv"), 2)]
        );
        assert_eq!(listing.skipped.len(), 1, "the directory sub.csv");
        let missing = list(&format!("{base}/nope/*.csv")).unwrap_err();
        assert!(
            missing.message().contains("grants.read_dirs"),
            "{missing:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
