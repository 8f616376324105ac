# Sourced by scripts/setup.sh: run apt-get without failing when another apt-get or dpkg
# (unattended-upgrades, a second setup, a package manager window) holds its locks.
#
#   apt_run apt-get update -qq
#
# waits while one of apt's or dpkg's locks is held, printing a progress line, then runs the
# command; if the command still loses the race for a lock, it waits and tries again. Gives
# up after MIDTIER_APT_LOCK_WAIT_S seconds (default 600); looks again every
# MIDTIER_APT_LOCK_POLL_S seconds (default 5, whole seconds).

apt_lock_wait_s=${MIDTIER_APT_LOCK_WAIT_S:-600}
apt_lock_poll_s=${MIDTIER_APT_LOCK_POLL_S:-5}
apt_lock_files=${MIDTIER_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}
apt_lock_since=$SECONDS  # waiting time counts from here, whoever does the waiting
apt_lock_said=-1

# Prints "<lock file> (process <pid>: <name>)" for the first held lock, if any. Reads
# /proc/locks, so looking never takes a lock (and never gets in apt's way).
apt_lock_holder() {
  local file dev ino key pid
  [ -r /proc/locks ] || return 1
  for file in $apt_lock_files; do
    [ -e "$file" ] || continue
    read -r dev ino < <(stat -L -c '%d %i' "$file") || continue
    # /proc/locks names a file as major:minor:inode, the device numbers in hex
    key=$(printf '%02x:%02x:%s' $(((dev >> 8) & 0xfff)) $(((dev & 0xff) | ((dev >> 12) & 0xfff00))) "$ino")
    pid=$(awk -v key="$key" '{ for (i = 2; i <= NF; i++) if ($i == key) { print $(i - 1); exit } }' /proc/locks)
    if [ -n "$pid" ]; then
      echo "$file (process $pid: $(cat "/proc/$pid/comm" 2>/dev/null || echo unknown))"
      return 0
    fi
  done
  return 1
}

# One wait step: a progress line now and then; fails once the time is up.
_apt_lock_wait_step() {
  local why=$1 apt_lock_waited=$((SECONDS - apt_lock_since))
  if [ "$apt_lock_waited" -ge "$apt_lock_wait_s" ]; then
    echo "gave up after ${apt_lock_waited}s: $why" >&2
    return 1
  fi
  if [ "$apt_lock_said" -lt 0 ] || [ $((apt_lock_waited - apt_lock_said)) -ge 30 ]; then
    apt_lock_said=$apt_lock_waited
    echo "==> waiting for another apt-get or dpkg to finish: $why (${apt_lock_waited}s of ${apt_lock_wait_s}s)"
  fi
  sleep "$apt_lock_poll_s"
}

apt_wait_for_locks() {
  local holder
  while holder=$(apt_lock_holder); do
    _apt_lock_wait_step "$holder holds its lock" || return 1
  done
}

apt_run() {
  local err rc
  apt_lock_since=$SECONDS
  apt_lock_said=-1
  err=$(mktemp)
  while true; do
    apt_wait_for_locks || { rm -f "$err"; return 1; }
    rc=0
    "$@" 2>"$err" || rc=$?
    if [ "$rc" = 0 ]; then
      cat "$err" >&2
      rm -f "$err"
      return 0
    fi
    if ! grep -qE "Could not get lock|Unable to (acquire|lock)" "$err"; then
      cat "$err" >&2
      rm -f "$err"
      return "$rc"
    fi
    _apt_lock_wait_step "$(grep -m1 -E 'Could not get lock|Unable to' "$err")" || {
      cat "$err" >&2
      rm -f "$err"
      return "$rc"
    }
  done
}
