-- +goose Up
-- Custom customer attributes (traits): catalogued as they first arrive with an
-- inferred type; an operator may then define one (display name, type), after
-- which writes of another type are rejected and counted.
CREATE TABLE customer_attributes (
    tenant_id       BIGINT   NOT NULL REFERENCES workspaces(id),
    name            TEXT     NOT NULL,
    display_name    TEXT     NOT NULL DEFAULT '',
    type            TEXT     NOT NULL,
    defined         BOOLEAN  NOT NULL DEFAULT FALSE,
    first_seen_at   BIGINT   NOT NULL,
    last_seen_at    BIGINT   NOT NULL,
    rejected_count  BIGINT   NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, name)
);

-- +goose Down
DROP TABLE customer_attributes;
