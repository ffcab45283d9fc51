#!/usr/bin/perl
#
# receiver.pl - the HTTP endpoint that seriesweb's TAP tests deliver webhooks to.
#
# The tests need a real HTTP/1.1 server whose behaviour they can script (errors,
# slow answers, dropped connections, redirects) and whose received requests they
# can inspect afterwards.  This is that server: one process, one select() loop,
# Perl core modules only, listening on 127.0.0.1 and nowhere else.
#
#   perl test/receiver.pl --port 0 --port-file /tmp/x/port [--log F] [--exit-with-parent]
#
# Design, in the order a request meets it:
#   - Connections are non-blocking; bytes are parsed incrementally (Content-Length
#     and chunked bodies, keep-alive, pipelining, "Expect: 100-continue").
#   - A complete request to a path outside /_control is recorded in memory (and
#     optionally appended to --log as one JSON line), then answered with the next
#     response of that path's route.  Delays and drops are timers in the loop, so
#     a slow answer on one connection never holds up another.
#   - Paths under /_control are the control API that test/lib/SeriesWebTest.pm
#     uses: set routes, read and clear the records.  They are never recorded.
#
# Control API (all bodies JSON):
#   PUT    /_control/routes/<p...>  {"responses":[spec,...]}  route for /<p...>, 204
#   DELETE /_control/routes/<p...>  remove that one route, 204
#   DELETE /_control/routes         remove all routes, 204
#   GET    /_control/routes         {"/<p>": {"responses":[spec...], "next": i}, ...}
#   GET    /_control/requests[?path=/p]  [record, ...] in arrival order
#   DELETE /_control/requests       forget the records, 204 (seq keeps counting, so
#                                   a record read before and one read after a clear
#                                   can never be confused)
#   GET    /_control/count[?path=/p]     {"count": N}
#   GET    /_control/health         {"ok": true}
# A response spec is {"status":200, "delay_ms":0, "headers":{...}, "headers_base64":
# {...}, "body":"...", "body_base64":"...", "drop":false}; every key is optional,
# unknown keys are refused (a typo such as "delay" must not silently mean "no
# delay").  "body" may also be a JSON object/array, which is sent re-encoded as
# JSON.  "headers" values are sent as UTF-8; "headers_base64" values are base64
# and sent as exactly those bytes (invalid UTF-8, say), after "headers".  Once a route's
# list is used up its last response repeats.  Errors are {"error": "..."}.
#
# Record fields: seq, time (epoch seconds with microseconds, taken when the whole
# request had been read), method, path (with query string), headers ([name, value]
# pairs in arrival order, names as sent), body, body_base64, conn (connection id,
# the same for requests that shared a keep-alive connection), response_index
# (0-based index into the route's list, null when the path had no route), status
# (null when dropped) and dropped.
#
# Bytes and JSON: the body is kept as the exact byte string received.  JSON has
# no byte strings, so a record carries it twice: "body_base64" is exact whatever
# the bytes are, and "body" is the bytes decoded as UTF-8 (null when they are not
# valid UTF-8) so that the usual JSON webhook reads naturally in logs and jq.
# Method, path and header values are read as ISO-8859-1 (one byte, one
# character, HTTP's historical rule), which round-trips through JSON exactly.
#
# Limits: select() cannot watch descriptors >= FD_SETSIZE (1024), so connections
# beyond that are refused; heads over 64 kB and bodies over 64 MB are refused.

use strict;
use warnings;

use Encode       ();
use Errno        qw(EAGAIN EWOULDBLOCK EINTR);
use Getopt::Long qw(GetOptions);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX        ();
use Socket       qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes  ();

use constant {
	MAX_HEAD_BYTES => 64 * 1024,
	MAX_BODY_BYTES => 64 * 1024 * 1024,
	MAX_FILENO     => 1000,          # stay clear of FD_SETSIZE
	READ_CHUNK     => 256 * 1024,
	MAX_DELAY_MS   => 10 * 60 * 1000,
	DEFAULT_BODY   => '{"ok":true}',
};

