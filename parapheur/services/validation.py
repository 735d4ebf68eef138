"""Validation of signed PDFs against the instance's trust roots (CLI, auditor's page, API)."""

from __future__ import annotations

from flask import current_app

from signing.validation import Report, TrustConfig, validate

from .credentials import instance_pki, trust_roots


def trust_config(app=None) -> TrustConfig:
    app = app or current_app._get_current_object()
    return TrustConfig(trust_roots=tuple(trust_roots(app)), crls=(instance_pki(app).crl_der,),
                       allow_fetching=True)


def validate_bytes(data: bytes) -> Report:
    return validate(data, trust_config())


def describe(report: Report) -> str:
    """A French summary for the terminal."""
    lines = ["Document valide." if report.valid else "Document NON valide."]
    if getattr(report, "error", None):
        lines.append(f"  {report.error}")
    for sig in report.signatures:
        state = "valide" if sig.valid else "NON valide"
        lines.append(f"- {sig.field} : {sig.signer}, {sig.level}, signé le {sig.signing_time}, {state}")
        lines.extend(f"    {reason}" for reason in sig.reasons)
    return "\n".join(lines)
