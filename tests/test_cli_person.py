"""Issue 13: every command as a person meets it, on a real pseudo-terminal (80 columns) and
piped: exit code, last lines, no traceback. The simulated city (the demo's fleets, real SSH
and snmpsim on loopback) is the target; bad databases, bad configs and hostile device text
are made for real, never mocked."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.peers, pytest.mark.slow]
AS_OF = "2026-11-23"


@dataclass
class Run:
    code: int
    out: str  # stdout (and stderr, on a pty)
    err: str = ""

    @property
    def text(self) -> str:
        return self.out + self.err

    def last_lines(self, n: int = 3) -> str:
        """The last ``n`` non-blank lines of stdout (on a pty, of everything shown)."""
        lines = [ln for ln in self.out.replace("\r", "").splitlines() if ln.strip()]
        return "\n".join(lines[-n:])


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env.update(extra or {})
    env["TERM"] = "xterm-256color"
    return env


def run_piped(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 240) -> Run:
    """The CLI with stdout and stderr piped (cron, scripts): no terminal, so 80 columns."""
    proc = subprocess.run([sys.executable, "-m", "itaudit.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=_env(env), timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_pty(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 240,
            columns: int = 80) -> Run:
    """The CLI on a real pseudo-terminal of ``columns`` x 24, as a person at a terminal runs it."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "itaudit.cli", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=_env(env), close_fds=True, start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"itaudit {' '.join(args)} did not finish in {timeout}s")
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    code = proc.wait(timeout=30)
    return Run(code, b"".join(chunks).decode("utf-8", "replace"))


BOTH = pytest.mark.parametrize("runner", [run_pty, run_piped], ids=["pty", "piped"])


def assert_clean(run: Run) -> None:
    assert "Traceback" not in run.text and "lost sys.stderr" not in run.text, run.text[-3000:]


# --- the simulated city -----------------------------------------------------------------


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The demo's simulated city, up for the module; its config, with one hostile name added."""
    pytest.importorskip("snmpsim")
    from itaudit import demo

    work = tmp_path_factory.mktemp("person")
    with demo.SimulatedCity(work / ".sim") as sim:
        cfg = work / "config.toml"
        demo.write_config(cfg, sim.ssh_hosts, sim.snmp_devices, unreachable=f"{demo.SSH_NET}250")
        # Device text a person would not expect to be markup: a name that is Rich markup.
        text = cfg.read_text().replace('name = "web-city01"', 'name = "[/bold]web[red]-city01"', 1)
        cfg.write_text(text)
        yield cfg, sim.env()


@pytest.fixture(scope="module")
def scanned(city: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str], Run]:
    """One scan of the city on a terminal: what every read command below reads."""
    cfg, env = city
    run = run_pty("scan", "-c", str(cfg), "--as-of", AS_OF, env=env)
    return cfg, env, run


def test_scan_on_a_terminal_shows_progress_and_ends_with_score_counts_and_report(scanned) -> None:
    cfg, _, run = scanned
    assert_clean(run)
    assert run.code == 3, run.text[-2000:]  # the switched-off host could not be checked
    assert "30/30" in run.text and "━" in run.text  # rich's bar with counts
    last = run.last_lines(2)
    assert "city score:" in last and "/ 100" in last
    report = run.last_lines(1).split("report: ", 1)[1].strip()
    assert report.endswith("lakeside-monthly-2026-11.html") and Path(report).is_file()
    assert "29 checked" in run.text and "1 could not be checked" in run.text
    assert "ssh://127.0.10.250:2222" in run.text  # the reason line names the device


def test_scan_piped_prints_plain_lines(city) -> None:
    cfg, env = city
    run = run_piped("-v", "scan", "-c", str(cfg), "--as-of", AS_OF, "--no-report", env=env)
    assert_clean(run)
    assert run.code == 3
    assert "━" not in run.text and "\x1b[" not in run.text  # no bar, no colour codes
    assert "[30/30]" in run.err  # one plain log line per device
    assert run.last_lines(1).startswith("failing checks:")
    assert "could not check: ssh://127.0.10.250:2222" in run.out


@BOTH
def test_devices_keeps_names_and_addresses_whole_at_80_columns(runner, scanned) -> None:
    cfg, _, _ = scanned
    run = runner("devices", "-c", str(cfg))
    assert_clean(run)
    assert run.code == 0
    db = sqlite3.connect(cfg.parent / "data" / "lakeside" / "itaudit.db")
    names = [r[0] for r in db.execute("select name from devices")]
    addresses = [r[0] for r in db.execute("select address from devices")]
    db.close()
    for value in names + addresses:
        assert value in run.out, value  # never cut, never wrapped
    assert "[/bold]web[red]-city01" in run.out  # device text printed as text, not markup
    assert "animal-shelter-pc" in run.out and "connection refused" in run.out


