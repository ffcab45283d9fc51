# seriesweb - build and install with PGXS; the README's two commands,
# `make demo` and `make test`, and the other targets are in mk/:
#   mk/test.mk    test, demo, deps and the suites they run (check-regress, check-tap)
#   mk/tools.mk   bench, fuzz, format and format-check

EXTENSION  = seriesweb
# The version is the control file's default_version, written once there.
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big = seriesweb
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA       = $(sort $(wildcard sql/seriesweb--*.sql))
PG_CPPFLAGS = -I$(srcdir)/src -DSERIESWEB_VERSION='"$(EXTVERSION)"'
SHLIB_LINK  = -lcurl

# pg_regress suites (test/sql, test/expected), run against a throwaway
# instance by check-regress in mk/test.mk.
REGRESS = schema validation matching templates filters testing guard limits privileges bad_input seeing watching journey
REGRESS_OPTS = --inputdir=test

# Debian's versioned pg_config first, so that a client-only pg_config on the
# PATH cannot pick the wrong server; override with PG_CONFIG=... for 13–17.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	@echo "seriesweb: PostgreSQL server headers not found ($(PG_CONFIG) --pgxs)." >&2
	@echo "Run 'make test' or 'make demo' (they install what is missing), or as root:" >&2
	@echo "  $$(sh test/setup.sh --print)" >&2
	@exit 1
endif

# Every object depends on every header: a changed struct must never meet
# objects compiled against the old one.
$(OBJS): $(wildcard src/*.h)

include mk/test.mk
include mk/tools.mk

EXTRA_CLEAN = tmp_check results regression.diffs regression.out
