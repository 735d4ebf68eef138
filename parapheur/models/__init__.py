"""ORM models, one module per part of the domain; import from here."""

from .api import ApiRateWindow
from .audit import AuditEvent, AuditHead, ChainTimestamp
from .base import Base, utcnow
from .dossiers import Document, DocumentType, Dossier, DossierAssignee, Revision
from .jobs import JobRecord
from .mail import SentMail
from .users import (
    ApiToken,
    Delegation,
    Desk,
    DeskMember,
    LoginFailure,
    Role,
    SigningCredential,
    User,
    UserRole,
)
from .webhooks import Webhook, WebhookDelivery

__all__ = [
    "ApiRateWindow", "ApiToken", "AuditEvent", "AuditHead", "Base", "ChainTimestamp", "Delegation", "Desk",
    "DeskMember", "Document", "DocumentType", "Dossier", "DossierAssignee", "JobRecord", "LoginFailure",
    "Revision", "Role", "SentMail", "SigningCredential", "User", "UserRole", "Webhook", "WebhookDelivery",
    "utcnow",
]
