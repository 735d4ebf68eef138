"""The evidence bundle of a dossier: a ZIP that can be checked offline, years later, without Parapheur.

It holds the final signed PDFs (and annexes), the sealed bordereau, ``events.json`` (every event of the
dossier with its hashes and chain links, and how to recompute them), the RFC 3161 tokens over the chain
head, the certificates and CRL needed to check all of it, our validator's reports, a stdlib-only script
that rechecks the events, checksums, and a README (French, then English) saying how to verify each part.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import ChainTimestamp, Dossier, utcnow
from ..storage import store
from . import bordereau, trail
from .credentials import instance_pki, trust_roots

FORMAT = "parapheur-evidence/1"
# ZIP entries get a fixed date: the bundle's bytes then depend on its content only
_ZIP_DATE = (2000, 1, 1, 0, 0, 0)


def filename(dossier: Dossier) -> str:
    return f"preuves-dossier-{dossier.id}.zip"


def safe_name(name: str, default: str = "fichier") -> str:
    """A portable file name: ASCII letters, digits, ``.``, ``_`` and ``-`` only."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-.")
    return cleaned[:120] or default


@dataclass(frozen=True)
class _Cert:
    path: str
    role: str
    cert: asn1_x509.Certificate


class _Certificates:
    """Certificates met while building the bundle, each written once, named by role and subject."""

    def __init__(self):
        self.by_fingerprint: dict[str, _Cert] = {}

    def add(self, cert: asn1_x509.Certificate, role: str | None = None) -> _Cert:
        fingerprint = hashlib.sha256(cert.dump()).hexdigest()
        if fingerprint in self.by_fingerprint:
            return self.by_fingerprint[fingerprint]
        role = role or self._role(cert)
        common_name = cert.subject.native.get("common_name") or "certificat"
        if isinstance(common_name, list):
            common_name = common_name[0]
        path = f"certificats/{role}-{safe_name(common_name)}-{fingerprint[:8]}.pem"
        entry = self.by_fingerprint[fingerprint] = _Cert(path, role, cert)
        return entry

    def _role(self, cert: asn1_x509.Certificate) -> str:
        if cert.self_signed != "no":
            return "racine"
        if cert.ca:
            return "intermediaire"
        usages = cert.extended_key_usage_value.native if cert.extended_key_usage_value else []
        if "time_stamping" in usages:
            return "horodatage"
        return "signataire"

    def add_signed_data(self, signed_data: cms.SignedData) -> None:
        for choice in signed_data["certificates"] or []:
            if choice.name == "certificate":
                self.add(choice.chosen)

    def files(self) -> dict[str, bytes]:
        from asn1crypto import pem

        return {c.path: pem.armor("CERTIFICATE", c.cert.dump()) for c in self.by_fingerprint.values()}

    def describe(self) -> list[dict]:
        return [{"file": c.path, "role": c.role, "subject": c.cert.subject.human_friendly,
                 "issuer": c.cert.issuer.human_friendly, "serial": format(c.cert.serial_number, "x"),
                 "not_before": c.cert["tbs_certificate"]["validity"]["not_before"].native.isoformat(),
                 "not_after": c.cert["tbs_certificate"]["validity"]["not_after"].native.isoformat(),
                 "sha256": hashlib.sha256(c.cert.dump()).hexdigest()}
                for c in sorted(self.by_fingerprint.values(), key=lambda c: c.path)]


