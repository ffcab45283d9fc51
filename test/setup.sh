#!/bin/sh
# setup.sh — make sure a Debian machine has what seriesweb needs to build,
# test and demo.  As root it installs the missing packages with apt; as
# anyone else it prints the exact command and fails.  `--print` only prints
# the install command (used by the Makefile's error message).
set -eu

PG_MAJOR=${PG_MAJOR:-15}
PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libcurl4-openssl-dev
libipc-run-perl make gcc perl graphviz ${SERIESWEB_EXTRA_PACKAGES:-}"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
command="apt-get update && apt-get install -y --no-install-recommends$missing"

if [ "${1:-}" = "--print" ]; then
	echo "$command"
	exit 0
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "seriesweb: missing packages:$missing" >&2
	echo "Install them as root, then run this again:" >&2
	echo "  sudo sh -c '$command'" >&2
	exit 1
fi
echo "seriesweb: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
