"""itaudit against the yardsticks a user would reach for: plain OpenSSH and Ansible.

One real OpenSSH ``sshd`` listens on N loopback addresses (127.1.12.1 ... :2222), each an
audit target; all three arms log in as the same user with the same key, trust the same
pinned host keys, and run at the same concurrency N:

1. itaudit: ``itaudit scan`` (collect, check, store), the real CLI;
2. OpenSSH: ``xargs -P N`` running ``ssh host sh -s < linux.sh`` (itaudit's own probe) once
   per host, output to files;
3. Ansible: ``ansible all -m setup -f N`` (fact gathering, the usual way to inventory hosts),
   if ``ansible`` is installed (``.venv/bin/pip install ansible-core``: bench only).

Each arm runs ``--repeat`` times after a warm-up (host keys pinned, caches warm); the best
wall time counts. Both Python clients (itaudit, Ansible) run with their bytecode cached, as
installed software does (pip compiles at install): the bench gives them a ``PYTHONPYCACHEPREFIX``
in its work folder, filled by the warm-up, even when the calling environment sets
``PYTHONDONTWRITEBYTECODE`` (which would recompile itaudit's own modules at every start).
CPU is the client's (the driver and every child it waited for, from ``os.wait4``); sshd's
work is not counted. Targets: itaudit within 1.2x of the
OpenSSH loop; Ansible at least 10x slower than itaudit.

    .venv/bin/python bench/vs_openssh_ansible.py [--hosts 16] [--repeat 3] [--full-probe] [--skip-bashrc]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fleetkit import CITY, Measured, itaudit_cmd, run_measured  # noqa: E402
from peers_ssh import write_ed25519  # noqa: E402

from collectors.ssh import probe_script  # noqa: E402

SSHD = "/usr/sbin/sshd"
PORT = 2222


# The update check (``apt-get -s upgrade``) costs about 5 s of CPU per run on this box: with
# N targets sharing the client's 2 cores it would time the targets, not the clients.
HEAVY = {"apt-get", "apt", "dnf", "yum", "zypper"}
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def light_path(work: Path) -> Path:
    """A folder of links to every command on the system PATH except the package managers."""
    folder = work / "light-bin"
    folder.mkdir()
    for d in SYSTEM_PATH:
        for exe in sorted(Path(d).glob("*")) if Path(d).is_dir() else []:
            link = folder / exe.name
            if exe.name not in HEAVY and not link.exists():
                link.symlink_to(exe)
    return folder


def light_shell(work: Path, session_path: Path) -> Path:
    """sshd's ForceCommand: ``sh -s`` sessions (the probe, from itaudit and from ssh alike) run
    with ``session_path`` as PATH (the probe sets its own PATH first line: rewritten); any other
    command (Ansible's) runs as sent."""
    script = work / "light-shell"
    script.write_text("#!/bin/sh\n"
                      'if [ "$SSH_ORIGINAL_COMMAND" = "sh -s" ]; then\n'
                      f"  sed 's#^PATH=.*#PATH={session_path}; export PATH#' | PATH={session_path} sh -s\n"
                      'else exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"; fi\n')
    script.chmod(0o755)
    return script


def start_sshd(work: Path, addresses: list[str], client_pub: str, session_path: Path | None = None,
               skip_bashrc: bool = False) -> tuple[list[subprocess.Popen[bytes]], str]:
    """sshd listening on every address, key-only login; return the processes and the host key line.
    One sshd listens on at most 16 sockets (OpenSSH's MAX_LISTEN_SOCKS): one process per 16
    addresses, all with the same host key and configuration.

    ``skip_bashrc``: bash, started by sshd as the login shell of every session (and Ansible opens
    several per host), reads ``~/.bashrc`` when it thinks it is the top-level shell; ``SHLVL=1``
    tells it that it is not, so a developer's heavy ``.bashrc`` does not time every session."""
    host_key = work / "ssh_host_ed25519_key"
    host_pub = write_ed25519(host_key, "bench-sshd").rsplit(" ", 1)[0]
    (work / "authorized_keys").write_text(client_pub + "\n")
    (work / "authorized_keys").chmod(0o600)
    common = (f"HostKey {host_key}\nPidFile none\nStrictModes no\nUsePAM no\n"
              "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
              "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
              f"AuthorizedKeysFile {work / 'authorized_keys'}\n"
              "LogLevel ERROR\nMaxStartups 1000\nMaxSessions 100\nUseDNS no\n"
              + ("SetEnv SHLVL=1\n" if skip_bashrc else "")
              + (f"ForceCommand {light_shell(work, session_path)}\n" if session_path else ""))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = open(work / "sshd.log", "wb")  # noqa: SIM115 - lives as long as sshd
    procs = []
    for i in range(0, len(addresses), 16):
        conf = work / f"sshd_config.{i // 16}"
        conf.write_text("".join(f"ListenAddress {a}:{PORT}\n" for a in addresses[i:i + 16]) + common)
        procs.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=log))
    end = time.monotonic() + 10
    for n, a in enumerate(addresses):
        proc = procs[n // 16]
        while True:
            try:
                with socket.create_connection((a, PORT), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"sshd did not start: {(work / 'sshd.log').read_text(errors='replace')[-1000:]}")
            time.sleep(0.05)
    return procs, host_pub


def best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda m: m.wall)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--full-probe", action="store_true",
                    help="let sessions run the package manager's update check (times the targets' CPU)")
    ap.add_argument("--skip-bashrc", action="store_true",
                    help="sessions do not read the login user's ~/.bashrc (SetEnv SHLVL=1 in sshd_config)")
    args = ap.parse_args()
    if not os.path.exists(SSHD):
        print(f"{SSHD} not installed (apt-get install openssh-server)", file=sys.stderr)
        return 1
    n = args.hosts
    addresses = [f"127.1.12.{1 + i}" for i in range(n)]
    user = getpass.getuser()
    work = Path(tempfile.mkdtemp(prefix="itaudit-vs-"))
    key = work / "client_ed25519"
    session_path = None if args.full_probe else light_path(work)
    sshds, host_pub = start_sshd(work, addresses, write_ed25519(key, "bench-client"), session_path,
                                skip_bashrc=args.skip_bashrc)
    try:
        known = work / "known_hosts"  # the same pinned keys for the OpenSSH and Ansible arms
        known.write_text("".join(f"[{a}]:{PORT} {host_pub}\n" for a in addresses))
        probe = work / "linux.sh"
        probe.write_text(probe_script("linux"))
        out = work / "out"
        out.mkdir()
        ssh_opts = (f"-o BatchMode=yes -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
                    f"-o GlobalKnownHostsFile=/dev/null -i {key}")
        loop = ["sh", "-c", f"printf '%s\\n' {' '.join(addresses)} | xargs -P {n} -I HOST "
                            f"sh -c 'ssh {ssh_opts} -p {PORT} {user}@HOST sh -s < {probe} > {out}/HOST 2>&1'"]

        cfg = work / "city.toml"
        lines = ["[settings]", 'data_dir = "data"', f"concurrency = {n}", "timeout = 30", "",
                 f"[cities.{CITY}]", 'name = "City of Scaleton"', "",
                 f"[cities.{CITY}.credentials.root]", 'type = "ssh"', f'username = "{user}"', f'key_file = "{key}"', ""]
        for a in addresses:
            lines += [f"[[cities.{CITY}.targets]]", f'address = "{a}"', f"port = {PORT}", 'credential = "root"', ""]
        cfg.write_text("\n".join(lines) + "\n")
        cfg.chmod(0o600)
        scan = itaudit_cmd("scan", "-c", str(cfg), "--json")

        ansible = shutil.which("ansible") or (str(Path(sys.executable).with_name("ansible"))
                                              if Path(sys.executable).with_name("ansible").exists() else None)
        inventory = work / "inventory.ini"
        inventory.write_text("[targets]\n" + "".join(
            f"h{i} ansible_host={a} ansible_port={PORT} ansible_user={user} ansible_ssh_private_key_file={key} "
            f"ansible_python_interpreter=/usr/bin/python3\n" for i, a in enumerate(addresses)))
        # Python clients as installed: bytecode cached (filled by the warm-up), for both alike.
        py_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        py_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        ansible_env = dict(py_env, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_LOCAL_TEMP=str(work / "ans-local"),
                           ANSIBLE_REMOTE_TMP=str(work / "ans-remote"), ANSIBLE_SSH_ARGS=(
                               f"-o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null "
                               "-o ControlMaster=auto -o ControlPersist=60s"),
                           ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="minimal", ANSIBLE_GATHERING="explicit",
                           # This run's own ControlPersist masters: the default ~/.ansible/cp would let a
                           # run within 60 s of the last one reuse masters logged in to the old sshd.
                           ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"))
        ansible_cmd = [ansible, "all", "-i", str(inventory), "-m", "setup", "-f", str(n)] if ansible else None

        env = dict(os.environ)  # the OpenSSH loop
        runs: dict[str, list[Measured]] = {"itaudit": [], "openssh": [], "ansible": []}
        # Warm-up: itaudit pins the host keys; every arm fills the page cache.
        first = run_measured(scan, env=py_env, out_dir=work)
        if first.returncode != 0:
            print(first.stderr[-2000:], file=sys.stderr)
            return 1
        run_measured(loop, env=env, out_dir=work)
        if ansible_cmd:
            run_measured(ansible_cmd, env=ansible_env, out_dir=work)
        for _ in range(args.repeat):
            runs["itaudit"].append(run_measured(scan, env=py_env, out_dir=work))
            runs["openssh"].append(run_measured(loop, env=env, out_dir=work))
            if ansible_cmd:
                runs["ansible"].append(run_measured(ansible_cmd, env=ansible_env, out_dir=work))

        ok = sum(json.loads(m.stdout)[0]["ok"] == n for m in runs["itaudit"])
        complete = sum(b"=== END ===" in (out / a).read_bytes() for a in addresses)
        print(f"{n} targets on one real OpenSSH sshd ({', '.join(addresses[:2])}, ...:{PORT}), concurrency {n}, "
              f"best of {args.repeat}, machine: {os.cpu_count()} CPUs")
        how = "full probe" if args.full_probe else f"probe sessions without {', '.join(sorted(HEAVY))}"
        how += "; sessions skip ~/.bashrc" if args.skip_bashrc else ""
        print(f"  itaudit runs with every host ok: {ok}/{args.repeat}; OpenSSH loop outputs complete: "
              f"{complete}/{n}; {how}")
        base = best(runs["openssh"])
        for arm, label in (("openssh", "OpenSSH: xargs -P N ssh host sh -s < probe"),
                           ("itaudit", "itaudit scan (collect, check, store)"),
                           ("ansible", "ansible all -m setup -f N")):
            if not runs[arm]:
                print(f"  {label:45s}: skipped (ansible is not installed: pip install ansible-core)")
                continue
            m = best(runs[arm])
            print(f"  {label:45s}: wall {m.wall:6.2f} s  ({m.wall / n * 1000:6.1f} ms/host)  "
                  f"client CPU {m.cpu * 1000 / n:6.1f} ms/host  x{m.wall / base.wall:5.2f} OpenSSH wall"
                  + (f"   rc {m.returncode}" if m.returncode else ""))
        it = best(runs["itaudit"])
        print(f"targets: itaudit within 1.2x of OpenSSH: {'met' if it.wall <= 1.2 * base.wall else 'NOT met'} "
              f"(x{it.wall / base.wall:.2f})", end="")
        if runs["ansible"]:
            an = best(runs["ansible"])
            print(f"; Ansible >= 10x slower than itaudit: {'met' if an.wall >= 10 * it.wall else 'NOT met'} "
                  f"(x{an.wall / it.wall:.1f})")
        else:
            print("; Ansible arm skipped")
        return 0
    finally:
        for sshd in sshds:
            sshd.terminate()
        for sshd in sshds:
            try:
                sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sshd.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
