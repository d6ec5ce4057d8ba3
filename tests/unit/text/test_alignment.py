"""Text lines follow OCR lines through corrections, merges, splits, insertions and deletions,
in Latin and in Devanagari."""

from __future__ import annotations

from app.text.alignment import align_lines, line_map, ocr_lines, similarity


def boxes_for(lines: list[str]) -> list[list]:
    """Word boxes as an engine gives them: one row of words per line, 40 px apart."""
    boxes = []
    for number, line in enumerate(lines):
        left = 10
        for word in line.split():
            boxes.append([word, left, 10 + 40 * number, 10 * len(word), 30, 90.0, number])
            left += 10 * len(word) + 8
    return boxes


OCR = ["The quick brovvn fox", "jumps over the lazy", "dog near the river", "bank at dawn."]
SANSKRIT = ["धर्मक्षेत्रे कुरुक्षेत्रे", "समवेता युयुत्सवः", "मामकाः पाण्डवाश्चैव", "किमकुर्वत सञ्जय"]


def test_an_untouched_text_maps_line_for_line():
    assert align_lines(OCR, ocr_lines(boxes_for(OCR))) == [0, 1, 2, 3]


def test_corrected_words_keep_their_line():
    corrected = [
        "The quick brown fox",
        "jumps over the lazy",
        "dog near the river",
        "bank at dawn.",
    ]
    assert align_lines(corrected, ocr_lines(boxes_for(OCR))) == [0, 1, 2, 3]


def test_an_inserted_line_has_no_counterpart_and_the_rest_still_follow():
    edited = [
        "The quick brown fox",
        "A NOTE ADDED BY THE EDITOR",
        "jumps over the lazy",
        "dog near the river",
        "bank at dawn.",
    ]
    assert align_lines(edited, ocr_lines(boxes_for(OCR))) == [0, None, 1, 2, 3]


def test_a_deleted_line_leaves_the_others_on_their_lines():
    edited = ["The quick brown fox", "dog near the river", "bank at dawn."]
    assert align_lines(edited, ocr_lines(boxes_for(OCR))) == [0, 2, 3]


def test_two_lines_joined_map_to_one_of_them_and_blank_lines_to_none():
    edited = ["The quick brown fox jumps over the lazy", "", "dog near the river", "bank at dawn."]
    mapping = align_lines(edited, ocr_lines(boxes_for(OCR)))
    assert mapping[0] in (0, 1)
    assert mapping[1:] == [None, 2, 3]


def test_devanagari_lines_follow_through_corrections_and_a_deleted_line():
    edited = ["धर्मक्षेत्रे कुरुक्षेत्रे", "मामकाः पाण्डवाश्चैव", "किमकुर्वत सञ्जय ॥१॥"]
    assert align_lines(edited, ocr_lines(boxes_for(SANSKRIT))) == [0, 2, 3]


def test_unrelated_text_maps_to_nothing():
    assert align_lines(["zzzz qqqq", "xxxx"], ocr_lines(boxes_for(OCR))) == [None, None]


def test_boxes_without_line_numbers_are_grouped_by_where_they_stand():
    old = [box[:6] for box in boxes_for(OCR)]
    assert [line.text for line in ocr_lines(old)] == OCR


def test_line_map_gives_the_box_around_each_lines_words():
    mapped = line_map("The quick brown fox\nnothing like it at all", boxes_for(OCR))
    words = boxes_for(OCR)[:4]
    right = words[-1][1] + words[-1][3]
    assert mapped == [{"line": 0, "box": [10, 10, right - 10, 30]}, None]


def test_similarity_is_one_for_equal_lines_and_ignores_spacing():
    assert similarity("dog near", "dog  near") == 1.0
    assert similarity("abc", "xyz") == 0.0
