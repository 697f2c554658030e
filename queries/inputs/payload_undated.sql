-- payload_undated: payload rows (payload_source) whose request_time is NULL, with the date
-- payload.null_request_time counts them on: their request_date when it falls in the run window,
-- the window's last date when request_date is NULL too. Rows whose request_date lies outside
-- the window are counted by the runs of that date. They are in no other output (no hour, no
-- window places them). The files' null-count statistics let the engine skip every file without
-- such rows.
SELECT COALESCE(request_date, ${window_to}) AS usage_date
FROM payload_source
WHERE request_time IS NULL
  AND (request_date IS NULL OR (request_date >= ${window_from} AND request_date <= ${window_to}))
