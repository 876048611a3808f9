"""The sandbox identity backend: a clearly labelled *simulated* Keystone.

It implements the same :class:`~central_api.providers.identity.IdentityService` contract as
:class:`~central_api.providers.keystone.KeystoneIdentity`, so tenant onboarding and the IAM
kinds work on the embedded default without an OpenStack — and the same onboarding suite runs
against both, so they cannot drift apart. Its records live in the API's store under
``sandbox/identity-*`` (like the sandbox cloud: durable, shared by replicas, invisible to the
API). IDs are random like Keystone's; every credential it issues names the sandbox as its
``auth_url``, so nothing it hands out can be mistaken for a real login.

Keystone's rules that controllers rely on are kept: names are unique per domain, deletes are
idempotent, deleting a domain removes its projects, users, groups, credentials and role
assignments, role assignments need an existing role, actor and target, and limits must be
``service:resource`` names with non-negative values. Injected faults of kind ``Identity``
(:mod:`.faults`) make it unavailable, slow or refusing, like a Keystone outage.

Crash safety without multi-key transactions: a record is stored under its name (the claim:
``KeyExists`` means an earlier attempt created it, which is then reused), then an index from
its id; a record whose index is missing gets it again on the next lookup by name.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ...store.base import Key, KeyExists, KeyNotFound, Store
from ...store.offload import off_loop
from ..base import InvalidRequest, NotFound
from ..identity import (
    AppCredential,
    Domain,
    IdentityGroup,
    IdentityUser,
    Project,
    RoleGrant,
)
from .faults import Faults
from .keys import IDENTITY
from .settings import PREFIX, SandboxSettings

T = TypeVar("T")
Record = dict[str, Any]

AUTH_URL = "sandbox://identity/v3"
"""The ``auth_url`` of every sandbox credential: no client can reach a real cloud with it."""
ROLES = frozenset({"admin", "manager", "member", "reader", "load-balancer_member"})
"""Keystone's default roles (2023.1 and later), and Octavia's: the sandbox cloud has load
balancers."""
LIMIT_NAME = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9_]*$")
IDS = "sandbox/identity-ids"
DOMAINS, PROJECTS = "sandbox/identity-domains", "sandbox/identity-projects"
USERS, GROUPS = "sandbox/identity-users", "sandbox/identity-groups"
GRANTS, CREDENTIALS = "sandbox/identity-grants", "sandbox/identity-credentials"
FEDERATIONS = "sandbox/identity-federations"


class SandboxIdentity:
    """Keystone's identity API as the controllers use it, kept in the store."""

    simulated = True
    label = PREFIX

    def __init__(self, store: Store, settings: SandboxSettings | None = None) -> None:
        self.store = store
        self.faults = Faults(store, settings or SandboxSettings())

    async def _call(self, operation: str, scope: str, work: Callable[[], T]) -> T:
        """Injected faults first (an outage fails before anything changes), then the work —
        in a thread when the store waits on the network (PostgreSQL)."""
        await self.faults.check(IDENTITY, operation, scope)
        return await off_loop(self.store, work)

    async def health(self) -> None:
        """The ``identity`` health probe: a lasting injected outage fails it; else one
        record lookup."""
        await self.faults.outage(IDENTITY)
        await off_loop(self.store, self._key, "scs-health-probe", DOMAINS)

    # -- records -----------------------------------------------------------------------------
    def _ensure(self, resource: str, scope: str, name: str, fields: Record) -> Record:
        """The record ``name`` in ``scope``, created with ``fields`` and a new id if absent."""
        key = Key(resource, scope, name)
        try:
            record = self.store.get(key)
        except KeyNotFound:
            try:
                record = self.store.create(key, {"id": uuid.uuid4().hex, "name": name,
                                                 **fields})
            except KeyExists:
                record = self.store.get(key)
        self._index(record["id"], key)
        return record

    def _index(self, record_id: str, key: Key) -> None:
        with_key = {"resource": key.resource, "scope": key.namespace, "name": key.name}
        try:
            self.store.create(Key(IDS, "", record_id), with_key)
        except KeyExists:
            pass

    def _key(self, record_id: str, resource: str) -> Key | None:
        """Where the record with this id is, if it is one of ``resource``."""
        try:
            where = self.store.get(Key(IDS, "", record_id))
        except KeyNotFound:
            return None
        if where["resource"] != resource:
            return None
        return Key(where["resource"], where["scope"], where["name"])

    def _get(self, record_id: str, resource: str) -> Record | None:
        key = self._key(record_id, resource)
        if key is None:
            return None
        try:
            return self.store.get(key)
        except KeyNotFound:
            return None

    def _require(self, record_id: str, resource: str, what: str) -> Record:
        record = self._get(record_id, resource)
        if record is None:
            raise NotFound(f"{PREFIX}: could not find {what}: {record_id}")
        return record

    def _delete(self, record_id: str, resource: str) -> Record | None:
        """Remove a record and its index; None if it was not there (deletes are idempotent)."""
        key = self._key(record_id, resource)
        if key is None:
            return None
        record = None
        try:
            record = self.store.get(key)
            self.store.delete(key)
        except KeyNotFound:
            pass
        try:
            self.store.delete(Key(IDS, "", record_id))
        except KeyNotFound:
            pass
        return record

    def _replace(self, key: Key, record: Record) -> Record:
        return self.store.update(key, record, None)

    # -- domains and projects ----------------------------------------------------------------
    async def ensure_domain(self, name: str, description: str,
                            expect_new: bool = False) -> Domain:
        def run() -> Domain:
            record = self._ensure(DOMAINS, "", name, {"description": description,
                                                      "enabled": True})
            if record.get("description") != description or not record.get("enabled"):
                record = self._replace(Key(DOMAINS, "", name), {
                    **record, "description": description, "enabled": True})
            return Domain(record["id"], name, True)
        return await self._call("create", "", run)

    async def delete_domain(self, domain_id: str) -> None:
        """Removes everything in the domain with it, as Keystone does."""
        def run() -> None:
            for resource in (PROJECTS, USERS, GROUPS, GRANTS):
                for record in self.store.list(resource, domain_id).items:
                    if resource == USERS:
                        self._delete_credentials(record["id"])
                    if resource == GRANTS:
                        self.store.delete(Key(GRANTS, domain_id, record["key"]))
                    else:
                        self._delete(record["id"], resource)
            self._delete(domain_id, DOMAINS)
        await self._call("delete", domain_id, run)

    async def ensure_project(self, domain_id: str, name: str,
                             expect_new: bool = False) -> Project:
        def run() -> Project:
            self._require(domain_id, DOMAINS, "domain")
            record = self._ensure(PROJECTS, domain_id, name, {"domainID": domain_id,
                                                               "limits": {}})
            return Project(record["id"], name, domain_id)
        return await self._call("create", domain_id, run)

    async def delete_project(self, project_id: str) -> None:
        def run() -> None:
            project = self._delete(project_id, PROJECTS)
            if project is not None:
                self._drop_grants(project["domainID"], lambda g: g["projectID"] == project_id)
        await self._call("delete", "", run)

    # -- users and groups --------------------------------------------------------------------
    async def ensure_user(self, domain_id: str, name: str, email: str = "",
                          expect_new: bool = False) -> IdentityUser:
        def run() -> IdentityUser:
            self._require(domain_id, DOMAINS, "domain")
            record = self._ensure(USERS, domain_id, name, {"domainID": domain_id,
                                                            "email": email})
            if email and record.get("email") != email:
                record = self._replace(Key(USERS, domain_id, name), {**record, "email": email})
            return IdentityUser(record["id"], name, domain_id, record.get("email", ""))
        return await self._call("create", domain_id, run)

    async def delete_user(self, user_id: str) -> None:
        def run() -> None:
            user = self._delete(user_id, USERS)
            if user is not None:
                self._delete_credentials(user_id)
                self._drop_grants(user["domainID"], lambda g: g["userID"] == user_id)
        await self._call("delete", "", run)

    async def ensure_group(self, domain_id: str, name: str,
                           member_ids: list[str]) -> IdentityGroup:
        def run() -> IdentityGroup:
            self._require(domain_id, DOMAINS, "domain")
            for user_id in member_ids:
                self._require(user_id, USERS, "user")
            members = sorted(set(member_ids))
            record = self._ensure(GROUPS, domain_id, name, {"domainID": domain_id,
                                                             "members": members})
            if record.get("members") != members:
                record = self._replace(Key(GROUPS, domain_id, name),
                                       {**record, "members": members})
            return IdentityGroup(record["id"], name, domain_id, tuple(members))
        return await self._call("update", domain_id, run)

    async def delete_group(self, group_id: str) -> None:
        def run() -> None:
            group = self._delete(group_id, GROUPS)
            if group is not None:
                self._drop_grants(group["domainID"], lambda g: g["groupID"] == group_id)
        await self._call("delete", "", run)

    # -- role assignments --------------------------------------------------------------------
    def _grant_key(self, grant: RoleGrant) -> Key:
        """Grants are kept in the namespace of the domain they belong to, so listing a
        domain's assignments reads that domain only."""
        if grant.role not in ROLES:
            raise InvalidRequest(f"{PREFIX}: Keystone has no role {grant.role!r}")
        if bool(grant.user_id) == bool(grant.group_id) or \
                bool(grant.domain_id) == bool(grant.project_id):
            raise InvalidRequest(f"{PREFIX}: a role assignment needs one actor (user or "
                                 "group) and one target (domain or project)")
        actor = self._require(grant.user_id, USERS, "user") if grant.user_id \
            else self._require(grant.group_id, GROUPS, "group")
        if grant.project_id:
            domain_id = self._require(grant.project_id, PROJECTS, "project")["domainID"]
        else:
            domain_id = self._require(grant.domain_id, DOMAINS, "domain")["id"]
        name = ".".join((grant.role, "u" if grant.user_id else "g", actor["id"],
                         "p" if grant.project_id else "d", grant.project_id or domain_id))
        return Key(GRANTS, domain_id, name)

    async def grant(self, grant: RoleGrant) -> None:
        def run() -> None:
            key = self._grant_key(grant)
            try:
                self.store.create(key, {
                    "key": key.name, "role": grant.role, "userID": grant.user_id,
                    "groupID": grant.group_id, "domainID": grant.domain_id,
                    "projectID": grant.project_id})
            except KeyExists:
                pass
        await self._call("update", grant.domain_id, run)

    async def revoke(self, grant: RoleGrant) -> None:
        def run() -> None:
            try:
                self.store.delete(self._grant_key(grant))
            except (KeyNotFound, NotFound):
                pass  # gone already, or its actor or target is
        await self._call("update", grant.domain_id, run)

    async def grants(self, domain_id: str, projects: bool = True) -> list[RoleGrant]:
        def run() -> list[RoleGrant]:
            return [RoleGrant(g["role"], g["userID"], g["groupID"], g["domainID"],
                              g["projectID"])
                    for g in self.store.list(GRANTS, domain_id).items
                    if projects or not g["projectID"]]
        return await self._call("find", domain_id, run)

    def _drop_grants(self, domain_id: str, matches: Callable[[Record], bool]) -> None:
        """Assignments of a deleted actor or target go with it, as in Keystone."""
        for record in self.store.list(GRANTS, domain_id).items:
            if matches(record):
                try:
                    self.store.delete(Key(GRANTS, domain_id, record["key"]))
                except KeyNotFound:
                    pass

    # -- limits ------------------------------------------------------------------------------
    async def set_limits(self, project_id: str, limits: Mapping[str, int]) -> None:
        def run() -> None:
            for name, value in limits.items():
                if not LIMIT_NAME.match(name) or int(value) < 0:
                    raise InvalidRequest(f"{PREFIX}: invalid limit {name}={value} (a "
                                         "service:resource name and a value >= 0)")
            key = self._key(project_id, PROJECTS)
            project = self._require(project_id, PROJECTS, "project")
            wanted = {name: int(value) for name, value in limits.items()}
            if key is not None and project.get("limits") != wanted:
                self._replace(key, {**project, "limits": wanted})
        await self._call("update", "", run)

    async def limits(self, project_id: str) -> dict[str, int]:
        def run() -> dict[str, int]:
            return dict(self._require(project_id, PROJECTS, "project").get("limits") or {})
        return await self._call("find", "", run)

    # -- credentials -------------------------------------------------------------------------
    async def ensure_app_credential(self, user_id: str, project_id: str,
                                    name: str) -> AppCredential:
        """Like Keystone, the secret is shown once: only its hash is kept."""
        def run() -> AppCredential:
            self._require(user_id, USERS, "user")
            self._require(project_id, PROJECTS, "project")
            key = Key(CREDENTIALS, user_id, name)
            try:
                found = self.store.get(key)
                return AppCredential(found["id"], name)
            except KeyNotFound:
                pass
            secret = secrets.token_urlsafe(32)
            record = {"id": uuid.uuid4().hex, "name": name, "projectID": project_id,
                      "secretSHA256": hashlib.sha256(secret.encode()).hexdigest()}
            try:
                self.store.create(key, record)
            except KeyExists:
                return AppCredential(self.store.get(key)["id"], name)
            return AppCredential(record["id"], name, secret, {"auth_url": AUTH_URL})
        return await self._call("create", "", run)

    async def delete_app_credential(self, user_id: str, credential_id: str) -> None:
        def run() -> None:
            for record in self.store.list(CREDENTIALS, user_id).items:
                if record["id"] == credential_id:
                    try:
                        self.store.delete(Key(CREDENTIALS, user_id, record["name"]))
                    except KeyNotFound:
                        pass
        await self._call("delete", "", run)

    def _delete_credentials(self, user_id: str) -> None:
        for record in self.store.list(CREDENTIALS, user_id).items:
            try:
                self.store.delete(Key(CREDENTIALS, user_id, record["name"]))
            except KeyNotFound:
                pass

    # -- federation --------------------------------------------------------------------------
    async def ensure_federation(self, domain_id: str, idp_name: str, issuer: str,
                                mapping_rules: list[dict[str, object]]) -> None:
        def run() -> None:
            self._require(domain_id, DOMAINS, "domain")
            wanted = {"domainID": domain_id, "issuer": issuer, "rules": mapping_rules}
            key = Key(FEDERATIONS, "", idp_name)
            try:
                current = self.store.get(key)
            except KeyNotFound:
                try:
                    self.store.create(key, wanted)
                    return
                except KeyExists:
                    current = self.store.get(key)
            if current != wanted:
                self.store.update(key, wanted, None)
        await self._call("update", domain_id, run)

    async def delete_federation(self, idp_name: str) -> None:
        def run() -> None:
            try:
                self.store.delete(Key(FEDERATIONS, "", idp_name))
            except KeyNotFound:
                pass
        await self._call("delete", "", run)
