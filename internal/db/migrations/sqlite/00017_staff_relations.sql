-- +goose Up
-- Staff ↔ customer relations (客户归属): which staff member serves which
-- customer on a channel (WeCom today), with what that staff member recorded
-- about them. A customer may be served by several staff members.
-- status_at, state_at and detail_at are the times of the add or deletion
-- behind status, of the channel code state, and of the details, so that
-- events arriving out of order never let an older state overwrite a newer one.
CREATE TABLE staff_relations (
    tenant_id             BIGINT   NOT NULL REFERENCES workspaces(id),
    staff_id              BIGINT   NOT NULL REFERENCES staff(id),
    channel               TEXT     NOT NULL,
    external_id           TEXT     NOT NULL,
    customer_id           BIGINT   NOT NULL REFERENCES customers(id),
    status                TEXT     NOT NULL CHECK (status IN ('active', 'half', 'deleted_by_staff', 'deleted_by_customer', 'transferred', 'transfer_failed')),
    remark                TEXT     NOT NULL DEFAULT '',
    description           TEXT     NOT NULL DEFAULT '',
    remark_corp_name      TEXT     NOT NULL DEFAULT '',
    add_way               INTEGER  NOT NULL DEFAULT 0,
    state                 TEXT     NOT NULL DEFAULT '',
    welcome_code          TEXT     NOT NULL DEFAULT '',
    oper_userid           TEXT     NOT NULL DEFAULT '',
    channel_tag_ids       TEXT     NOT NULL DEFAULT '[]',
    added_at              BIGINT   NOT NULL DEFAULT 0,
    deleted_at            BIGINT   NOT NULL DEFAULT 0,
    transfer_fail_reason  TEXT     NOT NULL DEFAULT '',
    transfer_failed_at    BIGINT   NOT NULL DEFAULT 0,
    status_at             BIGINT   NOT NULL DEFAULT 0,
    state_at              BIGINT   NOT NULL DEFAULT 0,
    detail_at             BIGINT   NOT NULL DEFAULT 0,
    created_at            BIGINT   NOT NULL,
    updated_at            BIGINT   NOT NULL,
    PRIMARY KEY (tenant_id, staff_id, channel, external_id)
);
CREATE INDEX staff_relations_customer ON staff_relations (tenant_id, customer_id);
CREATE INDEX staff_relations_external ON staff_relations (tenant_id, channel, external_id);

-- When the staff member's directory entry last changed in WeCom, so that an
-- older directory event never overwrites a newer one.
ALTER TABLE staff ADD COLUMN wecom_changed_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE staff DROP COLUMN wecom_changed_at;
DROP TABLE staff_relations;
