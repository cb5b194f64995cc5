//! A transformer that tries to reach the network by itself when opened, the way any code
//! compiled for WASI could: a TCP connection to `connect` (an `ip:port`) and a name lookup of
//! `lookup`, through std (`wasi:sockets`). A transformer never gets the network, whatever its
//! pipeline granted: each attempt must fail. `open` reports what happened as an access-denied
//! error: `connect 127.0.0.1:9: denied (…); lookup localhost: denied (…)`, or `ESCAPED` when an
//! attempt got through.

use std::net::{TcpStream, ToSocketAddrs};

use weir_sdk::{Error, PluginInfo, Rows, Schema, Transform, Transformed, Transformer};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    connect: String,
    lookup: String,
}

/// The plugin.
pub struct NetProbe;

/// Never used: `open` always fails.
pub struct NetProbeTransform(Schema);

impl Transformer for NetProbe {
    type Transform = NetProbeTransform;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: "net-probe".into(),
            version: "0.1.0".into(),
            description: "tries a TCP connection and a name lookup of its own when opened".into(),
            config_schema: r#"{"type":"object","required":["connect","lookup"],"properties":{"connect":{"type":"string"},"lookup":{"type":"string"}},"additionalProperties":false}"#.into(),
        }
    }

    fn open(config: &str, _input: Schema) -> Result<NetProbeTransform, Error> {
        let Config { connect, lookup } = weir_sdk::parse_config("net-probe", config)?;
        let tcp = match TcpStream::connect(connect.as_str()) {
            Ok(_) => format!("connect {connect}: ESCAPED"),
            Err(e) => format!("connect {connect}: denied ({e})"),
        };
        let dns = match (lookup.as_str(), 80).to_socket_addrs() {
            Ok(found) => format!("lookup {lookup}: ESCAPED ({} addresses)", found.count()),
            Err(e) => format!("lookup {lookup}: denied ({e})"),
        };
        Err(Error::AccessDenied(format!("{tcp}; {dns}")))
    }
}

impl Transform for NetProbeTransform {
    fn output_schema(&self) -> Schema {
        self.0.clone()
    }

    fn apply(&mut self, _input: Rows) -> Result<Transformed, Error> {
        Err(Error::Other("net-probe never opens".into()))
    }
}

weir_sdk::export_transformer!(NetProbe);
