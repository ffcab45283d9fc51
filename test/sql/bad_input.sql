--
-- bad_input: hostile input across the SQL API.  Every case below is an
-- input a careless or malicious author, application or DBA could send; each
-- comment says what it shows.  The rules: never a crash, never a hang, never
-- a lost delivery; a bad definition fails at once with an error that has an
-- SQLSTATE and names what is wrong; bad data never fails the application's
-- INSERT of events (a delivery that cannot be rendered is stored failed,
-- with the reason).  After each hostile event, pg_temp.queue() shows that
-- the queue and the statistics still agree.
--
-- Nothing here sends anything: this instance's worker serves another
-- database, and every URL is http://127.0.0.1:9/.
--
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never
\set VERBOSITY default

-- outcome(sql): run one statement; 'ok', or its error as "SQLSTATE: message".
-- For inputs so large that their error, which quotes them, cannot be shown
-- whole: a message longer than 120 characters is cut, with its length.
CREATE FUNCTION pg_temp.outcome(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	state text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
	RETURN state || ': ' || CASE WHEN length(msg) <= 120 THEN msg
		ELSE left(msg, 100) || '... (' || length(msg) || ' characters)' END;
END
$$;

-- queue(): the queue against the statistics.  deliveries, pending and failed
-- count delivery rows; mismatched lists the blocks whose block_stats
-- disagree with the rows behind them (progress for reached, deliveries for
-- a webhook's reached, pending and failed), and any block that is gone but
-- still has unsent deliveries; series_agree compares series_stats with
-- block_stats.  {} and true: consistent.
CREATE FUNCTION pg_temp.queue(OUT deliveries bigint, OUT pending bigint, OUT failed bigint,
                              OUT mismatched int[], OUT series_agree bool)
LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM seriesweb.deliveries),
	       (SELECT count(*) FROM seriesweb.deliveries WHERE status IN ('pending', 'sending')),
	       (SELECT count(*) FROM seriesweb.deliveries WHERE status = 'failed'),
	       ARRAY(
	         SELECT s.block_id FROM seriesweb.block_stats s
	           LEFT JOIN (SELECT block_id, count(*) AS reached FROM seriesweb.progress
	                       WHERE reached_at IS NOT NULL GROUP BY block_id) p USING (block_id)
	           LEFT JOIN (SELECT block_id, count(*) AS reached,
	                             count(*) FILTER (WHERE status IN ('pending', 'sending')) AS pending,
	                             count(*) FILTER (WHERE status = 'failed') AS failed
	                        FROM seriesweb.deliveries GROUP BY block_id) d USING (block_id)
	          WHERE s.reached <> coalesce(p.reached, 0)
	             OR (s.kind = 'webhook' AND (s.reached <> coalesce(d.reached, 0)
	                                          OR s.pending <> coalesce(d.pending, 0)
	                                          OR s.failed <> coalesce(d.failed, 0)))
	         UNION
	         SELECT d.block_id FROM seriesweb.deliveries d
	          WHERE d.status IN ('pending', 'sending')
	            AND NOT EXISTS (SELECT 1 FROM seriesweb.blocks b WHERE b.block_id = d.block_id)
	         ORDER BY 1),
	       (SELECT coalesce(sum(pending), 0) FROM seriesweb.series_stats)
	         = (SELECT coalesce(sum(pending), 0) FROM seriesweb.block_stats)
$$;

-- The people and the series most cases below use: a rule on "ping", a
-- webhook after it that puts data in the URL, a header and the body.
INSERT INTO seriesweb.users (user_id, name) VALUES ('u1', 'Lonnie');
SELECT seriesweb.create_series('Main') AS s \gset
SELECT seriesweb.add_rule(:s, 'Ping', 'ping') AS ping \gset
SELECT seriesweb.add_webhook(:s, 'Hook', 'http://127.0.0.1:9/{user.id}', after => :ping,
       headers => '{"Content-Type": "application/json", "X-User": "{user.id} {user.name}"}',
       body => '{"user": "{user.id}", "event": "{event.name}", "n": "{event.n}"}') AS hook \gset
SELECT seriesweb.set_live(:s);

------------------------------------------------------------------------------
-- 1. NULL in every argument of every public function
------------------------------------------------------------------------------

-- create_series: a NULL name is an empty one.
SELECT seriesweb.create_series(NULL);
-- add_rule: a NULL series or title is refused ...
SELECT seriesweb.add_rule(NULL, 'r', 'ping');
SELECT seriesweb.add_rule(:s, NULL, 'ping');
-- ... while a NULL event name means any event, and NULL filters none (and a
-- NULL after makes an entry rule).
SELECT seriesweb.add_rule(:s, 'Anything', NULL, NULL, NULL) AS anything \gset
SELECT kind, event_name, filters FROM seriesweb.blocks WHERE block_id = :anything;
DELETE FROM seriesweb.blocks WHERE block_id = :anything;
-- add_webhook: a NULL series, title, url or after is refused ...
SELECT seriesweb.add_webhook(NULL, 'w', 'http://127.0.0.1:9/', :ping);
SELECT seriesweb.add_webhook(:s, NULL, 'http://127.0.0.1:9/', :ping);
SELECT seriesweb.add_webhook(:s, 'w', NULL, :ping);
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', NULL);
-- ... while NULL method, headers, body and secret take their defaults: POST,
-- a JSON Content-Type, the default payload, no signature.
SELECT seriesweb.add_webhook(:s, 'Defaults', 'http://127.0.0.1:9/', :ping, NULL, NULL, NULL, NULL) AS defaults \gset
SELECT method, headers, body, secret FROM seriesweb.blocks WHERE block_id = :defaults;
DELETE FROM seriesweb.blocks WHERE block_id = :defaults;
-- connect, set_live, pause.
SELECT seriesweb.connect(NULL, :hook);
SELECT seriesweb.connect(:ping, NULL);
SELECT seriesweb.set_live(NULL);
SELECT seriesweb.pause(NULL);
-- preview and test_webhook refuse before looking anything up (so
-- test_webhook sends nothing).
SELECT * FROM seriesweb.preview(NULL, 'u1');
SELECT * FROM seriesweb.preview(:hook, NULL);
SELECT * FROM seriesweb.test_webhook(NULL, 'u1');
SELECT * FROM seriesweb.test_webhook(:hook, NULL);
-- journey and explain likewise.
SELECT * FROM seriesweb.journey(NULL);
SELECT * FROM seriesweb.explain(NULL, 'u1');
SELECT * FROM seriesweb.explain(:ping, NULL);
-- retry_delivery and retry_failed.
SELECT seriesweb.retry_delivery(NULL);
SELECT seriesweb.retry_failed(NULL);

-- NULL in table columns.  Direct writes get the functions' errors ...
INSERT INTO seriesweb.series (name) VALUES (NULL);
UPDATE seriesweb.series SET state = NULL WHERE series_id = :s;
INSERT INTO seriesweb.blocks (series_id, kind, title) VALUES (:s, NULL, 'r');
INSERT INTO seriesweb.blocks (series_id, kind, title) VALUES (:s, 'rule', NULL);
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers)
VALUES (:s, 'webhook', 'w', NULL, 'POST', '{"Content-Type": "application/json"}');
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers)
VALUES (:s, 'webhook', 'w', 'http://127.0.0.1:9/', NULL, '{"Content-Type": "application/json"}');
INSERT INTO seriesweb.connections VALUES (NULL, :hook);
-- ... and people and events NOT NULL constraints (terse: the failing row
-- would show the time).
\set VERBOSITY terse
INSERT INTO seriesweb.blocks (series_id, kind, title) VALUES (NULL, 'rule', 'r');
INSERT INTO seriesweb.events (user_id, name) VALUES (NULL, 'ping');
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', NULL);
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', NULL);
INSERT INTO seriesweb.events (user_id, name, occurred_at) VALUES ('u1', 'ping', NULL);
INSERT INTO seriesweb.events (event_id, user_id, name) VALUES (NULL, 'u1', 'ping');
INSERT INTO seriesweb.users (user_id) VALUES (NULL);
INSERT INTO seriesweb.users (user_id, attributes) VALUES ('u9', NULL);
INSERT INTO seriesweb.companies (company_id) VALUES (NULL);
-- Event properties and attributes that are not JSON objects.
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', '[1, 2]');
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', '"text"');
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', 'null');
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', '42');
INSERT INTO seriesweb.users (user_id, attributes) VALUES ('u9', '[]');
INSERT INTO seriesweb.companies (company_id, attributes) VALUES ('c9', 'true');
\set VERBOSITY default
-- None of these enqueued anything.
SELECT * FROM pg_temp.queue();

