-- minute_demand: one row per (usage_date, endpoint_name, requester, minute) with traffic in
-- the window, and one per (usage_date, endpoint_name, minute) with requester '(endpoint)':
-- the per-minute demand the rate-limit recommendations are computed from. Column
-- definitions: docs/OUTPUTS.md#minute_demand. Later runs read these rows back as history.
SELECT
  usage_date,
  endpoint_name,
  requester,
  minute,
  CAST(calls AS BIGINT) AS calls,
  CAST(tokens AS BIGINT) AS tokens,
  CAST(rate_limited AS BIGINT) AS rate_limited
FROM per_minute_demand
WHERE usage_date BETWEEN ${window_from} AND ${window_to}
ORDER BY usage_date, endpoint_name, requester, minute
