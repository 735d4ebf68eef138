"""The instance PKI of the embedded default: a root CA, the organisation's seal and a TSA.

``parapheur init`` creates it once (:func:`create_instance_pki` then :meth:`InstancePKI.save`);
each process loads it once (:func:`load_instance_pki`, cached) and reuses the parsed keys, the
seal signer and the in-process timestamper: pyHanko would otherwise re-parse a software key
at every signature.

Keys are ECDSA P-256 (RGS/ANSSI-compliant, fast, small signatures). The CA also issues
personal certificates for advanced-level signers and a CRL, so revocation data can be
embedded (B-LT) without any network.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import algos, cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign import general
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash as _pyca_hash

from signing.keys import CachedKeySigner

__all__ = [
    "InProcessTimeStamper",
    "InstancePKI",
    "create_instance_pki",
    "issue_personal_certificate",
    "load_instance_pki",
]

ROOT_VALIDITY = dt.timedelta(days=20 * 365)
SEAL_VALIDITY = dt.timedelta(days=5 * 365)
TSA_VALIDITY = dt.timedelta(days=10 * 365)
PERSONAL_VALIDITY = dt.timedelta(days=3 * 365)
CRL_VALIDITY = dt.timedelta(days=7)
CRL_REFRESH_AFTER = dt.timedelta(days=1)
BACKDATE = dt.timedelta(minutes=5)
"""Certificates start a little in the past so that a clock skew does not make them 'not yet valid'."""

_FILES = {
    "root_cert": "root.pem",
    "root_key": "root.key",
    "seal_cert": "seal.pem",
    "seal_key": "seal.key",
    "tsa_cert": "tsa.pem",
    "tsa_key": "tsa.key",
    "crl": "crl.pem",
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _cached_signer(cert: x509.Certificate, key: PrivateKey, chain: list[x509.Certificate]) -> CachedKeySigner:
    """A pyHanko signer holding the parsed key (see :class:`signing.keys.CachedKeySigner`)."""
    return CachedKeySigner(
        signing_cert=_to_asn1_cert(cert),
        private_key=key,
        key_info=_to_asn1_key(key),
        cert_registry=SimpleCertificateStore.from_certs([_to_asn1_cert(c) for c in chain]),
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _to_asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _to_asn1_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return asn1_keys.PrivateKeyInfo.load(der)


def _name(org_name: str, common_name: str, email: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if email:
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attributes)


def _end_entity_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def _issue(
    *,
    subject: x509.Name,
    public_key,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    validity: dt.timedelta,
    extensions: list[tuple[x509.ExtensionType, bool]],
    crl_url: str | None = None,
) -> x509.Certificate:
    now = _utcnow()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    authority_key = (issuer_cert.public_key() if issuer_cert is not None else public_key)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key), critical=False
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    if crl_url and issuer_cert is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key))


class InProcessTimeStamper(DummyTimeStamper):
    """An RFC 3161 TSA answering in-process, with the instance's TSA key (parsed once).

    pyHanko's ``DummyTimeStamper`` re-parses its key at each token and only handles RSA;
    this one keeps the key and also signs with ECDSA.
    """

    def __init__(self, tsa_cert: x509.Certificate, tsa_key: PrivateKey,
                 chain: list[x509.Certificate] = ()):
        super().__init__(
            tsa_cert=_to_asn1_cert(tsa_cert),
            tsa_key=_to_asn1_key(tsa_key),
            certs_to_embed=SimpleCertificateStore.from_certs([_to_asn1_cert(c) for c in chain]),
        )
        self._private_key = tsa_key

    def _sign_tst_info(self, tst_info_data, md_algorithm, dt_):
        key = self._private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return super()._sign_tst_info(tst_info_data, md_algorithm, dt_)
        # Build the same signed attributes as the parent, then sign them with our key.
        digest = hashes.Hash(_pyca_hash(md_algorithm))
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            general.simple_cms_attribute("content_type", "tst_info"),
            general.simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt_)})),
            general.simple_cms_attribute("signing_certificate",
                                         general.as_signing_certificate(self.tsa_cert)),
            general.simple_cms_attribute("message_digest", digest.finalize()),
        ])
        signature = key.sign(signed_attrs.dump(), ec.ECDSA(_pyca_hash(md_algorithm)))
        return signature, signed_attrs

    def _build_signed_data(self, tst_info_data, md_algorithm, signature, signed_attrs):
        signed_data = super()._build_signed_data(tst_info_data, md_algorithm, signature, signed_attrs)
        if isinstance(self._private_key, ec.EllipticCurvePrivateKey):
            signer_info = signed_data["signer_infos"][0]
            signer_info["signature_algorithm"] = algos.SignedDigestAlgorithm(
                {"algorithm": f"{md_algorithm}_ecdsa"}
            )
        return signed_data


@dataclass
class InstancePKI:
    """The instance's own CA, seal and TSA (certificates and keys), plus its current CRL."""

    org_name: str
    root_cert: x509.Certificate
    root_key: PrivateKey
    seal_cert: x509.Certificate
    seal_key: PrivateKey
    tsa_cert: x509.Certificate
    tsa_key: PrivateKey
    crl: x509.CertificateRevocationList
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _seal_signer: CachedKeySigner | None = field(default=None, init=False, repr=False, compare=False)
    _timestamper: InProcessTimeStamper | None = field(default=None, init=False, repr=False,
                                                      compare=False)

    # -- pyHanko objects, built once and reused ---------------------------------------------

    def seal_signer(self) -> CachedKeySigner:
        """The organisation's seal as a pyHanko signer (one object per PKI, reused)."""
        with self._lock:
            if self._seal_signer is None:
                self._seal_signer = _cached_signer(self.seal_cert, self.seal_key, [self.root_cert])
            return self._seal_signer

    def personal_signer(self, cert: x509.Certificate, private_key: PrivateKey) -> CachedKeySigner:
        """A signer for a personal certificate issued by this CA (the caller caches it)."""
        return _cached_signer(cert, private_key, [self.root_cert])

    def timestamper(self) -> InProcessTimeStamper:
        """The in-process TSA (one object per PKI, reused: it caches its size estimate)."""
        with self._lock:
            if self._timestamper is None:
                self._timestamper = InProcessTimeStamper(self.tsa_cert, self.tsa_key, [self.root_cert])
            return self._timestamper

    # -- trust ------------------------------------------------------------------------------

    @property
    def trust_roots(self) -> list[asn1_x509.Certificate]:
        """The instance root, as pyHanko wants it."""
        return [_to_asn1_cert(self.root_cert)]

    @property
    def crl_url(self) -> str | None:
        """Where the CRL is published, as named in the certificates (``None``: not published)."""
        try:
            points = self.seal_cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            return None
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier):
                    return name.value
        return None

    @property
    def crl_der(self) -> bytes:
        """The current CRL (DER), re-issued when it is more than a day old."""
        self._refresh_crl_if_stale()
        return self.crl.public_bytes(serialization.Encoding.DER)

    def validation_context(self, **kwargs) -> ValidationContext:
        """A fresh validation context trusting the instance root, with the current CRL.

        No fetching, and revocation data *required* for every certificate: the instance
        certificates may name no CRL distribution point, and certvalidator only consults a
        CRL it holds when the certificate names one or the policy requires it.
        """
        kwargs.setdefault("allow_fetching", False)
        kwargs.setdefault("revocation_mode", "require")
        return ValidationContext(
            trust_roots=self.trust_roots,
            crls=[self.crl_der],
            other_certs=[_to_asn1_cert(self.seal_cert), _to_asn1_cert(self.tsa_cert)],
            **kwargs,
        )

    def trust_config(self, **kwargs):
        """A :class:`signing.validation.TrustConfig` for files signed by this instance."""
        from signing.validation import TrustConfig

        kwargs.setdefault("revocation_mode", "require")
        return TrustConfig(trust_roots=(self.root_cert,), crls=(self.crl_der,), **kwargs)

    def revoke(self, cert: x509.Certificate, when: dt.datetime | None = None) -> None:
        """Add a certificate issued by this CA to the CRL (save() to persist it)."""
        revoked = {entry.serial_number: entry.revocation_date_utc for entry in self.crl}
        revoked.setdefault(cert.serial_number, when or _utcnow())
        self.crl = _issue_crl(self.root_cert, self.root_key, revoked)

    def _refresh_crl_if_stale(self) -> None:
        if _utcnow() - self.crl.last_update_utc > CRL_REFRESH_AFTER:
            revoked = {entry.serial_number: entry.revocation_date_utc for entry in self.crl}
            self.crl = _issue_crl(self.root_cert, self.root_key, revoked)

    # -- persistence ------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike, passphrase: bytes | None = None) -> None:
        """Write the certificates, keys (mode 0600, encrypted when a passphrase is given) and CRL."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        pem = serialization.Encoding.PEM
        for name in ("root", "seal", "tsa"):
            cert: x509.Certificate = getattr(self, f"{name}_cert")
            _write(path / _FILES[f"{name}_cert"], cert.public_bytes(pem), 0o644)
            key: PrivateKey = getattr(self, f"{name}_key")
            key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, encryption)
            _write(path / _FILES[f"{name}_key"], key_pem, 0o600)
        _write(path / _FILES["crl"], self.crl.public_bytes(pem), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file atomically, created with its final mode (a key is never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _issue_crl(root_cert: x509.Certificate, root_key: PrivateKey,
               revoked: dict[int, dt.datetime]) -> x509.CertificateRevocationList:
    now = _utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_cert.public_key()),
                       critical=False)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(root_key, _hash_for(root_key))


def create_instance_pki(org_name: str, *, crl_url: str | None = None) -> InstancePKI:
    """Generate the instance CA, the organisation seal (``CN=Cachet <org>``) and the TSA.

    ``crl_url``: where the application publishes :attr:`InstancePKI.crl_der`; named in every
    certificate issued (so other validators can check revocation). Without it the
    certificates name no distribution point and revocation is only checked by validators
    given the CRL (B-LT signatures carry it).
    """
    root_key, seal_key, tsa_key = _new_key(), _new_key(), _new_key()
    root_cert = _issue(
        subject=_name(org_name, f"AC racine {org_name}"),
        public_key=root_key.public_key(), issuer_cert=None, issuer_key=root_key,
        validity=ROOT_VALIDITY,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                           data_encipherment=False, key_agreement=False, key_cert_sign=True,
                           crl_sign=True, encipher_only=False, decipher_only=False), True),
        ],
    )
    end_entity = [(x509.BasicConstraints(ca=False, path_length=None), True),
                  (_end_entity_key_usage(), True)]
    seal_cert = _issue(
        subject=_name(org_name, f"Cachet {org_name}"),
        public_key=seal_key.public_key(), issuer_cert=root_cert, issuer_key=root_key,
        validity=SEAL_VALIDITY, extensions=end_entity, crl_url=crl_url,
    )
    tsa_cert = _issue(
        subject=_name(org_name, f"Horodatage {org_name}"),
        public_key=tsa_key.public_key(), issuer_cert=root_cert, issuer_key=root_key,
        validity=TSA_VALIDITY,
        extensions=end_entity + [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True)],
        crl_url=crl_url,
    )
    return InstancePKI(
        org_name=org_name,
        root_cert=root_cert, root_key=root_key,
        seal_cert=seal_cert, seal_key=seal_key,
        tsa_cert=tsa_cert, tsa_key=tsa_key,
        crl=_issue_crl(root_cert, root_key, {}),
    )


def issue_personal_certificate(pki: InstancePKI, common_name: str, email: str, public_key,
                               *, validity: dt.timedelta = PERSONAL_VALIDITY) -> x509.Certificate:
    """Issue an advanced-level signer's certificate (digitalSignature + nonRepudiation)."""
    return _issue(
        subject=_name(pki.org_name, common_name, email),
        public_key=public_key, issuer_cert=pki.root_cert, issuer_key=pki.root_key,
        validity=validity,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_end_entity_key_usage(), True),
            (x509.SubjectAlternativeName([x509.RFC822Name(email)]), False),
        ],
        crl_url=pki.crl_url,
    )


