"""SCS Central API: one Kubernetes-style API for all Sovereign Cloud Stack services."""

__version__ = "0.1.0"
