"""Reading a ranking, or a score per candidate, out of free LLM text.

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

Score answers (`parse_scores`: "A: 0.8", "(A, 0.8)", JSON objects or lists of
{"item": ..., "score": ...}, titles for letters, chatter around them) go
through the same refusal check, title markers and candidate mentions. Each
mention takes the first number after it (before the next mention, single
capital letter or brace), or, read the other way, the last number before it;
the way that scores more candidates wins (after wins ties). Line numbering is
no score; "85%" is 0.85; a number in [0, 1] beats an out-of-range one in the
same stretch, and an out-of-range score is clipped to [0, 1] and counted. A
candidate scored twice keeps its first score (the repeat is counted); letters
beyond the list and unknown titles score nothing; an unscored candidate is
missing and scores 0.5. The same min_fraction rule decides ok.
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
class ParsedScores:
    values: tuple[float | None, ...]  # per candidate position, in [0, 1]; None: not scored
    ok: bool
    reason: str = ""  # why ok is False
    duplicates: int = 0  # repeated scores of a candidate ignored
    out_of_range: int = 0  # scores clipped into [0, 1]

    @property
    def missing(self) -> np.ndarray:
        return np.array([value is None for value in self.values], bool)

    def scores(self) -> np.ndarray:
        """The scores, 0.5 (no opinion) for the candidates the answer left out."""
        return np.array([MISSING_SCORE if value is None else value for value in self.values], np.float32)


MISSING_SCORE = 0.5


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
    text, refused = _prepare(answer, titles)
    if refused:
        return ParsedRanking((), k, False, refused)
    mentions = _merge_label_titles(text, _letter_and_title_mentions(text, labels_for(k)))
    readings = [_chain(text, mentions), _lines(text, mentions), [m for m in mentions if m.kind == "title"]]
    if not mentions:
        readings.append(_chain(text, _number_mentions(text, k)))
    best = max(readings, key=lambda r: len({m.position for m in r}))  # first wins ties
    order, duplicates = _dedupe(m.position for m in best)
    needed = _needed(k, min_fraction)
    if len(order) < needed:
        return ParsedRanking(tuple(order), k, False,
                             f"names {len(order)} of {k} candidates (needs {needed})", duplicates)
    return ParsedRanking(tuple(order), k, True, "", duplicates)


def parse_scores(answer: str, titles: Sequence[str], min_fraction: float = 0.5) -> ParsedScores:
    """Read a score in [0, 1] per candidate out of `answer`; `titles` as for parse_ranking."""
    k = len(titles)
    text, refused = _prepare(answer, titles)
    if refused:
        return ParsedScores((None,) * k, False, refused)
    mentions = _merge_label_titles(text, _letter_and_title_mentions(text, labels_for(k)))
    bounds = sorted([(m.start, m.end) for m in mentions] + _foreign_letters(text, k)
                    + [(b.start(), b.end()) for b in re.finditer(r"[{}]", text)])
    numbers = _score_numbers(text)
    readings = [_score_reading(mentions, bounds, numbers, k, after) for after in (True, False)]
    values, duplicates, clipped = max(readings, key=lambda r: sum(v is not None for v in r[0]))
    named = sum(value is not None for value in values)
    needed = _needed(k, min_fraction)
    reason = "" if named >= needed else f"scores {named} of {k} candidates (needs {needed})"
    return ParsedScores(tuple(values), not reason, reason, duplicates, clipped)


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


def _prepare(answer: str, titles: Sequence[str]) -> tuple[str, str]:
    """The answer without reasoning blocks and with echoed titles marked, and why it is
    unusable before any reading ('' when it is not: empty or a refusal)."""
    text = _THINK.sub(" ", answer or "").strip()
    if not text:
        return text, "empty answer"
    if _REFUSAL.match(text):
        return text, "refusal"
    return _mark_titles(text, titles), ""


def _needed(k: int, min_fraction: float) -> int:
    return max(2, math.ceil(min_fraction * k)) if k > 1 else 1


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


def _foreign_letters(text: str, k: int) -> list[tuple[int, int]]:
    """Spans of capital letters standing alone that are no label of the list (an unknown
    item such as "K: 0.9" when the list ends at E): they end a mention's stretch."""
    return [(m.start(), m.end()) for m in re.finditer(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])", text)
            if m.group(1) not in labels_for(k)]


@dataclasses.dataclass(frozen=True)
class _Number:
    start: int
    end: int
    value: float
    plausible: bool  # in [0, 1] (or a percentage up to 100%)


def _score_numbers(text: str) -> list[_Number]:
    numbering = {m.start(1) for m in re.finditer(r"(?m)^\s*(\d{1,2})[.)](?=\s)", text)}
    out = []
    for m in re.finditer(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)(\s*%)?(?![\d])", text):
        if m.start() in numbering:
            continue
        value = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
        out.append(_Number(m.start(), m.end(), value, 0.0 <= value <= 1.0))
    return out


def _score_reading(mentions: list[_Mention], bounds: list[tuple[int, int]], numbers: list[_Number], k: int,
                   after: bool) -> tuple[list[float | None], int, int]:
    """Per candidate its score, reading each mention's number after it (or before it)."""
    values: list[float | None] = [None] * k
    duplicates = clipped = 0
    for mention in mentions:
        if after:
            lo, hi = mention.end, min((s for s, _ in bounds if s >= mention.end), default=1 << 30)
        else:
            lo, hi = max((e for _, e in bounds if e <= mention.start), default=0), mention.start
        stretch = [n for n in numbers if lo <= n.start and n.end <= hi]
        if not after:
            stretch.reverse()  # the nearest number first
        pick = next((n for n in stretch if n.plausible), stretch[0] if stretch else None)
        if pick is None:
            continue
        if values[mention.position] is not None:
            duplicates += 1
            continue
        clipped += not pick.plausible
        values[mention.position] = min(max(pick.value, 0.0), 1.0)
    return values, duplicates, clipped


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
