import factory
from factory.django import DjangoModelFactory

from roster import services
from roster.models import City, District, Gender, School, SchoolClass, Student, User


class CityFactory(DjangoModelFactory):
    class Meta:
        model = City

    name = factory.Sequence(lambda n: f"测试市{n}")
    division_code = factory.Sequence(lambda n: f"98{n:02d}00")


class DistrictFactory(DjangoModelFactory):
    class Meta:
        model = District

    city = factory.SubFactory(CityFactory)
    name = factory.Sequence(lambda n: f"测试区{n}")
    division_code = factory.Sequence(lambda n: f"97{n:04d}")


class SchoolFactory(DjangoModelFactory):
    class Meta:
        model = School

    district = factory.SubFactory(DistrictFactory)
    code = factory.LazyAttributeSequence(lambda o, n: f"{o.district.division_code}{n:04d}")
    name = factory.Sequence(lambda n: f"测试学校{n}")


class SchoolClassFactory(DjangoModelFactory):
    class Meta:
        model = SchoolClass

    school = factory.SubFactory(SchoolFactory)
    grade = 7
    number = factory.Sequence(lambda n: n + 1)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    name = factory.Sequence(lambda n: f"教师{n}号")
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    password = factory.django.Password("a-long-test-password")


class StudentFactory(DjangoModelFactory):
    class Meta:
        model = Student

    school_class = factory.SubFactory(SchoolClassFactory)
    school = factory.SelfAttribute("school_class.school")
    student_no = factory.Sequence(lambda n: f"2026{n:06d}")
    name = factory.Sequence(lambda n: f"王小{n}")
    gender = Gender.FEMALE
    guardian_name = "王大明"
    guardian_phone = "13812341234"


def staff_with_role(role: str, node, **user_fields) -> User:
    """A staff member holding `role` at `node`, granted the way the system grants it."""
    user = UserFactory(**user_fields)
    services.role_grant(actor=None, user=user, role=role, node=node)
    return user
