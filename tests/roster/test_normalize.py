"""Cell parsers for roster imports: every accepted spelling, and a message naming the cell for every refused one."""

import datetime

import pytest
from django.utils import translation

from roster.normalize import (
    CellError,
    clean_digits,
    clean_identifier,
    clean_phone,
    clean_text,
    normalize_header,
    parse_choice,
    parse_class_number,
    parse_date,
    parse_gender,
    parse_grade,
    parse_special_groups,
)

VOCABULARY = {
    "留守儿童": "left_behind",
    "left_behind": "left_behind",
    "单亲家庭": "single_parent",
    "single_parent": "single_parent",
    "低保家庭": "low_income",
    "low_income": "low_income",
}
STATUS_CHOICES = {"在读": "active", "Active": "active", "转出": "transferred", "Transferred": "transferred"}
TODAY = datetime.date.today()


@pytest.fixture(autouse=True)
def english():
    # Messages are asserted against their English source, whatever catalog is compiled later.
    with translation.override("en"):
        yield


def refused(parse, value, **kwargs) -> str:
    with pytest.raises(CellError) as caught:
        parse(value, **kwargs)
    return str(caught.value)


# --- CellError and blanks ----------------------------------------------------------------------------------------


def test_cell_error_is_a_value_error_carrying_its_message():
    error = CellError("bad cell")
    assert isinstance(error, ValueError)
    assert error.message == "bad cell"
    assert error.args == ("bad cell",)
    assert str(error) == "bad cell"


def test_cell_error_keeps_a_lazy_message_lazy():
    error = pytest.raises(CellError, parse_grade, None).value
    assert not isinstance(error.message, str)  # a gettext_lazy proxy, rendered in the reader's language
    assert str(error.message) == "Required: this cell is empty."


BLANKS = [None, "", "   ", "\t\n", "\u3000", "\u00a0", "\ufeff", "\u200b", float("nan")]
PARSERS_AND_EMPTY_VALUES = [
    (clean_text, ""),
    (clean_digits, None),
    (clean_identifier, None),
    (clean_phone, ""),
    (parse_grade, None),
    (parse_class_number, None),
    (parse_gender, None),
    (parse_date, None),
    (lambda value, **kw: parse_choice(value, choices=STATUS_CHOICES, **kw), None),
]


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize(("parse", "empty"), PARSERS_AND_EMPTY_VALUES)
def test_a_blank_cell_is_refused_when_required(parse, empty, blank):
    assert refused(parse, blank, required=True) == "Required: this cell is empty."


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize(("parse", "empty"), PARSERS_AND_EMPTY_VALUES)
def test_a_blank_cell_is_empty_when_optional(parse, empty, blank):
    assert parse(blank, required=False) == empty


@pytest.mark.parametrize(
    ("parse", "required"),
    [
        (clean_text, True),
        (clean_digits, True),
        (clean_identifier, True),
        (clean_phone, False),
        (parse_grade, True),
        (parse_class_number, True),
        (parse_gender, True),
        (parse_date, False),
    ],
)
def test_required_defaults(parse, required):
    if required:
        assert refused(parse, None) == "Required: this cell is empty."
    else:
        assert parse(None) in ("", None)


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_special_groups_cell_is_no_groups(blank):
    assert parse_special_groups(blank, vocabulary=VOCABULARY) == []


