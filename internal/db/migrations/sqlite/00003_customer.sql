-- +goose Up
-- One row per real person (One ID). Phone numbers are stored encrypted, with
-- a masked form for lists; identities hold the blind index for lookups.
CREATE TABLE customers (
    id                 INTEGER PRIMARY KEY,
    tenant_id          BIGINT  NOT NULL REFERENCES workspaces(id),
    name               TEXT    NOT NULL DEFAULT '',
    gender             TEXT    NOT NULL DEFAULT '',
    birthday           TEXT    NOT NULL DEFAULT '',
    province           TEXT    NOT NULL DEFAULT '',
    city               TEXT    NOT NULL DEFAULT '',
    phone_enc          TEXT    NOT NULL DEFAULT '',
    phone_masked       TEXT    NOT NULL DEFAULT '',
    email              TEXT    NOT NULL DEFAULT '',
    avatar             TEXT    NOT NULL DEFAULT '',
    traits             TEXT    NOT NULL DEFAULT '{}',
    first_source       TEXT    NOT NULL DEFAULT '',
    first_source_code  TEXT    NOT NULL DEFAULT '',
    first_seen_at      BIGINT  NOT NULL,
    last_seen_at       BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    merged_into        BIGINT
);
CREATE INDEX customers_tenant ON customers (tenant_id, id);
CREATE INDEX customers_name ON customers (tenant_id, name);

-- Identifiers of typed kinds (user_id, phone, wecom_external_userid, …) that
-- point at one customer. A value belongs to at most one customer.
CREATE TABLE customer_identities (
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    kind         TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    customer_id  BIGINT  NOT NULL REFERENCES customers(id),
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE INDEX customer_identities_customer ON customer_identities (tenant_id, customer_id);

-- +goose Down
DROP TABLE customer_identities;
DROP TABLE customers;
