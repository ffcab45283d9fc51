#
# 030_testing.pl - test_webhook against a real receiver (success, error
# status, timeout, cancel, unknown and ambiguous users), signed deliveries
# verified the way a receiver would, replaying failures after an outage,
# and Retry-After.
#
use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_base64);
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('testing', conf => "seriesweb.timeout = '20s'\nseriesweb.retry_delays = '100ms, 3s'\n");

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to run');
sql(q{
	INSERT INTO seriesweb.companies VALUES ('c0m5en5e', 'CSense Ltd');
	INSERT INTO seriesweb.users (user_id, email, name, company_id) VALUES
		('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c0m5en5e'),
		('u2', 'sam@example.com', 'Sam Smith', NULL),
		('u3', 'sam.jones@example.com', 'Sam Smith', NULL);
});
my $series = sql("SELECT seriesweb.create_series('s')");
my $rule = sql("SELECT seriesweb.add_rule($series, 'r', 'go')");

sub hook
{
	my ($title, $path, $extra) = @_;
	$extra //= '';
	return sql("SELECT seriesweb.add_webhook($series, '$title', '@{[ $recv->url($path) ]}', after => $rule,
	            body => '{\"name\": \"{user.name}\"}' $extra)");
}

# --- test_webhook: the receiver's answer, nothing recorded ------------------
set_route($recv, '/ok', { status => 201, body => 'created', headers => { 'X-Receiver' => 'yes' } });
my $ok = hook('ok', '/ok');
is(sql("SELECT status_code, response_headers->>'X-Receiver', response_body, request_body,
               duration_ms > 0, error IS NULL
          FROM seriesweb.test_webhook($ok, 'lonnie\@example.com')"),
	'201|yes|created|{"name":"Lonnie Lynn"}|t|t', 'test_webhook returns the answer and the request body');
my $got = requests($recv, '/ok');
is(scalar @$got, 1, 'the receiver got the test request');
is($got->[0]{body}, '{"name":"Lonnie Lynn"}', 'with the rendered body');
is(sql("SELECT count(*) FROM seriesweb.deliveries"), '0', 'a test enqueues nothing');
is(sql("SELECT reached, sent, failed, pending FROM seriesweb.block_stats WHERE block_id = $ok"),
	'0|0|0|0', 'and changes no statistics');

set_route($recv, '/err', { status => 500, body => 'oops' });
my $err = hook('err', '/err');
is(sql("SELECT status_code, response_body, error FROM seriesweb.test_webhook($err, 'u1')"),
	'500|oops|HTTP 500', 'an error status is reported with its body');

# A test sends the path as the delivery would: a ".." value as %2E%2E, the
# template's own dot segments as written.
my $dots = hook('dots', '/t/{user.nope | fallback: ".."}/a/../b');
is(sql("SELECT status_code, error IS NULL FROM seriesweb.test_webhook($dots, 'u1')"), '200|t',
	'test_webhook sends a path with dot segments');
is(request_count($recv, '/t/%2E%2E/a/../b'), 1, 'to the path as templated');

# Unknown and ambiguous users: errors that list candidates.
my ($rc, $out, $stderr) = $node->psql('postgres', "SELECT * FROM seriesweb.test_webhook($ok, 'Sam Smith')");
like($stderr, qr/ambiguous: 2 users match.*u2 \(sam\@example\.com\), u3 \(sam\.jones\@example\.com\)/s,
	'an ambiguous test user lists the candidates');
($rc, $out, $stderr) = $node->psql('postgres', "SELECT * FROM seriesweb.test_webhook($ok, 'sam')");
like($stderr, qr/no user has the id, email or name "sam".*u2 \(sam\@example\.com\)/s,
	'an unknown test user lists near matches');
is(request_count($recv, '/ok'), 1, 'neither sent anything');

# A timeout ends the test with the timeout as the error.
set_route($recv, '/slow', { status => 200, delay_ms => 30000 });
my $slow = hook('slow', '/slow');
sql("ALTER SYSTEM SET seriesweb.timeout = '1s'; SELECT pg_reload_conf()");
is(sql("SELECT status_code IS NULL, error FROM seriesweb.test_webhook($slow, 'u1')"),
	't|timed out after 1000 ms (seriesweb.timeout)', 'a slow receiver times out');
sql("ALTER SYSTEM RESET seriesweb.timeout; SELECT pg_reload_conf()");

# pg_cancel_backend interrupts a test at once (the receiver would take 30 s).
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, "\\echo started\nSELECT * FROM seriesweb.test_webhook($slow, 'u1');\n");
wait_until($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE '%test_webhook%'
                   AND state = 'active'", '1', 'the test request to be in flight');
my $t0 = time();
sql("SELECT pg_cancel_backend($pid)");
my (undef, $failed) = $bg->query('SELECT 1');
my $elapsed = time() - $t0;
like($bg->{stderr}, qr/canceling statement due to user request/, 'the test was canceled');
cmp_ok($elapsed, '<', 3, 'promptly');
$bg->quit;

# statement_timeout interrupts it too.
($rc, $out, $stderr) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; SELECT * FROM seriesweb.test_webhook($slow, 'u1')");
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout interrupts a test');

# --- Signed deliveries, verified as a receiver would --------------------------
my $secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
set_route($recv, '/signed', { status => 500 }, { status => 200 });
my $signed = hook('signed', '/signed', ", secret => '$secret'");
sql("SELECT seriesweb.set_live($series)");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'go')");
wait_until($node, "SELECT status FROM seriesweb.deliveries WHERE block_id = $signed", 'sent',
	'the signed delivery to be sent');
