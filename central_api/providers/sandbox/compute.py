"""Simulated Nova and Cinder: keypairs, volumes and servers.

A server gets one fixed address on each of its networks, from the oldest subnet of that
network (like Nova's default port creation), a flavor from the catalogue (named, or the
smallest that fits ``resources``), and attaches its volumes. Deleting a server detaches its
volumes and disassociates its floating IPs at once, as the real cloud does when the ports go.

Keypair fingerprints are the MD5 of the decoded key blob in colon-separated hex, exactly what
Nova reports (``ssh-keygen -E md5 -lf key.pub`` shows the same value after ``MD5:``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from ..base import Conflict, InvalidRequest
from . import addresses, catalog
from .records import Record, Records
from .services import Desired, SandboxService
from .settings import PREFIX, RESIZE_DELAY


def fingerprint(public_key: str) -> str:
    """Nova's keypair fingerprint: MD5 over the base64-decoded key blob, colon-hex."""
    parts = public_key.strip().split()
    if len(parts) < 2 or not (parts[0].startswith(("ssh-", "ecdsa-", "sk-"))):
        raise InvalidRequest(f"{PREFIX}: the public key is not in OpenSSH format "
                             "('<type> <base64> [comment]')")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{PREFIX}: the public key's base64 part is invalid") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class KeypairService(SandboxService):
    kind = "Keypair"
    immutable = ("publicKey",)

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        fingerprint(str(desired.get("publicKey") or ""))

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"keypairs": 1}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        return {"fingerprint": fingerprint(str(desired["publicKey"]))}

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"fingerprint": rec["data"].get("fingerprint", "")}


class VolumeService(SandboxService):
    kind = "Volume"
    immutable = ("imageRef",)

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        size = int(desired.get("sizeGiB") or 0)
        if size < 1:
            raise InvalidRequest(f"{PREFIX}: sizeGiB must be at least 1")
        catalog.volume_type(str(desired.get("volumeType") or ""))
        image = str(desired.get("imageRef") or "")
        if image and not catalog.image_exists(image):
            raise InvalidRequest(f"{PREFIX}: unknown image {image!r} for the volume")
        if current is not None and size < int(current["desired"].get("sizeGiB") or 0):
            raise InvalidRequest(f"{PREFIX}: volumes can only grow (from "
                                 f"{current['desired'].get('sizeGiB')} GiB to {size} GiB "
                                 "is a shrink)")

    def usage(self, desired: Desired) -> dict[str, int]:
        return {"volumes": 1, "gigabytes": int(desired.get("sizeGiB") or 0)}

    def attached_to(self, rec: Record) -> str:
        for server in self.records.live("Server", rec["namespace"]):
            if rec["id"] in (server["desired"].get("volumeIDs") or []):
                return str(server["id"])
        return ""

    def check_delete(self, namespace: str, rec: Record) -> None:
        server = self.attached_to(rec)
        if server:
            raise Conflict(f"{PREFIX}: Volume {rec['id']} is attached to server {server}; "
                           "detach it (or delete the server) first")

    def observed(self, rec: Record) -> dict[str, Any]:
        return {"attachedTo": "" if rec.get("deleting") else self.attached_to(rec)}


