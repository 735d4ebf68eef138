"""Run certomancer-csc-dummy on 127.0.0.1 for the test suite (see fixtures.csc_service).

Usage: python csc_launcher.py CERTOMANCER_CONFIG EXTERNAL_URL_PREFIX

Same service as ``python -m csc_dummy CONFIG PORT 2`` (SCAL 2: hash pinning required),
except that (1) the certomancer config is loaded with the URL prefix the test PKI is
actually served on, so the certificates it returns are byte-identical to the ones the
``test_pki`` fixture produces, and (2) it binds an ephemeral loopback port chosen by the
OS and prints ``PORT <n>`` on stdout (no port race).
"""

import socket
import sys

from aiohttp import web
from certomancer.registry import CertomancerConfig
from csc_dummy.csc_dummy_server import CSCWithCertomancer, DummyServiceParams


def main() -> None:
    cfg_path, url_prefix = sys.argv[1], sys.argv[2]
    cfg = CertomancerConfig.from_file(cfg_path, external_url_prefix=url_prefix)
    csc_app = CSCWithCertomancer(cfg, service_params=DummyServiceParams(hash_pinning_required=True))
    csc_app.register_routes()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    web.run_app(csc_app.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
