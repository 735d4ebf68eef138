"""signing.keys — qualified level: PKCS#11 token (SoftHSM2) and remote CSC service (dummy)."""

from __future__ import annotations

import socket

import pytest

from signing import keys
from signing.errors import (
    CertificateProblem,
    KeyLocked,
    NotQualified,
    RemoteSigningFailed,
    SigningError,
    TokenUnavailable,
    WrongPin,
)
from tests.pki.fixtures import CSCService, SoftHSMToken, TestPKI
from tests.unit.signing.test_keys import sign_and_validate

# --------------------------------------------------------------------------- PKCS#11


@pytest.fixture
def token(softhsm_token: SoftHSMToken) -> SoftHSMToken:
    yield softhsm_token
    keys.close_pkcs11_sessions()


def _p11(
    token: SoftHSMToken, test_pki: TestPKI, label: str = "qualified", **kwargs: object
) -> keys.TokenSigner:
    args = dict(
        module_path=token.module_path,
        token_label=token.token_label,
        pin=token.user_pin,
        key_label=token.key_labels[label],
        chain=test_pki.chain(label),
    )
    args.update(kwargs)
    return keys.pkcs11_signer(**args)  # type: ignore[arg-type]


def test_pkcs11_signer_signs_and_validates(token: SoftHSMToken, test_pki: TestPKI) -> None:
    with _p11(token, test_pki) as signer:
        assert signer.signing_cert.dump() == test_pki.cert("qualified").dump()
        sign_and_validate(signer, test_pki)
        sign_and_validate(signer, test_pki)  # the session is kept for reuse
    assert signer.closed


def test_pkcs11_wrong_pin(token: SoftHSMToken, test_pki: TestPKI) -> None:
    with pytest.raises(WrongPin):
        _p11(token, test_pki, pin="0000")


def test_pkcs11_pin_verified_at_every_call(token: SoftHSMToken, test_pki: TestPKI) -> None:
    first = _p11(token, test_pki)
    # while `first` is logged in, a call with a wrong PIN must still be refused ...
    with pytest.raises(WrongPin):
        _p11(token, test_pki, pin="9999")
    # ... and it superseded (logged out) the previous session
    assert first.closed
    with pytest.raises(TokenUnavailable):
        sign_and_validate(first, test_pki)
    second = _p11(token, test_pki)
    sign_and_validate(second, test_pki)


def test_pkcs11_not_qualified_refused_before_signing(token: SoftHSMToken, test_pki: TestPKI) -> None:
    with pytest.raises(NotQualified) as exc:
        _p11(token, test_pki, label="not-qualified")
    assert exc.value.code == "not_qualified" and "qualifié" in exc.value.message_fr
    # the same refusal when the caller supplies the (non-qualified) certificate itself
    with pytest.raises(NotQualified):
        _p11(token, test_pki, label="not-qualified", cert=test_pki.cert("not-qualified"))
    # no session left logged in by the refused attempts
    sign_and_validate(_p11(token, test_pki), test_pki)


def test_pkcs11_token_or_key_absent(token: SoftHSMToken, test_pki: TestPKI) -> None:
    with pytest.raises(TokenUnavailable):
        _p11(token, test_pki, token_label="no-such-token")
    with pytest.raises(TokenUnavailable):
        _p11(token, test_pki, key_label="no-such-key")
    with pytest.raises(TokenUnavailable):
        _p11(token, test_pki, module_path="/nonexistent/libpkcs11.so")


def test_pkcs11_with_explicit_certificate(token: SoftHSMToken, test_pki: TestPKI) -> None:
    signer = _p11(token, test_pki, cert=test_pki.cert("qualified"))
    sign_and_validate(signer, test_pki)


# --------------------------------------------------------------------------- CSC


def _csc(csc_service: CSCService, credential_id: str, **kwargs: object) -> keys.RemoteCSCSigner:
    return keys.csc_signer(
        csc_service.url,
        credential_id,
        oauth_token=csc_service.oauth_token,
        pin=csc_service.pin,
        **kwargs,  # type: ignore[arg-type]
    )


def test_csc_signer_signs_and_validates(csc_service: CSCService, test_pki: TestPKI) -> None:
    signer = _csc(csc_service, csc_service.qualified_credential_id)
    assert signer.signing_cert.dump() == test_pki.cert("qualified").dump()
    sign_and_validate(signer, test_pki)
    sign_and_validate(signer, test_pki)  # one signer, several acts (fresh SAD each time)


def test_csc_not_qualified_refused_before_signing(csc_service: CSCService) -> None:
    with pytest.raises(NotQualified):
        _csc(csc_service, csc_service.not_qualified_credential_id)


def test_csc_expired_certificate_refused(csc_service: CSCService) -> None:
    # `expired` has no QcStatements either: NotQualified comes first
    with pytest.raises((NotQualified, CertificateProblem)):
        _csc(csc_service, csc_service.credential_ids["expired"])


def test_csc_errors(csc_service: CSCService) -> None:
    with pytest.raises(RemoteSigningFailed):
        _csc(csc_service, "parapheur/no-such-credential")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(RemoteSigningFailed) as exc:
        keys.csc_signer(dead, csc_service.qualified_credential_id, timeout=2)
    assert isinstance(exc.value, SigningError) and exc.value.code == "remote_signing_failed"


def test_csc_sign_failure_is_remote_signing_failed(csc_service: CSCService, test_pki: TestPKI) -> None:
    signer = _csc(csc_service, csc_service.qualified_credential_id)
    # credential disappears between credentials/info and signHash
    signer.auth_manager.csc_session_info = type(signer.auth_manager.csc_session_info)(
        service_url=csc_service.url, credential_id="parapheur/no-such-credential"
    )
    with pytest.raises(RemoteSigningFailed):
        sign_and_validate(signer, test_pki)


@pytest.mark.parametrize(
    ("p11_error", "expected"),
    [
        ("PinIncorrect", WrongPin),
        ("PinLenRange", WrongPin),
        ("PinLocked", KeyLocked),
        ("PinExpired", KeyLocked),
        ("DeviceRemoved", TokenUnavailable),
        ("TokenNotPresent", TokenUnavailable),
        ("SessionClosed", TokenUnavailable),
    ],
)
def test_pkcs11_error_mapping(p11_error: str, expected: type[SigningError]) -> None:
    import pkcs11.exceptions

    err = keys._map_p11_error(getattr(pkcs11.exceptions, p11_error)(), "context")
    assert type(err) is expected


def test_csc_signer_factory_inside_running_event_loop(csc_service: CSCService, test_pki: TestPKI) -> None:
    import asyncio

    async def build() -> keys.RemoteCSCSigner:
        return _csc(csc_service, csc_service.qualified_credential_id)

    signer = asyncio.run(build())
    assert signer.signing_cert.dump() == test_pki.cert("qualified").dump()
