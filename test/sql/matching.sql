-- matching: how events move users through live series and enqueue
-- deliveries, in the inserting transaction.  The worker of this test
-- instance serves another database, so deliveries stay pending here and we
-- read the queue.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- The seed scenario of the README.
INSERT INTO seriesweb.companies VALUES ('c0m5en5e', 'CSense Ltd');
INSERT INTO seriesweb.users (user_id, email, name, company_id)
VALUES ('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c0m5en5e');
SELECT seriesweb.create_series('Onboarding');
SELECT seriesweb.add_rule(1, 'Completed onboarding', event_name => 'completed-onboarding');
SELECT seriesweb.add_webhook(1, 'Tell the CRM', url => 'http://127.0.0.1:9/hooks', after => 1,
       headers => '{"Content-Type": "application/json", "Authorization": "Bearer t0ken"}',
       body => '{"name": "{user.name}", "company": "{company.name}", "company_id": "{company.id}"}');

-- A draft series matches nothing.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding');
SELECT count(*) AS deliveries FROM seriesweb.deliveries;

SELECT seriesweb.set_live(1);
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding');
SELECT series_id, block_id, user_id, status, attempts, method, url, headers, body
  FROM seriesweb.deliveries ORDER BY delivery_id;

-- A user reaches each block at most once: the same event again enqueues nothing.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding');
SELECT count(*) AS deliveries FROM seriesweb.deliveries;

-- Other event names cost nothing and do nothing.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'page-view');
SELECT count(*) AS deliveries FROM seriesweb.deliveries;

-- An event of an unknown user creates the user (with nothing else known).
INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'completed-onboarding');
SELECT user_id, email, name, company_id, attributes FROM seriesweb.users WHERE user_id = 'u2';
SELECT user_id, body FROM seriesweb.deliveries WHERE user_id = 'u2';

-- A transaction that rolls back enqueues nothing and creates no user.
BEGIN;
INSERT INTO seriesweb.events (user_id, name) VALUES ('u3', 'completed-onboarding');
SELECT count(*) AS deliveries_inside FROM seriesweb.deliveries WHERE user_id = 'u3';
ROLLBACK;
SELECT count(*) AS deliveries_after FROM seriesweb.deliveries WHERE user_id = 'u3';
SELECT count(*) AS users_u3 FROM seriesweb.users WHERE user_id = 'u3';

-- Multi-row INSERT ... SELECT and COPY enqueue too.
INSERT INTO seriesweb.events (user_id, name)
SELECT 'm' || i, 'completed-onboarding' FROM generate_series(1, 3) i;
COPY seriesweb.events (user_id, name, properties) FROM stdin;
c1	completed-onboarding	{}
c2	completed-onboarding	{"source": "copy"}
c3	something-else	{}
\.
SELECT user_id, status FROM seriesweb.deliveries
 WHERE user_id ~ '^[mc]' ORDER BY user_id;

-- Pausing stops new matches; what is enqueued stays.
SELECT seriesweb.pause(1);
INSERT INTO seriesweb.events (user_id, name) VALUES ('p1', 'completed-onboarding');
SELECT count(*) AS deliveries_for_p1 FROM seriesweb.deliveries WHERE user_id = 'p1';
SELECT seriesweb.set_live(1);
INSERT INTO seriesweb.events (user_id, name) VALUES ('p1', 'completed-onboarding');
SELECT count(*) AS deliveries_for_p1 FROM seriesweb.deliveries WHERE user_id = 'p1';

-- Two steps: signup arms "Big purchase"; only a later purchase over 100
-- reaches it.  A purchase before signup does nothing.
SELECT seriesweb.create_series('Upsell') AS up \gset
SELECT seriesweb.add_rule(:up, 'Signed up', 'signup') AS signup \gset
SELECT seriesweb.add_rule(:up, 'Big purchase', 'purchase',
       '[{"attribute": "event.amount", "op": "gt", "value": 100}]', after => :signup) AS big \gset
