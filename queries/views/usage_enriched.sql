-- usage_enriched: one row per usage row of the scanned range (the run window plus the history
-- some outputs need), with the payload's token categories, names, team and the applicable
-- prices attached. Outputs narrow it by request_time. Costs are computed in usage_costed.
-- * endpoint_name, entity_name: from latest_served_entities; '(unknown)' when the
--   served_entity_id has no match (or the matched name is NULL).
-- * requester: NULL becomes '(unknown)'.
-- * team: the first non-empty of context_team (usage_context['team']), teams.team for the requester,
--   'unattributed'. Empty strings and missing keys count as empty.
-- * input_tokens, output_tokens: NULL counts as 0, and so does a negative count (the row still
--   counts as a request; negative_tokens marks it for the usage.negative_tokens check), so no
--   row is ever billed negative.
-- * row_weight: requests the row stands for: 1 for a usage-table row; in payload-only mode
--   round(1 / sampling_fraction) of the payload row; estimated: whether it is such an estimate.
-- * priced: a price row of the same entity_name is effective at request_time; *_usd_per_token
--   are its prices (NULL when not priced; category prices NULL when the price list has none).
-- * categories_known: the payload table logged the same request (databricks_request_id, on the
--   same UTC date: a request and its log share request_time) with a usage block; the
--   *_reported columns are that block's cache-read, cache-write and reasoning counts (the
--   largest, when several payload rows log the request), not yet capped (usage_costed caps them).
-- The categories are joined to the usage rows before the names, team and prices: a join of
-- tens of millions of request ids runs in buckets on disk (src/engine/request_id_buckets.rs),
-- and each usage row it writes there is then the usage table's few columns, not the wider
-- enriched row.
WITH categories AS (
  SELECT
    databricks_request_id,
    usage_date,
    MAX(cache_read_tokens) AS cache_read_tokens,
    MAX(cache_write_tokens) AS cache_write_tokens,
    MAX(reasoning_tokens) AS reasoning_tokens
  FROM payload_parsed
  WHERE input_tokens IS NOT NULL AND databricks_request_id IS NOT NULL
  GROUP BY databricks_request_id, usage_date
),
usage_categorised AS (
  SELECT
    u.*,
    c.databricks_request_id IS NOT NULL AS categories_known,
    c.cache_read_tokens AS cache_read_reported,
    c.cache_write_tokens AS cache_write_reported,
    c.reasoning_tokens AS reasoning_reported
  FROM usage u
  LEFT JOIN categories c
    ON c.databricks_request_id = u.databricks_request_id
    AND c.usage_date = CAST(u.request_time AS DATE)
)
SELECT
  u.request_time,
  u.databricks_request_id,
  CAST(u.request_time AS DATE) AS usage_date,
  date_trunc('hour', u.request_time) AS hour,
  COALESCE(e.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(e.entity_name, '(unknown)') AS entity_name,
  COALESCE(u.requester, '(unknown)') AS requester,
  CASE
    WHEN u.context_team <> '' THEN u.context_team
    WHEN t.team <> '' THEN t.team
    ELSE 'unattributed'
  END AS team,
  e.served_entity_id IS NOT NULL AS known_entity,
  u.requester IS NULL AS null_requester,
  u.status_code,
  u.row_weight,
  u.estimated,
  CAST(GREATEST(COALESCE(u.input_token_count, 0), 0) AS BIGINT) AS input_tokens,
  CAST(GREATEST(COALESCE(u.output_token_count, 0), 0) AS BIGINT) AS output_tokens,
  COALESCE(u.input_token_count < 0 OR u.output_token_count < 0, false) AS negative_tokens,
  u.categories_known,
  u.cache_read_reported,
  u.cache_write_reported,
  u.reasoning_reported,
  p.entity_name IS NOT NULL AS priced,
  p.input_usd_per_token,
  p.output_usd_per_token,
  p.cache_read_usd_per_token,
  p.cache_write_usd_per_token,
  p.reasoning_usd_per_token
FROM usage_categorised u
LEFT JOIN latest_served_entities e
  ON u.served_entity_id = e.served_entity_id
LEFT JOIN teams t
  ON u.requester = t.principal
LEFT JOIN price_periods p
  ON p.entity_name = e.entity_name
  AND p.effective_from <= u.request_time
  AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
