-- +goose Up
-- Customer groups (社群): Siyu-side group tags, group codes (加入群聊) and
-- group welcome templates. The groups and their members themselves are the
-- WeCom connector's (wecom_groups, wecom_group_members, 00016).

-- Tags on groups, Siyu's own (WeCom has no group tags).
CREATE TABLE community_group_tags (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    name        TEXT    NOT NULL,
    color       TEXT    NOT NULL DEFAULT '#1677FF',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX community_group_tags_name ON community_group_tags (tenant_id, name);

-- Which groups carry which tags.
CREATE TABLE community_group_tag_links (
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    tag_id      BIGINT  NOT NULL,
    chat_id     TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, tag_id, chat_id)
);
CREATE INDEX community_group_tag_links_chat ON community_group_tag_links (tenant_id, chat_id);

-- Group codes: WeCom's config_id and QR code, and the groups WeCom lists for
-- the code now (chat_ids, a JSON array; it grows as WeCom opens new groups).
-- status pending: Siyu recorded the request (idem_key) but WeCom has not
-- answered yet; a retry with the same key finishes it.
CREATE TABLE community_group_codes (
    id                INTEGER PRIMARY KEY,
    tenant_id         BIGINT  NOT NULL REFERENCES workspaces(id),
    name              TEXT    NOT NULL,
    config_id         TEXT    NOT NULL DEFAULT '',
    qr_code           TEXT    NOT NULL DEFAULT '',
    scene             INTEGER NOT NULL DEFAULT 2,
    remark            TEXT    NOT NULL DEFAULT '',
    state             TEXT    NOT NULL DEFAULT '',
    auto_create_room  INTEGER NOT NULL DEFAULT 1,
    room_base_name    TEXT    NOT NULL DEFAULT '',
    room_base_id      BIGINT  NOT NULL DEFAULT 0,
    chat_ids          TEXT    NOT NULL DEFAULT '[]',
    status            TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'deleted')),
    idem_key          TEXT    NOT NULL DEFAULT '',
    synced_at         BIGINT  NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    deleted_at        BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX community_group_codes_tenant ON community_group_codes (tenant_id, id);
CREATE UNIQUE INDEX community_group_codes_key ON community_group_codes (tenant_id, idem_key) WHERE idem_key <> '';

-- Group welcome templates (入群欢迎语素材): text plus at most one attachment
-- (JSON: {"msgtype": "image"|"link"|"miniprogram", …}), WeCom's template_id.
CREATE TABLE community_welcome_templates (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    name         TEXT    NOT NULL,
    template_id  TEXT    NOT NULL DEFAULT '',
    text         TEXT    NOT NULL DEFAULT '',
    attachment   TEXT    NOT NULL DEFAULT '',
    notify       INTEGER NOT NULL DEFAULT 1,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'deleted')),
    idem_key     TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    deleted_at   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX community_welcome_templates_tenant ON community_welcome_templates (tenant_id, id);
CREATE UNIQUE INDEX community_welcome_templates_key ON community_welcome_templates (tenant_id, idem_key) WHERE idem_key <> '';

-- Group membership changes are followed by the audience index through
-- wecom_groups.updated_at.
CREATE INDEX wecom_groups_updated ON wecom_groups (tenant_id, updated_at);

-- +goose Down
DROP INDEX wecom_groups_updated;
DROP TABLE community_welcome_templates;
DROP TABLE community_group_codes;
DROP TABLE community_group_tag_links;
DROP TABLE community_group_tags;
