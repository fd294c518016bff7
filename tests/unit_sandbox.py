"""Run a command under the sandbox settings of a systemd unit, without systemd.

Usage (as root, inside ``unshare --mount``, with the system Python that has python3-seccomp):

    unshare --mount /usr/bin/python3 tests/unit_sandbox.py UNIT --user nobody \\
        --state DIR -- COMMAND...

The test suite runs no systemd (containers, CI), so the PDF test applies the unit's own
settings the way systemd implements them, read from the unit file, and then runs the real
renderer under them:

- ``User=``: the command runs as an unprivileged user (the test's user, not ``itaudit``),
  with ``NoNewPrivileges=`` and an empty ``CapabilityBoundingSet=``;
- ``SystemCallFilter=`` (allow-lists with @groups, expanded by ``systemd-analyze
  syscall-filter``; ``~`` deny-lists), ``SystemCallErrorNumber=`` (else a filtered call
  kills the process, as in systemd), ``SystemCallArchitectures=native``;
- ``RestrictNamespaces=``: ``unshare``/``clone``/``setns`` with a forbidden namespace flag
  fail with EPERM and ``clone3`` with ENOSYS, as systemd's seccomp rules do;
- ``MemoryDenyWriteExecute=``: W+X ``mmap``, executable ``mprotect``/``pkey_mprotect``,
  ``shmat(SHM_EXEC)`` fail with EPERM;
- ``RestrictAddressFamilies=``: ``socket()`` of another family fails with EAFNOSUPPORT;
- ``ProtectSystem=strict`` (every mount read-only but /dev, /proc, /sys and the state
  directory), ``ProtectHome=yes`` (empty /home, /root, /run/user), ``PrivateTmp=`` (fresh
  /tmp and /var/tmp) in a private mount namespace.

Not emulated: PrivateDevices (the container's /dev is kept), ProtectKernel*/ProtectClock/
ProtectHostname/ProtectProc, LockPersonality, RestrictRealtime, RestrictSUIDSGID. Each
filter is its own stacked seccomp program, as systemd installs them, so the most
restrictive answer wins.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import pwd
import subprocess
import sys

import seccomp  # python3-seccomp (Debian), not a pip package

CLONE_FLAGS = {
    "cgroup": 0x02000000, "ipc": 0x08000000, "net": 0x40000000, "mnt": 0x00020000,
    "pid": 0x20000000, "user": 0x10000000, "uts": 0x04000000,
}
PR_CAPBSET_DROP = 24
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def read_unit(path: str) -> dict[str, list[str]]:
    """The [Service] settings, every assignment kept in order (an empty one resets)."""
    out: dict[str, list[str]] = {}
    section = None
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section != "Service" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            if value.strip() == "":
                out[key.strip()] = []
            else:
                out.setdefault(key.strip(), []).append(value.strip())
    return out


def yes(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("yes", "true", "1", "on", "strict", "full")


def expand(group: str, seen: set[str] | None = None) -> set[str]:
    """Syscall names of an @group, via systemd-analyze (nested groups expanded)."""
    seen = seen if seen is not None else set()
    if group in seen:
        return set()
    seen.add(group)
    text = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True,
                          check=True).stdout
    names: set[str] = set()
    for line in text.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand(item, seen) if item.startswith("@") else {item}
    return names


def names(values: list[str]) -> tuple[bool, set[str]]:
    """(deny-list?, syscall names) of SystemCallFilter= assignments (systemd merges them)."""
    allow: set[str] = set()
    deny: set[str] = set()
    deny_mode = None
    for v in values:
        inverted = v.startswith("~")
        items = v.lstrip("~").split()
        if deny_mode is None:
            deny_mode = inverted
        got: set[str] = set()
        for item in items:
            got |= expand(item) if item.startswith("@") else {item}
        if inverted:
            deny |= got
            allow -= got
        else:
            allow |= got
            deny -= got
    return bool(deny_mode), (deny if deny_mode else allow)


def _resolve(name: str) -> int | None:
    try:
        return seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
    except (ValueError, RuntimeError):
        return None


def syscall_filter(settings: dict[str, list[str]]) -> None:
    values = settings.get("SystemCallFilter") or []
    if not values:
        return
    deny_mode, syscalls = names(values)
    err = settings.get("SystemCallErrorNumber")
    refused = seccomp.ERRNO(getattr(errno, err[-1])) if err else seccomp.KILL_PROCESS
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW if deny_mode else refused)
    for name in sorted(syscalls):
        num = _resolve(name)
        if num is None or num < 0:
            continue  # not a syscall on this architecture
        try:
            f.add_rule(refused if deny_mode else seccomp.ALLOW, name)
        except RuntimeError:
            continue  # a multiplexed pseudo-call libseccomp cannot filter alone here
    f.load()


def namespace_filter(settings: dict[str, list[str]]) -> None:
    values = settings.get("RestrictNamespaces") or []
    if not values:
        return
    v = values[-1]
    if v.lower() in ("no", "false", "0", "off"):
        return
    if v.lower() in ("yes", "true", "1", "on"):
        allowed: set[str] = set()
    elif v.startswith("~"):
        allowed = set(CLONE_FLAGS) - set(v[1:].split())
    else:
        allowed = set(v.split())
    forbidden = [flag for name, flag in CLONE_FLAGS.items() if name not in allowed]
    if not forbidden:
        return
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # flags in a struct: glibc falls back to clone
    for flag in forbidden:
        for call in ("unshare", "clone"):
            f.add_rule(seccomp.ERRNO(errno.EPERM), call, seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    if allowed != set(CLONE_FLAGS):
        f.add_rule(seccomp.ERRNO(errno.EPERM), "setns", seccomp.Arg(1, seccomp.EQ, 0))
        for flag in forbidden:
            f.add_rule(seccomp.ERRNO(errno.EPERM), "setns", seccomp.Arg(1, seccomp.MASKED_EQ, flag, flag))
    f.load()


def mdwe_filter(settings: dict[str, list[str]]) -> None:
    if not yes(settings.get("MemoryDenyWriteExecute")):
        return
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    wx = PROT_WRITE | PROT_EXEC
    f.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
    for call in ("mprotect", "pkey_mprotect"):
        if _resolve(call) is not None:
            f.add_rule(seccomp.ERRNO(errno.EPERM), call, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    f.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
    f.load()


def family_filter(settings: dict[str, list[str]]) -> None:
    values = settings.get("RestrictAddressFamilies") or []
    if not values:
        return
    import socket

    v = values[-1]
    listed = {getattr(socket, name) for name in v.lstrip("~").split() if hasattr(socket, name)}
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for fam in range(0, 46):  # AF_MAX
        refused = fam in listed if v.startswith("~") else fam not in listed
        if refused:
            f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, fam))
    f.load()


def mounts(settings: dict[str, list[str]], state: str) -> None:
    """ProtectSystem=strict, ProtectHome=yes, PrivateTmp=yes in this (private) mount namespace."""
    def sh(*cmd: str) -> None:
        subprocess.run(cmd, check=True)

    sh("mount", "--make-rprivate", "/")
    # The state directory (a test's tmp_path, often under /tmp) is set aside on /mnt while
    # /tmp is replaced, then put back at its path: it stays writable (ReadWritePaths).
    sh("mount", "-t", "tmpfs", "tmpfs", "/mnt")
    os.mkdir("/mnt/state")
    sh("mount", "--bind", state, "/mnt/state")
    if yes(settings.get("PrivateTmp")):
        for d in ("/tmp", "/var/tmp"):
            if os.path.isdir(d):
                sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", d)
    os.makedirs(state, exist_ok=True)
    sh("mount", "--move", "/mnt/state", state)
    system = (settings.get("ProtectSystem") or ["no"])[-1]
    if system == "strict":
        keep = ("/proc", "/sys", "/dev", "/tmp", "/var/tmp", "/mnt", state)
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            points = [line.split()[4].replace("\\040", " ") for line in fh]
        for p in points:
            if any(p == k or p.startswith(k.rstrip("/") + "/") for k in keep):
                continue
            subprocess.run(["mount", "-o", "remount,bind,ro", p], check=False, capture_output=True)
    if yes(settings.get("ProtectHome")):
        for d in ("/home", "/root", "/run/user"):
            if os.path.isdir(d):
                sh("mount", "-t", "tmpfs", "-o", "mode=000,ro", "tmpfs", d)


def main() -> int:
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit("usage: unit_sandbox.py UNIT --state DIR [--user NAME] -- COMMAND...")
    cut = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("unit")
    ap.add_argument("--user", default="nobody")
    ap.add_argument("--state", required=True, help="stands for the unit's state directory (HOME)")
    ap.add_argument("--setenv", action="append", default=[], metavar="VAR=VALUE")
    a = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    settings = read_unit(a.unit)
    mounts(settings, a.state)
    user = pwd.getpwnam(a.user)
    os.chown(a.state, user.pw_uid, user.pw_gid)
    libc = ctypes.CDLL(None, use_errno=True)
    if settings.get("CapabilityBoundingSet") == []:
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    # NoNewPrivileges (libseccomp sets it too when loading a filter as a non-root user).
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": a.state, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    for assignment in settings.get("Environment") or []:
        for pair in assignment.split():
            k, _, v = pair.partition("=")
            if k != "HOME":
                env[k] = v
    for pair in a.setenv:
        k, _, v = pair.partition("=")
        env[k] = v
    for f in (family_filter, mdwe_filter, namespace_filter, syscall_filter):
        f(settings)
    os.execvpe(cmd[0], cmd, env)  # noqa: S606 - the command under test, as systemd would start it
    return 127


if __name__ == "__main__":
    sys.exit(main())
