"""A design as one latent Gaussian model: the coefficient vector, its prior, and each row's
coordinates in it.

The latent vector has two parts:

* ``c`` — every coefficient block except the eliminated pool, concatenated (a few hundred
  numbers: intercept, seasonal modes, Markov effects and slopes, smooth modes, small pools);
* ``u`` — one effect per level of the eliminated pool (tracks), the largest pool with more than
  :data:`~skipmodel.model.latent.LARGE_POOL` levels. Each play touches one level, so the
  curvature of ``u`` is diagonal and the passes eliminate it level by level.
* ``v`` — with a session term, one effect per session, never held as a vector: a pass reads
  each session's rows together (whole in one batch) and eliminates it there
  (:mod:`~skipmodel.scale.laplace.sessions`), so 125 million sessions cost two floats each.

Rows do not read ``c`` directly but the tables the kinds' layouts name, each a linear function of
one block. The passes accumulate in *work coordinates*: per table either the table's own entries
(a gather touches one entry per row: weekday, hour, position) or, when the table is large
(:data:`TABLE_MAX`: a smooth's 1,000-point gather grid over 8 modes), the block's coefficients
(the row's basis values). ``work = P @ c`` maps one to the other, and every sum of
the passes maps back with ``P`` (``P.T @ g``, ``P.T @ A @ P``).

A row is stored compactly (:class:`RowBatch`: its gather codes, its slope values as float32, its
level, its outcome as int8: 4 bytes per gather and per slope value) and the kernel expands it
into ``K`` (index, value) pairs of work coordinates (:class:`RowFormat`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.model.design import Design
from skipmodel.model.latent import Block, Hyper, LatentTerm, View, fixed_variance
from skipmodel.model.terms import kind_of

#: Gathered tables up to this many entries are summed in their own coordinates (one pair per
#: row), larger ones (a smooth's 1,000-point grid) in their block's (one pair per coefficient).
TABLE_MAX = 64
#: The code space's size at most (see :class:`RowFormat`): its curvature is this squared in
#: floats per thread (134 MB).
CODES_MAX = 4096
#: A dense block larger than this is refused (a second pool of thousands of levels would make
#: the dense algebra cubic in its size).
MAX_DENSE = 4000


@dataclass(frozen=True)
class Segment:
    """One layout table in work coordinates: ``offset`` .. ``offset + width``.

    ``coords == "table"``: the table's entries (``P`` rows: the view's matrix); ``"block"``: the
    block's coefficients (``P`` rows: identity), rows carrying ``matrix[code]``.
    """

    view: str
    offset: int
    width: int
    coords: str


@dataclass
class LatentModel:
    """The latent Gaussian model of a design (see the module notes)."""

    hypers: list[Hyper]
    blocks: dict[str, Block]  # dense blocks, in the order of ``c``
    offsets: dict[str, slice]
    views: dict[str, View]
    segments: dict[str, Segment]  # layout tables of c, by name
    P: np.ndarray  # (W, q)
    Q: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (C, q): code space to c
    levels: Block | None = None  # the eliminated pool
    levels_label: str | None = None  # its dim (``track``)
    sessions: Block | None = None  # the session pool, eliminated per session in the passes
    format: RowFormat = field(default_factory=lambda: RowFormat())
    _pieces: list[tuple[str, str, str]] = field(default_factory=list)  # (table, form, coords)

    @property
    def q(self) -> int:
        return int(self.P.shape[1])

    @property
    def width(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_levels(self) -> int:
        return 0 if self.levels is None else self.levels.size

    def theta(self, log_theta: np.ndarray) -> dict[str, float]:
        return {h.name: float(np.exp(v)) for h, v in zip(self.hypers, log_theta, strict=True)}

    def prior_precision(self, theta: Mapping[str, float]) -> tuple[np.ndarray, float]:
        """Prior precision of each entry of ``c``, and of each level of ``u`` (0 without)."""
        lam = np.empty(self.q)
        for name, block in self.blocks.items():
            lam[self.offsets[name]] = 1.0 / block.variance(theta)
        lam_u = 1.0 / float(self.levels.variance(theta)[0]) if self.levels is not None else 0.0
        return lam, lam_u

    @property
    def session_hyper(self) -> str | None:
        """The session pool's scale (None without a session term)."""
        return self.sessions.hypers[0] if self.sessions is not None else None

    def block_values(self, c: np.ndarray, name: str) -> np.ndarray:
        return c[..., self.offsets[name]]

    def table(self, c: np.ndarray, name: str) -> np.ndarray:
        """The table ``name`` from latent draws ``c`` (..., q)."""
        view = self.views[name]
        return view.apply(self.block_values(c, view.block))


