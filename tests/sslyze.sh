#!/usr/bin/env bash
# Installs sslyze for the TLS profile test (tests/tls_profiles.rs) unless it is already there,
# and prints the path of its command on the last line of standard output.
# sslyze is pinned by version and by the hash of every file, its dependencies too
# (tests/sslyze.requirements.txt), in a venv under ${XDG_CACHE_HOME:-~/.cache}/prehod-sslyze
# (Debian's python3-venv, installed if missing). Tests run in parallel: one installs at a time
# (flock), the others wait and find it installed.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=tests/sslyze.requirements.txt
build_requirements=tests/sslyze-build.requirements.txt
want=$(sed -n 's/^sslyze==\([0-9.]*\).*/\1/p' "$requirements")
home=${XDG_CACHE_HOME:-$HOME/.cache}/prehod-sslyze
venv=$home/venv
mkdir -p "$home"

installed() {
  [ "$("$venv/bin/python" -c 'from sslyze.__version__ import __version__; print(__version__)' 2>/dev/null)" = "$want" ] &&
    # The requirements files as installed: a changed pin (or hash) installs again.
    cat "$build_requirements" "$requirements" | cmp -s - "$venv/requirements.txt"
}

exec 9>"$home/lock"
flock 9
if ! installed; then
  if ! dpkg -s python3-venv >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >&2
  fi
  echo "tests/sslyze.sh: installing sslyze $want into $venv" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  # sslyze is an sdist (pure Python): built by the pinned setuptools installed first, so that
  # nothing unpinned is downloaded to build it.
  pip=("$venv/bin/pip" install -q --disable-pip-version-check --require-hashes)
  "${pip[@]}" -r "$build_requirements" >&2
  "${pip[@]}" --no-build-isolation -r "$requirements" >&2
  cat "$build_requirements" "$requirements" >"$venv/requirements.txt"
  installed || { echo "tests/sslyze.sh: sslyze $want did not install" >&2; exit 1; }
fi
echo "$venv/bin/sslyze"
