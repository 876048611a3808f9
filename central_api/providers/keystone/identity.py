"""``IdentityService`` on a real OpenStack Keystone, through openstacksdk.

Why it looks the way it does:

* Idempotency by name. Keystone names are unique per domain (domains globally), so every
  ``ensure_*`` first looks the object up by name in its domain and creates it only when
  missing; a Conflict on create (someone created it in between) is answered by looking it up
  again. Retries after a crash or a Keystone outage therefore never duplicate anything.
* Deletes tolerate NotFound: offboarding is re-run until it completes.
* openstacksdk is synchronous; calls run in worker threads under a timeout and errors become
  the typed errors of :mod:`central_api.providers.base`. Both come from the OpenStack
  provider (:class:`~central_api.providers.openstack.connection.Connections`, one cached
  connection per credential set, and its exception mapping), so Keystone down reads as
  ``BackendUnavailable`` everywhere.
* Credentials: the ``auth`` block is a clouds.yaml ``auth`` of a cloud admin, a
  system-scoped admin (``system_scope: all``) or a domain manager with a domain-scoped token.
  Creating domains, registered limits, services and federation objects needs the cloud
  admin; a domain manager can run the user/group/project/grant methods of its own domain.
  Application credentials cannot do either (Keystone binds them to one project).

Unified limits. Keys are ``<service type>:<resource name>`` (``compute:cores``,
``block-storage:gigabytes``, ``network:floatingip``...). The service is looked up by type in
Keystone's catalog (``block-storage`` also matches the older ``volumev3``/``volume`` types);
a missing service is an ``InvalidRequest`` because limits cannot exist without it. Keystone
only accepts a project limit for which a *registered* limit (the cloud-wide default) exists,
so a missing registered limit is created with default 0: a project without its own limit then
gets nothing, which is the safe default for a customer-facing quota.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import openstack
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc
from openstack.connection import Connection
from openstack.identity.v3._proxy import Proxy as IdentityV3

from ..base import BackendUnavailable, InvalidRequest, Scope
from ..identity import (
    AppCredential,
    Domain,
    IdentityGroup,
    IdentityUser,
    Project,
    RoleGrant,
)
from ..openstack.connection import Connections, OpenStackSettings

__all__ = ["FEDERATION_PROTOCOL", "SERVICE_TYPE_ALIASES", "KeystoneIdentity"]

T = TypeVar("T")

SERVICE_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "compute": ("compute",),
    "block-storage": ("block-storage", "volumev3", "volume"),
    "network": ("network",),
}
"""Canonical service type of a limit key → catalog types that count as that service."""

FEDERATION_PROTOCOL = "openid"
REVOCATION_MARGIN = 0.1
LOOKUP_TTL = 300.0
"""Seconds a missing role or the service catalog is not looked up again (both change rarely,
and onboarding would otherwise ask for them once per tenant)."""


def _mapping_id(idp_name: str) -> str:
    return f"{idp_name}-{FEDERATION_PROTOCOL}"


def _v3(conn: Connection) -> IdentityV3:
    """The identity v3 proxy; Keystone v2 (gone since Queens) cannot do any of this."""
    proxy = conn.identity
    if not isinstance(proxy, IdentityV3):
        raise InvalidRequest("the Keystone endpoint does not offer the identity v3 API")
    return proxy


def _find_or_create(find: Callable[[], T | None], create: Callable[[], T],
                    expect_new: bool = False) -> T:
    """``find``, else ``create``; a Conflict on create means a concurrent creator won, so the
    winner is returned instead of failing (or, worse, creating a second object).

    ``expect_new`` skips the first ``find``: one request instead of two when the object is
    indeed new (a tenant's first onboarding pass), three when the hint was wrong."""
    if not expect_new:
        found = find()
        if found is not None:
            return found
    try:
        return create()
    except os_exc.ConflictException:
        found = find()
        if found is None:
            raise
        return found


def _system_scoped(auth: Mapping[str, Any]) -> dict[str, Any]:
    """The same password credentials with a system-scoped token, for unified limits.

    Keystone lists to a project-scoped token only that token's own project's limits (Zed's
    ``GET /v3/limits``), so an operator admin authenticated on its ``admin`` project would see
    none of the customer projects' limits and ``set_limits`` could not find what to update.
    A system scope sees all (the bootstrap admin holds ``admin`` on the system). Credentials
    that are already system- or domain-scoped, or are not passwords, are used unchanged.
    """
    if ("password" not in auth or auth.get("system_scope") or auth.get("domain_id")
            or auth.get("domain_name")):
        return dict(auth)
    scoped = {key: value for key, value in auth.items()
              if not key.startswith("project_")}
    scoped["system_scope"] = "all"
    return scoped


def _first(items: Any) -> Any | None:
    return next(iter(items), None)


class KeystoneIdentity:
    """The identity provider for onboarding and IAM controllers (see ``IdentityService``)."""

    simulated = False

    def __init__(self, auth: Mapping[str, Any], region: str = "",
                 timeout: float = 60.0) -> None:
        if not auth.get("auth_url"):
            raise InvalidRequest("Keystone credentials need an auth_url")
        self.auth = dict(auth)
        self.label = f"keystone {auth['auth_url']}"
        self.region = region
        self._connections = Connections(OpenStackSettings(region=region, timeout=timeout))
        self._scope = Scope(namespace="", credentials={"auth": self.auth})
        self._limits_scope = Scope(namespace="", credentials={"auth": _system_scoped(self.auth)})
        self._role_ids: dict[str, str] = {}
        self._missing_roles: dict[str, float] = {}
        """Role name → when it was found missing (monotonic seconds)."""
        self._catalog: tuple[float, dict[str, str]] = (0.0, {})
        self._registered: set[tuple[str, str, str]] = set()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._connections.run(self._scope, fn, *args)

    async def _call_limits(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._connections.run(self._limits_scope, fn, *args)

    async def health(self) -> None:
        """The ``identity`` probe: Keystone's version document at the auth URL. Not a token
        validation: that costs Keystone a fernet decryption and database reads (a second
        on the test Keystone), too much to ask every few seconds."""
        url = str(self.auth["auth_url"])

        def run(conn: Connection) -> None:
            answer = conn.session.get(url, authenticated=False, raise_exc=False)
            if answer.status_code >= 400:
                raise BackendUnavailable(f"{self.label} answered HTTP {answer.status_code}")
        await self._call(run)

    # domains and projects -------------------------------------------------------------------
    async def ensure_domain(self, name: str, description: str,
                            expect_new: bool = False) -> Domain:
        """The domain ``name`` with ``description``, enabled (re-enabled if a previous
        offboarding stopped between disabling and deleting it)."""
        def run(conn: Connection) -> Domain:
            domain = _find_or_create(
                lambda: _first(_v3(conn).domains(name=name)),
                lambda: _v3(conn).create_domain(name=name, description=description,
                                                    is_enabled=True), expect_new)
            changes: dict[str, Any] = {}
            if (domain.description or "") != description:
                changes["description"] = description
            if not domain.is_enabled:
                changes["is_enabled"] = True
            if changes:
                domain = _v3(conn).update_domain(domain, **changes)
            return Domain(id=domain.id, name=domain.name, enabled=bool(domain.is_enabled))
        return await self._call(run)

    async def delete_domain(self, domain_id: str) -> None:
        """Disable, then delete: Keystone refuses to delete an enabled domain, and deleting
        it removes its projects, users and groups (and their role assignments) with it."""
        def run(conn: Connection) -> None:
            try:
                _v3(conn).update_domain(domain_id, is_enabled=False)
            except os_exc.NotFoundException:
                return
            _v3(conn).delete_domain(domain_id, ignore_missing=True)
        await self._call(run)

    async def ensure_project(self, domain_id: str, name: str,
                             expect_new: bool = False) -> Project:
        def run(conn: Connection) -> Project:
            project = _find_or_create(
                lambda: _first(_v3(conn).projects(domain_id=domain_id, name=name)),
                lambda: _v3(conn).create_project(domain_id=domain_id, name=name), expect_new)
            return Project(id=project.id, name=project.name, domain_id=project.domain_id)
        return await self._call(run)

    async def delete_project(self, project_id: str) -> None:
        await self._call(lambda conn: _v3(conn).delete_project(project_id,
                                                                   ignore_missing=True))

    # users and groups ------------------------------------------------------------------------
    async def ensure_user(self, domain_id: str, name: str, email: str = "",
                          expect_new: bool = False) -> IdentityUser:
        """The user ``name`` in the domain; ``email`` is set when given (an empty one leaves
        whatever the user or its domain manager set)."""
        def run(conn: Connection) -> IdentityUser:
            attrs: dict[str, Any] = {"domain_id": domain_id, "name": name}
            if email:
                attrs["email"] = email
            user = _find_or_create(
                lambda: _first(_v3(conn).users(domain_id=domain_id, name=name)),
                lambda: _v3(conn).create_user(**attrs), expect_new)
            if email and (user.email or "") != email:
                user = _v3(conn).update_user(user, email=email)
            return IdentityUser(id=user.id, name=user.name, domain_id=user.domain_id,
                                email=user.email or "", federated=bool(user.federated))
        return await self._call(run)

    async def delete_user(self, user_id: str) -> None:
        await self._call(lambda conn: _v3(conn).delete_user(user_id, ignore_missing=True))

    async def ensure_group(self, domain_id: str, name: str,
                           member_ids: list[str]) -> IdentityGroup:
        """The group with exactly ``member_ids`` as members (others are removed)."""
        def run(conn: Connection) -> IdentityGroup:
            group = _find_or_create(
                lambda: _first(_v3(conn).groups(domain_id=domain_id, name=name)),
                lambda: _v3(conn).create_group(domain_id=domain_id, name=name))
            current = {user.id for user in _v3(conn).group_users(group)}
            wanted = set(member_ids)
            for user_id in sorted(wanted - current):
                _v3(conn).add_user_to_group(user_id, group)
            for user_id in sorted(current - wanted):
                try:
                    _v3(conn).remove_user_from_group(user_id, group)
                except os_exc.NotFoundException:
                    pass
            return IdentityGroup(id=group.id, name=group.name, domain_id=group.domain_id,
                                 members=tuple(sorted(wanted)))
        return await self._call(run)

    async def delete_group(self, group_id: str) -> None:
        await self._call(lambda conn: _v3(conn).delete_group(group_id,
                                                                 ignore_missing=True))

    # role assignments ------------------------------------------------------------------------
    def _role_id(self, conn: Connection, name: str) -> str:
        """Role name → ID, cached (roles are global and never renamed by this service). A
        missing role is remembered for a while too: onboarding asks for optional roles
        (Octavia's) of every tenant, and a cloud without that service would otherwise cost a
        lookup each time; an operator who adds the service is seen after the pause."""
        role_id = self._role_ids.get(name)
        if role_id is None:
            missing_since = self._missing_roles.get(name)
            if missing_since is not None and time.monotonic() - missing_since < LOOKUP_TTL:
                raise InvalidRequest(f"Keystone has no role {name!r}")
            role = _first(_v3(conn).roles(name=name))
            if role is None:
                self._missing_roles[name] = time.monotonic()
                raise InvalidRequest(f"Keystone has no role {name!r}")
            role_id = self._role_ids[name] = role.id
        return role_id

    @staticmethod
    def _check(grant: RoleGrant) -> None:
        if bool(grant.user_id) == bool(grant.group_id):
            raise InvalidRequest("a role grant needs exactly one of user_id and group_id")
        if bool(grant.domain_id) == bool(grant.project_id):
            raise InvalidRequest("a role grant needs exactly one of domain_id and project_id")

    @staticmethod
    def _assignment_path(grant: RoleGrant, role_id: str) -> str:
        target = (f"/domains/{grant.domain_id}" if grant.domain_id
                  else f"/projects/{grant.project_id}")
        actor = f"/users/{grant.user_id}" if grant.user_id else f"/groups/{grant.group_id}"
        return f"{target}{actor}/roles/{role_id}"

    # openstacksdk's assign_*/unassign_* role helpers return False instead of raising when
    # Keystone refuses (403 for a role outside the managed list, 404 for a missing user), so
    # a refused grant would look like success. The assignment calls are made directly here.
    async def grant(self, grant: RoleGrant) -> None:
        """Assign the role (assigning twice is a no-op in Keystone)."""
        self._check(grant)

        def run(conn: Connection) -> None:
            ident = _v3(conn)
            path = self._assignment_path(grant, self._role_id(conn, grant.role))
            os_exc.raise_from_response(ident.put(path))
        await self._call(run)

    async def revoke(self, grant: RoleGrant) -> None:
        """Remove the assignment; one that is already gone counts as removed."""
        self._check(grant)

        def run(conn: Connection) -> None:
            ident = _v3(conn)
            path = self._assignment_path(grant, self._role_id(conn, grant.role))
            response = ident.delete(path)
            if response.status_code != 404:
                os_exc.raise_from_response(response)
        await self._call(run)

    async def grants(self, domain_id: str, projects: bool = True) -> list[RoleGrant]:
        """Direct assignments on the domain and, with ``projects``, on each of its projects
        (inherited ones are left out: this service never creates them and ``RoleGrant``
        cannot express them). Each project is one more request."""
        def run(conn: Connection) -> list[RoleGrant]:
            found: list[RoleGrant] = []
            scopes: list[dict[str, str]] = [{"scope_domain_id": domain_id}]
            if projects:
                scopes += [{"scope_project_id": project.id}
                           for project in _v3(conn).projects(domain_id=domain_id)]
            for query in scopes:
                for assignment in _v3(conn).role_assignments(include_names=True, **query):
                    scope = assignment.scope or {}
                    if "OS-INHERIT:inherited_to" in scope:
                        continue
                    found.append(RoleGrant(
                        role=(assignment.role or {}).get("name", ""),
                        user_id=(assignment.user or {}).get("id", ""),
                        group_id=(assignment.group or {}).get("id", ""),
                        domain_id=(scope.get("domain") or {}).get("id", ""),
                        project_id=(scope.get("project") or {}).get("id", "")))
            return sorted(found, key=lambda g: (g.domain_id, g.project_id, g.user_id,
                                                g.group_id, g.role))
        return await self._call(run)

    # quotas ----------------------------------------------------------------------------------
    def _services(self, conn: Connection) -> dict[str, str]:
        """Canonical service type → service ID, from the catalog (cached)."""
        fetched_at, services = self._catalog
        if time.monotonic() - fetched_at >= LOOKUP_TTL or not services:
            services = self._read_services(conn)
            self._catalog = (time.monotonic(), services)
        return services

    @staticmethod
    def _read_services(conn: Connection) -> dict[str, str]:
        by_type: dict[str, str] = {}
        for service in _v3(conn).services():
            by_type.setdefault(service.type, service.id)
        result: dict[str, str] = {}
        for canonical, aliases in SERVICE_TYPE_ALIASES.items():
            for alias in aliases:
                if alias in by_type:
                    result[canonical] = by_type[alias]
                    break
        for service_type, service_id in by_type.items():
            if service_id not in result.values():
                result.setdefault(service_type, service_id)
        return result

    def _parse_key(self, services: Mapping[str, str], key: str) -> tuple[str, str]:
        service_type, sep, resource = key.partition(":")
        if not sep or not service_type or not resource:
            raise InvalidRequest(f"limit {key!r} is not '<service type>:<resource name>'")
        service_id = services.get(service_type)
        if service_id is None:
            raise InvalidRequest(f"limit {key!r}: Keystone's catalog has no {service_type!r} "
                                 "service (unified limits are registered per service)")
        return service_id, resource

    def _ensure_registered(self, conn: Connection, service_id: str, resource: str) -> None:
        key = (service_id, self.region, resource)
        if key in self._registered:
            return
        query: dict[str, Any] = {"service_id": service_id, "resource_name": resource}
        if self.region:
            query["region_id"] = self.region
        existing = [r for r in _v3(conn).registered_limits(**query)
                    if (r.region_id or "") == self.region]
        if not existing:
            attrs = dict(query, default_limit=0,
                         description="registered by the SCS Central API (default: none)")
            try:
                _v3(conn).create_registered_limit(**attrs)
            except os_exc.ConflictException:
                pass
        self._registered.add(key)

    def _project_limits(self, conn: Connection, project_id: str) -> list[Any]:
        query: dict[str, Any] = {"project_id": project_id}
        if self.region:
            query["region_id"] = self.region
        return [limit for limit in _v3(conn).limits(**query)
                if (limit.region_id or "") == self.region]

    async def set_limits(self, project_id: str, limits: Mapping[str, int]) -> None:
        """Unified limits on the project (``type:resource`` → limit); removes unlisted ones."""
        def run(conn: Connection) -> None:
            services = self._services(conn)
            desired = {self._parse_key(services, key): int(value)
                       for key, value in limits.items()}
            current = {(limit.service_id, limit.resource_name): limit
                       for limit in self._project_limits(conn, project_id)}
            new: list[dict[str, Any]] = []
            for (service_id, resource), value in desired.items():
                limit = current.get((service_id, resource))
                if limit is None:
                    self._ensure_registered(conn, service_id, resource)
                    attrs: dict[str, Any] = {"project_id": project_id,
                                             "service_id": service_id,
                                             "resource_name": resource,
                                             "resource_limit": value}
                    if self.region:
                        attrs["region_id"] = self.region
                    new.append(attrs)
                elif limit.resource_limit != value:
                    _v3(conn).update_limit(limit, resource_limit=value)
            if new:  # Keystone creates a list of limits in one request (all or none)
                os_exc.raise_from_response(_v3(conn).post("/limits", json={"limits": new}))
            for key, limit in current.items():
                if key not in desired:
                    _v3(conn).delete_limit(limit, ignore_missing=True)
        await self._call_limits(run)

    async def limits(self, project_id: str) -> dict[str, int]:
        def run(conn: Connection) -> dict[str, int]:
            names = {service_id: service_type
                     for service_type, service_id in self._services(conn).items()}
            return {f"{names.get(limit.service_id, limit.service_id)}:{limit.resource_name}":
                    int(limit.resource_limit)
                    for limit in self._project_limits(conn, project_id)}
        return await self._call_limits(run)

    # credentials -----------------------------------------------------------------------------
    async def ensure_app_credential(self, user_id: str, project_id: str,
                                    name: str) -> AppCredential:
        """An application credential ``name`` of the user on the project.

        Keystone creates application credentials only for the token's own user and binds
        them to the token's project ("Cannot create an application credential for another
        user"); an admin cannot create one on a user's behalf. So this method acts as the
        user: it sets a fresh random password (known to nobody afterwards), authenticates as
        the user on the project and creates the credential there. Use it for the tenant's
        dedicated service user, never for a human, whose password it would replace. The user
        needs a role on the project (the credential carries the token's roles).

        An existing credential of that name on that project is returned without its secret
        (Keystone shows it only once); if the caller lost the secret it must delete and
        ensure again. One of that name on another project is replaced.
        """
        def run(conn: Connection) -> AppCredential:
            auth_url = str(self.auth["auth_url"])
            for cred in _v3(conn).application_credentials(user_id):
                if not _credential_named(cred.name, name):
                    continue
                if cred.project_id == project_id:
                    return AppCredential(id=cred.id, name=cred.name or name, auth={
                        "auth_url": auth_url, "application_credential_id": cred.id})
                _v3(conn).delete_application_credential(user_id, cred.id)
            user = _v3(conn).get_user(user_id)
            if user.federated:
                raise InvalidRequest(f"user {user.name} is federated; Keystone cannot create "
                                     "application credentials for it on its behalf")
            password = secrets.token_urlsafe(32)
            _v3(conn).update_user(user, password=password)
            # A fresh suffix per creation: a credential whose creation answer (and with it the
            # secret) was lost can never block its replacement with a name clash.
            unique = f"{name}-{secrets.token_hex(4)}"
            cred = self._create_as_user(auth_url, user_id, password, project_id, unique)
            secret = str(cred.secret or "")
            return AppCredential(id=cred.id, name=unique, secret=secret, auth={
                "auth_url": auth_url, "application_credential_id": cred.id,
                "application_credential_secret": secret})
        return await self._call(run)

    def _create_as_user(self, auth_url: str, user_id: str, password: str, project_id: str,
                        name: str) -> Any:
        """Authenticate as the user and create the credential, retrying a 401 for up to 3 s.

        Changing a password revokes the user's tokens issued up to that moment, and Keystone
        compares at whole-second precision: a token issued in the same second as the change
        counts as revoked and the next request answers 401. A moment later it works.
        """
        _after_revocation_second()
        deadline = time.monotonic() + 3.0
        while True:
            as_user = openstack.connect(
                auth={"auth_url": auth_url, "user_id": user_id, "password": password,
                      "project_id": project_id},
                region_name=self.region or None, load_yaml_config=False, load_envvars=False)
            try:
                return _v3(as_user).create_application_credential(
                    user_id, name=name, description="SCS Central API provider credential")
            except (os_exc.HttpException, ks_exc.Unauthorized) as exc:
                status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
                if status != 401 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                as_user.close()

    async def delete_app_credential(self, user_id: str, credential_id: str) -> None:
        def run(conn: Connection) -> None:
            try:
                _v3(conn).delete_application_credential(user_id, credential_id,
                                                            ignore_missing=True)
            except os_exc.NotFoundException:
                pass  # the user itself is gone, and its credentials with it
        await self._call(run)

    # federation ------------------------------------------------------------------------------
    async def ensure_federation(self, domain_id: str, idp_name: str, issuer: str,
                                mapping_rules: list[dict[str, object]]) -> None:
        """Identity provider ``idp_name`` (remote ID = the OIDC issuer, federated users land
        in ``domain_id``), mapping ``<idp>-openid`` with the rules, protocol ``openid``."""
        def run(conn: Connection) -> None:
            ident = _v3(conn)
            idp = _get(lambda: ident.get_identity_provider(idp_name))
            if idp is None:
                try:
                    idp = ident.create_identity_provider(id=idp_name, domain_id=domain_id,
                                                         remote_ids=[issuer], is_enabled=True)
                except os_exc.ConflictException as exc:
                    # Remote IDs are unique across identity providers.
                    raise InvalidRequest(f"issuer {issuer} is already registered for another "
                                         f"identity provider: {exc}") from exc
            else:
                if idp.domain_id != domain_id:
                    raise InvalidRequest(f"identity provider {idp_name} belongs to domain "
                                         f"{idp.domain_id}, not {domain_id}")
                if list(idp.remote_ids or []) != [issuer] or not idp.is_enabled:
                    ident.update_identity_provider(idp, remote_ids=[issuer], is_enabled=True)
            mapping_id = _mapping_id(idp_name)
            mapping = _get(lambda: ident.get_mapping(mapping_id))
            if mapping is None:
                ident.create_mapping(id=mapping_id, rules=mapping_rules)
            elif mapping.rules != mapping_rules:
                ident.update_mapping(mapping, rules=mapping_rules)
            protocol = _get(lambda: ident.get_federation_protocol(idp_name,
                                                                  FEDERATION_PROTOCOL))
            if protocol is None:
                ident.create_federation_protocol(idp_name, id=FEDERATION_PROTOCOL,
                                                 mapping_id=mapping_id)
            elif protocol.mapping_id != mapping_id:
                ident.update_federation_protocol(idp_name, FEDERATION_PROTOCOL,
                                                 mapping_id=mapping_id)
        await self._call(run)

    async def delete_federation(self, idp_name: str) -> None:
        """Protocol, identity provider (which also removes its shadow users' federated
        links), then the mapping; each one already gone is skipped."""
        def run(conn: Connection) -> None:
            ident = _v3(conn)
            try:
                ident.delete_federation_protocol(idp_name, FEDERATION_PROTOCOL,
                                                 ignore_missing=True)
            except os_exc.NotFoundException:
                pass
            ident.delete_identity_provider(idp_name, ignore_missing=True)
            ident.delete_mapping(_mapping_id(idp_name), ignore_missing=True)
        await self._call(run)


def _after_revocation_second() -> None:
    """Sleep into the next whole second (plus a margin for clock skew to Keystone).

    A password change revokes every token issued up to that second (Keystone compares at
    whole-second precision), so a token issued in the same second is refused with 401. Each
    refused attempt costs a token request, a 401 and a version discovery: waiting under a
    second is cheaper than two or three of those.
    """
    time.sleep(1.0 - time.time() % 1.0 + REVOCATION_MARGIN)


def _get(fetch: Callable[[], T]) -> T | None:
    try:
        return fetch()
    except os_exc.NotFoundException:
        return None




def _credential_named(actual: str | None, name: str) -> bool:
    """Credentials are created as ``<name>-<suffix>`` (see ensure_app_credential)."""
    return actual is not None and (actual == name or actual.startswith(name + "-"))
