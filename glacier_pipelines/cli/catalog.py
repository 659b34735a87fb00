"""``glacier-pipelines catalog``: ``rebuild`` the catalog from the bucket, or ``upgrade`` its schema (Alembic)."""

from __future__ import annotations

import argparse
import json

from glacier_pipelines.settings import load as load_settings


def cmd_catalog(args: argparse.Namespace) -> int:
    if args.action == "upgrade":  # Alembic's upgrade to head; a bad or unreachable URL is a ValueError: exit 2, one line
        from glacier_pipelines.catalog import schema

        result = schema.upgrade(load_settings().resolved_catalog_url)
        print(json.dumps(vars(result)) if args.json else result.describe())
        return 0
    from glacier_pipelines.flows.rebuild import rebuild
    from glacier_pipelines.resources import resources_from_env

    r = resources_from_env()
    counts = rebuild(
        r["catalog"].get(),
        r["archive_store"].client(),
        r["archive_store"].bucket,
        r["archive_store"].key_prefix,
        vault_prefix=r["vault"].key_prefix,
        tenants=r["archive_store"].tenants(),
    )  # every tenant's own bucket too
    print(
        json.dumps(counts)
        if args.json
        else f"rebuilt: {counts['manifests']} package manifest(s), {counts['members']} member request(s), {counts['objects']} standalone object(s), "
        f"{counts['ledger_requests']} request(s) from the ledger ({counts['unresolved']} naming an object the bucket lacks), "
        f"{counts['restores']} restore state(s), {counts['moves']} move(s), {counts.get('vault_archives', 0)} vault archive(s) "
        f"of {counts.get('vaults', 0)} vault(s)"
    )
    return 0
