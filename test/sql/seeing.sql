-- seeing: a series as a diagram (seriesweb.series_diagram, in mermaid and
-- dot) and the metrics monitoring tools scrape (seriesweb.metrics).
--
-- Nothing here is sent: this instance's worker serves another database.
-- Deliveries are put in each status as the worker leaves them (status,
-- attempt rows and counter deltas), so that the counts are known.
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- A small series whose titles are user text at its worst: quotes,
-- brackets, braces, angle brackets, a newline, a backslash before a
-- letter (\N means "the node's name" to Graphviz), &, #, markdown
-- characters, a control character (BEL), and non-ASCII letters and an
-- emoji (made with chr() so that this file stays ASCII).
SELECT seriesweb.create_series('Onboarding "Q3" \ [beta]') AS s \gset
SELECT seriesweb.add_rule(:s, E'Signed up\n"pro" plan [annual] {x} <b>bold</b>', 'signup') AS r \gset
SELECT seriesweb.add_webhook(:s, E'Tell \\N the CRM & co #1 *now* `x` _y_ ~z~ |w|' || chr(7),
       'http://127.0.0.1:9/crm', after => :r) AS w1 \gset
SELECT seriesweb.add_webhook(:s, 'Caf' || chr(233) || ' ' || chr(26085) || chr(26412) || ' ' || chr(127881),
       'http://127.0.0.1:9/cafe', after => :r) AS w2 \gset
SELECT seriesweb.set_live(:s);
INSERT INTO seriesweb.events (user_id, name)
SELECT 'u' || i, 'signup' FROM generate_series(1, 4) i;

-- As the worker leaves them: for the CRM, u1 and u2 sent, u3 failed, u4
-- pending; for the cafe, u1 sent, the rest pending.
UPDATE seriesweb.deliveries SET status = 'sent', attempts = 1, finished_at = now(), response_status = 200
 WHERE (block_id = :w1 AND user_id IN ('u1', 'u2')) OR (block_id = :w2 AND user_id = 'u1');
UPDATE seriesweb.deliveries SET status = 'failed', attempts = 3, finished_at = now(),
       response_status = 500, last_error = 'HTTP 500'
 WHERE block_id = :w1 AND user_id = 'u3';
INSERT INTO seriesweb.block_counts (block_id, series_id, sent, failed)
VALUES (:w1, :s, 2, 1), (:w2, :s, 1, 0);

-- The counts the diagram shows are block_stats'.
SELECT block_id, kind, reached, sent, failed, pending FROM seriesweb.block_stats ORDER BY block_id;

\pset format unaligned
\pset tuples_only on

-- mermaid (the default): the series is a subgraph titled with its name;
-- rules are stadiums, webhooks rectangles.  Labels are double-quoted; a
-- newline in a title is a <br>, a control character a space, and each
-- ASCII character that mermaid could read as syntax, markdown or HTML is
-- an entity code (#34; for ", #35; for #, #60; for <, ...).  Non-ASCII
-- text is kept as it is.
SELECT seriesweb.series_diagram(:s);

-- dot: " and \ get a backslash (\N stays literal), & is &amp; (Graphviz
-- reads entities), a newline is \n; brackets and braces need nothing
-- inside quotes.
SELECT seriesweb.series_diagram(:s, 'dot');

-- The format is read case-insensitively.
SELECT seriesweb.series_diagram(:s, 'DOT') = seriesweb.series_diagram(:s, 'dot') AS same;

-- A series with no blocks yet is an empty frame.
SELECT seriesweb.create_series('Empty') AS empty \gset
SELECT seriesweb.series_diagram(:empty);
SELECT seriesweb.series_diagram(:empty, 'dot');

-- The pieces that the kinds and paths of 0.2's timed series will use: a
-- kind without a shape of its own is drawn round, and the not-matched
-- path of a timed rule is dashed and labelled.
SELECT seriesweb._diagram_node('mermaid', 7, 'wait', ARRAY['Wait 2 days', 'wait: reached 3']);
SELECT seriesweb._diagram_node('dot', 7, 'wait', ARRAY['Wait 2 days', 'wait: reached 3']);
SELECT seriesweb._diagram_edge('mermaid', 1, 7, 'not_matched');
SELECT seriesweb._diagram_edge('dot', 1, 7, 'not_matched');
-- Line ends of every kind (CR LF, CR, LF, U+2028) are line breaks; tabs and
-- other control characters are spaces.
SELECT seriesweb._diagram_text('mermaid', E'a\r\nb\rc\nd' || chr(8232) || E'e\tf' || chr(127) || 'g');
SELECT seriesweb._diagram_text('dot', E'a\r\nb\rc\nd' || chr(8232) || E'e\tf' || chr(127) || 'g');

\pset format aligned
\pset tuples_only off

