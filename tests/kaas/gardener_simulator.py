"""A SIMULATOR of Gardener for tests: what the Garden does observably, nothing more.

No Gardener can run here. The stand-in management cluster (:mod:`tests.kaas.standin`, a
second ``scs serve``) serves Shoots and CloudProfiles from Gardener's schemas; this module,
in the test process, plays the gardener-apiserver's extras and the gardenlet:

- **The gardenlet** (:class:`GardenerSimulator`, a thread polling the stand-in every
  :data:`TICK` s): it adds its ``gardener`` finalizer, and for a Shoot whose generation it
  has not reconciled starts an operation (``Create``, then ``Reconcile``) with
  ``status.observedGeneration`` set at the start as the gardenlet does, advances
  ``lastOperation.progress`` by :data:`STEP` per tick, then sets ``Succeeded``, the care
  conditions True, ``advertisedAddresses``, ``technicalID`` and writes the
  ``<shoot>.ca-cluster`` ConfigMap (a CA of its own per Shoot). The annotation
  ``gardener.cloud/operation=reconcile`` starts a Reconcile and is removed, as the gardenlet
  does. Deletion runs a ``Delete``
  operation and then drops the finalizer (and the Shoot's ConfigMaps, as the Garden's
  garbage collector would through their ownerReferences).
- **Deletion confirmation.** Gardener refuses a DELETE of a Shoot without the
  ``confirmation.gardener.cloud/deletion=true`` annotation at admission. The proxy does the
  same for DELETEs through it (HTTP 403, Gardener's message). A DELETE sent to the stand-in
  directly cannot be refused, so the simulator keeps its finalizer on such a Shoot and
  reports ``lastOperation`` Delete/Error saying why, until the annotation is there.
- **The API server's custom endpoints** (:class:`GardenProxy`: HTTPS on 127.0.0.1 with the
  stand-in's own TLS certificate, in front of it): ``POST .../shoots/{name}/adminkubeconfig``
  answers an ``AdminKubeconfigRequest`` as Gardener documents it (``expirationSeconds``
  default 3600, at least 600, capped by :attr:`GardenerSimulator.max_seconds`; a client
  certificate ``CN=gardener.cloud:admin:<caller>``, ``O=gardener.cloud:project:admins``
  signed by the Shoot's CA; base64 kubeconfig with one context per advertised address).
  It also refuses, with 403 Forbidden as Gardener's ShootValidator admission plugin does,
  a Shoot whose project + Shoot name exceed 21 characters (on create, also by apply), or
  whose machine types or Kubernetes version the CloudProfile does not offer.
  ``scs serve`` has no ConfigMap kind, so the proxy also keeps the project namespaces'
  ConfigMaps (in memory: get, list, create, apply, delete). Everything else is forwarded.

The provider under test gets a kubeconfig pointing at the proxy (:meth:`kubeconfig`); the
tests read the stand-in directly with kubectl.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.kaas.standin import ManagementCluster
from tests.server import free_port

API = "/apis/core.gardener.cloud/v1beta1"
TICK = 0.2
STEP = 10
"""Progress per tick: an operation takes 10 ticks (2 s) after it starts, so the KaaS
controller (polling every second while a cluster is pending) sees it in progress."""
FINALIZER = "gardener"
CONFIRM = "confirmation.gardener.cloud/deletion"
OPERATION = "gardener.cloud/operation"
HEALTH = ("APIServerAvailable", "ControlPlaneHealthy", "ObservabilityComponentsHealthy",
          "EveryNodeReady", "SystemComponentsHealthy")
NAME_LIMIT = 21


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class ClusterCA:
    """A simulated Shoot's cluster CA (Gardener keeps it in the seed; here: in memory)."""

    def __init__(self, shoot: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(f"ca-{shoot}"))
                     .issuer_name(_name(f"ca-{shoot}")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5))
                     .not_valid_after(now + dt.timedelta(days=365))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    def client(self, cn: str, org: str, seconds: int) -> tuple[bytes, bytes, dt.datetime]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        expires = now + dt.timedelta(seconds=seconds)
        cert = (x509.CertificateBuilder().subject_name(_name(cn, org))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(expires)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .sign(self.key, hashes.SHA256()))
        pem_key = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return _pem(cert), pem_key, expires


