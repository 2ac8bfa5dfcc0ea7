"""Webhooks, for admins: where incident events are POSTed, and how each delivery went.

The API only stores subscriptions and shows delivery state; the ``cv-webhooks``
process sends (``commune_vision/webhooks.py``), so a slow receiver never holds a
request here. Changes are recorded in the audit log, the secret never.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, Principal, require
from api.deps import get_webhooks
from api.params import MAX_ROW_ID, RowId
from api.webhook_schemas import (
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from core.redact import redact_url
from core.storage.webhooks import Webhook, WebhookStore
from core.webhooks import new_secret

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]
Store = Annotated[WebhookStore, Depends(get_webhooks)]


def _missing(webhook_id: int) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id}: list them with GET /api/webhooks"
    )


async def _get(store: WebhookStore, webhook_id: int) -> Webhook:
    hook = await run_in_threadpool(store.get, webhook_id)
    if hook is None:
        raise _missing(webhook_id)
    return hook


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookIn, store: Store, admin: Admin) -> WebhookCreated:
    """The secret is in this response only: configure the receiver with it now."""
    hook = await run_in_threadpool(
        lambda: store.create(
            name=body.name,
            url=body.url,
            secret=body.secret or new_secret(),
            camera_ids=body.camera_ids,
            types=body.types,
            min_severity=body.min_severity,
            active=body.active,
            actor=admin.actor,
        )
    )
    log.info("webhook %d (%s) created by %s", hook.id, redact_url(hook.url), admin.actor)
    return WebhookCreated(**WebhookOut.of(hook).model_dump(), secret=hook.secret)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(store: Store, _admin: Admin) -> list[WebhookOut]:
    return [WebhookOut.of(h) for h in await run_in_threadpool(store.all)]


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: RowId, store: Store, _admin: Admin) -> WebhookOut:
    return WebhookOut.of(await _get(store, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: RowId, body: WebhookPatch, store: Store, admin: Admin
) -> WebhookOut:
    """Change the fields sent; a new ``secret`` takes effect with the next attempt."""
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in changes.items() if v is None)
    if nulls:
        raise HTTPException(422, f"{', '.join(nulls)}: leave a field out to keep it, not null")
    url = changes.get("url")
    if url and "://***@" in url:
        # The URL as GET shows it (credentials as ***): keep the stored credentials.
        old = await _get(store, webhook_id)
        if redact_url(old.url) == url:
            changes["url"] = old.url
    hook = await run_in_threadpool(store.update, webhook_id, changes, admin.actor)
    if hook is None:
        raise _missing(webhook_id)
    return WebhookOut.of(hook)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: RowId, store: Store, admin: Admin) -> Response:
    """Its pending deliveries are dropped with it."""
    if not await run_in_threadpool(store.delete, webhook_id, admin.actor):
        raise _missing(webhook_id)
    log.info("webhook %d deleted by %s", webhook_id, admin.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/test", response_model=WebhookDeliveryOut, status_code=status.HTTP_202_ACCEPTED
)
async def test_webhook(webhook_id: RowId, store: Store, _admin: Admin) -> WebhookDeliveryOut:
    """Queue a signed ``test`` event (``incident``: null); cv-webhooks sends it within a
    second. Follow it with GET /api/webhooks/{id}/deliveries."""
    delivery = await run_in_threadpool(store.enqueue_test, webhook_id)
    if delivery is None:
        raise _missing(webhook_id)
    return WebhookDeliveryOut.of(delivery)


@router.get("/{webhook_id}/deliveries", response_model=list[WebhookDeliveryOut])
async def list_deliveries(
    webhook_id: RowId,
    store: Store,
    _admin: Admin,
    status_: Annotated[
        str | None, Query(alias="status", pattern="^(pending|delivered|failed)$")
    ] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="page: ids below this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[WebhookDeliveryOut]:
    """Newest first."""
    await _get(store, webhook_id)
    rows = await run_in_threadpool(store.deliveries, webhook_id, status_, before_id, limit)
    return [WebhookDeliveryOut.of(d) for d in rows]
