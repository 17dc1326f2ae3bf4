-- +goose Up
-- Segment write keys. A write key is embedded in client apps and identifies a
-- workspace to the ingest endpoints; it is not a secret, so it is stored as is.
CREATE TABLE write_keys (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    key         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX write_keys_tenant ON write_keys (tenant_id, id);

-- The event log: every accepted Segment message (track, identify, page,
-- screen, group, alias), deduplicated on messageId per workspace. customer_id
-- and processed_at stay NULL until the processor has resolved the message to
-- a profile. JSON documents are stored as received.
CREATE TABLE events (
    id                  INTEGER PRIMARY KEY,
    tenant_id           BIGINT  NOT NULL REFERENCES workspaces(id),
    message_id          TEXT    NOT NULL,
    type                TEXT    NOT NULL,
    name                TEXT    NOT NULL DEFAULT '',
    user_id             TEXT    NOT NULL DEFAULT '',
    anonymous_id        TEXT    NOT NULL DEFAULT '',
    customer_id         BIGINT,
    timestamp           BIGINT  NOT NULL,
    sent_at             BIGINT,
    received_at         BIGINT  NOT NULL,
    original_timestamp  BIGINT,
    properties          TEXT    NOT NULL DEFAULT '{}',
    traits              TEXT    NOT NULL DEFAULT '{}',
    context             TEXT    NOT NULL DEFAULT '{}',
    integrations        TEXT    NOT NULL DEFAULT '{}',
    previous_id         TEXT    NOT NULL DEFAULT '',
    group_id            TEXT    NOT NULL DEFAULT '',
    processed_at        BIGINT,
    UNIQUE (tenant_id, message_id)
);
-- A customer's timeline, newest first. Only processed events have a customer,
-- so ingest does not pay for this index.
CREATE INDEX events_customer ON events (tenant_id, customer_id, timestamp) WHERE customer_id IS NOT NULL;
-- The processor's queue: only unprocessed rows are in it, so it stays small.
CREATE INDEX events_unprocessed ON events (id) WHERE processed_at IS NULL;

-- Messages the ingest endpoints refused (the rest of their batch was
-- accepted), and whole requests refused after the write key was known, so
-- engineers can see why an SDK's data did not arrive.
CREATE TABLE ingest_errors (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    received_at  BIGINT  NOT NULL,
    batch_index  INTEGER NOT NULL,
    message_id   TEXT    NOT NULL DEFAULT '',
    type         TEXT    NOT NULL DEFAULT '',
    code         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    payload      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX ingest_errors_tenant ON ingest_errors (tenant_id, id);

-- What has been seen: event names, their properties, and traits, with an
-- inferred type, so builders can offer them by name.
CREATE TABLE event_catalog (
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    kind        TEXT    NOT NULL,
    parent      TEXT    NOT NULL DEFAULT '',
    name        TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    first_seen  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    volume      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, kind, parent, name)
);

-- +goose Down
DROP TABLE event_catalog;
DROP TABLE ingest_errors;
DROP TABLE events;
DROP TABLE write_keys;
