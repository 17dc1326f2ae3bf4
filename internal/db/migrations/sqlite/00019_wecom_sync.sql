-- +goose Up
-- WeCom sync: full syncs and reconciliations as resumable jobs, and the
-- durable queue that marks corp tags in WeCom when Siyu tags bound to them
-- are applied or removed.

-- One row per sync run. state holds the position to resume from (JSON: the
-- follow-user batch and its next_cursor, the group list cursor, …), saved in
-- the same transaction as each page it covers. A worker holds a run by its
-- lease; at most one run per workspace is queued or running.
CREATE TABLE wecom_sync_runs (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('full', 'reconcile', 'tags')),
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    phase         TEXT    NOT NULL DEFAULT '',
    phase_done    BIGINT  NOT NULL DEFAULT 0,
    phase_total   BIGINT  NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT '{}',
    counts        TEXT    NOT NULL DEFAULT '{}',
    error         TEXT    NOT NULL DEFAULT '',
    errcode       BIGINT  NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    requested_by  TEXT    NOT NULL DEFAULT '',
    lease_owner   TEXT    NOT NULL DEFAULT '',
    lease_until   BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    started_at    BIGINT  NOT NULL DEFAULT 0,
    finished_at   BIGINT  NOT NULL DEFAULT 0,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX wecom_sync_runs_tenant ON wecom_sync_runs (tenant_id, id);
-- One sync per workspace at a time, on every node.
CREATE UNIQUE INDEX wecom_sync_runs_active ON wecom_sync_runs (tenant_id) WHERE status IN ('queued', 'running');

-- The (staff member, customer) pairs a run read from WeCom, so that current
-- relations WeCom no longer lists can be ended. Emptied when the run ends.
CREATE TABLE wecom_sync_seen (
    tenant_id        BIGINT  NOT NULL REFERENCES workspaces(id),
    run_id           BIGINT  NOT NULL,
    external_userid  TEXT    NOT NULL,
    staff_userid     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, run_id, external_userid, staff_userid)
);

-- How far the tag history has been read for changes to push to WeCom.
CREATE TABLE wecom_tag_feed (
    tenant_id   BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    history_id  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- Marks to make in WeCom (externalcontact/mark_tag): one per tag history row
-- of a bound tag that did not come from WeCom, so a retry or a second reader
-- never queues it twice. A newer row for the same customer and tag supersedes
-- an older one still waiting.
CREATE TABLE wecom_tag_marks (
    id               INTEGER PRIMARY KEY,
    tenant_id        BIGINT  NOT NULL REFERENCES workspaces(id),
    history_id       BIGINT  NOT NULL,
    customer_id      BIGINT  NOT NULL,
    tag_id           BIGINT  NOT NULL,
    wecom_tag_id     TEXT    NOT NULL,
    action           TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed', 'superseded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    marked           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL DEFAULT 0,
    lease_owner      TEXT    NOT NULL DEFAULT '',
    lease_until      BIGINT  NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    note             TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    processed_at     BIGINT  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX wecom_tag_marks_history ON wecom_tag_marks (tenant_id, history_id);
CREATE INDEX wecom_tag_marks_customer ON wecom_tag_marks (tenant_id, customer_id, tag_id, history_id);
-- The worker's queue: only rows still to send are indexed.
CREATE INDEX wecom_tag_marks_due ON wecom_tag_marks (next_attempt_at, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE wecom_tag_marks;
DROP TABLE wecom_tag_feed;
DROP TABLE wecom_sync_seen;
DROP TABLE wecom_sync_runs;
