"""The project's JSON files (model config, metadata, train config, manifests): atomic writes and
reads whose errors name the file."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

T = TypeVar('T')


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write data as indented JSON through a temporary file and an atomic rename (a crash leaves
    the old file or the new one, never half of one). Returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(data, indent=2) + '\n')
    tmp.replace(path)
    return path


def read_json(path: str | Path, what: str, parse: Callable[[Any], T],
              error: type[Exception] = ValueError) -> T:
    """parse(the file's JSON); a missing, unreadable or invalid file raises ``error`` with the
    message 'cannot read {what} {path}: {reason}'."""
    path = Path(path)
    try:
        return parse(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise error(f'cannot read {what} {path}: {exc}') from exc


def check_known_keys(what: str, data: dict[str, Any], kind: type) -> None:
    """Raise ValueError('{what} has unknown key(s) [...]; allowed: [...]') when ``data`` has keys
    that are not fields of the dataclass ``kind`` (an unknown key is a typo, never ignored)."""
    allowed = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f'{what} has unknown key(s) {unknown}; allowed: {sorted(allowed)}')


class JsonRecord:
    """Mixin for a record kept as one JSON file in a directory: the class names the file
    (``FILE_NAME``) and what it is (``DESCRIPTION``, for errors) and implements ``to_dict`` and
    the classmethod ``from_dict``; ``save(directory)`` writes it atomically and
    ``load(directory)`` reads it, errors naming the file."""
    FILE_NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str]

    def save(self, directory: str | Path) -> Path:
        return write_json(Path(directory) / self.FILE_NAME, self.to_dict())

    @classmethod
    def load(cls: type[T], directory: str | Path) -> T:
        return read_json(Path(directory) / cls.FILE_NAME, cls.DESCRIPTION, cls.from_dict)
