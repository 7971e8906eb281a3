-- Journal retention ranks each zone's entries newest first.
CREATE INDEX zone_journal_zone_id_idx ON zone_journal (zone, id);