class ServerService(SandboxService):
    kind = "Server"
    immutable = ("image", "imageRef", "architecture", "keypairID", "userData")
    busy_on_update = True

    def flavor(self, desired: Desired) -> catalog.Flavor:
        return catalog.select_flavor(str(desired.get("flavor") or ""), desired.get("resources"),
                                     str(desired.get("architecture") or "amd64"),
                                     desired.get("gpu"))

    def validate(self, namespace: str, desired: Desired, current: Record | None) -> None:
        arch = str(desired.get("architecture") or "amd64")
        if not desired.get("imageRef"):
            catalog.image(str(desired.get("image") or ""), arch)
        elif current is None:  # only booting needs the Image (see controllers/iaas.py)
            self.check_image(namespace, str(desired.get("imageID") or ""), arch)
        self.flavor(desired)
        if not desired.get("networkIDs"):
            raise InvalidRequest(f"{PREFIX}: a server needs at least one network")
        for nid in desired["networkIDs"]:
            self.require("Network", namespace, nid, "server")
        for sg in desired.get("securityGroupIDs") or []:
            self.require("SecurityGroup", namespace, sg, "server")
        if desired.get("keypairID"):
            self.require("Keypair", namespace, str(desired["keypairID"]), "server")
        volumes = desired.get("volumeIDs") or []
        me = current["id"] if current else None
        # Only servers with volumes need the scan of every other server (it dominated
        # reconcile profiles at thousands of servers per namespace).
        others = [s for s in self.records.live("Server", namespace)
                  if s["id"] != me] if volumes else []
        for vid in volumes:
            self.require("Volume", namespace, vid, "server", active=True)
            holder = next((s["id"] for s in others
                           if vid in (s["desired"].get("volumeIDs") or [])), None)
            if holder:
                raise Conflict(f"{PREFIX}: Volume {vid} is in use by server {holder}")

    def check_image(self, namespace: str, image_id: str, architecture: str) -> None:
        image = self.require("Image", namespace, image_id, "server", active=True)
        built_for = image["desired"].get("architecture") or "amd64"
        if built_for != architecture:
            raise InvalidRequest(f"{PREFIX}: Image {image_id} is built for {built_for}, the "
                                 f"server asks for {architecture}")

    def usage(self, desired: Desired) -> dict[str, int]:
        flavor = self.flavor(desired)
        return {"instances": 1, "cores": flavor.vcpus, "ramMiB": flavor.ram_mib}

    def allocate(self, namespace: str, backend_id: str, desired: Desired,
                 current: Record | None) -> dict[str, Any]:
        subnets = sorted(self.records.live("Subnet", namespace),
                         key=lambda s: (s["createdAt"], s["id"]))
        ports: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for nid in desired["networkIDs"]:
            subnet = next((s for s in subnets if s["desired"].get("networkID") == nid), None)
            if subnet is None:
                raise Conflict(f"{PREFIX}: network {nid} has no subnet to take an address from")
            seen[nid] = seen.get(nid, -1) + 1
            purpose = f"port:{nid}:{seen[nid]}"
            ip = addresses.allocate(self.store, namespace, subnet["id"],
                                    subnet["desired"]["cidr"], backend_id, purpose,
                                    exclude=[subnet["data"]["gatewayIP"]])
            ports.append({"networkID": nid, "subnetID": subnet["id"], "ip": ip,
                          "purpose": purpose})
        if current is not None:
            keep = {p["purpose"] for p in ports}
            stale = [p["purpose"] for p in current["data"].get("ports", [])
                     if p["purpose"] not in keep]
            addresses.release(self.store, namespace, backend_id, stale)
        return {"flavor": self.flavor(desired).name, "ports": ports}

    def on_update(self, rec: Record, desired: Desired, data: dict[str, Any]) -> None:
        if data["flavor"] != rec["data"].get("flavor"):
            rec["busyUntil"] = self.records.now() + self.sandbox.settings.scaled(RESIZE_DELAY)
            rec["busyReason"] = f"resizing to {data['flavor']}"

    def on_delete(self, namespace: str, rec: Record) -> None:
        disassociate_floating_ips(self.records, namespace, rec["id"])

    def observed(self, rec: Record) -> dict[str, Any]:
        power = {"PENDING": "NOSTATE", "ACTIVE": "RUNNING", "ERROR": "NOSTATE",
                 "DELETING": "SHUTDOWN"}[self.records.state(rec)]
        return {"addresses": [p["ip"] for p in rec["data"].get("ports", [])],
                "flavor": rec["data"].get("flavor", ""), "powerState": power}


def disassociate_floating_ips(records: Records, namespace: str, server_id: str) -> None:
    """What Neutron does when a server's ports go: its floating IPs become unassociated."""
    for fip in records.live("FloatingIP", namespace):
        if fip["desired"].get("serverID") == server_id:
            fip["desired"]["serverID"] = None
            try:
                records.save(fip)
            except Conflict:
                pass  # changed concurrently; the next reader still sees a missing server
