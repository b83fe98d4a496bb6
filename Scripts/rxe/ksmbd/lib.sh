# shellcheck shell=bash
# Shared by Scripts/rxe/ksmbd/* (sourced after ../lib.sh).
#
# The ksmbd run boots another kernel (bookworm-backports 6.12) than the default
# run, so it has a work directory of its own; the default run's kernel and
# initramfs are left alone.
RXE_KSMBD_WORK=${RXE_KSMBD_WORK:-$RXE_WORK/ksmbd}
# Host packages: the out-of-tree module build (gcc-12 is what the 6.12 headers
# name; make, libc6-dev for the asn1 compiler, xz-utils), and libnl-genl, which
# ksmbd.mountd needs in the guest (copied from the host with ldd).
RXE_KSMBD_HOST_PACKAGES=(gcc-12 make libc6-dev binutils xz-utils libglib2.0-0 libnl-3-200 libnl-genl-3-200)
# Modules /init loads for the ksmbd run, in order. cifs asks for its ciphers and
# MACs only as soft dependencies, which modprobe --show-depends does not list:
# without cmac/ccm/gcm in the guest every SMB 3 mount fails with ENOENT
# ("Could not allocate shash TFM 'cmac(aes)'").
RXE_KSMBD_MODULES="cmac ccm gcm ghash_generic ksmbd cifs"
