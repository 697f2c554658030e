-- team_daily_cost: each team's cost and requests per UTC day over the history and the window
-- (the days spend_spike, budget_burn and logging_gap look back on; a day with no row here was
-- not observed, see observed_days). Unpriced rows cost 0.
-- Days from ${inputs_start} on are computed from usage_costed; earlier history days come from
-- the daily_spend rows earlier runs wrote (spend_history, empty unless the computed_dates
-- ledger covers those days: see docs/ARCHITECTURE.md#history). Both give the same numbers:
-- daily_spend's cost_usd and requests summed over a team's rows of the day.
SELECT
  usage_date,
  team,
  COALESCE(SUM(cost_usd), CAST(0 AS DECIMAL(38, 12))) AS cost_usd,
  COUNT(*) AS requests
FROM usage_costed
WHERE request_time >= ${inputs_start} AND request_time < ${window_end}
GROUP BY usage_date, team
UNION ALL
SELECT
  usage_date,
  team,
  CAST(SUM(cost_usd) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(requests) AS BIGINT) AS requests
FROM spend_history
WHERE usage_date >= ${history_from} AND usage_date < ${inputs_from}
GROUP BY usage_date, team