def latent_terms(design: Design) -> LatentTerm:
    """The intercept and every term's latent description."""
    priors = design.spec.priors
    out = LatentTerm(
        blocks=[Block("intercept", 1, fixed_variance(priors.intercept_sigma, 1))],
        views=[View("intercept", "intercept", dims=())],
    )
    for td in design.terms:
        out.extend(kind_of(td.term).latent(td, priors))
    return out


def build_latent_model(design: Design) -> LatentModel:
    """Assemble the latent model of ``design`` (a design of the fitted encoders: every batch of
    the same fit has the same tables)."""
    lt = latent_terms(design)
    hypers: dict[str, Hyper] = {}
    for h in lt.hypers:
        hypers.setdefault(h.name, h)
    pools = [b for b in lt.blocks if b.levels and not b.sessions]
    levels = max(pools, key=lambda b: b.size) if pools else None
    sessions = next((b for b in lt.blocks if b.sessions), None)
    blocks: dict[str, Block] = {}
    offsets: dict[str, slice] = {}
    at = 0
    for b in lt.blocks:
        if b is levels or b.sessions or b.size == 0:
            continue
        blocks[b.name] = b
        offsets[b.name] = slice(at, at + b.size)
        at += b.size
    if at > MAX_DENSE:
        big = max(blocks.values(), key=lambda b: b.size)
        raise SkipmodelError(
            f"--method laplace: {at} coefficients besides the eliminated pool "
            f"({big.name}: {big.size}); it eliminates one large pool, so give the others "
            "min_count or fewer levels"
        )
    views = {v.name: v for v in lt.views}
    levels_label = None
    if levels is not None:
        levels_label = next(v.dims[0] for v in lt.views if v.block == levels.name and v.dims)
    model = LatentModel(
        hypers=list(hypers.values()),
        blocks=blocks,
        offsets=offsets,
        views=views,
        segments={},
        P=np.zeros((0, at)),
        levels=levels,
        levels_label=levels_label,
        sessions=sessions,
    )
    _lay_out(model, design)
    return model


def _layouts(design: Design) -> list[tuple[str, str, np.ndarray]]:
    """(table, form, data) of every piece the rows read, in one fixed order: the intercept,
    then each term's gathers (data: codes) and slopes (data: values (n, p)). Laying out the
    model and encoding every batch both walk this list, so their orders cannot drift apart."""
    out: list[tuple[str, str, np.ndarray]] = [
        ("intercept", "gather", np.zeros(design.n_obs, np.int32))
    ]
    for td in design.terms:
        layout = kind_of(td.term).layout(td)
        if layout.level_slopes or layout.other:
            raise SkipmodelError(
                f"--method laplace does not fit the {td.term.kind} term {td.name!r} yet "
                "(slopes that vary by level); use --method nuts"
            )
        out += [(g.table, "gather", np.asarray(g.codes)) for g in layout.gathers]
        out += [(s.coef, "slope", np.asarray(s.values, dtype=float)) for s in layout.slopes]
    return out


def _lay_out(model: LatentModel, design: Design) -> None:
    """Work segments, ``P`` (table coordinates where they are no wider than the block) and the
    row format (:class:`RowFormat`)."""
    rows: list[np.ndarray] = []
    at = 0
    fmt = RowFormat()
    for table, form, data in _layouts(design):
        view = model.views.get(table)
        if view is None:
            raise SkipmodelError(f"--method laplace: no latent description of table {table!r}")
        if model.levels is not None and view.block == model.levels.name:
            model._pieces.append((table, form, "levels"))
            continue
        if model.sessions is not None and view.block == model.sessions.name:
            model._pieces.append((table, form, "sessions"))
            continue
        block = model.blocks.get(view.block)
        sl = model.offsets.get(view.block)
        size = view.size(model.blocks) if block is not None else 0
        if block is None or sl is None:  # an empty block (a pool of one level): reads zeros
            model._pieces.append((table, form, "empty"))
            continue
        # a row reads one entry of a table, but every coefficient of a block: tables up to
        # TABLE_MAX entries stay in table coordinates (the kernel's cost is per pair)
        coords = (
            "block"
            if form == "gather" and view.matrix is not None and size > TABLE_MAX
            else "table"
        )
        n = block.size if coords == "block" else size
        part = np.zeros((n, model.q))
        if coords == "block":
            part[:, sl] = np.eye(block.size)
        else:
            part[:, sl] = np.eye(block.size) if view.matrix is None else view.matrix
        rows.append(part)
        model.segments[table] = Segment(table, at, n, coords)
        if table == "intercept":
            fmt.constants.append(at)
            model._pieces.append((table, form, "constant"))
        elif form == "slope":
            fmt.slopes += [at + j for j in range(data.shape[1])]
            model._pieces.append((table, form, coords))
        else:
            matrix = view.matrix if coords == "block" else None
            fmt.add_gather(at, n if matrix is None else int(matrix.shape[0]), matrix)
            model._pieces.append((table, form, coords))
        at += n
    model.P = np.vstack(rows) if rows else np.zeros((0, model.q))
    model.format = fmt.freeze(model.width)
    model.Q = model.format.M @ model.P


