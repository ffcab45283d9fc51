#!/bin/sh
# as-user.sh install-and-run <make-target> [VAR=value...] — install the built extension,
# then run <make-target> as an unprivileged user, since PostgreSQL refuses to
# run as root.  As root: installs system-wide, creates the user "swtest" if
# needed, and runs the target in a copy of the tree that the user owns
# (printing where its logs are).  As anyone else: installs if it can (else
# prints the exact command) and runs the target in place.
set -eu

[ "${1:-}" = "install-and-run" ] && [ -n "${2:-}" ] || {
	echo "usage: $0 install-and-run <make-target>" >&2
	exit 2
}
target=$2
shift 2
# Anything after the target (VAR=value) goes to make as well.
src=$(pwd)
make_args="--no-print-directory ${PG_CONFIG:+PG_CONFIG=$PG_CONFIG} ${PROVE_TESTS:+PROVE_TESTS=$PROVE_TESTS}"
# make test SANITIZE=1: the suites run against a sanitized build (test/sanitize/).
make_args="$make_args ${SANITIZE:+SANITIZE=$SANITIZE}"

if [ "$(id -u)" -ne 0 ]; then
	if ! make -s $make_args install >/dev/null 2>&1; then
		echo "seriesweb: cannot install into $(pg_config --pkglibdir 2>/dev/null || echo the server directories); run as root:" >&2
		echo "  sudo make -C '$src' install" >&2
		exit 1
	fi
	exec make $make_args "$target" "$@"
fi

make -s $make_args install >/dev/null
user=${SERIESWEB_TEST_USER:-swtest}
if ! id "$user" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/sh "$user"
fi
work=${SERIESWEB_TEST_DIR:-/tmp/seriesweb-$user}
rm -rf "$work"
mkdir -p "$work"
# A copy the user owns: pg_regress and the TAP tests write next to the sources.
tar -C "$src" --exclude=.git --exclude=tmp_check --exclude=results -cf - . | tar -C "$work" -xf -
chown -R "$user" "$work"
echo "seriesweb: running '$target' as $user in $work"
status=0
runuser -u "$user" -- env -i PATH="$PATH" HOME="$work" LANG=C.UTF-8 \
	make -C "$work" $make_args "$target" "$@" || status=$?
if [ $status -ne 0 ]; then
	echo "seriesweb: '$target' failed; logs are in $work (regression.diffs, tmp_check/)" >&2
fi
exit $status
