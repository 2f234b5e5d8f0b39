"""Turn messy spreadsheet cells from Chinese school records systems into clean values.

This module owns the cell-level parsing for roster imports: text, codes, identifiers, phone numbers, grades, class
numbers, genders, dates, special groups, generic choices and column headers. It is pure: no ORM, no settings, no
I/O. Each parser takes the raw cell value as openpyxl (or a CSV reader) hands it over — str, int, float,
datetime.date/datetime.datetime or None — and returns the clean value or raises `CellError` with a message for the
person who filled in the sheet.
"""

import datetime
import math
import re

from django.utils.translation import gettext_lazy as _

__all__ = [
    "CellError",
    "clean_digits",
    "clean_identifier",
    "clean_phone",
    "clean_text",
    "normalize_header",
    "parse_choice",
    "parse_class_number",
    "parse_date",
    "parse_gender",
    "parse_grade",
    "parse_special_groups",
]

REQUIRED_MESSAGE = _("Required: this cell is empty.")

# Anything above this class number is far more likely a grade-and-class code such as 701 (初一1班) than a real class.
MAX_CLASS_NUMBER = 99
EARLIEST_BIRTH_DATE = datetime.date(1990, 1, 1)
# Excel's 1900 date system counts from 1899-12-30 from serial 61 on; below that its fictitious 1900-02-29 (serial 60,
# kept for Lotus 1-2-3 compatibility) shifts every serial by one day.
EXCEL_EPOCH = datetime.date(1899, 12, 30)
EXCEL_LEAP_BUG_SERIAL = 60
EXCEL_SERIAL_RANGE = (1, 80000)
# Excel keeps 15 significant digits, so a longer number typed into a numeric cell (an ID number, say) is already lost.
EXCEL_EXACT_DIGITS = 15

_SHOWN_CHARS = 40


