-- DNSSEC: per-zone signing settings, keys (private halves encrypted with the
-- operator's secret key), and key rollovers in progress.

-- NULL = served unsigned; otherwise the denial mode ('nsec3' | 'compact').
ALTER TABLE zones ADD COLUMN dnssec TEXT;

CREATE TABLE dnssec_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    zone         TEXT    NOT NULL,          -- lower-case FQDN with trailing dot
    role         TEXT    NOT NULL CHECK (role IN ('csk', 'ksk', 'zsk')),
    algorithm    INTEGER NOT NULL,
    key_tag      INTEGER NOT NULL,
    dnskey       TEXT    NOT NULL,          -- DNSKEY rdata, presentation format
    private_key  TEXT    NOT NULL,          -- hex of AES-256-GCM(PKCS#8), bound to zone + id
    -- standby: DS may be in the parent, not in DNSKEY (double-DS pre-publication)
    -- published: in DNSKEY, not signing; active: in DNSKEY, signing;
    -- retired: in DNSKEY, no longer signing; removed: gone (row kept as history)
    state        TEXT    NOT NULL CHECK (state IN ('standby', 'published', 'active', 'retired', 'removed')),
    in_parent    INTEGER NOT NULL DEFAULT 0, -- 1 = the parent should hold its DS
    created_at   BIGINT  NOT NULL,
    changed_at   BIGINT  NOT NULL
);
CREATE INDEX dnssec_keys_zone_idx ON dnssec_keys (zone, state);

CREATE TABLE dnssec_rollovers (
    zone        TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('zsk', 'ksk', 'csk')),
    step        INTEGER NOT NULL,
    old_key     BIGINT  NOT NULL,
    new_key     BIGINT  NOT NULL,
    next_at     BIGINT  NOT NULL,          -- when the next step may run (unix ms)
    started_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
