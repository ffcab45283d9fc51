#
# 040_guard.pl - the destination guard and the request rules, end to end.
#
# With seriesweb.allowed_networks empty, deliveries to the loopback receiver
# are refused at connect time (by address and by name, so after DNS), each
# attempt fails with the refusal, and the receiver gets nothing.  Allowing
# 127.0.0.1/32 with a reload lets new deliveries through.  Then: a user's
# attribute with a line break never becomes a header, and a body over
# seriesweb.max_body_size fails its delivery at enqueue.
#
# Every request in this test goes to 127.0.0.1, or is refused before any
# socket is opened; no other address is ever connected to.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('guard', conf => "seriesweb.allowed_networks = ''\n");
my $port = $recv->port;

$node->safe_psql('postgres', 'CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to run');

sub sql { return $node->safe_psql('postgres', shift) }


# Reload and wait until new sessions see $value: the postmaster has read the
# file, and signalled the worker with the same SIGHUP.
sub reload_setting
{
	my ($name, $value) = @_;
	sql("ALTER SYSTEM SET $name = '$value'");
	sql("SELECT pg_reload_conf()");
	wait_until($node, "SELECT current_setting('$name') = '$value'", 't', "$name = '$value'");
}

my $refusal = 'refused: loopback address (allow it with seriesweb.allowed_networks)';

# --- allowed_networks empty: the loopback receiver is refused ---------------
my $by_addr = webhook_series($node, 'by-address', $recv->url('/by-address'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'by-address')");
wait_status($node, $by_addr, 'failed', 1, 'the delivery to 127.0.0.1 to fail');
is(sql("SELECT attempts || ' ' || last_error FROM seriesweb.deliveries WHERE block_id = $by_addr"),
	"3 destination 127.0.0.1 $refusal", 'refused on each of 3 attempts, naming the address and the setting');
is(sql("SELECT string_agg(a.attempt || ':' || coalesce(a.response_status::text, '-') || ':' || a.error, ',' ORDER BY a.attempt)
       FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
      WHERE d.block_id = $by_addr"),
	join(',', map { "$_:-:destination 127.0.0.1 $refusal" } 1 .. 3), 'every attempt row has the refusal');

# A name is checked by what it resolves to: "localhost" is loopback.
my $by_name = webhook_series($node, 'by-name', "http://localhost:$port/by-name");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'by-name')");
wait_status($node, $by_name, 'failed', 1, 'the delivery to localhost to fail');
like(sql("SELECT attempts || ' ' || last_error FROM seriesweb.deliveries WHERE block_id = $by_name"),
	qr/^3 destination (127\.0\.0\.1|::1) \Q$refusal\E$/, 'a name that resolves to loopback is refused');

# An IPv6 encoding of 127.0.0.1 is refused as what it embeds.
my $mapped = webhook_series($node, 'mapped', "http://[::ffff:127.0.0.1]:$port/mapped");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'mapped')");
wait_status($node, $mapped, 'failed', 1, 'the delivery to ::ffff:127.0.0.1 to fail');
is(sql("SELECT last_error FROM seriesweb.deliveries WHERE block_id = $mapped"),
	'destination ::ffff:127.0.0.1 refused: loopback address 127.0.0.1 in IPv4-mapped form '
	  . '(allow it with seriesweb.allowed_networks)', 'the IPv4-mapped form is refused as loopback');

is(request_count($recv), 0, 'the receiver got nothing');
wait_until($node, "SELECT failed FROM seriesweb.block_stats WHERE block_id = $by_addr", '1', 'block_stats failed = 1');
is(sql("SELECT last_error FROM seriesweb.block_stats WHERE block_id = $by_addr"),
	"destination $refusal", 'block_stats shows the refusal, without the address');

# --- allowed_networks = 127.0.0.1/32: new deliveries are sent ----------------
reload_setting('seriesweb.allowed_networks', '127.0.0.1/32');
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'by-address')");
wait_status($node, $by_addr, 'sent', 1, 'the allowed delivery to be sent');
is(request_count($recv, '/by-address'), 1, 'the receiver got the allowed delivery');
is(sql("SELECT user_id || ' ' || status FROM seriesweb.deliveries WHERE block_id = $by_addr ORDER BY delivery_id"),
	"u1 failed\nu2 sent", 'the refused delivery stays failed; the new one is sent');

