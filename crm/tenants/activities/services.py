"""Activities (calls, meetings, notes, e-mails): logging, changing and deleting them.

The rule that makes a CRM useful: with the company's ``require_next_step`` flag on, a
completed call whose outcome asks for it, or a completed meeting, cannot be saved
without the next step; the follow-up task is created in the same transaction and the
activity points at it. A completed activity moves the client's first/last contact
times, which the dormant-clients list reads.

Rights: the author owns an activity, and the caller must also be able to read its client.
Every function runs inside the caller's open ``tenant_scope``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
from piccolo.columns.combination import Combinable, WhereRaw

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.security import ensure_module
from crm.platform.tenancy import scope_connection
from crm.tenants.activities.attachments import NewAttachment, attachment_errors, insert_attachments
from crm.tenants.activities.schemas import ActivityCreate, ActivityUpdate, NextStep
from crm.tenants.activities.tables import Activity
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.phones import InvalidPhone, normalize_phone
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.settings import flag, setting
from crm.tenants.tasks.schemas import TaskCreate
from crm.tenants.tasks.services import (
    MAX_TITLE,
    aware_utc,
    insert_task,
    link_errors,
    readable_client,
    task_type_keys,
    validate_new_task,
)
from crm.tenants.users.scopes import EVERYTHING, records_in_scope, row_in_scope

KINDS = ("call", "meeting", "note", "email")
STATUSES = ("planned", "done")
DIRECTIONS = ("in", "out")
CALL_FIELDS = ("direction", "phone", "duration_seconds", "outcome", "recording_url")
MAX_SUBJECT = 300
MAX_COMMENT = 20_000
MAX_DURATION_SECONDS = 86_400
MAX_URL = 2000
# A completed activity may be logged slightly ahead of the server's clock, not later.
FUTURE_TOLERANCE = timedelta(minutes=5)
FOLLOW_UP_TITLES = {"ru": "Связаться: {client}", "en": "Follow up: {client}"}

ACTIVITY_COLUMNS = (
    Activity.id,
    Activity.kind,
    Activity.client_id,
    Activity.deal_id,
    Activity.author_id,
    Activity.status,
    Activity.occurred_at,
    Activity.subject,
    Activity.comment,
    Activity.direction,
    Activity.phone,
    Activity.duration_seconds,
    Activity.outcome,
    Activity.recording_url,
    Activity.next_task_id,
    Activity.created_at,
)


async def activities_in_scope(principal: Principal, action: str) -> Combinable:
    """SQL condition for the activities ``principal`` may ``action``: within the role's
    scope over their author, and on a client the caller may read (a semi-join)."""
    own = await records_in_scope(principal, "activities", action, Activity.author_id)
    clients = await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)
    if clients is EVERYTHING:
        return own
    return own & WhereRaw('"client_id" IN (SELECT id FROM clients WHERE {})', clients.querystring)


async def call_outcomes() -> list[dict[str, Any]]:
    """The company's call outcomes: ``[{key, names, requires_next_step}]``."""
    return [outcome for outcome in await setting("call_outcomes", []) if isinstance(outcome, dict)]


async def next_step_required(kind: str, status: str, outcome: str | None) -> bool:
    """Whether the company's rule asks for a next step with this activity."""
    if status != "done" or kind not in ("call", "meeting") or not await flag("require_next_step"):
        return False
    if kind == "meeting":
        return True
    return any(item.get("key") == outcome and item.get("requires_next_step") for item in await call_outcomes())


async def _call_values(given: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    """Clean the call fields present in ``given``."""
    values: dict[str, Any] = {}
    if given.get("direction") is not None and given["direction"] not in DIRECTIONS:
        errors.append(FieldError("direction", f"must be one of {', '.join(DIRECTIONS)}"))
    if given.get("phone") is not None:
        try:
            values["phone"] = normalize_phone(given["phone"], await phone_region())
        except InvalidPhone:
            errors.append(FieldError("phone", "is not a phone number"))
    if given.get("duration_seconds") is not None and not 0 <= given["duration_seconds"] <= MAX_DURATION_SECONDS:
        errors.append(FieldError("duration_seconds", f"must be 0 to {MAX_DURATION_SECONDS}"))
    if given.get("outcome") is not None and given["outcome"] not in {item.get("key") for item in await call_outcomes()}:
        errors.append(FieldError("outcome", "is not one of the company's call outcomes"))
    url = given.get("recording_url")
    if url is not None:
        parts = urlsplit(url)
        if (
            len(url) > MAX_URL
            or parts.scheme not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() for c in url)
        ):
            errors.append(FieldError("recording_url", f"must be an http(s) URL of at most {MAX_URL} characters"))
    return {**given, **values}