my %REASON = (
	200 => 'OK', 201 => 'Created', 202 => 'Accepted', 204 => 'No Content',
	301 => 'Moved Permanently', 302 => 'Found', 303 => 'See Other',
	307 => 'Temporary Redirect', 308 => 'Permanent Redirect',
	400 => 'Bad Request', 401 => 'Unauthorized', 403 => 'Forbidden',
	404 => 'Not Found', 405 => 'Method Not Allowed', 408 => 'Request Timeout',
	409 => 'Conflict', 410 => 'Gone', 413 => 'Content Too Large',
	429 => 'Too Many Requests', 431 => 'Request Header Fields Too Large',
	500 => 'Internal Server Error', 501 => 'Not Implemented',
	502 => 'Bad Gateway', 503 => 'Service Unavailable', 504 => 'Gateway Timeout',
);

my $JSON = JSON::PP->new->utf8->canonical;

# For record_json's hand-written string encoder.
my %JSON_ESCAPE = (
	'"'  => '\\"', '\\' => '\\\\', "\n" => '\\n', "\r" => '\\r', "\t" => '\\t',
	map { chr($_) => sprintf('\\u%04x', $_) } grep { $_ != 9 && $_ != 10 && $_ != 13 } 0 .. 0x1f
);

# Server state.  Records are kept twice (all, and per path) so that appends stay
# O(1) and a per-path query never scans other paths' records.
my %opt;
my $stopping = 0;
my ($rsel, $wsel) = (IO::Select->new, IO::Select->new);
my %conn_of_fileno;
my $next_conn_id = 1;
my @timers;
my %routes;
my @records;
my %records_of_path;
my $next_seq = 1;
my $log_fh;

main();

sub main
{
	# Installed first, so that a test stopping a receiver that is still
	# starting up gets a clean exit as well.
	$SIG{TERM} = $SIG{INT} = sub { $stopping = 1 };
	$SIG{PIPE} = 'IGNORE';    # a vanished client is an EPIPE, not our death

	parse_options();
	my $listener = open_listener($opt{port});
	write_port_file($opt{port_file}, $listener->sockport) if defined $opt{port_file};
	open_log($opt{log}) if defined $opt{log};

	run_event_loop($listener);
	close $listener;
	exit 0;
}

sub parse_options
{
	%opt = (port => 0);
	GetOptions(
		'port=i'           => \$opt{port},
		'port-file=s'      => \$opt{port_file},
		'log=s'            => \$opt{log},
		'exit-with-parent' => \$opt{exit_with_parent},
		'help'             => sub { print usage(); exit 0 },
	) or die usage();
	die usage() if @ARGV;
	$opt{parent_pid} = getppid() if $opt{exit_with_parent};
}

sub usage
{
	return "usage: $0 [--port N] [--port-file FILE] [--log FILE] [--exit-with-parent]\n";
}

sub open_listener
{
	my ($port) = @_;
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto     => 'tcp',
		Listen    => 1024,
		ReuseAddr => 1,
	) or die "receiver: cannot listen on 127.0.0.1:$port: $@\n";
	$listener->blocking(0);
	$rsel->add($listener);
	return $listener;
}

# Written under a temporary name and renamed, so that a test polling for the
# file never reads a half-written port number.
sub write_port_file
{
	my ($file, $port) = @_;
	my $tmp = "$file.tmp.$$";
	open my $fh, '>', $tmp or die "receiver: cannot write $tmp: $!\n";
	print {$fh} "$port\n";
	close $fh or die "receiver: cannot write $tmp: $!\n";
	rename $tmp, $file or die "receiver: cannot rename $tmp to $file: $!\n";
}

sub open_log
{
	my ($file) = @_;
	open $log_fh, '>>:raw', $file or die "receiver: cannot open log $file: $!\n";
	$log_fh->autoflush(1);
}

# ---------------------------------------------------------------------------
# Event loop
# ---------------------------------------------------------------------------

sub run_event_loop
{
	my ($listener) = @_;

	until ($stopping)
	{
		# IO::Select returns the same empty list for a timeout and an error, so
		# $! is cleared first to tell them apart.
		$! = 0;
		my ($readable, $writable) =
		  IO::Select->select($rsel, $wsel, undef, seconds_to_next_timer());
		if (!defined $readable && $! && $! != EINTR)
		{
			die "receiver: select failed: $!\n";
		}
		for my $fh (@{ $readable || [] })
		{
			if ($fh == $listener) { accept_connections($listener) }
			else { read_connection($conn_of_fileno{ fileno $fh }) }
		}
		for my $fh (@{ $writable || [] })
		{
			my $c = $conn_of_fileno{ fileno $fh } or next;
			flush_output($c);
			close_if_finished($c);
		}
		run_due_timers();
		$stopping = 1 if $opt{exit_with_parent} && getppid() != $opt{parent_pid};
	}
}