# --- clean_text ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("王小明", "王小明"),
        ("  王小明  ", "王小明"),
        ("王\u3000小明", "王 小明"),
        ("王\u00a0\u00a0小明", "王 小明"),
        ("Li   Lei\n\tJr", "Li Lei Jr"),
        ("ＡＢＣ１２３", "ABC123"),
        ("（备注）：无！", "(备注):无!"),
        ("～", "~"),
        ("\ufeff东湖第一中学", "东湖第一中学"),
        ("全角\u3000空格\u3000", "全角 空格"),
        ("、。", "、。"),  # CJK punctuation outside the full-width ASCII block is kept
        (12, "12"),
        (12.0, "12"),
        (12.5, "12.5"),
        (datetime.date(2012, 3, 5), "2012-03-05"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_clean_text_allows_exactly_max_length():
    assert clean_text(" 一二三四五 ", max_length=5) == "一二三四五"


def test_clean_text_counts_length_after_cleaning():
    assert clean_text("王\u3000\u3000小明", max_length=4) == "王 小明"


def test_clean_text_refuses_too_long():
    message = refused(clean_text, "一二三四五六", max_length=5)
    assert "一二三四五六" in message
    assert "6" in message and "5" in message


# --- clean_digits ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("9901010001", "9901010001"),
        (" 9901010001 ", "9901010001"),
        ("9901 0100 01", "9901010001"),
        ("9901\u30000100\u00a001", "9901010001"),
        ("９９０１０１０００１", "9901010001"),
        (9901010001, "9901010001"),
        (9901010001.0, "9901010001"),
        ("0101", "0101"),  # leading zeros of a text cell survive
        (0, "0"),
    ],
)
def test_clean_digits(raw, clean):
    assert clean_digits(raw) == clean


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("99010A0001", "99010A0001"),
        ("9901-010001", "9901-010001"),
        ("9.90101E+09", "9.90101E+09"),
        (9901.5, "9901.5"),
        (-12, "-12"),
        ("一二三", "一二三"),
        ("١٢٣", "١٢٣"),  # Arabic-Indic digits are digits to Python, not to a code
    ],
)
def test_clean_digits_refuses_non_digits(raw, shown):
    message = refused(clean_digits, raw)
    assert shown in message
    assert "digits only" in message


def test_clean_digits_checks_the_length():
    assert clean_digits("990101", length=6) == "990101"
    message = refused(clean_digits, "99010", length=6)
    assert "99010" in message and "6 digits" in message


def test_clean_digits_names_the_field_when_given_a_label():
    assert refused(clean_digits, "12x", label="School code").startswith("School code: “12x”")
    assert refused(clean_digits, "123", length=10, label="School code").startswith("School code: “123”")


def test_clean_digits_refuses_a_float_that_excel_has_rounded():
    message = refused(clean_digits, 110101199001011234.0)
    assert "1.10101199001011e+17" in message
    assert "15 digits" in message


# --- clean_identifier ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("20210601", "20210601"),
        (20210601, "20210601"),
        (20210601.0, "20210601"),
        (" S2021 0601 ", "S20210601"),
        ("ｓ２０２１－０６０１", "s2021-0601"),
        ("T_001", "T_001"),
        ("ab-CD_12", "ab-CD_12"),
        ("007", "007"),
    ],
)
def test_clean_identifier(raw, clean):
    assert clean_identifier(raw) == clean


@pytest.mark.parametrize("raw", ["2021/0601", "学号1", "2021.0601", "S#1", "a+b", 2021.5, "2021—0601"])
def test_clean_identifier_refuses_other_characters(raw):
    message = refused(clean_identifier, raw)
    assert str(raw) in message
    assert "letters, digits" in message


def test_clean_identifier_max_length():
    assert clean_identifier("A" * 32) == "A" * 32
    assert clean_identifier("AB CD", max_length=4) == "ABCD"
    message = refused(clean_identifier, "A" * 33)
    assert "33" in message and "32" in message
    assert "8 characters, at most 6" in refused(clean_identifier, "12345678", max_length=6)


def test_clean_identifier_refuses_a_float_that_excel_has_rounded():
    assert "15 digits" in refused(clean_identifier, 1.2345678901234567e18)


# --- clean_phone -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("13800138000", "13800138000"),
        (13800138000, "13800138000"),
        (13800138000.0, "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+86-13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("(+86) 138 0013 8000", "13800138000"),
        ("010-12345678", "01012345678"),
        ("(010)12345678", "01012345678"),
        ("（0755）8888 6666", "075588886666"),
        ("0755-8888666", "07558888666"),
        ("1234567", "1234567"),
        ("８８８６６６６", "8886666"),
    ],
)
def test_clean_phone(raw, clean):
    assert clean_phone(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "123456",  # too short
        "1380013800012",  # 13 digits, not a country code in front
        "+1 415 555 0100",
        "138-0013-800x",
        "13800138000转123",
        "13800138000,13900139000",
        "电话",
        "1.38e10",
    ],
)
def test_clean_phone_refuses(raw):
    message = refused(clean_phone, raw)
    assert raw in message
    assert "phone number" in message


