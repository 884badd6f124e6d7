/* net.h: the back end's IR, a Caffe net under construction.
 *
 *     lower (lower.c, ops.def) -> fuse (fuse.c) -> name (name.c) -> codegen (codegen.c)
 *
 * Lowering turns each live trace node into one or more Layers.  Layers connect through Blobs,
 * which are in SSA form until fusion makes some layers work in place (top == bottom).  A Layer
 * carries the protobuf-c LayerParameter it will become, with its *_param fields already filled
 * in, so that codegen only has to attach names, bottoms, tops and blobs.  Everything lives in
 * the compilation's arena, except the growable arrays (freed by net_free).
 */
#ifndef PTCC_NET_H
#define PTCC_NET_H

#include "ptcc.h"
#include "proto/caffe.pb-c.h"

#include <string.h>

typedef struct Blob Blob;
typedef struct Layer Layer;
typedef struct Net Net;
typedef struct Shuffle Shuffle;

/* A blob: one tensor edge of the Caffe graph. */
struct Blob {
	const char *name;  /* set by the naming pass (inputs: their trace names) */
	Layer *producer;   /* NULL for a net input */
	Type type;         /* shape of the tensor */
	uint32_t id;
	uint32_t nuse;     /* consumers among live layers */
	bool is_input, is_output;
	bool discard;      /* an unused top (the cut-off part of a Slice) */
};

/* A weight blob of a layer: shape plus float data (pointing into the weights mapping when
 * possible). */
typedef struct Weight {
	const void *data;    /* numel float32s, little-endian: in the weights file's mapping
	                        (maybe unaligned, as an ONNX file's raw_data is) or computed;
	                        read with weight_at, written out as bytes; NULL without weights */
	int64_t numel;
	const int64_t *dims; /* in the arena */
	int ndim;            /* -1: write no shape field (a scalar) */
} Weight;

/* Element i of a weight (its data may be unaligned). */
static inline float
weight_at(const Weight *w, int64_t i)
{
	float f;

	memcpy(&f, (const unsigned char *)w->data + i * (int64_t)sizeof f, sizeof f);
	return f;
}

struct Layer {
	const char *type;         /* Caffe's layer type */
	/* Its *_param message (NULL: none) and the offset of that field in a LayerParameter:
	 * codegen builds each LayerParameter (368 bytes) only while writing the layer. */
	ProtobufCMessage *param;
	size_t param_offset;
	const Node *node;         /* the op this layer lowers, NULL for an Input layer */
	const char *role;         /* NULL for the op's main layer, else what this helper layer
	                             does */
	const char *name;         /* set by the naming pass */
	VEC(Blob *) bottoms;
	VEC(Blob *) tops;
	VEC(Weight) weights;
	uint32_t idx;             /* position in the net */
	bool dead;
	/* Set by fuse.c's in-place pass: the SSA blobs the layer was lowered to read and write,
	 * before bottoms and tops were renamed to the blobs that hold them; netcheck.c checks
	 * the two agree. */
	Blob **ssa_bottoms, **ssa_tops;
};

struct Net {
	Ctx *c;
	Arena *arena;
	int olevel;               /* -O0, -O1, -O2 */
	const char *target;
	bool with_weights;        /* the weights file is loaded: blobs get data */
	VEC(Layer *) layers;
	VEC(Blob *) blobs;
	Blob **blob_of;           /* by Value.id: the blob holding that value, NULL if none */
	Shuffle **shuffle_at;     /* by Node.idx: the channel shuffle the node is part of
	                             (shuffle.c), or NULL */
	VEC(Blob *) outputs;      /* in trace order */
	VEC(const char *) output_names; /* the trace's name of each output, or NULL */
	const char *name;         /* the net's name: the root module's class */
	int64_t constant_bytes;   /* of the constant weights lowering made (constant_weight) */
	int errors_before;        /* Ctx.nerrors when lowering began: lowering's own errors are
	                             the rest */
	bool probe;               /* lowering only to learn whether this target can: refusals are
	                             silent */
	bool refused;             /* a probe's lowering refused the op */
};

/* ---- net.c: building blocks for the passes --------------------------------------------------- */

void net_init(Net *net, Ctx *c, int olevel, const char *target, bool with_weights);
void net_free(Net *net);
Blob *net_blob(Net *net, Type type);
Layer *net_layer(Net *net, const Node *n, const char *type, const char *role);
void layer_bottom(Net *net, Layer *l, Blob *b);
Blob *layer_top(Net *net, Layer *l, Type type);
void layer_weight(Net *net, Layer *l, const void *data, int64_t numel, const int64_t *dims,
	     int ndim);
