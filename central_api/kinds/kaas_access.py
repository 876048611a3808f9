"""The kubeconfig subresources of a Cluster, modelled on Gardener's ``shoots/adminkubeconfig``.

``clusters/kubeconfig`` answers a :data:`KUBECONFIG_REQUEST` with a kubeconfig whose user signs
in with the caller's own OIDC login (an exec plugin running ``scs token``): it holds no secret,
so it is a plain file users may share. ``clusters/adminkubeconfig`` answers an
:data:`ADMIN_KUBECONFIG_REQUEST` with a kubeconfig holding a short-lived admin credential of
the backend (Gardener's AdminKubeconfigRequest: ``spec.expirationSeconds``, answered with
``status.kubeconfig`` base64 and ``status.expirationTimestamp``). Both are create-only actions:
nothing is stored, so these kinds are declared for their schemas (OpenAPI, validation) and are
never served as resources of their own.
"""

from __future__ import annotations

from pydantic import Field

from .common import Model, Resource
from .kind import ResourceType, declare

API_VERSION = "kaas.scs.community/v1alpha1"
KUBECONFIG = "kubeconfig"
ADMIN_KUBECONFIG = "adminkubeconfig"
MIN_EXPIRATION_SECONDS = 600
"""As Gardener's AdminKubeconfigRequest and Kubernetes' TokenRequest: shorter is refused."""


class KubeconfigRequestSpec(Model):
    """Nothing to choose: the credential is the caller's own OIDC login."""


class KubeconfigRequestStatus(Model):
    kubeconfig: str = Field("", json_schema_extra={"format": "byte"}, description=(
        "The kubeconfig (base64): the cluster's endpoint and CA, and a user that runs "
        "`scs token` for the cluster's OIDC issuer. It holds no secret."))


class KubeconfigRequest(Resource):
    """Asks for a kubeconfig of a Cluster that authenticates with the caller's OIDC login."""

    spec: KubeconfigRequestSpec = Field(default_factory=KubeconfigRequestSpec)
    status: KubeconfigRequestStatus = Field(default_factory=KubeconfigRequestStatus)


class AdminKubeconfigRequestSpec(Model):
    expirationSeconds: int | None = Field(None, ge=MIN_EXPIRATION_SECONDS, description=(
        "Requested validity of the credential, at least 600; default and maximum are the "
        "operator's (providers.kaas.kubeconfigs). A longer request is shortened to the "
        "maximum, as Kubernetes does with TokenRequests: read status.expirationTimestamp."),
        json_schema_extra={"format": "int64"})


class AdminKubeconfigRequestStatus(Model):
    kubeconfig: str = Field("", json_schema_extra={"format": "byte"}, description=(
        "The kubeconfig (base64) with a cluster-admin credential that expires at "
        "expirationTimestamp. Keep it secret; it is not stored anywhere."))
    expirationTimestamp: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                            description="When the credential expires.")


class AdminKubeconfigRequest(Resource):
    """Asks for a kubeconfig of a Cluster with a short-lived cluster-admin credential."""

    spec: AdminKubeconfigRequestSpec = Field(default_factory=AdminKubeconfigRequestSpec)
    status: AdminKubeconfigRequestStatus = Field(
        default_factory=AdminKubeconfigRequestStatus)


KUBECONFIG_REQUEST: ResourceType = declare(API_VERSION, "KubeconfigRequest", KubeconfigRequest,
                                           status_subresource=False)
ADMIN_KUBECONFIG_REQUEST: ResourceType = declare(
    API_VERSION, "AdminKubeconfigRequest", AdminKubeconfigRequest, status_subresource=False)

ACCESS_SUBRESOURCES: dict[str, ResourceType] = {KUBECONFIG: KUBECONFIG_REQUEST,
                                                ADMIN_KUBECONFIG: ADMIN_KUBECONFIG_REQUEST}
"""The Cluster's action subresources and the kind each one takes and answers."""


def declare_access(cluster: ResourceType) -> None:
    """Give the Cluster kind its kubeconfig subresources (create only), with their kinds."""
    for sub, request in ACCESS_SUBRESOURCES.items():
        cluster.action_subresources[sub] = (request.kind, ("create",))
        cluster.action_kinds[sub] = request