# The loop wakes at least once a second so that --exit-with-parent notices an
# orphaned receiver even when nobody talks to it.
sub seconds_to_next_timer
{
	my $wait = 1.0;
	my $now  = Time::HiRes::time();
	for my $t (@timers)
	{
		my $left = $t->{due} - $now;
		$wait = $left if $left < $wait;
	}
	return $wait < 0 ? 0 : $wait;
}

sub add_timer
{
	my ($delay_s, $callback) = @_;
	push @timers, { due => Time::HiRes::time() + $delay_s, callback => $callback };
}

sub run_due_timers
{
	return unless @timers;
	my $now = Time::HiRes::time();
	my (@due, @later);
	push @{ $_->{due} <= $now ? \@due : \@later }, $_ for @timers;
	@timers = @later;
	$_->{callback}->() for sort { $a->{due} <=> $b->{due} } @due;
}

# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

sub accept_connections
{
	my ($listener) = @_;
	while (my $sock = $listener->accept)
	{
		if (fileno($sock) >= MAX_FILENO)
		{
			warn "receiver: refusing connection, descriptor beyond select() range\n";
			close $sock;
			next;
		}
		$sock->blocking(0);
		setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
		my $c = {
			fh    => $sock,
			id    => $next_conn_id++,
			rbuf  => '',
			wbuf  => '',
			parse => { state => 'head' },
		};
		$conn_of_fileno{ fileno $sock } = $c;
		$rsel->add($sock);
	}
}

sub read_connection
{
	my ($c) = @_;
	return unless $c && !$c->{closed};

	my $n = sysread($c->{fh}, $c->{rbuf}, READ_CHUNK, length $c->{rbuf});
	if (!defined $n)
	{
		return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
		return close_connection($c);    # reset by peer and friends
	}
	if ($n == 0)
	{
		# The client is done sending.  Answers already owed are still written,
		# and a half-sent request is simply forgotten.
		$c->{eof} = 1;
		$rsel->remove($c->{fh});
	}
	process_input($c);
	close_if_finished($c);
}

# Handles every complete request in the buffer, one at a time: while a delayed
# answer is pending (busy) the following pipelined requests wait their turn,
# because HTTP/1.1 answers must leave in request order.
sub process_input
{
	my ($c) = @_;
	while (!$c->{closed} && !$c->{busy} && !$c->{closing})
	{
		my $req = parse_request($c) or last;
		dispatch_request($c, $req);
	}
}

sub close_if_finished
{
	my ($c) = @_;
	return if $c->{closed} || $c->{busy} || length $c->{wbuf};
	close_connection($c) if $c->{eof} || $c->{closing};
}

sub queue_output
{
	my ($c, $bytes) = @_;
	$c->{wbuf} .= $bytes;
	flush_output($c);
}

sub flush_output
{
	my ($c) = @_;
	return if $c->{closed};
	while (length $c->{wbuf})
	{
		my $n = syswrite($c->{fh}, $c->{wbuf});
		if (!defined $n)
		{
			last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
			return close_connection($c);
		}
		substr($c->{wbuf}, 0, $n, '');
	}
	if (length $c->{wbuf}) { $wsel->add($c->{fh}) }
	else { $wsel->remove($c->{fh}) }
}

sub close_connection
{
	my ($c) = @_;
	return if $c->{closed};
	$c->{closed} = 1;    # pending timers check this and do nothing
	$rsel->remove($c->{fh});
	$wsel->remove($c->{fh});
	delete $conn_of_fileno{ fileno $c->{fh} };
	close $c->{fh};
}

# ---------------------------------------------------------------------------
# HTTP request parsing (incremental: each call resumes where the last stopped)
# ---------------------------------------------------------------------------

# Returns a complete request, or undef when more bytes are needed or the request
# was refused (then an error answer is already queued).
sub parse_request
{
	my ($c) = @_;
	my $p = $c->{parse};

	if ($p->{state} eq 'head')
	{
		$p->{req} = parse_head($c) or return undef;
		start_body($c, $p) or return undef;
	}
	if ($p->{state} eq 'length')
	{
		return undef if length $c->{rbuf} < $p->{remaining};
		$p->{req}{body} = substr($c->{rbuf}, 0, $p->{remaining}, '');
		$p->{state} = 'done';
	}
	if ($p->{state} =~ /^chunk/)
	{
		parse_chunks($c, $p) or return undef;
	}

	my $req = $p->{req};
	$req->{time} = Time::HiRes::time();
	$c->{parse} = { state => 'head' };
	return $req;
}

