"""Every change reason the code writes reads in the reader's language (cases.reasons).

Two nets: each registered reason renders in Chinese with no English word left, and a scan of the source finds every
reason the services write (`_save(…, "…")`, `default_change_reason=`, `_change_reason =`, the reasons passed down to
them) and asserts the registry knows it, so a new reason without a translation fails here."""

import ast
import itertools
import re
from pathlib import Path

import pytest
from django.utils import translation

from cases import reasons
from cases.reasons import REASONS, reason_display

ROOT = Path(__file__).resolve().parents[2]
SCANNED = sorted([*ROOT.glob("cases/*.py"), *ROOT.glob("workflows/*.py")])
# Where else a service is called from: the reasons those callers pass down are followed too.
CALLERS = sorted([*ROOT.glob("screening/*.py"), *ROOT.glob("roster/*.py")])
ENGLISH = re.compile(r"[A-Za-z]{3,}")
ALLOWED = {"PHQ", "ASQ", "GAD"}
SAMPLES = {
    "decision": "approved",
    "level": "2",
    "text": "面谈确认：学业压力",
    "from_user": "张老师",
    "to_user": "李老师",
    "student_status": "graduated",
    "source": "concern",  # issue 20's signals
    "signal_status": "no_action",
}


def sample(reason) -> str:
    """The reason as a service would write it, with sample parts."""
    values = {}
    for name in reason.parts:
        values[name] = "red" if name.endswith("tier") else SAMPLES.get(name, "学生说明")
    return reason.pattern.format(**values)


def english_words(text: str) -> set[str]:
    return set(ENGLISH.findall(text)) - ALLOWED


@pytest.mark.parametrize("reason", REASONS, ids=lambda r: r.pattern)
def test_every_registered_reason_reads_in_chinese(reason):
    stored = sample(reason)
    assert reasons.match(stored) is not None
    with translation.override("zh-hans"):
        shown = reason_display(stored)
        hidden = reason_display(stored, tiers=False)
    assert shown != stored
    assert not english_words(shown), shown
    assert "红色" not in hidden and not english_words(hidden)
    with translation.override("en"):
        assert not re.search(r"[\u4e00-\u9fff]", reason_display(stored).replace(SAMPLES["text"], "")
                             .replace("学生说明", "").replace("张老师", "").replace("李老师", ""))  # fmt: skip


def test_tiers_and_decisions_show_as_their_labels_and_free_text_as_written():
    with translation.override("zh-hans"):
        assert reason_display("triage: yellow → red: 面谈确认") == "分诊：黄色 → 红色：面谈确认"
        assert reason_display("tier change approved: orange → red") == "风险等级调整已批准：橙色 → 红色"
        assert reason_display("referral approved: 同意") == "转介：已批准：同意"
        assert reason_display("closure rejected") == "结案：未批准"
        assert reason_display("something nobody registered") == "something nobody registered"
        assert reason_display("") == ""


def test_a_reader_of_no_results_reads_no_tier_and_no_clinical_free_text():
    """A homeroom teacher on the team (issue 17, finding 8): neither the tier nor the psychology teacher's words."""
    with translation.override("zh-hans"):
        assert (
            reason_display("triage: yellow → red: 自述有计划", tiers=False)
            == "分诊：（不显示） → （不显示）：（临床内容不显示）"
        )
        assert reason_display("reopened: 家长来电", clinical=False) == "重新开案：（临床内容不显示）"
        assert reason_display("something nobody registered", tiers=False) == ""
        assert reason_display("handover from zhang to li", tiers=False) == "由 zhang 移交给 li"


# --- The source scan ------------------------------------------------------------------------------------------------

HOLE = "{}"


