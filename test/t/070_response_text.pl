#
# 070_response_text.pl - what a receiver answers is kept as valid text in the
# database encoding, whatever bytes it sent: a body cut by
# seriesweb.response_body_limit loses a whole character, never half of one;
# invalid bytes and NUL become U+FFFD (in a UTF8 database like this one; "?"
# in any other, which test/fuzz's "response" target checks); response
# headers the same.  Shown for a worker delivery
# (delivery_attempts.response_body) and for test_webhook().  And the other
# way: header values go out exactly as rendered ("abc:" stays "abc:", an
# empty value is sent empty).
#
use strict;
use warnings;

use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('text', conf => "seriesweb.response_body_limit = 16\n",
	initdb => [ '--encoding=UTF8', '--locale=C' ]);

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to run');
sql("INSERT INTO seriesweb.users (user_id, email, name) VALUES ('u1', 'u1\@example.com', 'U One')");

# Whether $value (an SQL expression over the rows of $from) is valid text,
# the way a dump and restore would find out: convert_from verifies.
sub survives_conversion
{
	my ($value, $from, $db) = @_;
	my ($rc, $out, $err) = $node->psql($db // 'postgres',
		"SELECT bool_and(convert_from(convert_to($value, 'UTF8'), 'UTF8') = $value) FROM $from");
	return $rc == 0 && $out eq 't' ? 1 : $err;
}

# The bodies, limit 16 bytes.  U+20AC (E2 82 AC) begins at byte 16 and
# would be cut after its first byte; FF, NUL and the truncated E2 82 are
# not text, and each of those bytes becomes U+FFFD (EF BF BD).
my $euro   = "\xe2\x82\xac";
my $fffd   = "\xef\xbf\xbd";
my %answer = (
	'/cut' => { body => ('x' x 15) . $euro . 'tail', kept => 'x' x 15 },
	'/bad' => { body => "a\xffb\x00c\xe2\x82d$euro", kept => "a${fffd}b${fffd}c$fffd${fffd}d" },
);

# --- Worker deliveries: delivery_attempts.response_body ----------------------
for my $path (sort keys %answer)
{
	my $event = 'w' . substr($path, 1);
	set_route($recv, $path, { status => 200, body => $answer{$path}{body} });
	my $block = webhook_series($node, $event, $recv->url($path));
	sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', '$event')");
	wait_status($node, $block, 'sent', 1, "the delivery to $path");
	my $from = "seriesweb.delivery_attempts JOIN seriesweb.deliveries USING (delivery_id)
	            WHERE block_id = $block";
	is(survives_conversion('response_body', $from), 1, "worker, $path: the stored body is valid text");
	is(sql("SELECT response_body FROM $from"), $answer{$path}{kept},
		"worker, $path: it holds what the receiver sent, clipped at a character boundary");
	cmp_ok(sql("SELECT octet_length(response_body) FROM $from"), '<=', 16,
		"worker, $path: within seriesweb.response_body_limit");
}

# --- test_webhook: response_body and response_headers ------------------------
my $series = sql("SELECT seriesweb.create_series('tests')");
my $rule = sql("SELECT seriesweb.add_rule($series, 'r', 'tests')");

sub hook
{
	my ($path, $headers) = @_;
	$headers //= '{"Content-Type": "application/json"}';
	return sql("SELECT seriesweb.add_webhook($series, 'hook $path', '@{[ $recv->url($path) ]}',
	            after => $rule, headers => '$headers')");
}

for my $path (sort keys %answer)
{
	set_route($recv, "/t$path",
		{ status => 200, body => $answer{$path}{body},
		  headers_base64 => { 'X-Bad' => encode_base64("ok\xff\xc3 $euro", '') } });
	my $from = "seriesweb.test_webhook(@{[ hook(qq{/t$path}) ]}, 'u1')";
	is(survives_conversion('response_body', $from), 1, "test_webhook, $path: the body is valid text");
	is(survives_conversion("response_headers->>'X-Bad'", $from), 1,
		"test_webhook, $path: so is a header value with invalid bytes");
	is(sql("SELECT response_body || '|' || (response_headers->>'X-Bad') FROM $from"),
		"$answer{$path}{kept}|ok$fffd$fffd $euro",
		"test_webhook, $path: what the receiver sent, clipped at a character boundary");
}

# --- Header values go out as rendered -----------------------------------------
my $headers = '{"Content-Type": "application/json", "X-Colon": "abc:", "X-Semicolon": "abc;",
                "X-Empty": "", "X-Missing": "{user.nope}", "User-Agent": ""}';

# name => [values] of the last request to $path.
sub received_headers
{
	my ($path) = @_;
	my $got = wait_for_requests($recv, $path, 1, 30);
	my %h;
	push @{ $h{ lc $_->[0] } }, $_->[1] for @{ $got->[-1]{headers} };
	return \%h;
}

sub check_headers
{
	my ($who, $h) = @_;
	is_deeply($h->{'x-colon'}, ['abc:'], "$who: a value ending in ':' arrives as it is");
	is_deeply($h->{'x-semicolon'}, ['abc;'], "$who: so does one ending in ';'");
	is_deeply([ $h->{'x-empty'}, $h->{'x-missing'} ], [ [''], [''] ],
		"$who: an empty value, literal or rendered, arrives empty");
	is_deeply($h->{'user-agent'}, [''],
		"$who: an empty User-Agent is the block's, sent instead of seriesweb's");
}

my $block = webhook_series($node, 'hdr', $recv->url('/headers'), headers => $headers);
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'hdr')");
wait_status($node, $block, 'sent', 1, 'the delivery with headers');
check_headers('worker', received_headers('/headers'));

sql("SELECT * FROM seriesweb.test_webhook(@{[ hook('/headers-test', $headers) ]}, 'u1')");
check_headers('test_webhook', received_headers('/headers-test'));

done_testing();
