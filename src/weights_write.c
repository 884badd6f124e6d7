/* weights_write.c: a safetensors file of the trace's params and consts (docs/trace-format.md §5),
 * for --emit=log of a model whose tensors are not in one already (an ONNX model's initializers
 * and computed constants).
 *
 * The header is JSON in declaration order, each tensor's data_offsets following the last, padded
 * with spaces to a multiple of 8 bytes as the recorder pads it; the data follows in the same order,
 * from where the tensors lie: the weights pass copies what lies in the model's mapping
 * (outfile_copy_range, as codegen.c's caffemodel), ptcc writes the rest. */
#include "ptcc.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool
weights_write(Ctx *c, OutFile *o, const char *path)
{
	FILE *f = o->fp;
	json_t *root = json_object();
	uint64_t at = 0, len;
	char *header;
	size_t i, hlen, pad;
	unsigned char n8[8];
	bool ok;

	for (i = 0; i < c->g.params.n; i++) {
		const Value *v = c->g.params.v[i];
		const Tensor *t = v->tensor;
		json_t *e = json_object(), *shape = json_array();

		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer(t->dims[d]));
		json_object_set_new(e, "dtype", json_string(dtype_stname[t->dtype]));
		json_object_set_new(e, "shape", shape);
		json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)at,
								 (json_int_t)(at + t->nbytes)));
		json_object_set_new(root, v->name, e);
		at += t->nbytes;
	}
	header = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
	json_decref(root);
	if (!header)
		ptcc_die("out of memory");
	hlen = strlen(header);
	pad = (8 - hlen % 8) % 8;
	len = hlen + pad;
	for (i = 0; i < 8; i++)
		n8[i] = (unsigned char)(len >> (8 * i));
	ok = fwrite(n8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen &&
	     fwrite("        ", 1, pad, f) == pad;
	free(header);
	for (i = 0; ok && i < c->g.params.n; i++) {
		const Tensor *t = c->g.params.v[i]->tensor;
		size_t done = outfile_copy_range(o, t->data, (size_t)t->nbytes);

		ok = fwrite((const char *)t->data + done, 1, (size_t)t->nbytes - done, f) ==
		     (size_t)t->nbytes - done;
	}
	if (!ok)
		io_error(c, "cannot write '%s': %s", path, strerror(errno));
	c->model_bytes = 8 + len + at;
	c->model_copied = o->copied;
	c->model_kind = "weights file";
	return ok;
}
