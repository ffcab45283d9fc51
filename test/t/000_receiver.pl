#
# 000_receiver.pl - tests the test receiver itself (test/receiver.pl), before
# any seriesweb test relies on it.  No PostgreSQL node is needed.
#
# Each block shows one behaviour the webhook tests depend on: what gets recorded,
# scripted answers (status sequences, delays, headers, drops), HTTP/1.1 framing
# (keep-alive, Connection: close, chunked bodies, 100-continue, pipelining),
# many connections at once, robustness to clients that vanish mid-request, and
# that stop() leaves no receiver behind.  Waiting is done on events (responses,
# recorded counts), never on fixed sleeps.
#
use strict;
use warnings;

use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);
use Test::More;

use SeriesWebTest;

my $recv = start_receiver();
like($recv->port, qr/^\d+$/, 'receiver reports its port');
is($recv->url('/x'), 'http://127.0.0.1:' . $recv->port . '/x', 'url() builds a loopback URL');

# Raw-socket helpers, for what HTTP::Tiny hides: header order, framing and
# connection reuse.

sub raw_connect
{
	return IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $recv->port,
		Timeout  => 10,
	) || die "cannot connect to receiver: $@";
}

# Reads more bytes into $$buf; false on EOF.  Dies instead of hanging forever.
sub read_more
{
	my ($sock, $buf) = @_;
	IO::Select->new($sock)->can_read(10) or die 'receiver did not answer within 10s';
	my $n = sysread($sock, $$buf, 65536, length $$buf);
	die "read failed: $!" unless defined $n;
	return $n;
}

# Reads one response from $sock; $buf keeps bytes of pipelined responses that
# arrived early.  Returns undef if the connection closed first.
sub read_response
{
	my ($sock, $buf) = @_;
	$buf //= \my $local;
	$$buf //= '';
	while (index($$buf, "\r\n\r\n") < 0)
	{
		read_more($sock, $buf) or return undef;
	}
	my $head = substr($$buf, 0, index($$buf, "\r\n\r\n") + 4, '');
	my ($status_line, @lines) = split /\r\n/, $head;
	my ($status) = $status_line =~ m{^HTTP/1\.1 (\d{3}) };
	my %h = map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k => $v) } @lines;
	my $len = $h{'content-length'} // 0;
	while (length $$buf < $len)
	{
		read_more($sock, $buf) or return undef;
	}
	return { status => $status, headers => \%h, body => substr($$buf, 0, $len, '') };
}

# ---------------------------------------------------------------------------
note 'an unconfigured path answers 200 {"ok":true} and the request is recorded';
{
	my $body = qq({"id":1,"name":"caf\xc3\xa9"});
	my $res  = HTTP::Tiny->new->post(
		$recv->url('/plain?x=1&y=2'),
		{ content => $body, headers => { 'Content-Type' => 'application/json', 'X-Test' => 'abc' } });
	is($res->{status},                  200,           'default status is 200');
	is($res->{content},                 '{"ok":true}', 'default body');
	is($res->{headers}{'content-type'}, 'application/json', 'default Content-Type');

	my $recs = requests($recv, '/plain');
	is(scalar @$recs, 1, 'one record for the path, found without its query string');
	my $r = $recs->[0];
	is($r->{method}, 'POST',           'record has the method');
	is($r->{path},   '/plain?x=1&y=2', 'record path keeps the query string');
	is($r->{body},   $body,            'record body is the exact bytes sent');
	is($r->{seq},    1,                'first record has seq 1');
	is($r->{status}, 200,              'record has the status answered');
	ok(!$r->{dropped}, 'record is not marked dropped');
	ok(!defined $r->{response_index}, 'no route, so no response index');
	like($r->{time}, qr/^\d{10}\.\d+$/, 'time is epoch seconds with a fraction');
	ok(abs($r->{time} - time()) < 60, 'time is close to now');
	ok((grep { $_->[0] eq 'X-Test' && $_->[1] eq 'abc' } @{ $r->{headers} }),
		'custom header recorded as a [name, value] pair');
}

note 'headers are recorded in arrival order with their spelling';
{
	my $sock = raw_connect();
	print $sock "GET /order HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nX-A: 1\r\nx-Mixed-CASE:  v v \r\n\r\n";
	is(read_response($sock)->{status}, 200, 'raw request answered');
	is_deeply(requests($recv, '/order')->[0]{headers},
		[ [ 'Host', 'h' ], [ 'X-B', '2' ], [ 'X-A', '1' ], [ 'x-Mixed-CASE', 'v v' ] ],
		'header pairs in order, names as sent, values trimmed');
}

