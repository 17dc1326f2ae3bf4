-- +goose Up
-- Reads of the event log by the audience engine: counts of one event in a
-- window, and the events processed since a time (its change feed). Partial:
-- only processed events are indexed, so ingest does not pay for them; the
-- processor does, asynchronously.
CREATE INDEX events_name_time ON events (tenant_id, name, timestamp) WHERE processed_at IS NOT NULL;
CREATE INDEX events_processed ON events (tenant_id, processed_at) WHERE processed_at IS NOT NULL;

-- +goose Down
DROP INDEX events_processed;
DROP INDEX events_name_time;
