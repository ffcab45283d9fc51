-- privileges: PUBLIC gets nothing; the three roles of the README's Security
-- section get exactly what their job needs, and the events trigger does not
-- lend the application more.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- The roles, granted exactly as the README says.
CREATE ROLE regress_author;
GRANT USAGE ON SCHEMA seriesweb TO regress_author;
GRANT SELECT, INSERT, UPDATE, DELETE ON seriesweb.series, seriesweb.blocks, seriesweb.connections TO regress_author;
GRANT SELECT ON seriesweb.users, seriesweb.companies, seriesweb.deliveries, seriesweb.delivery_attempts,
                seriesweb.block_stats, seriesweb.series_stats TO regress_author;
GRANT EXECUTE ON FUNCTION seriesweb.create_series, seriesweb.add_rule, seriesweb.add_webhook,
      seriesweb.connect, seriesweb.set_live, seriesweb.pause, seriesweb.preview, seriesweb.test_webhook,
      seriesweb.retry_delivery, seriesweb.retry_failed, seriesweb.worker_status TO regress_author;

CREATE ROLE regress_app;
GRANT USAGE ON SCHEMA seriesweb TO regress_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON seriesweb.users, seriesweb.companies TO regress_app;
GRANT SELECT, INSERT ON seriesweb.events TO regress_app;

CREATE ROLE regress_viewer;
GRANT USAGE ON SCHEMA seriesweb TO regress_viewer;
GRANT SELECT ON seriesweb.block_stats, seriesweb.series_stats TO regress_viewer;

CREATE ROLE regress_nobody;

-- PUBLIC: nothing at all.
SET ROLE regress_nobody;
SELECT * FROM seriesweb.block_stats;
SELECT seriesweb.create_series('nope');
INSERT INTO seriesweb.events (user_id, name) VALUES ('x', 'y');
RESET ROLE;
SELECT count(*) AS public_grants
  FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE c.relnamespace = 'seriesweb'::regnamespace AND a.grantee = 0;
SELECT count(*) AS public_function_grants
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'seriesweb'::regnamespace AND a.grantee = 0;

-- The author defines a series with a secret and an Authorization header.
SET ROLE regress_author;
SELECT seriesweb.create_series('Onboarding') AS s \gset
SELECT seriesweb.add_rule(:s, 'Signed up', 'signup') AS r \gset
SELECT seriesweb.add_webhook(:s, 'CRM', 'http://127.0.0.1:9/crm', after => :r,
       headers => '{"Content-Type": "application/json", "Authorization": "Bearer s3cr3t-t0ken"}',
       body => '{"email": "{user.email}"}', secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') AS w \gset
SELECT seriesweb.set_live(:s);
-- ... but does not write people or events.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'signup');
RESET ROLE;

-- The application writes people and events; its event enqueues a delivery
-- through the trigger although it cannot touch the queue itself.
SET ROLE regress_app;
INSERT INTO seriesweb.users (user_id, email) VALUES ('u1', 'lonnie@example.com');
UPDATE seriesweb.users SET name = 'Lonnie' WHERE user_id = 'u1';
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'signup'), ('u2', 'signup') RETURNING user_id, name;
SELECT * FROM seriesweb.deliveries;
SELECT * FROM seriesweb.blocks;
UPDATE seriesweb.blocks SET url = 'http://127.0.0.1:9/mine';
SELECT * FROM seriesweb.block_stats;
SELECT seriesweb.set_live(1);
SELECT seriesweb.preview(1, 'u1');
RESET ROLE;
SELECT user_id, status FROM seriesweb.deliveries ORDER BY user_id;

-- The viewer reads the stats and nothing else: no header values, secrets
-- or bodies.
SET ROLE regress_viewer;
SELECT series_name, title, kind, reached, pending FROM seriesweb.block_stats ORDER BY block_id;
SELECT name, users_entered, pending FROM seriesweb.series_stats;
SELECT headers FROM seriesweb.deliveries;
SELECT secret FROM seriesweb.blocks;
SELECT response_body FROM seriesweb.delivery_attempts;
SELECT * FROM seriesweb.preview(:w, 'u1');
SELECT seriesweb.retry_failed(:w);
-- The stats views expose no column holding a secret, header or body.
SELECT table_name, column_name FROM information_schema.columns
 WHERE table_schema = 'seriesweb' AND table_name IN ('block_stats', 'series_stats')
   AND column_name ~ 'secret|header|body|url';
RESET ROLE;

-- The author sees the request (preview) and may replay failures.
UPDATE seriesweb.deliveries SET status = 'failed', attempts = 3, finished_at = now();
SET ROLE regress_author;
SELECT url, body FROM seriesweb.preview(:w, 'u1');
UPDATE seriesweb.deliveries SET status = 'pending';
SELECT seriesweb.retry_failed(:w) AS retried;
RESET ROLE;

-- Only superusers (or roles granted it) change the settings that widen
-- where requests may go, and no session can.
SET ROLE regress_author;
SET seriesweb.allowed_networks = '10.0.0.0/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8';
RESET ROLE;
ALTER ROLE regress_app SET seriesweb.allowed_networks = '10.0.0.0/8';

-- The internal functions behind the triggers cannot be called directly.
SELECT seriesweb._match_events();

-- DROP EXTENSION removes everything, the schema included.
DROP EXTENSION seriesweb;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'seriesweb';
DROP ROLE regress_author, regress_app, regress_viewer, regress_nobody;
