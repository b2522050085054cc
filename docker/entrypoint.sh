#!/bin/sh
# The container's entry point: `appliance COMMAND ...` (serve by default); another program runs as it is.
# Before serving: the databases are migrated, and an empty volume gets its first admin
# (or the log says how to make one). The settings file is APPLIANCE_CONFIG, set by the
# image for every process (`docker exec` too): /etc/appliance/appliance.toml, mounted or not.
set -eu
if [ "${1:-}" = "appliance" ]; then
  shift
fi
if [ "$#" -eq 0 ]; then
  set -- serve
fi
if [ "$1" = "serve" ]; then
  appliance bootstrap
  export APPLIANCE_BOOTSTRAPPED=1  # it said how to make the first admin: serve does not say it a second way
elif command -v "$1" >/dev/null 2>&1; then
  exec "$@"
fi
# exec: the server is process 1 and gets the SIGTERM of `docker stop` itself.
exec appliance "$@"
