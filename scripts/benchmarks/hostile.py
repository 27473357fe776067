"""Hostile drafts: the engine's worst case, and Presidio's analyzer on the same posts.

``shapes()`` builds 64 KB drafts of the shapes that once made the engine quadratic or
that stress one reader each (digit runs for the number reader, "@" and " at " for
e-mail, dots for links, single letters for the word view, hidden characters and mixed
scripts for the disguise check). ``worst_case(engine)`` prints the CPU time of one check
of each (the least of ``REPEAT`` runs: on a shared machine the least is the one least
disturbed), target ≤ 50 ms each.

``presidio(posts)`` runs Microsoft Presidio's ``AnalyzerEngine`` with pattern recognizers
only (its predefined regex recognizers for e-mail, phone, IBAN, credit card, IP, URL …;
no spaCy model: a stub NLP engine that returns no entities) on the same posts, in a
subprocess of ``PRESIDIO_PYTHON`` (default: this interpreter), so that the project's
environment does not need spaCy. Without presidio-analyzer it says so.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

from proxy.compliance.engine import Engine
from proxy.compliance.model import CheckRequest

SIZE = 65_536
REPEAT = 3
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _fill(unit: str) -> str:
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


def shapes() -> dict[str, str]:
    rng = random.Random(1)
    return {
        "2 2 2 …": _fill("2 "),
        "random digits and spaces": "".join(rng.choice("0123456789 ") for _ in range(SIZE)),
        "random digit groups": " ".join(str(rng.randint(0, 9999)) for _ in range(SIZE // 3))[
            :SIZE
        ],
        "a phone number per line": _fill("29123456\n"),
        "digits only": _fill("2"),
        "2-2-2 …": _fill("2-"),
        "+1 +1 …": _fill("+1 "),
        "one letter": _fill("a"),
        "a.a.a …": _fill("a."),
        "a@a@ …": _fill("a@"),
        "x.y at z. …": _fill("a.b at c."),
        "a dot b at c dot …": _fill("a dot b at c dot "),
        "idiot idiot … (one term)": _fill("idiot "),
        "buy now … (a rule with unless)": _fill("buy now "),
        "café, highly recommend … (near)": _fill("cafe highly recommend "),
        "Labour has … (party patterns)": _fill("Labour has "),
        "partija kauns … (near)": _fill("partija kauns "),
        "Labour has ruined. … (same sentence)": _fill("Labour has ruined it. "),
        "my mobile 07700 900 418 …": _fill("text me on my mobile 07700 900 418 "),
        "is a m o r o n …": _fill("is a m o r o n "),
        "#abcbudget2027 … (hashtags)": _fill("#abcbudget2027 "),
        "1a1a …": _fill("1a"),
        "a b c … (spelled)": _fill("a "),
        "zero-width in words": _fill("a\u200b"),
        "mixed scripts": _fill("a\u0430 "),
        "http:// …": _fill("http://"),
        "LV80 … (IBAN starts)": _fill("LV80 "),
        "J12345678 … (NIPT shapes)": _fill("J12345678 "),
        "idiosyncratic … (lemma look-ups)": _fill("idiosyncratic "),
        "Latvian prose": _fill("Šodien ministrija publicēja ziņojumu par budžetu un ceļiem. "),
        "emoji": _fill("😀a"),
    }


def _cpu_ms(engine: Engine, text: str) -> float:
    # model_construct: the API caps drafts at 50,000 characters; the engine is timed alone
    request = CheckRequest.model_construct(
        text=text, account="personal", platform=None, attachments=[], at=AT, lang=None,
        official_allowed=None,
    )
    best = float("inf")
    for _ in range(REPEAT):
        start = time.process_time()
        engine.check(request, "bench")
        best = min(best, time.process_time() - start)
    return best * 1000


def worst_case(engine: Engine) -> float:
    print(f"== hostile drafts of {SIZE // 1024} KB (CPU ms per check, least of {REPEAT}; "
          "target ≤ 50 ms each)")
    worst = 0.0
    for name, text in shapes().items():
        ms = _cpu_ms(engine, text)
        worst = max(worst, ms)
        print(f"  {name:<34} {ms:7.1f} ms")
    print(f"worst {worst:.1f} ms: target {'met' if worst <= 50 else 'MISSED'}")
    return worst


_PRESIDIO = r"""
import json, sys, time, statistics
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

class NoModel(NlpEngine):
    # Presidio's NLP engine interface without a model: no tokens, no entities.
    def load(self): pass
    def is_loaded(self): return True
    def process_text(self, text, language):
        return NlpArtifacts(entities=[], tokens=[], tokens_indices=[], lemmas=[],
                            nlp_engine=self, language=language)
    def process_batch(self, texts, language, batch_size=1, n_process=1, **kwargs):
        for text in texts:
            yield text, self.process_text(text, language)
    def is_stopword(self, word, language): return False
    def is_punct(self, word, language): return False
    def get_supported_entities(self): return []
    def get_supported_languages(self): return ["en"]

registry = RecognizerRegistry()
registry.load_predefined_recognizers(languages=["en"])
registry.recognizers = [r for r in registry.recognizers
                        if type(r).__name__ not in ("SpacyRecognizer",)]
analyzer = AnalyzerEngine(registry=registry, nlp_engine=NoModel(), supported_languages=["en"])
posts = json.load(sys.stdin)
for post in posts:
    analyzer.analyze(post, language="en")
samples = []
for i in range(2000):
    post = posts[i % len(posts)]
    start = time.perf_counter()
    analyzer.analyze(post, language="en")
    samples.append(time.perf_counter() - start)
samples.sort()
print(json.dumps({"p50": statistics.median(samples), "p99": samples[int(len(samples) * .99)],
                  "recognizers": sorted(type(r).__name__ for r in registry.recognizers)}))
"""


def presidio(posts: list[str]) -> tuple[float, float] | None:
    """Presidio's p50/p99 seconds on ``posts``, or None where it cannot run here."""
    python = os.environ.get("PRESIDIO_PYTHON", sys.executable)
    try:
        done = subprocess.run(
            [python, "-c", _PRESIDIO], input=json.dumps(posts), capture_output=True,
            text=True, timeout=600, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"Presidio: could not run ({exc})")
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"Presidio analyzer not measured ({last}); install presidio-analyzer in an "
              "environment and point PRESIDIO_PYTHON at its python")
        return None
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"Presidio AnalyzerEngine, pattern recognizers only ({len(answer['recognizers'])}: "
          f"{', '.join(answer['recognizers'])}), no NLP model: "
          f"p50 {answer['p50'] * 1e6:,.0f} µs  p99 {answer['p99'] * 1e6:,.0f} µs")
    return answer["p50"], answer["p99"]
