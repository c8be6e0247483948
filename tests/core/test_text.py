"""shown(): text from files is escaped for display, never changed where it is stored."""

from __future__ import annotations

import json
import time
import unicodedata

import pytest

from modelmanager.core.text import json_shown, shown


@pytest.mark.parametrize(
    ("raw", "visible"),
    [
        ("a\x1b[31mred", "a\\x1b[31mred"),  # Cc: ESC, a terminal colour sequence
        ("a\x00b\x7f", "a\\x00b\\x7f"),  # Cc: NUL and DEL
        ("one\ntwo\rthree\tfour", "one\\ntwo\\rthree\\tfour"),  # the named controls
        ("next\x85line", "next\\x85line"),  # NEL, a C1 control
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # Cf: right-to-left override
        ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),  # embeddings, PDF
        ("\u2066x\u2067y\u2068z\u2069", "\\u2066x\\u2067y\\u2068z\\u2069"),  # isolates
        ("zero\u200bwidth\u200d\ufeff", "zero\\u200bwidth\\u200d\\ufeff"),  # ZW chars, BOM
        ("tag\U000e0041", "tag\\U000e0041"),  # Cf beyond the BMP: a tag character
        ("line\u2028sep", "line\\u2028sep"),  # Zl
        ("para\u2029sep", "para\\u2029sep"),  # Zp
        ("lone\udc80surrogate\ud83d", "lone\\udc80surrogate\\ud83d"),  # Cs
    ],
)
def test_each_hidden_class_is_escaped(raw: str, visible: str) -> None:
    assert shown(raw) == visible
    assert shown(raw).isascii()


@pytest.mark.parametrize(
    "text",
    [
        "model.layers.0.self_attn.q_proj.weight",
        "日本語のモデル/重み",
        "café é ñ ß",
        "Ελληνικά кириллица עברית العربية",  # right-to-left letters are text, not controls
        "emoji 🤗 and a\xa0no-break space\u3000wide space",
        "back\\slash C:\\models",
        "",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert shown(text) == text


def test_the_rule_matches_the_unicode_categories_for_every_code_point() -> None:
    hidden = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    wrong = [
        hex(c)
        for c in range(0x110000)
        if (unicodedata.category(chr(c)) in hidden) == (shown(chr(c)) == chr(c))
    ]
    assert wrong == []


def test_escaped_text_is_one_printable_line() -> None:
    hidden = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    raw = "".join(chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in hidden)
    out = shown(raw)
    assert out.isascii()
    assert out.isprintable()


def test_a_hundred_thousand_names_take_well_under_a_second() -> None:
    plain = [f"model.layers.{i}.mlp.down_proj.weight" for i in range(100_000)]
    hostile = [f"層.{i}.\u202eweight\u2028\x1b" for i in range(100_000)]
    start = time.perf_counter()
    assert [shown(n) for n in plain] == plain
    out = [shown(n) for n in hostile]
    assert time.perf_counter() - start < 2.0  # measured 0.02 s + 0.16 s on the dev machine
    assert out[7] == "層.7.\\u202eweight\\u2028\\x1b"


def test_json_keeps_every_string_exact_and_no_hidden_character_raw() -> None:
    doc = {
        "evil\u202etxt": ["line\u2028sep", "next\x85line", "esc\x1b[2J", "del\x7f"],
        "tag\U000e0041": "zero\u200bwidth\ufeff",
        "日本語": "é",
        "lone": "\udc80",
    }
    text = json_shown(json.dumps(doc, indent=2, ensure_ascii=False))
    assert json.loads(text) == doc
    hidden = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    assert [ch for ch in text if ch != "\n" and unicodedata.category(ch) in hidden] == []
    assert "日本語" in text  # readable names stay readable
    assert "\\u202e" in text
    assert "\\udb40\\udc41" in text  # beyond the BMP: a JSON surrogate pair
