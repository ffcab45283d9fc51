#!/bin/sh
# run.sh — run the libFuzzer harnesses inside a throwaway single-user
# PostgreSQL (see README.md); `make fuzz` builds them and calls this as an
# unprivileged user.
#
#   sh run.sh                  fuzz each target for FUZZ_SECONDS (default 60)
#   sh run.sh TARGET FILE...   run TARGET once on each FILE (a reproducer)
#
# FUZZ_TARGETS picks targets (default: template filter guard response), FUZZ_ARGS adds
# libFuzzer options, FUZZ_WORK is where the cluster, the new corpus entries,
# the logs and any crash-* reproducers go (default: tmp_check/fuzz).
# Exits non-zero when a target finds anything or does not run its time.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
CLANG=${CLANG:-clang-14}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-template filter guard response}
work=${FUZZ_WORK:-$here/../../tmp_check/fuzz}
bindir=$("$PG_CONFIG" --bindir)
module=$here/build/sw_fuzz.so

if [ "$(id -u)" -eq 0 ]; then
	echo "run.sh: PostgreSQL refuses to run as root; use 'make fuzz'" >&2
	exit 2
fi

# The ASan runtime the module was built against, preloaded because postgres
# itself is not instrumented; asan_preload.so lets it start (see its header).
asan_runtime=$("$CLANG" -print-file-name="libclang_rt.asan-$(uname -m).so")
[ -f "$asan_runtime" ] || asan_runtime=$("$CLANG" -print-file-name=libclang_rt.asan.so)
preload="$asan_runtime $here/build/asan_preload.so"

# Leak reports are noise: PostgreSQL frees memory by resetting contexts,
# and at exit not at all.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"

mkdir -p "$work"
work=$(cd "$work" && pwd)
if [ ! -f "$work/data/PG_VERSION" ]; then
	rm -rf "$work/data"
	"$bindir/initdb" -D "$work/data" -A trust -E UTF8 --locale=C --no-sync -U fuzz >"$work/initdb.log" 2>&1 ||
		{ cat "$work/initdb.log" >&2; exit 1; }
fi

# SQL text literal.
quote() {
	printf "'%s'" "$(printf %s "$1" | sed "s/'/''/g")"
}

# fuzz TARGET ARG...: call sw_fuzz_run(TARGET, ARRAY[ARG...]) in a fresh
# single-user backend, whose output (libFuzzer's included) goes to stdout.
fuzz() {
	target=$1
	shift
	args=""
	for a in "$@"; do
		args="$args${args:+, }$(quote "$a")"
	done
	printf '%s\n%s\n' \
		"CREATE OR REPLACE FUNCTION sw_fuzz_run(text, text[]) RETURNS int AS $(quote "$module"), 'sw_fuzz_run' LANGUAGE C STRICT;" \
		"SELECT sw_fuzz_run($(quote "$target"), ARRAY[$args]::text[]);" |
		LD_PRELOAD="$preload" "$bindir/postgres" --single -D "$work/data" -F \
			-c shared_buffers=16MB -c TimeZone=UTC -c log_checkpoints=off postgres 2>&1
}

# The reproducers libFuzzer wrote into DIR, if any.
artifacts() {
	for f in "$1"/crash-* "$1"/oom-* "$1"/timeout-* "$1"/leak-* "$1"/slow-unit-*; do
		if [ -e "$f" ]; then echo "$f"; fi
	done
}

max_len() {
	case $1 in
		template) echo 16384 ;;
		*) echo 4096 ;;
	esac
}

# Reproduce: the backend runs in the data directory, so paths go absolute.
if [ $# -gt 0 ]; then
	target=$1
	shift
	for a in "$@"; do
		if [ -e "$a" ]; then
			a=$(cd "$(dirname "$a")" && pwd)/$(basename "$a")
		fi
		set -- "$@" "$a"
		shift
	done
	fuzz "$target" "$@"
	exit $?
fi

failed=""
for t in $targets; do
	dir=$work/$t
	rm -rf "$dir"
	mkdir -p "$dir/corpus"
	dict=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	echo "fuzz: $t for ${seconds}s (log: $dir/fuzz.log)"
	status=0
	# shellcheck disable=SC2086
	fuzz "$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=30 \
		-artifact_prefix="$dir/" -print_final_stats=1 $dict ${FUZZ_ARGS:-} \
		"$dir/corpus" "$here/corpus/$t" >"$dir/fuzz.log" 2>&1 || status=$?
	grep -E '^INFO: Loaded|^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec)|^sw_fuzz:' \
		"$dir/fuzz.log" | sed 's/^/    /' || true
	found=$(artifacts "$dir")
	if [ $status -ne 0 ] || [ -n "$found" ] || ! grep -q '^Done [0-9]* runs' "$dir/fuzz.log"; then
		echo "fuzz: $t FAILED (exit status $status); from $dir/fuzz.log:" >&2
		grep -n -E 'FINDING|ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|deadly signal|ERROR:  |FATAL|Test unit written' \
			"$dir/fuzz.log" | head -20 >&2 || true
		for f in $found; do
			echo "    reproduce: sh test/fuzz/run.sh $t $f" >&2
		done
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: all targets ran ${seconds}s each without a finding"
