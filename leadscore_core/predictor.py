"""How a model's raw probabilities are computed: plain XGBoost, or C code compiled from the model.

`XGBoostPredictor` uses XGBoost's public `inplace_predict` on one thread and is always available.
It pays XGBoost's fixed setup per call (about 0.1 ms for one row through its Python wrapper).

`CompiledPredictor` runs a shared library generated from the model by tl2cgen (the Treelite
project's model compiler): the trees become nested `if`s in C, and one row costs about a
microsecond. The library is built when a model is published (`build_compiled_predictor`, which
needs treelite, tl2cgen and a C compiler, i.e. the pipeline's environment), written beside the
published model under a name that contains the model file's sha256, and loaded by the scoring
service with ctypes only: the service needs neither tl2cgen nor a compiler. Next to the code
tl2cgen generates, the library holds one small function of ours, `leadscore_predict`, that scores
a whole row-major float32 matrix (NaN = missing) in one call.

Compiled and XGBoost predictions agree within `TOLERANCE` (tl2cgen adds the trees in another
order and the base score last, so most differ in the last bits of the float: at most 6.6e-7 on
the benchmark model's holdout, 7% bit-identical). That is checked on the whole holdout and on
rows at every split threshold of the model when the library is built, and on the threshold rows
again each time the service loads it. Any failure (no library for this sha256, not loadable,
wrong feature count, one prediction off) means XGBoost is used, with a log line saying why:
never a wrong score.
"""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xgboost as xgb

log = logging.getLogger(__name__)

# Largest allowed difference between compiled and XGBoost probabilities (raw and calibrated).
TOLERANCE = 1e-6
COMPILED_PREFIX = "predictor-"
COMPILED_SUFFIX = ".so"
# Rows at split thresholds checked at every load; seeded, so every load checks the same rows.
THRESHOLD_ROWS = 4096

# The one function of ours in the library: scores `n_rows` rows of `n_features` float32 values
# (NaN is missing) into `out`, using the `predict` function and `union Entry` that tl2cgen
# generates (declared in the `header.h` it writes beside them). Returns -1 on a feature-count
# mismatch, so that a library built for another model cannot read past a row.
BATCH_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include "header.h"