note 'bodies: exact bytes in every case, readable text when valid UTF-8';
{
	my $binary = "caf\xc3\xa9 \xff\x00end\r\n";
	HTTP::Tiny->new->post($recv->url('/bytes'), { content => $binary });
	HTTP::Tiny->new->post($recv->url('/text'), { content => qq({"s":"caf\xc3\xa9 \\"q\\"\n"}) });
	is(requests($recv, '/bytes')->[0]{body}, $binary, 'invalid UTF-8 body kept byte for byte');

	my $raw = HTTP::Tiny->new->get($recv->url('/_control/requests?path=/bytes'));
	ok(!defined decode_json($raw->{content})->[0]{body}, 'raw JSON: body is null when not UTF-8');
	$raw = HTTP::Tiny->new->get($recv->url('/_control/requests?path=/text'));
	is(decode_json($raw->{content})->[0]{body}, qq({"s":"caf\x{e9} \\"q\\"\n"}),
		'raw JSON: a UTF-8 body reads as text');
}

note 'a route answers its responses in order, then repeats the last';
{
	set_route($recv, '/seq', { status => 500 }, { status => 500 }, { status => 200, body => 'fine' });
	my $ua = HTTP::Tiny->new;
	my @got = map { $ua->get($recv->url('/seq'))->{status} } 1 .. 5;
	is_deeply(\@got, [ 500, 500, 200, 200, 200 ], 'statuses 500, 500, 200, then 200 repeated');
	is($ua->get($recv->url('/seq'))->{content}, 'fine', 'configured body returned');
	is_deeply([ map { $_->{response_index} } @{ requests($recv, '/seq') } ],
		[ 0, 1, 2, 2, 2, 2 ], 'records name the response used');

	set_route($recv, '/seq', { status => 503 });
	is($ua->get($recv->url('/seq'))->{status}, 503, 'setting a route again resets its position');
}

note 'a delayed answer does not hold up other connections';
{
	set_route($recv, '/slow', { delay_ms => 300, body => 'slow' });
	my $slow = raw_connect();
	print $slow "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n";
	my $slow_rec = wait_for_requests($recv, '/slow', 1, 10)->[0];

	my $fast = raw_connect();
	print $fast "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n";
	my $fast_res  = read_response($fast);
	my $fast_done = time();
	my $slow_res  = read_response($slow);
	my $slow_done = time();

	is($fast_res->{status}, 200,    'fast path answered');
	is($slow_res->{body},   'slow', 'slow path answered');
	ok($fast_done < $slow_done, 'fast answer arrived before the slow one');
	cmp_ok($fast_done, '<', $slow_rec->{time} + 0.3,
		'fast answer arrived while the slow one was still being delayed');
	cmp_ok($slow_done - $slow_rec->{time}, '>=', 0.3, 'slow answer waited its 300 ms');
}

note 'pipelined requests are answered in order, even behind a delay';
{
	set_route($recv, '/pipe-slow', { delay_ms => 100, body => 'first' });
	my $sock = raw_connect();
	print $sock "GET /pipe-slow HTTP/1.1\r\nHost: h\r\n\r\nGET /pipe-fast HTTP/1.1\r\nHost: h\r\n\r\n";
	my $buf = '';
	is(read_response($sock, \$buf)->{body}, 'first',         'first request answered first');
	is(read_response($sock, \$buf)->{body}, '{"ok":true}',   'second request answered second');
}

note 'configured headers are sent: Retry-After, Location';
{
	set_route($recv, '/busy', { status => 503, headers => { 'Retry-After' => '2' } });
	set_route($recv, '/moved',
		{ status => 302, headers => { Location => 'http://127.0.0.1:1/elsewhere' }, body => '' });
	my $ua = HTTP::Tiny->new(max_redirect => 0);

	my $res = $ua->get($recv->url('/busy'));
	is($res->{status},                 503, '503 from the route');
	is($res->{headers}{'retry-after'}, '2', 'Retry-After header sent');
	$res = $ua->get($recv->url('/moved'));
	is($res->{status},              302,                            '302 from the route');
	is($res->{headers}{location},   'http://127.0.0.1:1/elsewhere', 'Location header sent');
	is($res->{headers}{'content-length'}, 0, 'empty body has Content-Length 0');
}

