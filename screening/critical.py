"""Critical answers: the items an instrument marks `critical` (PHQ-9 item 9, ASQ 1-5) answered above their lowest
option, and whether one of them is acute (an `acuity` item: ASQ 5, thoughts of suicide right now). Pure: definitions
and stored answers in, a list out; the crisis alerts (cases.alerts) decide what follows.
May import: roster, screening.
"""

from __future__ import annotations

from dataclasses import dataclass

from screening.definitions import Instrument


@dataclass(frozen=True)
class CriticalAnswer:
    instrument: str  # code
    item: int
    acute: bool


def critical_answers(instruments: dict[str, Instrument], answers: dict) -> list[CriticalAnswer]:
    """The critical items answered above their lowest option, in instrument and item order. `answers` is the stored
    form ({code: {"9": "key"}}); an item not asked or an unknown key counts as not answered."""
    found = []
    for code, instrument in instruments.items():
        given = answers.get(code) or {}
        for item in instrument.items:
            if not item.critical:
                continue
            option = item.option(str(given.get(str(item.number), given.get(item.number, ""))))
            if option is not None and option.value > item.min_value:
                found.append(CriticalAnswer(code, item.number, item.acuity))
    return found
