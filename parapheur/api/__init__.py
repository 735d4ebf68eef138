"""REST API /api/v1: bearer tokens, problem+json errors, an OpenAPI document generated from the code that
validates requests. Endpoints are thin layers over the same services as the browser."""

from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer-authenticated; cookies never authenticate the API

from . import auth, problems  # noqa: E402

problems.register(bp)
bp.after_request(auth.response_headers)

from . import dossiers, jobs, openapi, routes, validate  # noqa: E402,F401
