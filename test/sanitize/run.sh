#!/bin/sh
# run.sh — what `make test SANITIZE=1` runs as the unprivileged test user, from
# the top of the tree: build seriesweb with AddressSanitizer and
# UndefinedBehaviorSanitizer, install it into a private copy of the server
# installation whose postgres loads the ASan runtime, run the regression and
# TAP suites against that, and fail on any sanitizer report.  README.md here
# explains the choices.
set -eu

PG_CONFIG=${PG_CONFIG:-pg_config}
top=$(pwd)
dir=$top/tmp_check/sanitize
build=$dir/build
inst=$dir/install
logs=$dir/logs
# clang, not PGXS's gcc: gcc's UBSan runtime is a second library that reads
# its options only when it first reports, from /proc/self/environ, which a
# PostgreSQL backend has overwritten with its process title by then; and it
# writes to stderr whatever log_path says (README.md).  clang's ASan runtime
# includes UBSan: one set of options, read at startup, one log.  The -Wno-*
# quiet clang about gcc-only options in PGXS's CFLAGS.
clang=${CLANG:-clang-14}
runtime=$("$clang" -print-file-name="libclang_rt.asan-$(uname -m).so")
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -shared-libasan"
quiet="-Wno-unknown-warning-option -Wno-ignored-optimization-argument -Wno-ignored-attributes -Wno-compound-token-split-by-macro"
if [ ! -f "$runtime" ]; then
	echo "sanitize: no ASan runtime for $clang (Debian: libclang-rt-14-dev)" >&2
	exit 1
fi

rm -rf "$dir"
mkdir -p "$build" "$logs"

# 1. Build in a copy of the sources: no sanitized object or library is ever
# left where a plain `make install` would pick it up.
cp -R Makefile mk seriesweb.control src sql "$build/"
rm -f "$build"/src/*.o "$build"/src/*.bc "$build"/*.so
echo "sanitize: building seriesweb with $clang $flags"
make -C "$build" -s --no-print-directory all CC="$clang" COPT="$flags $quiet" PG_CONFIG="$PG_CONFIG"

# 2. A private installation: a copy of the server's own files (its binaries
# find their libraries and share files relative to where they are), then
# the sanitized seriesweb on top.  The system-wide one is not touched.
bindir=$("$PG_CONFIG" --bindir)
for d in "$bindir" "$("$PG_CONFIG" --pkglibdir)" "$("$PG_CONFIG" --sharedir)"; do
	mkdir -p "$inst$(dirname "$d")"
	cp -a "$d" "$inst$d"
done
make -C "$build" -s --no-print-directory install DESTDIR="$inst" CC="$clang" COPT="$flags $quiet" PG_CONFIG="$PG_CONFIG"

# 3. Its postgres loads the ASan runtime first (the binary is not
# instrumented, so nothing else would), with asan_preload.so so that the
# runtime can start (see that file).  Only server processes carry it:
# initdb, pg_ctl, psql and the test drivers run as usual.  Reports, ASan's
# and UBSan's, go to files (report.<pid>), since the server's stderr goes to
# its log, and abort the process, so the test that triggered one fails too.
# Leak reports would be noise: PostgreSQL frees memory by resetting
# contexts.  The wrapper passes its own path as argv[0]: the postmaster
# records that in postmaster.opts, and `pg_ctl restart` starts whatever is
# recorded there.
"$clang" -shared -fPIC -O2 -o "$dir/asan_preload.so" test/sanitize/asan_preload.c
mv "$inst$bindir/postgres" "$inst$bindir/postgres.bin"
cat >"$inst$bindir/postgres" <<EOF
#!/bin/bash
# Written by test/sanitize/run.sh: postgres with the ASan runtime preloaded.
LD_PRELOAD="$runtime $dir/asan_preload.so" \\
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$logs/report" \\
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$logs/report" \\
exec -a "\$0" "$inst$bindir/postgres.bin" "\$@"
EOF
chmod +x "$inst$bindir/postgres"

# 4. The same suites as `make test`, against the private installation.
status=0
make -k --no-print-directory check-regress check-tap bindir="$inst$bindir" || status=$?

# 5. A report fails the run even if no test noticed (a background worker
# that aborted and was restarted, say).
if [ -n "$(ls "$logs")" ]; then
	for f in "$logs"/*; do
		echo "==== $f" >&2
		cat "$f" >&2
	done
	set -- "$logs"/*
	echo "sanitize: $# sanitizer report(s), in $logs" >&2
	exit 1
fi
if [ $status -ne 0 ]; then
	echo "sanitize: the suites failed against the sanitized build (exit status $status)" >&2
	exit $status
fi
echo "sanitize: every suite passed with ASan and UBSan, no sanitizer report"
