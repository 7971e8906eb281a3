-- Every running pdm announces itself and how far its DNS serves the change
-- journal, with a heartbeat; the change status (PENDING / INSYNC) is
-- computed over the replicas whose heartbeat is fresh.
CREATE TABLE replicas (
    id               TEXT   PRIMARY KEY,   -- host, boot, pid namespace, pid, start time
    applied_through  BIGINT NOT NULL,      -- every journal entry <= this is served
    started_at       BIGINT NOT NULL,      -- unix ms
    heartbeat_at     BIGINT NOT NULL       -- unix ms
);
