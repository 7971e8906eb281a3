-- How many records each zone holds, kept by triggers on every insert and
-- delete (whoever writes: the record APIs, commits, imports, a zone's
-- deletion). The record write path checks a zone's bound
-- (`[records] max_zone_records`) on every change; counting the zone's rows
-- there made each write cost O(zone). Statement-level triggers with
-- transition tables: one UPDATE per zone a statement touched, not one per
-- row (an import of 10,000 records updates its zone's row once).
ALTER TABLE zones ADD COLUMN record_count BIGINT NOT NULL DEFAULT 0;
UPDATE zones SET record_count = c.n
FROM (SELECT zone_id, COUNT(*) AS n FROM records GROUP BY zone_id) c
WHERE zones.id = c.zone_id;

CREATE FUNCTION records_count_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET record_count = zones.record_count + c.n
    FROM (SELECT zone_id, COUNT(*) AS n FROM new_rows GROUP BY zone_id) c
    WHERE zones.id = c.zone_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION records_count_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET record_count = zones.record_count - c.n
    FROM (SELECT zone_id, COUNT(*) AS n FROM old_rows GROUP BY zone_id) c
    WHERE zones.id = c.zone_id;
    RETURN NULL;
END
$$;

-- Nothing moves a record between zones today; should something, the
-- counts follow (a row trigger: a column list takes no transition table,
-- and the WHEN keeps the SOA's per-write UPDATE from calling it).
CREATE FUNCTION records_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET record_count = record_count - 1 WHERE id = OLD.zone_id;
    UPDATE zones SET record_count = record_count + 1 WHERE id = NEW.zone_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER records_counted_in AFTER INSERT ON records
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION records_count_in();

CREATE TRIGGER records_counted_out AFTER DELETE ON records
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION records_count_out();

CREATE TRIGGER records_counted_moved AFTER UPDATE OF zone_id ON records
FOR EACH ROW WHEN (OLD.zone_id IS DISTINCT FROM NEW.zone_id)
EXECUTE FUNCTION records_count_moved();
