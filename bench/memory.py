"""Memory: peak resident memory of a process that signs a 100 MB PDF.

The PDF (pages of incompressible image data, :func:`bench.pdfs.heavy_pdf`) is streamed into a temporary
instance and a dossier is created and launched in this process (not measured). Then a fresh subprocess
loads the app and signs it; it reports its resident memory once the app is loaded ("baseline") and its
peak during the signature (``VmHWM``, reset just before signing through ``/proc/self/clear_refs`` where the
kernel allows, otherwise the peak since the process started; ``ru_maxrss`` agrees). Three subprocesses:

- ``service``: ``dossiers.perform(..., "sign")`` at the simple level, then commit — what a web request or
  a worker does (this is the figure the target applies to);
- ``signer``: :func:`signing.signer.sign` alone on the file's bytes (no blob store, no database);
- ``signer-thread``: the same, called from a non-main thread (as in gunicorn's gthread workers).

Target: peak ≤ 2 × file size + 100 MB.

    .venv/bin/python -m bench.memory [--quick] [--json] [--size-mb 100]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pdfs
from bench.common import ORG, Report, instance_config, log, parser, workdir

MB = 1024 * 1024


def _status(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# -- the measured subprocess ----------------------------------------------------------------------------------------


def child(mode: str, directory: str, dossier_id: int) -> None:
    from zoneinfo import ZoneInfo

    from parapheur import audit, create_app
    from parapheur.extensions import db
    from parapheur.models import Dossier, User, utcnow
    from parapheur.services import dossiers
    from parapheur.services.credentials import instance_pki
    from parapheur.storage import store
    from signing.signer import StampText, sign

    app = create_app(instance_config(Path(directory)))
    with app.app_context():
        signer = instance_pki(app).seal_signer()
        dossier = db.session.get(Dossier, dossier_id)
        user = db.session.query(User).filter_by(username="dgs.martin").one()
        prepared = next(r for r in dossier.documents[0].revisions if r.reason == "fields")  # the launched file
        sha, size = prepared.sha256, prepared.size
        baseline = _status("VmRSS")
        reset = _reset_peak()
        started = time.perf_counter()
        if mode == "service":
            result = dossiers.perform(db.session, app, dossier, user, "sign", audit.Meta("dgs.martin"), utcnow())
            db.session.commit()
            assert result.dossier.status == "completed"
        else:
            data = store().get(sha)
            stamp = StampText("Paul Martin", "étape 1", utcnow().astimezone(ZoneInfo("Europe/Paris")))

            def work():
                return sign(data, signer=signer, level="simple", field_name="Signature-1", stamp=stamp, certify=True)

            if mode == "signer-thread":
                box = []
                thread = threading.Thread(target=lambda: box.append(len(work())))
                thread.start()
                thread.join()
            else:
                work()
        elapsed = time.perf_counter() - started
        peak = _status("VmHWM")
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": mode, "size": size, "baseline": baseline, "peak": peak, "ru_maxrss": maxrss,
                      "peak_reset": reset, "seconds": elapsed}))


# -- the driver ---------------------------------------------------------------------------------------------------


def prepare(directory: Path, size: int) -> tuple[int, int]:
    """A temporary instance holding one launched dossier with a ``size``-byte PDF; (dossier id, file size)."""
    from parapheur import audit, create_app
    from parapheur.extensions import db
    from parapheur.models import User, utcnow
    from parapheur.services import dossiers, instance
    from parapheur.storage import store

    sample = pdfs.heavy_pdf(directory / "sample.pdf", size)
    app = create_app(instance_config(directory))
    with app.app_context():
        instance.initialise(app)
        instance.setup(ORG)
        with open(sample, "rb") as handle:
            digest, length = store().put_stream(handle)
        sample.unlink()
        initiator = db.session.query(User).filter_by(username="rh.dupont").one()
        dossier = dossiers.create(db.session, initiator, "Dossier volumineux", "attestation",
                                  [dossiers.Upload("scan.pdf", digest, length)], [], audit.Meta("rh.dupont"), utcnow())
        db.session.flush()
        dossiers.perform(db.session, app, dossier, initiator, "launch", audit.Meta("rh.dupont"), utcnow())
        db.session.commit()
        dossier_id = dossier.id
        db.session.close()
    db.dispose(app)
    return dossier_id, length


def measure(mode: str, directory: Path, dossier_id: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", mode, str(directory), str(dossier_id)],
                         capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]), timeout=240)
    line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{mode} subprocess failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(line)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    p = parser(__doc__)
    p.add_argument("--size-mb", type=int, default=None, help="size of the PDF (default 100; 20 with --quick)")
    args = p.parse_args(argv)
    size = (args.size_mb or (20 if args.quick else 100)) * MB
    report = Report("memory", f"Memory: peak RSS of a process signing a {size // MB} MB PDF (simple level)",
                    ["path", "file MB", "baseline MB", "peak MB", "peak − baseline MB", "limit MB", "seconds"])
    with workdir("memory", args.keep) as directory:
        log(f"writing a {size // MB} MB PDF, creating and launching its dossier (not measured)")
        dossier_id, length = prepare(directory, size)
        limit = 2 * length + 100 * MB
        for mode in ("signer", "signer-thread", "service"):  # the service act completes the dossier: last
            log(f"signing in a subprocess: {mode}")
            report.data[mode] = measure(mode, directory, dossier_id)
        for mode in ("service", "signer", "signer-thread"):
            r = report.data[mode]
            report.rows.append([mode, r["size"] / MB, r["baseline"] / MB, r["peak"] / MB,
                                (r["peak"] - r["baseline"]) / MB, limit / MB, r["seconds"]])
        report.target("peak RSS, service path", report.data["service"]["peak"] / MB, limit / MB, " MB")
        if not report.data["service"]["peak_reset"]:
            report.notes.append("the kernel refused clear_refs: peaks include start-up (always below signing here)")
    report.notes.append("baseline = resident memory with the app loaded, just before signing; "
                        "peak = VmHWM over the signature (reset just before it)")
    report.emit(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
