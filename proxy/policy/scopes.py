"""Who approves what: the policy's approval scopes, as pure functions.

A person here is anything with a ``name``, ``roles`` and a ``department`` (the store's
``User`` is one); nothing in this module reads a database or a request.

- ``is_approver``: may see the approver pages (the ``approver`` or ``admin`` role, or named
  by name or ``role:`` in one of the policy's ``approvals`` rules).
- ``may_decide``: may approve or reject one request (never their own; ``admin`` decides
  everything; without ``approvals`` rules every ``approver`` decides everything; with rules,
  a rule must list the approver and match the requester's roles, the platform and the
  requester's department — empty lists match anything).
- ``grant_cap_minutes``: the longest temporary access a requester may get.
- ``may_review``: may approve or return one author's draft (review before posting): the
  same shape over the policy's ``reviews.rules``; ``is_reviewer``: may see ``/reviews``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from proxy.policy.model import ApprovalRule, Policy, ReviewRule, Role

APPROVER_ROLES = frozenset({"approver", "admin"})


class Person(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def roles(self) -> Sequence[str]: ...

    @property
    def department(self) -> str | None: ...


def _listed(approvers: list[str], person: Person) -> bool:
    return any(a == person.name or (a.startswith("role:") and a[5:] in person.roles)
               for a in approvers)


def _applies(rule: ApprovalRule | ReviewRule, person: Person | None, platform: str) -> bool:
    """Whether a rule takes in this person's request or draft for ``platform``: one of its
    roles, its platforms and its departments (each list empty: anything)."""
    roles = set(person.roles) if person is not None else set()
    department = person.department if person is not None else None
    return not ((rule.roles and not roles.intersection(rule.roles))
                or (rule.platforms and platform not in rule.platforms)
                or (rule.departments and department not in rule.departments))


def is_approver(person: Person, policy: Policy | None = None) -> bool:
    """May see the approver pages."""
    if any(role in APPROVER_ROLES for role in person.roles):
        return True
    return policy is not None and any(_listed(r.approvers, person) for r in policy.approvals)


def may_decide(policy: Policy, approver: Person, requester: Person | None, platform: str,
               requester_name: str) -> bool:
    """Whether ``approver`` may approve or reject a request of ``requester`` for
    ``platform`` (see the module's docstring)."""
    if approver.name == requester_name:
        return False
    if "admin" in approver.roles:
        return True
    if not policy.approvals:
        return "approver" in approver.roles
    return any(_applies(rule, requester, platform) and _listed(rule.approvers, approver)
               for rule in policy.approvals)


def grant_cap_minutes(policy: Policy, requester: Person | None) -> int:
    """The largest ``max_grant_hours`` among the requester's roles (the role default when
    they hold none), in minutes."""
    hours = [policy.roles[r].max_grant_hours for r in (requester.roles if requester else ())
             if r in policy.roles]
    default = Role.model_fields["max_grant_hours"].default
    return int(max(hours, default=default)) * 60


def may_review(policy: Policy, reviewer: Person, author: Person | None, platform: str,
               author_name: str) -> bool:
    """Whether ``reviewer`` may approve or return a draft of ``author`` for ``platform``:
    never their own; ``admin`` reviews everything; without ``reviews.rules`` every
    ``approver`` does; with rules, one must list the reviewer and match the author."""
    if reviewer.name == author_name:
        return False
    if "admin" in reviewer.roles:
        return True
    rules = policy.reviews.rules
    if not rules:
        return "approver" in reviewer.roles
    return any(_applies(rule, author, platform) and _listed(rule.reviewers, reviewer)
               for rule in rules)


def is_reviewer(person: Person, policy: Policy) -> bool:
    """May see the reviewer pages."""
    if any(role in APPROVER_ROLES for role in person.roles):
        return True
    return any(_listed(r.reviewers, person) for r in policy.reviews.rules)
