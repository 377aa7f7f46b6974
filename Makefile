# Two commands do all set-up on a fresh machine with Python 3.11 and pip:
#   make demo   the instructor demo on the embedded dataset
#   make test   the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# One BLAS thread: on a 2-core box a second OpenBLAS thread collapses when
# anything else runs, and tests must not depend on timing.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: demo test venv sandbox-tool browser-tool db-tool bench release clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "nnkit needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The stamp is remade whenever pyproject.toml changes, so `make test` updates the venv.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet ".[instructor]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

# bubblewrap is the grader's sandbox. Installed when we are root and it is missing;
# otherwise the sandbox tests say what to install.
sandbox-tool:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the grader's sandbox)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "WARNING: bubblewrap (bwrap) is missing and we are not root: install the 'bubblewrap' package to run the sandbox tests"; \
	  fi; \
	fi

# Debian's chromium and chromium-driver drive the browser test of the student's path
# (tests/browser). Installed when we are root and they are missing; otherwise that test
# is skipped and says what to install.
browser-tool:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver (the browser test)"; \
	    (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "WARNING: could not install chromium and chromium-driver: the browser test will be skipped"; \
	  else \
	    echo "WARNING: chromium or chromedriver is missing and we are not root: install the Debian packages 'chromium' and 'chromium-driver' to run the browser test"; \
	  fi; \
	fi

# A real PostgreSQL server for the gradebook tests (tests/grading/test_grade_scaleout.py starts
# and stops a throwaway one as the `postgres` user). Installed when root and missing; else skipped.
db-tool:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql (the PostgreSQL gradebook tests)"; \
	    (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "WARNING: could not install postgresql: the PostgreSQL gradebook tests will be skipped"; \
	  else \
	    echo "WARNING: PostgreSQL is missing and we are not root: install the Debian package 'postgresql' to run its gradebook tests"; \
	  fi; \
	fi

demo: venv sandbox-tool
	$(PY) -m autograder demo fcnets

# The suite, then every source notebook executed on the embedded dataset (nbval).
# tests/browser and tests/colab add about 2 minutes once their venvs and the cached
# release exist (build/venvs, build/student-release), about 5 on a fresh clone.
# Both run on TEST_WORKERS processes (pytest-xdist): the suite spends most of its time
# waiting on kernels, sandboxes and subprocesses, so two take 30% less wall time on 2 cores.
# nbval keeps each notebook's cells on one process (--dist loadfile): they share its kernel.
TEST_WORKERS ?= 2
test: venv sandbox-tool browser-tool db-tool
	$(PY) -m pytest -n $(TEST_WORKERS)
	NNKIT_DATASET=embedded $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=300 source

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build out demo_out
