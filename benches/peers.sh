# Sourced by the bench scripts (compare.sh, pgo.sh, instructions.sh): installs the peers and
# tools they drive from Debian's packages when missing, and puts /usr/sbin (nginx) on PATH.
#
#   source benches/peers.sh
#   peers_install nginx wrk h2load   # any of: nginx wrk h2load valgrind
#   peers_raise_nofile               # many connections from one address
peers_install() {
  local need=() tool
  for tool in "$@"; do
    case "$tool" in
      nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx) ;;
      h2load) command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client) ;;
      wrk | valgrind) command -v "$tool" >/dev/null 2>&1 || need+=("$tool") ;;
      *) echo "benches/peers.sh: no package known for $tool" >&2; return 1 ;;
    esac
  done
  if ((${#need[@]})); then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "benches: installing ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  export PATH="$PATH:/usr/sbin"
}

peers_raise_nofile() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}
