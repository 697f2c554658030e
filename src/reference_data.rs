//! The teams CSV, validated and turned into an in-memory table, and the CSV reading it shares
//! with the prices CSV ([`crate::prices`]).

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::datasource::MemTable;

use crate::columns::in_memory_table;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::storage;

/// Reads and validates the teams CSV into (principal, team) pairs.
pub async fn load_teams(location: &Location, options: &HashMap<String, String>) -> Result<Vec<(String, String)>> {
    let bytes = storage::read_file(location, options, "teams").await?;
    parse_teams(&bytes, &location.to_string())
}

pub(crate) fn reference_error(input: &str, location: &str, line: u64, message: impl Into<String>) -> Error {
    Error::ReferenceData { input: input.to_string(), location: location.to_string(), line, message: message.into() }
}

/// Reads a CSV with a header, returning each record's `wanted` columns followed by its
/// `optional` ones (empty when the header lacks them), with its line number.
pub(crate) fn read_columns(
    bytes: &[u8],
    input: &str,
    location: &str,
    wanted: &[&str],
    optional: &[&str],
) -> Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let headers = reader.headers().map_err(|e| reference_error(input, location, 1, e.to_string()))?.clone();
    let mut indexes = Vec::with_capacity(wanted.len());
    for name in wanted {
        let index = headers.iter().position(|h| h == *name).ok_or_else(|| {
            reference_error(
                input,
                location,
                1,
                format!(
                    "the header has no `{name}` column (expected {}; found {})",
                    wanted.join(","),
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            )
        })?;
        indexes.push(Some(index));
    }
    indexes.extend(optional.iter().map(|name| headers.iter().position(|h| h == *name)));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            reference_error(input, location, line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let values = indexes.iter().map(|i| i.and_then(|i| record.get(i)).unwrap_or("").to_string()).collect();
        rows.push((line, values));
    }
    Ok(rows)
}

/// Parses teams CSV text: one row per principal.
pub fn parse_teams(bytes: &[u8], location: &str) -> Result<Vec<(String, String)>> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut teams = Vec::new();
    for (line, values) in read_columns(bytes, "teams", location, &["principal", "team"], &[])? {
        let [principal, team]: [String; 2] =
            values.try_into().map_err(|_| reference_error("teams", location, line, "expected two columns"))?;
        if principal.is_empty() {
            return Err(reference_error("teams", location, line, "principal is empty"));
        }
        if let Some(first) = seen.insert(principal.clone(), line) {
            return Err(reference_error(
                "teams",
                location,
                line,
                format!("principal `{principal}` is already listed on line {first}; a principal belongs to one team"),
            ));
        }
        teams.push((principal, team));
    }
    Ok(teams)
}

/// The in-memory `teams` table the queries join against.
pub fn teams_table(teams: &[(String, String)]) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("principal", DataType::Utf8, false),
        Field::new("team", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(teams.iter().map(|(p, _)| p.as_str()))),
        Arc::new(StringArray::from_iter_values(teams.iter().map(|(_, t)| t.as_str()))),
    ];
    in_memory_table("teams", schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_principal_listed_twice() {
        let err = parse_teams(b"principal,team\na,x\na,y\n", "t.csv").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn names_a_missing_header_column() {
        let err = parse_teams(b"user,team\na,x\n", "t.csv").unwrap_err().to_string();
        assert!(err.contains("no `principal` column"), "{err}");
    }
}
