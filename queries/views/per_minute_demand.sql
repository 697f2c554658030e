-- per_minute_demand: d(m), the calls (any status: 429s are demand too), tokens and HTTP 429s
-- of each (endpoint_name, requester) per UTC minute with traffic, plus one row per endpoint
-- and minute with requester '(endpoint)' for the endpoint-wide limit. It covers
-- ${demand_start} (the recommendations' lookback or the window's first day, whichever is
-- earlier) up to the window's end. Minutes from ${inputs_start} on are counted from
-- usage_costed; earlier ones come from the minute_demand rows earlier runs wrote
-- (demand_history, empty unless the computed_dates ledger covers those days).
WITH fresh AS (
  SELECT endpoint_name, requester, date_trunc('minute', request_time) AS minute, status_code,
         input_tokens + output_tokens AS tokens
  FROM usage_costed
  WHERE request_time >= ${demand_start} AND request_time < ${window_end}
)
SELECT CAST(minute AS DATE) AS usage_date, endpoint_name, requester, minute,
       COUNT(*) AS calls, SUM(tokens) AS tokens,
       SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
FROM fresh
GROUP BY endpoint_name, requester, minute
UNION ALL
SELECT CAST(minute AS DATE) AS usage_date, endpoint_name, '(endpoint)' AS requester, minute,
       COUNT(*) AS calls, SUM(tokens) AS tokens,
       SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS rate_limited
FROM fresh
GROUP BY endpoint_name, minute
UNION ALL
SELECT usage_date, endpoint_name, requester, minute, calls, tokens, rate_limited
FROM demand_history
WHERE usage_date >= ${demand_from} AND usage_date < ${inputs_from}
