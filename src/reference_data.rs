//! The two small CSV inputs: prices and teams, validated and turned into in-memory tables.
//!
//! Prices are kept as exact decimals: `input_usd_per_million` with up to 6 decimal places is
//! stored as DECIMAL(18,6), and the same integer read at scale 12 is the exact USD price of one
//! token (DECIMAL(18,12)), so `tokens * price` is exact with no division.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use deltalake::arrow::array::{ArrayRef, Decimal128Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deltalake::datafusion::datasource::MemTable;

use crate::columns::in_memory_table;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::storage;

/// Decimal places allowed in a per-million price.
const PRICE_SCALE: i8 = 6;
/// Largest per-million price accepted (DECIMAL(18,6)).
const MAX_PRICE_UNITS: i128 = 999_999_999_999_999_999;

/// One validated price row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    /// Served entity name, matching `served_entities.entity_name`.
    pub entity_name: String,
    /// Start of validity, microseconds since the Unix epoch (UTC).
    pub effective_from_us: i64,
    /// USD per million input tokens, in units of 1e-6 USD.
    pub input_micros_per_million: i128,
    /// USD per million output tokens, in units of 1e-6 USD.
    pub output_micros_per_million: i128,
}

/// Reads and validates the prices CSV.
pub async fn load_prices(location: &Location, options: &HashMap<String, String>) -> Result<Vec<PriceRow>> {
    let bytes = storage::read_file(location, options, "prices").await?;
    parse_prices(&bytes, &location.to_string())
}

/// Reads and validates the teams CSV into (principal, team) pairs.
pub async fn load_teams(location: &Location, options: &HashMap<String, String>) -> Result<Vec<(String, String)>> {
    let bytes = storage::read_file(location, options, "teams").await?;
    parse_teams(&bytes, &location.to_string())
}

fn reference_error(input: &str, location: &str, line: u64, message: impl Into<String>) -> Error {
    Error::ReferenceData { input: input.to_string(), location: location.to_string(), line, message: message.into() }
}

/// Reads a CSV with a header, returning each record's requested columns with its line number.
fn read_columns(bytes: &[u8], input: &str, location: &str, wanted: &[&str]) -> Result<Vec<(u64, Vec<String>)>> {
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
        indexes.push(index);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            reference_error(input, location, line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let values = indexes.iter().map(|&i| record.get(i).unwrap_or("").to_string()).collect();
        rows.push((line, values));
    }
    Ok(rows)
}

/// Parses prices CSV text (see the README's job-file reference for the format).
pub fn parse_prices(bytes: &[u8], location: &str) -> Result<Vec<PriceRow>> {
    let wanted = ["entity_name", "effective_from", "input_usd_per_million", "output_usd_per_million"];
    let mut seen: HashMap<(String, i64), u64> = HashMap::new();
    let mut prices = Vec::new();
    for (line, values) in read_columns(bytes, "prices", location, &wanted)? {
        let error = |message: String| reference_error("prices", location, line, message);
        let entity_name = values[0].clone();
        if entity_name.is_empty() {
            return Err(error("entity_name is empty".into()));
        }
        let effective_from_us = parse_utc_instant(&values[1]).map_err(error)?;
        let input = parse_price(&values[2]).map_err(|m| error(format!("input_usd_per_million: {m}")))?;
        let output = parse_price(&values[3]).map_err(|m| error(format!("output_usd_per_million: {m}")))?;
        if let Some(first) = seen.insert((entity_name.clone(), effective_from_us), line) {
            return Err(error(format!(
                "`{entity_name}` already has a price effective from {} (line {first}); keep one",
                values[1]
            )));
        }
        prices.push(PriceRow {
            entity_name,
            effective_from_us,
            input_micros_per_million: input,
            output_micros_per_million: output,
        });
    }
    Ok(prices)
}

