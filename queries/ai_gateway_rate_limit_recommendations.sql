-- ai_gateway_rate_limit_recommendations: rate_limit_recommendations for the new AI Gateway:
-- one row per (service, requester) with traffic in the lookback, one per service for its
-- service-wide limit (requester '(service)'), and one per configured limit the
-- recommendations do not evaluate (action 'not_evaluated', with the reason). Column
-- definitions: docs/OUTPUTS.md#ai_gateway_rate_limit_recommendations. The statistics, limits
-- and actions are rate_limit_decisions' rows with ai_gateway true
-- (views/rate_limit_decisions.sql, shared with rate_limit_recommendations): demand read from
-- the usage table without guardrail judge calls (views/lookback_minute_demand.sql), current
-- limits from gateway_rate_limit_rules ([inputs] gateway_rate_limits, the ModelService
-- config.rate_limits shape); knobs from [recommendations].
WITH recommendations AS (
  SELECT
    endpoint_name,
    requester,
    action,
    active_minutes,
    calls,
    rate_limited,
    p50_calls_per_minute,
    p95_calls_per_minute,
    p99_calls_per_minute,
    peak_calls_per_minute,
    current_calls_per_minute,
    current_calls_rule,
    recommended_calls_per_minute,
    throttled_under_current,
    throttled_under_recommended,
    p99_tokens_per_minute,
    peak_tokens_per_minute,
    current_tokens_per_minute,
    current_tokens_rule,
    recommended_tokens_per_minute,
    tokens_action,
    CAST(NULL AS STRING) AS not_evaluated_reason,
    concat(
      CASE WHEN whole THEN concat('Service ', endpoint_name, ' as a whole')
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
  FROM rate_limit_decisions
  WHERE ai_gateway
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