@dataclass
class RowFormat:
    """How the kernel reads a compact row: its work coordinates (for the levels' cross
    curvature) and its code-space pairs (for the dense part's sums; see
    :mod:`~skipmodel.scale.laplace.kernel`).

    Work coordinates: ``constants`` (work indices every row reads with value 1: the intercept);
    per gather ``g_offset`` (its segment), ``g_row0`` (-1: the code is the entry, value 1; else
    the row of its matrix in ``mats`` where the code's basis values start) and ``g_width``; per
    slope column its work index ``slopes``.

    Code space: one index per code of a gather (a smooth's gather-grid points first, then per
    constant and per entry of a small table) and per slope, the slopes last and contiguous; a
    gather whose grid would overflow :data:`CODES_MAX` keeps one index per basis column
    instead, with the basis values. ``M`` maps code space to work coordinates.
    """

    constants: list[int] = field(default_factory=list)
    g_offset: list[int] = field(default_factory=list)
    g_row0: list[int] = field(default_factory=list)
    g_width: list[int] = field(default_factory=list)
    g_codes: list[int] = field(default_factory=list)
    slopes: list[int] = field(default_factory=list)
    _mats: list[np.ndarray] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    M: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def add_gather(self, offset: int, n_codes: int, matrix: np.ndarray | None) -> None:
        self.g_offset.append(offset)
        self.g_codes.append(n_codes)
        if matrix is None:
            self.g_row0.append(-1)
            self.g_width.append(1)
            return
        self.g_row0.append(sum(m.shape[0] for m in self._mats))
        self.g_width.append(int(matrix.shape[1]))
        self._mats.append(np.asarray(matrix, dtype=np.float64))

    def freeze(self, width: int) -> RowFormat:
        """Fix the arrays the kernel reads and the code space (``width``: work coordinates)."""
        mat_width = max((m.shape[1] for m in self._mats), default=1)
        mats = np.zeros((max(sum(m.shape[0] for m in self._mats), 1), mat_width))
        at = 0
        for m in self._mats:
            mats[at : at + m.shape[0], : m.shape[1]] = m
            at += m.shape[0]
        n_gathers = len(self.g_offset)
        # tabulate every gather whose codes fit the code space, in order
        size = len(self.constants) + len(self.slopes) + sum(self.g_width)
        coded = np.zeros(n_gathers, dtype=np.int32)
        for j in range(n_gathers):
            grow = self.g_codes[j] - (self.g_width[j] if self.g_row0[j] >= 0 else 1)
            if self.g_row0[j] < 0 or size + grow <= CODES_MAX:
                coded[j] = 1
                size += grow
        M = np.zeros((size, width))
        g_code = np.zeros(n_gathers, dtype=np.int32)
        # tabulated grids first: a row's products with its small tables and slopes then fall
        # in a few cache lines of the grid point's row of the curvature
        at = 0
        for j in range(n_gathers):
            off, row0, w = self.g_offset[j], self.g_row0[j], self.g_width[j]
            if row0 >= 0 and coded[j]:
                g_code[j] = at
                n = self.g_codes[j]
                M[at : at + n, off : off + w] = mats[row0 : row0 + n, :w]
                at += n
        c_const = []
        for w in self.constants:
            M[at, w] = 1.0
            c_const.append(at)
            at += 1
        for j in range(n_gathers):
            off, row0, w = self.g_offset[j], self.g_row0[j], self.g_width[j]
            if row0 < 0:
                g_code[j] = at
                n = self.g_codes[j]
                M[at : at + n, off : off + n] = np.eye(n)
                at += n
            elif not coded[j]:
                g_code[j] = at
                M[at : at + w, off : off + w] = np.eye(w)
                at += w
        s_code = []
        for w in self.slopes:
            M[at, w] = 1.0
            s_code.append(at)
            at += 1
        self.M = M
        self.arrays = {
            "c_const": np.asarray(c_const, dtype=np.int32),
            "w_const": np.asarray(self.constants, dtype=np.int32),
            "g_offset": np.asarray(self.g_offset, dtype=np.int32),
            "g_row0": np.asarray(self.g_row0, dtype=np.int32),
            "g_width": np.asarray(self.g_width, dtype=np.int32),
            "g_code": g_code,
            "g_coded": coded,
            "mats": mats,
            "s_code": np.asarray(s_code, dtype=np.int32),
            "s_work": np.asarray(self.slopes, dtype=np.int32),
        }
        return self

    @property
    def n_codes(self) -> int:
        return int(self.M.shape[0])


