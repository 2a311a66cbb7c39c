-- The server's durable state. Types and statements are valid in both SQLite and PostgreSQL. Specs and records
-- are JSON with model and node names (never the in-memory numeric ids), so that a catalog change or a restart
-- that numbers nodes differently reads them back unchanged.
CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    weight DOUBLE PRECISION NOT NULL,
    quota BIGINT
);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    tenant TEXT,
    label TEXT,
    created_us BIGINT NOT NULL
);
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    registration TEXT NOT NULL,
    admin_state TEXT NOT NULL,
    unhealthy TEXT NOT NULL
);
CREATE TABLE jobs (
    id BIGINT PRIMARY KEY,
    tenant TEXT NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX jobs_state ON jobs (state);
CREATE TABLE job_events (
    job_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
