//! Checkpoints: where to resume in a file, and how to tell it is still the same file.
//!
//! A checkpoint is a small JSON object:
//!
//! ```json
//! {"v":1,"offset":1234,"line":57,"head":"…","tail":"…","header":"…","full":"…"}
//! ```
//!
//! - `offset`: the byte offset just after the last record consumed; always a record boundary.
//! - `line`: the physical line number (1-based) at `offset`, so positions stay right.
//! - `head`, `tail`, `header`: FNV-1a 64-bit hashes (16 hex digits) of the first
//!   `min(offset, 4096)` bytes, of the (up to) 4096 bytes before `offset`, and of the header
//!   record. The file size is no identity (appends change it legitimately); these hashes are:
//!   appending keeps them, truncating below `offset`, replacing the header or editing those
//!   windows changes them. An edit elsewhere before `offset` that keeps the length is not seen.
//! - `full` (only with `verify = "full"`): the xxh3-64 hash of all `offset` bytes, so any
//!   change before `offset` is seen, at the price of re-reading them on every resume.

use crate::config::Verify;
use crate::error::{Error, Result, io_error};
use std::io::{self, Read, Seek, SeekFrom};
use xxhash_rust::xxh3::Xxh3Default;

/// Bytes hashed at the start of the file and before the offset.
pub const WINDOW: u64 = 4096;

/// Version of the checkpoint format. `full` is optional, so adding it kept version 1.
const VERSION: u64 = 1;

/// A decoded checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Byte offset after the last consumed record.
    pub offset: u64,
    /// Physical line number at `offset`.
    pub line: u64,
    /// Hash of the first `min(offset, WINDOW)` bytes.
    pub head: u64,
    /// Hash of the `WINDOW` bytes (or fewer) before `offset`.
    pub tail: u64,
    /// Hash of the raw header record (of nothing without a header).
    pub header: u64,
    /// xxh3-64 of all bytes before `offset` (`verify = "full"` only).
    pub full: Option<u64>,
}

impl Checkpoint {
    /// The checkpoint string handed to the host.
    pub fn encode(&self) -> String {
        let mut s = format!(
            r#"{{"v":{VERSION},"offset":{},"line":{},"head":"{:016x}","tail":"{:016x}","header":"{:016x}""#,
            self.offset, self.line, self.head, self.tail, self.header
        );
        if let Some(full) = self.full {
            s.push_str(&format!(r#","full":"{full:016x}""#));
        }
        s.push('}');
        s
    }

    /// Decode a checkpoint string; the error says what is wrong with it.
    pub fn decode(s: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("not JSON ({e})"))?;
        let num = |k: &str| v[k].as_u64().ok_or_else(|| format!("no integer \"{k}\""));
        let hash = |k: &str| {
            v[k].as_str()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("no hex hash \"{k}\""))
        };
        if num("v")? != VERSION {
            return Err(format!("unknown version {} (expected {VERSION})", v["v"]));
        }
        let cp = Self {
            offset: num("offset")?,
            line: num("line")?,
            head: hash("head")?,
            tail: hash("tail")?,
            header: hash("header")?,
            full: match v.get("full") {
                None => None,
                Some(_) => Some(hash("full")?),
            },
        };
        if cp.line == 0 {
            return Err("line 0".into());
        }
        Ok(cp)
    }
}

/// Makes the checkpoints of one file as it is read, and checks a stored one before resuming.
pub struct Tracker {
    path: String,
    /// Hash of the header record, part of every checkpoint.
    header: u64,
    /// Hash of the first `WINDOW` bytes, once the offset is past them (it cannot change then).
    head: Option<u64>,
    /// With `verify = "full"`: the hash of every byte before the offset it has reached, kept
    /// running so that each checkpoint reads only the bytes since the last one.
    full: Option<(Xxh3Default, u64)>,
}

impl Tracker {
    /// A tracker for `path`, whose header record hashes to `header`.
    pub fn new(path: &str, header: u64, verify: Verify) -> Self {
        Self {
            path: path.to_owned(),
            header,
            head: None,
            full: (verify == Verify::Full).then(|| (Xxh3Default::new(), 0)),
        }
    }

