"""Every route that names a dossier, walked by users with no part in it: 403 or 404, never its data."""

import re

import pytest

from .apiclient import Api
from .factories import act, create_dossier

SECRET_TITLE = "Contrat confidentiel de M. Secret"


def dossier_routes(app):
    """(method, path) for every route whose URL names a dossier, filled with the dossier's ids."""
    for rule in app.url_map.iter_rules():
        if "dossier_id" not in rule.arguments:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def fill(rule, dossier_id: int, document_id: int) -> str:
    values = {"dossier_id": dossier_id, "document_id": document_id, "doc_id": document_id, "page": 1}
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values.get(name, 1)), path)
    return path


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_dossier_route_refuses_users_with_no_part(org):
    from .conftest import Browser

    with org.app_context():
        dossier = create_dossier("contrat", title=SECRET_TITLE)
        act(dossier, "drh.bernard", "approve")
        dossier_id, document_id = dossier.id, dossier.documents[0].id
    routes = list(dossier_routes(org))
    assert len(routes) >= 15, routes  # web pages, auditors' pages and the API
    outsider = Browser(org)
    assert outsider.login("outsider").status_code == 302
    api = Api(org, "outsider")
    from .conftest import csrf_token

    token = csrf_token(outsider.get("/inbox").get_data(as_text=True))
    for method, rule in routes:
        path = fill(rule, dossier_id, document_id)
        if path.startswith("/api/"):
            body = {"action": "approve"} if path.endswith("/actions") else {}
            response = api.client.open(path, method=method, headers=api.headers(), json=body)
        else:
            response = outsider.client.open(path, method=method, data={"csrf_token": token, "action": "approve",
                                                                       "reason": "x"})
        body = response.get_data()
        response.close()
        assert response.status_code in (403, 404), (method, path, response.status_code)
        assert SECRET_TITLE.encode() not in body and b"%PDF" not in body[:8], (method, path)
    with org.app_context():
        from parapheur.extensions import db
        from parapheur.models import Dossier

        assert db.session.get(Dossier, dossier_id).current_step == 1  # nothing was done
