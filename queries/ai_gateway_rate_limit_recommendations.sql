-- ai_gateway_rate_limit_recommendations: rate_limit_recommendations for the new AI Gateway:
-- one row per (service, requester) with traffic in the lookback, one per service for its
-- service-wide limit (requester '(service)'), and one per configured limit the
-- recommendations do not evaluate (action 'not_evaluated', with the reason). Column
-- definitions: docs/OUTPUTS.md#ai_gateway_rate_limit_recommendations. Current limits come
-- from gateway_rate_limit_rules ([inputs] gateway_rate_limits, the ModelService
-- config.rate_limits shape); knobs from [recommendations].
-- d(m): invocations (any status, 429s included: they are demand) per UTC minute of the
-- lookback, read from the usage table itself (gateway_usage_source: the Beta path keeps no
-- minute_demand history), one row per (request_id, invocation_id) as in gateway_usage, and
-- without guardrail judge calls (source 'GUARDRAIL': the gateway makes them, not the requester).
WITH delivered AS (
  SELECT
    COALESCE(u.service_name, u.endpoint_name, '(unknown)') AS endpoint_name,
    COALESCE(u.requester, '(unknown)') AS requester,
    u.event_time,
    u.status_code,
    u.invocation_id,
    CAST(GREATEST(COALESCE(u.input_tokens, 0), 0) + GREATEST(COALESCE(u.output_tokens, 0), 0) AS BIGINT) AS tokens,
    ROW_NUMBER() OVER (
      PARTITION BY u.request_id, u.invocation_id
      ORDER BY u.event_time, u.status_code, u.latency_ms, u.input_tokens, u.output_tokens, u.requester,
               u.endpoint_name, u.destination_name, u.destination_model
    ) AS delivery
  FROM gateway_usage_source u
  WHERE u.event_time >= ${lookback_start} AND u.event_time < ${window_end}
    AND (u.source IS NULL OR u.source <> 'GUARDRAIL')
),
fresh AS (
  SELECT endpoint_name, requester, date_trunc('minute', event_time) AS minute, status_code, tokens
  FROM delivered
  WHERE delivery = 1 OR invocation_id IS NULL
),
minute_demand AS (
  SELECT endpoint_name, requester, minute, COUNT(*) AS calls, SUM(tokens) AS tokens,
         SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
  FROM fresh
  GROUP BY endpoint_name, requester, minute
  UNION ALL
  SELECT endpoint_name, '(service)' AS requester, minute, COUNT(*) AS calls, SUM(tokens) AS tokens,
         SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
  FROM fresh
  GROUP BY endpoint_name, minute
),
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
-- Nearest rank, as in rate_limit_recommendations: the q-quantile is the smallest value whose
-- count of minutes at or below it reaches q * n.
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
    t.endpoint_name, t.requester, t.active_minutes, t.calls, t.rate_limited,
    q.p50_calls_per_minute, q.p95_calls_per_minute, q.p99_calls_per_minute, t.peak_calls_per_minute,
    q.p99_tokens_per_minute, t.peak_tokens_per_minute
  FROM totals t
  JOIN quantiles q ON q.endpoint_name = t.endpoint_name AND q.requester = t.requester
),
-- The per-minute limits evaluated: a principal's own (USER or SERVICE_PRINCIPAL), the
-- service's USER_DEFAULT and SERVICE limits. Two limits on the same dimension: the stricter.
evaluated AS (
  SELECT * FROM gateway_rate_limit_rules WHERE not_evaluated_reason IS NULL
),
own_rules AS (
  SELECT endpoint_name, principal, MIN(requests) AS calls, MIN(tokens) AS tokens
  FROM evaluated
  WHERE key IN ('user', 'service_principal')
  GROUP BY endpoint_name, principal
),
shared_rules AS (
  SELECT endpoint_name,
         MIN(CASE WHEN key = 'user_default' THEN requests END) AS default_user_calls,
         MIN(CASE WHEN key = 'user_default' THEN tokens END) AS default_user_tokens,
         MIN(CASE WHEN key = 'service' THEN requests END) AS service_calls,
         MIN(CASE WHEN key = 'service' THEN tokens END) AS service_tokens
  FROM evaluated
  GROUP BY endpoint_name
),
limits AS (
  SELECT
    d.*,
    CASE
      WHEN d.requester = '(service)' THEN s.service_calls
      ELSE COALESCE(o.calls, s.default_user_calls)
    END AS current_calls_per_minute,
    CASE
      WHEN d.requester = '(service)' THEN CASE WHEN s.service_calls IS NOT NULL THEN 'service' END
      WHEN o.calls IS NOT NULL THEN 'principal'
      WHEN s.default_user_calls IS NOT NULL THEN 'user_default'
    END AS current_calls_rule,
    CASE
      WHEN d.requester = '(service)' THEN s.service_tokens
      ELSE COALESCE(o.tokens, s.default_user_tokens)
    END AS current_tokens_per_minute,
    CASE
      WHEN d.requester = '(service)' THEN CASE WHEN s.service_tokens IS NOT NULL THEN 'service' END
      WHEN o.tokens IS NOT NULL THEN 'principal'
      WHEN s.default_user_tokens IS NOT NULL THEN 'user_default'
    END AS current_tokens_rule,
    GREATEST(CAST(1 AS BIGINT), CAST(FLOOR((d.p99_calls_per_minute * ${headroom_ppm} + 999999) / 1000000) AS BIGINT))
      AS recommended_calls_per_minute
  FROM demand d
  LEFT JOIN own_rules o
    ON o.endpoint_name = d.endpoint_name AND o.principal = d.requester AND d.requester <> '(service)'
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
),
recommendations AS (
  SELECT
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
    CAST(NULL AS STRING) AS not_evaluated_reason,
    concat(
      CASE WHEN requester = '(service)' THEN concat('Service ', endpoint_name, ' as a whole')
           ELSE concat(requester, ' on ', endpoint_name) END,
      ' was active in ', CAST(active_minutes AS STRING), ' minutes of the lookback: p99 ',
      CAST(p99_calls_per_minute AS STRING), ' requests/min, peak ', CAST(peak_calls_per_minute AS STRING),
      ', ', CAST(rate_limited AS STRING), ' of ', CAST(calls AS STRING), ' invocations refused with 429. ',
      CASE WHEN current_calls_per_minute IS NULL THEN 'No per-minute requests limit applies'
           ELSE concat('The current limit of ', CAST(current_calls_per_minute AS STRING), ' requests/min (',
                       CASE current_calls_rule WHEN 'principal' THEN 'its own limit'
                                               WHEN 'user_default' THEN 'the USER_DEFAULT limit of the service'
                                               ELSE 'the SERVICE limit' END,
                       ') would refuse ', CAST(throttled_under_current AS STRING), ' of them') END,
      '; ', CAST(recommended_calls_per_minute AS STRING), ' requests/min (p99 x ', CAST(${headroom} AS STRING),
      ') would refuse ', CAST(throttled_under_recommended AS STRING), '. Action: ', action, '.'
    ) AS rationale
  FROM decided
),
-- The limits not evaluated, one row each: requester is the group, the request tag
-- ('tag:<key>=<value>', '*' for every value), the principal or '(service)'/'(user_default)'.
skipped AS (
  SELECT
    endpoint_name,
    CASE
      WHEN key = 'request_tag' THEN concat('tag:', request_tag_key, '=', COALESCE(request_tag_value, '*'))
      WHEN principal IS NOT NULL THEN principal
      WHEN key = 'service' THEN '(service)'
      ELSE concat('(', key, ')')
    END AS requester,
    'not_evaluated' AS action,
    CAST(NULL AS BIGINT) AS active_minutes,
    CAST(NULL AS BIGINT) AS calls,
    CAST(NULL AS BIGINT) AS rate_limited,
    CAST(NULL AS BIGINT) AS p50_calls_per_minute,
    CAST(NULL AS BIGINT) AS p95_calls_per_minute,
    CAST(NULL AS BIGINT) AS p99_calls_per_minute,
    CAST(NULL AS BIGINT) AS peak_calls_per_minute,
    CAST(NULL AS BIGINT) AS current_calls_per_minute,
    key AS current_calls_rule,
    CAST(NULL AS BIGINT) AS recommended_calls_per_minute,
    CAST(NULL AS BIGINT) AS throttled_under_current,
    CAST(NULL AS BIGINT) AS throttled_under_recommended,
    CAST(NULL AS BIGINT) AS p99_tokens_per_minute,
    CAST(NULL AS BIGINT) AS peak_tokens_per_minute,
    CAST(NULL AS BIGINT) AS current_tokens_per_minute,
    key AS current_tokens_rule,
    CAST(NULL AS BIGINT) AS recommended_tokens_per_minute,
    CAST(NULL AS STRING) AS tokens_action,
    not_evaluated_reason,
    concat('The ', upper(key), ' limit of ', COALESCE(CAST(requests AS STRING), 'no'), ' requests and ',
           COALESCE(CAST(tokens AS STRING), 'no'), ' tokens per ', renewal_period, ' (config.rate_limits[',
           CAST(rule_index AS STRING), ']) is kept as it is: ', not_evaluated_reason, '.') AS rationale
  FROM gateway_rate_limit_rules
  WHERE not_evaluated_reason IS NOT NULL
)
SELECT ${window_to} AS as_of_date, r.*
FROM (SELECT * FROM recommendations UNION ALL SELECT * FROM skipped) r
ORDER BY endpoint_name, requester, action, rationale
