"""The demo district's cases: every flagged demo result has its case, and at the showcase school a handful of cases
are worked through the case process by the demo logins, so that each login's task lists have something to do.

Runs after roster's seed_demo and screening's seed_screening_demo. Idempotent: a second run changes nothing. DEBUG
only (see the command). Every step goes through workflows.services as the person whose step it is (the psychology
teacher, the class's homeroom teacher, a principal not on the team, the district centre), so the rules of the domain
hold. Only one clock is moved: one red case is dated back to show an overdue first interview (its reminders sent by
the every-minute tick). Students, staff and every text are synthetic.
"""

from __future__ import annotations

import datetime
import logging
import random
from collections import Counter
from collections.abc import Callable

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases.models import Case, CaseSource, CaseStatus, FollowUpOutcome, TeamSeat
from cases.tiers import tier_rule
from roster.demo import CITY_CODE
from roster.models import RoleAssignment, Student, User
from roster.roles import Role
from screening.definitions import RiskTier
from screening.models import ScreeningResult
from workflows import selectors, services
from workflows.flows import CaseFlow
from workflows.models import CaseProcess, TaskClock

logger = logging.getLogger(__name__)

# The demo logins that work cases (roster.demo): usernames → the role they must hold.
LOGINS = {
    "counselor": Role.PSYCHOLOGY_TEACHER,
    "homeroom": Role.HOMEROOM_TEACHER,
    "principal": Role.PRINCIPAL,
    "district_centre": Role.DISTRICT_CENTRE,
}
ENDED = (STATUS.DONE, STATUS.CANCELED)
TIER_NAMES = {"green": "绿色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
INSTITUTION = "示范市精神卫生中心儿童青少年心理门诊"  # the demo city is fictional, so is its hospital


class _Cast:
    """The showcase school and its demo logins, or `missing` naming what the database lacks."""

    def __init__(self):
        users = {u.username: u for u in User.objects.filter(username__in=LOGINS, is_active=True)}
        self.missing = [name for name in LOGINS if name not in users]
        if self.missing:
            return
        self.counselor, self.homeroom = users["counselor"], users["homeroom"]
        self.principal, self.centre = users["principal"], users["district_centre"]
        grants = RoleAssignment.objects.select_related("school__district", "school_class__school")
        psychology = grants.filter(user=self.counselor, role=Role.PSYCHOLOGY_TEACHER, school__isnull=False).first()
        homeroom = grants.filter(user=self.homeroom, role=Role.HOMEROOM_TEACHER).first()
        self.school = psychology.school if psychology else None
        self.homeroom_class = homeroom.school_class if homeroom else None
        checks = {
            "counselor": self.school is not None,
            "homeroom": self.homeroom_class is not None and self.homeroom_class.school == self.school,
            "principal": grants.filter(user=self.principal, role=Role.PRINCIPAL, school=self.school).exists(),
            "district_centre": self.school is not None
            and grants.filter(user=self.centre, role=Role.DISTRICT_CENTRE, district=self.school.district_id).exists(),
        }
        self.missing = [name for name, ok in checks.items() if not ok]
        # Classes whose homeroom teacher is the counselor (a demo person with two roles): their students' cases
        # would seat her twice, which is allowed but reads badly in a demo.
        self.own_classes = set(
            grants.filter(user=self.counselor, role=Role.HOMEROOM_TEACHER).values_list("school_class_id", flat=True)
        )


# --- Opening the cases ----------------------------------------------------------------------------------------------


def _deliver_queued_flags() -> int:
    """Deliver now the flags a large import left queued for the task worker (`make demo` starts the worker last).

    So every demo case exists, opened the way an import opens them, before some are worked below; the worker finds
    nothing left to do. (A flag delivered again after that changes nothing: case_open_for_flag knows a result it
    has applied.) Only the ORM broker's queue can be read; each queued delivery is taken off it (if no worker took
    it meanwhile) and run here, in one transaction: what the worker would have done.
    """
    from django_q.conf import Conf
    from django_q.models import OrmQ

    from screening.tasks import results_flagged_send

    if not Conf.ORM:
        return 0
    delivered = 0
    for queued in OrmQ.objects.filter(key=Conf.PREFIX, lock__lte=timezone.now()).order_by("pk"):
        if queued.task.get("func") != "screening.tasks.results_flagged_send":
            continue
        with transaction.atomic():
            if not OrmQ.objects.filter(pk=queued.pk, lock=queued.lock).delete()[0]:
                continue  # a worker took it meanwhile
            delivered += results_flagged_send(*queued.task.get("args", ()), **(queued.task.get("kwargs") or {}))
    return delivered


def _open_missing_cases() -> int:
    """The case of each flagged demo result whose student has none yet (one by one, as the worker would)."""
    flagged = (
        ScreeningResult.objects.filter(student__school__district__city__division_code=CITY_CODE)
        .exclude(tier=RiskTier.GREEN)
        .exclude(Exists(Case.objects.filter(student_id=OuterRef("student_id"))))
        .order_by("student_id", "-pk")
        .values_list("pk", "student_id")
    )
    opened, seen = 0, set()
    for result_id, student_id in flagged:
        if student_id in seen:  # the student's latest result opens the case
            continue
        seen.add(student_id)
        opened += services.case_open_for_result(result_id) == "opened"
    return opened


def _settle_alerts(cast: _Cast) -> dict[str, int]:
    """The demo's crisis alerts: each red or critical demo result raises its alert, as the worker would; each is then
    taken by a psychology teacher of its school ("during the screening"), except the newest alert at the showcase
    school, left open for the demo counselor's home page and banner (it climbs the chain if nobody takes it). Runs
    once: a demo that has alerts is left as it is."""
    from cases import alerts
    from cases.models import AlertStatus, CrisisAlert

    in_city = CrisisAlert.objects.filter(school__district__city__division_code=CITY_CODE)
    if in_city.filter(screening_result__isnull=False).exists():  # (a staff referral's alert is no screening's)
        return {"raised": 0, "open": in_city.filter(status=AlertStatus.OPEN).count()}
    results = ScreeningResult.objects.filter(
        student__school__district__city__division_code=CITY_CODE, tier__in=(RiskTier.ORANGE, RiskTier.RED)
    ).exclude(student__school_class_id__in=cast.own_classes)
    raised = services.crisis_alerts_raise_for_results(list(results.order_by("pk").values_list("pk", flat=True)))
    keep = in_city.filter(school=cast.school).order_by("-raised_at", "-pk").first()
    takers = {}
    for alert in in_city.filter(status=AlertStatus.OPEN).exclude(pk=getattr(keep, "pk", None)):
        if alert.school_id not in takers:
            grant = RoleAssignment.objects.filter(role=Role.PSYCHOLOGY_TEACHER, school_id=alert.school_id).first()
            takers[alert.school_id] = grant.user if grant else None
        if takers[alert.school_id] is not None:
            alerts.crisis_alert_acknowledge(takers[alert.school_id], alert)
    return {"raised": raised, "open": in_city.filter(status=AlertStatus.OPEN).count()}


# --- Working a case -----------------------------------------------------------------------------------------------


class _Walk:
    """One case taken through its steps with workflows.services, each step done by the person whose step it is."""

    def __init__(self, cast: _Cast, case: Case):
        self.cast, self.case = cast, case
        self.process = services.main_processes(case).exclude(status__in=ENDED).get()  # not a side process

    def task(self, node) -> Task:
        return self.process.task_set.exclude(status__in=ENDED).get(flow_task=node)

    def take(self, user, node) -> Task:
        task = self.task(node)
        services.task_claim(user, task)
        return task

    def seat(self, seat: str) -> User:
        return self.case.team.get(seat=seat, left_at__isnull=True).user

    def triage(self, tier: str, finding: str) -> None:
        screened = self.case.tier
        if tier == screened:
            reason = f"分诊面谈确认筛查结果（{TIER_NAMES[tier]}）：{finding}"
        else:
            reason = f"分诊面谈后由{TIER_NAMES[screened]}调整为{TIER_NAMES[tier]}：{finding}"
        counselor = self.cast.counselor
        services.triage_done(counselor, self.take(counselor, CaseFlow.triage), tier=tier, reason=reason)
        self.case.refresh_from_db()

    def staff(self) -> None:
        counselor, team = self.cast.counselor, case_services.team_proposal(self.case)
        services.staffing_done(counselor, self.take(counselor, CaseFlow.staffing), team)

    def interview(self, note: str) -> None:
        services.interview_done(self.cast.counselor, self.task(CaseFlow.interview), note=note)

    def parent_contact(self, guardian: str, channel: str, outcome: str, consent: str = "given") -> None:
        homeroom = self.seat(TeamSeat.HOMEROOM_TEACHER)
        services.parent_contact_done(homeroom, self.task(CaseFlow.parent_contact), guardian=guardian,
                                     channel=channel, outcome=outcome, consent=consent)  # fmt: skip

    def plan(self, goals: str, measures: list[tuple[str, str]], needs_referral: bool = False) -> None:
        review_on = timezone.localdate() + 2 * tier_rule(self.case.tier).follow_up_every
        services.plan_done(
            self.cast.counselor, self.task(CaseFlow.plan), goals=goals, review_on=review_on,
            needs_referral=needs_referral, measures=[(text, self.seat(seat)) for text, seat in measures],
        )  # fmt: skip

    def request_referral(self, reason: str) -> None:
        services.referral_requested(self.cast.counselor, self.task(CaseFlow.request_referral),
                                    institution=INSTITUTION, reason=reason, parental_consent="given")  # fmt: skip

    def time_passes(self) -> None:
        """The next follow-up is open from the plan on, due the tier's interval later (workflows.deadlines)."""
        self.task(CaseFlow.follow_up)  # open, or say so now

    def follow_up(self, note: str, outcome: str, **fields) -> None:
        services.follow_up_done(self.cast.counselor, self.task(CaseFlow.follow_up), note=note, outcome=outcome,
                                **fields)  # fmt: skip

    def decide(self, user, node, decide: Callable, **fields) -> None:
        """An approval: taken from the queue and decided by someone not on the case's team."""
        decide(user, self.take(user, node), **fields)


# The measures of a plan: (what, which seat answers for it).
YELLOW_MEASURES = [
    ("每周一次个别心理辅导，跟进情绪与睡眠", TeamSeat.PSYCHOLOGY_TEACHER),
    ("课堂上留意情绪变化，每周与心理老师沟通一次", TeamSeat.HOMEROOM_TEACHER),
]
ORANGE_MEASURES = [
    ("每周两次个别辅导，制定并演练安全计划", TeamSeat.PSYCHOLOGY_TEACHER),
    ("每日关注出勤与情绪，发现异常立即报告", TeamSeat.HOMEROOM_TEACHER),
    ("协调学校资源，每两周听取一次个案进展", TeamSeat.SCHOOL_LEADER),
]


def _to_plan(walk: _Walk, tier: str) -> None:
    if tier == RiskTier.YELLOW:
        walk.triage(tier, "学生自述近期学业压力大、入睡困难，无自伤想法")
        walk.staff()
        walk.interview("近一个月作业量增加后出现焦虑，晚上难以入睡，与同学关系尚可，愿意接受辅导。")
    else:
        walk.triage(tier, "学生承认近期情绪持续低落，偶有消极念头，未有具体计划")
        walk.staff()
        walk.parent_contact("母亲", "phone", "家长表示近期在家少言寡语，同意配合学校工作并加强陪伴。")
        walk.interview("情绪低落约两个月，父母关系紧张，偶有“不想活了”的念头，无具体计划，愿意签订安全约定。")


def _to_follow_up(walk: _Walk, tier: str) -> None:
    _to_plan(walk, tier)
    if tier == RiskTier.YELLOW:
        walk.plan("改善睡眠，学会两种缓解考试焦虑的方法", YELLOW_MEASURES)
    else:
        walk.plan("确保安全，缓解抑郁情绪，修复亲子沟通", ORANGE_MEASURES)
    walk.time_passes()


def _staffing(walk: _Walk) -> None:
    walk.triage(RiskTier.YELLOW, "学生自述与好友闹矛盾后心情低落，睡眠尚可")
    walk.take(walk.cast.counselor, CaseFlow.staffing)  # she will seat the team next


def _interview(walk: _Walk) -> None:
    walk.triage(RiskTier.YELLOW, "家庭搬迁后适应困难，情绪波动较大")
    walk.staff()


def _overdue(walk: _Walk) -> None:
    # The flag came in 30 hours ago: the 24-hour first interview of a red case is overdue; the tick reminds the
    # counselor, then tells the principal and the district centre (workflows.deadlines).
    then = timezone.now() - datetime.timedelta(hours=30)
    Case.objects.filter(pk=walk.case.pk).update(opened_at=then)
    walk.case.refresh_from_db()
    walk.triage(RiskTier.RED, "筛查自伤条目阳性，学生承认近期有过自伤想法")
    walk.staff()
    walk.parent_contact("父亲", "in_person", "家长到校面谈，知晓情况，同意24小时陪护并配合后续安排。")
    due = then + tier_rule(RiskTier.RED).first_interview_within.as_timedelta()
    TaskClock.objects.filter(task=walk.task(CaseFlow.interview)).update(due_at=due, next_reminder_at=due)
    services.workflow_tick()


def _plan(walk: _Walk) -> None:
    _to_plan(walk, RiskTier.YELLOW)


def _referral_pending(walk: _Walk) -> None:
    _to_plan(walk, RiskTier.YELLOW)
    walk.plan("明确睡眠障碍原因，必要时就医", YELLOW_MEASURES, needs_referral=True)
    walk.request_referral("持续失眠两个月伴食欲下降，校内辅导后未见改善，建议专业评估。家长已电话同意转介。")


def _referral_to_request(walk: _Walk) -> None:
    _to_plan(walk, RiskTier.ORANGE)
    walk.plan("确保安全，评估是否存在抑郁障碍", ORANGE_MEASURES, needs_referral=True)


def _referral_to_make(walk: _Walk) -> None:
    _referral_pending(walk)
    walk.decide(walk.cast.principal, CaseFlow.approve_referral, services.referral_decided, approve=True,
                note="同意转介，请尽快预约并告知家长就诊安排。")  # fmt: skip


def _follow_up(walk: _Walk) -> None:
    _to_follow_up(walk, RiskTier.YELLOW)


def _following(walk: _Walk) -> None:
    _to_follow_up(walk, RiskTier.YELLOW)
    walk.follow_up("睡眠有所改善，能按计划使用放松练习，继续观察一个周期。", FollowUpOutcome.CONTINUE,
                   reassessment_score=8)  # fmt: skip


def _tier_change(walk: _Walk) -> None:
    # A raise takes effect at once; lowering an orange tier waits for a principal who is not on the team.
    _to_follow_up(walk, RiskTier.ORANGE)
    walk.follow_up("连续三周情绪平稳，未再出现消极念头，能主动求助。", FollowUpOutcome.DE_ESCALATE,
                   to_tier=RiskTier.YELLOW, reason="情况稳定，建议降为黄色，继续二包一跟进。")  # fmt: skip


def _false_positive(walk: _Walk) -> None:
    walk.triage(RiskTier.GREEN, "答题时误解题意，面谈未见情绪或行为异常")


def _closure_to_centre(walk: _Walk) -> None:
    _to_follow_up(walk, RiskTier.ORANGE)
    walk.follow_up("连续四周情绪稳定，无消极念头，亲子关系改善，复评分数明显下降。", FollowUpOutcome.PROPOSE_CLOSURE,
                   reassessment_score=5, reason="干预目标已达成，建议结案并转为常规关注。")  # fmt: skip


def _closed_yellow(walk: _Walk) -> None:
    _to_follow_up(walk, RiskTier.YELLOW)
    walk.follow_up("睡眠恢复正常，考试焦虑明显缓解，本人与家长均认为不再需要辅导。", FollowUpOutcome.PROPOSE_CLOSURE,
                   reassessment_score=3, reason="辅导目标已达成。")  # fmt: skip
    walk.decide(walk.cast.principal, CaseFlow.approve_closure, services.closure_decided, approve=True,
                evaluation="同意结案，班主任继续日常关注。")  # fmt: skip


def _closed_false_positive(walk: _Walk) -> None:
    _false_positive(walk)
    walk.decide(walk.cast.principal, CaseFlow.approve_false_positive, services.closure_decided, approve=True,
                evaluation="核实为误报，同意结案。")  # fmt: skip


def _closed_orange(walk: _Walk) -> None:
    _closure_to_centre(walk)
    walk.decide(walk.cast.centre, CaseFlow.approve_closure, services.closure_decided, approve=True,
                evaluation="经区心理中心评估，同意结案，学校半年内定期回访。")  # fmt: skip


# (what the case shows, the tier it is worked at, how). In this order, so that a small school keeps the first ones.
SCENARIOS = [
    ("false positive waiting for the principal", RiskTier.YELLOW, _false_positive),
    ("referral waiting for the principal", RiskTier.YELLOW, _referral_pending),
    ("tier change waiting for the principal", RiskTier.ORANGE, _tier_change),
    ("closure waiting for the district centre", RiskTier.ORANGE, _closure_to_centre),
    ("first interview overdue", RiskTier.RED, _overdue),
    ("interview to do", RiskTier.YELLOW, _interview),
    ("plan to write", RiskTier.YELLOW, _plan),
    ("follow-up due", RiskTier.YELLOW, _follow_up),
    ("staffing to do", RiskTier.YELLOW, _staffing),
    ("referral to request", RiskTier.ORANGE, _referral_to_request),
    ("referral to make", RiskTier.YELLOW, _referral_to_make),
    ("waiting for the next follow-up", RiskTier.YELLOW, _following),
    ("closed (yellow)", RiskTier.YELLOW, _closed_yellow),
    ("closed (false positive)", RiskTier.YELLOW, _closed_false_positive),
    ("closed (orange)", RiskTier.ORANGE, _closed_orange),
]

# Where a scenario takes its case when no case of its tier is left: the nearest tier first.
FALLBACK = {
    RiskTier.YELLOW: (RiskTier.YELLOW, RiskTier.ORANGE, RiskTier.RED),
    RiskTier.ORANGE: (RiskTier.ORANGE, RiskTier.RED, RiskTier.YELLOW),
    RiskTier.RED: (RiskTier.RED, RiskTier.ORANGE, RiskTier.YELLOW),
}

# Referred by the demo homeroom teacher: her class answers the screening live, so it has no results yet.
REFERRALS = [
    (RiskTier.ORANGE, "近两周上课常走神、独自流泪，周记中写到“觉得活着没意思”，已与学生简单交谈。", False),
    (RiskTier.RED, "同学反映其手臂上有新的划痕，本人承认最近用小刀划伤自己，情绪很不稳定。", True),
]


def _referred(cast: _Cast, rng: random.Random) -> list[str]:
    """The homeroom teacher refers two of her students; each case is triaged and staffed, so the parent contact
    is hers (and the first interview the counselor's; done already for the second)."""
    students = list(
        Student.objects.filter(school_class=cast.homeroom_class, status="active")
        .exclude(cases__status__in=(CaseStatus.OPEN, CaseStatus.CLOSING))
        .order_by("pk")
    )
    rng.shuffle(students)
    worked = []
    for (tier, reason, interviewed), student in zip(REFERRALS, students, strict=False):
        case = services.case_refer_and_start(cast.homeroom, student, reason, tier)
        walk = _Walk(cast, case)
        walk.triage(tier, "与学生面谈，情况属实，需要尽快与家长沟通")
        walk.staff()
        if interviewed:
            walk.interview("学生承认近一周多次划伤手臂，起因与父母争吵有关，已签订安全约定，需家长配合看护。")
        worked.append(f"referred by the homeroom teacher ({tier})")
    return worked


def _worked(cast: _Cast) -> bool:
    """Whether a case of the showcase school has gone past triage: worked by this seed or by someone in the demo."""
    processes = CaseProcess.objects.filter(case__school=cast.school).values("pk")
    return Task.objects.filter(process__in=processes).exclude(flow_task__in=(CaseFlow.start, CaseFlow.triage)).exists()


def _work_cases(cast: _Cast, seed: int) -> tuple[list[str], list[str]]:
    """Work the showcase school's cases (all or nothing). Returns what was done and what had no case to use."""
    rng = random.Random(seed)  # noqa: S311 (which demo cases are worked, not security)
    waiting = (
        Case.objects.filter(school=cast.school, source=CaseSource.SCREENING, status=CaseStatus.OPEN, triaged=False)
        .exclude(student__school_class_id__in=cast.own_classes)
        .order_by("pk")
    )
    pools = {tier: [c for c in waiting if c.tier == tier] for tier in (RiskTier.YELLOW, RiskTier.ORANGE, RiskTier.RED)}
    for pool in pools.values():
        rng.shuffle(pool)
    done, skipped = [], []
    with transaction.atomic():
        for label, tier, work in SCENARIOS:
            # The tier asked for, else another flagged case whose triage changes its tier.
            pool = next((pools[t] for t in FALLBACK[tier] if pools[t]), None)
            if pool is None:
                skipped.append(label)
                continue
            case = pool.pop()
            work(_Walk(cast, case))
            done.append(label)
        done += _referred(cast, rng)
    return done, skipped


# --- What each step and login holds -------------------------------------------------------------------------------


# The steps a case waits at (its people's tasks), in the order of the flow.
STEPS = [
    CaseFlow.triage, CaseFlow.approve_false_positive, CaseFlow.staffing, CaseFlow.interview, CaseFlow.parent_contact,
    CaseFlow.plan, CaseFlow.request_referral, CaseFlow.approve_referral, CaseFlow.make_referral,
    CaseFlow.follow_up, CaseFlow.approve_tier_change, CaseFlow.approve_closure,
]  # fmt: skip


def _steps() -> dict[str, int]:
    """Open tasks per step over the demo city's cases, overdue first interviews and parent contacts, closed cases."""
    processes = CaseProcess.objects.filter(case__school__district__city__division_code=CITY_CODE).values("pk")
    tasks = Task.objects.filter(process__in=processes, flow_task__in=STEPS).exclude(status__in=ENDED)
    counts = Counter(tasks.values_list("flow_task", flat=True))
    steps = {node.name: counts[node] for node in STEPS}
    now = timezone.now()
    steps["overdue"] = tasks.filter(
        flow_task__in=(CaseFlow.interview, CaseFlow.parent_contact), clock__due_at__lt=now
    ).count()
    cases = Case.objects.filter(school__district__city__division_code=CITY_CODE)
    steps["closed"] = cases.filter(status=CaseStatus.CLOSED).count()
    return steps


def _lists(user) -> dict[str, dict[str, int]]:
    return {
        "inbox": dict(Counter(t.flow_task.name for t in selectors.inbox(user))),
        "queue": dict(Counter(t.flow_task.name for t in selectors.queue(user))),
    }


MOVE_EXAMPLE = "school-move-example.csv"


def write_move_example(folder) -> dict | None:
    """A one-row class list of the showcase district's second school (东湖实验小学) that lists a student who has an
    open orange case at the showcase school, with their national student number: importing it as that school's admin
    stages a school move, the walk-through of issue 19 (confirm the move, accept the case). Written afresh each run;
    None when no such student is left (every demo orange case moved or closed)."""
    import csv
    from pathlib import Path

    from roster.demo import demo_national_id
    from roster.models import School

    cast = _Cast()
    if cast.missing:
        return None
    receiving = School.objects.filter(district=cast.school.district, stage=cast.school.stage).exclude(pk=cast.school.pk)
    receiving = receiving.order_by("code").first()
    case = (
        Case.objects.filter(
            school=cast.school, tier=RiskTier.ORANGE, status=CaseStatus.OPEN, student__school=cast.school
        )
        .exclude(student__school_class__role_assignments__user=cast.counselor)
        .select_related("student__school_class", "student__school")
        .order_by("pk")
        .first()
    )
    if receiving is None or case is None:
        return None
    student = case.student
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MOVE_EXAMPLE
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["学校代码", "年级", "班级", "学号", "姓名", "性别", "出生日期", "全国学籍号"])
        writer.writerow([
            receiving.code, student.school_class.grade, 1, f"Z{student.student_no}", student.name,
            student.get_gender_display(), student.birth_date.isoformat() if student.birth_date else "",
            demo_national_id(student.school.code, student.student_no),
        ])  # fmt: skip
    admin = RoleAssignment.objects.filter(role=Role.SCHOOL_ADMIN, school=receiving).select_related("user").first()
    psychology = RoleAssignment.objects.filter(role=Role.PSYCHOLOGY_TEACHER, school=receiving).select_related("user")
    return {
        "path": str(path),
        "case": case.pk,
        "from_school": str(cast.school),
        "to_school": str(receiving),
        "school_admin": admin.user.username if admin else "",
        "psychology_teacher": psychology.first().user.username if psychology.exists() else "",
    }


