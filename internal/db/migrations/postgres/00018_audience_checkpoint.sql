-- +goose Up
-- Checkpoints of the audience index: its tag and event-day bitmaps as of a
-- point of its change feeds, so a start reads them back and then only what
-- changed after, instead of every tag assignment and event (most of the rows
-- a rebuild reads). A checkpoint is a byte stream stored in parts; a new
-- generation is written beside the current one and replaces it in one step.
CREATE TABLE audience_checkpoints (
    tenant_id     BIGINT  PRIMARY KEY REFERENCES workspaces(id),
    generation    BIGINT  NOT NULL,
    format        INTEGER NOT NULL,
    timezone      TEXT    NOT NULL,
    as_of         BIGINT  NOT NULL,
    merges_after  BIGINT  NOT NULL,
    size          BIGINT  NOT NULL,
    written_at    BIGINT  NOT NULL
);
CREATE TABLE audience_checkpoint_parts (
    tenant_id   BIGINT  NOT NULL REFERENCES workspaces(id),
    generation  BIGINT  NOT NULL,
    seq         INTEGER NOT NULL,
    data        BYTEA   NOT NULL,
    PRIMARY KEY (tenant_id, generation, seq)
);

-- +goose Down
DROP TABLE audience_checkpoint_parts;
DROP TABLE audience_checkpoints;
