--
-- Webhook templates: how a webhook block's URL, headers and body are filled
-- in with the attributes of the user, company and event when a delivery is
-- enqueued, and how a malformed definition is refused when it is written.
--
-- seriesweb._render(method, url, headers, body, context, delivery_id)
-- compiles a definition and renders it for a context described as JSON (the
-- user, company and event of the moment, as the events trigger sees them).
-- It returns the request a delivery would store, or, with every other column
-- NULL, the error the delivery would record.  seriesweb._check_webhook(method,
-- url, headers, body) only compiles, as the validation trigger on
-- seriesweb.blocks does.
--
CREATE EXTENSION seriesweb;
\set VERBOSITY default
-- event.occurred_at is written in the session's time zone; fix it.
SET TimeZone = 'UTC';

-- The contexts the templates below are rendered for.  Lonnie has a company;
-- Solo has none; Eve's name holds a line break.
CREATE TEMP TABLE contexts (who text PRIMARY KEY, context jsonb NOT NULL);
INSERT INTO contexts VALUES
('lonnie', '{
  "user": {"id": "u1", "email": "lonnie@example.com", "name": "Lonnie Lynn",
           "attributes": {"plan": "pro", "age": 42, "vip": true, "score": 9.50, "nickname": null,
                          "address": {"city": "São Paulo", "zip": "01000-000"}, "tags": ["a", "b"],
                          "city": "São Paulo / SP & co", "quote": "say \"hi\"", "path": "C:\\temp",
                          "lines": "one\ntwo", "bell": "\u0007", "unicode": "café ☕"}},
  "company": {"id": "c0m5en5e", "name": "CSense Ltd",
              "attributes": {"token": "s3cr3t", "subdomain": "csense", "seats": 12}},
  "event": {"id": 7, "name": "signed_up", "occurred_at": "2024-05-01 12:00:00+00",
            "properties": {"cart": {"total": 99.90, "currency": "EUR"},
                           "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]}},
  "series": {"id": 3, "name": "Onboarding"},
  "block": {"id": 5, "title": "Welcome"}}'),
('solo', '{
  "user": {"id": "u2", "name": "Solo", "attributes": {}},
  "event": {"id": 8, "name": "login", "occurred_at": "2024-05-02 08:30:00+00", "properties": {}},
  "series": {"id": 3, "name": "Onboarding"},
  "block": {"id": 5, "title": "Welcome"}}'),
('eve', '{"user": {"id": "u3", "name": "Eve\r\nX-Injected: yes"}}');

-- body(b, who): the JSON body rendered for a context, or the error.
CREATE FUNCTION pg_temp.body(b json, who text DEFAULT 'lonnie') RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(r.body, 'error: ' || r.error)
	  FROM contexts c,
	       seriesweb._render('POST', 'https://example.com/hook',
	                         '{"Content-Type": "application/json"}', $1, c.context) r
	 WHERE c.who = $2
$$;
-- form(b, who): the same with a form-encoded body.
CREATE FUNCTION pg_temp.form(b json, who text DEFAULT 'lonnie') RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(r.body, 'error: ' || r.error)
	  FROM contexts c,
	       seriesweb._render('POST', 'https://example.com/hook',
	                         '{"Content-Type": "application/x-www-form-urlencoded"}', $1, c.context) r
	 WHERE c.who = $2
$$;
-- url(u, who): the URL rendered for a context, or the error.
CREATE FUNCTION pg_temp.url(u text, who text DEFAULT 'lonnie') RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(r.url, 'error: ' || r.error)
	  FROM contexts c,
	       seriesweb._render('POST', $1, '{"Content-Type": "application/json"}', NULL, c.context) r
	 WHERE c.who = $2
$$;

------------------------------------------------------------------------------
-- Bodies
------------------------------------------------------------------------------

-- The example of the API: each placeholder names an attribute.
SELECT pg_temp.body('{"name": "{user.name}", "company": "{company.name}", "company_id": "{company.id}"}');

-- The body is sent compact, with its keys in the order written (jsonb would
-- sort them) and duplicate keys kept, as json keeps them; literal values are
-- sent as written.
SELECT pg_temp.body('{"zeta": 1, "alpha": [true, false, null], "mid": {"y": 2.50, "b": -1e3}, "zeta": "again"}');

-- A string that is exactly one placeholder takes the attribute's JSON type:
-- numbers, booleans, objects and arrays stay what they are, and a missing
-- attribute (or a JSON null) is null.  Objects from attributes come in
-- jsonb's key order.  Anywhere else the value is inserted as text: strings
-- as they are, other values as their JSON text, missing ones as nothing.
SELECT pg_temp.body('{"age": "{user.age}", "vip": "{user.vip}", "score": "{user.score}",
  "address": "{user.address}", "tags": "{user.tags}", "plan": "{user.plan}",
  "missing": "{user.nope}", "nickname": "{user.nickname}",
  "as_text": "{user.age} years, vip={user.vip}, tags={user.tags}, missing=[{user.nope}]"}');

-- Built-in fields: ids, email, names, titles, and the event's time in ISO
-- 8601; dots reach into nested JSON, digits into arrays.
SELECT pg_temp.body('{"user": "{user.id}", "email": "{user.email}", "event": "{event.name}",
  "event_id": "{event.id}", "at": "{event.occurred_at}", "series": "{series.name}",
  "series_id": "{series.id}", "block": "{block.title}", "block_id": "{block.id}",
  "total": "{event.cart.total}", "second_sku": "{event.items.1.sku}"}');

-- A fallback is a JSON literal used when the attribute is missing or null.
-- As a whole value it keeps its own type; in text it is inserted as text
-- (a null fallback as nothing).  Blanks around "|" and ":" are optional,
-- and a quoted fallback may hold "}" and "|".
SELECT pg_temp.body('{"greeting": "Hi {user.first_name | fallback: \"there\"}!",
  "present": "{user.plan | fallback: \"free\"}", "seats": "{user.seats | fallback: 1}",
  "trial": "{user.trial | fallback: false}", "nothing": "{user.nope | fallback: null}",
  "nickname": "{user.nickname | fallback: \"Lonnie\"}", "tight": "{user.nope|fallback:2.5}",
  "loose": "{ user.nope  |  fallback :  \"x\" }", "braces": "{user.nope | fallback: \"a } | b\"}",
  "in_text": "{user.nope | fallback: 5} and [{user.nope | fallback: null}]"}');
-- Solo has no company: every company attribute is missing.
SELECT pg_temp.body('{"company": "{company.name | fallback: \"none\"}", "id": "{company.id}",
  "email": "{user.email}"}', 'solo');

-- {{ and }} write literal braces; they never start a placeholder.
SELECT pg_temp.body('{"literal": "{{user.name}}", "wrapped": "{{{user.name}}}", "json": "{{\"a\": 1}}"}');

-- Text inserted into a JSON string is escaped: quotes, backslashes, line
-- breaks and other control characters; non-ASCII text stays UTF-8.  Literal
-- text of the template is escaped again the same way.  The result parses
-- back to the original values.
SELECT pg_temp.body('{"text": "{user.quote} {user.path} {user.lines} {user.bell} {user.unicode}",
  "whole": "{user.lines}", "literal": "tab\there, \"quoted\", \u00e9"}') AS body;
SELECT b ->> 'text' = concat_ws(' ', a ->> 'quote', a ->> 'path', a ->> 'lines',
                                 a ->> 'bell', a ->> 'unicode') AS text_round_trips,
       b ->> 'whole' = a ->> 'lines' AS whole_round_trips,
       b ->> 'literal' = E'tab\there, "quoted", \u00e9' AS literal_round_trips
  FROM contexts c,
       LATERAL (SELECT c.context #> '{user,attributes}' AS a,
                       pg_temp.body('{"text": "{user.quote} {user.path} {user.lines} {user.bell} {user.unicode}",
                         "whole": "{user.lines}", "literal": "tab\there, \"quoted\", \u00e9"}')::json AS b) AS t
 WHERE c.who = 'lonnie';

-- Placeholders work at any depth of objects and arrays.  Keys are literal,
-- never templates.
SELECT pg_temp.body('{"order": {"id": "{event.id}", "items": ["{event.items.0.sku}",
  {"sku": "{event.items.1.sku}", "qty": "{event.items.1.qty}"}],
  "total": "{event.cart.total} {event.cart.currency}"}, "{user.name}": "key as written"}');

-- A NULL body sends the default payload: the delivery id, series, block,
-- user (with attributes), company (null without one) and event, in this
-- order (shown one top-level key a row).
SELECT j.key, j.value
  FROM contexts c,
       seriesweb._render('POST', 'https://example.com/hook', '{"Content-Type": "application/json"}',
                         NULL, c.context, 42) AS r,
       json_each(r.body::json) AS j
 WHERE c.who = 'lonnie';
SELECT pg_temp.body(NULL, 'solo');

-- With application/x-www-form-urlencoded, top-level keys become key=value
-- pairs joined by "&": strings as text, other values as JSON, everything
-- form-encoded (space is "+"; letters, digits and *-._ stay).
SELECT pg_temp.form('{"name": "{user.name}", "age": "{user.age}", "vip": true, "count": 3,
  "tags": ["a", "{user.plan}"], "note": "50% off & more", "missing": "{user.nope}",
  "city": "{user.city}", "empty": "", "name": "again"}');
-- The default payload form-encodes its top-level keys the same way (shown
-- one field a row).
SELECT regexp_split_to_table(pg_temp.form(NULL, 'solo'), '&') AS field;

------------------------------------------------------------------------------
-- URLs
------------------------------------------------------------------------------

-- Placeholder values in the URL are percent-encoded (RFC 3986: letters,
-- digits and -_~ stay, and "." in the host; spaces, slashes, "&", non-ASCII
-- become %XX of their UTF-8 bytes); the literal text is kept as written.  A
-- missing attribute is empty.
SELECT pg_temp.url('https://example.com/users/{user.id}/notes?city={user.city}&name={user.name}&u={user.unicode}&missing={user.nope}&n={user.age}');
-- A fallback is encoded too, and a placeholder may be (part of) the host.
SELECT pg_temp.url('https://{company.subdomain}.example.com/{user.nope | fallback: "a b/c"}');
-- A host that renders empty fails the delivery, with this error.
SELECT pg_temp.url('https://{company.subdomain}/hook', 'solo');
-- Accepted URLs: ports, IPv6, query strings, fragments, "@" after the host,
-- an upper-case scheme.
SELECT pg_temp.url('HTTPS://[2001:db8::1]:8443/hook?x=1#frag');
SELECT pg_temp.url('http://example.com:8080/users/@me');

-- A value stays inside its path segment.  A "." or ".." segment means "this
-- directory" or "the parent" to servers and to clients that normalise URLs,
-- so /api/users/{event.uid}/notify with the uid ".." would reach /api/notify:
-- after the host "." is %2E, like "/" is %2F.  "%" is %25, so a value that is
-- already encoded ("%2e") stays text.  Every URL keeps the template's five
-- segments, none of them a dot segment.
SELECT t.uid, r.url, cardinality(s.segs) = 5 AND NOT s.segs && '{., ..}' AS keeps_segments
  FROM (VALUES ('..'), ('.'), ('%2e'), ('%2E%2E'), ('.%2e'), ('...'), ('../../admin'),
               ('.hidden'), ('v1.2'), ('')) AS t(uid),
       seriesweb._render('POST', 'https://example.com/api/users/{event.uid}/notify',
                         '{"Content-Type": "application/json"}', NULL,
                         jsonb_build_object('event', jsonb_build_object('properties',
                                                                        jsonb_build_object('uid', t.uid)))) r,
       LATERAL (SELECT string_to_array(substring(r.url FROM '^https://[^/?#]*([^?#]*)'), '/') AS segs) s;
-- url_with(u, context): the URL rendered for a context given inline.
CREATE FUNCTION pg_temp.url_with(u text, context jsonb) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(r.url, 'error: ' || r.error)
	  FROM seriesweb._render('POST', $1, '{"Content-Type": "application/json"}', NULL, $2) r
$$;
-- The query and the fragment are encoded the same way, and so is a fallback.
-- In the host "." separates the labels of the name and stays.
SELECT pg_temp.url_with('https://{company.subdomain}.example.com/u/{event.uid}/{user.nope | fallback: ".."}/x?next={event.uid}#{event.uid}',
                        '{"company": {"id": "c1", "attributes": {"subdomain": "eu.csense"}}, "event": {"properties": {"uid": ".."}}}');
-- Dot segments written in the template are sent as written (libcurl is told
-- not to remove them), and literal dots around a value are fine.
SELECT pg_temp.url('https://example.com/a/./b/../c/.{user.plan}./..{user.plan}');
-- But a segment of literal dots and placeholders that all render empty would
-- be a dot segment the template did not write: the delivery fails with this
-- error instead.
SELECT pg_temp.url('https://example.com/a/.{user.nope}/b');
SELECT pg_temp.url('https://example.com/a/{user.nope}.{user.nope}./b?q=.{user.nope}');
SELECT pg_temp.url('https://example.com/a/..{user.nope}');
-- Three dots are not a dot segment, and those the template wrote stay.
SELECT pg_temp.url('https://example.com/../a/..{user.nope}./b/..');

------------------------------------------------------------------------------
-- Headers
------------------------------------------------------------------------------

-- Headers are "Name: value" lines in the order jsonb keeps the keys (shorter
-- names first); placeholders are inserted as text.  The method is compared
-- case-insensitively and sent upper-case; the Content-Type's media type too,
-- parameters allowed.
SELECT r.method, r.url, h.line
  FROM contexts c,
       seriesweb._render('put', 'https://example.com/hook',
                         '{"content-type": "Application/JSON ; charset=utf-8",
                           "Authorization": "Bearer {company.token}", "X-User": "{user.name}",
                           "X-Age": "{user.age}", "X-Tags": "{user.tags}",
                           "X-Missing": "[{user.nope}]", "User-Agent": "acme/1.0"}',
                         '{}', c.context) r,
       unnest(r.headers) AS h(line)
 WHERE c.who = 'lonnie';

