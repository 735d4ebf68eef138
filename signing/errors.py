"""Signing errors shown to end users.

Every error carries a stable machine ``code`` and a clear user-facing message in French
and English (``message_fr`` / ``message_en``, or ``message(lang)``).  ``detail`` holds the
technical cause for logs and administrators; it is never meant for end users and must not
contain secrets (PINs, passphrases, key material).

The class attributes are the defaults; a raise site may pass more specific messages.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CertificateProblem",
    "InvalidPkcs12",
    "KeyCorrupted",
    "KeyLocked",
    "NotQualified",
    "RemoteSigningFailed",
    "SigningError",
    "TimestampUnavailable",
    "TokenUnavailable",
    "UnreadablePdf",
    "WrongPin",
]


class SigningError(Exception):
    """Base class: the signing act failed, the document is unchanged."""

    code: ClassVar[str] = "signing_error"
    message_fr: str = "La signature n'a pas pu être réalisée. Le document n'a pas été modifié."
    message_en: str = "The document could not be signed. It has not been modified."

    def __init__(
        self,
        detail: str | None = None,
        *,
        message_fr: str | None = None,
        message_en: str | None = None,
    ) -> None:
        self.detail = detail
        self.message_fr = message_fr or self.message_fr
        self.message_en = message_en or self.message_en
        super().__init__(detail or self.message_en)

    def message(self, lang: str = "fr") -> str:
        """User-facing message, French unless ``lang`` starts with "en"."""
        return self.message_en if lang.lower().startswith("en") else self.message_fr

    def to_dict(self, lang: str = "fr") -> dict[str, Any]:
        """JSON-friendly form for APIs (no technical detail)."""
        return {"code": self.code, "message": self.message(lang)}

    def __str__(self) -> str:
        return f"[{self.code}] {self.detail}" if self.detail else f"[{self.code}] {self.message_en}"

    def __reduce__(self) -> tuple[Any, ...]:
        # keep reason/messages when pickled (e.g. an RQ job's exception)
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[SigningError], args: tuple[Any, ...], state: dict[str, Any]) -> SigningError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class WrongPin(SigningError):
    """Wrong signing PIN (sealed key, token or remote service).

    The application counts the failures and locks the key; this exception only reports one.
    """

    code = "wrong_pin"
    message_fr = "Code PIN de signature incorrect."
    message_en = "Incorrect signing PIN."


class KeyLocked(SigningError):
    code = "key_locked"
    message_fr = (
        "Votre clé de signature est bloquée après trop d'essais de code PIN incorrects. "
        "Contactez votre administrateur."
    )
    message_en = "Your signing key is locked after too many wrong PIN attempts. Contact your administrator."


class KeyCorrupted(SigningError):
    """The stored (sealed) key is damaged or not in a known format: not a PIN problem."""

    code = "key_corrupted"
    message_fr = (
        "La clé de signature enregistrée est illisible ou endommagée. Contactez votre administrateur."
    )
    message_en = "The stored signing key is unreadable or damaged. Contact your administrator."


class InvalidPkcs12(SigningError):
    """A PKCS#12 (.p12/.pfx) file could not be imported.

    ``reason`` is one of ``"wrong_passphrase"``, ``"not_pkcs12"``, ``"incomplete"``
    (no private key or no certificate), ``"key_mismatch"``.
    """

    code = "invalid_pkcs12"
    _MESSAGES: ClassVar[dict[str, tuple[str, str]]] = {
        "wrong_passphrase": (
            "Mot de passe du fichier de certificat (PKCS#12) incorrect.",
            "Wrong password for the certificate file (PKCS#12).",
        ),
        "not_pkcs12": (
            "Ce fichier n'est pas un certificat au format PKCS#12 (.p12 ou .pfx).",
            "This file is not a PKCS#12 certificate file (.p12 or .pfx).",
        ),
        "incomplete": (
            "Le fichier PKCS#12 doit contenir un certificat et sa clé privée.",
            "The PKCS#12 file must contain a certificate and its private key.",
        ),
        "key_mismatch": (
            "La clé privée du fichier PKCS#12 ne correspond pas à son certificat.",
            "The private key in the PKCS#12 file does not match its certificate.",
        ),
    }
    message_fr = _MESSAGES["not_pkcs12"][0]
    message_en = _MESSAGES["not_pkcs12"][1]

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        fr, en = self._MESSAGES.get(reason, (self.message_fr, self.message_en))
        super().__init__(detail or reason, message_fr=fr, message_en=en)


class NotQualified(SigningError):
    """The certificate lacks the QcStatements QcCompliance and/or QcSSCD."""

    code = "not_qualified"
    message_fr = (
        "Ce certificat n'est pas un certificat qualifié sur dispositif sécurisé (QSCD) : "
        "il ne permet pas une signature qualifiée."
    )
    message_en = (
        "This certificate is not a qualified certificate on a secure device (QSCD): "
        "it cannot produce a qualified signature."
    )


class TokenUnavailable(SigningError):
    code = "token_unavailable"
    message_fr = (
        "Le support de signature (carte, clé USB ou HSM) est introuvable ou inaccessible. "
        "Vérifiez qu'il est branché puis réessayez."
    )
    message_en = (
        "The signing device (smart card, USB token or HSM) cannot be found or accessed. "
        "Check that it is connected and try again."
    )


class RemoteSigningFailed(SigningError):
    code = "remote_signing_failed"
    message_fr = (
        "Le service de signature à distance n'a pas pu signer le document. "
        "Le document n'a pas été modifié ; réessayez plus tard."
    )
    message_en = (
        "The remote signing service could not sign the document. "
        "The document has not been modified; try again later."
    )


class TimestampUnavailable(SigningError):
    """The time-stamping authority could not be reached: the act fails, document unchanged."""

    code = "timestamp_unavailable"
    message_fr = (
        "Le service d'horodatage est injoignable : la signature n'a pas été apposée et le document "
        "n'a pas été modifié. Réessayez dans quelques minutes."
    )
    message_en = (
        "The time-stamping service cannot be reached: the signature was not applied and the document "
        "has not been modified. Try again in a few minutes."
    )


class UnreadablePdf(SigningError):
    code = "unreadable_pdf"
    message_fr = (
        "Le fichier PDF est illisible, endommagé ou protégé par un mot de passe : il ne peut pas être signé."
    )
    message_en = "The PDF file is unreadable, damaged or password-protected: it cannot be signed."


class CertificateProblem(SigningError):
    """The signing certificate cannot be used now.

    ``reason`` is one of ``"expired"``, ``"not_yet_valid"``, ``"revoked"``, ``"untrusted"``,
    ``"key_mismatch"`` (the key does not belong to the certificate), ``"unusable"``.
    """

    code = "certificate_problem"
    _MESSAGES: ClassVar[dict[str, tuple[str, str]]] = {
        "expired": ("Votre certificat de signature a expiré.", "Your signing certificate has expired."),
        "not_yet_valid": (
            "Votre certificat de signature n'est pas encore valide.",
            "Your signing certificate is not valid yet.",
        ),
        "revoked": (
            "Votre certificat de signature a été révoqué.",
            "Your signing certificate has been revoked.",
        ),
        "untrusted": (
            "Votre certificat de signature n'est pas émis par une autorité de confiance.",
            "Your signing certificate is not issued by a trusted authority.",
        ),
        "key_mismatch": (
            "La clé de signature ne correspond pas au certificat.",
            "The signing key does not match the certificate.",
        ),
        "unusable": (
            "Votre certificat ne permet pas de signer des documents.",
            "Your certificate cannot be used to sign documents.",
        ),
    }
    message_fr = "Votre certificat de signature n'est pas utilisable."
    message_en = "Your signing certificate cannot be used."

    def __init__(self, reason: str = "unusable", detail: str | None = None) -> None:
        self.reason = reason
        fr, en = self._MESSAGES.get(reason, (self.message_fr, self.message_en))
        super().__init__(detail or reason, message_fr=fr, message_en=en)
