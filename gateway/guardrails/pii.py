"""The PII check: presidio's recognizers over one text, answered as findings (type, span, score).

Two modes:

- Pattern mode (the default, no `ner_model`): presidio's predefined pattern recognizers are
  called directly, without an NLP pipeline. Running spaCy per request would cost about 2 ms per
  KB for nothing: the recognizers read the raw text, and a blank pipeline has no lemmas for
  presidio's context words anyway. Each recognizer reads only the parts of the text it could
  match: the words with an `@` for e-mail addresses, the runs of digits for phone numbers.
- NER mode (`ner_model` names an installed spaCy model): presidio's `AnalyzerEngine` runs the
  model and adds names, places and organisations to the pattern recognizers' findings.

Some pattern hits are something else in a prompt (`setup.py` is a file, `version 1.2.3.4` a
version); the refinements below drop or trim them before overlapping findings are resolved.

Nothing here reaches the network. The e-mail recognizer checks domains against the public suffix
list bundled with tldextract (presidio's own would try to download it), and a spaCy model that is
not installed is an error, never a download.

presidio and spaCy are imported when the first scanner is built (over a second and about
100 MB), so importing this module stays cheap.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import functools
import importlib.util
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

from gateway.guardrails.model import CLEAN, DEFAULT_PII_ENTITIES, CheckResult, Finding
from rules.patterns import compile_pattern

if TYPE_CHECKING:
    import tldextract
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

DEFAULT_THRESHOLD: Final = 0.4
DEFAULT_PHONE_REGIONS: Final = ("US", "GB", "DE", "FR", "IN", "AU")
"""Where national phone formats are recognised (numbers written with a `+` country code are found
whatever the list). Each region is tried, in order, on every run of digits that an earlier one
did not read, at 0.1 to 0.3 ms a run, so the list is kept short; CA is left out because US
reads the same numbering plan."""

SPACY_LABELS: Final = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "NORP": "NRP",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
"""The entity each label of spaCy's models stands for in NER mode."""
NER_ENTITIES: Final = frozenset(SPACY_LABELS.values())

_PHONE_LENIENCY: Final = 2
"""phonenumbers' STRICT_GROUPING: digits must be grouped as the region writes them. The default
(VALID) also takes `4 8 15 16 23 42` or `88-1204-5577` for phone numbers; prompts are full of such
number runs."""
_PRESIDIO_LOGGER: Final = "presidio-analyzer"
_WORD_GATES: Final = {
    "EMAIL_ADDRESS": re.compile(r"(?<!\S)\S*@\S*"),
    "URL": re.compile(r"(?<!\S)\S*\.[A-Za-z]\S*"),
    "IP_ADDRESS": re.compile(r"(?<!\S)\S*(?:\d\.\d|:)\S*"),
}
"""presidio's e-mail, URL and IP patterns never match across whitespace, so they read only the
words that could hold a match (an `@`; a dot before a letter; dotted digits or a colon) and find
the same. Over a whole text the URL pattern, a long list of suffixes, costs about 0.45 ms per KB
and the e-mail pattern, which backtracks through every word, up to 0.3 ms."""
_DIGIT_RUN: Final = re.compile(r"\d(?:[\s().\-/]{0,4}\d){4,}")
_WINDOW_MARGIN: Final = 12
_EXTENSION: Final = re.compile(r"[\s,;]*(?:ext\.?|extn\.?|extension|x|#)\s*\d{1,7}", re.IGNORECASE)
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}([./-])\d{1,2}\1\d{4}")
_MASTERCARD_2_SERIES: Final = (
    r"\b(?:222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"
)
_NUMBERING_BEFORE: Final = re.compile(
    r"(?:\bv|\bver\.?|\bversion|\bbuild|\brelease|\bsection|\bchapter|\bclause|\bfigure"
    r"|\btable|\bstep|\bparagraph|§)\s*$",
    re.IGNORECASE,
)
_FILE_EXTENSIONS: Final = frozenset(
    {"py", "md", "rs", "sh", "pl", "pm", "cc", "so", "pt", "ps", "ml", "mk", "in", "am"}
)
"""Suffixes that are top-level domains and also common file extensions: `setup.py` in a prompt
is a file, not a link."""
_JOINERS: Final = frozenset("-_/")
_HOST_REST: Final = re.compile(r"[A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*")
_PATH: Final = re.compile(r"(?:[/?#][^\s()<>\"']*)?")
_TRAILING_PUNCTUATION: Final = ".,;:!?"


