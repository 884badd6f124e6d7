# tests/fuzz/fuzz.mk: the libFuzzer targets, built with clang from the same sources as ptcc's core
# library (Makefile.am's list, passed as CORE), with -fsanitize=fuzzer,address,undefined, in
# $(O) (tests/fuzz/build under the build tree).  Run by `make fuzz-build` and `make fuzz`, which
# pass srcdir, builddir, CORE (its .c files are used), DEPS_CFLAGS and DEPS_LIBS; the generated
# parser, lexer and protobuf code are the normal build's (src/parser.c, src/lexer.c,
# src/proto/caffe.pb-c.c, src/proto/onnx.pb-c.c).
FUZZ_CC ?= clang
O = $(builddir)/tests/fuzz/build
TARGETS = trace trace_weights safetensors onnx
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer
# `make fuzz-coverage` builds the same targets into tests/fuzz/build-cov with O and SAN replaced:
# clang's source-based coverage instead of the sanitizers (tests/fuzz/coverage.sh).
# UBSan recovers, so that a campaign can go on past a known report (UBSAN_OPTIONS=halt_on_error=0);
# tests/fuzz/run.sh makes every report fatal by default.
FUZZ_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -g -O1 $(SAN) -fsanitize=fuzzer-no-link \
	-I$(srcdir)/src -I$(builddir)/src -I$(builddir) $(DEPS_CFLAGS)
GEN = $(builddir)/src/parser.c $(builddir)/src/lexer.c $(builddir)/src/proto/caffe.pb-c.c \
	$(builddir)/src/proto/onnx.pb-c.c

CORE_OBJS = $(patsubst src/%.c,$(O)/obj/%.o,$(filter %.c,$(CORE)))
GEN_OBJS = $(O)/obj/gen/parser.o $(O)/obj/gen/lexer.o $(O)/obj/gen/caffe.pb-c.o \
	$(O)/obj/gen/onnx.pb-c.o
HARNESS_OBJS = $(O)/obj/fuzz.o

all: $(patsubst %,$(O)/fuzz_%,$(TARGETS)) $(O)/trace.dict $(O)/onnx.dict seeds weights

$(O)/obj/%.o: $(srcdir)/src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -MMD -MP -c $< -o $@
$(O)/obj/gen/%.o: $(builddir)/src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -MMD -MP -c $< -o $@
$(O)/obj/gen/%.pb-c.o: $(builddir)/src/proto/%.pb-c.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -MMD -MP -c $< -o $@
$(O)/obj/fuzz.o: $(srcdir)/tests/fuzz/fuzz.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -MMD -MP -c $< -o $@
$(O)/obj/fuzz_trace.o: $(srcdir)/tests/fuzz/fuzz_trace.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -MMD -MP -c $< -o $@
$(O)/obj/fuzz_trace_weights.o: $(srcdir)/tests/fuzz/fuzz_trace.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_WEIGHTS_DIR=$(O)/weights -Wall -Wextra -MMD -MP -c $< -o $@
$(O)/obj/fuzz_safetensors.o: $(srcdir)/tests/fuzz/fuzz_safetensors.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -MMD -MP -c $< -o $@
$(O)/obj/fuzz_onnx.o: $(srcdir)/tests/fuzz/fuzz_onnx.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -MMD -MP -c $< -o $@

# An archive, as src/libptcccore.a: a target that defines a member's symbols itself
# (fuzz_safetensors.c includes weights.c) does not get that member.
$(O)/libcore.a: $(CORE_OBJS) $(GEN_OBJS)
	rm -f $@ && ar rcs $@ $(CORE_OBJS) $(GEN_OBJS)
$(O)/fuzz_%: $(O)/obj/fuzz_%.o $(HARNESS_OBJS) $(O)/libcore.a
	$(FUZZ_CC) $(SAN) -fsanitize=fuzzer -o $@ $< $(HARNESS_OBJS) $(O)/libcore.a \
		$(DEPS_LIBS) -lm

# The dictionary: trace.dict, and every op name and keyword argument from the op table.
$(O)/trace.dict: $(srcdir)/tests/fuzz/trace.dict $(builddir)/src/ptcc
	@mkdir -p $(@D)
	{ cat $(srcdir)/tests/fuzz/trace.dict; \
	  $(builddir)/src/ptcc --list-ops | awk '{ print "\"" $$1 "(\""; \
	    for (i = 4; i <= NF; i++) { p = $$i; sub(/[?*]$$/, "", p); \
	      if (p ~ /^[a-z_0-9]+$$/) print "\"" p "=\"" } }' | sort -u; } >$@.tmp
	mv $@.tmp $@

$(O)/onnx.dict: $(srcdir)/tests/fuzz/onnx.dict
	@mkdir -p $(@D)
	cp $(srcdir)/tests/fuzz/onnx.dict $@

# Seed corpora: the test traces for the trace targets; for the safetensors reader, gen_seeds.py's
# files (every dtype) and the test traces' small weights files; for the ONNX reader, its corpus
# alone (ONNX files made with python3-onnx and torch, tests/fuzz/corpus/README); for each target, the corpus the
# past campaigns grew (tests/fuzz/corpus/TARGET.tar.gz, README there).  And the weights files that
# fuzz_trace_weights links beside its input.
CORPORA = $(patsubst %,$(srcdir)/tests/fuzz/corpus/%.tar.gz,$(TARGETS))
seeds: $(O)/seeds/.stamp
$(O)/seeds/.stamp: $(srcdir)/tests/fuzz/gen_seeds.py $(srcdir)/tests/fuzz/fuzz.mk $(CORPORA)
	rm -rf $(O)/seeds && mkdir -p $(patsubst %,$(O)/seeds/%,$(TARGETS))
	cp $(srcdir)/tests/traces/*.log $(srcdir)/tests/bad/*.log $(srcdir)/tests/check/*.log \
		$(srcdir)/examples/lenet/lenet.log $(O)/seeds/trace/
	cp $(O)/seeds/trace/* $(O)/seeds/trace_weights/
	python3 $(srcdir)/tests/fuzz/gen_seeds.py $(O)/seeds/safetensors
	cp $(srcdir)/tests/traces/*.safetensors $(srcdir)/tests/check/*.safetensors \
		$(srcdir)/tests/bad/*.safetensors $(O)/seeds/safetensors/
	for t in $(TARGETS); do gzip -dc $(srcdir)/tests/fuzz/corpus/$$t.tar.gz | \
		tar -xf - -C $(O)/seeds/$$t || exit 1; done
	touch $@
weights: $(O)/weights/.stamp
$(O)/weights/.stamp: $(srcdir)/tests/fuzz/fuzz.mk
	rm -rf $(O)/weights && mkdir -p $(O)/weights
	cp $(srcdir)/tests/traces/*.safetensors $(srcdir)/tests/check/*.safetensors \
		$(srcdir)/tests/bad/*.safetensors $(srcdir)/examples/lenet/lenet.safetensors \
		$(O)/weights/
	touch $@

.PHONY: all seeds weights
-include $(CORE_OBJS:.o=.d) $(GEN_OBJS:.o=.d) $(O)/obj/fuzz*.d
