from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.to_dotenv import to_dotenv
from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv

AWKWARD = {
    "PLAIN": "abcDEF123",
    "URL": "http://127.0.0.1:5000/v1",
    "BCRYPT": "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    "SPACES": "two words  and more",
    "HASH": "value # not a comment",
    "DQUOTE": 'say "hi"',
    "SQUOTE": "it's",
    "BOTH": 'it\'s "both" $HOME',
    "BACKSLASH": "C:\\path\\to",
    "NEWLINE": "line1\nline2",
    "DOLLAR_BRACE": "${NOT_EXPANDED}",
    "EMPTY": "",
    "EQUALS": "a=b=c",
}


@pytest.mark.parametrize("key", sorted(AWKWARD))
def test_round_trip(key: str) -> None:
    text = dotenv.render({key: AWKWARD[key]})
    assert dotenv.parse(text) == {key: AWKWARD[key]}


def test_bare_values_stay_bare_and_bcrypt_is_single_quoted() -> None:
    assert dotenv.quote("abc-123_x.y") == "abc-123_x.y"
    assert dotenv.quote(AWKWARD["BCRYPT"]) == f"'{AWKWARD['BCRYPT']}'"
    assert dotenv.quote(True) == "true"
    assert dotenv.quote(None) == ""


def test_update_keeps_comments_and_other_lines() -> None:
    text = "# clients of the stack\nBASE_URL=http://x\nVLLM_API_KEY=old\n\n# end\n"
    new, changed = dotenv.update(text, {"VLLM_API_KEY": "new$key", "COMFYUI_TOKEN": "t"})
    assert changed == ["VLLM_API_KEY", "COMFYUI_TOKEN"]
    assert new.startswith("# clients of the stack\nBASE_URL=http://x\nVLLM_API_KEY='new$key'\n")
    assert "# end" in new and new.endswith("COMFYUI_TOKEN=t\n")
    assert dotenv.update(new, {"VLLM_API_KEY": "new$key"}) == (new, [])


def test_parse_handles_export_and_inline_comments() -> None:
    assert dotenv.parse("export A=1 # c\nB='x # y'\n#C=3\n") == {"A": "1", "B": "x # y"}


def test_bad_key_is_refused_naming_it() -> None:
    with pytest.raises(AnsibleFilterError, match="1BAD"):
        to_dotenv({"1BAD": "x"})