------------------------------------------------------------------------------
-- 2. Huge strings
------------------------------------------------------------------------------

-- Series names are unique, so indexed: at most 1 kB, said plainly (not as a
-- btree error), whether the text compresses or not.
SELECT pg_temp.outcome($$SELECT seriesweb.create_series(repeat('n', 1000000))$$);
SELECT pg_temp.outcome($$SELECT seriesweb.create_series(
       (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 3200) i))$$);
-- Ids, emails and names of people are indexed too: at most 1 kB each.  An
-- event of a user id of 100 kB fails on the event's own row.
\set VERBOSITY terse
INSERT INTO seriesweb.events (user_id, name) VALUES (repeat('u', 100000), 'ping');
INSERT INTO seriesweb.events (user_id, name)
VALUES ((SELECT string_agg(md5(i::text), '') FROM generate_series(1, 100) i), 'ping');
INSERT INTO seriesweb.users (user_id) VALUES (repeat('u', 1025));
INSERT INTO seriesweb.users (user_id, email) VALUES ('u9', repeat('e', 2000) || '@example.com');
INSERT INTO seriesweb.users (user_id, name) VALUES ('u9', repeat('Lonnie ', 1000));
INSERT INTO seriesweb.companies (company_id) VALUES (repeat('c', 5000));
\set VERBOSITY default
-- 1 kB is fine, and flows into the URL, a header and the body.
INSERT INTO seriesweb.events (user_id, name) VALUES (repeat('u', 1024), 'ping');
SELECT status, length(url) AS url_length, length(headers[1]) AS header_length, length(body) AS body_length
  FROM seriesweb.deliveries WHERE user_id = repeat('u', 1024);
SELECT * FROM pg_temp.queue();

-- A title of 1 MB is stored (titles are not indexed) ...
SELECT seriesweb.add_rule(:s, repeat('T', 1000000), 'never') AS big_title \gset
SELECT length(title) FROM seriesweb.blocks WHERE block_id = :big_title;
-- ... and an error about it quotes it whole, as PostgreSQL quotes bad input.
SELECT pg_temp.outcome($$SELECT seriesweb.add_webhook($$ || :s || $$, repeat('T', 1000000), 'http://127.0.0.1:9/', NULL)$$);
DELETE FROM seriesweb.blocks WHERE block_id = :big_title;

-- An event name of 1 MB: a rule may wait for it, and it is matched.
SELECT seriesweb.add_rule(:s, 'Long name', repeat('e', 1000000)) AS long_rule \gset
SELECT seriesweb.add_webhook(:s, 'Long name hook', 'http://127.0.0.1:9/long', after => :long_rule,
       body => '{"length": "{event.name}"}') AS long_hook \gset
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', repeat('e', 1000000));
-- The name is in the body: larger than seriesweb.max_body_size (256kB), so
-- the delivery failed with the reason; the INSERT succeeded.
SELECT status, last_error FROM seriesweb.deliveries WHERE block_id = :long_hook;
SELECT * FROM pg_temp.queue();
-- explain shows the rule's 1 MB event name as its first condition.
SELECT length(condition), holds FROM seriesweb.explain(:long_rule, 'u1') LIMIT 1;
-- A test user of 1 MB is looked for, not found, and quoted whole.
SELECT pg_temp.outcome($$SELECT count(*) FROM seriesweb.journey(repeat('u', 1000000))$$);
SELECT pg_temp.outcome($$SELECT count(*) FROM seriesweb.explain($$ || :ping || $$, repeat('u', 1000000))$$);