SELECT seriesweb.add_webhook(:up, 'Offer', 'http://127.0.0.1:9/offer/{user.id}', after => :big,
       body => '{"amount": "{event.amount}", "user": "{user.id}"}') AS offer \gset
SELECT seriesweb.set_live(:up);
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('s1', 'purchase', '{"amount": 500}');
INSERT INTO seriesweb.events (user_id, name) VALUES ('s1', 'signup');
SELECT b.title, p.reached_at IS NOT NULL AS reached
  FROM seriesweb.progress p JOIN seriesweb.blocks b USING (block_id)
 WHERE p.user_id = 's1' ORDER BY b.block_id;
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('s1', 'purchase', '{"amount": 50}');
SELECT count(*) AS offers FROM seriesweb.deliveries WHERE block_id = :offer;
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('s1', 'purchase', '{"amount": 250}');
SELECT url, body FROM seriesweb.deliveries WHERE block_id = :offer;

-- In one statement, events are matched in order: signup arms the rule, the
-- purchase after it reaches it.
INSERT INTO seriesweb.events (user_id, name, properties)
VALUES ('s2', 'signup', '{}'), ('s2', 'purchase', '{"amount": 101}');
SELECT user_id, body FROM seriesweb.deliveries WHERE block_id = :offer ORDER BY delivery_id;

-- The event that arms a rule does not reach it: "Signed up twice" waits for
-- a second signup.
SELECT seriesweb.create_series('Twice') AS tw \gset
SELECT seriesweb.add_rule(:tw, 'First signup', 'signup') AS t1 \gset
SELECT seriesweb.add_rule(:tw, 'Second signup', 'signup', after => :t1) AS t2 \gset
SELECT seriesweb.add_webhook(:tw, 'Twice', 'http://127.0.0.1:9/twice', after => :t2) AS tw_hook \gset
SELECT seriesweb.set_live(:tw);
INSERT INTO seriesweb.events (user_id, name) VALUES ('t1', 'signup');
SELECT count(*) AS twice FROM seriesweb.deliveries WHERE block_id = :tw_hook;
INSERT INTO seriesweb.events (user_id, name) VALUES ('t1', 'signup');
SELECT count(*) AS twice FROM seriesweb.deliveries WHERE block_id = :tw_hook;

-- A rule with no event name is checked the moment it is armed, against the
-- user as they are then; if it fails, any later event of the user may reach it.
SELECT seriesweb.create_series('Pro') AS pro \gset
SELECT seriesweb.add_rule(:pro, 'Logged in', 'login') AS login \gset
SELECT seriesweb.add_rule(:pro, 'Is pro', NULL,
       '[{"attribute": "user.plan", "op": "eq", "value": "pro"}]', after => :login) AS is_pro \gset
SELECT seriesweb.add_webhook(:pro, 'Welcome pro', 'http://127.0.0.1:9/pro', after => :is_pro) AS pro_hook \gset
-- ... and webhooks can follow webhooks.
SELECT seriesweb.add_webhook(:pro, 'Also tell billing', 'http://127.0.0.1:9/billing', after => :pro_hook) AS billing \gset
SELECT seriesweb.set_live(:pro);
INSERT INTO seriesweb.users (user_id, attributes) VALUES ('pro1', '{"plan": "pro"}'), ('free1', '{"plan": "free"}');
INSERT INTO seriesweb.events (user_id, name) VALUES ('pro1', 'login'), ('free1', 'login');
SELECT d.user_id, b.title FROM seriesweb.deliveries d JOIN seriesweb.blocks b USING (block_id)
 WHERE d.series_id = :pro ORDER BY d.delivery_id;
UPDATE seriesweb.users SET attributes = '{"plan": "pro"}' WHERE user_id = 'free1';
INSERT INTO seriesweb.events (user_id, name) VALUES ('free1', 'anything');
SELECT d.user_id, b.title FROM seriesweb.deliveries d JOIN seriesweb.blocks b USING (block_id)
 WHERE d.series_id = :pro ORDER BY d.delivery_id;