# A name with several addresses: ::1 is still refused, 127.0.0.1 is used.
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'by-name')");
wait_status($node, $by_name, 'sent', 1, 'the delivery to localhost to be sent');
is(request_count($recv, '/by-name'), 1, 'localhost reached the receiver through 127.0.0.1');

# --- A line break in the data never becomes a header -------------------------
my $hdr = webhook_series($node, 'header', $recv->url('/header'),
	headers => '{"Content-Type": "application/json", "X-Name": "{user.name}"}');
my $body = webhook_series($node, 'body', $recv->url('/body'), body => '{"name": "{user.name}"}');
sql(q{INSERT INTO seriesweb.users (user_id, name) VALUES ('eve', E'Eve\r\nX-Injected: 1'), ('bob', 'Bob')});
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('eve', 'header'), ('bob', 'header'), ('eve', 'body')");
wait_status($node, $hdr, 'sent', 1, "Bob's header delivery to be sent");
wait_status($node, $body, 'sent', 1, "Eve's body delivery to be sent");
is(sql("SELECT user_id || ' ' || status || ' ' || attempts || ' ' || coalesce(last_error, '-')
          FROM seriesweb.deliveries WHERE block_id = $hdr ORDER BY user_id"),
	"bob sent 1 -\neve failed 0 rendered value of header \"X-Name\" contains CR, LF or NUL",
	"Eve's header delivery failed at enqueue, with the reason");
my $got = requests($recv);
my @injected = grep { grep { lc($_->[0]) eq 'x-injected' } @{ $_->{headers} } } @$got;
is(scalar @injected, 0, 'no request carried an X-Injected header');
my $named = requests($recv, '/header');
is(scalar @$named, 1, 'the header block sent one request');
my %h = map { lc($_->[0]) => $_->[1] } @{ $named->[0]{headers} };
is($h{'x-name'}, 'Bob', "with Bob's name in X-Name");
my $bodies = requests($recv, '/body');
is($bodies->[0]{body}, '{"name":"Eve\r\nX-Injected: 1"}', 'in a JSON body the line break is escaped');

# --- seriesweb.max_body_size, reloaded: a bigger body fails at enqueue -------
reload_setting('seriesweb.max_body_size', '1kB');
my $big = webhook_series($node, 'big', $recv->url('/big'), body => '{"blob": "{user.blob}"}');
sql(q{INSERT INTO seriesweb.users (user_id, attributes) VALUES
	('small', '{"blob": "fits"}'), ('large', jsonb_build_object('blob', repeat('z', 2000)))});
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('small', 'big'), ('large', 'big')");
wait_status($node, $big, 'sent', 1, 'the small body to be sent');
is(sql("SELECT user_id || ' ' || status || ' ' || attempts || ' ' || coalesce(last_error, '-')
          FROM seriesweb.deliveries WHERE block_id = $big ORDER BY user_id"),
	"large failed 0 rendered body is larger than seriesweb.max_body_size (1024 bytes)\nsmall sent 1 -",
	'the large body failed at enqueue, naming the size and the setting');
is(request_count($recv, '/big'), 1, 'only the small body reached the receiver');

# --- Narrowing allowed_networks also stops reusing open connections ----------
# The deliveries above left kept-alive connections to the receiver; after
# the reload they must not carry another request.
reload_setting('seriesweb.allowed_networks', '');
my $after = webhook_series($node, 'narrowed', $recv->url('/narrowed'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('n1', 'narrowed')");
wait_status($node, $after, 'failed', 1, 'the delivery after narrowing to fail');
is(request_count($recv, '/narrowed'), 0, 'no request went out on an old connection');
like(sql("SELECT last_error FROM seriesweb.deliveries WHERE block_id = $after"), qr/\Q$refusal\E/,
	'it was refused by the guard');

done_testing();
