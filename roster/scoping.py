"""The one access-scoping layer: what a user may see and change, as querysets and predicates.

Every queryset that reaches a person (views, admin, exports, reports, API) goes through `visible()` or
`changeable()`; nothing filters by school or district by hand. Deny by default: a user with no role sees nothing.

A role held at a node covers that node's subtree (city → districts → schools → classes → students). Who may
change what is data in `roster.roles` (EDITORS, GRANTS).

May import: roster only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from roster.models import (
    LEVEL_FIELD,
    Absence,
    AccessCode,
    City,
    District,
    ImportJob,
    Leave,
    Mentorship,
    RoleAssignment,
    School,
    SchoolClass,
    SchoolMove,
    Student,
    User,
)
from roster.roles import ADMIN_SITE_ROLES, EDITORS, GRANTS, ROLE_LEVEL, Level, Role

# How each scoped model reaches each level of the tree: the lookup that yields that level's id.
_PATHS: dict[type[Model], dict[str, str]] = {}
_READERS: dict[type[Model], frozenset[str]] = {}  # models only some roles may read, whatever their subtree
_TEAMS: dict[type[Model], tuple[frozenset[str], str]] = {}  # roles that see only rows whose team they sit on
_RESTRICTED: dict[type[Model], tuple[str, frozenset[str]]] = {}  # a flag field, and the roles that read flagged rows
_ACCESS_GRANTS: dict[type[Model], tuple[str, frozenset[str]]] = {}  # a lookup to time-limited grants, who uses them
# Rows a scope reaches beyond its paths, by a rule the registering app owns (a case handed over to another school).
_ALSO: dict[type[Model], Callable[[Scope], Q | None]] = {}
# Where a restricted row's clearance is held, when not along the model's paths (a note: the school it was written at).
_CLEARED_AT: dict[type[Model], dict] = {}
# Lookups to the people a row is theirs to read whatever their roles' readers say (a mentor's own talk record, the
# person responsible for a help record), within nothing wider than that row: see register_scoped_model.
_AUTHORS: dict[type[Model], tuple[str, ...]] = {}


def register_scoped_model(
    model: type[Model], paths: dict[str, str], *, readers: frozenset[str] | None = None,
    team_roles: frozenset[str] = frozenset(), team: str = "",
    restricted: tuple[str, frozenset[str]] | None = None, grants: tuple[str, frozenset[str]] | None = None,
    cleared_at: dict | None = None, also: Callable[[Scope], Q | None] | None = None,
    authors: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Make `model` scoped: `paths` maps each Level to the lookup reaching that level's id ("pk" for itself), or to a
    tuple of lookups when a row lies at two places of the tree (a school move: in the receiving and sending districts).

    Apps above roster (e.g. cases: `{Level.SCHOOL: "school", ...}`) call this from AppConfig.ready(), so this layer
    scopes their rows without importing them. With `readers`, only roles in that set see any row (screening answers:
    never homeroom teachers, DESIGN §5). Holders of `team_roles` see, within their subtree, only the rows whose team
    they sit on: `team` is the lookup of the team rows (with `user` and `left_at`), e.g. "team" or "case__team".
    With `restricted` = (boolean field, roles), a row whose field is true is seen only by those roles, in their
    subtree (a restricted interview note: the school's psychology teachers and principal).
    With `grants` = (lookup, roles), a holder of one of those roles also sees, outside their subtree, the rows reachable
    through `<lookup>__user` = them and `<lookup>__expires_at` in the future (an emergency access to one case: the
    lookup is e.g. "emergency_grants" or "case__emergency_grants"); the restricted flag still applies.
    With `cleared_at` (paths like `paths`), a restricted row is read by the cleared roles holding their role along those
    paths instead of the model's own (a note: the school it was written at, or the school it was released to).
    With `also`, a function of the user's Scope giving a Q of further rows they read beyond their subtree, or None
    (a case handed over to another school: the sending school keeps reading what it wrote). The app that owns the rule
    registers it; readers, the restricted flag and everything else still apply.
    With `authors` (lookups to users), a staff member who holds any role reads the rows those lookups name them in,
    whatever the readers (care records: a mentor reads the talks they wrote, never the other records of a mentee).
    """
    unknown = set(paths) - set(Level.values)
    if unknown:
        raise ImproperlyConfigured(f"unknown levels {unknown} for {model.__name__}")
    if bool(team_roles) != bool(team):
        raise ImproperlyConfigured(f"{model.__name__}: team_roles and team go together")
    _PATHS[model] = dict(paths)
    if readers is not None:
        _READERS[model] = frozenset(readers)
    if team_roles:
        _TEAMS[model] = (frozenset(team_roles), team)
    if restricted is not None:
        _RESTRICTED[model] = (restricted[0], frozenset(restricted[1]))
    if grants is not None:
        _ACCESS_GRANTS[model] = (grants[0], frozenset(grants[1]))
    if cleared_at is not None:
        _CLEARED_AT[model] = dict(cleared_at)
    if also is not None:
        _ALSO[model] = also
    if authors:
        _AUTHORS[model] = tuple(authors)


