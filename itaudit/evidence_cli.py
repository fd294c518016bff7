"""``itaudit attest``: record what only a person can answer (MFA, backups tested, incident
plan, training...) for the evidence report. Registered on the main group by
``itaudit.cli._register_optional``.

An attestation is appended to the city's attestation file (``itaudit.frameworks``); the
next evidence report carries the newest one forward and shows its age.
"""

from __future__ import annotations

import datetime as dt

import click

from itaudit import frameworks as fw
from itaudit.config import load


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command("attest")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              envvar="ITAUDIT_CONFIG", help="Config file (TOML). Env: ITAUDIT_CONFIG.")
@click.option("--city", "city_id", default=None, help="City id (required when several are configured).")
@click.argument("question_id", required=False)
@click.option("--by", "by", help="Who answers (name and role).")
@click.option("--answer", type=click.Choice(fw.ANSWERS), help="The answer.")
@click.option("--note", default="", help="What backs the answer (document, test date, ticket).")
@click.option("--date", "at", callback=_day, default=None, metavar="YYYY-MM-DD",
              help="When it was true (default: today).")
@click.option("--list", "list_questions", is_flag=True, help="List the questions a person can attest to.")
def attest_cmd(config_path: str, city_id: str | None, question_id: str | None, by: str | None,
               answer: str | None, note: str, at: dt.date | None, list_questions: bool) -> None:
    """Record a person's answer to an evidence question (MFA, backups tested, incident plan...),
    e.g. ``itaudit attest -c itaudit.toml INS-MFA-REMOTE --by "J. Doe" --answer yes --note "MFA policy"``."""
    from itaudit import plugins

    city = load(config_path).city(city_id)
    templates, _ = fw.templates_for(city, set(plugins.load_checks()))
    questions = {q.id: (t, q) for t in templates for q in t.questions}
    if list_questions:
        for qid, (t, q) in questions.items():
            click.echo(f"{qid}\t{t.id}\t{'person' if q.answered_by == 'person' else 'data (attest to add context)'}"
                       f"\t{q.text}")
        return
    if not question_id:
        raise click.UsageError("name the question to attest to (see --list)")
    if question_id not in questions:
        import difflib

        close = difflib.get_close_matches(question_id, list(questions), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see itaudit attest --list"
        raise click.BadParameter(f"no evidence question {question_id!r}{hint}", param_hint="QUESTION_ID")
    if not by or not by.strip():
        raise click.UsageError("--by is required: who gives this answer")
    if answer is None:
        raise click.UsageError(f"--answer is required ({', '.join(fw.ANSWERS)})")
    day = at or dt.date.today()
    if day > dt.date.today():
        raise click.BadParameter("an attestation cannot be dated in the future", param_hint="--date")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    path = fw.record_attestation(fw.attestations_path(city), fw.Attestation(
        question=question_id, answer=answer, by=by.strip(), at=day.isoformat(), note=note.strip(), recorded=now))
    _, q = questions[question_id]
    click.echo(f"recorded: {question_id} = {answer} by {by.strip()} on {day} ({path})")
    if q.answered_by == "data":
        click.echo("note: itaudit answers this question from its own scans; your answer is shown beside it.")
