"""Issue 21: site collectors push signed snapshots over a real OpenSSH SFTP inbox (chrooted,
SFTP only, one system user per city, key login, pinned host key); the centre verifies and
swaps them in. Cut links, a week offline, tampered or misdirected snapshots, an expired key,
a newer schema and wrong counts are all made for real."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from peers_ssh import SSHD, _wait_banner, free_address, write_ed25519

pytestmark = [pytest.mark.peers, pytest.mark.slow]
CITIES = ("ita-north", "ita-south")  # also the inbox users' names (one system user per city)
T0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)


@dataclass
class Inbox:
    address: str
    port: int
    root: Path  # inbox_root: <root>/<city>/inbox
    known_hosts: Path
    keys: dict[str, Path]  # city -> private key (login and signing)
    proc: subprocess.Popen[bytes]
    conf: Path
    log: Path

    def stop(self) -> None:
        import psutil

        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
        except psutil.Error:
            pass
        self.proc.terminate()
        self.proc.wait(10)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        _wait_banner(self.address, self.port, self.proc, self.log)

    def kill_sessions(self) -> int:
        import psutil

        kids = psutil.Process(self.proc.pid).children(recursive=True)
        for child in kids:
            child.kill()
        return len(kids)


def _root_dir() -> Path:
    """sshd's ChrootDirectory wants every component of the path root-owned and not writable by
    others, which /tmp is not: a folder under /run (or /var/lib)."""
    for base in ("/run", "/var/lib"):
        st = os.stat(base)
        if st.st_uid == 0 and not st.st_mode & 0o022:
            return Path(tempfile.mkdtemp(prefix="itaudit-msp-", dir=base))
    pytest.skip("no root-owned folder for a chroot")


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    from conftest import need_peer

    need_peer(os.path.exists(SSHD) and shutil.which("sftp") is not None and shutil.which("useradd") is not None,
              "openssh-server, openssh-client (sftp) and useradd are needed")
    if os.geteuid() != 0:
        pytest.skip("a chrooted SFTP inbox needs sshd running as root (CI runs as root)")
    work = tmp_path_factory.mktemp("msp")
    root = _root_dir()
    os.chmod(root, 0o755)  # noqa: S103 - sshd's chroot rules: root-owned, readable, not writable
    made_users = []
    keys: dict[str, Path] = {}
    # sshd reads authorized keys as the user: they live beside the chroots, readable by all.
    authorized = root / ".keys"
    authorized.mkdir()
    authorized.chmod(0o755)  # noqa: S103 - public keys only
    for city in CITIES:
        if subprocess.run(["id", city], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--password", "*", city],  # "*": no password, yet not a locked account
                           check=True)
            made_users.append(city)
        chroot = root / city
        chroot.mkdir()
        chroot.chmod(0o755)  # noqa: S103 - the chroot itself: root's, not the user's
        (chroot / "inbox").mkdir()
        shutil.chown(chroot / "inbox", city)
        os.chmod(chroot / "inbox", 0o700)
        keys[city] = work / f"{city}_ed25519"
        pub = write_ed25519(keys[city], f"site {city}")
        (authorized / city).write_text(pub + "\n")
        (authorized / city).chmod(0o644)
    host_key = work / "host_ed25519"
    host_pub = write_ed25519(host_key, "msp")
    address = free_address("127.0.5.", 2222)
    conf = work / "sshd_config"
    conf.write_text(f"""Port 2222
ListenAddress {address}
HostKey {host_key}
PidFile {work / 'sshd.pid'}
AuthorizedKeysFile {authorized}/%u
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
LogLevel VERBOSE
Subsystem sftp internal-sftp
Match User {','.join(CITIES)}
    ChrootDirectory {root}/%u
    ForceCommand internal-sftp
    AllowTcpForwarding no
    X11Forwarding no
    PermitTTY no
""")
    known = work / "msp_known_hosts"
    known.write_text(f"[{address}]:2222 {' '.join(host_pub.split()[:2])}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    box = Inbox(address, 2222, root, known, keys, None, conf, work / "sshd.log")  # type: ignore[arg-type]
    box.start()
    try:
        yield box
    finally:
        box.stop()
        shutil.rmtree(root, ignore_errors=True)
        for user in made_users:
            subprocess.run(["userdel", user], capture_output=True)


def _site_config(work: Path, inbox: Inbox, city: str, *, port: int | None = None, kbps: int = 0) -> Path:
    """A site's own config: its city (scanning its own host) and the [site] push."""
    cfg = work / f"{city}-site.toml"
    cfg.write_text(f"""[settings]
data_dir = "{work / city / 'data'}"

[cities.{city}]
name = "{city}"

[[cities.{city}.targets]]
address = "localhost"
protocol = "local"
name = "{city}-agent-host"

[site]
host = "{inbox.address}"
port = {port or inbox.port}
user = "{city}"
identity_file = "{inbox.keys[city]}"
known_hosts = "{inbox.known_hosts}"
retry_backoff = 0
timeout = 20
bandwidth_kbps = {kbps}
""")
    cfg.chmod(0o600)
    return cfg


