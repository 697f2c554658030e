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
-- The instants at which some price, of either list, starts or stops applying. Between two of
-- them every entity's price is constant, so the window's rows are summed per (date, entity,
-- span between changes) first and each sum is priced once: exact, since a sum of exact
-- products is the product of the sums, and the fan-out to the alternatives is over a few
-- sums instead of every request (which held every request times every alternative).
price_changes AS (
  SELECT effective_from AS changed_at FROM price_periods WHERE effective_from IS NOT NULL
  UNION
  SELECT effective_until AS changed_at FROM price_periods WHERE effective_until IS NOT NULL
  UNION
  SELECT effective_from AS changed_at FROM what_if_prices WHERE effective_from IS NOT NULL
),
-- Each span from one change to the next; the first span (start NULL, typed as changed_at by
-- the CASE) is before any change, when no price applies, and is the only span when neither
-- list has a price. Every request falls in exactly one span.
spans AS (
  SELECT changed_at AS span_start, LEAD(changed_at) OVER (ORDER BY changed_at) AS span_end
  FROM price_changes
  UNION ALL
  SELECT CASE WHEN false THEN MIN(changed_at) END AS span_start, MIN(changed_at) AS span_end
  FROM price_changes
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
span_sums AS (
  SELECT
    r.usage_date,
    r.entity_name,
    s.span_start,
    SUM(r.row_weight) AS requests,
    SUM(r.plain_input_tokens * r.row_weight) AS plain_input_tokens,
    SUM(r.cache_read_tokens * r.row_weight) AS cache_read_tokens,
    SUM(r.cache_write_tokens * r.row_weight) AS cache_write_tokens,
    SUM(r.plain_output_tokens * r.row_weight) AS plain_output_tokens,
    SUM(r.reasoning_tokens * r.row_weight) AS reasoning_tokens,
    SUM(r.cost_usd * CAST(r.row_weight AS DECIMAL(10, 0))) AS actual_cost,
    SUM(CASE WHEN r.cost_usd IS NULL THEN r.row_weight ELSE 0 END) AS actual_unpriced_requests
  FROM spans s
  JOIN window_rows r
    ON (s.span_start IS NULL OR s.span_start <= r.request_time)
    AND (s.span_end IS NULL OR r.request_time < s.span_end)
  GROUP BY r.usage_date, r.entity_name, s.span_start
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
  FROM span_sums r
  JOIN latest_prices own ON own.entity_name = r.entity_name
  JOIN latest_prices alt ON alt.generates = own.generates AND alt.entity_name <> r.entity_name
  LEFT JOIN price_periods p
    ON p.entity_name = alt.entity_name
    AND p.effective_from <= r.span_start
    AND (p.effective_until IS NULL OR r.span_start < p.effective_until)
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
  FROM span_sums r
  LEFT JOIN what_if_periods w
    ON w.entity_name = r.entity_name
    AND w.effective_from <= r.span_start
    AND (w.effective_until IS NULL OR r.span_start < w.effective_until)
  WHERE r.entity_name IN (SELECT entity_name FROM what_if_prices)
),
-- The formula of usage_costed over a span's token sums (NULL when the alternative has no
-- input or output price in the span).
costed AS (
  SELECT
    a.*,
    CAST(
      CAST(CAST(plain_input_tokens AS DECIMAL(19, 0)) * input_usd_per_token AS DECIMAL(30, 12))
      + CAST(CAST(cache_read_tokens AS DECIMAL(19, 0)) * COALESCE(cache_read_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
      + CAST(CAST(cache_write_tokens AS DECIMAL(19, 0)) * COALESCE(cache_write_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
      + CAST(CAST(plain_output_tokens AS DECIMAL(19, 0)) * output_usd_per_token AS DECIMAL(30, 12))
      + CAST(CAST(reasoning_tokens AS DECIMAL(19, 0)) * COALESCE(reasoning_usd_per_token, output_usd_per_token) AS DECIMAL(30, 12))
      AS DECIMAL(30, 12)) AS what_if_cost
  FROM alternatives a
),
summed AS (
  SELECT
    usage_date,
    entity_name,
    scenario,
    priced_as,
    CAST(SUM(requests) AS BIGINT) AS requests,
    CAST(SUM(plain_input_tokens) AS BIGINT) AS input_tokens,
    CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
    CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
    CAST(SUM(plain_output_tokens) AS BIGINT) AS output_tokens,
    CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
    CAST(COALESCE(SUM(actual_cost), 0) AS DECIMAL(38, 12)) AS actual_cost_usd,
    CAST(COALESCE(SUM(what_if_cost), 0) AS DECIMAL(38, 12)) AS what_if_cost_usd,
    CAST(SUM(actual_unpriced_requests) AS BIGINT) AS actual_unpriced_requests,
    CAST(SUM(CASE WHEN what_if_cost IS NULL THEN requests ELSE 0 END) AS BIGINT) AS what_if_unpriced_requests
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
