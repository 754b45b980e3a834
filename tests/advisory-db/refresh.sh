#!/usr/bin/env bash
# Writes tests/advisory-db/snapshot.tar.xz (and SNAPSHOT) from a git clone of
# github.com/RustSec/advisory-db: the advisories only (crates/, rust/) and their licences
# (CC0-1.0; CC-BY-4.0 for the ones adapted from GitHub's advisory database, attributed in each),
# packed the same way each time so the same database commit gives the same bytes.
#   bash tests/advisory-db/refresh.sh /path/to/advisory-db-clone
# Then commit both files. tests/deny.sh checks against this snapshot when neither
# PREHOD_ADVISORY_DB nor GitHub is at hand, and fails once it is older than
# PREHOD_SNAPSHOT_MAX_AGE days (default 180).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=${1:?usage: refresh.sh ADVISORY_DB_CLONE}
db=$(cd "$db" && pwd)
git -C "$db" diff --quiet HEAD || { echo "refresh.sh: $db has local changes" >&2; exit 1; }
commit=$(git -C "$db" log -1 --format=%H)
when=$(git -C "$db" log -1 --format=%cI)
stamp=$(git -C "$db" log -1 --format=%ct)
tar -C "$db" --sort=name --mtime="@$stamp" --owner=0 --group=0 --numeric-owner \
  -cJf "$here/snapshot.tar.xz" LICENSE.txt LICENSES crates rust
{
  echo "commit=$commit"
  echo "date=$when"
  echo "sha256=$(sha256sum "$here/snapshot.tar.xz" | cut -d' ' -f1)"
} >"$here/SNAPSHOT"
cat "$here/SNAPSHOT"
