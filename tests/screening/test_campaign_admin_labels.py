"""The campaign admin speaks Chinese (issue 18, item 7): the campaign's name is labelled as such (not 姓名), the
two-box school picker's JavaScript strings come from a Chinese catalog, and the admin index's hidden table header
(read by screen readers) is Chinese."""

import json
import re

from django.urls import reverse


def test_the_campaign_add_page_labels_the_name_as_the_campaigns(client, world):
    client.force_login(world.city_admin)
    response = client.get(reverse("admin:screening_campaign_add"))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<label[^>]*for="id_name"[^>]*>测评名称', html)
    assert not re.search(r'<label[^>]*for="id_name"[^>]*>姓名', html)


def test_the_admin_javascript_catalog_has_the_school_pickers_strings_in_chinese(client, world):
    client.force_login(world.city_admin)
    response = client.get(reverse("admin:jsi18n"))
    assert response.status_code == 200
    body = response.content.decode()
    catalog = json.loads(re.search(r"const newcatalog = (\{.*?\n  \});", body, re.S).group(1))
    assert catalog["Choose all"] == "全选"
    # The strings Django 5.2's SelectFilter2.js asks for, missing from Django's own zh_Hans catalog.
    for msgid in (
        'Choose %s by selecting them and then select the "Choose" arrow button.',
        "Choose all %s",
        "Choose selected %s",
        'Remove %s by selecting them and then select the "Remove" arrow button.',
        "Remove all %s",
        "Remove selected %s",
    ):
        assert "%s" in catalog[msgid] and not re.search(r"[A-Za-z]{2,}", catalog[msgid]), msgid
    # The two boxes' captions: Django's own "可用 %s" leaves a space before the school ("可用 学校").
    assert catalog["Available %s"] == "可选的%s" and catalog["Chosen %s"] == "已选的%s"


def test_a_schools_name_is_labelled_as_a_things_not_a_persons(client, world):
    """A person has a 姓名 ("name"); a school, a district or a special group has a 名称."""
    client.force_login(world.city_admin)
    response = client.get(reverse("admin:roster_school_change", args=[world.school_a1.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<label[^>]*for="id_name"[^>]*>名称', html)
    assert not re.search(r'<label[^>]*for="id_name"[^>]*>姓名', html)


def test_the_admin_index_has_no_english_hidden_header(client, world):
    client.force_login(world.city_admin)
    html = client.get(reverse("admin:index")).content.decode()
    hidden = re.findall(r'<thead class="visually-hidden">(.*?)</thead>', html, re.S)
    assert hidden
    headers = [text.strip() for block in hidden for text in re.findall(r"<th[^>]*>(.*?)</th>", block, re.S)]
    assert headers and not [text for text in headers if re.search(r"[A-Za-z]", text)]
    assert "模型名称" in headers
