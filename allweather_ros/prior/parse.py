"""Free-text weather descriptions (a VLM's answer, a user's note) -> structured prior fields.

VLMs answer in their own words ("a downpour", "water droplets on the lens", "it isn't foggy"),
so the parser maps synonyms onto the four TYPES, honours negations and hedges, and turns how
clearly the answer commits into a confidence the refresher uses to avoid acting on guesses.
It is a lexicon and a few scoping rules, not a model: fast, deterministic and auditable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from allweather_ros.description import (
    LOCATIONS,
    SEVERITIES,
    TYPES,
    Degradation,
    describe,
    placed,
)

NO_SEVERITY = "none"

# Raindrops come first: their matches are blanked out so that "rain drops" is not also rain.
_MENTIONS = {
    "raindrop": (
        r"rain ?drop\w*|(?:water )?droplets?|water (?:drops?|spots?|beads?)"
        r"|(?:drops?|water) (?:of (?:water|rain) )?on the (?:lens|camera|glass|wind\w+|window)"
        r"|(?:wet|smeared) (?:lens|camera|glass|wind\w+)"
    ),
    "rain": r"rain(?:s|y|ing|fall|ed)?|drizzl\w*|downpours?|showers?|streak\w*|precipitation"
    r"|(?:thunder|rain ?)?storms?",
    "snow": r"snow\w*|(?:snow ?)?flakes?|blizzards?|flurr(?:y|ies)|sleet\w*",
    "haze": r"haz(?:e|y|iness)|fog\w*|mist(?:y|s)?|smog\w*|murk\w*",
}
_MENTION_RES = {t: re.compile(rf"\b(?:{p})\b") for t, p in _MENTIONS.items()}

# Severity implied by the word itself, unless a modifier says otherwise ("heavy drizzle").
_IMPLIED = {"drizzl": "slight", "mist": "slight", "downpour": "heavy", "blizzard": "heavy",
            "storm": "heavy", "flurr": "slight"}
_MODIFIERS = {
    "slight": {"slight", "slightly", "light", "lightly", "mild", "mildly", "minor", "faint",
               "faintly", "thin", "little", "sparse", "weak", "gentle", "small", "few"},
    "moderate": {"moderate", "moderately", "medium", "noticeable", "fair", "steady"},
    "heavy": {"heavy", "heavily", "dense", "thick", "severe", "severely", "strong", "intense",
              "torrential", "significant", "extreme", "considerable", "pouring", "lots", "massive"},
}
_SEVERITY_OF = {w: s for s, words in _MODIFIERS.items() for w in words}
_DEFAULT_SEVERITY = "moderate"

_NEGATORS = {"no", "not", "without", "none", "neither", "nor", "never", "free", "absence",
             "lack", "lacks", "nothing"}
_SCOPE_BREAKS = {"and", "with", "plus", "also", "yet"}
_POST_NEGATION = re.compile(
    r"^\s*(?:\w+\s+){0,2}?(?:(?:is|are|was|were)\s+)?"
    r"(?:absent|not\s+(?:present|visible|seen|observed|evident|apparent|detected|there))\b"
)
# Words that weaken a claim, with the probability a claim so worded is right.
_HEDGES = {"possibly": 0.6, "maybe": 0.6, "might": 0.6, "may": 0.6, "could": 0.6,
           "perhaps": 0.6, "unclear": 0.6, "uncertain": 0.6, "unsure": 0.6,
           "likely": 0.75, "probably": 0.75, "appears": 0.75, "seems": 0.75, "suggests": 0.75}
_CERTAIN = 0.9
_NEGATED = 0.05
_UNMENTIONED = 0.1  # the question asked about every type, so silence on one leans to "absent"
_CLEAN_RE = re.compile(
    r"\b(?:clear|clean|sunny|undegraded|not degraded|no (?:\w+ ){0,3}?(?:degradation|weather"
    r"|artifacts|distortions?))\b|^\s*no\s*$"
)
_CLAUSE_SPLIT = re.compile(r"[.;:!?\n]+|\b(?:but|however|whereas|although|though|except)\b")
# "No, the image is clear": "no" answers the question, it negates nothing after it.
_ANSWER_WORD = re.compile(r"^\s*(?:yes|no)\s*,")
_WORD = re.compile(r"[a-z]+")
_LOCATION_RE = re.compile("|".join(map(re.escape, LOCATIONS)))
_NEGATION_WINDOW = 6
_MODIFIER_WINDOW = 3


@dataclass(frozen=True)
class ParsedDescription:
    """labels: probability per TYPE; confidence: how unambiguously the text commits, in [0, 1]
    (0 = nothing recognisable); severities: each present type's severity (absent types are
    left out); locations: where a present type lies, when said in the training descriptions'
    words (description.LOCATIONS)."""

    labels: dict[str, float]
    confidence: float
    severities: dict[str, str] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """The worst present type's severity, or "none"."""
        return max(self.severities.values(), key=SEVERITIES.index, default=NO_SEVERITY)

    def canonical_text(self) -> str | None:
        """The claim restated in the training descriptions' words (`description.describe`), or
        None when nothing was recognised. The restorer learnt the tokens of those sentences,
        so a VLM's free-form answer is encoded in this form rather than verbatim; a type claimed
        without a hedge and not placed is said across the whole frame (description.placed)."""
        if self.confidence == 0.0:
            return None
        return describe(self.degradations())

    def degradations(self) -> list[Degradation]:
        """Each present type at its severity, placed as `canonical_text` says it."""
        return [Degradation(t, s, placed(self.labels[t], self.locations.get(t)))
                for t, s in self.severities.items()]


