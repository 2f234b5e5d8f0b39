"""Emergency access ("break the glass"): a psychology teacher at A2 must act on a crisis for a student whose case is
at A1. With the student's exact number and a reason, they read the case for a day (read only); the district centre
and A1's principal are told; the grant and every reading are in the access log and the auditor's review; then the
case is out of reach again. Every refusal is a message and writes no grant."""

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import gettext, override
from viewflow.workflow.status import STATUS

from cases import services as case_services
from cases.models import EmergencyAccess, InterviewNote
from roster import scoping
from roster.masking import mask_name
from roster.models import AccessLogEntry, Notification, User
from roster.roles import Role
from tests.factories.cases import active, case_url, page
from tests.factories.cases import task_url as url
from tests.factories.roster import StudentFactory, staff_with_role
from workflows.flows import CaseFlow

PAGE = "/work/case/emergency-access/"
CASES = "/work/case/flows/"
REASON = "学生在我校心理课上表达自伤念头，需立即查看原学校的个案记录"


def zh(msgid: str, **params) -> str:
    """A message as the (Chinese by default) page shows it, whether or not it is translated yet."""
    with override("zh-hans"):
        text = gettext(msgid)
    return text % params if params else text


NO_CASE = (
    "No case was found for this student number at the school chosen. Check the school and the number and try again."
)
LIMIT = (
    "You have asked for emergency access %(count)s times in 24 hours, the most allowed. Ask the district centre to "
    "open the case for you."
)
WRONG_ROLE = "Emergency access is for psychology teachers, principals and the district and city centres."
PG_ONLY = pytest.mark.postgres_only


@pytest.fixture
def case_a1(world, open_case):
    return open_case(world.student_a1_3, "red")


def break_glass(client, user, school, student_no, reason=REASON, capture=None):
    client.force_login(user)
    data = {"school": school.pk, "student_no": student_no, "reason": reason}
    if capture is None:
        return client.post(PAGE, data)
    with capture(execute=True):
        return client.post(PAGE, data)


def log(**fields):
    return AccessLogEntry.objects.filter(**fields)


def test_a_psychology_teacher_of_a_sibling_school_breaks_the_glass_reads_the_case_and_loses_it_after_a_day(
    client, world, case_a1, django_capture_on_commit_callbacks
):
    case, process = case_a1
    client.force_login(world.counselor_a2)
    assert client.get(case_url(process)).status_code == 404

    # The student has just transferred in: A2's roster has them under the same national number, without a case.
    StudentFactory(school_class=world.class_a2, student_no=world.student_a1_3.student_no, name="王小明")
    form = client.get(PAGE)
    assert form.status_code == 200 and 'id="emergency-access-warning"' in page(form)
    response = break_glass(client, world.counselor_a2, world.school_a1, world.student_a1_3.student_no,
                           capture=django_capture_on_commit_callbacks)  # fmt: skip
    assert response.status_code == 302 and response.url == case_url(process)
    grant = EmergencyAccess.objects.get()
    assert (grant.user, grant.case, grant.reason) == (world.counselor_a2, case, REASON)
    assert grant.expires_at - grant.granted_at == datetime.timedelta(hours=24)
    assert grant.history.get().history_user == world.counselor_a2

    # Told: the district centre and A1's principal, by name of the grantee, case and reason; the student masked.
    told = Notification.objects.filter(kind="emergency_access")
    assert {n.recipient for n in told} == {world.centre_district_a, world.principal_a1}
    notice = told.get(recipient=world.centre_district_a)
    assert "counselor_a2" in notice.title and f"#{case.pk}" in notice.title
    assert REASON in notice.body and mask_name("王小明") in notice.body and "王小明" not in notice.body

    # Logged: the grant, then each reading of the case page.
    assert log(actor="counselor_a2", action="change", object_type="cases.emergencyaccess", object_ids=str(grant.pk),
               outcome="ok").count() == 1  # fmt: skip
    reads_before = log(actor="counselor_a2", action="view", object_type="cases.case", object_ids=str(case.pk)).count()
    case_page = client.get(case_url(process))
    assert case_page.status_code == 200
    assert 'id="emergency-access-banner"' in page(case_page)
    assert timezone.localtime(grant.expires_at).strftime("%Y-%m-%d %H:%M") in page(case_page)
    assert "王小明" not in page(case_page)  # names stay masked for someone outside the school
    reads = log(actor="counselor_a2", action="view", object_type="cases.case", object_ids=str(case.pk))
    assert reads.count() == reads_before + 1

    # The case list shows it too (beside the literal school filter of a school-level user).
    cases = client.get(CASES)
    assert case_url(process) in page(cases)

    # A day later the glass is whole again.
    EmergencyAccess.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert client.get(case_url(process)).status_code == 404
    assert case_url(process) not in page(client.get(CASES))
    assert not scoping.visible(world.counselor_a2, type(case)).filter(pk=case.pk).exists()