-- Filters see the company as it is at the moment of the event.
SELECT seriesweb.create_series('Enterprise') AS ent \gset
SELECT seriesweb.add_rule(:ent, 'Big company', 'login',
       '{"any": [{"attribute": "company.seats", "op": "gte", "value": 100},
                 {"attribute": "company.name", "op": "ends_with", "value": "Corp"}]}') AS ent_rule \gset
SELECT seriesweb.add_webhook(:ent, 'Call sales', 'http://127.0.0.1:9/sales', after => :ent_rule,
       body => '{"seats": "{company.seats}", "company": "{company.name | fallback: \"none\"}"}') AS ent_hook \gset
SELECT seriesweb.set_live(:ent);
INSERT INTO seriesweb.companies (company_id, name, attributes) VALUES ('small', 'Small Ltd', '{"seats": 5}');
INSERT INTO seriesweb.users (user_id, company_id) VALUES ('e1', 'small');
INSERT INTO seriesweb.events (user_id, name) VALUES ('e1', 'login');
SELECT count(*) AS calls FROM seriesweb.deliveries WHERE block_id = :ent_hook;
UPDATE seriesweb.companies SET attributes = '{"seats": 150}' WHERE company_id = 'small';
INSERT INTO seriesweb.events (user_id, name) VALUES ('e1', 'login');
SELECT body FROM seriesweb.deliveries WHERE block_id = :ent_hook;

-- A value from the data that cannot be sent (a newline in a header) fails
-- that delivery at once, with the reason; the INSERT itself succeeds.
SELECT seriesweb.create_series('Headers') AS hs \gset
SELECT seriesweb.add_rule(:hs, 'Ping', 'ping') AS ping \gset
SELECT seriesweb.add_webhook(:hs, 'Named', 'http://127.0.0.1:9/named', after => :ping,
       headers => '{"Content-Type": "application/json", "X-User": "{user.name}"}') AS named \gset
SELECT seriesweb.set_live(:hs);
INSERT INTO seriesweb.users (user_id, name) VALUES ('h1', E'Eve\r\nX-Admin: yes');
INSERT INTO seriesweb.events (user_id, name) VALUES ('h1', 'ping');
SELECT status, last_error, finished_at IS NOT NULL AS finished
  FROM seriesweb.deliveries WHERE block_id = :named;

-- Definitions changed in this session are seen by its next statement.
SELECT seriesweb.add_rule(:hs, 'Pong', 'pong') AS pong \gset
SELECT seriesweb.add_webhook(:hs, 'Ponged', 'http://127.0.0.1:9/pong', after => :pong) AS ponged \gset
INSERT INTO seriesweb.events (user_id, name) VALUES ('h2', 'pong');
SELECT count(*) AS pongs FROM seriesweb.deliveries WHERE block_id = :ponged;

-- Users are created by their events whenever they are missing, also after
-- this session has seen them (it remembers users it knows exist).
INSERT INTO seriesweb.events (user_id, name) VALUES ('k1', 'page-view');
DELETE FROM seriesweb.users WHERE user_id = 'k1';
INSERT INTO seriesweb.events (user_id, name) VALUES ('k1', 'page-view');
SELECT count(*) AS k1_recreated FROM seriesweb.users WHERE user_id = 'k1';
UPDATE seriesweb.users SET user_id = 'k1-renamed' WHERE user_id = 'k1';
INSERT INTO seriesweb.events (user_id, name) VALUES ('k1', 'page-view');
SELECT count(*) AS k1_recreated_again FROM seriesweb.users WHERE user_id = 'k1';
-- A user created in a rolled-back savepoint does not exist, and is created
-- by the next event.
BEGIN;
SAVEPOINT s;
INSERT INTO seriesweb.events (user_id, name) VALUES ('k2', 'page-view');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS k2_after_rollback FROM seriesweb.users WHERE user_id = 'k2';
INSERT INTO seriesweb.events (user_id, name) VALUES ('k2', 'page-view');
SELECT count(*) AS k2_created FROM seriesweb.users WHERE user_id = 'k2';

