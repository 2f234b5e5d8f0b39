"""Roster files as the schools' systems produce them, built in memory for tests."""

import csv
import io

import openpyxl

STUDENT_HEADER = ["学校代码", "年级", "班级", "学号", "姓名", "性别", "出生日期", "监护人", "监护人电话", "特殊群体"]


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def student_row(school_code="9901010001", grade="七年级", klass="3班", student_no="20250701", name="李小红",
                gender="女", birth="2013-03-05", guardian="李大红", phone="13912345678", groups=""):  # fmt: skip
    return [school_code, grade, klass, student_no, name, gender, birth, guardian, phone, groups]