register_scoped_model(City, {Level.CITY: "pk"})
register_scoped_model(District, {Level.CITY: "city", Level.DISTRICT: "pk"})
register_scoped_model(School, {Level.CITY: "district__city", Level.DISTRICT: "district", Level.SCHOOL: "pk"})
register_scoped_model(
    SchoolClass,
    {
        Level.CITY: "school__district__city",
        Level.DISTRICT: "school__district",
        Level.SCHOOL: "school",
        Level.CLASS: "pk",
    },
)
# A mentor (school level) sees only their current mentees (issue 20: the narrowest access of any staff role).
register_scoped_model(
    Student,
    {
        Level.CITY: "school__district__city",
        Level.DISTRICT: "school__district",
        Level.SCHOOL: "school",
        Level.CLASS: "school_class",
    },
    team_roles=frozenset({Role.MENTOR}),
    team="mentorships",
)
_STUDENT_PATHS = {
    Level.CITY: "student__school__district__city",
    Level.DISTRICT: "student__school__district",
    Level.SCHOOL: "student__school",
    Level.CLASS: "student__school_class",
}
# Who mentors whom: everyone over the student but subject teachers; a mentor reads their own mentorships.
register_scoped_model(
    Mentorship,
    {Level.CITY: "school__district__city", Level.DISTRICT: "school__district", Level.SCHOOL: "school",
     Level.CLASS: "student__school_class"},
    readers=frozenset(set(Role) - {Role.SUBJECT_TEACHER, Role.MENTOR}),
    authors=("user",),
)  # fmt: skip
# Attendance and leave: the school's people who act on them and the admins who import them; not mentors or subject
# teachers (a whole class's absences are not theirs to read).
_ATTENDANCE_READERS = frozenset(set(Role) - {Role.SUBJECT_TEACHER, Role.MENTOR, Role.DISTRICT_AUDITOR})
register_scoped_model(Absence, _STUDENT_PATHS, readers=_ATTENDANCE_READERS)
register_scoped_model(Leave, _STUDENT_PATHS, readers=_ATTENDANCE_READERS)
# A school move (issue 19) is reviewed by the admins over the receiving school; the district and city admins of the
# sending school see it too (a move out of their district), while only those over the receiving school decide
# (roster.moves.may_decide). Admin roles only: it names a student of another school.
register_scoped_model(
    SchoolMove,
    {
        Level.CITY: ("to_school__district__city", "from_school__district__city"),
        Level.DISTRICT: ("to_school__district", "from_school__district"),
        Level.SCHOOL: "to_school",
    },
    readers=frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.CITY_ADMIN}),
)
# Access codes are handed out by those who run a screening: never mentors or subject teachers.
register_scoped_model(
    AccessCode,
    {
        Level.CITY: "student__school__district__city",
        Level.DISTRICT: "student__school__district",
        Level.SCHOOL: "student__school",
        Level.CLASS: "student__school_class",
    },
    readers=frozenset(set(Role) - {Role.MENTOR, Role.SUBJECT_TEACHER}),
)
_LEVEL_MODEL = {Level.CITY: City, Level.DISTRICT: District, Level.SCHOOL: School, Level.CLASS: SchoolClass}


@dataclass(frozen=True)
class Held:
    """One role a user holds, at one node."""

    role: str
    level: str
    node_id: int
    school_id: int | None = None  # the school of a school- or class-level node


@dataclass(frozen=True)
class Scope:
    unrestricted: bool = False
    held: tuple[Held, ...] = field(default_factory=tuple)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(h.role for h in self.held)

    def school_ids(self) -> frozenset[int] | None:
        """The schools every row this user may see lies in, when all their roles are at schools or classes; None
        when a role reaches a district or city (or the user is unrestricted). A list page adds it as a literal filter
        the database can drive an index with, beside the scope's own conditions."""
        if self.unrestricted or any(h.school_id is None for h in self.held):
            return None
        return frozenset(h.school_id for h in self.held)

    def nodes(self, roles: frozenset[str] | None = None) -> dict[str, set[int]]:
        """Node ids by level where the user holds any of `roles` (all roles when None)."""
        by_level: dict[str, set[int]] = {level: set() for level in Level.values}
        for h in self.held:
            if roles is None or h.role in roles:
                by_level[h.level].add(h.node_id)
        return by_level


