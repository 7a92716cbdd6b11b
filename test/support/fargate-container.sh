#!/bin/bash
# Runs one program the way ECS runs the pgkeep container on Fargate, as far as the filesystem, the
# user and the environment go. test/support/fargate-container.ts starts it as root inside fresh
# namespaces:
#
#   unshare --mount --pid --ipc --fork --kill-child --mount-proc -- /bin/bash fargate-container.sh \
#     <tmp-mode> <tmp-uid> <tmp-gid> <tmp-size> <uid> <gid> <passwd> <group> <workdir> <deadline-seconds> \
#     <program> [args...]
#
# with the container's whole environment as its own (nothing else: every command below is called by
# its absolute path, so the container's PATH is left as it is). This script is PID 1 of the new PID
# namespace: when it ends, the kernel kills whatever the program left running, and the mounts below
# disappear with the mount namespace. Nothing here outlives the run.
#
# Output: the program's stdout and stderr are this script's. Fd 3 gets the report (the mounts as the
# program sees them, then what it left behind); fd 4 gets strace's log of the program's failed
# filesystem writes. Neither fd reaches the program.
set -euo pipefail

if [ "$#" -lt 11 ]; then
  echo "fargate-container.sh: usage: <tmp-mode> <tmp-uid> <tmp-gid> <tmp-size> <uid> <gid> <passwd> <group> <workdir> <deadline-seconds> <program> [args...]" >&2
  exit 64
fi
readonly tmp_mode=$1 tmp_uid=$2 tmp_gid=$3 tmp_size=$4 uid=$5 gid=$6 passwd=$7 group=$8 workdir=$9 deadline=${10}
shift 10

fail() {
  echo "fargate-container.sh: $*" >&2
  exit 70
}

# 1. The read-only root filesystem (readonlyRootFilesystem: true). Every mount this namespace
#    inherited from the machine becomes read-only, so no path outside the mounts below can be
#    written, whatever its owner and mode. mountinfo escapes blanks and backslashes in paths as
#    \ooo octal, which printf %b decodes once written as \0ooo.
while read -r _ _ _ _ escaped options _; do
  printf -v target '%b' "${escaped//\\/\\0}"
  if ! /usr/bin/mount -o remount,bind,ro "$target" 2>/dev/null && [[ $options != ro* ]]; then
    fail "could not make $target read-only; the emulated container would not have a read-only root"
  fi
done < /proc/self/mountinfo

# 2. The image's accounts: this machine's, with the image's user at its uid (initdb looks up the
#    name of the user it runs as; this machine's uid 1000 may be someone else, or no one).
/usr/bin/mount --bind -o ro "$passwd" /etc/passwd || fail "could not put the image's users in place"
/usr/bin/mount --bind -o ro "$group" /etc/group || fail "could not put the image's groups in place"

# 3. What the container may write. /tmp: the task volume, with the owner and mode ECS gives it (the
#    caller derives them from the image, per AWS's rule for bind mounts). /dev/shm: Docker's private
#    64 MiB shared memory, which PostgreSQL's dynamic shared memory uses; the caller checks that
#    nothing was left in it.
/usr/bin/mount -t tmpfs -o "mode=$tmp_mode,uid=$tmp_uid,gid=$tmp_gid,size=$tmp_size,nosuid,nodev" fargate-tmp /tmp \
  || fail "could not mount the task volume at /tmp"
/usr/bin/mount -t tmpfs -o "mode=1777,size=64m,nosuid,nodev,noexec" shm /dev/shm \
  || fail "could not mount /dev/shm"

# 4. The image's WORKDIR. Also leaves the directory this script was started in, which may be one the
#    program could otherwise write through relative paths.
cd "$workdir" || fail "cannot enter the working directory $workdir"

{
  echo '== mounts'
  /usr/bin/cat /proc/self/mountinfo
  echo '== tmp'
  /usr/bin/stat -c '%a %u %g' /tmp
} >&3

# 5. The program, as the image's user: the numeric uid and gid only, no supplementary groups, no
#    capabilities, and no way back to root through a setuid binary of this machine (the image may
#    have none of them). strace follows it and everything it starts and logs each failed attempt to
#    create, change or remove a file; the caller keeps the refused ones outside /tmp. The inner
#    bash closes the report fds and env drops the variables bash itself adds (_, SHLVL, PWD, OLDPWD), so
#    the program's environment is exactly the one this script was given.
set +e
/usr/bin/timeout --kill-after=5 "$deadline" \
  /usr/bin/strace -f -qq --failed-only --seccomp-bpf -e signal=none -s 4096 -y -o /proc/self/fd/4 \
    -e trace=open,openat,openat2,creat,mkdir,mkdirat,mknod,mknodat,rmdir,unlink,unlinkat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,chmod,fchmodat,chown,lchown,fchownat,truncate,utimensat,bind \
    -- /bin/bash -c 'exec 3>&- 4>&-; exec /usr/bin/env -u _ -u SHLVL -u PWD -u OLDPWD "$@"' fargate-container \
      /usr/bin/setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --no-new-privs -- "$@" \
  3>&-
code=$?
set -e

# 6. What the program left behind: files in the writable mounts, and processes still running (a
#    zombie has exited and only awaits its parent). Builtins only, so the listing sees no process of
#    its own.
{
  echo "== exit $code"
  echo '== left-behind'
  /usr/bin/find /tmp /dev/shm -mindepth 1 -printf '%p\n'
  echo '== still-running'
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = 1 ] && continue
    read -r stat < "$dir/stat" 2>/dev/null || continue
    state=${stat##*) }
    state=${state%% *}
    [ "$state" = Z ] && continue
    read -r comm < "$dir/comm" 2>/dev/null || continue
    echo "$pid $comm"
  done
} >&3
exit "$code"
