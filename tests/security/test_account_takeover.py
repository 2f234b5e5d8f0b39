"""Nobody becomes someone else through their account's set-up (issue 17, findings 4, 12 and 14).

- An administrator never types the password of a principal, psychology teacher or district or city role: they send
  the holder a link to choose their own; a homeroom teacher's temporary password is changed at the next sign-in.
  Every password set, link sent and refusal is in the access log.
- The first authenticator is set up with an enrolment code from the person's administrator, never with a password
  alone.
- Roles are granted and revoked in the admin through roster.services (history with reasons, access log, GRANTS).
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from roster import services, two_factor
from roster.models import AccessLogEntry, OTPEnrolmentCode, RoleAssignment, User
from roster.roles import Role
from tests.admin_forms import admin_change_data

PASSWORD = "a-long-test-password"  # tests.factories.roster.UserFactory's
NEW_PASSWORD = "Kp7#wz-Lm2@qRt-Harbor"
ADMIN_TYPED = "Tq9!vb-Zr4@pLm-Anchor"


def log(object_type, user, outcome="ok"):
    return AccessLogEntry.objects.filter(object_type=object_type, object_ids=str(user.pk), outcome=outcome)


def password_url(user):
    return reverse("admin:auth_user_password_change", args=[user.pk])


def sign_in(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR="10.8.0.1")


def reloaded(user):
    return User.objects.get(pk=user.pk)


@pytest.fixture
def two_factor_on(settings):
    settings.TWO_FACTOR_ENFORCED = True


def totp_code(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


# --- Passwords: only the holder of a case-reading account chooses it ----------------------------------------------


@pytest.mark.parametrize("holder", ["principal_a1", "counselor_a1"])
def test_a_school_admin_cannot_set_a_case_readers_password(client, world, holder):
    holder = getattr(world, holder)
    client.force_login(world.school_admin_a1)
    page = client.get(password_url(holder))
    assert page.status_code == 200 and page.context["form"] is None and b'name="password1"' not in page.content
    forged = client.post(password_url(holder), {"password1": ADMIN_TYPED, "password2": ADMIN_TYPED})
    assert forged.status_code == 403
    assert reloaded(holder).check_password(PASSWORD) and not reloaded(holder).check_password(ADMIN_TYPED)
    assert log(services.PASSWORD_LOG, holder, "denied").count() == 1
    with pytest.raises(PermissionDenied):  # nor through the service itself
        services.password_set_temporary(actor=world.school_admin_a1, user=holder, password=ADMIN_TYPED)
    assert reloaded(holder).check_password(PASSWORD)


def test_taking_the_role_away_for_a_moment_does_not_hand_the_password_to_the_admin(client, world):
    """The walk-through's way round: revoke the psychology teacher's role, set a temporary password, grant it back.
    An account that ever read cases keeps its password its holder's."""
    counselor = world.counselor_a1
    counselor.email = "counselor@example.edu.cn"
    counselor.last_login = timezone.now()  # in use
    counselor.save()
    (assignment,) = RoleAssignment.objects.filter(user=counselor)
    services.role_grant(actor=world.school_admin_a1, user=counselor, role=Role.HOMEROOM_TEACHER, node=world.class_a1_5)
    services.role_revoke(actor=world.school_admin_a1, assignment=assignment)
    assert not RoleAssignment.objects.filter(user=counselor, role=Role.PSYCHOLOGY_TEACHER).exists()
    with pytest.raises(PermissionDenied):
        services.password_set_temporary(actor=world.school_admin_a1, user=counselor, password=ADMIN_TYPED)
    client.force_login(world.school_admin_a1)
    page = client.get(password_url(counselor))
    assert page.status_code == 200 and b'name="password1"' not in page.content
    url = reverse("admin:roster_user_change", args=[counselor.pk])
    data = admin_change_data(client.get(url))
    data["email"] = "admin@example.edu.cn"
    client.post(url, data)
    assert reloaded(counselor).email == "counselor@example.edu.cn" and reloaded(counselor).check_password(PASSWORD)


