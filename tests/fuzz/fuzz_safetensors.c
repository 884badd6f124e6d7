/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader (src/weights.c):
 * the input is the weights file of a fixed trace that declares one parameter of each dtype
 * ($F16 : f16[2,3], ..., $BOOL : bool[2,3]); weights_load validates the file and binds them, then
 * every tensor of the file goes through tensor_f32, which converts F16, BF16, F64 and the integer
 * types (and copies unaligned F32), and each float is read.
 *
 * weights.c is included, not linked, to reach its tensor table (struct Weights is private to
 * it); the archive's weights.o is then never pulled in, as this file defines all its symbols.
 *
 * Another reader (an ONNX reader, say) gets a target the same way: a fuzz_NAME.c beside this one
 * that writes the input where the reader looks, reads it in a fresh Ctx and walks what it read;
 * one word in fuzz.mk's TARGETS and a seeds/NAME directory (or a rule that makes it). */
#include "../../src/weights.c"

#include "fuzz.h"

static const char trace[] =
	"ptcc-trace 1\n"
	"weights \"fuzz.safetensors\"\n"
	"param $F16 : f16[2,3]\n"
	"param $BF16 : bf16[2,3]\n"
	"param $F32 : f32[2,3]\n"
	"param $F64 : f64[2,3]\n"
	"param $I8 : i8[2,3]\n"
	"param $I16 : i16[2,3]\n"
	"param $I32 : i32[2,3]\n"
	"param $I64 : i64[2,3]\n"
	"param $U8 : u8[2,3]\n"
	"param $BOOL : bool[2,3]\n"
	"input %0 \"x\" : f32[1,3]\n"
	"output %0\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_write(fuzz_path(0, "fuzz.log"), (const uint8_t *)trace, sizeof trace - 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	volatile float sink = 0;
	bool io_error;
	Ctx c;

	fuzz_write(fuzz_path(1, "fuzz.safetensors"), data, size);
	ctx_init(&c);
	if (!ctx_open(&c, fuzz_path(0, "fuzz.log")))
		abort();
	if (!parse(&c) || !frontend_finish(&c)) {
		fputs("fuzz_safetensors: the fixed trace has errors\n", stderr);
		abort();
	}
	weights_load(&c, &io_error);
	weights_report(&c); /* the value check's warnings, as main gives them */
	/* the tensors read, whether or not the parameters bound */
	if (c.weights)
		for (size_t i = 0; i < c.weights->n; i++) {
			const Tensor *t = &c.weights->t[i];
			const float *f = tensor_f32(c.weights, t);

			for (int64_t k = 0; k < t->numel; k++)
				sink += f[k];
		}
	(void)sink;
	ctx_free(&c);
	return 0;
}
