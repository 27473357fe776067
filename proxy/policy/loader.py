"""Load a policy directory into a validated ``Policy``, with errors that name file and line.

A policy directory holds YAML files whose top-level keys are sections of one policy
document; they are merged in sorted path order (``tests/`` holds policy tests and is not
part of the policy). ``policy.yaml`` may say ``extends: ../base``: the base directory is
loaded first and this directory's document is merged onto it:

- mappings merge key by key;
- lists are concatenated (an entry already present is not repeated); a list tagged
  ``!replace`` replaces the inherited one instead;
- scalars replace.

Reading is bounded and strict (policy files come from many hands): a file larger than
``MAX_FILE_BYTES`` is refused unread; at most ``MAX_ALIASES`` aliases (``*name``) per
file and ``MAX_NODES`` values after expanding them (so an "alias bomb" is refused in
milliseconds, not expanded into gigabytes); and only the plain YAML types are taken
(mappings, lists, text, numbers, booleans, null, dates, ``<<`` merges, ``!replace``):
any other tag, ``!!python/object`` included, on a scalar, list or mapping, is an error
naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from proxy.compliance.config import tightening_errors
from proxy.policy.model import Policy, _RefError

Loc = tuple[str | int, ...]
REPLACE_TAG = "!replace"
MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 16
MAX_NODES = 200_000
_STANDARD = "tag:yaml.org,2002:"
MAPPING_TAGS = frozenset({_STANDARD + "map"})
SEQUENCE_TAGS = frozenset({_STANDARD + "seq", REPLACE_TAG})
SCALAR_TAGS = frozenset(_STANDARD + name for name in (
    "str", "int", "float", "bool", "null", "timestamp", "merge"))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class PolicyError(Exception):
    """A policy that cannot be used; ``problems`` say where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    digest: str
    """Hash of the merged document: changes whenever any effective setting changes."""
    files: tuple[Path, ...]
    """Every file read, bases included (what a watcher must watch)."""
    directories: tuple[Path, ...]
    """This directory first, then the ones it extends."""

    @property
    def version(self) -> str:
        return f"{self.policy.version}+{self.digest[:8]}"


class _Replace(list[Any]):
    """A list that replaces, rather than extends, the inherited one."""


