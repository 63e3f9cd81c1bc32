"""Searches of stored text and logs that cannot match an unrelated number or id by accident.

A dump of stored rows holds ids (hex), timestamps and latencies (`141117.9`); a log holds line
numbers and times. A bare substring check such as `"4111" not in dump` fails whenever one of them
happens to contain those digits. These helpers look for a value only as a token of its own.
"""

from __future__ import annotations

import re


def contains_number(text: str, number: str) -> bool:
    """Whether the digits of `number` occur in `text` as a number of their own.

    The digits may be written grouped or not (`4111 1111 1111 1111`, `4111-1111-...`,
    `4111111111111111`). Digits that run on into letters, other digits or a decimal point belong
    to another token (an id, a timestamp, a latency) and never count.
    """
    digits = re.sub(r"\D", "", number)
    if not digits:
        raise ValueError(f"{number!r} has no digits")
    spelled = r"[ -]?".join(digits)
    return re.search(rf"(?<![\w.]){spelled}(?!\w|\.\d)", text) is not None
