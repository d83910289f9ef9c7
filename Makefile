# bootgate — the two commands are `make run` and `make test`.

CARGO   ?= cargo
DESTDIR ?=
PREFIX  ?= /usr
BIN     := target/release/bootgate
# make run: a policy file (else $$BOOTGATE_POLICY, else policy/default.yaml, the
# built-in default) and an ADDR:PORT for the endpoint over the policy's.
POLICY  ?=
LISTEN  ?=

.PHONY: all build run test vm-test deps install sysext deb rpm bench clean FORCE

all: build

# The system packages the tests need (idempotent; apt as root, else only listed).
deps:
	@build/deps.sh test

# Needs only what the build links, and Rust >= 1.85 (rustup).
build:
	@build/deps.sh build
	$(CARGO) build --release --locked

# Runs the daemon in the foreground (POLICY=FILE, LISTEN=ADDR:PORT): prints the
# verdict, then serves the health endpoint until Ctrl-C. Files go under target/run.
run: build
	@build/deps.sh run
	POLICY="$(POLICY)" LISTEN="$(LISTEN)" build/run.sh $(BIN)

# Every test: unit, integration against real components (swtpm, dockerd,
# Prometheus, systemd tools, GPT images), then the QEMU A/B boot scenarios.
test: deps
	$(CARGO) build --locked --all-targets
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --locked --no-fail-fast; \
	else \
		$(CARGO) test --locked --no-fail-fast; \
	fi
	$(CARGO) test --locked --doc
	vm-tests/run.sh

# The QEMU A/B image test (vm-tests/): boots the debug build in a guest from
# a two-slot GPT disk and checks the gate, the marking and the rollback.
# BOOTGATE_BIN=... tests another binary.
vm-test: deps
	$(CARGO) build --locked
	vm-tests/run.sh

install: $(BIN)
	build/install.sh "$(or $(DESTDIR),/)" "$(PREFIX)" "$(BIN)"

# Always asks cargo, which rebuilds only what changed: a binary left from an older
# checkout must never be installed or packaged as this one.
$(BIN): FORCE
	$(CARGO) build --release --locked

FORCE:

sysext: $(BIN)
	BOOTGATE_BIN=$(BIN) build/sysext.sh target/sysext

# Debian and Fedora packages of the release build, into target/packages/
# (build/deb.sh with dpkg-deb, build/rpm.sh with rpmbuild).
deb: $(BIN)
	BOOTGATE_BIN=$(BIN) build/deb.sh target/packages

rpm: $(BIN)
	BOOTGATE_BIN=$(BIN) build/rpm.sh target/packages

# Benchmarks against baselines measured in the same run (figures, never pass/fail).
bench: build
	BOOTGATE_BIN=$(BIN) python3 bench/run.py

clean:
	$(CARGO) clean
