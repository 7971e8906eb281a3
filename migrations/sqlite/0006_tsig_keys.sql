-- TSIG keys (RFC 8945) for zone transfers and NOTIFY. The secret is sealed
-- with the secret key (AES-256-GCM, bound to the key name), hex-encoded;
-- `pdm tsig create` shows it once.
CREATE TABLE tsig_keys (
    name        TEXT   PRIMARY KEY,   -- lower case, no trailing dot
    algorithm   TEXT   NOT NULL,      -- hmac-sha256 | hmac-sha512
    secret      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL       -- unix ms
);
