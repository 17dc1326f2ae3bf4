-- +goose Up
-- Import jobs: one uploaded CSV/XLSX file, its column mapping, and the
-- progress of its dry run and run. The file itself lives in import_files, in
-- the database, so any node can process or resume the job.
CREATE TABLE import_jobs (
    id              INTEGER PRIMARY KEY,
    tenant_id       BIGINT  NOT NULL REFERENCES workspaces(id),
    kind            TEXT    NOT NULL,
    file_name       TEXT    NOT NULL,
    file_format     TEXT    NOT NULL,
    file_encoding   TEXT    NOT NULL DEFAULT '',
    file_size       BIGINT  NOT NULL,
    sha256          TEXT    NOT NULL,
    header_row      BIGINT  NOT NULL,
    columns         TEXT    NOT NULL,
    preview         TEXT    NOT NULL,
    mapping         TEXT    NOT NULL,
    source          TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    rows_total      BIGINT  NOT NULL DEFAULT 0,
    rows_processed  BIGINT  NOT NULL DEFAULT 0,
    rows_ok         BIGINT  NOT NULL DEFAULT 0,
    rows_failed     BIGINT  NOT NULL DEFAULT 0,
    dry_run         TEXT    NOT NULL DEFAULT '',
    error           TEXT    NOT NULL DEFAULT '',
    observed_at     BIGINT  NOT NULL,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX import_jobs_tenant ON import_jobs (tenant_id, id);
CREATE INDEX import_jobs_file ON import_jobs (tenant_id, sha256);
CREATE INDEX import_jobs_queue ON import_jobs (status, lease_until);

-- The uploaded bytes (at most 50 MB), kept with the job.
CREATE TABLE import_files (
    tenant_id  BIGINT  NOT NULL REFERENCES workspaces(id),
    job_id     BIGINT  NOT NULL REFERENCES import_jobs(id),
    content    BLOB    NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);

-- Row-level problems found by a dry run or a run (phase), by sheet row
-- number; seq orders several problems of one row.
CREATE TABLE import_row_errors (
    tenant_id    BIGINT  NOT NULL REFERENCES workspaces(id),
    job_id       BIGINT  NOT NULL REFERENCES import_jobs(id),
    phase        TEXT    NOT NULL,
    row_no       BIGINT  NOT NULL,
    seq          INTEGER NOT NULL,
    column_name  TEXT    NOT NULL DEFAULT '',
    code         TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, job_id, phase, row_no, seq)
);

-- +goose Down
DROP TABLE import_row_errors;
DROP TABLE import_files;
DROP TABLE import_jobs;
