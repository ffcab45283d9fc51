#
# SeriesWebTest - shared helpers for seriesweb's TAP tests (test/t/*.pl).
#
# Two halves: the webhook receiver (test/receiver.pl, started as a child process
# and driven through its /_control API), and PostgreSQL nodes preconfigured to
# load seriesweb and deliver to that receiver.  Tests say what they check;
# spawning, polling and cleanup live here so that no test sleeps a fixed time or
# leaves a receiver running behind it.
#
#   use lib 'test/lib';    # or PERL5LIB
#   use SeriesWebTest;
#   my $recv = start_receiver();
#   set_route($recv, '/hooks/a', { status => 500 }, { status => 200 });
#   my $node = new_node('main');
#   ...
#   my $got = wait_for_requests($recv, '/hooks/a', 2, 30);
#
# Records returned by requests() and wait_for_requests() are the receiver's JSON
# records (see the header of test/receiver.pl) with one change: "body" holds the
# exact bytes received (decoded from body_base64), so it compares equal to a
# byte-string literal in a test file that does not "use utf8".
#
package SeriesWebTest;

use strict;
use warnings;

use Carp         qw(croak);
use Exporter     qw(import);
use File::Basename qw(basename dirname);
use File::Spec;
use File::Temp   qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX        qw(WNOHANG);
use Time::HiRes  qw(time usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  start_receiver set_route clear_routes clear_requests
  requests request_count wait_for_requests
  new_node wait_until webhook_series wait_status
);

my $JSON = JSON::PP->new->utf8->canonical;

# Found through this file's own location, so tests may run from any directory.
my $RECEIVER_SCRIPT =
  File::Spec->rel2abs(File::Spec->catfile(dirname(__FILE__), '..', 'receiver.pl'));

# Every receiver this process started and has not stopped, by pid, so that the
# END block can stop them even when a test dies before calling stop().
my %live_receivers;

# How long a receiver may take to write its port file, and to exit.
my $STARTUP_TIMEOUT_S  = 30;
my $SHUTDOWN_TIMEOUT_S = 10;

# ---------------------------------------------------------------------------
# Receiver process
# ---------------------------------------------------------------------------

# start_receiver(%opts) -> SeriesWebTest::Receiver
#   log => FILE   where to append every recorded request as a JSON line; by
#                 default tmp_check/log/receiver_<test>_<n>.jsonl, next to the
#                 test's own log, so a failed run can be read afterwards
sub start_receiver
{
	my (%opts) = @_;
	my $dir       = tempdir('seriesweb_receiver_XXXX', TMPDIR => 1, CLEANUP => 1);
	my $port_file = "$dir/port";
	my $log       = exists $opts{log} ? $opts{log} : default_log_file();
	my @cmd = ($^X, $RECEIVER_SCRIPT, '--port', 0, '--port-file', $port_file,
		'--exit-with-parent');
	push @cmd, '--log', $log if defined $log;

	my $pid = fork // croak "cannot fork receiver: $!";
	if ($pid == 0)
	{
		exec @cmd or do { warn "cannot run @cmd: $!\n"; POSIX::_exit(127) };
	}
	$live_receivers{$pid} = 1;

	my $port = wait_for_port_file($pid, $port_file);
	return SeriesWebTest::Receiver->new($pid, $port);
}

my $receivers_started = 0;

sub default_log_file
{
	my $dir = $PostgreSQL::Test::Utils::log_path;
	return undef unless defined $dir && -d $dir;
	my $test = basename($0, '.pl');
	$receivers_started++;
	my $file = "$dir/receiver_${test}_$receivers_started.jsonl";
	unlink $file;    # the receiver appends; a rerun should not read like one run
	return $file;
}

# Polls rather than sleeping a fixed time: the receiver is usually up within
# milliseconds, but a loaded CI machine may take seconds.
sub wait_for_port_file
{
	my ($pid, $port_file) = @_;
	my $deadline = time() + $STARTUP_TIMEOUT_S;
	while (time() < $deadline)
	{
		if (open my $fh, '<', $port_file)
		{
			my $port = <$fh>;
			chomp $port if defined $port;
			return $port if defined $port && $port =~ /^\d+$/;
		}
		if (waitpid($pid, WNOHANG) == $pid)
		{
			delete $live_receivers{$pid};
			croak "receiver exited before listening (status $?)";
		}
		usleep(20_000);
	}
	stop_receiver_process($pid);
	croak "receiver did not write $port_file within ${STARTUP_TIMEOUT_S}s";
}

