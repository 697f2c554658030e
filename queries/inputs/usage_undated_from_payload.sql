-- usage_undated (payload-only mode): no rows. The usage rows are derived from the payload
-- table, whose rows with a NULL request_time are counted once, by payload.null_request_time.
SELECT ${window_to} AS usage_date
WHERE false