def test_header_is_commented() -> None:
    assert to_dotenv({"A": "1"}, header="managed\nby ansible") == "# managed\n# by ansible\nA=1\n"


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI absent")
def test_docker_compose_reads_what_we_write(tmp_path: Path) -> None:
    """The real consumer: compose's own env_file parser must give back every value."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("compose v2 plugin absent (scripts/setup.sh installs it)")
    values = {k: v for k, v in AWKWARD.items() if k != "NEWLINE"}
    values["NEWLINE"] = AWKWARD["NEWLINE"]
    (tmp_path / "app.env").write_text(dotenv.render(values))
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: local/debian:12\n    env_file: [./app.env]\n"
    )
    out = subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    environment = json.loads(out.stdout)["services"]["app"]["environment"]
    # `config` prints a literal $ as $$ (its own escape), so a value compose did not expand
    # comes back with every $ doubled.
    decoded = {k: (environment.get(k) or "").replace("$$", "$") for k in values}
    assert decoded == values


HAND_WRITTEN = (
    "# written by hand\n"
    "export A=old # the key\n"
    'B="multi\n'
    'line \\" quote" # after a quoted value\n'
    "C='single' # comment\n"
    "A=duplicate\n"
    "D=keep me # bare with spaces\n"
)


def test_parse_hand_written_files_like_compose() -> None:
    assert dotenv.parse(HAND_WRITTEN) == {
        "A": "duplicate",  # the last assignment wins
        "B": 'multi\nline " quote',
        "C": "single",
        "D": "keep me",
    }


def test_unclosed_quote_is_read_as_a_bare_value() -> None:
    assert dotenv.parse("A='never closed\nB=2\n") == {"A": "'never closed", "B": "2"}


def test_update_rewrites_every_assignment_keeping_prefix_and_comment() -> None:
    new, changed = dotenv.update(HAND_WRITTEN, {"A": "new $A", "B": "one line", "D": "keep me"})
    assert changed == ["A", "B"]
    assert new == (
        "# written by hand\n"
        "export A='new $A' # the key\n"
        "B='one line' # after a quoted value\n"
        "C='single' # comment\n"
        "A='new $A'\n"
        "D=keep me # bare with spaces\n"
    )
    assert dotenv.parse(new)["A"] == "new $A"
    assert dotenv.update(new, {"A": "new $A", "B": "one line"}) == (new, [])


def test_update_keeps_crlf_line_ends_and_checks_every_key() -> None:
    assert dotenv.update("X=1\r\nY=2\r\n", {"Y": "3"}) == ("X=1\r\nY=3\r\n", ["Y"])
    with pytest.raises(ValueError, match="BAD-KEY"):
        dotenv.update("BAD-KEY=1\n", {"BAD-KEY": "2"})


def test_entries_give_line_spans() -> None:
    spans = [(e.key, e.first, e.last) for e in dotenv.entries(HAND_WRITTEN)]
    assert spans == [("A", 1, 1), ("B", 2, 3), ("C", 4, 4), ("A", 5, 5), ("D", 6, 6)]


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI absent")
def test_docker_compose_reads_an_updated_hand_written_file(tmp_path: Path) -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("compose v2 plugin absent (scripts/setup.sh installs it)")
    values = {"A": AWKWARD["BCRYPT"], "B": AWKWARD["BOTH"], "E": AWKWARD["NEWLINE"]}
    text, _ = dotenv.update(HAND_WRITTEN, values)
    (tmp_path / "app.env").write_text(text)
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: local/debian:12\n    env_file: [./app.env]\n"
    )
    out = subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    environment = json.loads(out.stdout)["services"]["app"]["environment"]
    decoded = {k: (v or "").replace("$$", "$") for k, v in environment.items()}
    assert decoded == {**dotenv.parse(HAND_WRITTEN), **values} == dotenv.parse(text)


#: values that break line-based readers: form feed, vertical tab, NEL and the Unicode line and
#: paragraph separators (str.splitlines() cuts at each), CR, trailing backslash
SEPARATORS = {
    "FORM_FEED": "a\fb",
    "VTAB": "a\vb",
    "NEL": "a\x85b",
    "LINE_SEP": "a\u2028b",
    "PARA_SEP": "a\u2029b",
    "CR": "a\rb",
    "TRAILING_BACKSLASH": "ends\\",
    "UNICODE": "é ü 漢",
}


@pytest.mark.parametrize("interpolate", [False, True])
def test_every_value_round_trips_through_python_dotenv(interpolate: bool) -> None:
    import io

    import dotenv as python_dotenv  # the reader of the notebooks and python clients

    # BOTH ('it\'s "both" $HOME') needs double quotes, where compose and sh read \$ as $ but
    # python-dotenv keeps the backslash: the writer keeps the compose/sh reading (service env files)
    values = {k: v for k, v in {**AWKWARD, **SEPARATORS}.items() if k != "BOTH"}
    if interpolate:  # python-dotenv expands ${...} even when quoted: no writer can keep it
        values.pop("DOLLAR_BRACE")
    text = dotenv.render(values)
    read = python_dotenv.dotenv_values(stream=io.StringIO(text), interpolate=interpolate)
    assert read == values
    assert dotenv.parse(text) == values


def test_separators_inside_values_keep_update_idempotent() -> None:
    text = dotenv.render({**SEPARATORS, "LAST": "x"})
    assert dotenv.update(text, {**SEPARATORS, "LAST": "x"}) == (text, [])
    new, changed = dotenv.update(text, {"LAST": "y"})
    assert changed == ["LAST"] and dotenv.parse(new) == {**SEPARATORS, "LAST": "y"}


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("bare", "bare"),
        ("  spaced out # comment  ", "spaced out"),
        ("'single $x' # c", "single $x"),
        ('"a\\"b\\\\c\\$d\\ne"', 'a"b\\c$d\ne'),
        ("'never closed", "'never closed"),
        ('"never closed', '"never closed'),
        ("", ""),
    ],
)
def test_unquote_reads_one_value(raw: str, value: str) -> None:
    assert dotenv.unquote(raw) == value


@pytest.mark.parametrize("key", sorted(AWKWARD))
def test_unquote_inverts_quote(key: str) -> None:
    assert dotenv.unquote(dotenv.quote(AWKWARD[key])) == AWKWARD[key]


def test_unknown_escapes_in_double_quotes_keep_their_backslash() -> None:
    assert dotenv.parse('A="x\\qy\\tz\\rw\\\'v"\n') == {"A": "x\\qy\tz\rw'v"}


def test_the_first_closing_quote_ends_the_value() -> None:
    text = "A='x' # it's\nB=\"\"\nC=''\nD=\"\\\\\" # \"\n"
    assert dotenv.parse(text) == {"A": "x", "B": "", "C": "", "D": "\\"}


def test_a_last_line_without_newline_and_a_quote_closed_on_it_are_read() -> None:
    assert dotenv.parse("A=1\nB=2") == {"A": "1", "B": "2"}
    assert dotenv.parse('A=0\nB="x\ny"') == {"A": "0", "B": "x\ny"}
    assert dotenv.parse("A='x\ny' # end") == {"A": "x\ny"}


def test_single_quotes_are_literal_and_text_after_a_closing_quote_makes_it_bare() -> None:
    assert dotenv.parse("A='a\\tb\\\\c'\nB='x'y\nC=\"x\" y\nD=after\n") == {
        "A": "a\\tb\\\\c",
        "B": "'x'y",
        "C": '"x" y',
        "D": "after",
    }


def test_update_compares_none_and_booleans_as_written() -> None:
    text = "A=\nB=true\nC=false\n"
    assert dotenv.update(text, {"A": None, "B": True, "C": False}) == (text, [])
    assert dotenv.update(text, {"A": "x", "B": False, "C": True}) == (
        "A=x\nB=false\nC=true\n",
        ["A", "B", "C"],
    )


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (False, "false"),
        (True, "true"),
        (None, ""),
        (0, "0"),
        ("a b", "'a b'"),
        ("a\nb", '"a\\nb"'),
        ("a\rb", '"a\\rb"'),
        ("it's $x", '"it\'s \\$x"'),
        ('C:\\x "q"', '"C:\\\\x \\"q\\""'),
    ],
)
def test_quote_writes_exactly(value: object, written: str) -> None:
    assert dotenv.quote(value) == written
