"""The dbt project (dbt_project/) as dagster-dbt sees it, with its manifest guaranteed to exist.

The manifest (target/manifest.json) is not committed. It is (re)generated here, at load time, when
it is missing or older than any file of the project — so a clean checkout, `dagster dev`, pytest and
`dagster asset materialize` all work without a separate build step — and always under `dagster dev`
(DbtProject.prepare_if_dev). dagster-dbt guards the generation against concurrent processes.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path

from goldentime import settings

DBT_PROJECT_DIR = settings.REPO_ROOT / "dbt_project"
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
_PROJECT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")


def export_warehouse_env() -> str:
    """Give dbt (a subprocess reading env_var('GOLDENTIME_DUCKDB')) the warehouse Dagster uses.

    settings.warehouse_path() is absolute (relative values are resolved against the working
    directory), so dbt never creates a second warehouse inside a copy of the project.
    """
    path = settings.warehouse_path()
    os.environ[settings.DUCKDB_ENV] = path
    return path


def dbt_executable() -> str:
    """The dbt of this environment, found even when its bin folder is not on PATH (a venv used
    without activation): that folder is then added to PATH, so dagster-dbt's own helpers (the
    manifest preparer) find it too."""
    found = shutil.which("dbt")
    if found:
        return found
    beside_python = Path(sys.executable).parent / "dbt"
    if beside_python.exists():
        os.environ["PATH"] = f"{beside_python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return str(beside_python)
    raise RuntimeError("dbt is not installed in this environment (pip install dbt-core dbt-duckdb)")


def manifest_is_stale(project_dir: Path, manifest_path: Path) -> bool:
    if not manifest_path.exists():
        return True
    built = manifest_path.stat().st_mtime
    candidates = [project_dir / name for name in _PROJECT_FILES]
    for folder in _PROJECT_FOLDERS:
        root = project_dir / folder
        if root.exists():
            candidates.extend(p for p in root.rglob("*") if p.is_file())
    return any(p.exists() and p.stat().st_mtime > built for p in candidates)


@cache
def dbt_project():
    """The prepared DbtProject (cached per process)."""
    from dagster_dbt import DbtProject

    export_warehouse_env()
    dbt_executable()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    if manifest_is_stale(project.project_dir, project.manifest_path):
        project.preparer.prepare(project)
    return project
