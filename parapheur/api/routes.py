"""API endpoints."""

from flask import jsonify

from . import bp


@bp.get("/health")
def health():
    """Tell load balancers the process is up."""
    return jsonify({"status": "ok"})
