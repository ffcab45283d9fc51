-- schema: what CREATE EXTENSION seriesweb creates, and the settings.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- The extension cannot be relocated; it creates the schema seriesweb, which
-- belongs to it (DROP EXTENSION removes it).
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'seriesweb';
SELECT deptype FROM pg_depend
 WHERE classid = 'pg_namespace'::regclass AND objid = 'seriesweb'::regnamespace
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'seriesweb');

-- Tables and views.
SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'seriesweb'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relkind, c.relname;

-- The public functions (internal ones start with an underscore).
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'seriesweb'::regnamespace AND p.proname NOT LIKE '\_%'
 ORDER BY p.proname;

-- The columns the contract promises on people and events.  An event also
-- carries the id of the installation that accepted it, drawn at random by
-- CREATE EXTENSION (so shown here as <id>): rows a dump brings carry
-- another one.
SELECT table_name, column_name, data_type, is_nullable,
       regexp_replace(column_default, '^''-?\d+''::bigint$', '<id>') AS column_default
  FROM information_schema.columns
 WHERE table_schema = 'seriesweb' AND table_name IN ('companies', 'users', 'events')
 ORDER BY table_name, ordinal_position;

-- The default is this installation's id.
SELECT column_default = format('''%s''::bigint', (SELECT installation_id FROM seriesweb.installation))
       AS default_is_installation
  FROM information_schema.columns
 WHERE table_schema = 'seriesweb' AND table_name = 'events' AND column_name = 'installation_id';

-- The stats views' columns.
SELECT table_name, column_name, data_type
  FROM information_schema.columns
 WHERE table_schema = 'seriesweb' AND table_name IN ('block_stats', 'series_stats')
 ORDER BY table_name, ordinal_position;

-- Settings, their defaults and when they can change.
SELECT name, setting, unit, context, min_val, max_val
  FROM pg_settings WHERE name LIKE 'seriesweb.%' ORDER BY name;

-- They are server settings: a session cannot change them.
SET seriesweb.timeout = '1s';
-- Bad values are refused with the reason (ALTER SYSTEM checks them).
ALTER SYSTEM SET seriesweb.retry_delays = 'soon';
ALTER SYSTEM SET seriesweb.retry_delays = '5s, 2d';
ALTER SYSTEM SET seriesweb.max_concurrency = 0;
ALTER SYSTEM SET seriesweb.timeout = '1h';
-- A misspelt setting in the reserved prefix is refused.
SET seriesweb.timout = '1s';

-- Emails are unique (users without one are not), and an upsert can name
-- the constraint.
INSERT INTO seriesweb.users (user_id, email) VALUES ('e1', 'same@example.com'), ('e2', NULL), ('e3', NULL);
INSERT INTO seriesweb.users (user_id, email) VALUES ('e4', 'same@example.com');
INSERT INTO seriesweb.users (user_id, email, name) VALUES ('e5', 'same@example.com', 'Sam')
    ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name;
SELECT user_id, email, name FROM seriesweb.users WHERE email IS NOT NULL;
DELETE FROM seriesweb.users WHERE user_id IN ('e1', 'e2', 'e3');

-- This test instance serves only the database "postgres" (seriesweb.database), so this
-- database's deliveries wait, and worker_status says so.
SELECT database, detail FROM seriesweb.worker_status();

DROP EXTENSION seriesweb;
