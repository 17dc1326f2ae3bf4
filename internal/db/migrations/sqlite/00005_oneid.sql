-- +goose Up
-- Identity rules per workspace (blocked values, limits per kind, priority) as
-- a JSON document; absent means the defaults.
CREATE TABLE identity_rules (
    tenant_id   BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    rules       TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- Every merge of two profiles: which survived, which was merged, and why, so
-- an operator can see why two people became one.
CREATE TABLE customer_merges (
    id              INTEGER PRIMARY KEY,
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    survivor_id     BIGINT  NOT NULL,
    merged_id       BIGINT  NOT NULL,
    identity_kind   TEXT    NOT NULL,
    identity_value  TEXT    NOT NULL,
    message_id      TEXT    NOT NULL DEFAULT '',
    source          TEXT    NOT NULL DEFAULT '',
    merged_at       BIGINT  NOT NULL
);
CREATE INDEX customer_merges_survivor ON customer_merges (tenant_id, survivor_id, merged_at);
CREATE INDEX customer_merges_merged ON customer_merges (tenant_id, merged_id);

-- +goose Down
DROP TABLE customer_merges;
DROP TABLE identity_rules;
