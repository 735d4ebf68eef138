"""Errors of the circuit engine.

Each carries a stable ``code`` (for tests, the API's problem documents and logs) and the same message in
French and English: the web layer shows French, the REST API returns both, and nobody has to parse text.
"""

from __future__ import annotations


class CircuitError(Exception):
    """Base of the engine's errors: a stable code and a message in French and English."""

    def __init__(self, code: str, message_fr: str, message_en: str) -> None:
        super().__init__(message_fr)
        self.code = code
        self.message_fr = message_fr
        self.message_en = message_en

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message_fr!r}, {self.message_en!r})"


class TemplateError(CircuitError, ValueError):
    """A circuit template (or a step of one) is not acceptable.

    ``index`` is the 0-based index of the faulty step, or ``None`` when the whole template is at fault;
    the messages count steps from 1, as administrators do.
    """

    def __init__(self, code: str, message_fr: str, message_en: str, index: int | None = None) -> None:
        super().__init__(code, message_fr, message_en)
        self.index = index


class TransitionRefused(CircuitError):
    """An action is not allowed on the dossier as it stands; the snapshot is unchanged.

    Codes: ``wrong_state``, ``not_initiator``, ``not_assignee``, ``wrong_kind``, ``already_acted``,
    ``reason_required``, ``step_started``, ``not_allowed``, ``no_such_step``, ``invalid_assignees``.
    """
