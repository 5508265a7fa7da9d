"""Versioned model artefacts: a model file plus the metadata a scoring run needs to trust it.

Layout (root = ``models_dir()``, env var ``GOLDENTIME_MODELS``, default ``<repo>/data/models``)::

    <root>/<name>/<version>/model.pkl       the fitted estimator (pickle)
    <root>/<name>/<version>/metadata.json   version, training window, features, params,
                                            library versions, sha256 of model.pkl, metrics
    <root>/<name>/LATEST                    the version scoring uses by default

A version is ``<name>-<UTC yyyymmddThhmmss>-<first 8 hex of the model's sha256>``, so it sorts
by time and names its content. Loading checks the hash (a swapped or truncated file is refused)
and the scikit-learn version (a pickle is only trusted by the version that wrote it);
:func:`check_features` refuses a feature frame whose columns or types differ from the ones the
model was trained on. Metrics written later (the evaluation step) go into ``metadata.json`` with
:func:`update_metadata`; the model file never changes once written.

Only load models you wrote: a pickle runs code when it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MODELS_ENV = "GOLDENTIME_MODELS"
_REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
LATEST_FILE = "LATEST"


class ArtifactError(RuntimeError):
    """A model artefact is missing, corrupt, or was written by another library version."""


class FeatureMismatchError(ArtifactError):
    """The features offered for scoring are not the ones the model was trained on."""


def models_dir() -> Path:
    """Root folder of model artefacts: $GOLDENTIME_MODELS, else <repo>/data/models (GOLDENTIME_DATA aware)."""
    value = os.environ.get(MODELS_ENV)
    if value:
        return Path(value).resolve()
    data = os.environ.get("GOLDENTIME_DATA")
    return (Path(data) if data else _REPO_ROOT / "data").resolve() / "models"


def library_versions() -> dict[str, str]:
    """Versions of what a model file depends on, recorded with every artefact."""
    import numpy
    import polars
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "polars": polars.__version__,
    }


@dataclass(frozen=True)
class ModelArtifact:
    name: str
    version: str
    path: Path  # the version folder
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def features(self) -> list[dict[str, str]]:
        return list(self.metadata["features"])


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: Any, *, name: str, features: list[dict[str, str]], metadata: dict[str, Any],
               root: Path | None = None, now: datetime | None = None, make_latest: bool = True) -> ModelArtifact:
    """Write a new immutable version of `name`; returns it (and points LATEST at it).

    `features`: ``[{"name": ..., "dtype": ...}, ...]`` in the order the model expects them.
    `metadata`: anything JSON-serialisable (training window, params, metrics ...).
    """
    root = Path(root or models_dir())
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    version = f"{name}-{moment.strftime('%Y%m%dT%H%M%S')}-{digest[:8]}"
    folder = root / name / version
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        **metadata,
        "name": name,
        "version": version,
        "created_at": moment.isoformat(),
        "features": [dict(f) for f in features],
        "libraries": library_versions(),
        "model_file": MODEL_FILE,
        "model_sha256": digest,
    }
    _atomic_write(folder / MODEL_FILE, blob)
    _atomic_write(folder / METADATA_FILE, json.dumps(meta, indent=2, default=str).encode())
    if make_latest:
        set_latest(name, version, root=root)
    return ModelArtifact(name=name, version=version, path=folder, metadata=meta)


def set_latest(name: str, version: str, *, root: Path | None = None) -> None:
    root = Path(root or models_dir())
    if not (root / name / version / METADATA_FILE).exists():
        raise ArtifactError(f"no model {name} version {version} under {root}")
    _atomic_write(root / name / LATEST_FILE, (version + "\n").encode())


def latest_version(name: str, *, root: Path | None = None) -> str | None:
    pointer = Path(root or models_dir()) / name / LATEST_FILE
    return pointer.read_text().strip() if pointer.exists() else None


def list_versions(name: str, *, root: Path | None = None) -> list[str]:
    folder = Path(root or models_dir()) / name
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / METADATA_FILE).exists())


def read_artifact(name: str, version: str | None = None, *, root: Path | None = None) -> ModelArtifact:
    """Metadata of a version (default: LATEST), without loading the model."""
    root = Path(root or models_dir())
    version = version or latest_version(name, root=root)
    if not version:
        raise ArtifactError(f"no trained {name} model under {root} (run the training asset first)")
    folder = root / name / version
    meta_path = folder / METADATA_FILE
    if not meta_path.exists():
        raise ArtifactError(f"model {version} not found under {root / name}")
    return ModelArtifact(name=name, version=version, path=folder, metadata=json.loads(meta_path.read_text()))


def load_model(name: str, version: str | None = None, *, root: Path | None = None,
               allow_version_skew: bool = False) -> tuple[Any, ModelArtifact]:
    """(model, artefact) of a version (default LATEST), after checking its hash and sklearn version."""
    artifact = read_artifact(name, version, root=root)
    blob = artifact.model_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != artifact.metadata["model_sha256"]:
        raise ArtifactError(f"{artifact.model_path} does not match the sha256 in its metadata")
    written = artifact.metadata["libraries"]["scikit-learn"]
    running = library_versions()["scikit-learn"]
    if written.split(".")[:2] != running.split(".")[:2] and not allow_version_skew:
        raise ArtifactError(
            f"model {artifact.version} was written by scikit-learn {written}, this is {running}: retrain it"
        )
    return pickle.loads(blob), artifact


def update_metadata(artifact: ModelArtifact, **entries: Any) -> ModelArtifact:
    """Add entries (e.g. evaluation metrics) to a version's metadata.json; the model file is untouched."""
    meta = {**artifact.metadata, **entries}
    _atomic_write(artifact.path / METADATA_FILE, json.dumps(meta, indent=2, default=str).encode())
    return ModelArtifact(name=artifact.name, version=artifact.version, path=artifact.path, metadata=meta)


def feature_schema(frame) -> list[dict[str, str]]:
    """[{name, dtype}] of a polars frame, in column order."""
    return [{"name": name, "dtype": str(dtype)} for name, dtype in frame.schema.items()]


def check_features(artifact: ModelArtifact, frame) -> None:
    """Refuse (FeatureMismatchError) a polars frame whose columns, order or dtypes differ from training."""
    expected = artifact.features
    offered = feature_schema(frame)
    if expected == offered:
        return
    want = {f["name"]: f["dtype"] for f in expected}
    have = {f["name"]: f["dtype"] for f in offered}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    retyped = sorted(n for n in set(want) & set(have) if want[n] != have[n])
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"unexpected {extra}")
    if retyped:
        problems.append("dtype changed " + ", ".join(f"{n}: {want[n]} -> {have[n]}" for n in retyped))
    if not problems:
        problems.append("column order differs")
    raise FeatureMismatchError(
        f"model {artifact.version} refuses these features ({'; '.join(problems)}): retrain the model "
        f"or score with the feature code it was trained with"
    )
