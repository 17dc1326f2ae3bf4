-- +goose Up
-- Workspaces are tenants: workspaces.id is the tenant_id of every other row.
CREATE TABLE workspaces (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    tenant_id      BIGINT  NOT NULL REFERENCES workspaces(id),
    email          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    locale         TEXT    NOT NULL DEFAULT '',
    created_at     BIGINT  NOT NULL,
    last_login_at  BIGINT,
    disabled_at    BIGINT
);
-- A login (email) identifies one user in one workspace.
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id, id);

CREATE TABLE sessions (
    token_hash    TEXT    PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    user_id       BIGINT  NOT NULL REFERENCES users(id),
    csrf_token    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    ip            TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_keys (
    id                  INTEGER PRIMARY KEY,
    tenant_id           BIGINT  NOT NULL REFERENCES workspaces(id),
    name                TEXT    NOT NULL,
    prefix              TEXT    NOT NULL,
    key_hash            TEXT    NOT NULL UNIQUE,
    role                TEXT    NOT NULL,
    created_by_user_id  BIGINT,
    created_at          BIGINT  NOT NULL,
    last_used_at        BIGINT,
    revoked_at          BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    actor_kind   TEXT    NOT NULL,
    actor_id     BIGINT  NOT NULL DEFAULT 0,
    actor_name   TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    target_kind  TEXT    NOT NULL DEFAULT '',
    target_id    TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '',
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE workspaces;
