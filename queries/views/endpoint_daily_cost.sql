-- endpoint_daily_cost: each endpoint's cost and requests per UTC day over the history and the
-- window, as team_daily_cost is per team (the days spend_forecast looks back on). Unpriced rows
-- cost 0. Days from ${inputs_start} on are computed from usage_costed; earlier history days come
-- from the daily_spend rows earlier runs wrote (spend_history, see team_daily_cost). Both give
-- the same numbers: daily_spend's cost_usd and requests summed over an endpoint's rows of the day.
SELECT
  usage_date,
  endpoint_name,
  COALESCE(SUM(cost_usd), CAST(0 AS DECIMAL(38, 12))) AS cost_usd,
  COUNT(*) AS requests
FROM usage_costed
WHERE request_time >= ${inputs_start} AND request_time < ${window_end}
GROUP BY usage_date, endpoint_name
UNION ALL
SELECT
  usage_date,
  endpoint_name,
  CAST(SUM(cost_usd) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(requests) AS BIGINT) AS requests
FROM spend_history
WHERE usage_date >= ${history_from} AND usage_date < ${inputs_from}
GROUP BY usage_date, endpoint_name
