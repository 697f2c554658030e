-- usage: the usage table (system.serving.endpoint_usage, read as usage_source) narrowed to the
-- range the outputs need: the run window plus the history that spend baselines, budgets and
-- the recommendations' lookback read, except history days taken from earlier runs' outputs
-- (spend_history, demand_history): from ${inputs_start} up to the window's end.
-- * row_weight: every usage-table row is one request, known exactly (1).
-- * estimated: false (see usage_from_payload.sql for the estimated form).
-- * context_team: usage_context['team'], the team the caller declared (NULL when absent).
SELECT
  *,
  usage_context['team'] AS context_team,
  CAST(1 AS BIGINT) AS row_weight,
  false AS estimated
FROM usage_source
WHERE request_time >= ${inputs_start} AND request_time < ${window_end}
