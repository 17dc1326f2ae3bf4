-- +goose Up
-- Auto-tag rules (自动打标): when something happens to a customer (an event,
-- a paid or refunded order, an attribute change) or on a daily schedule, if
-- the rule's conditions hold, add and/or remove tags. definition holds the
-- trigger, condition tree, expression and actions as JSON; the columns beside
-- it are what the engine filters and counts by.
CREATE TABLE tag_rules (
    id              INTEGER PRIMARY KEY,
    tenant_id       BIGINT   NOT NULL REFERENCES workspaces(id),
    name            TEXT     NOT NULL,
    description     TEXT     NOT NULL DEFAULT '',
    enabled         BOOLEAN  NOT NULL DEFAULT TRUE,
    trigger_kind    TEXT     NOT NULL
                    CHECK (trigger_kind IN ('event', 'order_paid', 'order_refunded', 'attribute_changed', 'schedule')),
    definition      TEXT     NOT NULL,
    -- schedule rules: when the next daily run is due (NULL otherwise, or disabled).
    next_run_at     BIGINT,
    -- attribute_changed rules: profile changes at or after this are still to be looked at.
    watch_from      BIGINT,
    -- statistics, kept by the engine
    fired_count     BIGINT   NOT NULL DEFAULT 0,
    changed_count   BIGINT   NOT NULL DEFAULT 0,
    last_fired_at   BIGINT,
    last_error      TEXT     NOT NULL DEFAULT '',
    last_error_at   BIGINT,
    created_by      TEXT     NOT NULL DEFAULT '',
    created_at      BIGINT   NOT NULL,
    updated_at      BIGINT   NOT NULL
);
CREATE UNIQUE INDEX tag_rules_name ON tag_rules (tenant_id, name);
CREATE INDEX tag_rules_due ON tag_rules (next_run_at) WHERE next_run_at IS NOT NULL;

-- Runs of a rule over the whole workspace: back-fills asked for through the
-- API, and the daily runs of schedule rules. The table is the queue; a worker
-- holds a job by its lease and writes progress after every chunk.
CREATE TABLE tag_rule_jobs (
    id              INTEGER PRIMARY KEY,
    tenant_id       BIGINT   NOT NULL REFERENCES workspaces(id),
    rule_id         BIGINT   NOT NULL REFERENCES tag_rules(id),
    kind            TEXT     NOT NULL CHECK (kind IN ('backfill', 'schedule')),
    status          TEXT     NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    total           BIGINT   NOT NULL DEFAULT 0,
    done            BIGINT   NOT NULL DEFAULT 0,
    matched         BIGINT   NOT NULL DEFAULT 0,
    tagged          BIGINT   NOT NULL DEFAULT 0,
    untagged        BIGINT   NOT NULL DEFAULT 0,
    error           TEXT     NOT NULL DEFAULT '',
    lease_owner     TEXT     NOT NULL DEFAULT '',
    lease_until     BIGINT   NOT NULL DEFAULT 0,
    created_by      TEXT     NOT NULL DEFAULT '',
    created_at      BIGINT   NOT NULL,
    updated_at      BIGINT   NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX tag_rule_jobs_rule ON tag_rule_jobs (tenant_id, rule_id, id);
CREATE INDEX tag_rule_jobs_queue ON tag_rule_jobs (status, lease_until);

-- What an attribute_changed rule last saw of each customer: a digest of the
-- watched attributes' values. A compare-and-set on it decides that a change
-- fires the rule once, whichever node sees it first.
CREATE TABLE tag_rule_seen (
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    rule_id      BIGINT  NOT NULL,
    customer_id  BIGINT  NOT NULL,
    digest       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, rule_id, customer_id)
);

-- +goose Down
DROP TABLE tag_rule_seen;
DROP TABLE tag_rule_jobs;
DROP TABLE tag_rules;
