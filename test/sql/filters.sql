--
-- Rule filters: which users, companies and events a filter lets through, and
-- how a malformed filter is refused.
--
-- seriesweb._filter_matches(filters, context) compiles a filter and evaluates
-- it against a context described as JSON (the user, company and event of the
-- moment, as the events trigger sees them).  seriesweb._check_filters(filters)
-- only compiles it, as the validation trigger on seriesweb.blocks does.
--
CREATE EXTENSION seriesweb;
-- Show errors with their hints, without the PL/pgSQL context lines.
\set VERBOSITY default
\set SHOW_CONTEXT never
-- event.occurred_at is written in the session's time zone; fix it.
SET TimeZone = 'Europe/Paris';

-- The contexts the conditions below are evaluated against.
CREATE TEMP TABLE contexts (who text PRIMARY KEY, context jsonb NOT NULL);
INSERT INTO contexts VALUES
('ada', '{
  "user": {"id": "u1", "email": "ada@example.com", "name": "Ada Lovelace",
           "attributes": {"plan": "pro", "age": 42, "age_text": "42", "score": 1.0,
                          "beta": true, "nickname": null, "tags": ["beta", "vip"],
                          "address": {"city": "London", "zip": "W1"},
                          "signup": "2024-05-01T10:00:00Z", "signup_typo": "2024-13-01T10:00:00Z",
                          "trial_ends": "2024-06-01",
                          "email": "shadowed@example.org"}},
  "company": {"id": "c1", "name": "Acme", "attributes": {"seats": 10, "tier": "gold"}},
  "event": {"id": 7, "name": "purchase", "occurred_at": "2024-05-01T12:00:00+02:00",
            "properties": {"cart": {"total": 99.5, "currency": "EUR"},
                           "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]}}
}'),
-- Bob has no email and no company.
('bob', '{
  "user": {"id": "u2", "name": "Bob", "attributes": {"plan": "free"}},
  "event": {"id": 8, "name": "signup", "occurred_at": "2024-05-02T08:00:00Z"}
}');

-- Does a filter hold for one of the contexts above?
CREATE FUNCTION pg_temp.matches(filters jsonb, person text) RETURNS bool
LANGUAGE sql AS $$
	SELECT seriesweb._filter_matches(filters, (SELECT context FROM contexts WHERE who = person))
$$;
-- Does one condition hold?  A SQL NULL value leaves "value" out.
CREATE FUNCTION pg_temp.holds(attribute text, op text, value jsonb, person text DEFAULT 'ada')
RETURNS bool
LANGUAGE sql AS $$
	SELECT pg_temp.matches(jsonb_build_array(
		jsonb_build_object('attribute', attribute, 'op', op)
		|| CASE WHEN value IS NULL THEN '{}' ELSE jsonb_build_object('value', value) END), person)
$$;

------------------------------------------------------------------------------
-- eq and ne compare JSON values: same type and equal value.  The string "42"
-- is not the number 42; numbers compare numerically (1.0 = 1); objects and
-- arrays compare structurally (array order matters); null equals null.
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.plan', 'eq', '"pro"'::jsonb),
	('user.plan', 'eq', '"Pro"'),
	('user.plan', 'ne', '"free"'),
	('user.plan', 'ne', '"pro"'),
	('user.age', 'eq', '42'),
	('user.age', 'eq', '"42"'),
	('user.age_text', 'eq', '"42"'),
	('user.age_text', 'eq', '42'),
	('user.age_text', 'ne', '42'),
	('user.age', 'eq', '42.0'),
	('user.score', 'eq', '1'),
	('user.beta', 'eq', 'true'),
	('user.beta', 'eq', '"true"'),
	('user.nickname', 'eq', 'null'),
	('user.plan', 'eq', 'null'),
	('user.address', 'eq', '{"zip": "W1", "city": "London"}'),
	('user.address', 'eq', '{"city": "London"}'),
	('user.tags', 'eq', '["beta", "vip"]'),
	('user.tags', 'eq', '["vip", "beta"]'),
	('user.tags', 'ne', '["vip", "beta"]')
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- gt, gte, lt and lte compare two numbers, or two strings that are ISO 8601
-- timestamps.  Anything else (a number against a timestamp, a string that is
-- not a timestamp, "42" against 42) is false, never an error.
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.age', 'gt', '41'::jsonb),
	('user.age', 'gt', '42'),
	('user.age', 'gte', '42'),
	('user.age', 'lt', '42'),
	('user.age', 'lte', '42.0'),
	('user.age', 'lt', '1e3'),
	('event.cart.total', 'lt', '100'),
	('event.cart.total', 'gt', '99.49'),
	('user.age_text', 'gt', '41'),
	('user.plan', 'gt', '1'),
	('user.tags', 'gt', '1')
  ) AS t(attribute, op, value);

-- Timestamps compare as instants, whatever their offsets; a date alone is
-- midnight, and a timestamp without offset is UTC (not the session's time
-- zone, so that a filter means the same in every session).  Fractions are
-- rounded to microseconds.  A string that is no valid timestamp (month 13)
-- does not compare.
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.signup', 'gt', '"2024-05-01T09:59:59Z"'::jsonb),
	('user.signup', 'gt', '"2024-05-01T10:00:00.000001Z"'),
	('user.signup', 'gte', '"2024-05-01 12:00:00+02"'),
	('user.signup', 'lte', '"2024-05-01T05:00-05:00"'),
	('user.signup', 'lt', '"2024-05-01T10:00:00"'),
	('user.signup', 'lte', '"2024-05-01T10:00:00"'),
	('user.signup', 'gte', '"2024-05-01T10:00:00.0000004Z"'),
	('user.signup', 'lt', '"2024-05-01T10:00:00.0000005Z"'),
	('user.trial_ends', 'gte', '"2024-05-31T23:00:00-01:00"'),
	('user.trial_ends', 'gt', '"2024-05-31T23:00:00-01:00"'),
	('user.trial_ends', 'lt', '"2024-06-01T00:00:00.5Z"'),
	('event.occurred_at', 'gte', '"2024-05-01T10:00:00Z"'),
	('event.occurred_at', 'lt', '"2024-05-01T10:00:01Z"'),
	('user.plan', 'lt', '"2024-05-01"'),
	('user.signup_typo', 'gt', '"2024-05-01"'),
	('user.age', 'lt', '"2024-05-01"'),
	('user.signup', 'gt', '1')
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- contains: a string containing the value as a substring (case matters), or
-- an array with an element equal to the value.  starts_with and ends_with
-- are for strings; a non-string attribute does not match.
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.email', 'contains', '"@example."'::jsonb),
	('user.email', 'contains', '"EXAMPLE"'),
	('user.email', 'contains', '""'),
	('user.tags', 'contains', '"vip"'),
	('user.tags', 'contains', '"vi"'),
	('user.tags', 'contains', '["vip"]'),
	('event.items', 'contains', '{"qty": 2, "sku": "A-1"}'),
	('event.items', 'contains', '{"sku": "A-1"}'),
	('user.age', 'contains', '4'),
	('user.age_text', 'contains', '4'),
	('user.address', 'contains', '"London"'),
	('user.email', 'starts_with', '"ada@"'),
	('user.email', 'starts_with', '"Ada@"'),
	('user.email', 'ends_with', '".com"'),
	('user.email', 'ends_with', '".org"'),
	('user.age', 'starts_with', '"4"'),
	('user.age_text', 'starts_with', '"4"')
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- in: the attribute equals one of the elements (with eq's strictness); an
-- empty list matches nothing.
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.plan', 'in', '["pro", "team"]'::jsonb),
	('user.plan', 'in', '["free", "team"]'),
	('user.age', 'in', '[41, 42.0]'),
	('user.age', 'in', '["42"]'),
	('user.nickname', 'in', '[null]'),
	('user.address', 'in', '[{"city": "London", "zip": "W1"}]'),
	('user.plan', 'in', '[]')
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- exists: the attribute is present; a JSON null is present.  not_exists is
-- the opposite.
------------------------------------------------------------------------------
SELECT attribute, op, pg_temp.holds(attribute, op, NULL) AS holds
  FROM (VALUES
	('user.plan', 'exists'),
	('user.plan', 'not_exists'),
	('user.nickname', 'exists'),
	('user.nickname', 'not_exists'),
	('user.phone', 'exists'),
	('user.phone', 'not_exists')
  ) AS t(attribute, op);

------------------------------------------------------------------------------
-- On a missing attribute every operator is false, except ne and not_exists.
------------------------------------------------------------------------------
SELECT op, value, pg_temp.holds('user.phone', op, value) AS holds
  FROM (VALUES
	('eq', '"x"'::jsonb), ('ne', '"x"'), ('gt', '0'), ('gte', '0'), ('lt', '0'), ('lte', '0'),
	('contains', '"x"'), ('starts_with', '""'), ('ends_with', '""'), ('in', '["x"]'),
	('eq', 'null'), ('exists', NULL), ('not_exists', NULL)
  ) AS t(op, value);

------------------------------------------------------------------------------
-- Dots reach into nested JSON; a key made of digits indexes an array.  A key
-- that does not exist, an index past the end, or a key applied to a scalar or
-- an array makes the attribute missing.
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('event.cart.total', 'eq', '99.5'::jsonb),
	('event.cart.currency', 'eq', '"EUR"'),
	('event.items.0.sku', 'eq', '"A-1"'),
	('event.items.1.qty', 'eq', '1'),
	('event.items.1', 'eq', '{"sku": "B-2", "qty": 1}'),
	('user.address.city', 'starts_with', '"Lon"'),
	('event.items.2.sku', 'exists', NULL),
	('event.items.sku', 'exists', NULL),
	('user.plan.name', 'exists', NULL),
	('event.cart.total.cents', 'not_exists', NULL)
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- Built-in fields: user.id, user.email, user.name, company.id, company.name,
-- event.name, event.occurred_at (an ISO 8601 string in the session's time
-- zone) and event.id (a number).  A built-in field shadows an attribute of
-- the same name (Ada's attributes have an "email" too).
------------------------------------------------------------------------------
SELECT attribute, op, value, pg_temp.holds(attribute, op, value) AS holds
  FROM (VALUES
	('user.id', 'eq', '"u1"'::jsonb),
	('user.email', 'eq', '"ada@example.com"'),
	('user.name', 'starts_with', '"Ada "'),
	('company.id', 'eq', '"c1"'),
	('company.name', 'eq', '"Acme"'),
	('company.seats', 'gte', '10'),
	('event.name', 'eq', '"purchase"'),
	('event.name', 'in', '["purchase", "refund"]'),
	('event.occurred_at', 'eq', '"2024-05-01T12:00:00+02:00"'),
	('event.occurred_at', 'eq', '"2024-05-01T10:00:00Z"'),
	('event.id', 'eq', '7'),
	('event.id', 'eq', '"7"')
  ) AS t(attribute, op, value);

-- Bob has no company and no email: those attributes are missing.
SELECT attribute, op, value, pg_temp.holds(attribute, op, value, 'bob') AS holds
  FROM (VALUES
	('company.name', 'eq', '"Acme"'::jsonb),
	('company.name', 'ne', '"Acme"'),
	('company.id', 'exists', NULL),
	('company.id', 'not_exists', NULL),
	('company.tier', 'not_exists', NULL),
	('user.email', 'exists', NULL),
	('user.email', 'not_exists', NULL),
	('user.name', 'eq', '"Bob"'),
	('event.occurred_at', 'gt', '"2024-05-02T07:59:59Z"')
  ) AS t(attribute, op, value);

------------------------------------------------------------------------------
-- Groups.  An array is a list of conditions that must all hold, as is
-- {"all": [...]}; {"any": [...]} needs one of them.  Groups nest freely (an
-- array inside a group is an "all").  An empty array or "all" always holds;
-- an empty "any" never does.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.ada_and_bob(filters jsonb, OUT ada bool, OUT bob bool)
LANGUAGE sql AS $$
	SELECT pg_temp.matches(filters, 'ada'), pg_temp.matches(filters, 'bob')
$$;
SELECT * FROM pg_temp.ada_and_bob('[]');
SELECT * FROM pg_temp.ada_and_bob('{"all": []}');
SELECT * FROM pg_temp.ada_and_bob('{"any": []}');
-- Pro and adult: Ada only.
SELECT * FROM pg_temp.ada_and_bob('[{"attribute": "user.plan", "op": "eq", "value": "pro"},
                                    {"attribute": "user.age", "op": "gte", "value": 18}]');
-- Pro and a minor: nobody.
SELECT * FROM pg_temp.ada_and_bob('{"all": [{"attribute": "user.plan", "op": "eq", "value": "pro"},
                                            {"attribute": "user.age", "op": "lt", "value": 18}]}');
-- Free plan or a gold company: both, each for one reason.
SELECT * FROM pg_temp.ada_and_bob('{"any": [{"attribute": "user.plan", "op": "eq", "value": "free"},
                                            {"attribute": "company.tier", "op": "eq", "value": "gold"}]}');
-- A purchase or a signup, by a user without a company (Bob), or of a company
-- of more than 5 seats with a cart of at least 50 (Ada's is 99.5) ...
SELECT * FROM pg_temp.ada_and_bob('[{"attribute": "event.name", "op": "in", "value": ["purchase", "signup"]},
  {"any": [{"attribute": "company.id", "op": "not_exists"},
           {"all": [{"attribute": "company.seats", "op": "gt", "value": 5},
                    {"attribute": "event.cart.total", "op": "gte", "value": 50}]}]}]');
-- ... or of at least 100.
SELECT * FROM pg_temp.ada_and_bob('[{"attribute": "event.name", "op": "in", "value": ["purchase", "signup"]},
  {"any": [{"attribute": "company.id", "op": "not_exists"},
           {"all": [{"attribute": "company.seats", "op": "gt", "value": 5},
                    {"attribute": "event.cart.total", "op": "gte", "value": 100}]}]}]');
-- Arrays inside "any": (pro and beta) or (no email and on the team plan).
SELECT * FROM pg_temp.ada_and_bob('{"any": [[{"attribute": "user.plan", "op": "eq", "value": "pro"},
                                             {"attribute": "user.beta", "op": "eq", "value": true}],
                                            [{"attribute": "user.email", "op": "not_exists"},
                                             {"attribute": "user.plan", "op": "eq", "value": "team"}]]}');