class CellError(ValueError):
    """A cell that cannot be turned into a clean value; `message` is meant for the person who filled in the sheet."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


# --- shared helpers -----------------------------------------------------------------------------------------------

_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
# NUL too: PostgreSQL refuses it in any text column, and no one typed it on purpose.
_FOLD.update({0x3000: " ", 0x00A0: " ", 0xFEFF: None, 0x200B: None, 0x0000: None})
_WHITESPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    """Full-width ASCII to half-width, ideographic space and NBSP to space, BOM, zero-width space and NUL dropped."""
    return text.translate(_FOLD)


def _is_blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not _fold(value).strip()


def _blank(required: bool, empty):
    if required:
        raise CellError(REQUIRED_MESSAGE)
    return empty


def _is_number(value) -> bool:
    # bool is an int, but a TRUE/FALSE cell is never a number the user meant.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value) -> str:
    """The cell as the user would recognise it in a message, shortened if huge."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**EXCEL_EXACT_DIGITS:
        text = str(int(value))
    elif isinstance(value, datetime.datetime | datetime.date):
        text = value.isoformat()
    else:
        text = _WHITESPACE.sub(" ", str(value)).strip()
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _cell_text(value) -> str:
    """str(value), except that a whole-number float from Excel (4.0) reads as "4"."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**EXCEL_EXACT_DIGITS:
        return str(int(value))
    return str(value)


def _exact_number_text(value) -> str:
    """Digits of a numeric cell, refusing floats whose digits Excel has already rounded away."""
    if isinstance(value, float):
        if not value.is_integer():
            return str(value)
        if abs(value) >= 10**EXCEL_EXACT_DIGITS:
            raise CellError(
                _(
                    "“%(value)s” was stored as a number and Excel keeps only 15 digits; "
                    "format the column as text and type it again."
                )
                % {"value": f"{value:.15g}"}
            )
        return str(int(value))
    return str(value)


def _compact(value) -> str:
    """Folded text with every whitespace character removed."""
    text = _exact_number_text(value) if _is_number(value) else str(value)
    return _WHITESPACE.sub("", _fold(text))


def _too_long(value, length: int, max_length: int) -> CellError:
    return CellError(
        _("“%(value)s” is too long: %(length)d characters, at most %(max_length)d.")
        % {"value": _show(value), "length": length, "max_length": max_length}
    )


_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"^([一二两三四五六七八九])?(十)?([一二三四五六七八九])?$")
# "4.0" is what a CSV export makes of an Excel 4. A few digits at most: int() refuses a string of over 4,300 digits.
_ARABIC_NUMBER = re.compile(r"^0*(\d{1,9})(?:\.0+)?$")


def _small_int(token: str) -> int | None:
    """1..99 written as Arabic digits ("03", "4.0") or Chinese numerals (四, 十, 十二, 二十三); None if neither."""
    if match := _ARABIC_NUMBER.match(token):
        return int(match.group(1))
    match = _CN_NUMBER.match(token)
    if not token or not match:
        return None
    tens_digit, ten, units = match.groups()
    if ten:
        return (_CN_DIGITS[tens_digit] if tens_digit else 1) * 10 + (_CN_DIGITS[units] if units else 0)
    if units:  # two digits without 十, e.g. 二三
        return None
    return _CN_DIGITS[tens_digit]


def _whole_number(value) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if value.is_integer() else None


def _key(label) -> str:
    """How labels are compared: folded, whitespace removed, case-insensitive."""
    return _compact(_cell_text(label)).lower()


# --- text, codes, identifiers, phones --------------------------------------------------------------------------------


def clean_text(value, *, required: bool = True, max_length: int | None = None) -> str:
    """Free text with full-width ASCII folded and whitespace collapsed to single spaces."""
    if _is_blank(value):
        return _blank(required, "")
    text = _WHITESPACE.sub(" ", _fold(_cell_text(value))).strip()
    if max_length is not None and len(text) > max_length:
        raise _too_long(text, len(text), max_length)
    return text


def clean_digits(value, *, required: bool = True, length: int | None = None, label: str = "") -> str | None:
    """A numeric code (school code, division code …) as a string of digits, spaces anywhere removed."""
    if _is_blank(value):
        return _blank(required, None)
    digits = _compact(value)
    params = {"value": _show(value), "label": label, "length": length}
    if not digits.isascii() or not digits.isdigit():
        if label:
            raise CellError(_("%(label)s: “%(value)s” must contain digits only.") % params)
        raise CellError(_("“%(value)s” must contain digits only.") % params)
    if length is not None and len(digits) != length:
        if label:
            raise CellError(_("%(label)s: “%(value)s” must be exactly %(length)d digits.") % params)
        raise CellError(_("“%(value)s” must be exactly %(length)d digits.") % params)
    return digits


_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]+$")


def clean_identifier(value, *, required: bool = True, max_length: int = 32) -> str | None:
    """A student or staff number: letters, digits, '-' and '_', spaces anywhere removed, case kept."""
    if _is_blank(value):
        return _blank(required, None)
    identifier = _compact(value)
    if not _IDENTIFIER.match(identifier):
        raise CellError(_("“%(value)s” may contain only letters, digits, “-” and “_”.") % {"value": _show(value)})
    if len(identifier) > max_length:
        raise _too_long(value, len(identifier), max_length)
    return identifier


_PHONE_PUNCTUATION = re.compile(r"[\s\-()]")
_COUNTRY_CODE = re.compile(r"^(?:\+|00)?86(\d{11})$")


def clean_phone(value, *, required: bool = False) -> str:
    """A mainland mobile (11 digits) or landline (7 to 12 digits) number, as digits only, without +86."""
    if _is_blank(value):
        return _blank(required, "")
    text = _exact_number_text(value) if _is_number(value) else str(value)
    phone = _PHONE_PUNCTUATION.sub("", _fold(text))
    if match := _COUNTRY_CODE.match(phone):
        phone = match.group(1)
    if not (phone.isascii() and phone.isdigit() and 7 <= len(phone) <= 12):
        raise CellError(
            _("“%(value)s” is not a phone number (use an 11-digit mobile number or a landline number).")
            % {"value": _show(value)}
        )
    return phone


# --- grades, classes, genders --------------------------------------------------------------------------------------

_GRADE_PLAIN = re.compile(r"^(?:grade|gr\.?|g)?(?P<n>[^年级]+)(?:年级)?$")
_GRADE_PRIMARY = re.compile(r"^小学(?P<n>[^年级]+)(?:年级)?$")
_GRADE_SECONDARY = re.compile(r"^(?P<stage>[初高])中?(?P<n>[一二三123])(?:年级)?$")


def _grade_from_text(text: str) -> int | None:
    if match := _GRADE_SECONDARY.match(text):
        return (6 if match["stage"] == "初" else 9) + (_small_int(match["n"]) or 0)
    if match := _GRADE_PRIMARY.match(text):
        grade = _small_int(match["n"])
        return grade if grade is not None and grade <= 6 else None
    if match := _GRADE_PLAIN.match(text):
        return _small_int(match["n"])
    return None


def parse_grade(value, *, required: bool = True) -> int | None:
    """A grade 1..12 from 4, "4年级", "四年级", "初一" (7), "高三" (12), "Grade 4", "G4" …"""
    if _is_blank(value):
        return _blank(required, None)
    if _is_number(value):
        grade = _whole_number(value)
    else:
        grade = _grade_from_text(_compact(value).lower())
    if grade is None or not 1 <= grade <= 12:
        raise CellError(_("“%(value)s” is not a grade (use 4, 四年级, 初一, 七年级, 高一 …)") % {"value": _show(value)})
    return grade


def _class_from_text(text: str) -> int | None:
    text = text.removeprefix("第").removesuffix("班")
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return _small_int(text)


def parse_class_number(value, *, required: bool = True) -> int | None:
    """A class number >= 1 from 3, "3班", "(3)班", "（3）班", "三班", "03", "十二班" …"""
    if _is_blank(value):
        return _blank(required, None)
    if _is_number(value):
        number = _whole_number(value)
    else:
        number = _class_from_text(_compact(value))
    if number is None or not 1 <= number <= MAX_CLASS_NUMBER:
        raise CellError(_("“%(value)s” is not a class number (use 3, 3班, (3)班 or 三班)") % {"value": _show(value)})
    return number


# 1 and 2 are the GB/T 2261.1 codes; 0 (unknown) and 9 (unstated) are refused because the roster needs M or F.
_GENDERS = {
    "男": "M",
    "男性": "M",
    "男生": "M",
    "m": "M",
    "male": "M",
    "1": "M",
    "女": "F",
    "女性": "F",
    "女生": "F",
    "f": "F",
    "female": "F",
    "2": "F",
}


def parse_gender(value, *, required: bool = True) -> str | None:
    """The gender code "M" or "F" from 男/女, M/F, Male/Female or the GB/T 2261.1 codes 1/2."""
    if _is_blank(value):
        return _blank(required, None)
    gender = _GENDERS.get(_key(value)) if not isinstance(value, bool) else None
    if gender is None:
        raise CellError(_("“%(value)s” is not a gender (use 男 or 女, M or F, 1 or 2)") % {"value": _show(value)})
    return gender


# --- dates -----------------------------------------------------------------------------------------------------------

_DATE_FORMATS = [
    re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})$"),
    re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})[日号]?$"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
]
# A date that went through text keeps Excel's midnight: "2012-03-05 00:00:00".
_TRAILING_TIME = re.compile(r"(?:[T\s]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$")


def _date_from_text(text: str, shown: str) -> datetime.date:
    text = _WHITESPACE.sub("", _TRAILING_TIME.sub("", _fold(text).strip()))
    for pattern in _DATE_FORMATS:
        if match := pattern.match(text):
            try:
                return datetime.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                raise CellError(_("“%(value)s” is not a valid calendar date.") % {"value": shown}) from None
    raise CellError(_("“%(value)s” is not a date (use 2012-03-05, 2012/3/5 or 2012年3月5日)") % {"value": shown})


def _date_from_number(value: int | float, shown: str) -> datetime.date:
    whole = _whole_number(value)
    if whole is not None and 10_000_000 <= whole <= 99_999_999:  # 20120305 typed into a numeric cell
        return _date_from_text(str(whole), shown)
    low, high = EXCEL_SERIAL_RANGE
    if not low <= value < high + 1:
        raise CellError(_("“%(value)s” is not a date (use 2012-03-05, 2012/3/5 or 2012年3月5日)") % {"value": shown})
    # A fractional serial carries a time of day, which a date ignores.
    days = int(value)
    if days == EXCEL_LEAP_BUG_SERIAL:
        raise CellError(_("“%(value)s” is not a valid calendar date.") % {"value": shown})
    if days < EXCEL_LEAP_BUG_SERIAL:
        days += 1
    return EXCEL_EPOCH + datetime.timedelta(days=days)


def parse_date(value, *, required: bool = False, plausible_birth: bool = False) -> datetime.date | None:
    """A date from a date cell, an Excel serial number or text such as 2012-03-05, 2012/3/5, 2012年3月5日, 20120305.

    With `plausible_birth`, dates before 1990-01-01 or after today are refused.
    """
    if _is_blank(value):
        return _blank(required, None)
    shown = _show(value)
    if isinstance(value, datetime.datetime):
        date = value.date()
    elif isinstance(value, datetime.date):
        date = value
    elif _is_number(value):
        date = _date_from_number(value, shown)
    elif isinstance(value, str):
        date = _date_from_text(value, shown)
    else:
        raise CellError(_("“%(value)s” is not a date (use 2012-03-05, 2012/3/5 or 2012年3月5日)") % {"value": shown})
    # date.today() follows the process time zone, which Django sets to TIME_ZONE (Asia/Shanghai).
    if plausible_birth and not EARLIEST_BIRTH_DATE <= date <= datetime.date.today():
        raise CellError(
            _("“%(value)s” is not a plausible date of birth (it must fall between %(earliest)s and today).")
            % {"value": shown, "earliest": EARLIEST_BIRTH_DATE.isoformat()}
        )
    return date


# --- vocabularies ----------------------------------------------------------------------------------------------------

_GROUP_SEPARATORS = re.compile(r"[、;；，,/\s]+")


def parse_special_groups(value, *, vocabulary: dict[str, str], allowed: list[str] | None = None) -> list[str]:
    """Special-group codes from a cell like "留守儿童、单亲家庭"; unknown names are all reported at once.

    `vocabulary` maps each accepted name (Chinese name and English code) to its code; `allowed`, when given, is the
    list of names an unknown name's message offers (the groups a file may tag).
    """
    if _is_blank(value):
        return []
    lookup = {_key(name): code for name, code in vocabulary.items()}
    codes: list[str] = []
    unknown: list[str] = []
    for name in _GROUP_SEPARATORS.split(_fold(_cell_text(value))):
        if not name:
            continue
        code = lookup.get(_key(name))
        if code is None:
            if name not in unknown:
                unknown.append(name)
        elif code not in codes:
            codes.append(code)
    if unknown:
        chinese = [name for name in (vocabulary if allowed is None else allowed) if not name.isascii()]
        raise CellError(
            _("Unknown special group(s): %(unknown)s. Allowed: %(allowed)s.")
            % {"unknown": ", ".join(f"“{name}”" for name in unknown), "allowed": "、".join(chinese or vocabulary)}
        )
    return codes


def parse_choice(value, *, choices: dict[str, str], required: bool = True) -> str | None:
    """The stored value for a label in `choices` (Chinese or English, case-insensitive, full-width folded)."""
    if _is_blank(value):
        return _blank(required, None)
    lookup = {_key(label): stored for label, stored in choices.items()}
    stored = lookup.get(_key(value)) if not isinstance(value, bool) else None
    if stored is None:
        raise CellError(
            _("“%(value)s” is not one of: %(allowed)s.") % {"value": _show(value), "allowed": "、".join(choices)}
        )
    return stored


# --- headers ---------------------------------------------------------------------------------------------------------

_HEADER_DECORATION = re.compile(r"(?:\*+|\([^()]*\))$")


def normalize_header(value) -> str:
    """A column header reduced for matching: "出生日期（yyyy-mm-dd）*" -> "出生日期", " Name " -> "name"."""
    if value is None:
        return ""
    header = _WHITESPACE.sub("", _fold(_cell_text(value))).lower()
    # Required markers and hints can stack in either order: "手机号(选填)*", "学号*(必填)".
    while (stripped := _HEADER_DECORATION.sub("", header)) != header:
        header = stripped
    return header.lstrip("*")
