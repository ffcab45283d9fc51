-- watching: rows the application inserts into its own tables feed the
-- series as events, in the inserting transaction, without a copy in
-- seriesweb.events (seriesweb.watch).  The worker of this test instance
-- serves another database, so deliveries stay pending and we read the queue.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- The application's own tables: orders with a numeric customer id, and
-- signups whose every row is one kind of event.
CREATE TABLE orders (
	order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer bigint,
	kind text,
	total numeric NOT NULL,
	details jsonb,
	placed_at timestamptz
);
CREATE TABLE signups (email text, plan text);

SELECT seriesweb.create_series('Orders');
SELECT seriesweb.add_rule(1, 'Big order', 'order-placed',
       '[{"attribute": "event.total", "op": "gte", "value": 100}]');
SELECT seriesweb.add_webhook(1, 'Tell the CRM', 'http://127.0.0.1:9/orders/{user.id}', after => 1,
       body => '{"total": "{event.total}", "coupon": "{event.coupon}", "at": "{event.occurred_at}"}');
SELECT seriesweb.create_series('Signups');
SELECT seriesweb.add_rule(2, 'Pro signup', 'signed-up',
       '[{"attribute": "event.plan", "op": "eq", "value": "pro"}]');
SELECT seriesweb.add_webhook(2, 'Welcome', 'http://127.0.0.1:9/welcome', after => 3,
       body => '{"who": "{user.id}", "plan": "{event.plan}"}');
SELECT seriesweb.set_live(1), seriesweb.set_live(2);

-- Names and the one event name; properties from a column, or the whole row.
SELECT seriesweb.watch('orders', 'customer', name_column => 'kind',
       properties_column => 'details', occurred_at_column => 'placed_at');
SELECT seriesweb.watch('signups', 'email', event_name => 'signed-up');
SELECT * FROM seriesweb.watched ORDER BY events::text;

-- A row is an event of its user: the user is created, the rule reached,
-- the webhook enqueued, with the event's properties and time.  The
-- delivery has no event_id: the event is not in seriesweb.events.
INSERT INTO orders (customer, kind, total, details, placed_at)
VALUES (42, 'order-placed', 150, '{"total": 150, "coupon": "SPRING"}', '2026-03-01 10:00:00+00');
SELECT user_id FROM seriesweb.users;
SELECT user_id, event_id, url, body FROM seriesweb.deliveries;
SELECT count(*) AS events_copied FROM seriesweb.events;

-- Without a properties column the whole row is the event's properties.
INSERT INTO signups VALUES ('ann@example.com', 'pro'), ('bob@example.com', 'free');
SELECT user_id, body FROM seriesweb.deliveries WHERE block_id = 4;

-- Multi-row INSERT and COPY, the same rules; a rule that does not hold
-- and another event name enqueue nothing.
INSERT INTO orders (customer, kind, total, details)
SELECT i, 'order-placed', i * 50, jsonb_build_object('total', i * 50) FROM generate_series(1, 3) i;
COPY orders (customer, kind, total, details) FROM stdin;
7	order-placed	500	{"total": 500}
8	refund	500	{"total": 500}
\.
SELECT user_id, url FROM seriesweb.deliveries WHERE block_id = 2 ORDER BY delivery_id;

-- A row with a null user id or name is no event; the insert goes on.
INSERT INTO orders (customer, kind, total) VALUES (NULL, 'order-placed', 900), (9, NULL, 900);
SELECT count(*) AS orders, (SELECT count(*) FROM seriesweb.deliveries) AS deliveries FROM orders;

-- A rolled-back insert enqueues nothing and creates no user.
BEGIN;
INSERT INTO orders (customer, kind, total, details) VALUES (11, 'order-placed', 300, '{"total": 300}');
SELECT count(*) AS inside FROM seriesweb.deliveries WHERE user_id = '11';
ROLLBACK;
SELECT count(*) AS after, (SELECT count(*) FROM seriesweb.users WHERE user_id = '11') AS users
  FROM seriesweb.deliveries WHERE user_id = '11';

-- The statistics count watched events like any other.
SELECT title, reached, pending FROM seriesweb.block_stats ORDER BY block_id;

-- The application's role needs no right on seriesweb's tables: its rows
-- are matched with the extension's rights.
CREATE ROLE watching_app;
GRANT INSERT ON orders TO watching_app;
SET ROLE watching_app;
INSERT INTO orders (customer, kind, total, details) VALUES (13, 'order-placed', 200, '{"total": 200}');
RESET ROLE;
SELECT user_id, status FROM seriesweb.deliveries WHERE user_id = '13';