-- A URL of 1 MB is refused when the block is defined (8192 bytes at most).
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/' || repeat('a', 1000000), :ping);
-- A header value of 1 MB too (8192 bytes at most).
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping,
       headers => jsonb_build_object('Content-Type', 'application/json', 'X-Big', repeat('v', 1000000)));
-- A header name of 100 kB too, although it is a valid token.
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/',
       jsonb_build_object('Content-Type', 'application/json', repeat('X', 100000), 'v'), NULL);
-- A method of 400 kB is just an unknown method.
SELECT pg_temp.outcome($$SELECT seriesweb._check_webhook(repeat('POST', 100000), 'http://127.0.0.1:9/',
       '{"Content-Type": "application/json"}', NULL)$$);
-- A literal body of 2 MB is a valid definition, but every delivery of it is
-- larger than seriesweb.max_body_size and fails, with the reason.
SELECT seriesweb.add_rule(:s, 'Big body rule', 'big') AS big_rule \gset
SELECT seriesweb.add_webhook(:s, 'Big body', 'http://127.0.0.1:9/big', after => :big_rule,
       body => json_build_object('blob', repeat('b', 2000000))) AS big_body \gset
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'big');
SELECT status, last_error FROM seriesweb.deliveries WHERE block_id = :big_body;
SELECT * FROM pg_temp.queue();
-- Such a delivery was never built whole (its body is empty), so it is not
-- retried: a retry would have sent an empty body to the real URL.
SELECT delivery_id AS unrendered FROM seriesweb.deliveries WHERE block_id = :big_body \gset
SELECT seriesweb.retry_delivery(:unrendered);
SELECT seriesweb.retry_failed(:big_body) AS retried;
SELECT * FROM pg_temp.queue();
-- User attributes of 10 MB: the default payload carries them, too large;
-- a body that does not use them is sent.
SELECT seriesweb.add_webhook(:s, 'Default payload', 'http://127.0.0.1:9/default', after => :big_rule) AS default_hook \gset
INSERT INTO seriesweb.users (user_id, attributes)
VALUES ('heavy', jsonb_build_object('blob', repeat('h', 10000000)));
INSERT INTO seriesweb.events (user_id, name) VALUES ('heavy', 'big'), ('heavy', 'ping');
SELECT b.title, d.status, d.last_error
  FROM seriesweb.deliveries d JOIN seriesweb.blocks b USING (block_id)
 WHERE d.user_id = 'heavy' ORDER BY d.delivery_id;
SELECT * FROM pg_temp.queue();
-- preview and test_webhook name a user that does not exist; with 100 kB of
-- name, the message quotes it.  Nothing is sent.
SELECT pg_temp.outcome($$SELECT * FROM seriesweb.preview($$ || :hook || $$, repeat('?', 100000))$$);
SELECT pg_temp.outcome($$SELECT * FROM seriesweb.test_webhook($$ || :hook || $$, repeat('?', 100000))$$);

------------------------------------------------------------------------------
-- 3. Invalid UTF-8 and NUL: PostgreSQL refuses them before seriesweb sees
-- them, however they are smuggled in
------------------------------------------------------------------------------

-- Invalid sequences through convert_from: a truncated sequence, a UTF-16
-- surrogate, an overlong "/", a code point past U+10FFFF, a NUL byte.
SELECT seriesweb.create_series(convert_from('\x4fc328', 'UTF8'));
SELECT seriesweb.add_rule(:s, convert_from('\xeda080', 'UTF8'), 'ping');
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', convert_from('\xc0af', 'UTF8'));
INSERT INTO seriesweb.users (user_id, name) VALUES ('u9', convert_from('\xf4908080', 'UTF8'));
SELECT * FROM seriesweb.preview(:hook, convert_from('\x7531007531', 'UTF8'));
-- NUL in text literals and chr().
SELECT seriesweb.create_series(E'a\u0000b');
SELECT seriesweb.add_rule(:s, chr(0), 'ping');
-- \u0000 in jsonb (properties, attributes, headers, filters) ...
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'ping', '{"n": "\u0000"}');
SELECT seriesweb.add_rule(:s, 'r', 'ping', '[{"attribute": "user.x", "op": "eq", "value": "\u0000"}]');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping,
       headers => '{"Content-Type": "application/json", "X-Nul": "a\u0000b"}');
-- ... while json (the body's type) stores escapes as written: seriesweb's
-- own parser refuses \u0000 and a lone surrogate.
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, body => '{"a": "x\u0000y"}');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, body => '{"\u0000": 1}');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, body => '{"a": "\ud800"}');
-- A valid surrogate pair and other Unicode are fine, and render as UTF-8.
SELECT body FROM seriesweb._render('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json"}',
       '{"a": "\ud83d\ude00 {user.name}"}', '{"user": {"id": "u", "name": "Zoë ☕"}}');
SELECT * FROM pg_temp.queue();

------------------------------------------------------------------------------
-- 4. Filters: deep, wide, odd
------------------------------------------------------------------------------

