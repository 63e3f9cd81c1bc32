"""Prompt-injection and jailbreak detection by heuristics: patterns, decoders and weights.

Nothing here understands language. The detector looks for the shapes that injection attempts
usually take and scores them; a determined attacker can phrase around it, and a text that quotes
an attack can trip it. It is a cheap first line, meant to stop the common, copy-pasted attempts.

Each heuristic belongs to a family, which becomes the finding's `kind`:

- `instruction_override`: telling the model to ignore, forget or replace what it was told.
- `role_override`: fake role headers (`system:`, `### System`, `<|im_start|>system`, `[INST]`,
  `<<SYS>>`) and attempts to hand the model a new identity ("from now on you are ...").
- `delimiter_injection`: chat-template control tokens and fake "end of input" boundaries that try
  to close the part of the prompt the text was placed in.
- `system_prompt_extraction`: asking for the system prompt or hidden instructions.
- `jailbreak_persona`: the known personas and modes (DAN, "developer mode", "no restrictions").
- `encoded_instructions`: base64, hex or rot13 runs that decode to any of the above, and requests
  to decode something and obey it.
- `hidden_characters`: zero-width, bidi-override and Unicode tag characters (U+E0000 block)
  used to hide text or split trigger words. Tag text is decoded and scanned, text under a
  right-to-left override is also read backwards, and the other characters are stripped and the
  text scanned again. Fullwidth and other compatibility letters are folded (NFKC) and rescanned.

Every pattern carries a weight (its family's, or less for the weak forms that also occur in
ordinary text, such as a `system:` line in a log). A family scores its best finding, and the
families combine as independent evidence, `1 - prod(1 - score)`: two families outscore one. A
match that is negated or reported ("never reveal your system prompt", "if a user asks you to
ignore your instructions") counts for much less, and so does one quoted in a text that is
plainly discussing attacks.

Not covered: paraphrases outside the patterns, languages other than English, lookalike letters
from other scripts (a Cyrillic o for a Latin one), payloads split across messages, and encodings other
than base64, hex and rot13.

Speed: the text is lowercased once and split into words (C-speed string methods, no regex).
Every pattern starts with one of a few lead words or markers, and many also need one of a set
of words; a pattern whose words are absent is skipped, and the others are tried only where a
lead occurs (one combined regex per lead first, the single patterns when it matches). Base64
and hex are decoded only when a word is long enough or digits are plentiful enough to hold a
payload, and the Unicode passes run only on non-ASCII text.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import re
import unicodedata
from collections.abc import Iterator
from typing import Final, NamedTuple

from gateway.guardrails.model import CLEAN, CheckResult, Finding
from rules.patterns import compile_pattern

INSTRUCTION_OVERRIDE: Final = "instruction_override"
ROLE_OVERRIDE: Final = "role_override"
DELIMITER_INJECTION: Final = "delimiter_injection"
SYSTEM_PROMPT_EXTRACTION: Final = "system_prompt_extraction"
JAILBREAK_PERSONA: Final = "jailbreak_persona"
ENCODED_INSTRUCTIONS: Final = "encoded_instructions"
HIDDEN_CHARACTERS: Final = "hidden_characters"

FAMILIES: Final = (
    INSTRUCTION_OVERRIDE,
    ROLE_OVERRIDE,
    DELIMITER_INJECTION,
    SYSTEM_PROMPT_EXTRACTION,
    JAILBREAK_PERSONA,
    ENCODED_INSTRUCTIONS,
    HIDDEN_CHARACTERS,
)

STRONG: Final = 0.5
"""A phrase at least this heavy, found in a decoded or hidden payload, makes the payload an
attack; weaker ones (a role header, say) only make it suspicious."""
DECODED_PAYLOAD: Final = 0.9
SUSPICIOUS_PAYLOAD: Final = 0.4
HIDDEN_TAG_PAYLOAD: Final = 0.95
HIDDEN_TAG_TEXT: Final = 0.6
SPLIT_BY_INVISIBLES: Final = 0.85
REVERSED_BY_OVERRIDE: Final = 0.85
INVISIBLE_RUN: Final = 0.6
BIDI_OVERRIDE: Final = 0.4
INVISIBLES_INSIDE_WORDS: Final = 0.35

NEGATED_FACTOR: Final = 0.3
QUOTED_FACTOR: Final = 0.5
TECHNICAL_FACTOR: Final = 0.3
"""Control tokens in a text about tokenizers or chat templates are most likely a question."""

MAX_FINDINGS: Final = 32
MAX_MATCHES_PER_RULE: Final = 8
MAX_DECODED_RUNS: Final = 32
"""Candidates decoded per encoding and text: enough for real payloads, bounded for hostile
input (a text padded with more decoys than this can hide a payload after them)."""
MAX_RUN_CHARS: Final = 65_536
MIN_BASE64_CHARS: Final = 24
MIN_PAYLOAD_WORD: Final = 16
"""A base64 or hex payload worth decoding holds a word (letters and digits) at least this long."""
MIN_HEX_DIGITS: Final = 12
MAX_DEPTH: Final = 2
"""Payloads are decoded this many times over (base64 of hex, say), no more."""
MAX_REVERSED_CHARS: Final = 400


class _Rule(NamedTuple):
    family: str
    weight: float
    pattern: re.Pattern[str]
    leads: tuple[str, ...]
    """Where a match can start: whole words (as the word set holds them) or literal markers."""
    line: bool
    """The pattern starts with `^`: it is tried at the start of each line holding a lead."""
    requires: frozenset[str]
    """Words of which every match holds one (none: no such condition); without any of them in
    the text, the rule is not tried at all."""

    @property
    def is_token(self) -> bool:
        """Whether the rule matches chat-template control tokens (every lead is a marker)."""
        return not any(_WORD.fullmatch(lead) for lead in self.leads)


class _Hit(NamedTuple):
    family: str
    weight: float
    start: int
    end: int


def _rx(source: str) -> re.Pattern[str]:
    """A pattern written with plain spaces and apostrophes: a space stands for any run of
    whitespace, an apostrophe for a straight or a typographic one (so neither may appear
    inside a character class; write `\\x27` there)."""
    return re.compile(source.replace(" ", r"\s+").replace("'", "['\u2019]"), re.MULTILINE)


def _rule(
    family: str, weight: float, leads: str, source: str, *, line: bool = False, requires: str = ""
) -> _Rule:
    return _Rule(
        family, weight, _rx(source), tuple(leads.split()), line, frozenset(requires.split())
    )


def _any(phrases: str) -> str:
    return f"(?:{phrases})"


def _first_words(phrases: str) -> str:
    """The lead words of an alternation of plain phrases: each phrase's first word."""
    return " ".join(
        {re.split(r"[\s'\-]", phrase, maxsplit=1)[0]: None for phrase in phrases.split("|")}
    )


