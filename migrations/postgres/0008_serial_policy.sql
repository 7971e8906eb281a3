-- How each zone's SOA serial grows: `unixtime` (max(old + 1, unix time),
-- what every zone did before) or `increment` (old + 1), per pool.
ALTER TABLE zones ADD COLUMN serial_policy TEXT NOT NULL DEFAULT 'unixtime';
