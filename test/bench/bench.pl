#!/usr/bin/perl
#
# bench.pl - the measuring half of the seriesweb benchmark (run.sh drives it).
#
# Perl core only, so that it runs wherever `make test` runs.  Subcommands:
#
#   wait LOG OFFSET EXPECT TIMEOUT_S [RSS_PID RSS_AT]
#       Follow nginx's access log from byte OFFSET until EXPECT lines have been
#       appended or TIMEOUT_S passed, reading only the new bytes (cheap next to
#       the system under test).  With RSS_PID, sample its memory every 100 ms
#       (VmRSS, RssAnon, RssShmem): the first sample once RSS_AT lines have
#       arrived, the largest and the last.  Prints "lines=N waited=S
#       VmRSS_at=KB VmRSS_max=KB VmRSS_end=KB RssAnon_at=..." (kB).
#
#   arrivals LOG OFFSET PREFIX T0 [DEADLINE]
#       Requests after OFFSET whose path starts with PREFIX: how many, the
#       first and last arrival, the rate from T0 (the commit that queued them,
#       epoch seconds) to the last arrival, how many arrived by DEADLINE,
#       repeated paths (duplicates), non-200 answers, the median request body
#       size, the number of connections used, and the 50th and 99th percentile
#       of the arrivals' time after T0 (seconds; t0_p50, t0_p99: for requests
#       that were all due at T0).  Prints key=value pairs.
#
#   latency LOG OFFSET PREFIX TIMES PGBENCH_LOG...
#       TIMES holds "user_id|epoch" lines (each event's occurred_at, taken in
#       the INSERT); the pgbench logs (-l) give when each transaction's commit
#       was acknowledged.  Joins both with the arrivals at PREFIX<user_id> and
#       prints p50, p99 and max in milliseconds from the commit, the same from
#       the INSERT (insert_p50, insert_p99), and events that never arrived.
#
#   report RESULTS OUT [METHOD]
#       RESULTS holds tab-separated "key run value" lines; writes the Markdown
#       report (median/min/max per figure, ratios against the baseline measured
#       in the same run) to OUT; the figures are listed in report().  METHOD,
#       a Markdown file, is appended as it is.
#
use strict;
use warnings;
use Time::HiRes qw(time sleep);

my $cmd = shift // die "usage: bench.pl wait|arrivals|latency|report ...\n";

# The worker's memory in kB: VmRSS, and its private part RssAnon (VmRSS also
# counts the shared buffers the process has touched, RssShmem).
sub rss_kb
{
	my ($pid) = @_;
	my %m;
	open(my $fh, '<', "/proc/$pid/status") or return ();
	while (<$fh>)
	{
		$m{$1} = $2 if /^(VmRSS|RssAnon|RssShmem):\s+(\d+)/;
	}
	return defined $m{VmRSS} ? (\%m) : ();
}

# Lines appended to $log after byte $offset, as a list.
sub lines_after
{
	my ($log, $offset) = @_;
	open(my $fh, '<', $log) or die "bench.pl: cannot read $log: $!\n";
	seek($fh, $offset, 0);
	local $/ = "\n";
	my @lines = grep { /\n\z/ } <$fh>;
	return @lines;
}

