-- +goose Up
-- Change feeds the audience index follows.
CREATE INDEX customer_spend_updated ON customer_spend (tenant_id, updated_at);
CREATE INDEX tag_history_at ON tag_history (tenant_id, at);

-- +goose Down
DROP INDEX tag_history_at;
DROP INDEX customer_spend_updated;