class GardenerSimulator:
    """The gardenlet's observable work on the stand-in, plus the proxy (see module doc)."""

    def __init__(self, standin: ManagementCluster, max_seconds: int = 86400) -> None:
        self.standin = standin
        self.max_seconds = max_seconds
        self.http = httpx.Client(base_url=standin.server.url, timeout=30,
                                 verify=ssl.create_default_context(
                                     cafile=str(standin.server.ca_file)),
                                 headers={"Authorization": f"Bearer {standin.server.token}"})
        self.cas: dict[str, ClusterCA] = {}
        """Shoot UID → its cluster CA."""
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.issued: list[dict[str, Any]] = []
        """Every admin kubeconfig minted: shoot, caller, seconds (no credential)."""
        self.refused_deletions: list[str] = []
        self.reconcile_requests: list[str] = []
        """Shoots whose ``gardener.cloud/operation=reconcile`` the gardenlet consumed."""
        self.lock = threading.RLock()
        self.proxy = GardenProxy(self)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gardenlet-sim")
        self.paused = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> GardenerSimulator:
        self.proxy.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.proxy.stop()
        self.http.close()

    def kubeconfig(self, path: Path) -> Path:
        """The stand-in's kubeconfig with the proxy as its server: the provider's."""
        config = yaml.safe_load(self.standin.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = self.proxy.url
        path.write_text(yaml.safe_dump(config))
        return path

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[None]:
        """The Garden's API does not answer (the proxy's port is closed) inside the block."""
        self.proxy.stop()
        try:
            yield
        finally:
            self.proxy.start()

    # -- the gardenlet -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(TICK):
            if self.paused.is_set():
                continue
            try:
                self.tick()
            except httpx.HTTPError:
                continue  # the stand-in is briefly busy: next tick

    def tick(self) -> None:
        listed = self.http.get(f"{API}/shoots")
        listed.raise_for_status()
        for shoot in listed.json().get("items") or []:
            self._shoot(shoot)

    def _shoot(self, shoot: dict[str, Any]) -> None:
        meta = shoot["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []) and not meta.get(
                "deletionTimestamp"):
            self._patch(shoot, {"metadata": {"finalizers": [
                *(meta.get("finalizers") or []), FINALIZER]}})
            return
        if meta.get("deletionTimestamp"):
            self._deleting(shoot)
            return
        status = shoot.get("status") or {}
        op = status.get("lastOperation") or {}
        if (meta.get("annotations") or {}).get(OPERATION) == "reconcile":
            with self.lock:
                self.reconcile_requests.append(meta["name"])
            self._patch(shoot, {"metadata": {"annotations": {OPERATION: None}}})
            self._begin(shoot, op, forced=True)
        elif status.get("observedGeneration") != meta.get("generation"):
            self._begin(shoot, op)
        elif op.get("state") == "Processing":
            self._advance(shoot, op)

    def _begin(self, shoot: dict[str, Any], op: dict[str, Any], forced: bool = False) -> None:
        """An operation for the Shoot's generation (or one asked for with the
        ``gardener.cloud/operation=reconcile`` annotation, which the gardenlet removes)."""
        created = forced or op.get("type") == "Reconcile" or (
            op.get("type") == "Create" and op.get("state") == "Succeeded")
        kind = "Reconcile" if created else "Create"
        conditions = self._conditions(shoot, "Progressing" if kind == "Create" else None)
        self._status(shoot, {
            "observedGeneration": shoot["metadata"]["generation"],
            "lastOperation": self._op(kind, "Processing", 0, "Reconciling the Shoot"),
            "conditions": conditions})

    def _advance(self, shoot: dict[str, Any], op: dict[str, Any]) -> None:
        progress = int(op.get("progress") or 0) + STEP
        if progress < 100:
            self._status(shoot, {"lastOperation": self._op(
                op["type"], "Processing", progress, f"Waiting for step {progress // STEP}")})
            return
        meta = shoot["metadata"]
        ca = self.cas.setdefault(meta["uid"], ClusterCA(meta["name"]))
        self._write_ca(meta, ca)
        project = meta["namespace"].removeprefix("garden-")
        self._status(shoot, {
            "lastOperation": self._op(op["type"], "Succeeded", 100,
                                      "Shoot cluster has been successfully reconciled."),
            "conditions": self._conditions(shoot, "True"),
            "advertisedAddresses": [
                {"name": "external",
                 "url": f"https://api.{meta['name']}.{project}.shoot.gardener.invalid"},
                {"name": "internal",
                 "url": f"https://api.{meta['name']}.{project}.internal.gardener.invalid"}]})

    def _deleting(self, shoot: dict[str, Any]) -> None:
        meta = shoot["metadata"]
        if (meta.get("annotations") or {}).get(CONFIRM) != "true":
            with self.lock:
                if meta["name"] not in self.refused_deletions:
                    self.refused_deletions.append(meta["name"])
            self._status(shoot, {"lastOperation": self._op(
                "Delete", "Error", 0, f"Shoot cannot be deleted: annotate {CONFIRM}=true "
                "first (Gardener refuses unconfirmed deletions)")})
            return
        op = (shoot.get("status") or {}).get("lastOperation") or {}
        progress = int(op.get("progress") or 0) + STEP if op.get("type") == "Delete" else 0
        if progress < 100:
            self._status(shoot, {"lastOperation": self._op(
                "Delete", "Processing", progress, "Deleting the Shoot cluster")})
            return
        with self.lock:
            for key, cm in list(self.config_maps.items()):
                owners = cm["metadata"].get("ownerReferences") or []
                if key == (meta["namespace"], f"{meta['name']}.ca-cluster") or \
                        any(o.get("uid") == meta["uid"] for o in owners):
                    del self.config_maps[key]
        self._patch(shoot, {"metadata": {"finalizers": [
            f for f in meta.get("finalizers") or [] if f != FINALIZER]}})

    def _conditions(self, shoot: dict[str, Any], value: str | None) -> list[dict[str, Any]]:
        """All care conditions at ``value``; None: a reconcile, where only the nodes roll."""
        old = {c["type"]: c for c in (shoot.get("status") or {}).get("conditions") or []}
        out = []
        for kind in HEALTH:
            status = value or ("Progressing" if kind == "EveryNodeReady"
                               else (old.get(kind) or {}).get("status", "Unknown"))
            out.append({"type": kind, "status": status, "lastTransitionTime": _now(),
                        "lastUpdateTime": _now(), "reason": f"Simulated{status}",
                        "message": f"{kind} is {status} (simulated)"})
        return out

    @staticmethod
    def _op(kind: str, state: str, progress: int, description: str) -> dict[str, Any]:
        return {"type": kind, "state": state, "progress": progress,
                "description": description, "lastUpdateTime": _now()}

    def _status(self, shoot: dict[str, Any], status: dict[str, Any]) -> None:
        meta = shoot["metadata"]
        base = {"gardener": {"id": "sim", "name": "gardener-simulator", "version": "v1.149.3"},
                "technicalID": f"shoot--{meta['namespace'].removeprefix('garden-')}--"
                               f"{meta['name']}",
                "uid": meta["uid"], "hibernated": False}
        self._patch(shoot, {"status": {**base, **status}}, "/status")

    def _patch(self, shoot: dict[str, Any], patch: dict[str, Any], sub: str = "") -> None:
        meta = shoot["metadata"]
        self.http.patch(f"{API}/namespaces/{meta['namespace']}/shoots/{meta['name']}{sub}",
                        content=json.dumps(patch),
                        headers={"Content-Type": "application/merge-patch+json"})

    def _write_ca(self, meta: dict[str, Any], ca: ClusterCA) -> None:
        name = f"{meta['name']}.ca-cluster"
        with self.lock:
            self.config_maps[(meta["namespace"], name)] = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": meta["namespace"],
                             "ownerReferences": [{"apiVersion": "core.gardener.cloud/v1beta1",
                                                  "kind": "Shoot", "name": meta["name"],
                                                  "uid": meta["uid"]}]},
                "data": {"ca.crt": _pem(ca.cert).decode()}}

    # -- the adminkubeconfig subresource -------------------------------------------------
    def admin_kubeconfig(self, namespace: str, name: str, body: dict[str, Any],
                         auth: str) -> tuple[int, dict[str, Any]]:
        spec = body.get("spec") or {}
        seconds = spec.get("expirationSeconds")
        seconds = 3600 if seconds in (None, 0) else seconds
        if body.get("kind") != "AdminKubeconfigRequest" or not isinstance(seconds, int):
            return 400, status_body(400, "BadRequest", "expected an AdminKubeconfigRequest")
        if seconds < 600:
            return 422, status_body(422, "Invalid", "AdminKubeconfigRequest.authentication."
                                    f"gardener.cloud \"{name}\" is invalid: "
                                    f"spec.expirationSeconds: Invalid value: {seconds}: "
                                    "may not specify a duration less than 10 minutes")
        found = self.http.get(f"{API}/namespaces/{namespace}/shoots/{name}",
                              headers={"Authorization": auth})
        if found.status_code != 200:
            return found.status_code, found.json()
        shoot = found.json()
        ca = self.cas.get(shoot["metadata"]["uid"])
        addresses = (shoot.get("status") or {}).get("advertisedAddresses") or []
        if ca is None or not addresses:
            return 400, status_body(400, "BadRequest", f"the Shoot {name} has no API server "
                                    "address and CA yet")
        caller = self._caller(auth)
        granted = min(seconds, self.max_seconds)
        cert, key, expires = ca.client(f"gardener.cloud:admin:{caller}",
                                       "gardener.cloud:project:admins", granted)
        with self.lock:
            self.issued.append({"shoot": f"{namespace}/{name}", "caller": caller,
                                "seconds": granted})
        config = kubeconfig(name, addresses, _pem(ca.cert), cert, key)
        return 201, {"apiVersion": "authentication.gardener.cloud/v1alpha1",
                     "kind": "AdminKubeconfigRequest", "metadata": {},
                     "spec": {"expirationSeconds": seconds},
                     "status": {"kubeconfig": base64.b64encode(config).decode(),
                                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}

    # -- ShootValidator -----------------------------------------------------------------------
    def validate(self, namespace: str, shoot: dict[str, Any], create: bool) -> str:
        """What Gardener's ShootValidator admission plugin refuses (it answers Forbidden):
        the name limit on create, machine types and versions the CloudProfile does not
        offer. Empty if the Shoot passes (or is a patch this check does not read)."""
        spec, name = shoot.get("spec") or {}, (shoot.get("metadata") or {}).get("name", "")
        errors = []
        if create and len(namespace.removeprefix("garden-")) + len(name) > NAME_LIMIT:
            errors.append("the length of the shoot name and the project name must not "
                          f"exceed {NAME_LIMIT} characters")
        profile_name = (spec.get("cloudProfile") or {}).get("name")
        profile = self.http.get(f"{API}/cloudprofiles/{profile_name}") if profile_name \
            else None
        if profile is not None and profile.status_code == 200:
            errors += _profile_errors(spec, profile.json()["spec"])
        if not errors:
            return ""
        return f'shoots.core.gardener.cloud "{name}" is forbidden: [{", ".join(errors)}]'

    def _caller(self, auth: str) -> str:
        review = self.http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                headers={"Authorization": auth}, json={
                                    "apiVersion": "authentication.k8s.io/v1",
                                    "kind": "SelfSubjectReview"})
        return str(review.json()["status"]["userInfo"]["username"])