@BOTH
def test_findings_table_and_modes(runner, scanned) -> None:
    cfg, _, _ = scanned
    run = runner("findings", "-c", str(cfg), "--severity", "high")
    assert_clean(run)
    assert run.code == 0 and "fgt60e-cityhall" in run.out and "127.0.11.5" in run.out
    wide = runner("findings", "-c", str(cfg), "--wide")
    assert wide.code == 0 and any(len(ln) > 120 for ln in wide.out.splitlines())


def test_tsv_and_json_are_for_scripts(scanned) -> None:
    cfg, _, _ = scanned
    tsv = run_piped("devices", "-c", str(cfg), "--tsv")
    lines = tsv.out.splitlines()
    assert lines[0].split("\t")[:2] == ["name", "address"]
    assert len({ln.count("\t") for ln in lines}) == 1 and len(lines) == 31
    js = run_piped("findings", "-c", str(cfg), "--json")
    import json

    assert js.code == 0 and isinstance(json.loads(js.out), list)


@BOTH
def test_reports_print_their_paths(runner, scanned, tmp_path: Path) -> None:
    cfg, _, _ = scanned
    for name, fmt in (("monthly", "html,md"), ("plan", "html,csv"), ("worklist", "html,csv"),
                      ("portfolio", "html,json")):
        run = runner("report", name, "-c", str(cfg), "--as-of", AS_OF, "--out", str(tmp_path / name),
                     "--format", fmt)
        assert_clean(run)
        assert run.code == 0, run.text
        assert all(Path(p.strip()).is_file() for p in run.out.replace("\r", "").splitlines() if p.strip())


@BOTH
def test_discover_runs_on_a_terminal_and_piped(runner, city) -> None:
    cfg, env = city
    run = runner("discover", "-c", str(cfg), env=env)
    assert_clean(run)
    assert run.code == 0, run.text
    assert "not managed" in run.last_lines(1)


@BOTH
def test_small_commands(runner, tmp_path: Path) -> None:
    for args, code, tail in ((("--help",), 0, "scan"), (("--version",), 0, "itaudit"),
                             (("checks",), 0, "VULN-001"), (("lifecycle", "windows", "10.0.19045", "--edition", "Pro",
                                                            "--as-of", AS_OF), 0, ""),
                             (("report", "--help"), 0, "worklist"), (("nosuch",), 2, "No such command")):
        run = runner(*args)
        assert_clean(run)
        assert run.code == code, (args, run.text)
        assert tail in run.text
    init = runner("init", str(tmp_path / "etc" / "itaudit" / "config.toml"))
    assert init.code == 0 and "192.0.2" in init.text


# --- first config ----------------------------------------------------------------------


