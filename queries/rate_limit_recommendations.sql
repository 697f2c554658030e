-- rate_limit_recommendations: one row per (endpoint_name, requester) with traffic in the
-- lookback, plus one row per endpoint for its endpoint-wide limit (requester '(endpoint)'):
-- the serving endpoints' rows of rate_limit_decisions (views/rate_limit_decisions.sql, shared
-- with ai_gateway_rate_limit_recommendations: the statistics, limits and actions) with their
-- rationale. Column definitions: docs/OUTPUTS.md#rate_limit_recommendations.
SELECT
  ${window_to} AS as_of_date,
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
  concat(
    CASE WHEN whole THEN concat('Endpoint ', endpoint_name, ' as a whole')
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
FROM rate_limit_decisions
WHERE NOT ai_gateway
ORDER BY endpoint_name, requester
