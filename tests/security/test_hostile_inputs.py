"""Malformed input from any authenticated caller, against a real ``scs serve`` (issue 22).

Every malformed parameter or body must be a 4xx ``Status`` that names the parameter or the
field, store nothing and log no traceback; and while a 3 MiB or deeply nested YAML body is
parsed, other requests keep answering within a second.

The groups ``kaas.scs.community`` (Cluster, the read-only ClusterProfile, the create-only
``clusters/kubeconfig`` and ``clusters/adminkubeconfig``) and ``status.scs.community``
(Component, Incident, ImpactType, Severity, PhaseList, issue 15) get the same treatment over
their KRM paths, from the identities that matter there: a member, a viewer, another tenant's
admin, and the cloud admin for the cluster-scoped status kinds no tenant role may write.

The server runs under an address-space limit (``prlimit --as``), so that a regression — an
alias bomb that expands, a JSON patch that copies itself — fails here instead of taking the
machine down. At rest it maps about 170 MiB; parsing and admitting the 3 MiB bodies below
peaks around 450 MiB.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.protobuf_writer import pb_field, secret_envelope, varint
from tests.security.support import (
    NO_RATE_LIMIT,
    TENANTS,
    bind,
    client,
    create_namespace,
    create_service_account,
    created,
    request_token,
    sa_subject,
    secret,
    tenant,
    wait_for,
)
from tests.server import ScsServer

pytestmark = pytest.mark.slow

ADDRESS_SPACE = 1536 * 1024 * 1024
NS, TENANT, VICTIM = "hostile", "hostile-corp", "victim"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
LOADBALANCERS = f"/apis/iaas.scs.community/v1alpha1/namespaces/{NS}/loadbalancers"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
JSON, YAML = "application/json", "application/yaml"
MERGE, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
SMP, APPLY = "application/strategic-merge-patch+json", "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
KAAS = "/apis/kaas.scs.community/v1alpha1"
CLUSTERS = f"{KAAS}/namespaces/{NS}/clusters"
PROFILES = f"{KAAS}/clusterprofiles"
STATUS = "/apis/status.scs.community/v1alpha1"
STATUS_COLLECTIONS = [f"{STATUS}/{plural}" for plural in
                      ("components", "incidents", "impacttypes", "severities", "phaselists")]
OTHER_NS, OTHER_TENANT = "hostile-other", "other-corp"


class Target:
    def __init__(self, server: ScsServer, admin: httpx.Client, member: httpx.Client,
                 others: dict[str, httpx.Client] | None = None) -> None:
        self.server, self.admin, self.member = server, admin, member
        self.clients = {"member": member, "admin": admin, **(others or {})}

    def log_size(self) -> int:
        return self.server.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.server.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stored(self) -> dict[str, Any]:
        """What a malformed request must not change: the namespace's objects (with their
        resourceVersions) and the names of tenants and namespaces."""
        found: dict[str, Any] = {}
        for path in (SECRETS, f"/api/v1/namespaces/{NS}/serviceaccounts", LOADBALANCERS):
            items = self.admin.get(path).json()["items"]
            found[path] = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}
        for path in (TENANTS, "/api/v1/namespaces"):
            items = self.admin.get(path).json()["items"]
            found[path] = sorted(i["metadata"]["name"] for i in items)
        for path in (CLUSTERS, PROFILES, *STATUS_COLLECTIONS):
            # generations: controllers write these kinds' status meanwhile (resourceVersion)
            items = self.admin.get(path).json()["items"]
            found[path] = {i["metadata"]["name"]: i["metadata"].get("generation")
                           for i in items}
        return found

    def alive(self) -> bool:
        return self.server.proc is not None and self.server.proc.poll() is None \
            and self.admin.get("/readyz").status_code == 200


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """Namespace ``hostile`` of a tenant; ServiceAccount ``caller`` bound ``member`` there."""
    server = ScsServer(extra_args=NO_RATE_LIMIT, address_space=ADDRESS_SPACE)
    try:
        server.start()
        admin = client(server, server.token)
        created(admin.post(TENANTS, json=tenant(TENANT)), "the tenant")
        create_namespace(admin, NS, TENANT)
        create_service_account(admin, NS, "caller")
        bind(admin, "member", sa_subject(NS, "caller"), NS)
        created(admin.post(SECRETS, json=secret(VICTIM)), "the victim secret")
        member = client(server, request_token(admin, NS, "caller"))
        others = {"viewer": identity(server, admin, NS, "viewer", "viewer"),
                  "outsider": outsider(server, admin)}
        created(member.post(CLUSTERS, json=cluster_object(VICTIM)), "the victim cluster")
        for path, body in status_objects():
            created(admin.post(path, json=body), f"{path} {body['metadata']['name']}")
        yield Target(server, admin, member, others)
    finally:
        server.cleanup()


def identity(server: ScsServer, admin: httpx.Client, ns: str, account: str,
             role: str) -> httpx.Client:
    """A client as ServiceAccount ``account`` of ``ns``, bound ``role`` there."""
    create_service_account(admin, ns, account)
    bind(admin, role, sa_subject(ns, account), ns)
    return client(server, request_token(admin, ns, account))


def outsider(server: ScsServer, admin: httpx.Client) -> httpx.Client:
    """The tenant admin of another tenant."""
    created(admin.post(TENANTS, json=tenant(OTHER_TENANT)), "the other tenant")
    create_namespace(admin, OTHER_NS, OTHER_TENANT)
    return identity(server, admin, OTHER_NS, "boss", "tenant-admin")


# --- the hostile requests ----------------------------------------------------------------------

@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    names: str
    """What the Status's message or causes must name: the parameter or the field path."""
    body: bytes = b""
    content_type: str = JSON
    code: int | None = None
    """The exact status where it matters (otherwise any 4xx)."""
    as_admin: bool = False
    """For kinds a member may not write at all (a member would get a plain 403)."""
    caller: str = ""
    """Another identity: ``viewer`` (in the namespace), ``outsider`` (another tenant's
    admin); empty: the member, or the admin with ``as_admin``."""


