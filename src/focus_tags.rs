//! FOCUS `Tags` for `focus_costs`: the view `focus_tagged_usage`, the window's `usage_costed`
//! rows with `tags`, a JSON object of the row's team and the `usage_context` values of the job's
//! `[ai_gateway] tag_keys` (the keys `tag_spend` reports). The SQL is made here because the keys
//! come from the job file; it runs on DataFusion and (in the Spark manifest) on Spark SQL alike.

use deltalake::datafusion::prelude::SessionContext;

use crate::config::JobConfig;
use crate::error::Result;
use crate::sql_params::SqlParams;

/// The view `queries/focus_costs.sql` reads.
pub const TAGGED_USAGE_VIEW: &str = "focus_tagged_usage";

/// `expr` (a SQL string) as the inside of a JSON string: backslash and quote escaped with a
/// backslash, every control character (U+0000..U+001F) as `\u00XX`. Built from `chr()` so no
/// literal holds a backslash (which Spark SQL would read as an escape). A value made only of
/// [`PLAIN_CHARACTERS`] (most team names and tag values) is itself, found with one regular
/// expression test instead of the 34 replacements (which took 10 s of CPU over 10M rows).
pub fn json_escaped(expr: &str) -> String {
    let mut escaped =
        format!("replace(replace({expr}, chr(92), concat(chr(92), chr(92))), chr(34), concat(chr(92), chr(34)))");
    for code in 0..0x20 {
        escaped = format!("replace({escaped}, chr({code}), concat(chr(92), 'u{code:04x}'))");
    }
    // Unanchored and negated, so that Java's `$` (which also matches before a final line break)
    // plays no part on Spark.
    format!("CASE WHEN NOT regexp_like({expr}, '[^{PLAIN_CHARACTERS}]') THEN {expr} ELSE {escaped} END")
}

/// The characters a JSON string holds as they are (a regular-expression class, without `\`,
/// `"` or a control character).
const PLAIN_CHARACTERS: &str = "A-Za-z0-9 _.:/@+=-";

/// The keys whose `usage_context` values `Tags` carries: `[ai_gateway] tag_keys` without `team`
/// (always the first member, as attributed), none without a usage table (payload rows carry no
/// `usage_context`). The keys are validated in the job file (letters, digits, `_ - . : /`), so
/// they are SQL literals and JSON strings as written.
pub fn context_keys(job: &JobConfig) -> Vec<&str> {
    if job.usage.is_none() {
        return Vec::new();
    }
    job.ai_gateway.tag_keys.iter().map(String::as_str).filter(|k| *k != "team").collect()
}

/// The SQL of [`TAGGED_USAGE_VIEW`]: every `usage_costed` row of the window with `tags` =
/// `{"team":"<team>"` then `,"<key>":"<value>"` for each of `keys` the row's `usage_context`
/// has (usage rows sharing a `databricks_request_id` and `request_time` take the greatest
/// value, as in `tag_spend`), then `}`.
pub fn tagged_usage_view(keys: &[&str]) -> String {
    let mut members = vec![format!("'{{\"team\":\"', {}, '\"'", json_escaped("c.team"))];
    for (i, key) in keys.iter().enumerate() {
        members.push(format!(
            "CASE WHEN t.tag_{i} IS NULL THEN '' ELSE concat(',\"{key}\":\"', {}, '\"') END",
            json_escaped(&format!("t.tag_{i}"))
        ));
    }
    members.push("'}'".into());
    let tags = format!("concat({}) AS tags", members.join(", "));
    let window = |t: &str| format!("{t}.request_time >= ${{window_start}} AND {t}.request_time < ${{window_end}}");
    let rows = window("c");
    if keys.is_empty() {
        return format!("SELECT c.*, {tags} FROM usage_costed c WHERE {rows}");
    }
    let values: Vec<String> =
        keys.iter().enumerate().map(|(i, key)| format!("MAX(usage_context['{key}']) AS tag_{i}")).collect();
    format!(
        "SELECT c.*, {tags} FROM usage_costed c \
         LEFT JOIN (SELECT databricks_request_id, request_time, {} FROM usage u WHERE {} \
                    GROUP BY databricks_request_id, request_time) t \
         ON (t.databricks_request_id IS NOT DISTINCT FROM c.databricks_request_id) AND t.request_time = c.request_time \
         WHERE {rows}",
        values.join(", "),
        window("u")
    )
}

/// Registers [`TAGGED_USAGE_VIEW`] for `job` on a session whose views are registered.
pub async fn register_view(ctx: &SessionContext, job: &JobConfig, params: &SqlParams) -> Result<()> {
    let name = TAGGED_USAGE_VIEW;
    let sql = params.render(name, &tagged_usage_view(&context_keys(job)))?;
    crate::queries::create_view(ctx, name, &sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped_once() {
        let sql = json_escaped("x");
        assert_eq!(sql.matches("replace(").count(), 2 + 32);
        assert!(sql.starts_with("CASE WHEN NOT regexp_like(x, '[^"), "{sql}");
        assert!(sql.contains("chr(10), concat(chr(92), 'u000a')") && sql.contains("chr(0), concat(chr(92), 'u0000')"));
        assert!(!sql.contains('\\'), "no backslash in a literal");
        let view = tagged_usage_view(&["project", "env"]);
        assert!(view.contains("usage_context['project']") && view.contains(",\"env\":\""));
    }
}
