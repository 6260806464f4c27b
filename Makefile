# epyseg-ij: `make demo` and `make test` set up everything they need (venv, Debian packages, the ImageJ plug-in).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JAR := build/EPySeg_Bridge.jar
DEBS := libij-java jython default-jdk-headless xvfb xauth
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test lint bench system-deps jar clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cpu,test]'
	# tf-keras declares a dependency on the full tensorflow wheel; tensorflow-cpu already provides it.
	$(BIN)/pip install --quiet --no-deps tf-keras==2.21.0
	touch $@

system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

jar: $(JAR)
$(JAR): $(shell find epyseg_ij/java -type f 2>/dev/null) | system-deps
	sh epyseg_ij/java/build.sh $@

demo: $(STAMP) system-deps $(JAR)
	mkdir -p demo-output
	$(BIN)/epyseg-ij macro samples/demo.ijm --arg "$(CURDIR)/samples/wingdisc_frame00.tif|$(CURDIR)/demo-output"

test: $(STAMP) system-deps $(JAR)
	$(BIN)/ruff check epyseg_ij tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check epyseg_ij tests bench
	$(BIN)/ruff format --check epyseg_ij tests bench

bench: $(STAMP) $(JAR)
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/transfer.py

clean:
	rm -rf build demo-output
