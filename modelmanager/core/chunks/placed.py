"""Chunks spread over devices, as whole copies or erasure-coded fragments (keys: chunks.layout).

Where pieces are is found by looking (a few stats per device), not from a table that could
disagree with the disks. Writes go to the highest-ranked eligible devices, one per file system
before a second on any (placement: two folders on one disk are not independent); reads
prefer them too and fall back to other copies, or rebuild from parity, when a piece is missing
or corrupt: a degraded read, which is counted and reported.

Over 500 lines because PlacedChunkStore is one object with one lock over its device state
(mounted, full, failing); DevicePools (read scheduling) leaves with the Fetcher for
chunks/fetch.py (issue 16).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from modelmanager.core import codecs
from modelmanager.core.chunks.layout import Layout, Piece, PlacementError, fragment_key
from modelmanager.core.chunks.selection import Selector
from modelmanager.core.chunks.store import (
    HEADER,
    ChunkHeader,
    ChunkMissing,
    chunk_key,
    decode_object,
    encode_object,
    hot_key,
    parse_header,
)
from modelmanager.core.ids import BytesLike, content_id, is_content_id
from modelmanager.core.placement import (
    RESERVE_BYTES,
    Device,
    DeviceSet,
    identity_matches,
    rank,
)
from modelmanager.core.redundancy import (
    Fragment,
    Policy,
    decode_fragments,
    encode_fragments,
    parse_fragment,
    parse_fragment_dir,
)
from modelmanager.core.storage import (
    BlobNotFound,
    FolderStore,
    LocalBlobStore,
    StoreFactory,
    capacity_of,
    page_cache,
)
from modelmanager.core.units import human_bytes
from modelmanager.errors import DeviceError, IntegrityError, UserError

__all__ = ["DevicePools", "Layout", "Piece", "PlacedChunkStore", "PlacementError", "fragment_key"]

T = TypeVar("T")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: The device tier that holds hot copies of pinned versions.
HOT = "hot"
#: Seconds a device's "mounted and really this device" answer is trusted before looking again.
AVAILABILITY_TTL = 1.0


class PlacedChunkStore:
    """The repository's chunks over its devices: each device's pieces go through the store
    ``blob_stores`` builds for its folder (tests wrap them to inject faults)."""

    def __init__(
        self,
        repo_root: Path,
        repository_id: str,
        devices: DeviceSet,
        settings: codecs.CodecSettings,
        default_policy: Callable[[], Policy],
        blob_stores: StoreFactory = LocalBlobStore,
    ) -> None:
        self.repo_root = repo_root
        self.repository_id = repository_id
        self.devices = devices
        self.settings = settings
        self.default_policy = default_policy
        self.stores: dict[str, FolderStore] = {
            d.id: blob_stores(d.root(repo_root)) for d in devices.devices
        }
        self._lock = threading.Lock()
        self._full: set[str] = set()
        self._failed: dict[str, str] = {}  # device id -> why it refused a write in this session
        self._available: dict[str, tuple[float, bool]] = {}
        self._combos: set[tuple[int, int]] | None = None
        self._volumes: dict[str, object] = {}  # device id -> its file system (st_dev)
        self.degraded_reads = 0

    # -- devices ------------------------------------------------------------------------

    def available(self, device: Device) -> bool:
        """Mounted and really this device (identity file), and not marked offline."""
        if device.state == "offline":
            return False
        now = time.monotonic()
        cached = self._available.get(device.id)
        if cached is not None and now - cached[0] < AVAILABILITY_TTL:
            return cached[1]
        root = device.root(self.repo_root)
        ok = root.is_dir() and (
            device.path == "." or identity_matches(root, device, self.repository_id)
        )
        self._available[device.id] = (now, ok)
        return ok

    def describe(self, device: Device) -> str:
        """A device as messages name it: "device NAME (PATH)"."""
        return f"device {device.name} ({device.root(self.repo_root)})"

    @contextlib.contextmanager
    def faults_of(self, device: Device, doing: str) -> Iterator[None]:
        """Turn an OSError of the block (a full, read-only or failing device) into a
        DeviceError naming ``device`` and what was being done."""
        try:
            yield
        except (DeviceError, FileExistsError, FileNotFoundError):
            raise
        except OSError as e:
            raise DeviceError.of(e, self.describe(device), doing) from e

    def refresh(self) -> None:
        """Forget what was learnt about devices (mounted, full, failing): jobs start fresh."""
        with self._lock:
            self._available.clear()
            self._full.clear()
            self._failed.clear()
            self._combos = None
            self._volumes.clear()

    def readable_devices(self) -> list[Device]:
        return [d for d in self.devices.devices if self.available(d)]

    def usable(self, device: Device) -> int:
        """Bytes a device can still take (free space less the reserve); 0 when full, refusing
        writes, unreachable or when its free space cannot be read."""
        if device.id in self._full or device.id in self._failed:
            return 0
        space = capacity_of(self.stores[device.id])
        if space is None:
            return 0
        return max(0, space.free - min(RESERVE_BYTES, space.total // 20))

    def room(self, excluding: frozenset[str] = frozenset()) -> tuple[int, str]:
        """What the placeable devices (less ``excluding`` ids) can take in all, and a summary
        per device for messages."""
        total = 0
        parts = []
        counted: set[object] = set()  # volumes already counted: two devices may share one
        for d in self.devices.devices:
            if d.placeable and d.id not in excluding and self.available(d):
                left = self.usable(d)
                parts.append(f"{d.name} {human_bytes(left)}")
                space = capacity_of(self.stores[d.id])
                if space is not None and space.volume in counted:
                    continue
                if space is not None:
                    counted.add(space.volume)
                total += left
        return total, ", ".join(parts) or "no writable device"

    def room_problem(self, need: int, what: str) -> str | None:
        """Why ``need`` bytes for ``what`` do not fit the room, or None when they do."""
        total, summary = self.room()
        if need > total:
            return (f"not enough space for {what}: it needs up to {human_bytes(need)} and the "
                    f"devices can take {human_bytes(total)} ({summary})")  # fmt: skip
        return None

    def require_room(self, need: int, what: str) -> None:
        """Refuse ``what`` before it writes anything when ``need`` bytes exceed the room."""
        problem = self.room_problem(need, what)
        if problem is not None:
            raise UserError(f"{problem}; nothing was stored")

    def _room(self, device: Device, need: int) -> bool:
        return self.usable(device) >= need

    def write_problems(self) -> dict[str, str]:
        """Devices that refused writes since the last refresh, by name, with the reason."""
        names = {d.id: d.name for d in self.devices.devices}
        with self._lock:
            problems = {names[i]: why for i, why in self._failed.items() if i in names}
            problems.update({names[i]: "full" for i in self._full if i in names})
        return problems

    def placeable_count(self) -> int:
        """How many devices can take new pieces right now."""
        return sum(1 for d in self.devices.devices if d.placeable and self.available(d)
                   and self._room(d, 0))  # fmt: skip

    def volume(self, device: Device) -> object:
        """The file system a device's folder is on (``st_dev``), as services/device_plans.py
        groups them. A folder that is gone (deleted, its disk replaced) counts on its parent
        folder's file system, so a vanished folder beside others on one disk is not a disk of
        its own; a device whose volume cannot be read at all counts as one of its own. The one
        answer placement, scrub and the policy previews share."""
        found = self._volumes.get(device.id)
        if found is None:
            space = capacity_of(self.stores[device.id])
            found = space.volume if space is not None else self._vanished_volume(device)
            self._volumes[device.id] = found
        return found

    def _vanished_volume(self, device: Device) -> object:
        root = device.root(self.repo_root)
        try:
            if not root.exists():
                return os.stat(root.parent).st_dev
        except OSError:
            pass
        return ("device", device.id)

    def spread(self, ranked: list[Device], holding: Collection[Device] = ()) -> list[Device]:
        """``ranked`` with each file system's best device before any file system's second:
        two folders on one disk are not independent, so a chunk's pieces go to distinct file
        systems while there are enough (file systems of ``holding`` count as taken once
        already); the rank keeps the order within each round, so with one device per file
        system nothing changes, and with fewer file systems than pieces every device still
        serves."""
        taken: dict[object, int] = {}
        for d in holding:
            vol = self.volume(d)
            taken[vol] = taken.get(vol, 0) + 1
        depth: dict[str, int] = {}
        for d in ranked:
            vol = self.volume(d)
            depth[d.id] = taken.get(vol, 0)
            taken[vol] = depth[d.id] + 1
        return sorted(ranked, key=lambda d: depth[d.id])  # stable: rank order within a round

    def placement(
        self, chunk_id: str, need: int = 0, holding: Collection[Device] = ()
    ) -> list[Device]:
        """Devices that may take a new piece of ``chunk_id``, best first: rendezvous rank,
        spread over file systems (:meth:`spread`); ``holding`` (devices that already hold a
        piece of it) are left out and their file systems come last."""
        held = {d.id for d in holding}
        eligible = [d for d in self.devices.devices
                    if d.placeable and d.id not in held and self.available(d)]  # fmt: skip
        ranked = [d for d in rank(chunk_id, eligible) if self._room(d, need)]
        return self.spread(ranked, holding)

    def why_short(self) -> str:
        """Which devices cannot take pieces now, and why (for error messages)."""
        reasons = []
        for d in self.devices.devices:
            if d.state != "online":
                reasons.append(f"{d.name} is {d.state}")
            elif not self.available(d):
                reasons.append(f"{d.name} is not mounted or not this device ({d.path})")
            elif d.id in self._failed:
                reasons.append(f"{d.name} refused a write ({self._failed[d.id]})")
            elif d.id in self._full or not self._room(d, 0):
                reasons.append(f"{d.name} is full")
        return "; ".join(reasons) or "every device is in use already"

    def _combos_known(self) -> set[tuple[int, int]]:
        if self._combos is None:
            combos: set[tuple[int, int]] = set()
            for d in self.readable_devices():
                try:
                    names = os.listdir(d.root(self.repo_root) / "fragments")
                except OSError:
                    continue
                combos.update(c for c in map(parse_fragment_dir, names) if c)
            self._combos = combos
        return self._combos

    # -- finding pieces ----------------------------------------------------------------

    def locate(self, chunk_id: str) -> Layout:
        """Every piece of ``chunk_id`` on the readable devices (presence only)."""
        layout = Layout()
        key = chunk_key(chunk_id)
        combos = sorted(self._combos_known())
        for d in self.readable_devices():
            store = self.stores[d.id]
            try:
                copy = store.size(key) is not None
                held = [(k, m, i) for k, m in combos for i in range(k + m)
                        if store.size(fragment_key(k, m, chunk_id, i)) is not None]  # fmt: skip
            except OSError:
                self.unreadable(d)  # a failing disk: read what the others hold
                continue
            if copy:
                layout.copies.append(d)
            for k, m, i in held:
                layout.fragments.setdefault((k, m), {}).setdefault(i, []).append(d)
        return layout

    def unreadable(self, device: Device) -> None:
        """Treat ``device`` as not mounted until its availability is looked at again."""
        self._available[device.id] = (time.monotonic(), False)

    def ordered(self, chunk_id: str, layout: Layout, selector: Selector | None = None) -> Layout:
        """``layout`` with each holder list in the order a read tries it.

        Placement rank first; a ``selector`` then reorders devices holding the same piece.
        """
        position = {d.id: n for n, d in enumerate(rank(chunk_id, self.devices.devices))}

        def order(devices: list[Device]) -> list[Device]:
            devices = sorted(devices, key=lambda d: position[d.id])
            return selector.order(devices) if selector else devices

        frags = {c: {i: order(devs) for i, devs in f.items()} for c, f in layout.fragments.items()}
        return Layout(order(layout.copies), frags)

    def first_device(self, layout: Layout) -> Device | None:
        """The device an ordered layout's read starts from (first copy, else first fragment)."""
        if layout.copies:
            return layout.copies[0]
        for _combo, frags in sorted(layout.fragments.items()):
            for index in sorted(frags):
                return frags[index][0]
        return None

    def preferred_device(self, chunk_id: str) -> Device | None:
        """The device a read of the chunk starts from (best-ranked copy, else fragment 0)."""
        return self.first_device(self.ordered(chunk_id, self.locate(chunk_id)))

    def piece_keys(self, chunk_id: str) -> list[tuple[Device, str]]:
        """The device and key of every piece of a chunk on the readable devices."""
        layout = self.locate(chunk_id)
        out = [(d, chunk_key(chunk_id)) for d in layout.copies]
        for (k, m), frags in layout.fragments.items():
            for i, devs in frags.items():
                out += [(d, fragment_key(k, m, chunk_id, i)) for d in devs]
        return out

    def piece_files(self, chunk_id: str) -> list[tuple[Device, Path]]:
        """The device and file of every piece of a chunk on the readable devices."""
        return [(d, self.stores[d.id].path(key)) for d, key in self.piece_keys(chunk_id)]

    def evict(self, chunk_id: str) -> bool:
        """Drop every piece of a chunk from the OS page cache (False where not possible)."""
        return all([page_cache.evict(path) for _d, path in self.piece_files(chunk_id)])

    def has(self, chunk_id: str, policy: Policy | None = None) -> bool:
        """True when the chunk's pieces already meet ``policy`` (by presence)."""
        policy = policy or self.default_policy()
        return self.locate(chunk_id).tolerance() >= policy.tolerates

    # -- writing ------------------------------------------------------------------------

    def _write(self, device: Device, key: str, parts: list[BytesLike]) -> int | None:
        """Write a piece; None when the device cannot take it (then it is skipped from now on).

        A full device, a read-only one, a folder standing where the piece belongs: each is a
        reason to put the piece on the next device, never to fail the whole job.
        """
        try:
            return self.stores[device.id].put(key, parts, sync=False)
        except OSError as e:
            with self._lock:
                if e.errno in _NO_SPACE:
                    self._full.add(device.id)
                else:
                    self._failed[device.id] = e.strerror or str(e)
            return None

    def write_pieces(
        self,
        chunk_id: str,
        obj: BytesLike | list[BytesLike],
        policy: Policy,
        layout: Layout | None = None,
    ) -> int:
        """Add the pieces ``policy`` still lacks for a chunk object; return bytes written.

        ``obj`` may be given as parts (header, payload): whole copies are written from the
        parts as they are, and only erasure coding joins them.
        """
        layout = layout or self.locate(chunk_id)
        parts = obj if isinstance(obj, list) else [obj]
        size = sum(len(p) for p in parts)
        written = 0
        if policy.erasure:
            obj = parts[0] if len(parts) == 1 else b"".join(bytes(p) for p in parts)
            k, m = policy.k, policy.m
            have = layout.fragments.get((k, m), {})
            missing = [i for i in range(k + m) if i not in have]
            if not missing:
                return 0
            holding = list({d.id: d for devs in have.values() for d in devs}.values())
            fragments = encode_fragments(obj, k, m)
            piece_size = sum(len(part) for part in fragments[0])
            targets = self.placement(chunk_id, piece_size, holding)
            for index in missing:
                while True:
                    if not targets:
                        raise PlacementError(
                            f"policy {policy} needs {k + m} devices for chunk {chunk_id[:12]}; "
                            f"not enough can take it ({self.why_short()})"
                        )
                    device = targets.pop(0)
                    n = self._write(device, fragment_key(k, m, chunk_id, index), fragments[index])
                    if n is not None:
                        written += n
                        break
            with self._lock:
                if self._combos is not None:
                    self._combos.add((k, m))
            return written
        need = policy.copies - len({d.id for d in layout.copies})
        targets = self.placement(chunk_id, size, layout.copies)
        while need > 0:
            if not targets:
                raise PlacementError(
                    f"policy {policy} needs {policy.copies} devices for chunk {chunk_id[:12]}; "
                    f"not enough can take it ({self.why_short()})"
                )
            n = self._write(targets.pop(0), chunk_key(chunk_id), parts)
            if n is not None:
                written += n
                need -= 1
        return written

    def put(
        self,
        chunk_id: str,
        data: BytesLike,
        settings: codecs.CodecSettings | None = None,
        policy: Policy | None = None,
        hint: str | None = None,
    ) -> int:
        """Encode and store ``data`` to meet ``policy``; return the bytes written.

        ``hint`` is the dtype of the tensor the chunk belongs to (it lets "auto" pick a codec).
        """
        parts = encode_object(data, settings or self.settings, hint)
        return self.write_pieces(chunk_id, parts, policy or self.default_policy())

    def flush(self) -> None:
        """Make every piece written so far durable on every device."""
        for d in self.devices.devices:
            with self.faults_of(d, "making written pieces durable"):
                self.stores[d.id].flush()

    # -- reading ------------------------------------------------------------------------

    def read_copy(self, device: Device, chunk_id: str) -> bytes:
        return self.stores[device.id].get(chunk_key(chunk_id))

    def read_raw_copy_into(self, device: Device, chunk_id: str, dest: memoryview) -> bool:
        """Read an uncompressed copy straight into ``dest`` (no intermediate buffer).

        False, with ``dest`` untouched, when the copy is compressed or its header disagrees;
        True when ``dest`` was filled. The caller still verifies the hash.
        """
        store, key = self.stores[device.id], chunk_key(chunk_id)
        source = f"{device.name}:{key}"
        info = parse_header(store.get_range(key, 0, HEADER.size), source)
        if info.codec_id != codecs.RAW_ID or info.length != len(dest):
            return False
        if store.read_into(key, HEADER.size, dest) != len(dest):
            raise IntegrityError("chunk object is truncated", path=source)
        return True

    def read_fragment(
        self, device: Device, k: int, m: int, chunk_id: str, i: int, *, verify: bool = True
    ) -> Fragment:
        key = fragment_key(k, m, chunk_id, i)
        return parse_fragment(self.stores[device.id].get(key), f"{device.name}:{key}", verify)

    def read_object(
        self, chunk_id: str, length: int, layout: Layout | None = None,
        selector: Selector | None = None, *, ordered: bool = False,
    ) -> tuple[BytesLike, BytesLike, bool]:  # fmt: skip
        """(chunk object, its verified plain bytes, whether a degraded path was needed).

        ``layout`` restricts the read to those pieces (repair passes the ones known good);
        ``selector`` picks among devices holding the same piece; ``ordered`` says ``layout``
        already came from :meth:`ordered` and is tried as it is.
        """
        layout = layout or self.locate(chunk_id)
        if layout.empty:
            raise ChunkMissing("chunk is missing on every device", path=chunk_key(chunk_id))
        if not ordered:
            layout = self.ordered(chunk_id, layout, selector)
        failures: list[str] = []
        for device in layout.copies:
            try:
                blob = self.read_copy(device, chunk_id)
                data = decode_object(blob, chunk_id, length, f"{device.name}:{chunk_key(chunk_id)}")
            except (IntegrityError, BlobNotFound, OSError) as e:
                failures.append(str(e))
                continue
            return blob, data, bool(failures)
        for (k, m), frags in sorted(layout.fragments.items()):
            # Fast path: the K data fragments unchecked, since the chunk's own hash proves them
            # all. Only when that fails is each fragment checked, to find and skip a bad one.
            for check in (False, True):
                if not check and not all(i in frags for i in range(k)):
                    continue
                good: dict[int, Fragment] = {}
                for index in sorted(frags):
                    for device in frags[index]:
                        try:
                            good[index] = self.read_fragment(
                                device, k, m, chunk_id, index, verify=check
                            )
                            break
                        except (IntegrityError, BlobNotFound, OSError) as e:
                            failures.append(str(e))
                    if len(good) == k:
                        break
                if len(good) < k:
                    failures.append(f"only {len(good)} of {k} fragments of {k}+{m} are good")
                    break
                try:
                    obj = decode_fragments(good, k, m)
                    data = decode_object(obj, chunk_id, length, chunk_key(chunk_id))
                except IntegrityError as e:
                    failures.append(str(e))
                    continue
                return obj, data, bool(failures) or sorted(good) != list(range(k))
        raise IntegrityError(
            "chunk cannot be read from any piece: " + "; ".join(failures[:4]),
            path=chunk_key(chunk_id),
        )

    def get(
        self, chunk_id: str, length: int, policy: Policy | None = None,
        layout: Layout | None = None,
    ) -> BytesLike:  # fmt: skip
        """The plain bytes of a chunk, from whichever pieces are good (verified).

        ``layout``, when given, is an already ordered one (see :meth:`ordered`). The read counts
        as degraded when a piece failed, or when the chunk has fewer pieces than ``policy`` asks
        for (the data came back, but with less protection than due).
        """
        if layout is None:
            layout = self.ordered(chunk_id, self.locate(chunk_id))
        _obj, data, degraded = self.read_object(chunk_id, length, layout, ordered=True)
        if policy is not None and layout.tolerance() < policy.tolerates:
            degraded = True
        if degraded:
            self.note_degraded()
        return data

    def note_degraded(self) -> None:
        """Count one read that needed a fallback or found the chunk under-protected."""
        with self._lock:
            self.degraded_reads += 1

    def header(self, chunk_id: str) -> ChunkHeader:
        """Codec and length of a stored chunk from its first readable piece's header."""
        layout = self.locate(chunk_id)
        for device in layout.copies:
            try:
                head = self.stores[device.id].get_range(chunk_key(chunk_id), 0, HEADER.size)
                return parse_header(head, f"{device.name}:{chunk_key(chunk_id)}")
            except (IntegrityError, BlobNotFound, OSError):
                continue
        for (k, m), frags in layout.fragments.items():
            for device in frags.get(0, []):
                try:
                    fragment = self.read_fragment(device, k, m, chunk_id, 0)
                    return parse_header(fragment.payload[: HEADER.size], chunk_key(chunk_id))
                except (IntegrityError, BlobNotFound, OSError):
                    continue
        raise ChunkMissing("chunk is missing on every device", path=chunk_key(chunk_id))

    # -- walking ------------------------------------------------------------------------

    def iter_pieces(self, device: Device) -> Iterator[Piece]:
        """Every piece on one device (copies and fragments)."""
        store = self.stores[device.id]
        for key, size in store.list("chunks"):
            name = key.rsplit("/", 1)[-1]
            if is_content_id(name) and key == chunk_key(name):
                yield Piece(name, device, key, size)
        for key, size in store.list("fragments"):
            parts = key.split("/")
            combo = parse_fragment_dir(parts[1]) if len(parts) == 4 else None
            cid, _, index = parts[-1].partition(".")
            if combo and is_content_id(cid) and index.isdigit():
                yield Piece(cid, device, key, size, int(index), *combo)

    def iter_stored(self) -> Iterator[tuple[str, int]]:
        """Every stored chunk with the bytes all its pieces take, over readable devices."""
        totals: dict[str, int] = {}
        for d in self.readable_devices():
            for p in self.iter_pieces(d):
                totals[p.chunk_id] = totals.get(p.chunk_id, 0) + p.size
        yield from totals.items()

    def stored_size(self, chunk_id: str) -> int | None:
        """Bytes all pieces of a chunk take, or None when no device holds any."""
        pieces = self.piece_keys(chunk_id)
        if not pieces:
            return None
        return sum(self.stores[d.id].size(key) or 0 for d, key in pieces)

    def delete_piece(self, piece: Piece) -> None:
        with self.faults_of(piece.device, f"deleting {piece.key}"):
            self.stores[piece.device.id].delete(piece.key)

    def delete(self, chunk_id: str) -> None:
        """Remove every piece of a chunk from every readable device."""
        for d, key in self.piece_keys(chunk_id):
            with self.faults_of(d, f"deleting {key}"):
                self.stores[d.id].delete(key)

    # -- hot copies (pinned versions: docs/repository-format.md, "Hot copies") --------------

    def hot_devices(self) -> list[Device]:
        """Readable devices of the hot tier: where hot copies are looked for."""
        return [d for d in self.readable_devices() if d.tier == HOT]

    def hot_holders(self, chunk_id: str, among: list[Device] | None = None) -> list[Device]:
        """The hot devices (``among``, default all) holding a hot copy of ``chunk_id``."""
        held = []
        for d in self.hot_devices() if among is None else among:
            try:
                if self.stores[d.id].size(hot_key(chunk_id)) is not None:
                    held.append(d)
            except OSError:
                continue
        return held

    def read_hot_into(self, device: Device, chunk_id: str, dest: memoryview) -> bool:
        """Read a hot copy straight into ``dest``; False when its size is not ``len(dest)``.
        The caller verifies the hash."""
        store, key = self.stores[device.id], hot_key(chunk_id)
        if store.size(key) != len(dest):
            return False
        return store.read_into(key, 0, dest) == len(dest)

    def read_hot(self, device: Device, chunk_id: str) -> bytes:
        """The bytes of a hot copy, unchecked (BlobNotFound when there is none)."""
        return self.stores[device.id].get(hot_key(chunk_id))

    def check_hot(self, device: Device, chunk_id: str, length: int) -> str | None:
        """None when the hot copy on ``device`` is the chunk, else why not."""
        try:
            data = self.read_hot(device, chunk_id)
        except (BlobNotFound, OSError) as e:
            return str(e)
        if len(data) != length:
            return f"hot copy holds {len(data)} bytes, the manifest says {length}"
        if content_id(data) != chunk_id:
            return "hot copy does not match its hash"
        return None

    def write_hot(self, device: Device, chunk_id: str, data: BytesLike) -> int:
        """Write (atomically, unsynced: :meth:`flush`) the hot copy of a verified chunk."""
        with self.faults_of(device, f"writing {hot_key(chunk_id)}"):
            return self.stores[device.id].put(hot_key(chunk_id), [data], sync=False)

    def iter_hot(self, device: Device) -> Iterator[tuple[str, int]]:
        """(chunk id, bytes) of every hot copy on ``device``."""
        for key, size in self.stores[device.id].list("hot"):
            name = key.rsplit("/", 1)[-1]
            if is_content_id(name) and key == hot_key(name):
                yield name, size

    def delete_hot(self, device: Device, chunk_id: str) -> None:
        with self.faults_of(device, f"deleting {hot_key(chunk_id)}"):
            self.stores[device.id].delete(hot_key(chunk_id))


