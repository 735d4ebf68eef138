"""signing.fields — every signature field is created before the first signature."""

from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from signing.errors import SigningError, UnreadablePdf
from signing.fields import (
    MARGIN,
    MAX_HEIGHT,
    MAX_WIDTH,
    FieldSpec,
    layout_fields,
    prepare_fields,
    signature_fields,
)
from signing.signer import sign
from tests.unit.signing.conftest import make_pdf

A4 = (0.0, 0.0, 595.0, 842.0)


def _fields(pdf: bytes) -> dict[str, tuple[int, tuple[float, ...]]]:
    """name -> (page index, rectangle) of every signature field."""
    reader = PdfFileReader(BytesIO(pdf))
    pages = {page.idnum: index for index, page in
             enumerate(reader.root["/Pages"]["/Kids"])}
    out = {}
    for name, _value, ref in enumerate_sig_fields(reader):
        widget = ref.get_object()
        out[name] = (pages[widget.raw_get("/P").idnum], tuple(float(v) for v in widget["/Rect"]))
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_all_fields_up_front_on_the_last_page(pdf10):
    assert len(pdf10) > 40_000
    specs = [FieldSpec("visa-drh"), FieldSpec("dgs"), FieldSpec("maire")]
    prepared = prepare_fields(pdf10, specs)
    assert prepared.startswith(pdf10)  # an incremental update: the original bytes are kept
    assert signature_fields(prepared) == {"visa-drh": False, "dgs": False, "maire": False}

    fields = _fields(prepared)
    rects = [fields[s.name][1] for s in specs]
    assert {fields[s.name][0] for s in specs} == {9}
    for x1, y1, x2, y2 in rects:
        assert x2 - x1 <= MAX_WIDTH and y2 - y1 <= MAX_HEIGHT
        assert MARGIN <= x1 and x2 <= 595 - MARGIN and MARGIN <= y1 and y2 < 842 / 2
    assert len({r[1] for r in rects}) == 1, "three fields fit side by side on A4"
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1:])


def test_explicit_page_and_box(pdf10):
    prepared = prepare_fields(pdf10, [FieldSpec("p1", page=0, box=(400, 700, 560, 760)),
                                      FieldSpec("p3", page=2)])
    fields = _fields(prepared)
    assert fields["p1"] == (0, (400.0, 700.0, 560.0, 760.0))
    assert fields["p3"][0] == 2
    with pytest.raises(ValueError):
        prepare_fields(pdf10, [FieldSpec("x", page=10)])
    with pytest.raises(ValueError):
        prepare_fields(pdf10, [FieldSpec("x"), FieldSpec("x")])


def test_existing_field_is_used_as_is(pdf10):
    once = prepare_fields(pdf10, [FieldSpec("maire", page=0, box=(10, 10, 110, 50))])
    assert prepare_fields(once, [FieldSpec("maire")]) == once  # nothing to add
    twice = prepare_fields(once, [FieldSpec("maire"), FieldSpec("adjoint")])
    fields = _fields(twice)
    assert fields["maire"] == (0, (10.0, 10.0, 110.0, 50.0))
    assert fields["adjoint"][0] == 9


def test_no_new_field_after_certification(pdf10, instance_pki, stamp):
    prepared = prepare_fields(pdf10, [FieldSpec("s1"), FieldSpec("s2")])
    certified = sign(prepared, signer=instance_pki.seal_signer(), level="simple", field_name="s1",
                     stamp=stamp, certify=True)
    assert prepare_fields(certified, [FieldSpec("s1"), FieldSpec("s2")]) == certified
    with pytest.raises(SigningError, match="already certified"):
        prepare_fields(certified, [FieldSpec("s3")])


def test_rows_when_the_page_is_narrow():
    boxes = layout_fields(5, A4)
    assert len(boxes) == 5
    rows = sorted({b[1] for b in boxes}, reverse=True)
    assert len(rows) == 2
    assert [b for b in boxes if b[1] == rows[0]] == boxes[:3]  # first row on top, left to right
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    narrow = layout_fields(3, (0, 0, 300, 400))
    assert len({b[1] for b in narrow}) == 3  # one per row
    assert all(b[2] - b[0] <= 300 - 2 * MARGIN for b in narrow)


def test_layout_finds_the_free_band_above_a_footer():
    # text from the top down to y=500, a footer at y=20..30: the fields go just above it
    boxes = layout_fields(2, A4, occupied=[(20, 30), (500, 780)])
    assert all(b[1] > 30 and b[3] < 500 for b in boxes)
    # no room anywhere: bottom margin, overlapping rather than failing
    crowded = layout_fields(2, A4, occupied=[(0, 842)])
    assert all(b[1] == MARGIN for b in crowded)


def test_layout_reads_the_page_content():
    short = make_pdf(2, lines=10, footer=True)  # text ends high up, page number at the foot
    fields = _fields(prepare_fields(short, [FieldSpec("a"), FieldSpec("b")]))
    for _page, (_x1, y1, _x2, _y2) in fields.values():
        assert y1 > 30, "above the page number"


@pytest.mark.parametrize(("data", "expected"), [
    (b"", "vide"),
    (b"Bonjour, ceci n'est pas un PDF", "n'est pas un PDF"),
    (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\n%%EOF", "illisible ou endommagé"),
])
def test_unreadable_input(data, expected):
    with pytest.raises(UnreadablePdf) as caught:
        prepare_fields(data, [FieldSpec("s")])
    assert expected in caught.value.message_fr
    assert caught.value.code == "unreadable_pdf"


def test_truncated_pdf(pdf10):
    with pytest.raises(UnreadablePdf):
        prepare_fields(pdf10[: len(pdf10) // 2], [FieldSpec("s")])


def test_encrypted_pdf(encrypted_pdf):
    with pytest.raises(UnreadablePdf) as caught:
        prepare_fields(encrypted_pdf, [FieldSpec("s")])
    assert "le PDF est protégé par un mot de passe" in caught.value.message_fr
