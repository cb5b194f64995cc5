//! Running a batch's rows through the transforms, and the bookkeeping of what they refuse:
//! a transform returns `{index, reason}` per refused row; the host keeps the source positions
//! and works out the survivors' positions, so no transform in any language has to.

use weir_runtime::types::{ColumnVector, Rows, Schema};
use weir_runtime::{OutputColumn, PluginError, Projection, TransformerInstance};
use weir_store::rejects::RejectRecord;

use crate::columns::{self, RowsView};

/// One opened transform step: its plugin name, instance and input schema, and, when the
/// transform declared one (contract 0.2.0), what it reads and computes.
pub struct TransformStep {
    pub name: String,
    pub instance: TransformerInstance,
    pub input: Schema,
    pub projection: Option<Projection>,
}

/// Check a transform's projection against its input and output schemas, when it is opened.
pub fn check_projection(
    projection: &Projection,
    input: &Schema,
    output: &Schema,
) -> Result<(), String> {
    if let Some(bad) = projection
        .reads
        .iter()
        .find(|&&j| j as usize >= input.columns.len())
    {
        return Err(format!(
            "projection reads input column {bad}, but the input has {} columns",
            input.columns.len()
        ));
    }
    if projection.outputs.len() != output.columns.len() {
        return Err(format!(
            "projection describes {} output columns, but the output schema has {}",
            projection.outputs.len(),
            output.columns.len()
        ));
    }
    let mut computed = 0;
    for (column, source) in output.columns.iter().zip(&projection.outputs) {
        match *source {
            OutputColumn::Computed(k) => computed = computed.max(k as usize + 1),
            OutputColumn::Input(j) => {
                let Some(from) = input.columns.get(j as usize) else {
                    return Err(format!(
                        "output column `{}` copies input column {j}, but the input has {} columns",
                        column.name,
                        input.columns.len()
                    ));
                };
                if from.kind != column.kind {
                    return Err(format!(
                        "output column `{}` ({:?}) copies input column `{}` ({:?})",
                        column.name, column.kind, from.name, from.kind
                    ));
                }
            }
        }
    }
    let declared = projection
        .outputs
        .iter()
        .filter(|o| matches!(o, OutputColumn::Computed(_)))
        .count();
    if computed != declared {
        return Err(format!(
            "projection's computed columns must be numbered 0 to {} once each",
            declared.saturating_sub(1)
        ));
    }
    Ok(())
}

/// Rows on their way through the transforms, with the source position of each row.
pub struct InFlight {
    pub rows: Rows,
    pub positions: Vec<u64>,
    /// Whether `rows` are still the extractor's, which the host already checked.
    pub untouched: bool,
    /// Rows the transforms left out on purpose (filters), so far.
    pub filtered: u64,
    /// Counts the transforms reported, by `<transform>.<name>`.
    pub counters: std::collections::BTreeMap<String, u64>,
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
        let out = match &step.projection {
            None => step.instance.apply_within(&batch.rows, max_bytes).await?,
            Some(projection) => {
                let read = Rows {
                    row_count: batch.rows.row_count,
                    columns: projection
                        .reads
                        .iter()
                        .map(|&j| batch.rows.columns[j as usize].clone())
                        .collect(),
                };
                step.instance.apply_within(&read, max_bytes).await?
            }
        };
        batch.untouched = false;
        let mut refused = refused_rows(step, &batch, &out.rejects, rejects)?;
        for &index in &out.dropped {
            let index = index as usize;
            if index >= refused.len() || refused[index] {
                return Err(PluginError::contract(
                    &step.name,
                    "apply",
                    format!("dropped index {index} is out of range, repeated or also rejected"),
                ));
            }
            refused[index] = true;
        }
        batch.filtered += out.dropped.len() as u64;
        for (name, value) in out.counts {
            *batch
                .counters
                .entry(format!("{}.{name}", step.name))
                .or_default() += value;
        }
        let kept = refused.len() - out.rejects.len() - out.dropped.len();
        if out.rows.row_count as usize != kept {
            return Err(PluginError::contract(
                &step.name,
                "apply",
                format!(
                    "returned {} rows for {} input rows, {} rejects and {} dropped",
                    out.rows.row_count,
                    refused.len(),
                    out.rejects.len(),
                    out.dropped.len()
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
        batch.rows = match &step.projection {
            None => out.rows,
            Some(projection) => assemble(projection, batch.rows, out.rows, &refused, kept)
                .map_err(|e| PluginError::contract(&step.name, "apply", e))?,
        };
    }
    Ok(batch)
}

/// The output rows of a projected transform: its computed columns, and the input columns it
/// passes through, copied by the host without the rows it refused.
fn assemble(
    projection: &Projection,
    input: Rows,
    computed: Rows,
    refused: &[bool],
    kept: usize,
) -> Result<Rows, String> {
    let keep: Vec<bool> = refused.iter().map(|r| !r).collect();
    let any_refused = kept != refused.len();
    let returned = computed.columns.len();
    let mut computed: Vec<Option<ColumnVector>> = computed.columns.into_iter().map(Some).collect();
    let mut columns = Vec::with_capacity(projection.outputs.len());
    for source in &projection.outputs {
        columns.push(match *source {
            OutputColumn::Computed(k) => computed
                .get_mut(k as usize)
                .and_then(Option::take)
                .ok_or_else(|| {
                    format!("returned {returned} columns, but its projection computes column {k}")
                })?,
            OutputColumn::Input(j) => {
                let column = &input.columns[j as usize];
                if any_refused {
                    columns::filter_column(column, refused.len(), &keep, kept)
                } else {
                    column.clone()
                }
            }
        });
    }
    Ok(Rows {
        row_count: kept as u32,
        columns,
    })
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
