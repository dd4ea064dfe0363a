"""Reading a ranking out of free LLM text.

Models answer in many shapes: "C > A > B", numbered lines ("1. C", "2. A (...)"),
titles instead of letters, candidate numbers, partial lists, duplicated letters,
chatter around the list, refusals. The parser first replaces every echoed
candidate title by a private marker (so letters inside titles never count as
labels), then reads the answer three ways and keeps the reading that names
the most candidates:

- chain: the longest run of mentions separated only by separators
  (">", ",", newlines, numbering, bullets, parenthesised remarks);
- lines: the first mention at the start of each line, after numbering/bullets;
- titles: the order in which candidate titles are echoed.

Candidate numbers (1..k) are read only when the answer holds no letter label
and no title at all. Candidates the answer leaves out are returned as missing;
the answer is unusable (ok=False) when it names fewer than
max(2, ceil(min_fraction * k)) candidates or opens with a refusal.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from sllmr_tf.scoring.prompts import clean_title, labels_for

_MARK0 = 0xE000  # Unicode private-use markers stand for echoed titles
_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_REFUSAL = re.compile(r"^\W*(i'?m sorry|sorry|i can ?not|i can'?t|i am unable|i'?m unable|i won'?t|"
                      r"as an ai|i do not|i don'?t)\b", re.I)
_PAREN = re.compile(r"\([^()\n]*\)|\[[^\[\]\n]*\]")
_SEPARATORS = re.compile(r"^(?:[\s>,;:.=*'\"“”`|/#~_\-–—→)(\]\[]|\d{1,2}[.):]|\band\b|\bthen\b)*$", re.I)
_ITEM_BREAK = re.compile(r"[>,;\n]")
_BULLET = re.compile(r"^\s*(?:[-*•#>\[(\"'“]+\s*|\d{1,2}\s*[.):]\s*|\(?\d{1,2}\)\s*|(?:rank|top)\s*\d*\s*[:.]\s*)*",
                     re.I)


@dataclasses.dataclass(frozen=True)
class ParsedRanking:
    order: tuple[int, ...]  # candidate positions named by the answer, preferred first
    num_candidates: int
    ok: bool
    reason: str = ""  # why ok is False
    duplicates: int = 0  # repeated mentions ignored

    @property
    def missing(self) -> np.ndarray:
        flags = np.ones(self.num_candidates, bool)
        flags[list(self.order)] = False
        return flags

    def scores(self) -> np.ndarray:
        """Higher = preferred: k, k-1, ... for named candidates, 0 for the missing ones
        (tied, below every named candidate)."""
        out = np.zeros(self.num_candidates, np.float32)
        for rank, position in enumerate(self.order):
            out[position] = self.num_candidates - rank
        return out


@dataclasses.dataclass(frozen=True)
class _Mention:
    position: int  # candidate position
    start: int
    end: int
    kind: str  # "label" | "title" | "number"


def parse_ranking(answer: str, titles: Sequence[str], min_fraction: float = 0.5) -> ParsedRanking:
    """Read the candidate order out of `answer`; `titles` are the candidates' titles in
    the order presented (raw or cleaned: both are cleaned here)."""
    k = len(titles)
    labels = labels_for(k)
    text = _THINK.sub(" ", answer or "").strip()
    if not text:
        return ParsedRanking((), k, False, "empty answer")
    if _REFUSAL.match(text):
        return ParsedRanking((), k, False, "refusal")
    text = _mark_titles(text, titles)
    mentions = _merge_label_titles(text, _letter_and_title_mentions(text, labels))
    readings = [_chain(text, mentions), _lines(text, mentions), [m for m in mentions if m.kind == "title"]]
    if not mentions:
        readings.append(_chain(text, _number_mentions(text, k)))
    best = max(readings, key=lambda r: len({m.position for m in r}))  # first wins ties
    order, duplicates = _dedupe(m.position for m in best)
    needed = max(2, math.ceil(min_fraction * k)) if k > 1 else 1
    if len(order) < needed:
        return ParsedRanking(tuple(order), k, False,
                             f"names {len(order)} of {k} candidates (needs {needed})", duplicates)
    return ParsedRanking(tuple(order), k, True, "", duplicates)


def label_logprob_scores(top_logprobs: Iterable[Mapping], num_candidates: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Scores from the top log-probabilities of the answer's first letter token.

    Each candidate scores the highest log-probability of a token that is its label
    (surrounding spaces and punctuation ignored); labels absent from the list are
    missing and score below every present one.
    """
    labels = labels_for(num_candidates)
    best = np.full(num_candidates, -np.inf)
    for entry in top_logprobs:
        token = str(entry.get("token", "")).strip().strip("\"'*.:)(")
        if len(token) == 1 and token in labels:
            position = labels.index(token)
            best[position] = max(best[position], float(entry.get("logprob", -np.inf)))
    missing = ~np.isfinite(best)
    floor = best[~missing].min() - 1.0 if (~missing).any() else 0.0
    return np.where(missing, floor, best).astype(np.float32), missing


