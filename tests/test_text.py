"""fluxserve.text: the one check for text nothing downstream can encode, and the read-side scrub."""

from __future__ import annotations

from fluxserve.text import MAX_NESTING, find_bad_value, scrub


def test_lone_surrogates_and_nul_are_found_with_the_field_path() -> None:
    assert find_bad_value({"prompt": "ok", "x": ["fine", {"deep": "\udc00 hi"}]}) == (
        "x[1].deep",
        find_bad_value("\udc00 hi", "x[1].deep")[1],
    )
    path, reason = find_bad_value({"prompt": "cut emoji \ud83d"})
    assert path == "prompt" and "lone UTF-16 surrogate (\\ud83d) at position 10" in reason
    path, reason = find_bad_value({"callbackUrl": "http://a/\x00"})
    assert path == "callbackUrl" and "NUL" in reason
    path, reason = find_bad_value({"\udc00key": "v"})
    assert path == "\\udc00key" and reason.startswith("the name")
    reason.encode("utf-8")  # the message itself is always sendable
    path.encode("utf-8")


def test_valid_text_passes_including_real_emoji_and_control_free_unicode() -> None:
    assert find_bad_value({"prompt": "🦊 a fox in Zürich, 狐", "n": 5, "l": [1.5, None, True]}) is None


def test_nesting_is_limited_without_recursion() -> None:
    deep: object = "leaf"
    for _ in range(5000):
        deep = [deep]
    path, reason = find_bad_value({"field": deep})
    assert path.startswith("field") and f"nested more than {MAX_NESTING} levels" in reason


def test_scrub_replaces_bad_characters_everywhere() -> None:
    value = {"p\udc00": ["a\x00b", {"k": "\ud800"}], "n": 3}
    assert scrub(value) == {"p\ufffd": ["a\ufffdb", {"k": "\ufffd"}], "n": 3}
    assert scrub("plain") == "plain"