-- Data cannot inject a header: a rendered header value with CR or LF makes
-- the delivery fail with this error, without an exception (the application's
-- INSERT goes on).  In the body the same value is just escaped.
SELECT r.* FROM contexts c,
       seriesweb._render('POST', 'https://example.com/hook',
                         '{"Content-Type": "application/json", "X-Name": "{user.name}"}',
                         NULL, c.context) r
 WHERE c.who = 'eve';
SELECT pg_temp.body('{"name": "{user.name}"}', 'eve');

------------------------------------------------------------------------------
-- Bad definitions: each fails at once, naming what is wrong
------------------------------------------------------------------------------

\set ct '{"Content-Type": "application/json"}'

-- A NULL body is valid (the default payload); NULL method, url or headers
-- are not.
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook(NULL, 'https://example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', NULL, :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', NULL, NULL);

-- Methods: POST and PUT only.
SELECT seriesweb._check_webhook('GET', 'https://example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('patch', 'https://example.com/hook', :'ct', NULL);

-- URLs: absolute http(s) with a literal scheme, a host, no blanks or control
-- characters, no credentials, a valid port.
SELECT seriesweb._check_webhook('POST', 'ftp://example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', '{company.webhook_url}/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https:///hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://:8080/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/my hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', E'https://example.com/\thook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://user:secret@example.com/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com:99999/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com:http/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://[::1/hook', :'ct', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/{user.name', :'ct', NULL);

-- Headers: a JSON object of strings, with valid names and one-line values.
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '["Content-Type"]', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '"application/json"', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "X-Count": 5}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "X Forwarded": "yes"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "X-A:b": "yes"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "": "yes"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "X-A": "a\r\nX-Injected: yes"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "X-A": "{user.nope | fallback: \"a\\nb\"}"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "Authorization": "Bearer {secrets.token}"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "content-type": "application/json"}', NULL);

-- Headers that seriesweb sets itself, whatever their case.
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "Content-Length": "10"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "host": "example.org"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "CONNECTION": "close"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook',
                                '{"Content-Type": "application/json", "Webhook-Signature": "v1,x"}', NULL);

-- Content-Type: present, literal, application/json or
-- application/x-www-form-urlencoded.
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{"Accept": "application/json"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{"Content-Type": "text/plain"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{"Content-Type": "application/jsonp"}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{"Content-Type": ""}', NULL);
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', '{"Content-Type": "{user.content_type}"}', NULL);

-- The body: a JSON object.
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '[1, 2]');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '"hello"');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '42');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', 'null');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "\u0000"}');

