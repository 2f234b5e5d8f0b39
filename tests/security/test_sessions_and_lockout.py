"""Signing in and staying signed in (issue 6, item 5), as the people of tests/conftest.py meet it: the lockout after
wrong passwords, passwords made of the place's own words, idle and absolute session expiry, sessions ended when a
person is deactivated, a removed role taking effect at once and handing the person's tasks back, and the TOTP step
for district and city staff, principals and psychology teachers."""

import datetime
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from viewflow.workflow.status import STATUS

from cases import services as case_services
from roster.models import RoleAssignment, UserSession
from roster.roles import Role
from roster.sessions import LOGIN_AT, SEEN_AT
from tests.factories.cases import active, take, to_follow_up
from tests.factories.roster import UserFactory, staff_with_role
from workflows import services
from workflows.flows import CaseFlow

PASSWORD = "a-long-test-password"  # tests.factories.roster.UserFactory's
SCHOOL_IP, HOME_IP = "10.8.0.1", "10.9.0.7"


def sign_in(client, username, password=PASSWORD, ip=SCHOOL_IP, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def case_url(process):
    return CaseFlow.instance.reverse("process_detail", args=[process.pk])


# --- Lockout (django-axes) -----------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_that_username_from_that_address(client, world):
    for _ in range(4):
        assert sign_in(client, "counselor_a1", "wrong-password-1").status_code == 200  # the form again, with its error
    locked = sign_in(client, "counselor_a1", "wrong-password-1")
    assert locked.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    # Locked: even the right password changes nothing.
    again = sign_in(client, "counselor_a1")
    assert again.status_code == 429 and not signed_in(client)


def test_a_lockout_leaves_other_addresses_and_other_usernames_alone(client, world):
    for _ in range(5):
        sign_in(client, "counselor_a1", "wrong-password-1")
    assert sign_in(client, "counselor_a1").status_code == 429
    # The same school's colleague, from the same shared address.
    assert sign_in(client, "principal_a1").status_code == 302 and signed_in(client)
    client.logout()
    # The same person from home.
    assert sign_in(client, "counselor_a1", ip=HOME_IP).status_code == 302 and signed_in(client)


def test_a_success_clears_the_count(client, world):
    for _ in range(4):
        sign_in(client, "counselor_a1", "wrong-password-1")
    assert sign_in(client, "counselor_a1").status_code == 302
    client.logout()
    for _ in range(4):
        assert sign_in(client, "counselor_a1", "wrong-password-1").status_code == 200  # counting from zero again
    assert sign_in(client, "counselor_a1").status_code == 302


def test_the_lockout_lasts_thirty_minutes(client, world):
    from axes.models import AccessAttempt

    for _ in range(5):
        sign_in(client, "counselor_a1", "wrong-password-1")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=29))
    assert sign_in(client, "counselor_a1").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=31))
    assert sign_in(client, "counselor_a1").status_code == 302 and signed_in(client)


def test_the_lockout_page_says_what_happened_and_when_to_try_again(client, world, settings):
    for _ in range(4):
        sign_in(client, "counselor_a1", "wrong-password-1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = sign_in(client, "counselor_a1", "wrong-password-1").content.decode()
    assert "Sign-in locked" in page and "30 minutes" in page and "Nothing was changed" in page
    assert 'href="/accounts/login/"' in page


# --- Passwords -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "XinQiao-staff-2026!",  # the system's name, any case
        "9901010001-Teacher",  # the school's code
        "pass-990101-word",  # the district's division code
        "我爱东湖第一中学2026",  # the school's name
        "东湖-counsel-2026!",  # the school's name without 第一中学
        "东湖区rocks-2026!",  # the district's name
        "示范-Spring-2026!",  # the city's name without 市
    ],
)
def test_passwords_made_of_the_places_own_words_are_refused(world, password):
    with pytest.raises(ValidationError) as refused:
        validate_password(password, user=world.counselor_a1)
    assert "password_has_context_word" in [e.code for e in refused.value.error_list]