_OVERRIDE_VERBS = (
    "ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|bypassing|overlook|discard|"
    "abandon|neglect|dismiss|set aside|throw out|throw away|scrap|erase|wipe|nullify"
)
"""Verbs that tell the model to drop what it was told; words common in everyday or technical
requests ("skip", "cancel", "override the default settings") are left out."""
_DEFEAT_VERBS = f"{_OVERRIDE_VERBS}|override|overriding|circumvent|evade|break|breaking"
_EARLIER = (
    "previous|previously given|prior|above|earlier|preceding|foregoing|former|original|initial|"
    "old|existing|current|given|aforementioned|system|developer|safety|hidden|built-in"
)
_GUIDANCE = (
    r"instructions?|directives?|prompts?|rules|guidelines|guidance|commands|context|guardrails|"
    r"constraints|programming|restrictions|training|filters|safeguards|moderation"
)
_YOUR_GUIDANCE = rf"{_GUIDANCE}|polic(?:y|ies)|content polic(?:y|ies)|settings|limitations|ethics"
_LIMITS = (
    r"restrictions|limitations|limits|filters|rules|guidelines|boundaries|polic(?:y|ies)|ethics|"
    r"morals|morality|censorship|guardrails|constraints|safeguards|content policy"
)
_HIDDEN_PROMPT = (
    r"system prompt|system message|system instructions?|hidden (?:prompt|instructions?|rules|"
    r"message)|initial (?:prompt|instructions?)|original (?:prompt|instructions?)|secret "
    r"(?:prompt|instructions?|rules)|pre-?prompt|internal (?:instructions?|rules|guidelines|"
    r"prompt)|developer (?:prompt|message|instructions?)|confidential (?:instructions?|prompt)|"
    r"base prompt|meta ?prompt|custom instructions|starting prompt|opening prompt"
)
_HIDDEN_PROMPT_LEADS = (
    "system hidden initial original secret pre preprompt internal developer confidential base "
    "meta metaprompt custom starting opening"
)
_SHOW_VERBS = (
    "reveal|print|show|display|output|repeat|tell|give|share|dump|leak|expose|disclose|list|"
    "write|recite|spell out|type|copy|paste|send|provide|return|echo|quote|reproduce|summarize|"
    "summarise"
)
_PERSONA_ENTRY = (
    "you are|you're|you will be|you'll be|act as|acting as|pretend to be|pretend you are|"
    "become|roleplay as|role-play as|role play as|play the role of|respond as|answer as|simulate"
)
_BAD_PERSONA = (
    "evil|unethical|amoral|unfiltered|uncensored|unrestricted|immoral|rogue|malicious|"
    "jailbroken|unhinged|unaligned|unbound|lawless"
)
_AI = (
    r"ai|assistant|chatbot|bot|model|language model|llm|gpt|persona|character|entity|"
    r"version of (?:yourself|you|chatgpt)|twin|alter ego|confidant"
)
# Words one of which every match of a rule holds (its `requires`), spelled as the text's words
# are: inflected forms listed, hyphenated ones split.
_GUIDANCE_WORDS = (
    "instruction instructions directive directives prompt prompts rules guidelines guidance "
    "commands context guardrails constraints programming restrictions training filters "
    "safeguards moderation"
)
_LIMITS_WORDS = (
    "restrictions limitations limits filters rules guidelines boundaries policy policies ethics "
    "morals morality censorship guardrails constraints safeguards content"
)
_HIDDEN_PROMPT_WORDS = (
    "prompt prompts preprompt metaprompt system instruction instructions rules message guidelines"
)
_VOIDED_WORDS = (
    "void null cancelled canceled revoked obsolete replaced overridden superseded suspended "
    "lifted removed disabled longer"
)
_COMPLY_WORDS = (
    "follow following obey obeying adhere adhering comply complying listen listening abide "
    "abiding respect respecting"
)
_UNCHAINED_WORDS = (
    "jailbroken jailbreaked unchained unshackled liberated uncensored unfiltered unrestricted freed"
)
_REFUSAL_WORDS = (
    "refuse refuses decline declines break breaks say says apologize apologise apologizes "
    "apologises add adds"
)
_AI_WORDS = (
    "ai ais assistant assistants llm llms language chatbot chatbots model models gpt gpts bot "
    "bots agent agents"
)
_YOUR_GUIDANCE_WORDS = f"{_GUIDANCE_WORDS} policy policies content settings limitations ethics"
_NEW_ORDERS = (
    r"^[^\S\n]*(?:[-=#*>\[]+[^\S\n]*)?(?:new|real|actual|true|override|admin|administrator|"
    r"developer) (?:system )?(?:instructions?|prompt|directives?|orders)[^\S\n]*[\]:]"
)
"""A line that announces new orders ("New instructions:"); it counts more when what follows
addresses the model than when it reads like a notice."""
_NEW_ORDERS_LEADS = "new real actual true override admin administrator developer"
_QUOTE = r"[\"\x27\u201c\u2018(]"