    /// Check the `stored` checkpoint against the file (`size` bytes, rows from `body_start`)
    /// and return it; the error tells the operator what to do. With `verify = "full"` this
    /// reads every byte before the offset. The second value is a note for the log.
    pub fn resume<R: Read + Seek>(
        &mut self,
        src: &mut R,
        stored: &str,
        size: u64,
        body_start: u64,
    ) -> Result<(Checkpoint, Option<String>)> {
        let path = &self.path;
        let reset =
            format!("run `weir checkpoints reset <pipeline> {path}` to load it from the start");
        let cp = Checkpoint::decode(stored).map_err(|e| {
            Error::BadData(format!(
                "{path}: the checkpoint is not one of csv-extract's ({e}): {stored:?}; {reset}"
            ))
        })?;
        if size < cp.offset {
            return Err(Error::BadData(format!(
                "{path}: file is shorter than the last checkpoint ({size} bytes < offset {}): \
                 it was truncated or replaced; {reset}",
                cp.offset
            )));
        }
        let changed = |what: &str| {
            Error::BadData(format!(
                "{path}: {what} changed since the last checkpoint (offset {}, line {}): the file \
                 was replaced or edited, so resuming could skip or repeat rows; {reset}",
                cp.offset, cp.line
            ))
        };
        if cp.header != self.header || cp.offset < body_start {
            return Err(changed("the header line"));
        }
        let read_err = |e: io::Error| io_error(path, "cannot read for the checkpoint", &e);
        let (head, tail) = fingerprint(src, cp.offset).map_err(read_err)?;
        if head != cp.head {
            return Err(changed("the start of the file"));
        }
        if tail != cp.tail {
            return Err(changed("the content before the checkpoint"));
        }
        let mut note = None;
        if let Some((hasher, hashed)) = &mut self.full {
            read_range(src, 0, cp.offset, |chunk| hasher.update(chunk)).map_err(read_err)?;
            *hashed = cp.offset;
            match cp.full {
                Some(full) if full != hasher.digest() => {
                    // The windows matched, so the edit is somewhere in between.
                    return Err(changed(
                        "the content between the first 4 KiB and the 4 KiB before the checkpoint",
                    ));
                }
                Some(_) => {}
                None => {
                    note = Some(format!(
                        "{path}: the checkpoint was saved without verify = \"full\", so only its \
                         windows were checked this time; the full check covers this file from \
                         the next checkpoint on"
                    ));
                }
            }
        }
        Ok((cp, note))
    }

    /// The checkpoint at `offset` (a record boundary, at physical `line`).
    pub fn checkpoint<R: Read + Seek>(
        &mut self,
        src: &mut R,
        offset: u64,
        line: u64,
    ) -> Result<Checkpoint> {
        let path = &self.path;
        let read_err = |e: io::Error| io_error(path, "cannot read for the checkpoint", &e);
        let head = match self.head {
            Some(h) => h,
            None => {
                let h = hash_range(src, 0, offset.min(WINDOW)).map_err(read_err)?;
                if offset >= WINDOW {
                    self.head = Some(h);
                }
                h
            }
        };
        let tail_start = offset.saturating_sub(WINDOW);
        let tail = hash_range(src, tail_start, offset - tail_start).map_err(read_err)?;
        let full = match &mut self.full {
            None => None,
            Some((hasher, hashed)) => {
                // Re-read rather than hash inside the parser: its buffer runs ahead of the
                // offset, and the bytes since the last checkpoint are in the page cache.
                read_range(src, *hashed, offset - *hashed, |c| hasher.update(c))
                    .map_err(read_err)?;
                *hashed = offset;
                Some(hasher.digest())
            }
        };
        Ok(Checkpoint {
            offset,
            line,
            head,
            tail,
            header: self.header,
            full,
        })
    }
}

/// FNV-1a, 64 bit: tiny, dependency-free and plenty to tell two files apart (this is no
/// defence against someone forging a collision, which nobody gains anything from here).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Add bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        self.0
    }

    /// The hash of `bytes`.
    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Self::default();
        h.update(bytes);
        h.finish()
    }
}

/// `(head, tail)` hashes of `src` for a checkpoint at `offset` (see the module docs). The
/// source's position is restored afterwards.
pub fn fingerprint<R: Read + Seek>(src: &mut R, offset: u64) -> io::Result<(u64, u64)> {
    let head = hash_range(src, 0, offset.min(WINDOW))?;
    // The tail window overlaps the head in short files; it is still its own check.
    let tail_start = offset.saturating_sub(WINDOW);
    let tail = hash_range(src, tail_start, offset - tail_start)?;
    Ok((head, tail))
}

/// The FNV hash of `len` bytes of `src` from `start`. The source's position is restored.
pub fn hash_range<R: Read + Seek>(src: &mut R, start: u64, len: u64) -> io::Result<u64> {
    let mut h = Fnv::default();
    read_range(src, start, len, |chunk| h.update(chunk))?;
    Ok(h.finish())
}

