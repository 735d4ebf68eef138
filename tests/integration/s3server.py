"""An S3-compatible service for tests: moto's server, in a thread, on loopback."""

from __future__ import annotations

import os
import uuid

#: moto accepts any credentials; boto3 needs some (set only where none are configured)
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    """``with S3Server() as s3:`` — ``s3.endpoint`` to give the store, ``s3.new_bucket()`` per app."""

    def __init__(self):
        self.server = None
        self.endpoint = ""
        self._set_env: list[str] = []

    def __enter__(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        for name, value in FAKE_AWS.items():
            if not os.environ.get(name):
                os.environ[name] = value
                self._set_env.append(name)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        for name in self._set_env:
            os.environ.pop(name, None)

    def client(self):
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def new_bucket(self, prefix: str = "blobs") -> str:
        """Create an empty bucket; return the store URL ``s3://bucket/prefix``."""
        bucket = f"parapheur-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
