-- How many records each zone holds, kept by triggers on every insert and
-- delete (whoever writes: the record APIs, commits, imports, a zone's
-- deletion). The record write path checks a zone's bound
-- (`[records] max_zone_records`) on every change; counting the zone's rows
-- there made each write cost O(zone): 7x the instructions of a PATCH at
-- 9,000 records.
ALTER TABLE zones ADD COLUMN record_count BIGINT NOT NULL DEFAULT 0;
UPDATE zones SET record_count = (SELECT COUNT(*) FROM records WHERE records.zone_id = zones.id);

CREATE TRIGGER records_counted_in AFTER INSERT ON records
BEGIN
    UPDATE zones SET record_count = record_count + 1 WHERE id = NEW.zone_id;
END;

CREATE TRIGGER records_counted_out AFTER DELETE ON records
BEGIN
    UPDATE zones SET record_count = record_count - 1 WHERE id = OLD.zone_id;
END;

CREATE TRIGGER records_counted_moved AFTER UPDATE OF zone_id ON records
WHEN NEW.zone_id IS NOT OLD.zone_id
BEGIN
    UPDATE zones SET record_count = record_count - 1 WHERE id = OLD.zone_id;
    UPDATE zones SET record_count = record_count + 1 WHERE id = NEW.zone_id;
END;
