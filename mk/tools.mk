# mk/tools.mk - benchmarks, fuzzing and formatting: not part of `make test`
# (CI runs format-check and fuzz besides it, see .ci/run).

.PHONY: format format-check
# Benchmarks (issue 5): not part of `make test`.  `make bench` (QUICK=1 for a
# one-minute smoke run) installs what is missing, runs test/bench/run.sh as an
# unprivileged user and writes test/bench/report.md here.
BENCH_DIR ?= /tmp/seriesweb-bench-tree
.PHONY: bench bench-unprivileged
bench:
	@SERIESWEB_EXTRA_PACKAGES="$${SERIESWEB_EXTRA_PACKAGES:-} nginx-light libnginx-mod-http-echo wrk curl" sh test/setup.sh
	@$(MAKE) --no-print-directory all
	@SERIESWEB_TEST_DIR='$(BENCH_DIR)' sh test/as-user.sh install-and-run bench-unprivileged QUICK='$(QUICK)' BENCH_ONLY='$(BENCH_ONLY)' \
		BENCH_REVISION="$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' with local changes')"
	@if [ "$$(id -u)" -eq 0 ]; then cp '$(BENCH_DIR)/test/bench/report.md' test/bench/report.md; fi

bench-unprivileged:
	@QUICK='$(QUICK)' BENCH_ONLY='$(BENCH_ONLY)' BENCH_REVISION='$(BENCH_REVISION)' PG_CONFIG='$(PG_CONFIG)' bash test/bench/run.sh

# Fuzzing (issue 4): `make fuzz` installs clang and libFuzzer if missing, then,
# as an unprivileged user in FUZZ_DIR, builds the harnesses of test/fuzz/ and
# runs each for FUZZ_SECONDS inside a single-user PostgreSQL (FUZZ_TARGETS
# picks some); a crash or sanitizer report fails it (test/fuzz/README.md).
FUZZ_DIR ?= /tmp/seriesweb-fuzz-tree
FUZZ_SECONDS ?= 60
.PHONY: fuzz fuzz-unprivileged
fuzz:
	@SERIESWEB_EXTRA_PACKAGES="$${SERIESWEB_EXTRA_PACKAGES:-} clang-14 libclang-rt-14-dev" sh test/setup.sh
	@$(MAKE) --no-print-directory all
	@SERIESWEB_TEST_DIR='$(FUZZ_DIR)' sh test/as-user.sh install-and-run fuzz-unprivileged \
		FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_TARGETS='$(FUZZ_TARGETS)'

fuzz-unprivileged:
	@$(MAKE) -s --no-print-directory -C test/fuzz run PG_CONFIG='$(PG_CONFIG)'

# C formatting: .clang-format (close to pgindent); CI runs format-check.
format:
	@SERIESWEB_EXTRA_PACKAGES=clang-format sh test/setup.sh
	clang-format -i src/*.c src/*.h

format-check:
	@SERIESWEB_EXTRA_PACKAGES=clang-format sh test/setup.sh
	@clang-format --dry-run --Werror src/*.c src/*.h && echo "seriesweb: src/ is formatted"
