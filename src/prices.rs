//! Prices: the CSV or a LiteLLM `model_prices_and_context_window.json`, validated into exact
//! per-token prices, with the content hash that identifies the price list (`price_version`).
//!
//! Every price is held as an integer number of 1e-12 USD per token, i.e. DECIMAL(18,12): a CSV
//! price per million tokens with at most 6 decimals converts exactly, and `tokens * price` is
//! exact with no division.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use deltalake::arrow::array::{ArrayRef, Decimal128Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use deltalake::datafusion::datasource::MemTable;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::columns::in_memory_table;
use crate::error::Result;
use crate::location::Location;
use crate::reference_data::{read_columns, reference_error};
use crate::storage;

/// Largest price accepted, in 1e-12 USD per token ($1,000,000 per token).
const MAX_UNITS: i128 = 1_000_000_000_000_000_000;

/// Prices of one entity from one instant on, in units of 1e-12 USD per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    /// Served entity name, matching `served_entities.entity_name`.
    pub entity_name: String,
    /// Start of validity, microseconds since the Unix epoch (UTC).
    pub effective_from_us: i64,
    /// Input (prompt) tokens.
    pub input: i128,
    /// Output (generated) tokens.
    pub output: i128,
    /// Prompt tokens read from the cache; `None` bills them at the input price.
    pub cache_read: Option<i128>,
    /// Prompt tokens written to the cache; `None` bills them at the input price.
    pub cache_write: Option<i128>,
    /// Reasoning tokens; `None` bills them at the output price.
    pub reasoning: Option<i128>,
}

/// A validated price list and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    /// The rows.
    pub rows: Vec<PriceRow>,
    /// `sha256:` and the first 16 hex digits of the SHA-256 of the price file's bytes;
    /// `none` without a price file.
    pub version: String,
}

impl Default for PriceList {
    fn default() -> Self {
        PriceList { rows: Vec::new(), version: "none".into() }
    }
}

/// How a LiteLLM price file maps to entity names and dollars (`[prices]` in the job file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PriceSettings {
    /// USD per DBU, for entries priced only in DBUs (`*_dbu_cost_per_token`).
    pub usd_per_dbu: f64,
    /// Entity name -> LiteLLM key, for names the automatic rule does not find.
    pub aliases: BTreeMap<String, String>,
}

impl Default for PriceSettings {
    fn default() -> Self {
        PriceSettings { usd_per_dbu: 0.07, aliases: BTreeMap::new() }
    }
}

