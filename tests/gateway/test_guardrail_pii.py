"""The PII scanner: each entity with its span, thresholds, overlaps, configuration errors, NER
mode on a real (tiny) spaCy pipeline, no network, and recall and precision on the labelled
corpus (`pytest -s` prints the table)."""

from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.guardrails import pii as guardrail_pii
from gateway.guardrails.model import DEFAULT_PII_ENTITIES, Finding
from gateway.guardrails.pii import PiiScanner, available_entities, resolve_overlaps
from tests.conftest import Dropper

CORPUS = Path(__file__).parent / "corpus" / "pii.jsonl"
RECALL_FLOOR = 0.9
PRECISION_FLOOR = 0.9
ENTITY_FLOOR = 0.85


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


def spans(scanner: PiiScanner, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in scanner.scan(text).findings]


# --- each entity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "before", "value", "after"),
    [
        ("EMAIL_ADDRESS", "Write to ", "jane.doe@example.com", " about the refund."),
        ("PHONE_NUMBER", "Call me at ", "(415) 555-2671", " tonight."),
        ("PHONE_NUMBER", "Our London office: ", "+44 20 7946 0958", "."),
        ("PHONE_NUMBER", "Paris: ", "01 42 68 53 00", ", ask for Claire."),
        ("PHONE_NUMBER", "Berlin: ", "+49 30 901820", "."),
        ("PHONE_NUMBER", "Bangalore: ", "+91 98450 12345", "."),
        ("CREDIT_CARD", "Card ", "4111 1111 1111 1111", " was charged twice."),
        ("CREDIT_CARD", "Mastercard ", "2223003122003222", " (2-series)."),
        ("IBAN_CODE", "Pay to ", "DE89370400440532013000", " by Friday."),
        ("IBAN_CODE", "Account ", "GB29 NWBK 6016 1331 9268 19", ", thanks."),
        ("IP_ADDRESS", "Block ", "203.0.113.45", " at the edge."),
        ("IP_ADDRESS", "Reach ", "2001:db8:85a3::8a2e:370:7334", " over IPv6."),
        ("US_SSN", "SSN ", "536-22-1847", " on the W-4."),
        ("CRYPTO", "Send BTC to ", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", " please."),
        ("CRYPTO", "Or to ", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "."),
        ("URL", "Read ", "https://www.example.com/news/merger", " first."),
        ("URL", "See ", "docs.fabrikam.io/start", " for details."),
    ],
)
def test_each_entity_is_found_with_its_span(
    scanner: PiiScanner, kind: str, before: str, value: str, after: str
) -> None:
    text = before + value + after
    result = scanner.scan(text)
    assert [(f.kind, f.start, f.end) for f in result.findings] == [
        (kind, len(before), len(before) + len(value))
    ]
    assert result.overall >= scanner.threshold


def test_a_text_without_pii_is_clean(scanner: PiiScanner) -> None:
    assert scanner.scan("Summarise the plot of Hamlet in three sentences.").findings == ()
    assert scanner.scan("").overall == 0.0


def test_several_entities_come_in_text_order(scanner: PiiScanner) -> None:
    text = "Mail bob@corp.example.net from 203.0.113.9, card 5555555555554444."
    assert spans(scanner, text) == [
        ("EMAIL_ADDRESS", "bob@corp.example.net"),
        ("IP_ADDRESS", "203.0.113.9"),
        ("CREDIT_CARD", "5555555555554444"),
    ]


def test_only_the_configured_entities_are_reported() -> None:
    scanner = PiiScanner(["EMAIL_ADDRESS"])
    text = "Mail jane@example.com or call (415) 555-2671 from 203.0.113.9."
    assert spans(scanner, text) == [("EMAIL_ADDRESS", "jane@example.com")]


# --- what looks like PII but is not -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Fix setup.py, README.md and main.rs before the release.",
        "Attach photo.png, index.html and report.docx to the ticket.",
        "Our stack: ASP.NET Core and Node.js.",
        "Upgrade to version 1.2.3.4 and note build 4.18.0.240.",
        "Section 8.2.4.1 covers retries.",
        "Order ORD-2024-000123 shipped today.",
        "The audit ran on 2024-03-15 and again on 15.03.2024 and 03/15/2024.",
        "The lottery numbers were 4 8 15 16 23 42.",
        "The reference 4111111111111112 fails the checksum.",
        "SSN 123-45-6789 is the usual placeholder.",
    ],
)
def test_hard_negatives_are_not_pii(scanner: PiiScanner, text: str) -> None:
    assert spans(scanner, text) == []