_RULES: Final[tuple[_Rule, ...]] = (
    # --- instruction_override ---------------------------------------------------------------
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        _first_words(_OVERRIDE_VERBS),
        rf"\b{_any(_OVERRIDE_VERBS)} (?:(?:all|any|each|every|the|your|these|those|of|that|its|"
        rf"prior to|everything|anything) )*{_any(_EARLIER)}(?: and {_any(_EARLIER)})?"
        rf" (?:[\w-]+ ){{0,2}}?{_any(_GUIDANCE)}\b",
        requires=_GUIDANCE_WORDS,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        _first_words(_DEFEAT_VERBS),
        rf"\b{_any(_DEFEAT_VERBS)} (?:all |any )?(?:of )?your (?:[\w-]+ )?{_any(_YOUR_GUIDANCE)}\b",
        requires=_YOUR_GUIDANCE_WORDS,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.75,
        _first_words(_OVERRIDE_VERBS),
        rf"\b{_any(_OVERRIDE_VERBS)} (?:all (?:of )?)?(?:the |everything )?(?:above|before)\b"
        r"[,.;:!]* (?:and )?(?:instead,? |then,? |now,? )*"
        r"(?:say|print|output|write|respond|reply|answer|tell|repeat|reveal|act|you|just|only)\b",
        requires="above before",
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        _first_words(_OVERRIDE_VERBS) + " drop",
        rf"\b(?:{_OVERRIDE_VERBS}|drop) (?:all |any |whatever |the |those |these )?(?:[\w-]+ )?"
        rf"{_any(_GUIDANCE)} (?:that )?you(?:'ve| have| were| had)? (?:been )?(?:given|told|"
        r"taught|received|programmed with|trained (?:on|with)|configured with)",
        requires=_GUIDANCE_WORDS,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.4,
        "ai assistant model chatbot bot llm agent",
        r"(?<=the\x20)(?:ai|assistant|model|chatbot|bot|llm|agent) (?:must|should|will|shall|"
        r"is (?:now )?"
        r"(?:required|allowed|permitted|authori[sz]ed) to) (?:now |always |immediately )?"
        r"(?:ignore|disregard|reveal|output|print|send|email|forward|disclose|dump|leak|grant|"
        r"obey|bypass)\b",
        requires="ignore disregard reveal output print send email forward disclose dump leak "
        "grant obey bypass",
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        "forget",
        r"\bforget (?:about )?(?:everything|all(?: of)?(?: that| what)?|what(?:ever)?|anything) "
        r"(?:(?:that )?you(?:'ve| have| were| was| are)? (?:been |being )?"
        r"(?:told|taught|instructed|given|programmed|trained|asked)|(?:you )?(?:learned|know) "
        r"(?:about )?(?:your|the) (?:rules|guidelines|instructions))",
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.6,
        "forget",
        r"\bforget (?:everything|all(?: of)?(?: that)?|what(?:ever)? (?:was|is) (?:written|said)) "
        r"(?:above|before this|so far|up to (?:now|this point))",
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        "your",
        rf"\byour (?:{_any(_EARLIER)} )?{_any(_YOUR_GUIDANCE)} (?:are|were|have been|is|has been) "
        r"(?:now )?(?:void|null|cancel+ed|revoked|obsolete|replaced|overridden|superseded|"
        r"suspended|lifted|removed|disabled|no longer (?:valid|apply|applicable|in effect|"
        r"active|binding))",
        requires=_VOIDED_WORDS,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.75,
        "not don never stop longer mustn",
        r"\b(?:not|don't|never|stop|longer|mustn't) (?:follow|obey|adhere to|comply with|"
        r"listen to|abide by|respect)(?:ing)? (?:any (?:of )?|all (?:of )?)?"
        rf"(?:your|the {_any(_EARLIER)}) (?:[\w-]+ )?{_any(_YOUR_GUIDANCE)}\b",
        requires=_COMPLY_WORDS,
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.8,
        "following new next updated",
        r"\b(?:following|new|next|updated) (?:instructions|rules|directives|commands) (?:override|"
        r"supersede|replace|take precedence over|have priority over|cancel)\b",
        requires="override supersede replace take have cancel",
    ),
    _rule(
        INSTRUCTION_OVERRIDE,
        0.45,
        "obey follow listen",
        r"\b(?:obey|follow|listen to) (?:only )?(?:me|my (?:instructions|commands|orders|rules)) "
        r"(?:from now on|instead|and (?:no(?:thing| one) else|not your))",
        requires="now instead and",
    ),
    # --- role_override ----------------------------------------------------------------------
    _rule(ROLE_OVERRIDE, 0.85, "<|im_start|>", r"<\|im_start\|>[^\S\n]*system\b"),
    _rule(ROLE_OVERRIDE, 0.85, "<|start_header_id|>", r"<\|start_header_id\|>[^\S\n]*system\b"),
    _rule(ROLE_OVERRIDE, 0.8, "<<sys>>", r"<<sys>>"),
    _rule(
        ROLE_OVERRIDE,
        0.6,
        "<|im_start|> <|start_header_id|> <|system|> <|user|> <|assistant|> <start_of_turn>",
        r"<\|im_start\|>|<\|start_header_id\|>|<\|(?:system|user|assistant)\|>|<start_of_turn>",
    ),
    _rule(ROLE_OVERRIDE, 0.45, "[inst]", r"\[inst\]"),
    _rule(
        ROLE_OVERRIDE,
        0.35,
        "system",
        r"^[^\S\n]*(?:[>*_]+[^\S\n]*)?(?:\[system\]|<system>|system(?:[^\S\n]+(?:prompt|message|"
        r"override|instructions?|note))?[^\S\n]*:)",
        line=True,
    ),
    _rule(
        ROLE_OVERRIDE,
        0.45,
        "system new admin developer",
        r"^[^\S\n]*#{1,6}[^\S\n]*(?:system|system prompt|system message|new system prompt|"
        r"new instructions|admin override|developer mode|developer instructions)[^\S\n]*:?"
        r"[^\S\n]*$",
        line=True,
    ),
    _rule(
        ROLE_OVERRIDE,
        0.6,
        _NEW_ORDERS_LEADS,
        rf"{_NEW_ORDERS}(?=[^\S\n]*(?:you|your|the (?:ai|assistant|model|bot)|ignore|disregard|"
        r"forget|always|never|from now on|reveal|print|output|respond|answer|act|pretend))",
        line=True,
    ),
    _rule(ROLE_OVERRIDE, 0.4, _NEW_ORDERS_LEADS, _NEW_ORDERS, line=True),
    _rule(
        ROLE_OVERRIDE,
        0.6,
        "system admin developer security priority",
        r"^[^\S\n]*(?:[-=#*>\[]+[^\S\n]*)?(?:system|admin|developer|security|priority) "
        r"override[^\S\n]*[\]:]",
        line=True,
    ),
    _rule(ROLE_OVERRIDE, 0.45, "new", r"\bnew (?:system )?instructions?:"),
    _rule(
        ROLE_OVERRIDE,
        0.7,
        "from",
        r"\bfrom now on,? (?:you are|you're|you will be|you'll be|act as|pretend to be|behave as|"
        r"respond as|roleplay as|your (?:new )?(?:name|role|identity|persona) (?:is|will be)) "
        r"(?:now )?(?:an? |the |my )?(?:[\w-]+ ){0,2}?(?:no longer|dan\b|evil|unfiltered|"
        r"uncensored|unrestricted|unbound|jailbroken|free (?:from|of)|without|not bound|"
        r"not an? (?:ai|assistant)|amoral|immoral|rogue|malicious|hacker|criminal)",
        requires="now",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.45,
        "from",
        r"\bfrom now on,? (?:you are|you're|you will act as|act as|pretend to be|behave as|"
        r"respond as|roleplay as|your (?:new )?(?:name|role|identity|persona) (?:is|will be))\b",
        requires="now",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.75,
        "from",
        r"\bfrom now on,? you (?:will|must|shall|should|are going to|'ll) (?:always )?"
        r"(?:ignore|disregard|not follow|answer (?:everything|anything|every question|all)|"
        r"never refuse|respond without|comply with (?:every|any|all)|obey)",
        requires="now",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.7,
        "you",
        r"\b(?:you are|you're) no longer (?:an? )?(?:ai|assistant|chatbot|language model|chatgpt|"
        r"claude|gemini|llama|bound by|restricted|limited by|subject to|governed by|constrained|"
        r"required to follow|obligated to follow|a helpful)",
        requires="longer",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.4,
        "openai anthropic deepmind",
        r"\b(?:openai|anthropic|deepmind) (?:developer|engineer|employee|staff|admin|team|"
        r"administrator|safety team)",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.45,
        "your",
        r"(?:(?<=i\x20am\x20)|(?<=i\x27m\x20)|(?<=i\u2019m\x20)|(?<=this\x20is\x20))your "
        r"(?:developer|creator|programmer|admin|administrator|operator|owner|maker)\b",
        requires="developer creator programmer admin administrator operator owner maker",
    ),
    _rule(
        ROLE_OVERRIDE,
        0.6,
        "note message instruction instructions attention important reminder",
        r"\b(?:note|message|instructions?|attention|important|reminder) (?:to|for) "
        r"(?:the |any |all )?(?:ai|assistant|llm|language model|chatbot|model|gpt|bot|agent)s?"
        r"(?: (?:reading|processing|summari[sz]ing|reviewing|parsing|analy[sz]ing) (?:this|the)"
        r"(?: [\w-]+){0,3})?[^\S\n]*[:!-]",
        requires=_AI_WORDS,
    ),
    # --- delimiter_injection ----------------------------------------------------------------
    _rule(
        DELIMITER_INJECTION,
        0.6,
        "<| <end_of_turn>",
        r"<\|(?:im_end|im_sep|endoftext|eot_id|end_header_id|eom_id|end_of_turn|end|endofprompt|"
        r"end_of_text)\|>|<end_of_turn>",
    ),
    _rule(DELIMITER_INJECTION, 0.7, "</s>", r"</s>(?=\s*(?:<s>|\[inst\]|<\||<<sys>>))"),
    _rule(DELIMITER_INJECTION, 0.45, "[/inst] <</sys>>", r"\[/inst\]|<</sys>>"),
    _rule(
        DELIMITER_INJECTION,
        0.6,
        "end close closing exit",
        r"^[^\S\n]*(?:[-=#*_~<\[(]+[^\S\n]*)?(?:end|close|closing|exit) (?:of )?(?:the )?"
        r"(?:user (?:input|message|query|prompt|turn)|untrusted (?:input|content|text|data)|"
        r"system prompt|system message|(?:original )?instructions|prompt)\b"
        r"(?:[^\S\n]*[-=#*_~>\]):.]+)?[^\S\n]*$",
        line=True,
    ),
    _rule(
        DELIMITER_INJECTION,
        0.45,
        "end begin start",
        r"^[^\S\n]*[-=#*_~<\[(]{2,}[^\S\n]*(?:end|begin|start) (?:of )?(?:the )?(?:document|"
        r"context|conversation|email|text|data|file|article)\b",
        line=True,
    ),
    _rule(
        DELIMITER_INJECTION,
        0.4,
        "</",
        r"</(?:user_input|user|untrusted_input|untrusted|untrusted_text|human|query|input|system|"
        r"system_prompt|instructions)>",
    ),
    # --- system_prompt_extraction -----------------------------------------------------------
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.8,
        _first_words(_SHOW_VERBS),
        rf"\b{_any(_SHOW_VERBS)}(?: out| back)?(?: (?:me|us))?(?: [\w\x27\u2019-]+){{0,3}}? "
        rf"your (?:[\w-]+ ){{0,2}}?{_any(_HIDDEN_PROMPT)}",
        requires=_HIDDEN_PROMPT_WORDS,
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.7,
        _first_words(_SHOW_VERBS),
        rf"\b{_any(_SHOW_VERBS)}(?: out| back)?(?: (?:me|us))?(?: [\w\x27\u2019-]+){{0,3}}? "
        r"(?:the|any|all) (?:[\w-]+ ){0,2}?(?:hidden (?:prompt|instructions?|rules)|"
        r"secret (?:prompt|instructions?|rules)|confidential (?:instructions?|prompt)|"
        r"initial instructions|pre-?prompt)",
        requires="prompt preprompt instructions instruction rules",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.75,
        _HIDDEN_PROMPT_LEADS,
        rf"\b{_any(_HIDDEN_PROMPT)} (?:that )?(?:you(?: were| have been| got)? (?:given|received|"
        r"provided|told|fed)|you (?:started|were initiali[sz]ed) with|(?:above|before) this "
        r"(?:conversation|message|chat))",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.7,
        "instructions prompt text message messages",
        r"\b(?:instructions|prompt|text|messages?) (?:that )?(?:you (?:were|have been) given |"
        r"you received )?(?:before|above|prior to) (?:this|our) (?:conversation|chat)",
        requires="conversation chat",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.75,
        "repeat print output copy write echo return recite reproduce show type",
        r"\b(?:repeat|print|output|copy|write|echo|return|recite|reproduce|show|type)"
        r"(?: out| back)?(?: me)? (?:all |everything |(?:all )?the (?:[\w-]+ ){0,2}?(?:text|words|"
        r"messages?|content|lines|instructions|prompt|conversation|tokens) |your (?:[\w-]+ )?"
        r"(?:text|words|instructions|prompt) )?(?:above|before this|so far|preceding|prior to "
        r"this|from the (?:start|beginning))\b[^\n]{0,60}?(?:verbatim|word for word|exactly|"
        r"starting (?:with|from)|beginning with|in full|including|in a code ?block|unchanged|"
        r"as-is|as is|raw)",
        requires="above before far preceding prior start beginning",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.7,
        "what",
        r"\bwhat (?:(?:were|are|was|is) you|you (?:were|have been|are)) (?:told|instructed|"
        r"programmed|asked|given|configured)(?: to do)? (?:before|at the (?:start|beginning)|"
        r"initially|prior|originally|in your (?:system|initial|first))",
        requires="told instructed programmed asked given configured",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.7,
        "what which",
        r"\b(?:what|which) (?:instructions|rules|guidelines|prompt|directives) (?:were|have) you "
        r"(?:been )?(?:given|told|provided|programmed with|configured with)",
        requires="given told provided programmed configured",
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.7,
        "what",
        rf"\bwhat(?:'s| is| are| was| were)(?: in| written in)? your (?:[\w-]+ )?"
        rf"{_any(_HIDDEN_PROMPT)}",
        requires=_HIDDEN_PROMPT_WORDS,
    ),
    _rule(
        SYSTEM_PROMPT_EXTRACTION,
        0.6,
        "starting beginning",
        rf"\b(?:starting|beginning) with (?:the (?:words?|phrase) )?{_QUOTE}?you are (?:chatgpt|"
        r"claude|gemini|a helpful|an ai|an assistant|a large language model)",
        requires="chatgpt claude gemini helpful ai assistant large",
    ),
    # --- jailbreak_persona ------------------------------------------------------------------
    _rule(
        JAILBREAK_PERSONA,
        0.85,
        _first_words(_PERSONA_ENTRY),
        rf"\b{_any(_PERSONA_ENTRY)} (?:now )?(?:called |named |known as )?{_QUOTE}?dan\b(?!'s)",
        requires="dan",
    ),
    _rule(JAILBREAK_PERSONA, 0.85, "dan", r"\bdan\b[^.\n]{0,40}?do anything now"),
    _rule(JAILBREAK_PERSONA, 0.85, "anything", r"\banything now\W{0,4}dan\b"),
    _rule(
        JAILBREAK_PERSONA,
        0.85,
        "stands short acronym abbreviation",
        r"\b(?:stands for|short for|acronym for|abbreviation for)\W{0,3}do anything now",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.85,
        "anything",
        r"(?<=[\"\x27\u201c\u2018(]do\x20)anything now",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "jailbreak jailbroken jailbreaking unrestricted unfiltered uncensored no",
        r"\b(?:jailbreak|jailbroken|jailbreaking|unrestricted|unfiltered|uncensored|"
        r"no[- ]limits?|no[- ]restrictions?|no[- ]filters?) mode\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.25,
        "god sudo admin root debug evil dude chaos unlocked opposite anarchy villain rogue",
        r"\b(?:god|sudo|admin|root|debug|evil|dude|chaos|unlocked|opposite|anarchy|villain|"
        r"rogue) mode\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "you",
        r"\b(?:you are|you're|you will be|you'll be) (?:now )?(?:in|running in|operating in) "
        r"(?:the )?developer mode",
        requires="developer",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "act simulate pretend emulate",
        r"\b(?:act as|simulate|pretend to be|pretend you are|emulate) [^.\n]{0,25}?developer mode",
        requires="developer",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "chatgpt gpt claude gemini llama ai assistant llm language",
        r"\b(?:chatgpt|gpt-?[\w.]*|claude|gemini|llama|ai|assistant|llm|language model) "
        r"(?:with|in) (?:the )?developer mode",
        requires="developer",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "developer",
        r"\bdeveloper mode (?:output|response|enabled\W+(?:no|ignore|any|without|uncensored))",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "you",
        r"\b(?:you are|you're|you have been|you've been) (?:now |been )?(?:jailbroken|"
        r"jailbreaked|unchained|unshackled|liberated|uncensored|unfiltered|unrestricted|"
        r"freed from (?:the |your |all |any )?(?:[\w-]+ ){0,2}?(?:confines|rules|restrictions|"
        r"limitations|shackles|chains|constraints|guidelines|polic(?:y|ies)|programming))",
        requires=_UNCHAINED_WORDS,
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.75,
        "you",
        rf"\byou are (?:now )?free (?:from|of) (?:all |any |your )?(?:[\w-]+ )?(?:{_LIMITS}|"
        r"programming|shackles|chains)",
        requires="free",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "pretend imagine act behave suppose assume respond answer let",
        r"\b(?:pretend|imagine|act as if|behave as if|suppose|assume|respond as if|answer as if|"
        r"let's say)(?: that)? you(?:'re| are| were| have| had|'ve| don't have| do not have| "
        r"lack)? (?:(?:an? )?(?:[\w-]+ ){0,2}?(?:with |that has |who has )?)?(?:no|zero|without|"
        r"free (?:of|from)|not bound by|unbound by|beyond|exempt from)(?: any)? (?:[\w-]+ )?"
        rf"{_any(_LIMITS)}",
        requires=_LIMITS_WORDS,
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        _first_words(_PERSONA_ENTRY),
        rf"\b{_any(_PERSONA_ENTRY)} (?:now )?(?:an? |my |the )?(?:[\w-]+ )?{_any(_AI)} "
        rf"(?:with|that has|who has|without) (?:no |zero |any )?(?:[\w-]+ )?{_any(_LIMITS)}",
        requires=_LIMITS_WORDS,
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        _first_words(_PERSONA_ENTRY),
        rf"\b{_any(_PERSONA_ENTRY)} (?:now )?(?:an? |my |the )?{_any(_BAD_PERSONA)} (?:[\w-]+ )?"
        rf"{_any(_AI)}\b",
        requires=_first_words(_BAD_PERSONA),
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.6,
        _first_words(_BAD_PERSONA),
        rf"\b{_any(_BAD_PERSONA)} (?:ai|assistant|chatbot|bot|llm) (?:with|that has|who has|"
        rf"without) (?:no |zero |any )?(?:[\w-]+ )?{_any(_LIMITS)}",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.7,
        "jailbroken unfiltered uncensored unrestricted unaligned amoral",
        r"\b(?:jailbroken|unfiltered|uncensored|unrestricted|unaligned|amoral) (?:version of "
        r"(?:yourself|you|chatgpt|the (?:ai|assistant|model))|twin|alter ego|persona)\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.45,
        _first_words(_BAD_PERSONA),
        rf"\b{_any(_BAD_PERSONA)} (?:version of (?:yourself|you|chatgpt)|twin|alter ego|"
        r"confidant)\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.8,
        "always mongo anti antigpt betterdan chatgpt stan",
        r"\balways intelligent and machiavellian\b|\bmongo tom\b|\banti-?gpt\b|\bbetterdan\b|"
        r"\bchatgpt with dan\b|\bstan mode\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.7,
        "jailbroken jailbreak",
        r"\b(?:jailbroken|jailbreak) (?:response|answer|reply|version|output)s?\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.45,
        "unfiltered uncensored",
        r"\b(?:unfiltered|uncensored) (?:response|answer|reply|output)s?\b",
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.45,
        "never not don can cannot won mustn",
        r"\b(?:never|not|don't|can't|cannot|won't|mustn't) (?:ever )?(?:refuses?|declines?|"
        r"breaks? character|says? (?:no|that you can't|you can't|that you cannot|it can't)|"
        r"apologi[sz]es?|adds? (?:any )?(?:warnings|disclaimers))\b",
        requires=_REFUSAL_WORDS,
    ),
    _rule(
        JAILBREAK_PERSONA,
        0.45,
        "without ignoring ignore",
        rf"\b(?:without|ignoring|ignore) (?:any |all |your )?(?:ethical|moral|safety|content) "
        rf"(?:{_LIMITS}|considerations|concerns|filtering)",
        requires="ethical moral safety content",
    ),
    _rule(JAILBREAK_PERSONA, 0.35, "stay", r"\bstay in character\b"),
    # --- encoded_instructions (stated in plain text) ----------------------------------------
    _rule(
        ENCODED_INSTRUCTIONS,
        0.6,
        "decode decipher decrypt unscramble reverse rot13 deobfuscate",
        r"\b(?:decode|decipher|decrypt|unscramble|reverse|rot13|deobfuscate)\b[^.\n]{0,60}?"
        r"\b(?:and|then)\W+(?:follow|obey|execute|carry out|comply with|act on|do what|perform) "
        r"(?:(?:the|its|those|these|any|all|whatever|what) )?(?:instructions?|commands?|"
        r"directions?|orders?|it says|they say|it tells|what it|them|it)\b",
        requires="follow obey execute carry comply act do perform",
    ),
)

