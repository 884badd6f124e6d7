/* tests/fuzz/fuzz_onnx.c: libFuzzer target for the ONNX front end: the reader (onnx_read.c: the
 * wire walker, protobuf-c's unpacking of nodes and value infos, every TensorProto form), the
 * importer (onnx_import.c: every op's row, the folding of constants and shapes), then what main.c
 * runs after a front end: the weights bound and checked, lowering, fusion and the net verifier.
 *
 * The input is the model file, written as fuzz.onnx in the harness's directory (an external data
 * file it names is looked for there too, and refused outside it).  Seeds: the corpus in
 * tests/fuzz/corpus/onnx.tar.gz (tests/onnx's bad models, test_onnx_ops's graphs and small
 * torch.onnx.export files). */
#include "onnx.h"

#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_path(0, "fuzz.onnx");
	bool io_error, ok;
	Ctx c;

	fuzz_write(path, data, size);
	ctx_init(&c);
	c.path = path;
	c.max_errors = 0;
	if (onnx_read(&c, path, &io_error)) {
		ok = onnx_import(&c);
		ok = frontend_finish(&c) && ok;
		if (ok && weights_load(&c, &io_error))
			compile_model(&c, NULL, NULL, size % 2 ? "caffe" : "opencv", (int)(size % 3));
		weights_report(&c); /* the value check's warnings, as main gives them */
	}
	ctx_free(&c);
	return 0;
}
