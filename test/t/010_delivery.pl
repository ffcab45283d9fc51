#
# 010_delivery.pl - the worker sends deliveries to a real receiver on
# 127.0.0.1 and records every attempt: success, retries, final failure, 410,
# timeouts, refused connections, redirects, the path as templated, keep-alive,
# a slow endpoint next to a fast one, and the commit -> receipt latency.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('delivery', conf => "seriesweb.timeout = '1s'\n");
my $port = $recv->port;

$node->safe_psql('postgres', 'CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to run');

sub sql { return $node->safe_psql('postgres', shift) }


# --- The seed scenario: exactly the payload of the README, Sent = 1 ---------
sql(q{
	INSERT INTO seriesweb.companies VALUES ('c0m5en5e', 'CSense Ltd');
	INSERT INTO seriesweb.users (user_id, email, name, company_id)
	VALUES ('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c0m5en5e');
});
my $seed = webhook_series($node, 'completed-onboarding', $recv->url('/hooks'),
	headers => '{"Content-Type": "application/json", "Authorization": "Bearer t0ken"}',
	body => '{"name": "{user.name}", "company": "{company.name}", "company_id": "{company.id}"}');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding')");
my $got = wait_for_requests($recv, '/hooks', 1, 30);
is(scalar @$got, 1, 'the receiver got one request');
is($got->[0]{method}, 'POST', 'it is a POST');
is($got->[0]{body}, '{"name":"Lonnie Lynn","company":"CSense Ltd","company_id":"c0m5en5e"}',
	'with the seed payload');