def test_a_reset_link_goes_to_the_holders_email_and_leaves_the_second_factor(client, world, mailoutbox, settings):
    principal = world.principal_a1
    principal.email = "principal@example.edu.cn"
    principal.save()
    device = TOTPDevice.objects.create(user=principal, name="phone", confirmed=True)
    client.force_login(world.school_admin_a1)
    sent = client.post(password_url(principal), {"send_link": "1"})
    assert sent.status_code == 302
    assert [m.to for m in mailoutbox] == [["principal@example.edu.cn"]]
    assert log(services.PASSWORD_LINK_LOG, principal).count() == 1
    assert reloaded(principal).check_password(PASSWORD)  # unchanged until the holder uses the link

    link = re.search(r"/accounts/password/set/\S+/", mailoutbox[0].body).group(0)
    holder = client_class_for(client)
    form_page = holder.get(link, follow=True)
    assert form_page.context["validlink"]
    done = holder.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done.url == reverse("login")
    assert reloaded(principal).check_password(NEW_PASSWORD)
    assert log(services.PASSWORD_LOG, principal).get().actor_id == principal.pk  # set by the holder
    assert not holder.get(link, follow=True).context["validlink"]  # once only

    settings.TWO_FACTOR_ENFORCED = True
    assert sign_in(holder, "principal_a1", NEW_PASSWORD).status_code == 302
    assert holder.get(reverse("home")).url.startswith(reverse("otp_verify"))  # the second factor is still asked
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()


def client_class_for(client):
    """Another browser (the holder's), not signed in."""
    return type(client)()


def test_a_reset_link_for_an_account_without_email_is_refused_and_logged(client, world, mailoutbox):
    client.force_login(world.school_admin_a1)
    response = client.post(password_url(world.principal_a1), {"send_link": "1"}, follow=True)
    assert mailoutbox == []
    assert any("email" in str(m) or "邮箱" in str(m) for m in response.context["messages"])
    assert log(services.PASSWORD_LINK_LOG, world.principal_a1, "denied").count() == 1


def test_a_homeroom_teachers_temporary_password_is_replaced_at_the_next_sign_in(client, world):
    teacher = world.homeroom_a1_3
    client.force_login(world.school_admin_a1)
    assert client.get(password_url(teacher)).context["form"] is not None
    response = client.post(password_url(teacher), {"password1": ADMIN_TYPED, "password2": ADMIN_TYPED})
    assert response.status_code == 302
    assert reloaded(teacher).must_change_password and reloaded(teacher).check_password(ADMIN_TYPED)
    entry = log(services.PASSWORD_LOG, teacher).get()
    assert entry.actor_id == world.school_admin_a1.pk and ADMIN_TYPED not in str(vars(entry))

    holder = client_class_for(client)
    assert sign_in(holder, "homeroom_a1_3", ADMIN_TYPED).status_code == 302
    change = reverse("password_change_required")
    assert holder.get(reverse("home")).url.startswith(change)
    assert holder.get(reverse("notifications")).url.startswith(change)  # nothing else until it is done
    done = holder.post(
        change,
        {"old_password": ADMIN_TYPED, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "next": "/"},
    )
    assert done.status_code == 302 and done.url == "/"
    assert SESSION_KEY in holder.session and holder.get(reverse("home")).status_code == 200  # still signed in
    teacher = reloaded(teacher)
    assert not teacher.must_change_password and teacher.check_password(NEW_PASSWORD)
    assert log(services.PASSWORD_LOG, teacher).filter(actor_id=teacher.pk).count() == 1


