//! Alerts for pipelines: the window's alerts as JSON Lines, and the `--fail-on` severity check.

use std::io::Write;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::json::LineDelimitedWriter;
use deltalake::arrow::json::writer::WriterBuilder;

use crate::columns;
use crate::error::{Error, Result};

/// Alert severities, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Severity {
    /// Worth a look today.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// The most severe alert among `alerts`, if any fired.
pub fn highest_severity(alerts: &[RecordBatch]) -> Result<Option<Severity>> {
    let mut highest = None;
    for batch in alerts {
        for severity in columns::strings(batch, "severity")?.into_iter().flatten() {
            highest = highest.max(Severity::parse(&severity));
        }
    }
    Ok(highest)
}

/// Writes one JSON object per alert, with the `alerts` table's columns (without the
/// `usage_date` partition column) and explicit nulls; timestamps are RFC 3339 in UTC.
pub fn write_jsonl(alerts: &[RecordBatch], out: &mut dyn Write) -> Result<()> {
    let json_error = |e: deltalake::arrow::error::ArrowError| Error::query("alerts JSON Lines", e.into());
    let mut writer: LineDelimitedWriter<&mut dyn Write> = WriterBuilder::new().with_explicit_nulls(true).build(out);
    for batch in alerts {
        let mut batch = batch.clone();
        if let Ok(index) = batch.schema().index_of("usage_date") {
            batch.remove_column(index);
        }
        writer.write(&batch).map_err(json_error)?;
    }
    writer.finish().map_err(json_error)
}
