"""The two identity backends the onboarding suite runs against, each with an independent view.

The same tests run against the real Keystone (seen through openstacksdk) and the sandbox
identity (seen through its records in the server's store, read directly — not through
:class:`SandboxIdentity`, which is the code under test), so the two backends cannot drift
apart. A view answers only what the tests ask: what exists, who holds which role, limits,
federation, and how to break or change the backend behind the API's back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import openstack

from central_api.providers.sandbox import clear_faults, inject_fault
from central_api.providers.sandbox import identity as sandbox
from central_api.store import open_store
from central_api.store.base import Key, KeyNotFound, Store
from tests.keystone import KeystoneServer


class IdentityView(Protocol):
    name: str

    @property
    def label(self) -> str:
        """What Tenant status.identity says of this backend."""

    def config(self) -> dict[str, Any]: ...
    def domains_named(self, name: str) -> list[str]:
        """IDs of the domains with this name (more than one would be a duplicate)."""
    def projects_in(self, domain_id: str) -> dict[str, str]:
        """Project name → ID."""
    def project_exists(self, project_id: str) -> bool: ...
    def user_id(self, domain_id: str, name: str) -> str | None: ...
    def users_named(self, domain_id: str, name: str) -> int: ...
    def delete_user(self, user_id: str) -> None:
        """Behind the API's back, as an operator with the backend's own tools would."""
    def group(self, domain_id: str, name: str) -> tuple[str, list[str]] | None:
        """(ID, member user IDs)."""
    def roles_of(self, *, user_id: str = "", group_id: str = "", domain_id: str = "",
                 project_id: str = "") -> set[str]: ...
    def limits_of(self, project_id: str) -> dict[str, int]: ...
    def federation(self, idp_name: str) -> tuple[list[str], str, list[Any]]:
        """(remote IDs, domain ID, mapping rules) of an identity provider."""
    def credential_works(self, auth: dict[str, Any], project_id: str) -> bool:
        """Whether a clouds.yaml ``auth`` block authenticates into ``project_id``."""
    def break_backend(self) -> None: ...
    def heal_backend(self) -> None: ...
    def close(self) -> None: ...


class KeystoneView:
    """The real Keystone, through openstacksdk as its admin."""

    name = "keystone"

    def __init__(self, keystone: KeystoneServer) -> None:
        self.keystone = keystone

    @property
    def label(self) -> str:
        return f"keystone {self.keystone.auth_url}"

    def config(self) -> dict[str, Any]:
        k = self.keystone
        return {"type": "keystone", "authURL": k.auth_url, "username": "admin",
                "password": k.admin_password, "userDomain": "Default", "systemScope": True,
                "region": k.region}

    def _ask(self, question: Any) -> Any:
        conn = self.keystone.connection(self.keystone.system_auth)
        try:
            return question(conn.identity)
        finally:
            conn.close()

    def domains_named(self, name: str) -> list[str]:
        return self._ask(lambda i: [d.id for d in i.domains() if d.name == name])

    def projects_in(self, domain_id: str) -> dict[str, str]:
        return self._ask(lambda i: {p.name: p.id for p in i.projects(domain_id=domain_id)})

    def project_exists(self, project_id: str) -> bool:
        return self._ask(lambda i: i.find_project(project_id) is not None)

    def user_id(self, domain_id: str, name: str) -> str | None:
        user = self._ask(lambda i: i.find_user(name, domain_id=domain_id))
        return None if user is None else str(user.id)

    def users_named(self, domain_id: str, name: str) -> int:
        return self._ask(lambda i: len([u for u in i.users(domain_id=domain_id)
                                        if u.name == name]))

    def delete_user(self, user_id: str) -> None:
        self._ask(lambda i: i.delete_user(user_id))

    def group(self, domain_id: str, name: str) -> tuple[str, list[str]] | None:
        def ask(i: Any) -> tuple[str, list[str]] | None:
            found = i.find_group(name, domain_id=domain_id)
            return None if found is None else (found.id, [u.id for u in i.group_users(found)])
        return self._ask(ask)

    def roles_of(self, *, user_id: str = "", group_id: str = "", domain_id: str = "",
                 project_id: str = "") -> set[str]:
        query: dict[str, Any] = {"include_names": True}
        query.update({k: v for k, v in {"user_id": user_id, "group_id": group_id,
                                        "scope_domain_id": domain_id,
                                        "scope_project_id": project_id}.items() if v})
        return self._ask(lambda i: {a.role["name"] for a in i.role_assignments(**query)})

    def limits_of(self, project_id: str) -> dict[str, int]:
        def ask(i: Any) -> dict[str, int]:
            types = {service.id: service.type for service in i.services()}
            response = i.get("/limits", params={"project_id": project_id})
            return {f"{types[item['service_id']]}:{item['resource_name']}":
                    item["resource_limit"] for item in response.json()["limits"]}
        return self._ask(ask)

    def federation(self, idp_name: str) -> tuple[list[str], str, list[Any]]:
        def ask(i: Any) -> tuple[list[str], str, list[Any]]:
            idp = i.get_identity_provider(idp_name)
            return idp.remote_ids, idp.domain_id, i.get_mapping(f"{idp_name}-openid").rules
        return self._ask(ask)

    def credential_works(self, auth: dict[str, Any], project_id: str) -> bool:
        conn = openstack.connect(auth_type="v3applicationcredential", auth=auth,
                                 region_name=self.keystone.region, load_yaml_config=False,
                                 load_envvars=False)
        try:
            return bool(conn.authorize()) and conn.current_project_id == project_id
        finally:
            conn.close()

    def break_backend(self) -> None:
        self.keystone.stop()

    def heal_backend(self) -> None:
        self.keystone.start()

    def close(self) -> None:
        pass  # every question opens and closes its own connection


class SandboxView:
    """The sandbox identity's records, read straight from the server's SQLite store."""

    name = "sandbox"
    label = "sandbox (simulated)"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._store: Store | None = None

    def config(self) -> dict[str, Any]:
        return {"type": "sandbox"}

    @property
    def store(self) -> Store:
        if self._store is None:  # the server creates the database on its first start
            self._store = open_store(f"sqlite:///{self.data_dir / 'state.db'}")
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _records(self, resource: str, scope: str) -> list[dict[str, Any]]:
        return self.store.list(resource, scope).items

    def _exists(self, record_id: str, resource: str) -> bool:
        try:
            return bool(self.store.get(Key(sandbox.IDS, "", record_id))["resource"] == resource)
        except KeyNotFound:
            return False

    def domains_named(self, name: str) -> list[str]:
        return [d["id"] for d in self._records(sandbox.DOMAINS, "") if d["name"] == name]

    def projects_in(self, domain_id: str) -> dict[str, str]:
        return {p["name"]: p["id"] for p in self._records(sandbox.PROJECTS, domain_id)}

    def project_exists(self, project_id: str) -> bool:
        return self._exists(project_id, sandbox.PROJECTS)

    def user_id(self, domain_id: str, name: str) -> str | None:
        return next((u["id"] for u in self._records(sandbox.USERS, domain_id)
                     if u["name"] == name), None)

    def users_named(self, domain_id: str, name: str) -> int:
        return len([u for u in self._records(sandbox.USERS, domain_id) if u["name"] == name])

    def delete_user(self, user_id: str) -> None:
        for domain in self._records(sandbox.DOMAINS, ""):
            for user in self._records(sandbox.USERS, domain["id"]):
                if user["id"] == user_id:
                    self.store.delete(Key(sandbox.USERS, domain["id"], user["name"]))
                    self.store.delete(Key(sandbox.IDS, "", user_id))

    def group(self, domain_id: str, name: str) -> tuple[str, list[str]] | None:
        return next(((g["id"], list(g["members"])) for g in
                     self._records(sandbox.GROUPS, domain_id) if g["name"] == name), None)

    def roles_of(self, *, user_id: str = "", group_id: str = "", domain_id: str = "",
                 project_id: str = "") -> set[str]:
        wanted = {"userID": user_id, "groupID": group_id, "domainID": domain_id,
                  "projectID": project_id}
        found = set()
        for domain in self._records(sandbox.DOMAINS, ""):
            for grant in self._records(sandbox.GRANTS, domain["id"]):
                if all(grant[field] == value for field, value in wanted.items() if value):
                    found.add(grant["role"])
        return found

    def limits_of(self, project_id: str) -> dict[str, int]:
        for domain in self._records(sandbox.DOMAINS, ""):
            for project in self._records(sandbox.PROJECTS, domain["id"]):
                if project["id"] == project_id:
                    return dict(project["limits"])
        raise AssertionError(f"no project {project_id}")

    def federation(self, idp_name: str) -> tuple[list[str], str, list[Any]]:
        record = self.store.get(Key(sandbox.FEDERATIONS, "", idp_name))
        return [record["issuer"]], record["domainID"], record["rules"]

    def credential_works(self, auth: dict[str, Any], project_id: str) -> bool:
        """What a sandbox login would check: the credential exists for that project and the
        secret matches the hash kept (the secret itself is never stored)."""
        if auth.get("auth_url") != sandbox.AUTH_URL:
            return False
        digest = hashlib.sha256(auth["application_credential_secret"].encode()).hexdigest()
        for domain in self._records(sandbox.DOMAINS, ""):
            for user in self._records(sandbox.USERS, domain["id"]):
                for cred in self._records(sandbox.CREDENTIALS, user["id"]):
                    if cred["id"] == auth["application_credential_id"]:
                        return bool(cred["projectID"] == project_id
                                    and cred["secretSHA256"] == digest)
        return False

    def break_backend(self) -> None:
        inject_fault(self.store, "identity-outage", kind="Identity", error="BackendUnavailable",
                     message="sandbox (simulated): identity backend down for a test")

    def heal_backend(self) -> None:
        clear_faults(self.store, "identity-outage")
