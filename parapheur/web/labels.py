"""Human labels for stored codes, in the user's language."""

from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

PARIS = ZoneInfo("Europe/Paris")

EVENTS = {
    "dossier.created": _l("dossier créé"),
    "document.uploaded": _l("document déposé"),
    "document.replaced": _l("document remplacé"),
    "dossier.launched": _l("circuit lancé"),
    "step.activated": _l("étape en attente"),
    "step.approved": _l("visa"),
    "document.signed": _l("signature"),
    "step.completed": _l("étape terminée"),
    "dossier.completed": _l("dossier terminé"),
    "dossier.rejected": _l("dossier rejeté"),
    "dossier.recalled": _l("dossier retiré"),
    "dossier.relaunched": _l("dossier relancé"),
    "dossier.assignees_changed": _l("destinataires modifiés"),
    "delegation.used": _l("délégation utilisée"),
    "document.viewed": _l("document consulté"),
    "document.downloaded": _l("document téléchargé"),
    "document.timestamped": _l("horodatage d'archivage (B-LTA)"),
    "dossier.chain_timestamped": _l("journal horodaté"),
}


def event_label(kind: str) -> str:
    return str(EVENTS.get(kind, kind))


def localtime(value) -> str:
    if value is None:
        return ""
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
