"""``python -m tests.openstack up|down|status|install [--dir DIR]`` (scripts/openstack-up;
scripts/test runs ``install`` so the slow apt step shows in the CI log). ``install`` installs
what is missing and upgrades the rest to Debian's current (security) updates, so that every
machine runs the same services (see :mod:`.install`); ``--no-upgrade`` skips the upgrade."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cloud import CLOUD_NAME, OpenStackCloud
from .install import ensure_installed, installed_versions, upgrade_installed
from .processes import OpenStackError

DEFAULT_DIR = Path("/tmp/scs-openstack")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/openstack-up", description=__doc__)
    parser.add_argument("action", nargs="?", default="up",
                        choices=("up", "down", "status", "install"))
    parser.add_argument("--stop", action="store_true", help="same as the action 'down'")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help=f"state, configs and logs (default {DEFAULT_DIR})")
    parser.add_argument("--no-upgrade", action="store_true",
                        help="install: only install what is missing, upgrade nothing")
    args = parser.parse_args(argv)
    if args.action == "install":
        try:
            print(f"OpenStack packages installed in {ensure_installed():.0f}s")
        except OpenStackError as exc:
            print(exc, file=sys.stderr)
            return 1
        if not args.no_upgrade:
            started = time.monotonic()
            try:
                upgraded = upgrade_installed()
                print(f"OpenStack packages upgraded in {time.monotonic() - started:.0f}s: "
                      + (", ".join(upgraded) or "all were current"))
            except OpenStackError as exc:  # the harness works with the installed versions
                print(f"warning: {exc}", file=sys.stderr)
        print(f"glance {installed_versions().get('glance', 'not installed')}")
        return 0
    cloud = OpenStackCloud(args.dir)
    if args.stop or args.action == "down":
        cloud.down(remove=True)
        print(f"stopped; {args.dir} removed")
        return 0
    if args.action == "status":
        if not cloud.state_file.exists():
            print("not running")
            return 1
        cloud.load()
        problem = cloud.unhealthy()
        print(problem or f"healthy, {cloud.memory_mib():.0f} MiB (PSS)")
        return 1 if problem else 0
    started = time.monotonic()
    try:
        cloud.up()
    except OpenStackError as exc:
        print(f"OpenStack failed to start:\n{exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"OpenStack up in {took:.0f}s ({cloud.timings}), "
          f"{cloud.memory_mib():.0f} MiB (PSS); state and logs in {args.dir}")
    print(f"  export OS_CLIENT_CONFIG_FILE={cloud.clouds_yaml} OS_CLOUD={CLOUD_NAME}")
    print(f"  or: . {args.dir / 'openrc'}")
    print("  stop: scripts/openstack-up --stop" + ("" if args.dir == DEFAULT_DIR
                                                   else f" --dir {args.dir}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
