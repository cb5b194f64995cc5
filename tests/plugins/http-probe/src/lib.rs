//! `http-probe`: makes the HTTP requests its config lists through `wasi:http/outgoing-handler`
//! and reports exactly what came back, so a test can see what the host allowed, refused or
//! changed.
//!
//! As an **extractor** (default), `partitions` is one partition per request (its `id`), and
//! `open` makes that request. The reader then returns one row:
//!
//! | column    | kind              | value                                                        |
//! |-----------|-------------------|--------------------------------------------------------------|
//! | `id`      | text, primary key | the request's id                                             |
//! | `url`     | text              | the URL of the last request made (after redirects followed)  |
//! | `status`  | integer, null     | the response status, null when no response came              |
//! | `headers` | text, null        | the response headers as a JSON object (name → value)         |
//! | `body`    | text, null        | the response body (lossy UTF-8), null when no response came  |
//! | `error`   | text, null        | `<METHOD> <url>: <ErrorCode as Debug>` when the request or the body failed |
//! | `hops`    | integer           | redirects followed                                           |
//!
//! Config: `requests` = `[{ id, url, method = "GET", headers = { name = value },
//! body = "…", follow_redirects = false, first_byte_timeout_ms }]`, and `unavailable_on`
//! (`[]`): statuses for which `open` fails with `unavailable("http-probe: <id>: status N")`
//! instead, as a real source plugin does on 429/503.
//!
//! With `follow_redirects`, a 3xx with `Location` (absolute, or an absolute path) is requested
//! in turn, up to 5 hops, through the same outgoing handler: the host checks each hop.
//!
//! As a **transformer** (feature `transform`) it imports `wasi:http` too (its `open` makes the
//! first listed request): the host must refuse to load it, since transformers get no network.

use serde::Deserialize;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

const NAME: &str = "http-probe";

/// Longest body kept in a row.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    requests: Vec<ProbeRequest>,
    #[serde(default)]
    #[cfg_attr(
        not(feature = "extract"),
        expect(dead_code, reason = "only the extractor reads it")
    )]
    unavailable_on: Vec<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeRequest {
    #[cfg_attr(
        not(feature = "extract"),
        expect(dead_code, reason = "only the extractor reads it")
    )]
    id: String,
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    follow_redirects: bool,
    #[serde(default)]
    first_byte_timeout_ms: Option<u64>,
}

fn get() -> String {
    "GET".into()
}

/// What one probe came to.
#[derive(Debug, Default)]
struct Outcome {
    url: String,
    status: Option<u16>,
    headers: Option<String>,
    body: Option<String>,
    error: Option<String>,
    hops: u32,
}

/// `scheme://authority/path?query` split for wasi:http.
fn split_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.is_empty() { "/" } else { path };
    Ok((scheme, authority.to_owned(), path.to_owned()))
}

/// The next URL of a redirect: absolute, or an absolute path on the same origin.
fn redirect_target(current: &str, location: &str) -> Option<String> {
    if location.contains("://") {
        return Some(location.to_owned());
    }
    let origin_end = current.find("://")? + 3;
    let path_start = current[origin_end..]
        .find(['/', '?'])
        .map_or(current.len(), |i| origin_end + i);
    location
        .starts_with('/')
        .then(|| format!("{}{location}", &current[..path_start]))
}

fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    }
}

/// A response as read: status, headers, body, and the error that ended the body early.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    body_error: Option<String>,
}

/// One request, one response, or the error.
fn send_one(req: &ProbeRequest, url: &str) -> Result<Answer, String> {
    let (scheme, authority, path) = split_url(url)?;
    let entries: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let bad = |what: &str| format!("the request refused its {what}");
    request
        .set_method(&method(&req.method))
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(&authority))
        .map_err(|()| bad("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| bad("path"))?;
    let outgoing_body = request.body().map_err(|()| bad("body"))?;
    let options = req.first_byte_timeout_ms.map(|ms| {
        let options = RequestOptions::new();
        let _ = options.set_first_byte_timeout(Some(ms * 1_000_000));
        options
    });
    let future = outgoing_handler::handle(request, options).map_err(|e| show(&e))?;
    if let Some(text) = &req.body {
        let stream = outgoing_body.write().map_err(|()| bad("body stream"))?;
        for chunk in text.as_bytes().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the body: {e:?}"))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| show(&e))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(show(&e)),
        Some(Err(())) | None => return Err("the response future gave nothing".into()),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let body = response.consume().map_err(|()| "no body".to_owned())?;
    let stream = body.stream().map_err(|()| "no body stream".to_owned())?;
    let mut bytes = Vec::new();
    let mut body_error = None;
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let code = wasi::http::types::http_error_code(&e);
                body_error = Some(format!("body: {code:?}: {}", e.to_debug_string()));
                break;
            }
        }
    }
    drop(stream);
    drop(body);
    Ok(Answer {
        status,
        headers,
        body: bytes,
        body_error,
    })
}

fn show(e: &ErrorCode) -> String {
    format!("{e:?}")
}

