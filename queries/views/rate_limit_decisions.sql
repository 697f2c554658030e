-- rate_limit_decisions: the rate-limit recommendations of both gateways, one row per
-- (ai_gateway, endpoint_name, requester) of lookback_minute_demand, with the demand statistics,
-- the limit that applies now, the recommended limit, the calls each would have refused and the
-- action. rate_limit_recommendations reads the serving endpoints' rows (ai_gateway false;
-- rules: rate_limit_rules, the endpoints' AI Gateway config), and
-- ai_gateway_rate_limit_recommendations the new AI Gateway's (ai_gateway true; rules:
-- gateway_rate_limit_rules, the model services' config.rate_limits); each adds its rationale.
-- Column definitions: docs/OUTPUTS.md#rate_limit_recommendations. Knobs come from the job
-- file's [recommendations] as SQL variables.
-- Each (gateway, endpoint, requester)'s totals. Names are never NULL here (usage_costed and
-- lookback_minute_demand fill in '(unknown)').
WITH totals AS (
  SELECT
    ai_gateway,
    endpoint_name,
    requester,
    COUNT(*) AS active_minutes,
    SUM(calls) AS calls,
    SUM(rate_limited) AS rate_limited,
    MAX(calls) AS peak_calls_per_minute,
    MAX(tokens) AS peak_tokens_per_minute
  FROM lookback_minute_demand
  GROUP BY ai_gateway, endpoint_name, requester
),
-- Nearest rank: the q-quantile is the ceil(q * n)-th smallest value over the n active minutes,
-- that is the smallest value whose count of minutes at or below it reaches q * n. Minutes with
-- equal values (per measure: calls, tokens) are counted together first, so the window sorts
-- distinct values, not minutes.
-- (Totals by a grouping joined back, the small side first, rather than a window over a whole
-- group: DataFusion computes such a window by holding all its input in memory, outside the
-- memory budget.)
points AS (
  SELECT ai_gateway, endpoint_name, requester, 'calls' AS measure, calls AS value, COUNT(*) AS minutes
  FROM lookback_minute_demand
  GROUP BY ai_gateway, endpoint_name, requester, calls
  UNION ALL
  SELECT ai_gateway, endpoint_name, requester, 'tokens' AS measure, tokens AS value, COUNT(*) AS minutes
  FROM lookback_minute_demand
  GROUP BY ai_gateway, endpoint_name, requester, tokens
),
cumulative AS (
  SELECT t.ai_gateway, t.endpoint_name, t.requester, t.active_minutes, p.measure, p.value,
         SUM(p.minutes) OVER (
           PARTITION BY p.ai_gateway, p.endpoint_name, p.requester, p.measure
           ORDER BY p.value
           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
         ) AS minutes_at_or_below
  FROM totals t
  JOIN points p ON p.ai_gateway = t.ai_gateway AND p.endpoint_name = t.endpoint_name AND p.requester = t.requester
),
quantiles AS (
  SELECT
    ai_gateway,
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
  GROUP BY ai_gateway, endpoint_name, requester
),
demand AS (
  SELECT
    t.ai_gateway,
    t.endpoint_name,
    t.requester,
    -- The row of the endpoint-wide (service-wide) limit.
    t.requester = CASE WHEN t.ai_gateway THEN '(service)' ELSE '(endpoint)' END AS whole,
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
  JOIN quantiles q ON q.ai_gateway = t.ai_gateway AND q.endpoint_name = t.endpoint_name AND q.requester = t.requester
),
-- The rules, per gateway: a principal's own (user or service principal), the endpoint's
-- default per-user rule and its endpoint-wide rule. Serving endpoints hold one rule of each;
-- a model service may hold two limits on the same dimension (the stricter applies). The new
-- gateway's rules the recommendations do not evaluate (user groups, request tags, per-hour
-- limits) are left out here; its output lists them.
own_rules AS (
  SELECT FALSE AS ai_gateway, endpoint_name, principal, MAX(calls) AS calls, MAX(tokens) AS tokens
  FROM rate_limit_rules
  WHERE key IN ('user', 'service_principal') AND principal IS NOT NULL
  GROUP BY endpoint_name, principal
  UNION ALL
  SELECT TRUE AS ai_gateway, endpoint_name, principal, MIN(requests) AS calls, MIN(tokens) AS tokens
  FROM gateway_rate_limit_rules
  WHERE not_evaluated_reason IS NULL AND key IN ('user', 'service_principal')
  GROUP BY endpoint_name, principal
),
-- Each gateway's names for the rule kinds: whole_rule and default_rule.
shared_rules AS (
  SELECT FALSE AS ai_gateway, endpoint_name, 'endpoint' AS whole_rule, 'default_user' AS default_rule,
         MAX(CASE WHEN key = 'user' AND principal IS NULL THEN calls END) AS default_user_calls,
         MAX(CASE WHEN key = 'user' AND principal IS NULL THEN tokens END) AS default_user_tokens,
         MAX(CASE WHEN key = 'endpoint' THEN calls END) AS whole_calls,
         MAX(CASE WHEN key = 'endpoint' THEN tokens END) AS whole_tokens
  FROM rate_limit_rules
  GROUP BY endpoint_name
  UNION ALL
  SELECT TRUE AS ai_gateway, endpoint_name, 'service' AS whole_rule, 'user_default' AS default_rule,
         MIN(CASE WHEN key = 'user_default' THEN requests END) AS default_user_calls,
         MIN(CASE WHEN key = 'user_default' THEN tokens END) AS default_user_tokens,
         MIN(CASE WHEN key = 'service' THEN requests END) AS whole_calls,
         MIN(CASE WHEN key = 'service' THEN tokens END) AS whole_tokens
  FROM gateway_rate_limit_rules
  WHERE not_evaluated_reason IS NULL
  GROUP BY endpoint_name
),
-- The limit that applies: the principal's own rule, else the default per-user rule (per
-- dimension); the endpoint-wide rule for the whole endpoint's row.
limits AS (
  SELECT
    d.*,
    CASE WHEN d.whole THEN s.whole_calls ELSE COALESCE(o.calls, s.default_user_calls) END
      AS current_calls_per_minute,
    CASE
      WHEN d.whole THEN CASE WHEN s.whole_calls IS NOT NULL THEN s.whole_rule END
      WHEN o.calls IS NOT NULL THEN 'principal'
      WHEN s.default_user_calls IS NOT NULL THEN s.default_rule
    END AS current_calls_rule,
    CASE WHEN d.whole THEN s.whole_tokens ELSE COALESCE(o.tokens, s.default_user_tokens) END
      AS current_tokens_per_minute,
    CASE
      WHEN d.whole THEN CASE WHEN s.whole_tokens IS NOT NULL THEN s.whole_rule END
      WHEN o.tokens IS NOT NULL THEN 'principal'
      WHEN s.default_user_tokens IS NOT NULL THEN s.default_rule
    END AS current_tokens_rule,
    -- max(1, ceil(p99 * headroom)), in integers: headroom is in millionths.
    GREATEST(CAST(1 AS BIGINT), CAST(FLOOR((d.p99_calls_per_minute * ${headroom_ppm} + 999999) / 1000000) AS BIGINT))
      AS recommended_calls_per_minute
  FROM demand d
  LEFT JOIN own_rules o
    ON o.ai_gateway = d.ai_gateway AND o.endpoint_name = d.endpoint_name AND o.principal = d.requester AND NOT d.whole
  LEFT JOIN shared_rules s
    ON s.ai_gateway = d.ai_gateway AND s.endpoint_name = d.endpoint_name
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
    m.ai_gateway,
    m.endpoint_name,
    m.requester,
    SUM(CASE WHEN r.current_calls_per_minute IS NOT NULL AND m.calls > r.current_calls_per_minute
             THEN m.calls - r.current_calls_per_minute ELSE 0 END) AS throttled_under_current,
    SUM(CASE WHEN m.calls > r.recommended_calls_per_minute
             THEN m.calls - r.recommended_calls_per_minute ELSE 0 END) AS throttled_under_recommended
  FROM lookback_minute_demand m
  JOIN recommended r
    ON r.ai_gateway = m.ai_gateway AND r.endpoint_name = m.endpoint_name AND r.requester = m.requester
  GROUP BY m.ai_gateway, m.endpoint_name, m.requester
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
    ON t.ai_gateway = r.ai_gateway AND t.endpoint_name = r.endpoint_name AND t.requester = r.requester
)
SELECT
  ai_gateway,
  endpoint_name,
  requester,
  whole,
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
  tokens_action
FROM decided
