-- Leases (kept after withdrawal: finance bills them until removed_us), the price table, and one usage row
-- per segment of a job's run (one allocation, one kind of capacity).
CREATE TABLE leases (
    id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    devices BIGINT NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    within TEXT NOT NULL,
    domain TEXT,
    created_us BIGINT NOT NULL,
    removed_us BIGINT
);
CREATE TABLE prices (
    model TEXT PRIMARY KEY,
    leased DOUBLE PRECISION NOT NULL,
    on_demand DOUBLE PRECISION NOT NULL,
    preemptible DOUBLE PRECISION NOT NULL
);
CREATE TABLE usage_records (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    device_milli BIGINT NOT NULL,
    rate DOUBLE PRECISION NOT NULL,
    start_us BIGINT NOT NULL,
    end_us BIGINT NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX usage_records_by_tenant ON usage_records (tenant, end_us);
