# bootgate — the two commands are `make run` and `make test`.

CARGO   ?= cargo
DESTDIR ?=
PREFIX  ?= /usr
BIN     := target/release/bootgate

.PHONY: all build run test deps install sysext bench clean

all: build

# Installs the system packages building and testing need (idempotent; apt as root).
deps:
	@build/deps.sh

build: deps
	$(CARGO) build --release --locked

# Runs the daemon in the foreground on the built-in default policy: prints the
# verdict, then serves the health endpoint until Ctrl-C. Files go under target/.
run: build
	build/run.sh $(BIN)

# Every test: unit, integration against real components (swtpm, dockerd,
# Prometheus, systemd tools, GPT images).
test: deps
	$(CARGO) build --locked --all-targets
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --no-fail-fast; \
	else \
		$(CARGO) test --locked --no-fail-fast; \
	fi

install: $(BIN)
	build/install.sh "$(or $(DESTDIR),/)" "$(PREFIX)" "$(BIN)"

$(BIN):
	$(CARGO) build --release --locked

sysext: $(BIN)
	BOOTGATE_BIN=$(BIN) build/sysext.sh target/sysext

# Benchmarks against baselines measured in the same run (figures, never pass/fail).
bench: build
	BOOTGATE_BIN=$(BIN) python3 bench/run.py

clean:
	$(CARGO) clean