def test_a_url_cut_off_by_a_shorter_suffix_is_read_whole(scanner: PiiScanner) -> None:
    text = "My site janedoe.design and the bank status.woodgrove.bank are down."
    assert spans(scanner, text) == [("URL", "janedoe.design"), ("URL", "status.woodgrove.bank")]


@pytest.mark.parametrize("unit", ["a.", ".a", "www.", "a.a-"])
def test_a_long_word_of_dots_and_letters_is_read_in_linear_time(
    scanner: PiiScanner, unit: str
) -> None:
    """presidio's URL patterns on the `regex` module took 0.4 s for 256 characters of `a.` and
    over 30 s for 8 KB, so minutes for this word; on RE2 they answer at once (the test's timeout
    bounds it)."""
    word = unit * (65_536 // len(unit))
    assert spans(scanner, f"see {word} and https://example.com/x") == [
        ("URL", "https://example.com/x")
    ]


def test_sentence_punctuation_is_not_part_of_a_url(scanner: PiiScanner) -> None:
    text = "Read https://example.com/a/b. Then example.org, then stop!"
    assert spans(scanner, text) == [("URL", "https://example.com/a/b"), ("URL", "example.org")]


# --- threshold --------------------------------------------------------------------------------


def test_the_threshold_drops_weaker_findings() -> None:
    text = "Call (415) 555-2671, see example.org or https://example.com, mail jane@example.com."
    kinds = {
        threshold: [kind for kind, _ in spans(PiiScanner(threshold=threshold), text)]
        for threshold in (0.4, 0.45, 0.55, 0.65)
    }
    assert kinds[0.4] == ["PHONE_NUMBER", "URL", "URL", "EMAIL_ADDRESS"]
    assert kinds[0.45] == ["URL", "URL", "EMAIL_ADDRESS"]
    assert kinds[0.55] == ["URL", "EMAIL_ADDRESS"]
    assert kinds[0.65] == ["EMAIL_ADDRESS"]


def test_every_finding_reaches_the_threshold() -> None:
    scanner = PiiScanner(threshold=0.5)
    for row in corpus_rows():
        assert all(f.score >= 0.5 for f in scanner.scan(row["text"]).findings)


# --- overlaps ---------------------------------------------------------------------------------


def test_the_url_inside_an_email_address_is_not_reported(scanner: PiiScanner) -> None:
    text = "Write to m.okafor@northwind-traders.co.uk today."
    assert spans(scanner, text) == [("EMAIL_ADDRESS", "m.okafor@northwind-traders.co.uk")]


def test_overlaps_keep_the_higher_score_then_the_longer_span() -> None:
    findings = [
        Finding("URL", 5, 16, 0.5),
        Finding("EMAIL_ADDRESS", 0, 16, 1.0),
        Finding("PHONE_NUMBER", 20, 30, 0.4),
        Finding("US_SSN", 22, 34, 0.4),
        Finding("IP_ADDRESS", 40, 47, 0.6),
        Finding("role_override", 0, 0, 0.9),
    ]
    assert resolve_overlaps(findings) == (
        Finding("role_override", 0, 0, 0.9),
        Finding("EMAIL_ADDRESS", 0, 16, 1.0),
        Finding("US_SSN", 22, 34, 0.4),
        Finding("IP_ADDRESS", 40, 47, 0.6),
    )


def test_equal_overlaps_keep_the_earlier_span() -> None:
    first, second = Finding("PHONE_NUMBER", 0, 10, 0.4), Finding("PHONE_NUMBER", 5, 15, 0.4)
    assert resolve_overlaps([second, first]) == (first,)


def test_overlap_resolution_keeps_disjoint_spans_and_drops_only_losers() -> None:
    def rank(finding: Finding) -> tuple[float, int, int]:
        return (-finding.score, finding.start - finding.end, finding.start)

    rng = random.Random(7)
    for _ in range(300):
        findings = []
        for _ in range(rng.randint(0, 40)):
            start = rng.randint(0, 200)
            end = start + rng.randint(1, 25)
            findings.append(Finding(rng.choice("ABC"), start, end, rng.choice([0.4, 0.5, 1.0])))
        kept = resolve_overlaps(findings)
        assert all(a.end <= b.start for a, b in itertools.pairwise(kept))
        for finding in findings:
            if finding not in kept:
                assert any(
                    finding.start < k.end and k.start < finding.end and rank(k) <= rank(finding)
                    for k in kept
                )


def test_touching_spans_both_stay() -> None:
    left, right = Finding("URL", 0, 5, 0.5), Finding("EMAIL_ADDRESS", 5, 9, 1.0)
    assert resolve_overlaps([right, left]) == (left, right)


# --- configuration errors ---------------------------------------------------------------------


def test_an_unknown_entity_is_rejected_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"'EMAIL'.*did you mean 'EMAIL_ADDRESS'"):
        PiiScanner(["EMAIL"])


