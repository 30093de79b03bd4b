# Easy Chat. Everything builds from the Go module proxy; nothing else is needed.
GO        ?= go
BIN       := $(CURDIR)/bin
FAAS_CLI  := $(BIN)/faas-cli
# faas-cli 0.13.14: the proxy serves this exact pseudo-version but no version
# list, so it is pinned in tools/faas-cli and built with `go build`.
FAAS_CLI_LDFLAGS := -X github.com/openfaas/faas-cli/version.Version=0.13.14
HELM      := $(BIN)/helm
VERSITYGW := $(BIN)/versitygw
# Helm v4.3.2, pinned in tools/helm and built from the module proxy; it
# renders and lints deploy/chart (CI's fifth lane).
HELM_LDFLAGS := -X helm.sh/helm/v4/internal/version.version=v4.3.2
TEST_TIMEOUT ?= 25m

.PHONY: all run test test-real test-race fuzz test-browser test-web faas-cli helm test-chart build shrinkwrap bench clean

all: build

## run: the whole system on this machine with embedded defaults
run: faas-cli
	EASYCHAT_DEV=1 $(GO) run ./devstack

# The cluster test (e2e/cluster) runs alone, after the others: it is a whole
# deployment of processes under load, and it restarts Redis.
NOT_CLUSTER = $$($(GO) list ./... | grep -v /e2e/cluster)

## test: every test, against embedded Kafka, FerretDB and Redis
test: faas-cli
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(NOT_CLUSTER) easychat/pkg/...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./e2e/cluster

## test-real: the integration suites against this machine's Redis and
## FerretDB on PostgreSQL, and the S3 server S3_ENDPOINT names if set (CI's
## second lane starts versitygw for it; see .ci/run). The cluster test
## restarts that Redis only when EASYCHAT_RESTART_REDIS=1 (CI sets it).
test-real: faas-cli
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	FERRETDB_POSTGRESQL_URL=$${FERRETDB_POSTGRESQL_URL:-postgres://postgres@127.0.0.1:5432/easychat_ci} \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./e2e/... | grep -v /e2e/cluster) ./gateway/...
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	FERRETDB_POSTGRESQL_URL=$${FERRETDB_POSTGRESQL_URL:-postgres://postgres@127.0.0.1:5432/easychat_ci} \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./e2e/cluster

## test-race: the concurrent code under the race detector (CI's fourth lane)
test-race: faas-cli
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./gateway/... ./connector/... ./idler/... $$($(GO) list ./e2e/... | grep -v /e2e/cluster) easychat/pkg/...

## fuzz: every fuzz target (decoders of outside input) for a number of
## executions, not a duration: Go 1.26's coordinator can fail a duration run
## with a bare "context deadline exceeded" when a loaded machine starves its
## workers at the deadline (go.dev/issue/75804); a count has no deadline.
## FUZZEXECS sets the count; a target may name its own after a second colon.
FUZZEXECS ?= 200000x
FUZZ_TARGETS := easychat/pkg/frame:FuzzDecode easychat/pkg/ident:FuzzIDs easychat/pkg/sign:FuzzVerify \
	easychat/pkg/token:FuzzVerify easychat/pkg/transfer:FuzzDecode easychat/pkg/receipt:FuzzDecode \
	easychat/pkg/frame:FuzzParseFile:100000x easychat/pkg/filelink:FuzzVerify ./gateway/session:FuzzHandle:30000x
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$(FUZZEXECS); \
		case $$rest in *:*) n=$${rest#*:};; esac; \
		echo "fuzz $$pkg $$fn ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $$n $$pkg || exit 1; \
	done

## test-browser: the web client in Chromium (Playwright) against the whole
## system, which the tests start on free ports. Needs node/npm and
## /usr/bin/chromium (CI's third lane installs them; see .ci/run).
## Screenshots go to $$SCREENSHOT_DIR (default artifacts/screenshots).
test-browser: faas-cli
	cd e2e/browser && npm ci --no-audit --no-fund && node --test

## test-web: the web client's model (gateway/web/static/js, no page and no
## network) under Node's own test runner; node only, no npm packages.
test-web:
	cd gateway/web && node --test

faas-cli: $(FAAS_CLI)
$(FAAS_CLI): tools/faas-cli/go.mod tools/faas-cli/go.sum
	cd tools/faas-cli && GOWORK=off $(GO) build -ldflags "$(FAAS_CLI_LDFLAGS)" -o $(FAAS_CLI) github.com/openfaas/faas-cli

## versitygw: the S3-compatible server CI's second lane runs the file suites
## against (see .ci/run), pinned in tools/versitygw
versitygw: $(VERSITYGW)
$(VERSITYGW): tools/versitygw/go.mod tools/versitygw/go.sum
	cd tools/versitygw && GOWORK=off $(GO) build -o $(VERSITYGW) github.com/versity/versitygw/cmd/versitygw

helm: $(HELM)
$(HELM): tools/helm/go.mod tools/helm/go.sum
	cd tools/helm && GOWORK=off $(GO) build -ldflags "$(HELM_LDFLAGS)" -o $(HELM) helm.sh/helm/v4/cmd/helm

## test-chart: Helm lints and renders deploy/chart/easychat with each values
## file; every object is decoded strictly into its Kubernetes type and checked
test-chart: helm
	cd deploy/chart && GOWORK=off HELM=$(HELM) $(GO) test -count=1 .

## build: the long-running programs
build:
	$(GO) build -o $(BIN)/ ./gateway ./connector ./idler ./faas/cmd/faas-local ./devstack

## shrinkwrap: faas-cli's build contexts, compiled as the Dockerfile does
shrinkwrap: faas-cli
	$(FAAS_CLI) build --shrinkwrap -f stack.yml
	for d in build/*/; do (cd $$d && $(GO) build -o /dev/null .) || exit 1; done

bench: faas-cli
	$(GO) run ./bench $(BENCH_ARGS)

clean:
	rm -rf $(BIN) build .state
