#!/bin/sh
# Writes this pod's Redis and Sentinel configuration (the init container of prehod-redis).
#
# The static settings come from redis.conf and sentinel.conf beside this script (the ConfigMap
# prehod-redis); this adds what is the pod's own and what is secret, read from the mounted
# Secret prehod-redis: the ACL file (passwords as SHA-256 hashes only), the replicas' password
# (masterauth) and the sentinels' passwords. Everything is written to memory-backed emptyDirs
# with mode 0600: no password is ever in a process's arguments or environment.
#
# Which server is the master is the sentinels' to say: they are asked first, so a pod that
# restarts after a failover comes back as a replica of the new master, never as a second one.
# Only when no sentinel answers (the first start of all three) is pod 0 the master.
set -eu
umask 077

: "${POD_NAME:?}" "${NAMESPACE:?}"
service=${SERVICE:-prehod-redis}
master_name=${MASTER_NAME:-prehod}
replicas=${REPLICAS:-3}
redis_port=${REDIS_PORT:-6379}
sentinel_port=${SENTINEL_PORT:-26379}
# A master is failed over after it did not answer for this long.
down_after_ms=${DOWN_AFTER_MS:-5000}
static=${STATIC_DIR:-/etc/prehod-redis}
secrets=${SECRETS_DIR:-/secrets}
run=${RUN_DIR:-/run/redis}
sentinel_run=${SENTINEL_RUN_DIR:-/run/sentinel}
ca=${TLS_DIR:-/tls}/ca.crt
domain=${DOMAIN:-$service.$NAMESPACE.svc.cluster.local}

me="$POD_NAME.$domain"
secret() { tr -d '\n' <"$secrets/$1"; }
hash() { secret "$1" | sha256sum | cut -d' ' -f1; }
for key in password replication-password sentinel-user-password sentinel-password; do
  [ -s "$secrets/$key" ] || { echo "configure.sh: the Secret has no $key" >&2; exit 1; }
done

# The master, as the other pods' sentinels have it.
master=""
i=0
while [ "$i" -lt "$replicas" ]; do
  host="${POD_NAME%-*}-$i.$domain"
  i=$((i + 1))
  [ "$host" = "$me" ] && continue
  answer=$(REDISCLI_AUTH="$(secret sentinel-password)" timeout 5 \
    redis-cli --no-auth-warning --tls --cacert "$ca" -h "$host" -p "$sentinel_port" \
    SENTINEL get-master-addr-by-name "$master_name" 2>/dev/null | head -n 1) || answer=""
  case "$answer" in
    "" | ERR* | NOAUTH* | WRONGPASS* | *"Could not connect"*) ;;
    *) master=$answer; break ;;
  esac
done
if [ -z "$master" ]; then
  master="${POD_NAME%-*}-0.$domain"
  echo "configure.sh: no sentinel answered: $master is the master"
else
  echo "configure.sh: the sentinels name $master as the master"
fi

# prehod's user takes `password` and, while its rotation runs, `password-previous`.
previous=""
[ -s "$secrets/password-previous" ] && previous=" #$(hash password-previous)"
cat >"$run/users.acl" <<ACL
user default off
user prehod on #$(hash password)$previous ~prehod:* &prehod:* +@all -@dangerous +role
user replica on #$(hash replication-password) +psync +replconf +ping
user sentinel on #$(hash sentinel-user-password) allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill
ACL

{
  echo "include $static/redis.conf"
  echo "aclfile $run/users.acl"
  echo "replica-announce-ip $me"
  echo "masteruser replica"
  echo "masterauth $(secret replication-password)"
  [ "$master" = "$me" ] || echo "replicaof $master $redis_port"
} >"$run/redis.conf"

# Sentinel rewrites its file as it learns (other sentinels, a new master): a fresh one each
# start, from what the other sentinels say now.
{
  cat "$static/sentinel.conf"
  echo "sentinel announce-ip $me"
  echo "sentinel monitor $master_name $master $redis_port 2"
  echo "sentinel down-after-milliseconds $master_name $down_after_ms"
  echo "sentinel failover-timeout $master_name 60000"
  echo "sentinel parallel-syncs $master_name 1"
  echo "sentinel auth-user $master_name sentinel"
  echo "sentinel auth-pass $master_name $(secret sentinel-user-password)"
  echo "requirepass $(secret sentinel-password)"
  echo "sentinel sentinel-pass $(secret sentinel-password)"
} >"$sentinel_run/sentinel.conf"
