--
-- Size limits (src/render.c): a webhook's rendered URL is at most 8192
-- bytes, its rendered body at most seriesweb.max_body_size (256kB unless
-- set).  A URL whose own text is already too long is refused when the
-- block is defined; a request that only grows too long with a user's data
-- fails its delivery when it is enqueued, with the reason, and the
-- application's INSERT goes on.  Rendering stops at the limit, so huge data
-- costs no huge strings.
--
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

SHOW seriesweb.max_body_size;

-- render(url, body, attributes[, content type]): the rendered URL and body
-- lengths for a user with these attributes, or the error.
CREATE FUNCTION pg_temp.render(url text, body json, attrs jsonb,
                               ct text DEFAULT 'application/json')
RETURNS TABLE (url_length int, body_length int, error text)
LANGUAGE sql AS $$
	SELECT length(r.url), length(r.body), r.error
	  FROM seriesweb._render('POST', $1, jsonb_build_object('Content-Type', $4), $2,
	                         jsonb_build_object('user', jsonb_build_object('id', 'u1', 'attributes', $3))) r
$$;

------------------------------------------------------------------------------
-- The URL: 8192 bytes
------------------------------------------------------------------------------

-- "https://example.com/" is 20 bytes: 8172 more make the longest URL.
SELECT * FROM pg_temp.render('https://example.com/' || repeat('a', 8172), NULL, '{}');
SELECT * FROM pg_temp.render('https://example.com/' || repeat('a', 8173), NULL, '{}');
-- The same check guards the blocks table, so add_webhook refuses it too.
SELECT seriesweb.create_series('Limits') AS s \gset
SELECT seriesweb.add_rule(:s, 'Ping', 'ping') AS ping \gset
SELECT seriesweb.add_webhook(:s, 'Too long', 'https://example.com/' || repeat('a', 8173), after => :ping);
-- Placeholders only add text: literal text over the limit is refused even
-- when the placeholders would render empty; literal text at the limit is not.
SELECT * FROM pg_temp.render('https://example.com/{user.x}' || repeat('a', 8173), NULL, '{}');
SELECT * FROM pg_temp.render('https://example.com/{user.x}' || repeat('a', 8172), NULL, '{}');
SELECT * FROM pg_temp.render('https://example.com/{user.x}' || repeat('a', 8172), NULL, '{"x": "b"}');

-- From the data: the rendered length counts, percent-encoding included
-- (a blank is 3 bytes, %20).
SELECT * FROM pg_temp.render('https://example.com/{user.x}', NULL, jsonb_build_object('x', repeat('b', 8172)));
SELECT * FROM pg_temp.render('https://example.com/{user.x}', NULL, jsonb_build_object('x', repeat('b', 8173)));
SELECT * FROM pg_temp.render('https://example.com/{user.x}', NULL, jsonb_build_object('x', repeat(' ', 2724)));
SELECT * FROM pg_temp.render('https://example.com/{user.x}', NULL, jsonb_build_object('x', repeat(' ', 2725)));

------------------------------------------------------------------------------
-- The body: seriesweb.max_body_size
------------------------------------------------------------------------------

-- {"a":"<x>"} is 8 bytes and x: 262136 bytes of x make exactly 256kB.
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat('x', 262136)));
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat('x', 262137)));
-- A typed value (the placeholder is the whole string) counts the same.
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', jsonb_build_array(repeat('x', 262134))));
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', jsonb_build_array(repeat('x', 262135))));
-- JSON escapes count: a line break is 2 bytes, \n.
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat(E'\n', 131068)));
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat(E'\n', 131069)));
-- A form body: a=<x>, 2 bytes and x.
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat('x', 262142)),
                             'application/x-www-form-urlencoded');
SELECT * FROM pg_temp.render('https://example.com/', '{"a": "{user.x}"}', jsonb_build_object('x', repeat('x', 262143)),
                             'application/x-www-form-urlencoded');
SELECT * FROM pg_temp.render('https://example.com/', '{"a": {"b": "{user.x}"}}', jsonb_build_object('x', repeat('x', 300000)),
                             'application/x-www-form-urlencoded');
-- The default payload carries the user's attributes.
SELECT * FROM pg_temp.render('https://example.com/', NULL, jsonb_build_object('x', repeat('x', 300000)));
-- 1000 placeholders of 100 kB each would make 100 MB: rendering stops
-- after the first few.
SELECT * FROM pg_temp.render('https://example.com/',
                             json_build_object('a', repeat('{user.x}', 1000)), jsonb_build_object('x', repeat('x', 100000)));

-- The setting has bounds and a unit; only the server configuration sets it.
ALTER SYSTEM SET seriesweb.max_body_size = 0;
ALTER SYSTEM SET seriesweb.max_body_size = '1023B';
ALTER SYSTEM SET seriesweb.max_body_size = '17MB';
ALTER SYSTEM SET seriesweb.max_body_size = 'huge';
SET seriesweb.max_body_size = '1MB';

------------------------------------------------------------------------------
-- At enqueue time
------------------------------------------------------------------------------

-- A user whose data makes the body too big gets a failed delivery with the
-- reason; another user's delivery of the same block is queued; the INSERT
-- of the events succeeds.
SELECT seriesweb.add_webhook(:s, 'Big', 'http://127.0.0.1:9/big', after => :ping,
       body => '{"blob": "{user.blob}"}') AS big \gset
SELECT seriesweb.add_webhook(:s, 'Long', 'http://127.0.0.1:9/long?q={user.blob}', after => :ping) AS long \gset
SELECT seriesweb.set_live(:s);
INSERT INTO seriesweb.users (user_id, attributes) VALUES
	('small', '{"blob": "fits"}'),
	('large', jsonb_build_object('blob', repeat('z', 300000)));
INSERT INTO seriesweb.events (user_id, name) VALUES ('small', 'ping'), ('large', 'ping');
SELECT b.title, d.user_id, d.status, d.attempts, d.finished_at IS NOT NULL AS finished,
       length(d.url) AS url_length,
       -- the default payload's length varies with its timestamps
       CASE WHEN d.body LIKE '{"delivery_id"%' THEN 'default payload' ELSE length(d.body)::text END AS body_length,
       d.last_error
  FROM seriesweb.deliveries d JOIN seriesweb.blocks b USING (block_id)
 ORDER BY b.block_id, d.user_id;
SELECT title, reached, sent, failed, pending, last_error
  FROM seriesweb.block_stats WHERE series_id = :s ORDER BY block_id;

DROP EXTENSION seriesweb;