def nested_json(depth: int) -> bytes:
    return b'{"metadata": {"name": "deep"}, "data": ' + b'{"a":' * depth + b"1" + b"}" * depth \
        + b"}"


def secret_body(**fields: Any) -> bytes:
    meta = fields.pop("metadata", {"name": "hostile"})
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": meta, **fields}).encode()


def continue_token(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


LIST = f"{SECRETS}?"
WATCH = f"{SECRETS}?watch=1&"
ONE = f"{SECRETS}/{VICTIM}"
HUGE = 2**70

BODIES = [
    Hostile("json nested 10,000 deep", "POST", SECRETS, "data.a.a.a", nested_json(10_000)),
    Hostile("json nested 900 deep", "POST", SECRETS, "data.a.a.a", nested_json(900)),
    Hostile("lone surrogate", "POST", SECRETS, "metadata.name",
            b'{"metadata": {"name": "s\\ud800"}}', code=400),
    Hostile("lone surrogate in a key", "POST", SECRETS, "stringData",
            b'{"metadata": {"name": "s"}, "stringData": {"\\udc00": "x"}}', code=400),
    Hostile("NaN", "POST", SECRETS, "metadata.generation",
            b'{"metadata": {"name": "s", "generation": NaN}}', code=400),
    Hostile("400-digit integer", "POST", TENANTS, "spec.quotas.cores",
            b'{"metadata": {"name": "big"}, "spec": {"displayName": "x", "quotas": {"cores": '
            + b"9" * 400 + b"}}}", code=400, as_admin=True),
    Hostile("integer of 5,000 digits", "POST", TENANTS, "4300 digits",
            b'{"metadata": {"name": "big"}, "spec": {"quotas": {"cores": ' + b"9" * 5000
            + b"}}}", code=400, as_admin=True),
    Hostile("access review verb a number", "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "spec.resourceAttributes.verb",
            b'{"spec": {"resourceAttributes": {"verb": 5, "resource": "secrets"}}}', code=422),
    Hostile("rules review spec a list", "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "SelfSubjectRulesReview",
            b'{"spec": ["default"]}', code=422),
    Hostile("crd version without a name", "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "spec.versions[0].name",
            json.dumps({"metadata": {"name": "things.hostile.scs.community"}, "spec": {
                "group": "hostile.scs.community", "scope": "Namespaced",
                "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                "versions": [{"served": True, "storage": True, "schema": {
                    "openAPIV3Schema": {"type": "object"}}}]}}).encode(),
            code=422, as_admin=True),
    Hostile("secret data a list", "POST", SECRETS, "data", secret_body(data=["a"]), code=422),
    Hostile("secret data a string", "POST", SECRETS, "data", secret_body(data="abc"), code=422),
    Hostile("secret data value a number", "POST", SECRETS, "data.k",
            secret_body(data={"k": 5}), code=422),
    Hostile("namespace spec a list", "POST", "/api/v1/namespaces", "spec",
            b'{"metadata": {"name": "hostile-ns"}, "spec": []}', code=422, as_admin=True),
    Hostile("namespace finalizers a string", "POST", "/api/v1/namespaces", "spec.finalizers",
            b'{"metadata": {"name": "hostile-ns"}, "spec": {"finalizers": "x"}}', code=422,
            as_admin=True),
    Hostile("metadata.name a number", "POST", SECRETS, "metadata.name",
            secret_body(metadata={"name": 5}), code=422),
    Hostile("metadata.generateName a number", "POST", SECRETS, "metadata.generateName",
            secret_body(metadata={"generateName": 5}), code=422),
    Hostile("metadata.labels a string", "POST", SECRETS, "metadata.labels",
            secret_body(metadata={"name": "s", "labels": "a=b"}), code=422),
    Hostile("annotation value a list", "POST", SECRETS, "metadata.annotations.a",
            secret_body(metadata={"name": "s", "annotations": {"a": [1]}}), code=422),
    Hostile("ownerReference uid a number", "POST", SECRETS, "metadata.ownerReferences[0].uid",
            secret_body(metadata={"name": "s", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Secret", "name": "x", "uid": 5}]}), code=422),
    Hostile("managedFields garbage", "POST", SECRETS, "metadata.managedFields[0].fieldsV1",
            secret_body(metadata={"name": "s", "managedFields": [
                {"manager": "m", "operation": "Apply", "fieldsV1": "x"}]}), code=422),
    Hostile("load balancer listener a number", "POST", LOADBALANCERS, "spec.listeners[0]",
            b'{"metadata": {"name": "lb"}, "spec": {"subnetRef": {"name": "s"}, '
            b'"listeners": [5]}}', code=422),
    Hostile("body not an object", "POST", SECRETS, "must be a JSON or YAML object", b"[1]",
            code=400),
    Hostile("unknown media type", "POST", SECRETS, "unknown format", b"{}", "text/x-hostile",
            code=415),
    Hostile("yaml nested 900 deep", "POST", SECRETS, "data[0][0][0]",
            b"metadata: {name: deep}\ndata: " + b"[" * 900 + b"]" * 900, YAML, 400),
    Hostile("yaml alias bomb", "POST", SSR, "aliases are not allowed",
            b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n", YAML, 400),
    Hostile("yaml non-string key", "POST", SECRETS, "stringData",
            b"metadata: {name: s}\nstringData: {1: a}\n", YAML, 400),
    Hostile("yaml binary", "POST", SECRETS, "data.k",
            b"metadata: {name: s}\ndata: {k: !!binary aGk=}\n", YAML, 400),
    Hostile("yaml .inf", "POST", SECRETS, "metadata.generation",
            b"metadata: {name: s, generation: .inf}\n", YAML, 400),
    Hostile("yaml python tag", "POST", SSR, "python/object",
            b"a: !!python/object/apply:os.system [true]\n", YAML, 400),
    Hostile("yaml set", "POST", SSR, "yaml.org,2002:set", b"a: !!set {x}\n", YAML, 400),
    Hostile("yaml two documents", "POST", SSR, "single document", b"a: 1\n---\nb: 2\n", YAML,
            400),
    Hostile("protobuf map key a huge varint", "POST", SECRETS, "protobuf body is malformed",
            secret_envelope(pb_field(2, pb_field(1, 2**40))), PROTOBUF, 400),
    Hostile("protobuf varint beyond 64 bits", "POST", SECRETS, "64 bits",
            secret_envelope(varint(1 << 3) + b"\xff" * 9 + b"\x7f"), PROTOBUF, 400),
]

PATCHES = [
    Hostile("merge patch: data a list", "PATCH", ONE, "data", b'{"data": [1]}', MERGE, 422),
    Hostile("merge patch: labels a number", "PATCH", ONE, "metadata.labels",
            b'{"metadata": {"labels": 5}}', MERGE, 422),
    Hostile("merge patch: too deep", "PATCH", ONE, "data.a.a.a", nested_json(200), MERGE, 400),
    Hostile("json patch: not a list", "PATCH", ONE, "array of operation objects", b'{"op": 1}',
            JSON_PATCH, 400),
    Hostile("json patch: 10,001 operations", "PATCH", ONE, "maximum operations",
            json.dumps([{"op": "test", "path": "/kind", "value": "Secret"}] * 10_001).encode(),
            JSON_PATCH, 413),
    Hostile("json patch: copies that double", "PATCH", ONE, "accumulated size increase of copy",
            json.dumps([{"op": "add", "path": "/metadata/annotations", "value": {"a": "x" * 1000}}]
                       + [{"op": "copy", "from": "/metadata/annotations",
                           "path": f"/metadata/annotations/c{i}"} for i in range(40)]).encode(),
            JSON_PATCH, 422),
    Hostile("json patch: nesting by copies", "PATCH", ONE, "nested too deeply",
            json.dumps([{"op": "add", "path": "/metadata/annotations", "value": {}}]
                       + [{"op": "copy", "from": "/metadata/annotations",
                           "path": "/metadata/annotations/a"}] * 120).encode(), JSON_PATCH, 400),
    Hostile("json patch: data a string", "PATCH", ONE, "data",
            b'[{"op": "replace", "path": "/data", "value": "x"}]', JSON_PATCH, 422),
    Hostile("strategic merge patch: $retainKeys a number", "PATCH", ONE, "retainKeys",
            b'{"metadata": {"$retainKeys": 5}}', SMP, 400),
    Hostile("strategic merge patch: $setElementOrder a number", "PATCH", ONE, "setElementOrder",
            b'{"metadata": {"$setElementOrder/finalizers": 5}}', SMP, 400),
    Hostile("strategic merge patch: finalizers of lists", "PATCH", ONE, "lists of lists",
            b'{"metadata": {"finalizers": [[1]]}}', SMP, 422),
    Hostile("apply: data a list", "PATCH", f"{ONE}?fieldManager=hostile", "data",
            b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "victim"}, '
            b'"data": [1]}', APPLY, 422),
    Hostile("apply: yaml aliases", "PATCH", f"{ONE}?fieldManager=hostile",
            "aliases are not allowed", b"metadata: {name: victim, labels: &l {a: b}}\n"
            b"stringData: *l\n", APPLY, 400),
    Hostile("apply: yaml nested 900 deep", "PATCH", f"{ONE}?fieldManager=hostile", "data[0][0]",
            b"data: " + b"[" * 900 + b"]" * 900, APPLY, 400),
    Hostile("delete: preconditions a string", "DELETE", ONE, "preconditions",
            b'{"preconditions": "x"}', code=400),
    Hostile("delete: precondition uid a number", "DELETE", ONE, "preconditions.uid",
            b'{"preconditions": {"uid": 5}}', code=400),
    Hostile("delete: dryRun a number", "DELETE", ONE, "dryRun", b'{"dryRun": 5}', code=400),
    Hostile("delete: gracePeriodSeconds a string", "DELETE", ONE, "gracePeriodSeconds",
            b'{"gracePeriodSeconds": "soon"}', code=400),
    Hostile("delete: orphanDependents a string", "DELETE", ONE, "orphanDependents",
            b'{"orphanDependents": "yes"}', code=400),
    Hostile("delete: body not an object", "DELETE", ONE, "DeleteOptions", b"[1]", code=400),
]

PARAMETERS = [
    Hostile("limit beyond int64", "GET", LIST + "limit=99999999999999999999999", "limit",
            code=400),
    Hostile("limit a Unicode digit", "GET", LIST + "limit=%C2%B2", "limit", code=400),
    Hostile("limit of 5,000 digits", "GET", LIST + "limit=" + "9" * 5000, "limit", code=400),
    Hostile("resourceVersion a Unicode digit", "GET", LIST + "resourceVersion=%C2%B2",
            "resourceVersion", code=400),
    Hostile("resourceVersion 2^70, Exact", "GET",
            LIST + f"resourceVersion={HUGE}&resourceVersionMatch=Exact", "resourceVersion",
            code=400),
    Hostile("resourceVersionMatch unknown", "GET",
            LIST + "resourceVersion=1&resourceVersionMatch=Bogus", "resourceVersionMatch",
            code=422),
    Hostile("resourceVersionMatch Exact without resourceVersion", "GET",
            LIST + "resourceVersionMatch=Exact", "resourceVersionMatch", code=422),
    Hostile("continue garbage", "GET", LIST + "continue=%C2%B2abc", "continue", code=400),
    Hostile("continue with revision 2^70", "GET",
            LIST + "continue=" + continue_token({"rv": HUGE, "ns": NS, "name": "a"}),
            "continue", code=400),
    Hostile("continue with a lone surrogate", "GET",
            LIST + "continue=" + continue_token(b'{"rv": 1, "ns": "\\ud800", "name": "a"}'),
            "continue", code=400),
    Hostile("continue nested deeply", "GET",
            LIST + "continue=" + continue_token(b"[" * 5000 + b"]" * 5000), "continue",
            code=400),
    Hostile("fieldSelector unknown field", "GET", LIST + "fieldSelector=spec.x%3D1",
            "fieldSelector", code=400),
    Hostile("fieldSelector without an operator", "GET", LIST + "fieldSelector=abc",
            "fieldSelector", code=400),
    Hostile("fieldSelector bad escape", "GET", LIST + "fieldSelector=metadata.name%3Da%5Cb",
            "fieldSelector", code=400),
    Hostile("labelSelector unbalanced", "GET", LIST + "labelSelector=a%20in%20(",
            "labelSelector", code=400),
    Hostile("labelSelector of a bad key", "GET", LIST + "labelSelector=-a-%3Db",
            "labelSelector", code=400),
    Hostile("watch timeoutSeconds abc", "GET", WATCH + "timeoutSeconds=abc", "timeoutSeconds",
            code=400),
    Hostile("watch resourceVersion a Unicode digit", "GET", WATCH + "resourceVersion=%C2%B2",
            "resourceVersion", code=400),
    Hostile("watch resourceVersion 2^70", "GET", WATCH + f"resourceVersion={HUGE}",
            "resourceVersion", code=400),
    Hostile("watch resourceVersionMatch Exact", "GET", WATCH + "resourceVersionMatch=Exact",
            "resourceVersionMatch", code=422),
    Hostile("watch sendInitialEvents without NotOlderThan", "GET",
            WATCH + "sendInitialEvents=true", "resourceVersionMatch", code=422),
    Hostile("includeObject unknown", "GET", LIST + "includeObject=Everything", "includeObject",
            code=400, content_type=TABLE),
    Hostile("gracePeriodSeconds abc", "DELETE", f"{ONE}?gracePeriodSeconds=abc",
            "gracePeriodSeconds", code=400),
    Hostile("propagationPolicy unknown", "DELETE", f"{ONE}?propagationPolicy=Sideways",
            "propagationPolicy", code=400),
    Hostile("dryRun unknown", "DELETE", f"{ONE}?dryRun=Maybe", "dryRun", code=400),
    Hostile("fieldManager with a newline", "PATCH", f"{ONE}?fieldManager=a%0Ab", "fieldManager",
            b"{}", MERGE, 400),
    Hostile("fieldManager too long", "PATCH", f"{ONE}?fieldManager={'m' * 200}", "fieldManager",
            b"{}", MERGE, 400),
    Hostile("fieldValidation unknown", "POST", f"{SECRETS}?fieldValidation=Lax",
            "fieldValidation", secret_body(), code=400),
    Hostile("force on a merge patch", "PATCH", f"{ONE}?force=true", "force", b"{}", MERGE, 400),
]

# --- kaas.scs.community ------------------------------------------------------------------------

def cluster_object(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kaas.scs.community/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"kubernetesVersion": "1.33", "nodePools": [
                {"name": "general", "flavor": "SCS-2V-4", "replicas": 1}], **spec}}


def cluster_body(**spec: Any) -> bytes:
    return json.dumps(cluster_object("hostile", **spec)).encode()


def pools(count: int, **pool: Any) -> list[dict[str, Any]]:
    return [{"name": f"p{i}", "flavor": "SCS-2V-4", "replicas": 1, **pool}
            for i in range(count)]


def admin_request(**spec: Any) -> bytes:
    return json.dumps({"apiVersion": "kaas.scs.community/v1alpha1",
                       "kind": "AdminKubeconfigRequest", "spec": spec}).encode()


CLUSTER = f"{CLUSTERS}/{VICTIM}"
KUBECONFIG, ADMIN_KUBECONFIG = f"{CLUSTER}/kubeconfig", f"{CLUSTER}/adminkubeconfig"
OVERSIZED = b'{"metadata": {"name": "big"}, "spec": {"x": "' + b"x" * (3 * 1024 * 1024) + b'"}}'
EXPIRATION = "spec.expirationSeconds"

KAAS_CASES = [
    Hostile("cluster: 51 node pools", "POST", CLUSTERS, "spec.nodePools",
            cluster_body(nodePools=pools(51)), code=422),
    Hostile("cluster: 1,001 replicas", "POST", CLUSTERS, "spec.nodePools[0].replicas",
            cluster_body(nodePools=pools(1, replicas=1001)), code=422),
    Hostile("cluster: version a number", "POST", CLUSTERS, "spec.kubernetesVersion",
            cluster_body(kubernetesVersion=1.33), code=422),
    Hostile("cluster: node pools an object", "POST", CLUSTERS, "spec.nodePools",
            cluster_body(nodePools={"name": "general"}), code=422),
    Hostile("cluster: pool name with a slash", "POST", CLUSTERS, "spec.nodePools[0].name",
            cluster_body(nodePools=[{"name": "a/b", "flavor": "SCS-2V-4", "replicas": 1}]),
            code=422),
    Hostile("cluster: oidc issuer over http", "POST", CLUSTERS, "spec.oidc.issuerURL",
            cluster_body(oidc={"issuerURL": "http://idp.example.test", "clientID": "k"}),
            code=422),
    Hostile("cluster: unknown field, strict", "POST", f"{CLUSTERS}?fieldValidation=Strict",
            "spec.bogus", cluster_body(bogus=1), code=400),
    Hostile("cluster: dryRun unknown", "POST", f"{CLUSTERS}?dryRun=Maybe", "dryRun",
            cluster_body(), code=400),
    Hostile("cluster: oversized body", "POST", CLUSTERS, "too large", OVERSIZED, code=413),
    Hostile("cluster: wrong content type", "POST", CLUSTERS, "unknown format",
            cluster_body(), "text/plain", code=415),
    Hostile("cluster: another name than the path's", "PUT", CLUSTER, "does not match",
            cluster_body(), code=400),
    Hostile("cluster: networking renumbered", "PATCH", CLUSTER, "spec.networking",
            b'{"spec": {"networking": {"pods": "10.0.0.0/8"}}}', MERGE, 422),
    Hostile("cluster: downgrade", "PATCH", CLUSTER, "spec.kubernetesVersion",
            b'{"spec": {"kubernetesVersion": "1.20"}}', MERGE, 422),
    Hostile("cluster: json patch replicas a string", "PATCH", CLUSTER,
            "spec.nodePools[0].replicas",
            b'[{"op": "replace", "path": "/spec/nodePools/0/replicas", "value": "many"}]',
            JSON_PATCH, 422),
    Hostile("cluster: viewer creates", "POST", CLUSTERS, "cannot create resource",
            cluster_body(), code=403, caller="viewer"),
    Hostile("cluster: another tenant reads", "GET", CLUSTER, "cannot get resource", code=403,
            caller="outsider"),
    Hostile("cluster: another tenant deletes", "DELETE", CLUSTER, "cannot delete resource",
            code=403, caller="outsider"),
    Hostile("clusterprofile: member creates", "POST", PROFILES, "clusterprofiles",
            b'{"metadata": {"name": "mine"}}', code=403),
    Hostile("clusterprofile: member replaces", "PUT", f"{PROFILES}/default", "clusterprofiles",
            b'{"metadata": {"name": "default"}}', code=403),
    Hostile("clusterprofile: member patches", "PATCH", f"{PROFILES}/default",
            "clusterprofiles", b'{"spec": {"hostedControlPlanes": true}}', MERGE, 403),
    Hostile("clusterprofile: tenant admin deletes", "DELETE", f"{PROFILES}/default",
            "clusterprofiles", code=403, caller="outsider"),
    Hostile("clusterprofile: versions a string", "POST", PROFILES, "spec.kubernetes.versions",
            b'{"metadata": {"name": "bad"}, "spec": {"kubernetes": {"versions": "1.33"}}}',
            code=422, as_admin=True),
    Hostile("adminkubeconfig: 599 seconds", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds=599), code=422, as_admin=True),
    Hostile("adminkubeconfig: negative seconds", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds=-1), code=422, as_admin=True),
    Hostile("adminkubeconfig: 2^63-1 seconds", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds=2**63 - 1), code=422, as_admin=True),
    Hostile("adminkubeconfig: 400-digit seconds", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            b'{"spec": {"expirationSeconds": ' + b"9" * 400 + b"}}", code=400, as_admin=True),
    Hostile("adminkubeconfig: seconds a string", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds="3600"), code=422, as_admin=True),
    Hostile("adminkubeconfig: seconds a float", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds=3600.5), code=422, as_admin=True),
    Hostile("adminkubeconfig: seconds a boolean", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            admin_request(expirationSeconds=True), code=422, as_admin=True),
    Hostile("adminkubeconfig: spec a list", "POST", ADMIN_KUBECONFIG, "spec",
            b'{"spec": [600]}', code=422, as_admin=True),
    Hostile("adminkubeconfig: body a list", "POST", ADMIN_KUBECONFIG, "JSON or YAML object",
            b"[]", code=400, as_admin=True),
    Hostile("adminkubeconfig: another kind", "POST", ADMIN_KUBECONFIG, "AdminKubeconfigRequest",
            b'{"kind": "TokenRequest"}', code=400, as_admin=True),
    Hostile("adminkubeconfig: oversized body", "POST", ADMIN_KUBECONFIG, "too large", OVERSIZED,
            code=413, as_admin=True),
    Hostile("adminkubeconfig: wrong content type", "POST", ADMIN_KUBECONFIG, "unknown format",
            b"{}", "text/plain", code=415, as_admin=True),
    Hostile("adminkubeconfig: yaml seconds a string", "POST", ADMIN_KUBECONFIG, EXPIRATION,
            b"spec: {expirationSeconds: soon}\n", YAML, 422, as_admin=True),
    Hostile("adminkubeconfig: dryRun unknown", "POST", f"{ADMIN_KUBECONFIG}?dryRun=Maybe",
            "dryRun", b"{}", code=400, as_admin=True),
    Hostile("adminkubeconfig: read", "GET", ADMIN_KUBECONFIG, "only create", code=405,
            as_admin=True),
    Hostile("adminkubeconfig: delete", "DELETE", ADMIN_KUBECONFIG, "only create", code=405,
            as_admin=True),
    Hostile("adminkubeconfig: a member", "POST", ADMIN_KUBECONFIG, "clusters/adminkubeconfig",
            b"{}", code=403),
    Hostile("adminkubeconfig: a viewer", "POST", ADMIN_KUBECONFIG, "clusters/adminkubeconfig",
            b"{}", code=403, caller="viewer"),
    Hostile("adminkubeconfig: another tenant's admin", "POST", ADMIN_KUBECONFIG,
            "clusters/adminkubeconfig", b"{}", code=403, caller="outsider"),
    Hostile("kubeconfig: spec a number", "POST", KUBECONFIG, "spec", b'{"spec": 5}', code=422),
    Hostile("kubeconfig: another kind", "POST", KUBECONFIG, "KubeconfigRequest",
            admin_request(), code=400),
    Hostile("kubeconfig: oversized body", "POST", KUBECONFIG, "too large", OVERSIZED,
            code=413),
    Hostile("kubeconfig: wrong content type", "POST", KUBECONFIG, "unknown format", b"{}",
            "application/x-www-form-urlencoded", code=415),
    Hostile("kubeconfig: dryRun unknown", "POST", f"{KUBECONFIG}?dryRun=yes", "dryRun", b"{}",
            code=400),
    Hostile("kubeconfig: replace", "PUT", KUBECONFIG, "only create", b"{}", code=405,
            as_admin=True),
    Hostile("kubeconfig: of no cluster", "POST", f"{CLUSTERS}/nope/kubeconfig", '"nope"', b"{}",
            code=404),
    Hostile("kubeconfig: a viewer", "POST", KUBECONFIG, "clusters/kubeconfig", b"{}", code=403,
            caller="viewer"),
    Hostile("kubeconfig: another tenant's admin", "POST", KUBECONFIG, "clusters/kubeconfig",
            b"{}", code=403, caller="outsider"),
]