/// Parses teams CSV text: one row per principal.
pub fn parse_teams(bytes: &[u8], location: &str) -> Result<Vec<(String, String)>> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut teams = Vec::new();
    for (line, values) in read_columns(bytes, "teams", location, &["principal", "team"])? {
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

/// Parses a UTC date (`2026-11-01`, meaning midnight) or timestamp (RFC 3339, or
/// `2026-11-01 12:00:00` taken as UTC) into microseconds since the epoch.
fn parse_utc_instant(raw: &str) -> std::result::Result<i64, String> {
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros());
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(raw) {
        return Ok(ts.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(ts) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(ts.and_utc().timestamp_micros());
        }
    }
    Err(format!("effective_from `{raw}` is not a date (YYYY-MM-DD) or a timestamp (RFC 3339)"))
}

/// Parses a non-negative decimal with at most 6 decimal places into units of 1e-6.
fn parse_price(raw: &str) -> std::result::Result<i128, String> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
        return Err(format!("`{raw}` is not a non-negative decimal number"));
    }
    if fraction.len() > PRICE_SCALE as usize {
        return Err(format!("`{raw}` has more than {PRICE_SCALE} decimal places"));
    }
    let padded = format!("{whole}{fraction:0<width$}", width = PRICE_SCALE as usize);
    let units: i128 = padded.trim_start_matches('0').parse().unwrap_or(0);
    if units > MAX_PRICE_UNITS || padded.len() > 40 {
        return Err(format!("`{raw}` is too large"));
    }
    Ok(units)
}

/// The in-memory `prices` table the queries join against.
pub fn prices_table(prices: &[PriceRow]) -> Result<MemTable> {
    let utc: Arc<str> = Arc::from("UTC");
    let per_million = DataType::Decimal128(18, PRICE_SCALE);
    let per_token = DataType::Decimal128(18, 2 * PRICE_SCALE);
    let schema = Arc::new(Schema::new(vec![
        Field::new("entity_name", DataType::Utf8, false),
        Field::new("effective_from", DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())), false),
        Field::new("input_usd_per_million", per_million.clone(), false),
        Field::new("output_usd_per_million", per_million.clone(), false),
        Field::new("input_usd_per_token", per_token.clone(), false),
        Field::new("output_usd_per_token", per_token.clone(), false),
    ]));
    let decimals = |values: Vec<i128>, data_type: &DataType| -> Result<ArrayRef> {
        let array = Decimal128Array::from(values).with_data_type(data_type.clone());
        Ok(Arc::new(array))
    };
    let input: Vec<i128> = prices.iter().map(|p| p.input_micros_per_million).collect();
    let output: Vec<i128> = prices.iter().map(|p| p.output_micros_per_million).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(prices.iter().map(|p| p.entity_name.as_str()))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(prices.iter().map(|p| p.effective_from_us)).with_timezone(utc),
        ),
        decimals(input.clone(), &per_million)?,
        decimals(output.clone(), &per_million)?,
        decimals(input, &per_token)?,
        decimals(output, &per_token)?,
    ];
    in_memory_table("prices", schema, columns)
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
    fn parses_prices_exactly() {
        let csv = "entity_name,effective_from,input_usd_per_million,output_usd_per_million\n\
                   m,2026-11-01,0.15,1.5\n\
                   m,2026-11-02T12:00:00Z,3,15.000001\n";
        let rows = parse_prices(csv.as_bytes(), "p.csv").unwrap();
        assert_eq!(rows[0].input_micros_per_million, 150_000);
        assert_eq!(rows[0].output_micros_per_million, 1_500_000);
        assert_eq!(rows[1].output_micros_per_million, 15_000_001);
        assert_eq!(rows[1].effective_from_us - rows[0].effective_from_us, 36 * 3600 * 1_000_000);
    }

    #[test]
    fn rejects_bad_prices_with_the_line() {
        let header = "entity_name,effective_from,input_usd_per_million,output_usd_per_million\n";
        for (body, needle) in [
            ("m,2026-11-01,-1,1\n", "not a non-negative decimal"),
            ("m,2026-11-01,0.0000001,1\n", "more than 6 decimal places"),
            ("m,yesterday,1,1\n", "not a date"),
            ("m,2026-11-01,1,1\nm,2026-11-01T00:00:00Z,2,2\n", "already has a price"),
        ] {
            let err = parse_prices(format!("{header}{body}").as_bytes(), "p.csv").unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("line"), "{err}");
        }
    }

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
