-- alerts: one row per alert record of the run window: a `firing` record for each window (hour
-- or day) in which a rule's condition holds, and a `resolved` record for the first window after
-- a run of consecutive firing windows (an incident) in which it no longer holds. Column
-- definitions, the rules, the lifecycle, grouping and muting: docs/OUTPUTS.md#alerts.
-- Thresholds are SQL variables set from the job file's [alerts]. Comparisons use exact integer
-- arithmetic (thresholds in millionths, *_ppm). The previous run's last firing records come
-- from alert_history (the stored alerts of the day before the window; empty on the Spark path).
-- The new AI Gateway's rules (ai_gateway_rate_limited_share, ai_gateway_error_rate,
-- fallback_failure_share, fallback_rescue_share) read the run's ai_gateway_hourly_errors and
-- fallbacks outputs (computed before the alerts; empty without inputs.gateway_usage).
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
    ) AS message,
    CAST(rate_limited AS BIGINT) AS hits
  FROM rate_limited_groups
  WHERE requests >= ${rate_limited_min_requests}
    AND rate_limited >= ${rate_limited_min_count}
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
    ) AS message,
    CAST(server_errors AS BIGINT) AS hits
  FROM endpoint_hours
  WHERE requests >= ${error_rate_min_requests}
    AND server_errors >= ${error_rate_min_count}
    AND server_errors * 1000000 >= requests * ${error_rate_warning_ppm}
),
-- The new AI Gateway's share rules: per (service, UTC hour) of ai_gateway_hourly_errors, summed
-- over its destination models; the rows are invocations and their status the final one (after
-- any fallbacks). The same [alerts] thresholds as the serving-endpoint rules.
ai_gateway_hours AS (
  SELECT endpoint_name, hour, SUM(invocations) AS requests, SUM(http_429) AS rate_limited, SUM(http_5xx) AS server_errors
  FROM ai_gateway_hourly_errors
  GROUP BY endpoint_name, hour
),
ai_gateway_rate_limited_share AS (
  SELECT
    'ai_gateway_rate_limited_share' AS rule,
    CASE WHEN rate_limited * 1000000 >= requests * ${rate_limited_critical_ppm} THEN 'critical' ELSE 'warning' END AS severity,
    endpoint_name,
    'endpoint' AS scope,
    endpoint_name AS scope_value,
    hour AS window_start,
    hour + INTERVAL '1' HOUR AS window_end,
    CAST(rate_limited AS DOUBLE) / requests AS observed,
    CASE WHEN rate_limited * 1000000 >= requests * ${rate_limited_critical_ppm}
         THEN ${rate_limited_critical} ELSE ${rate_limited_warning} END AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(requests AS BIGINT) AS requests,
    concat(
      'AI Gateway service ', endpoint_name, ': ', CAST(rate_limited AS STRING), ' of ', CAST(requests AS STRING),
      ' invocations (', CAST(ROUND(CAST(rate_limited AS DOUBLE) * 100 / requests, 1) AS STRING),
      '%) ended rate limited (HTTP 429, after any fallbacks) in the hour from ',
      lpad(CAST(date_part('hour', hour) AS STRING), 2, '0'), ':00 UTC on ', CAST(CAST(hour AS DATE) AS STRING),
      '. fallbacks shows which destinations refused them; raise the service rate limit, add a fallback destination or ask the callers to back off.'
    ) AS message,
    CAST(rate_limited AS BIGINT) AS hits
  FROM ai_gateway_hours
  WHERE requests >= ${rate_limited_min_requests}
    AND rate_limited >= ${rate_limited_min_count}
    AND rate_limited * 1000000 >= requests * ${rate_limited_warning_ppm}
),
ai_gateway_error_rate AS (
  SELECT
    'ai_gateway_error_rate' AS rule,
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
      'AI Gateway service ', endpoint_name, ': ', CAST(server_errors AS STRING), ' of ', CAST(requests AS STRING),
      ' invocations (', CAST(ROUND(CAST(server_errors AS DOUBLE) * 100 / requests, 1) AS STRING),
      '%) failed with HTTP 5xx (after any fallbacks) in the hour from ', lpad(CAST(date_part('hour', hour) AS STRING), 2, '0'),
      ':00 UTC on ', CAST(CAST(hour AS DATE) AS STRING),
      '. Check the status of its destinations and their providers; fallbacks has each destination and ai_gateway_hourly_errors the trend.'
    ) AS message,
    CAST(server_errors AS BIGINT) AS hits
  FROM ai_gateway_hours
  WHERE requests >= ${error_rate_min_requests}
    AND server_errors >= ${error_rate_min_count}
    AND server_errors * 1000000 >= requests * ${error_rate_warning_ppm}
),
-- The fallback rules: the rows of fallbacks whose failure_alert or rescue_alert is set (the
-- [ai_gateway] thresholds, ai_gateway_settings), per (service, destination, UTC hour), scope
-- `destination`; always warnings.
fallback_failure_share AS (
  SELECT
    'fallback_failure_share' AS rule,
    'warning' AS severity,
    f.endpoint_name,
    'destination' AS scope,
    f.destination AS scope_value,
    f.hour AS window_start,
    f.hour + INTERVAL '1' HOUR AS window_end,
    f.failure_share AS observed,
    k.fallback_failure_share AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(f.attempts AS BIGINT) AS requests,
    concat(
      'AI Gateway service ', f.endpoint_name, ': ', CAST(f.failed_attempts AS STRING), ' of ', CAST(f.attempts AS STRING),
      ' attempts (', CAST(ROUND(f.failure_share * 100, 1) AS STRING), '%) at destination ', f.destination,
      ' failed in the hour from ', lpad(CAST(date_part('hour', f.hour) AS STRING), 2, '0'), ':00 UTC on ',
      CAST(CAST(f.hour AS DATE) AS STRING), ' (', CAST(f.failed_429 AS STRING), ' HTTP 429, ', CAST(f.failed_5xx AS STRING),
      ' HTTP 5xx, ', CAST(f.failed_other AS STRING), ' other). Check that destination, its provider and its limits; fallbacks has the hour.'
    ) AS message,
    CAST(f.failed_attempts AS BIGINT) AS hits
  FROM fallbacks f
  CROSS JOIN ai_gateway_settings k
  WHERE f.failure_alert
),
fallback_rescue_share AS (
  SELECT
    'fallback_rescue_share' AS rule,
    'warning' AS severity,
    f.endpoint_name,
    'destination' AS scope,
    f.destination AS scope_value,
    f.hour AS window_start,
    f.hour + INTERVAL '1' HOUR AS window_end,
    f.rescue_share AS observed,
    k.fallback_rescue_share AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(f.first_attempts AS BIGINT) AS requests,
    concat(
      'AI Gateway service ', f.endpoint_name, ': fallbacks rescued ', CAST(f.rescued AS STRING), ' of ',
      CAST(f.first_attempts AS STRING), ' invocations (', CAST(ROUND(f.rescue_share * 100, 1) AS STRING),
      '%) whose first attempt went to destination ', f.destination, ' in the hour from ',
      lpad(CAST(date_part('hour', f.hour) AS STRING), 2, '0'), ':00 UTC on ', CAST(CAST(f.hour AS DATE) AS STRING),
      ': the primary fails often enough that the fallback destinations carry its traffic. Check it, or change the traffic split.'
    ) AS message,
    CAST(f.rescued AS BIGINT) AS hits
  FROM fallbacks f
  CROSS JOIN ai_gateway_settings k
  WHERE f.rescue_alert
),
-- spend_spike: a team's cost on a window day against the median of its cost over the observed
-- days among the 7 before (team_baselines); silent with fewer than min_history_days observed.
-- The median is (median_low + median_high) / 2, compared as cost * 2 >= (low + high) * ratio.
spike_days AS (
  SELECT
    usage_date,
    team,
    cost_usd,
    requests,
    observed_days,
    CAST(median_low AS DECIMAL(37, 12)) + CAST(median_high AS DECIMAL(37, 12)) AS median_sum
  FROM team_baselines
  WHERE observed_days >= ${min_history_days}
),
spend_spike AS (
  SELECT
    'spend_spike' AS rule,
    CASE WHEN cost_usd * 2000000 >= median_sum * ${spend_spike_critical_ppm} THEN 'critical' ELSE 'warning' END AS severity,
    '(all)' AS endpoint_name,
    'team' AS scope,
    team AS scope_value,
    CAST(usage_date AS TIMESTAMP) AS window_start,
    CAST(usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS window_end,
    CAST(cost_usd AS DOUBLE) AS observed,
    GREATEST(
      CAST(median_sum AS DOUBLE) / 2 * CASE WHEN cost_usd * 2000000 >= median_sum * ${spend_spike_critical_ppm}
                                            THEN ${spend_spike_critical_ratio} ELSE ${spend_spike_warning_ratio} END,
      CAST(${spend_spike_min_daily_cost_micros} AS DOUBLE) / 1000000
    ) AS threshold,
    CAST(median_sum AS DOUBLE) / 2 AS baseline,
    CAST(requests AS BIGINT) AS requests,
    concat(
      'Team ', team, ' spent $', CAST(ROUND(CAST(cost_usd AS DOUBLE), 2) AS STRING), ' on ', CAST(usage_date AS STRING),
      ' against a median of $', CAST(ROUND(CAST(median_sum AS DOUBLE) / 2, 2) AS STRING),
      CASE WHEN observed_days = 7 THEN ' a day over the previous 7 days'
           ELSE concat(' a day over the ', CAST(observed_days AS STRING), ' days of the previous 7 the gateway was logging') END,
      '. daily_spend for that day shows which requesters and endpoints drove it.'
    ) AS message,
    CAST(NULL AS BIGINT) AS hits
  FROM spike_days
  WHERE cost_usd * 1000000 >= ${spend_spike_min_daily_cost_micros}
    AND cost_usd * 2000000 >= median_sum * ${spend_spike_warning_ppm}
),
-- budget_burn: month-to-date cost of each budgeted team on each window day
-- (budget_month_to_date) and its forecast month total (spend_forecast: day-of-week seasonal with
-- a damped trend, or the linear projection when history is short); the forecast needs
-- min_history_days observed days of the month, the month-to-date total over the budget fires
-- regardless.
budget_forecast AS (
  SELECT
    b.*,
    f.method,
    f.history_days,
    COALESCE(f.forecast_usd, CAST(0 AS DECIMAL(38, 6))) AS forecast_usd,
    COALESCE(f.forecast_low_usd, CAST(0 AS DECIMAL(38, 6))) AS forecast_low_usd,
    COALESCE(f.forecast_high_usd, CAST(0 AS DECIMAL(38, 6))) AS forecast_high_usd
  FROM budget_month_to_date b
  LEFT JOIN spend_forecast f ON f.usage_date = b.usage_date AND f.scope = 'team' AND f.scope_value = b.team
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
         ELSE CAST(forecast_usd AS DOUBLE) END AS observed,
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
        CAST(ROUND(CAST(forecast_usd AS DOUBLE), 2) AS STRING), ' this month (',
        CASE WHEN method = 'seasonal_trend'
             THEN 'forecast by weekday pattern and damped trend over the last 28 days'
             ELSE concat('linear projection: ', CAST(history_days AS STRING),
                         ' days of history, the weekday forecast needs 28 logged days with the team spending from the first week')
        END,
        '; 90% prediction interval $', CAST(ROUND(CAST(forecast_low_usd AS DOUBLE), 2) AS STRING),
        ' to $', CAST(ROUND(CAST(forecast_high_usd AS DOUBLE), 2) AS STRING),
        '; $', CAST(ROUND(CAST(month_to_date AS DOUBLE), 2) AS STRING), ' spent over the ',
        CAST(observed_days AS STRING), ' days of the first ', CAST(days_elapsed AS STRING),
        ' the gateway was logging), against a monthly budget of $',
        CAST(ROUND(CAST(monthly_budget_usd AS DOUBLE), 2) AS STRING), '. spend_forecast has the forecast.')
    END AS message,
    CAST(NULL AS BIGINT) AS hits
  FROM budget_forecast
  WHERE month_to_date > monthly_budget_usd
    OR (observed_days >= ${min_history_days}
        AND forecast_usd * 1000000 >= monthly_budget_usd * ${budget_warning_ppm})
),
-- logging_gap: a window day without a usage row (not observed) after at least one observed day
-- among the 7 before: the gateway, or the copy of its tables, stopped logging.
daily_rows AS (
  SELECT usage_date, SUM(requests) AS requests
  FROM team_daily_cost
  GROUP BY usage_date
),
gap_history AS (
  SELECT c.evaluated_date AS usage_date, COUNT(*) AS logged_days, SUM(r.requests) AS requests
  FROM alert_calendar c
  JOIN daily_rows r ON r.usage_date = c.history_date
  WHERE c.in_previous_7
  GROUP BY c.evaluated_date
),
logging_gap AS (
  SELECT
    'logging_gap' AS rule,
    'warning' AS severity,
    '(all)' AS endpoint_name,
    'table' AS scope,
    'usage' AS scope_value,
    CAST(g.usage_date AS TIMESTAMP) AS window_start,
    CAST(g.usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS window_end,
    CAST(0 AS DOUBLE) AS observed,
    CAST(0 AS DOUBLE) AS threshold,
    CAST(g.requests AS DOUBLE) / g.logged_days AS baseline,
    CAST(0 AS BIGINT) AS requests,
    concat(
      'No usage rows on ', CAST(g.usage_date AS STRING), ', after ', CAST(g.logged_days AS STRING),
      ' logged days among the 7 before (', CAST(CAST(ROUND(CAST(g.requests AS DOUBLE) / g.logged_days, 0) AS BIGINT) AS STRING),
      ' rows a day on average): the gateway or the copy of its tables stopped logging. Check the copy job, the',
      ' job inputs and the usage tracking of the endpoints; rows that land later make the next run recompute the day.'
    ) AS message,
    CAST(NULL AS BIGINT) AS hits
  FROM gap_history g
  LEFT JOIN observed_days o ON o.usage_date = g.usage_date
  WHERE o.usage_date IS NULL
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
    ) AS message,
    CAST(failed_rows AS BIGINT) AS hits
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
  UNION ALL SELECT * FROM logging_gap
  UNION ALL SELECT * FROM ai_gateway_rate_limited_share
  UNION ALL SELECT * FROM ai_gateway_error_rate
  UNION ALL SELECT * FROM fallback_failure_share
  UNION ALL SELECT * FROM fallback_rescue_share
),
fired_ids AS (
  SELECT
    md5(concat_ws('|', rule, endpoint_name, scope, scope_value,
                  CAST(CAST(window_start AS DATE) AS STRING),
                  lpad(CAST(date_part('hour', window_start) AS STRING), 2, '0'))) AS alert_id,
    f.*
  FROM fired f
),
-- Grouping: a requester-scope record is grouped under the endpoint-scope record of the same
-- rule, endpoint and hour when that fired too; the endpoint record names the top requesters.
-- (Window functions rather than self-joins: each CTE is read once, so the rules run once.)
grouping AS (
  SELECT
    f.*,
    MAX(CASE WHEN scope = 'endpoint' THEN alert_id END)
      OVER (PARTITION BY rule, endpoint_name, window_start) AS endpoint_alert_id,
    SUM(CASE WHEN scope = 'requester' THEN 1 ELSE 0 END)
      OVER (PARTITION BY rule, endpoint_name, window_start) AS members,
    CAST(ROW_NUMBER() OVER (PARTITION BY rule, endpoint_name, window_start, scope ORDER BY hits DESC, scope_value) AS BIGINT)
      AS position
  FROM fired_ids f
),
grouped AS (
  SELECT
    g.*,
    CASE WHEN scope = 'requester' THEN endpoint_alert_id END AS grouped_under,
    MAX(CASE WHEN scope = 'requester' AND position = 1 THEN concat(scope_value, ' (', CAST(hits AS STRING), ' 429s)') END)
      OVER (PARTITION BY rule, endpoint_name, window_start) AS top_1,
    MAX(CASE WHEN scope = 'requester' AND position = 2 THEN concat(scope_value, ' (', CAST(hits AS STRING), ' 429s)') END)
      OVER (PARTITION BY rule, endpoint_name, window_start) AS top_2,
    MAX(CASE WHEN scope = 'requester' AND position = 3 THEN concat(scope_value, ' (', CAST(hits AS STRING), ' 429s)') END)
      OVER (PARTITION BY rule, endpoint_name, window_start) AS top_3
  FROM grouping g
),
-- Muting: [alerts] mute entries (alert_mutes) silence the matching records up to their date.
-- A record several entries match appears once per entry here; mute_rank keeps one.
muting AS (
  SELECT
    g.*,
    MAX(CASE WHEN m.rule IS NULL THEN 0 ELSE 1 END) OVER (PARTITION BY g.alert_id) AS muted_flag,
    ROW_NUMBER() OVER (PARTITION BY g.alert_id ORDER BY m.until) AS mute_rank
  FROM grouped g
  LEFT JOIN alert_mutes m
    ON m.rule = g.rule
   AND (m.endpoint_name IS NULL OR m.endpoint_name = g.endpoint_name)
   AND (m.scope_value IS NULL OR m.scope_value = g.scope_value)
   AND CAST(g.window_start AS DATE) <= m.until
),
-- Lifecycle: the previous window's firing records (alert_history) and this window's, per
-- condition (rule, endpoint, scope, scope value) in window order. A record whose window starts
-- where the previous firing record's ends continues its incident; incident_id is the alert_id
-- of the incident's first record (carried over from the stored record). An incident pages (a
-- `trigger`) at its first record that is neither grouped nor muted.
chain AS (
  SELECT
    alert_id, rule, severity, endpoint_name, scope, scope_value,
    CAST(window_start AS TIMESTAMP) AS window_start,
    CAST(window_end AS TIMESTAMP) AS window_end,
    CAST(NULL AS DOUBLE) AS observed,
    CAST(NULL AS DOUBLE) AS threshold,
    CAST(NULL AS DOUBLE) AS baseline,
    CAST(NULL AS BIGINT) AS requests,
    CAST(NULL AS STRING) AS message,
    CAST(NULL AS STRING) AS grouped_under,
    CAST(NULL AS STRING) AS top_requesters,
    false AS muted,
    incident_id AS carried_incident,
    CAST(incident_start AS TIMESTAMP) AS carried_start,
    CASE WHEN paged THEN 1 ELSE 0 END AS pages,
    true AS carried
  FROM alert_history
  WHERE status = 'firing' AND window_end = ${window_start}
  UNION ALL
  SELECT
    alert_id, rule, severity, endpoint_name, scope, scope_value,
    CAST(window_start AS TIMESTAMP),
    CAST(window_end AS TIMESTAMP),
    observed,
    threshold,
    baseline,
    requests,
    CASE WHEN scope = 'endpoint' AND members > 0
         THEN concat(message, ' Requesters alerted in this hour too, grouped under this alert: ',
                     concat_ws(', ', top_1, top_2, top_3),
                     CASE WHEN members > 3 THEN concat(' and ', CAST(members - 3 AS STRING), ' more') ELSE '' END, '.')
         ELSE message END,
    grouped_under,
    CASE WHEN scope = 'endpoint' AND members > 0
         THEN concat(concat_ws(', ', top_1, top_2, top_3),
                     CASE WHEN members > 3 THEN concat(' and ', CAST(members - 3 AS STRING), ' more') ELSE '' END)
    END,
    muted_flag = 1,
    CAST(NULL AS STRING),
    CAST(NULL AS TIMESTAMP),
    CASE WHEN grouped_under IS NULL AND muted_flag = 0 THEN 1 ELSE 0 END,
    false
  FROM muting
  WHERE mute_rank = 1
),
chain_marked AS (
  SELECT
    c.*,
    CASE WHEN LAG(window_end) OVER (PARTITION BY rule, endpoint_name, scope, scope_value ORDER BY window_start) = window_start
         THEN 0 ELSE 1 END AS starts_incident,
    LEAD(window_start) OVER (PARTITION BY rule, endpoint_name, scope, scope_value ORDER BY window_start) AS next_start
  FROM chain c
),
chain_streaks AS (
  SELECT
    m.*,
    SUM(starts_incident) OVER (PARTITION BY rule, endpoint_name, scope, scope_value ORDER BY window_start
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS streak
  FROM chain_marked m
),
incidents AS (
  SELECT
    s.*,
    FIRST_VALUE(COALESCE(carried_incident, alert_id)) OVER (
      PARTITION BY rule, endpoint_name, scope, scope_value, streak ORDER BY window_start
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS incident_id,
    FIRST_VALUE(COALESCE(carried_start, window_start)) OVER (
      PARTITION BY rule, endpoint_name, scope, scope_value, streak ORDER BY window_start
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS incident_start,
    MAX(pages) OVER (
      PARTITION BY rule, endpoint_name, scope, scope_value, streak ORDER BY window_start
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS paged_so_far,
    MAX(pages) OVER (
      PARTITION BY rule, endpoint_name, scope, scope_value, streak ORDER BY window_start
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS paged_before
  FROM chain_streaks s
),
-- Each incident row gives its firing record (this window's rows) and, after the incident's
-- last firing record, a resolved record for the next window when that lies in the run window.
kinds AS (
  SELECT 'firing' AS status
  UNION ALL
  SELECT 'resolved' AS status
),
records_raw AS (
  SELECT
    i.*,
    k.status,
    CASE WHEN k.status = 'firing' THEN i.window_start ELSE i.window_end END AS record_start,
    CASE WHEN k.status = 'firing' THEN i.window_end
         WHEN i.rule IN ('rate_limited_share', 'error_rate', 'ai_gateway_rate_limited_share', 'ai_gateway_error_rate',
                         'fallback_failure_share', 'fallback_rescue_share') THEN i.window_end + INTERVAL '1' HOUR
         ELSE i.window_end + INTERVAL '1' DAY END AS record_end
  FROM incidents i
  CROSS JOIN kinds k
  WHERE (k.status = 'firing' AND NOT i.carried)
     OR (k.status = 'resolved' AND (i.next_start IS NULL OR i.next_start <> i.window_end)
         AND i.window_end >= ${window_start} AND i.window_end < ${window_end})
),
records_muted AS (
  SELECT
    r.*,
    MAX(CASE WHEN m.rule IS NULL THEN 0 ELSE 1 END)
      OVER (PARTITION BY r.rule, r.endpoint_name, r.scope, r.scope_value, r.record_start) AS resolved_muted,
    ROW_NUMBER() OVER (PARTITION BY r.rule, r.endpoint_name, r.scope, r.scope_value, r.record_start ORDER BY m.until)
      AS mute_rank
  FROM records_raw r
  LEFT JOIN alert_mutes m
    ON r.status = 'resolved'
   AND m.rule = r.rule
   AND (m.endpoint_name IS NULL OR m.endpoint_name = r.endpoint_name)
   AND (m.scope_value IS NULL OR m.scope_value = r.scope_value)
   AND CAST(r.record_start AS DATE) <= m.until
)
SELECT
  CASE WHEN status = 'firing' THEN alert_id
       ELSE md5(concat_ws('|', rule, endpoint_name, scope, scope_value,
                          CAST(CAST(record_start AS DATE) AS STRING),
                          lpad(CAST(date_part('hour', record_start) AS STRING), 2, '0'), 'resolved')) END AS alert_id,
  rule,
  severity,
  endpoint_name,
  scope,
  scope_value,
  record_start AS window_start,
  record_end AS window_end,
  CASE WHEN status = 'firing' THEN observed END AS observed,
  CASE WHEN status = 'firing' THEN threshold END AS threshold,
  CASE WHEN status = 'firing' THEN baseline END AS baseline,
  CASE WHEN status = 'firing' THEN requests END AS requests,
  CASE WHEN status = 'firing' THEN message
       ELSE concat(
         'Resolved: ',
         CASE rule
           WHEN 'rate_limited_share' THEN concat('the rate-limited share of ',
             CASE WHEN scope = 'requester' THEN concat('requester ', scope_value, ' on endpoint ', endpoint_name)
                  ELSE concat('endpoint ', endpoint_name) END)
           WHEN 'error_rate' THEN concat('the HTTP 5xx rate of endpoint ', endpoint_name)
           WHEN 'ai_gateway_rate_limited_share' THEN concat('the rate-limited share of AI Gateway service ', endpoint_name)
           WHEN 'ai_gateway_error_rate' THEN concat('the HTTP 5xx rate of AI Gateway service ', endpoint_name)
           WHEN 'fallback_failure_share' THEN concat('the failure share of destination ', scope_value, ' of AI Gateway service ', endpoint_name)
           WHEN 'fallback_rescue_share' THEN concat('the rescue share of destination ', scope_value, ' of AI Gateway service ', endpoint_name)
           WHEN 'spend_spike' THEN concat('the spend spike of team ', scope_value)
           WHEN 'budget_burn' THEN concat('the budget burn of team ', scope_value)
           WHEN 'data_quality' THEN concat('the data-quality check ', scope_value)
           ELSE concat('the logging gap of the ', scope_value, ' rows')
         END,
         ' no longer fires ',
         CASE WHEN rule IN ('rate_limited_share', 'error_rate', 'ai_gateway_rate_limited_share', 'ai_gateway_error_rate',
                           'fallback_failure_share', 'fallback_rescue_share') THEN concat(
                'in the hour from ', lpad(CAST(date_part('hour', record_start) AS STRING), 2, '0'), ':00 UTC on ',
                CAST(CAST(record_start AS DATE) AS STRING), ' (firing since ',
                lpad(CAST(date_part('hour', incident_start) AS STRING), 2, '0'), ':00 UTC on ',
                CAST(CAST(incident_start AS DATE) AS STRING), ').')
              ELSE concat('on ', CAST(CAST(record_start AS DATE) AS STRING), ' (firing since ',
                CAST(CAST(incident_start AS DATE) AS STRING), ').')
         END)
  END AS message,
  status,
  incident_id,
  incident_start,
  CASE WHEN status = 'firing' THEN grouped_under END AS grouped_under,
  CASE WHEN status = 'firing' THEN top_requesters END AS top_requesters,
  CASE WHEN status = 'firing' THEN muted ELSE resolved_muted = 1 END AS muted,
  paged_so_far = 1 AS paged,
  CASE WHEN status = 'firing' AND pages = 1 AND COALESCE(paged_before, 0) = 0 THEN 'trigger'
       WHEN status = 'resolved' AND paged_so_far = 1 THEN 'resolve' END AS notify,
  CAST(record_start AS DATE) AS usage_date
FROM records_muted
WHERE mute_rank = 1
ORDER BY window_start, rule, endpoint_name, scope, scope_value, status
