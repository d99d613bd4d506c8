# lemur — build, test and demo.
#   make            build ./lemur (CPU + CUDA backend when nvcc is found)
#   make CUDA=0     build without the CUDA backend
#   make debug      build build-debug/lemur with -O0 -g and AddressSanitizer/UBSan
#   make deps       install missing Debian packages (apt-get, as root; quiet when nothing is missing)
#   make check      deps, build, every test (unit, MPI at 1-4 ranks, Python references, format)
#   make demo       deps, build, run config/default.yml, print where the outputs are
#   make bench      benchmarks (tables on stdout)
#   make format     reformat the C sources with clang-format
#   make fuzz       fuzz the parameter-file parser with libFuzzer for FUZZ_SECONDS (default 600)

SHELL := /bin/bash
CC := mpicc
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA ?= $(if $(wildcard $(NVCC)),1,0)
BUILD ?= build
ARCH ?= -march=native
OPT ?= -O3 $(ARCH)
PKGS := fftw3 fftw3f hdf5-openmpi gsl yaml-0.1 openblas

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= $(OPT)
# -fno-math-errno: no math function's errno is read, and loops calling sqrt can vectorise
CFLAGS += -std=c11 -D_XOPEN_SOURCE=700 -Wall -Wextra -Wno-unused-parameter -fopenmp \
          -fno-math-errno -Isrc $(PKG_CFLAGS)
LDLIBS = -lfftw3f_mpi -lfftw3_mpi -lfftw3f_omp -lfftw3_omp -lopenblas $(PKG_LIBS) -ldnnl -lm
LDFLAGS += -fopenmp

CORE_SRC := $(filter-out src/main.c,$(wildcard src/*.c src/mpi/*.c))
ifeq ($(CUDA),1)
  GPU_SRC := $(wildcard src/gpu/*.cu)
  GPU_OBJ := $(GPU_SRC:%.cu=$(BUILD)/%.o)
  NVCCFLAGS ?= -O3 -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  NVCCFLAGS += -Isrc -I$(CUDA_HOME)/include -Xcompiler -fPIC,-Wall
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcufft -lcudart \
            -lstdc++
else
  GPU_SRC := src/gpu/nocuda.c
  GPU_OBJ := $(BUILD)/src/gpu/nocuda.o
endif
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(GPU_OBJ)
LIB := $(BUILD)/liblemur.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
MPI_SRC := $(wildcard tests/mpi/mpitest_*.c)
TEST_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%) $(MPI_SRC:tests/mpi/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tools/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tools/bench/%.c=$(BUILD)/bench/%)

.PHONY: all lemur debug deps check test demo bench format format-check clean fuzz fuzz-build
all: lemur

lemur: $(BUILD)/lemur
	@ln -sf $(BUILD)/lemur lemur

$(BUILD)/lemur: $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/harness.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/mpi/%.c tests/harness.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: tools/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

tests-build: lemur $(TEST_BIN)

debug:
	$(MAKE) BUILD=build-debug OPT="-O0 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	        LDFLAGS="-fsanitize=address,undefined -fopenmp" build-debug/lemur

# The parameter parser under libFuzzer, ASan and UBSan (clang; no MPI in these sources).
FUZZ_SRC := src/config.c src/config_yaml.c src/params.c src/alloc.c src/error.c
FUZZ_SECONDS ?= 600
build-fuzz/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_SRC) src/config.h src/params.h
	@mkdir -p build-fuzz
	clang -g -O1 -std=c11 -D_XOPEN_SOURCE=700 -Isrc -fsanitize=fuzzer,address,undefined \
	      -fno-sanitize-recover=undefined -o $@ $< $(FUZZ_SRC) -lyaml -lm
fuzz-build: build-fuzz/fuzz_config
fuzz: fuzz-build
	@mkdir -p build-fuzz/corpus
	build-fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=5 \
	    build-fuzz/corpus config

deps:
	@bash tools/install-deps.sh

check: deps
	@$(MAKE) --no-print-directory tests-build
	@bash tests/run.sh $(BUILD)

test: check

demo: deps
	@$(MAKE) --no-print-directory lemur
	@bash tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory lemur $(BENCH_BIN)
	@bash tools/bench/run.sh $(BUILD)

FORMAT_FILES = $(wildcard src/*.[ch] src/mpi/*.[ch] src/gpu/*.[ch] src/gpu/*.cu src/gpu/*.cuh \
                 tests/*.h tests/unit/*.c tests/mpi/*.c tools/bench/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build build-debug lemur

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- GPU conformance and benchmark (the CUDA backend; built by scripts, outside the main build) --
#   make gpu-bench   build-gpu-bench/{gpu-conformance,bench-emulator} with nvcc, gcc and the CUDA
#                    libraries alone (no MPI, FFTW, HDF5, oneDNN, yaml): for GPU machines
#   make gpu-emu     build-gpu-emu/gpu-conformance-emu: the same harness over a CPU emulation of
#                    CUDA, cuDNN and cuBLAS (needs only the CUDA headers; runs without a GPU)
.PHONY: gpu-bench gpu-emu
gpu-bench:
	@bash tools/gpu/build.sh build-gpu-bench
gpu-emu:
	@bash tools/gpu/emu/build.sh build-gpu-emu