def test_a_new_principal_added_in_the_admin_gets_a_link_not_the_typed_password(client, world, mailoutbox):
    client.force_login(world.school_admin_a1)
    data = {
        "username": "new_principal",
        "name": "赵校长",
        "phone": "13900000001",
        "email": "zhao@example.edu.cn",
        "password1": ADMIN_TYPED,
        "password2": ADMIN_TYPED,
        "role_assignments-TOTAL_FORMS": "1",
        "role_assignments-INITIAL_FORMS": "0",
        "role_assignments-MIN_NUM_FORMS": "1",
        "role_assignments-MAX_NUM_FORMS": "1000",
        "role_assignments-0-role": Role.PRINCIPAL,
        "role_assignments-0-school": world.school_a1.pk,
    }
    assert client.post(reverse("admin:roster_user_add"), data).status_code == 302
    principal = User.objects.get(username="new_principal")
    assert not principal.has_usable_password()
    assert [m.to for m in mailoutbox] == [["zhao@example.edu.cn"]]
    assert log(services.PASSWORD_LINK_LOG, principal).count() == 1


def test_changing_an_accounts_email_is_logged_and_the_old_address_told(client, world, mailoutbox):
    teacher = world.homeroom_a1_3
    teacher.email = "old@example.edu.cn"
    teacher.save()
    client.force_login(world.school_admin_a1)
    url = reverse("admin:roster_user_change", args=[teacher.pk])
    data = admin_change_data(client.get(url))
    data["email"] = "new@example.edu.cn"
    assert client.post(url, data).status_code == 302
    assert log(services.EMAIL_LOG, teacher).get().actor_id == world.school_admin_a1.pk
    assert [m.to for m in mailoutbox] == [["old@example.edu.cn"]]


def test_an_administrator_cannot_redirect_a_case_readers_set_password_links(client, world, mailoutbox):
    """A school admin who could change the principal's email would send the link to themselves: read-only once set."""
    principal = world.principal_a1
    principal.email = "principal@example.edu.cn"
    principal.last_login = timezone.now()  # the account is in use
    principal.save()
    client.force_login(world.school_admin_a1)
    url = reverse("admin:roster_user_change", args=[principal.pk])
    data = admin_change_data(client.get(url))
    data["email"] = "admin@example.edu.cn"
    client.post(url, data)
    principal.refresh_from_db()
    assert principal.email == "principal@example.edu.cn"
    assert not log(services.EMAIL_LOG, principal).exists() and not mailoutbox


def test_an_administrator_cannot_give_an_address_to_a_case_reader_who_has_none(client, world, mailoutbox):
    """The probe's 4b: the demo principal has no email; the school admin added their own and followed the link."""
    principal = world.principal_a1
    principal.last_login = timezone.now()
    principal.save()
    client.force_login(world.school_admin_a1)
    url = reverse("admin:roster_user_change", args=[principal.pk])
    data = admin_change_data(client.get(url))
    data["email"] = "admin@example.edu.cn"
    client.post(url, data)
    assert reloaded(principal).email == ""
    sent = client.post(password_url(principal), {"send_link": "1"}, follow=True)
    assert "只有本人可以设置" in sent.content.decode() and not mailoutbox
    assert reloaded(principal).check_password(PASSWORD)


def test_the_holder_sets_their_own_email_with_their_password(client, world, mailoutbox):
    counselor = world.counselor_a1
    counselor.email = "old@example.edu.cn"
    counselor.save()
    client.force_login(counselor)
    wrong = client.post(reverse("account_email"), {"email": "x@example.edu.cn", "password": "not-my-password"})
    assert wrong.status_code == 200 and reloaded(counselor).email == "old@example.edu.cn"
    assert log(services.EMAIL_LOG, counselor, "denied").count() == 1
    done = client.post(reverse("account_email"), {"email": "new@example.edu.cn", "password": PASSWORD})
    assert done.status_code == 302 and reloaded(counselor).email == "new@example.edu.cn"
    assert log(services.EMAIL_LOG, counselor).get().actor_id == counselor.pk
    assert [m.to for m in mailoutbox] == [["old@example.edu.cn"]]


# --- The first authenticator needs an enrolment code ----------------------------------------------------------------


