-- +goose Up
-- The outbox (internal/message): every message to a customer or a group is an
-- envelope keyed (tenant_id, key); envelopes are delivered in batches (one
-- channel call for one sending account); mass messages are campaigns.

-- Per-workspace sending rules. cap_policy is the corp's WeCom setting for how
-- many mass messages a customer may receive: month (as many as the days of the
-- month), week (7) or day (1). Quiet hours are minutes after midnight in the
-- workspace's time zone (-1: none). pacing: channel → seconds between two
-- deliveries of one account.
CREATE TABLE message_settings (
    tenant_id    BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    cap_policy   TEXT    NOT NULL DEFAULT 'month' CHECK (cap_policy IN ('month', 'week', 'day')),
    quiet_start  INTEGER NOT NULL DEFAULT -1,
    quiet_end    INTEGER NOT NULL DEFAULT -1,
    pacing       TEXT    NOT NULL DEFAULT '{}',
    updated_at   BIGINT  NOT NULL
);

-- Message contents, stored once per distinct content (a campaign's million
-- envelopes share one row).
CREATE TABLE message_contents (
    id          INTEGER PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    hash        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX message_contents_hash ON message_contents (tenant_id, hash);

CREATE TABLE message_campaigns (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    idem_key     TEXT    NOT NULL DEFAULT '',
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('customers', 'groups')),
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'done', 'cancelled', 'failed')),
    target       TEXT    NOT NULL DEFAULT '{}',
    content      TEXT    NOT NULL DEFAULT '{}',
    send_at      BIGINT  NOT NULL DEFAULT 0,
    planned_at   BIGINT  NOT NULL DEFAULT 0,
    finished_at  BIGINT  NOT NULL DEFAULT 0,
    cancelled_at BIGINT  NOT NULL DEFAULT 0,
    recipients   BIGINT  NOT NULL DEFAULT 0,
    staff        BIGINT  NOT NULL DEFAULT 0,
    batches      BIGINT  NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE INDEX message_campaigns_tenant ON message_campaigns (tenant_id, id);
CREATE UNIQUE INDEX message_campaigns_key ON message_campaigns (tenant_id, idem_key) WHERE idem_key <> '';
CREATE INDEX message_campaigns_due ON message_campaigns (status, send_at);

-- One channel call for one sending account. status: queued → submitting
-- (marked before the call, so a crash leaves it findable) → submitted
-- (accepted; remote_id is WeCom's msgid; results are polled) → done; or
-- failed, cancelled, expired.
CREATE TABLE message_batches (
    id            INTEGER PRIMARY KEY,
    tenant_id     BIGINT  NOT NULL REFERENCES workspaces(id),
    channel       TEXT    NOT NULL,
    account       TEXT    NOT NULL DEFAULT '',
    content_id    BIGINT  NOT NULL,
    campaign_id   BIGINT  NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'submitting', 'submitted', 'done', 'failed', 'cancelled', 'expired')),
    recipients    INTEGER NOT NULL DEFAULT 0,
    due_at        BIGINT  NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    remote_id     TEXT    NOT NULL DEFAULT '',
    submit_at     BIGINT  NOT NULL DEFAULT 0,
    submitted_at  BIGINT  NOT NULL DEFAULT 0,
    next_poll_at  BIGINT  NOT NULL DEFAULT 0,
    finished_at   BIGINT  NOT NULL DEFAULT 0,
    reminders     TEXT    NOT NULL DEFAULT '[]',
    error_code    TEXT    NOT NULL DEFAULT '',
    error         TEXT    NOT NULL DEFAULT '',
    lease_owner   TEXT    NOT NULL DEFAULT '',
    lease_until   BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX message_batches_due ON message_batches (status, due_at);
CREATE INDEX message_batches_poll ON message_batches (status, next_poll_at);
CREATE INDEX message_batches_campaign ON message_batches (tenant_id, campaign_id, account);

-- One message to one recipient. status: queued → submitted → sent, or
-- failed / skipped / expired / cancelled / not_sent with reason; cap_at is
-- when it counts against the recipient's cap (planned send time, then the
-- time it was sent). tenant_id has no foreign key here: a mass message
-- writes a million rows at once, and a per-row check of the workspace (a
-- trigger per row on PostgreSQL) costs more than the rest of the row; the
-- workspace is checked once, when the campaign is planned.
CREATE TABLE message_envelopes (
    id           INTEGER PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL,
    channel      TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    customer_id  BIGINT  NOT NULL DEFAULT 0,
    account      TEXT    NOT NULL DEFAULT '',
    recipient    TEXT    NOT NULL DEFAULT '',
    content_id   BIGINT  NOT NULL,
    params       TEXT    NOT NULL DEFAULT '',
    not_after    BIGINT  NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL DEFAULT '',
    source_id    TEXT    NOT NULL DEFAULT '',
    campaign_id  BIGINT  NOT NULL DEFAULT 0,
    batch_id     BIGINT  NOT NULL DEFAULT 0,
    status       TEXT    NOT NULL CHECK (status IN ('queued', 'submitted', 'sent', 'not_sent', 'failed', 'skipped', 'expired', 'cancelled')),
    reason       TEXT    NOT NULL DEFAULT '',
    error_code   TEXT    NOT NULL DEFAULT '',
    due_at       BIGINT  NOT NULL DEFAULT 0,
    cap_at       BIGINT  NOT NULL DEFAULT 0,
    sent_at      BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX message_envelopes_key ON message_envelopes (tenant_id, idem_key);
-- A batch's envelopes and a campaign's (results paged by batch, then id).
-- status and reason make it covering for a campaign's counts: a plan writes
-- envelopes in key order on SQLite, not batch order, so counting through the rows
-- would read a million rows in random order.
CREATE INDEX message_envelopes_campaign ON message_envelopes (tenant_id, campaign_id, batch_id, id, status, reason);
CREATE INDEX message_envelopes_cap ON message_envelopes (tenant_id, channel, cap_at);
CREATE INDEX message_envelopes_unbatched ON message_envelopes (due_at) WHERE status = 'queued' AND batch_id = 0;

-- When each sending account last delivered on a channel, for pacing.
CREATE TABLE message_accounts (
    tenant_id         BIGINT  NOT NULL REFERENCES workspaces(id),
    channel           TEXT    NOT NULL,
    account           TEXT    NOT NULL,
    last_delivery_at  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, channel, account)
);

-- +goose Down
DROP TABLE message_accounts;
DROP TABLE message_envelopes;
DROP TABLE message_batches;
DROP TABLE message_campaigns;
DROP TABLE message_contents;
DROP TABLE message_settings;
