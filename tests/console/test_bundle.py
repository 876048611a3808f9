"""The console's bundle-size budget (docs/console.md, bench/console.py ``BUDGET``) checked on
the build output, so that a dependency or an eager import that makes the first load heavier
fails here rather than only showing in the benchmark. Sizes, not times: gzip -9 bytes, as
``scs serve`` sends the files."""

from __future__ import annotations

from bench.console import BUDGET, bundle_sizes
from tests.console.conftest import CONSOLE, ensure_built


def test_first_load_and_all_assets_stay_within_the_budget() -> None:
    ensure_built()
    sizes = bundle_sizes(CONSOLE / "dist")
    assert sizes["first_load_js_gz"] > 0, f"index.html loads no script: {sizes}"
    assert sizes["first_load_gz"] <= BUDGET.first_load_gz, (
        f"first load is {sizes['first_load_gz']:,} bytes gzipped, budget "
        f"{BUDGET.first_load_gz:,}: load the new code lazily (import()) or raise the budget "
        f"in bench/console.py and docs/console.md with a reason ({sizes})")
    assert sizes["total_gz"] <= BUDGET.total_gz, (
        f"all assets are {sizes['total_gz']:,} bytes gzipped, budget {BUDGET.total_gz:,} "
        f"({sizes})")


def test_lazy_chunks_are_not_loaded_first() -> None:
    """The OIDC client and the YAML library load on demand (console/README.md): the first
    load is smaller than everything."""
    ensure_built()
    sizes = bundle_sizes(CONSOLE / "dist")
    assert sizes["first_load_gz"] < sizes["total_gz"], sizes
