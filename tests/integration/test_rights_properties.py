"""Property: for any department tree, users, owned records and role scopes, what a principal
can list and change is exactly what the rules allow — nothing more, nothing less (and
never another company's). Users follow the `users` rights; clients (the owned records
every CRM entity resembles) follow `clients.read` for listing and `clients.update` for
changing."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm.platform.auth import Principal, load_tenant
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.clients.tables import Client
from crm.tenants.users.scopes import records_in_scope
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import Department, User
from tests.conftest import TenantFactory


class Rollback(Exception):
    """Raised to undo one example's rows."""


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, object]:
    # parents[i] is the index of department i's parent (always an earlier one), or None.
    size = draw(st.integers(min_value=0, max_value=6))
    # Mostly nested trees, and most users in a department: that is where scopes differ.
    parents = [
        draw(st.one_of(st.none(), st.integers(0, i - 1), st.integers(0, i - 1))) if i else None for i in range(size)
    ]
    departments = st.one_of(st.none(), *[st.integers(0, size - 1)] * 3) if size else st.none()
    users = draw(st.lists(departments, min_size=1, max_size=8))
    viewer = draw(st.integers(0, len(users) - 1))
    scopes = st.sampled_from(["none", "own", "department", "department", "department", "all"])
    owners = st.one_of(st.none(), *[st.integers(0, len(users) - 1)] * 4)
    return {
        "parents": parents,
        "users": users,
        "viewer": viewer,
        "scope": draw(scopes),
        "clients": draw(st.lists(owners, max_size=8)),
        "client_read": draw(scopes),
        "client_update": draw(scopes),
    }


def expected(world: dict[str, object], scope: object = None) -> set[int]:
    """The rules, written plainly: indexes of the users the viewer may reach with ``scope``
    (the world's users scope unless given)."""
    parents: list[int | None] = world["parents"]  # type: ignore[assignment]
    users: list[int | None] = world["users"]  # type: ignore[assignment]
    viewer: int = world["viewer"]  # type: ignore[assignment]
    scope = scope or world["scope"]
    if scope == "all":
        return set(range(len(users)))
    if scope == "none":
        return set()
    if scope == "own" or users[viewer] is None:
        return {viewer}

    def under(department: int | None, root: int) -> bool:
        while department is not None:
            if department == root:
                return True
            department = parents[department]
        return False

    root = users[viewer]
    assert root is not None
    return {i for i, department in enumerate(users) if under(department, root)} | {viewer}


def expected_clients(world: dict[str, object], scope: str) -> set[int]:
    """Indexes of the clients whose responsible the viewer may reach with ``scope``."""
    owners: list[int | None] = world["clients"]  # type: ignore[assignment]
    if scope == "all":
        return set(range(len(owners)))
    reachable = expected(world, scope)
    return {i for i, owner in enumerate(owners) if owner is not None and owner in reachable}


async def _build_and_list(tenant: TenantRef, world: dict[str, object]) -> tuple[set[int], set[int], set[int]]:
    """(users listed, clients listed, clients changed) as indexes into the world."""
    parents: list[int | None] = world["parents"]  # type: ignore[assignment]
    users: list[int | None] = world["users"]  # type: ignore[assignment]
    viewer: int = world["viewer"]  # type: ignore[assignment]
    listed: set[int] = set()
    owners: list[int | None] = world["clients"]  # type: ignore[assignment]
    try:
        async with tenant_scope(tenant):
            department_ids: list[int] = []
            for parent in parents:
                rows = await Department.insert(
                    Department(name="d", parent_id=None if parent is None else department_ids[parent])
                ).returning(Department.id)
                department_ids.append(rows[0]["id"])
            user_ids: list[int] = []
            for index, department in enumerate(users):
                rows = await User.insert(
                    User(
                        email=f"p{index}@example.org",
                        name=f"P{index}",
                        department_id=None if department is None else department_ids[department],
                    )
                ).returning(User.id)
                user_ids.append(rows[0]["id"])
            principal = Principal(
                tenant=tenant,
                user_id=user_ids[viewer],
                email="",
                name="",
                locale="en",
                timezone="UTC",
                role="probe",
                token_id=0,
                department_id=None if users[viewer] is None else department_ids[users[viewer]],
                rights={
                    "users": {"read": str(world["scope"])},
                    "clients": {"read": str(world["client_read"]), "update": str(world["client_update"])},
                },
            )
            condition = await users_in_scope(principal, "read")
            emails = await User.select(User.email).where(condition).output(as_list=True)
            client_ids = []
            for index, owner in enumerate(owners):
                responsible = None if owner is None else user_ids[owner]
                rows = await Client.insert(
                    Client(kind="person", name=f"c{index}", responsible_id=responsible)
                ).returning(Client.id)
                client_ids.append(rows[0]["id"])
            readable = (
                await Client.select(Client.id)
                .where(await records_in_scope(principal, "clients", "read", Client.responsible_id))
                .output(as_list=True)
            )
            changed = (
                await Client.update({Client.name: "changed"})
                .where(await records_in_scope(principal, "clients", "update", Client.responsible_id))
                .returning(Client.id)
            )
            raise Rollback(
                emails,
                {client_ids.index(i) for i in readable},
                {client_ids.index(row["id"]) for row in changed},
            )
    except Rollback as done:
        for email in done.args[0]:
            if email.startswith("p") and email.endswith("@example.org"):
                listed.add(int(email[1 : email.index("@")]))
            else:
                listed.add(-1)  # the signed-up admin (or anything else) leaked into the result
        return listed, done.args[1], done.args[2]
    raise AssertionError("unreachable: the example always rolls back")


_companies: list[TenantRef] = []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds(), which=st.integers(0, 1))
# A chain Sales > North > North-West plus a separate Support: the viewer in Sales sees three.
@example(
    world={
        "parents": [None, 0, 1, None],
        "users": [0, 1, 2, 3, None],
        "viewer": 0,
        "scope": "department",
        "clients": [0, 1, 2, 3, 4, None],
        "client_read": "department",
        "client_update": "own",
    },
    which=1,
)
async def test_listing_matches_the_rules(make_tenant: TenantFactory, world: dict[str, object], which: int) -> None:
    if not _companies:  # two companies for all examples; each example's rows are rolled back
        for _ in range(2):
            tenant = await load_tenant(slug=(await make_tenant()).slug)
            assert tenant is not None
            _companies.append(tenant)
    allowed = expected(world)
    if world["scope"] == "all":
        allowed = allowed | {-1}  # `all` also sees the company's own admin
    users, readable, changed = await _build_and_list(_companies[which], world)
    assert users == allowed
    assert readable == expected_clients(world, str(world["client_read"]))
    assert changed == expected_clients(world, str(world["client_update"]))
