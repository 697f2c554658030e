-- usage_enriched: one row per usage row of the scanned range (the run window plus the history
-- some outputs need), with names, team and cost attached. Outputs narrow it by request_time.
-- * endpoint_name, entity_name: from latest_served_entities; '(unknown)' when the
--   served_entity_id has no match (or the matched name is NULL).
-- * requester: NULL becomes '(unknown)'.
-- * team: the first non-empty of usage_context['team'], teams.team for the requester,
--   'unattributed'. Empty strings and missing keys count as empty.
-- * input_tokens, output_tokens: NULL counts as 0.
-- * priced: a price row of the same entity_name is effective at request_time.
-- * cost_usd: exact DECIMAL(38,12); input_tokens * input price + output_tokens * output price,
--   with prices per token; NULL when not priced.
SELECT
  u.request_time,
  CAST(u.request_time AS DATE) AS usage_date,
  date_trunc('hour', u.request_time) AS hour,
  COALESCE(e.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(e.entity_name, '(unknown)') AS entity_name,
  COALESCE(u.requester, '(unknown)') AS requester,
  CASE
    WHEN u.usage_context['team'] <> '' THEN u.usage_context['team']
    WHEN t.team <> '' THEN t.team
    ELSE 'unattributed'
  END AS team,
  e.served_entity_id IS NOT NULL AS known_entity,
  u.requester IS NULL AS null_requester,
  u.status_code,
  CAST(COALESCE(u.input_token_count, 0) AS BIGINT) AS input_tokens,
  CAST(COALESCE(u.output_token_count, 0) AS BIGINT) AS output_tokens,
  p.entity_name IS NOT NULL AS priced,
  CAST(COALESCE(u.input_token_count, 0) AS DECIMAL(18, 0)) * p.input_usd_per_token
    + CAST(COALESCE(u.output_token_count, 0) AS DECIMAL(18, 0)) * p.output_usd_per_token AS cost_usd
FROM usage u
LEFT JOIN latest_served_entities e
  ON u.served_entity_id = e.served_entity_id
LEFT JOIN teams t
  ON u.requester = t.principal
LEFT JOIN price_periods p
  ON p.entity_name = e.entity_name
  AND p.effective_from <= u.request_time
  AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
