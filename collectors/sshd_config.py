"""The effective settings of the sshd that served our session, from the probe's ``sshd`` section.

Pure functions, no I/O. The Linux probe finds the listening sshd among the session's
process ancestors, reads its command line (``-f FILE``, ``-o "KEY VALUE"``, ``-h``, ``-p``;
from ``/proc/PID/cmdline``, and when OpenSSH's listener has retitled itself to its arguments
joined by spaces, split again by sshd's option grammar so a value keeps its spaces) and runs
that binary's ``sshd -T`` with the same options and our connection (``-C user=,host=,addr=,
laddr=,lport=``, so ``Match`` blocks are applied as for our login), through ``sudo -n``
when the credential allows it. When ``sshd -T`` cannot run (no root, no host keys
readable), the probe prints the daemon's ``-o`` options (they come first, so they win over
the file) and its own configuration file with every ``Include`` expanded in place, and
``effective_settings`` applies OpenSSH's rules here: the first
value of a keyword wins, a ``Match`` block whose criteria all hold overrides the global
value (the first such block wins), and a block we cannot decide (``Group`` without our
groups, ``RDomain``, unknown criteria) makes the keywords it sets unknown rather than
guessed. Keywords never set take upstream OpenSSH's compiled-in defaults.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field

# Upstream OpenSSH defaults (sshd_config(5)) for the keywords the checks read.
DEFAULTS = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "usepam": "no",
    "permitemptypasswords": "no",
    "x11forwarding": "no",
    "allowagentforwarding": "yes",
    "maxauthtries": "6",
    "logingracetime": "120",
    "authenticationmethods": "any",
    "pubkeyauthentication": "yes",
}
KEYS = tuple(DEFAULTS)
_ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}


@dataclass
class Connection:
    """What ``Match`` criteria are tested against (our own session)."""

    user: str = ""
    addr: str = ""
    laddr: str = ""
    lport: str = ""
    groups: list[str] | None = None  # None: not known

    @classmethod
    def parse(cls, spec: str, groups: str | None = None) -> Connection:
        """From the probe's ``user=..,host=..,addr=..,laddr=..,lport=..`` line."""
        d = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
        return cls(d.get("user", ""), d.get("addr", ""), d.get("laddr", ""), d.get("lport", ""),
                   groups.split() if groups is not None else None)


@dataclass
class Effective:
    """Settings as the daemon applies them for one user; ``unknown`` keyword -> why."""

    values: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


def _pattern_list(patterns: str, value: str, *, cidr: bool = False) -> bool:
    """OpenSSH ``match_pattern_list``: any negated match fails the list, else any match holds."""
    hit = False
    for raw in patterns.split(","):
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        if cidr and "/" in pat:
            try:
                ok = ipaddress.ip_address(value) in ipaddress.ip_network(pat, strict=False)
            except ValueError:
                ok = False
        else:
            ok = fnmatch.fnmatchcase(value, pat)
        if ok and neg:
            return False
        hit = hit or ok
    return hit


def match_applies(criteria: str, conn: Connection) -> bool | None:
    """Do all criteria of a ``Match`` line hold for ``conn``? None when we cannot tell."""
    words = criteria.split()
    if [w.lower() for w in words] == ["all"]:
        return True
    if len(words) % 2:
        return None
    result: bool | None = True
    for key, value in zip(words[::2], words[1::2], strict=True):
        k = key.lower()
        if k == "user":
            ok: bool | None = _pattern_list(value, conn.user)
        elif k in ("address", "host"):  # UseDNS no (the default since 6.8): host is the address
            ok = _pattern_list(value, conn.addr, cidr=True) if conn.addr else None
        elif k == "localaddress":
            ok = _pattern_list(value, conn.laddr, cidr=True) if conn.laddr else None
        elif k == "localport":
            ok = _pattern_list(value, conn.lport) if conn.lport else None
        elif k == "group":
            ok = None if conn.groups is None else any(_pattern_list(value, g) for g in conn.groups)
        else:
            ok = None
        if ok is False:
            return False
        if ok is None:
            result = None
    return result


_LINE = re.compile(r"^\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+)(.*?)\s*$")


def directives(lines: list[str]) -> list[tuple[str, str]]:
    """(keyword lower-cased, value) in file order; comments, blanks and markers dropped."""
    out = []
    for ln in lines:
        if ln.startswith(("--- ", "!")) or not ln.strip() or ln.lstrip().startswith("#"):
            continue
        m = _LINE.match(ln)
        if m:
            key = m.group(1).lower()
            out.append((_ALIASES.get(key, key), m.group(2).strip().strip('"')))
    return out


def effective_settings(items: list[tuple[str, str]], conn: Connection) -> Effective:
    """Apply OpenSSH's rules (see module doc) to flattened directives for ``conn``."""
    eff = Effective()
    global_vals: dict[str, str] = {}
    matched: dict[str, str] = {}
    criteria: str | None = None
    applies: bool | None = True
    for key, value in items:
        if key == "include":
            continue
        if key == "match":
            criteria = value
            applies = match_applies(value, conn)
            continue
        if key not in KEYS:
            continue
        if criteria is None:
            global_vals.setdefault(key, value)
        elif key in matched or key in eff.unknown:
            continue
        elif applies:
            matched[key] = value
        elif applies is None:
            eff.unknown[key] = f"set in a Match block we cannot evaluate ('Match {criteria}')"
    for key in KEYS:
        if key in eff.unknown:
            continue
        eff.values[key] = matched.get(key) or global_vals.get(key) or DEFAULTS[key]
    return eff


def seconds(value: str) -> int | None:
    """sshd time format: ``120``, ``2m``, ``1h30m`` -> seconds."""
    v = value.strip().lower()
    if v.isdigit():
        return int(v)
    parts = re.findall(r"(\d+)([smhdw]?)", v)
    if not parts or "".join(n + u for n, u in parts) != v:
        return None
    mult = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(int(n) * mult[u] for n, u in parts)


def password_login(values: dict[str, str]) -> bool | None:
    """Does the daemon accept a password alone (PasswordAuthentication, or keyboard-interactive
    through PAM), given AuthenticationMethods? None when a needed keyword is unknown."""
    need = ("passwordauthentication", "kbdinteractiveauthentication", "usepam", "authenticationmethods")
    if any(k not in values for k in need):
        return None
    pw = values["passwordauthentication"].lower() == "yes"
    kbd = values["kbdinteractiveauthentication"].lower() == "yes" and values["usepam"].lower() == "yes"
    methods = values["authenticationmethods"].strip().lower()
    if methods not in ("", "any"):
        # Only a list that needs nothing but a password lets a password alone in.
        alone = [lst.split(":")[0] for lst in methods.split() if "," not in lst]
        pw = pw and "password" in alone
        kbd = kbd and "keyboard-interactive" in alone
    return pw or kbd
