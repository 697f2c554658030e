-- team_baselines: for each window day and each team with usage rows that day, its cost and
-- requests, how many of the 7 previous days were observed (see observed_days) and the two
-- middle values of its daily cost over those observed days (equal for an odd count), a day
-- without spend of the team counting 0. The spend_spike rule reads it (its median is their
-- mean) and the run summary lists the teams it lacks history for. Costs stay DECIMAL(38,12).
WITH observed_history AS (
  SELECT c.evaluated_date, c.history_date
  FROM alert_calendar c
  JOIN observed_days o ON o.usage_date = c.history_date
  WHERE c.in_previous_7
),
history AS (
  SELECT
    d.usage_date,
    d.team,
    d.cost_usd,
    d.requests,
    CASE WHEN o.history_date IS NOT NULL THEN COALESCE(h.cost_usd, CAST(0 AS DECIMAL(38, 12))) END AS previous_cost
  FROM team_daily_cost d
  LEFT JOIN observed_history o ON o.evaluated_date = d.usage_date
  LEFT JOIN team_daily_cost h ON h.team = d.team AND h.usage_date = o.history_date
  WHERE d.usage_date BETWEEN ${window_from} AND ${window_to}
),
ranked AS (
  SELECT
    usage_date,
    team,
    cost_usd,
    requests,
    previous_cost,
    ROW_NUMBER() OVER (PARTITION BY usage_date, team ORDER BY previous_cost ASC NULLS LAST) AS cost_rank,
    COUNT(previous_cost) OVER (PARTITION BY usage_date, team) AS observed_days
  FROM history
)
SELECT
  usage_date,
  team,
  MAX(cost_usd) AS cost_usd,
  MAX(requests) AS requests,
  CAST(MAX(observed_days) AS BIGINT) AS observed_days,
  MIN(CASE WHEN previous_cost IS NOT NULL AND 2 * cost_rank BETWEEN observed_days AND observed_days + 2
           THEN previous_cost END) AS median_low,
  MAX(CASE WHEN previous_cost IS NOT NULL AND 2 * cost_rank BETWEEN observed_days AND observed_days + 2
           THEN previous_cost END) AS median_high
FROM ranked
GROUP BY usage_date, team
