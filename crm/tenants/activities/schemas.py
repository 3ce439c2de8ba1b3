"""What the activities API accepts and shows. Bodies are loosely typed; the service checks
every field and reports all problems at once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from crm.tenants.tasks.schemas import AwareDatetime

Kind = Annotated[str, msgspec.Meta(description="call | meeting | note | email")]
Status = Annotated[str, msgspec.Meta(description="planned | done")]


class NextStep(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The follow-up task created with the activity (in the same transaction)."""

    due_at: AwareDatetime
    # Default: "Follow up: <client>" ("Связаться: <client>") in your language.
    title: str | None = None
    # Default: "call" when the company has that task type.
    task_type: str | None = None
    # Default: you; someone else needs tasks.assign over them.
    assignee_id: int | None = None


class ActivityCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: Kind
    client_id: int
    deal_id: int | None = None
    occurred_at: AwareDatetime | None = None  # default: now
    status: Status = "done"
    subject: str = ""
    comment: str = ""
    # Calls only.
    direction: Annotated[str | None, msgspec.Meta(description="in | out")] = None
    phone: str | None = None
    duration_seconds: int | None = None
    outcome: Annotated[str | None, msgspec.Meta(description="a key of the company's call outcomes")] = None
    recording_url: str | None = None
    next_step: NextStep | None = None


class ActivityUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are. A planned call or meeting becomes done with
    ``status: "done"`` (plus outcome and next step where the company requires one)."""

    deal_id: int | msgspec.UnsetType | None = msgspec.UNSET
    occurred_at: AwareDatetime | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    subject: str | msgspec.UnsetType = msgspec.UNSET
    comment: str | msgspec.UnsetType = msgspec.UNSET
    direction: str | msgspec.UnsetType | None = msgspec.UNSET
    phone: str | msgspec.UnsetType | None = msgspec.UNSET
    duration_seconds: int | msgspec.UnsetType | None = msgspec.UNSET
    outcome: str | msgspec.UnsetType | None = msgspec.UNSET
    recording_url: str | msgspec.UnsetType | None = msgspec.UNSET
    next_step: NextStep | msgspec.UnsetType = msgspec.UNSET


class AttachmentRead(msgspec.Struct, kw_only=True):
    """A file kept with the activity (e.g. the voice note of a call logged from Telegram);
    ``GET /api/v1/activities/{activity_id}/attachments/{id}`` returns its bytes."""

    id: int
    kind: Annotated[str, msgspec.Meta(description="voice | audio")]
    mime_type: str
    duration_seconds: int | None
    size_bytes: int
    created_at: datetime


class ActivityRead(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    client_id: int
    deal_id: int | None
    author_id: int | None
    status: str
    occurred_at: datetime
    subject: str
    comment: str
    direction: str | None
    phone: str | None
    duration_seconds: int | None
    outcome: str | None
    recording_url: str | None
    # The follow-up task created with the activity's next step.
    next_task_id: int | None
    created_at: datetime
    attachments: list[AttachmentRead] = msgspec.field(default_factory=list)


class ActivityPage(msgspec.Struct, kw_only=True):
    items: list[ActivityRead]
    next_cursor: str | None


class OutcomeNames(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ru: str
    en: str


class CallOutcome(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    names: OutcomeNames
    # With the company's require_next_step on, a call with this outcome needs a next step.
    requires_next_step: bool = False
