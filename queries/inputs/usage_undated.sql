-- usage_undated: usage rows (usage_source) whose request_time is NULL. Such a row belongs to no
-- date, so it is in no output but data_quality: usage.null_request_time counts every one of them
-- on the run's last date (usage_date = ${window_to}), each run counting the table as it is then.
-- The files' null-count statistics let the engine skip every file without such rows.
SELECT ${window_to} AS usage_date
FROM usage_source
WHERE request_time IS NULL
