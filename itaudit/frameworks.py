"""Framework evidence as data: CSF 2.0 and CPG 2.0 catalogs, check mappings, question
templates and the attestations a person records.

Checks never name frameworks (prowler's habit): ``data/frameworks/check_mappings.json``
maps each check ID to NIST CSF 2.0 subcategories and CISA CPG 2.0 goals, each mapping
with who made it, when, why, and how far its identifiers were verified. Templates
(``data/frameworks/templates/*.json``, plus a city's own files) list questions; a question
is answered from itaudit's data (``answered_by = "data"``, with the checks behind it) or
only by a person (``"person"``), whose answer is an attestation.

Attestations live in a JSON file beside the city's database, not in the store: they are
a person's statements, not observations, so they stay readable, editable and reviewable
by hand (and in version control), and they survive a rebuilt database. The file is a
history: recording a new answer appends; a report uses the newest one dated on or before
its as-of date and shows its age.

Nothing here stops on a bad template question or attestation: it becomes a *problem*
line that the evidence report prints (a question naming no check, an unknown check, an
attestation for an unknown question, a stale one). Only a file that cannot be read as a
template at all raises ``FrameworkError``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from itaudit.errors import ItauditError
from itaudit.knowledge import shipped_data_dir

TEMPLATE_FORMAT = "itaudit-evidence-template/1"
ATTESTATION_FORMAT = "itaudit-attestations/1"
CSF_ID_RE = re.compile(r"^(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-\d{2}$")
CPG_ID_RE = re.compile(r"^[1-6]\.[A-Z]$")
ANSWERS = ("yes", "partly", "no")  # what a person may attest; "unknown" is the absence of an answer
STALE_DAYS = 365
SHIPPED_TEMPLATES = ("insurance", "cpg2")


class FrameworkError(ItauditError):
    """A framework data file, template or attestation file cannot be used."""


def frameworks_dir() -> Path:
    return shipped_data_dir() / "frameworks"


def _read(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrameworkError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FrameworkError(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise FrameworkError(f"{path}: {what} is not valid JSON (line {exc.lineno}: {exc.msg})") from None


@cache
def csf_catalog() -> dict[str, Any]:
    """The shipped list of NIST CSF 2.0 subcategory IDs, with its source."""
    return dict(_read(frameworks_dir() / "csf2_subcategories.json", "CSF 2.0 catalog"))


@cache
def cpg_catalog() -> dict[str, Any]:
    """The shipped list of CISA CPG 2.0 goals, with its source and verification note."""
    return dict(_read(frameworks_dir() / "cpg2_goals.json", "CPG 2.0 catalog"))


@cache
def check_mappings() -> dict[str, Any]:
    """Check ID -> {csf, cpg2, why, mapped_by, date, *_verification}."""
    return dict(_read(frameworks_dir() / "check_mappings.json", "check mappings"))


def cpg_titles() -> dict[str, str]:
    return {g["id"]: g["title"] for g in cpg_catalog()["goals"]}


def csf_function(subcategory: str) -> str:
    """'PR' for 'PR.PS-02'."""
    return subcategory.split(".", 1)[0]


# --- templates ------------------------------------------------------------------------


@dataclass
class Question:
    id: str
    text: str
    answered_by: str  # "data" or "person"
    checks: list[str] = field(default_factory=list)
    coverage: str = "full"  # "full" or "part": can itaudit's data alone answer "yes"?
    coverage_note: str = ""
    csf: list[str] = field(default_factory=list)
    cpg2: list[str] = field(default_factory=list)
    related_checks: list[str] = field(default_factory=list)  # shown beside a person's answer


@dataclass
class Template:
    id: str
    title: str
    source: str
    path: str
    questions: list[Question]
    shipped: bool = True


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def load_template(path: Path, known_checks: set[str], *, shipped: bool = False) -> tuple[Template, list[str]]:
    """Read one template; return it with the problems found in its questions.

    Raises ``FrameworkError`` only when the file is not a template at all.
    """
    doc = _read(path, "evidence template")
    if not isinstance(doc, dict) or doc.get("format") != TEMPLATE_FORMAT:
        raise FrameworkError(f"{path}: not an evidence template (expected \"format\": \"{TEMPLATE_FORMAT}\")")
    tid = doc.get("id")
    if not isinstance(tid, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", tid):
        raise FrameworkError(f"{path}: \"id\" must be a short lower-case name such as \"my-insurer\"")
    raw = doc.get("questions")
    if not isinstance(raw, list) or not raw:
        raise FrameworkError(f"{path}: \"questions\" must be a non-empty list")
    problems: list[str] = []
    questions: list[Question] = []
    seen: set[str] = set()
    for i, q in enumerate(raw, 1):
        where = f"template {tid}, question {i}"
        if not isinstance(q, dict) or not isinstance(q.get("id"), str) or not q.get("id"):
            problems.append(f"{where}: has no \"id\"; it was skipped")
            continue
        qid = q["id"]
        where = f"template {tid}, question {qid}"
        if qid in seen:
            problems.append(f"{where}: the id is used twice in this template; the second was skipped")
            continue
        seen.add(qid)
        text = q.get("text") if isinstance(q.get("text"), str) and q.get("text") else qid
        lists = {k: _str_list(q.get(k)) for k in ("checks", "csf", "cpg2", "related_checks")}
        for k, v in lists.items():
            if v is None:
                problems.append(f"{where}: \"{k}\" must be a list of strings; it was ignored")
                lists[k] = []
        by = q.get("answered_by", "data" if lists["checks"] else "person")
        if by not in ("data", "person"):
            problems.append(f"{where}: answered_by must be \"data\" or \"person\", not {by!r}; treated as \"person\"")
            by = "person"
        checks = lists["checks"] or []
        unknown = [c for c in checks if c not in known_checks]
        if unknown:
            problems.append(f"{where}: names checks itaudit does not have ({', '.join(unknown)})")
        checks = [c for c in checks if c in known_checks]
        if by == "data" and not checks:
            problems.append(f"{where}: maps to no check itaudit has, so itaudit cannot answer it (shown as unknown)")
        bad_csf = [c for c in lists["csf"] or [] if c not in set(csf_catalog()["subcategories"])]
        if bad_csf:
            problems.append(f"{where}: not NIST CSF 2.0 subcategories: {', '.join(bad_csf)}")
        coverage = q.get("coverage", "full")
        if coverage not in ("full", "part"):
            problems.append(f"{where}: coverage must be \"full\" or \"part\"; treated as \"part\"")
            coverage = "part"
        questions.append(Question(
            id=qid, text=text, answered_by=by, checks=checks, coverage=coverage,
            coverage_note=str(q.get("coverage_note") or ""),
            csf=[c for c in lists["csf"] or [] if c not in bad_csf], cpg2=lists["cpg2"] or [],
            related_checks=[c for c in lists["related_checks"] or [] if c in known_checks],
        ))
    title = doc.get("title") if isinstance(doc.get("title"), str) else tid
    source = doc.get("source") if isinstance(doc.get("source"), str) else "no source given"
    return Template(id=tid, title=title, source=source, path=str(path), questions=questions,
                    shipped=shipped), problems


def templates_for(city: Any, known_checks: set[str]) -> tuple[list[Template], list[str]]:
    """The shipped templates plus the city's own (``[cities.<id>.evidence] templates``).

    A question ID used by two templates is a problem: attestations are keyed by question ID.
    """
    paths = [(frameworks_dir() / "templates" / f"{name}.json", True) for name in SHIPPED_TEMPLATES]
    paths += [(Path(p), False) for p in getattr(getattr(city, "evidence", None), "templates", ())]
    out: list[Template] = []
    problems: list[str] = []
    owner: dict[str, str] = {}
    ids: set[str] = set()
    for path, shipped in paths:
        tpl, probs = load_template(path, known_checks, shipped=shipped)
        if tpl.id in ids:
            raise FrameworkError(f"{path}: template id \"{tpl.id}\" is already used by another template")
        ids.add(tpl.id)
        problems += probs
        kept = []
        for q in tpl.questions:
            if q.id in owner:
                problems.append(f"template {tpl.id}, question {q.id}: the id is already used by template "
                                f"{owner[q.id]}; this question was skipped")
                continue
            owner[q.id] = tpl.id
            kept.append(q)
        tpl.questions = kept
        out.append(tpl)
    return out, problems


# --- attestations -----------------------------------------------------------------------


@dataclass
class Attestation:
    question: str
    answer: str  # yes / partly / no
    by: str
    at: str  # YYYY-MM-DD: when the person says it was true
    note: str = ""
    recorded: str = ""  # UTC ISO time it was written down

    def age_days(self, as_of: dt.date) -> int:
        return (as_of - dt.date.fromisoformat(self.at)).days


def attestations_path(city: Any) -> Path:
    """``[cities.<id>.evidence] attestations``, else ``attestations.json`` beside the city's database."""
    configured = getattr(getattr(city, "evidence", None), "attestations", None)
    return Path(configured) if configured else Path(city.database).parent / "attestations.json"


