"""Screening: instruments as data, campaigns, responses, scoring into risk tiers.

May import: roster.
"""