# --- status.scs.community ----------------------------------------------------------------------

COMPONENT, IMPACT_TYPE = "hostile-compute", "hostile-degraded"
"""Names of their own: the embedded default's status service makes components of its own."""


def status_object(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "status.scs.community/v1alpha1", "kind": kind,
            "metadata": {"name": name}, "spec": spec}


def status_objects() -> list[tuple[str, dict[str, Any]]]:
    """What the status cases meet: a component, an impact type, a severity, a phase list
    generation and an incident."""
    return [(f"{STATUS}/components", status_object("Component", COMPONENT, displayName="C")),
            (f"{STATUS}/impacttypes", status_object("ImpactType", IMPACT_TYPE)),
            (f"{STATUS}/severities", status_object("Severity", "Hostile severity",
                                                   value=50)),
            (f"{STATUS}/phaselists", status_object("PhaseList", "generation-900",
                                                   generation=900, phases=["Found", "Gone"])),
            (f"{STATUS}/incidents", status_object(
                "Incident", VICTIM, beganAt="2026-01-01T00:00:00Z",
                affects=[{"component": COMPONENT, "impactType": IMPACT_TYPE, "severity": 50}]))]


def status_body(kind: str, name: str = "hostile", **spec: Any) -> bytes:
    return json.dumps(status_object(kind, name, **spec)).encode()