NO_SCOPE = Scope()


def scope_for(user) -> Scope:
    """The user's roles and nodes, read once per request (cached on the user object)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_SCOPE
    cached = getattr(user, "_roster_scope", None)
    if cached is not None:
        return cached
    held = []
    rows = RoleAssignment.objects.filter(user_id=user.pk).values_list(
        "role", "school_class__school_id", *(f"{f}_id" for f in LEVEL_FIELD.values())
    )
    for role, class_school_id, *node_ids in rows:
        level = ROLE_LEVEL[role]
        node_id = node_ids[list(LEVEL_FIELD).index(level)]
        school_id = node_id if level == Level.SCHOOL else class_school_id if level == Level.CLASS else None
        held.append(Held(role=role, level=level, node_id=node_id, school_id=school_id))
    scope = Scope(unrestricted=user.is_superuser, held=tuple(held))
    user._roster_scope = scope
    return scope


def forget_scope(user) -> None:
    """Drop the cached scope after the user's roles changed within the same request."""
    user.__dict__.pop("_roster_scope", None)


# --- Who holds a role over a place ------------------------------------------------------------------------------


def _over_q(node) -> Q:
    """Role assignments held at `node` or above it: a student's or class's class, school, district and city; a
    school's school, district and city; a district's district and city. One assignment row matches the role and the
    place together (a principal of one school who audits a district is no principal of that district's schools)."""
    if isinstance(node, District):
        return Q(district_id=node.pk) | Q(city_id=node.city_id)
    if isinstance(node, City):
        return Q(city_id=node.pk)
    if isinstance(node, School):
        return Q(school_id=node.pk) | Q(district_id=node.district_id) | Q(city__districts=node.district_id)
    if isinstance(node, Student):
        school_id, class_id = node.school_id, node.school_class_id
    elif isinstance(node, SchoolClass):
        school_id, class_id = node.school_id, node.pk
    else:
        raise TypeError(f"no place above a {type(node).__name__}")
    # By ids and joins: the caller need not have loaded the school or district.
    q = Q(school_id=school_id) | Q(district__schools=school_id) | Q(city__districts__schools=school_id)
    return q | Q(school_class_id=class_id) if class_id else q


def holders_over(node, roles) -> QuerySet:
    """Active staff holding any of `roles` at `node` or above it (see `_over_q`): whom a notice names, who may take
    a school's task, who may act on a case. The one place this upward question is asked.

    Access: for services deciding whom to tell or whether someone may act; not a list to show people.
    """
    roles = [roles] if isinstance(roles, str) else list(roles)
    held = RoleAssignment.objects.filter(_over_q(node), role__in=roles).values("user_id")
    return User.objects.filter(pk__in=held, is_active=True)


def holds_over(user, roles, node) -> bool:
    """Whether `user` holds any of `roles` at `node` or above it, in one assignment (role and place together)."""
    if not getattr(user, "is_active", False) or getattr(user, "is_anonymous", True):
        return False
    roles = [roles] if isinstance(roles, str) else list(roles)
    return RoleAssignment.objects.filter(_over_q(node), role__in=roles, user_id=user.pk).exists()


def works_at(user, school: School) -> bool:
    """Whether `user` holds any role at the school, at one of its classes, or above it: someone whose work there
    (tasks, seats) stays theirs when one of their roles is removed."""
    mine = RoleAssignment.objects.filter(user_id=user.pk)
    return mine.filter(_over_q(school) | Q(school_class__school_id=school.pk)).exists()


# --- Building blocks ------------------------------------------------------------------------------------------


def subtree_q(model: type[Model], nodes: dict[str, set[int]], prefix: str = "", paths: dict | None = None) -> Q:
    """Rows of `model` lying in the subtree of any of `nodes` (along `paths`, by default the model's registered ones).
    Empty nodes give a Q that matches nothing."""
    if model not in _PATHS:
        raise ImproperlyConfigured(f"{model.__name__} is not scoped: call roster.scoping.register_scoped_model()")
    q = Q(pk__in=[])
    for level, lookups in (_PATHS[model] if paths is None else paths).items():
        ids = nodes.get(level)
        if not ids:
            continue
        for lookup in (lookups,) if isinstance(lookups, str) else lookups:
            if lookup == "pk":
                path = prefix or "pk"
            else:
                path = f"{prefix}__{lookup}" if prefix else lookup
            q |= Q(**{f"{path}__in": ids})
    return q


