"""Test PKI fixtures: certomancer services on loopback, a SoftHSM2 token and a CSC dummy.

Registered as a pytest plugin by ``tests/conftest.py``.  See ``tests/pki/README.md``.

Everything is session-scoped and built lazily: a test that does not ask for a fixture
does not pay for it.  The private keys under ``tests/pki/keys`` are committed test
material, never to be trusted anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertLabel, CertomancerConfig, PKIArchitecture, ServiceLabel
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

PKI_DIR = Path(__file__).resolve().parent
CONFIG_PATH = PKI_DIR / "certomancer.yml"
KEYS_DIR = PKI_DIR / "keys"
ARCH_LABEL = "parapheur"

#: End-entity signers defined in certomancer.yml.
SIGNER_LABELS = ("alice", "bob", "qualified", "not-qualified", "revoked", "expired")
#: Signers whose key is put on the SoftHSM2 token and exposed by the CSC dummy.
TOKEN_LABELS = ("qualified", "not-qualified")

SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def _require_services() -> bool:
    return os.environ.get("PARAPHEUR_REQUIRE_SERVICES", "") == "1"


def _unavailable(message: str) -> None:
    """Skip the test (or fail if PARAPHEUR_REQUIRE_SERVICES=1)."""
    if _require_services():
        pytest.fail(f"{message} (PARAPHEUR_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def load_arch(url_prefix: str) -> PKIArchitecture:
    """Load the test PKI architecture with its service URLs rooted at ``url_prefix``."""
    cfg = CertomancerConfig.from_file(str(CONFIG_PATH), external_url_prefix=url_prefix)
    return cfg.get_pki_arch(ARCH_LABEL)


# --------------------------------------------------------------------------- certomancer


@dataclass(frozen=True)
class TestPKI:
    """The running test PKI (certomancer services served on loopback)."""

    __test__ = False  # not a test class, despite its name

    arch: PKIArchitecture
    base_url: str
    tsa_url: str
    ocsp_url: str
    crl_urls: Mapping[str, str]
    root_cert: x509.Certificate
    intermediate_cert: x509.Certificate
    tsa_cert: x509.Certificate
    trust_roots: list[x509.Certificate]
    _parsed: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    # Objects are re-parsed from their DER: certomancer builds them in memory, and asn1crypto
    # re-encodes such objects at every dump() (tens of ms per signature in pyHanko).

    def cert(self, label: str) -> x509.Certificate:
        key = ("cert", label)
        if key not in self._parsed:
            self._parsed[key] = x509.Certificate.load(self.arch.get_cert(CertLabel(label)).dump())
        return self._parsed[key]

    def chain(self, label: str) -> list[x509.Certificate]:
        """CA certificates above ``label`` (intermediate first, root last)."""
        return [self.cert(lbl.value) for lbl in self.arch.get_chain(CertLabel(label))]

    def private_key(self, label: str) -> asn1_keys.PrivateKeyInfo:
        key = ("key", label)
        if key not in self._parsed:
            spec = self.arch.get_cert_spec(CertLabel(label))
            der = self.arch.key_set.get_private_key(spec.subject_key).dump()
            self._parsed[key] = asn1_keys.PrivateKeyInfo.load(der)
        return self._parsed[key]

    def key_pem(self, label: str) -> bytes:
        """Unencrypted PKCS#8 PEM of the subject key of certificate ``label``."""
        return pem.armor("PRIVATE KEY", self.private_key(label).dump())

    def key_der(self, label: str) -> bytes:
        return self.private_key(label).dump()

    def pkcs12(self, label: str, passphrase: bytes | str | None) -> bytes:
        """PKCS#12 with key, certificate and CA chain."""
        if isinstance(passphrase, str):
            passphrase = passphrase.encode()
        return self.arch.package_pkcs12(CertLabel(label), password=passphrase or None)

    def software_signer(self, label: str) -> SimpleSigner:
        """A plain pyHanko SimpleSigner (key in memory) for ``label``."""
        return SimpleSigner(
            signing_cert=self.cert(label),
            signing_key=self.private_key(label),
            cert_registry=SimpleCertificateStore.from_certs(self.chain(label)),
        )

    def timestamper(self) -> HTTPTimeStamper:
        return HTTPTimeStamper(self.tsa_url)

    def validation_context(self, allow_fetching: bool = True, **kwargs: Any) -> ValidationContext:
        """A ValidationContext trusting only the test root (extra kwargs passed through)."""
        kwargs.setdefault("other_certs", [self.intermediate_cert])
        return ValidationContext(trust_roots=list(self.trust_roots), allow_fetching=allow_fetching, **kwargs)


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug signature
        pass


class _LateBoundApp:
    """WSGI app whose target is set once the listening port is known."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)


@dataclass
class _ServedPKI:
    pki: TestPKI
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_test_pki(host: str = "127.0.0.1", port: int = 0) -> _ServedPKI:
    """Start certomancer's Animator (werkzeug, background thread); call ``.stop()`` when done."""
    app = _LateBoundApp()
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    base_url = f"http://{host}:{server.server_port}"
    arch = load_arch(base_url)
    # at_time=None: OCSP, CRL and TSA responses are produced at the current time.
    app.target = Animator(AnimatorArchStore({arch.arch_label: arch}), at_time=None, with_web_ui=False)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="certomancer-animator", daemon=True
    )
    thread.start()

    svc = arch.service_registry

    def reparsed(label: str) -> x509.Certificate:
        return x509.Certificate.load(arch.get_cert(CertLabel(label)).dump())

    root, interm, tsa = reparsed("root"), reparsed("interm"), reparsed("tsa")
    pki = TestPKI(
        arch=arch,
        base_url=base_url,
        tsa_url=svc.get_tsa_info(ServiceLabel("tsa")).url,
        ocsp_url=svc.get_ocsp_info(ServiceLabel("interm")).url,
        crl_urls={
            lbl: svc.get_crl_repo_info(ServiceLabel(lbl)).latest_external_url for lbl in ("root", "interm")
        },
        root_cert=root,
        intermediate_cert=interm,
        tsa_cert=tsa,
        trust_roots=[root],
        _parsed={("cert", "root"): root, ("cert", "interm"): interm, ("cert", "tsa"): tsa},
    )
    return _ServedPKI(pki=pki, server=server, thread=thread)


