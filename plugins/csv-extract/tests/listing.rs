//! Skipped files say why in words: a symlink that leads outside the granted directory (which
//! the sandbox refuses with a bare "operation not permitted"), a directory, a socket, a
//! dangling link; and a listing where every match was skipped says so.

mod common;

use common::{config, temp_dir, write_settled};
use csv_extract::CsvExtract;
use std::os::unix::fs::symlink;
use weir_sdk::Extractor;

#[test]
fn skipped_matches_name_the_reason() {
    let base = temp_dir("listing");
    let inbox = base.join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    write_settled(&base.join("secret.csv"), "id\n1\n");
    write_settled(&inbox.join("a.csv"), "id\n2\n");
    symlink("a.csv", inbox.join("inside.csv")).unwrap();
    symlink("./sub/../a.csv", inbox.join("dotted.csv")).unwrap();
    symlink("../secret.csv", inbox.join("up.csv")).unwrap();
    symlink(base.join("secret.csv"), inbox.join("abs.csv")).unwrap();
    symlink("../inbox/a.csv", inbox.join("back.csv")).unwrap();
    symlink("up.csv", inbox.join("chain.csv")).unwrap();
    symlink("nope.csv", inbox.join("dangling.csv")).unwrap();
    symlink("loop.csv", inbox.join("loop.csv")).unwrap();
    std::fs::create_dir(inbox.join("sub")).unwrap();
    std::fs::create_dir(inbox.join("dir.csv")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(inbox.join("sock.csv")).unwrap();

    let listing = CsvExtract::list(&config(&inbox.join("*.csv"), "")).unwrap();
    let dir = inbox.display().to_string();
    let files: Vec<_> = listing.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        files,
        [
            format!("{dir}/a.csv"),
            format!("{dir}/dotted.csv"),
            format!("{dir}/inside.csv")
        ],
        "links that stay inside are read"
    );
    let outside = |name: &str, target: &str| {
        format!(
            "{dir}/{name}: skipped: symlink points outside the granted directory {dir} (to \
             {target})"
        )
    };
    assert_eq!(
        listing.skipped,
        [
            outside("abs.csv", &base.join("secret.csv").display().to_string()),
            outside("back.csv", "../inbox/a.csv"),
            outside("chain.csv", "../secret.csv"),
            format!("{dir}/dangling.csv: skipped: symlink to a file that does not exist"),
            format!("{dir}/dir.csv: skipped: a directory, not a regular file"),
            format!("{dir}/loop.csv: skipped: more than 8 symlinks in a row"),
            format!("{dir}/sock.csv: skipped: not a regular file (a FIFO, socket or device)"),
            outside("up.csv", "../secret.csv"),
        ]
    );
    assert!(
        listing.skipped.iter().all(|s| !s.contains("os error")),
        "reasons in words"
    );
    assert_eq!(listing.summary(), None, "some files remain");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_listing_where_every_match_was_skipped_says_so() {
    let base = temp_dir("listing-all-skipped");
    let inbox = base.join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    write_settled(&base.join("secret.csv"), "id\n1\n");
    symlink("../secret.csv", inbox.join("only.csv")).unwrap();
    let cfg = config(&inbox.join("*.csv"), "");

    let listing = CsvExtract::list(&cfg).unwrap();
    assert!(listing.files.is_empty());
    assert_eq!(
        listing.summary().unwrap(),
        format!(
            "\"path\" {:?}: no file to read: 1 matching entry was skipped (see the warnings \
             before this one)",
            inbox.join("*.csv").display().to_string()
        )
    );
    // `partitions` still succeeds (the run has nothing to do), having logged both lines.
    assert!(CsvExtract::partitions(&cfg).unwrap().is_empty());

    // No match at all is no warning: an empty inbox is normal.
    let empty = config(&base.join("*.none"), "");
    assert_eq!(CsvExtract::list(&empty).unwrap().summary(), None);
    std::fs::remove_dir_all(&base).unwrap();
}