@dataclass(frozen=True)
class RowBatch:
    """Rows in the compact form the kernel reads: gather codes (``-1``: unseen in fitting, reads
    nothing), slope values (float32), the eliminated level (``-1``: none), the outcome, and
    with a session term each row's session ordinal (int64; a session's rows are whole in one
    batch, see :mod:`~skipmodel.scale.laplace.sessions`)."""

    codes: np.ndarray  # (n, G) int32
    values: np.ndarray  # (n, V) float32
    level: np.ndarray  # (n,) int32
    y: np.ndarray  # (n,) int8
    session: np.ndarray | None = None  # (n,) int64

    @property
    def n_rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(getattr(self, n).nbytes) for n in self.fields())

    def fields(self) -> tuple[str, ...]:
        """The names of the arrays this batch holds."""
        return ROW_FIELDS if self.session is None else (*ROW_FIELDS, "session")

    def take(self, index: np.ndarray | slice) -> RowBatch:
        return RowBatch(*(getattr(self, n)[index] for n in self.fields()))

    def slice(self, lo: int, hi: int) -> RowBatch:
        return self.take(slice(lo, hi))

    @classmethod
    def concat(cls, batches: list[RowBatch]) -> RowBatch:
        if len(batches) == 1:
            return batches[0]
        return cls(*(np.concatenate([getattr(b, n) for b in batches]) for n in batches[0].fields()))

    def by_level(self) -> RowBatch:
        """These rows in the order of their level (a stable sort). The kernel then walks the
        per-level sums in order instead of at random: a pass over a row cache of 100 M plays
        touches 200 k levels' cross curvatures (150 MB), far beyond the processor's caches.
        With sessions, the rows stay in session order (a session's rows must stay together)."""
        if self.session is not None:
            return self.take(np.argsort(self.session, kind="stable"))
        return self.take(np.argsort(self.level, kind="stable"))


#: The arrays of every :class:`RowBatch` (``session`` besides with a session term).
ROW_FIELDS = ("codes", "values", "level", "y")


def encode_rows(model: LatentModel, design: Design) -> RowBatch:
    """``design``'s rows as a :class:`RowBatch`."""
    n = design.n_obs
    fmt = model.format
    codes = np.empty((n, len(fmt.g_offset)), dtype=np.int32)
    values = np.empty((n, len(fmt.slopes)), dtype=np.float32)
    level = np.full(n, -1, dtype=np.int32)
    session = np.zeros(n, dtype=np.int64) if model.sessions is not None else None
    g = v = 0
    for (_, form, data), (_, _, coords) in zip(_layouts(design), model._pieces, strict=True):
        if coords in ("empty", "constant"):
            continue
        if coords == "levels":
            level[:] = data
        elif coords == "sessions":
            assert session is not None
            session[:] = data
        elif form == "slope":
            values[:, v : v + data.shape[1]] = data
            v += data.shape[1]
        else:
            codes[:, g] = data
            g += 1
    if design.outcome is None:
        raise SkipmodelError("--method laplace fits rows with outcomes")
    return RowBatch(codes, values, level, design.outcome.astype(np.int8), session)


__all__ = [
    "CODES_MAX",
    "MAX_DENSE",
    "ROW_FIELDS",
    "TABLE_MAX",
    "LatentModel",
    "RowBatch",
    "RowFormat",
    "Segment",
    "build_latent_model",
    "encode_rows",
    "latent_terms",
]
