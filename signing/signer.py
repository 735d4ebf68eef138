"""PAdES signatures (subfilter ETSI.CAdES.detached) on pyHanko, one per circuit step.

- simple → B-B; advanced → B-T (a TSA is required: no token, no signature);
  qualified → B-LT (revocation data in the DSS), and :func:`timestamp_document` makes the
  file B-LTA when the dossier completes.
- The first signature certifies the document (DocMDP "form filling"); every later one fills
  its own field, prepared up front by :func:`signing.fields.prepare_fields`, in an
  incremental update.
- The size of the signature container is computed from the signer's certificates and the
  timestamp token instead of letting pyHanko make a throw-away signature to measure it.
"""

from __future__ import annotations

import asyncio
from io import BytesIO

from asn1crypto import keys as asn1_keys
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, PdfTimeStamper, Signer
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    SigDSSPlacementPreference,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import DocumentSecurityStore, async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)

from signing.errors import CertificateProblem, SigningError, TimestampUnavailable
from signing.fields import open_pdf, signature_fields
from signing.levels import SignatureLevel, profile_for
from signing.stamp import StampText, stamp_style
from signing.validation import KEY_USAGE, RevocationData

__all__ = ["RevocationDataUnavailable", "StampText", "reserved_size", "sign", "timestamp_document"]


class RevocationDataUnavailable(SigningError):
    """No OCSP response or CRL could be had for the signer: a qualified (B-LT) act fails.

    (Belongs in :mod:`signing.errors`; kept here until that module takes it.)
    """

    code = "revocation_unavailable"
    message_fr = (
        "Les informations de révocation du certificat (OCSP ou liste de révocation) n'ont pas pu "
        "être obtenues : la signature qualifiée n'a pas été apposée et le document n'a pas été "
        "modifié. Réessayez dans quelques minutes."
    )
    message_en = (
        "The certificate's revocation information (OCSP or CRL) could not be obtained: the "
        "qualified signature was not applied and the document has not been modified. "
        "Try again in a few minutes."
    )


MD_ALGORITHM = "sha256"

# Room for what does not depend on the signer's chain: SignedData/SignerInfo structure,
# algorithm identifiers, the signed attributes (content type, digest, signing-certificate-v2,
# CMS algorithm protection), measured ≈ 450 bytes; doubled for safety.
_CMS_OVERHEAD = 1024
# A TSA may answer with another certificate or a longer chain than the token measured at
# first (load balancing: pyHanko issue #515): +25 % and 2 KB on top of the measured token.
_TST_MARGIN_RATIO, _TST_MARGIN = 0.25, 2048
_SIGNATURE_FALLBACK = 32 * 1024
"""Reservation when the signer's certificate is not known before signing (hex characters)."""

# Revocation data goes into the DSS of the signature's own revision (no VRI, which is
# deprecated anyway): a B-LT signature then covers the whole file, like the others, and a
# validator needs no incremental-update analysis to see it. Same for document timestamps.
_DSS_WITH_SIGNATURE = DSSContentSettings(
    include_vri=False, placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE
)
_DSS_BEFORE_TIMESTAMP = TimestampDSSContentSettings(include_vri=False, update_before_ts=True)


def _timestamp_unavailable(cause: BaseException) -> TimestampUnavailable:
    detail = f"{cause}: {cause.__cause__!r}" if cause.__cause__ is not None else repr(cause)
    return TimestampUnavailable(detail)


def _certificate_problem(cause: BaseException) -> CertificateProblem:
    if isinstance(cause, RevokedError):
        reason = "revoked"
    elif isinstance(cause, ExpiredError):
        reason = "expired"
    elif isinstance(cause, NotYetValidError):
        reason = "not_yet_valid"
    elif isinstance(cause, PathBuildingError):
        reason = "untrusted"
    else:
        reason = "unusable"
    return CertificateProblem(reason, detail=str(cause))


