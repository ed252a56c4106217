"""Saved contexts without files: the file's format, which context is in use, which value wins."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from broadcast_cli.cli.contexts import (
    Context,
    Contexts,
    Origin,
    choose,
    contexts_path,
    dump,
    parse,
    select,
    validate_name,
)
from broadcast_cli.exceptions import ConfigurationError

PROD = Context("prod", url="https://rt.example.com", token="eyJ.t.s", api_key="k" * 20, description="live")
LOCAL = Context("local", url="http://127.0.0.1:8000")


def test_a_file_round_trips_and_leaves_out_what_is_not_set() -> None:
    contexts = Contexts({"prod": PROD, "local": LOCAL}, current="prod")
    text = dump(contexts)
    assert orjson.loads(text) == {
        "current": "prod",
        "contexts": {
            "local": {"url": "http://127.0.0.1:8000"},
            "prod": {"url": "https://rt.example.com", "token": "eyJ.t.s", "api_key": "k" * 20, "description": "live"},
        },
    }
    assert parse(text) == contexts


@pytest.mark.parametrize("text", ["", "  \n", "{}", '{"contexts": {}}'])
def test_an_empty_file_holds_no_context(text: str) -> None:
    assert parse(text) == Contexts()


def test_a_current_context_that_is_gone_selects_none() -> None:
    assert parse('{"current": "gone", "contexts": {"a": {"url": "http://a:1"}}}').current is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{oops", "contexts.json is not valid JSON"),
        ("[]", 'contexts.json must hold a JSON object with "contexts"'),
        ('{"contexts": []}', 'contexts.json must hold a JSON object with "contexts"'),
        ('{"contexts": {"a": "http://a:1"}}', "contexts.json: context 'a' must be a JSON object"),
        ('{"contexts": {"a": {"url": 8000}}}', "contexts.json: 'url' of context 'a' must be a string"),
        ('{"contexts": {"a b": {}}}', "invalid context name 'a b'"),
    ],
)
def test_a_broken_file_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{message}"):
        parse(text)


@pytest.mark.parametrize("name", ["prod", "eu-west.1", "A_b", "x" * 64])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a/b", "x" * 65, "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^invalid context name"):
        validate_name(name)


def test_the_explicit_name_else_the_current_context_else_none() -> None:
    contexts = Contexts({"prod": PROD, "local": LOCAL}, current="local")
    assert select(contexts, "prod") is PROD
    assert select(contexts, None) is LOCAL
    assert select(contexts, "") is LOCAL
    assert select(Contexts({"prod": PROD}), None) is None
    with pytest.raises(ConfigurationError, match=r"^no context named 'nope' \(contexts: local, prod\)"):
        select(contexts, "nope")


def test_adding_using_and_removing() -> None:
    contexts = Contexts().with_context(LOCAL).with_context(PROD).using("prod")
    assert (sorted(contexts.contexts), contexts.current) == (["local", "prod"], "prod")
    replaced = contexts.with_context(Context("prod", url="http://other:1"))
    assert replaced.contexts["prod"].url == "http://other:1" and replaced.current == "prod"
    assert contexts.without("prod") == Contexts({"local": LOCAL}, None)  # removing the one in use unselects it
    assert contexts.without("local").current == "prod"
    assert contexts.using(None).current is None
    with pytest.raises(ConfigurationError):
        contexts.using("nope")
    with pytest.raises(ConfigurationError):
        contexts.without("nope")


def test_the_secrets_are_masked_on_request() -> None:
    assert PROD.to_dict(secrets="***") == {
        "name": "prod", "url": "https://rt.example.com", "token": "***", "api_key": "***", "description": "live",
    }  # fmt: skip
    assert LOCAL.to_dict(secrets="***")["token"] is None  # what is not set is not pretended to be
    assert PROD.to_dict()["token"] == "eyJ.t.s"


@pytest.mark.parametrize(
    ("candidates", "winner"),
    [
        ([("opt", Origin.OPTION), ("env", Origin.ENVIRONMENT), ("ctx", Origin.CONTEXT)], ("opt", Origin.OPTION)),
        ([(None, Origin.OPTION), ("env", Origin.ENVIRONMENT), ("ctx", Origin.CONTEXT)], ("env", Origin.ENVIRONMENT)),
        ([("ctx", Origin.CONTEXT), ("env", Origin.ENVIRONMENT)], ("env", Origin.ENVIRONMENT)),
        ([(None, Origin.DEFAULT), ("ctx", Origin.CONTEXT)], ("ctx", Origin.CONTEXT)),
        ([("first", Origin.OPTION), ("second", Origin.OPTION)], ("first", Origin.OPTION)),  # a tie: the first given
        ([("", Origin.OPTION), (None, Origin.ENVIRONMENT)], (None, Origin.DEFAULT)),
    ],
)
def test_the_strongest_origin_wins(
    candidates: list[tuple[str | None, Origin]], winner: tuple[str | None, Origin]
) -> None:
    assert choose(*candidates) == winner


def test_the_file_is_in_the_xdg_config_directory() -> None:
    assert contexts_path({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/u"}) == Path("/x/cfg/broadcast-cli/contexts.json")
    assert contexts_path({"HOME": "/home/u"}) == Path("/home/u/.config/broadcast-cli/contexts.json")
    assert contexts_path({"XDG_CONFIG_HOME": "", "HOME": "/home/u"}) == Path(
        "/home/u/.config/broadcast-cli/contexts.json"
    )
