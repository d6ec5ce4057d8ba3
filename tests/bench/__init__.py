"""The speed benchmark (`make bench`): the floor, OCRmyPDF and this system on the same book.

`python -m tests.bench.run` measures and writes docs/performance.md; nothing here is a test.
"""
