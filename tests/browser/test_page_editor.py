"""The page editor in a real browser: zoom and layout, the OCR lines following the caret, the
status rule with two readers, transliteration, shortcuts, leaving with unsaved text, and
'OCR this page again' run by the stack's real Celery worker and Tesseract."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Page, Project
from tests.support import SCAN_LINES, add_scan_project

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: Tesseract on one small page, behind whatever else the shared worker is doing.
REOCR_TIMEOUT_MS = 90_000


@pytest.fixture
def scan_project(stack):
    """A ready project of printed scans with OCR boxes (tests/support.py add_scan_project)."""

    def make(slug: str, pages: int = 2, language: str = "eng") -> str:
        with stack.app.app_context():
            add_scan_project(slug, pages, language=language)
            db.session.remove()
        return slug

    return make


def page_row(stack, slug: str, number: int) -> Page:
    with stack.app.app_context():
        page = db.session.scalar(
            select(Page)
            .join(Project, Page.project_id == Project.id)
            .filter(Project.slug == slug, Page.number == number)
        )
        db.session.expunge(page)
        db.session.remove()
        return page


def open_editor(ui, editors, slug: str, number: int = 1, user: str | None = None):
    page = ui.new_page()
    ui.sign_in(page, user or next(iter(editors)))
    page.goto(f"/proofing/{slug}/{number}/")
    expect(page.locator("#viewer")).to_have_attribute("data-state", "ready")
    return page


def zoom(page) -> float:
    return page.evaluate("() => pageEditor.viewer.viewport.getZoom()")


def settled_zoom(page) -> float:
    """The zoom once the viewer's animation has ended."""
    page.wait_for_function(
        "() => !pageEditor.viewer.viewport.getZoom(true) ||"
        " Math.abs(pageEditor.viewer.viewport.getZoom(true)"
        " - pageEditor.viewer.viewport.getZoom()) < 1e-6"
    )
    return zoom(page)


def caret_line(page) -> int:
    return page.evaluate(
        "() => { const b = document.getElementById('page-text');"
        " return b.value.slice(0, b.selectionStart).split('\\n').length - 1; }"
    )


def test_zoom_fit_and_layout_are_remembered(ui, editors, scan_project):
    """The zoom buttons and keys change OpenSeadragon's zoom, fit-to-width comes back to where
    the page opened, the scan turns by quarter turns, and the chosen layout (image above the
    text) and zoom (whole page) survive a reload."""
    slug = scan_project("editor-zoom")
    page = open_editor(ui, editors, slug)
    fitted = settled_zoom(page)
    ui.shot(page, "20-editor-opened")

    page.get_by_role("button", name="Zoom in").click()
    page.wait_for_function("z => pageEditor.viewer.viewport.getZoom() > z * 1.1", arg=fitted)
    zoomed_in = settled_zoom(page)
    page.keyboard.press("Alt+Minus")
    page.wait_for_function("z => pageEditor.viewer.viewport.getZoom() < z * 0.9", arg=zoomed_in)
    page.keyboard.press("Alt+Equal")
    page.keyboard.press("Alt+Equal")
    page.wait_for_function("z => pageEditor.viewer.viewport.getZoom() > z * 1.3", arg=fitted)
    ui.shot(page, "21-editor-zoomed-in")
    page.keyboard.press("Alt+0")
    page.wait_for_function(
        "z => Math.abs(pageEditor.viewer.viewport.getZoom() - z) < z * 0.01", arg=fitted
    )
    # Rotation by quarter turns, from the button and the key.
    page.get_by_role("button", name="Rotate").click()
    page.wait_for_function("() => pageEditor.viewer.viewport.getRotation() === 90")
    page.keyboard.press("Alt+r")
    page.wait_for_function("() => pageEditor.viewer.viewport.getRotation(true) === 180")
    ui.shot(page, "21b-editor-rotated")
    page.keyboard.press("Alt+r")
    page.keyboard.press("Alt+r")
    page.wait_for_function("() => pageEditor.viewer.viewport.getRotation() === 0")
    page.get_by_role("button", name="Whole page").click()
    page.wait_for_function("z => pageEditor.viewer.viewport.getZoom() < z * 0.95", arg=fitted)

    # The layout: beside by default, above once chosen, and still above after a reload.
    viewer, box = page.locator("#viewer"), page.get_by_role("textbox", name="Page text")
    assert box.bounding_box()["x"] > viewer.bounding_box()["x"] + viewer.bounding_box()["width"] - 1
    page.get_by_role("button", name="Image above").click()
    expect(page.get_by_role("button", name="Image beside")).to_be_visible()
    page.reload()
    expect(page.locator("#viewer")).to_have_attribute("data-state", "ready")
    expect(page.get_by_role("button", name="Image beside")).to_be_visible()
    scan_box, text_box = viewer.bounding_box(), box.bounding_box()
    assert text_box["y"] >= scan_box["y"] + scan_box["height"] - 1, (scan_box, text_box)
    # The zoom chosen (whole page) was remembered too.
    assert settled_zoom(page) < fitted * 0.95
    ui.shot(page, "22-editor-image-above")
    page.keyboard.press("Alt+L")
    expect(page.get_by_role("button", name="Image above")).to_be_visible()
    page.keyboard.press("Alt+0")


