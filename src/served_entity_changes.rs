//! Which computed dates a change of `served_entities` touches.
//!
//! Outputs name endpoints and entities by the latest row of each `served_entity_id`
//! (`queries/views/latest_served_entities.sql`), so a served-entities change is not placed on
//! dates by time: renaming an entity (or removing its rows) changes every date whose outputs
//! used its old names, and a new entity id changes the dates whose usage rows named that id
//! before served_entities knew it (counted as `(unknown)`). For each version the ledger
//! recorded, this compares the id -> names mapping of that version with the current one and
//! finds the dates whose `daily_spend` rows carry an affected (endpoint, entity) pair.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;

use crate::columns;
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::inputs;
use crate::ledger::LedgerEntry;
use crate::location::Location;
use crate::queries;

/// The name outputs give an endpoint or entity without a served-entities row.
const UNKNOWN: &str = "(unknown)";

type Names = (String, String);

/// The dates among `candidates` (ledger rows with the served-entities version they reflect)
/// whose outputs a served-entities change since that version touches, with the reason.
pub async fn changed_dates(
    job: &JobConfig,
    location: &Location,
    current: &DeltaTable,
    candidates: &[&LedgerEntry],
) -> Result<Vec<(NaiveDate, String)>> {
    let current_version = current.version().and_then(|v| i64::try_from(v).ok()).unwrap_or(-1);
    let mut by_version: BTreeMap<i64, Vec<NaiveDate>> = BTreeMap::new();
    for entry in candidates {
        if let Some(version) = entry.versions.served_entities.filter(|v| *v < current_version) {
            by_version.entry(version).or_default().push(entry.date);
        }
    }
    if by_version.is_empty() {
        return Ok(Vec::new());
    }
    let now = mapping(location, current).await?;
    let mut changed = Vec::new();
    for (version, dates) in by_version {
        let reason = format!("served_entities v{version}..v{current_version} renamed or added entities it used");
        let mut old_table = DeltaTable::new(current.log_store());
        if old_table.load_version(version as u64).await.is_err() {
            let reason = format!("served_entities v{version} is no longer readable (log retention): every date");
            changed.extend(dates.iter().map(|d| (*d, reason.clone())));
            continue;
        }
        let before = mapping(location, &old_table).await?;
        let affected = affected_names(&before, &now);
        if affected.is_empty() {
            continue;
        }
        for date in dates_using(job, &dates, &affected).await? {
            changed.push((date, reason.clone()));
        }
    }
    Ok(changed)
}

/// The (endpoint, entity) pairs whose rows change between two mappings: the old names of ids
/// renamed or gone, and the unknown pair when ids were added.
fn affected_names(before: &HashMap<String, Names>, now: &HashMap<String, Names>) -> BTreeSet<Names> {
    let mut affected = BTreeSet::new();
    for (id, names) in before {
        if now.get(id) != Some(names) {
            affected.insert(names.clone());
        }
    }
    if now.keys().any(|id| !before.contains_key(id)) {
        affected.insert((UNKNOWN.to_string(), UNKNOWN.to_string()));
    }
    affected
}

/// served_entity_id -> (endpoint_name, entity_name) of a version, as the outputs resolve it.
async fn mapping(location: &Location, table: &DeltaTable) -> Result<HashMap<String, Names>> {
    let ctx = SessionContext::new();
    let provider = crate::storage::provider_of(&ctx, "served_entities", location, table).await?;
    inputs::register_table(&ctx, "served_entities", provider)?;
    let view = &queries::BASE_VIEWS[0];
    let frame = ctx.sql(view.sql).await.map_err(|e| Error::query(view.name, e))?;
    let batches = frame.collect().await.map_err(|e| Error::query(view.name, e))?;
    let mut mapping = HashMap::new();
    for batch in &batches {
        let ids = columns::strings(batch, "served_entity_id")?;
        let endpoints = columns::strings(batch, "endpoint_name")?;
        let entities = columns::strings(batch, "entity_name")?;
        for ((id, endpoint), entity) in ids.into_iter().zip(endpoints).zip(entities) {
            if let Some(id) = id {
                let name = |n: Option<String>| n.unwrap_or_else(|| UNKNOWN.to_string());
                mapping.insert(id, (name(endpoint), name(entity)));
            }
        }
    }
    Ok(mapping)
}

/// The dates among `dates` whose stored daily_spend has a row with one of the `names`; all of
/// them when there is no daily_spend to ask.
async fn dates_using(job: &JobConfig, dates: &[NaiveDate], names: &BTreeSet<Names>) -> Result<Vec<NaiveDate>> {
    let ctx = SessionContext::new();
    let Some(provider) = crate::outputs::open_stored(&ctx, job, "daily_spend").await? else {
        return Ok(dates.to_vec());
    };
    let date_list: Vec<String> = dates.iter().map(|d| format!("DATE '{d}'")).collect();
    ctx.register_table("daily_spend", provider).map_err(|e| Error::query("daily_spend", e))?;
    let sql = format!(
        "SELECT DISTINCT CAST(usage_date AS VARCHAR) AS day, endpoint_name, entity_name FROM daily_spend \
         WHERE usage_date IN ({})",
        date_list.join(", ")
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| Error::query("daily_spend", e))?
        .collect()
        .await
        .map_err(|e| Error::query("daily_spend", e))?;
    let mut touched = BTreeSet::new();
    for batch in &batches {
        let days = columns::strings(batch, "day")?;
        let endpoints = columns::strings(batch, "endpoint_name")?;
        let entities = columns::strings(batch, "entity_name")?;
        for ((day, endpoint), entity) in days.into_iter().zip(endpoints).zip(entities) {
            let pair = (endpoint.unwrap_or_default(), entity.unwrap_or_default());
            if let Some(day) = day.and_then(|d| d.parse::<NaiveDate>().ok())
                && names.contains(&pair)
            {
                touched.insert(day);
            }
        }
    }
    Ok(dates.iter().copied().filter(|d| touched.contains(d)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &str, n: &str) -> Names {
        (e.to_string(), n.to_string())
    }

    #[test]
    fn renames_touch_the_old_names_and_new_ids_the_unknown_pair() {
        let before = HashMap::from([("1".to_string(), names("chat", "gpt")), ("2".to_string(), names("emb", "bge"))]);
        let mut now = before.clone();
        assert!(affected_names(&before, &now).is_empty());
        now.insert("1".into(), names("chat", "gpt-2"));
        now.insert("3".into(), names("new", "m"));
        let affected = affected_names(&before, &now);
        assert_eq!(affected, BTreeSet::from([names("chat", "gpt"), names(UNKNOWN, UNKNOWN)]));
    }
}
