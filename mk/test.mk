# mk/test.mk - the README's two commands and the suites they run.
#
# `make demo` and `make test` each install what is missing (test/setup.sh),
# build and install the extension, and run PostgreSQL as an unprivileged
# user (test/as-user.sh), because PostgreSQL refuses to run as root and CI
# runs as root.

.PHONY: test demo deps demo-unprivileged check-unprivileged check-regress check-tap

# Install missing packages (apt as root; otherwise print the exact command).
deps:
	@sh test/setup.sh

# The README's test command: deps, build, install, then every suite as an
# unprivileged user against throwaway clusters.
test: deps
	@$(MAKE) --no-print-directory all
	@sh test/as-user.sh install-and-run check-unprivileged

# The README's demo command.
demo: deps
	@$(MAKE) --no-print-directory all
	@sh test/as-user.sh install-and-run demo-unprivileged

demo-unprivileged:
	@bash test/demo.sh

# Everything below runs as an unprivileged user with the extension installed.
# With SANITIZE=1 (`make test SANITIZE=1`), the same suites run against an
# ASan+UBSan build in a private copy of the server installation, and any
# sanitizer report fails them (test/sanitize/README.md).
ifeq ($(SANITIZE),1)
export SERIESWEB_EXTRA_PACKAGES += clang-14 libclang-rt-14-dev
check-unprivileged:
	@PG_CONFIG='$(PG_CONFIG)' sh test/sanitize/run.sh
else
check-unprivileged: check-regress check-tap
endif

check-regress:
	@mkdir -p tmp_check
	$(pg_regress_installcheck) $(REGRESS_OPTS) --temp-instance=./tmp_check/regress \
		--temp-config=test/regress.conf $(REGRESS)

check-tap:
	rm -rf tmp_check/log && mkdir -p tmp_check
	TESTDIR='$(CURDIR)' PATH="$(bindir):$$PATH" \
	PG_REGRESS='$(dir $(PGXS))../../src/test/regress/pg_regress' \
	$(PROVE) -I '$(dir $(PGXS))../../src/test/perl' -I test/lib $(PROVE_FLAGS) \
		$(if $(PROVE_TESTS),$(PROVE_TESTS),test/t/*.pl)
