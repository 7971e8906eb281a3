-- pdm schema, SQLite flavour. Times are unix milliseconds (BIGINT) so both
-- backends share one code path.
CREATE TABLE zones (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,   -- lower-case FQDN with trailing dot
    kind        TEXT    NOT NULL CHECK (kind IN ('pool', 'child', 'imported')),
    serial      BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE records (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id  BIGINT  NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    name     TEXT    NOT NULL,             -- lower-case FQDN with trailing dot
    rtype    TEXT    NOT NULL,
    ttl      BIGINT  NOT NULL,
    rdata    TEXT    NOT NULL              -- presentation format
);
CREATE INDEX records_zone_idx ON records (zone_id, name, rtype);

-- Append-only: every change to every zone. Feeds the DNS snapshot refresh
-- (also across replicas) and the audit trail.
CREATE TABLE zone_journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    zone     TEXT    NOT NULL,
    serial   BIGINT  NOT NULL,
    op       TEXT    NOT NULL,             -- create | update | delete
    added    TEXT    NOT NULL,             -- master-file lines
    removed  TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       BIGINT  NOT NULL
);

CREATE TABLE allocations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pool            TEXT    NOT NULL,
    subdomain       TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('reserved', 'active', 'released', 'expired')),
    reserved_at     BIGINT  NOT NULL,
    expires_at      BIGINT,
    token_hash      TEXT,                  -- SHA-256 of the reservation token
    created_by      TEXT    NOT NULL,
    sovereign_fqdn  TEXT,
    lb_ip           TEXT,
    console_lb_ip   TEXT,
    committed_at    BIGINT,
    released_at     BIGINT
);
-- At most one live allocation per name; history rows are free.
CREATE UNIQUE INDEX allocations_live_idx ON allocations (pool, subdomain)
    WHERE state IN ('reserved', 'active');
CREATE INDEX allocations_expiry_idx ON allocations (expires_at) WHERE state = 'reserved';

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    scopes      TEXT    NOT NULL,          -- space-separated
    created_at  BIGINT  NOT NULL
);

CREATE TABLE idempotency_keys (
    token_id      BIGINT  NOT NULL,
    idem_key      TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        BIGINT  NOT NULL,
    body          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
