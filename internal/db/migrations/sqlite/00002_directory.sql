-- +goose Up
-- Stores (门店) and staff (员工: 导购, 客服) of a brand.
CREATE TABLE stores (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    code        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    province    TEXT    NOT NULL DEFAULT '',
    city        TEXT    NOT NULL DEFAULT '',
    address     TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX stores_code ON stores (tenant_id, code);

CREATE TABLE staff (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    name          TEXT    NOT NULL,
    title         TEXT    NOT NULL DEFAULT '',
    store_id      BIGINT  REFERENCES stores(id),
    wecom_userid  TEXT,
    status        TEXT    NOT NULL DEFAULT 'active',
    created_at    BIGINT  NOT NULL,
    resigned_at   BIGINT
);
CREATE INDEX staff_tenant ON staff (tenant_id, id);
CREATE UNIQUE INDEX staff_wecom ON staff (tenant_id, wecom_userid);

-- +goose Down
DROP TABLE staff;
DROP TABLE stores;
