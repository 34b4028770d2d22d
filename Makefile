# Everything runs inside .venv, installed from this project's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-all

.PHONY: install tools run test lint format bench soak clean

# Clients from Debian's packages that some tests drive: kcat (a Kafka client in
# C), chromium (headless, for the HTML report) and docker-compose (validates
# the compose file offline). Installed when missing and apt-get can run;
# otherwise those tests skip and say why.
DEBIAN_TOOLS := kcat chromium docker-compose

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

tools:
	@missing=""; \
	for tool in $(DEBIAN_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing from Debian's packages"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		|| echo "could not install$$missing; the tests that need them will skip"; \
	else \
		echo "missing$$missing (install them with apt-get as root); the tests that need them will skip"; \
	fi

## Run the whole pipeline on the embedded defaults (data under ./var).
run: install
	$(BIN)/pikcha run

## Run the full test suite.
test: install tools
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## Run every benchmark; writes benchmarks/results.json and docs/performance.md.
PURCHASES ?= 100000
bench: install
	$(BIN)/python -m benchmarks --purchases $(PURCHASES)

## A live publisher and a following projector for MINUTES; not part of test.
MINUTES ?= 10
RATE ?= 5000
soak: install
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES) --rate $(RATE)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
