//! The fixture against a real osmem-server: it starts, answers, and the proxy refuses, answers
//! 429 and forwards as told.

use std::net::TcpStream;

use osmem_fixture::{Client, Osmem, Proxy};

#[test]
fn the_server_indexes_with_external_versions_and_lists_documents() {
    let server = Osmem::start().unwrap();
    let client = server.client();
    let bulk = concat!(
        r#"{"index":{"_index":"t","_id":"1","version":5,"version_type":"external"}}"#,
        "\n",
        r#"{"n":1}"#,
        "\n",
        r#"{"index":{"_index":"t","_id":"1","version":3,"version_type":"external"}}"#,
        "\n",
        r#"{"n":2}"#,
        "\n",
        r#"{"index":{"_index":"t","_id":"2","version":7,"version_type":"external"}}"#,
        "\n",
        r#"{"n":3}"#,
        "\n",
    );
    let answer = client.ok("POST", "/_bulk", Some(bulk)).unwrap();
    assert_eq!(answer["items"][1]["index"]["status"], 409, "{answer}");
    let docs = client.documents("t").unwrap();
    let got: Vec<_> = docs
        .iter()
        .map(|d| (d.id.as_str(), d.version, d.source["n"].as_i64()))
        .collect();
    assert_eq!(got, [("1", 5, Some(1)), ("2", 7, Some(3))]);
}

#[test]
fn the_proxy_forwards_refuses_and_answers_429() {
    let server = Osmem::start().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();
    let addr: std::net::SocketAddr = proxy
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let through = Client::new(addr);
    assert_eq!(through.request("GET", "/", None).unwrap().0, 200);
    proxy.wait_for_completed("the GET answered", |lines| lines == ["GET / HTTP/1.1"]);

    proxy.refuse();
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    proxy.pass();
    assert_eq!(through.request("GET", "/", None).unwrap().0, 200);

    proxy.answer_429(2, 3);
    let (status, body) = through.request("POST", "/_bulk", Some("{}\n")).unwrap();
    assert_eq!((status, body["status"].as_i64()), (429, Some(429)));
    assert_eq!(through.request("GET", "/", None).unwrap().0, 429);
    assert_eq!(through.request("GET", "/", None).unwrap().0, 200);
    assert_eq!(proxy.answered_429(), 2);

    proxy.refuse_after(1);
    assert_eq!(through.request("GET", "/", None).unwrap().0, 200);
    assert!(!proxy.refusing());
    // The next connection finds the fault due: it is closed unanswered, and the socket with it.
    assert!(through.request("GET", "/", None).is_err());
    proxy.wait_until_refusing();
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    proxy.pass();
    assert_eq!(through.request("GET", "/", None).unwrap().0, 200);
}
