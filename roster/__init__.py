"""Roster: the organisation tree (city, district, school, class), staff and their roles, students.

Also the bottom-layer cross-cutting pieces every app uses: the scoping layer (`roster.scoping`) and, later, the
access ledger. May import: nothing of ours.
"""
