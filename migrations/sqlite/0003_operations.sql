-- Durable operations (DESIGN.md §4.4) and managed byo domains.
--
-- An operation is a state machine executed by a worker that claims it with a
-- lease: only the lease holder runs it, and a crashed holder's lease expires
-- so another worker (or the restarted one) resumes it from its last state.

CREATE TABLE operations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,          -- 'byo-api' | 'byo-manual'
    subject         TEXT    NOT NULL,          -- what it acts on (a domain, no trailing dot)
    state           TEXT    NOT NULL,          -- the next step to run, or 'done' / 'failed'
    attempts        BIGINT  NOT NULL DEFAULT 0, -- attempts of the current step
    total_attempts  BIGINT  NOT NULL DEFAULT 0,
    next_run_at     BIGINT  NOT NULL,          -- unix ms
    deadline_at     BIGINT  NOT NULL,          -- unix ms: past it, a failing step fails the operation
    last_error      TEXT,
    payload         TEXT    NOT NULL,          -- JSON
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- One live operation per subject.
CREATE UNIQUE INDEX operations_live_subject_idx ON operations (subject)
    WHERE state NOT IN ('done', 'failed');
CREATE INDEX operations_due_idx ON operations (next_run_at)
    WHERE state NOT IN ('done', 'failed');

-- Every attempt and its outcome ('running' until it finishes; 'abandoned'
-- when its worker died and the lease expired).
CREATE TABLE operation_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    operation_id  BIGINT  NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    step          TEXT    NOT NULL,
    attempt       BIGINT  NOT NULL,
    worker        TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT    NOT NULL,          -- running | advanced | waiting | retry | done | failed | abandoned
    detail        TEXT
);
CREATE INDEX operation_attempts_op_idx ON operation_attempts (operation_id, id);

-- Customer domains pdm serves and whose delegation it brings up.
CREATE TABLE byo_domains (
    domain        TEXT    PRIMARY KEY,       -- lower-case, no trailing dot
    mode          TEXT    NOT NULL CHECK (mode IN ('byo-api', 'byo-manual')),
    registrar     TEXT,
    credentials   TEXT,                      -- hex of AES-256-GCM(JSON), bound to domain + registrar
    operation_id  BIGINT,
    propagation   TEXT,                      -- JSON: the last parent check, per server
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    activated_at  BIGINT
);
