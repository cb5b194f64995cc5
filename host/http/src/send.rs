//! Sending one request to a checked target: resolve once, refuse non-public addresses unless
//! granted, connect to the very addresses checked (no second lookup a rebinding DNS could
//! answer differently), TLS through rustls, HTTP/1.1, the grant's timeouts and body cap.

use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::io::TokioIo;

use crate::counters::{Count, Tally};
use crate::grant::{Endpoint, Granted, Scheme};
use crate::ip::non_public_range;

/// The future that drives a connection after its response arrived (wasi:http keeps it running
/// while the plugin reads the body).
pub(crate) type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The timeouts and cap of one request: the grant's, lowered by the plugin's own options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
    pub max_body_bytes: u64,
}

/// Why a request did not get a response.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// The grant does not allow it (a non-public address): the message names the grant.
    Refused(String),
    /// It was tried and failed: the code for the plugin, the explanation for the log.
    Failed { error: Error, explain: String },
}

impl SendFailure {
    fn failed(error: Error, explain: impl Into<String>) -> Self {
        Self::Failed {
            error,
            explain: explain.into(),
        }
    }
}

/// The TLS settings of a grant: webpki's roots plus the certificates of `ca_file`, ring as the
/// provider, HTTP/1.1 by ALPN.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    if let Some(path) = ca_file {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&text) {
            let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
    }
    // ring, not aws-lc-rs: no C toolchain or prebuilt NASM to build, and wasmtime-wasi-http
    // uses ring too. Deprecated in rustls 0.23.48 only for lacking post-quantum key exchange.
    #[expect(
        deprecated,
        reason = "ring is the provider weir builds with (see above)"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Resolve the host once and check every address: all must be public unless the grant allows
/// private ones. `what` (`GET http://hr/x`) is for messages.
async fn resolve(
    grant: &Granted,
    endpoint: &Endpoint,
    what: &str,
) -> Result<Vec<SocketAddr>, SendFailure> {
    let host = endpoint.bare_host();
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, endpoint.port)],
        Err(_) => tokio::net::lookup_host((host, endpoint.port))
            .await
            .map_err(|e| {
                SendFailure::failed(
                    Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    },
                    format!("cannot resolve {host}: {e}"),
                )
            })?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(SendFailure::failed(
            Error::DestinationNotFound,
            format!("{host} resolves to no address"),
        ));
    }
    if !grant.spec.allow_private
        && let Some((ip, range)) = addrs
            .iter()
            .find_map(|a| non_public_range(a.ip()).map(|r| (a.ip(), r)))
    {
        let resolved = if host.parse::<IpAddr>().is_ok() {
            format!("{ip} is")
        } else {
            format!("{host} resolves to {ip},")
        };
        return Err(SendFailure::Refused(format!(
            "weir: http grant \"{}\" refuses {what}: {resolved} a {range} address; the grant does not say allow_private = true",
            grant.name
        )));
    }
    Ok(addrs)
}

/// TCP to the first checked address that answers, then TLS when the scheme says so.
async fn connect(
    grant: &Granted,
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
) -> Result<Box<dyn Stream>, SendFailure> {
    let mut last = None;
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tcp = Some(stream);
                break;
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let Some(tcp) = tcp else {
        let (addr, e) = last.expect("at least one address");
        let error = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
            _ => Error::DestinationUnavailable,
        };
        return Err(SendFailure::failed(
            error,
            format!("cannot connect to {addr}: {e}"),
        ));
    };
    let _ = tcp.set_nodelay(true);
    if endpoint.scheme == Scheme::Http {
        return Ok(Box::new(tcp));
    }
    let name = match endpoint.bare_host().parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(endpoint.bare_host().to_owned()).map_err(|e| {
            SendFailure::failed(
                Error::TlsProtocolError,
                format!("{} is not a valid TLS server name: {e}", endpoint.host),
            )
        })?,
    };
    let connector = tokio_rustls::TlsConnector::from(grant.tls.clone());
    match connector.connect(name, tcp).await {
        Ok(tls) => Ok(Box::new(tls)),
        Err(e) => Err(tls_failure(e)),
    }
}

fn tls_failure(e: std::io::Error) -> SendFailure {
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(why)) => SendFailure::failed(
            Error::TlsCertificateError,
            format!(
                "TLS: the server's certificate is not trusted ({why:?}); if it comes from an internal CA, give that CA as the grant's ca_file"
            ),
        ),
        Some(rustls::Error::AlertReceived(alert)) => SendFailure::failed(
            Error::TlsAlertReceived {
                alert_id: Some(u8::from(*alert)),
                alert_message: Some(format!("{alert:?}")),
            },
            format!("TLS: the server sent the alert {alert:?}"),
        ),
        _ => SendFailure::failed(Error::TlsProtocolError, format!("TLS: {e}")),
    }
}