def _assignments_in_subtree_q(nodes: dict[str, set[int]]) -> Q:
    q = Q(pk__in=[])
    for level, fk in LEVEL_FIELD.items():
        q |= subtree_q(_LEVEL_MODEL[level], nodes, prefix=fk)
    return q


def _manageable_assignments_q(scope: Scope) -> Q:
    """Role assignments this user may grant, change or revoke (roster.roles.GRANTS within their subtree)."""
    q = Q(pk__in=[])
    for h in scope.held:
        grantable = GRANTS.get(h.role)
        if grantable:
            q |= Q(role__in=grantable) & _assignments_in_subtree_q({h.level: {h.node_id}})
    return q


def _staff_visible(scope: Scope, qs: QuerySet) -> QuerySet:
    seen = RoleAssignment.objects.filter(_assignments_in_subtree_q(scope.nodes()))
    return qs.filter(pk__in=seen.values("user_id"))


def _staff_manageable(scope: Scope, qs: QuerySet) -> QuerySet:
    """Staff all of whose roles this user may manage: a teacher who also holds a role elsewhere is not theirs."""
    manageable = _manageable_assignments_q(scope)
    mine = RoleAssignment.objects.filter(manageable).values("user_id")
    elsewhere = RoleAssignment.objects.exclude(manageable).values("user_id")
    return qs.filter(pk__in=mine, is_superuser=False).exclude(pk__in=elsewhere)


# --- The public API: querysets --------------------------------------------------------------------------------


def _queryset(model_or_qs) -> QuerySet:
    return model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()


def visible(user, model_or_qs) -> QuerySet:
    """The rows of a scoped model (or narrowed queryset) this user may see.

    Access: any user; no role means an empty queryset.
    """
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    if qs.model is User:
        return _staff_visible(scope, qs)
    if qs.model is ImportJob:
        return qs.filter(created_by_id=user.pk)  # an upload holds a whole roster: its uploader's alone
    return qs.filter(_visible_q(user, scope, qs.model))


def visible_withheld(user, model_or_qs) -> QuerySet:
    """The rows the user would see but for the restricted flag (see register_scoped_model): a page may say that such a
    row exists (a restricted note was recorded, and when) but never show its content. Empty for unflagged models."""
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted or qs.model not in _RESTRICTED:
        return qs.none()
    flag, _roles = _RESTRICTED[qs.model]
    flagged = qs.filter(_readable_q(user, scope, qs.model), **{flag: True})
    return flagged.exclude(_unflagged_or_cleared_q(scope, qs.model))


def _visible_q(user, scope: Scope, model: type[Model]) -> Q:
    q = _readable_q(user, scope, model)
    return q & _unflagged_or_cleared_q(scope, model) if model in _RESTRICTED else q


def _unflagged_or_cleared_q(scope: Scope, model: type[Model]) -> Q:
    """Rows not flagged restricted, or in the subtree of a role cleared to read restricted rows (along the model's
    `cleared_at` paths when it has them)."""
    flag, roles = _RESTRICTED[model]
    return Q(**{flag: False}) | subtree_q(model, scope.nodes(roles), paths=_CLEARED_AT.get(model))


def _authored_q(user, scope: Scope, model: type[Model]) -> Q | None:
    lookups = _AUTHORS.get(model)
    if not lookups or not scope.held:
        return None
    q = Q()
    for lookup in lookups:
        q |= Q(**{lookup: user.pk})
    return q


def _readable_q(user, scope: Scope, model: type[Model]) -> Q:
    q = _held_q(user, scope, model)
    for extra in (_granted_q(user, scope, model), _also_q(scope, model), _authored_q(user, scope, model)):
        if extra is not None:
            q |= extra
    return q


def _also_q(scope: Scope, model: type[Model]) -> Q | None:
    """The rows the model's `also` rule gives this scope (see register_scoped_model), within the model's readers."""
    rule = _ALSO.get(model)
    if rule is None:
        return None
    readers = _READERS.get(model)
    if readers is not None:
        scope = Scope(held=tuple(h for h in scope.held if h.role in readers))
    return rule(scope) if scope.held else None


