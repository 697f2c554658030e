//! The pipeline events of `run --alerts-format pagerduty|opsgenie`, checked against the JSON
//! Schemas of tests/data/alert-events (written from PagerDuty's and Opsgenie's published field
//! lists: see tests/data/README.md) by the small validator below, which knows the keywords
//! those schemas use.

use std::process::Command;

use serde_json::Value;

use super::common::repo;

/// The errors of `value` against `schema` (type, enum, required, properties,
/// additionalProperties, items, minLength/maxLength, minimum, maxItems, format date-time,
/// `$ref` to `#/$defs/...`, allOf, anyOf, not, if/then/else and this project's
/// `x-maxTotalLength` for Opsgenie's details), each with its JSON path.
pub(super) fn violations(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    violations_in(schema, schema, value, path)
}

fn violations_in(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let violations = |schema: &Value, value: &Value, path: &str| violations_in(root, schema, value, path);
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("only #/$defs/ references are known here");
        return violations(&root["$defs"][name], value, path);
    }
    let mut errors = Vec::new();
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        errors.extend(violations(part, value, path));
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && any.iter().all(|part| !violations(part, value, path).is_empty())
    {
        errors.push(format!("{path}: matches none of anyOf"));
    }
    if let Some(not) = schema.get("not")
        && violations(not, value, path).is_empty()
    {
        errors.push(format!("{path}: matches `not` {not}"));
    }
    if let Some(condition) = schema.get("if") {
        let branch = if violations(condition, value, path).is_empty() { "then" } else { "else" };
        if let Some(branch) = schema.get(branch) {
            errors.extend(violations(branch, value, path));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
        && value.as_i64().is_some_and(|v| v < min)
    {
        errors.push(format!("{path}: below minimum {min}"));
    }
    let mut fail = |message: String| errors.push(format!("{path}: {message}"));
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("schema type {other} is not known here"),
        };
        if !ok {
            fail(format!("is not of type {kind}: {value}"));
            return errors;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail(format!("{value} is not one of {allowed:?}"));
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| length < min) {
            fail(format!("shorter than minLength ({length})"));
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| length > max) {
            fail(format!("longer than maxLength ({length})"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && chrono::DateTime::parse_from_rfc3339(text).is_err()
        {
            fail(format!("{text} is not an RFC 3339 date-time"));
        }
    }
    if let Some(items) = value.as_array() {
        if schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| items.len() as u64 > max) {
            fail(format!("more than maxItems ({})", items.len()));
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                errors.extend(violations(item_schema, item, &format!("{path}[{index}]")));
            }
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{path}: lacks the required `{name}`"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, field) in object {
            let path = format!("{path}.{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(field_schema), _) => errors.extend(violations(field_schema, field, &path)),
                (None, Some(Value::Bool(false))) => errors.push(format!("{path}: not a field of the API")),
                (None, Some(other @ Value::Object(_))) => errors.extend(violations(other, field, &path)),
                (None, _) => {}
            }
        }
        if let Some(max) = schema.get("x-maxTotalLength").and_then(Value::as_u64) {
            let total: usize =
                object.iter().map(|(k, v)| k.chars().count() + v.as_str().map_or(0, |s| s.chars().count())).sum();
            if total as u64 > max {
                errors.push(format!("{path}: {total} characters in all, over {max}"));
            }
        }
    }
    errors
}