def incident(**spec: Any) -> bytes:
    return status_body("Incident", **spec)


def impact(i: int = 0, severity: int = 50) -> dict[str, Any]:
    return {"component": COMPONENT, "impactType": f"t{i}", "severity": severity}


INCIDENTS, SEVERITIES = f"{STATUS}/incidents", f"{STATUS}/severities"
PHASE_LIST = f"{STATUS}/phaselists/generation-900"
IMMUTABLE = "spec"


def severity(name: str, value: Any = 10) -> bytes:
    return status_body("Severity", name, value=value)


STATUS_CASES = [
    Hostile("incident: 501 impacts", "POST", INCIDENTS, "spec.affects",
            incident(affects=[impact(i) for i in range(501)]), code=422, as_admin=True),
    Hostile("incident: 1,001 updates", "POST", INCIDENTS, "spec.updates",
            incident(updates=[{"order": i} for i in range(1001)]), code=422, as_admin=True),
    Hostile("incident: 1,000 updates of 2 KB", "POST", INCIDENTS, "too large",
            incident(updates=[{"order": i, "description": "x" * 2000} for i in range(1000)]),
            code=413, as_admin=True),
    Hostile("incident: updates with one order twice", "POST", INCIDENTS, "spec.updates[1]",
            incident(updates=[{"order": 1}, {"order": 1}]), code=422, as_admin=True),
    Hostile("incident: an impact twice", "POST", INCIDENTS, "spec.affects[1]",
            incident(affects=[impact(), impact()]), code=422, as_admin=True),
    Hostile("incident: updates an object", "POST", INCIDENTS, "spec.updates",
            incident(updates={"order": 1}), code=422, as_admin=True),
    Hostile("incident: began a date only", "POST", INCIDENTS, "spec.beganAt",
            incident(beganAt="2026-01-01"), code=422, as_admin=True),
    Hostile("incident: began a number", "POST", INCIDENTS, "spec.beganAt",
            incident(beganAt=1767225600), code=422, as_admin=True),
    Hostile("incident: ended before it began", "POST", INCIDENTS, "spec.endedAt",
            incident(beganAt="2026-02-01T00:00:00Z", endedAt="2026-01-01T00:00:00Z"),
            code=422, as_admin=True),
    Hostile("incident: update written at no time", "POST", INCIDENTS,
            "spec.updates[0].createdAt", incident(updates=[{"order": 0, "createdAt": "nope"}]),
            code=422, as_admin=True),
    Hostile("incident: update order negative", "POST", INCIDENTS, "spec.updates[0].order",
            incident(updates=[{"order": -1}]), code=422, as_admin=True),
    Hostile("incident: severity 101", "POST", INCIDENTS, "spec.affects[0].severity",
            incident(affects=[impact(severity=101)]), code=422, as_admin=True),
    Hostile("incident: severity -1", "POST", INCIDENTS, "spec.affects[0].severity",
            incident(affects=[impact(severity=-1)]), code=422, as_admin=True),
    Hostile("incident: severity a string", "POST", INCIDENTS, "spec.affects[0].severity",
            incident(affects=[{**impact(), "severity": "major"}]), code=422, as_admin=True),
    Hostile("incident: impact without a component", "POST", INCIDENTS,
            "spec.affects[0].component",
            incident(affects=[{"impactType": IMPACT_TYPE, "severity": 1}]), code=422,
            as_admin=True),
    Hostile("incident: phase generation 0", "POST", INCIDENTS, "spec.phase.generation",
            incident(phase={"generation": 0, "order": 0}), code=422, as_admin=True),
    Hostile("incident: display name of 257 bytes", "POST", INCIDENTS, "spec.displayName",
            incident(displayName="x" * 257), code=422, as_admin=True),
    Hostile("incident: merge patch ends it at no time", "PATCH", f"{INCIDENTS}/{VICTIM}",
            "spec.endedAt", b'{"spec": {"endedAt": "2026-01-01"}}', MERGE, 422, as_admin=True),
    Hostile("incident: json patch adds 1,001 updates", "PATCH", f"{INCIDENTS}/{VICTIM}",
            "spec.updates", json.dumps([{"op": "add", "path": "/spec/updates",
                                         "value": [{"order": i} for i in range(1001)]}]).encode(),
            JSON_PATCH, 422, as_admin=True),
    Hostile("incident: a member writes", "POST", INCIDENTS, "incidents", incident(), code=403),
    Hostile("incident: a member ends one", "PATCH", f"{INCIDENTS}/{VICTIM}", "incidents",
            b'{"spec": {"endedAt": "2026-01-02T00:00:00Z"}}', MERGE, 403),
    Hostile("component: 65 labels", "POST", f"{STATUS}/components", "spec.labels",
            status_body("Component", labels={f"l{i}": "v" for i in range(65)}), code=422,
            as_admin=True),
    Hostile("component: a label a number", "POST", f"{STATUS}/components", "spec.labels.region",
            status_body("Component", labels={"region": 1}), code=422, as_admin=True),
    Hostile("component: a member deletes", "DELETE", f"{STATUS}/components/{COMPONENT}",
            "components", code=403),
    Hostile("impact type: description a list", "POST", f"{STATUS}/impacttypes",
            "spec.description", status_body("ImpactType", description=["x"]), code=422,
            as_admin=True),
    Hostile("severity: value 0 (maintenance)", "POST", SEVERITIES, "spec.value",
            severity("Zero", 0), code=422, as_admin=True),
    Hostile("severity: value 101", "POST", SEVERITIES, "spec.value", severity("Big", 101),
            code=422, as_admin=True),
    Hostile("severity: value a string", "POST", SEVERITIES, "spec.value",
            severity("Major", "high"), code=422, as_admin=True),
    Hostile("severity: value 2^64", "POST", SEVERITIES, "spec.value", severity("Huge", 2**64),
            code=422, as_admin=True),
    Hostile("severity: no value", "POST", SEVERITIES, "spec.value",
            status_body("Severity", "Empty"), code=422, as_admin=True),
    *(Hostile(f"severity: named {label}", "POST", SEVERITIES, "metadata.name",
              severity(name), code=422, as_admin=True)
      for label, name in [("'..'", ".."), ("'.'", "."), ("with '%'", "100% down"),
                          ("with '/'", "up/down"), ("'%2F'", "%2F"),
                          ("with a NUL", "a\x00b"), ("with a newline", "Degraded\nforged"),
                          ("with an escape", "\x1b[31mred")]),
    Hostile("severity: path segment '..' encoded", "GET", f"{SEVERITIES}/%2E%2E",
            "invalid name", code=400, as_admin=True),
    Hostile("severity: path segment '%' encoded", "DELETE", f"{SEVERITIES}/100%25",
            "invalid name", code=400, as_admin=True),
    Hostile("severity: renamed by update", "PUT", f"{SEVERITIES}/Hostile%20severity",
            "does not match", severity("Other"), code=400, as_admin=True),
    Hostile("phase list: replaced", "PUT", PHASE_LIST, IMMUTABLE,
            status_body("PhaseList", "generation-900", generation=900, phases=["Fixed"]),
            code=422, as_admin=True),
    Hostile("phase list: merge patched", "PATCH", PHASE_LIST, IMMUTABLE,
            b'{"spec": {"phases": ["Fixed"]}}', MERGE, 422, as_admin=True),
    Hostile("phase list: a phase appended", "PATCH", PHASE_LIST, IMMUTABLE,
            b'[{"op": "add", "path": "/spec/phases/-", "value": "Fixed"}]', JSON_PATCH, 422,
            as_admin=True),
    Hostile("phase list: applied by force", "PATCH",
            f"{PHASE_LIST}?fieldManager=hostile&force=true", IMMUTABLE,
            b"apiVersion: status.scs.community/v1alpha1\nkind: PhaseList\n"
            b"metadata: {name: generation-900}\nspec: {generation: 900, phases: [Fixed]}\n",
            APPLY, 422, as_admin=True),
    Hostile("phase list: named after another generation", "POST", f"{STATUS}/phaselists",
            "metadata.name", status_body("PhaseList", "generation-901", generation=902), code=422,
            as_admin=True),
    Hostile("phase list: generation 0", "POST", f"{STATUS}/phaselists", "spec.generation",
            status_body("PhaseList", "generation-0", generation=0), code=422, as_admin=True),
    Hostile("phase list: 101 phases", "POST", f"{STATUS}/phaselists", "spec.phases",
            status_body("PhaseList", "generation-901", generation=901, phases=["p"] * 101),
            code=422, as_admin=True),
    Hostile("phase list: a phase of 257 bytes", "POST", f"{STATUS}/phaselists",
            "spec.phases[0]", status_body("PhaseList", "generation-901", generation=901,
                                          phases=["p" * 257]), code=422, as_admin=True),
]