/// The content hash that identifies a price file.
pub fn price_version(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Reads a price file: LiteLLM JSON when its name ends in `.json`, the CSV otherwise.
pub async fn load(
    location: &Location,
    options: &HashMap<String, String>,
    settings: &PriceSettings,
) -> Result<PriceList> {
    let bytes = storage::read_file(location, options, "prices").await?;
    let shown = location.to_string();
    let rows = if location.url().path().trim_end_matches('/').ends_with(".json") {
        parse_litellm(&bytes, &shown, settings)?
    } else {
        parse_csv(&bytes, &shown)?
    };
    Ok(PriceList { rows, version: price_version(&bytes) })
}

/// Parses the prices CSV: `entity_name,effective_from,input_usd_per_million,
/// output_usd_per_million`, optionally `cache_read_usd_per_million`,
/// `cache_write_usd_per_million` and `reasoning_usd_per_million` (empty: not set).
pub fn parse_csv(bytes: &[u8], location: &str) -> Result<Vec<PriceRow>> {
    let wanted = ["entity_name", "effective_from", "input_usd_per_million", "output_usd_per_million"];
    let optional = ["cache_read_usd_per_million", "cache_write_usd_per_million", "reasoning_usd_per_million"];
    let mut seen: HashMap<(String, i64), u64> = HashMap::new();
    let mut prices = Vec::new();
    for (line, values) in read_columns(bytes, "prices", location, &wanted, &optional)? {
        let error = |message: String| reference_error("prices", location, line, message);
        let entity_name = values[0].clone();
        if entity_name.is_empty() {
            return Err(error("entity_name is empty".into()));
        }
        let effective_from_us = parse_utc_instant(&values[1]).map_err(error)?;
        let price = |i: usize| parse_per_million(&values[i]).map_err(|m| error(format!("{}: {m}", column_name(i))));
        let optional_price = |i: usize| if values[i].is_empty() { Ok(None) } else { price(i).map(Some) };
        let row = PriceRow {
            entity_name: entity_name.clone(),
            effective_from_us,
            input: price(2)?,
            output: price(3)?,
            cache_read: optional_price(4)?,
            cache_write: optional_price(5)?,
            reasoning: optional_price(6)?,
        };
        if let Some(first) = seen.insert((entity_name.clone(), effective_from_us), line) {
            return Err(error(format!(
                "`{entity_name}` already has a price effective from {} (line {first}); keep one",
                values[1]
            )));
        }
        prices.push(row);
    }
    Ok(prices)
}

fn column_name(index: usize) -> &'static str {
    [
        "entity_name",
        "effective_from",
        "input_usd_per_million",
        "output_usd_per_million",
        "cache_read_usd_per_million",
        "cache_write_usd_per_million",
        "reasoning_usd_per_million",
    ][index]
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

/// Parses a non-negative decimal USD-per-million price with at most 6 decimal places into
/// units of 1e-12 USD per token (the same integer).
fn parse_per_million(raw: &str) -> std::result::Result<i128, String> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
        return Err(format!("`{raw}` is not a non-negative decimal number"));
    }
    if fraction.len() > 6 {
        return Err(format!("`{raw}` has more than 6 decimal places"));
    }
    let padded = format!("{whole}{fraction:0<6}");
    let digits = padded.trim_start_matches('0');
    if digits.len() > 24 {
        return Err(format!("`{raw}` is too large"));
    }
    let units: i128 =
        if digits.is_empty() { 0 } else { digits.parse().map_err(|_| format!("`{raw}` is too large"))? };
    if units > MAX_UNITS {
        return Err(format!("`{raw}` is too large"));
    }
    Ok(units)
}

/// The LiteLLM fields this reader uses (schemas notes §6).
#[derive(Debug, Deserialize, Default)]
struct LiteLlmEntry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
    output_cost_per_reasoning_token: Option<f64>,
    input_dbu_cost_per_token: Option<f64>,
    output_dbu_cost_per_token: Option<f64>,
}

/// The entity names a LiteLLM key prices, best match first: the key itself; the key without its
/// provider prefix (`databricks/databricks-gpt-5` -> `databricks-gpt-5`); and for `databricks/`
/// keys the Unity Catalog system model (`system.ai.databricks-gpt-5`).
pub fn entity_names_for_key(key: &str) -> Vec<String> {
    let mut names = vec![key.to_string()];
    if let Some((provider, rest)) = key.split_once('/') {
        names.push(rest.to_string());
        if provider == "databricks" {
            names.push(format!("system.ai.{rest}"));
        }
    }
    names
}

fn per_token_units(value: f64, what: &str, key: &str, location: &str) -> Result<i128> {
    let units = (value * 1e12).round();
    if !value.is_finite() || value < 0.0 || units > MAX_UNITS as f64 {
        return Err(reference_error("prices", location, 0, format!("`{key}`: {what} = {value} is not a usable price")));
    }
    Ok(units as i128)
}

