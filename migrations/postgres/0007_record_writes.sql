-- Record writes by tenants' tools (RRset API, PowerDNS API, RFC 2136).
-- A credential's policy says which zones, owners and types it may read or
-- write (JSON, see src/policy/); NULL keeps the token's scopes only.
ALTER TABLE api_tokens ADD COLUMN policy TEXT;
ALTER TABLE tsig_keys ADD COLUMN policy TEXT;

-- Who changed which RRset, when, through which path. Kept apart from the
-- journal: the journal is compacted, the audit trail is not.
CREATE TABLE rrset_audit (
    id          BIGSERIAL PRIMARY KEY,
    zone        TEXT   NOT NULL,          -- lower-case FQDN with trailing dot
    owner       TEXT   NOT NULL,
    rtype       TEXT   NOT NULL,
    old_rrs     TEXT   NOT NULL,          -- master-file lines, empty when none
    new_rrs     TEXT   NOT NULL,
    serial      BIGINT NOT NULL,          -- the zone's serial after the change
    path        TEXT   NOT NULL,          -- rrset-api | pdns-api | rfc2136 | import
    credential  TEXT   NOT NULL,          -- token:<id> | tsig:<name>
    at          BIGINT NOT NULL           -- unix ms
);
CREATE INDEX rrset_audit_zone_idx ON rrset_audit (zone, id);
