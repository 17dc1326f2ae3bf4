-- +goose Up
-- Moments (客户朋友圈): publishing tasks created in WeCom through
-- add_moment_task, one row per task, with each sender's state and the
-- customers who can see it.
--
-- status: pending (to be sent to WeCom), submitting (sent, the outcome not
-- yet known: a crash or a network error mid-call; the worker looks for the
-- moment in WeCom's list before it ever sends again), creating (WeCom's job
-- is running: job_id), publishing (moment_id known; results polled until
-- every sender published or deadline_at), finished, cancelled, failed
-- (error_code, error_message). idempotency_key makes creation retry-safe.
CREATE TABLE moment_tasks (
    id                INTEGER PRIMARY KEY,
    tenant_id         BIGINT  NOT NULL REFERENCES workspaces(id),
    idempotency_key   TEXT    NOT NULL,
    text              TEXT    NOT NULL DEFAULT '',
    attachments       TEXT    NOT NULL DEFAULT '[]',
    tag_ids           TEXT    NOT NULL DEFAULT '[]',
    wecom_tag_ids     TEXT    NOT NULL DEFAULT '[]',
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'submitting', 'creating', 'publishing', 'finished', 'cancelled', 'failed')),
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    job_id            TEXT    NOT NULL DEFAULT '',
    moment_id         TEXT    NOT NULL DEFAULT '',
    invalid_senders   TEXT    NOT NULL DEFAULT '[]',
    invalid_tags      TEXT    NOT NULL DEFAULT '[]',
    error_code        TEXT    NOT NULL DEFAULT '',
    error_message     TEXT    NOT NULL DEFAULT '',
    sender_count      INTEGER NOT NULL DEFAULT 0,
    published_count   INTEGER NOT NULL DEFAULT 0,
    visible_count     BIGINT  NOT NULL DEFAULT 0,
    reached_count     BIGINT  NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    polls             INTEGER NOT NULL DEFAULT 0,
    created_by        TEXT    NOT NULL DEFAULT '',
    submitted_at      BIGINT  NOT NULL DEFAULT 0,
    deadline_at       BIGINT  NOT NULL,
    next_poll_at      BIGINT  NOT NULL DEFAULT 0,
    lease_until       BIGINT  NOT NULL DEFAULT 0,
    polled_at         BIGINT  NOT NULL DEFAULT 0,
    finished_at       BIGINT  NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX moment_tasks_key ON moment_tasks (tenant_id, idempotency_key);
CREATE INDEX moment_tasks_tenant ON moment_tasks (tenant_id, id);
-- The worker's queue: only tasks still moving are indexed.
CREATE INDEX moment_tasks_due ON moment_tasks (next_poll_at, id)
    WHERE status IN ('pending', 'submitting', 'creating', 'publishing');

-- Each sender (staff member asked to publish) of a task. status: pending (not
-- published yet; "not published" once the task is final), published,
-- invalid (WeCom refused the sender), cancelled (the task was cancelled
-- before they published).
CREATE TABLE moment_senders (
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    task_id         BIGINT  NOT NULL REFERENCES moment_tasks(id),
    userid          TEXT    NOT NULL,
    staff_id        BIGINT  NOT NULL DEFAULT 0,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'published', 'invalid', 'cancelled')),
    published_at    BIGINT  NOT NULL DEFAULT 0,
    visible_count   BIGINT  NOT NULL DEFAULT 0,
    reached_count   BIGINT  NOT NULL DEFAULT 0,
    range_fetched   INTEGER NOT NULL DEFAULT 0,
    sent_fetched    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, task_id, userid)
);

-- Customers in a sender's range (get_moment_customer_list); reached: WeCom
-- lists them among those who can see the published moment
-- (get_moment_send_result). customer_id: their Siyu profile, when known.
CREATE TABLE moment_customers (
    tenant_id        BIGINT  NOT NULL REFERENCES workspaces(id),
    task_id          BIGINT  NOT NULL REFERENCES moment_tasks(id),
    userid           TEXT    NOT NULL,
    external_userid  TEXT    NOT NULL,
    customer_id      BIGINT,
    reached          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, task_id, userid, external_userid)
);

-- +goose Down
DROP TABLE moment_customers;
DROP TABLE moment_senders;
DROP TABLE moment_tasks;
