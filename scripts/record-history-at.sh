#!/usr/bin/env bash
# Records replay histories with the workflow code of an OLD commit, so a later change is proven to
# keep the cases that commit started replaying:
#
#   bash scripts/record-history-at.sh <commit> test/replay/recorders/<name>.recorder.ts [more recorders]
#
# The commit is exported with `git archive` into a temporary folder (this repo's git state and work
# tree are untouched), this repo's node_modules and .tools (the Temporal binaries) are linked into
# it, the recorders are copied to its test/replay/recorders/ as *.test.ts (with the helper
# write-history.ts next to them) and run there by jest with K2_RECORD_HISTORIES=1. Each recorder
# writes its history into THIS repo's test/replay/histories/ (K2_HISTORIES_DIR). A recorder
# imports the old tree's own modules, so it must be written against that commit's API.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 <commit> <recorder-file> [more recorder files]" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="$1"
shift
git -C "$repo" rev-parse --verify --quiet "$commit^{commit}" >/dev/null || { echo "unknown commit: $commit" >&2; exit 2; }

tree="$(mktemp -d "${TMPDIR:-/tmp}/k2-record-$(git -C "$repo" rev-parse --short "$commit").XXXXXX")"
trap 'rm -rf "$tree"' EXIT
git -C "$repo" archive "$commit" | tar -x -C "$tree"
ln -s "$repo/node_modules" "$tree/node_modules"
ln -s "$repo/.tools" "$tree/.tools"

mkdir -p "$tree/test/replay/recorders"
cp "$repo/test/replay/recorders/write-history.ts" "$tree/test/replay/recorders/write-history.ts"
tests=()
for recorder in "$@"; do
  [ -f "$recorder" ] || { echo "no such recorder: $recorder" >&2; exit 2; }
  name="$(basename "$recorder")"
  name="${name%.recorder.ts}"
  name="${name%.ts}"
  cp "$recorder" "$tree/test/replay/recorders/$name.test.ts"
  tests+=("test/replay/recorders/$name.test.ts")
done

out="${K2_HISTORIES_DIR:-$repo/test/replay/histories}"
mkdir -p "$out"
out="$(cd "$out" && pwd)" # the recorders run inside the exported tree
echo "recording at $commit in $tree into $out: ${tests[*]}"
cd "$tree"
K2_RECORD_HISTORIES=1 K2_HISTORIES_DIR="$out" npx jest --ci --runInBand --rootDir "$tree" "${tests[@]}"