-- Who may watch a table: a role that may put a trigger on it (its owner),
-- granted watch() and the trigger function it installs.
CREATE ROLE watching_owner;
CREATE TABLE owned_events (uid text, what text);
CREATE TABLE others_events (uid text, what text);
ALTER TABLE owned_events OWNER TO watching_owner;
SET ROLE watching_owner;
SELECT seriesweb.watch('owned_events', 'uid', 'what');
RESET ROLE;
GRANT USAGE ON SCHEMA seriesweb TO watching_owner;
GRANT EXECUTE ON FUNCTION seriesweb.watch, seriesweb.unwatch, seriesweb._match_watched TO watching_owner;
GRANT SELECT ON seriesweb.watched TO watching_owner;
SET ROLE watching_owner;
SELECT seriesweb.watch('owned_events', 'uid', 'what');
SELECT seriesweb.watch('others_events', 'uid', 'what');
SELECT events FROM seriesweb.watched ORDER BY events::text;
SELECT seriesweb.unwatch('owned_events');
RESET ROLE;
DROP TABLE owned_events, others_events;
DROP OWNED BY watching_owner, watching_app;
DROP ROLE watching_owner, watching_app;

-- What cannot be watched, each refused with what is wrong.
CREATE TABLE leads (email text, plan text, score float8, at timestamp, props json);
CREATE VIEW lead_view AS SELECT * FROM leads;
SELECT seriesweb.watch('seriesweb.events', 'user_id', 'name');
SELECT seriesweb.watch('orders', 'customer', 'kind');
SELECT seriesweb.watch('lead_view', 'email', 'plan');
SELECT seriesweb.watch('leads', 'nobody', event_name => 'x');
SELECT seriesweb.watch('leads', 'email');
SELECT seriesweb.watch('leads', 'email', 'plan', 'signed-up');
SELECT seriesweb.watch('leads', 'score', 'plan');
SELECT seriesweb.watch('leads', 'email', 'score');
SELECT seriesweb.watch('leads', 'email', 'plan', properties_column => 'props');
SELECT seriesweb.watch('leads', 'email', 'plan', occurred_at_column => 'at');
SELECT seriesweb.watch(NULL, 'email', 'plan');
SELECT seriesweb.watch('leads', NULL, 'plan');
SELECT seriesweb.unwatch('leads');
SELECT count(*) AS watched FROM seriesweb.watched;

-- A column a watch reads cannot be renamed, dropped or retyped under it;
-- other changes to the table are fine.
ALTER TABLE orders RENAME COLUMN customer TO customer_id;
ALTER TABLE orders DROP COLUMN details;
ALTER TABLE orders ALTER COLUMN placed_at TYPE text;
ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders RENAME COLUMN note TO remark;

-- Should a column change anyway (here with seriesweb's event trigger
-- disabled), the next insert names it: this session's earlier inserts did
-- not leave a mapping that would read another column.
BEGIN;
ALTER EVENT TRIGGER seriesweb_watched_table_altered DISABLE;
ALTER TABLE orders RENAME COLUMN customer TO customer_id;
INSERT INTO orders (customer_id, kind, total) VALUES (14, 'order-placed', 200);
ROLLBACK;
INSERT INTO orders (customer, kind, total, details) VALUES (14, 'order-placed', 200, '{"total": 200}');
SELECT user_id, status FROM seriesweb.deliveries WHERE user_id = '14';

-- Renaming the table keeps the watch; unwatch stops it; dropping a watched
-- table unwatches it.
ALTER TABLE orders RENAME TO purchases;
SELECT events, user_id_column FROM seriesweb.watched ORDER BY events::text;
SELECT seriesweb.unwatch('purchases');
INSERT INTO purchases (customer, kind, total, details) VALUES (12, 'order-placed', 300, '{"total": 300}');
SELECT count(*) AS after_unwatch FROM seriesweb.deliveries WHERE user_id = '12';
DROP TABLE signups;
SELECT count(*) AS watched FROM seriesweb.watched;

-- The extension cannot be dropped from under a watched table without CASCADE.
SELECT seriesweb.watch('purchases', 'customer', 'kind');
DROP EXTENSION seriesweb;
SELECT seriesweb.unwatch('purchases');
DROP TABLE purchases, leads CASCADE;
DROP EXTENSION seriesweb;