def _certificates_in_pdf(data: bytes, certs: _Certificates) -> None:
    """Every certificate a PDF carries: in its signatures, their timestamp tokens and its DSS."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        for sig in reader.embedded_signatures:
            certs.add_signed_data(sig.signed_data)
            for attribute in sig.signer_info["unsigned_attrs"] or []:
                if attribute["type"].native == "signature_time_stamp_token":
                    for token in attribute["values"]:
                        certs.add_signed_data(token["content"])
        dss = reader.root.get("/DSS")
        for stream in (dss.get("/Certs") or []) if dss is not None else []:
            certs.add(asn1_x509.Certificate.load(stream.get_object().data))
    except Exception:  # noqa: BLE001 - an unreadable PDF still goes in the bundle; its report says why
        return


def _token_signer(signed_data: cms.SignedData) -> asn1_x509.Certificate | None:
    """The certificate that signed an RFC 3161 token, when the token carries it."""
    sid = signed_data["signer_infos"][0]["sid"]
    for choice in signed_data["certificates"] or []:
        cert = choice.chosen if choice.name == "certificate" else None
        if cert is None:
            continue
        if sid.name == "issuer_and_serial_number":
            if (cert.issuer == sid.chosen["issuer"]
                    and cert.serial_number == sid.chosen["serial_number"].native):
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _tsr(token: bytes) -> bytes:
    """A TimeStampResp (status granted) around a stored TimeStampToken: what ``openssl ts`` reads."""
    return tsp.TimeStampResp({"status": {"status": "granted"},
                              "time_stamp_token": cms.ContentInfo.load(token)}).dump()


def events_document(session: Session, dossier: Dossier, events, state: trail.ChainState,
                    stamps: list[tuple[str, ChainTimestamp]], now: datetime) -> dict:
    """The content of ``events.json``."""
    return {
        "format": "parapheur-audit-events/1",
        "generated_at": now.isoformat(timespec="seconds"),
        "dossier": {"id": dossier.id, "title": dossier.title, "type": dossier.type.code,
                    "status": dossier.status, "initiator": dossier.initiator.username,
                    "created_at": dossier.created_at.isoformat(),
                    "completed_at": dossier.completed_at.isoformat() if dossier.completed_at else None},
        "hash": {
            "algorithm": "sha256",
            "genesis": audit.GENESIS,
            "canonical_fields": list(audit.CANONICAL_FIELDS),
            "canonical_fr": "JSON de l'objet formé des champs canonical_fields de l'événement (data comme objet) : "
                            "clés triées, séparateurs ',' et ':' sans espace, UTF-8, caractères non ASCII non "
                            "échappés",
            "canonical_en": "JSON of the object made of the event's canonical_fields (data as an object): sorted "
                            "keys, ',' and ':' separators without spaces, UTF-8, non-ASCII characters unescaped",
            "python": "json.dumps({k: event[k] for k in canonical_fields}, sort_keys=True, separators=(',', ':'), "
                      "ensure_ascii=False).encode('utf-8')",
            "event_hash": "sha256(prev_hash + (dossier_prev_hash or '') + canonical), hex; the two previous "
                          "hashes as ASCII hex text",
            "dossier_chain": "dossier_seq runs 1, 2, 3…; each dossier_prev_hash is the hash of the previous "
                             "event of the dossier, the genesis for the first",
            "instance_chain": "prev_hash is the hash of the previous event of the whole instance (events of other "
                              "dossiers, logins…): it is covered by the event's hash but those events are not "
                              "in this bundle",
        },
        "chain": {"events": len(events), "head_seq": state.head_seq, "head_hash": state.head_hash,
                  "verified_by_parapheur": state.ok,
                  "problem": state.verification.first.problem if state.verification.first else None},
        "timestamps": [{"file": path, "dossier_seq": stamp.dossier_seq, "head_hash": stamp.head_hash,
                        "at": stamp.at.isoformat()} for path, stamp in stamps],
        "events": [audit.as_dict(e) for e in events],
    }


def bundle(session: Session, app: Flask, dossier: Dossier, *, now: datetime | None = None) -> bytes:
    """The evidence ZIP of ``dossier`` (any status; the chain timestamp exists once it completed)."""
    now = now or utcnow()
    pki = instance_pki(app)
    files: dict[str, bytes] = {}
    der = serialization.Encoding.DER
    certs = _Certificates()
    root = certs.add(asn1_x509.Certificate.load(pki.root_cert.public_bytes(der)), "racine")
    seal = certs.add(asn1_x509.Certificate.load(pki.seal_cert.public_bytes(der)), "cachet")
    tsa = None if app.config.get("TSA_URL") else certs.add(
        asn1_x509.Certificate.load(pki.tsa_cert.public_bytes(der)), "horodatage")
    roots = [certs.add(asn1_x509.Certificate.load(r.dump()), "racine") for r in trust_roots(app)]

    checks = trail.check_documents(dossier)
    reports = {c.document.id: c.report for c in checks}
    documents = []
    for document in dossier.documents:
        folder = "documents" if document.kind == "document" else "annexes"
        path = f"{folder}/{document.position + 1}-{safe_name(document.filename)}"
        data = store().get(document.current.sha256)
        files[path] = data
        if document.kind == "document":
            _certificates_in_pdf(data, certs)
            report = reports[document.id]
            files[f"validation/{document.position + 1}-{safe_name(document.filename)}.json"] = _json(
                {"file": path, "sha256": document.current.sha256, "checked_at": now.isoformat(timespec="seconds"),
                 **report.to_dict()})
        documents.append({"file": path, "filename": document.filename, "kind": document.kind,
                          "revision": document.current.number, "sha256": document.current.sha256})

    files["bordereau.pdf"] = bordereau.build(session, app, dossier, now=now, checks=checks)
    _certificates_in_pdf(files["bordereau.pdf"], certs)

    stamps = []
    for stamp in session.scalars(select(ChainTimestamp).where(ChainTimestamp.dossier_id == dossier.id)
                                 .order_by(ChainTimestamp.id)):
        path = f"horodatages/chaine-evenement-{stamp.dossier_seq}.tsr"
        files[path] = _tsr(stamp.token)
        signed_data = cms.ContentInfo.load(stamp.token)["content"]
        certs.add_signed_data(signed_data)
        signer = _token_signer(signed_data)
        if signer is not None:
            tsa = certs.add(signer, "horodatage")
        stamps.append((path, stamp))

    state = trail.chain_state(session, dossier)  # the head first: events appended meanwhile are left out
    events = [e for e in trail.events_of(session, dossier.id) if e.dossier_seq <= state.head_seq]
    files["events.json"] = _json(events_document(session, dossier, events, state, stamps, now))
    files["crl/ca-racine.crl"] = pki.crl_der
    files.update(certs.files())
    files["certificats/racines-de-confiance.pem"] = b"".join(files[p] for p in dict.fromkeys(c.path for c in roots))
    files["verifier_evenements.py"] = VERIFY_SCRIPT.encode()
    files["manifest.json"] = _json({
        "format": FORMAT, "generated_at": now.isoformat(timespec="seconds"), "organisation": app.config["ORG_NAME"],
        "dossier": dossier.id, "documents": documents, "bordereau": "bordereau.pdf", "events": "events.json",
        "timestamps": [p for p, _ in stamps], "crl": ["crl/ca-racine.crl"],
        "trust_root": root.path, "trust_roots": "certificats/racines-de-confiance.pem", "seal": seal.path,
        "tsa": tsa.path if tsa else None,
        "tsa_is_external": bool(app.config.get("TSA_URL")), "certificates": certs.describe()})
    files["LISEZMOI.txt"] = readme(app, dossier, root.path, tsa.path if tsa else "<certificat de l'autorité>",
                                   stamps).encode()
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n"
                                  for path, data in sorted(files.items())).encode()
    return _zip(files)


def _json(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[path])
    return buffer.getvalue()


def readme(app: Flask, dossier: Dossier, root_path: str, tsa_path: str,
           stamps: list[tuple[str, ChainTimestamp]]) -> str:
    org = app.config["ORG_NAME"]
    external = bool(app.config.get("TSA_URL"))
    stamp = stamps[0] if stamps else None
    # an external TSA chains to its own root: the one the operator trusts, or the authority publishes
    ca_file = "certificats/racines-de-confiance.pem" if external else root_path
    openssl = (f"openssl ts -verify -digest {stamp[1].head_hash} -in {stamp[0]} \\\n"
               f"       -CAfile {ca_file} -untrusted {tsa_path}" if stamp else
               "openssl ts -verify -digest <head_hash> -in horodatages/<fichier>.tsr "
               f"-CAfile {ca_file} -untrusted {tsa_path}")
    tsa_fr = ("une autorité d'horodatage externe (PARAPHEUR_TSA_URL)" if external else
              "l'autorité d'horodatage intégrée à l'instance (sa clé est sur le serveur : pour une preuve "
              "opposable à l'exploitant lui-même, configurez une autorité externe)")
    tsa_en = ("an external timestamping authority (PARAPHEUR_TSA_URL)" if external else
              "the instance's built-in timestamping authority (its key lives on the server: for evidence that "
              "holds against the operator itself, configure an external TSA)")
    return README.format(org=org, dossier=dossier.id, title=dossier.title, status=dossier.status,
                         status_fr=trail.DOSSIER_STATUSES.get(dossier.status, dossier.status),
                         root=root_path, tsa=tsa_path, openssl=openssl, tsa_fr=tsa_fr, tsa_en=tsa_en,
                         nostamp_fr="" if stamps else "\n   (Ce dossier n'est pas terminé : sa chaîne n'est pas "
                                                   "encore horodatée.)",
                         nostamp_en="" if stamps else "\n   (This dossier is not completed: its chain is not "
                                                   "timestamped yet.)")


README = """DOSSIER DE PREUVE — {org}
Dossier n° {dossier} : {title}
Statut : {status_fr}