sub parse_head
{
	my ($c) = @_;
	$c->{rbuf} =~ s/^(?:\r?\n)+//;    # stray CRLFs between requests are allowed
	my $end = index($c->{rbuf}, "\r\n\r\n");
	if ($end < 0)
	{
		refuse($c, 431, 'request head too large') if length $c->{rbuf} > MAX_HEAD_BYTES;
		return undef;
	}
	my $head = substr($c->{rbuf}, 0, $end + 4, '');
	my ($request_line, @lines) = split /\r\n/, $head;

	my ($method, $target, $version) =
	  $request_line =~ m{^([!#\$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/(1\.[01])$}
	  or return refuse($c, 400, 'malformed request line');

	my @headers;
	for my $line (@lines)
	{
		if ($line =~ /^[ \t]+(.*)$/ && @headers)    # obsolete line folding
		{
			$headers[-1][1] .= " $1";
			next;
		}
		my ($name, $value) = $line =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*$/
		  or return refuse($c, 400, 'malformed header line');
		push @headers, [ $name, $value ];
	}
	$target =~ s{^https?://[^/]*}{}i;    # absolute-form, as sent to proxies
	$target = "/$target" unless $target =~ m{^/};

	return {
		method     => $method,
		path       => $target,
		version    => $version,
		headers    => \@headers,
		keep_alive => wants_keep_alive($version, \@headers),
		body       => '',
	};
}

sub header_values
{
	my ($req_headers, $name) = @_;
	return map { $_->[1] } grep { lc $_->[0] eq $name } @$req_headers;
}

sub wants_keep_alive
{
	my ($version, $headers) = @_;
	my $connection = lc join ',', header_values($headers, 'connection');
	return 0 if $connection =~ /\bclose\b/;
	return ($version eq '1.1' || $connection =~ /\bkeep-alive\b/) ? 1 : 0;
}

# Decides how the body is framed.  Transfer-Encoding wins over Content-Length
# (RFC 9112 6.3); no framing at all means no body.
sub start_body
{
	my ($c, $p) = @_;
	my $req = $p->{req};
	my @te  = header_values($req->{headers}, 'transfer-encoding');
	my @cl  = header_values($req->{headers}, 'content-length');

	if (@te)
	{
		return refuse($c, 501, 'only chunked transfer-coding is supported')
		  unless lc(join ',', @te) =~ /(?:^|,)\s*chunked\s*$/;
		$p->{state} = 'chunk_size';
		$p->{size}  = 0;
	}
	elsif (@cl)
	{
		my %distinct = map { $_ => 1 } map { split /\s*,\s*/ } @cl;
		my ($len) = keys %distinct;
		return refuse($c, 400, 'bad Content-Length')
		  if keys %distinct != 1 || $len !~ /^\d+$/;
		return refuse($c, 413, 'body too large') if $len > MAX_BODY_BYTES;
		$p->{state}     = 'length';
		$p->{remaining} = $len + 0;
	}
	else
	{
		$p->{state} = 'done';
		return 1;
	}
	send_continue_if_expected($c, $p);
	return 1;
}

# libcurl sends "Expect: 100-continue" before larger bodies and would otherwise
# wait a full second before sending them anyway.
sub send_continue_if_expected
{
	my ($c, $p) = @_;
	my $req = $p->{req};
	return unless $req->{version} eq '1.1';
	return unless grep { lc eq '100-continue' } header_values($req->{headers}, 'expect');
	return if $p->{state} eq 'length' && length $c->{rbuf} >= $p->{remaining};
	queue_output($c, "HTTP/1.1 100 Continue\r\n\r\n");
}

sub parse_chunks
{
	my ($c, $p) = @_;
	while (1)
	{
		if ($p->{state} eq 'chunk_size')
		{
			my $eol = index($c->{rbuf}, "\r\n");
			if ($eol < 0)
			{
				refuse($c, 400, 'chunk size line too long') if length $c->{rbuf} > 4096;
				return 0;
			}
			my $line = substr($c->{rbuf}, 0, $eol + 2, '');
			my ($hex) = $line =~ /^([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r\n$/
			  or return refuse($c, 400, 'malformed chunk size');
			$p->{size} = hex $hex;
			$p->{state} = $p->{size} ? 'chunk_data' : 'chunk_trailer';
			return refuse($c, 413, 'body too large')
			  if length($p->{req}{body}) + $p->{size} > MAX_BODY_BYTES;
		}
		elsif ($p->{state} eq 'chunk_data')
		{
			return 0 if length $c->{rbuf} < $p->{size} + 2;
			$p->{req}{body} .= substr($c->{rbuf}, 0, $p->{size}, '');
			substr($c->{rbuf}, 0, 2, '') eq "\r\n"
			  or return refuse($c, 400, 'chunk not followed by CRLF');
			$p->{state} = 'chunk_size';
		}
		else    # chunk_trailer: trailer fields are read and ignored
		{
			my $eol = index($c->{rbuf}, "\r\n");
			return 0 if $eol < 0;
			my $line = substr($c->{rbuf}, 0, $eol + 2, '');
			if ($line eq "\r\n")
			{
				$p->{state} = 'done';
				return 1;
			}
		}
	}
}

# Answers a request we cannot parse and closes the connection, since the byte
# stream can no longer be trusted to hold request boundaries.
sub refuse
{
	my ($c, $status, $message) = @_;
	$c->{closing} = 1;
	$c->{rbuf}    = '';
	queue_output($c,
		http_response($status, [], $JSON->encode({ error => $message }), 0));
	return undef;
}

# ---------------------------------------------------------------------------
# Requests: recording and answering
# ---------------------------------------------------------------------------

sub dispatch_request
{
	my ($c, $req) = @_;
	my ($path_only) = $req->{path} =~ /^([^?#]*)/;

	if (index($path_only, '/_control') == 0)
	{
		my ($status, $body) = handle_control($req, $path_only);
		return answer($c, $req, $status, [], $body);
	}

	my ($spec, $index) = next_response($path_only);
	record_request($c, $req, $path_only, $spec, $index);
	if ($spec->{delay_ms} > 0)
	{
		$c->{busy} = 1;
		add_timer($spec->{delay_ms} / 1000, sub { finish_delayed($c, $req, $spec) });
		return;
	}
	respond_with_spec($c, $req, $spec);
}

sub finish_delayed
{
	my ($c, $req, $spec) = @_;
	return if $c->{closed};
	$c->{busy} = 0;
	respond_with_spec($c, $req, $spec);
	process_input($c);
	close_if_finished($c);
}

sub respond_with_spec
{
	my ($c, $req, $spec) = @_;
	return close_connection($c) if $spec->{drop};
	answer($c, $req, $spec->{status}, $spec->{headers}, $spec->{body});
}

sub answer
{
	my ($c, $req, $status, $headers, $body) = @_;
	$c->{closing} = 1 unless $req->{keep_alive};
	queue_output($c,
		http_response($status, $headers, $body, $req->{keep_alive}, $req->{method} eq 'HEAD'));
}

# Every answer carries Content-Length (except 204 and 304, where RFC 9110
# forbids a body and, for 204, the header too; an answer to HEAD states the
# length the body would have had), so keep-alive clients always
# know where it ends.
sub http_response
{
	my ($status, $headers, $body, $keep_alive, $head_only) = @_;
	$body = '' if $status == 204 || $status == 304;

	my $out = "HTTP/1.1 $status " . ($REASON{$status} // 'Status') . "\r\n";
	$out .= "Server: seriesweb-test-receiver\r\n";
	$out .= "Content-Type: application/json\r\n"
	  unless $status == 204 || grep { lc $_->[0] eq 'content-type' } @$headers;
	$out .= "$_->[0]: $_->[1]\r\n" for @$headers;
	$out .= 'Content-Length: ' . length($body) . "\r\n" unless $status == 204;
	$out .= 'Connection: ' . ($keep_alive ? 'keep-alive' : 'close') . "\r\n\r\n";
	return $head_only ? $out : $out . $body;
}

# The route's next response; past the end of the list the last one repeats.
sub next_response
{
	my ($path) = @_;
	my $route = $routes{$path};
	return (default_spec(), undef) unless $route;

	my $last  = $#{ $route->{responses} };
	my $index = $route->{next} < $last ? $route->{next} : $last;
	$route->{next}++ if $route->{next} <= $last;
	return ($route->{responses}[$index], $index);
}

sub default_spec
{
	return { status => 200, delay_ms => 0, headers => [], body => DEFAULT_BODY, drop => 0 };
}

sub record_request
{
	my ($c, $req, $path_only, $spec, $index) = @_;
	my $rec = {
		seq            => $next_seq++,
		time           => sprintf('%.6f', $req->{time}),
		method         => $req->{method},
		path           => $req->{path},
		headers        => $req->{headers},
		body           => $req->{body},
		conn           => $c->{id},
		response_index => $index,
		status         => $spec->{drop} ? undef : $spec->{status},
		dropped        => $spec->{drop} ? 1 : 0,
	};
	push @records, $rec;
	push @{ $records_of_path{$path_only} }, $rec;
	print {$log_fh} record_json($rec), "\n" if $log_fh;
	return $rec;
}

# Records are encoded once, on first demand, and the text is kept: tests poll
# /_control/requests repeatedly.
#
# The encoder is written out by hand, keys in sorted order (JSON::PP's canonical
# order), for two reasons: JSON::PP prints numbers with Perl's 15 significant
# digits, which would cut epoch seconds down to 10 us, and it needs ~75 us per
# record, which stalls the loop for seconds (and times out the deliveries still
# in flight) when a test reads 100k records.  Everything else uses JSON::PP.
sub record_json
{
	my ($rec) = @_;
	return $rec->{json} if defined $rec->{json};

	my $text = eval { Encode::decode('UTF-8', $rec->{body}, Encode::FB_CROAK | Encode::LEAVE_SRC) };
	my $headers = join ',',
	  map { '[' . json_string($_->[0]) . ',' . json_string($_->[1]) . ']' } @{ $rec->{headers} };
	my $json = join '',
	  '{"body":',           (defined $text ? json_string($text) : 'null'),
	  ',"body_base64":"',   encode_base64($rec->{body}, ''),
	  '","conn":',          $rec->{conn},
	  ',"dropped":',        ($rec->{dropped} ? 'true' : 'false'),
	  ',"headers":[',       $headers,
	  '],"method":',        json_string($rec->{method}),
	  ',"path":',           json_string($rec->{path}),
	  ',"response_index":', $rec->{response_index} // 'null',
	  ',"seq":',            $rec->{seq},
	  ',"status":',         $rec->{status} // 'null',
	  ',"time":',           $rec->{time},
	  '}';
	utf8::encode($json);    # characters (bytes read as Latin-1, or decoded text) to UTF-8
	return $rec->{json} = $json;
}

sub json_string
{
	my ($s) = @_;
	$s =~ s/(["\\\x00-\x1f])/$JSON_ESCAPE{$1}/g;
	return qq("$s");
}

# ---------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------

# Returns (status, body).
sub handle_control
{
	my ($req, $path) = @_;
	my $m     = $req->{method};
	my $query = parse_query($req->{path});

	return control_put_route($req, $1) if $m eq 'PUT' && $path =~ m{^/_control/routes(/.*)$};
	return control_delete_route($1)    if $m eq 'DELETE' && $path =~ m{^/_control/routes(/.+)$};
	return control_clear_routes()      if $m eq 'DELETE' && $path eq '/_control/routes';
	return control_list_routes()       if $m eq 'GET' && $path eq '/_control/routes';
	return control_requests($query)    if $m eq 'GET' && $path eq '/_control/requests';
	return control_clear_requests()    if $m eq 'DELETE' && $path eq '/_control/requests';
	return control_count($query)       if $m eq 'GET' && $path eq '/_control/count';
	return (200, DEFAULT_BODY)         if $m eq 'GET' && $path eq '/_control/health';
	return control_error(404, "no control endpoint $m $path");
}

sub control_error
{
	my ($status, $message) = @_;
	return ($status, $JSON->encode({ error => $message }));
}

sub parse_query
{
	my ($target) = @_;
	my %q;
	my ($qs) = $target =~ /\?([^#]*)/ or return \%q;
	for my $pair (split /&/, $qs)
	{
		my ($k, $v) = map { url_decode($_) } split /=/, $pair, 2;
		$q{$k} = $v // '';
	}
	return \%q;
}

sub url_decode
{
	my ($s) = @_;
	$s =~ tr/+/ /;
	$s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
	return $s;
}

# Filters compare paths without their query strings, like routes do.
sub path_filter
{
	my ($query) = @_;
	return undef unless defined $query->{path};
	(my $path = $query->{path}) =~ s/[?#].*//s;
	return $path;
}

sub control_put_route
{
	my ($req, $path) = @_;
	my $doc = eval { $JSON->decode($req->{body}) };
	chomp(my $why = $@);
	return control_error(400, "body is not JSON: $why") unless defined $doc;
	return control_error(400, 'body must be {"responses": [ ... ]}')
	  unless ref $doc eq 'HASH' && ref $doc->{responses} eq 'ARRAY' && @{ $doc->{responses} };

	my @specs;
	for my $i (0 .. $#{ $doc->{responses} })
	{
		my $spec = eval { normalize_spec($doc->{responses}[$i]) };
		chomp(my $why = $@);
		return control_error(400, "responses[$i]: $why") unless $spec;
		push @specs, $spec;
	}
	$routes{$path} = { responses => \@specs, next => 0, source => $doc->{responses} };
	return (204, '');
}

# Validates one response spec and turns it into what the sender needs: header
# pairs and the body as bytes.  Dies with a message naming the problem.
sub normalize_spec
{
	my ($in) = @_;
	die "must be an object\n" unless ref $in eq 'HASH';
	my %known = map { $_ => 1 } qw(status delay_ms headers headers_base64 body body_base64 drop);
	for (sort keys %$in) { die "unknown key \"$_\"\n" unless $known{$_} }

	my $status = $in->{status} // 200;
	die "status must be an integer from 200 to 599\n"
	  unless $status =~ /^\d+$/ && $status >= 200 && $status <= 599;
	my $delay = $in->{delay_ms} // 0;
	die "delay_ms must be a number from 0 to " . MAX_DELAY_MS . "\n"
	  unless $delay =~ /^\d+(?:\.\d+)?$/ && $delay <= MAX_DELAY_MS;
	die "body and body_base64 are exclusive\n"
	  if defined $in->{body} && defined $in->{body_base64};

	return {
		status   => $status + 0,
		delay_ms => $delay + 0,
		headers  => [ @{ normalize_headers($in->{headers}) },
			@{ normalize_headers($in->{headers_base64}, 'base64') } ],
		body     => spec_body($in),
		drop     => $in->{drop} ? 1 : 0,
	};
}

# Header pairs as bytes: values are text sent as UTF-8, or with $base64 the
# base64 of the exact bytes to send.
sub normalize_headers
{
	my ($h, $base64) = @_;
	return [] unless defined $h;
	my $key = $base64 ? 'headers_base64' : 'headers';
	die "$key must be an object\n" unless ref $h eq 'HASH';
	my @pairs;
	for my $name (sort keys %$h)
	{
		my $value = $h->{$name};
		die "header name \"$name\" is not a token\n"
		  unless $name =~ /^[!#\$%&'*+.^_`|~0-9A-Za-z-]+$/;
		die "header $name is computed by the receiver\n"
		  if $name =~ /^(?:content-length|transfer-encoding|connection)$/i;
		die "header $name must be a string\n" if ref $value || !defined $value;
		my $bytes = $base64 ? decode_base64($value) : Encode::encode('UTF-8', "$value");
		die "header $name must not contain CR or LF\n" if $bytes =~ /[\r\n]/;
		push @pairs, [ $name, $bytes ];
	}
	return \@pairs;
}

sub spec_body
{
	my ($in) = @_;
	return decode_base64($in->{body_base64}) if defined $in->{body_base64};
	return DEFAULT_BODY unless defined $in->{body};
	return $JSON->encode($in->{body}) if ref $in->{body};
	return Encode::encode('UTF-8', $in->{body});
}

sub control_delete_route
{
	my ($path) = @_;
	delete $routes{$path};
	return (204, '');
}

sub control_clear_routes
{
	%routes = ();
	return (204, '');
}

sub control_list_routes
{
	my %out = map { $_ => { responses => $routes{$_}{source}, next => $routes{$_}{next} } }
	  keys %routes;
	return (200, $JSON->encode(\%out));
}

sub control_requests
{
	my ($query) = @_;
	my $path = path_filter($query);
	my $list = defined $path ? ($records_of_path{$path} || []) : \@records;
	return (200, '[' . join(',', map { record_json($_) } @$list) . ']');
}

sub control_clear_requests
{
	@records         = ();
	%records_of_path = ();
	return (204, '');
}

sub control_count
{
	my ($query) = @_;
	my $path = path_filter($query);
	my $n = defined $path ? scalar @{ $records_of_path{$path} || [] } : scalar @records;
	return (200, $JSON->encode({ count => $n }));
}
