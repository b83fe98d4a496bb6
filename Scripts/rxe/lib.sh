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

# rxe_closing_line PASSED FAILED: the last line of a run; its status is the exit status.
rxe_closing_line() {
  echo "$1 passed, $2 failed"
  [ "$2" = 0 ]
}

# rxe_counts FILE: "P F" from the last line of the form "N passed, N failed", or nothing.
rxe_counts() { sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$1" | tail -n 1; }

# rxe_result_field LINE NAME: the number after " NAME=" in an E2E_RESULT line.
rxe_result_field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

# KVM only with real VT-x/AMD-V. /dev/kvm from kvm_pvm (this kind of cloud VM)
# cannot boot a stock Debian kernel: it hangs after the decompressor.
rxe_kvm_usable() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  [ ! -d /sys/module/kvm_pvm ] || return 1
  grep -qwE 'vmx|svm' /proc/cpuinfo
}

# rxe_qemu_accel ACCEL: the qemu accelerator arguments for kvm or tcg, in RXE_QEMU_ACCEL.
rxe_qemu_accel() {
  if [ "$1" = kvm ]; then RXE_QEMU_ACCEL=(-accel kvm -cpu host)
  else RXE_QEMU_ACCEL=(-accel tcg,thread=multi -cpu max); fi
}

# rxe_console_line T0_MS LINE: one guest console line without CR and terminal escapes
# (SeaBIOS and the kernel reset/clear the terminal), prefixed with the host's seconds
# since T0_MS, in RXE_LINE.
rxe_console_line() {
  local line=${2//$'\r'/} ms
  [[ $line != *$'\e'* ]] || line=$(sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1b[a-zA-Z]//g' <<<"$line")
  ms=$(( $(rxe_now_ms) - $1 ))
  printf -v RXE_LINE '[%4d.%02d] %s' $(( ms / 1000 )) $(( ms % 1000 / 10 )) "$line"
}
