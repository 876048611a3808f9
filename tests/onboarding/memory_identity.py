"""An in-memory :class:`IdentityService` for the fast controller-logic tests only.

It implements the contract's idempotency (names are keys) and nothing of Keystone's policy,
limits validation or cascading rules: those are exercised against the real Keystone in
``test_keystone.py``. ``down`` simulates an unreachable backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from central_api.providers.base import BackendUnavailable, NotFound
from central_api.providers.identity import (
    AppCredential,
    Domain,
    IdentityGroup,
    IdentityUser,
    Project,
    RoleGrant,
)


class MemoryIdentity:
    simulated = True
    label = "memory (test double)"

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.domains: dict[str, Domain] = {}
        self.projects: dict[str, Project] = {}
        self.users: dict[str, IdentityUser] = {}
        self.groups: dict[str, IdentityGroup] = {}
        self.assignments: set[RoleGrant] = set()
        self.limits_by_project: dict[str, dict[str, int]] = {}
        self.credentials: dict[str, AppCredential] = {}
        self.federations: dict[str, tuple[str, str, list[dict[str, object]]]] = {}
        self.down = False

    def _id(self) -> str:
        self._check()
        return f"id{next(self.ids)}"

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailable("Keystone at http://127.0.0.1:1/v3 is unreachable")

    async def ensure_domain(self, name: str, description: str,
                            expect_new: bool = False) -> Domain:
        self._check()
        found = next((d for d in self.domains.values() if d.name == name), None)
        if found is None:
            found = Domain(self._id(), name)
            self.domains[found.id] = found
        return found

    async def delete_domain(self, domain_id: str) -> None:
        self._check()
        if self.domains.pop(domain_id, None) is None:
            raise NotFound(domain_id)
        for table in (self.projects, self.users, self.groups):
            for key in [k for k, v in table.items() if v.domain_id == domain_id]:
                del table[key]

    async def ensure_project(self, domain_id: str, name: str,
                             expect_new: bool = False) -> Project:
        self._check()
        found = next((p for p in self.projects.values()
                      if p.name == name and p.domain_id == domain_id), None)
        if found is None:
            found = Project(self._id(), name, domain_id)
            self.projects[found.id] = found
        return found

    async def delete_project(self, project_id: str) -> None:
        self._check()
        self.projects.pop(project_id, None)

    async def ensure_user(self, domain_id: str, name: str, email: str = "",
                          expect_new: bool = False) -> IdentityUser:
        self._check()
        found = next((u for u in self.users.values()
                      if u.name == name and u.domain_id == domain_id), None)
        if found is None:
            found = IdentityUser(self._id(), name, domain_id, email)
            self.users[found.id] = found
        return found

    async def delete_user(self, user_id: str) -> None:
        self._check()
        self.users.pop(user_id, None)

    async def ensure_group(self, domain_id: str, name: str,
                           member_ids: list[str]) -> IdentityGroup:
        self._check()
        found = next((g for g in self.groups.values()
                      if g.name == name and g.domain_id == domain_id), None)
        group = IdentityGroup(found.id if found else self._id(), name, domain_id,
                              tuple(member_ids))
        self.groups[group.id] = group
        return group

    async def delete_group(self, group_id: str) -> None:
        self._check()
        self.groups.pop(group_id, None)

    async def grant(self, grant: RoleGrant) -> None:
        self._check()
        self.assignments.add(grant)

    async def revoke(self, grant: RoleGrant) -> None:
        self._check()
        self.assignments.discard(grant)

    async def grants(self, domain_id: str, projects: bool = True) -> list[RoleGrant]:
        self._check()
        own = {p.id for p in self.projects.values() if p.domain_id == domain_id} \
            if projects else set()
        return [g for g in self.assignments if g.domain_id == domain_id or g.project_id in own]

    async def set_limits(self, project_id: str, limits: Mapping[str, int]) -> None:
        self._check()
        self.limits_by_project[project_id] = dict(limits)

    async def limits(self, project_id: str) -> dict[str, int]:
        return dict(self.limits_by_project.get(project_id, {}))

    async def ensure_app_credential(self, user_id: str, project_id: str,
                                    name: str) -> AppCredential:
        self._check()
        if user_id in self.credentials:
            return AppCredential(self.credentials[user_id].id, name)
        credential = AppCredential(self._id(), name, secret=f"secret-{next(self.ids)}",
                                   auth={"auth_url": "http://keystone.test/v3"})
        self.credentials[user_id] = credential
        return credential

    async def delete_app_credential(self, user_id: str, credential_id: str) -> None:
        self._check()
        self.credentials.pop(user_id, None)

    async def ensure_federation(self, domain_id: str, idp_name: str, issuer: str,
                                mapping_rules: list[dict[str, object]]) -> None:
        self._check()
        self.federations[idp_name] = (domain_id, issuer, mapping_rules)

    async def delete_federation(self, idp_name: str) -> None:
        self._check()
        self.federations.pop(idp_name, None)
