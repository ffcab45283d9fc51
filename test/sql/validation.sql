-- validation: every bad series definition fails at once, with an error that
-- names what is wrong, whether it comes through the functions or through
-- direct writes to the tables.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT seriesweb.create_series('Onboarding') AS s1 \gset
SELECT seriesweb.create_series('Churn') AS s2 \gset

-- Series names are unique and not blank.
SELECT seriesweb.create_series('Onboarding');
SELECT seriesweb.create_series('  ');
SELECT seriesweb.create_series(NULL);

-- Blocks of a series that does not exist.
SELECT seriesweb.add_rule(999, 'r', 'signup');
SELECT seriesweb.add_webhook(999, 'w', 'http://127.0.0.1:9/', after => 1);

-- A rule needs a title; an empty event name is not "any event".
SELECT seriesweb.add_rule(:s1, '', 'signup');
SELECT seriesweb.add_rule(:s1, 'r', '');

SELECT seriesweb.add_rule(:s1, 'Signed up', 'signup') AS r1 \gset
SELECT seriesweb.add_rule(:s2, 'Cancelled', 'cancel') AS r2 \gset

-- A webhook block needs a block before it.
SELECT seriesweb.add_webhook(:s1, 'w', 'http://127.0.0.1:9/', after => NULL);
-- ... in the same series.
SELECT seriesweb.add_webhook(:s1, 'w', 'http://127.0.0.1:9/', after => :r2);
SELECT seriesweb.add_webhook(:s1, 'Tell the CRM', 'http://127.0.0.1:9/crm', after => :r1) AS w1 \gset

-- Connections: same series, existing blocks, no duplicates, no cycles.
SELECT seriesweb.connect(:r1, :r2);
SELECT seriesweb.connect(:r1, 12345);
SELECT seriesweb.connect(:r1, :w1);
SELECT seriesweb.connect(:r1, :r1);
SELECT seriesweb.add_rule(:s1, 'Bought', 'purchase', after => :w1) AS r3 \gset
SELECT seriesweb.connect(:r3, :r1);
SELECT seriesweb.connect(:r3, NULL);
-- The same through the table.
INSERT INTO seriesweb.connections VALUES (:r3, :r1);
UPDATE seriesweb.connections SET to_block = :r2 WHERE from_block = :r1 AND to_block = :w1;

-- A webhook written straight into the table with no rule before it is
-- refused when the transaction commits.
BEGIN;
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers)
VALUES (:s1, 'webhook', 'orphan', 'http://127.0.0.1:9/', 'POST', '{"Content-Type": "application/json"}');
COMMIT;
-- ... and so is removing the only connection before a webhook.
DELETE FROM seriesweb.connections WHERE to_block = :w1;
-- Written with its connection in one transaction, it is fine.
BEGIN;
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers)
VALUES (:s1, 'webhook', 'direct', 'http://127.0.0.1:9/direct', 'post', '{"Content-Type": "application/json"}')
RETURNING block_id AS w2 \gset
INSERT INTO seriesweb.connections VALUES (:r1, :w2);
COMMIT;
-- The method was normalised to upper case and the default headers kept.
SELECT kind, title, method, headers FROM seriesweb.blocks WHERE block_id = :w2;

-- Rule and webhook columns do not mix.
INSERT INTO seriesweb.blocks (series_id, kind, title, event_name, url)
VALUES (:s1, 'rule', 'mixed', 'signup', 'http://127.0.0.1:9/');
INSERT INTO seriesweb.blocks (series_id, kind, title, event_name, url, method, headers)
VALUES (:s1, 'webhook', 'mixed', 'signup', 'http://127.0.0.1:9/', 'POST', '{"Content-Type": "application/json"}');
INSERT INTO seriesweb.blocks (series_id, kind, title) VALUES (:s1, 'email', 'unknown kind');

-- Blocks keep their kind and series.
UPDATE seriesweb.blocks SET kind = 'webhook' WHERE block_id = :r1;
UPDATE seriesweb.blocks SET series_id = :s2 WHERE block_id = :r1;
-- Updates are validated like inserts.
UPDATE seriesweb.blocks SET url = 'ftp://127.0.0.1/' WHERE block_id = :w1;
UPDATE seriesweb.blocks SET filters = '{"op": "eq"}' WHERE block_id = :r1;
UPDATE seriesweb.blocks SET title = ' ' WHERE block_id = :r1;

-- A series goes live only with an entry rule; states are draft, live, paused.
SELECT seriesweb.create_series('Empty') AS s3 \gset
SELECT seriesweb.set_live(:s3);
SELECT seriesweb.set_live(999);
UPDATE seriesweb.series SET state = 'running' WHERE series_id = :s1;
SELECT seriesweb.set_live(:s1);
SELECT seriesweb.pause(:s1);
SELECT name, state FROM seriesweb.series ORDER BY series_id;

-- The series as defined.
SELECT b.title, b.kind, b.event_name, string_agg(n.title, ', ' ORDER BY n.block_id) AS next
  FROM seriesweb.blocks b
  LEFT JOIN seriesweb.connections c ON c.from_block = b.block_id
  LEFT JOIN seriesweb.blocks n ON n.block_id = c.to_block
 WHERE b.series_id = :s1
 GROUP BY b.block_id, b.title, b.kind, b.event_name
 ORDER BY b.block_id;

-- Deleting a series removes its blocks and connections.
DELETE FROM seriesweb.series WHERE series_id = :s2;
SELECT count(*) FROM seriesweb.blocks WHERE series_id = :s2;

-- A dump loads one table at a time (a live series before its rules, a
-- webhook before its connections) with check_function_bodies off, as
-- pg_dump writes it.  Then the checks that need rows of other tables wait
-- for them, as PostgreSQL's own checks of function bodies do; each row's
-- own content is checked as always.
BEGIN;
SET LOCAL check_function_bodies = off;
INSERT INTO seriesweb.series (series_id, name, state) VALUES (100, 'Restored', 'live');
INSERT INTO seriesweb.blocks (block_id, series_id, kind, title, url, method, headers)
VALUES (100, 100, 'webhook', 'Restored webhook', 'http://127.0.0.1:9/', 'POST',
        '{"Content-Type": "application/json"}');
INSERT INTO seriesweb.blocks (block_id, series_id, kind, title, url, method, headers)
VALUES (101, 100, 'webhook', 'Restored bad webhook', 'ftp://127.0.0.1:9/', 'POST',
        '{"Content-Type": "application/json"}');
ROLLBACK;
BEGIN;
SET LOCAL check_function_bodies = off;
INSERT INTO seriesweb.series (series_id, name, state) VALUES (100, 'Restored', 'live');
INSERT INTO seriesweb.blocks (block_id, series_id, kind, title, url, method, headers)
VALUES (100, 100, 'webhook', 'Restored webhook', 'http://127.0.0.1:9/', 'POST',
        '{"Content-Type": "application/json"}');
COMMIT;
SELECT name, state FROM seriesweb.series WHERE series_id = 100;
DELETE FROM seriesweb.series WHERE series_id = 100;

DROP EXTENSION seriesweb;
