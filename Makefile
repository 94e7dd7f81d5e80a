# `make` alone lists the targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := data/demo
MODELS_DIR ?= models
DATA ?= $(DEMO_DIR)/purchases.csv
CATALOG ?= $(if $(wildcard $(DEMO_DIR)/catalog.csv),$(DEMO_DIR)/catalog.csv,)
ALGO ?= auto
# Seconds for the automatic choice (ALGO=auto); empty: the default for the data, which train prints.
CHOICE_BUDGET ?=
PARAMS ?=
MODEL ?= $(MODELS_DIR)/current
OUT ?= out/recommendations.csv
N ?= 20
BUDGET ?= 300
ADDRESS ?= 127.0.0.1:8000
EVENTS_DB ?= events.sqlite3
SERVER ?= granian
# curl may be missing on a fresh machine; the venv's Python always has an HTTP client.
FETCH = $(BIN)/python -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
PYTEST_ARGS ?=
STORES_ARGS ?=
# BLAS threads are set explicitly for repeatable, non-oversubscribed runs.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: help install java chromium postgresql dashboard demo demo-retail demo-data train evaluate tune score models serve serve-background stop bench-serve bench-gowalla bench-score bench-live bench-scale bench-stores stress simulate test test-fast lint clean

help: ## list the targets with one line of help each
	@echo "Usage: make TARGET [VAR=value ...]"
	@echo
	@# Coloured names on a terminal only: piped or redirected, plain text.
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; else on=''; off=''; fi; \
	grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "}; {printf "  %s%-18s%s %s\n", on, $$1, off, $$2}'
	@echo
	@echo "Variables: DATA=$(DATA) ALGO=$(ALGO) PARAMS='key=value ...' MODEL=$(MODEL) OUT=$(OUT) N=$(N)"

$(STAMP): setup.cfg pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $@

# Spark needs a Java 17 runtime; install one where `java` is missing (Debian/Ubuntu, root or sudo).
java: ## make sure a Java runtime is on PATH for Spark (installs openjdk-17-jre-headless when absent)
	@command -v java >/dev/null || { \
		echo "java not found: installing openjdk-17-jre-headless"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openjdk-17-jre-headless; }

# The dashboard's browser test drives Debian's Chromium through its chromedriver (no browser download).
chromium: ## make sure headless Chromium and its driver are installed for the browser test (Debian chromium, chromium-driver)
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
		echo "chromium or chromedriver not found: installing chromium and chromium-driver"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; }

# Several API hosts share one PostgreSQL event store; the tests start throwaway clusters
# (initdb in a temporary folder), so the server binaries must be there (Debian keeps them
# in /usr/lib/postgresql/<version>/bin). Installs the Debian package postgresql when missing.
postgresql: ## make sure PostgreSQL's server programs are installed (installs the Debian package when absent)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		echo "PostgreSQL not found: installing the Debian package postgresql"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql; }

install: $(STAMP) ## create .venv and install the package with its dev tools

demo-data: $(STAMP) ## write the embedded demo store to data/demo (seeded)
	$(BIN)/recommender --quiet demo-data --out $(DEMO_DIR)

demo: $(STAMP) ## demo store -> train -> promote -> batch score -> recommendations for three customers -> the API in the background (make stop)
	$(BIN)/recommender --quiet demo-data --out $(DEMO_DIR)
	$(BIN)/recommender train --data $(DEMO_DIR)/purchases.csv --catalog $(DEMO_DIR)/catalog.csv --models-dir $(MODELS_DIR) --promote
	$(BIN)/recommender score --model $(MODELS_DIR)/current --n 10 --out out/demo-recommendations.csv
	@for customer in 00042 01234 04321; do echo; $(BIN)/recommender recommend --model $(MODELS_DIR)/current --n 5 $$customer; done
	@$(MAKE) --no-print-directory serve-background
	@echo
	@echo "Try it (the server runs in the background; 'make stop' ends it):"
	@echo "  curl -s 'http://$(ADDRESS)/v1/customers/00042/recommendations?n=3'"
	@echo "  curl -s -X POST http://$(ADDRESS)/v1/events -H 'Content-Type: application/json' -d '{\"customer_id\": \"00042\", \"item_id\": \"SKU-00007\"}'"
	@echo "  curl -s 'http://$(ADDRESS)/v1/items/SKU-00007/similar?n=3'"
	@echo "  curl -s http://$(ADDRESS)/metrics | grep -E '^recommender_(recommendations|events_stored)_total'"
	@echo
	@echo "Dashboard: http://$(ADDRESS)/dashboard/"
	@echo
	@echo "\$$ curl -s 'http://$(ADDRESS)/v1/customers/00042/recommendations?n=3'"
	@$(FETCH) 'http://$(ADDRESS)/v1/customers/00042/recommendations?n=3'; echo