note 'headers_base64 sends exact bytes, invalid UTF-8 included';
{
	set_route($recv, '/raw-header',
		{ headers => { 'X-Text' => "caf\x{e9}" },
		  headers_base64 => { 'X-Raw' => encode_base64("a\xff\xfe:", '') } });
	my $sock = raw_connect();
	print {$sock} "GET /raw-header HTTP/1.1\r\nHost: x\r\n\r\n";
	my $res = read_response($sock);
	is($res->{headers}{'x-raw'},  "a\xff\xfe:", 'the raw bytes are sent as they are');
	is($res->{headers}{'x-text'}, "caf\xc3\xa9", 'text values are sent as UTF-8');
	my $bad = HTTP::Tiny->new->put($recv->url('/_control/routes/raw-bad'),
		{ content => '{"responses":[{"headers_base64":{"X-Raw":"YQ1i"}}]}' });
	is($bad->{status}, 400, 'a raw value with CR or LF is refused');
}

note 'drop closes the connection without an answer, after its delay';
{
	set_route($recv, '/drop', { drop => 1, delay_ms => 150 });
	my $start = time();
	my $res   = HTTP::Tiny->new->post($recv->url('/drop'), { content => 'x' });
	my $took  = time() - $start;
	is($res->{status}, 599, 'client sees no answer (HTTP::Tiny status 599)');
	cmp_ok($took, '>=', 0.15, 'drop waited delay_ms first');

	my $recs = requests($recv, '/drop');
	is(scalar @$recs, 1, 'dropped request recorded once');
	ok($recs->[0]{dropped}, 'record marked dropped');
	ok(!defined $recs->[0]{status}, 'dropped record has no status');
	is($recs->[0]{response_index}, 0, 'dropped record names its response');
}

note 'keep-alive reuses a connection; Connection: close is honoured';
{
	my $ua = HTTP::Tiny->new(keep_alive => 1);
	$ua->get($recv->url('/ka')) for 1 .. 2;
	HTTP::Tiny->new->get($recv->url('/ka'));
	my @conn = map { $_->{conn} } @{ requests($recv, '/ka') };
	is($conn[0], $conn[1], 'two requests on one client share a connection');
	isnt($conn[2], $conn[0], 'another client gets another connection');

	my $sock = raw_connect();
	print $sock "GET /close HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	my $buf = '';
	my $res = read_response($sock, \$buf);
	is($res->{headers}{connection}, 'close', 'answer says Connection: close');
	is(read_more($sock, \$buf), 0, 'receiver closed the connection after answering');

	$sock = raw_connect();
	print $sock "GET /http10 HTTP/1.0\r\n\r\n";
	$buf = '';
	is(read_response($sock, \$buf)->{headers}{connection}, 'close', 'HTTP/1.0 closes by default');
	is(read_more($sock, \$buf), 0, '... and the connection is closed');

	$sock = raw_connect();
	print $sock "GET /http10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	$buf = '';
	is(read_response($sock, \$buf)->{headers}{connection}, 'keep-alive', 'HTTP/1.0 keep-alive honoured');
	print $sock "GET /http10 HTTP/1.0\r\n\r\n";
	is(read_response($sock, \$buf)->{status}, 200, '... and the connection serves another request');
}

note 'chunked request bodies are decoded, and framing survives for the next request';
{
	my $sock = raw_connect();
	print $sock "POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	  . "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
	  . "POST /chunked HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
	my $buf = '';
	is(read_response($sock, \$buf)->{status}, 200, 'chunked request answered');
	is(read_response($sock, \$buf)->{status}, 200, 'following request on the same connection answered');
	my $recs = requests($recv, '/chunked');
	is($recs->[0]{body}, 'hello, world', 'chunks joined, extensions and trailer dropped');
	is($recs->[1]{body}, 'abc',          'next body read with Content-Length');
	is($recs->[0]{conn}, $recs->[1]{conn}, 'both on one connection');
}

note 'Expect: 100-continue gets an interim answer before the body is sent';
{
	my $sock = raw_connect();
	print $sock "POST /expect HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
	my $buf = '';
	read_more($sock, \$buf) until length $buf >= 25;
	is(substr($buf, 0, 25, ''), "HTTP/1.1 100 Continue\r\n\r\n", '100 Continue received');
	print $sock 'data';
	is(read_response($sock, \$buf)->{status}, 200, 'final answer after the body');
	is(requests($recv, '/expect')->[0]{body}, 'data', 'body recorded');
}

