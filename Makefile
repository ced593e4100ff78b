# SigFollow media pipeline. The two commands a new machine needs:
#   make run    start the whole pipeline locally (NATS, MinIO, fake Graph API, ingest, 2 workers)
#   make test   install what the tests need and run every test
SHELL := /bin/bash
GO    ?= go

# The MinIO server has no Debian package: it is built once from source at a
# pinned version (~8 minutes the first time) and cached outside the repo.
MINIO_VERSION := $(shell sed -n 's/^const MinIOVersion = "\(.*\)"/\1/p' shared/localstack/minio.go)
CACHE_HOME    ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)
MINIO_DIR     := $(CACHE_HOME)/sigfollow/minio/$(MINIO_VERSION)
MINIO_BIN     := $(MINIO_DIR)/minio
export SIGFOLLOW_MINIO_BIN := $(MINIO_BIN)

BINARIES := ingest worker fakegraph devstack
GOTEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: all build run test test-short vet fmt tools bench clean help faults

all: build

help:
	@echo "make run     start the whole pipeline locally (Ctrl-C stops it)"
	@echo "make test    install test dependencies and run every test"
	@echo "make build   build bin/ingest, bin/worker, bin/fakegraph, bin/devstack"
	@echo "make tools   install the pinned MinIO server into $(MINIO_DIR)"
	@echo "make bench   run the benchmarks"

build:
	@mkdir -p bin
	$(GO) build -o bin/ingest ./ingest
	$(GO) build -o bin/worker ./worker
	$(GO) build -o bin/fakegraph ./deploy/fakegraph
	$(GO) build -o bin/devstack ./deploy/devstack
	$(GO) build -o bin/bench ./deploy/bench

tools: $(MINIO_BIN)

$(MINIO_BIN):
	@echo "Installing MinIO server $(MINIO_VERSION) into $(MINIO_DIR) (first time only; takes several minutes)"
	@mkdir -p $(MINIO_DIR)
	GOBIN=$(MINIO_DIR) GOFLAGS=-buildvcs=false $(GO) install github.com/minio/minio@$(MINIO_VERSION)

run: tools build
	./bin/devstack -ingest ./bin/ingest -worker ./bin/worker

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

test: tools vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(GOTEST_FLAGS) ./...

test-short: tools
	$(GO) test -short -count=1 ./...

bench: tools build
	./bin/bench $(BENCH_FLAGS)

# The fault-injection run: the stack as separate processes under load while
# workers, NATS and MinIO are killed and restarted and Meta fails; prints
# accepted / succeeded / failed / lost / leaked and fails if anything is
# lost or leaked. FAULTS_FLAGS=-short is the quick version `make test` runs.
faults: tools build
	$(GO) run ./deploy/faultrun -ingest bin/ingest -worker bin/worker $(FAULTS_FLAGS)

clean:
	rm -rf bin .cache
