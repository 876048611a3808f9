"""``python -m central_api.terraform``: the provider process (what Terraform starts)."""

from .serve import entry

entry()
