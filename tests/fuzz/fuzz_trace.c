/* tests/fuzz/fuzz_trace.c: libFuzzer target for the trace: the lexer and parser with the front
 * end's passes (resolve, shape), then, as main.c runs them, one of the emitters or the back end
 * (lowering, the OpenCV barriers, fusion, the net verifier after each, naming, codegen to files in
 * the harness's directory).
 *
 * Built twice (tests/fuzz/fuzz.mk): fuzz_trace is ptcc --no-weights; fuzz_trace_weights (with
 * FUZZ_WEIGHTS_DIR) loads the weights file the trace names, found among links to the test
 * traces' own weights files (tests/traces, tests/check, examples/lenet), so the seeds bind their
 * parameters and reach -O2's BatchNorm folding and the caffemodel writer.
 *
 * The input's bytes are all trace: the mode (emit kind, target, -O level) comes from its length,
 * so that each mutation that changes the length also tries another mode, and a crasher's mode is
 * printed (PTCC_FUZZ_VERBOSE=1) as the ptcc command line that replays it. */
#include "ptcc.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FUZZ_WEIGHTS_DIR
#define WITH_WEIGHTS 1
#else
#define WITH_WEIGHTS 0
#endif

enum { FM_LOG, FM_IR, FM_SUMMARY, FM_DOT, FM_DRAW, FM_NONE, FM_MODEL, FM_NMODES = 8 };
static const char *const target_name[] = {"caffe", "caffe-master", "opencv"};

typedef struct {
	int mode, target, olevel;
	const char *phase; /* FM_DRAW */
} Mode;

static Mode
mode_of(size_t size)
{
	Mode m;

	m.mode = (int)(size % FM_NMODES);
	if (m.mode > FM_MODEL)
		m.mode = FM_MODEL; /* the model is written for 2 lengths in 8 */
	m.target = (int)(size / FM_NMODES % 3);
	m.olevel = (int)(size / FM_NMODES / 3 % 3);
	if (!WITH_WEIGHTS && m.olevel == 2)
		m.olevel = 1; /* -O2 reads the weights even with --no-weights */
	m.phase = backend_phases[size / FM_NMODES / 9 % 3];
	return m;
}

static void
print_mode(const Mode *m, size_t size)
{
	static const char *const emit[] = {"log", "ir", "summary", "dot", "dot", "none", "model"};

	fprintf(stderr, "fuzz: %zu bytes: like ptcc --emit=%s%s%s --target=%s -O%d%s IN.log\n",
		size, emit[m->mode], m->mode == FM_DRAW ? " --after=" : "",
		m->mode == FM_DRAW ? m->phase : "", target_name[m->target], m->olevel,
		m->mode == FM_MODEL && !WITH_WEIGHTS ? " --no-weights" : "");
}

#define STR2(x) #x
#define STR(x) STR2(x)


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_dir();
#if WITH_WEIGHTS
	fuzz_link_dir(STR(FUZZ_WEIGHTS_DIR));
#endif
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = fuzz_path(0, "in.log"), *prototxt = fuzz_path(1, "out.prototxt");
	const char *caffemodel = fuzz_path(2, "out.caffemodel");
	Mode m = mode_of(size);
	const char *target = target_name[m.target];
	bool ok, io_error;
	Ctx c;

	if (getenv("PTCC_FUZZ_VERBOSE"))
		print_mode(&m, size);
	fuzz_write(in, data, size);
	ctx_init(&c);
	if (!ctx_open(&c, in))
		abort(); /* the harness's own file */
	ok = parse(&c);
	ok = frontend_finish(&c) && ok;
	if (c.input_shapes.usage_error) {
		/* no --input here */
	} else if (!ok) {
		if ((m.mode == FM_MODEL || m.mode == FM_NONE) && !c.syntax_error && !c.stopped)
			compile_model(&c, NULL, NULL, target, m.olevel);
	} else {
		switch (m.mode) {
		case FM_LOG: emit_log(&c, fuzz_null()); break;
		case FM_IR: emit_ir(&c, fuzz_null()); break;
		case FM_SUMMARY: emit_summary(&c, fuzz_null()); break;
		case FM_DOT: emit_dot(&c, fuzz_null()); break;
		case FM_DRAW:
			c.draw_net = m.phase;
			c.draw_out = fuzz_null();
			compile_model(&c, NULL, NULL, target, m.olevel);
			break;
		case FM_NONE: compile_model(&c, NULL, NULL, target, m.olevel); break;
		case FM_MODEL:
			if (WITH_WEIGHTS || m.olevel >= 2) {
				if (weights_load(&c, &io_error))
					compile_model(&c, prototxt, caffemodel, target, m.olevel);
			} else {
				compile_model(&c, prototxt, NULL, target, m.olevel);
			}
			break;
		}
		weights_report(&c); /* the value check's warnings, as main gives them */
		fflush(fuzz_null());
	}
	ctx_free(&c);
	return 0;
}
