"""Where a signing key lives.  Every factory returns a pyHanko :class:`~pyhanko.sign.signers.Signer`.

Advanced level — software key under the signer's sole control
    :func:`generate_key`, :func:`seal_private_key` (PIN-encrypted blob, stored by the app),
    :func:`open_sealed_key`, :func:`change_pin`, :func:`software_signer`;
    certificates from a real CA: :func:`import_pkcs12`, :func:`pkcs12_signer`.

Qualified level — key in a QSCD
    :func:`pkcs11_signer` (token / HSM; SoftHSM2 in tests), :func:`csc_signer` (remote
    signing service, CSC API v1).  Both refuse a certificate without QcCompliance + QcSSCD
    (:func:`signing.qualified.require_qualified`) before anything is signed.

Performance (DESIGN §4): pyHanko's ``SimpleSigner`` re-parses its key at every
``sign_raw`` (``load_der_private_key`` validates the RSA key: ~45 ms for RSA-2048 here) and
pyHanko signs twice when it has to size the signature.  :class:`CachedKeySigner` keeps the
parsed key and answers the sizing ("dry run") call without signing; parsed keys are cached per
process by the SHA-256 of the decrypted key, *after* the PIN has been verified by decryption,
so the cache never lets a call skip the PIN check.

Sealed key format (version 1), all integers big-endian::

    b"PPHSEAL" | version:u8 | header_len:u16 | header (JSON, UTF-8)
             | AES-256-GCM(PKCS#8 DER; aad = everything before) | SHA-256(everything before)

The header records the KDF (argon2id: time cost, memory KiB, lanes, 16-byte salt) and the
12-byte nonce.  The trailing SHA-256 is an unkeyed checksum: it tells storage corruption
(:class:`~signing.errors.KeyCorrupted`) apart from a wrong PIN
(:class:`~signing.errors.WrongPin`, GCM tag mismatch), so a damaged blob never counts as a PIN
failure.  Authenticity comes from GCM with the header as associated data.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import aiohttp
import pkcs11
from asn1crypto import cms, core, pem, x509
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.pkcs11 import PKCS11Signer
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationManager,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from signing.errors import (
    CertificateProblem,
    InvalidPkcs12,
    KeyCorrupted,
    KeyLocked,
    RemoteSigningFailed,
    SigningError,
    TokenUnavailable,
    WrongPin,
)
from signing.qualified import require_qualified

__all__ = [
    "DEFAULT_KDF",
    "DEFAULT_KEY_SIZE",
    "CachedKeySigner",
    "CertLike",
    "KdfParams",
    "RemoteCSCSigner",
    "TokenSigner",
    "change_pin",
    "check_signing_certificate",
    "clear_key_caches",
    "close_pkcs11_sessions",
    "csc_signer",
    "generate_key",
    "import_pkcs12",
    "open_sealed_key",
    "pkcs11_signer",
    "pkcs12_signer",
    "seal_private_key",
    "sealed_key_header",
    "software_signer",
]

CertLike = x509.Certificate | bytes

#: RSA-3072: ~128-bit security, what ANSSI (RGS B1) and ETSI TS 119 312 ask for keys still in
#: use after 2030; certificates issued today outlive that.  Signing costs ~3 ms instead of ~1 ms
#: for RSA-2048, negligible next to the PDF work; generation is a one-off (~0.3-1 s).
DEFAULT_KEY_SIZE = 3072


# --------------------------------------------------------------------------- helpers


def _load_cert(cert: CertLike) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    data = bytes(cert)
    try:
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        loaded = x509.Certificate.load(data)
        loaded.native  # noqa: B018 - force a full parse now, not at signing time
        return loaded
    except (ValueError, TypeError) as e:
        raise CertificateProblem("unusable", f"not an X.509 certificate: {e}") from e


def _load_chain(chain: Iterable[CertLike]) -> list[x509.Certificate]:
    return [_load_cert(c) for c in chain]


def _spki_der(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_matches_cert(private_key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    try:
        cert_pub = serialization.load_der_public_key(cert.public_key.dump())
    except (ValueError, TypeError):
        return False
    return _spki_der(private_key.public_key()) == _spki_der(cert_pub)


def check_signing_certificate(cert: CertLike, at: datetime | None = None) -> x509.Certificate:
    """Refuse a certificate that cannot sign now: validity period and key usage.

    Revocation is checked by validation (it needs the network); this is the cheap local part.
    Raises :class:`CertificateProblem` (``expired``, ``not_yet_valid``, ``unusable``).
    """
    cert = _load_cert(cert)
    now = at or datetime.now(tz=UTC)
    if now < cert.not_valid_before:
        raise CertificateProblem("not_yet_valid", f"valid from {cert.not_valid_before.isoformat()}")
    if now > cert.not_valid_after:
        raise CertificateProblem("expired", f"expired on {cert.not_valid_after.isoformat()}")
    ku = cert.key_usage_value
    if ku is not None and not ({"digital_signature", "non_repudiation"} & set(ku.native)):
        raise CertificateProblem("unusable", f"key usage {sorted(ku.native)} does not allow signing")
    return cert


def _normalise_pin(pin: str) -> bytes:
    if not isinstance(pin, str):
        raise TypeError("the PIN must be a str")
    return unicodedata.normalize("NFC", pin).encode("utf-8")


T = TypeVar("T")


def _run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, also when called inside a running event loop."""

    async def runner() -> T:
        return await make_coro()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()


