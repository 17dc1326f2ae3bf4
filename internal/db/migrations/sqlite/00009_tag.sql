-- +goose Up
-- Tags (标签体系): groups along the operating dimensions, tags within them,
-- which customers hold which tag (with where each application came from),
-- and the history of every change for the customer timeline.

CREATE TABLE tag_groups (
    id              INTEGER PRIMARY KEY,
    tenant_id       BIGINT   NOT NULL REFERENCES workspaces(id),
    name            TEXT     NOT NULL,
    dimension       TEXT     NOT NULL DEFAULT 'other'
                    CHECK (dimension IN ('product', 'customer', 'value', 'lifecycle', 'channel', 'other')),
    sort_order      INTEGER  NOT NULL DEFAULT 0,
    description     TEXT     NOT NULL DEFAULT '',
    -- WeCom corp tag group (企业客户标签组) this group is bound to, once synced.
    wecom_group_id  TEXT,
    created_at      BIGINT   NOT NULL,
    updated_at      BIGINT   NOT NULL
);
CREATE UNIQUE INDEX tag_groups_name ON tag_groups (tenant_id, name);
CREATE UNIQUE INDEX tag_groups_wecom ON tag_groups (tenant_id, wecom_group_id);

-- customer_count is kept by every write that adds or removes applications, in
-- the same transaction, so tag lists show counts without counting millions.
CREATE TABLE tags (
    id              INTEGER  PRIMARY KEY,
    tenant_id       BIGINT   NOT NULL REFERENCES workspaces(id),
    group_id        BIGINT   NOT NULL REFERENCES tag_groups(id),
    name            TEXT     NOT NULL,
    color           TEXT     NOT NULL DEFAULT '#8C8C8C',
    sort_order      INTEGER  NOT NULL DEFAULT 0,
    description     TEXT     NOT NULL DEFAULT '',
    wecom_tag_id    TEXT,
    customer_count  BIGINT   NOT NULL DEFAULT 0,
    created_at      BIGINT   NOT NULL,
    updated_at      BIGINT   NOT NULL
);
CREATE UNIQUE INDEX tags_group_name ON tags (tenant_id, group_id, name);
CREATE INDEX tags_name ON tags (tenant_id, name);
CREATE UNIQUE INDEX tags_wecom ON tags (tenant_id, wecom_tag_id);

-- One row per (customer, tag) held. source: manual, api, rule, code, import,
-- sync; source_ref names the rule, channel code, staff member or key.
CREATE TABLE customer_tags (
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    customer_id BIGINT  NOT NULL REFERENCES customers(id),
    tag_id      BIGINT  NOT NULL REFERENCES tags(id),
    source      TEXT    NOT NULL,
    source_ref  TEXT    NOT NULL DEFAULT '',
    applied_by  TEXT    NOT NULL DEFAULT '',
    applied_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag_id)
);
-- "Who has tag X", and the ordered snapshot the audience index rebuilds from.
CREATE INDEX customer_tags_tag ON customer_tags (tenant_id, tag_id, customer_id);

-- Every add and remove, for the timeline. tag_ref keeps "group/name" as it
-- was, so entries stay readable after a tag is renamed or deleted.
CREATE TABLE tag_history (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    customer_id  BIGINT  NOT NULL,
    tag_id       BIGINT  NOT NULL,
    tag_ref      TEXT    NOT NULL,
    action       TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    source       TEXT    NOT NULL,
    source_ref   TEXT    NOT NULL DEFAULT '',
    actor        TEXT    NOT NULL DEFAULT '',
    at           BIGINT  NOT NULL
);
CREATE INDEX tag_history_customer ON tag_history (tenant_id, customer_id, at, id);

-- +goose Down
DROP TABLE tag_history;
DROP TABLE customer_tags;
DROP TABLE tags;
DROP TABLE tag_groups;