STATUS_BAD_TIMES = [
    Hostile(f"incident: began {label}", "POST", INCIDENTS, "spec.beganAt",
            incident(beganAt=value), code=422, as_admin=True)
    for label, value in [("yesterday", "yesterday"), ("in month 13", "2026-13-01T00:00:00Z"),
                         ("at offset +25:00", "2026-01-01T00:00:00+25:00")]]


def describe(response: httpx.Response) -> str:
    return f"{response.status_code}: {response.text[:600]}"


@pytest.mark.parametrize("case", BODIES + PATCHES + PARAMETERS + KAAS_CASES + STATUS_CASES
                         + STATUS_BAD_TIMES, ids=lambda c: c.name)
def test_hostile_input_is_a_4xx_status_naming_it(target: Target, case: Hostile) -> None:
    before, log_offset = target.stored(), target.log_size()
    http = target.clients[case.caller] if case.caller else \
        target.admin if case.as_admin else target.member
    response = http.request(case.method, case.path, content=case.body or None,
                            headers={"Content-Type": case.content_type,
                                     "Accept": f"{case.content_type},application/json"})
    assert 400 <= response.status_code < 500, describe(response)
    if case.code is not None:
        assert response.status_code == case.code, describe(response)
    status = response.json()
    assert status["kind"] == "Status" and status["code"] == response.status_code, status
    causes = (status.get("details") or {}).get("causes") or []
    named = [status["message"], *(f"{c.get('field')} {c.get('message')}" for c in causes)]
    assert any(case.names in text for text in named), f"{case.names!r} not named: {status}"
    assert target.stored() == before, "a refused request changed what is stored"
    log = target.log_since(log_offset)
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
    assert target.alive(), "the server is down"