/// Make a probe's request, following redirects if asked.
fn probe(req: &ProbeRequest) -> Outcome {
    let mut outcome = Outcome {
        url: req.url.clone(),
        ..Outcome::default()
    };
    loop {
        let url = outcome.url.clone();
        match send_one(req, &url) {
            Err(e) => {
                outcome.error = Some(format!("{} {url}: {e}", req.method));
                return outcome;
            }
            Ok(Answer {
                status,
                headers,
                body,
                body_error,
            }) => {
                let location = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                let map: serde_json::Map<String, serde_json::Value> = headers
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned().into()))
                    .collect();
                outcome.status = Some(status);
                outcome.headers = Some(serde_json::Value::Object(map).to_string());
                let mut text = String::from_utf8_lossy(&body).into_owned();
                text.truncate(MAX_BODY);
                outcome.body = Some(text);
                outcome.error = body_error.map(|e| format!("{} {url}: {e}", req.method));
                let next = location.and_then(|l| redirect_target(&url, &l));
                match next {
                    Some(next)
                        if req.follow_redirects
                            && (300..400).contains(&status)
                            && outcome.hops < 5 =>
                    {
                        outcome.hops += 1;
                        outcome.url = next;
                    }
                    _ => return outcome,
                }
            }
        }
    }
}

#[cfg(feature = "extract")]
mod extract {
    use weir_sdk::{
        Batch, Cell, Column, Error, Kind, Partition, PluginInfo, Progress, RowsBuilder, Schema,
    };

    use super::*;

    /// The plugin.
    pub struct HttpProbe;

    /// One probe's row, handed out once.
    pub struct Probed {
        row: Option<(String, Outcome)>,
        schema: Schema,
    }

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Text, false),
                Column::new("url", Kind::Text, false),
                Column::new("status", Kind::Integer, true),
                Column::new("headers", Kind::Text, true),
                Column::new("body", Kind::Text, true),
                Column::new("error", Kind::Text, true),
                Column::new("hops", Kind::Integer, false),
            ],
            primary_key: vec!["id".into()],
        }
    }

    impl weir_sdk::Extractor for HttpProbe {
        type Reader = Probed;

        fn describe() -> PluginInfo {
            PluginInfo {
                name: NAME.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description:
                    "test plugin: makes the listed HTTP requests and reports what came back".into(),
                config_schema: "{}".into(),
            }
        }

        fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
            let config: Config = weir_sdk::parse_config(NAME, config)?;
            Ok(config
                .requests
                .iter()
                .map(|r| Partition {
                    id: r.id.clone(),
                    size: Some(1),
                })
                .collect())
        }

        fn open(config: &str, partition: Partition, cp: Option<String>) -> Result<Probed, Error> {
            let config: Config = weir_sdk::parse_config(NAME, config)?;
            let schema = schema();
            if cp.is_some() {
                return Ok(Probed { row: None, schema });
            }
            let req = config
                .requests
                .iter()
                .find(|r| r.id == partition.id)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!("{NAME}: no request {:?}", partition.id))
                })?;
            let outcome = probe(req);
            if let Some(status) = outcome.status.filter(|s| config.unavailable_on.contains(s)) {
                return Err(Error::Unavailable(format!(
                    "{NAME}: {}: status {status}",
                    req.id
                )));
            }
            Ok(Probed {
                row: Some((req.id.clone(), outcome)),
                schema,
            })
        }
    }

    impl weir_sdk::Reader for Probed {
        fn schema(&self) -> Schema {
            self.schema.clone()
        }

        fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, Error> {
            let Some((id, o)) = self.row.take() else {
                return Ok(None);
            };
            fn text(v: &Option<String>) -> Cell<'_> {
                v.as_deref().map_or(Cell::Null, Cell::Text)
            }
            let mut out = RowsBuilder::new(&self.schema);
            out.push_row([
                Cell::Text(&id),
                Cell::Text(&o.url),
                o.status.map_or(Cell::Null, |s| Cell::Integer(s.into())),
                text(&o.headers),
                text(&o.body),
                text(&o.error),
                Cell::Integer(o.hops.into()),
            ])
            .map_err(|e| Error::Other(format!("{NAME}: {e}")))?;
            Ok(Some(Batch {
                rows: out.finish(),
                positions: vec![1],
                rejects: vec![],
                checkpoint: "done".into(),
                progress: Progress {
                    done: 1,
                    total: Some(1),
                },
            }))
        }
    }

    weir_sdk::export_extractor!(HttpProbe);
}

#[cfg(feature = "transform")]
mod transform {
    use weir_sdk::{Error, PluginInfo, Rows, Schema, Transformed};

    use super::*;

    /// The plugin, as a transformer that wants the network.
    pub struct HttpProbeTransform;

    /// Passes rows through.
    pub struct PassThrough(Schema);

    impl weir_sdk::Transformer for HttpProbeTransform {
        type Transform = PassThrough;

        fn describe() -> PluginInfo {
            PluginInfo {
                name: "http-probe-transform".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: "test plugin: a transformer that imports wasi:http".into(),
                config_schema: "{}".into(),
            }
        }

        fn open(config: &str, input: Schema) -> Result<PassThrough, Error> {
            let config: Config = weir_sdk::parse_config(NAME, config)?;
            if let Some(req) = config.requests.first()
                && let Some(e) = probe(req).error
            {
                return Err(Error::Unavailable(e));
            }
            Ok(PassThrough(input))
        }
    }

    impl weir_sdk::Transform for PassThrough {
        fn output_schema(&self) -> Schema {
            self.0.clone()
        }

        fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
            Ok(Transformed {
                rows: input,
                rejects: vec![],
                dropped: vec![],
                counts: vec![],
            })
        }
    }

    weir_sdk::export_transformer!(HttpProbeTransform);
}
