//! Memory of `weir serve` with event-stream clients that never read.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::serve_support::*;
use crate::support::*;

/// The bound the issue sets for 100 idle clients.
const LIMIT_KIB: u64 = 50 * 1024;

#[test]
fn a_hundred_event_stream_clients_that_never_read_add_less_than_50_mb() {
    // 4,500 batches: more events than the bus keeps (4,096), so the idle clients fall off the
    // end of the ring and are disconnected with a resync, instead of holding memory.
    let fx = Fixture::new();
    let mut csv = String::from("id;name\n");
    for i in 0..45_000 {
        csv.push_str(&format!("{i};name {i}\n"));
    }
    fx.write("inbox/big.csv", csv);
    fx.config(
        &csv_pipeline(
            "load",
            r#"path = "inbox/*.csv", delimiter = ";""#,
            r#"table = "rows", mode = "upsert", key = ["id"]"#,
        )
        .replace("name = \"load\"\n", "name = \"load\"\nbatch_size = 10\n"),
    );
    let server = Server::start(&fx);
    let mut reader = server.events("pipeline=load", None);

    // Warm up with the same run, so the baseline includes what a run itself allocates.
    let run = server.trigger("load");
    reader.until(|e| ends_run(e, Some(&run)));
    let reset = server.request("DELETE", "/api/pipelines/load/checkpoints", true);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let baseline = server.rss_kib();

    let idle: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            write!(
                s,
                "GET /api/events HTTP/1.1\r\nHost: {}\r\n\r\n",
                server.addr
            )
            .unwrap();
            // Only the response head is read, to know the stream is open; never the events.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"));
            s
        })
        .collect();
    let with_clients = server.rss_kib();

    let run = server.trigger("load");
    let events = reader.until(|e| ends_run(e, Some(&run)));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "batch_committed")
            .count(),
        4_500,
        "the reading client saw every batch"
    );
    let after = server.rss_kib();
    assert_eq!(server.request("GET", "/api/health", false).status, 200);
    let added = after.saturating_sub(baseline);
    eprintln!(
        "serve VmRSS: {} MiB before, {} MiB with 100 idle clients connected, {} MiB after a 4,500-batch run ({} KiB added)",
        baseline / 1024,
        with_clients / 1024,
        after / 1024,
        added
    );
    assert!(
        added < LIMIT_KIB,
        "100 idle clients added {added} KiB (limit {LIMIT_KIB} KiB)"
    );
    drop(idle);
}