# --- parse_grade -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "grade"),
    [
        (4, 4),
        (4.0, 4),
        (1, 1),
        (12, 12),
        ("4", 4),
        ("04", 4),
        ("4.0", 4),
        (" 4 ", 4),
        ("4年级", 4),
        ("4 年级", 4),
        ("４年级", 4),
        ("１２", 12),
        ("四年级", 4),
        ("一年级", 1),
        ("二年级", 2),
        ("三年级", 3),
        ("五年级", 5),
        ("六年级", 6),
        ("七年级", 7),
        ("八年级", 8),
        ("九年级", 9),
        ("十年级", 10),
        ("十一年级", 11),
        ("十二年级", 12),
        ("四", 4),
        ("小学四年级", 4),
        ("小学6年级", 6),
        ("初一", 7),
        ("初二", 8),
        ("初三", 9),
        ("初 一", 7),
        ("初1", 7),
        ("初中一年级", 7),
        ("初二年级", 8),
        ("高一", 10),
        ("高二", 11),
        ("高三", 12),
        ("高中三年级", 12),
        ("Grade 4", 4),
        ("grade 12", 12),
        ("GRADE4", 4),
        ("G4", 4),
        ("g 10", 10),
        ("Ｇ４", 4),
        ("Gr. 7", 7),
    ],
)
def test_parse_grade(raw, grade):
    assert parse_grade(raw) == grade


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (0, "0"),
        (13, "13"),
        (-1, "-1"),
        (4.5, "4.5"),
        ("0", "0"),
        ("13", "13"),
        ("十三年级", "十三年级"),
        ("零年级", "零年级"),
        ("初四", "初四"),
        ("高四", "高四"),
        ("小学七年级", "小学七年级"),
        ("2021级", "2021级"),  # an enrolment cohort, not a grade
        ("七年级3班", "七年级3班"),
        ("Grade", "Grade"),
        ("四五年级", "四五年级"),
        ("grade 4.5", "grade 4.5"),
        ("abc", "abc"),
        (True, "True"),
        (datetime.date(2012, 3, 5), "2012-03-05"),
    ],
)
def test_parse_grade_refuses(raw, shown):
    message = refused(parse_grade, raw)
    assert f"“{shown}” is not a grade" in message


def test_a_refused_huge_cell_is_shortened_in_the_message():
    message = refused(parse_grade, "年" * 500)
    assert "…" in message
    assert len(message) < 200


# --- parse_class_number ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (3, 3),
        (3.0, 3),
        ("3", 3),
        ("03", 3),
        ("3.0", 3),
        ("3班", 3),
        ("3 班", 3),
        (" 3班 ", 3),
        ("(3)班", 3),
        ("（3）班", 3),
        ("（３）班", 3),
        ("(3)", 3),
        ("三班", 3),
        ("十班", 10),
        ("十二班", 12),
        ("二十三班", 23),
        ("第3班", 3),
        ("第三班", 3),
        (99, 99),
    ],
)
def test_parse_class_number(raw, number):
    assert parse_class_number(raw) == number


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (0, "0"),
        ("0", "0"),
        ("00班", "00班"),
        (-3, "-3"),
        (3.5, "3.5"),
        (100, "100"),
        ("701班", "701班"),  # grade and class run together
        ("7(3)班", "7(3)班"),
        ("3-1", "3-1"),
        ("A班", "A班"),
        ("班", "班"),
        ("(3班", "(3班"),
        ("三四班", "三四班"),
        (True, "True"),
    ],
)
def test_parse_class_number_refuses(raw, shown):
    assert f"“{shown}” is not a class number" in refused(parse_class_number, raw)


# --- parse_gender ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "gender"),
    [
        ("男", "M"),
        (" 男 ", "M"),
        ("男性", "M"),
        ("男生", "M"),
        ("M", "M"),
        ("m", "M"),
        ("Ｍ", "M"),
        ("Male", "M"),
        ("MALE", "M"),
        ("male", "M"),
        (1, "M"),
        (1.0, "M"),
        ("1", "M"),
        ("女", "F"),
        ("女性", "F"),
        ("女生", "F"),
        ("F", "F"),
        ("f", "F"),
        ("Female", "F"),
        ("FEMALE", "F"),
        (2, "F"),
        (2.0, "F"),
        ("2", "F"),
        ("２", "F"),
    ],
)
def test_parse_gender(raw, gender):
    assert parse_gender(raw) == gender


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("0", "0"),  # GB/T 2261.1 "unknown"
        (9, "9"),  # GB/T 2261.1 "unstated"
        (3, "3"),
        ("男女", "男女"),
        ("boy", "boy"),
        ("X", "X"),
        (1.5, "1.5"),
        (True, "True"),
    ],
)
def test_parse_gender_refuses(raw, shown):
    assert f"“{shown}” is not a gender" in refused(parse_gender, raw)


