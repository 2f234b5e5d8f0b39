"""The case process chart, legible in the reader's language (issue 16 item 8).

Viewflow labels a node by its task title, and every other node (decisions, timers, joins, automatic steps) by its
Python name ("After Triage", "Overdue Notice"), its "yes"/"no" edges in English, and wraps labels at spaces, which
Chinese has none of. Here every node is labelled from CHART_LABELS (or a label for its kind), edges in the active
language, labels wrapped by width and set larger. The layout is viewflow's (viewflow.workflow.chart).
May import: workflows.flows. Used by workflows.views.CaseChartView.
"""

from __future__ import annotations

import unicodedata

from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _
from viewflow.workflow import chart
from viewflow.workflow.nodes import End, Function, If, Join, Split, StartHandle, Switch, Timer

FONT_SIZE = 14
LINE_UNITS = 9.5  # how many full-width characters fit a 150-pixel task box at FONT_SIZE

# The machine's own steps of workflows.flows.CaseFlow, by node name: what a person reads there.
CHART_LABELS = {
    "start": _("Case opened"),
    "start_raised": _("Tier raised: first steps again"),
    "start_support": _("District support requested"),
    "after_triage": _("Triage outcome"),
    "after_false_positive": _("Closure confirmed?"),
    "raised": _("Start the new tier's steps"),
    "raised_end": _("Continued at the new tier"),
    "support_end": _("District support ended"),
    "first_steps": _("Interview and parent contact"),
    "first_steps_done": _("Both done"),
    "interview__timeout": _("Interview overdue"),
    "parent_contact__timeout": _("Parent contact overdue"),
    "overdue_notice": _("Tell the principal it is overdue"),
    "overdue_noticed": _("Overdue notice sent"),
    "plan_calls_for_referral": _("Does the plan call for a referral?"),
    "referral_approved": _("Referral approved?"),
    "wait_follow_up": _("Wait until the next follow-up"),
    "after_follow_up": _("What the follow-up proposes"),
    "after_closure": _("Case closed?"),
    "end": _("Case closed"),
}
KIND_LABELS = (
    (StartHandle, _("Case opened")),
    (End, _("End")),
    ((If, Switch), _("Decision")),
    (Split, _("Parallel steps")),
    (Join, _("Wait for every step")),
    (Timer, _("Timer")),
    (Function, _("Automatic step")),
)
EDGE_LABELS = {"yes": _("Yes"), "no": _("No")}


def node_label(node) -> str:
    """A node's label in the active language: its task title, its entry in CHART_LABELS, else its kind's label."""
    if node.name in CHART_LABELS:
        return force_str(CHART_LABELS[node.name])
    title = getattr(node, "task_title", None)
    # Viewflow titles a node it was given no title for after its Python name ("After Triage"): not a label.
    if title and not (isinstance(title, str) and title == node.name.replace("_", " ").title()):
        return force_str(title)
    for kinds, label in KIND_LABELS:
        if isinstance(node, kinds):
            return force_str(label)
    return force_str(_("Step"))


def _width(char: str) -> float:
    return 1.0 if unicodedata.east_asian_width(char) in ("W", "F") else 0.55


def wrap(text: str, units: float = LINE_UNITS) -> list[str]:
    """Lines of at most `units` full-width characters; Latin words are kept whole where they fit."""
    lines, line, used = [], "", 0.0
    for token in _tokens(text):
        size = sum(_width(c) for c in token)
        if line and used + size > units:
            lines.append(line.rstrip())
            line, used = token.lstrip(), sum(_width(c) for c in token.lstrip())
        else:
            line, used = line + token, used + size
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Each full-width character alone, Latin runs (with a leading space) together."""
    tokens, run = [], ""
    for char in text:
        if _width(char) == 1.0:
            if run:
                tokens.append(run)
                run = ""
            tokens.append(char)
        elif char == " " and run:
            tokens.append(run)
            run = char
        else:
            run += char
    if run:
        tokens.append(run)
    return tokens


def relabel(grid) -> None:
    """Every node's text and tooltip, and every edge's label, in the active language."""
    for cell in grid.cells:
        label = node_label(cell.node)
        cell.title = label
        if not cell.shape.text:  # round shapes (events, gateways) show their label as a tooltip
            continue
        lines = wrap(label)
        x = int(cell.shape.width / 2)
        top = int((cell.shape.height - max(len(lines) - 1, 0) * FONT_SIZE * 1.2) / 2)
        cell.shape.text = [
            (line, "align-middle", FONT_SIZE, x, int(top + n * FONT_SIZE * 1.2)) for n, line in enumerate(lines)
        ]
    for edge in grid.edges:
        if edge.label in EDGE_LABELS:
            edge.label = force_str(EDGE_LABELS[edge.label])


def chart_svg(flow_class, process_pk=None) -> str:
    """The flow's chart as SVG (with a process: its steps coloured by status), labelled in the active language."""
    grid = chart.calc_layout_data(flow_class)
    if process_pk is not None:
        chart.calc_cell_status(flow_class, grid, process_pk)
    relabel(grid)
    return chart.grid_to_svg(grid)