# --------------------------------------------------------------------------- parsed key cache


class _ParsedKeyCache:
    """Per-process LRU of parsed private keys, keyed by SHA-256 of their PKCS#8 DER.

    Only ever filled with keys whose owner already proved possession (PIN / passphrase).
    """

    def __init__(self, maxsize: int = 128) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, tuple[PrivateKeyTypes, asn1_keys.PrivateKeyInfo]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pkcs8_der: bytes) -> tuple[PrivateKeyTypes, asn1_keys.PrivateKeyInfo]:
        digest = hashlib.sha256(pkcs8_der).digest()
        with self._lock:
            hit = self._data.get(digest)
            if hit is not None:
                self._data.move_to_end(digest)
                return hit
        try:
            key = serialization.load_der_private_key(pkcs8_der, password=None)
        except (ValueError, TypeError) as e:
            raise KeyCorrupted(f"private key unreadable: {e}") from e
        info = asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        with self._lock:
            self._data[digest] = (key, info)
            self._data.move_to_end(digest)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return key, info

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


_KEY_CACHE = _ParsedKeyCache()


class CachedKeySigner(SimpleSigner):
    """A :class:`SimpleSigner` holding an already-parsed ``cryptography`` private key.

    * ``sign_raw`` uses the parsed key (no ``load_der_private_key`` per signature);
    * the size-estimation ("dry run") call of pyHanko returns a placeholder of the exact size
      for RSA instead of signing.
    """

    def __init__(
        self,
        signing_cert: x509.Certificate,
        private_key: PrivateKeyTypes,
        key_info: asn1_keys.PrivateKeyInfo,
        cert_registry: SimpleCertificateStore,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            signing_cert=signing_cert, signing_key=key_info, cert_registry=cert_registry, **kwargs
        )
        self.private_key = private_key

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run and isinstance(self.private_key, rsa.RSAPrivateKey):
            return bytes((self.private_key.key_size + 7) // 8)
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mech = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            algo = mech.signature_algo
        except ValueError:
            algo = mech["algorithm"].native
        key = self.private_key
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if algo == "rsassa_pss" and isinstance(key, rsa.RSAPrivateKey):
            pss, hash_algo = process_pss_params(mech["parameters"])
            return key.sign(data, pss, hash_algo)
        if algo == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        if algo in ("ed25519", "ed448") and isinstance(
            key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
        ):
            return key.sign(data)
        return super().sign_raw(data, digest_algorithm)  # rare algorithms: pyHanko's own path


def _make_cached_signer(
    pkcs8_der: bytes, cert: CertLike, chain: Iterable[CertLike], *, check_validity: bool
) -> CachedKeySigner:
    cert = check_signing_certificate(cert) if check_validity else _load_cert(cert)
    key, info = _KEY_CACHE.get(pkcs8_der)
    if not _key_matches_cert(key, cert):
        raise CertificateProblem("key_mismatch", "the private key does not match the certificate")
    registry = SimpleCertificateStore.from_certs([cert, *_load_chain(chain)])
    return CachedKeySigner(signing_cert=cert, private_key=key, key_info=info, cert_registry=registry)


def clear_key_caches() -> None:
    """Forget every parsed key and loaded PKCS#12 of this process (e.g. after a key rotation)."""
    _KEY_CACHE.clear()
    with _P12_LOCK:
        _P12_CACHE.clear()


# --------------------------------------------------------------------------- generated keys


def generate_key(key_size: int = DEFAULT_KEY_SIZE) -> rsa.RSAPrivateKey:
    """A new RSA key (default 3072 bits, see :data:`DEFAULT_KEY_SIZE`)."""
    if key_size not in (2048, 3072, 4096):
        raise ValueError("key_size must be 2048, 3072 or 4096")
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


# --------------------------------------------------------------------------- sealed keys

_SEAL_MAGIC = b"PPHSEAL"
_SEAL_VERSION = 1
_PREFIX = struct.Struct(">7sBH")  # magic, version, header length
_DIGEST_LEN = 32
_MIN_PIN_BYTES = 1


@dataclass(frozen=True)
class KdfParams:
    """argon2id parameters.  Default = RFC 9106 second recommended option (t=3, 64 MiB, 4 lanes):
    ~125 ms per PIN check on the 2-core test machine."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 4

    # bounds accepted when *opening* a blob (a forged header must not exhaust memory/CPU)
    MAX_TIME: ClassVar[int] = 16
    MAX_MEMORY_KIB: ClassVar[int] = 1024 * 1024
    MAX_PARALLELISM: ClassVar[int] = 16

    def check(self) -> None:
        if not (1 <= self.time_cost <= self.MAX_TIME):
            raise ValueError("argon2 time_cost out of range")
        if not (8 * self.parallelism <= self.memory_cost_kib <= self.MAX_MEMORY_KIB):
            raise ValueError("argon2 memory_cost out of range")
        if not (1 <= self.parallelism <= self.MAX_PARALLELISM):
            raise ValueError("argon2 parallelism out of range")

    def derive(self, pin: bytes, salt: bytes) -> bytes:
        from argon2.low_level import Type, hash_secret_raw

        return hash_secret_raw(
            secret=pin,
            salt=salt,
            time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib,
            parallelism=self.parallelism,
            hash_len=32,
            type=Type.ID,
        )


DEFAULT_KDF = KdfParams()


def _to_pkcs8_der(private_key: bytes | PrivateKeyTypes, password: bytes | None = None) -> bytes:
    if isinstance(private_key, bytes | bytearray | memoryview):
        data = bytes(private_key)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                key = serialization.load_pem_private_key(data, password=password)
            else:
                key = serialization.load_der_private_key(data, password=password)
        except (ValueError, TypeError) as e:
            raise ValueError(f"not a private key (PEM or DER): {e}") from e
    else:
        key = private_key
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal_private_key(
    private_key: bytes | PrivateKeyTypes, pin: str, *, kdf: KdfParams = DEFAULT_KDF
) -> bytes:
    """Encrypt a private key (PEM/DER bytes or a ``cryptography`` key) under the signer's PIN.

    Returns an opaque, versioned blob for the application to store.
    """
    pin_bytes = _normalise_pin(pin)
    if len(pin_bytes) < _MIN_PIN_BYTES:
        raise ValueError("empty PIN")
    kdf.check()
    plaintext = _to_pkcs8_der(private_key)
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = json.dumps(
        {
            "kdf": "argon2id",
            "t": kdf.time_cost,
            "m": kdf.memory_cost_kib,
            "p": kdf.parallelism,
            "salt": _b64(salt),
            "aead": "aes-256-gcm",
            "nonce": _b64(nonce),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    aad = _PREFIX.pack(_SEAL_MAGIC, _SEAL_VERSION, len(header)) + header
    body = aad + AESGCM(kdf.derive(pin_bytes, salt)).encrypt(nonce, plaintext, aad)
    return body + hashlib.sha256(body).digest()


@dataclass(frozen=True)
class _ParsedBlob:
    aad: bytes
    header: dict[str, Any]
    kdf: KdfParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes


def _parse_blob(blob: bytes) -> _ParsedBlob:
    blob = bytes(blob)
    if len(blob) < _PREFIX.size + _DIGEST_LEN + 16:
        raise KeyCorrupted("sealed key too short")
    body, digest = blob[:-_DIGEST_LEN], blob[-_DIGEST_LEN:]
    magic, version, hlen = _PREFIX.unpack_from(body)
    if magic != _SEAL_MAGIC:
        raise KeyCorrupted("not a sealed key")
    if version != _SEAL_VERSION:
        raise KeyCorrupted(f"unsupported sealed key version {version}")
    if not hmac.compare_digest(hashlib.sha256(body).digest(), digest):
        raise KeyCorrupted("sealed key checksum mismatch (damaged data)")
    header_end = _PREFIX.size + hlen
    try:
        header = json.loads(body[_PREFIX.size : header_end].decode("utf-8"))
        if header["kdf"] != "argon2id" or header["aead"] != "aes-256-gcm":
            raise ValueError(f"unsupported algorithms {header['kdf']}/{header['aead']}")
        kdf = KdfParams(
            time_cost=int(header["t"]), memory_cost_kib=int(header["m"]), parallelism=int(header["p"])
        )
        kdf.check()
        salt, nonce = base64.b64decode(header["salt"]), base64.b64decode(header["nonce"])
        if len(salt) < 16 or len(nonce) != 12:
            raise ValueError("bad salt/nonce length")
    except (ValueError, KeyError, TypeError) as e:
        raise KeyCorrupted(f"sealed key header invalid: {e}") from e
    return _ParsedBlob(
        aad=body[:header_end], header=header, kdf=kdf, salt=salt, nonce=nonce, ciphertext=body[header_end:]
    )


def _open_sealed_der(blob: bytes, pin: str) -> bytes:
    parsed = _parse_blob(blob)
    pin_bytes = _normalise_pin(pin)
    if not pin_bytes:
        raise WrongPin("empty PIN")
    key = parsed.kdf.derive(pin_bytes, parsed.salt)
    try:
        return AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, parsed.aad)
    except InvalidTag:
        raise WrongPin("sealed key: wrong PIN") from None


def sealed_key_header(blob: bytes) -> dict[str, Any]:
    """The public header of a sealed key (KDF parameters, version), e.g. to decide to re-seal."""
    parsed = _parse_blob(blob)
    return {
        "version": _SEAL_VERSION,
        **{k: v for k, v in parsed.header.items() if k not in ("salt", "nonce")},
    }


def open_sealed_key(blob: bytes, pin: str) -> PrivateKeyTypes:
    """Decrypt a sealed key.  :class:`WrongPin` on a bad PIN, :class:`KeyCorrupted` on damaged data."""
    key, _ = _KEY_CACHE.get(_open_sealed_der(blob, pin))
    return key


def change_pin(blob: bytes, old_pin: str, new_pin: str, *, kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """Re-seal a key under a new PIN (fresh salt and nonce)."""
    return seal_private_key(_open_sealed_der(blob, old_pin), new_pin, kdf=kdf)


def software_signer(
    sealed_blob: bytes,
    pin: str,
    cert: CertLike,
    chain: Iterable[CertLike] = (),
    *,
    check_validity: bool = True,
) -> CachedKeySigner:
    """Signer for a sealed software key.  The PIN is verified (by decryption) at every call."""
    return _make_cached_signer(_open_sealed_der(sealed_blob, pin), cert, chain, check_validity=check_validity)


# --------------------------------------------------------------------------- PKCS#12


class _PFX(core.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("version", core.Integer),
        ("auth_safe", cms.ContentInfo),
        ("mac_data", core.Any, {"optional": True}),
    ]


def _looks_like_pkcs12(data: bytes) -> bool:
    try:
        pfx = _PFX.load(data, strict=True)
        return pfx["version"].native == 3 and pfx["auth_safe"]["content_type"].native in (
            "data",
            "signed_data",
        )
    except (ValueError, TypeError, KeyError):
        return False


def _p12_load(data: bytes, passphrase: bytes | str | None) -> tuple[PrivateKeyTypes, Any, list[Any]]:
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    attempts = [pw or None] if pw else [None, b""]
    last: Exception | None = None
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            break
        except (ValueError, TypeError) as e:
            last = e
    else:
        if _looks_like_pkcs12(data):
            raise InvalidPkcs12("wrong_passphrase", f"PKCS#12 could not be decrypted: {last}") from None
        raise InvalidPkcs12("not_pkcs12", f"not PKCS#12 data: {last}") from None
    if key is None or cert is None:
        raise InvalidPkcs12("incomplete", "PKCS#12 without a private key or certificate")
    return key, cert, list(extra)


def import_pkcs12(
    data: bytes, passphrase: bytes | str | None
) -> tuple[PrivateKeyTypes, x509.Certificate, list[x509.Certificate]]:
    """Read a PKCS#12 (.p12/.pfx): ``(private_key, certificate, ca_chain)``.

    :class:`InvalidPkcs12` with ``reason`` ``wrong_passphrase`` / ``not_pkcs12`` / ``incomplete``
    / ``key_mismatch``.  Certificates are asn1crypto objects; the key a ``cryptography`` key.
    """
    key, pyca_cert, extra = _p12_load(bytes(data), passphrase)
    cert = x509.Certificate.load(pyca_cert.public_bytes(serialization.Encoding.DER))
    if not _key_matches_cert(key, cert):
        raise InvalidPkcs12("key_mismatch")
    chain = []
    for c in extra:
        der = c.public_bytes(serialization.Encoding.DER)
        if der != cert.dump():
            chain.append(x509.Certificate.load(der))
    return key, cert, chain


_P12_LOCK = threading.Lock()
_P12_CACHE: OrderedDict[tuple[bytes, bytes], tuple[bytes, x509.Certificate, list[x509.Certificate]]] = (
    OrderedDict()
)
_P12_CACHE_SIZE = 64
_PROCESS_SECRET = os.urandom(32)  # passphrases are never kept in clear, even as cache keys


def pkcs12_signer(
    data: bytes, passphrase: bytes | str | None, *, check_validity: bool = True
) -> CachedKeySigner:
    """Signer from a PKCS#12; each file is decoded once per process (cache keyed by
    SHA-256(data) and an HMAC of the passphrase, filled only on success)."""
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else (passphrase or b"")
    cache_key = (hashlib.sha256(data).digest(), hmac.new(_PROCESS_SECRET, pw, hashlib.sha256).digest())
    with _P12_LOCK:
        hit = _P12_CACHE.get(cache_key)
        if hit is not None:
            _P12_CACHE.move_to_end(cache_key)
    if hit is None:
        key, cert, chain = import_pkcs12(data, passphrase)
        hit = (_to_pkcs8_der(key), cert, chain)
        with _P12_LOCK:
            _P12_CACHE[cache_key] = hit
            while len(_P12_CACHE) > _P12_CACHE_SIZE:
                _P12_CACHE.popitem(last=False)
    pkcs8_der, cert, chain = hit
    return _make_cached_signer(pkcs8_der, cert, chain, check_validity=check_validity)


# --------------------------------------------------------------------------- PKCS#11 (qualified)

# PKCS#11 login state is per token *per process*: while one session is logged in, C_Login on
# another returns CKR_USER_ALREADY_LOGGED_IN without checking the PIN.  So we keep at most one
# live session per (module, token) in the process: a new pkcs11_signer() call closes the
# previous one (logging out) and logs in again, which verifies the PIN every time.
_P11_LOCK = threading.RLock()
_P11_LIVE: dict[tuple[str, str], TokenSigner] = {}


def _map_p11_error(e: Exception, context: str) -> SigningError:
    p11e = pkcs11.exceptions
    detail = f"{context}: {type(e).__name__} {e}".strip()
    if isinstance(e, p11e.PinIncorrect | p11e.PinInvalid | p11e.PinLenRange):
        return WrongPin(detail)
    if isinstance(e, p11e.PinLocked | p11e.PinExpired):
        return KeyLocked(detail)
    return TokenUnavailable(detail)


class TokenSigner(PKCS11Signer):
    """pyHanko ``PKCS11Signer`` owning its (logged-in) session.

    The session stays open for reuse until :meth:`close`, the next :func:`pkcs11_signer` call
    for the same token, or :func:`close_pkcs11_sessions`.  Usable as a context manager.
    Not for concurrent use from several threads of one process.
    """

    def __init__(self, session: Any, live_key: tuple[str, str], **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self._live_key = live_key
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with _P11_LOCK:
            if self._closed:
                return
            self._closed = True
            if _P11_LIVE.get(self._live_key) is self:
                del _P11_LIVE[self._live_key]
            try:
                self.pkcs11_session.close()
            except Exception:  # noqa: BLE001 - token may be gone already
                pass

    def __enter__(self) -> TokenSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return await super().async_sign_raw(data, digest_algorithm, dry_run=True)
        if self._closed:
            raise TokenUnavailable("PKCS#11 session closed (or superseded by a newer pkcs11_signer call)")
        try:
            return await super().async_sign_raw(data, digest_algorithm, dry_run=False)
        except pkcs11.PKCS11Error as e:
            raise _map_p11_error(e, "PKCS#11 signing failed") from e


def close_pkcs11_sessions() -> None:
    """Close (log out) every PKCS#11 session this module keeps open."""
    with _P11_LOCK:
        for signer in list(_P11_LIVE.values()):
            signer.close()
        _P11_LIVE.clear()