def test_first_enrolment_without_an_enrolment_code_shows_no_secret_and_enrols_nothing(client, world, two_factor_on):
    assert sign_in(client, "principal_a1").status_code == 302
    setup = reverse("otp_setup")
    page = client.get(reverse("home"), follow=True)
    assert page.redirect_chain[-1][0].startswith(setup)
    assert "secret" not in page.context and b"otpauth://" not in page.content
    client.post(setup, {"token": "123456", "code": "WRONGCODE234", "next": "/"})
    assert not TOTPDevice.objects.filter(user=world.principal_a1).exists()
    assert client.get(reverse("home")).url.startswith(setup)
    assert log(two_factor.ENROLMENT_LOG, world.principal_a1, "denied").count() == 1


def test_an_enrolment_code_from_the_admin_enrols_once(client, world, two_factor_on):
    principal = world.principal_a1
    client.force_login(world.school_admin_a1)
    issued = client.post(
        reverse("admin:roster_user_changelist"),
        {"action": "issue_otp_enrolment_codes_action", "_selected_action": [principal.pk]},
    )
    # (The school admin passes no second factor here: theirs is an optional role; a signed-in admin page answers.)
    assert issued.status_code == 200
    ((person, shown),) = issued.context["issued"]
    assert person == principal and len(shown.replace(" ", "")) == two_factor.ENROLMENT_CODE_LENGTH
    code = OTPEnrolmentCode.objects.get(user=principal)
    assert shown.replace(" ", "") not in code.code_hash and code.issued_by == world.school_admin_a1
    assert log(two_factor.ENROLMENT_LOG, principal).get().actor_id == world.school_admin_a1.pk

    holder = client_class_for(client)
    sign_in(holder, "principal_a1")
    setup = reverse("otp_setup")
    entered = holder.post(setup, {"code": shown.lower(), "next": "/"}, follow=True)  # typed as read out
    device = TOTPDevice.objects.get(user=principal, confirmed=False)
    assert entered.context["secret"] and b"<svg" in entered.content  # the app scans the QR code
    done = holder.post(setup, {"token": totp_code(device), "next": "/"})
    assert done.status_code == 302 and done.url == "/"
    assert TOTPDevice.objects.get(user=principal).confirmed
    assert holder.get(reverse("home")).status_code == 200

    device.delete()  # a lost phone, removed by a superuser: the spent code does not enrol the next one
    other = client_class_for(client)
    sign_in(other, "principal_a1")
    again = other.post(setup, {"code": shown, "next": "/"})
    assert again.status_code == 200 and "secret" not in again.context
    assert not TOTPDevice.objects.filter(user=principal).exists()


def test_wrong_codes_void_the_enrolment_code_and_an_expired_one_is_refused(client, world, two_factor_on):
    principal = world.principal_a1
    code = two_factor.otp_enrolment_code_issue(actor=world.school_admin_a1, user=principal)
    for _ in range(two_factor.ENROLMENT_MAX_ATTEMPTS):
        assert not two_factor.otp_enrolment_code_redeem(user=principal, code="ABCDEFGHJKMN")
    assert not two_factor.otp_enrolment_code_redeem(user=principal, code=code)  # void now
    assert log(two_factor.ENROLMENT_LOG, principal, "denied").count() == two_factor.ENROLMENT_MAX_ATTEMPTS + 1

    fresh = two_factor.otp_enrolment_code_issue(actor=world.school_admin_a1, user=principal)
    OTPEnrolmentCode.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not two_factor.otp_enrolment_code_redeem(user=principal, code=fresh)


def test_an_enrolment_code_is_issued_only_by_the_accounts_administrator(world):
    with pytest.raises(PermissionDenied):
        two_factor.otp_enrolment_code_issue(actor=world.school_admin_a1, user=world.counselor_a2)
    with pytest.raises(PermissionDenied):
        two_factor.otp_enrolment_code_issue(actor=world.school_admin_a1, user=world.school_admin_a1)
    assert not OTPEnrolmentCode.objects.exists()
    assert log(two_factor.ENROLMENT_LOG, world.counselor_a2, "denied").count() == 1


# --- Roles in the admin go through roster.services -----------------------------------------------------------------


def staff_page(client, user):
    url = reverse("admin:roster_user_change", args=[user.pk])
    return url, admin_change_data(client.get(url))