# TERM first, KILL if it lingers.  $? is localised because this also runs from
# END, where $? is the test script's exit status.
sub stop_receiver_process
{
	my ($pid) = @_;
	return unless delete $live_receivers{$pid};
	local $?;
	kill 'TERM', $pid;
	my $deadline = time() + $SHUTDOWN_TIMEOUT_S;
	while (time() < $deadline)
	{
		return if waitpid($pid, WNOHANG) != 0;
		usleep(20_000);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
}

END
{
	stop_receiver_process($_) for keys %live_receivers;
}

# ---------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------

# Dies with the receiver's answer when a control call fails: a test cannot
# continue meaningfully after one, and the message says why.
sub control
{
	my ($recv, $method, $path, $body) = @_;
	my %args;
	if (defined $body)
	{
		%args = (content => $JSON->encode($body),
			headers => { 'Content-Type' => 'application/json' });
	}
	my $res = $recv->{http}->request($method, $recv->url($path), \%args);
	croak "receiver control $method $path failed: $res->{status} $res->{reason}: $res->{content}"
	  unless $res->{success};
	return length $res->{content} ? $JSON->decode($res->{content}) : undef;
}

sub check_path
{
	my ($path) = @_;
	croak "path must start with / and hold no query string: $path"
	  unless defined $path && $path =~ m{^/[^?#]*$};
	return $path;
}

sub path_query
{
	my ($path) = @_;
	return '' unless defined $path;
	(my $escaped = check_path($path)) =~ s/([^A-Za-z0-9\-._~\/])/sprintf('%%%02X', ord $1)/ge;
	return "?path=$escaped";
}

# set_route($recv, $path, @responses): each response is a hashref with status,
# delay_ms, headers, body, drop (see test/receiver.pl).  A body given as a Perl
# string is sent as exactly those bytes (a character string as UTF-8); a body
# given as a hash or array ref is sent as its JSON.
sub set_route
{
	my ($recv, $path, @responses) = @_;
	croak 'set_route needs at least one response' unless @responses;
	my @specs = map { response_spec($_) } @responses;
	control($recv, 'PUT', '/_control/routes' . check_path($path), { responses => \@specs });
	return;
}

# The receiver gets string bodies as body_base64, because JSON cannot say
# "these are bytes" and a byte string would otherwise arrive double-encoded.
sub response_spec
{
	my ($r) = @_;
	croak 'a response must be a hashref' unless ref $r eq 'HASH';
	my %spec = %$r;
	if (defined $spec{body} && !ref $spec{body})
	{
		my $bytes = delete $spec{body};
		utf8::encode($bytes) if utf8::is_utf8($bytes);
		$spec{body_base64} = encode_base64($bytes, '');
	}
	$spec{drop} = $spec{drop} ? JSON::PP::true : JSON::PP::false if exists $spec{drop};
	return \%spec;
}

sub clear_routes
{
	my ($recv) = @_;
	control($recv, 'DELETE', '/_control/routes');
	return;
}

# The receiver's seq numbers keep counting across a clear.
sub clear_requests
{
	my ($recv) = @_;
	control($recv, 'DELETE', '/_control/requests');
	return;
}

# requests($recv [, $path]) -> arrayref of records, oldest first; all paths when
# $path is undef.  $path is compared without query string.
sub requests
{
	my ($recv, $path) = @_;
	my $records = control($recv, 'GET', '/_control/requests' . path_query($path));
	$_->{body} = decode_base64($_->{body_base64}) for @$records;
	return $records;
}

sub request_count
{
	my ($recv, $path) = @_;
	return control($recv, 'GET', '/_control/count' . path_query($path))->{count};
}

# wait_for_requests($recv, $path, $n [, $timeout_s]) -> arrayref of records.
# Returns as soon as at least $n requests to $path were recorded, or whatever
# was recorded when the timeout passed; the caller's test states the count.
sub wait_for_requests
{
	my ($recv, $path, $n, $timeout_s) = @_;
	$timeout_s //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = time() + $timeout_s;
	while (request_count($recv, $path) < $n && time() < $deadline)
	{
		usleep(25_000);
	}
	return requests($recv, $path);
}

# ---------------------------------------------------------------------------
# PostgreSQL nodes
# ---------------------------------------------------------------------------

# Settings every test node starts from: the receiver listens on 127.0.0.1, and
# short retry delays and timeout keep retry tests fast.
my $BASE_CONF = <<'EOC';
shared_preload_libraries = 'seriesweb'
seriesweb.database = 'postgres'
seriesweb.allowed_networks = '127.0.0.1/32'
seriesweb.retry_delays = '200ms, 400ms'
seriesweb.timeout = '2s'
EOC

# new_node($name, %opts) -> PostgreSQL::Test::Cluster
#   conf     => "lines\n"  appended after the base settings, so they win
#   initdb   => [...]      extra initdb options ('--encoding=UTF8', say)
#   no_start => 1          leave the node stopped
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => $opts{initdb} // []);
	$node->append_conf('postgresql.conf', $BASE_CONF);
	$node->append_conf('postgresql.conf', $opts{conf}) if defined $opts{conf};
	$node->start unless $opts{no_start};
	return $node;
}

# wait_until($node, $sql, $expected, $what): polls $sql in database postgres
# until it prints $expected ('t' when undef); dies naming $what on timeout.
sub wait_until
{
	my ($node, $sql, $expected, $what) = @_;
	$node->poll_query_until('postgres', $sql, $expected)
	  or croak "timed out waiting for $what";
	return 1;
}

# ---------------------------------------------------------------------------
# The receiver handle returned by start_receiver
# ---------------------------------------------------------------------------

package SeriesWebTest::Receiver;

use strict;
use warnings;

# The creator's pid is kept so that a forked child that inherits this object
# never stops the parent's receiver when it exits.
sub new
{
	my ($class, $pid, $port) = @_;
	return bless {
		pid   => $pid,
		port  => $port,
		owner => $$,
		http  => HTTP::Tiny->new(timeout => 30, keep_alive => 1),
	}, $class;
}

sub port { return $_[0]{port} }

sub url
{
	my ($self, $path) = @_;
	$path //= '/';
	return "http://127.0.0.1:$self->{port}$path";
}

sub stop
{
	my ($self) = @_;
	return unless $self->{owner} == $$;
	SeriesWebTest::stop_receiver_process($self->{pid});
}

sub DESTROY
{
	my ($self) = @_;
	$self->stop;
}

# Back in the main package: series helpers shared by the TAP tests.
package SeriesWebTest;

# webhook_series($node, $name, $url, %o) -> the webhook's block id, in a new
# live series "$name": a rule on event "$name", then a webhook to $url with
# $o{headers} (JSON text, default Content-Type JSON) and $o{body} (JSON text
# or undef for the default payload).
sub webhook_series
{
	my ($node, $name, $url, %o) = @_;
	my $headers = $o{headers} // '{"Content-Type": "application/json"}';
	my $body = defined $o{body} ? "'$o{body}'" : 'NULL';
	my $sql = sub { $node->safe_psql('postgres', shift) };
	my $series = $sql->("SELECT seriesweb.create_series('$name')");
	my $rule = $sql->("SELECT seriesweb.add_rule($series, 'rule $name', '$name')");
	my $hook = $sql->("SELECT seriesweb.add_webhook($series, 'hook $name', '$url', after => $rule,
	                   headers => '$headers', body => $body)");
	$sql->("SELECT seriesweb.set_live($series)");
	return $hook;
}

# wait_status($node, $block, $status, $n, $what): waits until $n deliveries
# of $block have $status.
sub wait_status
{
	my ($node, $block, $status, $n, $what) = @_;
	return wait_until($node,
		"SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $block AND status = '$status'",
		$n, $what);
}

1;