def _text_values(given: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "subject" in given:
        values["subject"] = given["subject"].strip()
        if len(values["subject"]) > MAX_SUBJECT:
            errors.append(FieldError("subject", f"must be at most {MAX_SUBJECT} characters"))
    if "comment" in given:
        values["comment"] = given["comment"]
        if len(values["comment"]) > MAX_COMMENT:
            errors.append(FieldError("comment", f"must be at most {MAX_COMMENT} characters"))
    return values


async def _next_step_task(
    principal: Principal, step: NextStep, client: dict[str, Any], deal_id: int | None
) -> tuple[dict[str, Any], list[FieldError]]:
    """The follow-up task's values, validated like any new task (fields ``next_step.*``)."""
    errors: list[FieldError] = []
    if principal.scope("tasks", "create") == "none":
        errors.append(FieldError("next_step", "your role may not create tasks"))
    title = (step.title or "").strip()
    if not title:
        template = FOLLOW_UP_TITLES.get(principal.locale[:2], FOLLOW_UP_TITLES["en"])
        title = template.replace("{client}", client["name"])[:MAX_TITLE]
    task_type = step.task_type
    if task_type is None and "call" in await task_type_keys():
        task_type = "call"
    data = TaskCreate(title=title, due_at=step.due_at, task_type=task_type, assignee_id=step.assignee_id)
    values, problems = await validate_new_task(principal, data, prefix="next_step.", check_links=False)
    values["client_id"], values["deal_id"] = client["id"], deal_id
    return values, errors + problems


def _future_error(status: str, occurred_at: datetime | None, errors: list[FieldError]) -> None:
    if status == "done" and occurred_at is not None and occurred_at > datetime.now(UTC) + FUTURE_TOLERANCE:
        errors.append(FieldError("occurred_at", "a completed activity cannot be in the future; plan it instead"))


async def _outcome_errors(kind: str, status: str, outcome: str | None) -> list[FieldError]:
    if kind == "call" and status == "done" and outcome is None and await call_outcomes():
        return [FieldError("outcome", "is required for a completed call")]
    return []


async def create_activity(
    principal: Principal, data: ActivityCreate, *, origin: Origin, attachments: Sequence[NewAttachment] = ()
) -> dict[str, Any]:
    """Log an activity on a client (with the follow-up task of its next step and the files
    in ``attachments``, all or nothing); the new row with its ``attachments`` metadata."""
    if data.kind == "call":
        ensure_module(principal.tenant.edition, "calls")
    errors: list[FieldError] = []
    if data.kind not in KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(KINDS)}"))
    if data.status not in STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    client = await readable_client(principal, data.client_id)
    if client is None:
        errors.append(FieldError("client_id", "no such client you may read"))
    if data.deal_id is not None:
        errors += await link_errors(principal, data.client_id if client else None, data.deal_id)
    occurred_at = datetime.now(UTC) if data.occurred_at is None else aware_utc(data.occurred_at, "occurred_at", errors)
    _future_error(data.status, occurred_at, errors)
    values = _text_values({"subject": data.subject, "comment": data.comment}, errors)
    given_call = {field: getattr(data, field) for field in CALL_FIELDS}
    if data.kind == "call":
        values.update(await _call_values(given_call, errors))
        errors += await _outcome_errors(data.kind, data.status, data.outcome)
    else:
        errors += [FieldError(field, "only for calls") for field, value in given_call.items() if value is not None]
    if await next_step_required(data.kind, data.status, data.outcome) and data.next_step is None:
        errors.append(FieldError("next_step", "is required: schedule the next step (a due time) with this result"))
    task_values = None
    if data.next_step is not None and client is not None:
        task_values, problems = await _next_step_task(principal, data.next_step, client, data.deal_id)
        errors += problems
    errors += attachment_errors(attachments)
    if errors:
        raise InvalidInput("The activity has invalid fields.", errors=errors)
    assert client is not None and occurred_at is not None
    next_task_id = None
    if task_values is not None:
        next_task_id = (await insert_task(principal, task_values, origin=origin))["id"]
    row = {
        **values,
        "kind": data.kind,
        "client_id": data.client_id,
        "deal_id": data.deal_id,
        "author_id": principal.user_id,
        "status": data.status,
        "occurred_at": occurred_at,
        "next_task_id": next_task_id,
    }
    inserted = await Activity.insert(Activity(**row)).returning(Activity.id)
    activity_id = int(inserted[0]["id"])
    stored = await insert_attachments(activity_id, principal.user_id, attachments)
    changes = {field: (None, _audit_value(value)) for field, value in row.items() if value is not None}
    if stored:
        kept = ("id", "kind", "mime_type", "size_bytes", "duration_seconds")
        changes["attachments"] = (None, [{key: item[key] for key in kept} for item in stored])
    await record_audit(
        origin.user(principal), "activity.created", entity="activity", entity_id=activity_id, changes=changes
    )
    if data.status == "done":
        await touch_client_contacts(data.client_id, occurred_at)
    return {**await load_activity(activity_id), "attachments": stored}