# A real shop's export, read as it is (README: "Training on a store's own export").
RETAIL_DATA ?= ../shared/data/online-retail/transactions.parquet
RETAIL_FORMAT ?= examples/online-retail.json
RETAIL_MODELS ?= models/online-retail
demo-retail: $(STAMP) ## train on a real shop's raw export (RETAIL_DATA, UCI Online Retail) and show real customers' recommendations
	@if [ ! -f "$(RETAIL_DATA)" ]; then \
		echo "demo-retail skipped: $(RETAIL_DATA) not found (the UCI Online Retail log; give RETAIL_DATA=path/to/transactions.parquet)"; \
		exit 0; fi; \
	set -e; \
	$(BIN)/recommender train --data $(RETAIL_DATA) --columns-file $(RETAIL_FORMAT) \
		--evaluate --split time --cutoff 2011-07-01 --models-dir $(RETAIL_MODELS) --promote; \
	for customer in 17850 12583 13047; do echo; $(BIN)/recommender recommend --model $(RETAIL_MODELS)/current --n 5 $$customer; done; \
	echo; echo "To serve this shop's model (and see it on the dashboard): make serve-background MODEL=$(RETAIL_MODELS)/current"

serve: $(STAMP) ## run the API in production on ADDRESS, serving MODEL (foreground; SERVER=granian|gunicorn, 2+ workers)
	RECOMMENDER_MODEL_PATH=$(MODEL) RECOMMENDER_BIND=$(ADDRESS) $(BIN)/python -m serving.production --server $(SERVER)

serve-background: $(STAMP) ## start the API in the background (pid in out/server.pid, log in out/server.log) and wait until it is ready; a server that exits at start is reported at once, with its log's last lines
	@# One background server per checkout: a running one on another address is replaced, but only
	@# once the new address is free (a start that could not bind left no server at all).
	@# (On the same port the check is left out: the port is the running server's, and frees when it stops.)
	@running=$$(cat out/server.address 2>/dev/null); new='$(ADDRESS)'; \
	if [ -f out/server.pid ] && kill -0 $$(cat out/server.pid) 2>/dev/null && [ -n "$$running" ] && [ "$$running" != "$$new" ]; then \
		if [ "$${running##*:}" != "$${new##*:}" ] && ! $(BIN)/python -c "import socket, sys; host, _, port = sys.argv[1].rpartition(':'); \
			family, kind, _, _, address = socket.getaddrinfo(host.strip('[]') or None, int(port), type=socket.SOCK_STREAM)[0]; \
			s = socket.socket(family, kind); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(address)" "$$new" 2>/dev/null; then \
			echo "error: $$new is already in use; the background server on $$running keeps running (choose another ADDRESS=host:port)"; exit 1; fi; \
		echo "stopping the background server on $$running (one per checkout) to start one on $$new"; fi
	@$(MAKE) --no-print-directory stop >/dev/null
	@if $(FETCH) http://$(ADDRESS)/ready >/dev/null 2>&1; then \
		echo "error: a server not started by make serve-background already answers on $(ADDRESS) (make serve in another shell?); stop it or choose another ADDRESS=host:port"; exit 1; fi
	@mkdir -p out
	@# The server is watched while it starts: one that exits (a bad setting, the port taken) ends the
	@# wait at once, with this start's last log lines shown and no pid file left for a later make stop
	@# to kill a stranger by. With --wait, setsid ($$!) lives as long as the server even if it has to fork.
	@logged=$$(stat -c %s out/server.log 2>/dev/null || echo 0); \
	RECOMMENDER_MODEL_PATH=$(MODEL) RECOMMENDER_BIND=$(ADDRESS) RECOMMENDER_PID_FILE=out/server.pid \
		setsid --wait nohup $(BIN)/python -m serving.production --server $(SERVER) >> out/server.log 2>&1 < /dev/null & \
	server=$$!; \
	for attempt in $$(seq 1 100); do \
		$(FETCH) http://$(ADDRESS)/ready >/dev/null 2>&1 && { echo $(ADDRESS) > out/server.address; echo "server ready on http://$(ADDRESS) (log: out/server.log)"; exit 0; }; \
		kill -0 $$server 2>/dev/null || break; sleep 0.2; done; \
	tail -c +$$((logged + 1)) out/server.log | tail -n 15; \
	if kill -0 $$server 2>/dev/null; then echo "server did not become ready; it still runs (make stop ends it); see out/server.log"; \
	else rm -f out/server.pid; echo "the server exited at start; see out/server.log"; fi; exit 1