-- No condition of an "any" holds: nobody.
SELECT * FROM pg_temp.ada_and_bob('{"any": [{"attribute": "user.plan", "op": "eq", "value": "team"},
                                            {"attribute": "company.tier", "op": "eq", "value": "silver"}]}');

-- Groups nest up to 32 levels deep.
SELECT pg_temp.matches((repeat('{"any": [', 31)
		|| '{"all": [{"attribute": "user.plan", "op": "eq", "value": "pro"}]}'
		|| repeat(']}', 31))::jsonb, 'ada') AS deep_32;

------------------------------------------------------------------------------
-- Malformed filters are refused when they are written, with a message that
-- says what is wrong and where: "filter condition 2.1" is the first element
-- of the group that is the second element of the top level.
------------------------------------------------------------------------------
-- The whole document: an array or a group, not a scalar or a lone condition.
SELECT seriesweb._check_filters('"user.plan = pro"');
SELECT seriesweb._check_filters('null');
SELECT seriesweb._check_filters('{"attribute": "user.plan", "op": "eq", "value": "pro"}');
SELECT seriesweb._check_filters('{"conditions": []}');

-- Groups: one key, "all" or "any", holding an array; at most 32 levels.
SELECT seriesweb._check_filters('{"all": [], "any": []}');
SELECT seriesweb._check_filters('{"any": [], "op": "eq"}');
SELECT seriesweb._check_filters('{"any": {"attribute": "user.plan", "op": "exists"}}');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "exists"}, {"all": "user.plan"}]');
SELECT seriesweb._check_filters('[[], {"any": [{"all": [], "title": "x"}]}]');
SELECT seriesweb._check_filters((repeat('{"any": [', 33) || repeat(']}', 33))::jsonb);