def build_case_demo(*, seed: int = 2026) -> dict:
    """Open the demo's flagged cases and work some at the showcase school. Idempotent: a second call changes
    nothing (`changed` False). Returns what was done, open tasks per step and each demo login's lists."""
    delivered = _deliver_queued_flags()
    opened = _open_missing_cases()
    cast = _Cast()
    done, skipped, note = [], [], ""
    if cast.missing:
        note = f"demo logins missing or not where roster.demo puts them: {', '.join(cast.missing)}"
    elif _worked(cast):
        note = f"cases at {cast.school} already worked; nothing changed"
    else:
        done, skipped = _work_cases(cast, seed)
    crisis = _settle_alerts(cast) if not cast.missing else {"raised": 0, "open": 0}
    logger.info("case demo: %s flags delivered, %s cases opened, %s worked, %s crisis alerts raised", delivered,
                opened, len(done), crisis["raised"])  # fmt: skip
    logins = {}
    if not cast.missing:
        logins = {name: _lists(getattr(cast, attr)) for name, attr in (
            ("counselor", "counselor"), ("homeroom", "homeroom"), ("principal", "principal"),
            ("district_centre", "centre"))}  # fmt: skip
    return {
        "changed": bool(delivered or opened or done or crisis["raised"]),
        "school": str(cast.school) if not cast.missing else "",
        "flags_delivered": delivered,
        "cases_opened": opened,
        "crisis_alerts": crisis,
        "worked": done,
        "skipped": skipped,
        "note": note,
        "steps": _steps(),
        "logins": logins,
    }