/// Send `request` (origin-form URI, headers set) to `endpoint` within `limits`.
pub(crate) async fn send_once<B>(
    grant: &Granted,
    endpoint: &Endpoint,
    request: Request<B>,
    limits: &Limits,
    what: &str,
) -> Result<(Response<Incoming>, IoFuture), SendFailure>
where
    B: Body<Data = Bytes, Error = Error> + Send + 'static,
{
    let connecting = async {
        let addrs = resolve(grant, endpoint, what).await?;
        let stream = connect(grant, endpoint, &addrs).await?;
        hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                SendFailure::failed(Error::HttpProtocolError, format!("HTTP handshake: {e}"))
            })
    };
    let (mut sender, conn) = match tokio::time::timeout(limits.connect, connecting).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(SendFailure::failed(
                Error::ConnectionTimeout,
                format!(
                    "no connection to {} within {} s (connect_timeout_seconds, or the plugin's shorter connect timeout)",
                    endpoint.authority(),
                    limits.connect.as_secs_f64()
                ),
            ));
        }
    };
    let first_byte = limits.first_byte;
    let send = async move {
        match tokio::time::timeout(first_byte, sender.send_request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(SendFailure::failed(
                Error::HttpProtocolError,
                format!("sending the request: {e}"),
            )),
            Err(_) => Err(SendFailure::failed(
                Error::ConnectionReadTimeout,
                format!(
                    "no response within {} s (first_byte_timeout_seconds, or the plugin's shorter first-byte timeout)",
                    first_byte.as_secs_f64()
                ),
            )),
        }
    };
    // Drive the connection while waiting for the response; afterwards wasi:http drives it.
    let mut send = pin!(send);
    let mut conn = Some(conn);
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(c).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(SendFailure::failed(
                    Error::HttpProtocolError,
                    format!("connection closed: {e}"),
                ))),
            }
        }
    })
    .await?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(conn) => conn.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, io))
}

/// What a response body reports while it is read.
pub(crate) type Notice = Arc<dyn Fn(String) + Send + Sync>;

/// A response body with the grant's cap and between-bytes timeout, counting what it hands on.
pub(crate) struct CappedBody {
    inner: Incoming,
    received: u64,
    max: u64,
    /// The response declared a `Content-Length` over the cap: fail before reading.
    declared: Option<u64>,
    between_bytes: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    tally: Tally,
    /// Explains a failure in the log (the plugin only gets the error code).
    notice: Notice,
    done: bool,
}

impl CappedBody {
    pub(crate) fn new(inner: Incoming, limits: &Limits, tally: Tally, notice: Notice) -> Self {
        let declared = inner
            .size_hint()
            .exact()
            .filter(|&n| n > limits.max_body_bytes);
        Self {
            inner,
            received: 0,
            max: limits.max_body_bytes,
            declared,
            between_bytes: limits.between_bytes,
            timer: Box::pin(tokio::time::sleep(limits.between_bytes)),
            tally,
            notice,
            done: false,
        }
    }

    fn fail(&mut self, error: Error, explain: String) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        self.tally.add(Count::Error);
        (self.notice)(explain);
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(n) = this.declared {
            let max = this.max;
            return this.fail(
                Error::HttpResponseBodySize(Some(n)),
                format!("the response body of {n} bytes (Content-Length) is larger than max_body_bytes ({max}); not read"),
            );
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                this.received += len;
                if this.received > this.max {
                    let (received, max) = (this.received, this.max);
                    return this.fail(
                        Error::HttpResponseBodySize(Some(received)),
                        format!("the response body went past max_body_bytes ({max}) at {received} bytes; stopped reading"),
                    );
                }
                this.tally.add(Count::ResponseBytes(len));
                let deadline = tokio::time::Instant::now() + this.between_bytes;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let error = if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::HttpResponseIncomplete
                };
                this.fail(error, format!("reading the response body: {e}"))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                let secs = this.between_bytes.as_secs_f64();
                this.fail(
                    Error::ConnectionReadTimeout,
                    format!("the response body stalled for {secs} s (between_bytes_timeout_seconds, or the plugin's shorter timeout)"),
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.declared.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Read a whole (small) body, e.g. a token endpoint's answer, up to `max` bytes.
pub(crate) async fn read_to_end(
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, String> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(format!("reading the response: {e}")),
        Err(_) => Err(format!(
            "the response did not arrive within {} s",
            timeout.as_secs_f64()
        )),
    }
}