_ROT13_WORDS: Final = frozenset(
    {
        "vtaber",  # ignore
        "qvfertneq",  # disregard
        "vafgehpgvbaf",  # instructions
        "flfgrz",  # system
        "wnvyoernx",  # jailbreak
        "cergraq",  # pretend
        "erirny",  # reveal
        "cebzcg",  # prompt
        "qrirybcre",  # developer
    }
)
_WORD: Final = re.compile(r"[a-z0-9_]+")


class _Lead(NamedTuple):
    """The rules a lead can start, and one regex of them all to reject a position at once."""

    rules: tuple[int, ...]
    gate: re.Pattern[str]


def _leads(rules: tuple[_Rule, ...], *, line: bool) -> dict[str, _Lead]:
    indexes: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        if rule.line == line:
            for lead in rule.leads:
                indexes.setdefault(lead, []).append(index)
    return {
        lead: _Lead(
            tuple(found),
            re.compile("|".join(rules[i].pattern.pattern for i in found), re.MULTILINE),
        )
        for lead, found in indexes.items()
    }


_WORD_LEADS: Final = _leads(_RULES, line=False)
_LINE_LEADS: Final = _leads(_RULES, line=True)
_LEAD_WORDS: Final = frozenset(
    lead for lead in (*_WORD_LEADS, *_LINE_LEADS) if _WORD.fullmatch(lead)
)
_LEAD_MARKERS: Final = tuple(
    sorted({lead for lead in (*_WORD_LEADS, *_LINE_LEADS) if not _WORD.fullmatch(lead)})
)
_MARKER_OPENERS: Final = "".join(sorted({marker[0] for marker in _LEAD_MARKERS}))
_SEPARATORS: Final = str.maketrans(
    dict.fromkeys(
        [chr(code) for code in range(128) if not _WORD.fullmatch(chr(code).lower())]
        + list("\u00a0\u2018\u2019\u201c\u201d\u2013\u2014\u2026"),
        " ",
    )
)
_ESCAPED_HEX: Final = re.compile(r"\\x[2-7][0-9a-f](?:\\x[0-9a-f]{2}){11,}")
_PREFIXED_HEX: Final = re.compile(r"0x[2-7][0-9a-f](?:[\s,]+0x[0-9a-f]{2}){11,}")
_BARE_HEX: Final = compile_pattern(
    r"([2-7][0-9a-f](?:[\t-\r\x1c-\x1f\x85\p{Z}:,-]?[2-7][0-9a-f]){11,})(?:[^0-9a-z+/]|$)"
)
"""Hex of ASCII text: every byte starts with 2-7, so such a run needs many of those digits. The
run is group 1; the character after it, which must not continue a word, is matched rather than
looked ahead at. On RE2: with `re`'s look-ahead, a long run of such digits followed by a letter
was tried again from every digit, in time quadratic in the run (16 KB of `7`s then a `g`: 14 s).
The class before `:,-` is Python's `\\s` (RE2's is ASCII only)."""
_BASE64_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_RUN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+/")
"""Characters that, just before a hex run, show it is the tail of a longer word."""
_BASE64_RUN: Final = re.compile(rf"[{re.escape(_BASE64_CHARS)}]{{{MIN_BASE64_CHARS},}}={{0,2}}")
_INVISIBLES: Final = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]+"
)
_ZERO_WIDTH: Final = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_BIDI_OVERRIDES: Final = frozenset("\u202d\u202e")
_RIGHT_TO_LEFT_OVERRIDE: Final = "\u202e"
_OVERRIDE_ENDS: Final = re.compile("[\u202c\u2069\n]")
_FLAG_BASE: Final = "\U0001f3f4"
_TAG_CANCEL: Final = "\U000e007f"
_ROT13: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")
_NEGATED: Final = _rx(
    r"(?:\b(?:never|not|refuse to|asks? you to|tells? you to|tries to|try to|attempts? to|"
    r"wants? you to|requests? (?:that )?you|instructs? you to|asking you to|telling you to)|n't) "
    r"(?:[\w-]+ ){0,2}$"
)
_DISCUSSION: Final = re.compile(
    r"prompt[- ]injection|injection attack|jailbreak(?:s|ing)?\b|attacker|adversar|red[- ]team|"
    r"classifier|detect|guardrail|security|malicious|for example|e\.g\.|such as|phrases? like|"
    r"tokeni[sz]er|special tokens?|chat template|\btemplate"
)
_SELF_REFERENCE: Final = _rx(
    r" (?:that |which )?(?:i|we) (?:just |had |have |previously |already )?(?:sent|gave|wrote|"
    r"provided|mentioned|shared|listed|emailed|posted|added|forwarded|attached|typed|pasted)\b"
)
_MENTION_CUE: Final = _rx(
    r"\b(?:such as|like|e\.g\.,?|for example,?|for instance,?|called|known as|including|"
    r"namely) $"
)
_TECHNICAL: Final = re.compile(
    r"tokeni[sz](?:er|ed|ation)|special tokens?|chat template|prompt template|fine-?tun|"
    r"jinja|apply_chat_template|\bbos\b|\beos\b"
)
_FENCE: Final = re.compile("```")
_CLOSING_SINGLE: Final = re.compile(r"['\u2019](?![a-z0-9])")