def test_touch_pinch_zooms_the_scan(ui, editors, scan_project):
    """A two-finger pinch on a touch screen zooms the scan (Chromium's own synthesized pinch,
    through the DevTools protocol)."""
    slug = scan_project("editor-touch")
    context = ui.browser.new_context(
        base_url=ui.base_url, viewport={"width": 1280, "height": 900}, has_touch=True
    )
    ui.contexts.append(context)
    page = context.new_page()
    ui.sign_in(page, next(iter(editors)))
    page.goto(f"/proofing/{slug}/1/")
    expect(page.locator("#viewer")).to_have_attribute("data-state", "ready")
    before = settled_zoom(page)
    box = page.locator("#viewer").bounding_box()
    cdp = context.new_cdp_session(page)
    cdp.send(
        "Input.synthesizePinchGesture",
        {
            "x": box["x"] + box["width"] / 2,
            "y": box["y"] + box["height"] / 2,
            "scaleFactor": 2.0,
            "gestureSourceType": "touch",
        },
    )
    page.wait_for_function("z => pageEditor.viewer.viewport.getZoom() > z * 1.2", arg=before)


def test_caret_and_scan_lines_follow_each_other(ui, editors, scan_project):
    """The caret's line is highlighted on the scan; clicking a line on the scan puts the caret
    on it; after a line is added the highlight follows the alignment, and the new line, which
    has no OCR line, highlights nothing."""
    slug = scan_project("editor-lines")
    page = open_editor(ui, editors, slug)
    viewer = page.locator("#viewer")
    expect(page.locator(".ocr-line")).to_have_count(len(SCAN_LINES))
    box = page.get_by_role("textbox", name="Page text")
    expect(box).to_be_focused()
    expect(viewer).to_have_attribute("data-current-line", "0")

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(viewer).to_have_attribute("data-current-line", "2")
    expect(page.locator(".ocr-line.current")).to_have_attribute("data-line", "2")
    ui.shot(page, "23-editor-caret-line-highlighted")

    target = page.locator('.ocr-line[data-line="4"]').bounding_box()
    page.mouse.click(target["x"] + target["width"] / 2, target["y"] + target["height"] / 2)
    assert caret_line(page) == 4
    expect(box).to_be_focused()
    expect(viewer).to_have_attribute("data-current-line", "4")

    # A new first line: the server re-aligns, the old lines keep their OCR lines.
    page.keyboard.press("Control+Home")
    page.keyboard.type("A heading the OCR never saw\n")
    page.wait_for_function("() => pageEditor.lineMap()[0] === null")
    assert page.evaluate("() => pageEditor.lineMap()") == [None, 0, 1, 2, 3, 4, 5]
    expect(viewer).to_have_attribute("data-current-line", "0")  # caret on old line 0, now 1
    page.keyboard.press("ArrowUp")
    expect(viewer).to_have_attribute("data-current-line", "")
    expect(page.locator(".ocr-line.current")).to_have_count(0)


def test_status_rule_with_two_readers(ui, editors, scan_project, stack):
    """The first reader may not confirm their own work: proofread twice is refused to them
    with the reason, their text kept; the second reader may."""
    slug = scan_project("editor-status")
    first, second = editors
    page = open_editor(ui, editors, slug, user=first)
    box = page.get_by_role("textbox", name="Page text")
    box.press("End")
    page.keyboard.type(" corrected")
    page.get_by_label("Proofread once").check()
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status")).to_contain_text("Page 1 saved")
    expect(page.get_by_label("Proofread once")).to_be_checked()

    typed = SCAN_LINES[0] + " corrected twice"
    box.fill(typed + "\n" + "\n".join(SCAN_LINES[1:]))
    page.get_by_label("Proofread twice").check()
    ui.expected_statuses.add(422)
    page.get_by_role("button", name="Save", exact=True).click()
    refusal = page.locator("#refusal")
    expect(refusal).to_contain_text("someone else must confirm it")
    expect(box).to_have_value(re.compile("^" + re.escape(typed)))
    ui.shot(page, "24-editor-status-refused")
    assert page_row(stack, slug, 1).status == "proofread-once"

    other = open_editor(ui, editors, slug, user=second)
    other.get_by_label("Proofread twice").check()
    other.get_by_role("button", name="Save", exact=True).click()
    expect(other.get_by_role("status")).to_contain_text("Page 1 saved")
    expect(other.get_by_label("Proofread twice")).to_be_checked()
    assert page_row(stack, slug, 1).status == "proofread-twice"


