"""Workflows: the Viewflow processes that drive a case, their task views, inbox, SLA timers.

May import: roster, screening, cases.
"""
