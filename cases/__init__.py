"""Cases: the case record, its team, notes, plan, parent contacts, referrals, follow-ups and closure.

May import: roster, screening.
"""
