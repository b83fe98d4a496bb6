# shellcheck shell=bash
# Shared by the rxe harness scripts (sourced, not executed).
#
# Everything the harness downloads or builds lives in the work directory, outside
# the clone: CI must not cache anything in the clone, and the unpacked kernel alone
# is ~400 MB.
RXE_WORK=${RXE_WORK:-/tmp/iterextract-rxe}
RXE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Host packages: qemu boots the guest; the rdma-core/perftest binaries and their
# libraries are copied into the initramfs; the -dev packages are for compiling
# Swift/C against libibverbs and librdmacm on the host.
RXE_HOST_PACKAGES=(
  qemu-system-x86 rdma-core ibverbs-providers ibverbs-utils rdmacm-utils perftest
  libibverbs-dev librdmacm-dev kmod busybox-static cpio gzip iproute2
)

# The comment block at the top of the calling script, as its help text.
rxe_usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; }
rxe_die() { echo "$(basename "$0"): $*" >&2; exit 1; }
rxe_log() { echo "[rxe] $*"; }

# Milliseconds since the epoch, without forking (bash 5 EPOCHREALTIME).
rxe_now_ms() { local t=${EPOCHREALTIME/./}; echo $(( t / 1000 )); }
# rxe_elapsed START_MS -> "12.3s"
rxe_elapsed() {
  local d=$(( $(rxe_now_ms) - $1 ))
  printf '%d.%01ds' $(( d / 1000 )) $(( d % 1000 / 100 ))
}

rxe_require_root() {
  [ "$(id -u)" = 0 ] || rxe_die "must run as root (apt-get, depmod on the unpacked kernel)"
}

# The kernel version unpacked by setup-host ("" if none yet).
rxe_kernel_version() { cat "$RXE_WORK/kernel.version" 2>/dev/null || true; }
