import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from roster import services
from roster.masking import mask_name, mask_phone


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("990101001", "必须为10位数字"),  # too short
        ("99010100011", "必须为10位数字"),  # too long
        ("99010100O1", "必须为10位数字"),  # a letter O, not a zero
        ("9902010001", "须以所属区县的行政区划代码 990101 开头"),  # another district's prefix
    ],
)
def test_a_bad_school_code_is_a_clear_validation_error(world, code, message):
    with translation.override("zh-hans"):
        with pytest.raises(ValidationError) as error:
            services.school_create(district=world.district_a, code=code, name="新学校")
        assert message in " ".join(error.value.message_dict["code"])  # (lazy: read in the language it names)


def test_a_good_school_code_is_accepted(world):
    school = services.school_create(district=world.district_a, code="9901010099", name="新学校")
    assert school.history.count() == 1


def test_the_school_code_rule_comes_from_settings(world, settings):
    settings.SCHOOL_CODE_RULE = {"length": 12, "division_prefix_length": 6}
    with pytest.raises(ValidationError):
        services.school_create(district=world.district_a, code="9901010099", name="新学校")
    assert services.school_create(district=world.district_a, code="990101000099", name="新学校").pk


def test_a_student_cannot_sit_in_another_schools_class(world):
    student = world.student_a1_3
    student.school_class = world.class_b1
    with pytest.raises(ValidationError):
        student.full_clean()


@pytest.mark.parametrize(
    ("name", "masked"), [("王小明", "王*明"), ("李明", "李*"), ("欧阳小明", "欧**明"), ("王", "王"), ("", "")]
)
def test_names_are_masked_in_lists(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize(("phone", "masked"), [("13812341234", "138****1234"), ("12345", "*****"), ("", "")])
def test_phones_are_masked_in_lists(phone, masked):
    assert mask_phone(phone) == masked


def test_an_unscoped_model_is_refused_rather_than_shown(world):
    from django.core.exceptions import ImproperlyConfigured

    from roster import scoping
    from roster.models import SpecialGroup

    with pytest.raises(ImproperlyConfigured):
        scoping.visible(world.principal_a1, SpecialGroup)
