#!/bin/sh
# runtime-rootfs.sh BINARY DIR: lays out the runtime image's root filesystem in DIR: the binary
# (debug info stripped), the shared libraries it loads (ldd, symlinks resolved, at the paths the
# dynamic loader looks in), CA certificates, passwd/group naming the non-root user 65532, and an
# empty /tmp for the emptyDir the chart mounts there.
set -eu
bin=$1
out=$2
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
objcopy --strip-debug --strip-unneeded "$bin" "$out/usr/local/bin/kinfer"
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
  while read -r lib; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
  done
if ldd "$bin" | grep -q "not found"; then
  echo "runtime-rootfs.sh: $bin needs libraries that are missing:" >&2
  ldd "$bin" | grep "not found" >&2
  exit 1
fi
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nkinfer:x:65532:65532:kinfer:/tmp:/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nkinfer:x:65532:\n' >"$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
chmod 1777 "$out/tmp"
echo "runtime root filesystem:" >&2
(cd "$out" && find . -type f | sort | xargs ls -l | awk '{printf "  %9d %s\n", $5, $9}') >&2
