# Quick start: `make demo` and `make test`. Each sets up .venv by itself.
# DISTRO=jazzy uses ROS 2 Jazzy's wheels (rclpy 7.1, Fast DDS 2.14) in .venv-jazzy instead of
# Kilted's (rclpy 9.1, Fast DDS 3.2) in .venv: `make venv DISTRO=jazzy`, `make test DISTRO=jazzy`.
PYTHON ?= python3
DISTRO ?= kilted
DISTROS := kilted jazzy
ifeq ($(filter $(DISTRO),$(DISTROS)),)
$(error DISTRO=$(DISTRO) is not one of: $(DISTROS))
endif
ifeq ($(DISTRO),kilted)
VENV := .venv
REQUIREMENTS := requirements.txt
INSTALL_REQUIREMENTS := -r requirements.txt
else
# requirements.txt less its ros-kilted-* pins, plus requirements-$(DISTRO).txt
VENV := .venv-$(DISTRO)
REQUIREMENTS := requirements.txt requirements-$(DISTRO).txt
INSTALL_REQUIREMENTS := -r $(VENV)/requirements-base.txt -r requirements-$(DISTRO).txt
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint clean mutate

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS) setup.py setup.cfg
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "error: Python >= 3.10 is needed ($(PYTHON) is older); set PYTHON=python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "error: '$(PYTHON) -m venv' failed; install the venv module (apt install python3-venv)" >&2; exit 1; }
	@echo '*' > $(VENV)/.gitignore
	@grep -v '^ros-kilted-' requirements.txt > $(VENV)/requirements-base.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(INSTALL_REQUIREMENTS)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q -rs test

# The tests too slow for `make test`, gated by EIGEN_DEPTH_SLOW_TESTS=1: the torch.compile
# backend against eager (20-30 s on a 2-core CPU, C++ compiler needed). CI runs it too.
.PHONY: test-slow
test-slow: venv
	EIGEN_DEPTH_SLOW_TESTS=1 $(BIN)/python -m pytest -q -rs 'test/test_backends.py::test_backend_close_to_eager[compile]'

demo: venv
	$(BIN)/eigen-depth demo

# Mutation testing of the modules whose mistakes users cannot see (docs/testing.md); not part
# of `make test`. Installs mutmut into the venv on first use; starts from a fresh mutants/;
# one worker unless MUTATE_JOBS=N. Prints the score of each module and fails below 90 %.
mutate: venv
	@$(BIN)/python -c 'import mutmut' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet 'mutmut==3.8.1' -c requirements.txt
	rm -rf mutants
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(or $(MUTATE_JOBS),1)
	@$(BIN)/mutmut results --all true | awk -F': ' '{ m = $$1; sub(/^ +/, "", m); \
		sub(/\.x[^.]*__mutmut_[0-9]+$$/, "", m); n[m]++; \
		if ($$2 ~ /^(killed|timeout|segfault|suspicious)$$/) k[m]++ } \
		END { bad = 0; for (m in n) { p = 100 * k[m] / n[m]; bad += p < 90; \
		printf "%-40s %4d of %4d killed  %5.1f %%\n", m, k[m], n[m], p | "sort" } \
		close("sort"); exit bad > 0 }'

clean:
	rm -rf $(VENV) build install log .pytest_cache
