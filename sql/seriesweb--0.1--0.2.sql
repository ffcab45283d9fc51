/*
 * seriesweb 0.1 -> 0.2 - update script.
 *
 * Everything here is also in seriesweb--0.2.sql, in the same order and the
 * same words, so that an updated 0.1 and a fresh 0.2 are the same catalog
 * (test/t/080_upgrade.pl compares them).  Columns are added at the end of
 * their tables in both.
 */

\echo Use "ALTER EXTENSION seriesweb UPDATE TO '0.2'" to load this file. \quit

------------------------------------------------------------------------------
-- Restores: events are matched only by the installation that accepted them
------------------------------------------------------------------------------

-- One row: this installation's random id, made by CREATE EXTENSION (or this
-- update).  Not dumped: a restore is a new installation with an id of its
-- own, so the events it loads carry another id and are history, not news.
CREATE TABLE seriesweb.installation (
	installation_id bigint NOT NULL
);
CREATE UNIQUE INDEX installation_one_row ON seriesweb.installation ((true));

-- Added with a constant default, written once here: existing events take
-- it without a rewrite, and the events trigger matches only new rows that
-- carry the id of the row above.
DO $$
DECLARE
	id bigint := ('x' || pg_catalog.translate(pg_catalog.gen_random_uuid()::text, '-', ''))::bit(64)::bigint;
BEGIN
	INSERT INTO seriesweb.installation (installation_id) VALUES (id);
	EXECUTE pg_catalog.format(
		'ALTER TABLE seriesweb.events ADD COLUMN installation_id bigint NOT NULL DEFAULT %s', id);
END
$$;

------------------------------------------------------------------------------
-- Restores: rows loaded table by table
------------------------------------------------------------------------------

-- A dump loads one table at a time, series before their blocks and blocks
-- before their connections, with check_function_bodies off (pg_dump and
-- pg_restore set it, as PostgreSQL itself then skips checks that depend on
-- objects not loaded yet).  The checks that need rows of another table are
-- skipped then too; each row's own content is still validated.
CREATE OR REPLACE FUNCTION seriesweb._validate_series() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.name IS NULL OR btrim(NEW.name) = '' THEN
		RAISE EXCEPTION 'series name must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- Names are unique: indexed, so at most 1 kB, like the ids of people.
	IF octet_length(NEW.name) > 1024 THEN
		RAISE EXCEPTION 'series name "%..." is longer than 1024 bytes', left(NEW.name, 40)
			USING ERRCODE = 'program_limit_exceeded',
				  DETAIL = format('It is %s bytes long.', octet_length(NEW.name)),
				  HINT = 'Give the series a shorter name.';
	END IF;
	IF NEW.state IS NULL OR NEW.state NOT IN ('draft', 'live', 'paused') THEN
		RAISE EXCEPTION 'unknown series state "%"', NEW.state
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use draft, live or paused (seriesweb.set_live, seriesweb.pause).';
	END IF;
	IF NEW.state = 'live' AND (TG_OP = 'INSERT' OR OLD.state <> 'live')
	   AND current_setting('check_function_bodies')::bool AND NOT EXISTS (
		SELECT 1 FROM seriesweb.blocks b
		 WHERE b.series_id = NEW.series_id AND b.kind = 'rule'
		   AND NOT EXISTS (SELECT 1 FROM seriesweb.connections c WHERE c.to_block = b.block_id)) THEN
		RAISE EXCEPTION 'series "%" has no entry rule', NEW.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Add one with seriesweb.add_rule(series_id, title, event_name), without after.';
	END IF;
	RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION seriesweb._check_webhook_has_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b int;
BEGIN
	IF NOT current_setting('check_function_bodies')::bool THEN
		RETURN NULL;
	END IF;
	IF TG_TABLE_NAME = 'blocks' THEN
		b := NEW.block_id;
	ELSE
		b := OLD.to_block;
	END IF;
	IF EXISTS (SELECT 1 FROM seriesweb.blocks WHERE block_id = b AND kind = 'webhook')
	   AND NOT EXISTS (SELECT 1 FROM seriesweb.connections WHERE to_block = b) THEN
		RAISE EXCEPTION 'webhook block % has no rule before it', b
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Connect it after a rule block (seriesweb.connect or add_webhook''s after).';
	END IF;
	RETURN NULL;
END
$$;

-- Which worker claimed a delivery in sending: one that a previous worker
-- claimed (a crash, or rows restored from a dump) is sent again.
ALTER TABLE seriesweb.deliveries ADD COLUMN claimed_by bigint;

------------------------------------------------------------------------------
-- Backups: pg_dump keeps every row and where every sequence stands
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('seriesweb.companies', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.users', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.events', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.series', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.blocks', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.connections', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.progress', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.delivery_attempts', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.block_counts', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.block_activity', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.series_series_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.blocks_block_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('seriesweb.deliveries_delivery_id_seq', '');

------------------------------------------------------------------------------
-- Privileges: functions that run queries do so with a fixed search_path
------------------------------------------------------------------------------

ALTER FUNCTION seriesweb.test_webhook(int, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION seriesweb.preview(int, text) SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON seriesweb.installation FROM PUBLIC;

------------------------------------------------------------------------------
-- Every database served: the workers of the whole server
------------------------------------------------------------------------------

-- The launcher and one row per database worker, for superusers and
-- pg_monitor (worker_status() tells each database about its own).
CREATE FUNCTION seriesweb.workers(
	OUT state text, OUT pid int, OUT database text, OUT in_flight int, OUT detail text)
	RETURNS SETOF record LANGUAGE c AS 'MODULE_PATHNAME', 'sw_workers';
REVOKE ALL ON FUNCTION seriesweb.workers() FROM PUBLIC;
GRANT USAGE ON SCHEMA seriesweb TO pg_monitor;
GRANT EXECUTE ON FUNCTION seriesweb.workers() TO pg_monitor;

-- The worker waits for this update when its library is newer: wake it.
SELECT seriesweb._wake_worker();