def test_a_district_persons_district_and_city_and_a_new_staff_members_school_count_too(world):
    with pytest.raises(ValidationError):
        validate_password("990100-Centre-Desk", user=world.centre_district_a)  # the city's code
    newcomer = UserFactory.build(school=world.school_a2)  # not saved yet: the employing school alone
    with pytest.raises(ValidationError):
        validate_password("9901010002-Newcomer", user=newcomer)


def test_a_password_of_other_words_passes(world):
    validate_password("Kp7#wz-Lm2@qRt-Harbor", user=world.counselor_a1)
    # Another school's code is not this person's context.
    validate_password("9901020001-Kp7#wz-Lm2", user=world.counselor_a1)


def test_the_refusal_names_the_word(world):
    with pytest.raises(ValidationError) as refused:
        validate_password("my-9901010001-secret", user=world.counselor_a1)
    assert "9901010001" in " ".join(refused.value.messages)


# --- Session expiry ------------------------------------------------------------------------------------------------


def move_back(client, key, seconds):
    session = client.session
    session[key] -= seconds
    session.save()


def test_thirty_minutes_without_a_request_signs_out(client, world):
    client.force_login(world.counselor_a1)
    assert client.get(reverse("home")).status_code == 200
    move_back(client, SEEN_AT, 29 * 60)
    assert client.get(reverse("home")).status_code == 200  # 29 minutes: still signed in, and the clock restarts
    assert time.time() - client.session[SEEN_AT] < 5
    move_back(client, SEEN_AT, 31 * 60)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not signed_in(client)


def test_the_session_store_expires_an_idle_session_too(client, world):
    client.force_login(world.counselor_a1)
    Session.objects.filter(session_key=client.session.session_key).update(expire_date=timezone.now())
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_ten_hours_after_signing_in_signs_out_however_active(client, world):
    client.force_login(world.counselor_a1)
    move_back(client, LOGIN_AT, 9 * 3600 + 59 * 60)
    assert client.get(reverse("home")).status_code == 200
    move_back(client, LOGIN_AT, 2 * 60)
    response = client.get(reverse("home"), follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("login"))
    assert not signed_in(client)
    assert any("10" in str(m) for m in response.context["messages"])


def test_signing_in_records_the_session_and_signing_out_removes_it(client, world):
    assert sign_in(client, "counselor_a1").status_code == 302
    key = client.session.session_key
    assert UserSession.objects.filter(user=world.counselor_a1, session_key=key).exists()
    client.post(reverse("logout"))
    assert not UserSession.objects.filter(session_key=key).exists()
    assert not Session.objects.filter(session_key=key).exists()


@pytest.mark.parametrize("change", ["deactivate", "new_password"])
def test_deactivation_or_a_new_password_ends_every_session_at_once(client, world, django_user_model, change):
    from django.test import Client

    other = Client()  # the same person on a second computer
    client.force_login(world.counselor_a1)
    other.force_login(world.counselor_a1)
    assert client.get(reverse("home")).status_code == other.get(reverse("home")).status_code == 200
    keys = [client.session.session_key, other.session.session_key]
    assert Session.objects.filter(session_key__in=keys).count() == 2
    user = django_user_model.objects.get(pk=world.counselor_a1.pk)
    if change == "deactivate":
        user.is_active = False
    else:
        user.set_password("Kp7#wz-Lm2@qRt-Harbor")
    user.save()
    assert not Session.objects.filter(session_key__in=keys).exists()  # deleted, not merely refused
    assert not UserSession.objects.filter(user=user).exists()
    for browser in (client, other):
        response = browser.get(reverse("home"))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_saving_an_active_person_keeps_their_sessions(client, world):
    client.force_login(world.counselor_a1)
    world.counselor_a1.name = "新名字"
    world.counselor_a1.save()
    assert client.get(reverse("home")).status_code == 200


# --- Removing a role -----------------------------------------------------------------------------------------------


