-- +goose Up
-- Saved audiences (人群). Membership is live: the index re-evaluates them as
-- customers change, records who entered and left, and keeps a snapshot of the
-- members (a serialized roaring bitmap of customer ids) so that changes made
-- while Siyu was down are still noticed at the next start.
CREATE TABLE audiences (
    id                INTEGER PRIMARY KEY,
    tenant_id         BIGINT  NOT NULL REFERENCES workspaces(id),
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    conditions        TEXT    NOT NULL,
    member_count      BIGINT  NOT NULL DEFAULT 0,
    members           BLOB,
    evaluated_at      BIGINT,
    created_by        TEXT    NOT NULL DEFAULT '',
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    archived_at       BIGINT
);
CREATE UNIQUE INDEX audiences_name ON audiences (tenant_id, name);

-- Who entered and left each audience, for journeys and the timeline.
CREATE TABLE audience_changes (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    audience_id  BIGINT  NOT NULL REFERENCES audiences(id),
    customer_id  BIGINT  NOT NULL,
    entered      BOOLEAN NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX audience_changes_audience ON audience_changes (tenant_id, audience_id, id);
CREATE INDEX audience_changes_customer ON audience_changes (tenant_id, customer_id, at);

-- +goose Down
DROP TABLE audience_changes;
DROP TABLE audiences;