-- Placeholders: a known attribute, well formed, with a JSON scalar fallback.
-- The error names where the placeholder is (nested body keys as a path).
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{ }"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{usr.name}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{series.owner}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.first name}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "Hi {user.name"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.{name}}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "50% off}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | fallback: there}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | default: \"x\"}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | fallback: \"x\" \"y\"}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | fallback: [1]}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | fallback: \"x}"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct', '{"a": "{user.name | fallback: }"}');
SELECT seriesweb._check_webhook('POST', 'https://example.com/hook', :'ct',
                                '{"order": {"items": [{"sku": "ok"}, {"sku": "{evnt.sku}"}]}}');

-- Every error above has an SQLSTATE: invalid_parameter_value (22023) for
-- bad definitions, null_value_not_allowed (22004) for a missing argument,
-- invalid_text_representation (22P02) for a body the JSON parser rejects.
CREATE FUNCTION pg_temp.sqlstate_of(method text, url text, headers jsonb, body json)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM seriesweb._check_webhook(method, url, headers, body);
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END
$$;
SELECT what, pg_temp.sqlstate_of(m, u, h::jsonb, b::json)
  FROM (VALUES ('good', 'POST', 'https://example.com/{user.id}', :'ct', '{"a": "{user.name}"}'),
               ('null url', 'POST', NULL, :'ct', NULL),
               ('method', 'GET', 'https://example.com/', :'ct', NULL),
               ('url', 'POST', 'https://u@example.com/', :'ct', NULL),
               ('header name', 'POST', 'https://example.com/', '{"Content-Type": "application/json", "a b": ""}', NULL),
               ('reserved header', 'POST', 'https://example.com/', '{"Content-Type": "application/json", "Host": "x"}', NULL),
               ('content type', 'POST', 'https://example.com/', '{"Content-Type": "text/plain"}', NULL),
               ('body', 'POST', 'https://example.com/', :'ct', '[]'),
               ('body \u0000', 'POST', 'https://example.com/', :'ct', '{"a": "\u0000"}'),
               ('placeholder', 'POST', 'https://example.com/', :'ct', '{"a": "{usr.x}"}')) AS t(what, m, u, h, b);

