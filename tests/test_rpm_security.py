"""Last security update on RPM systems: the probe's ``rpmsec`` function and its parser.

dnf/yum: the installed security advisories (``yum updateinfo list security installed``, a
recorded RHEL 7 output; ``dnf updateinfo list --installed --security``, Debian's real dnf 4
reading a local repository whose updateinfo names a security advisory) joined with
``rpm -qa --last`` of a real rpm database (Debian's ``rpm``, packages built with the
recording's exact versions and installed at chosen dates with ``faketime``). SUSE: libzypp's
history, recorded lines. Sources of every recording: tests/fixtures/rpm-security/SOURCES.md.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from collectors.linux import parse_linux, rpm_last_date
from collectors.ssh import probe_script

REC = Path(__file__).parent / "fixtures" / "rpm-security"
SPEC = """Name: %{pname}
Epoch: %{pepoch}
Version: %{pver}
Release: %{prel}
Summary: itaudit test package
License: MIT
BuildArch: %{parch}
%description
A package with the name and version of a real one, for a real rpm database.
%files
"""


def _probe_part(start: str, end: str) -> str:
    """Lines of the probe (as sent) from the one starting with ``start`` to the one equal to ``end``."""
    lines = probe_script("linux").splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith(start))
    j = next(n for n in range(i, len(lines)) if lines[n] == end)
    return "\n".join(lines[i:j + 1]) + "\n"


def _run(bindir: Path, body: str) -> str:
    """Run the probe's rpmsec (and ``body``) with only ``bindir`` on PATH; return its output."""
    prelude = ('LC_ALL=C; export LC_ALL\nhas() { command -v "$1" >/dev/null 2>&1; }\ntmo() { T=""; }\nS=""\n'
               "nl='\n'\n")
    script = prelude + _probe_part("rpmsec() {", "}") + body
    out = subprocess.run(["/bin/sh", "-c", script], env={"PATH": str(bindir)}, capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout


def _facts(section: str):
    return parse_linux("=== ITAUDIT linux-probe 1 ===\n=== SECTION packages ===\npm=rpm\n"
                       f"=== SECTION last-change ===\n{section}=== END ===\n")


def _bindir(tmp: Path, **scripts: str) -> Path:
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    # rpm --last pipes through sort, sed and awk; Debian's rpm macros run bash.
    for tool in ("awk", "bash", "cat", "sed", "sort", "tail"):
        (bindir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    for name, text in scripts.items():
        path = bindir / name
        path.write_text("#!/bin/sh\n" + text)
        path.chmod(0o755)
    return bindir


# --- parsers on recorded output ---------------------------------------------------------------


def test_rpm_last_dates_in_the_en_us_format() -> None:
    lines = (REC / "rpm-qa-last.rocky8.txt").read_text().splitlines()
    dates = [rpm_last_date(ln) for ln in lines]
    assert dates[0] == dt.date(2021, 5, 24) and dates[-2] == dt.date(2021, 5, 25)
    assert all(d is not None for d in dates)
    assert rpm_last_date("kernel-4.18.0-305.el8.x86_64") is None


def _zypp(tmp_path: Path, history: str) -> str:
    (tmp_path / "log" / "zypp").mkdir(parents=True)
    (tmp_path / "log" / "zypp" / "history").write_text(history)
    return _run(_bindir(tmp_path, zypper="exit 0\n"), f'rpmsec "{tmp_path / "log"}"\n')


def test_zypp_history_last_applied_security_patch(tmp_path) -> None:
    out = _zypp(tmp_path, (REC / "zypp-history.lines.txt").read_text())
    assert "zypp_security_patches=1" in out
    facts = _facts(out)
    assert facts.patching.last_patched == dt.date(2026, 1, 7)
    assert "openSUSE-2024-157" in facts.evidence["last-security-update"]
    assert "important, security" in facts.evidence["last-security-update"]


def test_zypp_history_without_a_security_patch_says_why(tmp_path) -> None:
    lines = [ln for ln in (REC / "zypp-history.lines.txt").read_text().splitlines() if "|patch" not in ln]
    facts = _facts(_zypp(tmp_path, "\n".join(lines) + "\n"))
    assert facts.patching.last_patched is None
    assert "records no applied security patch" in facts.gaps["patching.last_patched"]


# --- yum updateinfo joined with a real rpm database ------------------------------------------


@pytest.fixture(scope="module")
def rpms(tmp_path_factory) -> dict[str, Path]:
    """Packages named and versioned as on the recorded RHEL 7 system, built by rpmbuild."""
    from conftest import need_peer

    need_peer(all(shutil.which(t) for t in ("rpm", "rpmbuild", "faketime")),
              "rpm, rpmbuild and faketime needed (apt-get install rpm faketime)")
    top = tmp_path_factory.mktemp("rpmbuild")
    spec = top / "p.spec"
    spec.write_text(SPEC)
    built = {}
    for name, epoch, ver, rel, arch in (("NetworkManager", 1, "1.8.0", "9.el7", "x86_64"),
                                        ("NetworkManager-adsl", 1, "1.8.0", "9.el7", "x86_64"),
                                        ("NetworkManager", 1, "1.8.0", "11.el7", "x86_64"),
                                        ("ModemManager-glib", 0, "1.6.10", "1.el7", "x86_64")):
        defs = {"_topdir": str(top), "pname": name, "pepoch": str(epoch), "pver": ver, "prel": rel,
                "parch": arch, "_build_id_links": "none"}
        args = [a for k, v in defs.items() for a in ("--define", f"{k} {v}")]
        subprocess.run(["rpmbuild", "-bb", *args, str(spec)], check=True, capture_output=True, timeout=60)
        built.setdefault(name, top / "RPMS" / arch / f"{name}-{ver}-{rel}.{arch}.rpm")
    return built


def _rpmdb(tmp_path: Path, rpms: dict[str, Path], installs: list[tuple[str, str]]) -> Path:
    db = tmp_path / "rpmdb"
    db.mkdir()
    subprocess.run(["rpm", "--dbpath", str(db), "--initdb"], check=True, capture_output=True)
    for name, when in installs:
        subprocess.run(["faketime", when, "rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps",
                        "--ignorearch", "--ignoreos", str(rpms[name])], check=True, capture_output=True)
    return db


def _yum_run(tmp_path: Path, db: Path, recording: str, rc: int = 0) -> str:
    rpm = shutil.which("rpm")
    bindir = _bindir(tmp_path, rpm=f'exec {rpm} --dbpath "{db}" "$@"\n',
                     yum=(f'cat "{REC / recording}"\n' if recording else "") + f"exit {rc}\n")
    # The probe's own line for RPM systems (pm=rpm): last install of any package, then rpmsec.
    return _run(bindir, "PM=rpm\n" + _rpm_line(tmp_path / "log") + "\n")


def _rpm_line(logdir: Path) -> str:
    """The probe's own line for RPM systems (pm=rpm), reading logs from ``logdir``."""
    line = next(ln for ln in probe_script("linux").splitlines() if ln.startswith('if [ "$PM" = rpm ]; then'))
    assert "rpmsec /var/log;" in line
    return line.replace("rpmsec /var/log;", f'rpmsec "{logdir}";')


@pytest.mark.parametrize("recording", ["yum-updateinfo-security-installed.rhel7.txt",
                                       "yum-updateinfo-security-all.rhel7.txt"])
def test_yum_security_advisory_joined_with_rpm_last(rpms, tmp_path, recording) -> None:
    # The security build of NetworkManager went in on 1 Sep 2018; a later ModemManager-glib
    # (newer than its advisory's version, so no security build) does not move the date.
    db = _rpmdb(tmp_path, rpms, [("NetworkManager", "2018-09-01 10:00:00"),
                                 ("NetworkManager-adsl", "2018-09-01 10:00:05"),
                                 ("ModemManager-glib", "2019-03-15 09:30:00")])
    out = _yum_run(tmp_path, db, recording)
    assert "rpm_security_tool=yum" in out and "rpm_security_match=RHSA-2017:2299 NetworkManager" in out
    facts = _facts(out)
    assert facts.patching.last_patched == dt.date(2018, 9, 1)
    assert facts.evidence["last-security-update"].startswith("2018-09-01 RHSA-2017:2299 NetworkManager")
    assert facts.patching.last_package_change == dt.date(2019, 3, 15)


def test_yum_advisories_but_no_installed_security_build(rpms, tmp_path) -> None:
    db = _rpmdb(tmp_path, rpms, [("ModemManager-glib", "2019-03-15 09:30:00")])
    facts = _facts(_yum_run(tmp_path, db, "yum-updateinfo-security-installed.rhel7.txt"))
    assert facts.patching.last_patched is None
    assert "no installed package is at a version an advisory shipped" in facts.gaps["patching.last_patched"]
    assert facts.patching.last_package_change == dt.date(2019, 3, 15)


def test_yum_output_without_an_advisory_line_is_not_called_no_advisory(rpms, tmp_path) -> None:
    # Only the recording's "Loaded plugins" header: an answer, but no advisory line to read.
    header = "".join((REC / "yum-updateinfo-security-installed.rhel7.txt").read_text().splitlines(True)[:2])
    (tmp_path / "header.txt").write_text(header)
    db = _rpmdb(tmp_path, rpms, [("NetworkManager", "2018-09-01 10:00:00")])
    rpm = shutil.which("rpm")
    bindir = _bindir(tmp_path, rpm=f'exec {rpm} --dbpath "{db}" "$@"\n', yum=f'cat "{tmp_path / "header.txt"}"\n')
    facts = _facts(_run(bindir, "PM=rpm\n" + _rpm_line(tmp_path / "log") + "\n"))
    assert facts.patching.last_patched is None
    assert facts.gaps["patching.last_patched"].startswith(
        "yum updateinfo printed no advisory line itaudit reads (first line: 'Loaded plugins: changelog")


def test_yum_updateinfo_failing_is_a_named_reason(rpms, tmp_path) -> None:
    db = _rpmdb(tmp_path, rpms, [("NetworkManager", "2018-09-01 10:00:00")])
    facts = _facts(_yum_run(tmp_path, db, "", rc=1))
    assert facts.patching.last_patched is None
    assert facts.gaps["patching.last_patched"] == "yum updateinfo failed: rc=1"


# --- dnf: Debian's real dnf 4 on a local repository with a security advisory ---------------

UPDATEINFO = """<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="itaudit-test" status="final" type="security" version="2">
    <id>RHSA-2017:2299</id>
    <title>Moderate: NetworkManager security update</title>
    <issued date="2017-08-01 00:00:00"/>
    <severity>Moderate</severity>
    <description>The advisory of the recorded RHEL 7 system, for a local repository.</description>
    <pkglist>
      <collection short="t">
        <name>t</name>
        <package name="NetworkManager" epoch="1" version="1.8.0" release="9.el7" arch="x86_64"
                 src="NetworkManager-1.8.0-9.el7.src.rpm">
          <filename>NetworkManager-1.8.0-9.el7.x86_64.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
"""


def _dnf_system(rpms: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A local repository (updateinfo: RHSA-2017:2299 for NetworkManager-1:1.8.0-9.el7, a later
    build without an advisory) and an installroot where Debian's real dnf installed on
    2018-09-01 the security build, upgraded it on 2018-12-01 to the later build, and installed
    ModemManager-glib on 2019-03-15. Returns (bin folder with dnf and rpm for it, its log folder)."""
    from conftest import need_peer

    need_peer(all(shutil.which(t) for t in ("dnf", "createrepo_c", "modifyrepo_c")),
              "dnf and createrepo-c needed (apt-get install dnf createrepo-c)")
    repo, root, etc = tmp_path / "repo", tmp_path / "root", tmp_path / "etc"
    for d in (repo, root, etc / "yum.repos.d"):
        d.mkdir(parents=True)
    for path in rpms.values():
        shutil.copy(path, repo)
    shutil.copy(rpms["NetworkManager"].with_name("NetworkManager-1.8.0-11.el7.x86_64.rpm"), repo)
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True, capture_output=True, timeout=60)
    (tmp_path / "updateinfo.xml").write_text(UPDATEINFO)
    subprocess.run(["modifyrepo_c", "--mdtype=updateinfo", str(tmp_path / "updateinfo.xml"), str(repo / "repodata")],
                   check=True, capture_output=True, timeout=60)
    (etc / "dnf.conf").write_text(f"[main]\nreposdir={etc / 'yum.repos.d'}\ngpgcheck=0\n")
    (etc / "yum.repos.d" / "t.repo").write_text(f"[t]\nname=t\nbaseurl=file://{repo}\ngpgcheck=0\n")
    subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True, capture_output=True)
    cache = f"--setopt=cachedir={tmp_path / 'dnf-cache'}"  # not the host's /var/cache/dnf
    dnf = [shutil.which("dnf") or "dnf", f"--installroot={root}", f"--config={etc / 'dnf.conf'}", "--releasever=7",
           f"--setopt=reposdir={etc / 'yum.repos.d'}", cache, "-y", "-q"]
    for when, args in (("2018-09-01 10:00:00", ["install", "NetworkManager-1:1.8.0-9.el7"]),
                       ("2018-12-01 10:00:00", ["upgrade", "NetworkManager"]),
                       ("2019-03-15 09:30:00", ["install", "ModemManager-glib"])):
        subprocess.run(["faketime", when, *dnf, *args], check=True, capture_output=True, timeout=120)
    # The probe's own --setopt=cachedir=/var/cache/dnf would be the host's: the last one wins.
    wrapper = " ".join(dnf[:6]) + f' "$@" {cache}'
    bindir = _bindir(tmp_path, dnf=f"exec {wrapper}\n", rpm=f'exec {shutil.which("rpm")} --root "{root}" "$@"\n')
    # The probe reads dnf's cache only (-C): fill it as the host's own dnf would have.
    subprocess.run([str(bindir / "dnf"), "-q", "--setopt=cachedir=/var/cache/dnf", "makecache"], check=True,
                   capture_output=True, timeout=120)
    return bindir, root / "var" / "log"


def test_dnf_security_build_since_replaced_is_found_in_dnfs_log(rpms, tmp_path) -> None:
    bindir, logdir = _dnf_system(rpms, tmp_path)
    assert "SUBDEBUG Installed: NetworkManager-1:1.8.0-9.el7.x86_64" in (logdir / "dnf.rpm.log").read_text()
    out = _run(bindir, "PM=rpm\n" + _rpm_line(logdir) + "\n")
    assert "rpm_security_tool=dnf" in out and "rpm_security_advisories=1" in out, out
    assert "rpm_security_match=" not in out  # the security build is no longer installed
    facts = _facts(out)
    assert facts.patching.last_patched == dt.date(2018, 9, 1)
    assert facts.evidence["last-security-update"] == "2018-09-01 RHSA-2017:2299 NetworkManager-1.8.0-9.el7.x86_64"
    assert facts.patching.last_package_change == dt.date(2019, 3, 15)
    # Without dnf's log (rotated away, or unreadable) the date is unknown, and says why.
    for log in logdir.glob("dnf.rpm.log*"):
        log.unlink()
    facts = _facts(_run(bindir, "PM=rpm\n" + _rpm_line(logdir) + "\n"))
    assert facts.patching.last_patched is None
    assert "no installed package is at a version an advisory shipped" in facts.gaps["patching.last_patched"]


def test_dnf_without_its_metadata_cache_is_a_named_reason(rpms, tmp_path) -> None:
    bindir, logdir = _dnf_system(rpms, tmp_path)
    shutil.rmtree(tmp_path / "dnf-cache")
    facts = _facts(_run(bindir, "PM=rpm\n" + _rpm_line(logdir) + "\n"))
    assert facts.patching.last_patched is None
    assert facts.gaps["patching.last_patched"] == ("dnf updateinfo failed: "
                                                   "Error: Cache-only enabled but no cache for 't'")
