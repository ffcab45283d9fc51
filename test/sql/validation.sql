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

-- Series in time: waits, timed rules and their not-matched paths.
SELECT seriesweb.create_series('Timed') AS s3 \gset
SELECT seriesweb.add_rule(:s3, 'Signed up', 'signup') AS t_entry \gset
-- A wait needs a block before it and a duration from 1 second to 1 year.
SELECT seriesweb.add_wait(:s3, 'w', NULL, '1 day');
SELECT seriesweb.add_wait(:s3, 'w', :t_entry, NULL);
SELECT seriesweb.add_wait(:s3, 'w', :t_entry, '0');
SELECT seriesweb.add_wait(:s3, 'w', :t_entry, '999 milliseconds');
SELECT seriesweb.add_wait(:s3, 'w', :t_entry, '-1 day');
SELECT seriesweb.add_wait(:s3, 'w', :t_entry, '1 year 1 second');
SELECT seriesweb.add_wait(:s3, '', :t_entry, '1 day');
SELECT seriesweb.add_wait(:s3, 'w', :r1, '1 day');
SELECT seriesweb.add_wait(:s3, 'Three days', :t_entry, '3 days') AS t_wait \gset
SELECT seriesweb.add_wait(:s3, 'A year', :t_wait, '1 year') AS t_year \gset
-- match_within: only on a rule after another block, in the same range.
SELECT seriesweb.add_rule(:s3, 'r', 'project', match_within => '4 days');
SELECT seriesweb.add_rule(:s3, 'r', 'project', after => :t_wait, match_within => '0');
SELECT seriesweb.add_rule(:s3, 'r', 'project', after => :t_wait, match_within => '2 years');
SELECT seriesweb.add_rule(:s3, 'Made a project', 'project', after => :t_wait,
                          match_within => '4 days') AS t_rule \gset
-- A not-matched path only from a rule with match_within; known paths only.
SELECT seriesweb.add_webhook(:s3, 'w', 'http://127.0.0.1:9/', after => :t_entry, path => 'not_matched');
SELECT seriesweb.add_webhook(:s3, 'w', 'http://127.0.0.1:9/', after => :t_wait, path => 'not_matched');
SELECT seriesweb.add_webhook(:s3, 'w', 'http://127.0.0.1:9/', after => :t_rule, path => 'sometimes');
SELECT seriesweb.add_webhook(:s3, 'w', 'http://127.0.0.1:9/', after => :t_rule, path => NULL);
SELECT seriesweb.add_webhook(:s3, 'Tell the CRM', 'http://127.0.0.1:9/crm', after => :t_rule,
                             path => 'not_matched') AS t_crm \gset
SELECT seriesweb.add_webhook(:s3, 'Tell Slack', 'http://127.0.0.1:9/slack', after => :t_rule) AS t_slack \gset
SELECT seriesweb.connect(:t_rule, :t_slack, 'not_matched');
-- Cycles through waits are cycles.
SELECT seriesweb.connect(:t_year, :t_entry);
SELECT seriesweb.connect(:t_slack, :t_wait);
-- Whether a rule is timed is fixed; its interval is not.
UPDATE seriesweb.blocks SET match_within = NULL WHERE block_id = :t_rule;
UPDATE seriesweb.blocks SET match_within = '1 hour' WHERE block_id = :t_entry;
UPDATE seriesweb.blocks SET match_within = '2 days' WHERE block_id = :t_rule;
UPDATE seriesweb.blocks SET duration = '0' WHERE block_id = :t_wait;
UPDATE seriesweb.blocks SET duration = '5 days' WHERE block_id = :t_wait;
-- Direct writes: each kind has its own columns ...
INSERT INTO seriesweb.blocks (series_id, kind, title, duration, url) VALUES (:s3, 'wait', 'w', '1 day', 'http://127.0.0.1:9/');
INSERT INTO seriesweb.blocks (series_id, kind, title, duration, match_within) VALUES (:s3, 'wait', 'w', '1 day', '1 day');
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers, duration)
VALUES (:s3, 'webhook', 'w', 'http://127.0.0.1:9/', 'POST', '{"Content-Type": "application/json"}', '1 day');
INSERT INTO seriesweb.blocks (series_id, kind, title) VALUES (:s3, 'wait', 'w');
INSERT INTO seriesweb.blocks (series_id, kind, title, filters, duration) VALUES (:s3, 'rule', 'r', '[]', '1 day');
-- ... and, at commit, a wait or a timed rule needs a block before it.
INSERT INTO seriesweb.blocks (series_id, kind, title, duration) VALUES (:s3, 'wait', 'Alone', '1 day');
INSERT INTO seriesweb.blocks (series_id, kind, title, filters, match_within)
VALUES (:s3, 'rule', 'Alone', '[]', '1 day');
DELETE FROM seriesweb.connections WHERE to_block = :t_rule;
DELETE FROM seriesweb.connections WHERE to_block = :t_wait;
UPDATE seriesweb.connections SET path = 'not_matched' WHERE from_block = :t_entry;
-- Tag blocks: a block before them, a tag of 1 to 100 characters, add or remove.
SELECT seriesweb.add_tag(:s3, 't', NULL, 'vip');
SELECT seriesweb.add_tag(:s3, 't', :t_entry, NULL);
SELECT seriesweb.add_tag(:s3, 't', :t_entry, '');
SELECT seriesweb.add_tag(:s3, 't', :t_entry, repeat('x', 101));
SELECT seriesweb.add_tag(:s3, 't', :t_entry, 'vip', action => 'toggle');
SELECT seriesweb.add_tag(:s3, 'Tag VIP', :t_entry, 'vip') AS t_tag \gset
SELECT seriesweb.add_tag(:s3, 'Untag trial', :t_tag, 'trial', action => 'REMOVE') AS t_untag \gset
SELECT kind, tag, tag_action FROM seriesweb.blocks WHERE block_id IN (:t_tag, :t_untag) ORDER BY block_id;
INSERT INTO seriesweb.blocks (series_id, kind, title, tag, tag_action, url)
VALUES (:s3, 'tag', 't', 'vip', 'add', 'http://127.0.0.1:9/');
INSERT INTO seriesweb.blocks (series_id, kind, title, tag, tag_action) VALUES (:s3, 'tag', 'Alone', 'vip', 'add');
INSERT INTO seriesweb.blocks (series_id, kind, title, filters, tag) VALUES (:s3, 'rule', 'r', '[]', 'vip');
-- What the statistics and the diagram show of it.
SELECT title, kind, reached, waiting, not_matched FROM seriesweb.block_stats
 WHERE series_id = :s3 ORDER BY block_id;
SELECT from_block = :t_rule AS from_timed_rule, path FROM seriesweb.connections c
  JOIN seriesweb.blocks b ON b.block_id = c.from_block WHERE b.series_id = :s3 ORDER BY to_block;
SELECT seriesweb.series_diagram(:s3, 'dot');

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