-- A rule followed only by webhooks that end the series fires them with the
-- rule in one statement (up to four; five take the step-by-step path): the
-- same deliveries either way, each webhook once per user, in order, also
-- when one statement holds the same user twice.
SELECT seriesweb.create_series('Fan-out') AS fo \gset
SELECT seriesweb.add_rule(:fo, 'Go', 'fan-out') AS fo_rule \gset
SELECT count(seriesweb.add_webhook(:fo, t, u, after => :fo_rule))
  FROM (VALUES ('A', 'http://127.0.0.1:9/a'), ('B', 'http://127.0.0.1:9/b/{user.id}')) AS v (t, u);
SELECT seriesweb.create_series('Fan-out wide') AS fw \gset
SELECT seriesweb.add_rule(:fw, 'Go', 'fan-out') AS fw_rule \gset
SELECT count(seriesweb.add_webhook(:fw, 'W' || i, 'http://127.0.0.1:9/w/' || i, after => :fw_rule))
  FROM generate_series(1, 5) i;
SELECT seriesweb.set_live(:fo), seriesweb.set_live(:fw);
INSERT INTO seriesweb.events (user_id, name) VALUES ('f1', 'fan-out'), ('f1', 'fan-out'), ('f2', 'fan-out');
INSERT INTO seriesweb.events (user_id, name) VALUES ('f2', 'fan-out');
SELECT user_id, url FROM seriesweb.deliveries WHERE user_id IN ('f1', 'f2') ORDER BY delivery_id;
SELECT title, reached, pending FROM seriesweb.block_stats
 WHERE series_id IN (:fo, :fw) ORDER BY block_id;
SELECT seriesweb.pause(:fo), seriesweb.pause(:fw);

-- Tag blocks: reached at once, in the reaching transaction; what follows
-- sees the tag (a rule with no event name checked on arming, a template).
SELECT seriesweb.create_series('Tags') AS tg \gset
SELECT seriesweb.add_rule(:tg, 'Paid', 'paid') AS tg_rule \gset
SELECT seriesweb.add_tag(:tg, 'Mark VIP', :tg_rule, 'vip') AS tg_vip \gset
SELECT seriesweb.add_tag(:tg, 'No longer trial', :tg_vip, 'trial', action => 'remove') AS tg_untrial \gset
SELECT seriesweb.add_rule(:tg, 'Is VIP', NULL, '[{"attribute": "user.tags", "op": "contains", "value": "vip"}]',
                          after => :tg_untrial) AS tg_is_vip \gset
SELECT seriesweb.add_webhook(:tg, 'Tags', 'http://127.0.0.1:9/tags', after => :tg_is_vip,
                             body => '{"tags": "{user.tags}", "first": "{user.tags.0}"}') AS tg_hook \gset
SELECT seriesweb.set_live(:tg);
INSERT INTO seriesweb.users (user_id, tags) VALUES ('tg1', '{trial}');
BEGIN;
INSERT INTO seriesweb.events (user_id, name) VALUES ('tg1', 'paid'), ('tg2', 'paid');
SELECT user_id, tags FROM seriesweb.users WHERE user_id IN ('tg1', 'tg2') ORDER BY user_id;
ROLLBACK;
SELECT user_id, tags FROM seriesweb.users WHERE user_id IN ('tg1', 'tg2') ORDER BY user_id;
INSERT INTO seriesweb.events (user_id, name) VALUES ('tg1', 'paid'), ('tg2', 'paid'), ('tg1', 'paid');
SELECT user_id, tags FROM seriesweb.users WHERE user_id IN ('tg1', 'tg2') ORDER BY user_id;
SELECT user_id, body FROM seriesweb.deliveries WHERE block_id = :tg_hook ORDER BY user_id;
SELECT title, kind, reached FROM seriesweb.block_stats WHERE series_id = :tg ORDER BY block_id;
-- A user whose tags a filter reads before any tag block: user.tags is [].
SELECT seriesweb._filter_matches('[{"attribute": "user.tags", "op": "exists"}]',
                                 '{"user": {"id": "x", "tags": []}}');
