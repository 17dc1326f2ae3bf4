-- +goose Up
-- Commerce: the brand's catalogue, orders from every channel, their refunds,
-- and each customer's spend. Money is integer fen (分) everywhere.

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    sku         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL DEFAULT '',
    price_fen   BIGINT  NOT NULL DEFAULT 0 CHECK (price_fen >= 0),
    currency    TEXT    NOT NULL DEFAULT 'CNY',
    status      TEXT    NOT NULL DEFAULT 'active',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku);

-- One row per order of a source system, keyed by (source, order_id). status
-- is derived: paid becomes partially_refunded or refunded as refunds arrive.
-- paid_fen = total_fen - discount_fen; total_fen is the sum of the items.
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    source        TEXT    NOT NULL,
    order_id      TEXT    NOT NULL,
    customer_id   BIGINT  NOT NULL REFERENCES customers(id),
    status        TEXT    NOT NULL,
    currency      TEXT    NOT NULL DEFAULT 'CNY',
    total_fen     BIGINT  NOT NULL,
    discount_fen  BIGINT  NOT NULL DEFAULT 0,
    paid_fen      BIGINT  NOT NULL,
    refunded_fen  BIGINT  NOT NULL DEFAULT 0,
    store_id      BIGINT  REFERENCES stores(id),
    store_code    TEXT    NOT NULL DEFAULT '',
    coupon_code   TEXT    NOT NULL DEFAULT '',
    ordered_at    BIGINT  NOT NULL,
    paid_at       BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CHECK (total_fen >= 0 AND discount_fen >= 0 AND discount_fen <= total_fen),
    CHECK (paid_fen = total_fen - discount_fen),
    CHECK (refunded_fen >= 0 AND refunded_fen <= paid_fen)
);
CREATE UNIQUE INDEX orders_source_order ON orders (tenant_id, source, order_id);
CREATE INDEX orders_customer ON orders (tenant_id, customer_id, ordered_at, id);
CREATE INDEX orders_tenant ON orders (tenant_id, ordered_at, id);

CREATE TABLE order_items (
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    order_row_id    BIGINT  NOT NULL REFERENCES orders(id),
    line_no         INTEGER NOT NULL,
    sku             TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    category        TEXT    NOT NULL DEFAULT '',
    quantity        BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price_fen  BIGINT  NOT NULL CHECK (unit_price_fen >= 0),
    amount_fen      BIGINT  NOT NULL CHECK (amount_fen = quantity * unit_price_fen),
    PRIMARY KEY (order_row_id, line_no)
);
CREATE INDEX order_items_sku ON order_items (tenant_id, sku);

CREATE TABLE refunds (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    order_row_id  BIGINT  NOT NULL REFERENCES orders(id),
    refund_id     TEXT    NOT NULL,
    amount_fen    BIGINT  NOT NULL CHECK (amount_fen > 0),
    reason        TEXT    NOT NULL DEFAULT '',
    refunded_at   BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX refunds_refund_id ON refunds (tenant_id, order_row_id, refund_id);

-- Per-customer spend over orders that were paid (paid, partially_refunded,
-- refunded), rewritten in the same transaction as every order or refund
-- write, so it is always consistent and cheap to read (RFM reads it).
CREATE TABLE customer_spend (
    tenant_id             BIGINT  NOT NULL REFERENCES workspaces(id),
    customer_id           BIGINT  NOT NULL REFERENCES customers(id),
    order_count           BIGINT  NOT NULL DEFAULT 0,
    refunded_order_count  BIGINT  NOT NULL DEFAULT 0,
    paid_fen              BIGINT  NOT NULL DEFAULT 0,
    refunded_fen          BIGINT  NOT NULL DEFAULT 0,
    first_order_at        BIGINT,
    last_order_at         BIGINT,
    updated_at            BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- +goose Down
DROP TABLE customer_spend;
DROP TABLE refunds;
DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE products;
