-- team_daily_cost: each team's cost and requests per UTC day over the scanned history (the run
-- window plus the days spend_spike and budget_burn look back on). Unpriced rows cost 0.
SELECT
  usage_date,
  team,
  COALESCE(SUM(cost_usd), CAST(0 AS DECIMAL(38, 12))) AS cost_usd,
  COUNT(*) AS requests
FROM usage_costed
WHERE request_time >= ${history_start} AND request_time < ${window_end}
GROUP BY usage_date, team
