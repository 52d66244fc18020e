#!/bin/busybox sh
# /init of the guest initramfs built by scripts/kernel-run.sh (busybox sh, PID 1).
#
# ttyS0: kernel console and this script's messages (a log on the host).
# ttyS1: the command's stdout+stderr (the host's stdout), raw.
# ttyS2: one line: the command's exit status, or "setup: MESSAGE" if this script failed.
# Then reboot -f: qemu runs with -no-reboot, so it exits.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

fail() {
    echo "kr-init: setup failed: $*"
    echo "setup: $*" >/dev/ttyS2
    sync
    reboot -f
    poweroff -f
    sleep 3600
}

ip link set lo up 2>/dev/null

while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m" || fail "insmod $m"
done </kr/modules.list

mkdir -p /newroot
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot /newroot; then
    if [ -s /kr/modules.list ]; then fail "mount of the host root over 9p"
    else fail "mount of the host root over 9p (no modules were loaded: build NET_9P, NET_9P_VIRTIO, 9P_FS and VIRTIO_PCI in, or pass the modules directory as IMAGE:MODDIR)"
    fi
fi

# Fresh kernel filesystems inside the chroot: through 9p the guest would otherwise see the host's
# /proc and /sys files. devtmpfs is the guest's own (so /dev/userfaultfd has this kernel's minor).
mount -t proc proc /newroot/proc || fail "mount proc"
mount -t sysfs sysfs /newroot/sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /newroot/dev || fail "mount devtmpfs"
mkdir -p /newroot/dev/pts /newroot/dev/shm 2>/dev/null
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm || fail "mount /dev/shm"
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot/run/kr && cp /kr/run.sh /newroot/run/kr/run.sh

# Extra shares: "TAG MODE PATH" (MODE rw or ro), mounted over the same path.
while read -r tag mode path; do
    [ -n "$tag" ] || continue
    mkdir -p "/newroot$path" 2>/dev/null
    mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,cache=none,$mode" "$tag" "/newroot$path" \
        || fail "mount of share $path ($mode)"
done </kr/shares

# Guest-only sysctls: "KEY VALUE".
while read -r key value; do
    [ -n "$key" ] || continue
    echo "$value" >"/newroot/proc/sys/$(echo "$key" | tr . /)" || fail "sysctl $key=$value"
done </kr/sysctl

stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "kr-init: running the command"
{ chroot /newroot /bin/bash /run/kr/run.sh </dev/null 2>&1; echo $? >/kr/rc; } | cat >/dev/ttyS1
echo "kr-init: command exited with $(cat /kr/rc)"
cat /kr/rc >/dev/ttyS2
sync
reboot -f
poweroff -f
sleep 3600