my %h = map { lc($_->[0]) => $_->[1] } @{ $got->[0]{headers} };
is($h{'content-type'}, 'application/json', 'Content-Type from the block');
is($h{authorization}, 'Bearer t0ken', 'custom header from the block');
like($h{'user-agent'}, qr{^seriesweb/\d}, 'User-Agent names seriesweb');
is($h{'content-length'}, length($got->[0]{body}), 'Content-Length is the body length');
ok(!exists $h{expect}, 'no Expect: 100-continue');
wait_status($node, $seed, 'sent', 1, 'the seed delivery to be sent');
is(sql("SELECT attempts, response_status, last_error IS NULL, finished_at IS NOT NULL
       FROM seriesweb.deliveries WHERE block_id = $seed"), '1|200|t|t', 'recorded as sent on attempt 1');
is(sql("SELECT a.attempt, a.response_status, a.error IS NULL, a.duration_ms >= 0, a.response_body
       FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
      WHERE d.block_id = $seed"), '1|200|t|t|{"ok":true}', 'one attempt row with the response');
wait_until($node, "SELECT sent FROM seriesweb.block_stats WHERE block_id = $seed", '1', 'block_stats sent = 1');
is(sql("SELECT reached, sent, failed, pending, last_sent_at IS NOT NULL FROM seriesweb.block_stats WHERE block_id = $seed"),
	'1|1|0|0|t', 'block_stats: reached 1, sent 1');

# --- 500 three times: Failed after 3 attempts -------------------------------
set_route($recv, '/fail', { status => 500, body => 'boom' });
my $fail = webhook_series($node, 'fail', $recv->url('/fail'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'fail')");
wait_status($node, $fail, 'failed', 1, 'the failing delivery to fail');
is(request_count($recv, '/fail'), 3, 'the receiver got 3 attempts');
is(sql("SELECT attempts, response_status, last_error FROM seriesweb.deliveries WHERE block_id = $fail"),
	'3|500|HTTP 500', 'failed after 3 attempts with the last status');
is(sql("SELECT string_agg(a.attempt || ':' || a.response_status || ':' || a.response_body, ',' ORDER BY a.attempt)
       FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
      WHERE d.block_id = $fail"), '1:500:boom,2:500:boom,3:500:boom', 'three attempt rows');
wait_until($node, "SELECT failed FROM seriesweb.block_stats WHERE block_id = $fail", '1', 'block_stats failed = 1');
is(sql("SELECT sent, failed, pending, last_error FROM seriesweb.block_stats WHERE block_id = $fail"),
	'0|1|0|HTTP 500', 'block_stats: failed 1 with the error');

# --- 500, 500, 200: Sent on attempt 3 ---------------------------------------
set_route($recv, '/flaky', { status => 500 }, { status => 500 }, { status => 200 });
my $flaky = webhook_series($node, 'flaky', $recv->url('/flaky'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'flaky')");
wait_status($node, $flaky, 'sent', 1, 'the flaky delivery to be sent');
is(sql("SELECT attempts, response_status FROM seriesweb.deliveries WHERE block_id = $flaky"), '3|200',
	'sent on attempt 3');
my $times = sql("SELECT string_agg(extract(epoch FROM started_at)::text, ',' ORDER BY attempt)
                 FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
                WHERE d.block_id = $flaky");
my @t = split /,/, $times;
cmp_ok($t[1] - $t[0], '>=', 0.2, 'the 2nd attempt waited the first retry delay (200ms)');
cmp_ok($t[2] - $t[1], '>=', 0.4, 'the 3rd attempt waited the second retry delay (400ms)');
cmp_ok($t[2] - $t[0], '<', 1.5, 'and neither waited much longer');

# --- 410 Gone: Failed at once -----------------------------------------------
set_route($recv, '/gone', { status => 410 });
my $gone = webhook_series($node, 'gone', $recv->url('/gone'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'gone')");
wait_status($node, $gone, 'failed', 1, 'the 410 delivery to fail');
is(sql("SELECT attempts, response_status FROM seriesweb.deliveries WHERE block_id = $gone"), '1|410',
	'410 fails after one attempt');
is(request_count($recv, '/gone'), 1, 'and is not retried');

# --- A timeout fails the attempt ---------------------------------------------
set_route($recv, '/slow-timeout', { status => 200, delay_ms => 3000 });
my $slow = webhook_series($node, 'slow-timeout', $recv->url('/slow-timeout'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'slow-timeout')");
wait_status($node, $slow, 'failed', 1, 'the timed-out delivery to fail');
is(sql("SELECT attempts, response_status IS NULL, last_error FROM seriesweb.deliveries WHERE block_id = $slow"),
	'3|t|timed out after 1000 ms (seriesweb.timeout)', 'three timed-out attempts');
cmp_ok(sql("SELECT max(duration_ms) FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
          WHERE d.block_id = $slow"), '<', 2000, 'each attempt stopped near the timeout');

# --- Connection refused (a closed port on 127.0.0.1) -------------------------
my $refused = webhook_series($node, 'refused', 'http://127.0.0.1:1/nothing');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'refused')");
wait_status($node, $refused, 'failed', 1, 'the refused delivery to fail');
like(sql("SELECT attempts || ' ' || last_error FROM seriesweb.deliveries WHERE block_id = $refused"),
	qr/^3 .*(refused|connect)/i, 'three attempts, connection refused');
# Viewers read block_stats: curl's message names host and port, its summary does not.
is(sql("SELECT last_error FROM seriesweb.block_stats WHERE block_id = $refused"),
	"Couldn't connect to server", 'block_stats has the error without host or port');

# --- Redirects are not followed ----------------------------------------------
set_route($recv, '/moved', { status => 302, headers => { Location => $recv->url('/elsewhere') } });
my $moved = webhook_series($node, 'moved', $recv->url('/moved'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'moved')");
wait_status($node, $moved, 'failed', 1, 'the redirected delivery to fail');
like(sql("SELECT last_error FROM seriesweb.deliveries WHERE block_id = $moved"),
	qr{^HTTP 302: redirect to http://127\.0\.0\.1:\d+/elsewhere not followed$}, 'the redirect is an error');
# A relative Location resolves against the block's URL, whose path may be
# its secret: viewers see the status only.
set_route($recv, '/secret-path/hook', { status => 301, headers => { Location => 'moved-here' } });
my $relative = webhook_series($node, 'relative', $recv->url('/secret-path/hook'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'relative')");
wait_status($node, $relative, 'failed', 1, 'the relative redirect to fail');
like(sql("SELECT last_error FROM seriesweb.deliveries WHERE block_id = $relative"),
	qr{/secret-path/moved-here not followed$}, 'authors read where it pointed');
wait_until($node, "SELECT failed FROM seriesweb.block_stats WHERE block_id = $relative", '1',
	'the failure in block_stats');
is(sql("SELECT last_error FROM seriesweb.block_stats WHERE block_id = $relative"),
	'HTTP 301: redirects are not followed', 'viewers read no URL');
is(request_count($recv, '/elsewhere'), 0, 'the Location was never requested');

# --- A placeholder stays in its path segment ---------------------------------
# The attribute ".." arrives as %2E%2E where the template put it: not as a
# ".." segment that takes the request to the parent path, /api/notify.
my $dots = webhook_series($node, 'dots', $recv->url('/api/users/{event.uid}/notify'));
sql(q{INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('u1', 'dots', '{"uid": ".."}')});
wait_status($node, $dots, 'sent', 1, 'the delivery with the attribute ".." to be sent');
is(request_count($recv, '/api/users/%2E%2E/notify'), 1, 'it arrived at the templated path');
is(request_count($recv, '/api/notify'), 0, 'not at the parent path');
# Dot segments the template writes itself are sent as written too.
my $literal = webhook_series($node, 'literal-dots', $recv->url('/lit/a/./b/../c'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'literal-dots')");
wait_status($node, $literal, 'sent', 1, 'the delivery to a path with dot segments to be sent');
is(request_count($recv, '/lit/a/./b/../c'), 1, 'the path was sent as the template wrote it');

# --- PUT, and a dropped connection retried -----------------------------------
# libcurl silently resends once when a reused connection turns out dead, so
# the receiver drops twice: at least one attempt sees the drop.
set_route($recv, '/put', { drop => 1 }, { drop => 1 }, { status => 204 });
my $put = sql(qq{
	SELECT seriesweb.add_webhook(series_id, 'put hook', '@{[ $recv->url('/put') ]}', after => block_id, method => 'PUT')
	  FROM seriesweb.blocks WHERE title = 'rule gone'});
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'gone')");
wait_status($node, $put, 'sent', 1, 'the PUT delivery to be sent');
my $puts = requests($recv, '/put');
is(scalar @$puts, 3, 'the receiver saw both drops and the answer');
is($puts->[2]{method}, 'PUT', 'with method PUT');
cmp_ok(sql("SELECT attempts FROM seriesweb.deliveries WHERE block_id = $put"), '>=', 2,
	'a dropped connection fails the attempt and is retried');
like(sql("SELECT a.error FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
         WHERE d.block_id = $put AND a.attempt = 1"), qr/\S/, 'the dropped attempt has its error');

# --- Keep-alive: one connection for many deliveries to one receiver ----------
my $ka = webhook_series($node, 'keepalive', $recv->url('/ka'));
for my $i (1 .. 5)
{
	sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('ka$i', 'keepalive')");
	wait_for_requests($recv, '/ka', $i, 30);
}
my %conns = map { $_->{conn} => 1 } @{ requests($recv, '/ka') };
cmp_ok(scalar(keys %conns), '<', 5, 'sequential deliveries reuse a kept-alive connection');

# --- A slow endpoint does not hold back a fast one ---------------------------
set_route($recv, '/slowpoke', { status => 200, delay_ms => 900 });
my $slowpoke = webhook_series($node, 'slowpoke', $recv->url('/slowpoke'));
my $fast = webhook_series($node, 'fastlane', $recv->url('/fastlane'));
sql("INSERT INTO seriesweb.events (user_id, name)
   SELECT 'sf' || i, CASE WHEN i % 2 = 0 THEN 'slowpoke' ELSE 'fastlane' END FROM generate_series(1, 20) i");
wait_status($node, $fast, 'sent', 10, 'the fast deliveries to be sent');
cmp_ok(sql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $slowpoke AND status = 'sent'"), '<', 10,
	'all fast deliveries were sent before the slow ones finished');
wait_status($node, $slowpoke, 'sent', 10, 'the slow deliveries to be sent');

# --- Wake on commit: receipt follows commit without polling ------------------
# Retries here are minutes apart, so nothing but the commit's wake-up can
# explain a fast receipt.
sql("ALTER SYSTEM SET seriesweb.retry_delays = '5min, 10min'; SELECT pg_reload_conf()");
my $wake = webhook_series($node, 'wake', $recv->url('/wake'));
my @latency;
for my $i (1 .. 10)
{
	my $at = sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('w$i', 'wake')
	            RETURNING extract(epoch FROM occurred_at)");
	my $recs = wait_for_requests($recv, '/wake', $i, 30);
	push @latency, $recs->[$i - 1]{time} - $at;
}
my @sorted = sort { $a <=> $b } @latency;
note(sprintf('commit -> receipt: median %.1f ms, max %.1f ms', 1000 * $sorted[4], 1000 * $sorted[-1]));
cmp_ok($sorted[-1], '<', 0.5, 'every delivery arrived within 500 ms of its transaction');

# --- SIGHUP: the reloaded retry delays apply to the next failure -------------
set_route($recv, '/later', { status => 500 });
my $later = webhook_series($node, 'later', $recv->url('/later'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'later')");
wait_until($node, "SELECT attempts FROM seriesweb.deliveries WHERE block_id = $later", '1',
	'the first attempt to be recorded');
is(sql("SELECT status, next_attempt_at - now() BETWEEN interval '4 min' AND interval '6 min'
          FROM seriesweb.deliveries WHERE block_id = $later"), 'pending|t',
	'the retry waits the reloaded 5min (plus jitter)');

done_testing();
