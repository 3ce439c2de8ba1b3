"""The tenant schema as the code expects it: the Piccolo table classes plus what the ORM
cannot declare (expression indexes). New tenants get exactly this in one step; the drift
test proves replaying the migrations produces the same thing."""

from __future__ import annotations

from piccolo.table import Table

from crm.tenants.activities.tables import ACTIVITY_DDL, Activity, ActivityAttachment
from crm.tenants.audit.tables import AuditEntry, AuditHead
from crm.tenants.clients.tables import CLIENT_DDL, Client, ClientRelation
from crm.tenants.configuration.tables import Pipeline, PipelineStage, Role, TenantSetting
from crm.tenants.deals.tables import DEAL_DDL, Deal, DealStageChange
from crm.tenants.imports.tables import ImportJob
from crm.tenants.leads.tables import LEAD_DDL, Lead
from crm.tenants.leads.web_form_tables import WEB_FORM_DDL, WebForm
from crm.tenants.mail.tables import OutboxMessage
from crm.tenants.mailings.tables import MAILING_DDL, Delivery, Mailing, MailTemplate, Segment, Unsubscribe
from crm.tenants.notifications.tables import NOTIFICATION_DDL, Notification
from crm.tenants.reminders.tables import REMINDER_DDL, ReminderQueued, ReminderSent
from crm.tenants.tasks.tables import TASK_DDL, Task
from crm.tenants.users.tables import AccessToken, Department, Invitation, PasswordReset, User

# The audit log is append-only at the database level: rows can be inserted, never changed
# or removed (the function lives in the tenant's schema, which stays self-contained).
AUDIT_DDL: tuple[str, ...] = (
    'CREATE INDEX audit_log_entity ON "audit_log" ("entity", "entity_id")',
    'CREATE INDEX audit_log_actor_id ON "audit_log" ("actor_id")',
    'CREATE INDEX audit_log_occurred_at ON "audit_log" ("occurred_at")',
    """CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$""",
    'CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "audit_log"'
    " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
    'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "audit_log"'
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()",
)

# Ordered so that every table comes after the tables it references.
TENANT_TABLES: list[type[Table]] = [
    Department,
    User,
    AccessToken,
    Client,
    Pipeline,
    PipelineStage,
    Role,
    TenantSetting,
    AuditEntry,
    AuditHead,
    Invitation,
    OutboxMessage,
    PasswordReset,
    ClientRelation,
    Deal,
    DealStageChange,
    Lead,
    Task,
    Activity,
    ActivityAttachment,
    ImportJob,
    Segment,
    MailTemplate,
    Mailing,
    Delivery,
    Unsubscribe,
    Notification,
    ReminderSent,
    ReminderQueued,
    WebForm,
]

EXTRA_DDL: tuple[str, ...] = (
    'CREATE UNIQUE INDEX pipeline_stages_pipeline_key ON "pipeline_stages" ("pipeline_id", "key")',
    'CREATE INDEX access_tokens_user_id ON "access_tokens" ("user_id")',
    'CREATE INDEX users_department_id ON "users" ("department_id")',
    'CREATE INDEX departments_parent_id ON "departments" ("parent_id")',
    *AUDIT_DDL,
    *CLIENT_DDL,
    *DEAL_DDL,
    *LEAD_DDL,
    *TASK_DDL,
    *ACTIVITY_DDL,
    *MAILING_DDL,
    *NOTIFICATION_DDL,
    *REMINDER_DDL,
    *WEB_FORM_DDL,
)


def current_schema_ddl() -> list[str]:
    """Statements that create a tenant schema's tables at the current version."""
    statements: list[str] = []
    for table in TENANT_TABLES:
        statements.extend(table.create_table().ddl)
    statements.extend(EXTRA_DDL)
    return statements
