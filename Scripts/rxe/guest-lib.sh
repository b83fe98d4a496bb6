# shellcheck shell=sh
# Shared by the guest's /init and /usr/libexec/e2e/pair-suite (busybox sh; sourced).
# Installed by build-initramfs as /usr/libexec/e2e/lib.sh.

# e2e_run_counted LOG LIMIT CMD [ARGS...]: runs CMD under timeout LIMIT with stdin
# from /dev/null, its output to the console and to LOG. Sets RUN_STATUS (143 after
# the time limit) and RUN_PASSED/RUN_FAILED: the last "N passed, N failed" line of
# the output; without one, CMD counts as one test that passed if it exited 0. A
# non-zero exit always counts at least one failure.
e2e_run_counted() {
  _log=$1 _limit=$2
  shift 2
  # The exit status has to leave the pipeline through a file.
  { timeout "$_limit" "$@" < /dev/null; echo $? > "$_log.status"; } 2>&1 | tee "$_log"
  RUN_STATUS=$(cat "$_log.status")
  _counts=$(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$_log" | tail -n 1)
  if [ -n "$_counts" ]; then
    RUN_PASSED=${_counts% *} RUN_FAILED=${_counts#* }
  elif [ "$RUN_STATUS" = 0 ]; then
    RUN_PASSED=1 RUN_FAILED=0
  else
    RUN_PASSED=0 RUN_FAILED=1
  fi
  if [ "$RUN_STATUS" != 0 ] && [ "$RUN_FAILED" = 0 ]; then RUN_FAILED=1; fi
  return 0
}

# e2e_find_gid DEV ADDR-HEX: the index of the RoCE v2 GID whose value is ADDR-HEX
# (sysfs spelling, e.g. 0000:…:ffff:c000:0201), or nothing. One grep over the
# whole table: rxe has 1024 GID entries and one process per entry takes ~15 s
# under TCG.
e2e_find_gid() {
  _port=/sys/class/infiniband/$1/ports/1
  for _f in $(grep -l -x "$2" $_port/gids/* 2>/dev/null); do
    _i=${_f##*/}
    if [ "$(cat $_port/gid_attrs/types/$_i 2>/dev/null)" = "RoCE v2" ]; then echo "$_i"; return 0; fi
  done
}

# e2e_gid4 A.B.C.D / e2e_gid6 2001:db8::N: an address as sysfs spells the GID.
e2e_gid4() { echo "$1" | awk -F. '{printf "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x", $1, $2, $3, $4}'; }
e2e_gid6() { echo "$1" | awk -F'::' '{printf "2001:0db8:0000:0000:0000:0000:0000:%04x", ("0x" $2) + 0}'; }