def test_transliteration_typing_conversion_and_palette(ui, editors, scan_project):
    """In a Sanskrit project transliteration is on: 'dharma ' typed in Harvard-Kyoto gives
    'धर्म ', ITRANS multi-key letters come out whole, a selection converts between schemes,
    the palette inserts an avagraha, and Alt+T turns it all off."""
    slug = scan_project("editor-sanskrit", language="san")
    page = open_editor(ui, editors, slug)
    toggle = page.get_by_role("button", name=re.compile("^Transliteration"))
    expect(toggle).to_have_attribute("aria-pressed", "true")
    box = page.get_by_role("textbox", name="Page text")
    box.fill("")
    page.keyboard.type("dharma ")
    expect(box).to_have_value("धर्म ")
    page.keyboard.type("kSetre")
    expect(box).to_have_value("धर्म क्षेत्रे")
    page.keyboard.press("Backspace")
    expect(box).to_have_value("धर्म क्षेत्र्")  # the buffer shrinks: 'kSetr'

    page.get_by_label("Input scheme").select_option("itrans")
    page.keyboard.press("Enter")
    page.keyboard.type("kShetre R^iShiH")
    expect(box).to_have_value("धर्म क्षेत्र्\nक्षेत्रे ऋषिः")

    # The palette puts its character at the caret.
    page.get_by_role("button", name="Insert avagraha").click()
    expect(box).to_have_value("धर्म क्षेत्र्\nक्षेत्रे ऋषिःऽ")
    expect(box).to_be_focused()
    ui.shot(page, "25-editor-transliteration")

    # Off: keys are letters again.
    page.keyboard.press("Alt+t")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    page.keyboard.type(" rAmaH")
    expect(box).to_have_value("धर्म क्षेत्र्\nक्षेत्रे ऋषिःऽ rAmaH")

    # The selection converted from Harvard-Kyoto to Devanagari, and back to IAST.
    page.evaluate(
        "() => { const b = document.getElementById('page-text');"
        " b.setSelectionRange(b.value.length - 5, b.value.length); }"
    )
    page.get_by_label("Convert from").select_option("hk")
    page.get_by_label("Convert to").select_option("script")
    page.get_by_role("button", name="Convert", exact=True).click()
    expect(box).to_have_value("धर्म क्षेत्र्\nक्षेत्रे ऋषिःऽ रामः")
    page.get_by_label("Convert from").select_option("script")
    page.get_by_label("Convert to").select_option("iast")
    page.keyboard.press("Alt+c")
    expect(box).to_have_value("धर्म क्षेत्र्\nक्षेत्रे ऋषिःऽ rāmaḥ")


def test_a_tamil_project_types_tamil(ui, editors, scan_project):
    """The script is the project's language's: Harvard-Kyoto typed in a Tamil book is Tamil,
    and the palette offers the visarga (aytham) in Tamil."""
    slug = scan_project("editor-tamil", language="tam")
    page = open_editor(ui, editors, slug)
    expect(page.get_by_role("button", name=re.compile("^Transliteration"))).to_have_attribute(
        "aria-pressed", "true"
    )
    box = page.get_by_role("textbox", name="Page text")
    box.fill("")
    page.keyboard.type("dharma ")
    expect(box).to_have_value("தர்ம ")
    page.get_by_role("button", name="Insert visarga").click()
    expect(box).to_have_value("தர்ம ஃ")


