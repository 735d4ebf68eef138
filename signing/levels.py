"""Signature levels of a circuit step and the PAdES profile each one produces.

``signing`` stays independent of ``circuits``: the circuit engine has its own level
enum with the same string values, and the two meet as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["PadesProfile", "Profile", "SignatureLevel", "profile_for"]


class SignatureLevel(StrEnum):
    """Level of a signature step, as chosen in the circuit template."""

    SIMPLE = "simple"
    ADVANCED = "advanced"
    QUALIFIED = "qualified"


class PadesProfile(StrEnum):
    """PAdES baseline profile (ETSI EN 319 142-1), as reported by the validator."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


@dataclass(frozen=True)
class Profile:
    """What a level requires from the signing operation."""

    pades: PadesProfile
    """Profile the signature has right after it is made."""

    timestamp: bool
    """An RFC 3161 signature timestamp is required (no timestamp: no signature)."""

    revocation_info: bool
    """Revocation data (OCSP/CRL) for the signer's chain is embedded in the DSS."""

    archive_timestamp: bool
    """A document timestamp is added when the dossier completes, making the file B-LTA."""


_PROFILES = {
    SignatureLevel.SIMPLE: Profile(PadesProfile.B_B, timestamp=False, revocation_info=False,
                                   archive_timestamp=False),
    SignatureLevel.ADVANCED: Profile(PadesProfile.B_T, timestamp=True, revocation_info=False,
                                     archive_timestamp=False),
    SignatureLevel.QUALIFIED: Profile(PadesProfile.B_LT, timestamp=True, revocation_info=True,
                                      archive_timestamp=True),
}


def profile_for(level: SignatureLevel | str) -> Profile:
    """Return the PAdES profile of a signature level (``ValueError`` on an unknown level)."""
    return _PROFILES[SignatureLevel(level)]