dashboard: $(STAMP) ## print the dashboard's URL: the background server's (where it runs), else ADDRESS's, started if needed
	@# Without ADDRESS given, the background server is used where it runs (out/server.address):
	@# serve-background on the default address would first stop it, wherever it ran.
	@address=$(ADDRESS); \
	if [ "$(origin ADDRESS)" != "command line" ] && [ -f out/server.pid ] && [ -f out/server.address ]; then address=$$(cat out/server.address); fi; \
	$(FETCH) http://$$address/ready >/dev/null 2>&1 || $(MAKE) --no-print-directory serve-background ADDRESS=$$address || exit 1; \
	echo "Dashboard: http://$$address/dashboard/"

stop: ## stop the background server started by make demo / make serve-background
	@if [ -f out/server.pid ]; then pid=$$(cat out/server.pid); kill $$pid 2>/dev/null || true; \
		for attempt in $$(seq 1 150); do kill -0 $$pid 2>/dev/null || break; sleep 0.2; done; \
		rm -f out/server.pid out/server.address; echo "server stopped"; \
	else echo "no background server to stop (no out/server.pid); a foreground make serve stops with Ctrl-C"; fi

STRESS_SECONDS ?= 10
HOSTS ?= 1
# HOSTS=2 or more: that many servers on their own ports share a throwaway PostgreSQL cluster
# (started and removed by the run), as API hosts behind a load balancer would.
stress: $(STAMP) $(if $(filter-out 1,$(HOSTS)),postgresql,) ## bounded load on loopback (SERVER, HOSTS, readers + event writers, STRESS_SECONDS): failures, p99, events acked vs stored
	$(BIN)/python benchmarks/stress.py --duration $(STRESS_SECONDS) --readers 4 --writers 2 --workers 2 --server $(SERVER) --hosts $(HOSTS)

SIM_SESSIONS ?= 4000
simulate: $(STAMP) ## storefront simulator vs the real server (SERVER): experiment popular vs default model, "not interested", no lost event (SIM_SESSIONS)
	$(BIN)/python benchmarks/simulate.py --sessions $(SIM_SESSIONS) --server $(SERVER)

bench-serve: $(STAMP) ## serving throughput and p50/p99: granian vs gunicorn, /health vs recommendations vs an after-purchase mix (wrk, Gowalla-sized ALS; SERVE_MODEL=a model folder instead)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_serving.py --duration 10 --rounds 5 --connections 16 $(if $(SERVE_MODEL),--model $(SERVE_MODEL))

