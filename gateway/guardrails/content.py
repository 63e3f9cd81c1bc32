"""The content-rule checks: deny lists, request limits, JSON schemas and custom callables.

`DenyList` compiles at construction: all words into one regex, all patterns into another, so a
scan is one `finditer` per regex. Words are matched whole: a word that starts (ends) with a word
character must not follow (be followed by) another word character, so `class` does not match
`classic`; whitespace inside a phrase matches any run of whitespace. The words become a trie
(`new`, `news`, `new york` share their prefix), which keeps a list of thousands of words fast.

Patterns are RE2 regular expressions (`rules.patterns`): a scan takes time linear in the text
per match, whatever the pattern, so no pattern can stall a worker; RE2 refuses what would need
backtracking (look-arounds, back-references) when the guardrail is loaded. All patterns become
one RE2 regex. Patterns that match the empty text are refused. The words stay on Python's `re`,
which gives them Unicode word boundaries (RE2's `\\b` is ASCII only): they are escaped literals,
and a trie of literals with `\\s+` gaps backtracks at most the length of one word at each place.

Findings and reasons carry offsets and counts, never the text that matched.
"""

from __future__ import annotations

import importlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Final

import jsonschema
import msgspec
from referencing.exceptions import Unresolvable

from gateway.guardrails.model import CLEAN, CheckContext, CheckResult, Finding
from gateway.keys.limits import InvalidField
from gateway.keys.store import model_matcher
from rules.patterns import Pattern, PatternError, compile_pattern

DENIED_TERM: Final = "DENIED_TERM"
DENIED_PATTERN: Final = "DENIED_PATTERN"
MAX_INPUT_TOKENS: Final = "MAX_INPUT_TOKENS"
MISSING_METADATA: Final = "MISSING_METADATA"
MODEL_NOT_ALLOWED: Final = "MODEL_NOT_ALLOWED"
INVALID_JSON: Final = "INVALID_JSON"
SCHEMA_VIOLATION: Final = "SCHEMA_VIOLATION"

MAX_WORDS: Final = 10_000
MAX_WORD_LENGTH: Final = 256
MAX_PATTERNS: Final = 256
MAX_PATTERN_LENGTH: Final = 512

_WORD_CHAR: Final = re.compile(r"\w")
_WHITESPACE_UNIT: Final = " "  # stands for a run of whitespace in a phrase's trie path


# --- deny list --------------------------------------------------------------------------------


class _TrieNode:
    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.terminal = False


def _is_word_char(unit: str) -> bool:
    return unit != _WHITESPACE_UNIT and _WORD_CHAR.match(unit) is not None


class _WordsRegex:
    """The source of one regex matching every word: a trie of the words written as nested
    alternatives, so words sharing a prefix share its test.

    Without case sensitivity the regex does not ask for IGNORECASE as a whole: `re` scans
    quickly only for a regex whose alternatives all start with a plain literal, which IGNORECASE
    rules out. Each word's first character gets one branch per case variant (`c`, `C`) and the
    rest of the word is matched under a scoped `(?i:...)`.
    """

    def __init__(self, case_sensitive: bool) -> None:
        self._case_sensitive = case_sensitive
        self._root = _TrieNode()

    def add(self, word: str) -> None:
        node = self._root
        for unit in self._units(word):
            node = node.children.setdefault(unit, _TrieNode())
        node.terminal = True

    def source(self) -> str | None:
        return self._alternatives(self._root, None) if self._root.children else None

    def _units(self, word: str) -> list[str]:
        """The word's characters, lowered unless case matters, and one unit for each gap
        between its tokens."""
        units: list[str] = []
        for token in word.split():
            if units:
                units.append(_WHITESPACE_UNIT)
            units.extend(token if self._case_sensitive else map(_lowered, token))
        return units

    def _variants(self, unit: str) -> list[str]:
        if self._case_sensitive or unit == _WHITESPACE_UNIT:
            return [unit]
        cased = (unit, unit.upper(), unit.title())
        return list(dict.fromkeys(variant for variant in cased if len(variant) == 1))

    def _alternatives(self, node: _TrieNode, incoming: str | None) -> str:
        at_root = incoming is None
        branches: list[str] = []
        leaves: dict[bool, list[str]] = {True: [], False: []}
        for unit, child in node.children.items():
            if not child.children and unit != _WHITESPACE_UNIT and not at_root:
                leaves[_is_word_char(unit)].append(unit)
                continue
            rest = self._alternatives(child, unit)
            if at_root:
                if child.children and not self._case_sensitive:
                    rest = f"(?i:{rest})"
                rest = _start_regex(unit) + rest
                branches.extend(re.escape(variant) + rest for variant in self._variants(unit))
            else:
                branches.append(_unit_regex(unit) + rest)
        for word_chars, chars in leaves.items():
            if chars:
                branches.append(_char_class(chars) + (_WORD_END if word_chars else ""))
        if node.terminal and incoming is not None:
            branches.append(_WORD_END if _is_word_char(incoming) else "")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"