/* The type of LayerParameter's field `field`, and its offset. */
#define LP_TYPE(field) __typeof__(((Caffe__LayerParameter *)0)->field)
#define LP_OFFSET(field) offsetof(Caffe__LayerParameter, field)
/* A layer's param message, allocated and initialised: PARAM(net, l, convolution_param,
 * CONVOLUTION_PARAMETER).  A layer has one. */
#define PARAM(net, l, field, NAME)                                                         \
	((LP_TYPE(field))layer_set_param((net), (l), LP_OFFSET(field),                     \
					 &(__typeof__(*(LP_TYPE(field))0))CAFFE__##NAME##__INIT, \
					 sizeof(*(LP_TYPE(field))0)))
/* The layer's param message if it is the field `field` (convolution_param, ...), else NULL. */
#define LP(l, field) ((LP_TYPE(field))layer_param((l), LP_OFFSET(field)))
void *layer_set_param(Net *net, Layer *l, size_t offset, const void *init, size_t size);
void *layer_param(const Layer *l, size_t offset);
float *net_floats(Net *net, int64_t n, float fill);
/* A Reshape that keeps every axis (`dim: 0` for each): a layer of its own for x that computes
 * nothing and that no runtime folds into another. */
Blob *net_identity(Net *net, const Node *n, const char *role, Blob *x);
/* Rewire every consumer of `from` to read `to` instead. */
void net_replace_blob(Net *net, Blob *from, Blob *to);
/* Whether b is among l's bottoms, among its tops. */
bool layer_reads(const Layer *l, const Blob *b);
bool layer_writes(const Layer *l, const Blob *b);
/* Every trace value that `from` held is held by `to` (NULL: by no blob) from now on. */
void net_rebind(Net *net, Blob *from, Blob *to);
void net_recount(Net *net);   /* recompute Blob.nuse and Layer.idx over live layers */

/* A channel shuffle found by match_shuffles: view(N, g, C/g, H, W), transpose(1, 2), copies,
 * view back. */
struct Shuffle {
	const Value *src; /* the 4-D tensor shuffled */
	int64_t groups;
	const Node *end;  /* the chain's last op, which lowers to the permutation */
};

/* ---- build.c: layer builders (each appends its layers and returns the top) ------------------- */

Type f32_type(Net *net, const int64_t *dims, int ndim);
int64_t numel_of(const Type *t);
/* A one-bottom, one-top layer of the given type. */
Layer *unary_layer(Net *net, const Node *n, const char *type, const char *role, Blob *in, Type out,
		   Blob **top);
Blob *power_layer(Net *net, const Node *n, const char *role, Blob *in, double pw, double scale,
		  double shift);
Blob *relu_layer(Net *net, const Node *n, const char *role, Blob *in, double slope);
Blob *eltwise_layer(Net *net, const Node *n, const char *role, int op, Blob *a, Blob *b,
		    double coeff_b);
Blob *clamp_chain(Net *net, const Node *n, Blob *x, double lo, double hi, const char *last_role);
void conv_hw_field(Net *net, uint32_t **rep, size_t *nrep, uint32_t *h, protobuf_c_boolean *has_h,
		   uint32_t *w, protobuf_c_boolean *has_w, const int64_t v[2], int64_t dflt);
int64_t caffe_pool_out(int64_t h, int64_t k, int64_t s, int64_t p);
int64_t floor_pool_out(int64_t h, int64_t k, int64_t s, int64_t p);
Blob **slice_layer(Net *net, const Node *n, const char *role, Blob *x, int axis,
		   const int64_t *points, int npoints);
Blob *crop_to(Net *net, const Node *n, Blob *x, const Type *want);
Blob *pooling_layer(Net *net, const Node *n, const char *role, Blob *x, int method,
		    const int64_t k[2], const int64_t s[2], const int64_t p[2], bool global);
Blob *pooling_layer_rounded(Net *net, const Node *n, const char *role, Blob *x, int method,
			    const int64_t k[2], const int64_t s[2], const int64_t p[2], bool global,
			    bool floor);
Blob *flatten_layer(Net *net, const Node *n, const char *role, Blob *x, int axis, int end_axis,
		    Type out);
