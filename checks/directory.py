"""Directory checks (Active Directory computer objects): stale objects, LAPS, BitLocker escrow.

They judge what ``collectors/directory.py`` read into ``DeviceFacts.directory``. The scan
runs them only on devices the directory lists (a switch is not "missing from LAPS"), and
on a disabled computer object only AD-001 runs.
"""

from __future__ import annotations

import datetime as dt

from checks._common import fmt, name_of, policy_of, refs, unknown_result
from itaudit.checking import CheckContext, check
from itaudit.model import CheckResult, DeviceFacts, Status

# A LAPS password whose expiry passed this long ago was not rotated by the machine's LAPS
# client (machine off, client broken, policy removed); a few days late is normal.
LAPS_GRACE_DAYS = 30


def _days(since: dt.date, as_of: dt.date) -> int:
    return (as_of - since).days


def _not_windows(facts: DeviceFacts) -> str | None:
    """The OS of a computer that is known not to run Windows (LAPS and BitLocker are Windows's)."""
    fam, name = facts.software.os_family, facts.software.os_name
    if (fam and fam != "windows") or (not fam and name and "windows" not in name.lower()):
        return name or fam
    return None


@check("AD-001", title="Stale computer object in the directory", severity="low",
       **refs("AD-001"))
def ad_stale_computer(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """An enabled computer object that has not logged on to the domain for too long.

    Uses ``lastLogonTimestamp`` (replicated between domain controllers at most 14 days
    late, so the threshold must be well above that) against the city policy's
    ``stale_computer_days`` (default 90). An object that never logged on fails once it
    is older than the same threshold. A stale object is a machine that is gone, lost or
    switched off: its account can still be used to authenticate, and it inflates the
    inventory. Disabled objects pass (they cannot log on); deleting them is housekeeping.
    """
    d = facts.directory
    limit = policy_of(ctx).stale_computer_days
    if d.disabled:
        return CheckResult(Status.PASS,
                           summary=f"{name_of(facts, ctx)}'s computer object is disabled: it cannot log on.")
    if d.last_logon is not None:
        idle = _days(d.last_logon, ctx.as_of)
        evidence = f"lastLogonTimestamp {fmt(d.last_logon)}; policy stale_computer_days = {limit}"
        if idle > limit:
            return CheckResult(
                Status.FAIL,
                summary=f"{name_of(facts, ctx)} has not logged on to the domain for {idle} days (since "
                f"{fmt(d.last_logon)}): the machine may be gone, lost or switched off.",
                detail=f"{d.dn}",
                evidence=evidence,
                remediation="Find the machine; if it is gone, disable its computer object now and delete it "
                "after the city's retention period.",
            )
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} logged on to the domain {idle} days ago.",
                           evidence=evidence)
    if d.created is not None:
        age = _days(d.created, ctx.as_of)
        evidence = f"no lastLogonTimestamp; whenCreated {fmt(d.created)}"
        if age > limit:
            return CheckResult(
                Status.FAIL,
                summary=f"{name_of(facts, ctx)} has never logged on to the domain since its computer object was "
                f"created {age} days ago.",
                detail=f"{d.dn}",
                evidence=evidence,
                remediation="Delete the object if the machine was never deployed; otherwise find out why it "
                "does not log on.",
            )
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} was added to the directory {age} days ago and "
                           "has not logged on yet.", evidence=evidence)
    return unknown_result(summary=f"We could not tell when {name_of(facts, ctx)} last logged on to the domain.",
                          missing=["directory.last_logon", "directory.created"])


@check("AD-002", title="Local administrator password not managed by LAPS", severity="medium",
       applies_to=("workstation", "laptop", "server"), **refs("AD-002"))
