"""Scoring and tiering with the shipped instruments and the default adolescent rule set. Pure: no database."""

import copy

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.definitions import (
    DefinitionError,
    RiskTier,
    parse_instrument,
    parse_ruleset,
    shipped_instruments,
    shipped_ruleset,
)
from screening.scoring import AnswerError, score_instrument, tier_for

INSTRUMENTS = shipped_instruments()
RULES = shipped_ruleset()
PHQ9, GAD7, ASQ = INSTRUMENTS["PHQ9"], INSTRUMENTS["GAD7"], INSTRUMENTS["ASQ"]


def answers_with_total(n_items: int, total: int, *, last: int | None = None) -> dict[int, str]:
    """Answers summing to `total`, filled from item 1 (item `n_items` fixed to `last` when given)."""
    values = [0] * n_items
    remaining = total - (last or 0)
    for i in range(n_items - (1 if last is not None else 0)):
        values[i] = min(3, remaining)
        remaining -= values[i]
    if last is not None:
        values[-1] = last
    assert remaining == 0 and sum(values) == total
    return {i + 1: str(v) for i, v in enumerate(values)}


ASQ_ALL_NO = {1: "no", 2: "no", 3: "no", 4: "no"}


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
     (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"), (27, "severe")],
)  # fmt: skip
def test_phq9_band_edges(total, band):
    score = score_instrument(PHQ9, answers_with_total(9, total, last=0 if total <= 24 else 3))
    assert (score.scales["total"], score.bands["total"]) == (total, band)


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
     (15, "severe"), (21, "severe")],
)  # fmt: skip
def test_gad7_band_edges(total, band):
    score = score_instrument(GAD7, answers_with_total(7, total))
    assert (score.scales["total"], score.bands["total"]) == (total, band)


def _tier(phq=None, gad=None, asq=None):
    scores = {}
    if phq is not None:
        scores["PHQ9"] = score_instrument(PHQ9, phq)
    if gad is not None:
        scores["GAD7"] = score_instrument(GAD7, gad)
    if asq is not None:
        scores["ASQ"] = score_instrument(ASQ, asq)
    result = tier_for(RULES, scores)
    return result.tier, [r.id for r in result.fired]


@pytest.mark.parametrize(
    ("phq_total", "item9", "tier", "fired"),
    [
        (9, 0, RiskTier.GREEN, []),
        (10, 0, RiskTier.YELLOW, ["phq9-total-moderate"]),
        (14, 0, RiskTier.YELLOW, ["phq9-total-moderate"]),
        (15, 0, RiskTier.ORANGE, ["phq9-total-high"]),
        (1, 1, RiskTier.ORANGE, ["phq9-item9"]),
        (2, 2, RiskTier.RED, ["phq9-item9-frequent", "phq9-item9"]),
        (27, 3, RiskTier.RED, ["phq9-item9-frequent", "phq9-item9", "phq9-total-high"]),
    ],
)
def test_phq9_rules(phq_total, item9, tier, fired):
    assert _tier(phq=answers_with_total(9, phq_total, last=item9)) == (tier, fired)


@pytest.mark.parametrize(
    ("total", "tier"), [(9, RiskTier.GREEN), (10, RiskTier.YELLOW), (14, RiskTier.YELLOW), (15, RiskTier.ORANGE)]
)
def test_gad7_rules(total, tier):
    assert _tier(gad=answers_with_total(7, total))[0] == tier


@pytest.mark.parametrize(
    ("answers", "tier", "fired"),
    [
        (ASQ_ALL_NO, RiskTier.GREEN, []),
        ({**ASQ_ALL_NO, 5: "yes"}, RiskTier.GREEN, []),  # acuity not asked after four 'no': ignored
        ({**ASQ_ALL_NO, 2: "yes", 5: "no"}, RiskTier.ORANGE, ["asq-positive"]),
        ({**ASQ_ALL_NO, 4: "declined", 5: "no"}, RiskTier.ORANGE, ["asq-positive"]),  # NIMH: declined = yes
        ({**ASQ_ALL_NO, 1: "yes", 5: "yes"}, RiskTier.RED, ["asq-acuity", "asq-positive"]),
    ],
)
def test_asq_rules(answers, tier, fired):
    assert _tier(asq=answers) == (tier, fired)


def test_the_asq_acuity_question_is_required_once_any_item_is_yes():
    with translation.override("en"), pytest.raises(AnswerError, match="ASQ: items 5 were asked"):
        score_instrument(ASQ, {**ASQ_ALL_NO, 3: "yes"})


def test_a_blank_asq_item_in_an_imported_file_counts_as_declined():
    score = score_instrument(ASQ, {1: "", 2: "no", 3: "no", 4: "no", 5: "no"}, from_import=True)
    assert score.answers[1] == "declined"
    assert tier_for(RULES, {"ASQ": score}).tier == RiskTier.ORANGE


def test_a_blank_is_not_an_answer_outside_imports():
    with pytest.raises(AnswerError):
        score_instrument(ASQ, {1: "", 2: "no", 3: "no", 4: "no"})


def test_the_highest_tier_wins_across_instruments():
    tier, fired = _tier(phq=answers_with_total(9, 11, last=0), gad=answers_with_total(7, 16), asq=ASQ_ALL_NO)
    assert (tier, fired) == (RiskTier.ORANGE, ["gad7-total-high", "phq9-total-moderate"])


def test_reasons_come_in_both_languages():
    result = tier_for(RULES, {"PHQ9": score_instrument(PHQ9, answers_with_total(9, 3, last=1))})
    assert "第9题" in result.reasons("zh-hans")[0] and "item 9" in result.reasons("en")[0]


