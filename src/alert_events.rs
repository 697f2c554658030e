//! Pipeline events of alert records: PagerDuty Events API v2 and Opsgenie Alert API request
//! bodies, keyed by the incident id, for `run --alerts-format pagerduty|opsgenie`.

use serde_json::{Map, Value, json};

use crate::alerts::{AlertRecord, AlertsFormat, EVENT_SOURCE};
use crate::window::RunWindow;

/// The pipeline events of the `records` of `window`, in order: for each record whose `notify`
/// is `trigger` or `resolve`, one event in `format`'s shape with the incident id as its key.
/// JSON Lines (`AlertsFormat::Jsonl`) has no events: it carries the records themselves.
pub fn events(records: &[AlertRecord], format: AlertsFormat, window: &RunWindow) -> Vec<Value> {
    let in_window = |r: &&AlertRecord| r.usage_date.is_none_or(|d| window.from <= d && d <= window.to);
    records
        .iter()
        .filter(in_window)
        .filter_map(|record| match (format, record.notify.as_deref()) {
            (AlertsFormat::Pagerduty, Some("trigger")) => Some(pagerduty_trigger(record)),
            (AlertsFormat::Pagerduty, Some("resolve")) => Some(pagerduty_resolve(record)),
            (AlertsFormat::Opsgenie, Some("trigger")) => Some(opsgenie_create(record)),
            (AlertsFormat::Opsgenie, Some("resolve")) => Some(opsgenie_close(record)),
            _ => None,
        })
        .collect()
}

/// The first `max` characters of `text`.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A PagerDuty Events API v2 `trigger` (without `routing_key`, the integration key the
/// pipeline adds): summary (at most 1024 characters), source, severity, timestamp, component,
/// group, class and the record as custom details.
fn pagerduty_trigger(record: &AlertRecord) -> Value {
    let severity = if record.severity == "critical" { "critical" } else { "warning" };
    json!({
        "event_action": "trigger",
        "dedup_key": record.incident_id,
        "client": EVENT_SOURCE,
        "payload": {
            "summary": clip(&record.message, 1024),
            "source": record.entity(),
            "severity": severity,
            "timestamp": record.window_start,
            "component": record.endpoint_name,
            "group": record.scope,
            "class": record.rule,
            "custom_details": record.details(),
        },
    })
}

/// A PagerDuty Events API v2 `resolve` of the incident.
fn pagerduty_resolve(record: &AlertRecord) -> Value {
    json!({ "event_action": "resolve", "dedup_key": record.incident_id })
}

/// An Opsgenie "create alert" request: `POST /v2/alerts` with the incident id as `alias`.
fn opsgenie_create(record: &AlertRecord) -> Value {
    let priority = if record.severity == "critical" { "P1" } else { "P3" };
    let details: Map<String, Value> = record
        .details()
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (key, Value::String(text))
        })
        .collect();
    json!({
        "method": "POST",
        "path": "/v2/alerts",
        "body": {
            "message": clip(&record.title(), 130),
            "alias": record.incident_id,
            "description": clip(&record.message, 15000),
            "tags": [record.rule, record.scope, record.severity],
            "details": details,
            "entity": clip(&record.entity(), 512),
            "source": EVENT_SOURCE,
            "priority": priority,
        },
    })
}

/// An Opsgenie "close alert" request for the alert whose alias is the incident id.
fn opsgenie_close(record: &AlertRecord) -> Value {
    json!({
        "method": "POST",
        "path": format!("/v2/alerts/{}/close?identifierType=alias", record.incident_id),
        "body": { "source": EVENT_SOURCE, "note": clip(&record.message, 25000) },
    })
}
