-- +goose Up
-- Computed attributes (analytics): each customer's RFM scores and class,
-- lifecycle stage and fan tier, the thresholds a workspace chose for them,
-- and the state of the recompute job.

-- One row per live customer. A row is rewritten only when one of its values
-- changes, so updated_at is a change feed (the audience index follows it);
-- computed_at is the "as of" time of the run that produced the values.
CREATE TABLE customer_scores (
    tenant_id    BIGINT   NOT NULL REFERENCES workspaces(id),
    customer_id  BIGINT   NOT NULL REFERENCES customers(id),
    r            SMALLINT NOT NULL DEFAULT 0,
    f            SMALLINT NOT NULL DEFAULT 0,
    m            SMALLINT NOT NULL DEFAULT 0,
    rfm_class    TEXT     NOT NULL DEFAULT '',
    lifecycle    TEXT     NOT NULL DEFAULT '',
    fan_tier     TEXT     NOT NULL DEFAULT '',
    computed_at  BIGINT   NOT NULL,
    updated_at   BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE INDEX customer_scores_updated ON customer_scores (tenant_id, updated_at);

-- A workspace's thresholds (analytics.Settings as JSON); absent means the
-- defaults.
CREATE TABLE score_settings (
    tenant_id   BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    settings    TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- The recompute job of each workspace: a lease so that one node at a time
-- computes, the progress of the current or last full run, the score scale
-- (quintile boundaries and means) that incremental rescoring applies, and
-- how far the incremental pass has followed the change feeds.
CREATE TABLE score_runs (
    tenant_id         BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    lease_owner       TEXT    NOT NULL DEFAULT '',
    lease_until       BIGINT,
    requested_at      BIGINT,
    full_started_at   BIGINT,
    full_finished_at  BIGINT,
    full_processed    BIGINT  NOT NULL DEFAULT 0,
    full_total        BIGINT  NOT NULL DEFAULT 0,
    full_changed      BIGINT  NOT NULL DEFAULT 0,
    full_error        TEXT    NOT NULL DEFAULT '',
    scale             TEXT    NOT NULL DEFAULT '',
    followed_until    BIGINT,
    updated_at        BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE score_runs;
DROP TABLE score_settings;
DROP TABLE customer_scores;
