-- +goose Up
-- WeCom (企业微信) connector: per-workspace settings, the durable callback
-- inbox, and WeCom's view of contacts, customer groups and corp tags. Staff ↔
-- customer relations live with staff (00017).

-- One row per connected workspace. The app secret, callback token and
-- EncodingAESKey are encrypted with the personal-data key; never shown.
CREATE TABLE wecom_settings (
    tenant_id     BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    corp_id       TEXT    NOT NULL,
    agent_id      BIGINT  NOT NULL DEFAULT 0,
    secret_enc    TEXT    NOT NULL,
    token_enc     TEXT    NOT NULL,
    aes_key_enc   TEXT    NOT NULL,
    base_url      TEXT    NOT NULL DEFAULT '',
    verified_at   BIGINT  NOT NULL DEFAULT 0,
    test_at       BIGINT  NOT NULL DEFAULT 0,
    test_errcode  BIGINT  NOT NULL DEFAULT 0,
    test_message  TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- Every callback WeCom delivered, decrypted, stored before it is answered and
-- processed asynchronously. event_key is the event's identity: a redelivery
-- is recorded (deliveries) but stored once.
CREATE TABLE wecom_inbox (
    id                INTEGER PRIMARY KEY,
    tenant_id         BIGINT  NOT NULL REFERENCES workspaces(id),
    event_key         TEXT    NOT NULL,
    msg_type          TEXT    NOT NULL DEFAULT '',
    event             TEXT    NOT NULL DEFAULT '',
    change_type       TEXT    NOT NULL DEFAULT '',
    subject           TEXT    NOT NULL DEFAULT '',
    event_time        BIGINT  NOT NULL,
    payload           TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'done', 'failed', 'ignored')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT  NOT NULL DEFAULT 0,
    lease_owner       TEXT    NOT NULL DEFAULT '',
    lease_until       BIGINT  NOT NULL DEFAULT 0,
    error             TEXT    NOT NULL DEFAULT '',
    note              TEXT    NOT NULL DEFAULT '',
    deliveries        INTEGER NOT NULL DEFAULT 1,
    received_at       BIGINT  NOT NULL,
    last_received_at  BIGINT  NOT NULL,
    processed_at      BIGINT
);
CREATE UNIQUE INDEX wecom_inbox_key ON wecom_inbox (tenant_id, event_key);
CREATE INDEX wecom_inbox_tenant ON wecom_inbox (tenant_id, id);
-- The worker's queue: only rows still to process are indexed.
CREATE INDEX wecom_inbox_due ON wecom_inbox (next_attempt_at, id) WHERE status = 'pending';

-- External contacts (外部联系人) as WeCom describes them, each tied to its
-- Siyu customer. fetched_at: when the details were last read from the API.
CREATE TABLE wecom_contacts (
    tenant_id        BIGINT  NOT NULL REFERENCES workspaces(id),
    external_userid  TEXT    NOT NULL,
    customer_id      BIGINT  NOT NULL REFERENCES customers(id),
    name             TEXT    NOT NULL DEFAULT '',
    avatar           TEXT    NOT NULL DEFAULT '',
    type             INTEGER NOT NULL DEFAULT 0,
    gender           INTEGER NOT NULL DEFAULT 0,
    unionid          TEXT    NOT NULL DEFAULT '',
    corp_name        TEXT    NOT NULL DEFAULT '',
    corp_full_name   TEXT    NOT NULL DEFAULT '',
    position         TEXT    NOT NULL DEFAULT '',
    fetched_at       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, external_userid)
);
CREATE INDEX wecom_contacts_customer ON wecom_contacts (tenant_id, customer_id);

-- Customer groups (客户群). member_version is WeCom's version of the member
-- list; a change event whose previous version differs means one was missed.
-- event_at orders changes that arrive out of order.
CREATE TABLE wecom_groups (
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    chat_id         TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    owner_userid    TEXT    NOT NULL DEFAULT '',
    notice          TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'dismissed')),
    member_version  TEXT    NOT NULL DEFAULT '',
    member_count    INTEGER NOT NULL DEFAULT 0,
    created_time    BIGINT  NOT NULL DEFAULT 0,
    dismissed_at    BIGINT  NOT NULL DEFAULT 0,
    event_at        BIGINT  NOT NULL DEFAULT 0,
    synced_at       BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, chat_id)
);

-- Members of customer groups, present and past. member_type: 1 staff,
-- 2 external contact; customer_id is set for external contacts.
CREATE TABLE wecom_group_members (
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    chat_id         TEXT    NOT NULL,
    member_id       TEXT    NOT NULL,
    member_type     INTEGER NOT NULL DEFAULT 0,
    customer_id     BIGINT,
    unionid         TEXT    NOT NULL DEFAULT '',
    name            TEXT    NOT NULL DEFAULT '',
    group_nickname  TEXT    NOT NULL DEFAULT '',
    invitor_userid  TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'in' CHECK (status IN ('in', 'left')),
    join_time       BIGINT  NOT NULL DEFAULT 0,
    join_scene      INTEGER NOT NULL DEFAULT 0,
    left_at         BIGINT  NOT NULL DEFAULT 0,
    quit_scene      INTEGER NOT NULL DEFAULT 0,
    event_at        BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, chat_id, member_id)
);
CREATE INDEX wecom_group_members_customer ON wecom_group_members (tenant_id, customer_id);

-- The corp's customer tags (企业客户标签) and tag groups as WeCom has them,
-- bound to Siyu tags or not. kind: group or tag; group_id names a tag's group.
CREATE TABLE wecom_corp_tags (
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    id            TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('group', 'tag')),
    group_id      TEXT    NOT NULL DEFAULT '',
    name          TEXT    NOT NULL,
    sort_order    BIGINT  NOT NULL DEFAULT 0,
    created_time  BIGINT  NOT NULL DEFAULT 0,
    synced_at     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- What WeCom told about a customer, for the timeline: contact added or
-- deleted, group joined or left, transfer failed. dedupe_key makes
-- reprocessing an event harmless.
CREATE TABLE wecom_customer_events (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    customer_id   BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,
    at            BIGINT  NOT NULL,
    staff_userid  TEXT    NOT NULL DEFAULT '',
    chat_id       TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT '{}',
    dedupe_key    TEXT    NOT NULL,
    inbox_id      BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX wecom_customer_events_key ON wecom_customer_events (tenant_id, dedupe_key);
CREATE INDEX wecom_customer_events_customer ON wecom_customer_events (tenant_id, customer_id, at, id);

-- +goose Down
DROP TABLE wecom_customer_events;
DROP TABLE wecom_corp_tags;
DROP TABLE wecom_group_members;
DROP TABLE wecom_groups;
DROP TABLE wecom_contacts;
DROP TABLE wecom_inbox;
DROP TABLE wecom_settings;
