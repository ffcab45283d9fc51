-- testing: preview a block for a test user, the Standard Webhooks signature,
-- secrets, and replaying failed deliveries.  (test_webhook, which sends,
-- is exercised against a real receiver in test/t/030_testing.pl.)
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- The public test vector of the Standard Webhooks spec.
SELECT seriesweb._signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                            'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330,
                            '{"test": 2432232314}') AS signature;
SELECT seriesweb._signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                            'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330,
                            '{"test": 2432232314}')
       = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' AS matches_the_spec;

-- A secret without the whsec_ prefix is used as raw bytes; pgcrypto's HMAC
-- agrees.
CREATE EXTENSION pgcrypto;
SELECT seriesweb._signature('a raw secret of some length', 'msg_1', 1700000000, 'body')
       = 'v1,' || encode(hmac('msg_1.1700000000.body', 'a raw secret of some length', 'sha256'), 'base64')
       AS raw_secret_matches_pgcrypto;
DROP EXTENSION pgcrypto;

-- People and a series to test against.
INSERT INTO seriesweb.companies VALUES ('c0m5en5e', 'CSense Ltd');
INSERT INTO seriesweb.users (user_id, email, name, company_id) VALUES
	('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c0m5en5e'),
	('u2', 'sam@example.com', 'Sam Smith', NULL),
	('u3', 'sam.jones@example.com', 'Sam Smith', NULL);
SELECT seriesweb.create_series('Onboarding') AS s \gset
SELECT seriesweb.add_rule(:s, 'Completed onboarding', 'completed-onboarding') AS r \gset
SELECT seriesweb.add_webhook(:s, 'Tell the CRM', 'http://127.0.0.1:9/hooks/{user.id}', after => :r,
       headers => '{"Content-Type": "application/json", "Authorization": "Bearer t0ken"}',
       body => '{"name": "{user.name}", "company": "{company.name}", "event": "{event.name | fallback: \"test\"}"}') AS w \gset

-- preview: the request that would be sent, found by user_id, email or name.
SELECT method, url, headers, body FROM seriesweb.preview(:w, 'u1');
SELECT url, body FROM seriesweb.preview(:w, 'LONNIE@example.com');
SELECT url, body FROM seriesweb.preview(:w, 'Lonnie Lynn');
-- None or several: an error that lists candidates.
SELECT * FROM seriesweb.preview(:w, 'Sam Smith');
SELECT * FROM seriesweb.preview(:w, 'lonnie');
SELECT * FROM seriesweb.preview(:w, 'nobody');
-- Only webhook blocks, only existing ones, and both arguments.
SELECT * FROM seriesweb.preview(:r, 'u1');
SELECT * FROM seriesweb.preview(9999, 'u1');
SELECT * FROM seriesweb.preview(NULL, 'u1');
SELECT * FROM seriesweb.test_webhook(:w, NULL);

-- A block's own User-Agent replaces seriesweb's.
SELECT seriesweb.add_webhook(:s, 'Own agent', 'http://127.0.0.1:9/a', after => :r,
       headers => '{"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "crm-sync/2"}',
       body => '{"email": "{user.email}"}') AS agent \gset
SELECT headers, body FROM seriesweb.preview(:agent, 'u1');

-- Secrets: checked when the block is defined, never shown.
SELECT seriesweb.add_webhook(:s, 'bad', 'http://127.0.0.1:9/', after => :r, secret => '');
SELECT seriesweb.add_webhook(:s, 'bad', 'http://127.0.0.1:9/', after => :r, secret => 'whsec_!!!not base64');
SELECT seriesweb.add_webhook(:s, 'bad', 'http://127.0.0.1:9/', after => :r, secret => 'short');
SELECT seriesweb.add_webhook(:s, 'Signed', 'http://127.0.0.1:9/signed', after => :r,
       secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') AS signed \gset
-- A signed preview carries the three headers, and the signature verifies.
SELECT array_agg(k ORDER BY k) AS header_names
  FROM seriesweb.preview(:signed, 'u1') p, jsonb_object_keys(p.headers) k;
SELECT headers->>'webhook-signature'
       = seriesweb._signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', headers->>'webhook-id',
                              (headers->>'webhook-timestamp')::bigint, body) AS signature_verifies,
       position('MfKQ9r8G' IN headers::text) = 0 AS secret_not_shown
  FROM seriesweb.preview(:signed, 'u1');

-- Previewing changes nothing.
SELECT count(*) AS deliveries FROM seriesweb.deliveries;

-- Replaying: only failed deliveries can be retried.
SELECT seriesweb.retry_delivery(12345);
SELECT seriesweb.set_live(:s);
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding');
SELECT delivery_id AS pending_id FROM seriesweb.deliveries WHERE block_id = :w \gset
SELECT seriesweb.retry_delivery(:pending_id);
SELECT seriesweb.retry_failed(:r);
-- Make two deliveries failed as the worker would, then retry one, then the rest.
UPDATE seriesweb.deliveries SET status = 'failed', attempts = 3, finished_at = now(), last_error = 'HTTP 500'
 WHERE block_id IN (:w, :agent);
INSERT INTO seriesweb.block_counts (block_id, series_id, failed)
SELECT block_id, series_id, 1 FROM seriesweb.deliveries WHERE block_id IN (:w, :agent);
SELECT title, sent, failed, pending FROM seriesweb.block_stats WHERE block_id IN (:w, :agent) ORDER BY block_id;
SELECT seriesweb.retry_delivery(:pending_id);
SELECT status, attempts, max_attempts, finished_at IS NULL AS unfinished
  FROM seriesweb.deliveries WHERE delivery_id = :pending_id;
SELECT seriesweb.retry_failed(:agent) AS retried;
SELECT seriesweb.retry_failed(:agent) AS retried_again;
SELECT title, sent, failed, pending FROM seriesweb.block_stats WHERE block_id IN (:w, :agent) ORDER BY block_id;

-- With since, only deliveries that failed at or after it are retried.
UPDATE seriesweb.deliveries SET status = 'failed', finished_at = now() - interval '1 day'
 WHERE block_id = :agent;
INSERT INTO seriesweb.block_counts (block_id, series_id, failed)
SELECT block_id, series_id, 1 FROM seriesweb.deliveries WHERE block_id = :agent;
SELECT seriesweb.retry_failed(:agent, since => now() - interval '1 hour') AS failed_since_an_hour;
SELECT seriesweb.retry_failed(:agent, now() - interval '2 days') AS failed_since_two_days;
SELECT title, sent, failed, pending FROM seriesweb.block_stats WHERE block_id = :agent;

DROP EXTENSION seriesweb;
