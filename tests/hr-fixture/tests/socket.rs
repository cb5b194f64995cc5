//! The fixture over a real socket, with a plain HTTP/1.1 client on `std::net::TcpStream`.

use std::io::{Read, Write};
use std::net::TcpStream;

use hr_fixture::{State, spawn};

/// `GET path` with an optional bearer token: (status, headers, body).
fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn serves_pages_on_loopback_and_stops_when_dropped() {
    let hr = spawn("127.0.0.1:0", State::new("s3cret", 250, 5)).unwrap();
    assert!(hr.api_url().starts_with("http://127.0.0.1:") && hr.api_url().ends_with("/api/"));
    let addr = hr.addr();

    let (status, _, _) = get(addr, "/api/employees", None);
    assert_eq!(status, 401);
    let (status, head, body) = get(
        addr,
        "/api/link/employees?per_page=100&page=2",
        Some("s3cret"),
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "link: <http://{addr}/api/link/employees?per_page=100&page=1>"
        )),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"][0]["id"], 101);
    assert_eq!(v["meta"]["total"], 250);

    hr.state().lock().unwrap().faults.rate_limit_next = 1;
    hr.state().lock().unwrap().faults.retry_after = 1;
    let (status, head, _) = get(addr, "/api/employees", Some("s3cret"));
    assert_eq!(status, 429);
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(hr.state().lock().unwrap().log.len(), 3);

    drop(hr);
    assert!(TcpStream::connect(addr).is_err(), "stopped");
}