def load_attestations(path: Path) -> tuple[list[Attestation], list[str]]:
    """Every attestation in the file (oldest first) and the problems found; no file = none yet."""
    if not Path(path).exists():
        return [], []
    doc = _read(path, "attestation")
    if not isinstance(doc, dict) or doc.get("format") != ATTESTATION_FORMAT or not isinstance(
            doc.get("attestations"), list):
        raise FrameworkError(f"{path}: not an attestation file (expected \"format\": \"{ATTESTATION_FORMAT}\")")
    out: list[Attestation] = []
    problems: list[str] = []
    for i, row in enumerate(doc["attestations"], 1):
        try:
            a = Attestation(**{k: str(row[k]) for k in ("question", "answer", "by", "at")},
                            note=str(row.get("note") or ""), recorded=str(row.get("recorded") or ""))
            dt.date.fromisoformat(a.at)
            if a.answer not in ANSWERS:
                raise ValueError(f"answer must be one of {', '.join(ANSWERS)}")
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{path}: attestation {i} is unusable ({exc}); it was ignored")
            continue
        out.append(a)
    return out, problems


def record_attestation(path: Path, attestation: Attestation) -> Path:
    """Append ``attestation`` to the file (created 0600 when missing), atomically."""
    existing: list[dict[str, Any]] = []
    if Path(path).exists():
        doc = _read(path, "attestation")
        if not isinstance(doc, dict) or doc.get("format") != ATTESTATION_FORMAT:
            raise FrameworkError(f"{path}: not an attestation file; not overwriting it")
        existing = list(doc.get("attestations") or [])
    existing.append(asdict(attestation))
    body = json.dumps({"format": ATTESTATION_FORMAT, "attestations": existing}, indent=1) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".attestations-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_attestations(attestations: list[Attestation], as_of: dt.date) -> dict[str, Attestation]:
    """Per question, the newest attestation dated on or before ``as_of`` (carried forward)."""
    out: dict[str, Attestation] = {}
    for a in sorted(attestations, key=lambda a: (a.at, a.recorded)):
        if dt.date.fromisoformat(a.at) <= as_of:
            out[a.question] = a
    return out
