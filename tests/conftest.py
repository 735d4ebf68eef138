"""Suite-wide fixtures: the test PKI (certomancer, SoftHSM2, CSC) is built once per session."""

pytest_plugins = ["tests.pki.fixtures"]