-- 33 levels of groups: refused, with where.
SELECT seriesweb.add_rule(:s, 'Deep', 'ping', (repeat('{"any": [', 33) || repeat(']}', 33))::jsonb);
-- 10,000 levels of arrays: jsonb reads them; the compiler stops at 33.
SELECT pg_temp.outcome($$SELECT seriesweb._check_filters((repeat('[', 10000) || repeat(']', 10000))::jsonb)$$);
-- 10,000 levels of groups (20,000 of JSON): jsonb refuses before us.
SELECT pg_temp.outcome($$SELECT seriesweb._check_filters((repeat('{"any": [', 10000) || repeat(']}', 10000))::jsonb)$$);
-- ... and so does the rules' table, through add_rule.
SELECT pg_temp.outcome($$SELECT seriesweb.add_rule($$ || :s || $$, 'Deep', 'ping', (repeat('{"any": [', 10000) || repeat(']}', 10000))::jsonb)$$);
-- 10,000 conditions side by side are fine.
SELECT seriesweb._filter_matches(
       (SELECT jsonb_agg(jsonb_build_object('attribute', 'user.n', 'op', 'ne', 'value', i))
          FROM generate_series(1, 10000) i),
       '{"user": {"id": "u", "attributes": {"n": 0}}}') AS ten_thousand_conditions;
-- Duplicate keys: jsonb keeps the last, so this condition is on user.plan.
SELECT seriesweb._filter_matches(
       '[{"attribute": "user.nope", "attribute": "user.plan", "op": "eq", "value": "pro"}]',
       '{"user": {"id": "u", "attributes": {"plan": "pro"}}}') AS last_key_wins;
-- Conditions that are not objects.
SELECT seriesweb._check_filters('[null]');
SELECT seriesweb._check_filters('[[1]]');
-- Attribute names with a control character, with unicode (fine), and of
-- 100 kB.
SELECT seriesweb._check_filters(jsonb_build_array(jsonb_build_object('attribute', E'user.a\u0007b', 'op', 'exists')));
SELECT seriesweb._filter_matches('[{"attribute": "user.café", "op": "eq", "value": "crème"}]',
       '{"user": {"id": "u", "attributes": {"café": "crème"}}}') AS unicode_attribute;
SELECT pg_temp.outcome($$SELECT seriesweb._check_filters(jsonb_build_array(jsonb_build_object(
       'attribute', 'usr.' || repeat('a', 100000), 'op', 'exists')))$$);
-- An attribute path of 10,000 keys is just missing.
SELECT seriesweb._filter_matches(jsonb_build_array(jsonb_build_object(
       'attribute', 'user.' || repeat('a.', 10000) || 'b', 'op', 'exists')), '{}') AS deep_path_exists;
-- "contains" with a 100 kB value against a 1 MB attribute that almost
-- matches everywhere answers at once (a naive search takes seconds, with
-- no way to cancel it, inside the application's INSERT).
SET statement_timeout = '3s';
SELECT seriesweb._filter_matches(
       jsonb_build_array(jsonb_build_object('attribute', 'user.s', 'op', 'contains', 'value', repeat('a', 100000) || 'b')),
       jsonb_build_object('user', jsonb_build_object('id', 'u', 'attributes', jsonb_build_object('s', repeat('a', 1000000)))))
       AS contains_long_value;
RESET statement_timeout;

------------------------------------------------------------------------------
-- 5. Templates: 10,000 placeholders, odd placeholders, headers
------------------------------------------------------------------------------

\set ct '{"Content-Type": "application/json"}'
-- 10,000 placeholders in a body: compiled and rendered.
SELECT length(body) AS body_length, error
  FROM seriesweb._render('POST', 'http://127.0.0.1:9/', :'ct',
       json_build_object('a', repeat('{user.x}', 10000)), '{"user": {"id": "u", "attributes": {"x": "yy"}}}');
-- 10,000 placeholders in a header value: a header value renders to at most
-- 8192 bytes, so with 10 bytes each the delivery fails; with empty values
-- it is sent.  (Without the cap, 10,000 values of 100 kB made a gigabyte
-- inside the application's INSERT, and an out-of-memory error.)
SELECT error FROM seriesweb._render('POST', 'http://127.0.0.1:9/',
       jsonb_build_object('Content-Type', 'application/json', 'X-Many', repeat('{user.x}', 10000)), '{}',
       '{"user": {"id": "u", "attributes": {"x": "0123456789"}}}');
SELECT error FROM seriesweb._render('POST', 'http://127.0.0.1:9/',
       jsonb_build_object('Content-Type', 'application/json', 'X-Many', repeat('{user.x}', 10000)), '{}',
       jsonb_build_object('user', jsonb_build_object('id', 'u', 'attributes', jsonb_build_object('x', repeat('y', 100000)))));
SELECT headers FROM seriesweb._render('POST', 'http://127.0.0.1:9/',
       jsonb_build_object('Content-Type', 'application/json', 'X-Many', repeat('{user.x}', 10000)), '{}',
       '{"user": {"id": "u", "attributes": {"x": ""}}}');
-- 10,000 placeholders in the URL: the rendered URL is too long.
SELECT error FROM seriesweb._render('POST', 'http://127.0.0.1:9/' || repeat('{user.x}', 10000), :'ct', NULL,
       '{"user": {"id": "u", "attributes": {"x": "yy"}}}');
-- 10,000 headers: at most 100 (each is checked against the others).
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/',
       (SELECT jsonb_object_agg('X-' || i, 'v') FROM generate_series(1, 10000) i) || :'ct', NULL);

-- Placeholders with odd contents.  Unicode keys are fine.
SELECT body FROM seriesweb._render('POST', 'http://127.0.0.1:9/', :'ct',
       '{"a": "{user.café} {user.☕}"}', '{"user": {"id": "u", "attributes": {"café": "crème", "☕": 1}}}');
-- Blanks around the name are fine, inside it they are not; empty and blank
-- placeholders name nothing.
SELECT body FROM seriesweb._render('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{ user.x }"}',
       '{"user": {"id": "u", "attributes": {"x": 1}}}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{user.first name}"}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{}"}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{ \t }"}');
-- Nested and unbalanced braces.
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{user.{name}}"}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{{user.name}"}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{user.name"}');
-- Doubled braces are literal; a quoted fallback may hold braces.
SELECT body FROM seriesweb._render('POST', 'http://127.0.0.1:9/', :'ct',
       '{"a": "{{{user.x}}} {user.y | fallback: \"{}\"}"}', '{"user": {"id": "u", "attributes": {"x": 1}}}');
-- Two fallbacks; a fallback that is not a JSON scalar.
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{user.x | fallback: 1 | fallback: 2}"}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', :'ct', '{"a": "{user.x | fallback: NaN}"}');
-- A placeholder 100 kB long, never closed.
SELECT pg_temp.outcome($$SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json"}',
       json_build_object('a', '{user.' || repeat('a', 100000)))$$);

