# Sourced by the repo's scripts: puts the npm-installed Foundry binaries on PATH
# and installs the pinned toolchain (npm ci) when it is missing.
# shellcheck shell=bash
ATTESTA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ATTESTA_ROOT
_fr="$ATTESTA_ROOT/node_modules/@foundry-rs"
if [ ! -x "$_fr/forge-linux-amd64/bin/forge" ] || [ ! -d "$ATTESTA_ROOT/node_modules/solc" ]; then
  echo "==> installing the pinned toolchain (npm ci)" >&2
  (cd "$ATTESTA_ROOT" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
export PATH="$_fr/forge-linux-amd64/bin:$_fr/anvil-linux-amd64/bin:$_fr/cast-linux-amd64/bin:$PATH"
unset _fr

# Starts anvil on a free loopback port in the background; sets ANVIL_PID and ANVIL_URL.
# Usage: start_anvil [extra anvil args...]
start_anvil() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  ANVIL_URL="http://127.0.0.1:$port"
  anvil --host 127.0.0.1 --port "$port" --silent "$@" &
  ANVIL_PID=$!
  for _ in $(seq 1 100); do
    if cast chain-id --rpc-url "$ANVIL_URL" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "anvil did not start on $ANVIL_URL" >&2
  return 1
}