-- Conditions: objects with "attribute", "op" and, except for exists and
-- not_exists, "value".
SELECT seriesweb._check_filters('["user.plan"]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "exists"}, 42]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "operator": "eq", "value": "pro"}]');
SELECT seriesweb._check_filters('[{"op": "eq", "value": "pro"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "value": "pro"}]');

-- The attribute: a string naming a known root and a field.
SELECT seriesweb._check_filters('[{"attribute": ["user", "plan"], "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "plan", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "account.plan", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "user", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "user..plan", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.first name", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "   ", "op": "exists"}]');
SELECT seriesweb._check_filters('[{"attribute": "series.state", "op": "exists"}]');

-- The operator: a string, one of the twelve.
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "equals", "value": "pro"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "EQ", "value": "pro"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": true, "value": "pro"}]');

-- The value: required, absent for exists and not_exists, and of the right
-- kind for in, gt/gte/lt/lte, starts_with and ends_with.
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "eq"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "exists", "value": true}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "not_exists", "value": null}]');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "in", "value": "pro"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.age", "op": "gt", "value": "18"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.signup", "op": "lt", "value": "yesterday"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.signup", "op": "lt", "value": "2024-02-30"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.signup", "op": "gte", "value": "05/01/2024"}]');
SELECT seriesweb._check_filters('[{"attribute": "user.age", "op": "lte", "value": null}]');
SELECT seriesweb._check_filters('[{"attribute": "user.email", "op": "starts_with", "value": 42}]');
SELECT seriesweb._check_filters('[{"attribute": "user.email", "op": "ends_with", "value": [".com"]}]');

