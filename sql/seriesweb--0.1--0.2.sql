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
	-- shape of its own, to _diagram_node).  Every connection takes the
	-- matched path until connections have a path of their own.
	WITH b AS (
		SELECT s.block_id, s.kind,
			   ARRAY[s.title, s.kind || ': reached ' || s.reached]
			   || CASE s.kind
					WHEN 'webhook' THEN
						ARRAY['sent ' || s.sent || ', failed ' || s.failed || ', pending ' || s.pending]
					ELSE '{}'::text[]
				  END AS lines
		  FROM seriesweb.block_stats s
		 WHERE s.series_id = series_diagram.series_id),
	e AS (
		SELECT c.from_block, c.to_block, 'matched' AS path
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
-- oldest due delivery reads the first entry of deliveries_due.
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
-- Replaying: retry_failed(block_id, since)
------------------------------------------------------------------------------

-- The one-argument function is replaced by one whose second argument
-- defaults to NULL (an overload would make retry_failed(b) ambiguous);
-- whoever was granted the old one is granted the new one (the list is kept
-- in a setting of this transaction meanwhile).
DO $$
BEGIN
	PERFORM pg_catalog.set_config('seriesweb_update.retry_failed_grantees', pg_catalog.array_to_string(ARRAY(
		SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
		  FROM pg_catalog.pg_proc p
		 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
		  LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
		 WHERE p.oid = 'seriesweb.retry_failed(int)'::pg_catalog.regprocedure
		   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), ','), true);
END
$$;
DROP FUNCTION seriesweb.retry_failed(int);

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

REVOKE ALL ON FUNCTION seriesweb.retry_failed(int, timestamptz) FROM PUBLIC;
DO $$
DECLARE
	who text;
BEGIN
	FOREACH who IN ARRAY pg_catalog.string_to_array(
		pg_catalog.current_setting('seriesweb_update.retry_failed_grantees'), ',') LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION seriesweb.retry_failed(int, timestamptz) TO %s', who);
	END LOOP;
END
$$;

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
