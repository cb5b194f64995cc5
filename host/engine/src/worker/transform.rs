//! Running a batch's rows through the transforms, and the bookkeeping of what they refuse:
//! a transform returns `{index, reason}` per refused row; the host keeps the source positions
//! and works out the survivors' positions, so no transform in any language has to.

use weir_runtime::types::{Rows, Schema};
use weir_runtime::{PluginError, TransformerInstance};
use weir_store::rejects::RejectRecord;

use crate::columns::RowsView;

/// One opened transform step: its plugin name, instance and input schema.
pub struct TransformStep {
    pub name: String,
    pub instance: TransformerInstance,
    pub input: Schema,
}

/// Rows on their way through the transforms, with the source position of each row.
pub struct InFlight {
    pub rows: Rows,
    pub positions: Vec<u64>,
    /// Whether `rows` are still the extractor's, which the host already checked.
    pub untouched: bool,
}

/// Apply every transform in order. Refused rows become rejects (with the position and the
/// row as the refusing transform saw it); the rest go on in input order. A transform's output
/// larger than `max_bytes` (`max_batch_bytes`) is refused before the host copies it.
pub async fn apply_all(
    steps: &mut [TransformStep],
    mut batch: InFlight,
    rejects: &mut Vec<RejectRecord>,
    max_bytes: usize,
) -> Result<InFlight, PluginError> {
    for step in steps.iter_mut() {
        if batch.rows.row_count == 0 {
            break;
        }
        let out = step.instance.apply_within(&batch.rows, max_bytes).await?;
        batch.untouched = false;
        let refused = refused_rows(step, &batch, &out.rejects, rejects)?;
        let kept = refused.len() - out.rejects.len();
        if out.rows.row_count as usize != kept {
            return Err(PluginError::contract(
                &step.name,
                "apply",
                format!(
                    "returned {} rows for {} input rows and {} rejects",
                    out.rows.row_count,
                    refused.len(),
                    out.rejects.len()
                ),
            ));
        }
        // Output rows keep input order, so their positions are the survivors' positions.
        batch.positions = batch
            .positions
            .into_iter()
            .zip(&refused)
            .filter_map(|(p, &r)| (!r).then_some(p))
            .collect();
        batch.rows = out.rows;
    }
    Ok(batch)
}

/// Which input rows a transform refused (checked: in range, each once), recording each as a
/// reject.
fn refused_rows(
    step: &TransformStep,
    batch: &InFlight,
    refusals: &[weir_runtime::RowReject],
    rejects: &mut Vec<RejectRecord>,
) -> Result<Vec<bool>, PluginError> {
    let mut refused = vec![false; batch.rows.row_count as usize];
    if refusals.is_empty() {
        return Ok(refused);
    }
    // The refused rows' values are kept as JSON; most batches have no refusals, so the view
    // is built only when needed.
    let view = RowsView::new(&batch.rows, &step.input)
        .map_err(|e| PluginError::contract(&step.name, "apply", e))?;
    for reject in refusals {
        let index = reject.index as usize;
        if index >= refused.len() || refused[index] {
            return Err(PluginError::contract(
                &step.name,
                "apply",
                format!("reject index {index} is out of range or repeated"),
            ));
        }
        refused[index] = true;
        rejects.push(RejectRecord {
            stage: step.name.clone(),
            position: batch.positions.get(index).copied(),
            reason: reject.reason.clone(),
            raw: view.row_json(index, &step.input),
        });
    }
    Ok(refused)
}