def parse(text: str) -> ParsedDescription:
    """Parse a free-text weather description; see the module docstring."""
    normalised = text.lower().replace("n't", " not").replace("-", " ")
    votes: dict[str, list[float]] = {t: [] for t in TYPES}
    severities: dict[str, list[str]] = {t: [] for t in TYPES}
    locations: dict[str, str] = {}
    clean = False
    for clause in _CLAUSE_SPLIT.split(normalised):
        clause = _ANSWER_WORD.sub("", clause)
        clean |= bool(_CLEAN_RE.search(clause))
        mentions = _mentions(clause)
        for k, (mention_type, start, end, word) in enumerate(mentions):
            negated = _negated(clause, start, end)
            votes[mention_type].append(_NEGATED if negated else _belief(clause[:start]))
            if not negated:
                severities[mention_type].append(_severity(clause, start, end, word))
                upto = mentions[k + 1][1] if k + 1 < len(mentions) else len(clause)
                if where := _LOCATION_RE.search(clause, end, upto):
                    locations.setdefault(mention_type, where.group())
    mentioned = [t for t in TYPES if votes[t]]
    if not mentioned and not clean:
        return ParsedDescription({t: 0.5 for t in TYPES}, 0.0)
    affirmed = any(p > 0.5 for v in votes.values() for p in v)
    absent = _NEGATED if clean and not affirmed else _UNMENTIONED
    labels = {t: round(sum(votes[t]) / len(votes[t]), 4) if votes[t] else absent for t in TYPES}
    worst = {t: max(severities[t], key=SEVERITIES.index, default=_DEFAULT_SEVERITY)
             for t in TYPES if labels[t] > 0.5}
    confidence = min((abs(2 * labels[t] - 1) for t in mentioned), default=1 - 2 * _NEGATED)
    return ParsedDescription(labels, round(confidence, 4), worst,
                             {t: w for t, w in locations.items() if t in worst})


def _mentions(clause: str) -> list[tuple[str, int, int, str]]:
    """(type, start, end, word) of each weather mention, in order; raindrops claimed first."""
    found = []
    for mention_type, pattern in _MENTION_RES.items():
        for m in pattern.finditer(clause):
            found.append((mention_type, m.start(), m.end(), m.group()))
        clause = pattern.sub(lambda m: " " * len(m.group()), clause)
    return sorted(found, key=lambda f: f[1])


def _scope(words: list[str], window: int) -> list[str]:
    """The first `window` words, cut at a conjunction that starts a new claim ("... and ...")."""
    words = words[:window]
    cut = next((i for i, w in enumerate(words) if w in _SCOPE_BREAKS), len(words))
    return words[:cut]


def _words_before(clause: str, start: int, window: int) -> list[str]:
    """Up to `window` words before `start`, nearest first, within the mention's scope."""
    return _scope(_WORD.findall(clause[:start])[::-1], window)


def _belief(before: str) -> float:
    """Probability that a claim is right, lowered by a hedge earlier in its clause ("might")."""
    return min((_HEDGES[w] for w in _WORD.findall(before) if w in _HEDGES), default=_CERTAIN)


def _negated(clause: str, start: int, end: int) -> bool:
    """A negator shortly before the mention ("no rain or snow"), or "is absent", "not visible"
    shortly after it ("rain is not visible")."""
    if any(w in _NEGATORS for w in _words_before(clause, start, _NEGATION_WINDOW)):
        return True
    return bool(_POST_NEGATION.match(clause[end:]))


def _severity(clause: str, start: int, end: int, word: str) -> str:
    """Nearest modifier before the mention ("heavy rain"), else shortly after ("rain is heavy"),
    else the one the word implies ("downpour"), else moderate."""
    before = _words_before(clause, start, _MODIFIER_WINDOW)
    after = _scope(_WORD.findall(clause[end:]), _MODIFIER_WINDOW + 1)
    for w in [*before, *after]:
        if w in _SEVERITY_OF:
            return _SEVERITY_OF[w]
    return next((s for stem, s in _IMPLIED.items() if word.startswith(stem)), _DEFAULT_SEVERITY)
