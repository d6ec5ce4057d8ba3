"""Books in the forms real scans come in, made reproducibly from the corpus.

Library scans arrive as bilevel (1-bit) multi-page TIFFs, as PDFs of CCITT or JBIG2 pages,
and as folders of greyscale page images. Each function here writes one such book into a
given directory from the scans of tests/fixtures/corpus, so that the benchmark and the tests
measure on the forms users upload, not only on the PDF the corpus happens to hold.

The Devanagari page is drawn with Pillow (Raqm shaping) and a Noto font from Debian's
fonts-noto-core, and comes with the text that drew it, as ground truth for `san` and `hin`.
The same arguments always give the same pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

from tests.support import CORPUS

#: Resolution of the bilevel books: the JBIG2 scans of linn.pdf and skew.pdf are 300 DPI.
BILEVEL_DPI = 300
#: Grey level below which a pixel of a greyscale scan is ink, when thresholded to 1 bit.
THRESHOLD = 160
DEVANAGARI_FONT = Path("/usr/share/fonts/truetype/noto/NotoSerifDevanagari-Regular.ttf")
#: Bhagavad Gita 1.1-6 and 2.47 (public domain), one verse half a line.
DEVANAGARI_TEXT = """\
धृतराष्ट्र उवाच ।
धर्मक्षेत्रे कुरुक्षेत्रे समवेता युयुत्सवः ।
मामकाः पाण्डवाश्चैव किमकुर्वत सञ्जय ॥ १ ॥
सञ्जय उवाच ।
दृष्ट्वा तु पाण्डवानीकं व्यूढं दुर्योधनस्तदा ।
आचार्यमुपसङ्गम्य राजा वचनमब्रवीत् ॥ २ ॥
पश्यैतां पाण्डुपुत्राणामाचार्य महतीं चमूम् ।
व्यूढां द्रुपदपुत्रेण तव शिष्येण धीमता ॥ ३ ॥
अत्र शूरा महेष्वासा भीमार्जुनसमा युधि ।
युयुधानो विराटश्च द्रुपदश्च महारथः ॥ ४ ॥
धृष्टकेतुश्चेकितानः काशिराजश्च वीर्यवान् ।
पुरुजित्कुन्तिभोजश्च शैब्यश्च नरपुङ्गवः ॥ ५ ॥
युधामन्युश्च विक्रान्त उत्तमौजाश्च वीर्यवान् ।
सौभद्रो द्रौपदेयाश्च सर्व एव महारथाः ॥ ६ ॥
कर्मण्येवाधिकारस्ते मा फलेषु कदाचन ।
मा कर्मफलहेतुर्भूर्मा ते सङ्गोऽस्त्वकर्मणि ॥ ४७ ॥
"""
#: The text pages of the corpus a bilevel book is made of, in this order, then repeated.
TEXT_PAGES = ("linn.pdf", "skew.pdf", "francais.pdf", "c02-22.pdf", "devanagari")


def devanagari_page(
    *, dpi: int = BILEVEL_DPI, ink: tuple[int, int, int] = (0, 0, 0), paper=(255, 255, 255)
) -> tuple[Image.Image, str]:
    """An A4 page of Sanskrit at `dpi` (12 pt Noto Serif Devanagari) and its text.

    The image is "L" when ink and paper are grey, else "RGB" (a coloured scan)."""
    if not DEVANAGARI_FONT.is_file():
        raise FileNotFoundError(f"{DEVANAGARI_FONT} is missing: apt-get install fonts-noto-core")
    mode = "L" if len(set(ink)) == 1 and len(set(paper)) == 1 else "RGB"
    size = (round(8.27 * dpi), round(11.69 * dpi))
    image = Image.new(mode, size, paper[0] if mode == "L" else paper)
    font = ImageFont.truetype(str(DEVANAGARI_FONT), round(12 * dpi / 72))
    draw = ImageDraw.Draw(image)
    lines = DEVANAGARI_TEXT.splitlines()
    y, margin = dpi, dpi
    for line in lines:
        draw.text((margin, y), line, fill=ink[0] if mode == "L" else ink, font=font)
        y += round(font.size * 1.9)
    return image, "\n".join(lines) + "\n"


def write_devanagari_page(directory: Path, **options) -> tuple[Path, Path]:
    """devanagari.png (with its DPI) and devanagari.txt, its ground truth, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    image, text = devanagari_page(**options)
    dpi = options.get("dpi", BILEVEL_DPI)
    png, txt = directory / "devanagari.png", directory / "devanagari.txt"
    image.save(png, dpi=(dpi, dpi))
    txt.write_text(text, encoding="utf-8")
    return png, txt


def grey_text_page(name: str) -> Image.Image:
    """Text page `name` of TEXT_PAGES as a greyscale image at BILEVEL_DPI.

    The corpus pages are rendered whole, so skew.pdf keeps its skew (its scan is linn.pdf's,
    drawn turned)."""
    if name == "devanagari":
        image, _ = devanagari_page()
        return image
    pdf = pdfium.PdfDocument(str(CORPUS / name))
    try:
        page = pdf[0]
        image = page.render(scale=BILEVEL_DPI / 72, grayscale=True).to_pil().convert("L")
        page.close()
        return image
    finally:
        pdf.close()


def bilevel_pages(count: int) -> Iterator[Image.Image]:
    """`count` 1-bit pages at BILEVEL_DPI: TEXT_PAGES thresholded, in order, repeated."""
    for n in range(count):
        grey = grey_text_page(TEXT_PAGES[n % len(TEXT_PAGES)])
        yield grey.point(lambda level: 255 if level >= THRESHOLD else 0).convert("1")


def write_g4_tiff(directory: Path, pages: int = len(TEXT_PAGES)) -> Path:
    """book.tif: `pages` bilevel pages, CCITT Group 4, 300 DPI, one strip per page."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "book.tif"
    frames = list(bilevel_pages(pages))
    frames[0].save(
        out,
        save_all=True,
        append_images=frames[1:],
        compression="group4",
        dpi=(BILEVEL_DPI, BILEVEL_DPI),
        # One strip per page: img2pdf then embeds the Group 4 data as it is.
        strip_size=max(f.width * f.height for f in frames),
    )
    return out


def write_ccitt_pdf(directory: Path, pages: int = len(TEXT_PAGES)) -> Path:
    """book.pdf: the pages of write_g4_tiff, each one full-page CCITT G4 image at its DPI."""
    import img2pdf  # the benchmark's and tests' dependency, not the app's

    tiff = write_g4_tiff(directory / "g4", pages)
    out = directory / "book.pdf"
    out.write_bytes(img2pdf.convert(str(tiff), rotation=img2pdf.Rotation.ifvalid))
    return out


def write_grey_folder(directory: Path, pages: int = len(TEXT_PAGES)) -> Path:
    """A folder of greyscale PNG pages (page1.png ... pageN.png) with their DPI in pHYs.

    Named without leading zeros, as scanners and cameras often name them, so that only a
    natural sort puts page2 before page10."""
    folder = directory / "grey-pages"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(pages):
        image = grey_text_page(TEXT_PAGES[n % len(TEXT_PAGES)])
        image.save(folder / f"page{n + 1}.png", dpi=(BILEVEL_DPI, BILEVEL_DPI))
    return folder
