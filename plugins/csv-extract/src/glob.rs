//! File-name globs: `dir/part/*.csv` → the matching files of one directory, sorted.
//!
//! Only the file-name part may hold wildcards: `*` (any run, not a leading `.`), `?` (one
//! character) and `[...]` (a class with ranges, negated by a leading `!` or `^`; a `]` right
//! after the opening bracket is literal). The directory part is used as written, because the
//! host preopens each granted directory at exactly the path string of `grants.read_dirs`.
//!
//! A match that cannot be read is skipped with its reason in words, never a bare OS error:
//! the sandbox answers "operation not permitted" for a symlink that leads outside the granted
//! directory, which says nothing to the operator. So symlinks are followed here, by their
//! text, only as far as they stay inside the directory (natively too, so that tests see what
//! the sandbox does).

use crate::error::{Error, Result};
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Component, Path};

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
    /// Entries that matched but were skipped, each `<path>: skipped: <reason>` (a warning).
    pub skipped: Vec<String>,
    /// The configured path, for [`Listing::summary`].
    path: String,
}

impl Listing {
    /// A warning when matches were found but every one was skipped, so that a run with no
    /// partitions says why rather than just "completed".
    pub fn summary(&self) -> Option<String> {
        (self.files.is_empty() && !self.skipped.is_empty()).then(|| {
            format!(
                "\"path\" {:?}: no file to read: {} matching {} skipped (see the warnings \
                 before this one)",
                self.path,
                self.skipped.len(),
                if self.skipped.len() == 1 {
                    "entry was"
                } else {
                    "entries were"
                }
            )
        })
    }
}

/// How many symlinks in a row are followed before giving up (as the OS does, against loops).
const MAX_LINKS: usize = 8;

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
    let mut listing = Listing {
        path: path.to_owned(),
        ..Listing::default()
    };
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
        match check(dir, read_path, &name) {
            Ok(size) => listing.files.push(FileMatch { path: file, size }),
            Err(reason) => listing.skipped.push(format!("{file}: skipped: {reason}")),
        }
    }
    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    listing.skipped.sort();
    Ok(listing)
}

/// The size of the matched entry `name` of `dir` (shown as `shown`) if it can be read as a
/// file, else why not, in words.
fn check(dir: &str, shown: &str, name: &str) -> std::result::Result<u64, String> {
    let file = format!("{dir}{name}");
    let link = fs::symlink_metadata(&file)
        .map_err(|e| in_words(&e))?
        .is_symlink();
    if link {
        stays_inside(dir, shown, name)?;
    }
    match fs::metadata(&file) {
        Ok(m) if m.is_file() => match fs::File::open(&file) {
            Ok(_) => Ok(m.len()),
            Err(e) => Err(format!("not readable: {}", in_words(&e))),
        },
        Ok(m) if m.is_dir() => Err("a directory, not a regular file".into()),
        Ok(_) => Err("not a regular file (a FIFO, socket or device)".into()),
        Err(e) if link && e.kind() == ErrorKind::NotFound => {
            Err("symlink to a file that does not exist".into())
        }
        Err(e) => Err(in_words(&e)),
    }
}

/// Follow the symlink `name` of `dir` by its text; an error if it leads outside `dir`
/// (which the sandbox refuses to open, and where the operator granted nothing).
fn stays_inside(dir: &str, shown: &str, name: &str) -> std::result::Result<(), String> {
    // The path of the current link, in components below `dir`.
    let mut at: Vec<String> = vec![name.to_owned()];
    for _ in 0..MAX_LINKS {
        let current = format!("{dir}{}", at.join("/"));
        match fs::symlink_metadata(&current) {
            Ok(m) if m.is_symlink() => {}
            // Not a link (any more), or missing: `check` says what it is.
            _ => return Ok(()),
        }
        let target = fs::read_link(&current)
            .map_err(|e| format!("cannot read the symlink: {}", in_words(&e)))?;
        let outside = || {
            format!(
                "symlink points outside the granted directory {shown} (to {})",
                target.display()
            )
        };
        at.pop();
        for part in Path::new(&target).components() {
            match part {
                Component::Normal(p) => at.push(p.to_string_lossy().into_owned()),
                Component::CurDir => {}
                // Even a `..` that comes back in is refused by the sandbox.
                Component::ParentDir => {
                    at.pop().ok_or_else(outside)?;
                }
                Component::RootDir | Component::Prefix(_) => return Err(outside()),
            }
        }
    }
    Err(format!("more than {MAX_LINKS} symlinks in a row"))
}

/// An I/O error as words a user can act on, not `os error 63`.
fn in_words(e: &io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "it vanished while the directory was listed".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::IsADirectory => "a directory, not a regular file".into(),
        // Anything rarer keeps the OS text, but says what failed.
        _ => format!("cannot be read ({e})"),
    }
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
        assert_eq!(
            listing.skipped,
            [format!(
                "{base}/sub.csv: skipped: a directory, not a regular file"
            )]
        );
        let missing = list(&format!("{base}/nope/*.csv")).unwrap_err();
        assert!(
            missing.message().contains("grants.read_dirs"),
            "{missing:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
