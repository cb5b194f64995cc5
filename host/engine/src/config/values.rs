//! Values in `weir.toml`: `${VAR}` interpolation, TOML to JSON for plugin configs, lines.

/// Byte offset → 1-based line number.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// Replace `${VAR}` with the variable's value; `$${` is a literal `${`.
pub(super) fn interpolate(
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in \"{value}\""))?;
            let name = &body[..end];
            let resolved = env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (used as ${{{name}}})")
            })?;
            out.push_str(&resolved);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn interpolate_json(
    value: serde_json::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(interpolate(&s, env)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| interpolate_json(v, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, interpolate_json(v, env)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

pub(super) fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_handles_literals_and_plain_dollars() {
        let env = |n: &str| (n == "A").then(|| "x".to_owned());
        assert_eq!(interpolate("a${A}b$c$${A}", &env).unwrap(), "axb$c${A}");
        assert!(interpolate("${A", &env).is_err());
    }
}