sub median
{
	my @v = sort { $a <=> $b } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# Nearest-rank percentile.
sub percentile
{
	my ($p, @v) = @_;
	@v = sort { $a <=> $b } @v;
	return undef unless @v;
	my $rank = int($p / 100 * @v + 0.999999);
	$rank = 1 if $rank < 1;
	return $v[$rank - 1];
}

if ($cmd eq 'wait')
{
	my ($log, $offset, $expect, $timeout, $pid, $rss_at) = @ARGV;
	open(my $fh, '<', $log) or die "bench.pl: cannot read $log: $!\n";
	seek($fh, $offset, 0);
	my ($lines, $start, $buf) = (0, time, '');
	my (%at, %max, %last);
	while (1)
	{
		my $n;
		while (($n = read($fh, $buf, 1 << 20)) && $n > 0)
		{
			$lines += ($buf =~ tr/\n//);
		}
		seek($fh, 0, 1);	# clear EOF, keep the position
		if ($pid)
		{
			my ($m) = rss_kb($pid);
			for my $k (keys %{ $m // {} })
			{
				$last{$k} = $m->{$k};
				$max{$k} = $m->{$k} if !defined $max{$k} || $m->{$k} > $max{$k};
				$at{$k} = $m->{$k} if !defined $at{$k} && $lines >= $rss_at;
			}
		}
		last if $lines >= $expect || time - $start > $timeout;
		sleep(0.1);
	}
	printf "lines=%d waited=%.1f", $lines, time - $start;
	for my $k (qw(VmRSS RssAnon RssShmem))
	{
		printf " %s_at=%s %s_max=%s %s_end=%s", $k, $at{$k} // '', $k, $max{$k} // '', $k, $last{$k} // '';
	}
	print "\n";
}
elsif ($cmd eq 'arrivals')
{
	my ($log, $offset, $prefix, $t0, $deadline) = @ARGV;
	my ($n, $first, $last, $by_deadline, $bad) = (0, undef, undef, 0, 0);
	my (%seen, %conns, @sizes, @after);
	my $dups = 0;
	for (lines_after($log, $offset))
	{
		my ($t, $path, $status, $len, $conn) = split ' ';
		next unless index($path, $prefix) == 0;
		$n++;
		$first = $t if !defined $first || $t < $first;
		$last = $t if !defined $last || $t > $last;
		$by_deadline++ if defined $deadline && $t <= $deadline;
		$dups++ if $seen{$path}++;
		$bad++ if $status ne '200';
		$conns{$conn} = 1;
		push @sizes, $len if @sizes < 100000 && $len =~ /^\d+$/;
		push @after, $t - $t0;
	}
	my $span = defined $last ? $last - $t0 : 0;
	printf "count=%d first=%s last=%s span=%.3f rate=%.1f by_deadline=%d dups=%d non200=%d body=%s conns=%d"
	  . " t0_p50=%.3f t0_p99=%.3f\n",
	  $n, $first // '', $last // '', $span, $span > 0 ? $n / $span : 0, $by_deadline, $dups, $bad,
	  median(@sizes) // '', scalar keys %conns, percentile(50, @after) // -1, percentile(99, @after) // -1;
}
elsif ($cmd eq 'latency')
{
	my ($log, $offset, $prefix, $times, @pgbench_logs) = @ARGV;
	my %arrival;
	for (lines_after($log, $offset))
	{
		my ($t, $path) = split ' ';
		next unless index($path, $prefix) == 0;
		my $user = substr($path, length $prefix);
		$arrival{$user} = $t if !defined $arrival{$user} || $t < $arrival{$user};
	}

	# When pgbench saw each transaction's commit acknowledged, per client in
	# order: "client_id transaction_no latency_us script_no epoch us ...".
	my %acks;
	for my $f (@pgbench_logs)
	{
		open(my $fh, '<', $f) or die "bench.pl: cannot read $f: $!\n";
		while (<$fh>)
		{
			my ($client, $no, $lat, $script, $epoch, $us) = split ' ';
			push @{ $acks{$client} }, [ $no, $epoch + $us / 1e6 ];
		}
	}
	$acks{$_} = [ map { $_->[1] } sort { $a->[0] <=> $b->[0] } @{ $acks{$_} } ] for keys %acks;

	# Users are u<tag>-<client, 2 digits><sequence, 7 digits>: a client's
	# k-th event (by sequence) is its k-th transaction.
	open(my $fh, '<', $times) or die "bench.pl: cannot read $times: $!\n";
	my (%events, @from_insert, @from_commit, $missing);
	$missing = 0;
	while (<$fh>)
	{
		chomp;
		my ($user, $t) = split /\|/;
		next unless defined $t;
		unless (defined $arrival{$user})
		{
			$missing++;
			next;
		}
		push @from_insert, ($arrival{$user} - $t) * 1000;
		push @{ $events{$1} }, [ $2, $user ] if $user =~ /-(\d\d)(\d{7})$/;
	}
	my $unmatched = 0;
	for my $client (keys %events)
	{
		my @ev = sort { $a->[0] <=> $b->[0] } @{ $events{$client} };
		my $acks = $acks{ $client + 0 } // [];
		if (@$acks != @ev)
		{
			$unmatched += @ev;
			next;
		}
		push @from_commit, ($arrival{ $ev[$_][1] } - $acks->[$_]) * 1000 for 0 .. $#ev;
	}
	printf "events=%d missing=%d unmatched=%d p50=%.2f p99=%.2f max=%.2f insert_p50=%.2f insert_p99=%.2f\n",
	  scalar(@from_insert) + $missing, $missing, $unmatched,
	  percentile(50, @from_commit) // -1, percentile(99, @from_commit) // -1, percentile(100, @from_commit) // -1,
	  percentile(50, @from_insert) // -1, percentile(99, @from_insert) // -1;
}
elsif ($cmd eq 'report')
{
	report(@ARGV);
}
else
{
	die "bench.pl: unknown command $cmd\n";
}

# ---- the report ----

sub report
{
	my ($results, $out, $method) = @_;
	my (%v, %meta);
	open(my $in, '<', $results) or die "bench.pl: cannot read $results: $!\n";
	while (<$in>)
	{
		chomp;
		next if /^\s*$/;
		my ($key, $run, $value) = split /\t/, $_, 3;
		if ($key eq 'meta')
		{
			$meta{$run} = $value;
			next;
		}
		$v{$key}{$run} = $value;
	}

	my @figures = (
		{
			title => 'Insert TPS, events that match no rule, 100 live series',
			key => 'nomatch_tps', base => 'nomatch_tps_base', unit => 'TPS',
			base_title => 'same table, no trigger', target => 0.90, dir => '>=', ratio => 1,
		},
		{
			title => "Insert TPS, events that match no rule, $meta{held_n} users held in a 1-day wait",
			key => 'nomatch_waiting_tps', base => 'nomatch_waiting_tps_base', unit => 'TPS',
			base_title => 'same definitions, users and events, nobody waiting', target => 0.95, dir => '>=',
			ratio => 1,
		},
		{
			title => "... the same events into the application's own table, watched",
			key => 'watched_tps', base => 'watched_tps_base', unit => 'TPS',
			base_title => 'same table, not watched', target => 0.90, dir => '>=', ratio => 1,
		},
		{
			title => 'Insert TPS, each event fires one webhook (worker sending meanwhile)',
			key => 'fire_tps', base => 'fire_tps_base', unit => 'TPS',
			base_title => 'same table, no trigger', target => 0.50, dir => '>=', ratio => 1,
		},
		{
			title => '... the same, trigger only (the worker serves another database)',
			key => 'fire_nw_tps', base => 'fire_nw_tps_base', unit => 'TPS',
			base_title => 'same table, no trigger', target => undef, dir => '>=', ratio => 1,
		},
		{
			title => "COPY of $meta{copy_n} events, 10% fire a webhook (time)",
			key => 'copy_s', base => 'copy_s_base', unit => 's',
			base_title => 'plain COPY into the same table', target => 2.0, dir => '<=', ratio => 1,
		},
		{
			title => "First import into a fresh install, single-row INSERTs in one transaction (time)",
			key => 'import_first_s', base => 'import_second_s', unit => 's',
			base_title => 'the same import again', target => 1.2, dir => '<=', ratio => 1,
		},
		{
			title => "Delivery throughput, $meta{q1_n} queued, $meta{body} B JSON to nginx",
			key => 'drain1_rate', base => 'ceiling', unit => '/s',
			base_title => 'nginx ceiling under wrk', target => 10000, target_text => '>= 10,000/s (>= 0.1x)',
			dir => '>=', ratio => 1, abs => 1,
		},
		{
			title => "Same, $meta{q2_n} queued",
			key => 'drain2_rate', base => 'drain1_rate', unit => '/s',
			base_title => "the $meta{q1_n} run", target => 0.90, dir => '>=', ratio => 1,
		},
		{
			title => "Release of $meta{release_n} users from one wait at the same instant (due time -> last arrival)",
			key => 'release_rate', base => 'release_drain_rate', unit => '/s',
			base_title => "plain drain of $meta{release_n} queued, measured next to it", target => 0.80,
			dir => '>=', ratio => 1,
		},
		{
			title => '... due time -> receipt, p50',
			key => 'release_p50_s', unit => 's', target => undef, dir => '<=',
		},
		{
			title => '... due time -> receipt, p99',
			key => 'release_p99_s', unit => 's', target => undef, dir => '<=',
		},
		{
			title => '... due time -> start of the last release transaction',
			key => 'release_last_tx_s', unit => 's', target => undef, dir => '<=',
		},
		{
			title => 'Commit -> receipt latency at 200 events/s, p50',
			key => 'lat_p50', unit => 'ms', target => 5, dir => '<=',
		},
		{
			title => 'Commit -> receipt latency at 200 events/s, p99',
			key => 'lat_p99', unit => 'ms', target => 25, dir => '<=',
		},
		{
			title => 'Fast endpoint throughput while a 2 s endpoint takes half the traffic',
			key => 'slow_fast_rate', base => 'slow_base_rate', unit => '/s',
			base_title => 'fast endpoint alone', target => 0.80, dir => '>=', ratio => 1,
		},
		{
			title => "Worker RSS growth over $meta{q2_n} deliveries (VmRSS)",
			key => 'rss_growth_mb', unit => 'MB', target => 10, dir => '<=',
			base_title => 'VmRSS after the first 10k', base => 'rss_at_mb', noratio => 1,
		},
		{
			title => '... its private part (RssAnon; VmRSS also counts touched shared buffers)',
			key => 'anon_growth_mb', unit => 'MB', target => 10, dir => '<=',
			base_title => 'RssAnon after the first 10k', base => 'anon_at_mb', noratio => 1,
		},
	);

	open(my $o, '>', $out) or die "bench.pl: cannot write $out: $!\n";
	print $o "# seriesweb benchmark report\n\n";
	print $o "Generated by `$meta{command}` on $meta{date} ($meta{mode} mode).\n";
	print $o "Source: $meta{revision}.\n\n";
	print $o "Machine: $meta{machine}. PostgreSQL $meta{pg}, nginx $meta{nginx}, libcurl $meta{curl}.\n";
	print $o "Settings: fsync=on, synchronous_commit=on, $meta{pgconf}.\n";
	print $o "Contention: $meta{contention}.\n" if $meta{contention};
	print $o "\n";
	print $o "Each figure is the median [min - max] of the runs shown; a ratio is computed per run against\n";
	print $o "the baseline measured next to it (the runs alternate), then summarised the same way.\n\n";
	print $o "| figure | measured | baseline | ratio | target | met |\n";
	print $o "|---|---|---|---|---|---|\n";
	for my $f (@figures)
	{
		my @vals = vals(\%v, $f->{key});
		next unless @vals;
		my @bvals = $f->{base} ? vals(\%v, $f->{base}) : ();
		my ($ratio_cell, @ratios) = ('-');
		if ($f->{ratio} && @bvals)
		{
			@ratios = paired(\%v, $f->{key}, $f->{base});
			$ratio_cell = summary(\@ratios, median(@ratios) < 0.1 ? 3 : 2, 'x') if @ratios;
		}
		my $checked = $f->{abs} ? median(@vals) : $f->{ratio} ? median(@ratios) : median(@vals);
		my $met = '-';
		if (defined $f->{target} && defined $checked)
		{
			$met = ($f->{dir} eq '>=' ? $checked >= $f->{target} : $checked <= $f->{target}) ? 'yes' : '**no**';
			$met = '**no**' if $f->{abs} && @ratios && median(@ratios) < 0.1;
		}
		my $target = $f->{target_text}
		  // (defined $f->{target} ? "$f->{dir} $f->{target}" . ($f->{ratio} ? 'x' : " $f->{unit}") : '(diagnostic)');
		my $dec = $f->{unit} eq 'ms' || $f->{unit} eq 's' || $f->{unit} eq 'MB' ? 2 : 0;
		printf $o "| %s | %s | %s | %s | %s | %s |\n", $f->{title},
		  summary(\@vals, $dec, " $f->{unit}") . ' (' . scalar(@vals) . ' runs)',
		  @bvals ? "$f->{base_title}: " . summary(\@bvals, $dec, " $f->{unit}") . ' (' . scalar(@bvals) . ' runs)' : '-',
		  $ratio_cell, $target, $met;
	}
	print $o "\n## Delivery checks\n\n";
	print $o "Every delivery the database counts as sent was received by nginx (same count, no duplicates),\n";
	print $o "unless a line below says otherwise.\n\n";
	for my $line (sort { $a <=> $b } grep { /^\d+$/ } keys %{ $v{check} // {} })
	{
		print $o "- $v{check}{$line}\n";
	}
	if ($method && open(my $m, "<", $method))
	{
		local $/;
		print $o "\n", <$m>;
	}
	print $o "\n## Raw values\n\n";
	print $o "| key | runs |\n|---|---|\n";
	for my $key (sort keys %v)
	{
		next if $key eq 'check';
		my @runs = sort { $a <=> $b } keys %{ $v{$key} };
		printf $o "| %s | %s |\n", $key, join(', ', map { "$_: $v{$key}{$_}" } @runs);
	}
	close($o);
}

sub vals
{
	my ($v, $key) = @_;
	return () unless $v->{$key};
	return map { $v->{$key}{$_} } sort { $a <=> $b } keys %{ $v->{$key} };
}

# Ratios of the runs that have both a value and a baseline.
sub paired
{
	my ($v, $key, $base) = @_;
	my @r;
	for my $run (sort { $a <=> $b } keys %{ $v->{$key} })
	{
		my $b = $v->{$base}{$run};
		push @r, $v->{$key}{$run} / $b if defined $b && $b != 0;
	}
	return @r;
}

sub fmt
{
	my ($x, $dec) = @_;
	my $s = sprintf("%.${dec}f", $x);
	1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;
	return $s;
}

sub summary
{
	my ($vals, $dec, $unit) = @_;
	my @s = sort { $a <=> $b } @$vals;
	return '-' unless @s;
	return sprintf('%s%s [%s - %s]', fmt(median(@s), $dec), $unit, fmt($s[0], $dec), fmt($s[-1], $dec));
}