def test_the_grant_reads_but_never_does_the_other_schools_steps(client, world, case_a1):
    case, process = case_a1
    break_glass(client, world.counselor_a2, world.school_a1, world.student_a1_3.student_no)
    triage = active(process, CaseFlow.triage)
    assert client.get(url(triage)).url == case_url(process)  # the step's link leads to the case page, not the form
    client.post(url(triage, "assign"))
    triage.refresh_from_db()
    assert triage.status == STATUS.NEW and triage.owner is None
    with pytest.raises(case_services.PermissionDenied):
        case_services.case_triage(world.counselor_a2, case, "yellow", "我来分诊")
    case.refresh_from_db()
    assert not case.triaged


@pytest.mark.parametrize(
    ("persona", "reason", "message"),
    [
        ("counselor_a2", "太短", None),  # the form's own minimum-length message
        ("homeroom_a1_3", REASON, WRONG_ROLE),
        ("school_admin_a2", REASON, ""),  # admins never reach the case frontend: its generic 403 page
    ],
)
def test_a_short_reason_or_a_role_without_clinical_reading_is_refused(client, world, case_a1, persona, reason, message):
    user = getattr(world, persona)
    response = break_glass(client, user, world.school_a1, world.student_a1_3.student_no, reason=reason)
    assert response.status_code in (200, 403)
    if message is None:
        assert "reason" in response.context["form"].errors
    elif message:
        assert zh(message) in page(response)
    else:
        assert response.status_code == 403
    assert not EmergencyAccess.objects.exists()
    assert not Notification.objects.filter(kind="emergency_access").exists()


def test_an_auditor_is_shown_the_refusal_and_cannot_post(client, world, case_a1):
    client.force_login(world.auditor_district_a)
    response = client.get(PAGE)
    assert response.status_code == 403 and zh(WRONG_ROLE) in page(response)
    assert (
        break_glass(client, world.auditor_district_a, world.school_a1, world.student_a1_3.student_no).status_code == 404
    )
    assert not EmergencyAccess.objects.exists()


def test_a_student_of_another_city_or_an_unknown_number_is_not_found_and_the_attempt_is_logged(client, world, case_a1):
    counselor_x = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_x1, username="counselor_x")
    case_services.case_refer(counselor_x, world.student_x, "班主任转介：情绪低落", "orange")
    for number in ("0000000000", world.student_a1_3.student_no[:-1]):
        response = break_glass(client, world.counselor_a2, world.school_a1, number)
        assert response.status_code == 200
        assert zh(NO_CASE) in page(response)
    # The form offers only the city's schools; a caller naming another city's school gets the same words.
    assert world.school_x1 not in response.context["form"].fields["school"].queryset
    with pytest.raises(case_services.EmergencyAccessRefused) as refused:
        case_services.emergency_access_grant(
            world.counselor_a2, school=world.school_x1.pk, student_no=world.student_x.student_no, reason=REASON
        )
    assert refused.value.messages == [zh(NO_CASE)]
    assert not EmergencyAccess.objects.exists()
    assert log(actor="counselor_a2", object_type="cases.emergencyaccess", outcome="denied").count() == 3