def _granted_q(user, scope: Scope, model: type[Model]) -> Q | None:
    """The rows the user reaches through an unexpired grant (see register_scoped_model); None when they hold no role
    that may use one, so everyone else's queries stay as they were."""
    if model not in _ACCESS_GRANTS:
        return None
    lookup, roles = _ACCESS_GRANTS[model]
    if not scope.roles & roles:
        return None
    rows = model._default_manager.filter(**{f"{lookup}__user": user.pk, f"{lookup}__expires_at__gt": timezone.now()})
    return Q(pk__in=rows.values("pk"))


def visible_by_grant(user, model_or_qs) -> QuerySet:
    """The rows the user sees through an unexpired grant alone (empty for models without grants): a list page that
    narrows by `Scope.school_ids()` adds these back."""
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    q = _granted_q(user, scope, qs.model)
    if q is None:
        return qs.none()
    if qs.model in _RESTRICTED:
        q &= _unflagged_or_cleared_q(scope, qs.model)
    return qs.filter(q)


def visible_by_rule(user, model_or_qs) -> QuerySet:
    """The rows the user sees through the model's `also` rule (empty without one): a list page that narrows by
    `Scope.school_ids()` adds these back (a case that moved to another school, read by the school it left)."""
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    q = _also_q(scope, qs.model)
    if q is None:
        return qs.none()
    if qs.model in _RESTRICTED:
        q &= _unflagged_or_cleared_q(scope, qs.model)
    return qs.filter(q)


def _held_q(user, scope: Scope, model: type[Model]) -> Q:
    """The rows the user's roles reach in their subtrees (with the readers and team rules)."""
    readers = _READERS.get(model)
    if model not in _TEAMS:
        return subtree_q(model, scope.nodes(readers))
    team_roles, team = _TEAMS[model]
    everyone = readers if readers is not None else frozenset(ROLE_LEVEL)
    q = subtree_q(model, scope.nodes(everyone - team_roles))
    team_nodes = scope.nodes(everyone & team_roles)
    if any(team_nodes.values()):
        # An active seat is enough for its holder, wherever the row's student is now: a homeroom teacher stays on a
        # case while its student's move to another school waits for acceptance (the sending team is responsible).
        seated = model._default_manager.filter(**{f"{team}__user": user.pk, f"{team}__left_at__isnull": True})
        q |= Q(pk__in=seated.values("pk"))
    return q


def changeable(user, model_or_qs) -> QuerySet:
    """The rows this user may change: org records per roster.roles.EDITORS, staff per GRANTS."""
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    if qs.model is User:
        return _staff_manageable(scope, qs)
    editors = EDITORS.get(qs.model._meta.label_lower)
    if not editors:
        return qs.none()
    return qs.filter(subtree_q(qs.model, scope.nodes(editors)))


def within_readers_scope(user, model_or_qs, of_model: type[Model]) -> QuerySet:
    """Rows of `model_or_qs` inside the subtrees where the user holds a role allowed to read `of_model`.

    E.g. the students whose screening results a user may import: psychology roles of their school, not its admin.
    """
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    return qs.filter(subtree_q(qs.model, scope.nodes(_READERS.get(of_model))))


def readers_q(user, model: type[Model], of_model: type[Model], prefix: str = "") -> Q:
    """within_readers_scope as a condition on `model`'s own paths, for a filter inside an aggregate (a count of the
    readable among the visible). Q() where it narrows nothing of visible(user, model): the user holds a reader's role
    wherever they hold any (a centre, a principal, a psychology teacher), so the database is not asked to check it.
    With `prefix`, on rows reaching `model` through that lookup (a join, where an IN (subquery) would be slower)."""
    scope = scope_for(user)
    if scope.unrestricted:
        return Q()
    readers_nodes = scope.nodes(_READERS.get(of_model))
    # A team rule narrows only its holders (a mentor's Student rows): for anyone else the model is plain here.
    teams = _TEAMS.get(model)
    narrowed_by_team = teams is not None and bool(scope.roles & teams[0])
    plain = model not in _READERS and not narrowed_by_team and model not in _ACCESS_GRANTS
    if plain and readers_nodes == scope.nodes() and not prefix:
        return Q()
    return subtree_q(model, readers_nodes, prefix=prefix)


def within_roles(user, model_or_qs, roles) -> QuerySet:
    """Rows of `model_or_qs` inside the subtrees where the user holds any of `roles`.

    E.g. the classes a user may proctor: their own class as its homeroom teacher, every class of their school as its
    psychology teacher or principal. Access: any user; holding none of `roles` means an empty queryset.
    """
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    return qs.filter(subtree_q(qs.model, scope.nodes(frozenset(roles))))


