"""Operational endpoints."""

from . import bp
from .spec import Reply, operation


@operation(bp, "GET", "/health", summary="État du service", tag="service", auth=False,
           replies=(Reply(200, "Le processus répond.", "Health"),))
def health(call):
    """Tell load balancers the process is up."""
    return {"status": "ok"}