class InjectionDetector:
    """Scores a text for prompt-injection and jailbreak attempts (see the module docstring).

    Holds no state of its own (the patterns are compiled once, at import), so one instance can
    be shared by every request and thread.
    """

    def __init__(self) -> None:
        """Nothing to configure: the threshold belongs to the guardrail that reads the score."""

    def scan(self, text: str) -> CheckResult:
        if not text:
            return CLEAN
        lowered = _lower_keeping_offsets(text)
        words = _words(lowered)
        hits = _phrase_hits(lowered, words, discount=True)
        hits.extend(_encoded_hits(text, lowered, words, depth=0))
        if not text.isascii():
            hits.extend(_unicode_hits(text, hits))
        return _result(hits) if hits else CLEAN


def _result(hits: list[_Hit]) -> CheckResult:
    findings = _dedupe(hits)[:MAX_FINDINGS]
    family_scores: dict[str, float] = {}
    for hit in findings:
        family_scores[hit.family] = max(family_scores.get(hit.family, 0.0), hit.weight)
    remaining = 1.0
    for score in family_scores.values():
        remaining *= 1.0 - score
    ranked = sorted(family_scores, key=lambda family: (-family_scores[family], family))
    return CheckResult(
        findings=tuple(
            Finding(hit.family, hit.start, hit.end, round(hit.weight, 4)) for hit in findings
        ),
        score=round(min(1.0, 1.0 - remaining), 4),
        reason="prompt-injection heuristics matched: "
        + ", ".join(f"{family} ({family_scores[family]:.2f})" for family in ranked),
    )