def may_read_some(user, model: type[Model]) -> bool:
    """Whether this user holds a role that reads `model` rows somewhere (no query): what a menu or a page's gate
    asks before the rows themselves are filtered."""
    scope = scope_for(user)
    if scope.unrestricted:
        return True
    readers = _READERS.get(model)
    return bool(scope.roles) if readers is None else bool(scope.roles & readers)


def may_change_some(user, model: type[Model]) -> bool:
    """Whether this user holds a role that changes or creates `model` rows somewhere (no query)."""
    scope = scope_for(user)
    if scope.unrestricted:
        return True
    if model is User:
        return any(h.role in GRANTS for h in scope.held)
    return bool(scope.roles & EDITORS.get(model._meta.label_lower, frozenset()))


def parents_for_new(user, child: type[Model], parent_qs) -> QuerySet:
    """Where this user may create `child` rows: e.g. the schools a school admin may add students to."""
    qs = _queryset(parent_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    editors = EDITORS.get(child._meta.label_lower, frozenset())
    return qs.filter(subtree_q(qs.model, scope.nodes(editors)))


def can_view(user, obj: Model) -> bool:
    return visible(user, type(obj)._default_manager.filter(pk=obj.pk)).exists()


def can_change(user, obj: Model) -> bool:
    return changeable(user, type(obj)._default_manager.filter(pk=obj.pk)).exists()


def can_use_admin(user) -> bool:
    scope = scope_for(user)
    return scope.unrestricted or bool(scope.roles & ADMIN_SITE_ROLES)


# --- Granting roles -------------------------------------------------------------------------------------------


def grantable_roles(user) -> frozenset[str]:
    scope = scope_for(user)
    if scope.unrestricted:
        return frozenset(ROLE_LEVEL)
    return frozenset().union(*(GRANTS.get(h.role, frozenset()) for h in scope.held))


def grant_nodes(user, level: str) -> QuerySet:
    """Nodes of `level` at which this user may grant at least one role."""
    model = _LEVEL_MODEL[level]
    scope = scope_for(user)
    if scope.unrestricted:
        return model._default_manager.all()
    q = Q(pk__in=[])
    for h in scope.held:
        if any(ROLE_LEVEL[role] == level for role in GRANTS.get(h.role, ())):
            q |= subtree_q(model, {h.level: {h.node_id}})
    return model._default_manager.filter(q)


def can_grant(user, assignment: RoleAssignment) -> bool:
    """Whether this user may create, change or revoke this (possibly unsaved) role assignment."""
    if not assignment.role or assignment.node is None:
        return False
    scope = scope_for(user)
    if scope.unrestricted:
        return True
    node = assignment.node
    for h in scope.held:
        if assignment.role in GRANTS.get(h.role, ()) and _in_subtree(node, {h.level: {h.node_id}}):
            return True
    return False


def _in_subtree(obj: Model, nodes: dict[str, set[int]]) -> bool:
    model = type(obj)
    return model._default_manager.filter(subtree_q(model, nodes), pk=obj.pk).exists()


# --- Identities: who sees a student's name, birth date, guardian and special groups ----------------------------

# Roles held at a student's own school or class. Above a school (city and district admins, centres, the auditor),
# students are seen masked and counted (docs/SECURITY.md §3); a case reader outside the school reads the student's
# name on the case pages, which decide that themselves.
IDENTITY_ROLES = frozenset(role for role, level in ROLE_LEVEL.items() if level in (Level.SCHOOL, Level.CLASS))


def identities_visible(user, model_or_qs) -> QuerySet:
    """The rows (students, or rows scoped through a student's school and class) whose student this user sees
    identified: name, birth date, guardian and phone, special groups. Superusers see every one.

    Access: any user; the rows are not narrowed by `visible()` here (callers pass a visible queryset).
    """
    qs = _queryset(model_or_qs)
    scope = scope_for(user)
    if scope.unrestricted:
        return qs
    return qs.filter(subtree_q(qs.model, scope.nodes(IDENTITY_ROLES)))


def identities_visible_everywhere(user) -> bool:
    """Whether every student this user sees, they see identified (no query): a superuser, or someone all of whose
    roles are held at schools and classes. A page asks this before it looks at rows one by one."""
    scope = scope_for(user)
    return scope.unrestricted or (bool(scope.held) and all(h.role in IDENTITY_ROLES for h in scope.held))