def _unit_regex(unit: str) -> str:
    # possessive: the next unit is a word character, never whitespace, so giving back part of
    # the run could not help, and a long run is read once, not once per character given back
    return r"\s++" if unit == _WHITESPACE_UNIT else re.escape(unit)


_WORD_END: Final = r"(?!\w)"


def _lowered(char: str) -> str:
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


def _char_class(chars: Sequence[str]) -> str:
    escaped = "".join(map(re.escape, chars))
    return escaped if len(chars) == 1 else f"[{escaped}]"


def _start_regex(first_unit: str) -> str:
    """Placed after the first character rather than before it, so every alternative of the
    regex still starts with a literal."""
    return r"(?<!\w\w)" if _is_word_char(first_unit) else ""


def _words_regex(words: Sequence[str], case_sensitive: bool) -> str | None:
    if isinstance(words, str):
        raise InvalidField("words", "expected a list of words or phrases")
    if len(words) > MAX_WORDS:
        raise InvalidField("words", f"at most {MAX_WORDS} words")
    trie = _WordsRegex(case_sensitive)
    for index, word in enumerate(words):
        if not isinstance(word, str) or not word.strip():
            raise InvalidField(f"words[{index}]", "expected a non-empty word or phrase")
        if len(word) > MAX_WORD_LENGTH:
            raise InvalidField(f"words[{index}]", f"at most {MAX_WORD_LENGTH} characters")
        trie.add(word)
    return trie.source()