class PiiScanner:
    """Finds PII in a text with presidio's recognizers (see the module docstring for the modes).

    Raises ValueError at construction for an unknown language, entity or phone region, a
    threshold outside [0, 1], or a `ner_model` that is not installed.
    """

    def __init__(
        self,
        entities: Sequence[str] = DEFAULT_PII_ENTITIES,
        *,
        language: str = "en",
        threshold: float = DEFAULT_THRESHOLD,
        ner_model: str | None = None,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
        wanted = tuple(dict.fromkeys(entities))
        if not wanted:
            raise ValueError("entities must not be empty")
        _check_entities(wanted, ner=ner_model is not None, language=language)
        regions = _checked_regions(phone_regions)
        self.entities: Final = wanted
        self.language: Final = language
        self.threshold: Final = threshold
        self.ner_model: Final = ner_model
        self._wanted = frozenset(wanted)
        self._engine: AnalyzerEngine | None = None
        self._readers: list[_Reader] = []
        self._phones: _DigitRuns | None = None
        if ner_model is not None:
            _require_installed(ner_model)
        with _quiet_presidio():
            recognizers = _pattern_recognizers(wanted, language, regions)
            if ner_model is None:
                for recognizer in recognizers:
                    reader = _reader(recognizer, self._wanted)
                    if isinstance(reader, _DigitRuns):
                        self._phones = reader
                    else:
                        self._readers.append(reader)
            else:
                self._engine = _analyzer(recognizers, language, ner_model)

    def scan(self, text: str) -> CheckResult:
        if not text:
            return CLEAN
        if self._engine is not None:
            results = self._engine.analyze(
                text=text,
                language=self.language,
                entities=list(self.entities),
                score_threshold=self.threshold,
            )
            found = list(self._findings(text, results, 0))
        else:
            found = [
                finding
                for reader in self._readers
                for offset, results in reader.read(text)
                for finding in self._findings(text, results, offset)
            ]
            if self._phones is not None:
                taken = _taken(len(text), [f for f in found if f.score > self._phones.score])
                for offset, results in self._phones.read(text, taken):
                    found.extend(self._findings(text, results, offset))
        findings = resolve_overlaps(found)
        return CheckResult(findings=findings) if findings else CLEAN

    def _findings(self, text: str, results: Iterable[Any], offset: int) -> Iterator[Finding]:
        """presidio's results at or above the threshold as findings in `text`, refined."""
        threshold, wanted = self.threshold, self._wanted
        for result in results:
            if result.score >= threshold and result.entity_type in wanted:
                start, end = result.start + offset, result.end + offset
                finding = _refined(text, Finding(result.entity_type, start, end, result.score))
                if finding is not None:
                    yield finding


def resolve_overlaps(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """The findings with no two spans overlapping, in text order. Of overlapping findings the
    higher score wins, then the longer span, then the earlier one (so the URL recognizer's hit
    inside an e-mail address gives way to the address). Findings about the whole text (an empty
    span) are kept as they are."""
    ranked = sorted(findings, key=lambda f: (-f.score, f.start - f.end, f.start))
    kept: list[Finding] = []
    starts: list[int] = []
    ends: list[int] = []
    for finding in ranked:
        if finding.start < finding.end:
            at = bisect.bisect_left(starts, finding.start)
            if (at > 0 and ends[at - 1] > finding.start) or (
                at < len(starts) and starts[at] < finding.end
            ):
                continue
            starts.insert(at, finding.start)
            ends.insert(at, finding.end)
        kept.append(finding)
    kept.sort(key=lambda f: (f.start, f.end))
    return tuple(kept)


def available_entities(*, ner: bool, language: str = "en") -> tuple[str, ...]:
    """The entity types a scanner can be asked for in this mode and language (sorted). Pattern
    recognizers read characters, not words, so every language gets the English set plus its own
    (for example Spanish NIF/NIE); NER mode adds what a spaCy model labels (PERSON, LOCATION…).
    Raises ValueError for a language spaCy does not know."""
    _check_language(language)
    return _available_entities(ner, language)


# --- pattern mode: what each recognizer reads -------------------------------------------------


class _Reader(Protocol):
    def read(self, text: str) -> Iterator[tuple[int, list[Any]]]:
        """presidio's results for the parts of `text` worth reading, each with the part's
        offset."""
        ...


class _WholeText(NamedTuple):
    recognizer: EntityRecognizer
    entities: list[str]

    def read(self, text: str) -> Iterator[tuple[int, list[Any]]]:
        yield 0, _analyze(self.recognizer, text, self.entities)


class _Words(NamedTuple):
    """A recognizer whose patterns never match across whitespace, over the words that could
    hold a match (see `_WORD_GATES`): the same results for a fraction of the cost."""

    recognizer: EntityRecognizer
    entities: list[str]
    gate: re.Pattern[str]

    def read(self, text: str) -> Iterator[tuple[int, list[Any]]]:
        for word in self.gate.finditer(text):
            yield word.start(), _analyze(self.recognizer, word.group(), self.entities)


class _DigitRuns(NamedTuple):
    """presidio's phone recognizer, one per region in order, over the runs of five or more
    digits (with the few characters around them that the matcher looks at).

    Each region costs a parse of every candidate (0.1 to 0.3 ms), so a run is skipped when it
    is a date, or when findings that outscore a phone number (a card, an IBAN, an IP address)
    already cover all its digits, as a phone number there would lose to them anyway. A region
    is skipped for a run with fewer digits than its shortest number, and a run that one region
    has read whole (any number written with its country code) is not read by the next. A text
    without such runs costs nothing."""

    per_region: tuple[tuple[int, EntityRecognizer], ...]
    """(the region's shortest national number in digits, its recognizer)"""
    entities: list[str]
    score: float

    def read(self, text: str, taken: bytearray | None) -> Iterator[tuple[int, list[Any]]]:
        for run in _DIGIT_RUN.finditer(text):
            positions = [at for at in range(*run.span()) if text[at].isdecimal()]
            if _DATE.fullmatch(run.group()) or (taken and all(taken[at] for at in positions)):
                continue
            start, end = _window(text, *run.span())
            window = text[start:end]
            read: set[int] = set()
            for shortest, recognizer in self.per_region:
                if len(positions) < shortest:
                    continue
                found = _analyze(recognizer, window, self.entities)
                if not found:
                    continue
                yield start, found
                read.update(
                    at for r in found for at in range(r.start, r.end) if window[at].isdecimal()
                )
                if len(read) >= len(positions):
                    break


def _window(text: str, start: int, end: int) -> tuple[int, int]:
    """A run of digits with what the phone matcher reads around it: an extension after it
    (`ext. 12`), and up to `_WINDOW_MARGIN` characters without digits on each side (a `+` or
    `(` before)."""
    extension = _EXTENSION.match(text, end)
    if extension:
        end = extension.end()
    low, high = max(0, start - _WINDOW_MARGIN), min(len(text), end + _WINDOW_MARGIN)
    while start > low and not text[start - 1].isdecimal():
        start -= 1
    while end < high and not text[end].isdecimal():
        end += 1
    return start, end


def _taken(size: int, findings: Sequence[Finding]) -> bytearray | None:
    """Which characters of a text of `size` the findings cover (None when there are none)."""
    if not findings:
        return None
    taken = bytearray(size)
    for finding in findings:
        taken[finding.start : finding.end] = b"\x01" * (finding.end - finding.start)
    return taken


def _analyze(recognizer: EntityRecognizer, text: str, entities: list[str]) -> list[Any]:
    # presidio's pattern recognizers take None for the NLP artifacts they do not read
    return recognizer.analyze(text, entities, None)  # type: ignore[arg-type]


def _shortest_number(region: str) -> int:
    from phonenumbers import PhoneMetadata

    metadata = PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata else None
    lengths = general.possible_length if general else ()
    return min((length for length in lengths if length > 0), default=1)


def _reader(recognizer: EntityRecognizer, wanted: frozenset[str]) -> _Reader | _DigitRuns:
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    entities = [entity for entity in recognizer.supported_entities if entity in wanted]
    if isinstance(recognizer, PhoneRecognizer):
        per_region = tuple(
            (
                _shortest_number(region),
                PhoneRecognizer(
                    context=recognizer.context,
                    supported_language=recognizer.supported_language,
                    supported_regions=(region,),
                    leniency=recognizer.leniency,
                ),
            )
            for region in recognizer.supported_regions
        )
        return _DigitRuns(per_region, entities, recognizer.SCORE)
    gate = _WORD_GATES.get(entities[0])
    if gate is not None:
        return _Words(recognizer, entities, gate)
    return _WholeText(recognizer, entities)


# --- validation -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _available_entities(ner: bool, language: str) -> tuple[str, ...]:
    with _quiet_presidio():
        found = {
            entity
            for source in {language, "en"}
            for recognizer in _predefined(source)
            for entity in recognizer.supported_entities
        }
    if ner:
        found.update(NER_ENTITIES)
    return tuple(sorted(found))


def _check_language(language: str) -> None:
    spec = importlib.util.find_spec("spacy")
    locations = spec.submodule_search_locations if spec else None
    known = bool(
        locations
        and re.fullmatch(r"[a-z]{2,3}", language)
        and any((Path(location) / "lang" / language).is_dir() for location in locations)
    )
    if not known:
        raise ValueError(
            f"unknown language {language!r}; expected a language code spaCy knows, such as "
            "'en', 'de', 'es' or 'fr'"
        )


def _check_entities(entities: Sequence[str], *, ner: bool, language: str) -> None:
    available = available_entities(ner=ner, language=language)
    for entity in entities:
        if entity in available:
            continue
        if not ner and entity in NER_ENTITIES:
            raise ValueError(f"PII entity {entity!r} needs a ner_model (an installed spaCy model)")
        close = difflib.get_close_matches(entity.upper(), available, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown PII entity {entity!r} for language {language!r}{hint}")


def _checked_regions(regions: Sequence[str]) -> tuple[str, ...]:
    import phonenumbers

    checked = tuple(dict.fromkeys(region.upper() for region in regions))
    if not checked:
        raise ValueError("phone_regions must not be empty")
    for region in checked:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r}; expected a code such as 'US'")
    return checked


def _require_installed(model: str) -> None:
    installed = Path(model).exists() or (
        model.isidentifier() and importlib.util.find_spec(model) is not None
    )
    if not installed:
        raise ValueError(
            f"the spaCy model {model!r} is not installed; the gateway never downloads models. "
            f"Install it into the gateway's environment beforehand (for example "
            f"`python -m spacy download {model}`) or remove ner_model"
        )


@contextlib.contextmanager
def _quiet_presidio() -> Iterator[None]:
    """presidio warns about every recognizer it skips for another language; those warnings say
    nothing about this configuration."""
    logger = logging.getLogger(_PRESIDIO_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- refinements: pattern hits that are something else in a prompt ----------------------------


def _refined(text: str, finding: Finding) -> Finding | None:
    refine = _REFINEMENTS.get(finding.kind)
    return finding if refine is None else refine(text, finding)


def _refine_url(text: str, finding: Finding) -> Finding | None:
    """presidio's URL pattern lists suffixes without an end boundary and tries `desi` before
    `design`, so `janedoe.design` yields `janedoe.desi` and `photo.png` yields `photo.pn`. A hit
    cut off inside a word is extended to the end of its host (and path), then the host must end
    in a public suffix. A bare `name.ext` (no scheme, no `www.`, no path) whose suffix is a file
    extension or spelled in capitals (`setup.py`, `ASP.NET`) is a name, not a link; punctuation
    that ends the sentence is not part of a link."""
    start, end = finding.start, finding.end
    if end < len(text) and (text[end].isalnum() or text[end] == "-"):
        end = _HOST_REST.match(text, end).end()  # type: ignore[union-attr]
        end = _PATH.match(text, end).end()  # type: ignore[union-attr]
    value = text[start:end].rstrip(_TRAILING_PUNCTUATION)
    parts = _suffix_extractor()(value)
    if not parts.domain or not parts.suffix:
        return None
    bare = "://" not in value and "/" not in value and value[:4].lower() != "www."
    if bare and (parts.suffix.lower() in _FILE_EXTENSIONS or not parts.suffix.islower()):
        return None
    if (start, start + len(value)) == (finding.start, finding.end):
        return finding
    return Finding(finding.kind, start, start + len(value), finding.score)


def _refine_ip(text: str, finding: Finding) -> Finding | None:
    """`version 1.2.3.4`, `build 4.18.0.240`, `section 8.2.4.1`: four dotted numbers after a word
    that numbers things are a version or a section, not an address."""
    before = _NUMBERING_BEFORE.search(text, max(0, finding.start - 12), finding.start)
    return None if before else finding


def _refine_phone(text: str, finding: Finding) -> Finding | None:
    """`ORD-2024-000123` holds a valid-looking phone number; digits joined to letters or digits
    by `-`, `_` or `/` are part of a longer identifier. The matcher sometimes counts a space
    before the number in (`/ 01 42 68 53 00`); the span is trimmed to the number."""
    value = text[finding.start : finding.end]
    start = finding.start + len(value) - len(value.lstrip())
    end = finding.end - len(value) + len(value.rstrip())
    joined_before = start >= 2 and text[start - 1] in _JOINERS and text[start - 2].isalnum()
    joined_after = end + 1 < len(text) and text[end] in _JOINERS and text[end + 1].isalnum()
    if joined_before or joined_after or start >= end:
        return None
    if (start, end) == (finding.start, finding.end):
        return finding
    return Finding(finding.kind, start, end, finding.score)


_REFINEMENTS: Final[dict[str, Callable[[str, Finding], Finding | None]]] = {
    "URL": _refine_url,
    "IP_ADDRESS": _refine_ip,
    "PHONE_NUMBER": _refine_phone,
}


# --- building presidio's recognizers ----------------------------------------------------------


def _pattern_recognizers(
    entities: Sequence[str] | None, language: str, phone_regions: Sequence[str]
) -> list[EntityRecognizer]:
    """presidio's predefined recognizers for `language` (topped up with the English set), minus
    the NLP-engine ones, restricted to `entities` (all when None), with the replacements of
    `_replacement`."""
    recognizers: dict[str, EntityRecognizer] = {}
    for source in dict.fromkeys((language, "en")):
        for recognizer in _predefined(source):
            entity = recognizer.supported_entities[0]
            if entity in recognizers or (entities is not None and entity not in entities):
                continue
            recognizers[entity] = _replacement(recognizer, language, phone_regions)
    return list(recognizers.values())


def _predefined(language: str) -> list[EntityRecognizer]:
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import (
        SpacyRecognizer,
        StanzaRecognizer,
        TransformersRecognizer,
    )

    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language])
    nlp_kinds = (SpacyRecognizer, StanzaRecognizer, TransformersRecognizer)
    return [
        recognizer
        for recognizer in registry.recognizers
        if not isinstance(recognizer, nlp_kinds) and len(recognizer.supported_entities) == 1
    ]


def _replacement(
    recognizer: EntityRecognizer, language: str, phone_regions: Sequence[str]
) -> EntityRecognizer:
    """The recognizer to run in place of a predefined one, made for `language`.

    - e-mail: domains checked against tldextract's bundled suffix list, offline;
    - IBAN: case-sensitive as the class intends (the registry makes every pattern ignore case,
      and then a word after an IBAN is read as more of its groups, failing the checksum);
    - credit card: also Mastercard's 2-series numbers (2221 to 2720);
    - phone: the configured regions;
    - URL: its patterns run by RE2 (see `_linear_url_recognizer_class`).
    """
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
    )

    context: list[str] = list(getattr(recognizer, "context", None) or ())
    if isinstance(recognizer, UrlRecognizer):
        return _linear_url_recognizer_class()(supported_language=language, context=context)
    if isinstance(recognizer, EmailRecognizer):
        return _offline_email_recognizer_class()(supported_language=language, context=context)
    if isinstance(recognizer, IbanRecognizer):
        return IbanRecognizer(supported_language=language, context=context)
    if isinstance(recognizer, CreditCardRecognizer):
        patterns = [
            *CreditCardRecognizer.PATTERNS,
            Pattern("Mastercard 2-series", _MASTERCARD_2_SERIES, 0.3),
        ]
        return CreditCardRecognizer(patterns=patterns, context=context, supported_language=language)
    if isinstance(recognizer, PhoneRecognizer):
        return PhoneRecognizer(
            context=context,
            supported_language=language,
            supported_regions=phone_regions,
            leniency=_PHONE_LENIENCY,
        )
    if recognizer.supported_language != language:
        return type(recognizer)(supported_language=language)  # type: ignore[call-arg]
    return recognizer