(English below.)

CONTENU
  documents/            les PDF signés, dans leur dernière révision
  annexes/              les pièces jointes (non signées)
  bordereau.pdf         le bordereau (certificat d'achèvement), scellé par le cachet de l'organisation (PAdES B-T)
  events.json           tous les événements du dossier, avec leurs empreintes et les liens de la chaîne
  horodatages/*.tsr     jetons d'horodatage RFC 3161 (réponses DER) sur la tête de la chaîne du dossier
  certificats/          l'AC racine de l'instance, le cachet, l'autorité d'horodatage, les signataires
  crl/ca-racine.crl     la liste de révocation de l'AC racine (DER)
  validation/*.json     le rapport du validateur de Parapheur pour chaque document, à la date du dossier de preuve
  manifest.json         la liste des fichiers et des certificats
  verifier_evenements.py  un script (Python 3, bibliothèque standard seulement) qui refait les calculs du point 2
  SHA256SUMS            l'empreinte SHA-256 de chaque fichier

VÉRIFIER
1. Intégrité des fichiers :  sha256sum -c SHA256SUMS
2. Piste d'audit (events.json) : pour chaque événement, recalculer
     canonique = JSON des champs seq, at, kind, actor, on_behalf_of, ip, user_agent, dossier_id, dossier_seq,
                 revision_sha256, data (clés triées, séparateurs "," et ":" sans espace, UTF-8, non-ASCII non
                 échappé ; en Python : json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
     hash      = SHA-256( prev_hash + dossier_prev_hash (vide si null) + canonique ), en hexadécimal
   et vérifier que chaque hash recalculé est celui enregistré, que dossier_seq vaut 1, 2, 3… et que chaque
   dossier_prev_hash est le hash de l'événement précédent du dossier (000…0 pour le premier).
   Le script le fait :  python3 verifier_evenements.py
   (prev_hash renvoie à l'événement précédent de toute l'instance, absent d'ici : il est couvert par le hash.)
3. Horodatage de la chaîne : le jeton couvre le hash de l'événement n° dossier_seq indiqué dans
   events.json (« timestamps ») ; il est émis par {tsa_fr}.
     {openssl}
   doit afficher « Verification: OK ». Pour lire la date :  openssl ts -reply -in <fichier>.tsr -text{nostamp_fr}
   Tout événement jusqu'à celui-là est ainsi daté et figé : le modifier changerait le hash horodaté.
4. Signatures des PDF et du bordereau : avec tout validateur PAdES, en prenant {root}
   comme racine de confiance et crl/ca-racine.crl comme liste de révocation, par exemple :
     - le service de validation de la Commission européenne (DSS) ;
     - Adobe Acrobat Reader, après avoir importé la racine comme certificat de confiance ;
     - pyHanko :  pyhanko sign validate --trust {root} --pretty-print documents/<fichier>.pdf
   Le hash SHA-256 de chaque PDF est celui du dernier événement « document.signed » (sha256_after) ou
   « document.timestamped » qui le concerne dans events.json.

------------------------------------------------------------------------------------------------------------

EVIDENCE BUNDLE — {org}
Dossier {dossier}: {title}
Status: {status}

CONTENTS
  documents/ the signed PDFs (latest revision); annexes/ attachments (not signed); bordereau.pdf the certificate
  of completion sealed with the organisation's seal (PAdES B-T); events.json every event of the dossier with its
  hashes and chain links; horodatages/*.tsr RFC 3161 timestamp responses (DER) over the dossier chain head;
  certificats/ the instance root CA, seal, TSA and signers' certificates; crl/ca-racine.crl the root's CRL (DER);
  validation/*.json Parapheur's validation report of each document; manifest.json the list of files and
  certificates; verifier_evenements.py a Python 3 (standard library only) script that redoes step 2;
  SHA256SUMS the SHA-256 of every file.

HOW TO VERIFY
1. Files:  sha256sum -c SHA256SUMS
2. Audit trail (events.json): for every event recompute
     canonical = JSON of the fields seq, at, kind, actor, on_behalf_of, ip, user_agent, dossier_id, dossier_seq,
                 revision_sha256, data (sorted keys, "," and ":" separators without spaces, UTF-8, non-ASCII
                 unescaped)
     hash      = SHA-256( prev_hash + dossier_prev_hash (empty if null) + canonical ), hex
   check it equals the recorded hash, that dossier_seq runs 1, 2, 3… and that every dossier_prev_hash is the
   previous dossier event's hash (000…0 for the first).  Or run:  python3 verifier_evenements.py
   (prev_hash points to the previous event of the whole instance, not included: the hash covers it.)
3. Chain timestamp: the token covers the hash of the event dossier_seq named in events.json ("timestamps");
   it was issued by {tsa_en}.
     {openssl}
   must print "Verification: OK".  Read its time with:  openssl ts -reply -in <file>.tsr -text{nostamp_en}
4. PDF and bordereau signatures: any PAdES validator, with {root} as trust anchor and
   crl/ca-racine.crl as CRL (EU DSS demo, Adobe Acrobat Reader after trusting the root, or
   pyhanko sign validate --trust {root} --pretty-print documents/<file>.pdf).
   Each PDF's SHA-256 is the sha256_after of the last "document.signed" or "document.timestamped" event about it.
"""

VERIFY_SCRIPT = '''#!/usr/bin/env python3
"""Recompute every hash and link of events.json (standard library only). Exit 0 if all hold, 1 if not."""
import hashlib
import json
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent
document = json.loads((here / "events.json").read_text(encoding="utf-8"))
fields = document["hash"]["canonical_fields"]
genesis = document["hash"]["genesis"]
problems = []
previous_hash, previous_seq = genesis, 0
by_seq = {}
for event in document["events"]:
    body = {name: event[name] for name in fields}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256((event["prev_hash"] + (event["dossier_prev_hash"] or "")).encode() + canonical)
    name = "event %s (dossier_seq %s)" % (event["seq"], event["dossier_seq"])
    if digest.hexdigest() != event["hash"]:
        problems.append(name + ": hash does not match its content / empreinte incorrecte")
    if event["dossier_seq"] != previous_seq + 1:
        problems.append(name + ": expected dossier_seq %d / événement manquant ou déplacé" % (previous_seq + 1))
    if event["dossier_prev_hash"] != previous_hash:
        problems.append(name + ": does not follow the previous event / lien rompu")
    previous_hash, previous_seq = event["hash"], event["dossier_seq"]
    by_seq[event["dossier_seq"]] = event["hash"]
chain = document["chain"]
if (chain["head_seq"], chain["head_hash"]) != (previous_seq, previous_hash):
    problems.append("the chain does not end at its recorded head / la tête de chaîne ne correspond pas")
for stamp in document["timestamps"]:
    if by_seq.get(stamp["dossier_seq"]) != stamp["head_hash"]:
        problems.append("timestamp %s: not the hash of event %s" % (stamp["file"], stamp["dossier_seq"]))
for problem in problems:
    print(problem)
print("%d events checked: %s" % (len(document["events"]), "OK" if not problems else "BROKEN / ROMPU"))
sys.exit(1 if problems else 0)
'''
