"""Qualified certificates: QcStatements (ETSI EN 319 412-5).

A qualified electronic signature needs a qualified certificate (QcCompliance,
0.4.0.1862.1.1) whose private key lives in a qualified signature creation device
(QcSSCD, 0.4.0.1862.1.4).  Every qualified signer factory in :mod:`signing.keys` calls
:func:`require_qualified` before any signing happens.

This is a local check of the certificate content only; trust in the issuer (EU trusted
lists) is a validation matter.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import pem, x509
from pyhanko.sign.ades.qualified_asn1 import get_qc_statements

from signing.errors import NotQualified

__all__ = [
    "QC_COMPLIANCE",
    "QC_SSCD",
    "QC_TYPE",
    "QC_TYPE_ESEAL",
    "QC_TYPE_ESIGN",
    "REQUIRED_STATEMENTS",
    "is_qualified",
    "qc_statements",
    "qc_types",
    "require_qualified",
]

QC_COMPLIANCE = "0.4.0.1862.1.1"
QC_SSCD = "0.4.0.1862.1.4"
QC_TYPE = "0.4.0.1862.1.6"
QC_TYPE_ESIGN = "0.4.0.1862.1.6.1"
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"
REQUIRED_STATEMENTS = frozenset({QC_COMPLIANCE, QC_SSCD})


def _load(cert: x509.Certificate | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    data = bytes(cert)
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def _statements(cert: x509.Certificate | bytes) -> list[tuple[str, Any]]:
    """``(dotted statement id, statement info)`` pairs; NotQualified if unreadable."""
    try:
        return [(st["statement_id"].dotted, st["statement_info"]) for st in get_qc_statements(_load(cert))]
    except (ValueError, TypeError, KeyError) as e:  # malformed certificate or extension
        raise NotQualified(f"unreadable certificate or QcStatements extension: {e}") from e


def qc_statements(cert: x509.Certificate | bytes) -> frozenset[str]:
    """Dotted OIDs of the QcStatements in ``cert`` (empty if it has none)."""
    return frozenset(oid for oid, _ in _statements(cert))


def qc_types(cert: x509.Certificate | bytes) -> frozenset[str]:
    """Dotted OIDs declared in the QcType statement (e.g. esign, eseal), if any."""
    result: set[str] = set()
    for oid, info in _statements(cert):
        if oid == QC_TYPE:
            try:
                parsed = info.parsed if hasattr(info, "parsed") else info
                result.update(t.dotted for t in parsed)
            except (ValueError, TypeError) as e:
                raise NotQualified(f"unreadable QcType statement: {e}") from e
    return frozenset(result)


def is_qualified(cert: x509.Certificate | bytes) -> bool:
    try:
        return REQUIRED_STATEMENTS <= qc_statements(cert)
    except NotQualified:
        return False


def require_qualified(cert: x509.Certificate | bytes) -> None:
    """Raise :class:`NotQualified` unless ``cert`` has QcCompliance and QcSSCD."""
    present = qc_statements(cert)
    missing = REQUIRED_STATEMENTS - present
    if missing:
        names = {QC_COMPLIANCE: "QcCompliance", QC_SSCD: "QcSSCD"}
        subject = _load(cert).subject.human_friendly
        raise NotQualified(f"certificate {subject!r} lacks {', '.join(sorted(names[m] for m in missing))}")