def kubeconfig(shoot: str, addresses: list[dict[str, Any]], ca: bytes, cert: bytes,
               key: bytes) -> bytes:
    """Gardener's shape: one cluster and context per advertised address, external first."""
    ordered = sorted(addresses, key=lambda a: a["name"] != "external")
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    contexts = [f"{shoot}-{a['name']}" for a in ordered]
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": c, "cluster": {"server": a["url"],
                                             "certificate-authority-data": b64(ca)}}
                     for c, a in zip(contexts, ordered, strict=True)],
        "users": [{"name": f"{shoot}-admin", "user": {"client-certificate-data": b64(cert),
                                                      "client-key-data": b64(key)}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": f"{shoot}-admin"}}
                     for c in contexts]}).encode()


def _profile_errors(spec: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    types = [t["name"] for t in profile.get("machineTypes") or []]
    errors = [f'spec.provider.workers[{i}].machine.type: Unsupported value: '
              f'"{w["machine"]["type"]}": supported values: '
              + ", ".join(f'"{t}"' for t in types)
              for i, w in enumerate((spec.get("provider") or {}).get("workers") or [])
              if (w.get("machine") or {}).get("type") not in types]
    version = (spec.get("kubernetes") or {}).get("version")
    now = _now()
    usable = [v["version"] for v in (profile.get("kubernetes") or {}).get("versions") or []
              if not v.get("expirationDate") or v["expirationDate"] > now]
    if version and version not in usable:
        errors.append(f'spec.kubernetes.version: Unsupported value: "{version}": supported '
                      "values: " + ", ".join(f'"{v}"' for v in usable))
    return errors


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


# -- the proxy -------------------------------------------------------------------------------
ADMIN_KUBECONFIG = re.compile(rf"^{API}/namespaces/([^/]+)/shoots/([^/]+)/adminkubeconfig$")
SHOOT = re.compile(rf"^{API}/namespaces/([^/]+)/shoots/([^/?]+)$")
SHOOTS = re.compile(rf"^{API}/namespaces/([^/]+)/shoots$")
CONFIG_MAPS = re.compile(r"^/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?$")


class _Server(ThreadingHTTPServer):
    """Remembers its open connections, so that a stop also ends the keep-alive ones a
    client holds (otherwise "unreachable" would still serve every pooled connection)."""

    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class GardenProxy:
    """HTTPS on 127.0.0.1 in front of the stand-in: Gardener's custom endpoints, the rest
    forwarded (see the module doc)."""

    def __init__(self, sim: GardenerSimulator) -> None:
        self.sim = sim
        self.port = free_port()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        tls = self.sim.standin.server.data_dir / "tls"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls / "server.crt"), str(tls / "server.key"))
        handler = type("Handler", (_Handler,), {"sim": self.sim})
        for _ in range(50):  # the port may linger for a moment after a stop
            try:
                server = _Server(("127.0.0.1", self.port), handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the proxy cannot listen on 127.0.0.1:{self.port}")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                        name="garden-proxy")
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    sim: GardenerSimulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return  # quiet: the tests assert on what matters

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._route("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body()
        auth = self.headers.get("Authorization", "")
        if method == "POST" and (m := ADMIN_KUBECONFIG.match(path)):
            self._reply(*self.sim.admin_kubeconfig(m[1], m[2], _json(body), auth))
        elif m := CONFIG_MAPS.match(path):
            self._reply(*ConfigMaps(self.sim, auth).handle(method, m[1], m[2], body,
                                                            self.headers))
        elif method == "DELETE" and (m := SHOOT.match(path)) and not self._confirmed(auth):
            self._reply(403, status_body(403, "Forbidden", f'shoots.core.gardener.cloud '
                                         f'"{m[2]}" is forbidden: must have a "{CONFIRM}" '
                                         'annotation to delete'))
        elif (method == "POST" and (m := SHOOTS.match(path))) or (
                method == "PATCH" and (m := SHOOT.match(path))):
            refused = self.sim.validate(m[1], _json(body), method == "POST" or
                                        self.sim.http.get(path).status_code == 404)
            if refused:
                self._reply(403, status_body(403, "Forbidden", refused))
            else:
                self._forward(method, body)
        else:
            self._forward(method, body)

    def _confirmed(self, auth: str) -> bool:
        found = self.sim.http.get(self.path.split("?", 1)[0], headers={"Authorization": auth})
        if found.status_code != 200:
            return True  # let the stand-in answer (404...)
        annotations = found.json()["metadata"].get("annotations") or {}
        return annotations.get(CONFIRM) == "true"

    def _forward(self, method: str, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("authorization", "content-type", "accept")}
        try:
            answer = self.sim.http.request(method, self.path, content=body or None,
                                           headers=headers)
        except httpx.HTTPError as exc:
            self._reply(503, status_body(503, "ServiceUnavailable", str(exc)))
            return
        self._send(answer.status_code, answer.content,
                   answer.headers.get("Content-Type", "application/json"))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _json(body: bytes) -> dict[str, Any]:
    try:
        found = yaml.safe_load(body) if body else {}
    except yaml.YAMLError:
        return {}
    return found if isinstance(found, dict) else {}


class ConfigMaps:
    """The project namespaces' ConfigMaps (``scs serve`` has no such kind): kept by the
    simulator, in namespaces that exist in the stand-in, for callers it authenticates."""

    def __init__(self, sim: GardenerSimulator, auth: str) -> None:
        self.sim = sim
        self.auth = auth

    def handle(self, method: str, namespace: str, name: str | None, body: bytes,
               headers: Any) -> tuple[int, dict[str, Any]]:
        ns = self.sim.http.get(f"/api/v1/namespaces/{namespace}",
                               headers={"Authorization": self.auth})
        if ns.status_code != 200:
            return ns.status_code, ns.json()
        store, key = self.sim.config_maps, (namespace, name or "")
        with self.sim.lock:
            if method == "GET" and name is None:
                return 200, {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {},
                             "items": [v for (n, _), v in store.items() if n == namespace]}
            if method == "GET":
                return (200, store[key]) if key in store else self._missing(name or "")
            if method == "DELETE":
                return (200, store.pop(key)) if key in store else self._missing(name or "")
            obj = _json(body)
            if method == "POST":
                key = (namespace, (obj.get("metadata") or {}).get("name", ""))
                if key in store:
                    return 409, status_body(409, "AlreadyExists",
                                            f'configmaps "{key[1]}" already exists')
            elif method == "PATCH" and "apply-patch" not in headers.get("Content-Type", ""):
                return 415, status_body(415, "UnsupportedMediaType", "apply patches only")
            obj["metadata"] = {**obj.get("metadata", {}), "namespace": namespace}
            store[key] = obj
            return (201 if method == "POST" else 200), obj

    @staticmethod
    def _missing(name: str) -> tuple[int, dict[str, Any]]:
        return 404, status_body(404, "NotFound", f'configmaps "{name}" not found')
