"""``KeystoneIdentity`` against a real Keystone (Debian's Zed with the SCS policy).

Every effect is verified with openstacksdk directly against Keystone, not through the provider
under test, so a provider bug cannot hide itself. Tests share the session's Keystone and use
unique names; the outage test restarts it on the same data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import openstack
import pytest
from openstack import exceptions as os_exc

from central_api.providers.base import BackendUnavailable, InvalidRequest
from central_api.providers.identity import RoleGrant
from central_api.providers.keystone import KeystoneIdentity
from tests.keystone import KeystoneServer

pytestmark = pytest.mark.slow
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(keystone: KeystoneServer) -> Any:
    conn = keystone.connection()
    yield conn
    conn.close()


@pytest.fixture
def identity(keystone: KeystoneServer) -> KeystoneIdentity:
    return KeystoneIdentity(keystone.admin_auth, timeout=30)


def assign(conn: Any, target: str, actor: str, role: str) -> int:
    """PUT a role assignment and return Keystone's status (openstacksdk's assign_* helpers
    swallow refusals, so they cannot show that the policy said no)."""
    return int(conn.identity.put(f"{target}{actor}/roles/{role}").status_code)


def role_id(admin: Any, role: str) -> str:
    return next(iter(admin.identity.roles(name=role))).id


def test_ensure_twice_gives_one_of_each(identity: KeystoneIdentity, admin: Any) -> None:
    dname = name("acme")
    # The second call of each pair wrongly expects a new object (create first): Keystone's
    # 409 leads to the existing one, updated as asked.
    d1 = run(identity.ensure_domain(dname, "Acme Inc.", expect_new=True))
    d2 = run(identity.ensure_domain(dname, "Acme Corp.", expect_new=True))
    assert d1.id == d2.id and d2.enabled
    assert [d.id for d in admin.identity.domains(name=dname)] == [d1.id]
    assert admin.identity.get_domain(d1.id).description == "Acme Corp."

    p1 = run(identity.ensure_project(d1.id, f"{dname}-default"))
    p2 = run(identity.ensure_project(d1.id, f"{dname}-default", expect_new=True))
    assert p1 == p2 and p1.domain_id == d1.id
    assert len(list(admin.identity.projects(domain_id=d1.id))) == 1

    u1 = run(identity.ensure_user(d1.id, "alice", "alice@example.com"))
    u2 = run(identity.ensure_user(d1.id, "alice", "alice@acme.example", expect_new=True))
    assert u1.id == u2.id and u2.email == "alice@acme.example"
    users = list(admin.identity.users(domain_id=d1.id))
    assert [u.id for u in users] == [u1.id] and users[0].email == "alice@acme.example"
    bob = run(identity.ensure_user(d1.id, "bob"))

    g1 = run(identity.ensure_group(d1.id, "ops", [u1.id, bob.id]))
    g2 = run(identity.ensure_group(d1.id, "ops", [bob.id]))
    assert g1.id == g2.id and g2.members == (bob.id,)
    assert [g.id for g in admin.identity.groups(domain_id=d1.id)] == [g1.id]
    assert {u.id for u in admin.identity.group_users(g1.id)} == {bob.id}

    run(identity.delete_group(g1.id))
    run(identity.delete_group(g1.id))
    run(identity.delete_user(bob.id))
    run(identity.delete_user(bob.id))
    run(identity.delete_project(p1.id))
    run(identity.delete_project(p1.id))
    assert list(admin.identity.groups(domain_id=d1.id)) == []
    assert [u.name for u in admin.identity.users(domain_id=d1.id)] == ["alice"]
    assert list(admin.identity.projects(domain_id=d1.id)) == []
    run(identity.delete_domain(d1.id))


def test_grants_on_domain_and_project(identity: KeystoneIdentity, admin: Any) -> None:
    domain = run(identity.ensure_domain(name("grants"), ""))
    project = run(identity.ensure_project(domain.id, "p"))
    user = run(identity.ensure_user(domain.id, "carol"))
    group = run(identity.ensure_group(domain.id, "readers", [user.id]))
    wanted = [RoleGrant(role="manager", user_id=user.id, domain_id=domain.id),
              RoleGrant(role="member", user_id=user.id, project_id=project.id),
              RoleGrant(role="reader", group_id=group.id, project_id=project.id),
              RoleGrant(role="reader", group_id=group.id, domain_id=domain.id)]
    for grant in wanted + wanted:  # twice: idempotent
        run(identity.grant(grant))

    found = run(identity.grants(domain.id))
    assert sorted(found, key=repr) == sorted(wanted, key=repr)
    raw = {(a.role["id"], (a.user or {}).get("id"), (a.group or {}).get("id"))
           for a in admin.identity.role_assignments(scope_project_id=project.id)}
    assert raw == {(role_id(admin, "member"), user.id, None),
                   (role_id(admin, "reader"), None, group.id)}

    for grant in wanted:
        run(identity.revoke(grant))
        run(identity.revoke(grant))  # already gone: fine
    assert run(identity.grants(domain.id)) == []
    assert list(admin.identity.role_assignments(scope_domain_id=domain.id)) == []
    with pytest.raises(InvalidRequest):
        run(identity.grant(RoleGrant(role="member", user_id=user.id)))
    with pytest.raises(InvalidRequest):
        run(identity.grant(RoleGrant(role="no-such-role", user_id=user.id,
                                     domain_id=domain.id)))
    run(identity.delete_domain(domain.id))


def test_unified_limits(identity: KeystoneIdentity, keystone: KeystoneServer) -> None:
    # Keystone shows a project-scoped token only its own project's limits: verify as system.
    admin = keystone.connection(keystone.system_auth)
    domain = run(identity.ensure_domain(name("limits"), ""))
    project = run(identity.ensure_project(domain.id, "p"))
    quota = {"compute:instances": 5, "compute:cores": 10, "compute:ram_mib": 20480,
             "block-storage:volumes": 4, "block-storage:gigabytes": 100,
             "network:floatingip": 2, "network:network": 3}
    run(identity.set_limits(project.id, quota))
    assert run(identity.limits(project.id)) == quota
    services = {s.type: s.id for s in admin.identity.services()}
    raw = {(lim.service_id, lim.resource_name): lim.resource_limit
           for lim in admin.identity.limits(project_id=project.id)}
    assert raw[(services["compute"], "cores")] == 10
    assert raw[(services["network"], "floatingip")] == 2
    assert len(raw) == 7
    # registered limits exist with default 0 (a project without a limit gets nothing)
    registered = {(r.service_id, r.resource_name): r.default_limit
                  for r in admin.identity.registered_limits()}
    assert registered[(services["block-storage"], "gigabytes")] == 0

    run(identity.set_limits(project.id, {"compute:cores": 20, "network:network": 3}))
    assert run(identity.limits(project.id)) == {"compute:cores": 20, "network:network": 3}
    assert {lim.resource_name: lim.resource_limit
            for lim in admin.identity.limits(project_id=project.id)} == {"cores": 20,
                                                                        "network": 3}
    run(identity.set_limits(project.id, {}))
    assert list(admin.identity.limits(project_id=project.id)) == []
    with pytest.raises(InvalidRequest):
        run(identity.set_limits(project.id, {"cores": 1}))
    with pytest.raises(InvalidRequest):
        run(identity.set_limits(project.id, {"dns:zones": 1}))
    run(identity.delete_domain(domain.id))


def test_application_credential_authenticates(identity: KeystoneIdentity, admin: Any,
                                              keystone: KeystoneServer) -> None:
    domain = run(identity.ensure_domain(name("appcred"), ""))
    project = run(identity.ensure_project(domain.id, "p"))
    user = run(identity.ensure_user(domain.id, "central-api"))
    run(identity.grant(RoleGrant(role="member", user_id=user.id, project_id=project.id)))

    cred = run(identity.ensure_app_credential(user.id, project.id, "provider"))
    assert cred.secret and cred.auth["application_credential_secret"] == cred.secret
    conn = openstack.connect(auth=dict(cred.auth), auth_type="v3applicationcredential",
                             load_yaml_config=False, load_envvars=False)
    token = conn.session.get_token()
    assert token
    assert conn.session.get_project_id() == project.id
    conn.close()

    again = run(identity.ensure_app_credential(user.id, project.id, "provider"))
    assert again.id == cred.id and again.secret == ""
    assert [c.id for c in admin.identity.application_credentials(user.id)] == [cred.id]

    run(identity.delete_app_credential(user.id, cred.id))
    run(identity.delete_app_credential(user.id, cred.id))
    assert list(admin.identity.application_credentials(user.id)) == []
    conn = openstack.connect(auth=dict(cred.auth), auth_type="v3applicationcredential",
                             load_yaml_config=False, load_envvars=False)
    with pytest.raises(Exception, match="(?i)unauthorized|401|could not find"):
        conn.session.get_token()
    run(identity.delete_domain(domain.id))


def test_federation_objects(identity: KeystoneIdentity, admin: Any) -> None:
    domain = run(identity.ensure_domain(name("fed"), ""))
    idp = name("acme-idp")
    issuer = f"https://login.{idp}.example/realms/acme"
    rules: list[dict[str, object]] = [{
        "local": [{"user": {"name": "{0}", "email": "{1}"}},
                  {"group": {"name": "members", "domain": {"id": domain.id}}}],
        "remote": [{"type": "OIDC-preferred_username"}, {"type": "OIDC-email"}]}]
    run(identity.ensure_federation(domain.id, idp, issuer, rules))
    run(identity.ensure_federation(domain.id, idp, issuer, rules))
    got = admin.identity.get_identity_provider(idp)
    assert got.remote_ids == [issuer] and got.domain_id == domain.id and got.is_enabled
    assert admin.identity.get_mapping(f"{idp}-openid").rules == rules
    protocol = admin.identity.get_federation_protocol(idp, "openid")
    assert protocol.mapping_id == f"{idp}-openid"

    rules2 = [{**rules[0], "remote": [{"type": "OIDC-sub"}, {"type": "OIDC-email"}]}]
    run(identity.ensure_federation(domain.id, idp, issuer, rules2))
    assert admin.identity.get_mapping(f"{idp}-openid").rules == rules2

    run(identity.delete_federation(idp))
    run(identity.delete_federation(idp))
    with pytest.raises(os_exc.NotFoundException):
        admin.identity.get_identity_provider(idp)
    with pytest.raises(os_exc.NotFoundException):
        admin.identity.get_mapping(f"{idp}-openid")
    run(identity.delete_domain(domain.id))


def test_delete_domain_with_content(identity: KeystoneIdentity,
                                    keystone: KeystoneServer) -> None:
    admin = keystone.connection(keystone.system_auth)
    domain = run(identity.ensure_domain(name("gone"), ""))
    project = run(identity.ensure_project(domain.id, "p"))
    user = run(identity.ensure_user(domain.id, "dave"))
    group = run(identity.ensure_group(domain.id, "g", [user.id]))
    run(identity.grant(RoleGrant(role="manager", user_id=user.id, domain_id=domain.id)))
    run(identity.grant(RoleGrant(role="member", group_id=group.id, project_id=project.id)))
    run(identity.set_limits(project.id, {"compute:cores": 4}))

    run(identity.delete_domain(domain.id))
    run(identity.delete_domain(domain.id))  # already gone: fine
    for fetch, obj in ((admin.identity.get_domain, domain.id),
                       (admin.identity.get_project, project.id),
                       (admin.identity.get_user, user.id),
                       (admin.identity.get_group, group.id)):
        with pytest.raises(os_exc.NotFoundException):
            fetch(obj)
    assert list(admin.identity.limits(project_id=project.id)) == []


def test_keystone_down_then_back(keystone: KeystoneServer, admin: Any) -> None:
    identity = KeystoneIdentity(keystone.admin_auth, timeout=20)
    dname = name("outage")
    domain = run(identity.ensure_domain(dname, ""))
    keystone.stop()
    try:
        with pytest.raises(BackendUnavailable):
            run(identity.ensure_project(domain.id, "p"))
        with pytest.raises(BackendUnavailable):
            run(identity.ensure_domain(name("never"), ""))
    finally:
        keystone.start()
    project = run(identity.ensure_project(domain.id, "p"))  # same provider object, recovered
    assert run(identity.ensure_domain(dname, "")).id == domain.id
    assert [p.id for p in admin.identity.projects(domain_id=domain.id)] == [project.id]
    run(identity.delete_domain(domain.id))


def test_domain_manager_policy(keystone: KeystoneServer, identity: KeystoneIdentity,
                               admin: Any) -> None:
    """scs-0302 on Zed with the SCS policy: `manager` on domain A manages A, nothing else."""
    dom_a = run(identity.ensure_domain(name("dm-a"), ""))
    dom_b = run(identity.ensure_domain(name("dm-b"), ""))
    project_b = run(identity.ensure_project(dom_b.id, "b-project"))
    user_b = run(identity.ensure_user(dom_b.id, "victim"))
    password = uuid.uuid4().hex
    mgr = admin.identity.create_user(domain_id=dom_a.id, name="boss", password=password)
    run(identity.grant(RoleGrant(role="manager", user_id=mgr.id, domain_id=dom_a.id)))
    auth = {"auth_url": keystone.auth_url, "user_id": mgr.id, "password": password,
            "domain_id": dom_a.id}
    conn = keystone.connection(auth)
    ident = conn.identity
    roles = {r: role_id(admin, r) for r in ("admin", "member", "reader", "manager")}

    # allowed in A: users, projects, groups, membership, managed-role grants
    new_user = ident.create_user(domain_id=dom_a.id, name="worker", password=uuid.uuid4().hex)
    project = ident.create_project(domain_id=dom_a.id, name="a-project")
    group = ident.create_group(domain_id=dom_a.id, name="a-group")
    ident.add_user_to_group(new_user, group)
    assert assign(conn, f"/projects/{project.id}", f"/users/{new_user.id}",
                  roles["member"]) == 204
    assert assign(conn, f"/domains/{dom_a.id}", f"/groups/{group.id}", roles["reader"]) == 204
    assert assign(conn, f"/domains/{dom_a.id}", f"/users/{new_user.id}",
                  roles["manager"]) == 204
    assert ident.validate_user_has_project_role(project, new_user, roles["member"])
    assert {u.id for u in ident.users(domain_id=dom_a.id)} == {mgr.id, new_user.id}
    assert ident.get_domain(dom_a.id).id == dom_a.id
    ident.unassign_project_role_from_user(project, new_user, roles["member"])

    # never admin, not even inside A
    assert assign(conn, f"/projects/{project.id}", f"/users/{new_user.id}",
                  roles["admin"]) == 403
    assert assign(conn, f"/domains/{dom_a.id}", f"/users/{new_user.id}", roles["admin"]) == 403
    assert assign(conn, f"/domains/{dom_a.id}", f"/groups/{group.id}", roles["admin"]) == 403
    # never domain B: not readable, not writable, no cross-domain grants
    with pytest.raises(os_exc.ForbiddenException):
        ident.get_domain(dom_b.id)
    # Keystone answers some lists for another domain with 403 and others (users) with the
    # token's domain filter applied, i.e. an empty list: either way nothing of B is seen.
    for listing in (lambda: ident.users(domain_id=dom_b.id),
                    lambda: ident.projects(domain_id=dom_b.id),
                    lambda: ident.groups(domain_id=dom_b.id),
                    lambda: ident.role_assignments(scope_domain_id=dom_b.id),
                    lambda: ident.role_assignments(scope_project_id=project_b.id)):
        try:
            assert list(listing()) == []
        except os_exc.ForbiddenException:
            pass
    with pytest.raises(os_exc.ForbiddenException):
        ident.get_user(user_b.id)
    with pytest.raises(os_exc.ForbiddenException):
        ident.get_project(project_b.id)
    with pytest.raises(os_exc.ForbiddenException):
        ident.create_user(domain_id=dom_b.id, name="intruder")
    with pytest.raises(os_exc.ForbiddenException):
        ident.create_project(domain_id=dom_b.id, name="intruder")
    with pytest.raises(os_exc.ForbiddenException):
        ident.delete_user(user_b.id)
    assert assign(conn, f"/projects/{project_b.id}", f"/users/{new_user.id}",
                  roles["member"]) == 403
    assert assign(conn, f"/projects/{project.id}", f"/users/{user_b.id}",
                  roles["member"]) == 403
    assert assign(conn, f"/domains/{dom_b.id}", f"/users/{new_user.id}",
                  roles["member"]) == 403
    assert not [a for a in admin.identity.role_assignments(user_id=new_user.id)
                if a.role["id"] == roles["admin"]]
    # no new domains or roles
    with pytest.raises(os_exc.ForbiddenException):
        ident.create_domain(name=name("rogue"))
    with pytest.raises(os_exc.ForbiddenException):
        ident.create_role(name=name("rogue"))
    conn.close()

    # the provider itself works with the domain manager's domain-scoped credentials
    as_manager = KeystoneIdentity(auth, timeout=30)
    user = run(as_manager.ensure_user(dom_a.id, "via-provider", "v@acme.example"))
    assert run(as_manager.ensure_user(dom_a.id, "via-provider")).id == user.id
    proj = run(as_manager.ensure_project(dom_a.id, "via-provider"))
    run(as_manager.grant(RoleGrant(role="member", user_id=user.id, project_id=proj.id)))
    assert RoleGrant(role="member", user_id=user.id, project_id=proj.id) in run(
        as_manager.grants(dom_a.id))
    with pytest.raises(InvalidRequest, match="not permitted"):
        run(as_manager.grant(RoleGrant(role="admin", user_id=user.id, project_id=proj.id)))
    with pytest.raises(InvalidRequest, match="not permitted"):
        run(as_manager.ensure_domain(name("rogue"), ""))
    with pytest.raises(InvalidRequest, match="not permitted"):
        run(as_manager.ensure_user(dom_b.id, "intruder"))

    run(identity.delete_domain(dom_a.id))
    run(identity.delete_domain(dom_b.id))
