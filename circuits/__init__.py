"""The circuit engine: dossiers travelling through ordered visa and signature steps.

Pure Python (standard library only, no IO) so that every rule can be tested exhaustively without an app,
and the web views, the REST API and the jobs all go through the same decisions.
"""

from circuits.engine import (
    Action,
    Approve,
    AssigneesChanged,
    ChangeAssignees,
    DossierCompleted,
    DossierLaunched,
    DossierRecalled,
    DossierRejected,
    DossierRelaunched,
    Event,
    Launch,
    Outcome,
    Recall,
    Reject,
    Relaunch,
    Sign,
    StepActed,
    StepActivated,
    StepCompleted,
    acting_for,
    apply,
    can_act,
    can_reject,
    deadline_at,
    overdue,
    waiting_for,
)
from circuits.errors import CircuitError, TemplateError, TransitionRefused
from circuits.model import (
    ALL,
    Act,
    ActKind,
    Assignee,
    AssigneeKind,
    Delegation,
    Directory,
    DossierStatus,
    Level,
    Snapshot,
    StampBox,
    StepKind,
    StepState,
    StepStatus,
    StepTemplate,
    Template,
    level_at_least,
)
from circuits.serialise import snapshot_from_dict, snapshot_to_dict, template_from_dict, template_to_dict
from circuits.validation import validate_template

__all__ = [
    "ALL", "Act", "ActKind", "Action", "Approve", "Assignee", "AssigneeKind", "AssigneesChanged",
    "ChangeAssignees", "CircuitError", "Delegation", "Directory", "DossierCompleted", "DossierLaunched",
    "DossierRecalled", "DossierRejected", "DossierRelaunched", "DossierStatus", "Event", "Launch", "Level",
    "Outcome", "Recall", "Reject", "Relaunch", "Sign", "Snapshot", "StampBox", "StepActed", "StepActivated",
    "StepCompleted", "StepKind", "StepState", "StepStatus", "StepTemplate", "Template", "TemplateError",
    "TransitionRefused", "acting_for", "apply", "can_act", "can_reject", "deadline_at", "level_at_least",
    "overdue", "snapshot_from_dict", "snapshot_to_dict", "template_from_dict", "template_to_dict",
    "validate_template", "waiting_for",
]