@functools.cache
def _suffix_extractor() -> tldextract.TLDExtract:
    """tldextract on its bundled public suffix list: no download, no cache on disk."""
    import tldextract

    extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    extract("warm.example.com")
    return extract


@functools.cache
def _offline_email_recognizer_class() -> type[EmailRecognizer]:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = _suffix_extractor()

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's e-mail recognizer with a domain check that never fetches or writes."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text).fqdn)

    return OfflineEmailRecognizer


_PYTHON_SPACE: Final = r"\t-\r\x1c-\x1f\x85\p{Z}"
"""Python's `\\s` as the body of an RE2 class (RE2's own `\\s` is ASCII only)."""


@functools.cache
def _linear_url_recognizer_class() -> type[Any]:
    from presidio_analyzer import EntityRecognizer, RecognizerResult
    from presidio_analyzer.predefined_recognizers import UrlRecognizer

    class LinearUrlRecognizer(UrlRecognizer):
        """presidio's URL recognizer with its patterns run by RE2, in time linear in the word.

        Its patterns (`[a-z0-9.-]{1,253}[.]` then some 1,500 suffixes) backtrack in the `regex`
        module: every place of a long word made of dots and letters tries every suffix at up to
        253 places, so 256 characters of `a.` took 0.4 s and 8 KB over 30 s, holding the
        interpreter lock. The patterns have no look-around, so RE2 finds the same matches (both
        take the leftmost, then the alternatives in order); results are built as presidio's
        `PatternRecognizer` builds them."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            presidio: Any = self  # presidio's attributes are untyped
            self._linear = [
                (pattern, compile_pattern("(?ims)" + pattern.regex.replace(r"\s", _PYTHON_SPACE)))
                for pattern in presidio.patterns
            ]

        def analyze(
            self,
            text: str,
            entities: list[str],
            nlp_artifacts: Any = None,
            regex_flags: int | None = None,
        ) -> list[RecognizerResult]:
            presidio: Any = self  # presidio's attributes are untyped
            results: list[RecognizerResult] = []
            for pattern, linear in self._linear:
                for found in linear.finditer(text):
                    if found.start == found.end:
                        continue
                    matched = text[found.start : found.end]
                    validation = self.validate_result(matched)
                    explanation = self.build_regex_explanation(
                        presidio.name,
                        pattern.name,
                        pattern.regex,
                        pattern.score,
                        validation,  # type: ignore[arg-type]
                        presidio.global_regex_flags,
                    )
                    result = RecognizerResult(
                        entity_type=self.supported_entities[0],
                        start=found.start,
                        end=found.end,
                        score=pattern.score,
                        analysis_explanation=explanation,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: presidio.name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: presidio.id,
                        },
                    )
                    if validation is not None:
                        result.score = self.MAX_SCORE if validation else self.MIN_SCORE
                    if self.invalidate_result(matched):
                        result.score = self.MIN_SCORE
                    explanation.score = result.score
                    if result.score > self.MIN_SCORE:
                        results.append(result)
            return EntityRecognizer.remove_duplicates(results)

    return LinearUrlRecognizer


def _analyzer(recognizers: list[EntityRecognizer], language: str, ner_model: str) -> AnalyzerEngine:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    engine = _offline_spacy_engine_class()(
        models=[{"lang_code": language, "model_name": ner_model}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping=dict(SPACY_LABELS), labels_to_ignore=[]
        ),
    )
    engine.load()
    ner = SpacyRecognizer(
        supported_language=language, supported_entities=engine.get_supported_entities()
    )
    registry = RecognizerRegistry(recognizers=[*recognizers, ner], supported_languages=[language])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])


@functools.cache
def _offline_spacy_engine_class() -> type[Any]:
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class OfflineSpacyNlpEngine(SpacyNlpEngine):
        """presidio's spaCy engine without its download of a missing model."""

        def load(self) -> None:
            loaded = {}
            for model in self.models:
                name, language = model["model_name"], model["lang_code"]
                _require_installed(name)
                try:
                    nlp = spacy.load(name)
                except OSError as error:
                    raise ValueError(
                        f"the spaCy model {name!r} could not be loaded: {error}"
                    ) from None
                if nlp.lang != language:
                    raise ValueError(
                        f"the spaCy model {name!r} is for language {nlp.lang!r}, not {language!r}"
                    )
                loaded[language] = nlp
            self.nlp = loaded  # type: ignore[assignment]

    return OfflineSpacyNlpEngine