-- Bad input: an unknown series (no_data_found), an unknown format
-- (invalid_parameter_value), and NULLs (null_value_not_allowed).
SELECT seriesweb.series_diagram(424242);
\echo :LAST_ERROR_SQLSTATE
SELECT seriesweb.series_diagram(:s, 'svg');
\echo :LAST_ERROR_SQLSTATE
SELECT seriesweb.series_diagram(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT seriesweb.series_diagram(:s, NULL);
\echo :LAST_ERROR_SQLSTATE

-- Metrics: one row per metric, Prometheus names, labels as a JSON object
-- of strings (every row names its database), the value as float8.
-- Attempts of the last hour: four (the CRM's sends and failures, and the
-- cafe's), 100 to 400 ms; one from two hours ago is not counted.
INSERT INTO seriesweb.delivery_attempts (delivery_id, attempt, started_at, duration_ms, response_status, error)
SELECT d.delivery_id, 1, now() - interval '10 minutes', 100 * row_number() OVER (ORDER BY d.delivery_id),
       d.response_status, d.last_error
  FROM seriesweb.deliveries d WHERE d.status IN ('sent', 'failed');
INSERT INTO seriesweb.delivery_attempts (delivery_id, attempt, started_at, duration_ms, response_status, error)
SELECT d.delivery_id, 0, now() - interval '2 hours', 9000, 500, 'HTTP 500'
  FROM seriesweb.deliveries d WHERE d.status = 'failed';
-- Pending deliveries have been due for an hour (the age is shown rounded
-- down to the minute, since time passes while the test runs).
UPDATE seriesweb.deliveries SET next_attempt_at = now() - interval '1 hour' WHERE status = 'pending';
SELECT name, labels,
       CASE WHEN name = 'seriesweb_queue_oldest_due_age_seconds' THEN floor(value / 60) * 60 ELSE value END
         AS value
  FROM seriesweb.metrics ORDER BY name, labels ->> 'block', labels::text;

-- Counts come from the per-block counters, so they survive the purge of
-- finished deliveries and their attempts.
SELECT name, labels ->> 'status' AS status, value FROM seriesweb.metrics
 WHERE name = 'seriesweb_deliveries' AND labels ->> 'block' = :'w1' ORDER BY 2;
DELETE FROM seriesweb.delivery_attempts;
DELETE FROM seriesweb.deliveries WHERE status IN ('sent', 'failed');
SELECT name, labels ->> 'status' AS status, value FROM seriesweb.metrics
 WHERE name = 'seriesweb_deliveries' AND labels ->> 'block' = :'w1' ORDER BY 2;
-- With no attempt in the last hour the quantiles are NaN (as Prometheus
-- writes an empty summary's), and nothing is due when nothing is pending.
DELETE FROM seriesweb.deliveries;
SELECT name, labels ->> 'quantile' AS quantile, labels ->> 'outcome' AS outcome, value
  FROM seriesweb.metrics
 WHERE name IN ('seriesweb_attempts_last_hour', 'seriesweb_attempt_duration_last_hour_seconds',
                'seriesweb_queue_oldest_due_age_seconds')
 ORDER BY 1, 2, 3;

-- A query for one name computes only that part of the view: each other
-- branch is a constant false.
EXPLAIN (COSTS OFF) SELECT value FROM seriesweb.metrics WHERE name = 'seriesweb_worker_status';

-- Who may see: PUBLIC nothing; pg_monitor (a monitoring tool's role) reads
-- the metrics; authors and viewers are granted series_diagram (README),
-- which needs no access to the tables: it shows titles and counts, never a
-- URL, header, body or secret.
CREATE ROLE regress_seeing_nobody;
CREATE ROLE regress_seeing_monitor IN ROLE pg_monitor;
CREATE ROLE regress_seeing_viewer;
GRANT USAGE ON SCHEMA seriesweb TO regress_seeing_viewer;
GRANT SELECT ON seriesweb.block_stats, seriesweb.series_stats TO regress_seeing_viewer;
GRANT EXECUTE ON FUNCTION seriesweb.series_diagram TO regress_seeing_viewer;
SET ROLE regress_seeing_nobody;
SELECT count(*) FROM seriesweb.metrics;
SELECT seriesweb.series_diagram(:s);
SET ROLE regress_seeing_monitor;
SELECT count(*) > 0 AS monitor_reads FROM seriesweb.metrics;
SELECT state FROM seriesweb.worker_status();
SELECT seriesweb.series_diagram(:s);
SET ROLE regress_seeing_viewer;
SELECT seriesweb.series_diagram(:s, 'dot') LIKE '%Signed up%' AS viewer_sees;
SELECT title FROM seriesweb.blocks;
SELECT count(*) FROM seriesweb.metrics;
RESET ROLE;
-- The metrics view has no column for, and no label made of, a URL, header,
-- body or secret.
SELECT DISTINCT jsonb_object_keys(labels) AS label FROM seriesweb.metrics ORDER BY 1;

DROP EXTENSION seriesweb;
DROP ROLE regress_seeing_nobody, regress_seeing_monitor, regress_seeing_viewer;