def test_after_five_attempts_in_a_day_the_glass_is_refused_even_for_a_real_case(client, world, case_a1, settings):
    settings.EMERGENCY_ACCESS_DAILY_LIMIT = 5
    for number in ("0000000001", "0000000002", "0000000003", "0000000004", "0000000005"):  # probing numbers
        assert zh(NO_CASE) in page(break_glass(client, world.counselor_a2, world.school_a1, number))
    response = break_glass(client, world.counselor_a2, world.school_a1, world.student_a1_3.student_no)
    assert response.status_code == 200
    assert zh(LIMIT, count=5) in page(response)
    assert not EmergencyAccess.objects.exists()
    assert log(actor="counselor_a2", object_type="cases.emergencyaccess", outcome="denied").count() == 6
    # A day later the limit counts afresh.
    tomorrow = timezone.now() + datetime.timedelta(hours=25)
    outcome = case_services.emergency_access_grant(
        world.counselor_a2, school=world.school_a1.pk, student_no=world.student_a1_3.student_no, reason=REASON,
        now=tomorrow,
    )  # fmt: skip
    assert outcome.grant is not None


def test_a_case_in_scope_already_opens_without_a_grant(client, world, case_a1):
    case, process = case_a1
    response = break_glass(client, world.counselor_a1, world.school_a1, world.student_a1_3.student_no)
    assert response.status_code == 302 and response.url == case_url(process)
    assert not EmergencyAccess.objects.exists()


def test_a_district_centre_breaks_the_glass_for_another_district_and_the_auditor_reviews_it(
    client,
    world,
    open_case,
    django_capture_on_commit_callbacks,
):
    case, process = open_case(world.student_b1, "orange")
    centre_b = staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    response = break_glass(client, world.centre_district_a, world.school_b1, world.student_b1.student_no,
                           capture=django_capture_on_commit_callbacks)  # fmt: skip
    assert response.url == case_url(process)
    assert Notification.objects.filter(kind="emergency_access", recipient=centre_b).exists()
    assert not Notification.objects.filter(kind="emergency_access", recipient=world.centre_district_a).exists()
    grant = EmergencyAccess.objects.get()

    auditor_b = staff_with_role(Role.DISTRICT_AUDITOR, world.district_b, username="auditor_district_b")
    client.force_login(auditor_b)
    review = client.get(CaseFlow.instance.reverse("case_review", args=[process.pk]))
    assert review.status_code == 200
    (entry,) = [e for e in review.context["entries"] if e.kind == "emergency"]
    assert (entry.who, entry.reason, entry.when) == (world.centre_district_a.name, REASON, grant.granted_at)
    assert entry.login == "centre_district_a"  # the person filter's key


def test_the_case_list_offers_emergency_access_to_clinical_roles_only(client, world):
    link = f'href="{PAGE}"'
    client.force_login(world.counselor_a2)
    assert link in page(client.get(CASES))
    client.force_login(world.homeroom_a1_3)
    assert link not in page(client.get(CASES))


def test_under_the_grant_the_case_records_are_readable_but_a_restricted_note_stays_withheld(client, world, case_a1):
    case, process = case_a1
    open_note = case_services.interview_record(world.counselor_a1, case, "学生同意每周面谈。")
    secret = case_services.interview_record(world.counselor_a1, case, "家庭情况（仅限心理教师）", restricted=True)
    assert not scoping.visible(world.counselor_a2, InterviewNote).exists()
    break_glass(client, world.counselor_a2, world.school_a1, world.student_a1_3.student_no)
    assert list(scoping.visible(world.counselor_a2, InterviewNote)) == [open_note]
    assert list(scoping.visible_withheld(world.counselor_a2, InterviewNote)) == [secret]
    case_page = page(client.get(case_url(process)))
    assert "学生同意每周面谈。" in case_page and "家庭情况" not in case_page


