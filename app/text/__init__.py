"""Working with a page's text: aligning it with OCR lines, and comparing versions of it."""