-- The blocks table runs the same checks, whether through add_webhook or a
-- direct write.
\set SHOW_CONTEXT never
SELECT seriesweb.create_series('t') AS series_id \gset
SELECT seriesweb.add_rule(:series_id, 'r', 'e') AS rule_id \gset
SELECT seriesweb.add_webhook(:series_id, 'w', 'https://example.com/hook', :rule_id,
                             headers => '{"Content-Type": "text/plain"}');
SELECT seriesweb.add_webhook(:series_id, 'w', 'https://example.com/hook', :rule_id,
                             body => '{"name": "{user.nme | fallback: \"there\"}", "n": "{usr.name}"}');
INSERT INTO seriesweb.blocks (series_id, kind, title, url, method, headers)
VALUES (:series_id, 'webhook', 'direct', 'https://example.com/hook', 'DELETE', :'ct');
-- A good definition is stored.
SELECT seriesweb.add_webhook(:series_id, 'w', 'https://example.com/users/{user.id}', :rule_id,
                             method => 'put', body => '{"name": "{user.name | fallback: \"there\"}"}') > :rule_id AS added;
SELECT title, method, url, headers, body FROM seriesweb.blocks WHERE kind = 'webhook' AND series_id = :series_id;
\set SHOW_CONTEXT errors

DROP EXTENSION seriesweb;
