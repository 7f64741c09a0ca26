"""A register owner's own adapter (``kind = "python"``): a factory named in the settings.

::

    [[provider.registers]]
    name = "civil"
    kind = "python"
    factory = "civil_register:CivilRegister"       # module:attribute, importable by the node
    options = { path = "/srv/civil/civil.db" }      # keyword arguments of the factory
    secret_files = { password = "/run/secrets/civil" }  # more, each read from its file

:func:`python_register` imports the module, calls the factory with the options (and the secret
files' contents, trailing newline removed) and checks that what it returns has the methods of
:class:`oots.provider.registers.Register`. Each failure is a :class:`oots.errors.ConfigError` that
names the setting (``provider.registers.civil.factory: ...``).

The adapter is then wrapped in :class:`PythonRegister`, the boundary between oots and foreign code:
it is named after the setting, and what the adapter raises or returns is made what oots expects.
:class:`oots.errors.RegisterError` passes, and so does :class:`oots.errors.NotFound` from ``fetch``;
a ``TimeoutError`` becomes a ``RegisterError`` with ``timeout=True``; any other exception, and an
answer of the wrong type, becomes a ``RegisterError`` logged with its type and the line that raised
it — never its message, which could quote a person.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from oots.errors import ConfigError, NotFound, RegisterError
from oots.provider.matching import LegalPersonQuery, LegalPersonRecord, PersonQuery, PersonRecord
from oots.provider.registers import RegisterRecord
from oots.settings import ProviderRegisterSettings

__all__ = ["REGISTER_METHODS", "PythonRegister", "factory_problems", "python_register", "resolve_factory"]

log = logging.getLogger(__name__)

#: The methods an adapter must have (:class:`oots.provider.registers.Register`).
REGISTER_METHODS = ("find_persons", "find_legal_persons", "fetch")

_T = TypeVar("_T")


def _where(reg: ProviderRegisterSettings, key: str = "factory") -> str:
    return f"provider.registers.{reg.name}.{key}"


def _problem(path: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: {reason}", [(path, reason)])


def resolve_factory(reg: ProviderRegisterSettings) -> Callable[..., Any]:
    """The callable ``reg.factory`` names (imported, not called)."""
    path = _where(reg)
    module_name, _, attribute = reg.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise _problem(
                path,
                f"there is no module {module_name} (install it in the node's environment, "
                "or put its directory on PYTHONPATH)",
            ) from None
        raise _problem(path, f"module {module_name} needs module {missing}, which is not installed") from None
    except Exception as exc:  # the module's own code failed while it was imported
        raise _problem(path, f"importing module {module_name} raised {type(exc).__name__}: {exc}") from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise _problem(path, f"module {module_name} has no attribute {attribute}") from None
    if not callable(found):
        raise _problem(path, f"{reg.factory} is not callable (name a class or a function that returns the adapter)")
    return found  # type: ignore[no-any-return]


def _secrets(reg: ProviderRegisterSettings) -> dict[str, str]:
    out = {}
    for name, file in reg.secret_files.items():
        try:
            out[name] = Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            where = _where(reg, f"secret_files.{name}")
            raise _problem(where, f"cannot read the secret file {file}: {reason}") from None
    return out


def _redacted(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def factory_problems(reg: ProviderRegisterSettings) -> list[tuple[str, str]]:
    """What stops ``reg``'s adapter from being built, short of calling its factory (for ``oots config check``)."""
    problems: list[tuple[str, str]] = []
    for check in (resolve_factory, _secrets):
        try:
            check(reg)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def python_register(reg: ProviderRegisterSettings) -> PythonRegister:
    """The adapter of a ``kind = "python"`` register: its factory imported and called, its methods checked."""
    factory = resolve_factory(reg)
    secrets = _secrets(reg)
    path = _where(reg)
    try:
        adapter = factory(**reg.options, **secrets)
    except Exception as exc:  # the factory is foreign code: whatever it raises is a configuration problem
        raise _problem(path, f"{reg.factory} raised {type(exc).__name__}: {_redacted(str(exc), secrets)}") from None
    lacking = [m for m in REGISTER_METHODS if not callable(getattr(adapter, m, None))]
    if lacking:
        raise _problem(
            path,
            f"{reg.factory} returned a {type(adapter).__name__}, which has no method {', '.join(lacking)} "
            f"(a register needs {', '.join(REGISTER_METHODS)}; see docs/provider.md)",
        )
    return PythonRegister(adapter, name=reg.name)


def _origin(exc: BaseException) -> str:
    """Where ``exc`` was raised (file and line), without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} ({last.name})"


class PythonRegister:
    """A register owner's adapter behind oots' boundary checks (see the module's docstring).

    ``adapter`` is the object the factory returned; ``name`` is the setting's name.
    """

    def __init__(self, adapter: Any, *, name: str) -> None:
        self.adapter = adapter
        self.name = name

    def _failed(self, method: str, exc: Exception) -> RegisterError:
        kind, origin = type(exc).__name__, _origin(exc)
        log.warning("register %s: %s raised %s at %s (made a register failure)", self.name, method, kind, origin)
        return RegisterError(
            f"register {self.name} failed ({method} raised {type(exc).__name__})",
            register=self.name,
            timeout=isinstance(exc, TimeoutError),
        )

    def _wrong(self, method: str, what: str) -> RegisterError:
        message = f"register {self.name}: {method} returned {what}"
        log.warning("%s (made a register failure)", message)
        return RegisterError(message, register=self.name)

    def _candidates(self, method: str, found: Any, kind: type[_T]) -> list[_T]:
        if not isinstance(found, Sequence) or isinstance(found, str | bytes):
            raise self._wrong(method, f"a {type(found).__name__}, not a list of {kind.__name__}")
        wrong = next((item for item in found if not isinstance(item, kind)), None)
        if wrong is not None:
            raise self._wrong(method, f"a {type(wrong).__name__} in its list, not a {kind.__name__}")
        return list(found)

    def find_persons(self, query: PersonQuery, *, swapped_names: bool = False) -> Sequence[PersonRecord]:
        try:
            found = self.adapter.find_persons(query, swapped_names=swapped_names)
        except RegisterError:
            raise
        except Exception as exc:
            raise self._failed("find_persons", exc) from None
        return self._candidates("find_persons", found, PersonRecord)

    def find_legal_persons(self, query: LegalPersonQuery) -> Sequence[LegalPersonRecord]:
        try:
            found = self.adapter.find_legal_persons(query)
        except RegisterError:
            raise
        except Exception as exc:
            raise self._failed("find_legal_persons", exc) from None
        return self._candidates("find_legal_persons", found, LegalPersonRecord)

    def fetch(self, record_id: str) -> RegisterRecord:
        try:
            record = self.adapter.fetch(record_id)
        except (RegisterError, NotFound):
            raise
        except Exception as exc:
            raise self._failed("fetch", exc) from None
        if not isinstance(record, RegisterRecord):
            raise self._wrong("fetch", f"a {type(record).__name__}, not a RegisterRecord")
        wrong = next((v for v in record.data.values() if not isinstance(v, str)), None)
        if wrong is not None:
            raise self._wrong("fetch", f"a record whose data holds a {type(wrong).__name__}, not text")
        return record
