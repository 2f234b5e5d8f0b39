"""Notifications: each person sees and reads only their own; the same event notifies once; red alerts stand out."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from roster.models import Notification
from roster.notifications import (
    notification_emails_send,
    notification_mark_read,
    notification_unread_counts,
    notifications_for,
    notify,
)


def _notify(recipients, key="case:1", **fields):
    defaults = {"kind": "test", "title": f"About {key}", "body": "Some text", "link": "/somewhere/", "subject_key": key}
    return notify(recipients, **{**defaults, **fields})


# --- The service ------------------------------------------------------------------------------------------------


def test_the_same_event_notifies_each_recipient_once(world):
    assert _notify([world.counselor_a1, world.principal_a1]) == 2
    assert _notify([world.counselor_a1.pk, world.principal_a1, world.centre_district_a]) == 1
    assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == [
        "centre_district_a",
        "counselor_a1",
        "principal_a1",
    ]
    assert _notify([world.counselor_a1], key="case:2") == 1  # another subject is another notification
    assert _notify([world.counselor_a1], key="case:2", kind="other") == 1  # and so is another kind


def test_nobody_to_notify_writes_nothing(world):
    assert _notify([]) == 0 and not Notification.objects.exists()


@pytest.mark.parametrize("link", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", "/\\evil"])
def test_a_link_off_the_site_is_refused(world, link):
    with pytest.raises(ValueError):
        _notify([world.counselor_a1], link=link)
    assert not Notification.objects.exists()


def test_emails_go_once_to_recipients_with_an_address(world):
    world.counselor_a1.email = "counselor@example.edu.cn"
    world.counselor_a1.save(update_fields=["email"])
    _notify([world.counselor_a1, world.principal_a1])  # the principal has no address
    send = {"kind": "test", "subject_key": "case:1", "subject": "Subject", "body": "Body"}
    assert notification_emails_send(**send) == 1
    assert notification_emails_send(**send) == 0
    assert [m.to for m in mail.outbox] == [["counselor@example.edu.cn"]]
    assert Notification.objects.get(recipient=world.counselor_a1).emailed_at is not None


def test_marking_read_is_for_the_recipient_only(world):
    _notify([world.counselor_a1])
    mine = Notification.objects.get()
    with pytest.raises(Notification.DoesNotExist):
        notification_mark_read(world.principal_a1, mine.pk)
    assert Notification.objects.get().read_at is None
    assert notification_mark_read(world.counselor_a1, mine.pk).read_at is not None
    assert notification_unread_counts(world.counselor_a1) == {"total": 0, "urgent": 0}


# --- The page -----------------------------------------------------------------------------------------------------


def test_the_page_lists_only_my_notifications_newest_first(client, world):
    _notify([world.counselor_a1], key="case:1", title="Older one")
    _notify([world.counselor_a1], key="case:2", title="Newer one")
    _notify([world.principal_a1], key="case:3", title="The principal's")
    client.force_login(world.counselor_a1)
    response = client.get(reverse("notifications"))
    page = response.content.decode()
    assert [n.title for n in response.context["page"]] == ["Newer one", "Older one"]
    assert "The principal&#x27;s" not in page and "The principal's" not in page
    assert page.index("Newer one") < page.index("Older one")


def test_unread_notifications_are_highlighted_and_red_alerts_stand_out(client, world):
    _notify([world.counselor_a1], key="case:1", title="Plain")
    _notify([world.counselor_a1], key="case:2", title="Alert", urgent=True)
    client.force_login(world.counselor_a1)
    page = client.get(reverse("notifications")).content.decode()
    assert page.count('class="notification unread"') == 1
    assert page.count('class="notification unread urgent"') == 1
    assert 'class="notifications-link urgent"' in page and '<span class="badge">2<' in page


def test_opening_a_notification_marks_it_read_and_follows_its_link(client, world):
    _notify([world.counselor_a1], link="/screening/campaigns/1/proctor/")
    notification = Notification.objects.get()
    client.force_login(world.counselor_a1)
    response = client.post(reverse("notification_read", args=[notification.pk]))
    assert (response.status_code, response.url) == (302, "/screening/campaigns/1/proctor/")
    notification.refresh_from_db()
    assert notification.read_at is not None
    page = client.get(reverse("notifications")).content.decode()
    assert "notification unread" not in page and 'class="badge"' not in page


def test_a_notification_without_a_link_returns_to_the_list(client, world):
    _notify([world.counselor_a1], link="")
    client.force_login(world.counselor_a1)
    response = client.post(reverse("notification_read", args=[Notification.objects.get().pk]))
    assert response.url == reverse("notifications")


def test_someone_elses_notification_cannot_be_read_or_marked(client, world):
    _notify([world.principal_a1])
    theirs = Notification.objects.get()
    client.force_login(world.counselor_a1)
    assert client.post(reverse("notification_read", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("notification_read", args=[theirs.pk])).status_code == 405
    client.post(reverse("notifications_read_all"))
    assert Notification.objects.get().read_at is None


def test_mark_all_read(client, world):
    for n in range(3):
        _notify([world.counselor_a1], key=f"case:{n}")
    client.force_login(world.counselor_a1)
    assert client.post(reverse("notifications_read_all")).status_code == 302
    assert not notifications_for(world.counselor_a1).filter(read_at__isnull=True).exists()


def test_the_top_bar_shows_my_unread_count(client, world):
    _notify([world.counselor_a1, world.principal_a1], key="case:1")
    _notify([world.counselor_a1], key="case:2")
    client.force_login(world.counselor_a1)
    page = client.get(reverse("home")).content.decode()
    assert '<span class="badge">2<' in page and 'class="notifications-link"' in page


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_page_query_count_does_not_grow_with_the_notifications(client, world):
    client.force_login(world.counselor_a1)
    _notify([world.counselor_a1], key="case:0")
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("notifications"))
    for n in range(1, 40):
        _notify([world.counselor_a1], key=f"case:{n}", urgent=bool(n % 2))
    with CaptureQueriesContext(connection) as large:
        response = client.get(reverse("notifications"))
    assert len(response.context["page"]) == 40
    # With the access-log entry: 4 queries on SQLite, 5 on PostgreSQL (the chain head is locked).
    assert len(large.captured_queries) == len(small.captured_queries) <= 11
