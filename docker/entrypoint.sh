#!/bin/sh
# The container's entry point: `appliance COMMAND ...` (serve by default); another program runs as it is.
# Before serving: a mounted /etc/appliance/appliance.toml is read, the databases are
# migrated, and an empty volume gets its first admin (or the log says how to make one).
set -eu
if [ -z "${APPLIANCE_CONFIG:-}" ] && [ -f /etc/appliance/appliance.toml ]; then
  export APPLIANCE_CONFIG=/etc/appliance/appliance.toml
fi
if [ "${1:-}" = "appliance" ]; then
  shift
fi
if [ "$#" -eq 0 ]; then
  set -- serve
fi
if [ "$1" = "serve" ]; then
  appliance bootstrap
elif command -v "$1" >/dev/null 2>&1; then
  exec "$@"
fi
# exec: the server is process 1 and gets the SIGTERM of `docker stop` itself.
exec appliance "$@"