# --- parse_date ------------------------------------------------------------------------------------------------------

MARCH_5 = datetime.date(2012, 3, 5)


@pytest.mark.parametrize(
    "raw",
    [
        datetime.date(2012, 3, 5),
        datetime.datetime(2012, 3, 5),
        datetime.datetime(2012, 3, 5, 23, 59),
        "2012-03-05",
        "2012-3-5",
        "2012/3/5",
        "2012/03/05",
        "2012.3.5",
        "2012.03.05",
        "2012年3月5日",
        "2012年03月05日",
        "2012年3月5",
        "2012年3月5号",
        "20120305",
        " 2012 - 03 - 05 ",
        "2012 年 3 月 5 日",
        "２０１２－０３－０５",
        "２０１２年３月５日",
        "２０１２／３／５",
        "2012-03-05 00:00:00",
        "2012-03-05T00:00:00",
        "2012/3/5 8:30",
        40973,
        40973.0,
        40973.75,  # a date-time serial; the time is dropped
        20120305,
        20120305.0,
    ],
)
def test_parse_date(raw):
    assert parse_date(raw) == MARCH_5


def test_parse_date_excel_serial_bounds():
    assert parse_date(1) == datetime.date(1900, 1, 1)
    assert parse_date(59) == datetime.date(1900, 2, 28)
    assert parse_date(61) == datetime.date(1900, 3, 1)
    assert parse_date(45658) == datetime.date(2025, 1, 1)
    assert parse_date(80000) == datetime.date(2119, 1, 11)


def test_parse_date_refuses_excels_fictitious_leap_day():
    assert "“60” is not a valid calendar date" in refused(parse_date, 60)


@pytest.mark.parametrize(
    "raw",
    ["2012-02-30", "2011-02-29", "2012-13-01", "2012-00-10", "2012年4月31日", "20120230", 20121301, "2012/3/0"],
)
def test_parse_date_refuses_impossible_dates(raw):
    message = refused(parse_date, raw)
    assert f"“{raw}” is not a valid calendar date" in message


def test_parse_date_accepts_a_leap_day():
    assert parse_date("2012-02-29") == datetime.date(2012, 2, 29)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("3/5/2012", "3/5/2012"),  # month and day order is ambiguous
        ("12-3-5", "12-3-5"),
        ("2012-03", "2012-03"),
        ("2012年3月", "2012年3月"),
        ("201235", "201235"),
        ("二〇一二年三月五日", "二〇一二年三月五日"),
        ("March 5, 2012", "March 5, 2012"),
        ("40973", "40973"),  # a serial number is only trusted from a numeric cell
        ("yesterday", "yesterday"),
        (0, "0"),
        (-5, "-5"),
        (80001, "80001"),
        (123456, "123456"),
        (True, "True"),
        (datetime.time(8, 30), "08:30:00"),
    ],
)
def test_parse_date_refuses_other_formats(raw, shown):
    assert f"“{shown}” is not a date" in refused(parse_date, raw)


@pytest.mark.parametrize(
    "raw",
    [datetime.date(1990, 1, 1), "1990-01-01", MARCH_5, TODAY, datetime.datetime.combine(TODAY, datetime.time(12))],
)
def test_a_plausible_birth_date(raw):
    assert parse_date(raw, plausible_birth=True) in (datetime.date(1990, 1, 1), MARCH_5, TODAY)


@pytest.mark.parametrize(
    "raw",
    ["1989-12-31", datetime.date(1900, 1, 1), 1, TODAY + datetime.timedelta(days=2), "2999-01-01"],
)
def test_an_implausible_birth_date(raw):
    message = refused(parse_date, raw, plausible_birth=True)
    assert "not a plausible date of birth" in message
    assert "1990-01-01" in message


def test_parse_date_is_generic_without_plausible_birth():
    assert parse_date("1960-05-01") == datetime.date(1960, 5, 1)
    assert parse_date("2999-01-01") == datetime.date(2999, 1, 1)