note 'clients vanishing mid-request leave no record and no harm';
{
	for my $partial ("POST /partial HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc",
		"POST /partial HTTP/1.1\r\nHost: h\r\nTransfer-Enc", "POST /partial HTTP/1.1\r\nHost: h\r\n"
		. "Transfer-Encoding: chunked\r\n\r\n10\r\nshort")
	{
		my $sock = raw_connect();
		print $sock $partial;
		close $sock;
	}
	is(HTTP::Tiny->new->get($recv->url('/_control/health'))->{content}, '{"ok":true}',
		'receiver healthy after abandoned requests');
	is(request_count($recv, '/partial'), 0, 'incomplete requests are not recorded');
}

note '200 connections at once are all served';
{
	my @socks = map { raw_connect() } 1 .. 200;
	print {$socks[$_]} "GET /many/$_ HTTP/1.1\r\nHost: h\r\n\r\n" for 0 .. $#socks;
	my $ok = grep { (read_response($_)->{status} // 0) == 200 } @socks;
	is($ok, 200, 'every one of 200 concurrent connections answered');
}

note 'the count endpoint, and clearing';
{
	clear_requests($recv);
	is(request_count($recv), 0, 'no records after clear_requests');
	my $ua = HTTP::Tiny->new;
	$ua->get($recv->url('/count/a')) for 1 .. 3;
	$ua->get($recv->url('/count/b?q=1'));
	is(request_count($recv, '/count/a'), 3, 'count for one path');
	is(request_count($recv, '/count/b'), 1, 'count matches a path without its query string');
	is(request_count($recv),             4, 'count for all paths');
	cmp_ok(requests($recv, '/count/a')->[0]{seq}, '>', 200, 'seq keeps counting after a clear');
	is(scalar @{ requests($recv) }, 4, 'requests() without a path returns all records');
	is(scalar @{ wait_for_requests($recv, '/count/a', 3, 5) }, 3, 'wait_for_requests returns at once when satisfied');

	my $start = time();
	is(scalar @{ wait_for_requests($recv, '/never', 1, 0.3) }, 0, 'wait_for_requests gives up empty');
	cmp_ok(time() - $start, '>=', 0.3, '... after its timeout');
}

note 'control API errors and route removal';
{
	my $res = HTTP::Tiny->new->put($recv->url('/_control/routes/bad'),
		{ content => '{"responses":[{"delay":5}]}' });
	is($res->{status}, 400, 'unknown key in a response spec is refused');
	like($res->{content}, qr/unknown key \\"delay\\"/, 'error names the key');
	ok(!eval { set_route($recv, '/bad', { status => 42 }); 1 }, 'set_route dies on a bad spec');
	like($@, qr/status must be an integer/, '... with the receiver\'s reason');

	set_route($recv, '/gone', { status => 499 });
	set_route($recv, '/kept', { status => 202 });
	is(HTTP::Tiny->new->get($recv->url('/gone'))->{status}, 499, 'route active');
	my $routes = decode_json(HTTP::Tiny->new->get($recv->url('/_control/routes'))->{content});
	is_deeply($routes->{'/gone'}, { responses => [ { status => 499 } ], next => 1 },
		'GET /_control/routes lists a route with its position');

	is(HTTP::Tiny->new->delete($recv->url('/_control/routes/gone'))->{status}, 204, 'one route deleted');
	is(HTTP::Tiny->new->get($recv->url('/gone'))->{status}, 200, '... so its path answers the default');
	is(HTTP::Tiny->new->get($recv->url('/kept'))->{status}, 202, '... and other routes stay');

	my $head = HTTP::Tiny->new->head($recv->url('/kept'));
	is($head->{headers}{'content-length'}, 11, 'HEAD states the length of the body it leaves out');
	clear_routes($recv);
	is(HTTP::Tiny->new->get($recv->url('/kept'))->{status}, 200, 'clear_routes removes every route');
	is(HTTP::Tiny->new->get($recv->url('/_control/nope'))->{status}, 404, 'unknown control endpoint is 404');
	is(request_count($recv, '/_control/nope'), 0, 'control requests are never recorded');
}

note 'stop() ends the receiver';
{
	my $pid  = $recv->{pid};
	my $port = $recv->port;
	$recv->stop;
	ok(!kill(0, $pid), 'receiver process is gone');
	ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port),
		'port no longer accepts connections');
}

done_testing();
