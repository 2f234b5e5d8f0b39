"""The change reasons the services write into the case records' history, and how a page shows them.

The services store a reason as short English text (simple-history's `history_change_reason`, a varchar(100)), e.g.
"triage: yellow → red: 面谈确认" or "tier change approved: orange → red". This module is the ONE registry of every
such reason: an English pattern with named parts, and a translated template to show it in the reader's language
(tiers as their labels, decisions as 批准/驳回). A reason nobody registered is shown as stored.
tests/cases/test_reasons.py scans the code for the reasons it writes: a new reason must be registered here.

Parts: a name ending in "tier" is a tier code, "decision" a decision code; any other part is text kept as written
(a person's free text or a username). Registry order matters: the first pattern that matches wins.
May import: roster (StudentStatus), screening (RiskTier); imported by workflows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from django.utils.translation import gettext_lazy as _

from cases.models import Decision, SignalSource, SignalStatus
from roster.models import StudentStatus
from screening.definitions import RiskTier

HIDDEN_TIER = _("(not shown)")
HIDDEN_TEXT = _("(clinical text not shown)")


@dataclass(frozen=True)
class Reason:
    pattern: str  # as the services write it, parts as {name}
    display: object  # a gettext_lazy template, parts as %(name)s

    @cached_property
    def regex(self) -> re.Pattern:
        out, position = [], 0
        for part in re.finditer(r"\{(\w+)\}", self.pattern):
            out.append(re.escape(self.pattern[position : part.start()]))
            out.append(f"(?P<{part.group(1)}>{_part_regex(part.group(1))})")
            position = part.end()
        out.append(re.escape(self.pattern[position:]))
        return re.compile("".join(out), re.DOTALL)

    @property
    def parts(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.pattern)


def _part_regex(name: str) -> str:
    if name.endswith("tier"):
        return "|".join(RiskTier.values)
    if name == "decision":
        return "|".join(Decision.values)
    if name == "student_status":
        return "|".join(StudentStatus.values)
    if name in _CHOICES:
        return "|".join(_CHOICES[name].values)
    return ".+"


# Parts that are a code of these choices, shown as their label (issue 20's signals).
_CHOICES = {"source": SignalSource, "signal_status": SignalStatus}


def _decided(what: str, label) -> list[Reason]:
    """A decision on a pending request (cases.services._decide): "<what> <decision>[: <note>]"."""
    return [
        Reason(f"{what} {{decision}}: {{text}}", label[1]),
        Reason(f"{what} {{decision}}", label[0]),
    ]


REASONS: tuple[Reason, ...] = (
    # Opening (cases.services._open, cases_open_for_flags, _open_for_flag, case_refer).
    Reason("opened by a screening flag", _("Opened by a screening flag")),
    Reason("reopened by a screening flag", _("Reopened by a screening flag")),
    Reason("opened by a staff referral", _("Opened by a staff referral")),
    Reason("reopened by a staff referral", _("Reopened by a staff referral")),
    Reason(
        "screening flag raised the tier {old_tier} → {new_tier}",
        _("A screening flag raised the tier: %(old_tier)s → %(new_tier)s"),
    ),  # fmt: skip
    Reason("screening flag ({tier}) on an open case", _("A screening flag (%(tier)s) on the open case")),
    Reason("referred again by staff: {text}", _("Referred again by staff: %(text)s")),
    # Triage and staffing.
    Reason("triage: {old_tier} → {new_tier}: {text}", _("Triage: %(old_tier)s → %(new_tier)s: %(text)s")),
    Reason("staffing", _("Team staffed")),
    Reason("re-staffed for {tier}", _("Team re-staffed for the %(tier)s tier")),
    Reason("handover from {from_user} to {to_user}", _("Handed over from %(from_user)s to %(to_user)s")),
    # What the steps write.
    Reason("interview", _("Interview recorded")),
    Reason("parent contact", _("Parent contact recorded")),
    Reason("intervention plan", _("Intervention plan written")),
    Reason("referral requested", _("Referral requested")),
    Reason("referral made", _("Referral made")),
    Reason("referral feedback", _("Institution's feedback recorded")),
    Reason("follow-up", _("Follow-up recorded")),
    Reason("tier change requested", _("Tier change requested")),
    Reason("tier change approved: {old_tier} → {new_tier}", _("Tier change approved: %(old_tier)s → %(new_tier)s")),
    *_decided("referral", (_("Referral: %(decision)s"), _("Referral: %(decision)s: %(text)s"))),
    *_decided("tier change", (_("Tier change: %(decision)s"), _("Tier change: %(decision)s: %(text)s"))),
    *_decided("closure", (_("Closure: %(decision)s"), _("Closure: %(decision)s: %(text)s"))),
    # Closing and reopening.
    Reason("closure proposed", _("Closure proposed")),
    Reason("closure rejected", _("Closure rejected")),
    Reason("case closed", _("Case closed")),
    Reason("closed", _("Closed")),
    Reason("reopened: {text}", _("Reopened: %(text)s")),
    Reason("emergency access", _("Emergency access")),
    # A student who left the system (issue 19): the clocks stop, then the case is handed over, closed or resumed.
    Reason(
        "clocks stopped: the student left ({student_status})",
        _("Clocks stopped: the student left (%(student_status)s)"),
    ),  # fmt: skip
    Reason("clocks run again: the student is enrolled again", _("Clocks run again: the student is enrolled again")),
    Reason("clocks run again: the student moved school", _("Clocks run again: the student moved to another school")),
    Reason("handed over to {institution}: {text}", _("Handed over outside the system to %(institution)s: %(text)s")),
    Reason("handed over to {institution}", _("Handed over outside the system to %(institution)s")),
    Reason("crisis alert window moved by the pause", _("Crisis alert's window moved by the time the clocks stopped")),
    # Tier governance (issue 16): raising at once, lowering only with an approval.
    Reason(
        "raised by staff concern: {old_tier} → {new_tier}: {text}",
        _("A staff concern raised the tier: %(old_tier)s → %(new_tier)s: %(text)s"),
    ),  # fmt: skip
    Reason("tier raised {old_tier} → {new_tier}: {text}", _("Tier raised: %(old_tier)s → %(new_tier)s: %(text)s")),
    Reason(
        "triage asks to lower the tier {old_tier} → {new_tier}: {text}",
        _("Triage asks to lower the tier: %(old_tier)s → %(new_tier)s: %(text)s"),
    ),  # fmt: skip
    # Closure evaluated level by level, up to the city.
    Reason("closure evaluated at level {level}: {decision}", _("Closure evaluated at level %(level)s: %(decision)s")),
    Reason(
        "closure approved at one level, next level to evaluate",
        _("Closure approved at this level; the next level evaluates it"),
    ),  # fmt: skip
    # District support and the coordination log.
    Reason("district support requested", _("District support requested")),
    Reason("district support accepted", _("District support accepted")),
    Reason("coordination recorded", _("Coordination recorded")),
    # The brief safety assessment of a non-acute critical answer.
    Reason("brief safety assessment", _("Brief safety assessment recorded")),
    Reason(
        "safety assessment: not safe: {old_tier} → {new_tier}",
        _("Safety assessment found the student not safe: %(old_tier)s → %(new_tier)s"),
    ),  # fmt: skip
    # 档案移交 (cases.transfers): the case follows its student to another school.
    Reason("transfer requested: {from_school} → {to_school}", _("Transfer requested: %(from_school)s → %(to_school)s")),
    Reason("transfer cancelled: the student moved again", _("Transfer cancelled: the student moved again")),
    Reason("transfer accepted: {from_school} → {to_school}", _("Transfer accepted: %(from_school)s → %(to_school)s")),
    Reason("transferred: {from_school} → {to_school}", _("Left the team: transferred %(from_school)s → %(to_school)s")),
    Reason("re-staffed at the receiving school", _("Team re-staffed at the receiving school")),
    Reason("crisis alert moved to the receiving school", _("Crisis alert moved to the receiving school")),
    Reason("restricted notes release requested: {text}", _("Release of the restricted notes requested: %(text)s")),
    Reason("restricted notes released: {text}", _("Restricted notes released: %(text)s")),
    Reason("restricted note released: {text}", _("Restricted note released: %(text)s")),
    # Crisis alerts (cases.alerts).
    Reason("crisis alert raised", _("Crisis alert raised")),
    Reason("crisis alert level {level}", _("Crisis alert escalated to level %(level)s")),
    Reason("crisis alert taken", _("Crisis alert taken")),
    Reason("crisis alert linked to its case", _("Crisis alert linked to its case")),
    # Signals and their triage (issue 20: cases.signal_queue, workflows.signals).
    Reason("raised: {source}", _("Signal raised: %(source)s")),
    Reason("triaged: {signal_status}: {text}", _("Triaged: %(signal_status)s: %(text)s")),
    Reason("triaged: {signal_status}", _("Triaged: %(signal_status)s")),
    Reason("triage overdue: reminder {level}", _("Triage overdue: reminder %(level)s sent")),
    Reason("signal added to the case: {text}", _("A signal was added to the case: %(text)s")),
    Reason("signal added to the case", _("A signal was added to the case")),
    # Mentors' talks and home visits (issue 20, cases.care_records).
    Reason("mentor talk recorded", _("Mentor talk recorded")),
    Reason("home visit recorded", _("Home visit recorded")),
    Reason("concern raised", _("Concern raised")),
    # Help records, 一人一案 (issue 20, cases.help_records).
    Reason("help record written", _("Help record written")),
    Reason("help record changed: {text}", _("Help record changed: %(text)s")),
    Reason("help record resumed: {text}", _("Help record resumed: %(text)s")),
    Reason("help record ended: {text}", _("Help record ended: %(text)s")),
    # Leave, 休学 (issue 20, roster.leaves): on the leave's and the student's history.
    Reason("leave recorded", _("Leave recorded")),
    Reason("returned from leave", _("Returned from leave")),
)


def match(stored: str) -> tuple[Reason, dict[str, str]] | None:
    """The registered reason a stored text is, with its parts; None for text nobody registered."""
    for reason in REASONS:
        found = reason.regex.fullmatch(stored)
        if found:
            return reason, found.groupdict()
    return None


def _part_display(name: str, value: str, tiers: bool, clinical: bool) -> str:
    if name.endswith("tier"):
        return str(RiskTier(value).label) if tiers else str(HIDDEN_TIER)
    if name == "decision":
        return str(Decision(value).label)
    if name == "student_status":
        return str(StudentStatus(value).label)
    if name in _CHOICES:
        return str(_CHOICES[name](value).label)
    if name == "text" and not clinical:
        return str(HIDDEN_TEXT)
    return value


def reason_display(stored: str, *, tiers: bool = True, clinical: bool | None = None) -> str:
    """A stored change reason in the active language; unknown text as it is. `tiers=False` leaves the tiers out
    (for a reader who never sees one: a homeroom teacher). `clinical=False` (by default as `tiers`) leaves out a
    person's free text too (a triage reason can say "disclosed a suicide plan"): clinical words reach only readers of
    results (cases.access.reads_clinical), and a reason nobody registered, which may be such text, is not shown."""
    if not stored:
        return ""
    clinical = tiers if clinical is None else clinical
    found = match(stored)
    if found is None:
        return stored if clinical else ""
    reason, parts = found
    return str(reason.display) % {name: _part_display(name, value, tiers, clinical) for name, value in parts.items()}
