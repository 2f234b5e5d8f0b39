"""Dependencies point one way: roster ← screening ← cases ← workflows; `config` only wires (no app imports it)."""

import ast
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["roster", "screening", "cases", "workflows"]
ALLOWED = {app: set(LAYERS[: i + 1]) for i, app in enumerate(LAYERS)}
OURS = set(LAYERS) | {"config"}


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
    first = node.args[0] if node.args else None
    return name in {"import_module", "__import__"} and isinstance(first, ast.Constant) and isinstance(first.value, str)


def imported_top_packages(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.add(node.args[0].value.split(".")[0])
    return found & OURS


def violations(app: str, source: str) -> set[str]:
    return imported_top_packages(source) - ALLOWED[app]


@pytest.mark.parametrize(
    ("app", "source", "bad"),
    [
        ("roster", "from screening.models import Campaign", {"screening"}),
        ("screening", "import cases.services", {"cases"}),
        ("cases", "from workflows import flows", {"workflows"}),
        ("roster", "from config import settings", {"config"}),
        ("roster", "importlib.import_module('workflows.flows')", {"workflows"}),
        ("workflows", "from cases.models import Case\nfrom roster import scoping", set()),
        ("screening", "from roster.models import Student", set()),
    ],
)
def test_the_checker_catches_upward_imports(app, source, bad):
    assert violations(app, source) == bad


@pytest.mark.parametrize("app", LAYERS)
def test_no_app_imports_from_a_layer_above_it(app):
    problems = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in (ROOT / app).rglob("*.py")
        if (found := violations(app, path.read_text(encoding="utf-8")))
    }
    assert problems == {}


@pytest.mark.parametrize("app", LAYERS)
def test_no_model_relation_points_upward(app):
    upward = [
        f"{model.__name__}.{field.name} -> {field.related_model._meta.label}"
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.get_fields()
        if field.is_relation
        and field.concrete
        and field.related_model is not None
        and field.related_model._meta.app_label in OURS
        and field.related_model._meta.app_label not in ALLOWED[app]
    ]
    assert upward == []
