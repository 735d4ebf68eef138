"""Signature validation of any PDF, against the instance's trust roots."""

from __future__ import annotations

from ..services import validation
from . import bp
from .spec import PDF, Multipart, Reply, operation

FILE = Multipart("ValidationRequest", {"file": {**PDF, "description": "Le PDF signé à vérifier."}}, required=("file",))


@operation(bp, "POST", "/validate", summary="Valider les signatures d'un PDF", tag="validation", body=FILE,
           replies=(Reply(200, "Le rapport de validation (celui de « parapheur validate --json »).",
                          "ValidationReport"),),
           errors=(400, 413))
def validate(call):
    """Validate every signature of the uploaded PDF; a file that cannot be read is reported invalid."""
    data = call.files["file"][0].read()
    return validation.validate_bytes(data).to_dict()