int32_t leadscore_predict(const float* rows, int64_t n_rows, int32_t n_features, float* out) {
  if (n_features != get_num_feature()) return -1;
  union Entry entry[n_features];
  for (int64_t i = 0; i < n_rows; ++i) {
    const float* row = rows + i * n_features;
    for (int32_t j = 0; j < n_features; ++j) {
      if (isnan(row[j])) {
        entry[j].missing = -1;
      } else {
        entry[j].fvalue = row[j];
      }
    }
    float result = 0.0f;
    predict(entry, 0, &result);
    out[i] = result;
  }
  return 0;
}
"""


class Predictor(Protocol):
    """Raw (uncalibrated) probabilities for a C-contiguous float32 matrix, rows x features, or
    for one row of Python floats (stored as float32, as in the matrix: the same result)."""

    kind: str

    def predict(self, matrix: np.ndarray) -> np.ndarray: ...

    def predict_one(self, row: list[float]) -> float: ...


class XGBoostPredictor:
    kind = "xgboost"

    def __init__(self, booster: xgb.Booster) -> None:
        # One thread: for the few rows of a request, starting XGBoost's thread pool costs more
        # than the prediction.
        booster.set_param({"nthread": 1})
        self.booster = booster

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        return self.booster.inplace_predict(matrix, validate_features=False)

    def predict_one(self, row: list[float]) -> float:
        return float(self.predict(np.array([row], dtype=np.float32))[0])


class CompiledPredictor:
    kind = "compiled"

    def __init__(self, library_path: Path, n_features: int) -> None:
        library = ctypes.CDLL(str(library_path))
        self._predict = library.leadscore_predict
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
        self._predict.restype = ctypes.c_int32
        if library.get_num_feature() != n_features:
            raise ValueError(
                f"compiled for {library.get_num_feature()} features, the model has {n_features}"
            )
        self.n_features = n_features
        self.path = library_path
        self._row_type = ctypes.c_float * n_features
        self._one = ctypes.c_int64(1)
        self._width = ctypes.c_int32(n_features)

    def predict_one(self, row: list[float]) -> float:
        """Without numpy: the row as a ctypes float array (the same float32 rounding)."""
        out = ctypes.c_float()
        if self._predict(self._row_type(*row), self._one, self._width, ctypes.byref(out)) != 0:
            raise ValueError("the compiled predictor refused the row")
        return out.value

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.dtype != np.float32 or not matrix.flags.c_contiguous:
            raise ValueError("the compiled predictor takes C-contiguous float32 rows")
        rows, columns = matrix.shape
        if columns != self.n_features:
            raise ValueError(f"expected {self.n_features} columns, got {columns}")
        out = np.empty(rows, dtype=np.float32)
        if self._predict(matrix.ctypes.data, rows, columns, out.ctypes.data) != 0:
            raise ValueError("the compiled predictor refused the matrix")
        return out


def compiled_predictor_path(directory: Path, model_sha256: str) -> Path:
    """Where the library for the model file with this sha256 is published."""
    return directory / f"{COMPILED_PREFIX}{model_sha256}{COMPILED_SUFFIX}"


def splits_by_tree(model_json: Mapping[str, Any]) -> list[dict[int, np.ndarray]]:
    """Per tree of the model, the columns it splits on, each with the sorted distinct float32
    thresholds of its numerical splits (empty for a column the tree splits by category only)."""
    trees = []
    for tree in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        found: dict[int, set[float]] = {}
        for column, condition, left, split_type in zip(
            tree["split_indices"],
            tree["split_conditions"],
            tree["left_children"],
            tree["split_type"],
            strict=True,
        ):
            if left == -1:
                continue  # a leaf
            thresholds = found.setdefault(column, set())
            if split_type == 0:  # numerical: goes left when the value is below the threshold
                thresholds.add(condition)
        trees.append(
            {
                column: np.unique(np.array(sorted(values), dtype=np.float32))
                for column, values in found.items()
            }
        )
    return trees


def threshold_rows(
    model_json: Mapping[str, Any], category_counts: Mapping[int, int], n_features: int, n_rows: int
) -> np.ndarray:
    """Rows whose values sit exactly at the model's split thresholds and just below them, or are
    missing, and every valid code of a categorical feature (`category_counts`: column -> number
    of categories): the values where two predictors could branch differently."""
    candidates: list[set[float]] = [{float("nan")} for _ in range(n_features)]
    for column, count in category_counts.items():
        candidates[column].update(float(code) for code in range(count))
    for splits in splits_by_tree(model_json):
        for column, thresholds in splits.items():  # categorical codes are candidates already
            below = np.nextafter(thresholds, np.float32(-np.inf))
            candidates[column].update(map(float, thresholds), map(float, below))
    rng = np.random.default_rng(0)
    columns = [rng.choice(np.array(sorted(values, key=str)), n_rows) for values in candidates]
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float32)


def disagreement(
    compiled: np.ndarray, reference: np.ndarray, calibrate: Any | None = None
) -> float:
    """Largest difference between two predictors' raw probabilities, and between their
    calibrated ones when `calibrate` is given (a steep calibration magnifies small differences)."""
    raw = np.abs(compiled.astype(np.float64) - reference.astype(np.float64))
    worst = float(raw.max(initial=0.0))
    if calibrate is not None:
        served = np.abs(
            calibrate(compiled.astype(np.float64)) - calibrate(reference.astype(np.float64))
        )
        worst = max(worst, float(served.max(initial=0.0)))
    return worst if np.isfinite(worst) else float("inf")


def load_verified(
    library_path: Path,
    reference: Predictor,
    model_json: Mapping[str, Any],
    category_counts: Mapping[int, int],
    n_features: int,
    calibrate: Any | None = None,
    extra_rows: np.ndarray | None = None,
) -> CompiledPredictor:
    """The compiled predictor, if it agrees with `reference` on the threshold rows (and
    `extra_rows`); raises ValueError or OSError saying why not."""
    compiled = CompiledPredictor(library_path, n_features)
    rows = threshold_rows(model_json, category_counts, n_features, THRESHOLD_ROWS)
    if extra_rows is not None:
        rows = np.concatenate([rows, np.ascontiguousarray(extra_rows, dtype=np.float32)])
    worst = disagreement(compiled.predict(rows), reference.predict(rows), calibrate)
    if not worst <= TOLERANCE:
        raise ValueError(
            f"compiled predictions differ from XGBoost's by up to {worst:.3g} "
            f"(allowed {TOLERANCE:g}) on {len(rows)} rows"
        )
    return compiled


def build_compiled_predictor(
    model_raw: bytes, verification_matrix: np.ndarray, out_dir: Path
) -> Path | None:
    """Compile the published model file `model_raw` with tl2cgen into `out_dir`, named by the
    file's sha256, after checking it against XGBoost on `verification_matrix` (e.g. the whole
    holdout as a model matrix) and on rows at every split threshold.

    Returns the library's path, or None when it cannot be built or does not agree (no treelite
    or tl2cgen installed, no C compiler, a disagreement): the reason is logged and the service
    then scores with XGBoost. Libraries of other models in `out_dir` are removed once the new one
    is in place. Never raises for a build problem: publishing must not depend on a compiler.
    """
    # Imported here: artifact imports this module.
    from leadscore_core.artifact import load_model_bytes, write_atomically

    model = load_model_bytes(model_raw)
    target = compiled_predictor_path(Path(out_dir), model.file_sha256)
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        log.warning("no compiled predictor (%s); the service will use XGBoost", exc)
        return None
    compiler = next((c for c in ("gcc", "clang", "cc") if shutil.which(c)), None)
    if compiler is None:
        log.warning("no C compiler (gcc, clang, cc) found; the service will use XGBoost")
        return None
    with tempfile.TemporaryDirectory(prefix="leadscore-compile-") as work:
        source_dir = Path(work) / "src"
        try:
            tree_model = treelite.frontend.from_xgboost(model.booster)
            tl2cgen.generate_c_code(tree_model, dirpath=source_dir, params={"parallel_comp": 0})
            _add_batch_source(source_dir)
            library = tl2cgen.create_shared(
                compiler, source_dir, nthread=1, long_build_time_warning=False
            )
            load_verified(
                Path(library),
                model.predictor,
                json.loads(model_raw),
                model.category_counts,
                len(model.features),
                model.calibrate,
                extra_rows=verification_matrix,
            )
        except Exception as exc:  # any failure: no library, and XGBoost serves
            log.warning("no compiled predictor for %s: %s", model.version, exc)
            return None
        write_atomically(target, Path(library).read_bytes())
    remove_other_predictors(Path(out_dir), keep=target)
    log.info("compiled predictor for %s: %s", model.version, target.name)
    return target


def remove_other_predictors(directory: Path, keep: Path | None) -> None:
    """Delete the compiled predictors in `directory` other than `keep` (those of models no
    longer published there)."""
    for stale in directory.glob(f"{COMPILED_PREFIX}*{COMPILED_SUFFIX}"):
        if stale != keep:
            stale.unlink(missing_ok=True)


def _add_batch_source(source_dir: Path) -> None:
    """Our `leadscore_predict` next to tl2cgen's sources, listed in its build recipe."""
    (source_dir / "leadscore_batch.c").write_text(BATCH_SOURCE)
    recipe_path = source_dir / "recipe.json"
    recipe = json.loads(recipe_path.read_text())
    recipe["sources"].append({"name": "leadscore_batch", "length": BATCH_SOURCE.count("\n")})
    recipe_path.write_text(json.dumps(recipe))
