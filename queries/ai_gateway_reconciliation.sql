-- ai_gateway_reconciliation: reconciliation for the new AI Gateway: per (usage_date,
-- endpoint_name, entity_name) of gateway_usage's model-service invocations, the usage table's
-- token counts against the Beta payload table's response bodies (gateway_usage(),
-- this project's function), invocation by invocation, plus the payload invocations of the
-- window with no usage row. Column definitions: docs/OUTPUTS.md#ai_gateway_reconciliation.
-- * Like with like: the usage table's input_tokens include cache reads and writes and its
--   output_tokens reasoning; gateway_usage() returns the same totals
--   (docs/OUTPUTS.md#token-categories). Usage counts are as billed (NULL and negative as 0).
-- * Payload deliveries: rows with the same (request_id, invocation_id) are one invocation
--   delivered more than once; it keeps the greatest counts of its deliveries that carry a
--   usage block, and its earliest event_time. Payload rows are matched from one day before the
--   window to one day after it (the two tables' event_time may differ slightly).
-- * Match: same request_id and invocation_id; where either side has no invocation_id, same
--   request_id when the request has exactly one model-service invocation in the window and
--   exactly one payload invocation with a usage block (otherwise the pairing is ambiguous and
--   the invocation counts as unmatched).
-- * Payload invocations without usage: payload invocations with event_time in the window and no
--   usage row of the window with the same request_id (and the same invocation_id where both
--   have one). The payload table names no service, so they are counted per date in a row of
--   their own, endpoint_name '(payload only)', entity_name '(unknown)', with no usage.
WITH payload_invocations AS (
  SELECT
    request_id,
    invocation_id,
    MIN(event_time) AS event_time,
    MAX(body['input_tokens']) AS input_tokens,
    MAX(body['output_tokens']) AS output_tokens
  FROM (
    SELECT request_id, invocation_id, event_time, gateway_usage(response) AS body
    FROM gateway_payload_source
    WHERE request_id IS NOT NULL
      AND event_time >= ${window_start} - INTERVAL '1' DAY AND event_time < ${window_end} + INTERVAL '1' DAY
  ) parsed
  GROUP BY request_id, invocation_id
),
payload_tokens AS (
  SELECT request_id, invocation_id, input_tokens, output_tokens
  FROM payload_invocations
  WHERE input_tokens IS NOT NULL
),
-- The requests with a single payload invocation with a usage block.
payload_single AS (
  SELECT request_id, MAX(invocation_id) AS invocation_id, MAX(input_tokens) AS input_tokens,
    MAX(output_tokens) AS output_tokens
  FROM payload_tokens
  GROUP BY request_id
  HAVING COUNT(*) = 1
),
model_invocations AS (
  SELECT usage_date, endpoint_name, model, request_id, invocation_id, input_tokens, output_tokens
  FROM gateway_usage
  WHERE service_type <> 'MCP_SERVICE'
),
-- Counted by a grouping joined back, not a window over each request: DataFusion computes such a
-- window by holding all its input in memory at once (see hourly_errors.sql). A NULL request_id
-- gets no count, and matches no payload row either way.
request_invocations AS (
  SELECT request_id, COUNT(*) AS request_invocations
  FROM model_invocations
  WHERE request_id IS NOT NULL
  GROUP BY request_id
),
usage_invocations AS (
  SELECT u.*, r.request_invocations
  FROM model_invocations u
  LEFT JOIN request_invocations r
    ON r.request_id = u.request_id
),
matched AS (
  SELECT
    u.usage_date,
    u.endpoint_name,
    u.model,
    u.input_tokens,
    u.output_tokens,
    COALESCE(pe.input_tokens, ps.input_tokens) AS payload_input_tokens,
    COALESCE(pe.output_tokens, ps.output_tokens) AS payload_output_tokens
  FROM usage_invocations u
  LEFT JOIN payload_tokens pe
    ON pe.request_id = u.request_id AND pe.invocation_id = u.invocation_id
  LEFT JOIN payload_single ps
    ON ps.request_id = u.request_id
    AND (u.invocation_id IS NULL OR ps.invocation_id IS NULL)
    AND u.request_invocations = 1
),
compared AS (
  SELECT
    usage_date,
    endpoint_name,
    model AS entity_name,
    COUNT(*) AS usage_invocations,
    SUM(input_tokens) AS usage_input_tokens,
    SUM(output_tokens) AS usage_output_tokens,
    SUM(CASE WHEN payload_input_tokens IS NOT NULL THEN 1 ELSE 0 END) AS payload_matched_invocations,
    SUM(CASE WHEN payload_input_tokens IS NOT NULL THEN payload_input_tokens - input_tokens ELSE 0 END)
      AS payload_input_difference,
    SUM(CASE WHEN payload_input_tokens IS NOT NULL THEN payload_output_tokens - output_tokens ELSE 0 END)
      AS payload_output_difference,
    SUM(CASE WHEN payload_input_tokens <> input_tokens OR payload_output_tokens <> output_tokens THEN 1 ELSE 0 END)
      AS payload_invocations_with_difference
  FROM matched
  GROUP BY usage_date, endpoint_name, model
),
usage_keys AS (
  SELECT DISTINCT request_id, invocation_id FROM gateway_usage
),
payload_only AS (
  SELECT CAST(event_time AS DATE) AS usage_date, COUNT(*) AS payload_invocations_without_usage
  FROM (
    SELECT p.request_id, p.invocation_id, p.event_time, MAX(CASE WHEN k.request_id IS NULL THEN 0 ELSE 1 END) AS has_usage
    FROM payload_invocations p
    LEFT JOIN usage_keys k
      ON k.request_id = p.request_id
      AND (k.invocation_id = p.invocation_id OR k.invocation_id IS NULL OR p.invocation_id IS NULL)
    WHERE p.event_time >= ${window_start} AND p.event_time < ${window_end}
    GROUP BY p.request_id, p.invocation_id, p.event_time
  ) keyed
  WHERE has_usage = 0
  GROUP BY CAST(event_time AS DATE)
)
SELECT
  usage_date,
  endpoint_name,
  entity_name,
  CAST(usage_invocations AS BIGINT) AS usage_invocations,
  CAST(usage_input_tokens AS BIGINT) AS usage_input_tokens,
  CAST(usage_output_tokens AS BIGINT) AS usage_output_tokens,
  CAST(payload_matched_invocations AS BIGINT) AS payload_matched_invocations,
  CAST(payload_input_difference AS BIGINT) AS payload_input_difference,
  CAST(payload_output_difference AS BIGINT) AS payload_output_difference,
  CAST(payload_invocations_with_difference AS BIGINT) AS payload_invocations_with_difference,
  CASE WHEN payload_matched_invocations > 0
       THEN CAST(payload_invocations_with_difference AS DOUBLE) / payload_matched_invocations END
    AS payload_difference_share,
  CAST(0 AS BIGINT) AS payload_invocations_without_usage
FROM compared
UNION ALL
SELECT
  usage_date,
  '(payload only)' AS endpoint_name,
  '(unknown)' AS entity_name,
  CAST(0 AS BIGINT) AS usage_invocations,
  CAST(0 AS BIGINT) AS usage_input_tokens,
  CAST(0 AS BIGINT) AS usage_output_tokens,
  CAST(0 AS BIGINT) AS payload_matched_invocations,
  CAST(0 AS BIGINT) AS payload_input_difference,
  CAST(0 AS BIGINT) AS payload_output_difference,
  CAST(0 AS BIGINT) AS payload_invocations_with_difference,
  CAST(NULL AS DOUBLE) AS payload_difference_share,
  CAST(payload_invocations_without_usage AS BIGINT) AS payload_invocations_without_usage
FROM payload_only
ORDER BY usage_date, endpoint_name, entity_name