@dataclass
class _Document:
    data: dict[str, Any] = field(default_factory=dict)
    where: dict[Loc, tuple[str, int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, counting aliases as it composes and values as they are built."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.aliases = 0
        self.nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise PolicyError([Problem(self.file, mark.line + 1, "",
                                           f"more than {MAX_ALIASES} aliases (*name) in one "
                                           "file; write the values out")])
        return super().compose_node(parent, index)


def _refuse_tag(file: str, node: yaml.Node, loc: Loc) -> PolicyError:
    return PolicyError([Problem(file, node.start_mark.line + 1, _dotted(loc),
                                f"the tag {node.tag} is not allowed in a policy (only plain "
                                "YAML values and !replace)")])


def _construct(
    loader: _Loader, node: yaml.Node, loc: Loc, file: str, where: dict[Loc, tuple[str, int]]
) -> Any:
    loader.nodes += 1
    if loader.nodes > MAX_NODES:
        raise PolicyError([Problem(file, node.start_mark.line + 1, _dotted(loc),
                                   f"more than {MAX_NODES} values once aliases are expanded "
                                   "(an alias bomb?)")])
    where[loc] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        if node.tag not in MAPPING_TAGS:
            raise _refuse_tag(file, node, loc)
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise PolicyError(
                    [Problem(file, key_node.start_mark.line + 1, _dotted(loc), "keys must be text")]
                )
            key = _scalar(loader, key_node, loc, file)
            if not isinstance(key, str | int | bool):
                raise PolicyError(
                    [Problem(file, key_node.start_mark.line + 1, _dotted(loc), "keys must be text")]
                )
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise PolicyError(
                    [Problem(file, key_node.start_mark.line + 1, _dotted((*loc, key)),
                             "appears twice in the same mapping")]
                )
            out[key] = _construct(loader, value_node, (*loc, key), file, where)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag not in SEQUENCE_TAGS:
            raise _refuse_tag(file, node, loc)
        items = [
            _construct(loader, item, (*loc, i), file, where) for i, item in enumerate(node.value)
        ]
        return _Replace(items) if node.tag == REPLACE_TAG else items
    if node.tag == REPLACE_TAG:
        raise PolicyError(
            [Problem(file, node.start_mark.line + 1, _dotted(loc), "!replace applies to lists")]
        )
    return _scalar(loader, node, loc, file)


def _scalar(loader: _Loader, node: yaml.Node, loc: Loc, file: str) -> Any:
    if node.tag not in SCALAR_TAGS:
        raise _refuse_tag(file, node, loc)
    return loader.construct_object(node, deep=True)


def _read_yaml(path: Path) -> tuple[Any, dict[Loc, tuple[str, int]]]:
    name = _display(path)
    where: dict[Loc, tuple[str, int]] = {}
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicyError([Problem(name, None, "", f"is {size} bytes; a policy file may "
                                                       f"hold at most {MAX_FILE_BYTES}")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(name, None, "", f"cannot read: {exc}")]) from None
    loader = _Loader(text, name)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, where
        return _construct(loader, node, (), name, where), where
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyError([Problem(name, line, "", f"not valid YAML: {exc.problem}")]) from None
    finally:
        loader.dispose()


def _policy_files(directory: Path) -> list[Path]:
    files = [
        p
        for p in directory.rglob("*.yaml")
        if p.is_file() and "tests" not in p.relative_to(directory).parts[:-1]
    ]
    return sorted(files, key=lambda p: (p.name != "policy.yaml", str(p.relative_to(directory))))


def _merge(base: Any, over: Any, loc: Loc, where: dict[Loc, tuple[str, int]],
           over_where: dict[Loc, tuple[str, int]]) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = (
                _merge(out[key], value, (*loc, key), where, over_where)
                if key in out
                else _take(value, (*loc, key), where, over_where)
            )
        return out
    if isinstance(base, list) and isinstance(over, list) and not isinstance(over, _Replace):
        out_list = list(base)
        for item in over:
            if item not in out_list:
                out_list.append(item)
        # Positions of appended items: keep the overlay's line for the list itself.
        for key, pos in over_where.items():
            if key[: len(loc)] == loc and len(key) > len(loc):
                where.setdefault(key, pos)
        where[loc] = over_where.get(loc, where.get(loc, ("", 0)))
        return out_list
    return _take(over, loc, where, over_where)


def _take(value: Any, loc: Loc, where: dict[Loc, tuple[str, int]],
          over_where: dict[Loc, tuple[str, int]]) -> Any:
    for key in [k for k in where if k[: len(loc)] == loc]:
        del where[key]
    for key, pos in over_where.items():
        if key[: len(loc)] == loc:
            where[key] = pos
    return list(value) if isinstance(value, _Replace) else value


def _read_directory(directory: Path, seen: tuple[Path, ...] = ()) -> tuple[_Document, list[Path]]:
    """Read one directory, merged onto what it extends; returns the chain of directories."""
    directory = directory.resolve()
    name = _display(directory)
    if directory in seen:
        raise PolicyError([Problem(name, None, "extends", "extends itself (a cycle)")])
    if not directory.is_dir():
        raise PolicyError([Problem(name, None, "", "is not a policy directory")])
    files = _policy_files(directory)
    if not files:
        raise PolicyError([Problem(name, None, "", "holds no .yaml files")])
    own = _Document()
    for path in files:
        data, where = _read_yaml(path)
        if data in ({}, None):
            continue
        if not isinstance(data, dict):
            raise PolicyError([Problem(_display(path), 1, "", "must be a mapping of sections")])
        if "extends" in data and path.name != "policy.yaml":
            raise PolicyError(
                [Problem(_display(path), where[("extends",)][1], "extends",
                         "belongs in the directory's policy.yaml")]
            )
        own.data = _merge(own.data, data, (), own.where, where)
        own.files.append(path)
    chain = [directory]
    extends = own.data.pop("extends", None)
    if extends is None:
        return own, chain
    file, line = own.where.pop(("extends",), (name, 0))
    if not isinstance(extends, str):
        raise PolicyError([Problem(file, line, "extends", "must be a directory path")])
    base_dir = (directory / extends).resolve()
    if not base_dir.is_dir():
        raise PolicyError([Problem(file, line, "extends", f"{extends!r} is not a directory")])
    base, base_chain = _read_directory(base_dir, (*seen, directory))
    base.data = _merge(base.data, own.data, (), base.where, own.where)
    base.files.extend(own.files)
    return base, chain + base_chain


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _locate(
    loc: Loc, where: dict[Loc, tuple[str, int]], fallback: str
) -> tuple[str, int | None, Loc]:
    """The source position of the longest prefix of ``loc`` present in the files."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in where:
            file, line = where[loc[:n]]
            return file, line or None, loc[:n]
    return fallback, None, ()


def _message(error: Any) -> str:
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "enum":
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {expected}"
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {expected}"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the policy format in docs/policy.md)"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if value is not None and not isinstance(value, dict | list) and kind != "value_error":
        message = f"{value!r}: {message}"
    return message


def problems_of(exc: ValidationError, where: dict[Loc, tuple[str, int]], fallback: str,
                root: Loc = ()) -> list[Problem]:
    """Turn a pydantic error into problems that name file, line and field."""
    problems: list[Problem] = []
    for error in exc.errors():
        loc: Loc = (*root, *error["loc"])
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, _RefError):
            loc = (*root, *inner.loc)
        file, line, found = _locate(loc, where, fallback)
        field_loc = loc if error["type"] == "missing" else found or loc
        problems.append(Problem(file, line, _dotted(field_loc), _message(error)))
    # One line per place is enough: unions report each alternative.
    unique: dict[tuple[str, int | None, str], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.file, problem.line, problem.field), problem)
    return list(unique.values())


def _iter_digest(data: Any) -> Iterator[str]:
    yield json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)


def load(directory: str | Path) -> LoadedPolicy:
    """Load, merge and validate a policy directory. Raises ``PolicyError``."""
    path = Path(directory)
    doc, chain = _read_directory(path)
    fallback = _display(path)
    try:
        policy = Policy.model_validate(doc.data)
    except ValidationError as exc:
        raise PolicyError(problems_of(exc, doc.where, fallback)) from None
    if len(chain) > 1:
        base_doc, _ = _read_directory(chain[1])
        try:
            base = Policy.model_validate(base_doc.data)
        except ValidationError:
            base = None
        if base is not None:
            problems = []
            for loc, message in tightening_errors(base.compliance, policy.compliance):
                file, line, _ = _locate(("compliance", *loc), doc.where, fallback)
                problems.append(Problem(file, line, _dotted(("compliance", *loc)), message))
            if problems:
                raise PolicyError(problems)
    digest = hashlib.sha256("".join(_iter_digest(doc.data)).encode()).hexdigest()
    return LoadedPolicy(policy, digest, tuple(doc.files), tuple(chain))
