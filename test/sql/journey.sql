-- journey: where a user is in each series (seriesweb.journey), and why a
-- rule does or does not hold for them now (seriesweb.explain).
--
-- No worker serves this database (test/regress.conf): timers are never
-- released here and deliveries stay pending.  States that take time (a wait
-- over, a deadline passed) are arranged by doing to seriesweb.timers and
-- seriesweb.progress what the worker does then, as said where it is done.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

INSERT INTO seriesweb.companies (company_id, name, attributes) VALUES
	('c1', 'CSense Ltd', '{"size": 50}');
INSERT INTO seriesweb.users (user_id, email, name, company_id, attributes, tags) VALUES
	('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c1',
	 '{"plan": "free", "score": 90, "nickname": null}', '{beta}'),
	('u2', 'sam@example.com', 'Sam Smith', NULL, '{"plan": "pro"}', '{}'),
	('u3', 'sam.jones@example.com', 'Sam Smith', NULL, '{}', '{}'),
	('u4', 'quiet@example.com', 'Quiet', NULL, '{}', '{}');

------------------------------------------------------------------------------
-- 1. journey(): a row per block the user was armed on or reached
------------------------------------------------------------------------------

-- Signed up → a webhook at once, a three-day wait, a timed rule (upgrade
-- within 4 days) and an untimed one (invite); after the wait, a rule.
SELECT seriesweb.create_series('Activation') AS s \gset
SELECT seriesweb.add_rule(:s, 'Signed up', 'signup') AS signed_up \gset
SELECT seriesweb.add_webhook(:s, 'Welcome', 'http://127.0.0.1:9/welcome', after => :signed_up) AS welcome \gset
SELECT seriesweb.add_wait(:s, 'Three days', after => :signed_up, duration => '3 days') AS wait \gset
SELECT seriesweb.add_rule(:s, 'Created a project', 'project-created', after => :wait) AS project \gset
SELECT seriesweb.add_rule(:s, 'Upgraded', 'upgrade', after => :signed_up,
                          match_within => '4 days') AS upgraded \gset
SELECT seriesweb.add_rule(:s, 'Invited a teammate', 'invite', after => :signed_up) AS invited \gset
SELECT seriesweb.set_live(:s);
-- A second series that u1 also enters, to show the series filter.
SELECT seriesweb.create_series('Newsletter') AS s2 \gset
SELECT seriesweb.add_rule(:s2, 'Signed up too', 'signup') AS signed_up2 \gset
SELECT seriesweb.set_live(:s2);

-- Nobody has been anywhere yet.
SELECT * FROM seriesweb.journey('u1');

-- u1 signs up: the entry rule and the webhook are reached (a pending
-- delivery), the wait holds u1 for 3 days, the timed rule waits 4 days for
-- an upgrade, the untimed rule is armed.  due_after is due_at - since.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'signup');
SELECT series_id = :s AS first_series, title, kind, pass, state, due_at - since AS due_after,
       delivery_status, delivery_id IS NOT NULL AS has_delivery
  FROM seriesweb.journey('u1');
-- since is when the state began: armed_at for an armed rule (timed or
-- not), reached_at for a reached block and for a wait (reached at once).
SELECT j.title, j.state,
       j.since = CASE WHEN b.kind = 'wait' OR j.state = 'reached' THEN p.reached_at
                      ELSE p.armed_at END AS since_right,
       j.due_at = t.due_at AS due_at_right,
       j.delivery_id = d.delivery_id AS delivery_right
  FROM seriesweb.journey('u1', :s) j
  JOIN seriesweb.blocks b USING (block_id)
  JOIN seriesweb.progress p ON p.block_id = j.block_id AND p.user_id = 'u1'
  LEFT JOIN seriesweb.timers t ON t.block_id = j.block_id AND t.user_id = 'u1'
  LEFT JOIN seriesweb.deliveries d ON d.block_id = j.block_id AND d.user_id = 'u1'
 ORDER BY j.block_id;

-- u1 invites a teammate: that rule is reached, and its row moves to when.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'invite');
-- The wait is over: the worker deletes the timer and arms the blocks after
-- the wait.  Done here by hand (no worker serves this database).
DELETE FROM seriesweb.timers WHERE block_id = :wait AND user_id = 'u1';
INSERT INTO seriesweb.progress (block_id, user_id) VALUES (:project, 'u1');
-- The upgrade deadline passes: the worker marks the rule not matched and
-- deletes its timer.  Done here by hand too.
UPDATE seriesweb.progress SET not_matched_at = now() WHERE block_id = :upgraded AND user_id = 'u1';
DELETE FROM seriesweb.timers WHERE block_id = :upgraded AND user_id = 'u1';
-- Every state: reached, armed, not_matched, in the order they began; the
-- second series after the first.
SELECT series_id = :s AS first_series, title, kind, state, due_at, delivery_status
  FROM seriesweb.journey('u1');
-- Only one series; by email or name, as test_webhook finds a user.
SELECT title, state FROM seriesweb.journey('LONNIE@example.com', :s2);
SELECT count(*) FROM seriesweb.journey('Lonnie Lynn', series_id => :s);
SELECT count(*) FROM seriesweb.journey('u1', 9999);

-- u2 upgrades in time: the event takes the timer, the timed rule is reached.
INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'signup'), ('u2', 'upgrade');
SELECT title, state, due_at FROM seriesweb.journey('u2', :s) WHERE block_id = :upgraded;

-- A user who is on no series has no rows; none or several users is an
-- error that lists candidates, as for test_webhook.
SELECT * FROM seriesweb.journey('u4');
SELECT * FROM seriesweb.journey('nobody');
SELECT * FROM seriesweb.journey('lonnie');
SELECT * FROM seriesweb.journey('Sam Smith');
SELECT * FROM seriesweb.journey(NULL);