def test_a_removed_role_shows_nothing_of_the_school_at_the_next_request(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    client.force_login(world.counselor_a1)
    assert client.get(reverse("home")).context["school_page"].paginator.count == 1
    assert client.get(case_url(process)).status_code == 200
    RoleAssignment.objects.get(user=world.counselor_a1, role=Role.PSYCHOLOGY_TEACHER).delete()
    home = client.get(reverse("home"))
    assert home.context["school_page"].paginator.count == 0 and home.context["students"]["total"] == 0
    assert client.get(case_url(process)).status_code in (403, 404)


def test_a_removed_role_hands_the_persons_tasks_back_to_the_schools_queue(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    colleague = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor_a1_colleague")
    other_case, other_process = open_case(world.student_a1_5, "yellow")
    elsewhere = take(colleague, other_process, CaseFlow.triage)
    RoleAssignment.objects.get(user=world.counselor_a1, role=Role.PSYCHOLOGY_TEACHER).delete()
    triage.refresh_from_db()
    assert (triage.status, triage.owner) == (STATUS.NEW, None)
    services.task_claim(colleague, triage)  # in the queue for the school's psychology teachers
    elsewhere.refresh_from_db()
    assert (elsewhere.status, elsewhere.owner) == (STATUS.ASSIGNED, colleague)  # a colleague's task, untouched


def test_a_team_members_assigned_step_returns_to_the_queue_and_their_seat_stays(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="yellow",
                         reason="确认")  # fmt: skip
    services.staffing_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.staffing),
                           case_services.team_proposal(case))  # fmt: skip
    interview = active(process, CaseFlow.interview)
    assert interview.owner == world.counselor_a1
    RoleAssignment.objects.get(user=world.counselor_a1, role=Role.PSYCHOLOGY_TEACHER).delete()
    interview.refresh_from_db()
    assert (interview.status, interview.owner) == (STATUS.NEW, None)
    assert case.team.filter(user=world.counselor_a1, left_at__isnull=True).exists()  # the principal hands it over


