"""The detectors of a policy, built once per policy load (``build``).

Every rule the policy sets gets the detectors that report for it: the lexicon (terms of
every rule, exception phrases, code names, embargo terms: one automaton), each rule's
patterns, and for ``personal-data`` and ``unsafe-link`` their own readers. A rule the
policy does not set gets none.
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.compliance.config import ComplianceConfig, Rule
from proxy.compliance.detectors import Registry
from proxy.compliance.identifiers import Identifiers
from proxy.compliance.lexicon import Entry, Lexicon, Term
from proxy.compliance.links import LinkChecker
from proxy.compliance.patterns import PatternDetector, Patterns


def lexicon_terms(config: ComplianceConfig, rules: dict[str, Rule]) -> list[Term]:
    terms: list[Term] = []
    for rule_id, rule in rules.items():
        for lang, items in rule.terms.items():
            terms += [Term(t, Entry(rule_id), lang, rule.gap) for t in items]
        for lang, items in rule.exceptions.items():
            terms += [Term(t, Entry(rule_id, "except"), lang) for t in items]
    if "classified" in rules:
        gap = rules["classified"].gap
        terms += [Term(t, Entry("classified"), "any", gap) for t in config.code_names]
    if "embargo" in rules:
        for i, embargo in enumerate(config.embargoes):
            terms += [Term(t, Entry("embargo", ref=i), "any", embargo.gap) for t in embargo.terms]
    return terms


def build(config: ComplianceConfig, rules: dict[str, Rule], domains: Sequence[str]) -> Registry:
    registry = Registry()
    lexicon = Lexicon(lexicon_terms(config, rules))
    if lexicon.size:
        registry.add(lexicon)
    patterns = [PatternDetector(r, p) for r, rule in rules.items() for p in rule.patterns]
    if patterns:
        registry.add(Patterns(patterns))
    if "personal-data" in rules:
        registry.add(Identifiers(config.personal_data))
    if "unsafe-link" in rules:
        registry.add(LinkChecker(config.links, list(domains)))
    return registry