async def update_activity(
    principal: Principal, activity_id: int, data: ActivityUpdate, *, origin: Origin
) -> dict[str, Any]:
    """Change an activity; a planned call or meeting turned done follows the next-step rule."""
    current = await _locked(principal, activity_id, "update")
    given = {
        field: getattr(data, field)
        for field in data.__struct_fields__
        if field != "next_step" and getattr(data, field) is not msgspec.UNSET
    }
    errors: list[FieldError] = []
    values = _text_values(given, errors)
    if "status" in given:
        if given["status"] not in STATUSES:
            errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
        elif current["status"] == "done" and given["status"] == "planned":
            errors.append(FieldError("status", "a completed activity cannot go back to planned"))
        values["status"] = given["status"]
    if "occurred_at" in given:
        values["occurred_at"] = aware_utc(given["occurred_at"], "occurred_at", errors)
    if "deal_id" in given:
        if given["deal_id"] is not None:
            errors += await link_errors(principal, current["client_id"], given["deal_id"])
        values["deal_id"] = given["deal_id"]
    given_call = {field: given[field] for field in CALL_FIELDS if field in given}
    if current["kind"] == "call":
        values.update(await _call_values(given_call, errors))
    else:
        errors += [FieldError(field, "only for calls") for field, value in given_call.items() if value is not None]
    merged = {**current, **values}
    becoming_done = current["status"] == "planned" and merged["status"] == "done"
    if becoming_done or "occurred_at" in values:
        _future_error(merged["status"], merged["occurred_at"], errors)
    if becoming_done or "outcome" in given:
        errors += await _outcome_errors(merged["kind"], merged["status"], merged["outcome"])
        outcome_changed = merged["outcome"] != current["outcome"]
        if (
            (becoming_done or outcome_changed)
            and current["next_task_id"] is None
            and data.next_step is msgspec.UNSET
            and await next_step_required(merged["kind"], merged["status"], merged["outcome"])
        ):
            errors.append(FieldError("next_step", "is required: schedule the next step (a due time) with this result"))
    task_values = None
    if data.next_step is not msgspec.UNSET:
        client = await readable_client(principal, current["client_id"])
        assert client is not None  # the activity was found through its readable client
        task_values, problems = await _next_step_task(principal, data.next_step, client, merged["deal_id"])
        errors += problems
    if errors:
        raise InvalidInput("The activity change has invalid fields.", errors=errors)
    if task_values is not None:
        values["next_task_id"] = (await insert_task(principal, task_values, origin=origin))["id"]
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if diff:
        await Activity.update({getattr(Activity, field): after for field, (_, after) in diff.items()}).where(
            Activity.id == activity_id
        )
        await record_audit(
            origin.user(principal),
            "activity.updated",
            entity="activity",
            entity_id=activity_id,
            changes={field: (_audit_value(before), _audit_value(after)) for field, (before, after) in diff.items()},
        )
        if merged["status"] == "done" and (becoming_done or "occurred_at" in diff):
            await touch_client_contacts(current["client_id"], merged["occurred_at"])
    return await load_activity(activity_id)


async def delete_activity(principal: Principal, activity_id: int, *, origin: Origin) -> None:
    """Delete an activity. When it set the client's first or last contact time, that time
    goes back to what the remaining completed activities say."""
    current = await _locked(principal, activity_id, "delete")
    await Activity.delete().where(Activity.id == activity_id)
    if current["status"] == "done":
        await scope_connection().execute(
            """
            UPDATE clients SET
                last_contact_at = CASE WHEN last_contact_at = $2 THEN
                    (SELECT max(occurred_at) FROM activities WHERE client_id = $1 AND status = 'done')
                    ELSE last_contact_at END,
                first_contact_at = CASE WHEN first_contact_at = $2 THEN
                    (SELECT min(occurred_at) FROM activities WHERE client_id = $1 AND status = 'done')
                    ELSE first_contact_at END
            WHERE id = $1
            """,
            current["client_id"],
            current["occurred_at"],
        )
    kept = ("kind", "client_id", "deal_id", "author_id", "status", "occurred_at", "subject", "outcome", "next_task_id")
    await record_audit(
        origin.user(principal),
        "activity.deleted",
        entity="activity",
        entity_id=activity_id,
        changes={field: (_audit_value(current[field]), None) for field in kept},
    )


async def touch_client_contacts(client_id: int, at: datetime) -> None:
    """A completed activity at ``at``: the client's first contact is the earliest such time,
    its last contact the latest (LEAST/GREATEST skip the NULL of a first contact)."""
    await scope_connection().execute(
        "UPDATE clients SET first_contact_at = LEAST(first_contact_at, $2), "
        "last_contact_at = GREATEST(last_contact_at, $2) WHERE id = $1",
        client_id,
        at,
    )


async def load_activity(activity_id: int, condition: Combinable | None = None) -> dict[str, Any]:
    if not 1 <= activity_id <= MAX_ID:
        raise NotFound(f"There is no activity {activity_id}.")
    query = Activity.select(*ACTIVITY_COLUMNS).where(Activity.id == activity_id)
    if condition is not None:
        query = query.where(condition)
    row: dict[str, Any] | None = await query.first()
    if row is None:
        raise NotFound(f"There is no activity {activity_id}.")
    return row


async def _locked(principal: Principal, activity_id: int, action: str) -> dict[str, Any]:
    allowed = await activities_in_scope(principal, action)
    return await row_in_scope(
        Activity, ACTIVITY_COLUMNS, activity_id, allowed, noun="activity", action=action, lock=True
    )


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