/// Parses a LiteLLM price file. Dollar fields (`*_cost_per_token`) win; an entry priced only
/// in DBUs is converted with `usd_per_dbu`. Entries with neither an input nor an output price
/// (and `sample_spec`) are skipped. Each entry prices the names of [`entity_names_for_key`];
/// when two keys give the same name, the better-ranked name wins, then the smaller key.
/// `aliases` map further entity names to keys explicitly and win over the rule. The prices
/// have no dates: they apply from the epoch.
pub fn parse_litellm(bytes: &[u8], location: &str, settings: &PriceSettings) -> Result<Vec<PriceRow>> {
    let error = |message: String| reference_error("prices", location, 0, message);
    let root: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| error(format!("not a LiteLLM price file: {e}")))?;
    let mut by_key: BTreeMap<&str, PriceRow> = BTreeMap::new();
    for (key, value) in &root {
        if key == "sample_spec" {
            continue;
        }
        let Ok(entry) = serde_json::from_value::<LiteLlmEntry>(value.clone()) else { continue };
        let dollars = |usd: Option<f64>, dbu: Option<f64>| usd.or(dbu.map(|d| d * settings.usd_per_dbu));
        let input = dollars(entry.input_cost_per_token, entry.input_dbu_cost_per_token);
        let output = dollars(entry.output_cost_per_token, entry.output_dbu_cost_per_token);
        if input.is_none() && output.is_none() {
            continue;
        }
        let units = |v: Option<f64>, what: &str| v.map(|v| per_token_units(v, what, key, location)).transpose();
        by_key.insert(
            key.as_str(),
            PriceRow {
                entity_name: String::new(),
                effective_from_us: 0,
                input: units(input, "input price")?.unwrap_or(0),
                output: units(output, "output price")?.unwrap_or(0),
                cache_read: units(entry.cache_read_input_token_cost, "cache_read_input_token_cost")?,
                cache_write: units(entry.cache_creation_input_token_cost, "cache_creation_input_token_cost")?,
                reasoning: units(entry.output_cost_per_reasoning_token, "output_cost_per_reasoning_token")?,
            },
        );
    }
    // entity name -> (rank, key)
    let mut chosen: BTreeMap<String, (usize, &str)> = BTreeMap::new();
    for key in by_key.keys() {
        for (rank, name) in entity_names_for_key(key).into_iter().enumerate() {
            let better = chosen.get(&name).is_none_or(|&(r, k)| (rank, *key) < (r, k));
            if better {
                chosen.insert(name, (rank, key));
            }
        }
    }
    for (entity, key) in &settings.aliases {
        let key = by_key.get_key_value(key.as_str()).map(|(k, _)| *k).ok_or_else(|| {
            error(format!("prices.aliases.{entity} names `{key}`, which the price file does not price"))
        })?;
        chosen.insert(entity.clone(), (0, key));
    }
    Ok(chosen
        .into_iter()
        .filter_map(|(entity, (_, key))| by_key.get(key).map(|row| PriceRow { entity_name: entity, ..row.clone() }))
        .collect())
}

