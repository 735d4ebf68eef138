"""Signing speed: our simple-level sign step against pyHanko's default path and the raw floor.

On the same PDFs (10 pages ≈ 50 KB; 20 MB) and the same RSA key, in one run, the median time of:

  (a) pyHanko's default path: ``SimpleSigner.load`` from the key and certificate files (once), then
      ``PdfSigner(meta, signer, stamp_style).sign_pdf(...)`` per signature: same field, same PAdES
      metadata (certification, DocMDP form filling), same stamp as ours, nothing else;
  (b) our simple-level sign step through the service layer: ``dossiers.perform(..., "sign")`` on a fresh
      launched dossier each time (SQLite instance whose seal is that key): reads the revision from the blob
      store, signs, stores the new revision (fsync), moves the circuit, writes the audit events;
  (c) the floor: sha256 of the file plus one RSA signature with the (already parsed) key;
  and, to explain (b): (b0) ``signing.signer.sign`` alone, called in the main thread as the service does
  (and, in the JSON, from another thread).

Prints b/a (target ≤ 0.3) and b/c. Setup (creating and launching each dossier) is not timed.

    .venv/bin/python -m bench.sign [--quick] [--json] [--bits 2048]
"""

from __future__ import annotations

import gc
import hashlib
import sys
import time
from io import BytesIO
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pdfs
from bench.common import ORG, Report, instance_config, log, median, ms, parser, rsa_instance_keys, workdir