Blob *replicate_pad(Net *net, const Node *n, Blob *x, int axis);
Blob *convolution(Net *net, const Node *n, const char *role, bool deconv, Blob *x, int64_t out_c,
                  int64_t group, const int64_t k[2], const int64_t s[2], const int64_t p[2],
                  const float *w);
Blob *grouped_deconvolution(Net *net, const Node *n, Blob *x, const int64_t k[2],
			    const int64_t s[2], const int64_t p[2], const float *w);
Blob *reshape_layer(Net *net, const Node *n, const char *role, Blob *x, const int64_t *dims,
		    int ndim);
/* x itself when it already has the dims, else a Reshape to them */
Blob *reshape_to(Net *net, const Node *n, const char *role, Blob *x, const int64_t *dims, int ndim);
/* (data, w, b: float32s as in Weight.data, maybe unaligned) */
Blob *constant_blob(Net *net, const Node *n, Blob *src, const Type *t, const void *data);
Blob *scale_layer(Net *net, const Node *n, const char *role, Blob *x, int axis, const void *w,
		  bool bias, const void *b);
/* The channel shuffle of x in `groups` groups as one 1x1 Convolution with a permutation weight. */
Blob *channel_permutation(Net *net, const Node *n, Blob *x, int64_t groups);

/* ---- netcheck.c: the target table (layers.def) and the net verifier -------------------------- */


typedef struct LayerInfo {
	const char *type;
	const char *param;   /* its own *_param field; "NULL" when it has none */
	bool in_place;       /* may write its bottom */
	bool view;           /* its top is its bottom's memory in BVLC: nothing may write the top
	                        in place */
	unsigned targets;    /* T_ bits */
} LayerInfo;

const LayerInfo *layer_info(const char *type); /* NULL for a type outside layers.def */
/* Whether the runtimes of `target` read the param field `param`.`field` (fields.def). */
bool target_has_field(const char *target, const char *param, const char *field);

/* Caffe's load-time rules and the aliasing rule (netcheck.c's header); false with a message
 * naming the layer. */
bool netcheck(const Net *net, char *msg, size_t size);
/* netcheck, or an internal error (ptcc_die) saying which pass broke which rule. */
void net_verify(const Net *net, const char *after);

/* ---- the passes ------------------------------------------------------------------------------ */

void match_shuffles(Net *net); /* shuffle.c: find the channel shuffles before lowering */
bool lower(Net *net);         /* lower.c: false if some op has no lowering (all are reported) */
/* lower.c: a constant weight of a × b × c values that n's lowering computes, zero-filled or
 * `fill`; refused (an error at n's line, NULL) when Caffe could not hold it. */
float *constant_weight(Net *net, const Node *n, float fill, int64_t a, int64_t b, int64_t c);
void net_dump(Net *net, FILE *f, const char *after); /* netdump.c: the net as text (--dump-net) */
/* netdot.c: the net in Graphviz's DOT language (--emit=dot --after=PHASE); names if named */
void net_dot(Net *net, FILE *f, const char *after);
bool lowering_table_check(char *msg, size_t size); /* lower.c: ops.def's back-end columns are
                                                      consistent */
void opencv_barriers(Net *net); /* barrier.c: stop OpenCV's wrong fusions (every -O level) */
void fuse(Net *net);          /* fuse.c: -O1 and -O2 rewrites */
void name_net(Net *net);      /* name.c: layer and blob names from scopes */
/* codegen.c: write the prototxt and (unless caffemodel is NULL) the caffemodel, atomically.
 * Returns 0, or 2 after an I/O error message, or 1 after a diagnostic. */
int codegen(Net *net, const char *prototxt, const char *caffemodel);

/* ---- prototxt.c: protobuf text format through protobuf-c's descriptors ----------------------- */

typedef bool PrototxtSkip(const ProtobufCFieldDescriptor *f);
/* The fields of msg, top level; `skip` (or NULL) leaves fields out. */
void prototxt_write(FILE *fp, const ProtobufCMessage *msg, PrototxtSkip *skip);
/* One more top-level field whose value is the message msg: `name {`, its fields, `}`. */
void prototxt_write_field(FILE *fp, const char *name, const ProtobufCMessage *msg,
			  PrototxtSkip *skip);
/* A string in the text format's quotes, C-escaped (octal for every byte that is not printable
 * ASCII). */
void prototxt_put_string(FILE *fp, const char *s, size_t len);
/* Whether an optional field of a message is set (protobuf-c's packer's rule). */
bool prototxt_field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

#endif