def ad_laps(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """The computer's local administrator password is not rotated by LAPS.

    Read from the *expiry* attributes only, never the password: legacy LAPS
    (``ms-Mcs-AdmPwdExpirationTime``) or Windows LAPS (``msLAPS-PasswordExpirationTime``).
    No expiry set means LAPS does not manage the machine: its local administrator password
    is probably the same as on many others, so one stolen hash opens them all. An expiry
    more than 30 days past means the machine's LAPS client stopped rotating it. When the
    directory's schema has neither attribute the answer is ``unknown`` (Windows LAPS may
    store passwords in Entra ID instead). Domain controllers pass: they have no local
    accounts; so do computers known to run another OS than Windows.
    """
    d = facts.directory
    if other := _not_windows(facts):
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} runs {other}: Windows LAPS does not apply.")
    if d.domain_controller:
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} is a domain controller: it has no local "
                           "administrator account for LAPS to manage.")
    if d.laps_source is None or d.laps_managed is None:
        return unknown_result(
            summary=f"We could not tell whether LAPS manages {name_of(facts, ctx)}'s local administrator password: "
            "the directory's schema has no LAPS attributes.",
            missing=["directory.laps_managed"],
            detail=facts.gaps.get("directory.laps_managed", ""),
        )
    if not d.laps_managed:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)}'s local administrator password is not managed by LAPS: it is likely the "
            "same on other machines, so one stolen password opens them all.",
            evidence=f"no {d.laps_source} LAPS expiry attribute set on {d.dn}",
            remediation="Deploy Windows LAPS to this machine (Group Policy or Intune) and back the password up "
            "to Active Directory.",
        )
    assert d.laps_expires is not None
    late = _days(d.laps_expires, ctx.as_of)
    if late > LAPS_GRACE_DAYS:
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)}'s LAPS password expired {late} days ago and was not rotated: the LAPS "
            "client on the machine is not working (or the machine is off).",
            evidence=f"LAPS expiry {fmt(d.laps_expires)} ({d.laps_source})",
            remediation="Check the LAPS client and policy on the machine; force a rotation.",
        )
    return CheckResult(Status.PASS, summary=f"LAPS manages {name_of(facts, ctx)}'s local administrator password "
                       f"(next rotation {fmt(d.laps_expires)}).", evidence=f"{d.laps_source} LAPS")


@check("AD-003", title="No BitLocker recovery key escrowed in the directory", severity="medium",
       applies_to=("workstation", "laptop"), **refs("AD-003"))
def ad_bitlocker_escrow(facts: DeviceFacts, ctx: CheckContext) -> CheckResult:
    """A PC with no BitLocker recovery key backed up to Active Directory.

    Counts the ``msFVE-RecoveryInformation`` objects under the computer (their names only;
    the recovery passwords are never read). None means either the disk is not encrypted or
    its recovery key exists only on the machine: a failed TPM or a forgotten PIN then loses
    the data. ``unknown`` when the bind account cannot see recovery objects at all (they
    are protected: grant it read access to msFVE-RecoveryInformation objects, or read as
    an account that has it). Computers known to run another OS than Windows pass.
    """
    d = facts.directory
    if other := _not_windows(facts):
        return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} runs {other}: BitLocker does not apply.")
    if d.bitlocker_keys is None:
        return unknown_result(
            summary=f"We could not tell whether {name_of(facts, ctx)} has a BitLocker recovery key in the directory.",
            missing=["directory.bitlocker_keys"],
            detail=facts.gaps.get("directory.bitlocker_keys", ""),
        )
    if d.bitlocker_keys == 0:
        encrypted = facts.posture.disk_encryption
        why = (" The disk is not encrypted either (see the disk-encryption check)." if encrypted is False
               else " If its disk is encrypted, a lost key means lost data.")
        return CheckResult(
            Status.FAIL,
            summary=f"{name_of(facts, ctx)} has no BitLocker recovery key backed up to the directory.{why}",
            evidence=f"0 msFVE-RecoveryInformation objects under {d.dn}",
            remediation="Enable BitLocker with the Group Policy that requires backing the recovery key up to "
            "Active Directory (or run manage-bde -protectors -adbackup).",
        )
    return CheckResult(Status.PASS, summary=f"{name_of(facts, ctx)} has {d.bitlocker_keys} BitLocker recovery "
                       "key(s) backed up to the directory.")