fn schema(name: &str) -> Value {
    let path = repo().join("tests/data/alert-events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The validator rejects what the APIs reject (so that its silence on the events means something).
#[test]
fn the_validator_catches_what_the_apis_refuse() {
    let trigger = schema("pagerduty-trigger.schema.json");
    let good = serde_json::json!({
        "routing_key": "0123456789abcdef0123456789abcdef", "event_action": "trigger", "dedup_key": "k",
        "payload": { "summary": "s", "source": "x", "severity": "critical", "timestamp": "2026-11-02T10:00:00Z" }
    });
    assert_eq!(violations(&trigger, &good, "$"), Vec::<String>::new());
    let mut bad = good.clone();
    bad["payload"]["severity"] = "page-everyone".into();
    bad["payload"]["summary"] = "x".repeat(1025).into();
    bad["payload"]["timestamp"] = "yesterday".into();
    bad["routing_key"] = "short".into();
    bad["extra"] = 1.into();
    assert_eq!(violations(&trigger, &bad, "$").len(), 5, "{:?}", violations(&trigger, &bad, "$"));
    let create = schema("opsgenie-create-alert.schema.json");
    let tags = vec!["t"; 21];
    let bad = serde_json::json!({ "message": "m".repeat(131), "priority": "P0", "details": { "a": 1 }, "tags": tags });
    assert_eq!(violations(&create, &bad, "$").len(), 4, "{:?}", violations(&create, &bad, "$"));
}

fn demo_job_file(dir: &std::path::Path) -> std::path::PathBuf {
    let job = dir.join("job.toml");
    let text = std::fs::read_to_string(repo().join("jobs/demo.toml"))
        .unwrap()
        .replace("../fixtures/demo", &repo().join("fixtures/demo").display().to_string())
        .replace("\"../out/demo\"", &format!("{:?}", dir.join("out").display().to_string()));
    std::fs::write(&job, text).unwrap();
    job
}

fn run(job: &std::path::Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["run", "--format", "none", "--from", "2026-11-01", "--to", "2026-11-03", "--config"])
        .arg(job)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn pagerduty_and_opsgenie_events_match_the_published_fields() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job_file(dir.path());

    let events = run(&job, &["--alerts-format", "pagerduty", "--alerts-jsonl", "-"]);
    let (trigger, resolve) = (schema("pagerduty-trigger.schema.json"), schema("pagerduty-resolve.schema.json"));
    let mut actions = Vec::new();
    for line in events.lines() {
        let mut event: Value = serde_json::from_str(line).unwrap();
        assert!(event.get("routing_key").is_none(), "the integration key is the pipeline's to add");
        event["routing_key"] = "0123456789abcdef0123456789abcdef".into();
        let action = event["event_action"].as_str().unwrap().to_string();
        let schema = if action == "trigger" { &trigger } else { &resolve };
        assert_eq!(violations(schema, &event, "$"), Vec::<String>::new(), "{line}");
        actions.push((action, event["dedup_key"].as_str().unwrap().to_string()));
    }
    // Every resolve closes an incident a trigger opened (in this window, which begins the data).
    assert!(actions.iter().any(|(a, _)| a == "trigger") && actions.iter().any(|(a, _)| a == "resolve"), "{actions:?}");
    for (action, key) in &actions {
        if action == "resolve" {
            assert!(actions.iter().any(|(a, k)| a == "trigger" && k == key), "resolve of {key} without a trigger");
        }
    }

    // A format without a destination is a command-line mistake (exit 2), not a silent no-op.
    let alone = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["run", "--alerts-format", "pagerduty", "--config"])
        .arg(&job)
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(2), "{}", String::from_utf8_lossy(&alone.stderr));

    let requests = run(&job, &["--alerts-format", "opsgenie", "--alerts-jsonl", "-"]);
    let (create, close) = (schema("opsgenie-create-alert.schema.json"), schema("opsgenie-close-alert.schema.json"));
    assert_eq!(requests.lines().count(), actions.len());
    for (line, (action, key)) in requests.lines().zip(&actions) {
        let request: Value = serde_json::from_str(line).unwrap();
        assert_eq!(request["method"], "POST");
        let path = request["path"].as_str().unwrap();
        if action == "trigger" {
            assert_eq!(path, "/v2/alerts");
            assert_eq!(request["body"]["alias"].as_str(), Some(key.as_str()));
            assert_eq!(violations(&create, &request["body"], "$.body"), Vec::<String>::new(), "{line}");
        } else {
            assert_eq!(path, format!("/v2/alerts/{key}/close?identifierType=alias"));
            assert_eq!(violations(&close, &request["body"], "$.body"), Vec::<String>::new(), "{line}");
        }
    }
}
