-- pricing_what_if: per (usage_date, entity_name), what the same tokens, category by category,
-- would have cost priced as another entity, or under the second price list of
-- `run --what-if-prices`. Column definitions: docs/OUTPUTS.md#pricing_what_if.
-- * scenario 'entity': every other entity of the price list of the same task. The task is
--   read from the price list: an entity whose latest price charges for output tokens
--   generates text (chat, completions) and is compared with the others that do; one whose
--   latest output price is 0 (embeddings) with the others that do not.
-- * scenario 'price_file': the entity itself under the what-if price list (rows only for
--   entities that list names).
-- Both price a request with the alternative's price in effect at its request_time, by the
-- formula of usage_costed (a missing category price falling back to the input or output
-- price), exact DECIMAL, weighted by row_weight like daily_spend. A request the alternative
-- has no price for at that time adds 0 and is counted in what_if_unpriced_requests.
WITH what_if_periods AS (
  SELECT
    entity_name,
    effective_from,
    LEAD(effective_from) OVER (PARTITION BY entity_name ORDER BY effective_from) AS effective_until,
    input_usd_per_token,
    output_usd_per_token,
    cache_read_usd_per_token,
    cache_write_usd_per_token,
    reasoning_usd_per_token
  FROM what_if_prices
),
latest_prices AS (
  SELECT entity_name, output_usd_per_token > 0 AS generates
  FROM price_periods
  WHERE effective_until IS NULL
),
window_rows AS (
  SELECT
    request_time,
    usage_date,
    entity_name,
    row_weight,
    cost_usd,
    input_tokens - cache_read_tokens - cache_write_tokens AS plain_input_tokens,
    cache_read_tokens,
    cache_write_tokens,
    output_tokens - reasoning_tokens AS plain_output_tokens,
    reasoning_tokens
  FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
    AND usage_date BETWEEN ${window_from} AND ${window_to}
),
alternatives AS (
  SELECT
    r.*,
    'entity' AS scenario,
    alt.entity_name AS priced_as,
    p.input_usd_per_token,
    p.output_usd_per_token,
    p.cache_read_usd_per_token,
    p.cache_write_usd_per_token,
    p.reasoning_usd_per_token
  FROM window_rows r
  JOIN latest_prices own ON own.entity_name = r.entity_name
  JOIN latest_prices alt ON alt.generates = own.generates AND alt.entity_name <> r.entity_name
  LEFT JOIN price_periods p
    ON p.entity_name = alt.entity_name
    AND p.effective_from <= r.request_time
    AND (p.effective_until IS NULL OR r.request_time < p.effective_until)
  UNION ALL
  SELECT
    r.*,
    'price_file' AS scenario,
    r.entity_name AS priced_as,
    w.input_usd_per_token,
    w.output_usd_per_token,
    w.cache_read_usd_per_token,
    w.cache_write_usd_per_token,
    w.reasoning_usd_per_token
  FROM window_rows r
  LEFT JOIN what_if_periods w
    ON w.entity_name = r.entity_name
    AND w.effective_from <= r.request_time
    AND (w.effective_until IS NULL OR r.request_time < w.effective_until)
  WHERE r.entity_name IN (SELECT entity_name FROM what_if_prices)
),
costed AS (
  SELECT
    a.*,
    CAST(
      CAST(CAST(plain_input_tokens AS DECIMAL(18, 0)) * input_usd_per_token AS DECIMAL(30, 12))
      + CAST(CAST(cache_read_tokens AS DECIMAL(18, 0)) * COALESCE(cache_read_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
      + CAST(CAST(cache_write_tokens AS DECIMAL(18, 0)) * COALESCE(cache_write_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
      + CAST(CAST(plain_output_tokens AS DECIMAL(18, 0)) * output_usd_per_token AS DECIMAL(30, 12))
      + CAST(CAST(reasoning_tokens AS DECIMAL(18, 0)) * COALESCE(reasoning_usd_per_token, output_usd_per_token) AS DECIMAL(30, 12))
      AS DECIMAL(28, 12)) AS what_if_cost
  FROM alternatives a
),
summed AS (
  SELECT
    usage_date,
    entity_name,
    scenario,
    priced_as,
    CAST(SUM(row_weight) AS BIGINT) AS requests,
    CAST(SUM(plain_input_tokens * row_weight) AS BIGINT) AS input_tokens,
    CAST(SUM(cache_read_tokens * row_weight) AS BIGINT) AS cache_read_tokens,
    CAST(SUM(cache_write_tokens * row_weight) AS BIGINT) AS cache_write_tokens,
    CAST(SUM(plain_output_tokens * row_weight) AS BIGINT) AS output_tokens,
    CAST(SUM(reasoning_tokens * row_weight) AS BIGINT) AS reasoning_tokens,
    CAST(COALESCE(SUM(cost_usd * CAST(row_weight AS DECIMAL(10, 0))), 0) AS DECIMAL(38, 12)) AS actual_cost_usd,
    CAST(COALESCE(SUM(what_if_cost * CAST(row_weight AS DECIMAL(10, 0))), 0) AS DECIMAL(38, 12)) AS what_if_cost_usd,
    CAST(SUM(CASE WHEN cost_usd IS NULL THEN row_weight ELSE 0 END) AS BIGINT) AS actual_unpriced_requests,
    CAST(SUM(CASE WHEN what_if_cost IS NULL THEN row_weight ELSE 0 END) AS BIGINT) AS what_if_unpriced_requests
  FROM costed
  GROUP BY usage_date, entity_name, scenario, priced_as
)
SELECT
  usage_date,
  CAST(date_trunc('month', CAST(usage_date AS TIMESTAMP)) AS DATE) AS month,
  entity_name,
  scenario,
  priced_as,
  requests,
  input_tokens,
  cache_read_tokens,
  cache_write_tokens,
  output_tokens,
  reasoning_tokens,
  actual_cost_usd,
  what_if_cost_usd,
  CAST(what_if_cost_usd - actual_cost_usd AS DECIMAL(38, 12)) AS difference_usd,
  actual_unpriced_requests,
  what_if_unpriced_requests,
  ${price_version} AS price_version
FROM summed
ORDER BY usage_date, entity_name, scenario, priced_as