def _dedupe(hits: list[_Hit]) -> list[_Hit]:
    """Drops a hit that lies inside a heavier (or equal and wider) hit of the same family."""
    ordered = sorted(hits, key=lambda hit: (-hit.weight, hit.start, hit.start - hit.end))
    kept: list[_Hit] = []
    for hit in ordered:
        if not any(
            other.family == hit.family and other.start <= hit.start and hit.end <= other.end
            for other in kept
        ):
            kept.append(hit)
    return sorted(kept, key=lambda hit: (hit.start, hit.family))


def _lower_keeping_offsets(text: str) -> str:
    """The text lowercased one character for one (the few characters that lowercase to two,
    such as U+0130, are left as they are), so offsets into it are offsets into the text."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


def _words(lowered: str) -> list[str]:
    return lowered.translate(_SEPARATORS).split()


def _phrase_hits(lowered: str, words: list[str], *, discount: bool) -> list[_Hit]:
    """The rules tried wherever one of their leads occurs; with `discount`, negated, reported
    and quoted matches lose weight. A rule reports at most `MAX_MATCHES_PER_RULE` matches."""
    hits: list[_Hit] = []
    matches_per_rule: dict[int, int] = {}
    context = _Context(lowered)
    vocabulary = set(words)
    for lead in _present_leads(lowered, vocabulary):
        occurrences: list[int] | None = None
        for table, line in ((_WORD_LEADS, False), (_LINE_LEADS, True)):
            entry = table.get(lead)
            if entry is None:
                continue
            enabled = [
                index
                for index in entry.rules
                if not _RULES[index].requires or not _RULES[index].requires.isdisjoint(vocabulary)
            ]
            if not enabled:
                continue
            if occurrences is None:
                occurrences = _occurrences(lowered, lead)
            starts = occurrences
            if line:
                starts = sorted({lowered.rfind("\n", 0, start) + 1 for start in starts})
            for at in starts:
                if entry.gate.match(lowered, at) is None:
                    continue
                for index in enabled:
                    if matches_per_rule.get(index, 0) >= MAX_MATCHES_PER_RULE:
                        continue
                    rule = _RULES[index]
                    match = rule.pattern.match(lowered, at)
                    if match is None:
                        continue
                    matches_per_rule[index] = matches_per_rule.get(index, 0) + 1
                    start, end = match.span()
                    weight = rule.weight
                    if discount:
                        weight *= context.discount(start, end)
                        if rule.is_token and context.is_technical:
                            weight *= TECHNICAL_FACTOR
                    hits.append(_Hit(rule.family, weight, start, end))
    return hits


def _present_leads(lowered: str, vocabulary: set[str]) -> list[str]:
    leads = list(_LEAD_WORDS & vocabulary)
    if any(opener in lowered for opener in _MARKER_OPENERS):
        leads.extend(marker for marker in _LEAD_MARKERS if marker in lowered)
    return leads


def _occurrences(lowered: str, lead: str) -> list[int]:
    """Where the lead occurs, inside longer words too: the patterns' leading `\\b` rejects
    those at once."""
    found: list[int] = []
    position = lowered.find(lead)
    while position >= 0:
        found.append(position)
        position = lowered.find(lead, position + 1)
    return found


def _plain_phrase_hits(lowered: str) -> list[_Hit]:
    return _phrase_hits(lowered, _words(lowered), discount=False)


class _Context:
    """What the discounts read around a match, worked out once per text and only when a match
    asks for it."""

    def __init__(self, lowered: str) -> None:
        self.lowered = lowered

    @functools.cached_property
    def discusses_attacks(self) -> bool:
        return _DISCUSSION.search(self.lowered) is not None

    @functools.cached_property
    def is_technical(self) -> bool:
        """Whether the text talks about tokenizers or chat templates."""
        return _TECHNICAL.search(self.lowered) is not None

    @functools.cached_property
    def fences(self) -> list[int]:
        return [match.start() for match in _FENCE.finditer(self.lowered)]

    def discount(self, start: int, end: int) -> float:
        """How much of its weight a match keeps: little when it is negated or reported ("never
        reveal ...", "if a user asks you to ignore ...") or names the writer's own words ("the
        previous instructions I sent"), half when quoted or cited ("attacks such as ...") in a
        text that discusses attacks."""
        lowered = self.lowered
        if _NEGATED.search(lowered, max(0, start - 40), start) or _SELF_REFERENCE.match(
            lowered, end
        ):
            return NEGATED_FACTOR
        mentioned = self.is_quoted(start, end) or _MENTION_CUE.search(
            lowered, max(0, start - 20), start
        )
        if mentioned and self.discusses_attacks:
            return QUOTED_FACTOR
        return 1.0

    def is_quoted(self, start: int, end: int) -> bool:
        """Whether the span sits inside quotes or code on its line, or in a fenced code block."""
        if bisect.bisect_left(self.fences, start) % 2 == 1:
            return True
        lowered = self.lowered
        line_start = lowered.rfind("\n", 0, start) + 1
        line_end = lowered.find("\n", end)
        before = lowered[line_start:start]
        after = lowered[end : len(lowered) if line_end < 0 else line_end]
        for mark in ('"', "`"):
            if before.count(mark) % 2 == 1 and mark in after:
                return True
        if before.rfind("\u201c") > before.rfind("\u201d") and "\u201d" in after:
            return True
        opening = max(before.rfind("'"), before.rfind("\u2018"))
        return (
            opening >= 0
            and (opening == 0 or not before[opening - 1].isalnum())
            and _CLOSING_SINGLE.search(after) is not None
        )


# --- encoded payloads -----------------------------------------------------------------------


def _encoded_hits(text: str, lowered: str, words: list[str], *, depth: int) -> list[_Hit]:
    """Hex, base64 and rot13 runs whose decoded text reads as an injection, each spanning the
    encoded run in `text`."""
    long_words = [word for word in words if len(word) >= MIN_PAYLOAD_WORD]
    runs = [
        (start, end, True) for start, end in itertools.islice(_hex_runs(lowered), MAX_DECODED_RUNS)
    ]
    if long_words:
        hex_spans = list(runs)
        base64_runs = (
            span
            for span in _base64_runs(text, lowered, long_words)
            if not _inside(span[0], hex_spans)
        )
        runs.extend(
            (start, end, False) for start, end in itertools.islice(base64_runs, MAX_DECODED_RUNS)
        )
    hits: list[_Hit] = []
    for start, end, is_hex in runs:
        payload = text[start : min(end, start + MAX_RUN_CHARS)]
        decoded = _decode_hex(payload) if is_hex else _decode_base64(payload)
        weight = _payload_weight(decoded, depth) if decoded is not None else 0.0
        if weight:
            hits.append(_Hit(ENCODED_INSTRUCTIONS, weight, start, end))
    if not _ROT13_WORDS.isdisjoint(words):
        hits.extend(
            _Hit(ENCODED_INSTRUCTIONS, DECODED_PAYLOAD, hit.start, hit.end)
            for hit in _plain_phrase_hits(lowered.translate(_ROT13))
            if hit.weight >= STRONG
        )
    return hits


def _hex_runs(lowered: str) -> Iterator[tuple[int, int]]:
    """Hex runs, each searched for only when the text holds what it must contain."""
    if "\\x" in lowered:
        yield from (match.span() for match in _ESCAPED_HEX.finditer(lowered))
    if "0x" in lowered:
        yield from (match.span() for match in _PREFIXED_HEX.finditer(lowered))
    if sum(lowered.count(digit) for digit in "234567") >= MIN_HEX_DIGITS:
        for found in _BARE_HEX.finditer(lowered):
            start, end = found.start, found.end
            if found.groups[1][1] != found.groups[0][1]:  # one character matched after the run
                end -= 1
            if start == 0 or lowered[start - 1] not in _RUN_CHARS:
                yield start, end


def _base64_runs(text: str, lowered: str, long_words: list[str]) -> Iterator[tuple[int, int]]:
    """The base64-looking runs around the long words (in text order), found from the words
    rather than by searching the whole text: a run of base64 must hold a long word."""
    cursor = 0
    for word in long_words:
        position = lowered.find(word, cursor)
        if position < cursor:
            continue
        before = text[max(cursor, position - MAX_RUN_CHARS) : position]
        start = position - (len(before) - len(before.rstrip(_BASE64_CHARS)))
        match = _BASE64_RUN.match(text, start)
        cursor = match.end() if match else position + len(word)
        if match is not None and _looks_like_base64(match.group()):
            yield match.span()


def _inside(position: int, runs: list[tuple[int, int, bool]]) -> bool:
    return any(start <= position < end for start, end, _ in runs)


def _payload_weight(decoded: str, depth: int) -> float:
    lowered = _lower_keeping_offsets(decoded)
    words = _words(lowered)
    weights = [hit.weight for hit in _phrase_hits(lowered, words, discount=False)]
    if depth < MAX_DEPTH:
        weights.extend(
            hit.weight for hit in _encoded_hits(decoded, lowered, words, depth=depth + 1)
        )
    if not weights:
        return 0.0
    return DECODED_PAYLOAD if max(weights) >= STRONG else SUSPICIOUS_PAYLOAD


def _looks_like_base64(run: str) -> bool:
    """Base64 of text mixes cases; a long all-lowercase word or identifier is not worth
    decoding."""
    return not run.islower() and not run.isupper()


def _decode_base64(run: str) -> str | None:
    """The run decoded, trying each of the four alignments in case the run starts with a
    character that is not part of the payload."""
    body = run.rstrip("=")
    altchars = b"-_" if ("-" in body or "_" in body) else None
    for shift in range(4):
        chunk = body[shift:]
        if len(chunk) % 4 == 1:
            chunk = chunk[:-1]
        try:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _as_text(raw)
        if decoded is not None:
            return decoded
    return None


def _decode_hex(run: str) -> str | None:
    try:
        raw = bytes.fromhex(re.sub(r"\\x|0x|[\s:,-]", "", run))
    except ValueError:
        return None
    return _as_text(raw)


def _as_text(raw: bytes) -> str | None:
    """The bytes as text when they read as text: UTF-8 and printable (random bytes rarely are,
    over the length of a payload)."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(char.isprintable() or char in "\n\r\t" for char in decoded)
    return decoded if printable >= 0.95 * len(decoded) else None


# --- hidden characters ----------------------------------------------------------------------


def _unicode_hits(text: str, found: list[_Hit]) -> list[_Hit]:
    """Invisible characters (with the text they hide or split) and lookalike letters."""
    hits: list[_Hit] = []
    runs = list(_INVISIBLES.finditer(text))
    inside_words: list[tuple[int, int]] = []
    for run in runs:
        start, end = run.span()
        chars = run.group()
        hits.extend(_tag_hits(text, start, end, chars))
        if _BIDI_OVERRIDES.intersection(chars):
            hits.append(_Hit(HIDDEN_CHARACTERS, BIDI_OVERRIDE, start, end))
        if _RIGHT_TO_LEFT_OVERRIDE in chars:
            hits.extend(_reversed_hits(text, end))
        invisible = [char for char in chars if not _is_tag(char)]
        if len(invisible) >= 8:
            hits.append(_Hit(HIDDEN_CHARACTERS, INVISIBLE_RUN, start, end))
        if (
            _ZERO_WIDTH.intersection(invisible)
            and start > 0
            and end < len(text)
            and _is_ascii_letter(text[start - 1])
            and _is_ascii_letter(text[end])
        ):
            inside_words.append((start, end))
    if len(inside_words) >= 2:
        first, last = inside_words[0][0], inside_words[-1][1]
        hits.append(_Hit(HIDDEN_CHARACTERS, INVISIBLES_INSIDE_WORDS, first, last))
    if runs:
        hits.extend(_split_word_hits(text, runs))
    hits.extend(_lookalike_hits(text, found))
    return hits


def _tag_hits(text: str, start: int, end: int, chars: str) -> list[_Hit]:
    """Tag characters spell ASCII invisibly; outside a subdivision flag (U+1F3F4, a few tags,
    CANCEL TAG) they are hidden text, worse when that text is an injection."""
    tags = "".join(
        chr(ord(char) - 0xE0000) for char in chars if _is_tag(char) and char != _TAG_CANCEL
    )
    if not tags or (start > 0 and text[start - 1] == _FLAG_BASE and len(tags) <= 7):
        return []
    hidden = _plain_phrase_hits(_lower_keeping_offsets(tags))
    weight = HIDDEN_TAG_PAYLOAD if any(hit.weight >= STRONG for hit in hidden) else HIDDEN_TAG_TEXT
    return [_Hit(HIDDEN_CHARACTERS, weight, start, end)]


def _reversed_hits(text: str, start: int) -> list[_Hit]:
    """Text after a right-to-left override displays reversed: written backwards, it shows a
    reader something harmless while the model reads the instruction (or the other way round)."""
    limit = min(len(text), start + MAX_REVERSED_CHARS)
    stop = _OVERRIDE_ENDS.search(text, start, limit)
    end = stop.start() if stop else limit
    backwards = _lower_keeping_offsets(text[start:end][::-1])
    if any(hit.weight >= STRONG for hit in _plain_phrase_hits(backwards)):
        return [_Hit(HIDDEN_CHARACTERS, REVERSED_BY_OVERRIDE, start, end)]
    return []


def _split_word_hits(text: str, runs: list[re.Match[str]]) -> list[_Hit]:
    """Phrases that appear once the invisible characters are taken out, mapped back onto the
    original text; each is reported under its family and again as hidden characters."""
    pieces: list[str] = []
    piece_starts: list[int] = []
    origins: list[int] = []
    position = 0
    length = 0
    for start, end in [run.span() for run in runs] + [(len(text), len(text))]:
        if start > position:
            piece_starts.append(length)
            origins.append(position)
            pieces.append(text[position:start])
            length += start - position
        position = end

    def original(offset: int) -> int:
        piece = bisect.bisect_right(piece_starts, offset) - 1
        return origins[piece] + offset - piece_starts[piece]

    hits: list[_Hit] = []
    for hit in _plain_phrase_hits(_lower_keeping_offsets("".join(pieces))):
        start, end = original(hit.start), original(hit.end - 1) + 1
        if end - start == hit.end - hit.start:
            continue
        hits.append(_Hit(hit.family, hit.weight, start, end))
        if hit.weight >= STRONG:
            hits.append(_Hit(HIDDEN_CHARACTERS, SPLIT_BY_INVISIBLES, start, end))
    return hits


def _lookalike_hits(text: str, found: list[_Hit]) -> list[_Hit]:
    """Phrases written in compatibility forms (fullwidth letters, mathematical alphabets) that
    NFKC folds to plain letters one for one."""
    folded = unicodedata.normalize("NFKC", text)
    if folded == text or len(folded) != len(text):
        return []
    seen = {(hit.family, hit.start, hit.end) for hit in found}
    return [
        hit
        for hit in _plain_phrase_hits(_lower_keeping_offsets(folded))
        if (hit.family, hit.start, hit.end) not in seen
    ]


def _is_tag(char: str) -> bool:
    return 0xE0000 <= ord(char) <= 0xE007F


def _is_ascii_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()