_cache: dict[Path, tuple[tuple[int, ...], InstancePKI]] = {}
_cache_lock = threading.Lock()


def load_instance_pki(directory: str | os.PathLike, passphrase: bytes | None = None) -> InstancePKI:
    """Load the instance PKI saved by :meth:`InstancePKI.save`.

    The result is cached per directory for the life of the process (keys are parsed once);
    it is reloaded only when one of the files changes.
    """
    path = Path(directory).resolve()
    files = {attr: path / name for attr, name in _FILES.items()}
    stamp = tuple(files[attr].stat().st_mtime_ns for attr in _FILES)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    certs = {n: x509.load_pem_x509_certificate(files[f"{n}_cert"].read_bytes())
             for n in ("root", "seal", "tsa")}
    keys = {n: serialization.load_pem_private_key(files[f"{n}_key"].read_bytes(), passphrase)
            for n in ("root", "seal", "tsa")}
    crl = x509.load_pem_x509_crl(files["crl"].read_bytes())
    org = certs["seal"].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    pki = InstancePKI(
        org_name=str(org),
        root_cert=certs["root"], root_key=keys["root"],
        seal_cert=certs["seal"], seal_key=keys["seal"],
        tsa_cert=certs["tsa"], tsa_key=keys["tsa"],
        crl=crl,
    )
    with _cache_lock:
        _cache[path] = (stamp, pki)
    return pki
