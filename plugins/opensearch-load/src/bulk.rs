//! What a `_bulk` response says about each action: done, already newer (a version conflict,
//! which is what a replayed batch gets), refused for good (a reject with the server's reason)
//! or refused for now (the whole batch is sent again).

use serde::Deserialize;

use crate::document::Action;

/// The outcome of one action of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written (or, for a delete, nothing there to delete).
    Done,
    /// The index holds this version or a newer one: nothing to do (a replay, or older data).
    Conflict,
    /// Refused for good: the row is a reject with this reason.
    Refused(String),
    /// Refused for now (429, 5xx): the batch must be sent again.
    Retry(String),
}

#[derive(Deserialize)]
struct Summary {
    errors: bool,
}

#[derive(Deserialize)]
struct Full {
    items: Vec<std::collections::BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    error: Option<serde_json::Value>,
}

/// The outcome of each of `actions`, in order, from a bulk response `body`.
pub(crate) fn outcomes(body: &[u8], actions: &[Action]) -> Result<Vec<Outcome>, String> {
    let summary: Summary = serde_json::from_slice(body)
        .map_err(|e| format!("the _bulk response is not a bulk result: {e}"))?;
    if !summary.errors {
        // The common case: no item to look at, so none is parsed.
        return Ok(vec![Outcome::Done; actions.len()]);
    }
    let full: Full = serde_json::from_slice(body)
        .map_err(|e| format!("the _bulk response's items are not bulk results: {e}"))?;
    if full.items.len() != actions.len() {
        return Err(format!(
            "the _bulk response has {} items for {} actions",
            full.items.len(),
            actions.len()
        ));
    }
    Ok(full
        .items
        .into_iter()
        .zip(actions)
        .map(|(item, &action)| {
            let Some(item) = item.into_values().next() else {
                return Outcome::Refused("the _bulk response's item is empty".into());
            };
            classify(action, item.status, item.error.as_ref())
        })
        .collect())
}

fn classify(action: Action, status: u16, error: Option<&serde_json::Value>) -> Outcome {
    match status {
        200..=299 => Outcome::Done,
        404 if action == Action::Delete => Outcome::Done,
        409 => Outcome::Conflict,
        429 | 500..=599 => Outcome::Retry(format!("{status} {}", describe(error))),
        _ => Outcome::Refused(format!("{status} {}", describe(error))),
    }
}

/// `type: reason (caused by type: reason)` from a bulk item's `error`.
fn describe(error: Option<&serde_json::Value>) -> String {
    let Some(error) = error else {
        return "(no error given)".into();
    };
    let Some(object) = error.as_object() else {
        return error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned);
    };
    let text = |key: &str| object.get(key).and_then(serde_json::Value::as_str);
    let mut out = match (text("type"), text("reason")) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        (Some(kind), None) => kind.to_owned(),
        (None, Some(reason)) => reason.to_owned(),
        (None, None) => error.to_string(),
    };
    if let Some(cause) = object.get("caused_by") {
        out.push_str(&format!(" (caused by {})", describe(Some(cause))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_errors_means_every_action_is_done() {
        let body = br#"{"took":3,"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":200}}]}"#;
        assert_eq!(
            outcomes(body, &[Action::Index, Action::Delete]).unwrap(),
            [Outcome::Done, Outcome::Done]
        );
    }

    #[test]
    fn each_item_is_classified_as_the_server_answered() {
        // As osmem-server and OpenSearch answer them.
        let body = br#"{"errors":true,"items":[
            {"index":{"_id":"1","status":201,"result":"created"}},
            {"index":{"_id":"1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[1]: version conflict, current version [5] is higher or equal to the one provided [3]"}}},
            {"delete":{"_id":"2","status":404,"result":"not_found"}},
            {"index":{"_id":"3","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [age] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}}}},
            {"index":{"_id":"4","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}},
            {"index":{"_id":"5","status":404,"error":{"type":"index_not_found_exception","reason":"no such index [p]"}}}
        ]}"#;
        let got = outcomes(
            body,
            &[
                Action::Index,
                Action::Index,
                Action::Delete,
                Action::Index,
                Action::Index,
                Action::Index,
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Outcome::Done,
                Outcome::Conflict,
                Outcome::Done,
                Outcome::Refused(
                    "400 mapper_parsing_exception: failed to parse field [age] of type [long] (caused by illegal_argument_exception: For input string: \"x\")".into()
                ),
                Outcome::Retry("429 es_rejected_execution_exception: rejected execution".into()),
                Outcome::Refused("404 index_not_found_exception: no such index [p]".into()),
            ]
        );
    }

    #[test]
    fn a_response_that_does_not_match_the_request_is_an_error() {
        let body = br#"{"errors":true,"items":[{"index":{"status":201}}]}"#;
        assert_eq!(
            outcomes(body, &[Action::Index, Action::Index]).unwrap_err(),
            "the _bulk response has 1 items for 2 actions"
        );
        assert!(
            outcomes(b"<html>", &[Action::Index])
                .unwrap_err()
                .starts_with("the _bulk response is not a bulk result")
        );
    }
}
