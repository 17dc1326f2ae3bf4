-- +goose Up
-- Reads of the event log by the audience engine: counts of one event in a
-- window, and the events processed since a time (its change feed).
CREATE INDEX events_name_time ON events (tenant_id, name, timestamp);
CREATE INDEX events_processed ON events (tenant_id, processed_at);

-- +goose Down
DROP INDEX events_processed;
DROP INDEX events_name_time;