------------------------------------------------------------------------------
-- 2. explain(): each condition of a rule, evaluated for the user now
------------------------------------------------------------------------------

-- Every kind of condition, nested: a top-level list (all must hold), an
-- "in", an "exists", an "any" holding an "all", a "not_exists" on an
-- attribute that is present as JSON null, a missing attribute, and a
-- condition on the event, which is always missing here (there is none).
SELECT seriesweb.add_rule(:s, 'Engaged', 'project-created', after => :project, filters => '[
	{"attribute": "user.plan", "op": "eq", "value": "pro"},
	{"attribute": "company.size", "op": "in", "value": [10, 50, 100]},
	{"attribute": "user.email", "op": "exists"},
	{"any": [
		{"attribute": "user.tags", "op": "contains", "value": "vip"},
		{"all": [
			{"attribute": "user.score", "op": "gte", "value": 80},
			{"attribute": "user.nickname", "op": "not_exists"}]},
		{"attribute": "user.referrer", "op": "starts_with", "value": "https://"}]},
	{"attribute": "event.source", "op": "ne", "value": "ads"}]') AS engaged \gset
-- The rule names an event: a first row for it, whose holds is NULL (an
-- event decides it, and explain has none).  Then the filters: the first row
-- says whether they hold as a whole, each group before its members.
SELECT * FROM seriesweb.explain(:engaged, 'u1');
-- Once u1 is on the pro plan and a VIP (found by email this time), the
-- filters hold: only the event is missing.
UPDATE seriesweb.users SET attributes = attributes || '{"plan": "pro"}', tags = '{beta,vip}' WHERE user_id = 'u1';
SELECT condition, actual, holds FROM seriesweb.explain(:engaged, 'lonnie@example.com');
-- explain and the matcher agree: the filters' verdict is what the filter
-- code says for the same user, company and no event.
SELECT e.holds = seriesweb._filter_matches(b.filters, jsonb_build_object(
           'user', jsonb_build_object('id', u.user_id, 'email', u.email, 'name', u.name,
                                      'attributes', u.attributes, 'tags', to_jsonb(u.tags)),
           'company', jsonb_build_object('id', c.company_id, 'name', c.name,
                                         'attributes', c.attributes))) AS agrees
  FROM seriesweb.blocks b, seriesweb.users u JOIN seriesweb.companies c USING (company_id),
       LATERAL (SELECT holds FROM seriesweb.explain(b.block_id, u.user_id) LIMIT 1 OFFSET 1) e
 WHERE b.block_id = :engaged AND u.user_id = 'u1';

-- A rule with no event name and a top-level "any": no event row.  An
-- ordered comparison with a timestamp, and a user without a company.
SELECT seriesweb.add_rule(:s, 'Active lately', after => :signed_up, filters => '{"any": [
	{"attribute": "user.last_seen", "op": "gte", "value": "2024-05-01"},
	{"attribute": "company.name", "op": "ends_with", "value": "Ltd"}]}') AS active \gset
UPDATE seriesweb.users SET attributes = attributes || '{"last_seen": "2024-06-01T10:00:00Z"}' WHERE user_id = 'u2';
SELECT * FROM seriesweb.explain(:active, 'u2');
-- An entry rule with no filters holds for everyone.
SELECT * FROM seriesweb.explain(:signed_up, 'u4');

-- Errors: no such block, a block that is not a rule (said with a hint), no
-- such user or several, and NULL arguments.
SELECT * FROM seriesweb.explain(9999, 'u1');
SELECT * FROM seriesweb.explain(:welcome, 'u1');
SELECT * FROM seriesweb.explain(:wait, 'u1');
SELECT * FROM seriesweb.explain(:engaged, 'nobody');
SELECT * FROM seriesweb.explain(:engaged, 'Sam Smith');
SELECT * FROM seriesweb.explain(NULL, 'u1');
SELECT * FROM seriesweb.explain(:engaged, NULL);

------------------------------------------------------------------------------
-- 3. Privileges: for authors; journey needs no access to progress or timers
------------------------------------------------------------------------------

-- An author granted what the README's Security section grants authors.
CREATE ROLE regress_journey_author;
GRANT USAGE ON SCHEMA seriesweb TO regress_journey_author;
GRANT SELECT ON seriesweb.series, seriesweb.blocks, seriesweb.users, seriesweb.companies
	TO regress_journey_author;
GRANT EXECUTE ON FUNCTION seriesweb.journey, seriesweb.explain TO regress_journey_author;
CREATE ROLE regress_journey_viewer;
GRANT USAGE ON SCHEMA seriesweb TO regress_journey_viewer;
GRANT SELECT ON seriesweb.block_stats, seriesweb.series_stats TO regress_journey_viewer;

SET ROLE regress_journey_author;
SELECT * FROM seriesweb.progress;
SELECT title, state FROM seriesweb.journey('u1', :s2);
SELECT condition, holds FROM seriesweb.explain(:active, 'u2') LIMIT 1;
SET ROLE regress_journey_viewer;
SELECT * FROM seriesweb.journey('u1');
SELECT * FROM seriesweb.explain(:active, 'u2');
RESET ROLE;
-- journey runs with the extension's rights (it reads progress and timers),
-- explain and the lookup with the caller's; all with a fixed search_path.
SELECT p.proname, p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'seriesweb'::regnamespace AND p.proname IN ('journey', 'explain', '_test_user')
 ORDER BY p.proname;
DROP OWNED BY regress_journey_author, regress_journey_viewer;
DROP ROLE regress_journey_author, regress_journey_viewer;

DROP EXTENSION seriesweb;