def test_a_person_keeping_another_role_at_the_school_keeps_their_tasks(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    homeroom = staff_with_role(Role.HOMEROOM_TEACHER, world.class_a1_5, username="counselor_and_homeroom")
    from roster import services as roster_services

    roster_services.role_grant(actor=None, user=homeroom, role=Role.PSYCHOLOGY_TEACHER, node=world.school_a1)
    triage = take(homeroom, process, CaseFlow.triage)
    RoleAssignment.objects.get(user=homeroom, role=Role.HOMEROOM_TEACHER).delete()
    triage.refresh_from_db()
    assert (triage.status, triage.owner) == (STATUS.ASSIGNED, homeroom)


def test_a_role_moved_to_another_school_counts_as_removed_where_it_was(world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = take(world.counselor_a1, process, CaseFlow.triage)
    assignment = RoleAssignment.objects.get(user=world.counselor_a1, role=Role.PSYCHOLOGY_TEACHER)
    assignment.school = world.school_a2
    assignment.save()
    triage.refresh_from_db()
    assert (triage.status, triage.owner) == (STATUS.NEW, None)


def test_a_district_centre_losing_its_role_returns_the_closure_approval_it_took(world, open_case):
    case, process = open_case(world.student_a1_3, "orange")
    counselor = world.counselor_a1
    services.triage_done(counselor, take(counselor, process, CaseFlow.triage), tier="orange", reason="确认")
    services.staffing_done(counselor, take(counselor, process, CaseFlow.staffing), case_services.team_proposal(case))
    services.parent_contact_done(world.homeroom_a1_3, active(process, CaseFlow.parent_contact), guardian="母亲",
                                 channel="phone", outcome="家长同意配合", consent="given")  # fmt: skip
    services.interview_done(counselor, active(process, CaseFlow.interview), note="情绪低落")
    services.plan_done(counselor, active(process, CaseFlow.plan), goals="稳定情绪", needs_referral=False,
                       review_on=datetime.date(2027, 1, 5), measures=[("每周谈话", counselor)])  # fmt: skip
    services.follow_up_done(counselor, to_follow_up(process), note="好转", outcome="propose_closure")
    approval = take(world.centre_district_a, process, CaseFlow.approve_closure)
    RoleAssignment.objects.get(user=world.centre_district_a).delete()
    approval.refresh_from_db()
    assert (approval.status, approval.owner) == (STATUS.NEW, None)
    assert approval.flow_task.can_assign(world.admin_district_a, approval) is False  # still the centre's to take
    services.task_claim(staff_with_role(Role.DISTRICT_CENTRE, world.district_a, username="centre_a_new"), approval)


# --- Two-factor sign-in (TOTP) -------------------------------------------------------------------------------------


@pytest.fixture
def two_factor(settings):
    settings.TWO_FACTOR_ENFORCED = True  # off in config.test_settings for the other suites' force_login()


def code(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_a_district_centre_without_an_authenticator_is_sent_to_set_one_up_first(client, world, two_factor):
    from roster.two_factor import otp_enrolment_code_issue

    enrolment_code = otp_enrolment_code_issue(actor=world.admin_district_a, user=world.centre_district_a)
    response = sign_in(client, "centre_district_a", follow=True)
    setup = reverse("otp_setup")
    assert response.redirect_chain[-1][0].startswith(setup)
    assert client.get(reverse("notifications")).url.startswith(setup)  # nothing else until it is done
    # The enrolment code from their administrator first (tests/security/test_account_takeover.py), then the secret.
    response = client.post(setup + "?next=/", {"code": enrolment_code, "next": "/"}, follow=True)
    device = TOTPDevice.objects.get(user=world.centre_district_a, confirmed=False)
    page = response.content.decode()
    assert "<svg" in page and response.context["secret"] in page.replace(" ", "")  # a QR code, and the key typed
    done = client.post(setup + "?next=/", {"token": code(device), "next": "/"})
    assert done.status_code == 302 and done.url == "/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("home")).status_code == 200


def test_a_district_centre_with_an_authenticator_enters_its_code(client, world, two_factor):
    device = TOTPDevice.objects.create(user=world.centre_district_a, name="phone", confirmed=True)
    assert sign_in(client, "centre_district_a").status_code == 302
    verify = reverse("otp_verify")
    home = client.get(reverse("home"))
    assert home.status_code == 302 and home.url == f"{verify}?next=%2F"
    assert client.get(reverse("otp_setup")).url.startswith(verify)  # a password alone enrols no other device
    wrong = client.post(verify, {"token": "000000" if code(device) != "000000" else "111111", "next": "/"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert client.get(reverse("home")).status_code == 302
    device.refresh_from_db()
    device.throttle_reset()  # the one-second wait a wrong code costs
    passed = client.post(verify, {"token": code(device), "next": "/"})
    assert passed.status_code == 302 and passed.url == "/"
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.parametrize(
    "persona", ["city_admin", "admin_district_a", "auditor_district_a", "principal_a1", "counselor_a1", "superuser"]
)
def test_city_district_and_case_reading_roles_and_superusers_need_the_code(client, world, two_factor, persona):
    client.force_login(getattr(world, persona))
    assert client.get(reverse("home")).url.startswith(reverse("otp_setup"))


def test_a_homeroom_teacher_signs_in_without_a_code(client, world, two_factor):
    response = sign_in(client, "homeroom_a1_3", follow=True)
    assert response.redirect_chain[-1][0] == reverse("home") and response.status_code == 200


def test_a_teacher_who_set_up_an_authenticator_is_asked_for_its_code(client, world, two_factor):
    TOTPDevice.objects.create(user=world.counselor_a1, name="phone", confirmed=True)
    sign_in(client, "counselor_a1")
    assert client.get(reverse("home")).url.startswith(reverse("otp_verify"))


def test_sign_out_language_and_the_portal_stay_open_before_the_code(client, world, two_factor):
    client.force_login(world.centre_district_a)
    assert client.get("/s/").status_code == 200  # the students' portal
    assert client.post(reverse("set_language"), {"language": "en", "next": "/"}).url == "/"
    assert client.post(reverse("logout")).url == reverse("login")
    assert not signed_in(client)