SELECT seriesweb.pause(:tg);

-- A rule's filters see its own series and block, on every path: an entry
-- rule (event by event, and in a batch of a multi-row INSERT, the second
-- series) and a rule checked when armed.
SELECT seriesweb.create_series('Named') AS nm \gset
SELECT seriesweb.add_rule(:nm, 'Gate', 'named', '[{"attribute": "series.name", "op": "eq", "value": "Named"},
       {"attribute": "block.title", "op": "eq", "value": "Gate"}]') AS nm_gate \gset
SELECT seriesweb.add_webhook(:nm, 'Named hook', 'http://127.0.0.1:9/named', after => :nm_gate) AS nm_hook \gset
SELECT seriesweb.add_rule(:nm, 'Second gate', NULL, '[{"attribute": "block.title", "op": "eq", "value": "Second gate"}]',
                          after => :nm_hook) AS nm_second \gset
SELECT seriesweb.add_webhook(:nm, 'Second hook', 'http://127.0.0.1:9/named2', after => :nm_second) AS nm_hook2 \gset
SELECT seriesweb.set_live(:nm);
INSERT INTO seriesweb.events (user_id, name) VALUES ('nm1', 'named');
INSERT INTO seriesweb.events (user_id, name) VALUES ('nm2', 'named'), ('nm3', 'named');
SELECT block_id = :nm_hook AS first, block_id = :nm_hook2 AS second, count(*)
  FROM seriesweb.deliveries WHERE user_id LIKE 'nm%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT seriesweb.create_series('Named batch') AS nb \gset
SELECT seriesweb.add_webhook(:nb, 'Batch hook', 'http://127.0.0.1:9/nb', after =>
       seriesweb.add_rule(:nb, 'B', 'named-batch', '[{"attribute": "block.title", "op": "eq", "value": "B"}]')) AS nb_hook \gset
SELECT seriesweb.set_live(:nb);
INSERT INTO seriesweb.events (user_id, name) VALUES ('nb1', 'named-batch'), ('nb2', 'named-batch');
SELECT count(*) AS batched FROM seriesweb.deliveries WHERE block_id = :nb_hook;
SELECT seriesweb.pause(:nb);
SELECT condition, holds FROM seriesweb.explain(:nm_gate, 'nm1');
SELECT seriesweb.pause(:nm);

-- Statistics: per block, and per series.
SELECT series_name, title, kind, reached, sent, failed, pending, last_error
  FROM seriesweb.block_stats ORDER BY block_id;
SELECT name, state, users_entered, sent, failed, pending
  FROM seriesweb.series_stats ORDER BY series_id;

-- Rows a dump brings carry the id of the installation that accepted them:
-- they were matched there, and their users, progress and deliveries come
-- with them.  They are not matched again (no user is created, nothing is
-- enqueued); in one statement with new events, only the new ones match.
INSERT INTO seriesweb.events (user_id, name, installation_id)
VALUES ('r1', 'completed-onboarding', 42);
SELECT count(*) AS users FROM seriesweb.users WHERE user_id = 'r1';
INSERT INTO seriesweb.events (user_id, name, installation_id)
VALUES ('r2', 'completed-onboarding', 42), ('r3', 'completed-onboarding', DEFAULT);
SELECT user_id FROM seriesweb.deliveries WHERE user_id IN ('r1', 'r2', 'r3');
SELECT user_id FROM seriesweb.users WHERE user_id IN ('r1', 'r2', 'r3');

DROP EXTENSION seriesweb;