# --- parsing off the event loop ----------------------------------------------------------------

def flat_yaml(size: int) -> bytes:
    """A flat mapping of ``size`` bytes: the most YAML events per byte."""
    lines, total, i = [], 0, 0
    while total < size - 16:
        lines.append(b"k%d: v" % i)
        total += len(lines[-1]) + 1
        i += 1
    return b"\n".join(lines)


def deep_yaml(size: int) -> bytes:
    """``size`` bytes of lists nested 98 deep, just within the depth limit."""
    item = b"[" * 98 + b"x" + b"]" * 98
    return b"a: [" + b", ".join([item] * (size // (len(item) + 2))) + b"]"


def probe(target: Target, slowest: list[float]) -> None:
    """An anonymous and an authenticated request; each must answer within a second."""
    for http, path in ((target.admin, "/version"), (target.member, SECRETS)):
        started = time.monotonic()
        assert http.get(path, timeout=10).status_code == 200
        slowest.append(time.monotonic() - started)


@pytest.mark.parametrize("body", [flat_yaml(3 * 1024 * 1024 - 64), deep_yaml(3 * 1024 * 1024)],
                         ids=["3 MiB flat", "3 MiB nested 98 deep"])
def test_other_requests_answer_within_a_second_while_yaml_is_parsed(target: Target,
                                                                   body: bytes) -> None:
    answers: list[httpx.Response] = []

    def send() -> None:
        with client(target.server, target.member.headers["Authorization"].split()[1]) as http:
            answers.append(http.post(SSR, content=body, headers={"Content-Type": YAML},
                                     timeout=120))

    sender = threading.Thread(target=send)
    sender.start()
    slowest: list[float] = []
    while sender.is_alive():
        probe(target, slowest)
        time.sleep(0.05)
    sender.join()
    assert answers and answers[0].status_code == 201, describe(answers[0])
    assert len(slowest) >= 6, "the body was parsed too fast to show anything"
    assert max(slowest) < 1.0, f"slowest answer while parsing: {max(slowest):.2f} s"


def test_a_flood_of_yaml_bodies_queues_or_gets_429_and_json_keeps_answering(
        target: Target) -> None:
    body = flat_yaml(1024 * 1024)
    codes: list[int] = []
    token = target.member.headers["Authorization"].split()[1]

    def send() -> None:
        with client(target.server, token) as http:
            codes.append(http.post(SSR, content=body, headers={"Content-Type": YAML},
                                   timeout=120).status_code)

    senders = [threading.Thread(target=send) for _ in range(14)]
    for sender in senders:
        sender.start()
    slowest: list[float] = []
    while any(s.is_alive() for s in senders):
        probe(target, slowest)
        time.sleep(0.05)
    assert set(codes) <= {201, 429} and 429 in codes and 201 in codes, codes
    assert max(slowest) < 1.0, f"slowest answer during the flood: {max(slowest):.2f} s"


@pytest.mark.parametrize("query", ["limit=9223372036854775807",
                                   "limit=9223372036854775807&labelSelector=a",
                                   "resourceVersion=0&limit=4611686018427387904"])
def test_the_largest_valid_limits_list_everything(target: Target, query: str) -> None:
    """kube takes any int64 as a limit; the store's look-ahead of one overflowed at the top."""
    log_offset = target.log_size()
    response = target.member.get(f"{SECRETS}?{query}")
    assert response.status_code == 200, describe(response)
    assert "continue" not in response.json()["metadata"]
    assert "Traceback" not in target.log_since(log_offset)


@pytest.mark.parametrize("field", ["\u4e2d\u6587", "a\nb", 'q"\\', "x" * 5000])
def test_a_warning_carries_any_unknown_field_name(target: Target, field: str) -> None:
    """An unknown field is pruned with a ``Warning`` header naming it, whatever its name
    (a header carries only Latin-1 without control characters: a 500 once)."""
    log_offset = target.log_size()
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "warned"}, field: 1}
    response = target.member.post(f"{SECRETS}?dryRun=All", json=body)
    assert response.status_code == 201, describe(response)
    warning = response.headers.get("warning", "")
    assert warning.startswith('299 - "unknown field'), warning
    assert "Traceback" not in target.log_since(log_offset)


