-- +goose Up
-- Channel codes (渠道活码): WeCom 联系我 QR codes per source, with the staff
-- policy that decides who the next customer adds, and every add and
-- deletion through them.

-- One row per code. config is the operator's settings as JSON (staff pool
-- with weights, schedules, caps and backups; tags; welcome message; remark
-- templates; group code). want_users is the user list the policy chose for
-- the next add and users the list WeCom has; a worker brings WeCom in line
-- (update_contact_way) whenever they differ. rotation is the smooth
-- weighted round-robin state (JSON: userid → current weight). qr_png caches
-- the image behind qr_code, fetched once.
CREATE TABLE acquire_codes (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    name         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    store_id     BIGINT  REFERENCES stores(id),
    status       TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    config       TEXT    NOT NULL DEFAULT '{}',
    config_id    TEXT    NOT NULL DEFAULT '',
    qr_code      TEXT    NOT NULL DEFAULT '',
    qr_png       BLOB,
    rotation     TEXT    NOT NULL DEFAULT '{}',
    want_users   TEXT    NOT NULL DEFAULT '',
    users        TEXT    NOT NULL DEFAULT '',
    sync_error   TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX acquire_codes_tenant ON acquire_codes (tenant_id, id);
-- The state comes back in each add: it names one code of the workspace.
CREATE UNIQUE INDEX acquire_codes_state ON acquire_codes (tenant_id, state);
-- One store code per store (门店活码).
CREATE UNIQUE INDEX acquire_codes_store ON acquire_codes (tenant_id, store_id) WHERE store_id IS NOT NULL AND status = 'active';

-- Adds and deletions through codes, one row per WeCom event (event_key is
-- its identity, so a redelivered callback records nothing twice). first is
-- set on the add that brought a customer to Siyu's codes for the first time.
CREATE TABLE acquire_events (
    id               INTEGER PRIMARY KEY,
    tenant_id        BIGINT  NOT NULL REFERENCES workspaces(id),
    code_id          BIGINT  NOT NULL REFERENCES acquire_codes(id),
    event_key        TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('add', 'delete')),
    customer_id      BIGINT  NOT NULL DEFAULT 0,
    userid           TEXT    NOT NULL,
    external_userid  TEXT    NOT NULL,
    first            BOOLEAN NOT NULL DEFAULT FALSE,
    welcome          TEXT    NOT NULL DEFAULT '',
    at               BIGINT  NOT NULL
);
CREATE UNIQUE INDEX acquire_events_key ON acquire_events (tenant_id, event_key);
CREATE INDEX acquire_events_code ON acquire_events (tenant_id, code_id, at);
CREATE INDEX acquire_events_pair ON acquire_events (tenant_id, userid, external_userid, id);

-- The code that first brought each customer; later adds are in acquire_events.
CREATE TABLE acquire_customers (
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    customer_id  BIGINT  NOT NULL,
    code_id      BIGINT  NOT NULL REFERENCES acquire_codes(id),
    added_at     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE INDEX acquire_customers_code ON acquire_customers (tenant_id, code_id);

-- +goose Down
DROP TABLE acquire_customers;
DROP TABLE acquire_events;
DROP TABLE acquire_codes;
