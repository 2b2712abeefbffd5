#!/usr/bin/env bash
# Set-up for `npm start` and `npm test` on a fresh Debian machine: installs the Debian packages
# faultline needs (only those missing), runs `npm ci` when node_modules is missing or stale, builds
# the TypeScript, the N-API addon and the C programs, and mounts fusectl (to abort a wedged
# connection). Idempotent and quiet when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  say "need root to run: $*  (run as root, or install sudo)"; exit 2; fi; }

# fuse3: fusermount3 and the kernel module tools; libfuse3-dev: headers for the addon and the C
# reference server; libfuse2: the fuse-native benchmark peer; build-essential/pkg-config/python3:
# node-gyp and the C programs; chromium: renders the HTML report in a test.
pkgs=(fuse3 libfuse3-dev libfuse2 pkg-config build-essential python3)
if [ "${FAULTLINE_SKIP_BROWSER:-}" != 1 ]; then pkgs+=(chromium); fi
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=node_modules/.faultline-setup
want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

npm run -s build

if [ -d /sys/fs/fuse/connections ] && ! mountpoint -q /sys/fs/fuse/connections; then
  as_root mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null || true
fi
