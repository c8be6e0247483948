"""Search filters: one parser for the command line's options and the window's filter line.

``--arch llama --params 6B..9B --dtype bf16 --format gguf --label prod --size '>4GB'
--older 30d --newer 2d --license apache-2.0 --base llama-2 --sort params``; the filter line
also takes ``NAME:VALUE`` (``license:mit base:llama-2 size:>4GB``). Ranges are ``A..B``
(either end may be left out), ``>A`` or ``<B``, with units (K, M, B, T for parameters; KB,
MB, GB, TB and KiB, MiB, GiB, TiB for sizes; s, m, h, d, w for ages). A bad value is a
one-line :class:`UsageError` naming the option and the cause.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from modelmanager.core.catalog.facts import dtype_name
from modelmanager.errors import UserError

#: How results may be sorted: by name (then version), or largest / newest first.
SORTS = ("name", "params", "size", "date")
#: The filter options, as both fronts spell them.
OPTIONS = ("--arch", "--params", "--dtype", "--format", "--label", "--size", "--older",
           "--newer", "--sort")  # fmt: skip
#: Every filter option: :data:`OPTIONS` and the card's license (exactly, ignoring case) and
#: base model (contains). The command line offers the last two once it declares them.
ALL_OPTIONS = (*OPTIONS, "--license", "--base")
#: ``NAME:VALUE`` in a filter line, NAME an option without its dashes.
_SHORT = re.compile(r"^([a-z]+):(.+)$")

_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_SIZE_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "mb": 10**6, "m": 10**6, "gb": 10**9, "g": 10**9,
    "tb": 10**12, "t": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class UsageError(UserError):
    """A filter the parser cannot read (exit 2, like any usage error)."""


@dataclass(frozen=True)
class SearchFilter:
    """What a search keeps: every field set must hold (``None``/"" means any)."""

    arch: str = ""
    dtype: str = ""
    format: str = ""
    label: str = ""
    params: tuple[int | None, int | None] | None = None
    size: tuple[int | None, int | None] | None = None
    #: Created before / after this UTC time (from ``--older`` / ``--newer`` ages).
    before: str = ""
    after: str = ""
    sort: str = "name"
    #: The model card's license, exactly (lower case); its base model contains this.
    license: str = ""
    base: str = ""

    @property
    def active(self) -> bool:
        """Some filter is set (a sort alone filters nothing)."""
        return bool(self.arch or self.dtype or self.format or self.label or self.params
                    or self.size or self.before or self.after or self.license
                    or self.base)  # fmt: skip


def _number(option: str, text: str, units: dict[str, int], what: str, whole: str) -> int:
    """The figure ``text`` states (part of ``whole``, the value as given, for the message)."""
    found = _NUMBER.match(text)
    if not found:
        raise UsageError(f"{option}: {whole!r} is not a {what} (e.g. {_EXAMPLES[option]})")
    value, unit = found.groups()
    scale = units.get(unit.lower())
    if scale is None:
        known = ", ".join(u for u in units if u) or "none"
        raise UsageError(f"{option}: unknown unit {unit!r} in {whole!r} (units: {known})")
    return int(float(value) * scale)


_EXAMPLES = {"--params": "6B..9B, >1B, <500M", "--size": "'>4GB', 1GiB..8GiB",
             "--older": "30d, 12h, 2w", "--newer": "30d, 12h, 2w"}  # fmt: skip


def parse_range(option: str, text: str, units: dict[str, int], what: str
                ) -> tuple[int | None, int | None]:  # fmt: skip
    """``A..B``, ``>A``, ``<B`` (or one figure: exactly it) -> (low, high), inclusive."""
    text = text.strip()
    if text.startswith((">", "<")):
        bound = _number(option, text[1:].lstrip("="), units, what, text)
        return (bound, None) if text[0] == ">" else (None, bound)
    if ".." in text:
        lo, _, hi = text.partition("..")
        if not lo.strip() and not hi.strip():
            raise UsageError(f"{option}: {text!r} has no bounds (e.g. {_EXAMPLES[option]})")
        low = _number(option, lo, units, what, text) if lo.strip() else None
        high = _number(option, hi, units, what, text) if hi.strip() else None
        if low is not None and high is not None and low > high:
            raise UsageError(f"{option}: {text!r} runs backwards (the low end comes first)")
        return low, high
    exact = _number(option, text, units, what, text)
    return exact, exact


def _age(option: str, text: str, now: datetime) -> str:
    found = _NUMBER.match(text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _AGE_UNITS:
        raise UsageError(f"{option}: {text!r} is not an age (e.g. {_EXAMPLES[option]})")
    at = now - timedelta(seconds=float(found.group(1)) * _AGE_UNITS[unit])
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as versions record it


def build(values: dict[str, str | None], now: datetime | None = None) -> SearchFilter:
    """A filter from option values as given (``{"--arch": "llama", ...}``; None: not given)."""
    now = now or datetime.now(timezone.utc)
    got = {k: v for k, v in values.items() if v is not None}
    for option in ("--arch", "--dtype", "--format", "--label", "--license", "--base"):
        if option in got and not got[option].strip():
            raise UsageError(f"{option}: needs a value")
    sort = got.get("--sort", "name").strip().lower()
    if sort not in SORTS:
        raise UsageError(f"--sort: {sort!r} is not one of {', '.join(SORTS)}")
    out = SearchFilter(
        arch=got.get("--arch", "").strip().lower(),
        dtype=dtype_name(got.get("--dtype", "")),
        format=got.get("--format", "").strip().lower(),
        label=got.get("--label", "").strip(),
        sort=sort,
        license=got.get("--license", "").strip().lower(),
        base=got.get("--base", "").strip().lower(),
    )
    if "--params" in got:
        out = replace(out, params=parse_range("--params", got["--params"], _COUNT_UNITS,
                                              "parameter count"))  # fmt: skip
    if "--size" in got:
        out = replace(out, size=parse_range("--size", got["--size"], _SIZE_UNITS, "size"))
    if "--older" in got:
        out = replace(out, before=_age("--older", got["--older"], now))
    if "--newer" in got:
        out = replace(out, after=_age("--newer", got["--newer"], now))
    return out


def parse_query(line: str, now: datetime | None = None) -> tuple[str, SearchFilter]:
    """(free text, filter) of a filter line such as ``mistral --arch llama --size '>4GB'``:
    the command line's options, written the same way (``--opt value`` or ``--opt=value``), or
    ``opt:value`` (``license:apache-2.0``; a word whose ``opt`` names no filter is text)."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"search: {e} in {line!r}") from None
    text: list[str] = []
    values: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        short = _SHORT.match(word)
        if short and f"--{short.group(1)}" in ALL_OPTIONS:
            values[f"--{short.group(1)}"] = short.group(2)
        elif word.startswith("--"):
            option, eq, value = word.partition("=")
            if option not in ALL_OPTIONS:
                known = " ".join(ALL_OPTIONS)
                raise UsageError(f"{option}: unknown filter (filters: {known})")
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"{option}: needs a value")
                i += 1
                value = words[i]
            values[option] = value
        else:
            text.append(word)
        i += 1
    return " ".join(text), build(values, now)


