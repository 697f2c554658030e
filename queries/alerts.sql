-- alerts: one row per alert fired in the run window. Column definitions and the rules:
-- docs/OUTPUTS.md#alerts. Thresholds are SQL variables set from the job file's [alerts].
-- Comparisons use exact integer arithmetic (thresholds in millionths, *_ppm).
WITH endpoint_hours AS (
  SELECT
    endpoint_name,
    hour,
    COUNT(*) AS requests,
    SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited,
    SUM(CASE WHEN status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS server_errors
  FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY endpoint_name, hour
),
requester_hours AS (
  SELECT
    endpoint_name,
    requester,
    hour,
    COUNT(*) AS requests,
    SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
  FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY endpoint_name, requester, hour
),
requester_sources AS (
  SELECT
    endpoint_name,
    requester,
    hour,
    SUM(CASE WHEN limit_source = 'user_defined' THEN 1 ELSE 0 END) AS user_defined,
    SUM(CASE WHEN limit_source = 'workspace_or_provider' THEN 1 ELSE 0 END) AS workspace,
    COUNT(*) AS logged
  FROM payload_rate_limited
  GROUP BY endpoint_name, requester, hour
),
endpoint_sources AS (
  SELECT endpoint_name, hour, SUM(user_defined) AS user_defined, SUM(workspace) AS workspace, SUM(logged) AS logged
  FROM requester_sources
  GROUP BY endpoint_name, hour
),
rate_limited_groups AS (
  SELECT h.endpoint_name, 'endpoint' AS scope, h.endpoint_name AS scope_value, h.hour, h.requests, h.rate_limited,
         COALESCE(s.user_defined, 0) AS user_defined, COALESCE(s.workspace, 0) AS workspace, COALESCE(s.logged, 0) AS logged
  FROM endpoint_hours h
  LEFT JOIN endpoint_sources s ON s.endpoint_name = h.endpoint_name AND s.hour = h.hour
  UNION ALL
  SELECT h.endpoint_name, 'requester', h.requester, h.hour, h.requests, h.rate_limited,
         COALESCE(s.user_defined, 0), COALESCE(s.workspace, 0), COALESCE(s.logged, 0)
  FROM requester_hours h
  LEFT JOIN requester_sources s
    ON s.endpoint_name = h.endpoint_name AND s.requester = h.requester AND s.hour = h.hour
),
rate_limited_share AS (
  SELECT
    'rate_limited_share' AS rule,
    CASE WHEN rate_limited * 1000000 >= requests * ${rate_limited_critical_ppm} THEN 'critical' ELSE 'warning' END AS severity,
    endpoint_name,
    scope,
    scope_value,
    hour AS window_start,
    hour + INTERVAL '1' HOUR AS window_end,
    CAST(rate_limited AS DOUBLE) / requests AS observed,
    CASE WHEN rate_limited * 1000000 >= requests * ${rate_limited_critical_ppm}
         THEN ${rate_limited_critical} ELSE ${rate_limited_warning} END AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(requests AS BIGINT) AS requests,
    concat(
      CASE WHEN scope = 'endpoint' THEN concat('Endpoint ', endpoint_name)
           ELSE concat('Requester ', scope_value, ' on endpoint ', endpoint_name) END,
      ': ', CAST(rate_limited AS STRING), ' of ', CAST(requests AS STRING), ' requests (',
      CAST(ROUND(CAST(rate_limited AS DOUBLE) * 100 / requests, 1) AS STRING),
      '%) were rate limited (HTTP 429) in the hour from ',
      lpad(CAST(date_part('hour', hour) AS STRING), 2, '0'), ':00 UTC on ', CAST(CAST(hour AS DATE) AS STRING), '. ',
      CASE
        WHEN logged = 0 THEN
          'The payload table logged none of these 429s, so which limit refused them is unknown: compare rate_limit_recommendations with the workspace pay-per-token limits.'
        WHEN workspace = 0 THEN concat(
          'All ', CAST(logged AS STRING), ' logged 429s came from a user-defined AI Gateway rate limit on this endpoint: ',
          'apply the limit proposed in rate_limit_recommendations or ask the caller to back off.')
        WHEN user_defined = 0 THEN concat(
          'All ', CAST(logged AS STRING), ' logged 429s came from a workspace or provider limit, not from a limit set on this endpoint: ',
          'raising AI Gateway limits will not help; spread the load, ask for a higher model rate limit or use provisioned throughput.')
        ELSE concat(
          CAST(user_defined AS STRING), ' of ', CAST(logged AS STRING), ' logged 429s came from a user-defined AI Gateway limit and ',
          CAST(workspace AS STRING), ' from a workspace or provider limit.')
      END
    ) AS message
  FROM rate_limited_groups
  WHERE requests >= ${rate_limited_min_requests}
    AND rate_limited * 1000000 >= requests * ${rate_limited_warning_ppm}
),
error_rate AS (
  SELECT
    'error_rate' AS rule,
    CASE WHEN server_errors * 1000000 >= requests * ${error_rate_critical_ppm} THEN 'critical' ELSE 'warning' END AS severity,
    endpoint_name,
    'endpoint' AS scope,
    endpoint_name AS scope_value,
    hour AS window_start,
    hour + INTERVAL '1' HOUR AS window_end,
    CAST(server_errors AS DOUBLE) / requests AS observed,
    CASE WHEN server_errors * 1000000 >= requests * ${error_rate_critical_ppm}
         THEN ${error_rate_critical} ELSE ${error_rate_warning} END AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(requests AS BIGINT) AS requests,
    concat(
      'Endpoint ', endpoint_name, ': ', CAST(server_errors AS STRING), ' of ', CAST(requests AS STRING),
      ' requests (', CAST(ROUND(CAST(server_errors AS DOUBLE) * 100 / requests, 1) AS STRING),
      '%) failed with HTTP 5xx in the hour from ', lpad(CAST(date_part('hour', hour) AS STRING), 2, '0'),
      ':00 UTC on ', CAST(CAST(hour AS DATE) AS STRING),
      '. Check the health of the served model, the status of its provider and recent changes to the endpoint; hourly_errors has the trend.'
    ) AS message
  FROM endpoint_hours
  WHERE requests >= ${error_rate_min_requests}
    AND server_errors * 1000000 >= requests * ${error_rate_warning_ppm}
),
-- spend_spike: the 7 days before each window day, 0 for a day the team did not spend.
spike_history AS (
  SELECT d.usage_date, d.team, d.cost_usd, d.requests, COALESCE(h.cost_usd, CAST(0 AS DECIMAL(38, 12))) AS previous_cost
  FROM team_daily_cost d
  JOIN alert_calendar c
    ON c.evaluated_date = d.usage_date AND c.in_previous_7
  LEFT JOIN team_daily_cost h
    ON h.team = d.team AND h.usage_date = c.history_date
  WHERE d.usage_date BETWEEN ${window_from} AND ${window_to}
),
spike_ranked AS (
  SELECT usage_date, team, cost_usd, requests, previous_cost,
         ROW_NUMBER() OVER (PARTITION BY usage_date, team ORDER BY previous_cost) AS cost_rank
  FROM spike_history
),
spike_days AS (
  SELECT usage_date, team, MAX(cost_usd) AS cost_usd, MAX(requests) AS requests,
         MAX(CASE WHEN cost_rank = 4 THEN previous_cost END) AS median_cost
  FROM spike_ranked
  GROUP BY usage_date, team
),
spend_spike AS (
  SELECT
    'spend_spike' AS rule,
    CASE WHEN cost_usd * 1000000 >= median_cost * ${spend_spike_critical_ppm} THEN 'critical' ELSE 'warning' END AS severity,
    '(all)' AS endpoint_name,
    'team' AS scope,
    team AS scope_value,
    CAST(usage_date AS TIMESTAMP) AS window_start,
    CAST(usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS window_end,
    CAST(cost_usd AS DOUBLE) AS observed,
    GREATEST(
      CAST(median_cost AS DOUBLE) * CASE WHEN cost_usd * 1000000 >= median_cost * ${spend_spike_critical_ppm}
                                         THEN ${spend_spike_critical_ratio} ELSE ${spend_spike_warning_ratio} END,
      CAST(${spend_spike_min_daily_cost_micros} AS DOUBLE) / 1000000
    ) AS threshold,
    CAST(median_cost AS DOUBLE) AS baseline,
    CAST(requests AS BIGINT) AS requests,
    concat(
      'Team ', team, ' spent $', CAST(ROUND(CAST(cost_usd AS DOUBLE), 2) AS STRING), ' on ', CAST(usage_date AS STRING),
      ' against a median of $', CAST(ROUND(CAST(median_cost AS DOUBLE), 2) AS STRING),
      ' a day over the previous 7 days. daily_spend for that day shows which requesters and endpoints drove it.'
    ) AS message
  FROM spike_days
  WHERE cost_usd * 1000000 >= ${spend_spike_min_daily_cost_micros}
    AND cost_usd * 1000000 >= median_cost * ${spend_spike_warning_ppm}
),
-- budget_burn: month-to-date cost of each budgeted team on each window day.
budget_days AS (
  SELECT
    c.evaluated_date AS usage_date,
    b.team,
    b.monthly_budget_usd,
    c.days_elapsed,
    c.days_in_month,
    SUM(COALESCE(h.cost_usd, CAST(0 AS DECIMAL(38, 12)))) AS month_to_date,
    SUM(COALESCE(h.requests, 0)) AS requests
  FROM team_budgets b
  CROSS JOIN alert_calendar c
  LEFT JOIN team_daily_cost h
    ON h.team = b.team AND h.usage_date = c.history_date
  WHERE c.in_month_to_date
  GROUP BY c.evaluated_date, b.team, b.monthly_budget_usd, c.days_elapsed, c.days_in_month
),
budget_burn AS (
  SELECT
    'budget_burn' AS rule,
    CASE WHEN month_to_date > monthly_budget_usd THEN 'critical' ELSE 'warning' END AS severity,
    '(all)' AS endpoint_name,
    'team' AS scope,
    team AS scope_value,
    CAST(usage_date AS TIMESTAMP) AS window_start,
    CAST(usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS window_end,
    CASE WHEN month_to_date > monthly_budget_usd THEN CAST(month_to_date AS DOUBLE)
         ELSE CAST(month_to_date AS DOUBLE) * days_in_month / days_elapsed END AS observed,
    CASE WHEN month_to_date > monthly_budget_usd THEN CAST(monthly_budget_usd AS DOUBLE)
         ELSE CAST(monthly_budget_usd AS DOUBLE) * ${budget_warning_share} END AS threshold,
    CAST(monthly_budget_usd AS DOUBLE) AS baseline,
    CAST(requests AS BIGINT) AS requests,
    CASE
      WHEN month_to_date > monthly_budget_usd THEN concat(
        'Team ', team, ' has spent $', CAST(ROUND(CAST(month_to_date AS DOUBLE), 2) AS STRING),
        ' this month up to ', CAST(usage_date AS STRING), ', over its monthly budget of $',
        CAST(ROUND(CAST(monthly_budget_usd AS DOUBLE), 2) AS STRING), '.')
      ELSE concat(
        'Team ', team, ' is on track to spend $',
        CAST(ROUND(CAST(month_to_date AS DOUBLE) * days_in_month / days_elapsed, 2) AS STRING),
        ' this month ($', CAST(ROUND(CAST(month_to_date AS DOUBLE), 2) AS STRING), ' in the first ',
        CAST(days_elapsed AS STRING), ' days), against a monthly budget of $',
        CAST(ROUND(CAST(monthly_budget_usd AS DOUBLE), 2) AS STRING), '.')
    END AS message
  FROM budget_days
  WHERE month_to_date > monthly_budget_usd
    OR month_to_date * days_in_month * 1000000 >= monthly_budget_usd * ${budget_warning_ppm} * days_elapsed
),
-- data_quality: a check whose share of a table's rows on a day passes the threshold. Reads the
-- run's data_quality output (computed before the alerts). A check listed in
-- data_quality_thresholds (the strict built-in ones and the job file's
-- [alerts.data_quality] checks) uses its own thresholds, every other check the rule's.
data_quality_thresholded AS (
  SELECT
    q.usage_date,
    q.table_name,
    q.check_name,
    q.failed_rows,
    q.table_rows,
    q.share,
    COALESCE(t.min_rows, ${dq_min_rows}) AS min_rows,
    COALESCE(t.warning_ppm, ${dq_warning_ppm}) AS warning_ppm,
    COALESCE(t.critical_ppm, ${dq_critical_ppm}) AS critical_ppm,
    COALESCE(t.warning, ${dq_warning}) AS warning,
    COALESCE(t.critical, ${dq_critical}) AS critical
  FROM data_quality q
  LEFT JOIN data_quality_thresholds t
    ON t.check_name = concat(q.table_name, '.', q.check_name)
  WHERE q.usage_date BETWEEN ${window_from} AND ${window_to}
),
data_quality AS (
  SELECT
    'data_quality' AS rule,
    CASE WHEN failed_rows * 1000000 >= table_rows * critical_ppm THEN 'critical' ELSE 'warning' END AS severity,
    '(all)' AS endpoint_name,
    'table' AS scope,
    concat(table_name, '.', check_name) AS scope_value,
    CAST(usage_date AS TIMESTAMP) AS window_start,
    CAST(usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS window_end,
    share AS observed,
    CASE WHEN failed_rows * 1000000 >= table_rows * critical_ppm THEN critical ELSE warning END AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    table_rows AS requests,
    concat(
      CAST(failed_rows AS STRING), ' of ', CAST(table_rows AS STRING), ' ', table_name, ' rows on ', CAST(usage_date AS STRING),
      ' (', CAST(ROUND(share * 100, 1) AS STRING), '%) failed the data-quality check ', check_name,
      '; the data_quality table has the daily counts and docs/OUTPUTS.md#data_quality what the check means.'
    ) AS message
  FROM data_quality_thresholded
  WHERE table_rows >= min_rows
    AND failed_rows > 0
    AND failed_rows * 1000000 >= table_rows * warning_ppm
    AND concat(table_name, '.', check_name) NOT IN ${dq_disabled}
),
fired AS (
  SELECT * FROM rate_limited_share
  UNION ALL SELECT * FROM error_rate
  UNION ALL SELECT * FROM spend_spike
  UNION ALL SELECT * FROM budget_burn
  UNION ALL SELECT * FROM data_quality
)
SELECT
  md5(concat_ws('|', rule, endpoint_name, scope, scope_value,
                CAST(CAST(window_start AS DATE) AS STRING),
                lpad(CAST(date_part('hour', window_start) AS STRING), 2, '0'))) AS alert_id,
  rule,
  severity,
  endpoint_name,
  scope,
  scope_value,
  window_start,
  window_end,
  observed,
  threshold,
  baseline,
  requests,
  message,
  CAST(window_start AS DATE) AS usage_date
FROM fired
ORDER BY window_start, rule, endpoint_name, scope, scope_value
