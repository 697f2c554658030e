-- lookback_minute_demand: d(m) of both gateways' rate-limit recommendations: the calls (any
-- status, 429s included: they are demand), tokens and HTTP 429s per UTC minute of the
-- recommendations' lookback (from ${lookback_start} to the window's end), one row per
-- (ai_gateway, endpoint_name, requester, minute) with traffic, plus one per endpoint and
-- minute for its endpoint-wide limit. ai_gateway (a BOOLEAN: a cheaper grouping key than a
-- name) tells the gateway:
-- - false, serving endpoints: per_minute_demand's rows (requester '(endpoint)' for the whole
--   endpoint);
-- - true, the new AI Gateway: its invocations read from its usage table (gateway_usage_source:
--   the Beta path keeps no minute_demand history), one row per (request_id, invocation_id) as
--   in gateway_usage, without guardrail judge calls (source 'GUARDRAIL': the gateway makes
--   them, not the requester); endpoint_name is the service and requester '(service)' the whole
--   service.
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
)
SELECT FALSE AS ai_gateway, endpoint_name, requester, minute, calls, tokens, rate_limited
FROM per_minute_demand
WHERE minute >= ${lookback_start}
UNION ALL
SELECT TRUE AS ai_gateway, endpoint_name, requester, minute, COUNT(*) AS calls, SUM(tokens) AS tokens,
       SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
FROM fresh
GROUP BY endpoint_name, requester, minute
UNION ALL
SELECT TRUE AS ai_gateway, endpoint_name, '(service)' AS requester, minute, COUNT(*) AS calls,
       SUM(tokens) AS tokens, SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
FROM fresh
GROUP BY endpoint_name, minute