def _signature_value_size(public_key: asn1_keys.PublicKeyInfo) -> int:
    algorithm = public_key.algorithm
    if algorithm in ("rsa", "rsassa_pss"):
        return (public_key.bit_size + 7) // 8 + 8
    if algorithm == "ec":
        return 2 * ((public_key.bit_size + 7) // 8) + 16  # DER SEQUENCE of two INTEGERs
    return 4700  # Ed25519/Ed448 (≤ 114) and ML-DSA (≤ 4627)


async def _timestamp_token_size(timestamper: TimeStamper) -> int:
    """Size of a token from this TSA (its first answer, cached by the timestamper object)."""
    try:
        token = await timestamper.async_dummy_response(MD_ALGORITHM)
    except (TimestampRequestError, OSError) as exc:
        raise _timestamp_unavailable(exc) from exc
    return len(token.dump())


async def _reserved_size(signer: Signer, timestamper: TimeStamper | None) -> int:
    cert = signer.signing_cert
    if cert is None:
        return _SIGNATURE_FALLBACK
    chain = {c.dump() for c in signer.cert_registry} | {cert.dump()}
    chain |= {ac.dump() for ac in signer.attribute_certs}
    estimate = sum(map(len, chain)) + _signature_value_size(cert.public_key) + _CMS_OVERHEAD
    if timestamper is not None:
        token = await _timestamp_token_size(timestamper)
        estimate += token + int(token * _TST_MARGIN_RATIO) + _TST_MARGIN
    # The container is written in hex: two characters per byte. Round to 256 bytes.
    return 2 * (-(-estimate // 256) * 256)


def reserved_size(signer: Signer, timestamper: TimeStamper | None = None) -> int:
    """Hex characters reserved for the signature container of ``signer`` (and its TSA)."""
    return asyncio.run(_reserved_size(signer, timestamper))


def sign(
    pdf: bytes,
    *,
    signer: Signer,
    level: SignatureLevel | str,
    field_name: str,
    stamp: StampText,
    certify: bool = False,
    timestamper: TimeStamper | None = None,
    validation_context: ValidationContext | None = None,
    reason: str | None = None,
    location: str | None = None,
    font_file: str | None = None,
) -> bytes:
    """Sign ``field_name`` of ``pdf`` at ``level`` and return the new revision of the file.

    ``certify`` makes this the certification signature (first signature of the document,
    DocMDP form filling). ``timestamper`` is required for advanced and qualified levels;
    ``validation_context`` (trust roots, and OCSP/CRL or fetching) for qualified.
    Raises :class:`TimestampUnavailable` if the TSA cannot be reached: nothing is returned
    and the caller's document is unchanged.
    """
    level = SignatureLevel(level)
    profile = profile_for(level)
    if profile.timestamp and timestamper is None:
        raise ValueError(f"a {level} signature needs a timestamper")
    if profile.revocation_info and validation_context is None:
        raise ValueError(f"a {level} signature needs a validation context")
    writer = open_pdf(pdf)
    fields = signature_fields(writer)
    if field_name not in fields:
        raise SigningError(
            f"no signature field {field_name!r} in the document",
            message_fr=f"Le document n'a pas de champ de signature « {field_name} ».",
            message_en=f"The document has no signature field {field_name!r}.",
        )
    if fields[field_name]:
        raise SigningError(
            f"signature field {field_name!r} already signed",
            message_fr=f"Le champ de signature « {field_name} » est déjà signé.",
            message_en=f"The signature field {field_name!r} is already signed.",
        )
    if certify and any(fields.values()):
        raise SigningError(
            "certification requested on an already signed document",
            message_fr="Seule la première signature d'un document peut le certifier.",
            message_en="Only the first signature of a document can certify it.",
        )
    meta = PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=MD_ALGORITHM,
        subfilter=SigSeedSubFilter.PADES,
        certify=certify,
        docmdp_permissions=MDPPerm.FILL_FORMS,
        reason=reason,
        location=location,
        name=stamp.signer_name,
        embed_validation_info=profile.revocation_info,
        use_pades_lta=False,
        dss_settings=_DSS_WITH_SIGNATURE,
        validation_context=validation_context if profile.revocation_info else None,
    )
    pdf_signer = PdfSigner(
        meta, signer=signer,
        timestamper=timestamper if profile.timestamp else None,
        stamp_style=stamp_style(font_file),
    )
    coro = _sign_async(pdf_signer, writer, stamp, require_revocation_data=profile.revocation_info)
    return asyncio.run(_release_after(coro, meta.validation_context)).getvalue()


async def _release_after(coro, validation_context: ValidationContext | None):
    """Await ``coro`` then close the context's fetchers. The coroutines return the output *stream*, not
    its bytes: in the main thread, Python 3.11's ``asyncio.run`` formats the repr of the finished task
    (its result included) while restoring the SIGINT handler, which cost 390 ms and 290 MB on a 100 MB
    file when the result was the signed bytes themselves."""
    try:
        return await coro
    finally:
        if validation_context is not None:
            await validation_context.aclose()


async def _sign_async(pdf_signer: PdfSigner, writer: IncrementalPdfFileWriter, stamp: StampText,
                      *, require_revocation_data: bool) -> BytesIO:
    # Same steps as PdfSigner.async_sign_pdf, with the size reserved up front and each
    # step's failures told apart (TSA, certificate checks).
    session = pdf_signer.init_signing_session(writer, existing_fields_only=True)
    timestamper = session.timestamper
    bytes_reserved = await _reserved_size(pdf_signer.signer, timestamper)
    try:
        validation_info = await session.perform_presign_validation(writer)
    except (TimestampRequestError, OSError) as exc:
        raise _timestamp_unavailable(exc) from exc
    except PyHankoSigningError as exc:
        # pyHanko wraps certvalidator's verdict on the signer's certificate
        if isinstance(exc.__cause__, PathBuildingError | PathValidationError | InvalidCertificateError):
            raise _certificate_problem(exc.__cause__) from exc
        raise
    if require_revocation_data:
        _check_revocation_data(pdf_signer.signer, validation_info)
    tbs = session.prepare_tbs_document(
        validation_info=validation_info,
        bytes_reserved=bytes_reserved,
        appearance_text_params=stamp.params(),
    )
    output = BytesIO()
    prepared, output = tbs.digest_tbs_document(output=output)
    try:
        post_sign = await tbs.perform_signature(
            document_digest=prepared.document_digest,
            pdf_cms_signed_attrs=PdfCMSSignedAttributes(
                signing_time=session.system_time,
                adobe_revinfo_attr=None,
                cades_signed_attrs=pdf_signer.signature_meta.cades_signed_attr_spec,
            ),
        )
    except (TimestampRequestError, OSError) as exc:
        raise _timestamp_unavailable(exc) from exc
    await post_sign.post_signature_processing(output)
    return output


def _check_revocation_data(signer: Signer, validation_info) -> None:
    """A B-LT signature without the signer's revocation data would only be B-T: refuse it."""
    cert = signer.signing_cert
    found = RevocationData(crls=list(validation_info.crls_to_embed),
                           ocsps=list(validation_info.ocsps_to_embed))
    if not found.covers(cert):
        raise RevocationDataUnavailable(
            f"no CRL/OCSP response for {cert.subject.human_friendly} (B-LT impossible)",
            message_fr=RevocationDataUnavailable.message_fr,
            message_en=RevocationDataUnavailable.message_en,
        )


def timestamp_document(
    pdf: bytes,
    timestamper: TimeStamper,
    validation_context: ValidationContext,
    field_name: str | None = None,
) -> bytes:
    """Add the DSS (revocation data of every signature) then a document timestamp: B-LTA.

    Call it when the dossier completes, after the last signature.
    """
    return asyncio.run(_release_after(
        _timestamp_document_async(pdf, timestamper, validation_context, field_name),
        validation_context,
    )).getvalue()


async def _timestamp_document_async(pdf: bytes, timestamper: TimeStamper,
                                    validation_context: ValidationContext,
                                    field_name: str | None) -> BytesIO:
    writer = open_pdf(pdf)
    # Revocation data for every signature's chain, so the timestamp seals all of it.
    paths = []
    for embedded in writer.prev.embedded_regular_signatures:
        status = await async_validate_pdf_signature(
            embedded, signer_validation_context=validation_context, skip_diff=True,
            key_usage_settings=KEY_USAGE,
        )
        if status.validation_path is not None:
            paths.append(status.validation_path)
        if status.timestamp_validity is not None and status.timestamp_validity.validation_path:
            paths.append(status.timestamp_validity.validation_path)
    DocumentSecurityStore.supply_dss_in_writer(
        writer, sig_contents=None, paths=paths, validation_context=validation_context,
    )
    token = await _timestamp_token_size(timestamper)
    bytes_reserved = 2 * (-(-(token + int(token * _TST_MARGIN_RATIO) + _TST_MARGIN) // 256) * 256)
    output = BytesIO()
    try:
        await PdfTimeStamper(timestamper, field_name=field_name).async_timestamp_pdf(
            writer, MD_ALGORITHM, validation_context=validation_context,
            bytes_reserved=bytes_reserved, output=output, dss_settings=_DSS_BEFORE_TIMESTAMP,
        )
    except (TimestampRequestError, OSError) as exc:
        raise _timestamp_unavailable(exc) from exc
    return output