def _central_config(work: Path, inbox: Inbox, signers: str) -> Path:
    allowed = work / "allowed_signers"
    allowed.write_text(signers)
    cfg = work / "central.toml"
    cfg.write_text(f"""[settings]
data_dir = "{work / 'central-data'}"

[central]
inbox_root = "{inbox.root}"
allowed_signers = "{allowed}"
keep = 2

""" + "".join(f'[cities.{c}]\nname = "{c}"\n' for c in CITIES))
    return cfg


def _signers(inbox: Inbox, *, expired: str | None = None) -> str:
    lines = []
    for city, key in inbox.keys.items():
        pub = key.with_suffix(".pub").read_text().split()
        valid = ',valid-before="20200101"' if city == expired else ""
        lines.append(f'{city} namespaces="itaudit-site-snapshot"{valid} {pub[0]} {pub[1]}')
    return "\n".join(lines) + "\n"


def _scan(cfg_path: Path, when: dt.date) -> None:
    from itaudit.config import load
    from itaudit.scan import run_scan

    cfg = load(cfg_path)
    run_scan(cfg, next(iter(cfg.cities.values())), as_of=when)


def _devices(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("select name from devices order by name")]
    finally:
        conn.close()


def test_two_sites_arrive_and_the_portfolio_reports_both(inbox: Inbox, tmp_path: Path) -> None:
    from itaudit import sitelink
    from itaudit.config import load

    central = load(_central_config(tmp_path, inbox, _signers(inbox)))
    for city in CITIES:
        site_cfg = _site_config(tmp_path, inbox, city)
        _scan(site_cfg, T0.date())
        cfg = load(site_cfg)
        sitelink.make_snapshot(cfg, now=T0)
        res = sitelink.push(cfg, now=T0)
        assert res.error is None and len(res.delivered) == 1, res
        assert not sitelink.outbox_for(cfg, cfg.city(city)).pending()
    results = sitelink.ingest(central, now=T0 + dt.timedelta(minutes=5))
    assert [(r.city, r.ok) for r in results] == [(c, True) for c in CITIES], results
    for city in CITIES:
        assert _devices(central.city(city).database) == [f"{city}-agent-host"]
    stale = sitelink.staleness(central, now=T0 + dt.timedelta(hours=1))
    assert all(not s["stale"] and s["seq"] == 1 for s in stale.values())
    out = subprocess.run([sys.executable, "-m", "itaudit.cli", "report", "portfolio", "-c", str(central.path),
                          "--out", str(tmp_path / "p"), "--as-of", T0.date().isoformat(), "--format", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(next((tmp_path / "p").glob("*.json")).read_text())
    assert {c["city_id"]: (c["has_data"], c["devices_total"]) for c in doc["cities"]} == {c: (True, 1) for c in CITIES}
    # Each site's last delivery is in the portfolio; recorded at T0 + 5 min, so stale by now.
    assert {c["city_id"]: (c["site_last_contact"][:16], c["site_stale"]) for c in doc["cities"]} == {
        c: ("2026-11-01T02:05", True) for c in CITIES}
    out = subprocess.run([sys.executable, "-m", "itaudit.cli", "report", "portfolio", "-c", str(central.path),
                          "--out", str(tmp_path / "p"), "--as-of", T0.date().isoformat(), "--format", "html"],
                         capture_output=True, text=True)
    html = next((tmp_path / "p").glob("*.html"))
    assert out.returncode == 0 and "site STALE: last delivered" in html.read_text()
    # Nothing waits, and the status command says so.
    again = sitelink.ingest(central)
    assert again == []


def test_a_cut_link_resumes_and_is_never_ingested_half(inbox: Inbox, tmp_path: Path) -> None:
    from itaudit import sitelink
    from itaudit.config import load

    city = CITIES[0]
    central = load(_central_config(tmp_path, inbox, _signers(inbox)))
    site_cfg = _site_config(tmp_path, inbox, city, kbps=400)  # 50 kB/s: the transfer takes seconds
    _scan(site_cfg, T0.date())
    cfg = load(site_cfg)
    db = Path(cfg.city(city).database)
    conn = sqlite3.connect(db)  # a fatter history: more rows in the city's own tables
    conn.execute("create table if not exists padding(x)")
    conn.executemany("insert into padding values (?)", [(os.urandom(512).hex(),) for _ in range(400)])
    conn.commit()
    conn.close()
    stem = sitelink.make_snapshot(cfg, now=T0)
    part = inbox.root / city / "inbox" / f"{stem}.db.part"
    result: dict[str, object] = {}
    pusher = threading.Thread(target=lambda: result.update(res=sitelink.push(cfg, now=T0)))
    pusher.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 50_000):
        time.sleep(0.05)
    assert part.exists(), "the upload never started"
    assert inbox.kill_sessions() >= 1  # the link is cut mid-transfer
    pusher.join(60)
    res = result["res"]
    assert res.error and res.pending == [stem]  # kept for the next try
    cut_at = part.stat().st_size
    assert 0 < cut_at < (sitelink.outbox_for(cfg, cfg.city(city)).folder / f"{stem}.db").stat().st_size
    assert sitelink.ingest(central) == []  # a .part is never ingested
    assert not Path(central.city(city).database).exists()
    res = sitelink.push(cfg, now=T0 + dt.timedelta(minutes=1), force=True)
    assert res.error is None and res.delivered == [stem]
    assert [r.ok for r in sitelink.ingest(central)] == [True]
    assert "padding" in sqlite3.connect(central.city(city).database).execute(
        "select group_concat(name) from sqlite_master").fetchone()[0]


def test_a_week_offline_catches_up_in_order(inbox: Inbox, tmp_path: Path) -> None:
    from itaudit import sitelink
    from itaudit.config import load

    city = CITIES[1]
    central = load(_central_config(tmp_path, inbox, _signers(inbox)))
    offline = load(_site_config(tmp_path, inbox, city, port=2299))  # nothing listens there: the link is down
    stems = []
    for day in range(7):
        when = T0 + dt.timedelta(days=day)
        _scan(offline.path, when.date())
        stems.append(sitelink.make_snapshot(offline, now=when))
        res = sitelink.push(offline, now=when, force=True)
        assert res.error and res.pending == stems
    status = sitelink.site_status(offline)
    assert status["failures"] == 7 and "failed" in status["last_error"]
    online = load(_site_config(tmp_path, inbox, city))  # the link is back
    res = sitelink.push(online, now=T0 + dt.timedelta(days=7))
    assert res.delivered == stems and res.pending == []
    results = sitelink.ingest(central, now=T0 + dt.timedelta(days=7))
    assert [r.stem for r in results] == stems and all(r.ok for r in results)
    state = sitelink.central_state(central)[city]
    assert state["seq"] == 7
    scans = sqlite3.connect(central.city(city).database).execute("select count(*) from scans").fetchone()[0]
    assert scans == 7  # the newest snapshot, with the whole week's history
    kept = sorted((tmp_path / "central-data" / "central" / city / "snapshots").glob("*.db"))
    assert [p.stem for p in kept] == stems[-2:]  # central.keep = 2


def _deliver(cfg, stem: str) -> None:
    from itaudit import sitelink

    res = sitelink.push(cfg, force=True)
    assert stem in res.delivered, res


def _resign(cfg, stem: str, change) -> None:
    """A manifest changed and signed again with the site's own key (a site running another
    itaudit, or a bug): the signature is good, the contents are not."""
    from itaudit import sitelink

    box = sitelink.outbox_for(cfg, cfg.city(cfg.site.city))
    manifest = box.folder / f"{stem}.json"
    doc = json.loads(manifest.read_text())
    change(doc)
    manifest.write_text(json.dumps(doc))
    (box.folder / f"{stem}.json.sig").unlink()  # (ssh-keygen would ask before overwriting it)
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(cfg.site.signing_key), "-n",
                    "itaudit-site-snapshot", str(manifest)], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)


