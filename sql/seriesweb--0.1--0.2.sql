/*
 * seriesweb 0.1 -> 0.2 - update script.
 *
 * Everything here is also in seriesweb--0.2.sql, in the same words, so
 * that an updated 0.1 and a fresh 0.2 are the same catalog
 * (test/t/080_upgrade.pl compares them).  Columns are added at the end of
 * their tables in both.  The order is the one an update needs: a view is
 * replaced after the columns it reads.
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

------------------------------------------------------------------------------
-- Series in time: waits, timed rules and their not-matched paths; tags
------------------------------------------------------------------------------

ALTER TABLE seriesweb.blocks
	ADD COLUMN duration interval
		CONSTRAINT blocks_duration_range CHECK (duration BETWEEN '1 second' AND '1 year'),
	ADD COLUMN match_within interval
		CONSTRAINT blocks_match_within_range CHECK (match_within BETWEEN '1 second' AND '1 year'),
	ADD COLUMN tag text
		CONSTRAINT blocks_tag_length CHECK (char_length(tag) BETWEEN 1 AND 100),
	ADD COLUMN tag_action text
		CONSTRAINT blocks_tag_action_known CHECK (tag_action IN ('add', 'remove')),
	DROP CONSTRAINT blocks_kind_known,
	ADD CONSTRAINT blocks_kind_known CHECK (kind IN ('rule', 'webhook', 'wait', 'tag')),
	DROP CONSTRAINT blocks_kind_columns,
	ADD CONSTRAINT blocks_kind_columns CHECK (
		CASE kind
			WHEN 'rule' THEN filters IS NOT NULL AND url IS NULL AND method IS NULL
				AND headers IS NULL AND body IS NULL AND secret IS NULL AND duration IS NULL
				AND tag IS NULL AND tag_action IS NULL
			WHEN 'wait' THEN duration IS NOT NULL AND event_name IS NULL AND filters IS NULL
				AND match_within IS NULL AND url IS NULL AND method IS NULL AND headers IS NULL
				AND body IS NULL AND secret IS NULL AND tag IS NULL AND tag_action IS NULL
			WHEN 'tag' THEN tag IS NOT NULL AND tag_action IS NOT NULL AND event_name IS NULL
				AND filters IS NULL AND match_within IS NULL AND duration IS NULL AND url IS NULL
				AND method IS NULL AND headers IS NULL AND body IS NULL AND secret IS NULL
			ELSE url IS NOT NULL AND method IS NOT NULL AND headers IS NOT NULL
				AND event_name IS NULL AND filters IS NULL AND duration IS NULL
				AND match_within IS NULL AND tag IS NULL AND tag_action IS NULL
		END);

-- Added and removed by tag blocks; filters and templates see user.tags.
ALTER TABLE seriesweb.users ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

ALTER TABLE seriesweb.connections ADD COLUMN path text NOT NULL DEFAULT 'matched'
	CONSTRAINT connections_path_known CHECK (path IN ('matched', 'not_matched'));

ALTER TABLE seriesweb.progress ADD COLUMN not_matched_at timestamptz;
DROP INDEX seriesweb.progress_armed;
CREATE INDEX progress_armed ON seriesweb.progress (user_id)
	WHERE reached_at IS NULL AND not_matched_at IS NULL;

-- A user held by a wait, or armed on a timed rule, until due_at: a row
-- while it lasts.  Whoever deletes the row decides what comes next: the
-- worker once it is due, or the event that reaches the timed rule in time.
-- Released per block in due order (timers_due), so a paused series' timers
-- are simply not looked at.
CREATE TABLE seriesweb.timers (
	block_id int NOT NULL,
	user_id text NOT NULL,
	due_at timestamptz NOT NULL,
	PRIMARY KEY (block_id, user_id)
);
CREATE INDEX timers_due ON seriesweb.timers (block_id, due_at);
SELECT pg_catalog.pg_extension_config_dump('seriesweb.timers', '');

ALTER TABLE seriesweb.block_counts
	ADD COLUMN waiting bigint NOT NULL DEFAULT 0,
	ADD COLUMN not_matched bigint NOT NULL DEFAULT 0;

-- A wait's duration or a timed rule's match_within, in range (the CHECKs
-- on seriesweb.blocks are the backstop).
CREATE FUNCTION seriesweb._check_duration(what text, d interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF d < interval '1 second' OR d > interval '1 year' THEN
		RAISE EXCEPTION '% is out of range', what
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('It is %s.', d),
				  HINT = 'Use an interval from 1 second to 1 year.';
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION seriesweb._validate_block() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		-- Progress, deliveries and counters refer to it.
		IF NEW.block_id <> OLD.block_id THEN
			RAISE EXCEPTION 'block % cannot change its id to %', OLD.block_id, NEW.block_id
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Create a new block instead.';
		END IF;
		IF NEW.series_id <> OLD.series_id THEN
			RAISE EXCEPTION 'block % cannot move to another series', OLD.block_id
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Create a new block in the other series.';
		END IF;
		IF NEW.kind <> OLD.kind THEN
			RAISE EXCEPTION 'block % cannot change kind from % to %', OLD.block_id, OLD.kind, NEW.kind
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'Create a new block of the other kind.';
		END IF;
		-- Users armed on it have a deadline, or have none: keep them right.
		IF (NEW.match_within IS NULL) <> (OLD.match_within IS NULL) THEN
			RAISE EXCEPTION 'rule block % cannot % match_within', OLD.block_id,
				CASE WHEN OLD.match_within IS NULL THEN 'gain' ELSE 'lose' END
				USING ERRCODE = 'feature_not_supported',
					  DETAIL = 'Whether a rule is timed decides what its armed users wait for.',
					  HINT = 'Change its match_within to another interval, or create a new rule.';
		END IF;
	END IF;
	IF NEW.title IS NULL OR btrim(NEW.title) = '' THEN
		RAISE EXCEPTION 'block title must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.kind = 'rule' THEN
		IF NEW.url IS NOT NULL OR NEW.method IS NOT NULL OR NEW.headers IS NOT NULL
		   OR NEW.body IS NOT NULL OR NEW.secret IS NOT NULL OR NEW.duration IS NOT NULL
		   OR NEW.tag IS NOT NULL OR NEW.tag_action IS NOT NULL THEN
			RAISE EXCEPTION 'rule block "%" has fields of another kind', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A rule has only event_name, filters and match_within.';
		END IF;
		IF NEW.event_name IS NOT NULL AND btrim(NEW.event_name) = '' THEN
			RAISE EXCEPTION 'rule block "%" has an empty event name', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use NULL to match any event.';
		END IF;
		NEW.filters := coalesce(NEW.filters, '[]');
		PERFORM seriesweb._check_filters(NEW.filters);
		IF NEW.match_within IS NOT NULL THEN
			PERFORM seriesweb._check_duration(format('match_within of rule block "%s"', NEW.title),
											  NEW.match_within);
		END IF;
	ELSIF NEW.kind = 'webhook' THEN
		IF NEW.event_name IS NOT NULL OR NEW.filters IS NOT NULL OR NEW.duration IS NOT NULL
		   OR NEW.match_within IS NOT NULL OR NEW.tag IS NOT NULL OR NEW.tag_action IS NOT NULL THEN
			RAISE EXCEPTION 'webhook block "%" has fields of another kind', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Put the condition in a rule block before the webhook, a delay in a wait block.';
		END IF;
		NEW.method := upper(NEW.method);
		NEW.headers := coalesce(NEW.headers, '{"Content-Type": "application/json"}');
		PERFORM seriesweb._check_webhook(NEW.method, NEW.url, NEW.headers, NEW.body);
		IF NEW.secret IS NOT NULL THEN
			PERFORM seriesweb._check_secret(NEW.secret);
		END IF;
	ELSIF NEW.kind = 'wait' THEN
		IF NEW.event_name IS NOT NULL OR NEW.filters IS NOT NULL OR NEW.match_within IS NOT NULL
		   OR NEW.url IS NOT NULL OR NEW.method IS NOT NULL OR NEW.headers IS NOT NULL
		   OR NEW.body IS NOT NULL OR NEW.secret IS NOT NULL OR NEW.tag IS NOT NULL
		   OR NEW.tag_action IS NOT NULL THEN
			RAISE EXCEPTION 'wait block "%" has fields of another kind', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A wait has only a duration.';
		END IF;
		IF NEW.duration IS NULL THEN
			RAISE EXCEPTION 'wait block "%" needs a duration', NEW.title
				USING ERRCODE = 'null_value_not_allowed',
					  HINT = 'Use an interval from 1 second to 1 year.';
		END IF;
		PERFORM seriesweb._check_duration(format('duration of wait block "%s"', NEW.title), NEW.duration);
	ELSIF NEW.kind = 'tag' THEN
		IF NEW.event_name IS NOT NULL OR NEW.filters IS NOT NULL OR NEW.match_within IS NOT NULL
		   OR NEW.duration IS NOT NULL OR NEW.url IS NOT NULL OR NEW.method IS NOT NULL
		   OR NEW.headers IS NOT NULL OR NEW.body IS NOT NULL OR NEW.secret IS NOT NULL THEN
			RAISE EXCEPTION 'tag block "%" has fields of another kind', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'A tag block has only a tag and an action.';
		END IF;
		IF NEW.tag IS NULL OR char_length(NEW.tag) NOT BETWEEN 1 AND 100 THEN
			RAISE EXCEPTION 'tag of tag block "%" must be 1 to 100 characters', NEW.title
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = CASE WHEN NEW.tag IS NULL THEN 'It is null.'
								ELSE format('It is %s characters.', char_length(NEW.tag)) END;
		END IF;
		NEW.tag_action := coalesce(lower(NEW.tag_action), 'add');
		IF NEW.tag_action NOT IN ('add', 'remove') THEN
			RAISE EXCEPTION 'unknown tag action "%"', NEW.tag_action
				USING ERRCODE = 'invalid_parameter_value', HINT = 'Use add or remove.';
		END IF;
	ELSE
		RAISE EXCEPTION 'unknown block kind "%"', NEW.kind
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use rule, webhook, wait or tag.';
	END IF;
	RETURN NEW;
END
$$;

-- Same series, no cycle (through waits too), a known path; a not-matched
-- path only from a timed rule.  The series row is locked so that two
-- concurrent connections cannot close a cycle that neither sees alone.
CREATE OR REPLACE FUNCTION seriesweb._validate_connection() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	from_series int;
	to_series int;
	from_timed bool;
BEGIN
	SELECT series_id, kind = 'rule' AND match_within IS NOT NULL INTO from_series, from_timed
	  FROM seriesweb.blocks WHERE block_id = NEW.from_block;
	SELECT series_id INTO to_series FROM seriesweb.blocks WHERE block_id = NEW.to_block;
	IF from_series IS NULL OR to_series IS NULL THEN
		RAISE EXCEPTION 'block % does not exist',
			CASE WHEN from_series IS NULL THEN NEW.from_block ELSE NEW.to_block END
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	IF from_series <> to_series THEN
		RAISE EXCEPTION 'cannot connect block % (series %) to block % (series %)',
			NEW.from_block, from_series, NEW.to_block, to_series
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Connections join blocks of one series.';
	END IF;
	IF NEW.from_block = NEW.to_block THEN
		RAISE EXCEPTION 'block % cannot be connected to itself', NEW.from_block
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A user reaches each block at most once; series are acyclic.';
	END IF;
	IF NEW.path IS NULL OR NEW.path NOT IN ('matched', 'not_matched') THEN
		RAISE EXCEPTION 'unknown connection path %', coalesce(quote_literal(NEW.path), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use matched, or not_matched from a rule with match_within.';
	END IF;
	IF NEW.path = 'not_matched' AND NOT from_timed THEN
		RAISE EXCEPTION 'block % has no not-matched path', NEW.from_block
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Only a rule with match_within can be not matched: in time, or never.',
				  HINT = 'Give the rule a match_within (seriesweb.add_rule), or connect with path => ''matched''.';
	END IF;
	PERFORM 1 FROM seriesweb.series WHERE series_id = from_series FOR UPDATE;
	IF EXISTS (
		WITH RECURSIVE downstream(block_id) AS (
			SELECT NEW.to_block
			UNION
			SELECT c.to_block FROM seriesweb.connections c
			  JOIN downstream d ON c.from_block = d.block_id)
		SELECT 1 FROM downstream WHERE block_id = NEW.from_block) THEN
		RAISE EXCEPTION 'connecting block % to block % would make a cycle', NEW.from_block, NEW.to_block
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Block %s already leads to block %s.', NEW.to_block, NEW.from_block),
				  HINT = 'A user reaches each block at most once; series are acyclic.';
	END IF;
	RETURN NEW;
END
$$;

DROP TRIGGER webhook_has_rule ON seriesweb.blocks;
DROP TRIGGER webhook_keeps_rule ON seriesweb.connections;
DROP FUNCTION seriesweb._check_webhook_has_rule();
-- Only a rule may start a series: a webhook needs a rule before it (a
-- chain of blocks always starts at one), a wait, a tag block and a timed
-- rule a block before them.  Checked at commit, so that a block and its first
-- connection can be written in either order.
CREATE FUNCTION seriesweb._check_block_before() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	id int;
	b seriesweb.blocks;
BEGIN
	IF NOT current_setting('check_function_bodies')::bool THEN
		RETURN NULL;
	END IF;
	IF TG_TABLE_NAME = 'blocks' THEN
		id := NEW.block_id;
	ELSE
		id := OLD.to_block;
	END IF;
	SELECT * INTO b FROM seriesweb.blocks WHERE block_id = id;
	IF NOT FOUND OR (b.kind = 'rule' AND b.match_within IS NULL)
	   OR EXISTS (SELECT 1 FROM seriesweb.connections WHERE to_block = b.block_id) THEN
		RETURN NULL;
	END IF;
	IF b.kind = 'webhook' THEN
		RAISE EXCEPTION 'webhook block % has no rule before it', b.block_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Connect it after a rule block (seriesweb.connect or add_webhook''s after).';
	ELSIF b.kind IN ('wait', 'tag') THEN
		RAISE EXCEPTION '% block % has no block before it', b.kind, b.block_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('Connect it after a block (seriesweb.connect or add_%s''s after).', b.kind);
	END IF;
	RAISE EXCEPTION 'rule block % has match_within but no block before it', b.block_id
		USING ERRCODE = 'invalid_parameter_value',
			  DETAIL = 'An entry rule is matched by events; a deadline counts from when a block before it arms it.',
			  HINT = 'Connect it after a block, or create it without match_within.';
END
$$;

CREATE CONSTRAINT TRIGGER block_has_block_before AFTER INSERT ON seriesweb.blocks
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION seriesweb._check_block_before();
CREATE CONSTRAINT TRIGGER block_keeps_block_before AFTER UPDATE OR DELETE ON seriesweb.connections
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION seriesweb._check_block_before();

CREATE OR REPLACE FUNCTION seriesweb._forget_block() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM seriesweb.progress WHERE block_id = OLD.block_id;
	DELETE FROM seriesweb.timers WHERE block_id = OLD.block_id;
	DELETE FROM seriesweb.deliveries WHERE block_id = OLD.block_id AND status IN ('pending', 'sending');
	DELETE FROM seriesweb.block_counts WHERE block_id = OLD.block_id;
	DELETE FROM seriesweb.block_activity WHERE block_id = OLD.block_id;
	RETURN NULL;
END
$$;

CREATE FUNCTION seriesweb.add_wait(series_id int, title text, after int, duration interval,
								   path text DEFAULT 'matched')
RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	id int;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM seriesweb.series s WHERE s.series_id = add_wait.series_id) THEN
		RAISE EXCEPTION 'series % does not exist', coalesce(add_wait.series_id::text, 'NULL')
			USING ERRCODE = 'no_data_found', HINT = 'Create it with seriesweb.create_series(name).';
	END IF;
	IF add_wait.after IS NULL THEN
		RAISE EXCEPTION 'wait block "%" needs a block before it', add_wait.title
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass after => the id of the block it follows.';
	END IF;
	INSERT INTO seriesweb.blocks (series_id, kind, title, duration)
		VALUES (add_wait.series_id, 'wait', add_wait.title, add_wait.duration)
		RETURNING block_id INTO id;
	PERFORM seriesweb.connect(add_wait.after, id, add_wait.path);
	RETURN id;
END
$$;

CREATE FUNCTION seriesweb.add_tag(series_id int, title text, after int, tag text,
								  action text DEFAULT 'add', path text DEFAULT 'matched')
RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	id int;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM seriesweb.series s WHERE s.series_id = add_tag.series_id) THEN
		RAISE EXCEPTION 'series % does not exist', coalesce(add_tag.series_id::text, 'NULL')
			USING ERRCODE = 'no_data_found', HINT = 'Create it with seriesweb.create_series(name).';
	END IF;
	IF add_tag.after IS NULL THEN
		RAISE EXCEPTION 'tag block "%" needs a block before it', add_tag.title
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass after => the id of the block it follows.';
	END IF;
	INSERT INTO seriesweb.blocks (series_id, kind, title, tag, tag_action)
		VALUES (add_tag.series_id, 'tag', add_tag.title, add_tag.tag, coalesce(add_tag.action, 'add'))
		RETURNING block_id INTO id;
	PERFORM seriesweb.connect(add_tag.after, id, add_tag.path);
	RETURN id;
END
$$;

CREATE OR REPLACE VIEW seriesweb.block_stats AS
SELECT b.series_id,
	   s.name AS series_name,
	   b.block_id,
	   b.title,
	   b.kind,
	   coalesce(c.reached, 0) AS reached,
	   coalesce(c.sent, 0) AS sent,
	   coalesce(c.failed, 0) AS failed,
	   CASE WHEN b.kind = 'webhook'
			THEN coalesce(c.reached - c.sent - c.failed, 0) ELSE 0 END AS pending,
	   a.last_sent_at,
	   a.last_failed_at,
	   a.last_error,
	   coalesce(c.waiting, 0) AS waiting,
	   coalesce(c.not_matched, 0) AS not_matched
  FROM seriesweb.blocks b
  JOIN seriesweb.series s ON s.series_id = b.series_id
  LEFT JOIN (SELECT block_id,
					sum(reached)::bigint AS reached,
					sum(sent)::bigint AS sent,
					sum(failed)::bigint AS failed,
					sum(waiting)::bigint AS waiting,
					sum(not_matched)::bigint AS not_matched
			   FROM seriesweb.block_counts GROUP BY block_id) c ON c.block_id = b.block_id
  LEFT JOIN seriesweb.block_activity a ON a.block_id = b.block_id;

-- As the last lines of seriesweb--0.2.sql leave them: PUBLIC gets nothing.
REVOKE ALL ON seriesweb.timers FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._check_duration(text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._check_block_before() FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.add_wait(int, text, int, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.add_tag(int, text, int, text, text, text) FROM PUBLIC;

------------------------------------------------------------------------------
-- Seeing it: a series as a diagram, metrics for monitoring tools
------------------------------------------------------------------------------

-- Text as a diagram tool reads it between double quotes: a line break for
-- each line end (CR LF, CR, LF, U+2028, U+2029), a space for any other
-- control character, then the format's escapes.  mermaid: an entity code
-- (#35; for #) for each ASCII character that it, its markdown or its HTML
-- labels could read as syntax.  dot: a backslash before \ and " (so that
-- \N, \l and the like stay literal) and &amp; for & (Graphviz reads
-- entities).  Other characters, non-ASCII ones included, are kept: both
-- tools read UTF-8, and Graphviz 2.42 mangles entities above U+FFFF.
CREATE FUNCTION seriesweb._diagram_text(format text, t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
	SELECT string_agg(
			CASE format
				WHEN 'dot' THEN replace(replace(replace(p.plain, '\', '\\'), '"', '\"'), '&', '&amp;')
				ELSE (SELECT coalesce(string_agg(
								CASE WHEN strpos('"#$&*<>[\]^_`{|}~', c.ch) > 0
									 THEN '#' || ascii(c.ch) || ';' ELSE c.ch END, '' ORDER BY c.i), '')
						FROM regexp_split_to_table(p.plain, '') WITH ORDINALITY AS c(ch, i))
			END,
			CASE format WHEN 'dot' THEN '\n' ELSE '<br>' END ORDER BY l.n)
	  FROM regexp_split_to_table(t, '\r\n|[\n\r\u2028\u2029]') WITH ORDINALITY AS l(line, n),
		   LATERAL regexp_replace(l.line, '[\u0001-\u001f\u007f-\u009f]', ' ', 'g') AS p(plain)
$$;

-- One block as a node, shaped by its kind (a kind without a shape of its
-- own is drawn round), labelled with its lines of text.
CREATE FUNCTION seriesweb._diagram_node(format text, block_id int, kind text, lines text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	label text := seriesweb._diagram_text(format, array_to_string(lines, E'\n'));
BEGIN
	IF format = 'dot' THEN
		RETURN pg_catalog.format('  b%s [shape=%s, label="%s"];', block_id,
			CASE kind WHEN 'rule' THEN 'box, style=rounded' WHEN 'webhook' THEN 'box'
				ELSE 'ellipse' END,
			label);
	END IF;
	RETURN CASE kind
		WHEN 'rule' THEN pg_catalog.format('    b%s(["%s"])', block_id, label)
		WHEN 'webhook' THEN pg_catalog.format('    b%s["%s"]', block_id, label)
		ELSE pg_catalog.format('    b%s("%s")', block_id, label)
	END;
END
$$;

-- One connection as an edge; the not-matched path of a timed rule dashed
-- and labelled.
CREATE FUNCTION seriesweb._diagram_edge(format text, from_block int, to_block int, path text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE
		WHEN format = 'dot' AND path = 'not_matched'
			THEN pg_catalog.format('  b%s -> b%s [style=dashed, label="not matched"];', from_block, to_block)
		WHEN format = 'dot'
			THEN pg_catalog.format('  b%s -> b%s;', from_block, to_block)
		WHEN path = 'not_matched'
			THEN pg_catalog.format('  b%s -.->|not matched| b%s', from_block, to_block)
		ELSE pg_catalog.format('  b%s --> b%s', from_block, to_block)
	END
$$;

-- The series as text for a diagram tool, 'mermaid' (a flowchart) or 'dot'
-- (Graphviz): one node per block with its title, kind and counts as
-- seriesweb.block_stats has them, one edge per connection.  It shows no
-- URL, header, body or secret, so it is SECURITY DEFINER: a role allowed
-- to execute it (authors and viewers, see the README) needs no access to
-- the tables behind it.
CREATE FUNCTION seriesweb.series_diagram(series_id int, format text DEFAULT 'mermaid')
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	f text := lower(series_diagram.format);
	heading text;
	nodes text;
	edges text;
BEGIN
	IF series_diagram.series_id IS NULL THEN
		RAISE EXCEPTION 'series_diagram needs a series id'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'seriesweb.series_stats lists the series with their ids.';
	END IF;
	IF f IS NULL THEN
		RAISE EXCEPTION 'series_diagram needs a format'
			USING ERRCODE = 'null_value_not_allowed', HINT = 'Use mermaid or dot.';
	END IF;
	IF f NOT IN ('mermaid', 'dot') THEN
		RAISE EXCEPTION 'unknown diagram format "%"', series_diagram.format
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use mermaid or dot.';
	END IF;
	SELECT s.name INTO heading FROM seriesweb.series s WHERE s.series_id = series_diagram.series_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'series % does not exist', series_diagram.series_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'seriesweb.series_stats lists the series with their ids.';
	END IF;

	-- Each kind's counts: a kind added later adds its line here (and, for a
	-- shape of its own, to _diagram_node).
	WITH b AS (
		SELECT s.block_id, s.kind,
			   ARRAY[s.title, s.kind || ': reached ' || s.reached]
			   || CASE
					WHEN s.kind = 'webhook' THEN
						ARRAY['sent ' || s.sent || ', failed ' || s.failed || ', pending ' || s.pending]
					WHEN s.kind = 'wait' THEN
						ARRAY['waiting ' || s.waiting]
					WHEN bl.match_within IS NOT NULL THEN
						ARRAY['waiting ' || s.waiting || ', not matched ' || s.not_matched]
					ELSE '{}'::text[]
				  END AS lines
		  FROM seriesweb.block_stats s
		  JOIN seriesweb.blocks bl ON bl.block_id = s.block_id
		 WHERE s.series_id = series_diagram.series_id),
	e AS (
		SELECT c.from_block, c.to_block, c.path
		  FROM seriesweb.connections c
		 WHERE c.from_block IN (SELECT b.block_id FROM b))
	SELECT (SELECT string_agg(seriesweb._diagram_node(f, b.block_id, b.kind, b.lines), E'\n'
							  ORDER BY b.block_id) FROM b),
		   (SELECT string_agg(seriesweb._diagram_edge(f, e.from_block, e.to_block, e.path), E'\n'
							  ORDER BY e.from_block, e.to_block) FROM e)
	  INTO nodes, edges;

	IF f = 'dot' THEN
		RETURN concat_ws(E'\n',
			'digraph series_' || series_diagram.series_id || ' {',
			'  label="' || seriesweb._diagram_text(f, heading) || '";',
			'  labelloc=t;',
			nodes, edges, '}') || E'\n';
	END IF;
	RETURN concat_ws(E'\n',
		'flowchart TD',
		'  subgraph series_' || series_diagram.series_id || ' ["' || seriesweb._diagram_text(f, heading) || '"]',
		nodes, '  end', edges) || E'\n';
END
$$;

-- The recent attempts that seriesweb.metrics counts and times.
CREATE INDEX delivery_attempts_started ON seriesweb.delivery_attempts (started_at);

-- One row per metric, in the shape monitoring tools scrape: Prometheus
-- names and labels (every row has the database), the value as float8.
-- Each branch is named by a constant, so a query for some names computes
-- only those (each query of contrib/postgres_exporter.yml names its own).
-- Deliveries by status come from the per-block counters (cheap however
-- many rows, and right after purges); status is the current one, so these
-- are gauges (a retried failure leaves "failed").  Latency and attempts
-- are those of the last hour (delivery_attempts_started); the age of the
-- oldest due delivery reads the first entry of deliveries_due, that of the
-- oldest due timer of a live series (how late releases run) the first
-- entry of each live block in timers_due.
CREATE VIEW seriesweb.metrics AS
SELECT 'seriesweb_deliveries'::text AS name,
	   jsonb_build_object('database', current_database()::text, 'series', b.series_name,
						  'block', b.block_id::text, 'title', b.title, 'status', d.status) AS labels,
	   d.value::float8 AS value
  FROM seriesweb.block_stats b,
	   LATERAL (VALUES ('sent', b.sent), ('failed', b.failed), ('pending', b.pending)) AS d(status, value)
 WHERE b.kind = 'webhook'
UNION ALL
SELECT 'seriesweb_block_reached_total',
	   jsonb_build_object('database', current_database()::text, 'series', b.series_name,
						  'block', b.block_id::text, 'title', b.title, 'kind', b.kind),
	   b.reached::float8
  FROM seriesweb.block_stats b
UNION ALL
SELECT 'seriesweb_block_waiting',
	   jsonb_build_object('database', current_database()::text, 'series', b.series_name,
						  'block', b.block_id::text, 'title', b.title, 'kind', b.kind),
	   b.waiting::float8
  FROM seriesweb.block_stats b
UNION ALL
SELECT 'seriesweb_block_not_matched_total',
	   jsonb_build_object('database', current_database()::text, 'series', b.series_name,
						  'block', b.block_id::text, 'title', b.title, 'kind', b.kind),
	   b.not_matched::float8
  FROM seriesweb.block_stats b
UNION ALL
SELECT 'seriesweb_attempts_last_hour',
	   jsonb_build_object('database', current_database()::text, 'outcome', o.outcome),
	   coalesce(a.n, 0)::float8
  FROM (VALUES ('success'), ('failure')) AS o(outcome)
  LEFT JOIN (SELECT CASE WHEN t.error IS NULL THEN 'success' ELSE 'failure' END AS outcome,
					count(*) AS n
			   FROM seriesweb.delivery_attempts t
			  WHERE t.started_at >= now() - interval '1 hour'
			  GROUP BY 1) AS a ON a.outcome = o.outcome
UNION ALL
SELECT 'seriesweb_attempt_duration_last_hour_seconds',
	   jsonb_build_object('database', current_database()::text, 'quantile', q.quantile),
	   coalesce(q.ms / 1000, 'NaN')
  FROM (SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY t.duration_ms) AS ms
		  FROM seriesweb.delivery_attempts t
		 WHERE t.started_at >= now() - interval '1 hour') AS a,
	   LATERAL unnest(ARRAY['0.5', '0.95'], a.ms) AS q(quantile, ms)
UNION ALL
SELECT 'seriesweb_queue_depth',
	   jsonb_build_object('database', current_database()::text),
	   coalesce(sum(b.pending), 0)::float8
  FROM seriesweb.block_stats b
UNION ALL
SELECT 'seriesweb_queue_oldest_due_age_seconds',
	   jsonb_build_object('database', current_database()::text),
	   coalesce(extract(epoch FROM now() - min(d.next_attempt_at)), 0)::float8
  FROM seriesweb.deliveries d
 WHERE d.status = 'pending' AND d.next_attempt_at <= now()
UNION ALL
SELECT 'seriesweb_queue_oldest_due_timer_age_seconds',
	   jsonb_build_object('database', current_database()::text),
	   coalesce(extract(epoch FROM now() - min(t.due_at)), 0)::float8
  FROM seriesweb.blocks b
  JOIN seriesweb.series s ON s.series_id = b.series_id AND s.state = 'live'
 CROSS JOIN LATERAL (SELECT x.due_at FROM seriesweb.timers x
					  WHERE x.block_id = b.block_id ORDER BY x.due_at LIMIT 1) AS t
 WHERE t.due_at <= now()
UNION ALL
SELECT 'seriesweb_worker_status',
	   jsonb_build_object('database', coalesce(w.database, current_database()::text), 'state', w.state),
	   1
  FROM seriesweb.worker_status() AS w;

-- As the last lines of seriesweb--0.2.sql leave them: PUBLIC gets nothing;
-- monitoring tools (pg_monitor) read the metrics, which call worker_status().
REVOKE ALL ON FUNCTION seriesweb._diagram_text(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._diagram_node(text, int, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._diagram_edge(text, int, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.series_diagram(int, text) FROM PUBLIC;
REVOKE ALL ON seriesweb.metrics FROM PUBLIC;
GRANT SELECT ON seriesweb.metrics TO pg_monitor;
GRANT EXECUTE ON FUNCTION seriesweb.worker_status() TO pg_monitor;

------------------------------------------------------------------------------
-- Events from the application's own table
------------------------------------------------------------------------------

-- The matcher, as the trigger of a watched table: its arguments say which
-- column holds the user id, the name (or the one event name), the
-- properties and the time ("" for none).  SECURITY DEFINER for the reasons
-- of _match_events.  PostgreSQL asks for EXECUTE on it only from whoever
-- creates such a trigger: the roles that may call watch().
CREATE FUNCTION seriesweb._match_watched() RETURNS trigger
	LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'sw_match_watched';

-- Rows inserted into the application's table feed the matcher as events,
-- in the inserting transaction.  Runs with the caller's rights: creating
-- the trigger takes the TRIGGER privilege on the table (or owning it).
CREATE FUNCTION seriesweb.watch(events regclass, user_id_column name, name_column name DEFAULT NULL,
		event_name text DEFAULT NULL, properties_column name DEFAULT NULL,
		occurred_at_column name DEFAULT NULL)
RETURNS void
	LANGUAGE c SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'sw_watch';

-- What is watched, read back from the triggers themselves (so a dropped
-- table is unwatched, a renamed one still watched): pg_trigger.tgargs holds
-- the arguments, each ended by a NUL byte.
CREATE VIEW seriesweb.watched AS
SELECT t.tgrelid::pg_catalog.regclass AS events,
	   a.args[1]::name AS user_id_column,
	   nullif(a.args[2], '')::name AS name_column,
	   nullif(a.args[3], '') AS event_name,
	   nullif(a.args[4], '')::name AS properties_column,
	   nullif(a.args[5], '')::name AS occurred_at_column
  FROM pg_catalog.pg_trigger t,
	   LATERAL (
		SELECT array_agg(convert_from(substring(t.tgargs FROM n.pos - n.len FOR n.len),
									  getdatabaseencoding()) ORDER BY n.pos)
		  FROM (SELECT i + 1 AS pos, i - coalesce(lag(i) OVER (ORDER BY i), -1) - 1 AS len
				  FROM generate_series(0, length(t.tgargs) - 1) AS i
				 WHERE get_byte(t.tgargs, i) = 0) AS n) AS a(args)
 WHERE t.tgname = 'seriesweb_watch'
   AND t.tgfoid = 'seriesweb._match_watched()'::pg_catalog.regprocedure;

CREATE FUNCTION seriesweb.unwatch(events regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM seriesweb.watched w WHERE w.events = unwatch.events) THEN
		RAISE EXCEPTION 'table % is not watched', unwatch.events
			USING ERRCODE = 'undefined_object', HINT = 'seriesweb.watched lists the watched tables.';
	END IF;
	EXECUTE format('DROP TRIGGER seriesweb_watch ON %s', unwatch.events);
END
$$;

-- After an ALTER TABLE of a watched table: error unless its watch can
-- still read every column it names, as they were checked by watch().
CREATE FUNCTION seriesweb._check_watched(events regclass) RETURNS void
	LANGUAGE c AS 'MODULE_PATHNAME', 'sw_check_watched';

-- A column a watch reads cannot be renamed, dropped or retyped under it:
-- the ALTER TABLE fails, saying how to watch the table its new way.
CREATE FUNCTION seriesweb._watched_table_altered() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	w regclass;
	state text;
	msg text;
	detail text;
BEGIN
	FOR w IN SELECT DISTINCT t.events
			   FROM seriesweb.watched t, pg_event_trigger_ddl_commands() c
			  WHERE c.classid = 'pg_catalog.pg_class'::regclass AND c.objid = t.events
	LOOP
		BEGIN
			PERFORM seriesweb._check_watched(w);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
									detail = PG_EXCEPTION_DETAIL;
			RAISE EXCEPTION '%', msg USING ERRCODE = state, DETAIL = detail,
				HINT = format('seriesweb watches %s: seriesweb.unwatch(%L) first, then watch it '
							  'again with its new columns.', w, w::text);
		END;
	END LOOP;
END
$$;

CREATE EVENT TRIGGER seriesweb_watched_table_altered ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION seriesweb._watched_table_altered();

-- As the last lines of seriesweb--0.2.sql leave them: PUBLIC gets nothing.
REVOKE ALL ON FUNCTION seriesweb._match_watched() FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.watch(regclass, name, name, text, name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.unwatch(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._check_watched(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb._watched_table_altered() FROM PUBLIC;
REVOKE ALL ON seriesweb.watched FROM PUBLIC;

------------------------------------------------------------------------------
-- Functions that gain arguments: retry_failed(block_id, since),
-- add_rule(..., match_within, path), connect(..., path), add_webhook(..., path)
------------------------------------------------------------------------------

-- Each is replaced by one whose new last argument has a default (an
-- overload would make the old calls ambiguous); whoever was granted the
-- old one is granted the new one (the lists are kept in settings of this
-- transaction meanwhile).
DO $$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY['retry_failed(int)', 'add_rule(int, text, text, jsonb, int)',
							 'connect(int, int)', 'add_webhook(int, text, text, int, text, jsonb, json, text)'] LOOP
		PERFORM pg_catalog.set_config('seriesweb_update.' || pg_catalog.split_part(f, '(', 1),
			pg_catalog.array_to_string(ARRAY(
				SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
				  FROM pg_catalog.pg_proc p
				 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
				  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
				 WHERE p.oid = ('seriesweb.' || f)::pg_catalog.regprocedure
				   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), ','), true);
	END LOOP;
END
$$;
DROP FUNCTION seriesweb.retry_failed(int);
DROP FUNCTION seriesweb.add_rule(int, text, text, jsonb, int);
DROP FUNCTION seriesweb.connect(int, int);
DROP FUNCTION seriesweb.add_webhook(int, text, text, int, text, jsonb, json, text);

-- Every failed delivery of a block, or with since those that failed at or after it.
CREATE FUNCTION seriesweb.retry_failed(block_id int, since timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM seriesweb.blocks b WHERE b.block_id = retry_failed.block_id) THEN
		RAISE EXCEPTION 'block % does not exist', coalesce(retry_failed.block_id::text, 'NULL')
			USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM seriesweb.blocks b
				    WHERE b.block_id = retry_failed.block_id AND b.kind = 'webhook') THEN
		RAISE EXCEPTION 'block % is a rule, not a webhook', retry_failed.block_id
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Rules have no deliveries; retry the webhook block after it.';
	END IF;
	RETURN seriesweb._retry(ARRAY(
		SELECT d.delivery_id FROM seriesweb.deliveries d
		 WHERE d.block_id = retry_failed.block_id AND d.status = 'failed'
		   AND (retry_failed.since IS NULL OR d.finished_at >= retry_failed.since)
		   FOR UPDATE));
END
$$;


CREATE FUNCTION seriesweb.connect(from_block int, to_block int, path text DEFAULT 'matched')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF from_block IS NULL OR to_block IS NULL THEN
		RAISE EXCEPTION 'connect needs two block ids'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	INSERT INTO seriesweb.connections (from_block, to_block, path)
		VALUES (connect.from_block, connect.to_block, connect.path);
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'block % is already connected to block %', from_block, to_block
		USING ERRCODE = 'unique_violation';
END
$$;

CREATE FUNCTION seriesweb.add_rule(series_id int, title text, event_name text DEFAULT NULL,
								   filters jsonb DEFAULT '[]', after int DEFAULT NULL,
								   match_within interval DEFAULT NULL, path text DEFAULT 'matched')
RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	id int;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM seriesweb.series s WHERE s.series_id = add_rule.series_id) THEN
		RAISE EXCEPTION 'series % does not exist', coalesce(add_rule.series_id::text, 'NULL')
			USING ERRCODE = 'no_data_found', HINT = 'Create it with seriesweb.create_series(name).';
	END IF;
	IF add_rule.match_within IS NOT NULL AND add_rule.after IS NULL THEN
		RAISE EXCEPTION 'rule block "%" has match_within but no block before it', add_rule.title
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An entry rule is matched by events; a deadline counts from when a block before it arms it.',
				  HINT = 'Pass after => the block it follows, or leave match_within null.';
	END IF;
	INSERT INTO seriesweb.blocks (series_id, kind, title, event_name, filters, match_within)
		VALUES (add_rule.series_id, 'rule', add_rule.title, add_rule.event_name,
				coalesce(add_rule.filters, '[]'), add_rule.match_within)
		RETURNING block_id INTO id;
	IF add_rule.after IS NOT NULL THEN
		PERFORM seriesweb.connect(add_rule.after, id, add_rule.path);
	END IF;
	RETURN id;
END
$$;

CREATE FUNCTION seriesweb.add_webhook(series_id int, title text, url text, after int,
									  method text DEFAULT 'POST',
									  headers jsonb DEFAULT '{"Content-Type": "application/json"}',
									  body json DEFAULT NULL, secret text DEFAULT NULL,
									  path text DEFAULT 'matched')
RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	id int;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM seriesweb.series s WHERE s.series_id = add_webhook.series_id) THEN
		RAISE EXCEPTION 'series % does not exist', coalesce(add_webhook.series_id::text, 'NULL')
			USING ERRCODE = 'no_data_found', HINT = 'Create it with seriesweb.create_series(name).';
	END IF;
	IF add_webhook.after IS NULL THEN
		RAISE EXCEPTION 'webhook block "%" needs a block before it', add_webhook.title
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass after => the id of the rule (or webhook) it follows.';
	END IF;
	INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers, body, secret)
		VALUES (add_webhook.series_id, 'webhook', add_webhook.title, add_webhook.url,
				coalesce(add_webhook.method, 'POST'), add_webhook.headers,
				add_webhook.body, add_webhook.secret)
		RETURNING block_id INTO id;
	PERFORM seriesweb.connect(add_webhook.after, id, add_webhook.path);
	RETURN id;
END
$$;

REVOKE ALL ON FUNCTION seriesweb.retry_failed(int, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.add_rule(int, text, text, jsonb, int, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.connect(int, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.add_webhook(int, text, text, int, text, jsonb, json, text, text) FROM PUBLIC;
DO $$
DECLARE
	f text;
	who text;
BEGIN
	FOREACH f IN ARRAY ARRAY['retry_failed(int, timestamptz)',
							 'add_rule(int, text, text, jsonb, int, interval, text)',
							 'connect(int, int, text)',
							 'add_webhook(int, text, text, int, text, jsonb, json, text, text)'] LOOP
		FOREACH who IN ARRAY pg_catalog.string_to_array(pg_catalog.current_setting(
			'seriesweb_update.' || pg_catalog.split_part(f, '(', 1)), ',') LOOP
			EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION seriesweb.%s TO %s', f, who);
		END LOOP;
	END LOOP;
END
$$;

------------------------------------------------------------------------------
-- A user's journey: where a user is in each series, and why a rule does or
-- does not hold for them
------------------------------------------------------------------------------

-- The user_id of the user that test_webhook() finds for test_user (by
-- user_id, email or name; none or several: an error listing candidates).
CREATE FUNCTION seriesweb._test_user(test_user text) RETURNS text
	LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'sw_test_user_id';

-- A row per block the user has been armed on or has reached, in the order
-- they got there: armed (a rule waiting for an event), waiting (held by a
-- wait, or armed on a timed rule: a timer says until when), reached, or
-- not_matched (a timed rule's deadline passed); since is when that state
-- began; a webhook's row carries its delivery.  ('cancelled' comes with
-- exit rules, pass 2 and later with re-entry.)  The lookup comes first and
-- alone (OFFSET 0, LATERAL), so an unknown user is an error even when no
-- one has any progress.  It shows no URL, header, body or secret and reads
-- tables no role is granted (progress, timers), so it is SECURITY DEFINER
-- like series_diagram; an unknown user's error lists other users' ids and
-- emails, so it is for authors (see the README).  $2 is series_id: the
-- name is also a result column's.
CREATE FUNCTION seriesweb.journey(test_user text, series_id int DEFAULT NULL)
RETURNS TABLE (series_id int, block_id int, title text, kind text, pass int, state text,
			   since timestamptz, due_at timestamptz, delivery_id bigint, delivery_status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT j.series_id, j.block_id, j.title, j.kind, j.pass, j.state, j.since, j.due_at,
	   j.delivery_id, j.delivery_status
  FROM (SELECT seriesweb._test_user($1) AS user_id OFFSET 0) AS u,
	   LATERAL (
		SELECT b.series_id, b.block_id, b.title, b.kind, 1 AS pass,
			   CASE WHEN p.not_matched_at IS NOT NULL THEN 'not_matched'
					WHEN t.due_at IS NOT NULL THEN 'waiting'
					WHEN p.reached_at IS NOT NULL THEN 'reached'
					ELSE 'armed' END AS state,
			   coalesce(p.not_matched_at, p.reached_at, p.armed_at) AS since,
			   t.due_at, d.delivery_id, d.status AS delivery_status
		  FROM seriesweb.blocks b
		  JOIN seriesweb.progress p ON p.block_id = b.block_id AND p.user_id = u.user_id
		  LEFT JOIN seriesweb.timers t ON t.block_id = p.block_id AND t.user_id = p.user_id
		  LEFT JOIN seriesweb.deliveries d ON d.block_id = p.block_id AND d.user_id = p.user_id
		 WHERE $2 IS NULL OR b.series_id = $2) AS j
 ORDER BY j.series_id, j.since, j.block_id, j.delivery_id
$$;

-- Each condition of a rule's filters evaluated for the user now, by the
-- matcher's own code; src/explain.c says what the rows are.  It reads the
-- rule's filters and the user with the caller's rights, like preview():
-- for authors.
CREATE FUNCTION seriesweb.explain(block_id int, test_user text)
RETURNS TABLE (condition text, attribute text, actual jsonb, holds bool)
	LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'sw_explain';

-- As the last lines of seriesweb--0.2.sql leave them: PUBLIC gets nothing.
REVOKE ALL ON FUNCTION seriesweb._test_user(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.journey(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION seriesweb.explain(int, text) FROM PUBLIC;

------------------------------------------------------------------------------
-- Initial privileges: only what the scripts grant
------------------------------------------------------------------------------

-- A GRANT or REVOKE in an extension script records the object's whole ACL
-- as its initial privileges (pg_init_privs), grants a DBA gave at 0.1
-- included, and pg_dump leaves initial privileges out of a dump: a restore
-- would lose them.  Keep, as a fresh install records, only what the
-- scripts grant: the owner's, PUBLIC's and pg_monitor's.
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY(
		SELECT x FROM pg_catalog.unnest(i.initprivs) x
		 WHERE (SELECT a.grantee FROM pg_catalog.aclexplode(ARRAY[x]) a LIMIT 1)
			   IN (0, 'pg_monitor'::pg_catalog.regrole,
				   (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'seriesweb')))
  FROM pg_catalog.pg_depend d
 WHERE i.privtype = 'e' AND d.deptype = 'e'
   AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'seriesweb')
   AND i.classoid = d.classid AND i.objoid = d.objid;

-- The worker waits for this update when its library is newer: wake it.
SELECT seriesweb._wake_worker();