def test_student_numbers_repeat_between_schools_so_the_school_named_decides_whose_case_opens(
    client, world, open_case, django_capture_on_commit_callbacks
):
    # B1 has its own student under A1's number; both have a case, A1's the newer (the one a city-wide search took).
    twin = StudentFactory(school_class=world.class_b1, student_no=world.student_a1_3.student_no)
    case_b, process_b = open_case(twin, "orange")
    case_a, process_a = open_case(world.student_a1_3, "red")
    client.force_login(world.counselor_a2)
    offered = client.get(PAGE).context["form"].fields["school"]
    assert list(offered.queryset) == [world.school_a1, world.school_a2, world.school_b1]  # the city's, by district
    assert offered.label_from_instance(world.school_b1) == "西山区 · 西山中学"

    response = break_glass(client, world.counselor_a2, world.school_b1, twin.student_no,
                           capture=django_capture_on_commit_callbacks)  # fmt: skip
    assert response.status_code == 302 and response.url == case_url(process_b)
    assert list(EmergencyAccess.objects.values_list("user__username", "case")) == [("counselor_a2", case_b.pk)]
    assert client.get(case_url(process_a)).status_code == 404

    # A1's principal names their own school: their own student's case, in scope, and nobody else's is granted.
    response = break_glass(client, world.principal_a1, world.school_a1, twin.student_no)
    assert response.status_code == 302 and response.url == case_url(process_a)
    assert not EmergencyAccess.objects.filter(user=world.principal_a1).exists()


def test_a_number_at_the_wrong_school_or_with_no_school_is_refused_and_logged(client, world, case_a1):
    number = world.student_a1_3.student_no
    response = break_glass(client, world.counselor_a2, world.school_b1, number)  # the student is at A1
    assert response.status_code == 200 and zh(NO_CASE) in page(response)
    response = client.post(PAGE, {"student_no": number, "reason": REASON})  # the form asks for the school
    assert response.status_code == 200 and "school" in response.context["form"].errors
    with pytest.raises(case_services.EmergencyAccessRefused) as refused:
        case_services.emergency_access_grant(world.counselor_a2, school=None, student_no=number, reason=REASON)
    assert refused.value.messages == [zh(NO_CASE)]
    assert not EmergencyAccess.objects.exists()
    assert not Notification.objects.filter(kind="emergency_access").exists()
    assert log(actor="counselor_a2", object_type="cases.emergencyaccess", outcome="denied").count() == 2


def test_the_limit_is_counted_under_the_requesters_lock_in_the_transaction_that_logs_the_attempt(world, case_a1):
    with CaptureQueriesContext(connection) as queries, pytest.raises(case_services.EmergencyAccessRefused):
        case_services.emergency_access_grant(
            world.counselor_a2, school=world.school_a1.pk, student_no="0000000000", reason=REASON
        )
    sql = [query["sql"] for query in queries]
    lock = next(i for i, q in enumerate(sql) if q.startswith("SELECT") and 'FROM "roster_user"' in q)
    count = next(i for i, q in enumerate(sql) if "COUNT(" in q and '"roster_accesslogentry"' in q)
    denied = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "roster_accesslogentry"'))
    savepoint = next(q for q in reversed(sql[:lock]) if q.startswith("SAVEPOINT")).split()[-1]
    released = sql.index(f"RELEASE SAVEPOINT {savepoint}")
    assert lock < count < denied < released  # lock, count and the refusal's entry: one transaction
    assert connection.vendor != "postgresql" or sql[lock].endswith("FOR UPDATE")


@PG_ONLY
@pytest.mark.django_db(transaction=True)
def test_twelve_parallel_requests_for_twelve_cases_give_no_more_grants_than_the_daily_limit(world, open_case, settings):
    settings.EMERGENCY_ACCESS_DAILY_LIMIT = 5
    students = StudentFactory.create_batch(12, school_class=world.class_a1_3)
    for student in students:
        open_case(student, "red")
    barrier, outcomes = threading.Barrier(len(students)), []

    def press(student):
        try:
            user = User.objects.get(pk=world.counselor_a2.pk)
            barrier.wait()
            case_services.emergency_access_grant(
                user, school=world.school_a1.pk, student_no=student.student_no, reason=REASON
            )
            outcomes.append("granted")
        except case_services.EmergencyAccessRefused as refused:
            outcomes.append("refused" if refused.messages == [zh(LIMIT, count=5)] else refused.messages[0])
        except Exception as error:  # noqa: BLE001 (collected and asserted below)
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(student,)) for student in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["granted"] * 5 + ["refused"] * 7
    assert EmergencyAccess.objects.count() == 5
    assert log(actor="counselor_a2", object_type="cases.emergencyaccess", outcome="ok").count() == 5
    assert log(actor="counselor_a2", object_type="cases.emergencyaccess", outcome="denied").count() == 7
