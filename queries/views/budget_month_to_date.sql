-- budget_month_to_date: for each window day and each team with a monthly budget, its cost and
-- requests from the first of the month through the day, and how many of those days were
-- observed (see observed_days). The budget_burn rule projects the month from the observed
-- days; the run summary lists the teams whose projection lacks history.
SELECT
  c.evaluated_date AS usage_date,
  b.team,
  b.monthly_budget_usd,
  c.days_elapsed,
  c.days_in_month,
  SUM(COALESCE(h.cost_usd, CAST(0 AS DECIMAL(38, 12)))) AS month_to_date,
  SUM(COALESCE(h.requests, 0)) AS requests,
  CAST(COUNT(o.usage_date) AS BIGINT) AS observed_days
FROM team_budgets b
CROSS JOIN alert_calendar c
LEFT JOIN observed_days o ON o.usage_date = c.history_date
LEFT JOIN team_daily_cost h ON h.team = b.team AND h.usage_date = c.history_date
WHERE c.in_month_to_date
GROUP BY c.evaluated_date, b.team, b.monthly_budget_usd, c.days_elapsed, c.days_in_month
