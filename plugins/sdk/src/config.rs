//! Plugin configuration: the pipeline's TOML table for a plugin, handed over as JSON.

use serde::de::DeserializeOwned;

use crate::Error;

/// Parse a plugin's JSON configuration into `T` (derive `Deserialize`, and
/// `#[serde(deny_unknown_fields)]` so typos are caught). Failures are `invalid-config` naming
/// the plugin and what serde found wrong: ``csv-extract: invalid config: unknown field `delimeter`, expected one of …``.
pub fn parse_config<T: DeserializeOwned>(plugin: &str, config: &str) -> Result<T, Error> {
    serde_json::from_str(config).map_err(|e| {
        let message = e.to_string();
        // The position is in JSON the host rendered from the pipeline's TOML: meaningless to
        // whoever wrote the TOML.
        let position = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        Error::InvalidConfig(format!("{plugin}: invalid config: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only the parse outcome is tested")]
    struct Sample {
        table: String,
    }

    #[test]
    fn errors_name_the_plugin_and_the_key_without_a_json_position() {
        let err = parse_config::<Sample>("demo", r#"{"table": "t", "tabel": "u"}"#).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidConfig(
                "demo: invalid config: unknown field `tabel`, expected `table`".into()
            )
        );
        let err = parse_config::<Sample>("demo", "{}").unwrap_err();
        assert_eq!(
            err,
            Error::InvalidConfig("demo: invalid config: missing field `table`".into())
        );
        assert!(parse_config::<Sample>("demo", r#"{"table": "t"}"#).is_ok());
    }
}