def reachable(cluster: dict[str, Any]) -> bool:
    """What tests/kaas/test_kubeconfig waits for: an endpoint and a ready control plane."""
    status = cluster.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "ControlPlaneReady"]
    return bool(status.get("apiEndpoint")) and bool(ready) and ready[0]["status"] == "True"


@pytest.mark.parametrize("subresource", ["adminkubeconfig", "kubeconfig"])
def test_a_dry_run_kubeconfig_request_issues_no_credential(target: Target,
                                                            subresource: str) -> None:
    """``?dryRun=All`` checks the request and answers without a kubeconfig: a caller who
    meant a dry run gets no live credential (the parameter was ignored once)."""
    name = "dry-run"
    if target.admin.get(f"{CLUSTERS}/{name}").status_code == 404:
        created(target.admin.post(CLUSTERS, json=cluster_object(name, oidc={
            "issuerURL": "https://idp.example.test", "clientID": "k"})), "a cluster")
    wait_for(lambda: reachable(target.admin.get(f"{CLUSTERS}/{name}").json()), timeout=60,
             what="the cluster reachable")
    path = f"{CLUSTERS}/{name}/{subresource}"
    live = target.admin.post(path, json={})
    assert live.status_code == 201 and live.json()["status"]["kubeconfig"], describe(live)
    dry = target.admin.post(f"{path}?dryRun=All", json={})
    assert dry.status_code == 201, describe(dry)
    assert dry.json()["status"] == {} and dry.headers["cache-control"] == "no-store"
    assert dry.json()["kind"] == live.json()["kind"]
    if subresource == "adminkubeconfig":
        assert dry.json()["spec"] == live.json()["spec"]