def where(f: SearchFilter) -> tuple[str, list[object]]:
    """The SQL condition on ``versions v`` that ``f`` keeps, and its parameters."""
    conds: list[str] = ["1"]
    args: list[object] = []
    if f.arch:
        conds.append("(lower(v.architecture) LIKE ? OR lower(v.model_type) LIKE ?)")
        args += [f"%{f.arch}%"] * 2
    if f.dtype:
        conds.append("v.dtype_names LIKE ?")
        args.append(f"% {f.dtype} %")
    if f.format:
        conds.append("v.formats LIKE ?")
        args.append(f"% {f.format} %")
    if f.license:
        conds.append("v.license = ?")
        args.append(f.license)
    if f.base:
        conds.append("v.base_model LIKE ?")
        args.append(f"%{f.base}%")
    if f.label:
        conds.append("EXISTS (SELECT 1 FROM labels l WHERE l.model=v.model AND l.seq=v.seq "
                     "AND l.label=?)")  # fmt: skip
        args.append(f.label)
    for column, bounds in (("v.parameters", f.params), ("v.logical_bytes", f.size)):
        if bounds is not None:
            if bounds[0] is not None:
                conds.append(f"{column} >= ?")
                args.append(bounds[0])
            if bounds[1] is not None:
                conds.append(f"{column} <= ?")
                args.append(bounds[1])
    if f.before:
        conds.append("v.created < ?")
        args.append(f.before)
    if f.after:
        conds.append("v.created >= ?")
        args.append(f.after)
    return " AND ".join(conds), args


#: ORDER BY of each sort: names a to z; parameters, size and date largest / newest first.
ORDER = {
    "name": "v.model, v.seq",
    "params": "v.parameters DESC, v.model, v.seq",
    "size": "v.logical_bytes DESC, v.model, v.seq",
    "date": "v.created DESC, v.model, v.seq",
}
