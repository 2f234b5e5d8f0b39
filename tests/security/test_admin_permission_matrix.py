"""Who can list, open and change what in the admin: every persona × every object of the tree, on both databases.

Read each row as: persona → {model: (objects they see, objects they may change)}. Everything else must be
invisible: absent from the list, 404 on its page (the same answer as a missing object), and a forged POST
changes nothing. Personas without an admin role (principal, teachers, nobody) get 403 on every admin page.
"""

import pytest
from django.urls import reverse

OBJECTS = {
    "city": ["city", "other_city"],
    "district": ["district_a", "district_b", "district_x"],
    "school": ["school_a1", "school_a2", "school_b1", "school_x1"],
    "schoolclass": ["class_a1_3", "class_a1_5", "class_a2", "class_b1", "class_x"],
    "student": ["student_a1_3", "student_a1_5", "student_a2", "student_b1", "student_x"],
    "user": [
        "superuser", "nobody", "city_admin", "city_centre", "city_admin_x", "admin_district_a",
        "centre_district_a", "auditor_district_a", "admin_district_b", "school_admin_a1", "principal_a1",
        "counselor_a1", "homeroom_a1_3", "school_admin_a2", "counselor_a2", "school_admin_b1",
    ],
}  # fmt: skip
EDITED_FIELD = {"city": "name", "district": "name", "school": "name", "schoolclass": "number", "student": "name",
                "user": "name"}  # fmt: skip

STAFF_A1 = {"school_admin_a1", "principal_a1", "counselor_a1", "homeroom_a1_3"}
STAFF_A = STAFF_A1 | {
    "admin_district_a",
    "centre_district_a",
    "auditor_district_a",
    "school_admin_a2",
    "counselor_a2",
}
STAFF_C = STAFF_A | {"city_admin", "city_centre", "admin_district_b", "school_admin_b1"}
IN_C = {
    "city": {"city"},
    "district": {"district_a", "district_b"},
    "school": {"school_a1", "school_a2", "school_b1"},
    "schoolclass": {"class_a1_3", "class_a1_5", "class_a2", "class_b1"},
    "student": {"student_a1_3", "student_a1_5", "student_a2", "student_b1"},
    "user": STAFF_C,
}
IN_A = {
    "city": set(),  # parent scope: not theirs
    "district": {"district_a"},
    "school": {"school_a1", "school_a2"},
    "schoolclass": {"class_a1_3", "class_a1_5", "class_a2"},
    "student": {"student_a1_3", "student_a1_5", "student_a2"},
    "user": STAFF_A,
}
IN_A1 = {
    "city": set(),
    "district": set(),  # parent scope
    "school": {"school_a1"},
    "schoolclass": {"class_a1_3", "class_a1_5"},
    "student": {"student_a1_3", "student_a1_5"},
    "user": STAFF_A1,
}
ALL = {model: set(names) for model, names in OBJECTS.items()}
NOTHING: dict[str, set[str]] = {model: set() for model in OBJECTS}

# persona → (visible, changeable); None = no admin access at all (403).
EXPECTED = {
    "superuser": (ALL, ALL),
    "city_admin": (IN_C, {**NOTHING, "district": {"district_a", "district_b"},
                          "school": {"school_a1", "school_a2", "school_b1"},
                          "user": {"city_centre", "admin_district_a", "admin_district_b"}}),
    "city_centre": (IN_C, NOTHING),
    "admin_district_a": (IN_A, {**NOTHING, "school": {"school_a1", "school_a2"},
                                "user": {"centre_district_a", "auditor_district_a", "school_admin_a1",
                                         "school_admin_a2"}}),
    "centre_district_a": (IN_A, NOTHING),
    "auditor_district_a": (IN_A, NOTHING),
    "school_admin_a1": (IN_A1, {**NOTHING, "schoolclass": {"class_a1_3", "class_a1_5"},
                                "student": {"student_a1_3", "student_a1_5"},
                                "user": {"principal_a1", "counselor_a1", "homeroom_a1_3"}}),
    "principal_a1": None,
    "counselor_a1": None,
    "homeroom_a1_3": None,
    "nobody": None,
}  # fmt: skip

CASES = [(persona, model) for persona in EXPECTED for model in OBJECTS]


def _url(name, obj=None):
    model = type(obj)._meta.model_name if obj is not None else None
    return reverse(name.format(model=model), args=[obj.pk] if obj is not None else None)


@pytest.mark.parametrize(("persona", "model"), CASES)
def test_changelist_shows_exactly_the_persona_scope(client, world, persona, model):
    client.force_login(getattr(world, persona))
    objects = {name: getattr(world, name) for name in OBJECTS[model]}
    url = reverse(f"admin:roster_{model}_changelist")
    response = client.get(url)
    if EXPECTED[persona] is None:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    listed = {obj.pk for obj in response.context["cl"].result_list}
    visible, _ = EXPECTED[persona]
    assert listed == {objects[name].pk for name in visible[model]}


@pytest.mark.parametrize(("persona", "model"), CASES)
def test_detail_page_opens_only_in_scope(client, world, persona, model):
    client.force_login(getattr(world, persona))
    for name in OBJECTS[model]:
        obj = getattr(world, name)
        response = client.get(reverse(f"admin:roster_{model}_change", args=[obj.pk]))
        history = client.get(reverse(f"admin:roster_{model}_history", args=[obj.pk]))
        if EXPECTED[persona] is None:
            expected = 403
        else:
            expected = 200 if name in EXPECTED[persona][0][model] else 404
        assert (response.status_code, history.status_code) == (expected, expected), f"{persona} opening {name}"


@pytest.mark.parametrize(("persona", "model"), CASES)
def test_change_succeeds_only_where_allowed(client, world, persona, model):
    from tests.admin_forms import admin_change_data

    client.force_login(getattr(world, persona))
    field = EDITED_FIELD[model]
    for name in OBJECTS[model]:
        obj = getattr(world, name)
        url = reverse(f"admin:roster_{model}_change", args=[obj.pk])
        before = getattr(type(obj).objects.get(pk=obj.pk), field)
        new_value = before + 100 if isinstance(before, int) else f"{before}改"
        expectation = EXPECTED[persona]
        if expectation is not None and name in expectation[1][model]:
            data = admin_change_data(client.get(url))
            data[field] = new_value
            response = client.post(url, data)
            assert response.status_code == 302, (
                f"{persona} changing {name}: {response.context and response.context['errors']}"
            )
            assert getattr(type(obj).objects.get(pk=obj.pk), field) == new_value
        else:
            response = client.post(url, {field: new_value})
            if expectation is None:
                expected = 403
            else:
                expected = 403 if name in expectation[0][model] else 404
            assert response.status_code == expected, f"{persona} changing {name}"
            assert getattr(type(obj).objects.get(pk=obj.pk), field) == before
