"""Synthetic exports in the layouts of the shipped platform mappings (`screening/platforms/`), built in memory.

Each row is (student, PHQ-9 pattern "calm" or "moderate", ASQ answers as 1/0/None, the platform's warning level).
"""

from tests.roster_files import csv_bytes, xlsx_bytes


def _phq(level: str) -> list[int]:
    return {"calm": [0] * 9, "moderate": [2] * 5 + [0] * 4}[level]  # totals 0 and 10 (yellow)


def ipp_file(rows) -> bytes:
    """An i++-style export: its own identity columns, 题1 … 题21 through PHQ-9, GAD-7 and ASQ, and 预警等级."""
    header = ["序号", "学校", "年级", "班级", "姓名", "学籍号", "性别", "提交时间"]
    header += [f"题{n}" for n in range(1, 22)] + ["总分", "预警等级"]
    body = []
    for position, (student, phq, asq, level) in enumerate(rows, start=1):
        answers = _phq(phq) + [0] * 7 + list(asq)
        body.append(
            [position, student.school.name, "七年级", "3班", student.name, student.student_no, "女",
             "2026-10-12 09:30", *answers, sum(a or 0 for a in answers), level]
        )  # fmt: skip
    return xlsx_bytes([header, *body])


def xinshu_file(rows) -> bytes:
    """A 心数-style export: 考号, scale-named item columns, answers as letters A-D, and 风险等级."""
    items = [("PHQ-9", 9), ("GAD-7", 7), ("ASQ", 5)]
    header = ["考号", "学生姓名", "学校名称", "班级名称"] + [f"{s}第{n}题" for s, k in items for n in range(1, k + 1)]
    header += ["风险等级"]
    letters = "ABCD"
    body = []
    for student, phq, asq, level in rows:
        answers = [letters[a] for a in _phq(phq)] + ["A"] * 7 + [{1: "A", 0: "B", None: ""}[a] for a in asq]
        body.append([student.student_no, student.name, student.school.name, "初一(3)班", *answers, level])
    return csv_bytes([header, *body], encoding="gbk")