class ServicePath:
    """(b): a temporary instance; ``prepare()`` makes a launched dossier, ``sign()`` is the timed act."""

    def __init__(self, directory: Path, bits: int):
        from parapheur import create_app
        from parapheur.services import instance

        rsa_instance_keys(directory / "keys", "Ville de Banc-d'Essai", bits)
        self.app = create_app(instance_config(directory))
        self.ctx = self.app.app_context()
        self.ctx.push()
        instance.initialise(self.app)
        instance.setup(ORG)

    def close(self) -> None:
        from parapheur.extensions import db

        db.session.close()
        self.ctx.pop()
        db.dispose(self.app)

    def _user(self, username: str):
        from sqlalchemy import select

        from parapheur.extensions import db
        from parapheur.models import User

        return db.session.scalar(select(User).where(User.username == username))

    def prepare(self, pdf: bytes, number: int):
        """Create and launch a dossier holding ``pdf`` (fields prepared); return it, committed."""
        from parapheur import audit
        from parapheur.extensions import db
        from parapheur.models import utcnow
        from parapheur.services import dossiers
        from parapheur.storage import store

        digest = store().put(pdf)
        upload = dossiers.Upload("acte.pdf", digest, len(pdf))
        initiator = self._user("rh.dupont")
        dossier = dossiers.create(db.session, initiator, f"Attestation n° {number}", "attestation", [upload], [],
                                  audit.Meta("rh.dupont"), utcnow())
        db.session.flush()
        dossiers.perform(db.session, self.app, dossier, initiator, "launch", audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        return dossier.id

    def prepared_bytes(self, dossier_id: int) -> bytes:
        """The launched revision (fields prepared): the input every path signs."""
        from parapheur.extensions import db
        from parapheur.models import Dossier
        from parapheur.storage import store

        dossier = db.session.get(Dossier, dossier_id)
        return store().get(dossier.documents[0].current.sha256)

    def sign(self, dossier_id: int) -> tuple[float, float, str]:
        """Time ``perform(..., "sign")`` (and the commit after it, reported apart); return the new sha256."""
        from parapheur import audit
        from parapheur.extensions import db
        from parapheur.models import Dossier, utcnow
        from parapheur.services import dossiers

        dossier = db.session.get(Dossier, dossier_id)
        signer = self._user("dgs.martin")
        meta = audit.Meta("dgs.martin", None, "127.0.0.1", "bench")
        gc.collect()
        start = time.perf_counter()
        result = dossiers.perform(db.session, self.app, dossier, signer, "sign", meta, utcnow())
        performed = time.perf_counter()
        db.session.commit()
        committed = time.perf_counter()
        assert result.dossier.status == "completed", result.dossier.status
        sha = dossier.documents[0].current.sha256
        db.session.expunge_all()  # the next dossier is read from the database, as a request would
        return performed - start, committed - performed, sha

    @property
    def keys_dir(self) -> Path:
        return Path(self.app.config["KEYS_DIR"])


class PyHankoDefault:
    """(a): pyHanko's documented path, with the same field, metadata and stamp as ours."""

    def __init__(self, keys_dir: Path):
        from pyhanko.sign import signers

        self.signer = signers.SimpleSigner.load(str(keys_dir / "seal.key"), str(keys_dir / "seal.pem"),
                                                ca_chain_files=(str(keys_dir / "root.pem"),))

    def sign(self, pdf: bytes, stamp) -> tuple[float, bytes]:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
        from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

        from signing.stamp import stamp_style

        gc.collect()
        start = time.perf_counter()
        meta = PdfSignatureMetadata(field_name="Signature-1", md_algorithm="sha256",
                                    subfilter=SigSeedSubFilter.PADES, certify=True,
                                    docmdp_permissions=MDPPerm.FILL_FORMS, reason="Signature — Attestation",
                                    location="Ville de Banc-d'Essai", name=stamp.signer_name)
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        out = PdfSigner(meta, signer=self.signer, stamp_style=stamp_style()).sign_pdf(
            writer, existing_fields_only=True, appearance_text_params=stamp.params())
        elapsed = time.perf_counter() - start
        return elapsed, out.getvalue()


class SignerOnly:
    """(b0), for the breakdown: :func:`signing.signer.sign` alone, as the service calls it (no blob store,
    no database), with the instance's cached seal signer."""

    def __init__(self, service: ServicePath):
        from parapheur.services.credentials import instance_pki

        with service.app.app_context():
            self.signer = instance_pki(service.app).seal_signer()

    def sign(self, pdf: bytes, stamp, in_thread: bool = False) -> float:
        """Seconds for one signature; ``in_thread``: called from another thread (as in gunicorn's gthread
        workers), where ``asyncio.run`` installs no SIGINT handler."""
        import threading

        from signing.signer import sign

        def work():
            sign(pdf, signer=self.signer, level="simple", field_name="Signature-1", stamp=stamp, certify=True,
                 reason="Signature — Attestation", location="Ville de Banc-d'Essai")

        gc.collect()
        start = time.perf_counter()
        if in_thread:
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
        else:
            work()
        return time.perf_counter() - start


def asyncio_result_cost(size: int) -> float:
    """Seconds ``asyncio.run`` takes, in the main thread, for a coroutine that returns ``size`` bytes.

    Python 3.11's ``asyncio.Runner`` puts its SIGINT handler (a partial holding the task) back with
    ``signal.signal``, whose enum conversion formats ``repr(task)`` — and so ``repr(result)`` — when the
    handler is not a ``Handlers`` member: the cost grows with the size of the returned bytes.
    """
    import asyncio

    data = bytes(size)

    async def result():
        return data

    gc.collect()
    start = time.perf_counter()
    asyncio.run(result())
    return time.perf_counter() - start


class Floor:
    """(c): sha256 of the file + one RSA PKCS#1 v1.5 signature, key already parsed."""

    def __init__(self, keys_dir: Path):
        from cryptography.hazmat.primitives import serialization

        self.key = serialization.load_pem_private_key((keys_dir / "seal.key").read_bytes(), None)
        # a CMS SignerInfo signs its signed attributes (~100 bytes), not the document itself
        self.attributes = bytes(range(100))

    def sign(self, pdf: bytes) -> float:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        gc.collect()
        start = time.perf_counter()
        hashlib.sha256(pdf).digest()
        self.key.sign(self.attributes, padding.PKCS1v15(), hashes.SHA256())
        return time.perf_counter() - start


def _check_valid(pdf: bytes, keys_dir: Path) -> bool:
    """Validate one output of each path (not timed): a fast wrong answer would be no answer."""
    from signing.pki import load_instance_pki
    from signing.validation import validate

    report = validate(pdf, load_instance_pki(keys_dir).trust_config())
    return bool(report.valid)


def run(sizes: list[tuple[str, bytes, int]], bits: int, keep: bool) -> Report:
    from zoneinfo import ZoneInfo

    from parapheur.models import utcnow
    from signing.stamp import StampText

    report = Report("sign", f"Signing: our simple-level step vs pyHanko's default sign_pdf (RSA-{bits}, PAdES B-B)",
                    ["document", "size", "n", "(a) pyHanko ms", "(b) ours ms", "(b0) signer only ms",
                     "(c) floor ms", "b/a", "b/c"])
    with workdir("sign", keep) as directory:
        service = ServicePath(directory, bits)
        try:
            default, floor = PyHankoDefault(service.keys_dir), Floor(service.keys_dir)
            signer_only = SignerOnly(service)
            for label, pdf, iterations in sizes:
                warmup = 2
                log(f"{label}: {iterations} iterations (+{warmup} warm-up) of a, b, c")
                a_times, b_times, commit_times, c_times, b0_times, b0_thread = [], [], [], [], [], []
                a_out = b_sha = None
                for i in range(iterations + warmup):
                    dossier_id = service.prepare(pdf, i)  # not timed
                    prepared = service.prepared_bytes(dossier_id)
                    stamp = StampText("Paul Martin", "étape 1", utcnow().astimezone(ZoneInfo("Europe/Paris")))
                    a, a_out = default.sign(prepared, stamp)
                    b, commit, b_sha = service.sign(dossier_id)
                    c = floor.sign(prepared)
                    b0 = signer_only.sign(prepared, stamp)
                    b0t = signer_only.sign(prepared, stamp, in_thread=True)
                    if i >= warmup:
                        b0_times.append(b0)
                        b0_thread.append(b0t)
                        a_times.append(a)
                        b_times.append(b)
                        commit_times.append(commit)
                        c_times.append(c)
                from parapheur.storage import store

                with service.app.app_context():
                    b_out = store().get(b_sha)
                valid = _check_valid(a_out, service.keys_dir), _check_valid(b_out, service.keys_dir)
                if not all(valid):
                    report.notes.append(f"{label}: output NOT valid (a={valid[0]}, b={valid[1]})")
                a_med, b_med, c_med = median(a_times), median(b_times), median(c_times)
                repr_cost = median([asyncio_result_cost(len(prepared)) for _ in range(3)])
                report.rows.append([label, f"{len(prepared) / 1e6:.2f} MB" if len(prepared) > 1e6
                                    else f"{len(prepared) / 1e3:.0f} KB", iterations,
                                    ms(a_med), ms(b_med), ms(median(b0_times)), ms(c_med),
                                    round(b_med / a_med, 3), round(b_med / c_med, 2)])
                report.data[label] = {
                    "bytes": len(prepared), "iterations": iterations,
                    "a_ms": [round(ms(t), 3) for t in a_times], "b_ms": [round(ms(t), 3) for t in b_times],
                    "b_commit_ms": [round(ms(t), 3) for t in commit_times],
                    "c_ms": [round(ms(t), 3) for t in c_times],
                    "b0_signer_only_ms": [round(ms(t), 3) for t in b0_times],
                    "b0_signer_only_other_thread_ms": [round(ms(t), 3) for t in b0_thread],
                    "asyncio_run_result_repr_ms": round(ms(repr_cost), 3),
                    "a_median_ms": ms(a_med), "b_median_ms": ms(b_med), "c_median_ms": ms(c_med),
                    "b_over_a": b_med / a_med, "b_over_c": b_med / c_med,
                    "outputs_valid": {"a": valid[0], "b": valid[1]},
                }
                report.target(f"b/a ({label})", b_med / a_med, 0.3)
                if median(b0_times) > 1.5 * median(b0_thread) and median(b0_times) - median(b0_thread) > 0.005:
                    report.notes.append(
                        f"{label}: (b0) takes {ms(median(b0_times)):.0f} ms in the main thread but "
                        f"{ms(median(b0_thread)):.0f} ms called from another thread: in the main thread, Python "
                        "3.11's asyncio.run formats repr() of the coroutine's result (the signed file's bytes) "
                        "when it restores the SIGINT handler (a bare asyncio.run returning that many bytes: "
                        f"{ms(repr_cost):.0f} ms)")
        finally:
            service.close()
    report.notes += [
        "(a) SimpleSigner.load + PdfSigner.sign_pdf, same field/metadata/stamp as ours; "
        "(b) dossiers.perform(..., 'sign') on a fresh launched dossier (SQLite; the commit after it is in the "
        "JSON, not in b); (b0) signing.signer.sign alone with the cached seal signer; "
        "(c) sha256(file) + one RSA PKCS#1 v1.5 signature with the parsed key.",
        "Medians; each iteration signs the same bytes on every path, the three paths interleaved.",
    ]
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--bits", type=int, default=2048, help="RSA key size of the seal (default 2048)")
    args = p.parse_args(argv)
    small = pdfs.text_pages(10, 5000)
    big = pdfs.heavy_pdf_bytes(20 * 1024 * 1024)
    sizes = [("10 pages", small, 10 if args.quick else 40), ("20 MB", big, 3 if args.quick else 9)]
    report = run(sizes, args.bits, args.keep)
    report.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