-- Errors name the nested condition by its position.
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "exists"},
  {"any": [{"attribute": "user.age", "op": "gt", "value": 18},
           [{"attribute": "user.age", "op": "between", "value": [1, 2]}]]}]');

-- The same checks apply to seriesweb._filter_matches, and a good filter
-- passes _check_filters silently.
SELECT seriesweb._filter_matches('[{"attribute": "user.plan", "op": "like", "value": "p%"}]', '{}');
SELECT seriesweb._check_filters('[{"attribute": "user.plan", "op": "eq", "value": "pro"}]');

-- SQLSTATEs: invalid_parameter_value, and program_limit_exceeded for depth.
DO $$
DECLARE
	f jsonb;
	state text;
BEGIN
	FOREACH f IN ARRAY ARRAY['{"any": 1}'::jsonb,
							 (repeat('[', 40) || repeat(']', 40))::jsonb] LOOP
		BEGIN
			PERFORM seriesweb._check_filters(f);
		EXCEPTION WHEN others THEN
			GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
			RAISE NOTICE '%', state;
		END;
	END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Rule blocks are checked on every write, through the functions or directly.
------------------------------------------------------------------------------
SELECT seriesweb.create_series('f') AS series_id \gset
INSERT INTO seriesweb.blocks (series_id, kind, title, filters)
	VALUES (:series_id, 'rule', 'pro users', '[{"attribute": "user.plan", "op": "is", "value": "pro"}]');
INSERT INTO seriesweb.blocks (series_id, kind, title, filters)
	VALUES (:series_id, 'rule', 'pro users', '{"any": [{"attribute": "plan", "op": "eq", "value": "pro"}]}');
SELECT seriesweb.add_rule(:series_id, 'adults', 'signup',
						  '[{"attribute": "user.age", "op": "gte", "value": "eighteen"}]');
-- A good filter is stored; changing it to a bad one is refused.
INSERT INTO seriesweb.blocks (series_id, kind, title, filters)
	VALUES (:series_id, 'rule', 'pro users', '[{"attribute": "user.plan", "op": "eq", "value": "pro"}]')
	RETURNING title, filters;
UPDATE seriesweb.blocks SET filters = '[{"attribute": "user.plan", "op": "in", "value": "pro"}]'
 WHERE title = 'pro users';
SELECT title, filters FROM seriesweb.blocks WHERE series_id = :series_id;

-- Leave the database as we found it for the next test.
DROP EXTENSION seriesweb;