train: $(STAMP) ## train on DATA plus the API's EVENTS_DB: ALGO=auto (default) chooses the model in CHOICE_BUDGET s; a named ALGO uses tuned/ALGO.json if present and PARAMS="k=v ..."; evaluate, promote
	$(BIN)/recommender train --data $(DATA) $(if $(CATALOG),--catalog $(CATALOG),) --algorithm $(ALGO) \
		$(if $(and $(filter auto,$(ALGO)),$(CHOICE_BUDGET)),--budget $(CHOICE_BUDGET),) \
		$(if $(wildcard tuned/$(ALGO).json),--params-file tuned/$(ALGO).json,) \
		$(foreach p,$(PARAMS),--param $(p)) $(if $(wildcard $(EVENTS_DB)),--events $(EVENTS_DB),) \
		--models-dir $(MODELS_DIR) --evaluate --promote

evaluate: $(STAMP) ## fit ALGO (auto: choose it on the 80% first) on a random 80% of DATA, measure on the rest, write reports/<algo>-<time>/report.html
	$(BIN)/recommender evaluate --data $(DATA) --algorithm $(ALGO) \
		$(if $(wildcard tuned/$(ALGO).json),--params-file tuned/$(ALGO).json,) $(foreach p,$(PARAMS),--param $(p))

tune: $(STAMP) ## search a named ALGO's hyper-parameters on a validation split of DATA for BUDGET seconds (kept) -> tuned/ALGO.json
	@test "$(ALGO)" != auto || { echo "make tune searches one algorithm: name it, e.g. make tune ALGO=als (ALGO=auto searches every candidate itself when training)"; exit 2; }
	$(BIN)/recommender tune --data $(DATA) --algorithm $(ALGO) --budget $(BUDGET)

score: $(STAMP) ## batch top-N for every customer of MODEL into OUT (.csv/.parquet/.jsonl)
	$(BIN)/recommender score --model $(MODEL) --n $(N) --out $(OUT)

models: $(STAMP) ## list published models (current one starred)
	$(BIN)/recommender models --models-dir $(MODELS_DIR) list

test: $(STAMP) java postgresql chromium ## run the whole test suite, slow tests, Spark (local[2]) and the browser test included (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## run the tests not marked slow
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## static checks (ruff)
	$(BIN)/ruff check recommender training serving tests benchmarks research

BENCH_TIMEOUT ?= 1800
DATA_DIR ?= ../shared/data/gowalla
bench-gowalla: $(STAMP) ## default pipeline on Gowalla (DATA_DIR=...): Recall@20, NDCG@20, fit seconds beside the published table
	DATA_DIR=$(DATA_DIR) $(BIN)/python benchmarks/bench_gowalla.py --algorithm $(ALGO)

bench-stores: $(STAMP) ## the default (auto) against tuned ALS, BM25 item-kNN and GF-CF on Gowalla, the online-retail log and demo shapes (STORES_ARGS="--stores gowalla --no-peers": one store, the default alone)
	timeout 14400 $(BIN)/python benchmarks/bench_stores.py $(STORES_ARGS)

bench-score: $(STAMP) ## time batch top-20 for all Gowalla customers vs the numpy floor (DATA_DIR=...)
	OPENBLAS_NUM_THREADS=1 DATA_DIR=$(DATA_DIR) timeout $(BENCH_TIMEOUT) $(BIN)/python benchmarks/bench_score.py

bench-live: $(STAMP) ## a customer who just bought: live graph-filter answer vs full scoring vs cached, in process on Gowalla (DATA_DIR=..., LIVE_MODEL=a trained graph-filter folder)
	OPENBLAS_NUM_THREADS=1 DATA_DIR=$(DATA_DIR) $(BIN)/python benchmarks/bench_live.py $(if $(LIVE_MODEL),--model $(LIVE_MODEL))

bench-scale: $(STAMP) ## 1M customers x 200k items x 20M purchases: train + score, wall time and peak RSS
	OPENBLAS_NUM_THREADS=1 timeout 7200 $(BIN)/python benchmarks/bench_scale.py --step-timeout 3600

clean: ## remove the venv, demo data and outputs (models/ is kept)
	rm -rf $(VENV) data out .pytest_cache