# --- parse_special_groups --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        ("留守儿童", ["left_behind"]),
        ("留守儿童、单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童;单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童；单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童，单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童,单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童/单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童／单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童 单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童\n单亲家庭", ["left_behind", "single_parent"]),
        ("留守儿童\u3000单亲家庭", ["left_behind", "single_parent"]),
        (" 留守儿童 、 单亲家庭 、", ["left_behind", "single_parent"]),
        ("、、留守儿童,,;单亲家庭", ["left_behind", "single_parent"]),
        ("单亲家庭、留守儿童", ["single_parent", "left_behind"]),  # first-seen order
        ("留守儿童、留守儿童、left_behind", ["left_behind"]),
        ("left_behind", ["left_behind"]),
        ("LEFT_BEHIND, Single_Parent", ["left_behind", "single_parent"]),
        ("ｌｅｆｔ＿ｂｅｈｉｎｄ", ["left_behind"]),
        ("留守儿童、低保家庭、单亲家庭", ["left_behind", "low_income", "single_parent"]),
    ],
)
def test_parse_special_groups(raw, codes):
    assert parse_special_groups(raw, vocabulary=VOCABULARY) == codes


def test_parse_special_groups_lists_every_unknown_value_and_the_allowed_names():
    message = refused(parse_special_groups, "留守儿童、孤儿、贫困；孤儿", vocabulary=VOCABULARY)
    assert "“孤儿”" in message and "“贫困”" in message
    assert message.count("孤儿") == 1
    assert "“留守儿童”" not in message.split("Allowed")[0]
    assert "留守儿童、单亲家庭、低保家庭" in message
    assert "left_behind" not in message  # the allowed list shows the Chinese names people type


def test_parse_special_groups_refuses_a_number():
    assert "“1”" in refused(parse_special_groups, 1, vocabulary=VOCABULARY)


def test_parse_special_groups_with_an_english_only_vocabulary_lists_its_codes():
    assert "orphan" in refused(parse_special_groups, "x", vocabulary={"orphan": "orphan"})


# --- parse_choice ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("在读", "active"),
        (" 在读 ", "active"),
        ("在 读", "active"),
        ("Active", "active"),
        ("active", "active"),
        ("ACTIVE", "active"),
        ("ＡＣＴＩＶＥ", "active"),
        ("转出", "transferred"),
        ("transferred", "transferred"),
    ],
)
def test_parse_choice(raw, stored):
    assert parse_choice(raw, choices=STATUS_CHOICES) == stored


def test_parse_choice_matches_numeric_labels_from_excel():
    choices = {"1": "yes", "0": "no"}
    assert parse_choice(1, choices=choices) == "yes"
    assert parse_choice(0.0, choices=choices) == "no"


@pytest.mark.parametrize("raw", ["毕业", "act", "在读中", "2"])
def test_parse_choice_refuses_unknown_labels_listing_the_allowed_ones(raw):
    message = refused(parse_choice, raw, choices=STATUS_CHOICES)
    assert f"“{raw}” is not one of" in message
    assert all(label in message for label in STATUS_CHOICES)


# --- normalize_header ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "header"),
    [
        ("姓名", "姓名"),
        (" 姓名 ", "姓名"),
        ("姓 名", "姓名"),
        ("姓\u3000名", "姓名"),
        ("\ufeff学号", "学号"),
        ("姓名*", "姓名"),
        ("姓名＊", "姓名"),
        ("姓名 *", "姓名"),
        ("*姓名", "姓名"),
        ("出生日期(yyyy-mm-dd)", "出生日期"),
        ("出生日期（yyyy-mm-dd）", "出生日期"),
        ("手机号（选填）", "手机号"),
        ("手机号 (选填)", "手机号"),
        ("手机号(选填)*", "手机号"),
        ("学号*(必填)", "学号"),
        ("出生日期\n(yyyy-mm-dd)", "出生日期"),
        ("Student No", "studentno"),
        ("STUDENT_NO", "student_no"),
        ("Ｇｅｎｄｅｒ", "gender"),
        ("(备注)", ""),
        ("家长(监护人)电话", "家长(监护人)电话"),  # only a trailing hint is dropped
        (None, ""),
        ("", ""),
        (2024, "2024"),
    ],
)
def test_normalize_header(raw, header):
    assert normalize_header(raw) == header