-- Header names: RFC 9110 tokens, so no Unicode and no control characters.
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "X-Café": "1"}', NULL);
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "☕": "1"}', NULL);
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "X-Tab\t": "1"}', NULL);
-- Header values: CR and LF are refused when written, in the text or in a
-- fallback; Unicode is fine.
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "X-A": "a\r\nX-B: b"}', NULL);
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "X-A": "{user.x | fallback: \"\\r\"}"}', NULL);
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "X-A": "café ☕"}', NULL);
-- Header values from data with CR, LF (or both): the delivery fails with the
-- reason, nothing is sent, the application's INSERT goes on; the body gets
-- the same value escaped.  (NUL cannot come from data: see part 3.)
INSERT INTO seriesweb.users (user_id, name) VALUES
	('cr', E'Eve\rX-Admin: yes'), ('lf', E'Eve\nX-Admin: yes'), ('crlf', E'Eve\r\nX-Admin: yes');
INSERT INTO seriesweb.events (user_id, name) VALUES ('cr', 'ping'), ('lf', 'ping'), ('crlf', 'ping');
SELECT user_id, status, last_error FROM seriesweb.deliveries
 WHERE user_id IN ('cr', 'lf', 'crlf') ORDER BY delivery_id;
SELECT * FROM pg_temp.queue();
-- preview says the same, and test_webhook refuses before sending.
SELECT * FROM seriesweb.preview(:hook, 'crlf');
SELECT * FROM seriesweb.test_webhook(:hook, 'crlf');

-- Duplicate keys: a json body keeps them, in order; jsonb headers keep the
-- last of two equal names, and refuse names that differ only in case.
SELECT body FROM seriesweb._render('POST', 'http://127.0.0.1:9/', :'ct', '{"a": 1, "a": "{user.x}", "a": 3}',
       '{"user": {"id": "u", "attributes": {"x": 2}}}');
SELECT headers FROM seriesweb._render('POST', 'http://127.0.0.1:9/',
       '{"Content-Type": "application/json", "X-A": "first", "X-A": "last"}', NULL, '{}');
SELECT seriesweb._check_webhook('POST', 'http://127.0.0.1:9/', '{"Content-Type": "application/json", "x-a": "1", "X-A": "2"}', NULL);

-- Methods: any case of POST and PUT, stored upper-case; nothing else, not
-- even with blanks or in full-width letters.
SELECT seriesweb.add_webhook(:s, 'Mixed case', 'http://127.0.0.1:9/', :ping, method => 'pOsT') AS mixed \gset
UPDATE seriesweb.blocks SET method = 'put' WHERE block_id = :mixed;
SELECT method FROM seriesweb.blocks WHERE block_id = :mixed;
DELETE FROM seriesweb.blocks WHERE block_id = :mixed;
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, method => 'POST ');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, method => E'PUT\n');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, method => 'ＰＯＳＴ');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, method => '');
SELECT seriesweb.add_webhook(:s, 'w', 'http://127.0.0.1:9/', :ping, method => 'GET');

------------------------------------------------------------------------------
-- 6. Settings: out of range, negative, huge, garbage.  ALTER SYSTEM checks
-- the value before writing it; no session can change any of them.
------------------------------------------------------------------------------

