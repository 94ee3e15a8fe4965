# wgjit build. `make` builds everything; `make test` and `make demo` install
# what they need first (Debian and npm packages), so a fresh machine needs no
# other step.

ARCH_INCLUDE := /usr/include/$(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
CLANG        ?= clang
BPF_CFLAGS   := -O2 -g -target bpf -Wall -Werror -I$(ARCH_INCLUDE) -Ibpf

BPF_OBJ      := bpf/xdp_capture.bpf.o
ADDON        := addon/build/Release/wgjit.node
# The benchmarks' crypto hook: an addon of its own that the product never loads.
BENCH_ADDON  := harness/addon/build/Release/wgjit_bench.node
TS_STAMP     := dist/.stamp
TYPECHECK_STAMP := harness/.typecheck.stamp
# Node's headers come with the machine's node (no download): point node-gyp at them.
NODEDIR_FLAG := $(if $(wildcard /usr/include/node/node.h),--nodedir=/usr)

.PHONY: all deps build bpf addon bench-addon ts typecheck test test-vm test-unit test-integration demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: bpf addon bench-addon ts typecheck

bpf: $(BPF_OBJ)

$(BPF_OBJ): bpf/xdp_capture.bpf.c $(wildcard bpf/*.h)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

addon: $(ADDON)

$(ADDON): $(wildcard addon/*.cc addon/*.h bpf/*.h) addon/binding.gyp
	cd addon && npx --no-install node-gyp rebuild $(NODEDIR_FLAG) --loglevel=warn

bench-addon: $(BENCH_ADDON)

$(BENCH_ADDON): $(wildcard harness/addon/*.cc harness/addon/*.h) addon/noise_crypto.cc addon/noise_crypto.h bpf/wg_wire.h harness/addon/binding.gyp
	cd harness/addon && npx --no-install node-gyp rebuild $(NODEDIR_FLAG) --loglevel=warn

ts: $(TS_STAMP)

# dist/ is the product alone, compiled afresh so that nothing moved out of
# src/ lingers in it.
$(TS_STAMP): $(shell find src -name '*.ts') tsconfig.json
	rm -rf dist
	npx --no-install tsc -p tsconfig.json
	@touch $@

# The harness, tests, benchmarks and scripts are run by tsx and vitest, not
# compiled; this typechecks them with the product so that they cannot rot.
typecheck: $(TYPECHECK_STAMP)

$(TYPECHECK_STAMP): $(shell find src harness test bench scripts -name '*.ts') tsconfig.json tsconfig.harness.json
	npx --no-install tsc -p tsconfig.harness.json
	@touch $@

# The real-kernel suite (test/vm/) runs inside a qemu VM booting Debian's
# kernel, which has WireGuard (docs/testing.md). vitest is started directly:
# npx alone costs over 10 s under emulation.
VM_TESTS := npx --no-install tsx scripts/vm/run.ts --skip-if-unavailable -- \
	node_modules/.bin/vitest run --config vitest.vm.config.ts --configLoader runner

test: deps build
	npx --no-install vitest run
	$(VM_TESTS)

test-vm: deps build
	$(VM_TESTS)

test-unit: deps build
	npx --no-install vitest run test/unit

test-integration: deps build
	npx --no-install vitest run test/integration

demo: deps build
	./bin/wgjit demo

bench: deps build
	npx --no-install tsx bench/cold-connect.ts
	npx --no-install tsx bench/verify.ts
	npx --no-install tsx bench/throughput.ts
	npx --no-install tsx bench/crypto-backends.ts
	npx --no-install tsx bench/sweep.ts
	npx --no-install tsx bench/netlink.ts
	npx --no-install tsx bench/routes.ts
	npx --no-install tsx bench/fleet-move.ts
	npx --no-install tsx bench/store-scale.ts

clean:
	rm -rf dist addon/build harness/addon/build $(TYPECHECK_STAMP) $(BPF_OBJ)
