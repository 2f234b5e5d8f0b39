"""Masking of personal identifiers in lists: 王*明, 138****1234.

Detail pages show the full value, and only to roles that need it: for a student's identity, roles at the student's
school or class (roster.scoping.identities_visible); above a school, pages and exports show it masked.
"""


def mask_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    digits = (phone or "").strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
