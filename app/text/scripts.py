"""Which script a project's text is typed in, for the editor's transliteration input.

Project.language is a Tesseract code or a `+`-joined list of them ("san", "hin+eng"). The
editor's input turns Harvard-Kyoto, ITRANS or IAST into the script of the first Indic language
of the project; the names are the scripts of Sanscript (app/static/vendor/sanscript), which
owns every scheme table.
"""

from __future__ import annotations

#: Tesseract language code -> the Sanscript script its text is written in.
INDIC_SCRIPTS = {
    "san": "devanagari",
    "hin": "devanagari",
    "mar": "devanagari",
    "nep": "devanagari",
    "pli": "devanagari",
    "tam": "tamil",
    "tel": "telugu",
    "kan": "kannada",
    "mal": "malayalam",
    "ben": "bengali",
    "asm": "assamese",
    "guj": "gujarati",
    "pan": "gurmukhi",
    "ori": "oriya",
    "sin": "sinhala",
    "script/Devanagari": "devanagari",
}

#: The input schemes offered, Sanscript's names and what the editor calls them.
INPUT_SCHEMES = {"hk": "Harvard-Kyoto", "itrans": "ITRANS", "iast": "IAST"}


def indic_script(language: str) -> str | None:
    """The script of the first Indic language in `language`, or None when it has none."""
    for code in language.split("+"):
        script = INDIC_SCRIPTS.get(code.strip())
        if script:
            return script
    return None