def _checked_pattern(index: int, pattern: Any, case_sensitive: bool) -> Pattern:
    path = f"patterns[{index}]"
    if not isinstance(pattern, str) or not pattern:
        raise InvalidField(path, "expected a non-empty regular expression")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidField(path, f"at most {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = compile_pattern(pattern, ignore_case=not case_sensitive)
    except PatternError as error:
        raise InvalidField(path, f"invalid regular expression: {error}") from None
    if compiled.fullmatch(""):
        raise InvalidField(path, "the pattern matches the empty text")
    return compiled


class _Patterns:
    """Patterns scanned together: one RE2 regex with each pattern in an outer group, so a scan
    is one pass whatever their number. Within the regex the earliest pattern matching at a place
    wins; which one matched is the outer group that took part."""

    def __init__(self, patterns: Sequence[tuple[int, Pattern]], case_sensitive: bool) -> None:
        self._outer: list[tuple[int, int]] = []  # (group number, pattern index)
        number = 1
        for index, pattern in patterns:
            self._outer.append((number, index))
            number += 1 + pattern.groups
        source = "|".join(f"({pattern.source})" for _, pattern in patterns)
        self._regex = compile_pattern(source, ignore_case=not case_sensitive)

    def scan(self, text: str) -> Iterator[tuple[int, int, int]]:
        """(start, end, pattern index) of each non-empty match."""
        outer = self._outer
        alone = outer[0][1] if len(outer) == 1 else None
        for start, end, groups in self._regex.finditer(text):
            if start == end:
                continue
            if alone is not None:
                yield start, end, alone
                continue
            for number, index in outer:
                if groups[number][0] >= 0:  # the pattern in this outer group matched
                    yield start, end, index
                    break


class DenyList:
    """Denied words/phrases (`DENIED_TERM`) and regexes (`DENIED_PATTERN`).

    `case_sensitive` applies to both. The words are one regex and the patterns another, so a
    term's finding may overlap a pattern's; within one regex the earliest entry matching at a
    place wins.
    """

    def __init__(
        self,
        words: Sequence[str] = (),
        patterns: Sequence[str] = (),
        *,
        case_sensitive: bool = False,
    ) -> None:
        self._case_sensitive = case_sensitive
        if isinstance(patterns, str):
            raise InvalidField("patterns", "expected a list of regular expressions")
        if len(patterns) > MAX_PATTERNS:
            raise InvalidField("patterns", f"at most {MAX_PATTERNS} patterns")
        words_source = _words_regex(words, case_sensitive)
        self._words = None if words_source is None else re.compile(words_source)
        checked = [
            (index, _checked_pattern(index, pattern, case_sensitive))
            for index, pattern in enumerate(patterns)
        ]
        self._patterns: tuple[_Patterns, ...] = ()
        if checked:
            try:
                self._patterns = (_Patterns(checked, case_sensitive),)
            except PatternError:  # together they outgrow RE2's memory for one regex
                self._patterns = tuple(_Patterns([one], case_sensitive) for one in checked)

    @property
    def regex_count(self) -> int:
        return (self._words is not None) + len(self._patterns)

    def scan(self, text: str) -> CheckResult:
        findings: list[Finding] = []
        terms: set[str] = set()
        found_patterns: set[int] = set()
        if self._words is not None:
            for match in self._words.finditer(text):
                start, end = match.span()
                if start != end:
                    findings.append(Finding(DENIED_TERM, start, end, 1.0))
                    terms.add(self._term_key(match.group()))
        for patterns in self._patterns:
            for start, end, index in patterns.scan(text):
                findings.append(Finding(DENIED_PATTERN, start, end, 1.0))
                found_patterns.add(index)
        if not findings:
            return CLEAN
        if self.regex_count > 1:
            findings.sort(key=lambda finding: (finding.start, finding.end))
        return CheckResult(tuple(findings), reason=_deny_reason(findings, terms, found_patterns))

    def _term_key(self, matched: str) -> str:
        collapsed = " ".join(matched.split())
        return collapsed if self._case_sensitive else collapsed.casefold()


def _plural(count: int, noun: str, nouns: str) -> str:
    return f"{count} {noun if count == 1 else nouns}"


def _deny_reason(findings: Sequence[Finding], terms: set[str], patterns: set[int]) -> str:
    parts: list[str] = []
    term_matches = sum(1 for finding in findings if finding.kind == DENIED_TERM)
    if terms:
        terms_found = _plural(len(terms), "denied term", "denied terms")
        parts.append(f"{terms_found} ({_plural(term_matches, 'match', 'matches')})")
    if patterns:
        pattern_matches = len(findings) - term_matches
        patterns_found = _plural(len(patterns), "denied pattern", "denied patterns")
        parts.append(f"{patterns_found} ({_plural(pattern_matches, 'match', 'matches')})")
    return " and ".join(parts) + " found"


# --- request checks ---------------------------------------------------------------------------


class MaxInputTokens:
    def __init__(self, max_tokens: int) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidField("max_tokens", "expected a positive integer")
        self.max_tokens = max_tokens

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult:
        estimated = context.estimated_input_tokens
        if estimated <= self.max_tokens:
            return CLEAN
        return CheckResult(
            (Finding(MAX_INPUT_TOKENS),),
            reason=f"about {estimated} input tokens, more than the limit of {self.max_tokens}",
        )


class RequiredMetadata:
    """Metadata keys a request must carry. A key whose value is null or a blank string counts as
    missing: an empty value satisfies no one who requires the key."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str) or not keys:
            raise InvalidField("keys", "expected a non-empty list of metadata keys")
        for index, key in enumerate(keys):
            if not isinstance(key, str) or not key.strip():
                raise InvalidField(f"keys[{index}]", "expected a non-empty string")
        self.keys = tuple(dict.fromkeys(keys))

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult:
        metadata = context.metadata
        missing = [key for key in self.keys if _is_blank(metadata.get(key))]
        if not missing:
            return CLEAN
        return CheckResult(
            tuple(Finding(MISSING_METADATA) for _ in missing),
            reason=f"missing metadata: {', '.join(missing)}",
        )


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class AllowedModels:
    """The models a request may name, as fnmatch patterns (`gpt-4o*`)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        if isinstance(patterns, str) or not patterns:
            raise InvalidField("models", "expected a non-empty list of model name patterns")
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, str) or not pattern.strip():
                raise InvalidField(f"models[{index}]", "expected a non-empty model name pattern")
        self.patterns = tuple(pattern.strip() for pattern in patterns)
        self._match = model_matcher(tuple(self.patterns))

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult:
        model = context.model
        if model is not None and self._match(model):
            return CLEAN
        reason = "the request names no model" if model is None else f"model '{model}' not allowed"
        return CheckResult((Finding(MODEL_NOT_ALLOWED),), reason=reason)


