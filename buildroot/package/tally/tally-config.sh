#!/bin/sh
#
# tally-config.sh: writes the appliance's default settings from the
# package options, so that the Buildroot package, the board overlay and the
# tests share one source.
#
#   tally-config.sh json DATA_DIR HTTPS_PORT EXCHANGE_DIR BACKOFFICE_URL
#       tallyd's config file (/etc/tally/tallyd.json). An empty EXCHANGE_DIR
#       leaves the dir connector out, an empty BACKOFFICE_URL the http one.
#   tally-config.sh defaults DATA_DIR
#       the settings of S90tally (/etc/default/tally).
#
# board/tally/rootfs-overlay holds the output for the default options
# (/var/lib/tally 8443 /var/lib/tally-exchange https://backoffice.example.com);
# a test keeps the two equal.

set -e

die() {
	printf 'tally-config.sh: %s\n' "$*" >&2
	exit 1
}

# jsonsafe refuses what would need escaping in a JSON string: the options
# are paths and URLs, which need none.
jsonsafe() {
	case "$1" in
	*'"'* | *\\*) die "\"$1\": no quotes or backslashes, please" ;;
	esac
}

absolute() {
	case "$1" in
	/*) ;;
	*) die "\"$1\" is not an absolute path" ;;
	esac
}

json() {
	data_dir=$1 port=$2 exchange=$3 url=$4
	absolute "$data_dir"
	jsonsafe "$data_dir"
	jsonsafe "$exchange"
	jsonsafe "$url"
	case "$port" in
	'' | *[!0-9]*) die "https port \"$port\" is not a number" ;;
	esac
	if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
		die "https port $port is out of range"
	fi
	[ -z "$exchange" ] || absolute "$exchange"
	case "$url" in
	'' | https://*) ;;
	*) die "back-office URL \"$url\" must start with https://" ;;
	esac

	printf '{\n'
	printf '  "dataDir": "%s",\n' "$data_dir"
	printf '  "httpsPort": %s,\n' "$port"
	printf '  "discoveryPort": 30005,\n'
	printf '  "raftPort": 61616,\n'
	if [ -z "$exchange" ] && [ -z "$url" ]; then
		printf '  "logFormat": "text"\n'
		printf '}\n'
		return
	fi
	printf '  "logFormat": "text",\n'
	printf '  "connectors": {\n'
	if [ -n "$exchange" ]; then
		printf '    "dir": {\n'
		printf '      "builtin": "dir",\n'
		printf '      "args": ["--dir", "%s"]\n' "$exchange"
		if [ -n "$url" ]; then
			printf '    },\n'
		else
			printf '    }\n'
		fi
	fi
	if [ -n "$url" ]; then
		printf '    "http": {\n'
		printf '      "builtin": "http",\n'
		printf '      "args": ["--url", "%s"]\n' "$url"
		printf '    }\n'
	fi
	printf '  }\n'
	printf '}\n'
}

defaults() {
	absolute "$1"
	cat <<EOF
# Settings of /etc/init.d/S90tally (a shell fragment, read at start and stop).
# tallyd's own settings are in /etc/tally/tallyd.json.

# Extra arguments for tallyd, after --config /etc/tally/tallyd.json; flags
# override the file, and TALLYD_ARGS in S90tally's environment come after
# these. Example: TALLYD_ARGS="--node-id tally-1"
TALLYD_ARGS=""

# The user tallyd runs as; if it does not exist, tallyd runs as root.
TALLY_USER="tally"

# Created at start and given to TALLY_USER; keep it equal to dataDir in
# /etc/tally/tallyd.json.
TALLY_DATA_DIR="$1"

# Where tallyd and S90tally log: a file, or "syslog".
TALLY_LOG="/var/log/tally.log"

# Seconds "S90tally stop" waits for tallyd to shut down before SIGKILL.
STOP_TIMEOUT=30
EOF
}

case "$1" in
json)
	[ $# -eq 5 ] || die "usage: tally-config.sh json DATA_DIR HTTPS_PORT EXCHANGE_DIR BACKOFFICE_URL"
	json "$2" "$3" "$4" "$5"
	;;
defaults)
	[ $# -eq 2 ] || die "usage: tally-config.sh defaults DATA_DIR"
	defaults "$2"
	;;
*)
	die "usage: tally-config.sh {json|defaults} ..."
	;;
esac
