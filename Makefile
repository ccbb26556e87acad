# Quick start: `make demo` and `make test`. Both install missing Debian packages first (tools/install-deps.sh).
BUILD   ?= build
JOBS    ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps build demo test bench clean fixtures

all: build

deps:
	@sh tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/hone demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Benchmarks against PyTorch (needs Debian's python3-torch); not part of the test suite.
bench: build
	sh bench/train_step.sh
	sh bench/lora_step.sh
	sh bench/score.sh
	sh bench/tokenize.sh
	sh bench/merge.sh

# Regenerate the reference fixtures in tests/fixtures (needs Debian's python3-torch, python3-yaml, python3-jinja2
# and python3-regex; ../shared/data for the dataset references). Deterministic: a rerun changes nothing.
fixtures:
	/usr/bin/python3 tools/make_fixtures.py tests/fixtures
	/usr/bin/python3 tools/make_optim_fixtures.py tests/fixtures/optim
	/usr/bin/python3 tools/make_merge_fixtures.py tests/fixtures/merge
	/usr/bin/python3 tools/make_select_fixtures.py tests/fixtures
	/usr/bin/python3 tools/make_dataset_fixtures.py tests/fixtures/dataset/expected.json
	/usr/bin/python3 tools/make_chat_template_fixtures.py
	/usr/bin/python3 tools/tokenizer_oracle.py
	/usr/bin/python3 tools/make_lora_fixtures.py tests/fixtures/peft
	/usr/bin/python3 tools/make_prefix_fixtures.py tests/fixtures/peft

clean:
	rm -rf $(BUILD)