# --- JSON schema ------------------------------------------------------------------------------

_MAX_ERRORS_LISTED: Final = 3
_MAX_ERRORS_COUNTED: Final = 100


class _CompiledSchema(msgspec.Struct, frozen=True):
    validator: Any  # jsonschema.Draft202012Validator; None when the schema is invalid
    declared_names: frozenset[str]
    problem: str = ""


def _declared_names(schema: Any) -> frozenset[str]:
    """Every property name the schema declares: the only object keys an error path may show
    (any other key came from the answer)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(key for key in properties if isinstance(key, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)


def _json_path(parts: Iterable[str | int], declared: frozenset[str] | None) -> str:
    """`$.items[2].price`; a key not in `declared` (unless that is None) shows as `*`."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif declared is not None and part not in declared:
            path += ".*"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += "[" + msgspec.json.encode(part).decode() + "]"
    return path


def _compile_schema(schema: Any) -> _CompiledSchema:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = _json_path(error.absolute_path, None)
        return _CompiledSchema(None, frozenset(), f"{where}: {error.validator}")
    return _CompiledSchema(jsonschema.Draft202012Validator(schema), _declared_names(schema))


_TOO_DEEP = "not checked: the answer or its schema nests deeper than the gateway reads"


class JsonSchemaCheck:
    """Checks an answer against the request's `response_format`.

    `json_schema` validates with Draft 2020-12; `json_object` only requires a JSON object; no
    format (or `text`) passes. A schema the request got wrong does not fail the request: the
    result is clean and says why. Reasons name error paths and validator keywords, never a
    value (an error message may quote one). Compiled schemas are kept in an LRU keyed by the
    schema's canonical JSON, so a schema repeated across requests is checked and compiled once.
    """

    def __init__(self, *, cache_size: int = 256) -> None:
        if cache_size < 1:
            raise InvalidField("cache_size", "expected a positive integer")
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _CompiledSchema] = OrderedDict()
        self.compile_count = 0

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult:
        response_format = context.response_format
        if not isinstance(response_format, Mapping):
            return CLEAN
        format_type = response_format.get("type")
        if format_type not in ("json_schema", "json_object"):
            return CLEAN
        if text is None:
            return CheckResult(reason="no answer text to check")
        try:
            document = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return CheckResult((Finding(INVALID_JSON),), reason="the answer is not valid JSON")
        except RecursionError:
            return CheckResult(reason=_TOO_DEEP)
        if format_type == "json_object":
            if isinstance(document, dict):
                return CLEAN
            return CheckResult((Finding(SCHEMA_VIOLATION),), reason="1 schema violation: $: type")
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, dict | bool):
            return CheckResult(reason="schema invalid: json_schema.schema is missing")
        try:
            compiled = self._compiled(schema)
            if compiled is None:
                return CheckResult(reason="schema invalid: not JSON")
            if compiled.validator is None:
                return CheckResult(reason=f"schema invalid: {compiled.problem}")
            errors = list(islice(compiled.validator.iter_errors(document), _MAX_ERRORS_COUNTED))
        except Unresolvable:
            return CheckResult(reason="schema invalid: unresolvable $ref")
        except RecursionError:
            return CheckResult(reason=_TOO_DEEP)
        if not errors:
            return CLEAN
        return CheckResult((Finding(SCHEMA_VIOLATION),), reason=_violations(errors, compiled))

    def _compiled(self, schema: dict[str, Any] | bool) -> _CompiledSchema | None:
        try:
            key = msgspec.json.encode(schema, order="sorted")
        except (TypeError, ValueError, OverflowError):
            return None
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        compiled = _compile_schema(schema)
        self.compile_count += 1
        self._cache[key] = compiled
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return compiled


