"""Suite-wide fixtures: the test PKI (certomancer, SoftHSM2, CSC) is built once per session."""

import os
from pathlib import Path

pytest_plugins = ["tests.pki.fixtures"]


def pytest_configure(config):
    """Compile the translation catalogs (``make`` does it too), so a bare ``pytest`` tests English."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1] / "parapheur" / "translations"
    for po_path in root.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        tmp = mo_path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        os.replace(tmp, mo_path)
