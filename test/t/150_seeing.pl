#
# 150_seeing.pl - what monitoring and authors see of real deliveries.
#
# One live series, a rule and three webhooks, delivers to the receiver: one
# webhook's deliveries are sent, one's fail (410), one's wait for a retry
# an hour away (500 twice).  Its diagram, in dot, renders with Graphviz (SVG
# and PNG) with those counts and its tricky titles intact; in mermaid it
# shows the same counts.  Every query of contrib/postgres_exporter.yml then
# runs as a pg_monitor role, in this database and in one that the worker
# does not serve, and returns the columns the file declares with the
# values the deliveries imply.
#
use strict;
use warnings;

use File::Spec;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
# The third attempt of a failing delivery is an hour away: it stays pending.
my $node = new_node('seeing', conf => "seriesweb.retry_delays = '200ms, 1h'\n",
	initdb => [ '--encoding=UTF8', '--locale=C' ]);

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to run');

set_route($recv, '/ok', { status => 200 });
set_route($recv, '/gone', { status => 410 });
set_route($recv, '/busy', { status => 500 });

# Titles as an author may write them: a newline, quotes, a backslash before
# a letter (\N is the node's name to Graphviz), &, angle brackets, and
# non-ASCII letters and an emoji (chr(), so that this file stays ASCII).
my $s = sql("SELECT seriesweb.create_series('Onboarding \"Q3\"')");
my $rule = sql("SELECT seriesweb.add_rule($s, E'Signed up\\nwith a plan', 'signup')");
my %hook;
$hook{ok} = sql("SELECT seriesweb.add_webhook($s, E'Say \"hi\" \\\\N & <b>', '"
	  . $recv->url('/ok') . "', after => $rule)");
$hook{gone} = sql("SELECT seriesweb.add_webhook($s, 'Caf' || chr(233) || ' ' || chr(26085)
	|| chr(26412) || ' ' || chr(127881), '" . $recv->url('/gone') . "', after => $rule)");
$hook{busy} = sql("SELECT seriesweb.add_webhook($s, 'Busy [503] {x}', '"
	  . $recv->url('/busy') . "', after => $rule)");
sql("SELECT seriesweb.set_live($s)");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'signup'), ('u2', 'signup')");

wait_status($node, $hook{ok}, 'sent', 2, 'the deliveries to /ok to be sent');
wait_status($node, $hook{gone}, 'failed', 2, 'the deliveries to /gone to fail');
wait_until($node,
	"SELECT count(*) FROM seriesweb.deliveries
	  WHERE block_id = $hook{busy} AND status = 'pending' AND attempts = 2",
	2, 'the deliveries to /busy to wait for their third attempt');
is(request_count($recv, '/busy'), 4, 'two attempts each to /busy');

# --- The diagram, rendered by Graphviz --------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir();
my $dot_file = "$dir/series.dot";
PostgreSQL::Test::Utils::append_to_file($dot_file,
	sql("SELECT seriesweb.series_diagram($s, 'dot')"));

my ($svg, $err) = ('', '');
ok(IPC::Run::run([ 'dot', '-Tsvg', $dot_file ], '>', \$svg, '2>', \$err),
	'dot -Tsvg renders the diagram')
  or diag("dot: $err (is graphviz installed? test/setup.sh installs it)");
like($svg, qr/<svg\b/, 'the output is an SVG');

# Graphviz writes each line of a label as a <text> element, XML-escaped.
my @lines = $svg =~ m{<text\b[^>]*>([^<]*)</text>}g;
my %text = map { $_ => 1 } @lines;
ok($text{$_}, "the picture shows \"$_\"")
  or diag("the picture's lines: @lines")
  for ('Onboarding &quot;Q3&quot;', 'Signed up', 'with a plan', 'rule: reached 2',
	'Say &quot;hi&quot; \\N &amp; &lt;b&gt;', "Caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89",
	'Busy [503] {x}', 'webhook: reached 2',
	'sent 2, failed 0, pending 0', 'sent 0, failed 2, pending 0', 'sent 0, failed 0, pending 2');
is(scalar(() = $svg =~ /<g id="node\d+" class="node">/g), 4, 'one node per block');
is(scalar(() = $svg =~ /<g id="edge\d+" class="edge">/g), 3, 'one edge per connection');

my $png_file = "$dir/series.png";
ok(IPC::Run::run([ 'dot', '-Tpng', '-o', $png_file, $dot_file ], '2>', \$err),
	'dot -Tpng writes a picture')
  or diag("dot: $err");
open my $png, '<:raw', $png_file or die "cannot read $png_file: $!";
read $png, my $signature, 8;
close $png;
is($signature, "\x89PNG\r\n\x1a\n", 'the picture is a PNG');

