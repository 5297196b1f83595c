# shopagent: the two set-up commands are `make demo` and `make test`.
# Every dependency a target needs is installed here, never by hand.

GO        ?= go
BIN       := bin/shopagent
DEMO_DIR  ?= demo-out
# DEMO_SCALE multiplies the demo's shop size (and, later, training budgets).
DEMO_SCALE ?= 1
DEMO_PRODUCTS := $(shell echo $$((1000 * $(DEMO_SCALE))))
export GOFLAGS := -buildvcs=false
# ONNX Runtime's CPU library (C API 1.24, what github.com/yalue/onnxruntime_go v1.27.0 wants),
# taken from the npm package onnxruntime-node by `make onnxruntime`; tests and the CLI find it
# through SHOPAGENT_ORT_LIB (see docs/EXPORT.md).
ORT_VERSION := 1.24.3
ORT_DIR     := third_party/onnxruntime
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so.1
ORT_ARCH    := $(shell uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
export SHOPAGENT_ORT_LIB ?= $(CURDIR)/$(ORT_LIB)

.PHONY: all build deps onnxruntime test test-race fuzz demo bench bench-large clean

all: build

deps: onnxruntime
	$(GO) mod download
	@command -v redis-server >/dev/null 2>&1 || { (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y redis-server || sudo apt-get install -y redis-server); }
	@test -x /usr/bin/chromium || { (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y chromium || sudo apt-get install -y chromium); }

# libonnxruntime.so.1 from the npm tarball (npm verifies the registry's integrity hash).
onnxruntime: $(ORT_LIB)
$(ORT_LIB):
	rm -rf $(ORT_DIR)/.pack && mkdir -p $(ORT_DIR)/.pack
	cd $(ORT_DIR)/.pack && npm pack --silent onnxruntime-node@$(ORT_VERSION)
	tar -xzf $(ORT_DIR)/.pack/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR)/.pack \
		package/bin/napi-v6/linux/$(ORT_ARCH)/libonnxruntime.so.1
	mv $(ORT_DIR)/.pack/package/bin/napi-v6/linux/$(ORT_ARCH)/libonnxruntime.so.1 $(ORT_LIB)
	rm -rf $(ORT_DIR)/.pack

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

# The main job, end to end, on the built-in shop generated on the fly: shop -> baselines ->
# expert demonstrations -> masked-LM pretraining -> imitation learning -> evaluation of the
# learned policy beside the rule agent. About 15 minutes on 2 cores at DEMO_SCALE=1 (see
# docs/TRAINING.md); DEMO_SCALE also multiplies the training steps.
DEMO_PRETRAIN_STEPS ?= 100
DEMO_IL_STEPS       ?= 330
demo: build
	@mkdir -p $(DEMO_DIR)
	@date +%s > $(DEMO_DIR)/.demo-start
	@echo "== 1. generate the built-in shop ($(DEMO_PRODUCTS) products) -> $(DEMO_DIR)/shop"
	./$(BIN) env generate --products $(DEMO_PRODUCTS) --seed 1 --out $(DEMO_DIR)/shop
	@echo "== 2. WebShop's rule agent on the test goals"
	./$(BIN) eval --agent rule --split test --data $(DEMO_DIR)/shop --json $(DEMO_DIR)/eval-rule.json
	@echo "== 3. a random walk on the same goals, for scale"
	./$(BIN) eval --agent random --split test --data $(DEMO_DIR)/shop --json $(DEMO_DIR)/eval-random.json
	@echo "== 4. expert demonstrations on the train goals (text_rich observations)"
	./$(BIN) datasets demos --data $(DEMO_DIR)/shop --split train --obs text_rich --read-prob 0 --out $(DEMO_DIR)/demos.parquet
	@echo "== 5. masked-LM pretraining of the tiny encoder on the shop's text"
	rm -rf $(DEMO_DIR)/pretrain $(DEMO_DIR)/il
	./$(BIN) train pretrain --data $(DEMO_DIR)/shop --preset tiny --steps $$(( $(DEMO_PRETRAIN_STEPS) * $(DEMO_SCALE) )) \
		--batch 32 --lr 1e-3 --out $(DEMO_DIR)/pretrain --no-progress
	@echo "== 6. imitation learning of the choice policy from the demonstrations"
	./$(BIN) train il --data $(DEMO_DIR)/shop --demos $(DEMO_DIR)/demos.parquet --init $(DEMO_DIR)/pretrain \
		--steps $$(( $(DEMO_IL_STEPS) * $(DEMO_SCALE) )) --batch 32 --lr 1e-3 --out $(DEMO_DIR)/il --no-progress
	@echo "== 7. the learned policy on the test goals, the rule agent beside it"
	./$(BIN) eval --policy $(DEMO_DIR)/il --split test --data $(DEMO_DIR)/shop \
		--out $(DEMO_DIR)/rollouts.parquet --json $(DEMO_DIR)/eval-policy.json
	@echo "== artefacts:"
	@echo "   $(DEMO_DIR)/shop                  WebShop-format data of the built-in shop"
	@echo "   $(DEMO_DIR)/demos.parquet         expert demonstrations (trajectory file)"
	@echo "   $(DEMO_DIR)/pretrain              pretraining run: checkpoints/, metrics.parquet, vocab.txt"
	@echo "   $(DEMO_DIR)/il                    imitation run: checkpoints/ (the policy), metrics.parquet"
	@echo "   $(DEMO_DIR)/rollouts.parquet      the policy's test episodes (source rollout)"
	@echo "   $(DEMO_DIR)/eval-*.json           summaries: rule, random, policy (with the rule agent beside it)"
	@echo "== demo wall time: $$(( $$(date +%s) - $$(cat $(DEMO_DIR)/.demo-start) )) s"

# Benchmarks: Go benchmarks at 1k products plus the scripted large runs.
bench: deps
	$(GO) test ./env -run '^$$' -bench . -benchmem -count 5 -timeout 30m | tee bench-env.txt
	bash bench/search_scale.sh 1000 100000

# The 1,181,436-product run (minutes, ~3 GB of disk).
bench-large: deps
	bash bench/search_scale.sh 1181436

clean:
	rm -rf bin $(DEMO_DIR) bench-env.txt