class DevicePools:
    """One small thread pool per device, so a slow or stuck disk only holds up its own reads.

    A chunk's read goes to the pool of the device its read starts from (the first fragment's
    device for erasure-coded chunks), as the ``selector`` orders them. Use as a context manager.
    """

    def __init__(
        self, chunks: PlacedChunkStore, threads_per_device: int = 2,
        selector: Selector | None = None,
    ) -> None:  # fmt: skip
        self.chunks = chunks
        self.threads = threads_per_device
        self.selector = selector
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def __enter__(self) -> DevicePools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def plan(self, chunk_id: str) -> tuple[str, Layout]:
        """(lane, ordered layout): the device whose pool reads the chunk ('-' when none holds
        it) and the order its pieces are tried in; pass both to :meth:`submit` and ``get``."""
        layout = self.chunks.ordered(chunk_id, self.chunks.locate(chunk_id), self.selector)
        device = self.chunks.first_device(layout)
        return (device.name if device else "-"), layout

    def submit(self, lane: str, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn`` on the pool of device ``lane`` (see :meth:`lane`)."""
        pool = self._pools.get(lane)
        if pool is None:
            pool = self._pools[lane] = ThreadPoolExecutor(self.threads, f"mm-read-{lane}")
        return pool.submit(fn, *args)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools.clear()