/// The in-memory `prices` table the queries join against: prices per token as DECIMAL(18,12),
/// the category prices NULL when not set.
pub fn prices_table(prices: &[PriceRow]) -> Result<MemTable> {
    let utc: Arc<str> = Arc::from("UTC");
    let per_token = DataType::Decimal128(18, 12);
    let schema = Arc::new(Schema::new(vec![
        Field::new("entity_name", DataType::Utf8, false),
        Field::new("effective_from", DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())), false),
        Field::new("input_usd_per_token", per_token.clone(), false),
        Field::new("output_usd_per_token", per_token.clone(), false),
        Field::new("cache_read_usd_per_token", per_token.clone(), true),
        Field::new("cache_write_usd_per_token", per_token.clone(), true),
        Field::new("reasoning_usd_per_token", per_token.clone(), true),
    ]));
    let decimals = |values: Vec<Option<i128>>| -> ArrayRef {
        Arc::new(Decimal128Array::from(values).with_data_type(per_token.clone()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(prices.iter().map(|p| p.entity_name.as_str()))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(prices.iter().map(|p| p.effective_from_us)).with_timezone(utc),
        ),
        decimals(prices.iter().map(|p| Some(p.input)).collect()),
        decimals(prices.iter().map(|p| Some(p.output)).collect()),
        decimals(prices.iter().map(|p| p.cache_read).collect()),
        decimals(prices.iter().map(|p| p.cache_write).collect()),
        decimals(prices.iter().map(|p| p.reasoning).collect()),
    ];
    in_memory_table("prices", schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "entity_name,effective_from,input_usd_per_million,output_usd_per_million";

    #[test]
    fn parses_csv_prices_exactly() {
        let csv = format!(
            "{HEADER},cache_read_usd_per_million\nm,2026-11-01,0.15,1.5,0.015\nm,2026-11-02T12:00:00Z,3,15.000001,\n"
        );
        let rows = parse_csv(csv.as_bytes(), "p.csv").unwrap();
        assert_eq!((rows[0].input, rows[0].output, rows[0].cache_read), (150_000, 1_500_000, Some(15_000)));
        assert_eq!((rows[1].output, rows[1].cache_read, rows[1].reasoning), (15_000_001, None, None));
        assert_eq!(rows[1].effective_from_us - rows[0].effective_from_us, 36 * 3600 * 1_000_000);
    }

    #[test]
    fn rejects_bad_csv_prices_with_the_line() {
        for (body, needle) in [
            ("m,2026-11-01,-1,1\n", "not a non-negative decimal"),
            ("m,2026-11-01,0.0000001,1\n", "more than 6 decimal places"),
            ("m,yesterday,1,1\n", "not a date"),
            ("m,2026-11-01,1,1\nm,2026-11-01T00:00:00Z,2,2\n", "already has a price"),
        ] {
            let err = parse_csv(format!("{HEADER}\n{body}").as_bytes(), "p.csv").unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("line"), "{err}");
        }
    }

    #[test]
    fn litellm_names_dollars_and_dbus() {
        let json = br#"{
            "sample_spec": {"input_cost_per_token": 1},
            "databricks/databricks-claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07, "input_dbu_cost_per_token": 4.2857e-05},
            "databricks/databricks-gte-large-en": {"input_dbu_cost_per_token": 1.857e-06, "output_dbu_cost_per_token": 0},
            "gpt-5": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05, "output_cost_per_reasoning_token": 1e-05},
            "openai/gpt-5": {"input_cost_per_token": 9e-06, "output_cost_per_token": 9e-05},
            "image-model": {"mode": "image_generation"}
        }"#;
        let mut settings = PriceSettings::default();
        settings.aliases.insert("main.ml.my-claude".into(), "databricks/databricks-claude-sonnet-4-5".into());
        let rows = parse_litellm(json, "prices.json", &settings).unwrap();
        let get = |name: &str| rows.iter().find(|r| r.entity_name == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(get("system.ai.databricks-claude-sonnet-4-5").input, 3_000_000, "dollars win over DBUs");
        assert_eq!(get("system.ai.databricks-claude-sonnet-4-5").cache_read, Some(300_000));
        assert_eq!(get("databricks-gte-large-en").input, 129_990, "1.857e-06 DBU x $0.07");
        assert_eq!(get("gpt-5").input, 1_250_000, "the exact key beats openai/gpt-5");
        assert_eq!(get("main.ml.my-claude").output, 15_000_000);
        assert!(rows.iter().all(|r| r.entity_name != "image-model" && r.entity_name != "sample_spec"));
    }

    #[test]
    fn unknown_alias_is_an_error() {
        let mut settings = PriceSettings::default();
        settings.aliases.insert("x".into(), "nope".into());
        let err = parse_litellm(b"{}", "prices.json", &settings).unwrap_err().to_string();
        assert!(err.contains("prices.aliases.x"), "{err}");
    }

    #[test]
    fn version_is_a_content_hash() {
        assert_eq!(price_version(b"a"), price_version(b"a"));
        assert_ne!(price_version(b"a"), price_version(b"b"));
        assert!(price_version(b"a").starts_with("sha256:"));
    }
}
