# shopagent: the two set-up commands are `make demo` and `make test`.
# Every dependency a target needs is installed here, never by hand.

GO        ?= go
BIN       := bin/shopagent
DEMO_DIR  ?= demo-out
# DEMO_SCALE multiplies the demo's shop (its WebShop goals, 10 products each; at most all
# 12,087) and its training budgets.
DEMO_SCALE ?= 1
DEMO_GOALS := $(shell n=$$((2500 * $(DEMO_SCALE))); [ $$n -ge 12087 ] && echo all || echo $$n)
export GOFLAGS := -buildvcs=false
# ONNX Runtime's CPU library (C API 1.24, what github.com/yalue/onnxruntime_go v1.27.0 wants),
# taken from the npm package onnxruntime-node by `make onnxruntime`; tests and the CLI find it
# through SHOPAGENT_ORT_LIB (see docs/EXPORT.md). The CPU path stays on 1.24.3: 1.29.0 measured
# up to 1.4x slower per /act on this CPU (docs/BENCHMARKS.md, "ONNX Runtime 1.24.3 vs 1.29.0").
ORT_VERSION := 1.24.3
ORT_DIR     := third_party/onnxruntime
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so.1
ORT_ARCH    := $(shell uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
# The GPU path (`make onnxruntime-cuda`, docs/GPU.md): ONNX Runtime 1.29.0's core library from
# onnxruntime-node (built with the CUDA provider bridge) and the CUDA execution provider of the
# same version (CUDA 13) from the npm package com.github.asus4.onnxruntime.linux-x64-gpu.
ORT_CUDA_VERSION := 1.29.0
ORT_CUDA_PKG     := com.github.asus4.onnxruntime.linux-x64-gpu
ORT_CUDA_PKG_VER := 0.4.9
ORT_CUDA_DIR     := third_party/onnxruntime-cuda
ORT_CUDA_STAMP   := $(ORT_CUDA_DIR)/.version-$(ORT_CUDA_VERSION)
export SHOPAGENT_ORT_LIB ?= $(CURDIR)/$(ORT_LIB)

.PHONY: all build build-serve deps onnxruntime onnxruntime-cuda test-cuda-error test test-race fuzz demo bench bench-large clean

all: build

# Debian packages come from apt, as root (or through sudo): redis-server for the server's
# tests, chromium (without its recommended packages) for the web-shop tests.
deps: onnxruntime
	$(GO) mod download
	@command -v redis-server >/dev/null 2>&1 || { (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y --no-install-recommends redis-server || sudo apt-get install -y --no-install-recommends redis-server); }
	@test -x /usr/bin/chromium || { (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y --no-install-recommends chromium || sudo apt-get install -y --no-install-recommends chromium); }

# libonnxruntime.so.1 from the npm tarball (npm verifies the registry's integrity hash).
onnxruntime: $(ORT_LIB)
$(ORT_LIB):
	rm -rf $(ORT_DIR)/.pack && mkdir -p $(ORT_DIR)/.pack
	cd $(ORT_DIR)/.pack && npm pack --silent onnxruntime-node@$(ORT_VERSION)
	tar -xzf $(ORT_DIR)/.pack/onnxruntime-node-$(ORT_VERSION).tgz -C $(ORT_DIR)/.pack \
		package/bin/napi-v6/linux/$(ORT_ARCH)/libonnxruntime.so.1
	mv $(ORT_DIR)/.pack/package/bin/napi-v6/linux/$(ORT_ARCH)/libonnxruntime.so.1 $(ORT_LIB)
	rm -rf $(ORT_DIR)/.pack

# ONNX Runtime with its CUDA execution provider (Linux x64; not part of `make test`; 290 MB of
# downloads): libonnxruntime.so.1, libonnxruntime_providers_cuda.so and
# libonnxruntime_providers_shared.so in $(ORT_CUDA_DIR). Checked to be one ONNX Runtime version,
# $(ORT_CUDA_VERSION): the core's symbol version VERS_$(ORT_CUDA_VERSION) and version string, the
# provider's embedded version string, the provider package's README. At run time the provider
# needs CUDA 13 (libcublasLt.so.13, libcublas.so.13, libcudart.so.13, libcurand.so.10) and the
# driver's libcuda.so.1; the server and the exporter check that and name what is missing.
onnxruntime-cuda: $(ORT_CUDA_STAMP)
$(ORT_CUDA_STAMP):
	@test "$(ORT_ARCH)" = x64 || { echo "onnxruntime-cuda: the CUDA provider package is Linux x64 only"; exit 1; }
	rm -rf $(ORT_CUDA_DIR) && mkdir -p $(ORT_CUDA_DIR)/.pack
	cd $(ORT_CUDA_DIR)/.pack && npm pack --silent onnxruntime-node@$(ORT_CUDA_VERSION) && npm pack --silent $(ORT_CUDA_PKG)@$(ORT_CUDA_PKG_VER)
	tar --no-same-owner -xzf $(ORT_CUDA_DIR)/.pack/onnxruntime-node-$(ORT_CUDA_VERSION).tgz -C $(ORT_CUDA_DIR)/.pack \
		package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	tar --no-same-owner -xzf $(ORT_CUDA_DIR)/.pack/$(ORT_CUDA_PKG)-$(ORT_CUDA_PKG_VER).tgz -C $(ORT_CUDA_DIR)/.pack package/README.md \
		package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
	mv $(ORT_CUDA_DIR)/.pack/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $(ORT_CUDA_DIR)/.pack/package/Plugins/Linux/x64/*.so $(ORT_CUDA_DIR)/
	@grep -a -q -F 'VERS_$(ORT_CUDA_VERSION)' $(ORT_CUDA_DIR)/libonnxruntime.so.1 && \
		tr '\000' '\n' < $(ORT_CUDA_DIR)/libonnxruntime.so.1 | grep -q -x -F '$(ORT_CUDA_VERSION)' || \
		{ echo "$(ORT_CUDA_DIR)/libonnxruntime.so.1 is not ONNX Runtime $(ORT_CUDA_VERSION)"; exit 1; }
	@tr '\000' '\n' < $(ORT_CUDA_DIR)/libonnxruntime_providers_cuda.so | grep -q -x -F '$(ORT_CUDA_VERSION)' || \
		{ echo "libonnxruntime_providers_cuda.so is not ONNX Runtime $(ORT_CUDA_VERSION)"; exit 1; }
	@grep -q -F 'ONNX Runtime: [$(ORT_CUDA_VERSION)]' $(ORT_CUDA_DIR)/.pack/package/README.md || \
		{ echo "$(ORT_CUDA_PKG)@$(ORT_CUDA_PKG_VER) does not say it is ONNX Runtime $(ORT_CUDA_VERSION)"; exit 1; }
	rm -rf $(ORT_CUDA_DIR)/.pack
	@echo "ONNX Runtime $(ORT_CUDA_VERSION) with its CUDA provider, one version: --ort-lib $(CURDIR)/$(ORT_CUDA_DIR)/libonnxruntime.so.1 (or SHOPAGENT_ORT_LIB)"
	touch $@

build: deps
	$(GO) build -o $(BIN) ./cmd/shopagent

# The policy server alone (no GoMLX linked): bin/shopagent-serve.
build-serve: onnxruntime
	$(GO) build -o bin/shopagent-serve ./cmd/shopagent-serve

# Unit, integration and fuzz-seed tests, then a few seconds of fuzzing of the server's
# /act and /feedback; fails when go.mod or go.sum is not tidy. Stays well under 15
# minutes on 2 cores.
SERVE_FUZZ_TIME ?= 8s
test: deps
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...
	$(GO) test ./serve -run '^$$' -fuzz '^FuzzServer$$' -fuzztime $(SERVE_FUZZ_TIME)
	$(GO) test ./serve -run '^$$' -fuzz '^FuzzActFeedback$$' -fuzztime $(SERVE_FUZZ_TIME)

# The CUDA error path with the real provider files (after the 179 MB download): on a machine
# without CUDA 13 the error names the missing library; on a CUDA machine the provider loads.
test-cuda-error: onnxruntime-cuda
	SHOPAGENT_REQUIRE_ORT_CUDA=1 $(GO) test -count=1 -run 'CUDA' ./export/onnxrt

test-race: deps
	$(GO) test -race -count=1 -timeout 14m ./...

# Short coverage-guided fuzzing of the action parser, the JSON loaders and the server.
FUZZ_TIME ?= 20s
fuzz: deps
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseAction$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzEnvStep$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzLoadProducts$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseGoalJSON$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzParseProductJSON$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./env -run '^$$' -fuzz '^FuzzTokenSetRatio$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./serve -run '^$$' -fuzz '^FuzzServer$$' -fuzztime $(FUZZ_TIME)
	$(GO) test ./serve -run '^$$' -fuzz '^FuzzActFeedback$$' -fuzztime $(FUZZ_TIME)

# The main job, end to end, on the built-in shop generated on the fly: shop -> baselines ->
# expert demonstrations -> masked-LM pretraining -> imitation learning -> generated
# trajectories -> DPO and PPO -> evaluation -> ONNX export -> policy server + Thompson-sampling
# A/B test over HTTP. About 15 minutes on 2 cores at DEMO_SCALE=1 (14m59s on a fresh clone, beside another
# training job); DEMO_SCALE=N multiplies the shop, the training steps, the RL budgets and the
# A/B test for longer, better runs. The tiny preset with 1,000 IL steps: with the SIMD kernels
# a tiny step takes ~0.25 s and a small one ~4x that, so in this budget the tiny encoder gets
# 4x the training (IL accuracy still rises at 1,000 steps; docs/BENCHMARKS.md).
DEMO_PRETRAIN_STEPS ?= 500
DEMO_IL_STEPS       ?= 1000
DEMO_GEN_KEEP       ?= 50
DEMO_RL_SECONDS     ?= 60
DEMO_AB_EPISODES    ?= 1000
# The policies are evaluated on the first DEMO_EVAL_GOALS of WebShop's 500 test goals (all
# 500 take ~3 minutes per policy on 2 cores; `shopagent experiment paper` evaluates them all).
DEMO_EVAL_GOALS     ?= 500
DEMO_SHOP            = --data $(DEMO_DIR)/shop
demo: build
	@mkdir -p $(DEMO_DIR)
	@date +%s > $(DEMO_DIR)/.demo-start
	@echo "== 1. generate the built-in shop (WebShop's first $(DEMO_GOALS) human instructions, 10 products each) -> $(DEMO_DIR)/shop"
	./$(BIN) env generate --goals $(DEMO_GOALS) --seed 1 --quiet --out $(DEMO_DIR)/shop
	./$(BIN) env stats $(DEMO_SHOP) > $(DEMO_DIR)/shop-stats.md
	@echo "== 2. WebShop's rule agent and a random walk on the $(DEMO_EVAL_GOALS) test goals the policies meet (all 500 in shop-stats.md)"
	./$(BIN) eval --agent rule --split test --first $(DEMO_EVAL_GOALS) $(DEMO_SHOP) --json $(DEMO_DIR)/eval-rule.json
	./$(BIN) eval --agent random --split test --first $(DEMO_EVAL_GOALS) $(DEMO_SHOP) --json $(DEMO_DIR)/eval-random.json
	@echo "== 3. expert demonstrations on the train goals (text_rich observations)"
	./$(BIN) datasets demos $(DEMO_SHOP) --split train --obs text_rich --out $(DEMO_DIR)/demos.parquet
	@echo "== 4. masked-LM pretraining of the tiny encoder on the shop's text"
	rm -rf $(DEMO_DIR)/pretrain $(DEMO_DIR)/il $(DEMO_DIR)/dpo $(DEMO_DIR)/ppo $(DEMO_DIR)/export $(DEMO_DIR)/abtest $(DEMO_DIR)/logs
	./$(BIN) train pretrain $(DEMO_SHOP) --preset tiny --steps $$(( $(DEMO_PRETRAIN_STEPS) * $(DEMO_SCALE) )) \
		--batch 32 --lr 1e-3 --out $(DEMO_DIR)/pretrain --no-progress
	@echo "== 5. imitation learning of the choice policy from the demonstrations"
	./$(BIN) train il $(DEMO_SHOP) --demos $(DEMO_DIR)/demos.parquet --init $(DEMO_DIR)/pretrain \
		--steps $$(( $(DEMO_IL_STEPS) * $(DEMO_SCALE) )) --batch 32 --lr 1e-3 --out $(DEMO_DIR)/il --no-progress
	./$(BIN) eval --policy $(DEMO_DIR)/il --split test --first $(DEMO_EVAL_GOALS) $(DEMO_SHOP) --out $(DEMO_DIR)/rollouts-il.parquet --json $(DEMO_DIR)/eval-il.json
	@echo "== 6. generated trajectories: the IL policy's own successful episodes on train goals"
	./$(BIN) train generate $(DEMO_SHOP) --policy $(DEMO_DIR)/il --split train --keep $$(( $(DEMO_GEN_KEEP) * $(DEMO_SCALE) )) \
		--prune-loops --out $(DEMO_DIR)/generated.parquet
	@echo "== 7. DPO on the generated trajectories (reference: the IL policy)"
	./$(BIN) train dpo $(DEMO_SHOP) --init $(DEMO_DIR)/il --demos $(DEMO_DIR)/generated.parquet \
		--time-budget $$(( $(DEMO_RL_SECONDS) * $(DEMO_SCALE) ))s --steps 100000 --out $(DEMO_DIR)/dpo --no-progress
	@echo "== 8. PPO from the IL policy (KL penalty to it)"
	./$(BIN) train ppo $(DEMO_SHOP) --init $(DEMO_DIR)/il \
		--time-budget $$(( $(DEMO_RL_SECONDS) * $(DEMO_SCALE) ))s --steps 100000 --out $(DEMO_DIR)/ppo --no-progress
	@echo "== 9. DPO and PPO on the test goals"
	./$(BIN) eval --policy $(DEMO_DIR)/dpo --split test --first $(DEMO_EVAL_GOALS) $(DEMO_SHOP) --out $(DEMO_DIR)/rollouts-dpo.parquet --json $(DEMO_DIR)/eval-dpo.json
	./$(BIN) eval --policy $(DEMO_DIR)/ppo --split test --first $(DEMO_EVAL_GOALS) $(DEMO_SHOP) --out $(DEMO_DIR)/rollouts-ppo.parquet --json $(DEMO_DIR)/eval-ppo.json
	@echo "== 10. ONNX export of the three policies (each checked against GoMLX)"
	for p in il dpo ppo; do ./$(BIN) export --checkpoint $(DEMO_DIR)/$$p --out $(DEMO_DIR)/export/$$p || exit 1; done
	@echo "== 11. the policy server with IL, DPO and PPO as arms; a Thompson-sampling A/B test through it"
	@set -e; rm -f $(DEMO_DIR)/serve.addr; \
	./$(BIN) serve --arms il=$(DEMO_DIR)/export/il,dpo=$(DEMO_DIR)/export/dpo,ppo=$(DEMO_DIR)/export/ppo --addr 127.0.0.1:0 \
		--addr-file $(DEMO_DIR)/serve.addr --logs $(DEMO_DIR)/logs > $(DEMO_DIR)/serve.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true' EXIT; \
	for i in $$(seq 300); do test -s $(DEMO_DIR)/serve.addr && break; sleep 0.2; done; \
	echo "server at http://$$(cat $(DEMO_DIR)/serve.addr) (log: $(DEMO_DIR)/serve.log)"; \
	./$(BIN) abtest --server http://$$(cat $(DEMO_DIR)/serve.addr) $(DEMO_SHOP) --split test \
		--episodes $$(( $(DEMO_AB_EPISODES) * $(DEMO_SCALE) )) --runs 1 --concurrency 4 --out $(DEMO_DIR)/abtest; \
	kill -TERM $$pid; wait $$pid || true
	@echo "== the shop beside real WebShop ($(DEMO_DIR)/shop-stats.md):"
	@grep -E "rule agent|target first|goals without options" $(DEMO_DIR)/shop-stats.md | sed 's/^/   /'
	@echo "== summary on the first $(DEMO_EVAL_GOALS) test goals (score, success rate, mean steps):"
	@for a in rule random il dpo ppo; do printf '   %-7s ' $$a; \
		python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print("score %6.2f  success %6.2f%%  steps %5.2f" % (s["score"], s["success_rate"], s["mean_steps"]))' $(DEMO_DIR)/eval-$$a.json; done
	@echo "== artefacts:"
	@echo "   $(DEMO_DIR)/shop                  the built-in shop: WebShop's three data files and goals.json; shop-stats.md: its realism"
	@echo "   $(DEMO_DIR)/demos.parquet         expert demonstrations; generated.parquet: the IL policy's successful episodes"
	@echo "   $(DEMO_DIR)/pretrain, il, dpo, ppo  training runs: checkpoints/, metrics.parquet, result.json"
	@echo "   $(DEMO_DIR)/eval-*.json           test-split summaries; rollouts-*.parquet: the policies' test episodes"
	@echo "   $(DEMO_DIR)/export/{il,dpo,ppo}   ONNX policy directories (model.onnx, actions.onnx + scorer.onnx, vocab.txt, policy.json)"
	@echo "   $(DEMO_DIR)/abtest                HTTP Thompson-sampling A/B test: report.md, report.json, episodes.parquet, abtest.png"
	@echo "   $(DEMO_DIR)/logs                  the server's decision and reward logs (Parquet, by date and arm)"
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
