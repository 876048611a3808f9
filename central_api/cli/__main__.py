"""``python -m central_api.cli`` runs the ``scs`` command."""

from .main import app

app(prog_name="scs")
