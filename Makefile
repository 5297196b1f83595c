# shopagent: the two set-up commands are `make demo` and `make test`.
# Every dependency a target needs is installed here, never by hand.

GO        ?= go
BIN       := bin/shopagent
DEMO_DIR  ?= demo-out
# DEMO_SCALE multiplies the demo's shop size (and, later, training budgets).
DEMO_SCALE ?= 1
DEMO_PRODUCTS := $(shell echo $$((1000 * $(DEMO_SCALE))))
export GOFLAGS := -buildvcs=false

.PHONY: all build deps test test-race fuzz demo bench bench-large clean

all: build

deps:
	$(GO) mod download

build: deps
	$(GO) build -o $(BIN) ./cmd/shopagent

# Unit, integration and fuzz-seed tests. Stays well under 15 minutes on 2 cores.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...

test-race: deps
	$(GO) test -race -count=1 -timeout 14m ./...

# Short coverage-guided fuzzing of the action parser and the JSON loaders.
FUZZ_TIME ?= 20s
fuzz: deps
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseAction$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzEnvStep$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzLoadProducts$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseGoalJSON$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseProductJSON$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzTokenSetRatio$$' -fuzztime $(FUZZ_TIME)

# The main job, end to end, on the built-in shop generated on the fly.
demo: build
	@mkdir -p $(DEMO_DIR)
	@echo "== 1. generate the built-in shop ($(DEMO_PRODUCTS) products) -> $(DEMO_DIR)/shop"
	./$(BIN) env generate --products $(DEMO_PRODUCTS) --seed 1 --out $(DEMO_DIR)/shop
	@echo "== 2. WebShop's rule agent on the test goals"
	./$(BIN) eval --agent rule --split test --data $(DEMO_DIR)/shop --json $(DEMO_DIR)/eval-rule.json
	@echo "== 3. a random walk on the same goals, for scale"
	./$(BIN) eval --agent random --split test --data $(DEMO_DIR)/shop --json $(DEMO_DIR)/eval-random.json
	@echo "== artefacts: $(DEMO_DIR)/shop (WebShop-format data), $(DEMO_DIR)/eval-*.json (summaries)"

# Benchmarks: Go benchmarks at 1k products plus the scripted large runs.
bench: deps
	$(GO) test ./env -run '^$$' -bench . -benchmem -count 5 -timeout 30m | tee bench-env.txt
	bash bench/search_scale.sh 1000 100000

# The 1,181,436-product run (minutes, ~3 GB of disk).
bench-large: deps
	bash bench/search_scale.sh 1181436

clean:
	rm -rf bin $(DEMO_DIR) bench-env.txt
