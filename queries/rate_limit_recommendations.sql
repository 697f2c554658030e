-- rate_limit_recommendations: one row per (endpoint_name, requester) with traffic in the
-- lookback, plus one row per endpoint for its endpoint-wide limit (requester '(endpoint)').
-- Column definitions: docs/OUTPUTS.md#rate_limit_recommendations. Knobs come from the job
-- file's [recommendations] as SQL variables.
-- d(m): calls (any status, 429s included: they are demand) per UTC minute of the lookback.
WITH minute_demand AS (
  SELECT endpoint_name, requester, minute, calls, tokens, rate_limited
  FROM per_minute_demand
  WHERE minute >= ${lookback_start}
),
-- Each (endpoint, requester)'s totals. Names are never NULL here: usage_costed fills in
-- '(unknown)'.
totals AS (
  SELECT
    endpoint_name,
    requester,
    COUNT(*) AS active_minutes,
    SUM(calls) AS calls,
    SUM(rate_limited) AS rate_limited,
    MAX(calls) AS peak_calls_per_minute,
    MAX(tokens) AS peak_tokens_per_minute
  FROM minute_demand
  GROUP BY endpoint_name, requester
),
-- Nearest rank: the q-quantile is the ceil(q * n)-th smallest value over the n active minutes,
-- that is the smallest value whose count of minutes at or below it reaches q * n. Minutes with
-- equal values (per measure: calls, tokens) are counted together first, so the window sorts
-- distinct values, not minutes.
-- (Totals by a grouping joined back, the small side first, rather than a window over a whole
-- group: DataFusion computes such a window by holding all its input in memory, outside the
-- memory budget.)
points AS (
  SELECT endpoint_name, requester, 'calls' AS measure, calls AS value, COUNT(*) AS minutes
  FROM minute_demand
  GROUP BY endpoint_name, requester, calls
  UNION ALL
  SELECT endpoint_name, requester, 'tokens' AS measure, tokens AS value, COUNT(*) AS minutes
  FROM minute_demand
  GROUP BY endpoint_name, requester, tokens
),
cumulative AS (
  SELECT t.endpoint_name, t.requester, t.active_minutes, p.measure, p.value,
         SUM(p.minutes) OVER (
           PARTITION BY p.endpoint_name, p.requester, p.measure
           ORDER BY p.value
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
         ) AS minutes_at_or_below
  FROM totals t
  JOIN points p ON p.endpoint_name = t.endpoint_name AND p.requester = t.requester
),
quantiles AS (
  SELECT
    endpoint_name,
    requester,
    MIN(CASE WHEN measure = 'calls' AND minutes_at_or_below * 100 >= active_minutes * 50 THEN value END)
      AS p50_calls_per_minute,
    MIN(CASE WHEN measure = 'calls' AND minutes_at_or_below * 100 >= active_minutes * 95 THEN value END)
      AS p95_calls_per_minute,
    MIN(CASE WHEN measure = 'calls' AND minutes_at_or_below * 100 >= active_minutes * 99 THEN value END)
      AS p99_calls_per_minute,
    MIN(CASE WHEN measure = 'tokens' AND minutes_at_or_below * 100 >= active_minutes * 99 THEN value END)
      AS p99_tokens_per_minute
  FROM cumulative
  GROUP BY endpoint_name, requester
),
demand AS (
  SELECT
    t.endpoint_name,
    t.requester,
    t.active_minutes,
    t.calls,
    t.rate_limited,
    q.p50_calls_per_minute,
    q.p95_calls_per_minute,
    q.p99_calls_per_minute,
    t.peak_calls_per_minute,
    q.p99_tokens_per_minute,
    t.peak_tokens_per_minute
  FROM totals t
  JOIN quantiles q ON q.endpoint_name = t.endpoint_name AND q.requester = t.requester
),
own_rules AS (
  SELECT endpoint_name, principal, MAX(calls) AS calls, MAX(tokens) AS tokens
  FROM rate_limit_rules
  WHERE key IN ('user', 'service_principal') AND principal IS NOT NULL
  GROUP BY endpoint_name, principal
),
shared_rules AS (
  SELECT endpoint_name,
         MAX(CASE WHEN key = 'user' AND principal IS NULL THEN calls END) AS default_user_calls,
         MAX(CASE WHEN key = 'user' AND principal IS NULL THEN tokens END) AS default_user_tokens,
         MAX(CASE WHEN key = 'endpoint' THEN calls END) AS endpoint_calls,
         MAX(CASE WHEN key = 'endpoint' THEN tokens END) AS endpoint_tokens
  FROM rate_limit_rules
  GROUP BY endpoint_name
),
-- The limit that applies: the principal's own rule, else the endpoint's default user rule
-- (per dimension); the endpoint rule for the '(endpoint)' row.
limits AS (
  SELECT
    d.*,
    CASE
      WHEN d.requester = '(endpoint)' THEN s.endpoint_calls
      ELSE COALESCE(o.calls, s.default_user_calls)
    END AS current_calls_per_minute,
    CASE
      WHEN d.requester = '(endpoint)' THEN CASE WHEN s.endpoint_calls IS NOT NULL THEN 'endpoint' END
      WHEN o.calls IS NOT NULL THEN 'principal'
      WHEN s.default_user_calls IS NOT NULL THEN 'default_user'
    END AS current_calls_rule,
    CASE
      WHEN d.requester = '(endpoint)' THEN s.endpoint_tokens
      ELSE COALESCE(o.tokens, s.default_user_tokens)
    END AS current_tokens_per_minute,
    CASE
      WHEN d.requester = '(endpoint)' THEN CASE WHEN s.endpoint_tokens IS NOT NULL THEN 'endpoint' END
      WHEN o.tokens IS NOT NULL THEN 'principal'
      WHEN s.default_user_tokens IS NOT NULL THEN 'default_user'
    END AS current_tokens_rule,
    -- max(1, ceil(p99 * headroom)), in integers: headroom is in millionths.
    GREATEST(CAST(1 AS BIGINT), CAST(FLOOR((d.p99_calls_per_minute * ${headroom_ppm} + 999999) / 1000000) AS BIGINT))
      AS recommended_calls_per_minute
  FROM demand d
  LEFT JOIN own_rules o
    ON o.endpoint_name = d.endpoint_name AND o.principal = d.requester AND d.requester <> '(endpoint)'
  LEFT JOIN shared_rules s
    ON s.endpoint_name = d.endpoint_name
),
recommended AS (
  SELECT
    l.*,
    CASE WHEN l.current_tokens_per_minute IS NOT NULL THEN
      GREATEST(CAST(1 AS BIGINT), CAST(FLOOR((l.p99_tokens_per_minute * ${headroom_ppm} + 999999) / 1000000) AS BIGINT))
    END AS recommended_tokens_per_minute
  FROM limits l
),
-- sum over minutes of max(0, d(m) - limit): calls each limit would have refused.
throttling AS (
  SELECT
    m.endpoint_name,
    m.requester,
    SUM(CASE WHEN r.current_calls_per_minute IS NOT NULL AND m.calls > r.current_calls_per_minute
             THEN m.calls - r.current_calls_per_minute ELSE 0 END) AS throttled_under_current,
    SUM(CASE WHEN m.calls > r.recommended_calls_per_minute
             THEN m.calls - r.recommended_calls_per_minute ELSE 0 END) AS throttled_under_recommended
  FROM minute_demand m
  JOIN recommended r
    ON r.endpoint_name = m.endpoint_name AND r.requester = m.requester
  GROUP BY m.endpoint_name, m.requester
),
decided AS (
  SELECT
    r.*,
    t.throttled_under_current,
    t.throttled_under_recommended,
    CASE
      WHEN r.rate_limited > 0 AND r.current_calls_per_minute < r.recommended_calls_per_minute THEN 'raise'
      WHEN r.current_calls_per_minute * 1000000 > r.peak_calls_per_minute * ${lower_factor_ppm} THEN 'lower'
      WHEN r.current_calls_per_minute IS NULL THEN 'add'
      ELSE 'keep'
    END AS action,
    CASE
      WHEN r.current_tokens_per_minute IS NULL THEN CAST(NULL AS STRING)
      WHEN r.rate_limited > 0 AND r.current_tokens_per_minute < r.recommended_tokens_per_minute THEN 'raise'
      WHEN r.current_tokens_per_minute * 1000000 > r.peak_tokens_per_minute * ${lower_factor_ppm} THEN 'lower'
      ELSE 'keep'
    END AS tokens_action
  FROM recommended r
  JOIN throttling t
    ON t.endpoint_name = r.endpoint_name AND t.requester = r.requester
)
SELECT
  ${window_to} AS as_of_date,
  endpoint_name,
  requester,
  action,
  CAST(active_minutes AS BIGINT) AS active_minutes,
  CAST(calls AS BIGINT) AS calls,
  CAST(rate_limited AS BIGINT) AS rate_limited,
  CAST(p50_calls_per_minute AS BIGINT) AS p50_calls_per_minute,
  CAST(p95_calls_per_minute AS BIGINT) AS p95_calls_per_minute,
  CAST(p99_calls_per_minute AS BIGINT) AS p99_calls_per_minute,
  CAST(peak_calls_per_minute AS BIGINT) AS peak_calls_per_minute,
  CAST(current_calls_per_minute AS BIGINT) AS current_calls_per_minute,
  current_calls_rule,
  recommended_calls_per_minute,
  CAST(throttled_under_current AS BIGINT) AS throttled_under_current,
  CAST(throttled_under_recommended AS BIGINT) AS throttled_under_recommended,
  CAST(p99_tokens_per_minute AS BIGINT) AS p99_tokens_per_minute,
  CAST(peak_tokens_per_minute AS BIGINT) AS peak_tokens_per_minute,
  CAST(current_tokens_per_minute AS BIGINT) AS current_tokens_per_minute,
  current_tokens_rule,
  recommended_tokens_per_minute,
  tokens_action,
  concat(
    CASE WHEN requester = '(endpoint)' THEN concat('Endpoint ', endpoint_name, ' as a whole')
         ELSE concat(requester, ' on ', endpoint_name) END,
    ' was active in ', CAST(active_minutes AS STRING), ' minutes of the lookback: p99 ',
    CAST(p99_calls_per_minute AS STRING), ' calls/min, peak ', CAST(peak_calls_per_minute AS STRING),
    ', ', CAST(rate_limited AS STRING), ' of ', CAST(calls AS STRING), ' calls refused with 429. ',
    CASE WHEN current_calls_per_minute IS NULL THEN 'No calls limit applies'
         ELSE concat('The current limit of ', CAST(current_calls_per_minute AS STRING), ' calls/min (',
                     CASE current_calls_rule WHEN 'principal' THEN 'its own rule'
                                             WHEN 'default_user' THEN 'the default per-user rule of the endpoint'
                                             ELSE 'the endpoint rule' END,
                     ') would refuse ', CAST(throttled_under_current AS STRING), ' of them') END,
    '; ', CAST(recommended_calls_per_minute AS STRING), ' calls/min (p99 x ', CAST(${headroom} AS STRING),
    ') would refuse ', CAST(throttled_under_recommended AS STRING), '. Action: ', action, '.'
  ) AS rationale
FROM decided
ORDER BY endpoint_name, requester
