"""Password rules of our own (settings.AUTH_PASSWORD_VALIDATORS), beside Django's length and common-password checks.

May import: roster only.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from roster.models import City, District, RoleAssignment, School

# Generic endings of Chinese place and school names: "东湖第一中学" is also guessed as "东湖".
_NAME_SUFFIXES = ("第一中学", "第二中学", "中学", "小学", "学校", "校区", "市", "区", "县")
MIN_WORD_LENGTH = 2


def _name_forms(name: str) -> set[str]:
    forms = {name.strip()}
    for suffix in _NAME_SUFFIXES:
        if name.endswith(suffix):
            forms.add(name[: -len(suffix)].strip())
    return forms


class ContextWordsValidator:
    """Refuses a password containing, in any letter case, a word of the person's context: the names and codes of
    their school, district and city (those of their employing school and of every role they hold), and the words of
    this system (`words`, e.g. "xinqiao"). Such words are the first an attacker who knows the place tries."""

    def __init__(self, words: list[str] | tuple[str, ...] = ()):
        self.words = tuple(words)

    def context_words(self, user=None) -> set[str]:
        words = set(self.words)
        if user is None:
            return words
        school_ids, district_ids, city_ids = set(), set(), set()
        if getattr(user, "school_id", None):
            school_ids.add(user.school_id)
        if user.pk is not None:
            for school_id, class_school_id, district_id, city_id in RoleAssignment.objects.filter(
                user_id=user.pk
            ).values_list("school_id", "school_class__school_id", "district_id", "city_id"):
                school_ids |= {school_id, class_school_id} - {None}
                district_ids |= {district_id} - {None}
                city_ids |= {city_id} - {None}
        if not (school_ids or district_ids or city_ids):
            return words
        schools = School.objects.filter(pk__in=school_ids)
        for name, campus, code in schools.values_list("name", "campus", "code"):
            words |= _name_forms(name) | {campus, code}
        districts = District.objects.filter(Q(pk__in=district_ids) | Q(schools__in=school_ids)).distinct()
        for name, code, city_id in districts.values_list("name", "division_code", "city_id"):
            words |= _name_forms(name) | {code}
            city_ids.add(city_id)
        for name, code in City.objects.filter(pk__in=city_ids).values_list("name", "division_code"):
            words |= _name_forms(name) | {code}
        return words

    def validate(self, password: str, user=None) -> None:
        folded = password.casefold()
        found = sorted(
            (w for w in self.context_words(user) if len(w) >= MIN_WORD_LENGTH and w.casefold() in folded),
            key=lambda w: (-len(w), w),
        )
        if found:
            raise ValidationError(
                _(
                    "This password contains “%(word)s”, a name or code of your school, district or city or of this "
                    "system. Such words are the first an attacker tries: choose a password without them."
                ),
                code="password_has_context_word",
                params={"word": found[0]},
            )

    def get_help_text(self) -> str:
        return _(
            "Your password can’t contain the name or code of your school, district or city, nor the name of this "
            "system."
        )