def _mark_titles(text: str, titles: Sequence[str]) -> str:
    """Replace echoed titles (as shown in the prompt or as in the data; quoted always,
    unquoted when long enough to be unambiguous) by one marker character each, longest
    first so no title eats part of another."""
    forms = [(form, position) for position, title in enumerate(titles)
             for form in {clean_title(title), " ".join(str(title).split())} if form]
    for form, position in sorted(forms, key=lambda f: -len(f[0])):
        marker = chr(_MARK0 + position)
        pattern = r"\s+".join(re.escape(word) for word in form.split())  # any whitespace between words
        text = re.sub(r'["“”]' + pattern + r'["“”]', marker, text, flags=re.I)
        if len(form) >= 6:
            text = re.sub(r"(?<!\w)" + pattern + r"(?!\w)", marker, text, flags=re.I)
    return text


def _letter_and_title_mentions(text: str, labels: str) -> list[_Mention]:
    pattern = re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])|([\ue000-\ue0ff])")
    out = []
    for m in pattern.finditer(text):
        if m.group(1):
            if m.group(1) in labels:
                out.append(_Mention(labels.index(m.group(1)), m.start(), m.end(), "label"))
        else:
            position = ord(m.group(2)) - _MARK0
            if position < len(labels):
                out.append(_Mention(position, m.start(), m.end(), "title"))
    return out


def _number_mentions(text: str, k: int) -> list[_Mention]:
    out = []
    for m in re.finditer(r"(?<![\d.])(\d{1,2})(?![\d])", text):
        if 1 <= int(m.group(1)) <= k:
            out.append(_Mention(int(m.group(1)) - 1, m.start(), m.end(), "number"))
    return out


def _merge_label_titles(text: str, mentions: list[_Mention]) -> list[_Mention]:
    """"C. <title>" or "<title> (C)" is one mention. When label and title disagree the
    title wins: models that re-list candidates in their own order tend to relabel
    them A, B, C, ... as enumerators, while a copied title names the item."""
    out: list[_Mention] = []
    for mention in mentions:
        if out and {out[-1].kind, mention.kind} == {"label", "title"}:
            gap = text[out[-1].end:mention.start]
            if not _ITEM_BREAK.search(gap) and _is_separator(gap):
                title = out[-1] if out[-1].kind == "title" else mention
                out[-1] = _Mention(title.position, out[-1].start, mention.end, "label")
                continue
        out.append(mention)
    return out


def _is_separator(gap: str) -> bool:
    return bool(_SEPARATORS.match(_PAREN.sub(" ", gap)))


def _chain(text: str, mentions: list[_Mention]) -> list[_Mention]:
    best: list[_Mention] = []
    run: list[_Mention] = []
    for mention in mentions:
        if run and not _is_separator(text[run[-1].end:mention.start]):
            run = []
        run.append(mention)
        if len({m.position for m in run}) > len({m.position for m in best}):
            best = list(run)
    return best


def _lines(text: str, mentions: list[_Mention]) -> list[_Mention]:
    by_start = {m.start: m for m in mentions}
    out = []
    offset = 0
    for line in text.split("\n"):
        lead = _BULLET.match(line)
        start = offset + (lead.end() if lead else 0)
        if start in by_start:
            out.append(by_start[start])
        offset += len(line) + 1
    return out


def _dedupe(positions: Iterable[int]) -> tuple[list[int], int]:
    order: list[int] = []
    duplicates = 0
    for position in positions:
        if position in order:
            duplicates += 1
        else:
            order.append(position)
    return order, duplicates