my $key = decode_base64(substr($secret, length('whsec_')));
my @signed = @{ requests($recv, '/signed') };
is(scalar @signed, 2, 'a 500 then a 200');
for my $i (0, 1)
{
	my %h = map { lc($_->[0]) => $_->[1] } @{ $signed[$i]{headers} };
	my $mac = hmac_sha256_base64("$h{'webhook-id'}.$h{'webhook-timestamp'}.$signed[$i]{body}", $key);
	$mac .= '=' while length($mac) % 4;
	is($h{'webhook-signature'}, "v1,$mac", "attempt @{[ $i + 1 ]}: the signature verifies");
	cmp_ok(abs($h{'webhook-timestamp'} - time()), '<', 60, "attempt @{[ $i + 1 ]}: the timestamp is now");
	$signed[$i]{id} = $h{'webhook-id'};
}
is($signed[0]{id}, $signed[1]{id}, 'webhook-id is the same across the retry');
like($signed[0]{id}, qr/^msg_\w+$/, 'and looks like a message id');
unlike(sql("SELECT string_agg(coalesce(error, '') || coalesce(response_body, ''), '') FROM seriesweb.delivery_attempts")
	  . sql("SELECT string_agg(array_to_string(headers, ' '), ' ') FROM seriesweb.deliveries"),
	qr/MfKQ9r8G/, 'the secret is stored nowhere but in the block');

# test_webhook signs too.
my $test_headers = requests($recv, '/signed');
sql("SELECT * FROM seriesweb.test_webhook($signed, 'u1')");
my %th = map { lc($_->[0]) => $_->[1] } @{ requests($recv, '/signed')->[-1]{headers} };
like($th{'webhook-signature'}, qr/^v1,/, 'test requests are signed');

# --- An outage, then retry_failed --------------------------------------------
set_route($recv, '/outage', { status => 503 });
my $outage = hook('outage', '/outage');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'go'), ('u3', 'go')");
wait_until($node, "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $outage AND status = 'failed'", '2',
	'the deliveries to fail during the outage');
wait_until($node, "SELECT failed FROM seriesweb.block_stats WHERE block_id = $outage", '2', 'failed = 2');
set_route($recv, '/outage', { status => 200 });
is(sql("SELECT seriesweb.retry_failed($outage)"), '2', 'retry_failed puts both back');
wait_until($node, "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $outage AND status = 'sent'", '2',
	'the retried deliveries to be sent');
is(sql("SELECT string_agg(a.attempt::text, ',' ORDER BY a.attempt) FROM seriesweb.delivery_attempts a
         JOIN seriesweb.deliveries d USING (delivery_id) WHERE d.block_id = $outage AND d.user_id = 'u2'"),
	'1,2,3,4', 'attempt numbers keep counting');
wait_until($node, "SELECT sent || '|' || failed || '|' || pending FROM seriesweb.block_stats WHERE block_id = $outage",
	'2|0|0', 'block_stats: a failed delivery retried and sent counts as sent');

# --- Retry-After on 429/503 ---------------------------------------------------
sub attempt_gaps
{
	my ($block) = @_;
	my @t = split /\n/, sql("SELECT extract(epoch FROM a.started_at) FROM seriesweb.delivery_attempts a
	                         JOIN seriesweb.deliveries d USING (delivery_id)
	                         WHERE d.block_id = $block ORDER BY a.attempt");
	return $t[1] - $t[0];
}

set_route($recv, '/busy', { status => 429, headers => { 'Retry-After' => '1' } }, { status => 200 });
my $busy = hook('busy', '/busy');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('b1', 'go')");
wait_until($node, "SELECT status FROM seriesweb.deliveries WHERE block_id = $busy", 'sent', 'the 429 delivery');
my $gap = attempt_gaps($busy);
cmp_ok($gap, '>=', 0.95, "Retry-After: 1 was honoured over the 100ms delay ($gap s)");
cmp_ok($gap, '<', 2.9, 'without waiting the next configured delay');

set_route($recv, '/capped', { status => 503, headers => { 'Retry-After' => '3600' } }, { status => 200 });
my $capped = hook('capped', '/capped');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('b2', 'go')");
wait_until($node, "SELECT status FROM seriesweb.deliveries WHERE block_id = $capped", 'sent', 'the capped delivery');
$gap = attempt_gaps($capped);
cmp_ok($gap, '>=', 2.95, "Retry-After: 3600 is capped by the longest retry delay, 3s ($gap s)");
cmp_ok($gap, '<', 10, 'not an hour');

my @when = gmtime(time() + 2);
my $date = sprintf('%s, %02d %s %04d %02d:%02d:%02d GMT', (qw(Sun Mon Tue Wed Thu Fri Sat))[ $when[6] ],
	$when[3], (qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec))[ $when[4] ], $when[5] + 1900, @when[ 2, 1, 0 ]);
set_route($recv, '/dated', { status => 503, headers => { 'Retry-After' => $date } }, { status => 200 });
my $dated = hook('dated', '/dated');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('b3', 'go')");
wait_until($node, "SELECT status FROM seriesweb.deliveries WHERE block_id = $dated", 'sent', 'the dated delivery');
cmp_ok(attempt_gaps($dated), '>=', 0.5, 'Retry-After as an HTTP date is honoured');

done_testing();
