"""PAdES signatures on pyHanko: a pure library (no Flask, no database, no ``parapheur``).

- :mod:`signing.levels` — simple / advanced / qualified → B-B / B-T / B-LT (+ B-LTA at completion)
- :mod:`signing.fields` — every signature field of the circuit, created before the first signature
- :mod:`signing.signer` — ``sign(...)``, ``timestamp_document(...)``
- :mod:`signing.validation` — ``validate(pdf, TrustConfig(...)) -> Report``
- :mod:`signing.pki` — the embedded default's instance CA, seal and in-process TSA
- :mod:`signing.keys` — signers for sealed software keys, PKCS#12, PKCS#11, CSC
- :mod:`signing.errors` — what can go wrong, in French and English

The names below are importable from ``signing`` directly; the submodules (and pyHanko) are only
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SignatureLevel": "signing.levels",
    "PadesProfile": "signing.levels",
    "profile_for": "signing.levels",
    "FieldSpec": "signing.fields",
    "prepare_fields": "signing.fields",
    "signature_fields": "signing.fields",
    "StampText": "signing.stamp",
    "sign": "signing.signer",
    "timestamp_document": "signing.signer",
    "TrustConfig": "signing.validation",
    "Report": "signing.validation",
    "SignatureReport": "signing.validation",
    "validate": "signing.validation",
    "InstancePKI": "signing.pki",
    "create_instance_pki": "signing.pki",
    "load_instance_pki": "signing.pki",
    "issue_personal_certificate": "signing.pki",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'signing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