-- seriesweb.database: empty (every database) or a list of names.
ALTER SYSTEM SET seriesweb.database = 'app,,other';
ALTER SYSTEM SET seriesweb.database = '"app';
ALTER SYSTEM SET seriesweb.database = 'app, a_database_name_of_sixty_four_bytes_which_is_one_byte_too_long__';
ALTER SYSTEM SET seriesweb.max_concurrency = -1;
ALTER SYSTEM SET seriesweb.max_concurrency = 0;
ALTER SYSTEM SET seriesweb.max_concurrency = 4097;
ALTER SYSTEM SET seriesweb.max_concurrency = 99999999999999;
ALTER SYSTEM SET seriesweb.max_concurrency = 'many';
ALTER SYSTEM SET seriesweb.timeout = -1;
ALTER SYSTEM SET seriesweb.timeout = '99ms';
ALTER SYSTEM SET seriesweb.timeout = '11min';
ALTER SYSTEM SET seriesweb.timeout = '1e100';
ALTER SYSTEM SET seriesweb.timeout = '5 parsecs';
ALTER SYSTEM SET seriesweb.response_body_limit = -1;
ALTER SYSTEM SET seriesweb.response_body_limit = '2MB';
ALTER SYSTEM SET seriesweb.max_body_size = '-1kB';
ALTER SYSTEM SET seriesweb.max_body_size = '1023B';
ALTER SYSTEM SET seriesweb.max_body_size = '1TB';
ALTER SYSTEM SET seriesweb.retention = -1;
ALTER SYSTEM SET seriesweb.retention = '59s';
ALTER SYSTEM SET seriesweb.retention = '1000000d';
ALTER SYSTEM SET seriesweb.retention = 'forever';
-- retry_delays: a list of 1 to 8 durations of 0 to 1 day.
ALTER SYSTEM SET seriesweb.retry_delays = '';
ALTER SYSTEM SET seriesweb.retry_delays = '-5s';
ALTER SYSTEM SET seriesweb.retry_delays = '5s,,5min';
ALTER SYSTEM SET seriesweb.retry_delays = '5s, 25h';
ALTER SYSTEM SET seriesweb.retry_delays = '1e10ms';
ALTER SYSTEM SET seriesweb.retry_delays = 'soon, later';
ALTER SYSTEM SET seriesweb.retry_delays = '1s, 2s, 3s, 4s, 5s, 6s, 7s, 8s, 9s';
-- allowed_networks: a list of CIDRs.
ALTER SYSTEM SET seriesweb.allowed_networks = 'everything';
ALTER SYSTEM SET seriesweb.allowed_networks = 'localhost';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/33';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/-1';
ALTER SYSTEM SET seriesweb.allowed_networks = '::1/129';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.1/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '256.0.0.0/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8,';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8 192.168.0.0/16';
ALTER SYSTEM SET seriesweb.allowed_networks = E'10.0.0.0/8\n127.0.0.0/8';
-- A misspelt name in the reserved prefix; a session's SET.
ALTER SYSTEM SET seriesweb.allowed_network = '10.0.0.0/8';
SET seriesweb.max_body_size = '16MB';
-- An in-range fraction is rounded, as PostgreSQL does for integers; it is
-- written to postgresql.auto.conf, so reset it (and, to be sure, every
-- other seriesweb setting).
ALTER SYSTEM SET seriesweb.max_concurrency = '1.5';
ALTER SYSTEM RESET seriesweb.database;
ALTER SYSTEM RESET seriesweb.max_concurrency;
ALTER SYSTEM RESET seriesweb.timeout;
ALTER SYSTEM RESET seriesweb.retry_delays;
ALTER SYSTEM RESET seriesweb.allowed_networks;
ALTER SYSTEM RESET seriesweb.response_body_limit;
ALTER SYSTEM RESET seriesweb.max_body_size;
ALTER SYSTEM RESET seriesweb.retention;
SELECT count(*) AS left_in_auto_conf FROM pg_file_settings
 WHERE name LIKE 'seriesweb.%' AND sourcefile LIKE '%postgresql.auto.conf';

------------------------------------------------------------------------------
-- 7. Connections: cycles, long chains
------------------------------------------------------------------------------

SELECT seriesweb.create_series('Chain') AS chain \gset
-- A chain of 500 rules with no event name, written straight into the
-- tables in two statements, then a webhook at its end.
BEGIN;
INSERT INTO seriesweb.blocks (series_id, kind, title, event_name)
SELECT :chain, 'rule', 'Step ' || i, CASE WHEN i = 1 THEN 'go' END FROM generate_series(1, 500) i;
INSERT INTO seriesweb.connections
SELECT block_id, next FROM (SELECT block_id, lead(block_id) OVER (ORDER BY block_id) AS next
                              FROM seriesweb.blocks WHERE series_id = :chain) c
 WHERE next IS NOT NULL;
COMMIT;
SELECT min(block_id) AS chain_first, max(block_id) AS chain_last FROM seriesweb.blocks WHERE series_id = :chain \gset
SELECT seriesweb.add_webhook(:chain, 'End of the chain', 'http://127.0.0.1:9/end', after => :chain_last) AS chain_end \gset
-- Closing the cycle, from the end or the middle, by function or by direct
-- write, is refused, naming the path it would close.
SELECT seriesweb.connect(:chain_last, :chain_first);
SELECT seriesweb.connect(:chain_end, :chain_first + 250);
INSERT INTO seriesweb.connections VALUES (:chain_first + 499, :chain_first + 1);
UPDATE seriesweb.connections SET to_block = :chain_first WHERE from_block = :chain_last;
-- A cycle closed within one multi-row statement, and a block on itself.
INSERT INTO seriesweb.connections VALUES (:chain_first + 1, :chain_first + 3), (:chain_first + 3, :chain_first + 1);
SELECT seriesweb.connect(:chain_first, :chain_first);
-- Across series, twice the same, to a block that does not exist.
SELECT seriesweb.connect(:chain_first, :hook);
SELECT seriesweb.connect(:chain_first, :chain_first + 1);
SELECT seriesweb.connect(:chain_first, 2147483647);
-- An event walks the whole chain (every rule needs no event) and fires the
-- webhook at its end.
SELECT seriesweb.set_live(:chain);
INSERT INTO seriesweb.events (user_id, name) VALUES ('walker', 'go');
SELECT count(*) AS steps_reached FROM seriesweb.progress WHERE user_id = 'walker' AND reached_at IS NOT NULL;
SELECT status FROM seriesweb.deliveries WHERE block_id = :chain_end;
SELECT * FROM pg_temp.queue();