def test_init_makes_its_folder_and_scan_refuses_the_unedited_starter(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "itaudit" / "config.toml"
    assert run_piped("init", str(target)).code == 0
    assert (target.parent.stat().st_mode & 0o777) == 0o750
    assert (target.stat().st_mode & 0o777) == 0o600
    run = run_pty("scan", "-c", str(target))
    assert_clean(run)
    assert run.code == 2
    assert "192.0.2.10" in run.text and "[[cities.springfield.targets]]" in run.text  # says what to edit
    assert not list(tmp_path.rglob("*.db"))  # nothing was scanned or recorded
    run = run_piped("discover", "-c", str(target))
    assert run.code == 2 and "documentation range" in run.err


def test_a_missing_secret_is_a_config_error_before_any_device(city, tmp_path: Path) -> None:
    cfg, env = city
    copy = tmp_path / "config.toml"
    copy.write_text(cfg.read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"'))
    copy.chmod(0o600)
    partial = {k: v for k, v in env.items() if k != "ITAUDIT_DEMO_SNMP_PRIV"}
    os.environ.pop("ITAUDIT_DEMO_SNMP_PRIV", None)
    run = run_pty("scan", "-c", str(copy), env=partial)
    assert_clean(run)
    assert run.code == 2
    assert "cities.lakeside.credentials.network.priv_key_env" in run.text
    assert "ITAUDIT_DEMO_SNMP_PRIV" in run.text and "not set" in run.text
    db = tmp_path / "data" / "lakeside" / "itaudit.db"
    assert not db.exists() or sqlite3.connect(db).execute("select count(*) from scans").fetchone()[0] == 0
    key_cfg = tmp_path / "key.toml"
    key_cfg.write_text(copy.read_text().replace(f'password_env = "{"ITAUDIT_DEMO_SSH_PASSWORD"}"',
                                                f'key_file = "{tmp_path / "no-such-key"}"'))
    run = run_piped("scan", "-c", str(key_cfg), env=env)
    assert run.code == 2 and "credentials.servers.key_file" in run.err and "no-such-key" in run.err


def test_config_errors_print_their_keys_as_text(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[cities.x]\n[cities.x.budget_lines."101"]\nname = "IT"\nkind = "nonsense"\n')
    for runner in (run_pty, run_piped):
        run = runner("devices", "-c", str(cfg))
        assert_clean(run)
        assert run.code == 2
        assert "cities.x.budget_lines" in run.text and "config error" in run.text


# --- databases a read command may meet --------------------------------------------------


def _city_with(tmp_path: Path, db: Path) -> Path:
    cfg = tmp_path / f"{db.stem}.toml"
    cfg.write_text(f'[cities.x]\ndatabase = "{db}"\n')
    return cfg


@pytest.fixture(scope="module")
def good_db(scanned) -> Path:
    cfg, _, _ = scanned
    return cfg.parent / "data" / "lakeside" / "itaudit.db"


@pytest.mark.parametrize("case", ["missing", "not-sqlite", "corrupt", "newer-schema", "not-itaudit"])
def test_read_commands_refuse_a_bad_database_in_one_line(case: str, good_db: Path, tmp_path: Path) -> None:
    db = tmp_path / f"{case}.db"
    if case == "not-sqlite":
        db.write_text("name,address\nfs01,10.0.0.1\n")
    elif case in ("corrupt", "newer-schema"):
        src = sqlite3.connect(good_db)
        dst = sqlite3.connect(db)
        src.backup(dst)
        src.close()
        if case == "newer-schema":
            dst.execute("update meta set value = '999' where key = 'schema_version'")
            dst.commit()
        dst.close()
        if case == "corrupt":
            with open(db, "r+b") as fh:
                fh.seek(4096)
                fh.write(b"\xa5" * 16384)
    elif case == "not-itaudit":
        other = sqlite3.connect(db)
        other.execute("create table t(x)")
        other.commit()
        other.close()
    cfg = _city_with(tmp_path, db)
    for args in (("devices",), ("findings",), ("report", "monthly", "--out", str(tmp_path / "r")),
                 ("report", "plan", "--out", str(tmp_path / "r"))):
        run = run_piped(*args, "-c", str(cfg))
        assert_clean(run)
        assert run.code == 2, (case, args, run.text)
        assert len([ln for ln in run.err.splitlines() if ln.strip()]) == 1, run.err
        assert run.out == ""


@pytest.mark.parametrize("args, words", [
    (("report", "plan", "--format", "docx"), "unknown plan format docx"),
    (("report", "plan", "--month", "2026-11"), "--month is for the monthly summary"),
    (("report", "monthly", "--month", "2026-13"), "expected YYYY-MM"),
    (("devices", "--city", "nope"), "no city 'nope'"),
    (("report", "worklist", "--as-of", "yesterday"), "expected YYYY-MM-DD"),
    (("findings", "--severity", "dire"), "Invalid value for '--severity'"),
], ids=["format", "month-on-plan", "bad-month", "no-city", "bad-date", "bad-severity"])
def test_bad_input_is_one_clear_error(args: tuple[str, ...], words: str, scanned, tmp_path: Path) -> None:
    cfg, _, _ = scanned
    extra = ("--out", str(tmp_path)) if args[0] == "report" else ()
    run = run_piped(*args, "-c", str(cfg), *extra)
    assert_clean(run)
    assert run.code == 2 and words in run.err, run.text
    assert "internal error" not in run.err


@BOTH
def test_agent_status_and_assets_import(runner, scanned, tmp_path: Path) -> None:
    cfg, env, _ = scanned
    status = runner("agent", "-c", str(cfg), "--status", env=env)
    assert_clean(status)
    assert status.code == 0 and "lakeside" in status.out and "last scan" in status.out.lower()
    register = tmp_path / "register.csv"
    register.write_text("hostname,purchase_date,department\ncad-gw01,2015-10-01,Police\n"
                        "no-such-host,2020-01-01,Library\n[/bold]x,not-a-date,IT\n")
    run = runner("assets", "import", "-c", str(cfg), str(register))
    assert_clean(run)
    assert run.code == 0, run.text
    assert "3 rows" in run.out or "rows imported" in run.out
    assert "[/bold]x" in run.out or "row 4" in run.out  # device text printed as text


def test_agent_once_on_a_terminal(scanned, tmp_path: Path) -> None:
    cfg, env, _ = scanned
    run = run_pty("agent", "-c", str(cfg), "--once", "--report", "--dry-run", env=env)
    assert_clean(run)
    assert run.code in (0, 3), run.text[-2000:]  # 3: the switched-off host
    assert ".eml" in run.text or "report" in run.text.lower()
