"""Tesseract's language codes as the tags and names XML formats want.

Projects name their languages as Tesseract does ("san", "eng+san", "chi_sim"): ISO 639-2 codes
with a few suffixes. xml:lang and TEI's langUsage want BCP 47 tags, which use the two-letter
ISO 639-1 code where there is one ("sa", not "san"), and a readable name.
"""

from __future__ import annotations

import re

#: Tesseract code: (BCP 47 tag, English name). The languages of Tesseract's tessdata that
#: scanned books of this project's kind are in; any other code is passed through (a
#: three-letter ISO 639 code is a valid BCP 47 tag when no two-letter one exists).
_LANGUAGES = {
    "asm": ("as", "Assamese"),
    "ben": ("bn", "Bengali"),
    "bod": ("bo", "Tibetan"),
    "chi_sim": ("zh-Hans", "Chinese (simplified)"),
    "chi_tra": ("zh-Hant", "Chinese (traditional)"),
    "deu": ("de", "German"),
    "ell": ("el", "Greek"),
    "eng": ("en", "English"),
    "fra": ("fr", "French"),
    "frk": ("de-Latf", "German (Fraktur)"),
    "grc": ("grc", "Ancient Greek"),
    "guj": ("gu", "Gujarati"),
    "hin": ("hi", "Hindi"),
    "ita": ("it", "Italian"),
    "kan": ("kn", "Kannada"),
    "lat": ("la", "Latin"),
    "mal": ("ml", "Malayalam"),
    "mar": ("mr", "Marathi"),
    "nep": ("ne", "Nepali"),
    "ori": ("or", "Oriya"),
    "pan": ("pa", "Punjabi"),
    "pli": ("pi", "Pali"),
    "por": ("pt", "Portuguese"),
    "rus": ("ru", "Russian"),
    "san": ("sa", "Sanskrit"),
    "sin": ("si", "Sinhala"),
    "spa": ("es", "Spanish"),
    "tam": ("ta", "Tamil"),
    "tel": ("te", "Telugu"),
    "urd": ("ur", "Urdu"),
}
_SUBTAG = re.compile(r"[a-z]{2,3}")


def split_codes(language: str) -> list[str]:
    """ "eng+san" as ["eng", "san"]."""
    return [code for code in (part.strip() for part in language.split("+")) if code]


def bcp47(code: str) -> str:
    """The BCP 47 tag of a Tesseract language code; "und" (undetermined) when there is none."""
    if code in _LANGUAGES:
        return _LANGUAGES[code][0]
    base = code.split("_")[0].lower()
    if base in _LANGUAGES:
        return _LANGUAGES[base][0]
    return base if _SUBTAG.fullmatch(base) else "und"


def name(code: str) -> str:
    """The language's English name, or the code itself when this module does not know it."""
    known = _LANGUAGES.get(code) or _LANGUAGES.get(code.split("_")[0].lower())
    return known[1] if known else code
