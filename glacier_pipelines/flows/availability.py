"""Availability requests: per file, whether a copy can be downloaded now and until when; nothing is started.

A file is available when its class is readable at once (``STANDARD``, ``GLACIER_IR``), when its
object's restored copy is there and unexpired (and did not fail its check), or, for a package
member, when a ready restore extracted it and its link still lives. Unknown files, deleted ones
and another tenant's get the same words, so an answer never says whether another tenant's file exists.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from glacier_pipelines.catalog import Catalog
from glacier_pipelines.catalog import tables as t
from glacier_pipelines.catalog.compaction import CompactionStore
from glacier_pipelines.catalog.restores import RestoreStore
from glacier_pipelines.catalog.worker_requests import WorkerRequestStore
from glacier_pipelines.core import packaging
from glacier_pipelines.core.restores import FileSelector, needs_restore
from glacier_pipelines.core.worker_requests import AvailabilityRequest, not_found


def current(catalog: Catalog, tenant: str, selector: FileSelector) -> FileSelector:
    """The selector to resolve: an old storedFileUrl of a compacted package's member names the member where it is now."""
    if selector.url is None:
        return selector
    moved_to = CompactionStore(catalog).alias(tenant, selector.url)
    return FileSelector(url=moved_to) if moved_to else selector


def availability_of(restores: RestoreStore, tenant: str, selector: FileSelector, now: datetime) -> dict[str, Any]:
    try:
        obj, _, member = restores.resolve(tenant, current(restores.catalog, tenant, selector))
    except ValueError:  # an s3:// URL without a bucket
        obj, member = None, None
    answer: dict[str, Any] = {
        "file": selector.describe(),
        "available": False,
        "expiresAt": None,
        "storedFileUrl": None,
        "restoreInProgress": False,
        "messages": [],
    }
    if obj is None:
        answer["messages"].append(not_found(tenant, selector))
        return answer
    answer["storedFileUrl"] = packaging.member_url(obj.bucket, obj.key, member["name"]) if member else obj.url
    answer["storageClass"] = obj.storage_class
    if not needs_restore(obj.storage_class):
        answer.update(available=True)
        answer["messages"].append(f"{obj.storage_class} is readable without a restore")
        return answer
    state = restores.object_state(obj.id)
    answer["restoreInProgress"] = bool(state and state["state"] == "REQUESTED")
    if member is not None:
        ready = [
            r["expires_at"]
            for r in restores.rows(tenant=tenant, statuses=["READY"], object_id=obj.id)
            if (r.get("member") or {}).get("name") == member["name"] and r["expires_at"] and r["expires_at"] > now
        ]
        if ready:
            answer.update(available=True, expiresAt=max(ready).isoformat())
    elif (
        state
        and state["state"] == "RESTORED"
        and state["verified"] is not False
        and (state["expires_at"] is None or state["expires_at"] > now)
    ):
        answer.update(available=True, expiresAt=state["expires_at"].isoformat() if state["expires_at"] else None)
    if not answer["available"]:
        answer["messages"].append("a restore is under way" if answer["restoreInProgress"] else "not restored: send a restoration request")
    return answer


def answer_pending(catalog: Catalog, *, limit: int = 500, now: datetime | None = None) -> int:
    """Answer pending availability requests from the catalog alone; returns how many were answered."""
    store, restores, now = WorkerRequestStore(catalog), RestoreStore(catalog), now or datetime.now(timezone.utc)
    answered = 0
    for row in store.pending("AVAILABILITY", limit=limit):
        response: tuple[str, list[str], dict[str, Any] | None]
        try:
            request = AvailabilityRequest.model_validate(row["body"])
            files = [availability_of(restores, row["tenant"], selector, now) for selector in request.files]
            response = (t.SUCCESS, [], {"files": files})
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the others
            response = (t.ERROR, [f"availability could not be decided: {type(exc).__name__}: {exc}"], None)
        answered += store.set_status(row["id"], response[0], messages=response[1], response=response)
    return answered