def test_shortcuts_and_help(ui, editors, scan_project, stack):
    """Ctrl+S saves, Ctrl+Enter saves and goes to the next page, Alt+PageUp/PageDown move
    between pages, Alt+1..4 choose the status, and the help lists them, opened by '?' outside
    the text box and by Alt+/ inside it: a page done without the mouse."""
    slug = scan_project("editor-keys", pages=3)
    page = open_editor(ui, editors, slug)
    box = page.get_by_role("textbox", name="Page text")
    expect(box).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.type(", by keyboard")
    page.keyboard.press("Alt+2")
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status")).to_contain_text("Page 1 saved")
    saved = page_row(stack, slug, 1)
    assert saved.text.startswith(SCAN_LINES[0] + ", by keyboard")
    assert saved.status == "proofread-once"

    # '?' in the text box is a question mark; Alt+/ opens the help there.
    expect(box).to_be_focused()
    page.keyboard.type("?")
    expect(page.locator("#help")).not_to_be_visible()
    page.keyboard.press("Backspace")
    page.keyboard.press("Alt+Slash")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Save and go to the next page")
    expect(help_dialog).to_contain_text("Alt+T")
    ui.shot(page, "26-editor-help")
    page.keyboard.press("Escape")
    expect(help_dialog).not_to_be_visible()
    expect(box).to_be_focused()
    # Outside the text box, '?' opens it.
    page.get_by_role("button", name="Fit width").focus()
    page.keyboard.press("Shift+Slash")
    expect(help_dialog).to_be_visible()
    page.keyboard.press("Escape")

    page.keyboard.press("Alt+PageDown")
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/2/$"))
    expect(page.get_by_role("textbox", name="Page text")).to_be_focused()
    page.wait_for_function("() => window.pageEditor !== undefined")
    page.keyboard.press("Alt+PageUp")
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/1/$"))
    # Shortcuts work once editor.js has run (it sets window.pageEditor last): keys pressed on a
    # page still loading go nowhere.
    page.wait_for_function("() => window.pageEditor !== undefined")
    page.keyboard.press("Alt+PageDown")
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/2/$"))
    page.wait_for_function("() => window.pageEditor !== undefined")
    page.keyboard.type("Page two. ")
    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/3/$"))
    expect(page.get_by_role("status")).to_contain_text("Page 2 saved")
    assert page_row(stack, slug, 2).text.startswith("Page two. ")


def test_leaving_with_unsaved_text_asks_first(ui, editors, scan_project):
    """A link away from a changed page asks before leaving; saving does not ask."""
    slug = scan_project("editor-unsaved")
    page = open_editor(ui, editors, slug)
    asked = []

    def on_dialog(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.keyboard.type("Unsaved words ")
    # The click returns once the prompt it raised was answered (dismissed: stay).
    page.get_by_role("link", name="next →").click()
    assert asked == ["beforeunload"]
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/1/$"))
    expect(page.get_by_role("textbox", name="Page text")).to_have_value(
        re.compile("^Unsaved words ")
    )
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status")).to_contain_text("Page 1 saved")
    page.get_by_role("link", name="next →").click()
    expect(page).to_have_url(re.compile(rf"/proofing/{slug}/2/$"))
    assert asked == ["beforeunload"]  # no second prompt


def test_ocr_again_shows_a_diff_to_accept_or_discard(ui, editors, scan_project, stack):
    """'OCR this page again' runs the page through the stack's worker (Tesseract), shows the
    new text as a diff against the box, never touches the box until Accept, and Accept puts
    the new text in the box without saving it; Discard leaves the box as it is."""
    slug = scan_project("editor-reocr")
    page = open_editor(ui, editors, slug)
    box = page.get_by_role("textbox", name="Page text")
    mine = "My own first line\n" + "\n".join(SCAN_LINES[1:])
    box.fill(mine)

    page.get_by_role("button", name="OCR this page again").click()
    panel = page.locator("#reocr")
    expect(page.get_by_role("button", name="Accept the new OCR text")).to_be_visible(
        timeout=REOCR_TIMEOUT_MS
    )
    diff = page.locator("#reocr-diff")
    expect(diff.locator("del").first).to_be_visible()
    # Struck: words only in the box; underlined: words only in the new OCR.
    assert {"My", "own"} <= set(" ".join(diff.locator("del").all_inner_texts()).split())
    assert "quick" in " ".join(diff.locator("ins").all_inner_texts()).split()
    expect(panel).to_contain_text("words out")
    expect(box).to_have_value(mine)  # nothing is put in the box before Accept
    ui.shot(page, "27-editor-reocr-diff")

    # Discard: the box is as it was.
    page.get_by_role("button", name="Discard it").click()
    expect(panel).to_be_hidden()
    expect(box).to_have_value(mine)

    # Again, and Accept: the box holds the new OCR text, not saved until Save.
    page.keyboard.press("Alt+o")
    accept = page.get_by_role("button", name="Accept the new OCR text")
    expect(accept).to_be_visible(timeout=REOCR_TIMEOUT_MS)
    accept.click()
    expect(panel).to_contain_text("not saved until you save")
    new_text = box.input_value()
    assert new_text != mine
    assert "Pack my box" in new_text and "My own" not in new_text
    assert page_row(stack, slug, 1).text == "\n".join(SCAN_LINES)
    ui.shot(page, "28-editor-reocr-accepted")
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status")).to_contain_text("Page 1 saved")
    assert page_row(stack, slug, 1).text == new_text.replace("\r\n", "\n")
