"""Issue 13: the systemd install path is one command, the units pass `systemd-analyze
verify`, and the PDF report prints under the agent unit's sandbox settings.

No systemd runs in the test machine (a container), so:

- ``contrib/install-systemd.sh --root DIR`` stages the whole install (venv, config folder,
  data folder, units) under DIR; the modes are checked and the staged ``itaudit`` runs;
- ``systemd-analyze verify`` (it works offline) checks the real unit files, with the staged
  ``/opt/itaudit`` bound on ``/opt/itaudit`` in a private mount namespace so that their
  ``ExecStart=`` exists;
- ``tests/unit_sandbox.py`` applies the unit's own settings (user, seccomp filters,
  namespaces, read-only system, private /tmp; see its docstring for what it does not
  emulate) and the real renderer prints a real monthly report under them. A control run
  with the unit's former settings (``RestrictNamespaces=yes``, ``@system-service`` only)
  shows the emulation bites: Chromium cannot build its sandbox there.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"
UNITS = ["itaudit-agent.service", "itaudit-scan.service", "itaudit-scan.timer"]
SYSTEM_PYTHON = "/usr/bin/python3"


def _can_unshare_mounts() -> str | None:
    """Why a private mount namespace cannot be made here, or None."""
    if not shutil.which("unshare"):
        return "no unshare(1) (util-linux)"
    if os.geteuid() != 0:
        return "needs root for a private mount namespace"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare --mount is not permitted here: {probe.stderr.strip()}"
    return None


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The install script, run twice (an upgrade keeps the edited config) into a staging root."""
    root = tmp_path_factory.mktemp("stage")
    run = subprocess.run(["sh", str(CONTRIB / "install-systemd.sh"), "--root", str(root),
                          "--python", sys.executable], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "systemctl enable --now itaudit-agent" in run.stdout
    return root


@pytest.mark.slow
def test_the_install_script_creates_the_venv_config_and_data_folders(staged: Path) -> None:
    itaudit = staged / "opt/itaudit/venv/bin/itaudit"
    out = subprocess.run([str(itaudit), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "itaudit" in out.stdout
    conf = staged / "etc/itaudit"
    assert _mode(conf) == 0o750 and _mode(conf / "keys") == 0o750
    assert _mode(conf / "config.toml") == 0o640 and _mode(conf / "env") == 0o640
    assert _mode(staged / "var/lib/itaudit") == 0o700
    assert 'data_dir = "/var/lib/itaudit"' in (conf / "config.toml").read_text()
    for unit in UNITS:
        installed = staged / "etc/systemd/system" / unit
        assert installed.read_bytes() == (CONTRIB / unit).read_bytes() and _mode(installed) == 0o644
    assert (staged / "opt/itaudit/docs/agent.md").exists()  # the units' Documentation=

    # A second run upgrades itaudit and keeps what the administrator wrote.
    (conf / "config.toml").write_text("# edited\n")
    (conf / "env").write_text("SECRET=kept\n")
    again = subprocess.run(["sh", str(CONTRIB / "install-systemd.sh"), "--root", str(staged),
                            "--python", sys.executable], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (conf / "config.toml").read_text() == "# edited\n" and (conf / "env").read_text() == "SECRET=kept\n"


def test_the_install_script_refuses_clearly(tmp_path: Path) -> None:
    bad = subprocess.run(["sh", str(CONTRIB / "install-systemd.sh"), "--root", str(tmp_path), "--from",
                          str(tmp_path / "missing.whl")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("install-systemd: nothing to install at")
    unknown = subprocess.run(["sh", str(CONTRIB / "install-systemd.sh"), "--prefix", "/x"],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "unknown option --prefix" in unknown.stderr


@pytest.mark.slow
def test_the_units_pass_systemd_analyze_verify(staged: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    why = _can_unshare_mounts()
    if why:
        pytest.skip(why)
    units = " ".join(str(CONTRIB / u) for u in UNITS)
    script = ("set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /opt; mkdir -p /opt/itaudit; "
              f"mount --bind {staged}/opt/itaudit /opt/itaudit; systemd-analyze verify --man=no {units}")
    out = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr

    # The check bites: without the venv the units do not verify.
    bare = subprocess.run(["unshare", "--mount", "sh", "-c", "set -e; mount --make-rprivate /; "
                           f"mount -t tmpfs tmpfs /opt; systemd-analyze verify --man=no {units}"],
                          capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and "/opt/itaudit/venv/bin/itaudit is not executable" in bare.stderr


def _sandbox_ready() -> str | None:
    why = _can_unshare_mounts()
    if why:
        return why
    if not shutil.which("chromium"):
        return "no Chromium (apt-get install chromium)"
    if not shutil.which("systemd-analyze"):
        return "systemd-analyze is needed to expand @system-service (apt-get install systemd)"
    if subprocess.run([SYSTEM_PYTHON, "-c", "import seccomp"], capture_output=True).returncode != 0:
        return "no python3-seccomp for the system Python (apt-get install python3-seccomp)"
    if str(ROOT).startswith(("/home/", "/root/")):
        return "the checkout is under /home or /root, which the unit's ProtectHome hides"
    return None


def _interpreter() -> str:
    """A Python the unit's user can run: this one, unless it lives under /root or /home (a
    pyenv build there is hidden by ProtectHome); then the system one (reports.pdf needs only
    the standard library)."""
    real = os.path.realpath(sys.executable)
    return SYSTEM_PYTHON if real.startswith(("/root/", "/home/")) else sys.executable


def _print_under(unit: Path, state: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from reports.pdf import html_to_pdf; "
            "html_to_pdf(Path(sys.argv[1]), Path(sys.argv[2])); print('printed')")
    return subprocess.run(["unshare", "--mount", SYSTEM_PYTHON, str(ROOT / "tests/unit_sandbox.py"), str(unit),
                           "--state", str(state), "--setenv", f"PYTHONPATH={ROOT}", "--", _interpreter(), "-c",
                           code, str(state / "report.html"), str(state / "report.pdf")],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)


@pytest.fixture
def report_html(tmp_path: Path) -> Path:
    import report_city

    from reports.monthly import write_monthly

    state = tmp_path / "state"
    state.mkdir()
    city, store = report_city.build(tmp_path / "city.db", n=12, months=3)
    try:
        (html,) = write_monthly(city, store, as_of=dt.date(2026, 10, 25), out_dir=tmp_path, formats=("html",))
    finally:
        store.close()
    shutil.copy(html, state / "report.html")
    os.chmod(state / "report.html", 0o644)
    return state


@pytest.mark.slow
def test_the_pdf_prints_under_the_agent_units_sandbox(report_html: Path, tmp_path: Path) -> None:
    why = _sandbox_ready()
    if why:
        pytest.skip(why)
    state = report_html
    for name in ("itaudit-agent.service", "itaudit-scan.service"):
        (state / "report.pdf").unlink(missing_ok=True)
        out = _print_under(CONTRIB / name, state)
        assert out.returncode == 0 and "printed" in out.stdout, (name, out.stdout, out.stderr[-2000:])
        assert (state / "report.pdf").read_bytes()[:5] == b"%PDF-"
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(state / "report.pdf"), "-"], capture_output=True,
                                  text=True, check=True).stdout
            assert "Springfield" in text

    # Control: the unit's former settings break Chromium's sandbox; the emulation bites.
    old = (CONTRIB / "itaudit-agent.service").read_text()
    old = old.replace("RestrictNamespaces=user pid net", "RestrictNamespaces=yes")
    old = old.replace("SystemCallFilter=@system-service chroot seccomp", "SystemCallFilter=@system-service")
    old = old.replace("SystemCallErrorNumber=EPERM\n", "")
    (tmp_path / "old.service").write_text(old)
    (state / "report.pdf").unlink(missing_ok=True)
    out = _print_under(tmp_path / "old.service", state)
    assert out.returncode != 0 and not (state / "report.pdf").exists()
    assert "Chromium could not print" in out.stderr