def pkcs11_signer(
    module_path: str,
    token_label: str,
    pin: str,
    key_label: str,
    cert_label: str | None = None,
    *,
    cert: CertLike | None = None,
    chain: Iterable[CertLike] = (),
    check_validity: bool = True,
) -> TokenSigner:
    """Signer for a key on a PKCS#11 token/HSM (qualified level).

    Logs in with ``pin`` (:class:`WrongPin`, :class:`KeyLocked`), finds the key by label and its
    certificate by ``cert_label`` (default: same label as the key) unless ``cert`` is given, then
    refuses a non-qualified certificate (:class:`~signing.errors.NotQualified`) or one outside its
    validity period before returning.  Absent module/token/key: :class:`TokenUnavailable`.
    ``chain``: CA certificates to embed (tokens rarely hold them).
    """
    signing_cert = _load_cert(cert) if cert is not None else None
    if signing_cert is not None:  # refuse early, before even asking the token
        require_qualified(signing_cert)
    live_key = (module_path, token_label)
    with _P11_LOCK:
        try:
            lib = pkcs11.lib(module_path)
            token = lib.get_token(token_label=token_label)
        except pkcs11.PKCS11Error as e:
            raise TokenUnavailable(
                f"PKCS#11 token {token_label!r} not available: {type(e).__name__} {e}"
            ) from e
        previous = _P11_LIVE.pop(live_key, None)
        if previous is not None:
            previous.close()
        try:
            session = token.open(user_pin=pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn as e:
            raise TokenUnavailable(
                "token already logged in by another session of this process: PIN cannot be verified"
            ) from e
        except pkcs11.PKCS11Error as e:
            raise _map_p11_error(e, "PKCS#11 login failed") from e
        signer = TokenSigner(
            session,
            live_key,
            key_label=key_label,
            cert_label=None if signing_cert is not None else (cert_label or key_label),
            signing_cert=signing_cert,
            ca_chain=_load_chain(chain),
        )
        try:
            try:
                signer._load_objects()  # key handle + certificate, synchronously
            except pkcs11.PKCS11Error as e:
                raise TokenUnavailable(
                    f"key or certificate not found on token: {type(e).__name__} {e}"
                ) from e
            token_cert = signer.signing_cert
            require_qualified(token_cert)
            if check_validity:
                check_signing_certificate(token_cert)
        except BaseException:
            signer.close()
            raise
        _P11_LIVE[live_key] = signer
        return signer


# --------------------------------------------------------------------------- CSC (qualified)


def _csc_error(e: BaseException, context: str) -> SigningError:
    return RemoteSigningFailed(f"{context}: {type(e).__name__} {e}".strip())


class _CSCAuthorizer(CSCAuthorizationManager):
    """``credentials/authorize`` with PIN/OTP, SAD always pinned to the hashes being signed."""

    def __init__(
        self, session_info: Any, credential_info: Any, pin: str | None, otp: str | None, timeout: int
    ):
        super().__init__(session_info, credential_info)
        self._pin, self._otp, self._timeout = pin, otp, timeout
        self.http: Any = None  # aiohttp session of the current commit

    async def authorize_signature(self, hash_b64s: list[str]) -> Any:
        req = self.format_csc_auth_request(
            num_signatures=len(hash_b64s), pin=self._pin, otp=self._otp, hash_b64s=hash_b64s
        )
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.http.post(
            url, headers=self.auth_headers, json=req, timeout=aiohttp.ClientTimeout(total=self._timeout)
        ) as resp:
            if resp.status >= 400:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {}
                err = (
                    f"{body.get('error', '')} {body.get('error_description', '')}".strip()
                    if isinstance(body, dict)
                    else ""
                )
                detail = f"credentials/authorize HTTP {resp.status} {err}".strip()
                if any(word in err.lower() for word in ("pin", "otp")):
                    raise WrongPin(detail)
                raise RemoteSigningFailed(detail)
            return self.parse_csc_auth_response(await resp.json())


class RemoteCSCSigner(CSCSigner):
    """pyHanko ``CSCSigner`` that opens its own aiohttp session inside each event loop.

    pyHanko's sync API runs each signature in a fresh ``asyncio.run``; an aiohttp session is
    bound to one loop, so it cannot be created once and kept.  Errors become
    :class:`RemoteSigningFailed` (or :class:`WrongPin` if the service says so).
    """

    def __init__(self, auth_manager: _CSCAuthorizer, **kwargs: Any) -> None:
        super().__init__(session=None, auth_manager=auth_manager, **kwargs)
        self._last_error: BaseException | None = None

    async def _do_commit(self, batch: Any) -> None:
        async with aiohttp.ClientSession() as http:
            self.session = http
            self.auth_manager.http = http
            try:
                await super()._do_commit(batch)
            except BaseException as e:
                self._last_error = e
                raise
            finally:
                self.session = None
                self.auth_manager.http = None

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return await super().async_sign_raw(data, digest_algorithm, dry_run=True)
        self._last_error = None
        try:
            return await super().async_sign_raw(data, digest_algorithm, dry_run=False)
        except SigningError:
            raise
        except Exception as e:  # pyHanko SigningError, aiohttp errors
            cause = self._last_error
            if isinstance(cause, SigningError):
                raise cause from e
            raise _csc_error(cause or e, "CSC signHash failed") from (cause or e)


def csc_signer(
    service_url: str,
    credential_id: str,
    *,
    oauth_token: str | None = None,
    pin: str | None = None,
    otp: str | None = None,
    timeout: int = 30,
    check_validity: bool = True,
) -> RemoteCSCSigner:
    """Signer for a remote QSCD over the CSC API v1 (``service_url`` = base URL before ``/csc/v1``).

    Fetches the credential's certificates (``credentials/info``), refuses a non-qualified
    certificate (:class:`~signing.errors.NotQualified`) before any signing, and authorises each
    signature with ``credentials/authorize`` (PIN/OTP, SAD pinned to the hashes).
    ``oauth_token`` is sent as ``Authorization: Bearer``.
    """
    session_info = CSCServiceSessionInfo(
        service_url=service_url.rstrip("/"), credential_id=credential_id, oauth_token=oauth_token
    )

    async def fetch() -> Any:
        async with aiohttp.ClientSession() as http:
            return await fetch_certs_in_csc_credential(http, session_info, timeout=timeout)

    try:
        info = _run_sync(fetch)
    except Exception as e:  # pyHanko SigningError wrapping aiohttp errors, timeouts
        raise _csc_error(e.__cause__ or e, f"CSC credentials/info failed for {credential_id!r}") from e
    require_qualified(info.signing_cert)
    if check_validity:
        check_signing_certificate(info.signing_cert)
    auth = _CSCAuthorizer(session_info, info, pin, otp, timeout)
    return RemoteCSCSigner(auth_manager=auth, sign_timeout=timeout)
