/* onnx.h: the ONNX front end.
 *
 *     model.onnx --onnx_read.c--> OnnxModel --onnx_import.c--> the IR, as the parser builds it
 *
 * onnx_read.c maps the file and walks ModelProto, GraphProto and TensorProto by hand (wire.c),
 * so that an initializer's data is used where it lies in the mapping; nodes and value infos are
 * unpacked with protobuf-c from ptcc's own schema subset (src/proto/onnx.proto).  onnx_import.c
 * turns each node into the op lines the recorder would have written and hands them to
 * frontend.c (bind, resolve, shape), folding what depends only on constants and static shapes.
 *
 * Locations: an ONNX model has no lines.  Every position the IR holds (Loc, Lit.pos, Value.pos)
 * is an origin index: node k is k, then the graph's inputs, its initializers and its outputs
 * (onnx_origin).  diag.c prints `model.onnx: node 'Conv_12' (#12, Conv): error: ...` and the
 * node's inputs and outputs below it.
 */
#ifndef PTCC_ONNX_H
#define PTCC_ONNX_H

#include "ptcc.h"
#include "proto/onnx.pb-c.h"

/* ---- wire.c: the protobuf wire format, read in place -------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

typedef struct Wire {
	const uint8_t *p, *end;
} Wire;

typedef struct WireField {
	uint32_t num;   /* field number */
	int type;       /* WIRE_ */
	uint64_t u;     /* WIRE_VARINT, WIRE_I64, WIRE_I32: the value */
	const uint8_t *data; /* WIRE_LEN: the bytes (u: their length) */
	const uint8_t *at;   /* where the field's key is */
} WireField;

/* The next field of w into f: 1, 0 at the end, -1 when the bytes are not protobuf (a key or
 * length that runs past the end, a group, a field number 0). */
int wire_next(Wire *w, WireField *f);
/* A varint from [*p, end); false when it runs past end or over 10 bytes. */
bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* ---- onnx_read.c: the model file ---------------------------------------------------------- */

/* ONNX's TensorProto.DataType values ptcc reads */
enum {
	ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_UINT16 = 4, ONNX_INT16 = 5,
	ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_STRING = 8, ONNX_BOOL = 9, ONNX_FLOAT16 = 10,
	ONNX_DOUBLE = 11, ONNX_UINT32 = 12, ONNX_UINT64 = 13, ONNX_BFLOAT16 = 16,
};

/* A tensor of the model: an initializer or a Constant's value.  data is little-endian and
 * may be unaligned: in the file's mapping (raw_data, float_data), an external data file's, or
 * the arena (fields that are varints). */
typedef struct OnnxTensor {
	const char *name;   /* interned */
	int dtype;          /* Dtype; DT_UNKNOWN for an ONNX type ptcc has none of (onnx_type) */
	int onnx_type;
	int ndim;
	const int64_t *dims;
	int64_t numel;
	const void *data;
	uint64_t nbytes;
} OnnxTensor;

typedef struct OnnxMapping {
	const char *location; /* interned, as the model names it */
	void *p;
	size_t size;
	uint64_t dev, ino;    /* the file's, for outputs_check */
} OnnxMapping;

typedef struct OnnxModel {
	const char *path;
	const uint8_t *map;
	size_t size;
	int64_t ir_version;
	int64_t opset;       /* the default domain's (ai.onnx) version */
	const char *producer;
	VEC(Onnx__NodeProto *) nodes;
	VEC(Onnx__ValueInfoProto *) inputs;
	VEC(Onnx__ValueInfoProto *) outputs;
	VEC(Onnx__ValueInfoProto *) value_info;
	VEC(OnnxTensor) initializers;
	VEC(OnnxMapping) externals; /* the external data files' mappings */
} OnnxModel;

/* The dtype ptcc gives an ONNX element type, or DT_UNKNOWN */
int onnx_dtype(int onnx_type);
/* Whether path names an ONNX model: its extension is .onnx, or its first bytes are a
 * ModelProto's (field 1, ir_version, as every exporter writes first). */
bool onnx_is_model(const char *path);
/* Map and read the model into c->onnx; false after a diagnostic (*io_error for I/O). */
bool onnx_read(Ctx *c, const char *path, bool *io_failed);
/* A TensorProto's bytes into t (origin for diagnostics); false after a diagnostic. */
bool onnx_tensor(Ctx *c, const uint8_t *p, size_t n, OnnxTensor *t, uint32_t origin);
void onnx_free(OnnxModel *m);

/* ---- onnx_import.c: the graph into the IR ------------------------------------------------- */

/* What frontend.c does for a parsed trace, for c->onnx: inputs, params, consts, scopes from
 * node names, every node's ops; false if there were errors.  frontend_finish follows. */
bool onnx_import(Ctx *c);
/* The ONNX ops with a row in the table, one a line (--list-ops=onnx). */
void onnx_list_ops(FILE *f);
/* "node '/conv1/Conv' (#3, Conv)", "input 'x'", ... for an origin index; into buf */
const char *onnx_origin(const Ctx *c, uint32_t pos, char *buf, size_t size);
/* The line diag.c prints under a diagnostic at a node: its inputs and outputs. */
void onnx_origin_context(const Ctx *c, uint32_t pos, FILE *f);

#endif
