"""Message templates: every placeholder, JSON that stays JSON, and errors before anything is sent."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from broadcast_cli.client.templates import PLACEHOLDERS, Template, Values, format_uuid
from broadcast_cli.exceptions import InvalidRequest

NOW_NS = 1_795_496_779_184_123_456
"""2026-11-24T… UTC, with milliseconds (184) and more."""


def values(index: int = 0, seed: int = 7, time_ns: int = NOW_NS) -> Values:
    return Values(index, time_ns, random.Random(seed))


def render_json(source: str, index: int = 0) -> object:
    return orjson.loads(Template.json(source).render(values(index)))


def test_count_and_index() -> None:
    template = Template.text("shard.{{count}}.{{index}}")
    assert [template.render(values(index)) for index in range(3)] == ["shard.1.0", "shard.2.1", "shard.3.2"]


def test_the_time_placeholders_give_one_instant() -> None:
    rendered = render_json('{"ms": {{timestamp}}, "s": {{unix}}, "iso": {{iso}}}')
    assert rendered == {"ms": 1_795_496_779_184, "s": 1_795_496_779, "iso": "2026-11-24T05:06:19.184Z"}
    parsed = datetime.fromisoformat("2026-11-24T05:06:19.184+00:00")
    assert parsed == datetime.fromtimestamp(1_795_496_779.184, UTC)


def test_random_draws_from_the_generator_given() -> None:
    expected = random.Random(7)
    first, second = expected.random(), expected.random()
    assert render_json("[{{random}}, {{random}}]") == [first, second]
    assert all(0 <= value < 1 for value in (first, second))


@given(low=st.integers(-1000, 1000), span=st.integers(0, 1000), seed=st.integers(0, 2**32))
def test_random_between_stays_within_its_bounds(low: int, span: int, seed: int) -> None:
    high = low + span
    value = int(Template.text(f"{{{{random({low},{high})}}}}").render(values(seed=seed)))
    assert low <= value <= high


def test_random_between_reaches_both_bounds() -> None:
    template = Template.text("{{ random( 1 , 3 ) }}")
    generator = Values(0, NOW_NS, random.Random(1))
    assert {template.render(generator) for _ in range(200)} == {"1", "2", "3"}


def test_uuids_are_version_4_and_distinct() -> None:
    template = Template.text("{{uuid}}")
    generator = Values(0, NOW_NS, random.Random(3))
    made = [template.render(generator) for _ in range(1000)]
    assert len(set(made)) == 1000
    for text in made[:50]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


@given(bits=st.integers(0, 2**128 - 1))
def test_format_uuid_sets_only_the_version_and_variant(bits: int) -> None:
    parsed = uuid.UUID(format_uuid(bits))
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    keep = ~((0xF000 << 64) | (0xC000 << 48)) & (2**128 - 1)
    assert parsed.int & keep == bits & keep


def test_inside_a_json_string_a_value_is_string_content() -> None:
    rendered = render_json('{"label": "order-{{count}}-{{uuid}}", "at": "{{iso}}"}', index=4)
    assert isinstance(rendered, dict)
    assert re.fullmatch(r"order-5-[0-9a-f-]{36}", rendered["label"])
    assert rendered["at"] == "2026-11-24T05:06:19.184Z"


def test_outside_strings_a_string_value_is_quoted_and_a_number_is_not() -> None:
    rendered = render_json('{"id": {{uuid}}, "n": {{count}}, "items": [{{index}}, {{iso}}]}', index=1)
    assert isinstance(rendered, dict)
    assert isinstance(rendered["id"], str) and uuid.UUID(rendered["id"]).version == 4
    assert rendered["n"] == 2
    assert rendered["items"] == [1, "2026-11-24T05:06:19.184Z"]


@pytest.mark.parametrize(
    "source",
    [
        r'{"a": "quote \" {{count}}", "b": {{iso}}}',  # an escaped quote does not end the string
        r'{"a": "backslash \\", "b": {{iso}}}',  # an escaped backslash does not escape the quote after it
        r'{"a": "\\\" {{count}}", "b": {{iso}}}',
    ],
)
def test_escapes_in_strings_are_followed(source: str) -> None:
    rendered = render_json(source)
    assert isinstance(rendered, dict) and rendered["b"] == "2026-11-24T05:06:19.184Z"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=8,
    ),
    st.sampled_from(["{{uuid}}", "{{iso}}", "{{count}}", "{{random}}", "{{random(-5,5)}}", "{{unix}}"]),
    st.booleans(),
)
def test_a_template_of_valid_json_renders_valid_json(value: object, placeholder: str, in_string: bool) -> None:
    text = orjson.dumps(value).decode()
    assume("{{" not in text)  # braces in the data are written {{"{{"}} in a template
    inserted = f'"x{placeholder}"' if in_string else placeholder
    source = f"[{text}, {inserted}]"
    rendered = render_json(source)
    assert isinstance(rendered, list) and rendered[0] == value


def test_quoted_text_is_written_as_it_is() -> None:
    assert render_json('{"mustache": "{{"{{"}} name }}", "n": {{ "}}" }}}') == {"mustache": "{{ name }}", "n": "}}"}
    assert Template.text('a{{""}}b').render(values()) == "ab"


def test_a_template_without_placeholders_is_fixed() -> None:
    template = Template.json('{"a": "{ not } a placeholder"}')
    assert template.fixed and template.source == '{"a": "{ not } a placeholder"}'
    assert template.render(values()) == template.source
    assert not Template.text("{{count}}").fixed


def test_every_placeholder_listed_is_known() -> None:
    for placeholder in PLACEHOLDERS:
        Template.text(placeholder.replace("MIN,MAX", "1,2"))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{name}}", "unknown placeholder {{name}} in the channel: the placeholders are {{count}}, {{index}}"),
        ("{{Count}}", "unknown placeholder {{Count}} in the channel"),
        ("{{count(1)}}", "{{count(1)}} in the channel: {{count}} takes no arguments"),
        ("{{random(1)}}", "{{random(1)}} in the channel needs two integers, e.g. {{random(1,100)}}"),
        ("{{random(1,2,3)}}", "needs two integers"),
        ("{{random(a,b)}}", "needs two integers"),
        ("{{random(1.5,2)}}", "needs two integers"),
        ("{{random(9,1)}}", "{{random(9,1)}} in the channel: MIN is above MAX"),
        ("a.{{count", "the channel has {{ that opens no placeholder at character 3 ('{{count')"),
        ("{{}}", "opens no placeholder at character 1"),
        ("{{{count}}}", "opens no placeholder at character 1"),
    ],
)
def test_a_wrong_placeholder_is_an_error_naming_it(source: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Template.text(source, "the channel")
    assert message in str(raised.value)
    assert raised.value.code == "invalid_template"


def test_the_default_names_say_what_holds_the_template() -> None:
    with pytest.raises(InvalidRequest, match="in the payload"):
        Template.json("{{x}}")
    with pytest.raises(InvalidRequest, match="in the text"):
        Template.text("{{x}}")