@pytest.mark.parametrize(
    ("answers", "message"), [({1: "4"}, "not one of"), ({10: "1"}, "no item"), ({1: "1"}, "not answered")]
)
def test_bad_answers_are_refused(answers, message):
    full = {**answers_with_total(9, 0), **answers} if message == "not one of" else answers
    with translation.override("en"), pytest.raises(AnswerError, match=message):  # the messages are translated
        score_instrument(PHQ9, full)


def test_reverse_scored_items_are_scored_from_the_other_end():
    data = copy.deepcopy(GAD7.raw)
    data["items"][0]["reverse"] = True
    reversed_gad = parse_instrument(data)
    score = score_instrument(reversed_gad, answers_with_total(7, 0))
    assert (score.items[1], score.scales["total"]) == (3, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["scales"][0]["bands"].pop(2), "without gaps"),
        (lambda d: d["items"][0].pop("text"), "“text” is missing"),
        (lambda d: d["items"][1].update(number=1), "unique"),
        (lambda d: d["scales"][0]["items"].append(12), "do not exist"),
        (lambda d: d["items"][0]["text"].pop("en"), "“en” text"),
    ],
)
def test_a_broken_instrument_file_is_refused_with_the_place(change, message):
    data = copy.deepcopy(PHQ9.raw)
    change(data)
    with pytest.raises(DefinitionError, match=message):
        parse_instrument(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["rules"][0].update(tier="purple"), "tier"),
        (lambda d: d["rules"][0]["when"].update(item=7), "no item"),
        (lambda d: d["rules"][4]["when"].update(scale="nope"), "no scale"),
        (lambda d: d["rules"][0]["when"].pop("at_least"), "one of at_least"),
        (lambda d: d["rules"][1].update(id="asq-acuity"), "unique"),
    ],
)
def test_a_broken_rule_set_is_refused(change, message):
    data = copy.deepcopy(RULES.raw)
    change(data)
    with pytest.raises(DefinitionError, match=message):
        parse_ruleset(data, INSTRUMENTS)


# --- Property: more symptoms never mean a lower tier ------------------------------------------------------------

phq_answers = st.lists(st.integers(0, 3), min_size=9, max_size=9)
gad_answers = st.lists(st.integers(0, 3), min_size=7, max_size=7)
asq_answers = st.lists(st.sampled_from(["no", "yes", "declined"]), min_size=4, max_size=4)
ASQ_RANK = {"no": 0, "declined": 1, "yes": 1}


def _full_tier(phq, gad, asq, acuity):
    asq_map = {i + 1: v for i, v in enumerate(asq)} | {5: acuity}
    return tier_for(
        RULES,
        {
            "PHQ9": score_instrument(PHQ9, {i + 1: str(v) for i, v in enumerate(phq)}),
            "GAD7": score_instrument(GAD7, {i + 1: str(v) for i, v in enumerate(gad)}),
            "ASQ": score_instrument(ASQ, asq_map),
        },
    ).tier


@settings(max_examples=400, deadline=None)
@given(phq_answers, gad_answers, asq_answers, st.sampled_from(["no", "yes"]), st.integers(0, 20), st.data())
def test_the_tier_never_decreases_when_an_answer_increases(phq, gad, asq, acuity, which, data):
    before = _full_tier(phq, gad, asq, acuity)
    phq2, gad2, asq2, acuity2 = list(phq), list(gad), list(asq), acuity
    if which < 9 and phq2[which] < 3:
        phq2[which] += 1
    elif 9 <= which < 16 and gad2[which - 9] < 3:
        gad2[which - 9] += 1
    elif 16 <= which < 20 and asq2[which - 16] == "no":
        asq2[which - 16] = data.draw(st.sampled_from(["yes", "declined"]))
    elif which == 20:
        acuity2 = "yes"
    after = _full_tier(phq2, gad2, asq2, acuity2)
    assert after.rank >= before.rank


def _alone(code, answers):
    instrument = INSTRUMENTS[code]
    return tier_for(RULES, {code: score_instrument(instrument, answers)}).tier


@settings(max_examples=500, deadline=None)
@given(phq_answers, st.integers(0, 8))
def test_phq9_alone_more_never_lowers_the_tier(values, which):
    raised = list(values)
    raised[which] = min(3, raised[which] + 1)
    before = _alone("PHQ9", {i + 1: str(v) for i, v in enumerate(values)})
    after = _alone("PHQ9", {i + 1: str(v) for i, v in enumerate(raised)})
    assert after.rank >= before.rank


@settings(max_examples=300, deadline=None)
@given(gad_answers, st.integers(0, 6))
def test_gad7_alone_more_never_lowers_the_tier(values, which):
    raised = list(values)
    raised[which] = min(3, raised[which] + 1)
    before = _alone("GAD7", {i + 1: str(v) for i, v in enumerate(values)})
    after = _alone("GAD7", {i + 1: str(v) for i, v in enumerate(raised)})
    assert after.rank >= before.rank


@settings(max_examples=300, deadline=None)
@given(asq_answers, st.sampled_from(["no", "yes"]), st.integers(0, 4), st.sampled_from(["yes", "declined"]))
def test_asq_alone_more_never_lowers_the_tier(values, acuity, which, raised_to):
    raised, raised_acuity = list(values), acuity
    if which == 4:
        raised_acuity = "yes"
    elif raised[which] == "no":
        raised[which] = raised_to
    before = _alone("ASQ", {i + 1: v for i, v in enumerate(values)} | {5: acuity})
    after = _alone("ASQ", {i + 1: v for i, v in enumerate(raised)} | {5: raised_acuity})
    assert after.rank >= before.rank