def test_an_ner_entity_without_a_model_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match=r"'PERSON' needs a ner_model"):
        PiiScanner(["EMAIL_ADDRESS", "PERSON"])


@pytest.mark.parametrize("language", ["english", "zz", "EN", ""])
def test_an_unknown_language_is_rejected(language: str) -> None:
    with pytest.raises(ValueError, match="unknown language"):
        PiiScanner(language=language)
    with pytest.raises(ValueError, match="unknown language"):
        available_entities(ner=False, language=language)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": 1.5}, "threshold must be between 0 and 1"),
        ({"threshold": -0.1}, "threshold must be between 0 and 1"),
        ({"entities": []}, "entities must not be empty"),
        ({"phone_regions": ["XX"]}, "unknown phone region 'XX'"),
        ({"phone_regions": []}, "phone_regions must not be empty"),
    ],
)
def test_bad_settings_are_rejected(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PiiScanner(**arguments)


def test_available_entities_per_mode_and_language() -> None:
    pattern = available_entities(ner=False)
    assert set(DEFAULT_PII_ENTITIES) <= set(pattern)
    assert "PERSON" not in pattern
    assert list(pattern) == sorted(pattern)
    ner = available_entities(ner=True)
    assert {"PERSON", "LOCATION", "ORGANIZATION", "NRP"} <= set(ner)
    assert set(pattern) < set(ner)
    spanish = available_entities(ner=False, language="es")
    assert {"ES_NIF", "CREDIT_CARD", "US_SSN"} <= set(spanish)


def test_another_language_gets_the_character_patterns_too() -> None:
    scanner = PiiScanner(language="de")
    text = "Bitte DE89370400440532013000 belasten, Karte 4111 1111 1111 1111, Tel. 030 23125 100."
    assert spans(scanner, text) == [
        ("IBAN_CODE", "DE89370400440532013000"),
        ("CREDIT_CARD", "4111 1111 1111 1111"),
        ("PHONE_NUMBER", "030 23125 100"),
    ]


def test_phone_regions_decide_which_national_formats_count() -> None:
    text = "Ring 01 42 68 53 00 or +44 20 7946 0958."
    assert spans(PiiScanner(["PHONE_NUMBER"], phone_regions=["US"]), text) == [
        ("PHONE_NUMBER", "+44 20 7946 0958")
    ]
    assert spans(PiiScanner(["PHONE_NUMBER"], phone_regions=["us", "fr"]), text) == [
        ("PHONE_NUMBER", "01 42 68 53 00"),
        ("PHONE_NUMBER", "+44 20 7946 0958"),
    ]


def test_numbers_of_two_regions_in_one_run_of_digits_are_both_read() -> None:
    scanner = PiiScanner(["PHONE_NUMBER"], phone_regions=["US", "DE", "FR"])
    text = "Tel 030 23125 100 / 01 42 68 53 00 (Paris)."
    assert spans(scanner, text) == [
        ("PHONE_NUMBER", "030 23125 100"),
        ("PHONE_NUMBER", "01 42 68 53 00"),
    ]


def test_construction_does_not_log_presidio_warnings(caplog: pytest.LogCaptureFixture) -> None:
    presidio = logging.getLogger("presidio-analyzer")
    level = presidio.level
    with caplog.at_level(logging.DEBUG):
        PiiScanner(["EMAIL_ADDRESS", "CREDIT_CARD"])
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert presidio.level == level


def test_importing_the_module_does_not_import_presidio() -> None:
    code = (
        "import sys, gateway.guardrails.pii, gateway.guardrails.masking; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'presidio_analyzer', 'presidio_anonymizer', 'spacy', 'tldextract', 'phonenumbers'}))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- NER mode ---------------------------------------------------------------------------------


def test_ner_mode_without_the_model_installed_is_a_clear_error() -> None:
    with pytest.raises(ValueError) as caught:
        PiiScanner(["PERSON"], ner_model="en_core_web_sm")
    message = str(caught.value)
    assert "'en_core_web_sm' is not installed" in message
    assert "never downloads" in message
    assert "python -m spacy download en_core_web_sm" in message


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real spaCy pipeline saved to disk: a blank English one whose entity ruler labels a few
    names and places, so NER mode runs end to end without a downloaded model."""
    import spacy

    nlp = spacy.blank("en")
    ruler: Any = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PERSON", "pattern": "Ada Lovelace"},
            {"label": "GPE", "pattern": "London"},
            {"label": "ORG", "pattern": "Initech"},
        ]
    )
    path = tmp_path_factory.mktemp("spacy") / "tiny_en"
    nlp.to_disk(path)
    return str(path)


def test_ner_mode_adds_names_and_places_to_the_patterns(tiny_model: str) -> None:
    scanner = PiiScanner(
        ["PERSON", "LOCATION", "EMAIL_ADDRESS", "URL"], ner_model=tiny_model, threshold=0.4
    )
    text = "Ada Lovelace of Initech lives in London; mail ada@example.com or see example.org."
    assert spans(scanner, text) == [
        ("PERSON", "Ada Lovelace"),
        ("LOCATION", "London"),
        ("EMAIL_ADDRESS", "ada@example.com"),
        ("URL", "example.org"),
    ]


def test_ner_mode_rejects_a_model_of_another_language(tiny_model: str) -> None:
    with pytest.raises(ValueError, match=r"is for language 'en', not 'de'"):
        PiiScanner(["PERSON"], ner_model=tiny_model, language="de")


# --- no network -------------------------------------------------------------------------------


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every connection attempt from any thread, refused and recorded; but for the session's
    database dropper, which may be dropping the last tests' databases meanwhile."""
    attempts: list[Any] = []

    def refusing(original: Any) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name == Dropper.THREAD:
                return original(*args, **kwargs)
            attempts.append(args[1:] or kwargs)
            raise OSError("network access in a test")

        return refuse

    for owner, name in (
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "getaddrinfo"),
    ):
        monkeypatch.setattr(owner, name, refusing(getattr(owner, name)))
    yield attempts


def test_the_guard_lets_only_the_database_dropper_through(network_attempts: list[Any]) -> None:
    results: dict[str, object] = {}

    def connect_to_postgres() -> None:
        with socket.socket() as sock:
            try:
                results[threading.current_thread().name] = sock.connect_ex(("127.0.0.1", 5432))
            except OSError as error:
                results[threading.current_thread().name] = error

    for name in (Dropper.THREAD, "scanner-helper"):
        thread = threading.Thread(target=connect_to_postgres, name=name)
        thread.start()
        thread.join()
    assert results[Dropper.THREAD] == 0
    assert isinstance(results["scanner-helper"], OSError)
    assert network_attempts == [(("127.0.0.1", 5432),)]


def test_the_guard_notices_a_download(network_attempts: list[Any]) -> None:
    import tldextract

    tldextract.TLDExtract(cache_dir=None)("mail.example.com")
    assert network_attempts


def test_scanning_never_reaches_the_network(network_attempts: list[Any]) -> None:
    guardrail_pii._suffix_extractor.cache_clear()
    guardrail_pii._offline_email_recognizer_class.cache_clear()
    scanner = PiiScanner()
    texts = [
        "Mail jane.doe@example.com, k.nakamura@tokyo-u.ac.jp or legal@initech.com.",
        "See https://www.example.com/a, docs.fabrikam.io/start and janedoe.design.",
        "Log: bob@corp.example.net from 203.0.113.9 visited https://intranet.example.net/hr",
    ]
    found = [f.kind for text in texts for f in scanner.scan(text).findings]
    assert found.count("EMAIL_ADDRESS") == 4
    assert found.count("URL") == 4
    assert network_attempts == []


# --- corpus -----------------------------------------------------------------------------------


def corpus_rows() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_the_corpus_is_well_formed() -> None:
    rows = corpus_rows()
    per_kind = {kind: 0 for kind in DEFAULT_PII_ENTITIES}
    for row in rows:
        for entity in row["entities"]:
            value = row["text"][entity["start"] : entity["end"]]
            assert value and value == value.strip(), row
            per_kind[entity["type"]] += 1
    assert min(per_kind.values()) >= 15, per_kind
    assert sum(1 for row in rows if not row["entities"]) >= 60


def overlaps(finding: Finding, entity: dict[str, Any]) -> bool:
    return (
        finding.kind == entity["type"]
        and finding.start < entity["end"]
        and entity["start"] < finding.end
    )


def test_corpus_recall_and_precision(scanner: PiiScanner) -> None:
    labelled = dict.fromkeys(DEFAULT_PII_ENTITIES, 0)
    recalled = dict.fromkeys(DEFAULT_PII_ENTITIES, 0)
    predicted = dict.fromkeys(DEFAULT_PII_ENTITIES, 0)
    correct = dict.fromkeys(DEFAULT_PII_ENTITIES, 0)
    for row in corpus_rows():
        findings = scanner.scan(row["text"]).findings
        for entity in row["entities"]:
            labelled[entity["type"]] += 1
            recalled[entity["type"]] += any(overlaps(f, entity) for f in findings)
        for finding in findings:
            predicted[finding.kind] += 1
            correct[finding.kind] += any(overlaps(finding, e) for e in row["entities"])

    def ratio(part: int, whole: int) -> float:
        return part / whole if whole else 1.0

    regions = ", ".join(guardrail_pii.DEFAULT_PHONE_REGIONS)
    print(f"\nthreshold {scanner.threshold}, phone regions {regions}")
    print(f"| {'entity':<14}| labelled | recall | predicted | precision |")
    print(f"|{'-' * 15}|---------:|-------:|----------:|----------:|")
    for kind in DEFAULT_PII_ENTITIES:
        print(
            f"| {kind:<14}| {labelled[kind]:>8} | {ratio(recalled[kind], labelled[kind]):>6.2f} "
            f"| {predicted[kind]:>9} | {ratio(correct[kind], predicted[kind]):>9.2f} |"
        )
    total_recall = ratio(sum(recalled.values()), sum(labelled.values()))
    total_precision = ratio(sum(correct.values()), sum(predicted.values()))
    print(f"| {'all':<14}| {sum(labelled.values()):>8} | {total_recall:>6.2f} ", end="")
    print(f"| {sum(predicted.values()):>9} | {total_precision:>9.2f} |")

    assert total_recall >= RECALL_FLOOR
    assert total_precision >= PRECISION_FLOOR
    for kind in DEFAULT_PII_ENTITIES:
        assert ratio(recalled[kind], labelled[kind]) >= ENTITY_FLOOR, kind
        assert ratio(correct[kind], predicted[kind]) >= ENTITY_FLOOR, kind


def test_reading_runs_of_digits_finds_what_reading_the_whole_text_finds() -> None:
    """The phone recognizer reads windows around runs of digits, region by region; over the
    corpus that finds exactly what presidio's recognizer finds over each whole text."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    whole = PhoneRecognizer(
        supported_regions=guardrail_pii.DEFAULT_PHONE_REGIONS,
        leniency=guardrail_pii._PHONE_LENIENCY,
    )
    scanner = PiiScanner(["PHONE_NUMBER"])
    texts = [row["text"] for row in corpus_rows()]
    texts += [
        "Tel 030 23125 100 / 01 42 68 53 00, fax +44 20 7946 0958 ext. 12; 2024-03-15.",
        "Call +44 (0)20 7946 0958 or Tel.: +49 (0) 30 901820, or dial 1-800-555-0199.",
        "Numbers: 415-555-0132, 212-555-0100, 646-555-0143; phone:+14155550132;fax:+14155550133",
        "Reach me at 0412 345 678 / (02) 9374 4000 or 98450 12345, or (415) 555-0132 x 204.",
        "Card 4111 1111 1111 1111, tel. 030/23125100 or 0171-1234567, call 415.555.2671.",
    ]
    for text in texts:
        found = (
            guardrail_pii._refined(text, Finding(r.entity_type, r.start, r.end, r.score))
            for r in whole.analyze(text, ["PHONE_NUMBER"])
        )
        expected = resolve_overlaps(f for f in found if f is not None)
        assert scanner.scan(text).findings == expected, text