def test_refused_snapshots_keep_the_previous_database(inbox: Inbox, tmp_path: Path) -> None:
    from itaudit import sitelink
    from itaudit.config import load

    north, south = CITIES
    central = load(_central_config(tmp_path, inbox, _signers(inbox)))
    cfg = load(_site_config(tmp_path, inbox, north))
    _scan(cfg.path, T0.date())
    good = sitelink.make_snapshot(cfg, now=T0)
    _deliver(cfg, good)
    assert [r.ok for r in sitelink.ingest(central)] == [True]
    before = Path(central.city(north).database).read_bytes()
    reasons: list[str] = []

    # 1. tampered: a byte of the database changed after signing
    stem = sitelink.make_snapshot(cfg, now=T0 + dt.timedelta(hours=1))
    db = sitelink.outbox_for(cfg, cfg.city(north)).folder / f"{stem}.db"
    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0xFF
    db.write_bytes(bytes(data))
    _deliver(cfg, stem)
    # 2. a newer schema, 3. counts that do not match (both signed by the site's real key)
    for n, change in ((2, lambda d: d.update(schema_version=999)),
                      (3, lambda d: d["row_counts"].update(devices=12345))):
        stem = sitelink.make_snapshot(cfg, now=T0 + dt.timedelta(hours=n))
        _resign(cfg, stem, change)
        _deliver(cfg, stem)
    for r in sitelink.ingest(central):
        assert not r.ok
        reasons.append(r.reason)
    assert "sha256" in reasons[0] and "newer than this itaudit" in reasons[1] and "row counts" in reasons[2]
    assert Path(central.city(north).database).read_bytes() == before  # the previous database stays

    # 4. north's snapshot dropped into south's inbox: signed, but not by a key allowed for south
    stem = sitelink.make_snapshot(cfg, now=T0 + dt.timedelta(hours=4))
    box = sitelink.outbox_for(cfg, cfg.city(north)).folder
    south_inbox = inbox.root / south / "inbox"
    for f in (f"{stem}.db", f"{stem}.json.sig", f"{stem}.json"):
        shutil.copy(box / f, south_inbox / f)
    [refused] = [r for r in sitelink.ingest(central) if r.city == south]
    assert not refused.ok and "not from a key allowed for city ita-south" in refused.reason
    assert (tmp_path / "central-data" / "central" / south / "refused" / f"{stem}.reason.txt").is_file()

    # 5. north's key has expired at the centre
    _deliver(cfg, stem)
    (tmp_path / "expired").mkdir()
    expired = load(_central_config(tmp_path / "expired", inbox, _signers(inbox, expired=north)))
    [r] = sitelink.ingest(expired)
    assert not r.ok and "key has expired" in r.reason
    assert Path(central.city(north).database).read_bytes() == before

    # The CLI says the same, and exits 3 when something was refused.
    stem = sitelink.make_snapshot(cfg, now=T0 + dt.timedelta(hours=6))
    _resign(cfg, stem, lambda d: d.update(city=south))
    _deliver(cfg, stem)
    run = subprocess.run([sys.executable, "-m", "itaudit.cli", "central", "ingest", "-c",
                          str(central.path)], capture_output=True, text=True)
    assert run.returncode == 3 and "REFUSED" in run.stdout, run.stdout + run.stderr
    assert "names city 'ita-south', but it arrived in ita-north's inbox" in run.stdout
    status = subprocess.run([sys.executable, "-m", "itaudit.cli", "central", "status", "-c",
                             str(central.path), "--tsv"], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.startswith("city\t")


def test_an_unknown_host_key_is_never_trusted(inbox: Inbox, tmp_path: Path) -> None:
    from itaudit import sitelink
    from itaudit.config import load

    city = CITIES[0]
    cfg_path = _site_config(tmp_path, inbox, city)
    other = tmp_path / "other_known_hosts"
    other_pub = write_ed25519(tmp_path / "not_the_msp", "x")
    other.write_text(f"[{inbox.address}]:{inbox.port} {' '.join(other_pub.split()[:2])}\n")
    cfg_path.write_text(cfg_path.read_text().replace(str(inbox.known_hosts), str(other)))
    cfg = load(cfg_path)
    _scan(cfg.path, T0.date())
    stem = sitelink.make_snapshot(cfg, now=T0)
    res = sitelink.push(cfg, now=T0)
    assert res.error and "failed" in res.error and res.pending == [stem]
    assert not list((inbox.root / city / "inbox").glob(f"{stem}*"))  # nothing was sent


def test_a_centre_that_cannot_write_keeps_the_snapshot_waiting(inbox: Inbox, tmp_path: Path) -> None:
    """A write failure at the centre (a full disk, here a folder where the database belongs):
    nothing is lost, the previous state stays, and the next run ingests it."""
    from itaudit import sitelink
    from itaudit.config import load

    city = CITIES[1]
    central = load(_central_config(tmp_path, inbox, _signers(inbox)))
    cfg = load(_site_config(tmp_path, inbox, city))
    _scan(cfg.path, T0.date())
    stem = sitelink.make_snapshot(cfg, now=T0)
    _deliver(cfg, stem)
    target = Path(central.city(city).database)
    target.mkdir(parents=True)  # os.replace onto a folder fails, as a full disk would
    [r] = sitelink.ingest(central)
    assert not r.ok and "cannot write the city's database" in r.reason
    assert (inbox.root / city / "inbox" / f"{stem}.db").exists()  # still waiting, whole
    target.rmdir()
    [r] = sitelink.ingest(central)
    assert r.ok and _devices(target) == [f"{city}-agent-host"]
