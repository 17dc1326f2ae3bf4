-- +goose Up
-- Staff handover (在职转接 / 离职继承): one job per request to move a staff
-- member's customers and groups to another, with one item per customer and
-- per group. The job is the queue: a worker sends pending items to WeCom in
-- chunks of at most 100, then polls the transfer results until every item is
-- final. idem_key makes a retried request return the job it created.
CREATE TABLE handover_jobs (
    id                 INTEGER PRIMARY KEY,
    tenant_id          BIGINT  NOT NULL REFERENCES workspaces(id),
    kind               TEXT    NOT NULL CHECK (kind IN ('onjob', 'resigned')),
    handover_staff_id  BIGINT  NOT NULL REFERENCES staff(id),
    takeover_staff_id  BIGINT  NOT NULL REFERENCES staff(id),
    handover_userid    TEXT    NOT NULL,
    takeover_userid    TEXT    NOT NULL,
    message            TEXT    NOT NULL DEFAULT '',
    status             TEXT    NOT NULL CHECK (status IN ('running', 'done')),
    idem_key           TEXT    NOT NULL,
    created_by         TEXT    NOT NULL DEFAULT '',
    last_error         TEXT    NOT NULL DEFAULT '',
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_run_at        BIGINT  NOT NULL DEFAULT 0,
    lease_until        BIGINT  NOT NULL DEFAULT 0,
    created_at         BIGINT  NOT NULL,
    finished_at        BIGINT  NOT NULL DEFAULT 0,
    updated_at         BIGINT  NOT NULL
);
CREATE UNIQUE INDEX handover_jobs_idem ON handover_jobs (tenant_id, idem_key);
CREATE INDEX handover_jobs_tenant ON handover_jobs (tenant_id, id);
CREATE INDEX handover_jobs_due ON handover_jobs (next_run_at) WHERE status = 'running';

-- state: pending (to send), sending (sent, answer not recorded: resolved
-- from WeCom's transfer results before anything is sent again), waiting
-- (WeCom accepted; the customer has 24 h), done, refused (the customer
-- refused), failed, skipped (not sent: a rule or check said no). reason is
-- a machine-readable code, detail the explanation shown.
CREATE TABLE handover_items (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    job_id       BIGINT  NOT NULL REFERENCES handover_jobs(id),
    kind         TEXT    NOT NULL CHECK (kind IN ('customer', 'group')),
    external_id  TEXT    NOT NULL,
    customer_id  BIGINT,
    name         TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'waiting', 'done', 'refused', 'failed', 'skipped')),
    reason       TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '',
    errcode      BIGINT  NOT NULL DEFAULT 0,
    sent_at      BIGINT  NOT NULL DEFAULT 0,
    done_at      BIGINT  NOT NULL DEFAULT 0,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (tenant_id, job_id, kind, external_id)
);
CREATE INDEX handover_items_job ON handover_items (tenant_id, job_id, id);
-- The 2-transfers-in-90-days rule counts a customer's past transfers.
CREATE INDEX handover_items_external ON handover_items (tenant_id, external_id, kind);

-- A staff member's groups, for the list of staff to hand over.
CREATE INDEX wecom_groups_owner ON wecom_groups (tenant_id, owner_userid);

-- +goose Down
DROP INDEX wecom_groups_owner;
DROP TABLE handover_items;
DROP TABLE handover_jobs;
