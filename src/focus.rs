//! The FinOps FOCUS 1.2 export: the job file's `[focus]` names and `run --focus-csv`, which
//! writes the window's `focus_costs` rows as a FOCUS CSV file.

use std::path::Path;

use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use serde::Deserialize;

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::outputs;
use crate::window::RunWindow;

/// `[focus]`: the names FOCUS asks for that the gateway's tables do not hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FocusSettings {
    /// `BillingAccountId`: the account invoiced, e.g. the Databricks account id.
    pub billing_account_id: String,
    /// `BillingAccountName`.
    pub billing_account_name: String,
    /// `ProviderName`: who makes the service available.
    pub provider_name: String,
    /// `PublisherName`: who publishes the service.
    pub publisher_name: String,
    /// `InvoiceIssuerName`: who issues the invoice.
    pub invoice_issuer_name: String,
    /// `ServiceName`.
    pub service_name: String,
}

impl Default for FocusSettings {
    fn default() -> Self {
        FocusSettings {
            billing_account_id: "databricks".into(),
            billing_account_name: "Databricks".into(),
            provider_name: "Databricks".into(),
            publisher_name: "Databricks".into(),
            invoice_issuer_name: "Databricks".into(),
            service_name: "Databricks AI Gateway".into(),
        }
    }
}

impl FocusSettings {
    /// Each setting: its key, its SQL variable and its value.
    fn named(&self) -> [(&'static str, &'static str, &str); 6] {
        [
            ("billing_account_id", "focus_billing_account_id", &self.billing_account_id),
            ("billing_account_name", "focus_billing_account_name", &self.billing_account_name),
            ("provider_name", "focus_provider_name", &self.provider_name),
            ("publisher_name", "focus_publisher_name", &self.publisher_name),
            ("invoice_issuer_name", "focus_invoice_issuer_name", &self.invoice_issuer_name),
            ("service_name", "focus_service_name", &self.service_name),
        ]
    }

    /// Each name is 1 to 200 characters without quotes, backslashes or control characters
    /// (so it is a SQL literal as written, in DataFusion and Spark SQL alike).
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (key, _, value) in self.named() {
            let bad = value.chars().find(|c| matches!(c, '\'' | '"' | '\\') || c.is_control());
            if value.trim().is_empty() || value.chars().count() > 200 || bad.is_some() {
                return Err(format!(
                    "focus.{key} = {value:?}: need 1 to 200 characters without quotes, backslashes or control characters"
                ));
            }
        }
        Ok(())
    }

    /// The SQL variables `${focus_<key>}` as string literals.
    pub fn sql_values(&self) -> Vec<(&'static str, String)> {
        self.named().into_iter().map(|(_, variable, value)| (variable, format!("'{value}'"))).collect()
    }
}

/// The FOCUS timestamp format: ISO 8601 in UTC with a `Z`.
const FOCUS_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Writes the stored `focus_costs` rows of `window` to `path` as CSV: a header of FOCUS column
/// names (without the `usage_date` partition column), timestamps as `2026-11-01T00:00:00Z`,
/// costs with their 12 decimal places, NULL as an empty field.
pub async fn write_csv(job: &JobConfig, window: &RunWindow, path: &Path) -> Result<usize> {
    let batches = window_rows(job, window).await?;
    let io = |source| Error::Io { context: format!("writing the FOCUS CSV {}", path.display()), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut writer = deltalake::arrow::csv::WriterBuilder::new()
        .with_header(true)
        .with_timestamp_tz_format(FOCUS_TIMESTAMP.to_string())
        .with_timestamp_format(FOCUS_TIMESTAMP.to_string())
        .build(std::io::BufWriter::new(file));
    let mut rows = 0;
    for batch in &batches {
        rows += batch.num_rows();
        writer.write(batch).map_err(|e| io(std::io::Error::other(e)))?;
    }
    writer.into_inner().into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    Ok(rows)
}

/// The stored `focus_costs` rows of the window's dates, in the table's order, without
/// `usage_date`.
async fn window_rows(job: &JobConfig, window: &RunWindow) -> Result<Vec<RecordBatch>> {
    let name = outputs::FOCUS_COSTS.name;
    let ctx = SessionContext::new();
    let missing = || Error::Output {
        table: name.into(),
        location: job.output.child(name).to_string(),
        message: "no focus_costs table yet: run without --only, or with --only focus_costs".into(),
    };
    let stored = outputs::open_stored(&ctx, job, name).await?.ok_or_else(missing)?;
    ctx.register_table(name, stored).map_err(|e| Error::query(name, e))?;
    let frame = ctx.table(name).await.map_err(|e| Error::query(name, e))?;
    let columns: Vec<String> =
        frame.schema().fields().iter().map(|f| f.name().clone()).filter(|n| n != "usage_date").collect();
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "SELECT {} FROM {name} WHERE usage_date BETWEEN DATE '{}' AND DATE '{}' \
         ORDER BY usage_date, \"ResourceId\", \"SkuId\", \"x_Requester\", \"x_Team\"",
        quoted.join(", "),
        window.from,
        window.to
    );
    let frame = ctx.sql(&sql).await.map_err(|e| Error::query(name, e))?;
    crate::queries::execute(&ctx, name, frame).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_plain_literals() {
        assert!(FocusSettings::default().validate().is_ok());
        let quoted = FocusSettings { billing_account_name: "O'Brien".into(), ..Default::default() };
        assert!(quoted.validate().unwrap_err().contains("focus.billing_account_name"));
        let empty = FocusSettings { provider_name: " ".into(), ..Default::default() };
        assert!(empty.validate().is_err());
        let values = FocusSettings::default().sql_values();
        assert!(values.contains(&("focus_service_name", "'Databricks AI Gateway'".into())));
        assert_eq!(values.len(), 6);
    }
}
