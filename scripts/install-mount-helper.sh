#!/bin/bash
# Install the mount(8) helper so that `mount -t fuse.faultline SOURCE MNT -o OPTS` (and xfstests
# with FSTYP=fuse FUSE_SUBTYP=.faultline) start a faultline daemon:
#   /sbin/mount.fuse.faultline   the helper (scripts/mount.fuse.faultline with this checkout's paths)
#   /usr/local/bin/faultline     a launcher for this checkout's CLI (unless one exists already)
# Usage: scripts/install-mount-helper.sh [--uninstall] [--prefix DIR]   (as root; DIR default /)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
prefix=/
uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --uninstall) uninstall=1; shift ;;
    --prefix) prefix=$2; shift 2 ;;
    *) echo "usage: $0 [--uninstall] [--prefix DIR]" >&2; exit 2 ;;
  esac
done
helper="$prefix/sbin/mount.fuse.faultline"
launcher="$prefix/usr/local/bin/faultline"
marker='# faultline launcher (install-mount-helper.sh)'

if [ "$uninstall" = 1 ]; then
  rm -f "$helper"
  if [ -f "$launcher" ] && grep -qF "$marker" "$launcher"; then rm -f "$launcher"; fi
  echo "removed $helper${launcher:+ and our $launcher}"
  exit 0
fi

node=$(command -v node) || { echo "install-mount-helper: node is not in PATH" >&2; exit 1; }
cli="$root/dist/cli.js"
[ -f "$cli" ] || { echo "install-mount-helper: $cli is missing: build first (npx tsc -p tsconfig.json)" >&2; exit 1; }
mkdir -p "$(dirname "$helper")" "$(dirname "$launcher")"
tmp=$(mktemp)
sed -e "s|@NODE@|$node|" -e "s|@CLI@|$cli|" scripts/mount.fuse.faultline >"$tmp"
install -m 0755 "$tmp" "$helper"
rm -f "$tmp"
echo "installed $helper (node $node, cli $cli)"
if [ ! -e "$launcher" ] || grep -qF "$marker" "$launcher"; then
  printf '#!/bin/sh\n%s\nexec "%s" "%s" "$@"\n' "$marker" "$node" "$cli" >"$launcher"
  chmod 0755 "$launcher"
  echo "installed $launcher"
else
  echo "kept the existing $launcher (not ours)"
fi
