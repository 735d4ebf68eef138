"""What the benchmarks share: command line, statistics, the printed table and JSON, throw-away instances
(temporary folder, SQLite or a scratch PostgreSQL database), Redis, the machine description.

Nothing here is part of the application: benchmarks drive the app through its services, its CLI and HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: the organisation of the single-signer benchmarks (sign, memory): one simple-level step
ORG = """
users:
  - {username: rh.dupont, name: Claire Dupont, email: claire@example.fr, roles: [initiator], password: "bench-pass-1"}
  - {username: dgs.martin, name: Paul Martin, email: paul@example.fr, roles: [signer], password: "bench-pass-2"}
document_types:
  - code: attestation
    name: Attestation
    min_level: simple
    steps:
      - {kind: signature, level: simple, assignees: [user:dgs.martin]}
"""

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("PARAPHEUR_BENCH_PG", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PARAPHEUR_BENCH_REDIS", "redis://127.0.0.1:6379")


# -- command line and output ----------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--keep", action="store_true", help="keep the temporary instance and database")
    return p


@dataclass
class Report:
    """A benchmark's result: a table (columns × rows), verdicts on targets, free notes and raw figures."""

    name: str
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    started: str = field(default_factory=lambda: dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def target(self, name: str, value: float, goal: float, unit: str = "", higher_is_better: bool = False) -> bool:
        met = value >= goal if higher_is_better else value <= goal
        self.targets.append({"target": name, "value": round(value, 4), "goal": goal, "unit": unit,
                             "comparison": ">=" if higher_is_better else "<=", "met": met})
        return met

    def as_dict(self) -> dict:
        return {"benchmark": self.name, "title": self.title, "date": self.started,
                "machine": {**machine(), "load_average_at_start": round(self.load_at_start, 2)},
                "columns": self.columns, "rows": self.rows, "targets": self.targets, "notes": self.notes,
                "data": self.data}

    def emit(self, as_json: bool) -> None:
        if as_json:
            json.dump(self.as_dict(), sys.stdout, indent=2, ensure_ascii=False, default=str)
            sys.stdout.write("\n")
            return
        m = machine()
        print(f"\n{self.title}")
        print(f"{self.started} · {m['cpu']} × {m['cores']} cores, {m['memory']} · Python {m['python']} · "
              f"pyHanko {m['pyhanko']} · load average at start {self.load_at_start:.2f}\n")
        print(table(self.columns, self.rows))
        if self.targets:
            print()
            for t in self.targets:
                mark = "MET" if t["met"] else "NOT MET"
                print(f"  target {t['target']}: {fmt(t['value'])}{t['unit']} "
                      f"(goal {t['comparison']} {fmt(t['goal'])}{t['unit']}) … {mark}")
        for note in self.notes:
            print(f"  · {note}")
        if self.load_at_start > 0.7 * (os.cpu_count() or 1) / 2:
            print(f"  ! the machine was busy when this run started (load average {self.load_at_start:.2f}): "
                  "figures are pessimistic")
        print()


def fmt(value) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}".replace(",", " ")
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    return str(value)


def table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    cells = [[str(c) for c in columns]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(row):
        return "| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in
                                 enumerate(zip(row, widths, strict=True))) + " |"

    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table or the JSON)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics --------------------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), nearest-rank on the sorted values (what load tools report)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- machine ------------------------------------------------------------------------------------------------


_MACHINE: dict | None = None


def machine() -> dict:
    global _MACHINE
    if _MACHINE is None:
        cpu = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        try:
            from importlib.metadata import version

            pyhanko = version("pyHanko")
        except Exception:  # noqa: BLE001
            pyhanko = "?"
        mem = ""
        with contextlib.suppress(OSError, ValueError, IndexError):
            kb = int(Path("/proc/meminfo").read_text().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GB"
        _MACHINE = {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
                    "pyhanko": pyhanko, "system": platform.platform()}
    return _MACHINE


# -- instances ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"parapheur-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def pg_connect(dbname: str | None = None):
    import psycopg

    url = PG_ADMIN_URL if dbname is None else PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def pg_url(dbname: str) -> str:
    """SQLAlchemy URL of a database on the benchmark's PostgreSQL server."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


@contextlib.contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database ``bench_<prefix>_<random>``, dropped afterwards; yields its name."""
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    with pg_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            with pg_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_redis(keep: bool = False) -> Iterator[str]:
    """The URL of an empty Redis database (numbers 15 down to 8 are tried), emptied again afterwards."""
    from redis import Redis

    for number in range(15, 7, -1):
        url = f"{REDIS_URL.rstrip('/')}/{number}"
        client = Redis.from_url(url, socket_connect_timeout=2)
        # claim it: a marker set only if the database is empty, so two benchmarks never share one
        if client.dbsize() == 0 and client.set("parapheur-bench:claimed", str(os.getpid()), nx=True):
            try:
                yield url
            finally:
                if not keep:
                    client.flushdb()
            return
    raise RuntimeError("no empty Redis database among 8–15")


def instance_config(directory: Path, database_url: str | None = None, **overrides) -> dict:
    """Settings of a benchmark instance: everything explicit, nothing inherited from the environment."""
    config = {
        "INSTANCE_DIR": str(directory),
        "DATABASE_URL": database_url or f"sqlite:///{directory / 'parapheur.sqlite3'}",
        "SECRET_KEY": "bench-secret",
        "ORG_NAME": "Ville de Banc-d'Essai",
        "REDIS_URL": None,
        "TSA_URL": None,
        "SMTP_HOST": None,
        "PASSWORD_HASH_PROFILE": "cheapest",
    }
    config.update(overrides)
    return config


def env_for(config: dict) -> dict:
    """The environment a CLI process (``parapheur worker``, gunicorn) needs to open the same instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARAPHEUR_")}
    for name in ("INSTANCE_DIR", "DATABASE_URL", "SECRET_KEY", "ORG_NAME", "REDIS_URL", "TSA_URL",
                 "API_RATE_LIMIT"):
        if config.get(name) not in (None, ""):
            env[f"PARAPHEUR_{name}"] = str(config[name])
    return env


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the benchmark (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def rsa_instance_keys(directory: Path, org_name: str, bits: int = 2048) -> None:
    """Instance keys (CA, seal, TSA) whose *seal* is an RSA key of ``bits`` bits, issued by the instance CA.

    The instance makes EC P-256 keys; the signing benchmark compares against "one RSA signature", so it
    gives the seal an RSA key and uses that same key for every measured path.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from signing.pki import create_instance_pki

    pki = create_instance_pki(org_name)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"Cachet {org_name}")])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(pki.root_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root_key.public_key()),
                           critical=False)
            .sign(pki.root_key, hashes.SHA256()))
    pki.seal_key, pki.seal_cert = key, cert
    pki.save(directory)