my $mermaid = sql("SELECT seriesweb.series_diagram($s)");
like($mermaid, qr/^flowchart TD\n/, 'mermaid: a flowchart');
like($mermaid, qr/\Q<br>webhook: reached 2<br>sent 0, failed 0, pending 2"]\E/,
	'mermaid: the counts of a webhook');
is(scalar(() = $mermaid =~ /^  b$rule --> b\d+$/mg), 3, 'mermaid: one edge per connection');

# --- The postgres_exporter queries ----------------------------------------
# A database the worker does not serve (seriesweb.database is postgres):
# its delivery stays pending, due.
sql('CREATE DATABASE quiet');
$node->safe_psql('quiet', <<'EOS');
CREATE EXTENSION seriesweb;
SELECT seriesweb.create_series('Quiet');
SELECT seriesweb.add_rule(1, 'Signed up', 'signup');
SELECT seriesweb.add_webhook(1, 'Hook', 'http://127.0.0.1:9/quiet', after => 1);
SELECT seriesweb.set_live(1);
INSERT INTO seriesweb.events (user_id, name) VALUES ('q1', 'signup');
EOS
# The exporter's role: pg_monitor and nothing else.
sql('CREATE ROLE exporter LOGIN IN ROLE pg_monitor');

my $yml = File::Spec->catfile($ENV{TESTDIR} // '.', 'contrib', 'postgres_exporter.yml');
my @namespaces = read_queries_file($yml);
is( join(' ',
		map { "$_->{namespace}=" . ($_->{cache_seconds} // 0) }
		grep { ($_->{master} // '') eq 'true' } @namespaces),
	'seriesweb=0 seriesweb_block=0 seriesweb_attempts=60 seriesweb_attempt_duration=60 '
	  . 'seriesweb_queue=0 seriesweb_worker=0',
	'every query keeps to the DSN\'s database; the last hour\'s attempts are read once a minute');
is(join(' ', map { $_->{namespace} } @namespaces),
	'seriesweb seriesweb_block seriesweb_attempts seriesweb_attempt_duration seriesweb_queue '
	  . 'seriesweb_worker',
	'the queries file has its six namespaces');

# Each value column is a metric named namespace_column, which the view has;
# and every metric of the view is in the file.
my %in_file;
for my $ns (@namespaces)
{
	$in_file{"$ns->{namespace}_$_->{column}"} = 1
	  for grep { $_->{usage} ne 'LABEL' } @{ $ns->{metrics} };
}
is(join(' ', sort keys %in_file),
	sql("SELECT string_agg(DISTINCT name, ' ' ORDER BY name) FROM seriesweb.metrics"),
	'the file exports every metric of seriesweb.metrics, by its name');

my $json = JSON::PP->new;
my %rows;    # "$db $namespace" -> the query's rows as hashes
for my $db ('postgres', 'quiet')
{
	for my $ns (@namespaces)
	{
		my $what = "$db: $ns->{namespace}";
		my @declared = map { $_->{column} } @{ $ns->{metrics} };
		my %usage = map { $_->{column} => $_->{usage} } @{ $ns->{metrics} };
		my $described = $node->safe_psql($db, "$ns->{query}\\gdesc",
			extra_params => [ '-U', 'exporter' ]);
		my @columns = map { [ split /\|/ ] } split /\n/, $described;
		is(join(' ', map { $_->[0] } @columns), join(' ', @declared), "$what: the declared columns");
		is(join(' ', map { $_->[1] } @columns),
			join(' ', map { $usage{$_} eq 'LABEL' ? 'text' : 'double precision' } @declared),
			"$what: labels are text, values float8");

		my $out = $node->safe_psql($db, "SELECT coalesce(json_agg(q), '[]') FROM ($ns->{query}) q",
			extra_params => [ '-U', 'exporter' ]);
		my $rows = $rows{"$db $ns->{namespace}"} = $json->decode($out);
		ok(@$rows > 0, "$what: rows");
		my @bad = grep {
			my $row = $_;
			grep {
				$usage{$_} eq 'LABEL'
				  ? !(defined $row->{$_} && length $row->{$_})
				  : !(defined $row->{$_} && $row->{$_} =~ /^(-?[0-9.e+-]+|NaN)$/)
			} @declared
		} @$rows;
		is(scalar @bad, 0, "$what: every label set, every value a number")
		  or diag(explain \@bad);
		is(scalar(grep { $_->{database} ne $db } @$rows), 0, "$what: labelled with its database");
	}
}

# What the deliveries imply.
my %deliveries =
  map { ("$_->{block} $_->{status}" => $_->{deliveries}) } @{ $rows{'postgres seriesweb'} };
is(join(' ', map { $deliveries{"$hook{$_} sent"} . '/' . $deliveries{"$hook{$_} failed"} . '/'
	  . $deliveries{"$hook{$_} pending"} } qw(ok gone busy)),
	'2/0/0 0/2/0 0/0/2', 'seriesweb_deliveries: sent/failed/pending of each webhook');
my %reached =
  map { ("$_->{block} $_->{kind}" => $_->{reached_total}) } @{ $rows{'postgres seriesweb_block'} };
is(join(' ', map { $reached{$_} } ("$rule rule", map { "$hook{$_} webhook" } qw(ok gone busy))),
	'2 2 2 2', 'seriesweb_block_reached_total of each block');
my %attempts = map { ($_->{outcome} => $_->{last_hour}) } @{ $rows{'postgres seriesweb_attempts'} };
is("$attempts{success} $attempts{failure}", '2 6',
	'seriesweb_attempts_last_hour: 2 sent, 6 failed');
my %quantile = map { ($_->{quantile} => $_->{last_hour_seconds}) }
  @{ $rows{'postgres seriesweb_attempt_duration'} };
ok($quantile{'0.5'} > 0 && $quantile{'0.5'} < 2 && $quantile{'0.95'} >= $quantile{'0.5'},
	'seriesweb_attempt_duration_last_hour_seconds: p50 and p95 of the attempts')
  or diag(explain \%quantile);
my ($queue) = @{ $rows{'postgres seriesweb_queue'} };
is("$queue->{depth} $queue->{oldest_due_age_seconds}", '2 0',
	'seriesweb_queue: two pending, none due yet');
($queue) = @{ $rows{'quiet seriesweb_queue'} };
ok($queue->{depth} == 1 && $queue->{oldest_due_age_seconds} > 0,
	'seriesweb_queue, unserved database: one pending, due for a while')
  or diag(explain $queue);
is(join(' ', map { "$_->{state}=$_->{status}" } @{ $rows{'postgres seriesweb_worker'} }),
	'running=1', 'seriesweb_worker_status: running');
is(join(' ', map { "$_->{state}=$_->{status}" } @{ $rows{'quiet seriesweb_worker'} }),
	'not served=1', 'seriesweb_worker_status, unserved database: not served');

done_testing();

# read_queries_file($file) -> ({namespace, master, cache_seconds, query,
# metrics => [{column, usage, description}]}, ...), in file order.  A reader
# for exactly the subset of YAML that contrib/postgres_exporter.yml is
# written in (Perl core has no YAML parser): comments and blank lines
# between entries; each namespace a top-level key; "master: true|false";
# "cache_seconds: N"; "query: |" followed by lines indented by four spaces;
# "metrics:" followed by "- column:" items with "usage" and a double-quoted
# "description".  Anything else dies, naming the line, so the file cannot
# drift from what this test checks.
sub read_queries_file
{
	my ($file) = @_;
	open my $fh, '<', $file or die "cannot read $file: $!";
	my (@namespaces, $ns, $column, $in_query);
	while (my $line = <$fh>)
	{
		chomp $line;
		if ($in_query)
		{
			if ($line =~ /^    (.*)$/)
			{
				$ns->{query} .= "$1\n";
				next;
			}
			$in_query = 0;
		}
		next if $line =~ /^(#.*)?$/;
		if ($line =~ /^([a-z_]+):$/)
		{
			push @namespaces, $ns = { namespace => $1, metrics => [] };
			undef $column;
		}
		elsif ($ns && $line =~ /^  master: (true|false)$/) { $ns->{master} = $1 }
		elsif ($ns && $line =~ /^  cache_seconds: ([0-9]+)$/) { $ns->{cache_seconds} = $1 }
		elsif ($ns && $line eq '  query: |') { $in_query = 1; $ns->{query} = '' }
		elsif ($ns && $line eq '  metrics:') { }
		elsif ($ns && $line =~ /^    - ([a-z_]+):$/)
		{
			push @{ $ns->{metrics} }, $column = { column => $1 };
		}
		elsif ($column && $line =~ /^        usage: "(LABEL|GAUGE|COUNTER)"$/) { $column->{usage} = $1 }
		elsif ($column && $line =~ /^        description: "([^"\\]+)"$/) { $column->{description} = $1 }
		else { die "$file line $.: not in the shape this reader knows: $line\n" }
	}
	close $fh;
	for my $n (@namespaces)
	{
		die "$file: namespace $n->{namespace} lacks a query or metrics\n"
		  unless defined $n->{query} && $n->{query} =~ /\S/ && @{ $n->{metrics} };
		die "$file: a metric of $n->{namespace} lacks its usage or description\n"
		  if grep { !$_->{usage} || !$_->{description} } @{ $n->{metrics} };
	}
	return @namespaces;
}