class Source:
    """The scanned modules' functions and calls, to follow a reason from where it is written back to its literals."""

    def __init__(self, paths, callers=()):
        self.trees = {path: ast.parse(path.read_text(), str(path)) for path in paths}
        self.callers = {path: ast.parse(path.read_text(), str(path)) for path in callers}
        self.functions: dict[str, list[ast.FunctionDef]] = {}
        self.parents: dict[ast.AST, ast.FunctionDef] = {}
        self.calls: list[ast.Call] = []
        for tree in [*self.trees.values(), *self.callers.values()]:
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append(node)
                    for inner in ast.walk(node):
                        self.parents.setdefault(inner, node)
                if isinstance(node, ast.Call):
                    self.calls.append(node)
        # the innermost function of each node
        for tree in [*self.trees.values(), *self.callers.values()]:
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    for inner in ast.walk(node):
                        if inner is not node:
                            self.parents[inner] = node

    @staticmethod
    def call_name(call: ast.Call) -> str:
        func = call.func
        return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""

    def resolve(self, expr, depth=0) -> set[str]:
        """The texts an expression may hold, with HOLE for a part nothing literal fixes."""
        if depth > 6 or expr is None:
            return {HOLE}
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.JoinedStr):
            parts = []
            for value in expr.values:
                if isinstance(value, ast.Constant):
                    parts.append({value.value})
                else:
                    parts.append(self.resolve_part(value.value, depth + 1))
            return {"".join(combo) for combo in itertools.product(*parts)}
        if isinstance(expr, ast.IfExp):
            return self.resolve(expr.body, depth + 1) | self.resolve(expr.orelse, depth + 1)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "strip":
            texts = self.resolve(expr.func.value, depth + 1)
            return texts | {re.sub(r": \{\}$", "", t) for t in texts}  # an empty note is stripped with its colon
        if isinstance(expr, ast.Name):
            return self.resolve_name(expr, depth + 1)
        return {HOLE}

    def resolve_part(self, expr, depth) -> set[str]:
        """A part of an f-string: literal choices stay, anything else is a hole."""
        texts = self.resolve(expr, depth)
        return {t if t and "{" not in t else HOLE for t in texts} if texts != {""} else {"", HOLE}

    def resolve_name(self, name: ast.Name, depth) -> set[str]:
        function = self.parents.get(name)
        if function is None:
            return {HOLE}
        found = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name.id:
                        found |= self.resolve(node.value, depth)
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for t, v in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(t, ast.Name) and t.id == name.id:
                                found |= self.resolve(v, depth)
        params = [a.arg for a in function.args.args]
        if name.id in params or name.id in [a.arg for a in function.args.kwonlyargs]:
            found |= self.resolve_param(function, name.id, depth)
        return found or {HOLE}

    def resolve_param(self, function: ast.FunctionDef, param: str, depth) -> set[str]:
        """A parameter's texts: its default and what each call site passes."""
        args = function.args
        positional = [a.arg for a in args.args]
        defaults = dict(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=False))
        defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=False) if d is not None}
        found = set()
        if param in defaults:
            found |= self.resolve(defaults[param], depth)
        for call in self.calls:
            if self.call_name(call) != function.name:
                continue
            passed = next((k.value for k in call.keywords if k.arg == param), None)
            if passed is None and param in positional:
                index = positional.index(param) - (1 if positional and positional[0] in ("self", "cls") else 0)
                if index < len(call.args):
                    passed = call.args[index]
            if passed is not None:
                found |= self.resolve(passed, depth)
        return found

    def written_reasons(self) -> dict[str, set[str]]:
        """Every reason the code writes, as texts with holes, each with where it is written."""
        found: dict[str, set[str]] = {}

        def add(texts, node, path):
            for text in texts:
                found.setdefault(text, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")

        for path, tree in self.trees.items():
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = self.call_name(node)
                    if name == "_save" and len(node.args) >= 3:
                        add(self.resolve(node.args[2]), node, path)
                    if name == "update_change_reason" and len(node.args) >= 2:
                        add(self.resolve(node.args[1]), node, path)
                    for keyword in node.keywords:
                        if keyword.arg == "default_change_reason":
                            add(self.resolve(keyword.value), node, path)
                if isinstance(node, ast.Assign):
                    function = self.parents.get(node)
                    if function is not None and function.name == "_save":
                        continue  # the writer itself: its callers are scanned
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and target.attr == "_change_reason":
                            add(self.resolve(node.value), node, path)
        return found


def registered(text: str) -> bool:
    """Whether a written reason (holes where the code fills in a value) is one the registry matches: a hole stands
    for any part of the pattern, a literal must be what the part accepts (a tier code, a decision…)."""
    for reason in REASONS:
        out, position = [], 0
        for part in re.finditer(r"\{(\w+)\}", reason.pattern):
            out.append(re.escape(reason.pattern[position : part.start()]))
            out.append(f"(?:{re.escape(HOLE)}|{reasons._part_regex(part.group(1))})")
            position = part.end()
        out.append(re.escape(reason.pattern[position:]))
        if re.fullmatch("".join(out), text, re.DOTALL):
            return True
    return False


def test_every_reason_the_code_writes_is_registered():
    written = Source(SCANNED, CALLERS).written_reasons()
    assert "triage: {} → {}: {}" in written and "opened by a screening flag" in written  # the scan sees them
    missing = {text: sorted(where) for text, where in written.items() if not registered(text)}
    assert not missing, f"reasons written with no entry in cases/reasons.py: {missing}"
