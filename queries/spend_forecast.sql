-- spend_forecast: one row per (usage_date, scope, scope_value) for each window day and each team
-- (scope 'team') and endpoint (scope 'endpoint') with a usage row in its month up to that day:
-- the month to date (exact, the sum of daily_spend's cost_usd) and a forecast of the month's
-- total made on that day, with a 90% prediction interval and the linear projection beside it.
-- Column definitions, the method and its backtest: docs/OUTPUTS.md#spend_forecast.
--
-- The method (seasonal_trend, chosen by tests/integration/forecast_backtest.rs): over the
-- ${forecast_history_days} days ending with usage_date, each weekday's factor is its cost over
-- the mean (7 x weekday cost / total); a least-squares line through the last 14 days divided by
-- their factors (weekdays with factor 0 left out) is continued at half its slope from usage_date,
-- floored at 0, and each remaining day of the month is that line times its weekday's factor.
-- It needs every one of the days observed (observed_days) and the scope's first usage row among
-- them in their first week (history_days >= ${forecast_seasonal_min_days}); otherwise the method
-- is linear: month to date / observed days of the month x days in the month (budget_burn's
-- earlier projection). forecast_calendar and forecast_intervals are made in src/forecast.rs.
--
-- Reruns give identical rows: every sum over rows is of exact decimals (a floating-point
-- term is cast to DECIMAL(38,12) before it is summed, so no sum depends on the order rows
-- arrive in); the floating-point steps work on those sums in a fixed order.
WITH scope_daily AS (
  SELECT 'team' AS scope, team AS scope_value, usage_date, cost_usd FROM team_daily_cost
  UNION ALL
  SELECT 'endpoint' AS scope, endpoint_name AS scope_value, usage_date, cost_usd FROM endpoint_daily_cost
),
scopes AS (
  SELECT DISTINCT c.as_of_date, d.scope, d.scope_value
  FROM forecast_calendar c
  JOIN scope_daily d ON d.usage_date = c.history_date
  WHERE c.in_month_to_date
),
days AS (
  SELECT
    s.as_of_date,
    s.scope,
    s.scope_value,
    c.day_offset,
    c.weekday,
    c.in_month_to_date,
    c.in_history,
    c.days_elapsed,
    c.days_in_month,
    CASE WHEN o.usage_date IS NULL THEN 0 ELSE 1 END AS observed,
    COALESCE(d.cost_usd, CAST(0 AS DECIMAL(38, 12))) AS cost_usd,
    MIN(CASE WHEN c.in_history AND d.usage_date IS NOT NULL THEN c.day_offset END)
      OVER (PARTITION BY s.as_of_date, s.scope, s.scope_value) AS first_offset
  FROM scopes s
  JOIN forecast_calendar c ON c.as_of_date = s.as_of_date AND (c.in_month_to_date OR c.in_history)
  LEFT JOIN observed_days o ON o.usage_date = c.history_date
  LEFT JOIN scope_daily d ON d.scope = s.scope AND d.scope_value = s.scope_value AND d.usage_date = c.history_date
),
summary AS (
  SELECT
    as_of_date,
    scope,
    scope_value,
    MAX(days_elapsed) AS days_elapsed,
    MAX(days_in_month) AS days_in_month,
    SUM(CASE WHEN in_month_to_date THEN cost_usd ELSE CAST(0 AS DECIMAL(38, 12)) END) AS month_to_date,
    SUM(CASE WHEN in_month_to_date THEN observed ELSE 0 END) AS observed_days,
    SUM(CASE WHEN in_history THEN observed ELSE 0 END) AS logged_history_days,
    SUM(CASE WHEN in_history AND day_offset >= first_offset THEN observed ELSE 0 END) AS history_days,
    SUM(CASE WHEN in_history THEN cost_usd ELSE CAST(0 AS DECIMAL(38, 12)) END) AS history_cost
  FROM days
  GROUP BY as_of_date, scope, scope_value
),
weekdays AS (
  SELECT
    as_of_date,
    scope,
    scope_value,
    weekday,
    SUM(cost_usd) AS weekday_cost,
    SUM(CASE WHEN day_offset >= -6 THEN cost_usd ELSE CAST(0 AS DECIMAL(38, 12)) END) AS recent_cost,
    SUM(CASE WHEN day_offset BETWEEN -13 AND -7 THEN cost_usd ELSE CAST(0 AS DECIMAL(38, 12)) END) AS older_cost,
    MAX(CASE WHEN day_offset >= -6 THEN day_offset END) AS recent_offset
  FROM days
  WHERE in_history
  GROUP BY as_of_date, scope, scope_value, weekday
),
factors AS (
  SELECT
    w.as_of_date,
    w.scope,
    w.scope_value,
    w.weekday,
    w.recent_cost,
    w.older_cost,
    w.recent_offset,
    CASE WHEN w.weekday_cost > 0
         THEN CAST(w.weekday_cost AS DOUBLE) * 7 / CAST(s.history_cost AS DOUBLE)
         ELSE CAST(0 AS DOUBLE) END AS factor
  FROM weekdays w
  JOIN summary s ON s.as_of_date = w.as_of_date AND s.scope = w.scope AND s.scope_value = w.scope_value
),
-- Least-squares sums over the last 14 days (x = day_offset, -13..0; y = cost / factor): each
-- weekday holds two of them, x = recent_offset and recent_offset - 7.
fit_sums AS (
  SELECT
    as_of_date,
    scope,
    scope_value,
    SUM(CASE WHEN factor > 0 THEN 2 ELSE 0 END) AS n,
    SUM(CASE WHEN factor > 0 THEN 2 * recent_offset - 7 ELSE 0 END) AS sum_x,
    SUM(CASE WHEN factor > 0 THEN recent_offset * recent_offset + (recent_offset - 7) * (recent_offset - 7) ELSE 0 END)
      AS sum_xx,
    SUM(CASE WHEN factor > 0 THEN CAST(CAST(recent_cost + older_cost AS DOUBLE) / factor AS DECIMAL(38, 12))
             ELSE CAST(0 AS DECIMAL(38, 12)) END) AS sum_y,
    SUM(CASE WHEN factor > 0
             THEN CAST((CAST(recent_cost AS DOUBLE) * recent_offset + CAST(older_cost AS DOUBLE) * (recent_offset - 7))
                       / factor AS DECIMAL(38, 12))
             ELSE CAST(0 AS DECIMAL(38, 12)) END) AS sum_xy
  FROM factors
  GROUP BY as_of_date, scope, scope_value
),
fit AS (
  SELECT
    as_of_date,
    scope,
    scope_value,
    CASE WHEN n > 0 AND n * sum_xx - sum_x * sum_x > 0
         THEN (n * CAST(sum_xy AS DOUBLE) - sum_x * CAST(sum_y AS DOUBLE)) / CAST(n * sum_xx - sum_x * sum_x AS DOUBLE)
         ELSE CAST(0 AS DOUBLE) END AS slope,
    CASE WHEN n > 0 THEN CAST(sum_y AS DOUBLE) / n ELSE CAST(0 AS DOUBLE) END AS mean_y,
    CASE WHEN n > 0 THEN CAST(sum_x AS DOUBLE) / n ELSE CAST(0 AS DOUBLE) END AS mean_x
  FROM fit_sums
),
-- The remaining days of the month: the line at usage_date (offset 0) continued at half its slope.
rest_of_month AS (
  SELECT
    t.as_of_date,
    t.scope,
    t.scope_value,
    SUM(CAST(CASE WHEN t.mean_y - t.slope * t.mean_x + 0.5 * t.slope * c.day_offset > 0
                  THEN (t.mean_y - t.slope * t.mean_x + 0.5 * t.slope * c.day_offset) * w.factor
                  ELSE CAST(0 AS DOUBLE) END AS DECIMAL(38, 12))) AS remaining
  FROM fit t
  JOIN forecast_calendar c ON c.as_of_date = t.as_of_date AND c.in_rest_of_month
  JOIN factors w
    ON w.as_of_date = t.as_of_date AND w.scope = t.scope AND w.scope_value = t.scope_value AND w.weekday = c.weekday
  GROUP BY t.as_of_date, t.scope, t.scope_value
),
forecasts AS (
  SELECT
    s.*,
    CASE WHEN s.logged_history_days = ${forecast_history_days} AND s.history_days >= ${forecast_seasonal_min_days}
         THEN 'seasonal_trend' ELSE 'linear' END AS method,
    s.days_in_month - s.days_elapsed AS days_left,
    CASE WHEN s.observed_days > 0
         THEN CAST(CAST(s.month_to_date AS DOUBLE) * s.days_in_month / s.observed_days AS DECIMAL(38, 6))
         ELSE CAST(s.month_to_date AS DECIMAL(38, 6)) END AS linear_usd,
    CAST(s.month_to_date + COALESCE(r.remaining, CAST(0 AS DECIMAL(38, 12))) AS DECIMAL(38, 6)) AS seasonal_usd
  FROM summary s
  LEFT JOIN rest_of_month r ON r.as_of_date = s.as_of_date AND r.scope = s.scope AND r.scope_value = s.scope_value
),
chosen AS (
  SELECT
    f.*,
    CASE WHEN f.method = 'seasonal_trend' THEN f.seasonal_usd ELSE f.linear_usd END AS forecast_usd
  FROM forecasts f
)
SELECT
  c.as_of_date AS usage_date,
  CAST(date_trunc('month', CAST(c.as_of_date AS TIMESTAMP)) AS DATE) AS month,
  c.scope,
  c.scope_value,
  CAST(c.days_elapsed AS INT) AS days_elapsed,
  CAST(c.days_in_month AS INT) AS days_in_month,
  CAST(c.observed_days AS BIGINT) AS observed_days,
  c.month_to_date AS month_to_date_usd,
  CAST(c.history_days AS BIGINT) AS history_days,
  CAST(c.logged_history_days AS BIGINT) AS logged_history_days,
  c.method,
  c.forecast_usd,
  CASE WHEN i.method IS NULL THEN c.forecast_usd
       WHEN CAST(c.forecast_usd AS DOUBLE) * i.lower_ratio > CAST(c.month_to_date AS DOUBLE)
       THEN CAST(CAST(c.forecast_usd AS DOUBLE) * i.lower_ratio AS DECIMAL(38, 6))
       ELSE CAST(c.month_to_date AS DECIMAL(38, 6)) END AS forecast_low_usd,
  CASE WHEN i.method IS NULL THEN c.forecast_usd
       ELSE CAST(CAST(c.forecast_usd AS DOUBLE) * i.upper_ratio AS DECIMAL(38, 6)) END AS forecast_high_usd,
  c.linear_usd
FROM chosen c
LEFT JOIN forecast_intervals i
  ON i.method = c.method AND c.days_left BETWEEN i.days_left_from AND i.days_left_to
ORDER BY usage_date, scope, scope_value