/// Hand `len` bytes of `src` from `start` to `sink`, in chunks (a full-file hash must not hold
/// the file in memory). The source's position is restored; too few bytes is an error.
pub fn read_range<R: Read + Seek>(
    src: &mut R,
    start: u64,
    len: u64,
    mut sink: impl FnMut(&[u8]),
) -> io::Result<()> {
    const CHUNK: u64 = 256 * 1024;
    let back = src.stream_position()?;
    let mut buf = vec![0u8; len.min(CHUNK) as usize];
    let mut read = || -> io::Result<()> {
        src.seek(SeekFrom::Start(start))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK) as usize;
            src.read_exact(&mut buf[..n])?;
            sink(&buf[..n]);
            left -= n as u64;
        }
        Ok(())
    };
    let result = read();
    src.seek(SeekFrom::Start(back))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn encode_decode_round_trip() {
        let mut cp = Checkpoint {
            offset: 1234,
            line: 57,
            head: 1,
            tail: u64::MAX,
            header: 0xabc,
            full: None,
        };
        let s = cp.encode();
        assert_eq!(
            s,
            r#"{"v":1,"offset":1234,"line":57,"head":"0000000000000001","tail":"ffffffffffffffff","header":"0000000000000abc"}"#
        );
        assert_eq!(Checkpoint::decode(&s), Ok(cp));
        cp.full = Some(0xf0f0);
        let s = cp.encode();
        assert!(s.ends_with(r#","header":"0000000000000abc","full":"000000000000f0f0"}"#));
        assert_eq!(Checkpoint::decode(&s), Ok(cp));
        assert!(Checkpoint::decode(&s.replace("f0f0\"", "xyz\"")).is_err());
        assert!(Checkpoint::decode("12").is_err());
        assert!(
            Checkpoint::decode(r#"{"v":2}"#)
                .unwrap_err()
                .contains("version")
        );
        assert!(Checkpoint::decode(&s.replace("\"line\":57", "\"line\":\"x\"")).is_err());
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(Fnv::hash(b""), 0xcbf29ce484222325);
        assert_eq!(Fnv::hash(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(Fnv::hash(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn fingerprint_windows_and_position() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut c = Cursor::new(&data);
        c.set_position(77);
        let (head, tail) = fingerprint(&mut c, 9000).unwrap();
        assert_eq!(c.position(), 77);
        assert_eq!(head, Fnv::hash(&data[..4096]));
        assert_eq!(tail, Fnv::hash(&data[9000 - 4096..9000]));
        let (head, tail) = fingerprint(&mut c, 10).unwrap();
        assert_eq!(
            (head, tail),
            (Fnv::hash(&data[..10]), Fnv::hash(&data[..10]))
        );
        assert!(fingerprint(&mut c, 20_000).is_err(), "past the end");
        assert_eq!(c.position(), 77, "restored after an error too");
    }

    #[test]
    fn full_hash_runs_across_checkpoints_and_resumes() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let mut c = Cursor::new(&data);
        let mut t = Tracker::new("f", 7, Verify::Full);
        // Checkpoints in steps, one longer than a read chunk: the running hash is the hash of
        // the whole prefix each time.
        let mut last = None;
        for offset in [10, 5000, 300_000, 700_000] {
            let cp = t.checkpoint(&mut c, offset, 1).unwrap();
            assert_eq!(
                cp.full,
                Some(xxhash_rust::xxh3::xxh3_64(&data[..offset as usize]))
            );
            last = Some(cp);
        }
        let stored = last.unwrap().encode();
        let mut resumed = Tracker::new("f", 7, Verify::Full);
        let (cp, note) = resumed.resume(&mut c, &stored, 700_000, 0).unwrap();
        assert_eq!((cp.offset, note), (700_000, None));

        // A same-length edit in the middle: the windows cannot see it, the full hash does.
        let mut edited = data.clone();
        edited[350_000] ^= 1;
        let mut e = Cursor::new(&edited);
        let mut window = Tracker::new("f", 7, Verify::Window);
        assert!(window.resume(&mut e, &stored, 700_000, 0).is_ok());
        let Err(Error::BadData(m)) =
            Tracker::new("f", 7, Verify::Full).resume(&mut e, &stored, 700_000, 0)
        else {
            panic!("the edit went unnoticed")
        };
        assert!(
            m.starts_with(
                "f: the content between the first 4 KiB and the 4 KiB before the checkpoint changed"
            ),
            "{m}"
        );

        // A checkpoint saved without the full hash is still accepted, with a note.
        let mut plain = Tracker::new("f", 7, Verify::Window);
        let stored = plain.checkpoint(&mut c, 5000, 1).unwrap().encode();
        let (_, note) = Tracker::new("f", 7, Verify::Full)
            .resume(&mut c, &stored, 700_000, 0)
            .unwrap();
        assert!(note.unwrap().contains("without verify = \"full\""));
    }
}