@pytest.fixture(scope="session")
def test_pki() -> Iterator[TestPKI]:
    served = serve_test_pki()
    try:
        yield served.pki
    finally:
        served.stop()


# --------------------------------------------------------------------------- SoftHSM2


@dataclass(frozen=True)
class SoftHSMToken:
    module_path: str
    token_label: str
    user_pin: str
    so_pin: str
    #: signer label -> PKCS#11 CKA_LABEL of the private key / certificate
    key_labels: Mapping[str, str]
    cert_labels: Mapping[str, str]
    #: signer label -> CKA_ID shared by the key pair and the certificate
    key_ids: Mapping[str, bytes]
    config_path: str


def _find_softhsm_module() -> str | None:
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")


@pytest.fixture(scope="session")
def softhsm_token(test_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHSMToken]:
    util = shutil.which("softhsm2-util")
    module = _find_softhsm_module()
    if util is None or module is None:
        _unavailable("SoftHSM2 is not installed (softhsm2-util / libsofthsm2.so): apt-get install softhsm2")

    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)

    token = SoftHSMToken(
        module_path=module,
        token_label="parapheur-test",
        user_pin="1234",
        so_pin="5678",
        key_labels={lbl: lbl for lbl in TOKEN_LABELS},
        cert_labels={lbl: lbl for lbl in TOKEN_LABELS},
        key_ids={lbl: bytes([i + 1]) for i, lbl in enumerate(TOKEN_LABELS)},
        config_path=str(conf),
    )
    try:
        _run([util, "--init-token", "--free", "--label", token.token_label,
              "--pin", token.user_pin, "--so-pin", token.so_pin])  # fmt: skip
        for lbl in TOKEN_LABELS:
            key_file = base / f"{lbl}.key.pem"
            key_file.write_bytes(test_pki.key_pem(lbl))
            _run([util, "--import", str(key_file), "--token", token.token_label, "--label",
                  token.key_labels[lbl], "--id", token.key_ids[lbl].hex(), "--pin", token.user_pin])  # fmt: skip
            key_file.unlink()

        # softhsm2-util cannot import certificates: create the CKO_CERTIFICATE objects ourselves.
        # SoftHSM reads SOFTHSM2_CONF in C_Initialize: (re)initialise in case it was loaded before.
        lib = pkcs11.lib(module)
        lib.reinitialize()
        p11_token = lib.get_token(token_label=token.token_label)
        with p11_token.open(rw=True, user_pin=token.user_pin) as session:
            for lbl in TOKEN_LABELS:
                cert = test_pki.cert(lbl)
                session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.CERTIFICATE,
                        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                        Attribute.LABEL: token.cert_labels[lbl],
                        Attribute.ID: token.key_ids[lbl],
                        Attribute.SUBJECT: cert.subject.dump(),
                        Attribute.ISSUER: cert.issuer.dump(),
                        Attribute.SERIAL_NUMBER: cert["tbs_certificate"]["serial_number"].dump(),
                        Attribute.VALUE: cert.dump(),
                    }
                )
        yield token
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


# --------------------------------------------------------------------------- CSC dummy


@dataclass(frozen=True)
class CSCService:
    """certomancer-csc-dummy on loopback (CSC API v1, SCAL 2 = hashes pinned in the SAD).

    The dummy does not authenticate anything: ``oauth_token`` and ``pin`` are accepted
    and ignored; pass them anyway so the production code path is exercised.
    """

    url: str
    #: signer label -> CSC credential ID ("<arch>/<cert label>")
    credential_ids: Mapping[str, str]
    qualified_credential_id: str
    not_qualified_credential_id: str
    oauth_token: str | None
    pin: str | None
    log_path: str


def _wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"CSC dummy exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"CSC dummy did not answer on {url}: {last}")


@pytest.fixture(scope="session")
def csc_service(test_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CSCService]:
    try:
        import csc_dummy  # noqa: F401
    except ImportError:
        _unavailable("certomancer-csc-dummy is not installed")

    log_path = tmp_path_factory.mktemp("csc") / "csc-dummy.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(PKI_DIR / "csc_launcher.py"), str(CONFIG_PATH), test_pki.base_url],
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"CSC dummy failed to start, see {log_path}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        _wait_http_ok(f"{url}/info", proc)
        cred_ids = {lbl: f"{ARCH_LABEL}/{lbl}" for lbl in SIGNER_LABELS}
        yield CSCService(
            url=url,
            credential_ids=cred_ids,
            qualified_credential_id=cred_ids["qualified"],
            not_qualified_credential_id=cred_ids["not-qualified"],
            oauth_token="dummy-token",
            pin="1234",
            log_path=str(log_path),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