def test_a_role_added_in_the_admin_is_granted_by_the_service(client, world):
    teacher = world.homeroom_a1_3
    client.force_login(world.school_admin_a1)
    url, data = staff_page(client, teacher)
    data.update({
        "role_assignments-TOTAL_FORMS": "2",
        "role_assignments-1-role": Role.PSYCHOLOGY_TEACHER,
        "role_assignments-1-school": world.school_a1.pk,
    })  # fmt: skip
    assert client.post(url, data).status_code == 302
    added = RoleAssignment.objects.get(user=teacher, role=Role.PSYCHOLOGY_TEACHER)
    record = added.history.get()
    assert (record.history_user, record.history_change_reason) == (world.school_admin_a1, "role granted")
    assert log(services.ROLES_LOG, teacher).get().actor_id == world.school_admin_a1.pk


def test_a_role_removed_in_the_admin_is_revoked_by_the_service(client, world):
    teacher = world.homeroom_a1_3
    services.role_grant(actor=None, user=teacher, role=Role.HOMEROOM_TEACHER, node=world.class_a1_5)
    client.force_login(world.school_admin_a1)
    url, data = staff_page(client, teacher)
    index = next(i for i in range(2) if data[f"role_assignments-{i}-school_class"] == world.class_a1_5.pk)
    removed_pk = data[f"role_assignments-{index}-id"]
    data[f"role_assignments-{index}-DELETE"] = "on"
    assert client.post(url, data).status_code == 302
    assert not RoleAssignment.objects.filter(pk=removed_pk).exists()
    gone = RoleAssignment.history.filter(id=removed_pk, history_type="-").get()
    assert (gone.history_user, gone.history_change_reason) == (world.school_admin_a1, "role revoked")
    assert log(services.ROLES_LOG, teacher).count() == 1


def test_a_role_moved_in_the_admin_is_revoked_where_it_was_and_granted_anew(client, world):
    teacher = world.homeroom_a1_3
    before = RoleAssignment.objects.get(user=teacher)
    client.force_login(world.school_admin_a1)
    url, data = staff_page(client, teacher)
    data["role_assignments-0-school_class"] = world.class_a1_5.pk
    assert client.post(url, data).status_code == 302
    assert RoleAssignment.history.filter(id=before.pk, history_type="-", history_change_reason="role revoked").exists()
    now = RoleAssignment.objects.get(user=teacher)
    assert now.school_class == world.class_a1_5 and now.history.get().history_change_reason == "role granted"
    assert log(services.ROLES_LOG, teacher).count() == 2


def test_revoking_what_the_admin_may_not_grant_is_refused_and_logged(world):
    assignment = RoleAssignment.objects.get(user=world.principal_a1)
    with pytest.raises(PermissionDenied):
        services.role_revoke(actor=world.school_admin_a2, assignment=assignment)  # another school's admin
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()
    assert log(services.ROLES_LOG, world.principal_a1, "denied").count() == 1


def test_an_admin_may_not_grant_themselves_a_role(world):
    with pytest.raises(PermissionDenied):
        services.role_grant(
            actor=world.school_admin_a1, user=world.school_admin_a1, role=Role.PRINCIPAL, node=world.school_a1
        )
    assert not RoleAssignment.objects.filter(user=world.school_admin_a1, role=Role.PRINCIPAL).exists()


def test_a_district_auditor_with_a_temporary_password_may_still_choose_their_own(client, world):
    auditor = world.auditor_district_a  # auditors post nothing else (roster.audit.ReadOnlyAuditorsMiddleware)
    auditor.set_password(ADMIN_TYPED)
    auditor.must_change_password = True
    auditor.save()
    assert sign_in(client, "auditor_district_a", ADMIN_TYPED).status_code == 302
    change = reverse("password_change_required")
    done = client.post(
        change, {"old_password": ADMIN_TYPED, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert reloaded(auditor).check_password(NEW_PASSWORD) and not reloaded(auditor).must_change_password
