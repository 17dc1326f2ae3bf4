-- +goose Up
-- The audience index follows changes by time: these indexes let it read
-- "what changed since" cheaply.
CREATE INDEX customers_updated ON customers (tenant_id, updated_at);
CREATE INDEX customer_merges_at ON customer_merges (tenant_id, id);

-- +goose Down
DROP INDEX customer_merges_at;
DROP INDEX customers_updated;