-- 3,000 blocks in a line with a C stack of 100kB: the matcher walks a
-- series without recursion, so even this works (it used to stop with
-- "stack depth limit exceeded", failing the application's INSERT).
SELECT seriesweb.create_series('Long chain') AS long \gset
BEGIN;
INSERT INTO seriesweb.blocks (series_id, kind, title, event_name)
SELECT :long, 'rule', 'Step ' || i, CASE WHEN i = 1 THEN 'go long' END FROM generate_series(1, 3000) i;
INSERT INTO seriesweb.connections
SELECT block_id, next FROM (SELECT block_id, lead(block_id) OVER (ORDER BY block_id) AS next
                              FROM seriesweb.blocks WHERE series_id = :long) c
 WHERE next IS NOT NULL;
COMMIT;
SELECT seriesweb.set_live(:long);
SET max_stack_depth = '100kB';
INSERT INTO seriesweb.events (user_id, name) VALUES ('walker', 'go long');
RESET max_stack_depth;
SELECT count(*) AS steps_reached FROM seriesweb.progress p JOIN seriesweb.blocks b USING (block_id)
 WHERE b.series_id = :long AND p.user_id = 'walker' AND p.reached_at IS NOT NULL;
SELECT * FROM pg_temp.queue();
-- 100 webhooks in a line fire one after the other, in order.
SELECT seriesweb.create_series('Fan') AS fan \gset
SELECT seriesweb.add_rule(:fan, 'Fan out', 'fan') AS fan_rule \gset
DO $$
DECLARE
	prev int := (SELECT max(block_id) FROM seriesweb.blocks);
	fan int := (SELECT series_id FROM seriesweb.series WHERE name = 'Fan');
BEGIN
	FOR i IN 1..100 LOOP
		prev := seriesweb.add_webhook(fan, 'Hop ' || i, 'http://127.0.0.1:9/hop/' || i, after => prev);
	END LOOP;
END
$$;
SELECT seriesweb.set_live(:fan);
INSERT INTO seriesweb.events (user_id, name) VALUES ('walker', 'fan');
SELECT count(*) AS hops, bool_and(url = 'http://127.0.0.1:9/hop/' || rank) AS in_order
  FROM (SELECT d.url, rank() OVER (ORDER BY d.delivery_id) FROM seriesweb.deliveries d
          JOIN seriesweb.blocks b USING (block_id) WHERE b.series_id = :fan) d;
SELECT * FROM pg_temp.queue();

------------------------------------------------------------------------------
-- 8. Events: odd values, huge statements
------------------------------------------------------------------------------

-- Properties 5,000 levels deep: stored, and rendered whole in the default
-- payload (its length without the time, whose trailing zeros are dropped).
SELECT seriesweb.add_webhook(:s, 'Payload', 'http://127.0.0.1:9/payload', after => :ping) AS payload \gset
INSERT INTO seriesweb.events (user_id, name, properties)
VALUES ('deep', 'ping', (repeat('{"n":', 5000) || '1' || repeat('}', 5000))::jsonb);
SELECT b.title, d.status, length(regexp_replace(d.body, '"occurred_at":"[^"]*"', '')) AS body_length FROM seriesweb.deliveries d JOIN seriesweb.blocks b USING (block_id)
 WHERE d.user_id = 'deep' ORDER BY d.delivery_id;
SELECT * FROM pg_temp.queue();
-- A time of "infinity", an empty user id, a user id with blanks and
-- Unicode: stored and rendered (the empty id makes an empty URL path).
INSERT INTO seriesweb.events (user_id, name, occurred_at, properties) VALUES
	('', 'ping', 'infinity', '{"n": 1}'),
	('Zoë ☕ /?#', 'ping', '-infinity', '{"n": 2}');
SELECT user_id, status, url, body FROM seriesweb.deliveries
 WHERE user_id IN ('', 'Zoë ☕ /?#') AND block_id = :hook ORDER BY delivery_id;
SELECT left(body, 60) || '...' AS payload_start, body LIKE '%"occurred_at":"infinity"%' AS infinity_kept
  FROM seriesweb.deliveries WHERE user_id = '' AND block_id = :payload;
SELECT * FROM pg_temp.queue();
-- Explicit event ids: negative is fine, a duplicate is refused (and the
-- statement enqueues nothing).
INSERT INTO seriesweb.events (event_id, user_id, name) VALUES (-1, 'neg', 'ping');
INSERT INTO seriesweb.events (event_id, user_id, name) VALUES (-2, 'dup', 'ping'), (-2, 'dup', 'ping');
SELECT user_id, count(*) FROM seriesweb.deliveries WHERE user_id IN ('neg', 'dup') GROUP BY user_id;
SELECT * FROM pg_temp.queue();
-- A multi-row INSERT with one bad row enqueues nothing for the good ones.
\set VERBOSITY terse
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('good', 'ping', '{}'), ('bad', 'ping', '[]');
\set VERBOSITY default
SELECT count(*) FROM seriesweb.deliveries WHERE user_id IN ('good', 'bad');
SELECT * FROM pg_temp.queue();
-- 3,000 events in one statement, more than work_mem can hold, so the
-- events are read back from disk: every one is matched and rendered with
-- its own data (this crashed the server: the matcher freed each event
-- while reading it).
SET work_mem = '64kB';
INSERT INTO seriesweb.events (user_id, name, properties)
SELECT 'many' || i, 'ping', jsonb_build_object('n', i) FROM generate_series(1, 3000) i;
RESET work_mem;
SELECT count(*) AS deliveries,
       count(*) FILTER (WHERE body = format('{"user":"%s","event":"ping","n":%s}', user_id, substr(user_id, 5))) AS right_body
  FROM seriesweb.deliveries WHERE block_id = :hook AND user_id LIKE 'many%';
-- COPY, with a line of bad JSON: nothing is enqueued.
COPY seriesweb.events (user_id, name, properties) FROM stdin;
copy1	ping	{"n": 1}
copy2	ping	{"n": 
\.
SELECT count(*) FROM seriesweb.deliveries WHERE user_id LIKE 'copy%';
SELECT * FROM pg_temp.queue();

------------------------------------------------------------------------------
-- 9. Edits of a live series, within one session
------------------------------------------------------------------------------

-- Editing a live block between events: deliveries already enqueued keep
-- what they were rendered with, later ones use the new definition.
UPDATE seriesweb.blocks SET url = 'http://127.0.0.1:9/edited' WHERE block_id = :payload;
INSERT INTO seriesweb.events (user_id, name) VALUES ('edit1', 'ping');
SELECT user_id, url FROM seriesweb.deliveries WHERE block_id = :payload AND user_id IN ('deep', 'edit1') ORDER BY delivery_id;
-- A bad edit of a live block is refused like a bad definition, and the
-- block goes on working.
UPDATE seriesweb.blocks SET url = 'ftp://127.0.0.1/' WHERE block_id = :payload;
UPDATE seriesweb.blocks SET headers = '{"Content-Type": "text/plain"}' WHERE block_id = :payload;
UPDATE seriesweb.blocks SET filters = '[{"op": "eq"}]' WHERE block_id = :ping;
-- Ids are not editable: progress, deliveries and counters refer to them.
UPDATE seriesweb.blocks SET block_id = 99999 WHERE block_id = :payload;
INSERT INTO seriesweb.events (user_id, name) VALUES ('edit2', 'ping');
SELECT count(*) FROM seriesweb.deliveries WHERE user_id = 'edit2';
SELECT * FROM pg_temp.queue();

-- Pausing mid-transaction, then an event in the same transaction: the
-- event sees the pause and enqueues nothing; the rollback restores the
-- live series, and the next event is matched.
BEGIN;
SELECT seriesweb.pause(:s);
INSERT INTO seriesweb.events (user_id, name) VALUES ('paused', 'ping');
SELECT count(*) AS while_paused FROM seriesweb.deliveries WHERE user_id = 'paused';
ROLLBACK;
INSERT INTO seriesweb.events (user_id, name) VALUES ('paused', 'ping');
SELECT count(*) AS after_rollback FROM seriesweb.deliveries WHERE user_id = 'paused';
-- Pausing and inserting in one statement: the statement's event sees the
-- series as the statement began (live); the next statement sees the pause.
WITH p AS (UPDATE seriesweb.series SET state = 'paused' WHERE series_id = :s RETURNING 1)
INSERT INTO seriesweb.events (user_id, name) SELECT 'same', 'ping' FROM p;
INSERT INTO seriesweb.events (user_id, name) VALUES ('same2', 'ping');
SELECT user_id, count(*) FROM seriesweb.deliveries WHERE user_id IN ('same', 'same2') GROUP BY user_id;
SELECT * FROM pg_temp.queue();
SELECT seriesweb.set_live(:s);
-- An event in a rolled-back savepoint enqueues nothing and leaves no
-- progress; the same user is matched afterwards.
BEGIN;
SAVEPOINT a;
INSERT INTO seriesweb.events (user_id, name) VALUES ('saved', 'ping');
ROLLBACK TO SAVEPOINT a;
INSERT INTO seriesweb.events (user_id, name) VALUES ('saved', 'other');
COMMIT;
SELECT count(*) AS progress FROM seriesweb.progress WHERE user_id = 'saved';
INSERT INTO seriesweb.events (user_id, name) VALUES ('saved', 'ping');
SELECT count(*) AS deliveries FROM seriesweb.deliveries WHERE user_id = 'saved';
SELECT * FROM pg_temp.queue();

-- Deleting a webhook block that has pending deliveries and progress: its
-- unsent deliveries and progress go with it (it will never send), its
-- finished ones stay as history, and the statistics still agree.  One of
-- them failed when sent (recorded here as the worker records it).
SELECT delivery_id AS worker_failed FROM seriesweb.deliveries WHERE block_id = :hook AND user_id = 'heavy' \gset
UPDATE seriesweb.deliveries SET status = 'failed', attempts = 3, finished_at = now(), last_error = 'HTTP 500'
 WHERE delivery_id = :worker_failed;
INSERT INTO seriesweb.block_counts (block_id, series_id, failed) VALUES (:hook, :s, 1);
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'failed') AS failed
  FROM seriesweb.deliveries WHERE block_id = :hook;
DELETE FROM seriesweb.blocks WHERE block_id = :hook;
SELECT status, count(*) FROM seriesweb.deliveries WHERE block_id = :hook GROUP BY status;
SELECT count(*) AS progress FROM seriesweb.progress WHERE block_id = :hook;
SELECT * FROM pg_temp.queue();
-- A failed delivery of the deleted block cannot be retried: its block and
-- counters are gone, so it would be sent for a block that no longer exists
-- and counted nowhere.  retry_failed of the block says it does not exist.
SELECT seriesweb.retry_delivery(:worker_failed);
SELECT seriesweb.retry_failed(:hook);
SELECT * FROM pg_temp.queue();
-- Deleting the only rule before a webhook is refused at commit.
SELECT seriesweb.add_rule(:s, 'Pong', 'pong') AS pong \gset
SELECT seriesweb.add_webhook(:s, 'Pong hook', 'http://127.0.0.1:9/pong', after => :pong) AS pong_hook \gset
DELETE FROM seriesweb.blocks WHERE block_id = :pong;
-- Deleting a whole series in the middle of a transaction that enqueued:
-- everything unsent of it goes, and the statistics agree.
BEGIN;
INSERT INTO seriesweb.events (user_id, name) VALUES ('last', 'pong'), ('last', 'fan');
DELETE FROM seriesweb.series WHERE series_id IN (:fan, :chain);
COMMIT;
SELECT name, state FROM seriesweb.series ORDER BY series_id;
SELECT * FROM pg_temp.queue();
-- One statement naming more new users than a backend remembers as known
-- (65,536), then their next events, also after a rollback that undid some.
INSERT INTO seriesweb.events (user_id, name) SELECT 'many-' || i, 'pageview' FROM generate_series(1, 70000) i;
INSERT INTO seriesweb.events (user_id, name) VALUES ('many-1', 'pageview'), ('many-70000', 'pageview');
BEGIN;
DELETE FROM seriesweb.users WHERE user_id = 'many-2';
INSERT INTO seriesweb.events (user_id, name) VALUES ('many-2', 'pageview'), ('many-70001', 'pageview');
ROLLBACK;
INSERT INTO seriesweb.events (user_id, name) VALUES ('many-70001', 'pageview');
SELECT count(*) AS users, count(*) FILTER (WHERE user_id = 'many-70001') AS recreated
  FROM seriesweb.users WHERE user_id LIKE 'many-%';

DROP EXTENSION seriesweb;
