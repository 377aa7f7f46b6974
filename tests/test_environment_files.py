"""pyproject.toml's extras and environment.yml must list the same packages."""
import re
import tomllib

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

HEAVY = {"nbgrader", "nbval", "pytest", "jupyterlab", "notebook", "scikit-learn", "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _environment_yml() -> dict[str, str]:
    """Requirement strings of environment.yml, conda and pip sections together, keyed by name."""
    reqs = {}
    for line in (REPO_ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+.*)$", line)
        if m and not m.group(1).startswith(("pip:", "python", "conda-forge")) and m.group(1) != "pip":
            req = m.group(1).strip()
            reqs[_name(req)] = req.replace(" ", "")
    return reqs


def test_environment_yml_lists_exactly_the_instructor_extra():
    extra = {_name(r): r.replace(" ", "") for r in _pyproject()["instructor"]}
    env = _environment_yml()
    assert set(env) == set(extra), (
        f"only in environment.yml: {sorted(set(env) - set(extra))}; "
        f"only in pyproject [instructor]: {sorted(set(extra) - set(env))}"
    )
    for name, req in extra.items():
        # conda writes `==` as `=` for conda packages; pip lines keep pip syntax.
        assert env[name] in (req, req.replace("==", "=")), f"{name}: pyproject says {req}, environment.yml says {env[name]}"


def test_student_extra_is_light_and_inside_the_instructor_extra():
    extras = _pyproject()
    student = {_name(r) for r in extras["student"]}
    # PyYAML: mnist_mlp trains from YAML config files (nnkit.training); Colab preinstalls it.
    assert student == {"numpy", "matplotlib", "ipywidgets", "tqdm", "pyyaml"}
    assert not student & HEAVY
    assert student <= {_name(r) for r in extras["instructor"]}