def _violations(errors: Sequence[jsonschema.ValidationError], compiled: _CompiledSchema) -> str:
    listed = [
        f"{_json_path(error.absolute_path, compiled.declared_names)}: {error.validator}"
        for error in errors[:_MAX_ERRORS_LISTED]
    ]
    count = len(errors)
    more = count - len(listed)
    if more:
        listed.append(f"and {more}{'+' if count == _MAX_ERRORS_COUNTED else ''} more")
    counted = f"{count}+" if count == _MAX_ERRORS_COUNTED else str(count)
    noun = "schema violation" if count == 1 else "schema violations"
    return f"{counted} {noun}: " + "; ".join(listed)


# --- custom -----------------------------------------------------------------------------------


class CustomCheckError(RuntimeError):
    """A custom check failed or answered something other than a `CheckResult`. The message
    names the target and the exception type only: an exception's message may quote the text."""

    def __init__(self, target: str, problem: str) -> None:
        super().__init__(f"custom check '{target}' {problem}")
        self.target = target
        self.problem = problem


CustomFunction = Callable[[str, CheckContext | None], CheckResult | None]


def resolve_callable(target: str) -> CustomFunction:
    """The function named by `package.module:function` (a dotted attribute path after the
    colon is allowed); `InvalidField` for the `callable` field when it cannot be used."""
    if not isinstance(target, str):
        raise InvalidField("callable", "expected 'package.module:function'")
    module_name, _, attribute_path = target.partition(":")
    names = module_name.split(".") + attribute_path.split(".")
    if not all(name.isidentifier() for name in names):
        raise InvalidField("callable", f"expected 'package.module:function', got '{target}'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidField(
            "callable", f"cannot import module '{module_name}': {error.msg}"
        ) from None
    except Exception as error:
        raise InvalidField(
            "callable", f"importing module '{module_name}' raised {type(error).__name__}"
        ) from None
    for name in attribute_path.split("."):
        if not hasattr(found, name):
            raise InvalidField("callable", f"'{target}': no attribute '{name}'")
        found = getattr(found, name)
    if not callable(found):
        raise InvalidField("callable", f"'{target}' is not callable")
    function: CustomFunction = found
    return function


class CustomCheck:
    """A check written by the operator, called as `function(text, context)`.

    It answers a `CheckResult`, or None for clean. Findings must lie within the text (a mask
    guardrail replaces their spans). `context` is None only when the check is used as a bare
    `TextCheck` without one.
    """

    def __init__(self, target: str) -> None:
        self._function = resolve_callable(target)
        self.target = target

    def scan(self, text: str, context: CheckContext | None = None) -> CheckResult:
        try:
            result = self._function(text, context)
        except Exception as error:
            raise CustomCheckError(self.target, f"raised {type(error).__name__}") from None
        if result is None:
            return CLEAN
        if not isinstance(result, CheckResult):
            raise CustomCheckError(
                self.target, f"returned {type(result).__name__}, expected CheckResult or None"
            )
        for finding in result.findings:
            if not isinstance(finding, Finding):
                raise CustomCheckError(self.target, "returned a finding that is not a Finding")
            if not 0 <= finding.start <= finding.end <= len(text):
                raise CustomCheckError(self.target, "returned a finding outside the text")
        return result

    def inspect(self, context: CheckContext, text: str | None = None) -> CheckResult:
        return self.scan("" if text is None else text, context)
