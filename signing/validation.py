"""Validate the signatures of a PDF: one report per signature, in French.

Each signature goes through pyHanko's ``validate_pdf_signature`` with explicit trust roots
and the incremental-update (difference) analysis on; it is valid only if pyHanko's
``bottom_line`` is true. Signatures that are long-term (a document timestamp after them)
also go through the AdES long-term validation (``ades_lta_validation``), which can vouch
for them at the time of their proof of existence when the current-time check fails (an
expired certificate, a revocation service gone).

Nothing here raises on a bad file: unreadable input, an encrypted file, a signature that
cannot be parsed are all reported as invalid, with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from signing.levels import PadesProfile

__all__ = ["Report", "RevocationData", "SignatureReport", "TrustConfig", "validate", "validate_async"]

logger = logging.getLogger(__name__)

KEY_USAGE = KeyUsageConstraints(key_usage={"non_repudiation", "digital_signature"})
"""Either key usage will do: real qualified seals often carry digitalSignature only."""

NO_SIGNATURE = "aucune signature"
_LEVELS = list(PadesProfile)


def _load_certs(values: Iterable[Any]) -> tuple[asn1_x509.Certificate, ...]:
    """Certificates as asn1crypto objects, from asn1crypto/cryptography objects, DER or PEM."""
    out = []
    for value in values:
        if isinstance(value, asn1_x509.Certificate):
            out.append(value)
            continue
        if hasattr(value, "public_bytes"):  # cryptography.x509.Certificate
            from cryptography.hazmat.primitives.serialization import Encoding

            value = value.public_bytes(Encoding.DER)
        data = bytes(value)
        if pem.detect(data):
            out.extend(asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True))
        else:
            out.append(asn1_x509.Certificate.load(data))
    return tuple(out)


def _load_der_list(values: Iterable[Any], loader) -> tuple:
    out = []
    for value in values:
        if hasattr(value, "dump"):
            out.append(value)
            continue
        if hasattr(value, "public_bytes"):  # cryptography CRL
            from cryptography.hazmat.primitives.serialization import Encoding

            value = value.public_bytes(Encoding.DER)
        data = bytes(value)
        if pem.detect(data):
            out.extend(loader(der) for _, _, der in pem.unarmor(data, multiple=True))
        else:
            out.append(loader(data))
    return tuple(out)


@dataclass(frozen=True)
class TrustConfig:
    """What the validator trusts, and where it may get revocation data."""

    trust_roots: tuple = ()
    """Trust anchors (asn1crypto or cryptography certificates, DER or PEM bytes). Nothing else is trusted."""

    other_certs: tuple = ()
    """Intermediate certificates that may help build paths."""

    crls: tuple = ()
    """CRLs known in advance (asn1crypto, cryptography, DER or PEM)."""

    ocsps: tuple = ()
    """OCSP responses known in advance (asn1crypto or DER)."""

    allow_fetching: bool = False
    """Fetch CRLs/OCSP responses (and missing certificates) over the network."""

    revocation_mode: str = "soft-fail"
    """certvalidator's mode: "soft-fail", "hard-fail" or "require" (revocation data for every certificate)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "trust_roots", _load_certs(self.trust_roots))
        object.__setattr__(self, "other_certs", _load_certs(self.other_certs))
        object.__setattr__(self, "crls", _load_der_list(self.crls, asn1_crl.CertificateList.load))
        object.__setattr__(self, "ocsps", _load_der_list(self.ocsps, asn1_ocsp.OCSPResponse.load))
        if not self.trust_roots:
            raise ValueError("TrustConfig needs at least one trust root (no system trust store)")
        RevocationCheckingPolicy.from_legacy(self.revocation_mode)  # ValueError if unknown

    def validation_context(self, at: dt.datetime | None = None) -> ValidationContext:
        """A fresh validation context (they are stateful: one per signature), at ``at`` or now."""
        return ValidationContext(
            moment=at,
            trust_roots=list(self.trust_roots),
            other_certs=list(self.other_certs),
            crls=list(self.crls),
            ocsps=list(self.ocsps),
            allow_fetching=self.allow_fetching,
            revocation_mode=self.revocation_mode,
        )

    def lta_spec(self) -> PdfSignatureValidationSpec:
        """Settings of the AdES long-term validation."""
        rule = (RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH if self.allow_fetching
                else RevinfoOnlineFetchingRule.LOCAL_ONLY)
        return PdfSignatureValidationSpec(SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=list(self.trust_roots)),
                revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy(self.revocation_mode)),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=rule),
            local_knowledge=LocalKnowledge(
                known_crls=[CRLContainer(c) for c in self.crls],
                known_ocsps=[o for resp in self.ocsps for o in OCSPContainer.load_multi(resp)],
                known_certs=list(self.other_certs),
            ),
            key_usage_settings=KEY_USAGE,
        ))


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature (or document timestamp) of the file."""

    field: str
    """Name of the signature field."""

    signer: str
    """Common name of the signer's certificate (the TSA's, for a document timestamp)."""

    level: str
    """PAdES level reached by the file for this signature: "B-B", "B-T", "B-LT" or "B-LTA"."""

    signing_time: dt.datetime | None
    """Time claimed by the signer (not proven)."""

    timestamp_time: dt.datetime | None
    """Time proven by the signature timestamp token (the token's time, for a document timestamp)."""

    intact: bool
    """The signed bytes are unchanged and the signature value is cryptographically correct."""

    trusted: bool
    """The signer's certificate chains up to a trust root, and is neither expired nor revoked."""

    revocation: str
    """Revocation status of the signer's certificate: "good", "revoked", "unknown" or "not_checked"."""

    coverage: str
    """What the signature covers: "entire_file", "entire_revision" (later updates follow) or "partial"."""

    modifications: str | None
    """pyHanko's modification level of the later updates (NONE, LTA_UPDATES, FORM_FILLING,
    ANNOTATIONS, OTHER); ``None`` if it could not be determined."""

    valid: bool
    """The overall verdict: pyHanko's ``bottom_line`` (or the long-term validation's)."""

    reasons: tuple[str, ...] = ()
    """Why it is not valid (or what to know), in French."""

    kind: str = "signature"
    """"signature" or "document_timestamp"."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``parapheur validate --json``."""
        return {
            "field": self.field,
            "signer": self.signer,
            "level": self.level,
            "signing_time": _iso(self.signing_time),
            "timestamp_time": _iso(self.timestamp_time),
            "intact": self.intact,
            "trusted": self.trusted,
            "coverage": self.coverage,
            "modifications": self.modifications,
            "valid": self.valid,
            "reasons": list(self.reasons),
            "revocation": self.revocation,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Report:
    """The verdict on a file."""

    valid: bool
    """True when the file has at least one signature and every one of them is valid."""

    signatures: tuple[SignatureReport, ...] = field(default_factory=tuple)
    """One entry per signature and document timestamp, in the order they were added."""

    error: str | None = None
    """Why the file could not be examined, or "aucune signature"; ``None`` otherwise."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``parapheur validate --json``."""
        return {
            "valid": self.valid,
            "signatures": [s.to_dict() for s in self.signatures],
            "error": self.error,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _common_name(cert: asn1_x509.Certificate) -> str:
    try:
        name = cert.subject.native.get("common_name")
    except Exception:  # a malformed name must not break the report
        name = None
    if isinstance(name, list):
        name = name[-1]
    return str(name) if name else cert.subject.human_friendly


_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
}


def validate(pdf: bytes, trust: TrustConfig, *, at: dt.datetime | None = None) -> Report:
    """Validate every signature of ``pdf`` against ``trust``; never raises on bad input.

    ``at``: validate as of that moment instead of now (an audit "as of", or a test of how a
    file will age). Runs its own event loop (like pyHanko's sync API): from async code,
    use :func:`validate_async`.
    """
    return asyncio.run(validate_async(pdf, trust, at=at))


async def validate_async(pdf: bytes, trust: TrustConfig, *, at: dt.datetime | None = None) -> Report:
    """:func:`validate`, for callers already running an event loop."""
    try:
        return await _validate(pdf, _Check(trust, at))
    except Exception as exc:  # last resort: a report, never an exception
        logger.exception("validation failed")
        return Report(valid=False, error=f"validation impossible : {exc}")


def _open(pdf: bytes) -> tuple[PdfFileReader | None, str | None]:
    if not pdf:
        return None, "fichier vide"
    if b"%PDF-" not in pdf[:1024]:
        return None, "ce fichier n'est pas un PDF"
    try:
        reader = PdfFileReader(BytesIO(pdf))
        if reader.encrypted:
            return None, "le PDF est protégé par un mot de passe"
        reader.root  # noqa: B018 - force the trailer and catalog to be read
    except Exception as exc:
        if b"/Encrypt" in pdf:
            return None, "le PDF est protégé par un mot de passe"
        return None, f"PDF illisible ou endommagé : {exc}"
    return reader, None


@dataclass(frozen=True)
class _Check:
    trust: TrustConfig
    at: dt.datetime | None

    def context(self) -> ValidationContext:
        return self.trust.validation_context(self.at)


async def _validate(pdf: bytes, trust: _Check) -> Report:
    reader, error = _open(pdf)
    if reader is None:
        return Report(valid=False, error=error)
    try:
        embedded, broken = _collect(reader)
    except Exception as exc:
        return Report(valid=False, error=f"signatures illisibles : {exc}")
    if not embedded and not broken:
        return Report(valid=False, error=NO_SIGNATURE)

    dss = RevocationData.read(reader)
    # Document timestamps first: a signature's level depends on the timestamps after it.
    timestamps = [(sig, await _check_document_timestamp(sig, trust))
                  for sig in embedded if _is_doc_timestamp(sig)]
    timestamp_reports = {id(sig): report for sig, report in timestamps}
    reports = []
    for sig in embedded:
        report = timestamp_reports.get(id(sig))
        if report is None:
            report = await _check_signature(sig, trust, reader, dss, timestamps)
        reports.append(report)
    reports.extend(broken)
    return Report(valid=all(r.valid for r in reports), signatures=tuple(reports))


def _collect(reader: PdfFileReader) -> tuple[list[EmbeddedPdfSignature], list[SignatureReport]]:
    """The signatures of the file in the order they were made, and those that cannot be parsed.

    (pyHanko's ``reader.embedded_signatures`` fails as a whole on one unparsable signature.)
    """
    embedded, broken = [], []
    for name, _value, field_ref in enumerate_sig_fields(reader, filled_status=True):
        try:
            embedded.append(EmbeddedPdfSignature(reader, field_ref, name))
        except Exception as exc:
            broken.append(_broken_field(str(name), exc))
    embedded.sort(key=lambda sig: sig.signed_revision)
    return embedded, broken


def _is_doc_timestamp(sig: EmbeddedPdfSignature) -> bool:
    try:
        return sig.sig_object_type == "/DocTimeStamp"
    except Exception:
        return False


def _field_name(sig: EmbeddedPdfSignature) -> str:
    try:
        return str(sig.field_name)
    except Exception:
        return "?"


def _broken(sig: EmbeddedPdfSignature, exc: BaseException, kind: str) -> SignatureReport:
    return _broken_field(_field_name(sig), exc, kind)


def _broken_field(name: str, exc: BaseException, kind: str = "signature") -> SignatureReport:
    return SignatureReport(
        field=name, signer="?", level=PadesProfile.B_B.value, signing_time=None,
        timestamp_time=None, intact=False, trusted=False, revocation="unknown", coverage="partial",
        modifications=None, valid=False, reasons=(f"signature illisible : {exc}",), kind=kind,
    )


def _modification_reasons(status) -> list[str]:
    reasons = []
    coverage = status.coverage
    if coverage not in _COVERAGE:
        reasons.append("la signature ne couvre pas le fichier d'un seul tenant")
    diff = status.diff_result
    if isinstance(diff, SuspiciousModification):
        reasons.append(f"contenu modifié après la signature ({diff})")
    elif getattr(status, "docmdp_ok", True) is False:
        reasons.append("contenu modifié après la signature (modifications non permises par la certification)")
    return reasons


async def _check_document_timestamp(sig: EmbeddedPdfSignature, trust: _Check) -> SignatureReport:
    context = trust.context()
    try:
        status = await async_validate_pdf_timestamp(sig, validation_context=context)
    except Exception as exc:
        return _broken(sig, exc, "document_timestamp")
    finally:
        await context.aclose()
    reasons = []
    if not (status.intact and status.valid):
        reasons.append("octet modifié : intégrité rompue (horodatage du document)")
    if not status.trusted:
        reasons.append("certificat de l'autorité d'horodatage non approuvé")
    revocation = _revocation(status, status.signing_cert, context)
    if revocation == "revoked":
        reasons.append("certificat de l'autorité d'horodatage révoqué")
    changes = _modification_reasons(status)
    level = status.modification_level
    if not changes and level is not None and level > ModificationLevel.FORM_FILLING:
        changes.append("contenu modifié après l'horodatage du document")
    reasons += changes
    return SignatureReport(
        field=_field_name(sig),
        signer=_common_name(status.signing_cert),
        level=PadesProfile.B_LTA.value,
        signing_time=status.timestamp,
        timestamp_time=status.timestamp,
        intact=status.intact and status.valid,
        trusted=status.trusted,
        revocation=revocation,
        coverage=_COVERAGE.get(status.coverage, "partial"),
        modifications=level.name if level is not None else None,
        valid=not reasons,
        reasons=tuple(reasons),
        kind="document_timestamp",
    )


async def _check_signature(sig: EmbeddedPdfSignature, trust: _Check, reader: PdfFileReader,
                           dss: RevocationData,
                           timestamps: Sequence[tuple[EmbeddedPdfSignature, SignatureReport]]
                           ) -> SignatureReport:
    context = trust.context()
    try:
        status = await async_validate_pdf_signature(
            sig, signer_validation_context=context, key_usage_settings=KEY_USAGE,
        )
        cert = sig.signer_cert
    except Exception as exc:
        return _broken(sig, exc, "signature")
    finally:
        await context.aclose()

    level = _level(sig, status, reader, dss, timestamps)
    valid = status.bottom_line
    reasons = _status_reasons(status)
    revocation = _revocation(status, cert, context)
    if valid and revocation == "revoked":
        # pyHanko only consults a CRL when the certificate names a distribution point;
        # a CRL we hold that lists the certificate still counts.
        valid = False
        reasons.append("certificat révoqué (liste de révocation)")

    if not valid and level in (PadesProfile.B_LT, PadesProfile.B_LTA) and status.intact and status.valid:
        # The current-time check failed (expired certificate, revocation service gone…):
        # the archive timestamps may still prove the signature was good when it was made.
        lta_status, summary = await _long_term(sig, trust)
        if lta_status is not None and lta_status.bottom_line:
            status, valid, reasons = lta_status, True, [f"validée à long terme : {summary}"]
        else:
            reasons.append(summary)
    if not valid and not reasons:
        reasons.append("signature non valide")

    ts = status.timestamp_validity
    return SignatureReport(
        field=_field_name(sig),
        signer=_common_name(cert),
        level=level.value,
        signing_time=status.signer_reported_dt,
        timestamp_time=ts.timestamp if ts is not None else None,
        intact=status.intact and status.valid,
        trusted=status.trusted and revocation != "revoked",
        revocation=revocation,
        coverage=_COVERAGE.get(status.coverage, "partial"),
        modifications=status.modification_level.name if status.modification_level is not None else None,
        valid=valid,
        reasons=tuple(reasons),
        kind="signature",
    )


def _status_reasons(status) -> list[str]:
    reasons = []
    if not status.intact:
        reasons.append("octet modifié : intégrité rompue")
    elif not status.valid:
        reasons.append("valeur de signature invalide")
    if status.intact and status.valid and not status.trusted:
        if status.revoked:
            when = status.revocation_details.revocation_date
            reasons.append(f"certificat révoqué (le {when:%d/%m/%Y})")
        elif status.validation_path is None:
            reasons.append("certificat non approuvé : aucune chaîne vers une autorité de confiance")
        else:
            indication = status.trust_problem_indic
            name = getattr(indication, "name", str(indication))
            reasons.append(f"certificat non approuvé ({_TRUST_PROBLEMS.get(name, name)})")
    ts = status.timestamp_validity
    if ts is not None and not (ts.intact and ts.valid and ts.trusted):
        reasons.append("jeton d'horodatage de la signature invalide ou non approuvé")
    content_ts = status.content_timestamp_validity
    if content_ts is not None and not (content_ts.intact and content_ts.valid and content_ts.trusted):
        reasons.append("horodatage du contenu invalide ou non approuvé")
    if not status.seed_value_ok:
        reasons.append("contraintes du champ de signature non respectées")
    reasons += _modification_reasons(status)
    return reasons


_TRUST_PROBLEMS = {
    "EXPIRED": "certificat expiré",
    "NOT_YET_VALID": "certificat pas encore valide",
    "REVOKED_NO_POE": "certificat révoqué",
    "REVOKED_CA_NO_POE": "autorité de certification révoquée",
    "TRY_LATER": "informations de révocation indisponibles",
    "NO_CERTIFICATE_CHAIN_FOUND": "aucune chaîne vers une autorité de confiance",
    "CHAIN_CONSTRAINTS_FAILURE": "contraintes de la chaîne non respectées",
    "CRYPTO_CONSTRAINTS_FAILURE": "algorithme cryptographique refusé",
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "algorithme cryptographique refusé",
    "OUT_OF_BOUNDS_NO_POE": "hors de la période de validité",
    "REVOCATION_OUT_OF_BOUNDS_NO_POE": "informations de révocation périmées",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "chaîne de certification invalide",
    "SIG_CONSTRAINTS_FAILURE": "usage de la clé non autorisé pour signer",
}


async def _long_term(sig: EmbeddedPdfSignature, trust: _Check):
    """AdES long-term validation: (status or None, French summary)."""
    timing = None
    if trust.at is not None:
        timing = ValidationTimingInfo(validation_time=trust.at, best_signature_time=trust.at,
                                      point_in_time_validation=True)
    try:
        result = await ades_lta_validation(sig, trust.trust.lta_spec(), timing_info=timing)
    except Exception as exc:
        return None, f"validation à long terme impossible : {exc}"
    if result.ades_subindic == AdESPassed.OK:
        when = result.best_signature_time.astimezone(dt.UTC)
        return result.api_status, f"existence prouvée le {when:%d/%m/%Y à %H:%M} UTC"
    return None, f"validation à long terme en échec : {result.ades_subindic.name}"


def _level(sig: EmbeddedPdfSignature, status, reader: PdfFileReader, dss: RevocationData,
           timestamps: Sequence[tuple[EmbeddedPdfSignature, SignatureReport]]) -> PadesProfile:
    """B-B < B-T (signature timestamp) < B-LT (+ revocation data in the DSS) < B-LTA (+ a
    valid document timestamp over that DSS)."""
    if status.timestamp_validity is None:
        return PadesProfile.B_B
    cert = sig.signer_cert
    if not dss.covers(cert):
        return PadesProfile.B_T
    for ts_sig, ts_report in timestamps:
        if not ts_report.valid or ts_sig.signed_revision <= sig.signed_revision:
            continue
        try:
            historical = RevocationData.read(reader.get_historical_resolver(ts_sig.signed_revision))
        except Exception:
            continue
        if historical.covers(cert):
            return PadesProfile.B_LTA
    return PadesProfile.B_LT


def _revocation(status, cert, context: ValidationContext) -> str:
    """"revoked", "good" (relevant CRL/OCSP at hand and the path validated), "unknown"
    (the check could not be done) or "not_checked" (no revocation data, none required)."""
    known = RevocationData(crls=list(context.crls), ocsps=list(context.ocsps))
    if status.revoked or known.lists_as_revoked(cert):
        return "revoked"
    if not status.trusted or context.soft_fail_exceptions:
        return "unknown"
    if known.covers(cert):
        return "good"
    return "not_checked"


@dataclass
class RevocationData:
    """CRLs and OCSP responses: is there revocation data for a certificate, does it revoke it?"""

    crls: list[asn1_crl.CertificateList] = field(default_factory=list)
    ocsps: list[asn1_ocsp.OCSPResponse] = field(default_factory=list)

    @classmethod
    def read(cls, handler) -> RevocationData:
        """The CRLs and OCSP responses of the DSS of ``handler`` (a reader or a past revision)."""
        try:
            store = DocumentSecurityStore.read_dss(handler)
        except NoDSSFoundError:
            return cls()
        crls = [asn1_crl.CertificateList.load(ref.get_object().data) for ref in store.crls]
        ocsps = [asn1_ocsp.OCSPResponse.load(ref.get_object().data) for ref in store.ocsps]
        return cls(crls=crls, ocsps=ocsps)

    def covers(self, cert: asn1_x509.Certificate) -> bool:
        """Whether a CRL from the certificate's issuer or an OCSP response about it is present."""
        for crl in self.crls:
            if crl["tbs_cert_list"]["issuer"] == cert.issuer:
                return True
        for response in self.ocsps:
            try:
                basic = response["response_bytes"]["response"].parsed
                singles = basic["tbs_response_data"]["responses"]
            except (KeyError, TypeError, ValueError):
                continue
            for single in singles:
                if single["cert_id"]["serial_number"].native == cert.serial_number:
                    return True
        return False

    def lists_as_revoked(self, cert: asn1_x509.Certificate) -> bool:
        """Whether a CRL from the certificate's issuer lists it."""
        for crl in self.crls:
            if crl["tbs_cert_list"]["issuer"] != cert.issuer:
                continue
            for entry in crl["tbs_cert_list"]["revoked_certificates"]:
                if entry["user_certificate"].native == cert.serial_number:
                    return True
        return False
