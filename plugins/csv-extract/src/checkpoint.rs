//! Checkpoints: where to resume in a file, and how to tell it is still the same file.
//!
//! A checkpoint is a small JSON object:
//!
//! ```json
//! {"v":1,"offset":1234,"line":57,"head":"…","tail":"…","header":"…"}
//! ```
//!
//! - `offset`: the byte offset just after the last record consumed; always a record boundary.
//! - `line`: the physical line number (1-based) at `offset`, so positions stay right.
//! - `head`, `tail`, `header`: FNV-1a 64-bit hashes (16 hex digits) of the first
//!   `min(offset, 4096)` bytes, of the (up to) 4096 bytes before `offset`, and of the header
//!   record. The file size is no identity (appends change it legitimately); these hashes are:
//!   appending keeps them, replacing or editing the file before `offset` changes them.

use std::io::{self, Read, Seek, SeekFrom};

/// Bytes hashed at the start of the file and before the offset.
pub const WINDOW: u64 = 4096;

/// Version of the checkpoint format.
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
}

impl Checkpoint {
    /// The checkpoint string handed to the host.
    pub fn encode(&self) -> String {
        format!(
            r#"{{"v":{VERSION},"offset":{},"line":{},"head":"{:016x}","tail":"{:016x}","header":"{:016x}"}}"#,
            self.offset, self.line, self.head, self.tail, self.header
        )
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
        };
        if cp.line == 0 {
            return Err("line 0".into());
        }
        Ok(cp)
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

/// The hash of `len` bytes of `src` from `start`. The source's position is restored.
pub fn hash_range<R: Read + Seek>(src: &mut R, start: u64, len: u64) -> io::Result<u64> {
    let back = src.stream_position()?;
    let mut bytes = vec![0u8; len as usize];
    src.seek(SeekFrom::Start(start))?;
    let read = src.read_exact(&mut bytes);
    src.seek(SeekFrom::Start(back))?;
    read?;
    Ok(Fnv::hash(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn encode_decode_round_trip() {
        let cp = Checkpoint {
            offset: 1234,
            line: 57,
            head: 1,
            tail: u64::MAX,
            header: 0xabc,
        };
        let s = cp.encode();
        assert_eq!(
            s,
            r#"{"v":1,"offset":1234,"line":57,"head":"0000000000000001","tail":"ffffffffffffffff","header":"0000000000000abc"}"#
        );
        assert_eq!(Checkpoint::decode(&s), Ok(cp));
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
    }
}
