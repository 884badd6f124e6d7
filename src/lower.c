/* lower.c: PyTorch ops to Caffe layers (the portable `caffe` target, plus what the target table,
 * layers.def, lets `opencv` use).
 *
 * Each LowerFn turns one live node into layers whose output equals PyTorch's exactly (to float32
 * rounding), or reports why it cannot and returns false.  ops.def's lowering column says which
 * function lowers which op (an in-place twin is lowered by its op's function), and its layers
 * column which layer types the function may emit.  Layers are appended in trace order, so a
 * layer's bottoms are always produced by earlier layers.  The blobs are SSA: every layer writes
 * fresh tops; fuse.c makes neuron layers work in place afterwards.  The layers themselves are
 * made by build.c.
 *
 * The Caffe semantics that matter here (pooling sizes: Caffe rounds up, PyTorch down by default,
 * so crop with Slice; average-pooling divisors; BatchNorm's three blobs; the exact emulations on
 * stock layers) are in docs/runtime-facts.md.
 */
#include "net.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

typedef bool LowerFn(Net *net, Node *n);

#define OP(op, ip, fl, sh, lo, layers, targets, args) static LowerFn lo;
#include "ops.def"
#undef OP

/* ops.def's back-end columns, by op (an in-place twin reads its op's row: op_base). */
static const struct {
	LowerFn *fn;
	const char *layers;  /* the layer types fn may emit, separated by spaces */
	unsigned targets;
} lowering[OP_COUNT] = {
#define OP(op, ip, fl, sh, lo, layer_types, target_bits, args) \
	[OP_##op] = {lo, layer_types, target_bits},
#include "ops.def"
#undef OP
};

const char *
op_layers(int op)
{
	return lowering[op_base(op)].layers;
}

unsigned
op_targets(int op)
{
	return lowering[op_base(op)].targets;
}

/* ---- targets --------------------------------------------------------------------------------- */

/* Whether the target's runtimes load and compute a layer type exactly: layers.def's targets
 * column.  `caffe` is BVLC Caffe 1.0 ∩ OpenCV 4.6 (runtime-facts S1); `opencv` adds the layer
 * types Debian's OpenCV 4.6 computes exactly without any param message (ReLU6 clips to [0, 6],
 * Swish is x·sigmoid(x), HardSwish x·relu6(x + 3)/6).  `caffe-master` adds nothing yet: its
 * Clip, Swish and round_mode have no runtime here to prove them. */
static bool
target_has(const Net *net, const char *layer_type)
{
	const LayerInfo *info = layer_info(layer_type);

	return info && (info->targets & target_bit(net->target)) != 0;
}

/* ---- diagnostics and arguments --------------------------------------------------------------- */

/* Errors reported since lowering began (the front end's, before it, are not counted). */
static int
lowering_errors(const Net *net)
{
	return net->c->nerrors - net->errors_before;
}

static bool
refuse(Net *net, const Node *n, const char *fmt, ...) PRINTF_LIKE(3, 4);

static bool
refuse(Net *net, const Node *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (net->probe) {
		net->refused = true;
		return false;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	error_at(net->c, n->loc, "%s: %s (target %s)", optab[n->op].name, msg, net->target);
	return false;
}

static Value *
arg_value(const Node *n, int slot)
{
	const Lit *l = op_arg(n, slot);
	return l->kind == L_VALUE ? l->u.v : NULL;
}

static int64_t
arg_int(const Node *n, int slot)
{
	int64_t i = 0;
	lit_as_int(op_arg(n, slot), &i);
	return i;
}

static double
arg_float(const Node *n, int slot)
{
	double f = 0;
	lit_as_float(op_arg(n, slot), &f);
	return f;
}

static bool
arg_bool(const Node *n, int slot)
{
	const Lit *l = op_arg(n, slot);
	return l->kind == L_BOOL && l->u.i;
}

/* A constant weight that a lowering computes (one-hot and resampling matrices, fills of ones),
 * of a × b × c values, refused before any memory is taken when Caffe could not hold it: a blob
 * holds at most INT32_MAX elements (Blob::Reshape checks its count), and all the constants
 * together must fit in the caffemodel, which Caffe and OpenCV read only up to 2 GiB.  A huge size
 * in a trace is then a located error instead of an out-of-memory death.  NULL once refused: a
 * weight with NULL data stands for no data, so a caller that only passes the buffer on needs no
 * check (the refusal stops compilation before codegen); one that fills it does. */
float *
constant_weight(Net *net, const Node *n, float fill, int64_t a, int64_t b, int64_t c)
{
	int64_t count, bytes;

	if (!ck_mul(a, b, &count) || !ck_mul(count, c, &count) || count > INT32_MAX) {
		char dims[64];

		snprintf(dims, sizeof dims, c != 1 ? "%lld x %lld x %lld" : b != 1 ? "%lld x %lld"
			 : "%lld", (long long)a, (long long)b, (long long)c);
		refuse(net, n,
		       "its lowering needs a constant weight of %s values; a Caffe blob holds at "
		       "most 2147483647",
		       dims);
		return NULL;
	}
	if (!ck_add(net->constant_bytes, count * (int64_t)sizeof(float), &bytes) ||
	    bytes > INT_MAX) {
		refuse(net, n,
		       "its lowering's constant weights bring those of the net to %lld bytes; a "
		       "caffemodel holds at most 2 GiB",
		       (long long)bytes);
		return NULL;
	}
	net->constant_bytes = bytes;
	return net_floats(net, count, fill);
}

/* Every result of n fits in a Caffe blob, whose element count is an int (Blob::Reshape checks
 * it; OpenCV's importer reads shapes into ints too); checked before lowering, whose constants
 * (a resampling matrix per output row) may grow with the result. */
static bool
results_fit(Net *net, const Node *n)
{
	for (unsigned k = 0; k < n->nres; k++) {
		const Type *t = &n->res[k].type;
		char ts[TYPE_STR_MAX];

		if (t->dtype == DT_F32 && numel_of(t) > INT32_MAX)
			return refuse(net, n,
				      "a result of type %s, %lld elements; a Caffe blob holds at "
				      "most 2147483647",
				      type_str(t, ts, sizeof ts), (long long)numel_of(t));
	}
	return true;
}

/* Caffe's kernel, stride, pad and dilation fields are uint32, read into int by every runtime:
 * a trace's value above INT32_MAX (PyTorch takes any int64) would be truncated in the field,
 * or overflow Caffe's own size arithmetic, so it is refused, named. */
static bool
fits_caffe(Net *net, const Node *n, const char *what, const int64_t v[2])
{
	for (int i = 0; i < 2; i++)
		if (v[i] > INT32_MAX)
			return refuse(net, n, "%s=%lld does not fit Caffe's 32-bit field", what,
				      (long long)v[i]);
	return true;
}

static bool
arg_is_none(const Node *n, int slot)
{
	const Lit *l = op_arg(n, slot);
	return l->kind == L_NONE || l->kind == L_ABSENT;
}

/* dim normalised against rank: -1 is the last axis */
static int
axis_of(int64_t dim, int rank)
{
	return (int)(dim < 0 ? dim + rank : dim);
}


/* The float data of a parameter, aligned, for computing with (NULL when the weights are not
 * loaded). */
static const float *
param_data(Net *net, const Value *v)
{
	return net->with_weights && v->tensor ? tensor_f32(net->c->weights, v->tensor) : NULL;
}

/* The same as the bytes of a Weight (Weight.data): an F32 tensor where it lies, aligned or not
 * (an ONNX file's raw_data), so that a weight passed through is never copied. */
static const void *
param_bytes(Net *net, const Value *v)
{
	if (!net->with_weights || !v->tensor)
		return NULL;
	if (v->tensor->dtype == DT_F32)
		return v->tensor->data;
	return tensor_f32(net->c->weights, v->tensor);
}

/* The blob holding the value v for the op n (NULL for an output).  A parameter or constant used
 * as an activation becomes a blob of its own the first time (constant_blob, derived from the
 * first input that has a blob), shared by its readers. */
static Blob *
blob_of(Net *net, const Node *n, const Value *v)
{
	Blob *b = v ? net->blob_of[v->id] : NULL;
	const Graph *g = &net->c->g;

	if (b || !v)
		return b;
	if (v->kind != VK_PARAM && v->kind != VK_CONST)
		return NULL;
	if (v->type.ndim == 0) {
		if (n)
			refuse(net, n,
			       "the 0-d tensor $%s is used as an activation; Caffe blobs have at "
			       "least one axis",
			       v->name);
		return NULL;
	}
	for (size_t i = 0; i < g->inputs.n && !b; i++)
		b = net->blob_of[g->inputs.v[i]->id];
	if (!b) {
		if (n)
			refuse(net, n,
			       "the tensor $%s is used as an activation, and the net has no input "
			       "to derive it from",
			       v->name);
		return NULL;
	}
	b = constant_blob(net, n, b, &v->type, param_bytes(net, v));
	net->blob_of[v->id] = b;
	return b;
}

static void
bind(Net *net, const Value *v, Blob *b)
{
	net->blob_of[v->id] = b;
}

/* An output's name becomes its Caffe blob's and layer's (name.c): it must not be an input's or
 * an earlier output's, which would give two blobs one name. */
static bool
output_name_free(Net *net, size_t i)
{
	Graph *g = &net->c->g;
	const Output *o = &g->outputs.v[i];

	if (!o->name)
		return true;
	for (size_t k = 0; k < g->inputs.n; k++)
		if (g->inputs.v[k]->name && strcmp(g->inputs.v[k]->name, o->name) == 0) {
			error_at(net->c, o->loc,
				 "output: \"%s\" is an input's name; a Caffe blob has one name",
				 o->name);
			return false;
		}
	for (size_t k = 0; k < i; k++)
		if (g->outputs.v[k].name && strcmp(g->outputs.v[k].name, o->name) == 0) {
			error_at(net->c, o->loc, "output: the name \"%s\" is taken by output %zu",
				 o->name, k);
			return false;
		}
	return true;
}

static bool
is_param(const Value *v)
{
	return v && (v->kind == VK_PARAM || v->kind == VK_CONST);
}









/* The copies through weight-1 and one-hot layers that several lowerings share (defined with
 * arithmetic and layouts below). */
static Blob *broadcast_to(Net *net, const Node *n, Blob *x, const Type *out);
static Blob *swap_blocks(Net *net, const Node *n, Blob *x, int64_t nb, int64_t p, int64_t a,
                         int64_t b, int64_t q);

/* The axes a reduction's `dim` names (an int, a list, or none/[] for all of them), as flags over
 * a tensor of rank `rank` (the shape rule checked them). */
static void
reduced_axes(const Lit *dl, int rank, bool red[MAX_DIMS])
{
	bool all = dl->kind == L_NONE || dl->kind == L_ABSENT || (dl->kind == L_LIST && dl->n == 0);

	for (int i = 0; i < MAX_DIMS; i++)
		red[i] = all && i < rank;
	if (dl->kind == L_INT)
		red[axis_of(dl->u.i, rank)] = true;
	for (uint32_t i = 0; dl->kind == L_LIST && i < dl->n; i++)
		red[axis_of(dl->u.list[i].u.i, rank)] = true;
}

/* ---- convolution and linear ------------------------------------------------------------------ */

static bool
need_param(Net *net, const Node *n, const Value *v, const char *what)
{
	if (!is_param(v))
		return refuse(
			net, n,
			"the %s must be a parameter of the model ($name), not a computed tensor",
			what);
	return true;
}

static void
weight_from(Net *net, Layer *l, const Value *v)
{
	int64_t numel = 1;

	for (int i = 0; i < v->type.ndim; i++)
		numel *= v->type.dims[i];
	layer_weight(net, l, param_bytes(net, v), numel, v->type.dims, v->type.ndim);
}

/* The end of Convolution and InnerProduct: bottom x, blobs weight and (optional) bias, one top. */
static bool
connect_weighted(Net *net, Node *n, Layer *l, Blob *x, const Value *w, const Value *b)
{
	layer_bottom(net, l, x);
	weight_from(net, l, w);
	if (b)
		weight_from(net, l, b);
	bind(net, &n->res[0], layer_top(net, l, n->res[0].type));
	return true;
}


static bool
lower_conv2d(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(conv2d, input)), *w = arg_value(n, ARG(conv2d, weight)),
	      *b = arg_value(n, ARG(conv2d, bias));
	int64_t stride[2], pad[2], dil[2], groups = arg_int(n, ARG(conv2d, groups));
	const Lit *padding = op_arg(n, ARG(conv2d, padding));
	Blob *x = blob_of(net, n, in);
	Layer *l;
	Caffe__ConvolutionParameter *p;

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only 4-D (N, C, H, W) inputs are supported");
	if (!need_param(net, n, w, "weight") || (b && !need_param(net, n, b, "bias")))
		return false;
	lit_int_list(op_arg(n, ARG(conv2d, stride)), stride, 2);
	lit_int_list(op_arg(n, ARG(conv2d, dilation)), dil, 2);
	if (!fits_caffe(net, n, "stride", stride) || !fits_caffe(net, n, "dilation", dil) ||
	    !fits_caffe(net, n, "kernel", w->type.dims + 2))
		return false;
	if (padding->kind == L_STR && strcmp(padding->u.s, "valid") == 0) {
		pad[0] = pad[1] = 0;
	} else if (padding->kind == L_STR) { /* "same": stride 1, total padding d·(k−1), split
	                                        evenly */
		for (int i = 0; i < 2; i++) {
			int64_t total = dil[i] * (w->type.dims[2 + i] - 1);
			if (total % 2)
				return refuse(net, n,
					      "padding='same' needs uneven padding here; Caffe "
					      "pads symmetrically");
			pad[i] = total / 2;
		}
	} else {
		lit_int_list(padding, pad, 2);
	}
	if (!fits_caffe(net, n, "padding", pad))
		return false;
	l = net_layer(net, n, "Convolution", NULL);
	p = PARAM(net, l, convolution_param, CONVOLUTION_PARAMETER);
	p->has_num_output = 1;
	p->num_output = (uint32_t)w->type.dims[0];
	if (!b) {
		p->has_bias_term = 1;
		p->bias_term = 0;
	}
	int64_t kernel[2] = {w->type.dims[2], w->type.dims[3]};
	conv_hw_field(net, &p->kernel_size, &p->n_kernel_size, &p->kernel_h, &p->has_kernel_h,
		      &p->kernel_w, &p->has_kernel_w, kernel, -1);
	conv_hw_field(net, &p->stride, &p->n_stride, &p->stride_h, &p->has_stride_h, &p->stride_w,
		      &p->has_stride_w, stride, 1);
	conv_hw_field(net, &p->pad, &p->n_pad, &p->pad_h, &p->has_pad_h, &p->pad_w, &p->has_pad_w,
		      pad, 0);
	if (dil[0] != 1 || dil[1] != 1) {
		p->n_dilation = dil[0] == dil[1] ? 1 : 2;
		p->dilation = arena_alloc(net->arena, 2 * sizeof(uint32_t));
		p->dilation[0] = (uint32_t)dil[0];
		p->dilation[1] = (uint32_t)dil[1];
	}
	if (groups != 1) {
		p->has_group = 1;
		p->group = (uint32_t)groups;
	}
	return connect_weighted(net, n, l, x, w, b);
}

/* conv_transpose2d: Deconvolution, whose weight layout (C_in, C_out/groups, kh, kw) is PyTorch's
 * and whose output is s·(in − 1) + d·(k − 1) + 1 − 2p per axis (runtime-facts S8).  PyTorch adds
 * output_padding rows at the end: Caffe cannot, so with output_padding the Deconvolution runs
 * unpadded and Slice crops keep PyTorch's rows [p, p + out) (the extra rows get contributions from
 * the kernel, so they are part of the unpadded output when op ≤ p).  OpenCV 4.6 ignores a
 * Deconvolution's dilation (S8): refused. */
static bool
lower_conv_transpose2d(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(conv_transpose2d, input)),
	      *w = arg_value(n, ARG(conv_transpose2d, weight)),
	      *b = arg_value(n, ARG(conv_transpose2d, bias));
	int64_t groups = arg_int(n, ARG(conv_transpose2d, groups));
	int64_t stride[2], pad[2], opad[2], dil[2];
	int64_t kernel[2], caffe_pad[2], full[4];
	Blob *x = blob_of(net, n, in), *y;
	const Type *out = &n->res[0].type;
	Layer *l;
	Caffe__ConvolutionParameter *p;

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only 4-D (N, C, H, W) inputs are supported");
	if (!need_param(net, n, w, "weight") || (b && !need_param(net, n, b, "bias")))
		return false;
	lit_int_list(op_arg(n, ARG(conv_transpose2d, stride)), stride, 2);
	lit_int_list(op_arg(n, ARG(conv_transpose2d, padding)), pad, 2);
	lit_int_list(op_arg(n, ARG(conv_transpose2d, output_padding)), opad, 2);
	lit_int_list(op_arg(n, ARG(conv_transpose2d, dilation)), dil, 2);
	if (!fits_caffe(net, n, "stride", stride) || !fits_caffe(net, n, "padding", pad) ||
	    !fits_caffe(net, n, "kernel", w->type.dims + 2))
		return false;
	if (dil[0] != 1 || dil[1] != 1)
		return refuse(net, n, "dilation=[%lld, %lld]: OpenCV 4.6 ignores a Deconvolution's "
			      "dilation", (long long)dil[0], (long long)dil[1]);
	for (int i = 0; i < 2; i++) {
		kernel[i] = w->type.dims[2 + i];
		if (opad[i] > pad[i])
			return refuse(net, n,
				      "output_padding %lld is larger than padding %lld: PyTorch's "
				      "last rows then hold the bias alone, which no crop of a "
				      "Deconvolution gives",
				      (long long)opad[i], (long long)pad[i]);
		/* with output_padding, run unpadded and crop */
		caffe_pad[i] = opad[i] ? 0 : pad[i];
	}
	l = net_layer(net, n, "Deconvolution", NULL);
	p = PARAM(net, l, convolution_param, CONVOLUTION_PARAMETER);
	p->has_num_output = 1;
	p->num_output = (uint32_t)(w->type.dims[1] * groups);
	if (!b) {
		p->has_bias_term = 1;
		p->bias_term = 0;
	}
	conv_hw_field(net, &p->kernel_size, &p->n_kernel_size, &p->kernel_h, &p->has_kernel_h,
		      &p->kernel_w, &p->has_kernel_w, kernel, -1);
	conv_hw_field(net, &p->stride, &p->n_stride, &p->stride_h, &p->has_stride_h, &p->stride_w,
		      &p->has_stride_w, stride, 1);
	conv_hw_field(net, &p->pad, &p->n_pad, &p->pad_h, &p->has_pad_h, &p->pad_w, &p->has_pad_w,
		      caffe_pad, 0);
	if (groups != 1) {
		p->has_group = 1;
		p->group = (uint32_t)groups;
	}
	layer_bottom(net, l, x);
	weight_from(net, l, w);
	if (b)
		weight_from(net, l, b);
	full[0] = out->dims[0];
	full[1] = out->dims[1];
	for (int i = 0; i < 2; i++)
		full[2 + i] = stride[i] * (in->type.dims[2 + i] - 1) + kernel[i] - 2 * caffe_pad[i];
	y = layer_top(net, l, f32_type(net, full, 4));
	/* PyTorch's rows [p, p + out) of the unpadded output: the first cut first, so that the last
	 * layer keeps its first top (what OpenCV's forward(layer) returns) */
	for (int a = 0; a < 2; a++) {
		int64_t skip = opad[a] ? pad[a] : 0, keep = out->dims[2 + a];
		Blob **parts;

		if (skip) {
			const char *role = a == 0 ? "cut_top" : "cut_left";
			parts = slice_layer(net, n, role, y, 2 + a, &skip, 1);
			parts[1]->discard = false;
			y = parts[1];
		}
		if (y->type.dims[2 + a] != keep) {
			parts = slice_layer(net, n, a == 0 ? "cut_bottom" : "cut_right", y, 2 + a,
					    &keep, 1);
			parts[0]->discard = false;
			y = parts[0];
		}
	}
	bind(net, &n->res[0], y);
	return true;
}

/* InnerProduct over the last axis.  Caffe flattens every axis from `axis` on (runtime-facts S4),
 * so a flatten feeding it can be dropped by fuse.c. */
static bool
lower_linear(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(linear, input)), *w = arg_value(n, ARG(linear, weight)),
	      *b = arg_value(n, ARG(linear, bias));
	Blob *x = blob_of(net, n, in);
	Layer *l;
	Caffe__InnerProductParameter *p;

	if (!x)
		return false;
	if (!need_param(net, n, w, "weight") || (b && !need_param(net, n, b, "bias")))
		return false;
	if (in->type.ndim < 2)
		return refuse(net, n, "the input needs a batch axis (rank >= 2)");
	l = net_layer(net, n, "InnerProduct", NULL);
	p = PARAM(net, l, inner_product_param, INNER_PRODUCT_PARAMETER);
	p->has_num_output = 1;
	p->num_output = (uint32_t)w->type.dims[0];
	if (!b) {
		p->has_bias_term = 1;
		p->bias_term = 0;
	}
	if (in->type.ndim != 2) {
		p->has_axis = 1;
		p->axis = in->type.ndim - 1;
	}
	return connect_weighted(net, n, l, x, w, b);
}

enum { MATMUL_MAX_PRODUCTS = 1 << 24 };

/* matmul, mm and bmm: a (…, M, K) times b (…, K, P), with equal leading axes (N, then G more).
 * With b a 2-D parameter: an InnerProduct on the last axis, weight bᵀ.  Otherwise every product
 * a[m, k]·b[k, p] is formed and summed (runtime-facts S14): a viewed as (N, G·M, 1, K) and repeated
 * over P, b swapped to (N, G, P, K), viewed as (N, G, 1, P·K) and repeated over M (broadcast_to:
 * weight-1 copies), an Eltwise PROD, AVE Pooling over K times K (the sum, within an ulp or two of
 * a dot product's rounding), a Reshape.  The products take N·G·M·P·K floats: refused above 16M. */
_Static_assert(ARG(matmul, other) == ARG(mm, mat2) && ARG(mm, mat2) == ARG(bmm, mat2),
	       "lower_matmul reads matmul's slots");
static bool
lower_matmul(Net *net, Node *n)
{
	Value *av = arg_value(n, ARG(matmul, input)), *bv = arg_value(n, ARG(matmul, other));
	const Type *at = &av->type, *bt = &bv->type, *out = &n->res[0].type;
	int64_t nb = 1, g = 1, m, k, p, products;
	Blob *a, *b;
	int ra = at->ndim, rb = bt->ndim;

	if (ra < 2 || rb < 2)
		return refuse(net, n,
			      "a 1-D operand is not lowered (reshape it to a matrix first)");
	if (is_param(bv) && rb == 2) {
		Layer *l;
		Caffe__InnerProductParameter *ip;
		const float *src = param_data(net, bv);
		float *w = constant_weight(net, n, 0, bt->dims[0], bt->dims[1], 1);
		int64_t wdims[2] = {bt->dims[1], bt->dims[0]};

		if (!w || !(a = blob_of(net, n, av)))
			return false;
		for (int64_t i = 0; src && i < bt->dims[0]; i++)
			for (int64_t j = 0; j < bt->dims[1]; j++)
				w[j * bt->dims[0] + i] = src[i * bt->dims[1] + j];
		l = net_layer(net, n, "InnerProduct", NULL);
		ip = PARAM(net, l, inner_product_param, INNER_PRODUCT_PARAMETER);
		ip->has_num_output = ip->has_bias_term = ip->has_axis = 1;
		ip->num_output = (uint32_t)bt->dims[1];
		ip->bias_term = 0;
		ip->axis = ra - 1;
		layer_bottom(net, l, a);
		layer_weight(net, l, net->with_weights ? w : NULL, numel_of(bt), wdims, 2);
		bind(net, &n->res[0], layer_top(net, l, *out));
		return true;
	}
	if (ra != rb || ra > 4 ||
	    memcmp(at->dims, bt->dims, sizeof(int64_t) * (size_t)(ra - 2)) != 0)
		return refuse(net, n,
			      "only operands of equal rank (2 to 4) and equal leading axes are "
			      "lowered (no broadcasting of the batch axes)");
	if (ra > 2)
		nb = at->dims[0];
	if (ra > 3)
		g = at->dims[1];
	m = at->dims[ra - 2];
	k = at->dims[ra - 1];
	p = bt->dims[rb - 1];
	if (!ck_mul(nb, g, &products) || !ck_mul(products, m, &products) ||
	    !ck_mul(products, p, &products) || !ck_mul(products, k, &products))
		products = INT64_MAX;
	if (products > MATMUL_MAX_PRODUCTS)
		return refuse(net, n,
			      "forming its %lld products would take more than %d floats; Caffe has "
			      "no layer that multiplies two computed tensors",
			      (long long)products, MATMUL_MAX_PRODUCTS);
	if (!(a = blob_of(net, n, av)) || !(b = blob_of(net, n, bv)))
		return false;
	int64_t a_view[4] = {nb, g * m, 1, k}, b_view[4] = {nb, g, 1, p * k},
		full[4] = {nb, g * m, p, k}, b_full[4] = {nb, g, m, p * k}, cols[4] = {nb, g, k, p};
	Type full_t = f32_type(net, full, 4), b_full_t = f32_type(net, b_full, 4);

	a = broadcast_to(net, n, reshape_layer(net, n, "rows", a, a_view, 4), &full_t);
	b = swap_blocks(net, n, reshape_layer(net, n, "columns", b, cols, 4), nb, g, k, p, 1);
	b = broadcast_to(net, n, reshape_layer(net, n, "columns_flat", b, b_view, 4), &b_full_t);
	b = reshape_layer(net, n, "columns_full", b, full, 4);
	a = eltwise_layer(net, n, "products", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, a, b, 1);
	a = pooling_layer(net, n, "mean", a, CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE,
			  (int64_t[2]){1, k}, (int64_t[2]){1, 1}, (int64_t[2]){0, 0}, false);
	if (k > 1)
		a = power_layer(net, n, "sum", a, 1, (double)k, 0);
	bind(net, &n->res[0], reshape_layer(net, n, NULL, a, out->dims, out->ndim));
	return true;
}

/* ---- normalisation --------------------------------------------------------------------------- */

/* batch_norm in eval mode: BatchNorm with blobs (running_mean, running_var, [1]) (runtime-facts
 * S5), then a Scale with (weight, bias) when the op is affine. */
static bool
lower_batch_norm(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(batch_norm, input)),
	      *mean = arg_value(n, ARG(batch_norm, running_mean)),
	      *var = arg_value(n, ARG(batch_norm, running_var));
	Value *w = arg_value(n, ARG(batch_norm, weight)), *b = arg_value(n, ARG(batch_norm, bias));
	double eps = arg_float(n, ARG(batch_norm, eps));
	Blob *x = blob_of(net, n, in), *y;
	Layer *l;
	Caffe__BatchNormParameter *p;
	int64_t one = 1, channels;

	if (!x)
		return false;
	if (arg_bool(n, ARG(batch_norm, training)))
		return refuse(net, n,
			      "training=true normalises with the batch's own statistics; record "
			      "the model in eval mode");
	if (!mean || !var)
		return refuse(net, n,
			      "running statistics are required (track_running_stats=False has no "
			      "Caffe form)");
	if (!need_param(net, n, mean, "running_mean") || !need_param(net, n, var, "running_var") ||
	    (w && !need_param(net, n, w, "weight")) || (b && !need_param(net, n, b, "bias")))
		return false;
	if (in->type.ndim < 2)
		return refuse(net, n, "the input needs a channel axis (rank >= 2)");
	channels = in->type.dims[1];
	l = net_layer(net, n, "BatchNorm", NULL);
	p = PARAM(net, l, batch_norm_param, BATCH_NORM_PARAMETER);
	p->has_use_global_stats = 1;
	p->use_global_stats = 1;
	if ((float)eps != 1e-5f) {
		p->has_eps = 1;
		p->eps = (float)eps;
	}
	layer_bottom(net, l, x);
	weight_from(net, l, mean);
	weight_from(net, l, var);
	layer_weight(net, l, constant_weight(net, n, 1, 1, 1, 1), 1, &one, 1);
	y = layer_top(net, l, n->res[0].type);
	if (w || b) {
		Layer *s = net_layer(net, n, "Scale", "scale");
		Caffe__ScaleParameter *sp = PARAM(net, s, scale_param, SCALE_PARAMETER);
		if (b) {
			sp->has_bias_term = 1;
			sp->bias_term = 1;
		}
		layer_bottom(net, s, y);
		if (w)
			weight_from(net, s, w);
		else
			layer_weight(net, s, constant_weight(net, n, 1, channels, 1, 1), channels,
				     &channels, 1);
		if (b)
			weight_from(net, s, b);
		y = layer_top(net, s, n->res[0].type);
	}
	bind(net, &n->res[0], y);
	return true;
}

/* x of shape (A, B, L, M) normalised over axis 2 as PyTorch's norms do, (x − mean)/sqrt(var + eps)
 * with the biased variance: mean = AVE Pooling over a (L, 1) window, repeated back over L by a
 * depthwise weight-1 Deconvolution (runtime-facts S11), d = x − mean (Eltwise SUM, coeff −1), and
 * once more d − mean(d): Pooling sums in order, so the first mean is off by up to L ulps of |x|,
 * which ruins rows whose variance is tiny against their mean (the random models found a row
 * 100× further from float64 than PyTorch); the second mean is of small residuals, and the two
 * passes are as accurate as PyTorch's own, var =
 * the pooled d² (Power 2), 1/sqrt(var + eps) = Power{power: −0.5, shift: eps} (Caffe's Power is
 * (shift + scale·x)^power), repeated over L, times d (Eltwise PROD).  Not MVN: Caffe's MVN divides
 * by sqrt(var) + eps, which differs from sqrt(var + eps) by far more than rounding when var is
 * small. */
static Blob *
normalise_axis2(Net *net, const Node *n, Blob *x, double eps)
{
	int64_t b = x->type.dims[1], l = x->type.dims[2], k[2] = {l, 1}, one[2] = {1, 1},
		zero[2] = {0, 0};
	Blob *mean, *d, *var, *r;
	int ave = CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE;

	d = x;
	for (int pass = 0; pass < 2; pass++) {
		mean = pooling_layer(net, n, pass ? "residual_mean" : "mean", d, ave, k, one, zero,
				     false);
		mean = convolution(net, n, pass ? "repeat_residual" : "repeat_mean", true, mean, b,
				   b, k, one, zero, constant_weight(net, n, 1, b, l, 1));
		d = eltwise_layer(net, n, pass ? "recentre" : "centre",
				  CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, d, mean, -1);
	}
	var = power_layer(net, n, "square", d, 2, 1, 0);
	var = pooling_layer(net, n, "variance", var, ave, k, one, zero, false);
	r = power_layer(net, n, "rstd", var, -0.5, 1, eps);
	r = convolution(net, n, "repeat_rstd", true, r, b, b, k, one, zero,
			constant_weight(net, n, 1, b, l, 1));
	return eltwise_layer(net, n, "normalised", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, d, r,
			     1);
}

/* The affine part of a norm: a Scale along `axis` of y with the weight (ones without one) and the
 * bias, when either is given.  Their data must be parameters. */
static Blob *
norm_affine(Net *net, const Node *n, Blob *y, int axis, const Value *w, const Value *b)
{
	int64_t c = y->type.dims[axis];

	if (!w && !b)
		return y;

	const void *wd = w ? param_bytes(net, w) : constant_weight(net, n, 1, c, 1, 1);

	return scale_layer(net, n, "affine", y, axis, wd, b != NULL,
			   b ? param_bytes(net, b) : NULL);
}

/* group_norm and instance_norm (its groups are the channels) of (N, C, *): x viewed as (N, G,
 * C/G·S, 1) and normalised over axis 2 (normalise_axis2), viewed as (N, C, S, 1) for the
 * per-channel affine Scale, then given n's shape. */
static bool
lower_group_norm(Net *net, Node *n)
{
	bool inst = n->op == OP_instance_norm;
	Value *in = arg_value(n, inst ? ARG(instance_norm, input) : ARG(group_norm, input));
	Value *w = arg_value(n, inst ? ARG(instance_norm, weight) : ARG(group_norm, weight));
	Value *b = arg_value(n, inst ? ARG(instance_norm, bias) : ARG(group_norm, bias));
	double eps = arg_float(n, inst ? ARG(instance_norm, eps) : ARG(group_norm, eps));
	const Type *out = &n->res[0].type;
	Blob *x = blob_of(net, n, in);
	int64_t nb, c, g, s = 1, grouped[4], chans[4];

	if (!x)
		return false;
	if (inst && !arg_bool(n, ARG(instance_norm, use_input_stats)))
		return refuse(net, n,
			      "use_input_stats=false normalises with running statistics: "
			      "batch_norm's form, not recorded as one");
	if ((w && !need_param(net, n, w, "weight")) || (b && !need_param(net, n, b, "bias")))
		return false;
	if (in->type.ndim < 2 || in->type.ndim > 4)
		return refuse(net, n, "only inputs of rank 2 to 4 are lowered");
	nb = in->type.dims[0];
	c = in->type.dims[1];
	g = inst ? c : arg_int(n, ARG(group_norm, num_groups));
	for (int i = 2; i < in->type.ndim; i++)
		s *= in->type.dims[i];
	if (s * (c / g) == 1)
		return refuse(net, n,
			      "each group holds one element: PyTorch's result is 0 (or the bias), "
			      "a constant");
	memcpy(grouped, (int64_t[4]){nb, g, c / g * s, 1}, sizeof grouped);
	memcpy(chans, (int64_t[4]){nb, c, s, 1}, sizeof chans);
	x = reshape_layer(net, n, "groups", x, grouped, 4);
	x = normalise_axis2(net, n, x, eps);
	if (w || b)
		x = norm_affine(net, n, reshape_layer(net, n, "channels", x, chans, 4), 1, w, b);
	bind(net, &n->res[0], reshape_layer(net, n, NULL, x, out->dims, out->ndim));
	return true;
}

/* layer_norm over the last k axes of x (rank 2 to 4): viewed as (N, B, L, 1), B the axes between
 * the batch and the normalised ones, L the normalised count; normalise_axis2; the affine weight and
 * bias (normalized_shape, L elements) as a Scale along axis 2. */
static bool
lower_layer_norm(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(layer_norm, input));
	Value *w = arg_value(n, ARG(layer_norm, weight)), *b = arg_value(n, ARG(layer_norm, bias));
	const Lit *shape = op_arg(n, ARG(layer_norm, normalized_shape));
	int k = shape->kind == L_LIST ? (int)shape->n : 1, rank = in->type.ndim;
	int64_t view[4] = {1, 1, 1, 1};
	const Type *out = &n->res[0].type;
	Blob *x = blob_of(net, n, in);
	double eps = arg_float(n, ARG(layer_norm, eps));

	if (!x)
		return false;
	if ((w && !need_param(net, n, w, "weight")) || (b && !need_param(net, n, b, "bias")))
		return false;
	if (rank < 2 || rank > 4 || k >= rank)
		return refuse(net, n,
			      "only the last axes of a tensor of rank 2 to 4, its batch axis kept, "
			      "are lowered");
	view[0] = in->type.dims[0];
	for (int i = 1; i < rank; i++)
		view[i < rank - k ? 1 : 2] *= in->type.dims[i];
	if (view[2] == 1)
		return refuse(net, n,
			      "the normalised axes hold one element: PyTorch's result is 0 (or the "
			      "bias), a constant");
	x = reshape_layer(net, n, "rows", x, view, 4);
	x = norm_affine(net, n, normalise_axis2(net, n, x, eps), 2, w, b);
	bind(net, &n->res[0], reshape_layer(net, n, NULL, x, out->dims, out->ndim));
	return true;
}

/* ---- activations ----------------------------------------------------------------------------- */

static bool
lower_relu(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(relu, input)));
	double slope = 0;

	if (!x)
		return false;
	if (op_base(n->op) == OP_leaky_relu)
		slope = arg_float(n, ARG(leaky_relu, negative_slope));
	bind(net, &n->res[0], relu_layer(net, n, NULL, x, slope));
	return true;
}

/* n as one parameterless layer of `type` when the target has that type (OpenCV's Swish,
 * HardSwish); false, with nothing emitted, when it does not. */
static bool
own_layer(Net *net, Node *n, Blob *x, const char *type)
{
	Blob *top;

	if (!target_has(net, type))
		return false;
	unary_layer(net, n, type, NULL, x, x->type, &top);
	bind(net, &n->res[0], top);
	return true;
}

/* x clamped to [lo, hi] (lo = −inf or hi = +inf: that side open, lo < hi): OpenCV's ReLU6 where
 * the target has it and the range is [0, 6] (one layer for clamp_chain's four), else clamp_chain;
 * `role` names the last layer. */
static Blob *
clamp_layers(Net *net, const Node *n, Blob *x, double lo, double hi, const char *role)
{
	Blob *top;

	if (lo == 0 && hi == 6 && target_has(net, "ReLU6")) {
		unary_layer(net, n, "ReLU6", role, x, x->type, &top);
		return top;
	}
	return clamp_chain(net, n, x, lo, hi, role);
}

/* x clamped to [lo, hi], checked first: clamp_layers.  `names` spells the bounds in messages. */
static bool
clamp_to(Net *net, Node *n, double lo, double hi, const char *const names[2])
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(hardtanh, input)));

	if (!x)
		return false;
	if (isnan(lo) || isnan(hi))
		return refuse(net, n, "%s is nan: every element becomes nan",
			      names[isnan(lo) ? 0 : 1]);
	if (!(lo < hi) || lo == INFINITY || hi == -INFINITY)
		return refuse(net, n,
			      "%s (%g) is not below %s (%g): PyTorch returns %g everywhere then, "
			      "and ptcc lowers only %s < %s",
			      names[0], lo, names[1], hi, hi, names[0], names[1]);
	if (lo == -INFINITY && hi == INFINITY) { /* nothing to clamp */
		bind(net, &n->res[0], x);
		return true;
	}
	bind(net, &n->res[0], clamp_layers(net, n, x, lo, hi, NULL));
	return true;
}
_Static_assert(ARG(relu6, input) == ARG(hardtanh, input) &&
		       ARG(clamp, input) == ARG(hardtanh, input) &&
		       ARG(clip, input) == ARG(hardtanh, input),
	       "clamp_to reads hardtanh's input slot");

static const char *const hardtanh_bounds[2] = {"min_val", "max_val"};

static bool
lower_hardtanh(Net *net, Node *n)
{
	return clamp_to(net, n, arg_float(n, ARG(hardtanh, min_val)),
			arg_float(n, ARG(hardtanh, max_val)), hardtanh_bounds);
}

static bool
lower_relu6(Net *net, Node *n)
{
	return clamp_to(net, n, 0, 6, hardtanh_bounds);
}

/* clamp and clip, with one bound or both (none is PyTorch's error too). */
static bool
lower_clamp(Net *net, Node *n)
{
	static const char *const bounds[2] = {"min", "max"};
	const Lit *min = op_arg(n, ARG(clamp, min)), *max = op_arg(n, ARG(clamp, max));
	double lo = -INFINITY, hi = INFINITY;

	if (min->kind == L_NONE && max->kind == L_NONE)
		return refuse(net, n, "at least one of min and max is needed");
	if (min->kind != L_NONE)
		lit_as_float(min, &lo);
	if (max->kind != L_NONE)
		lit_as_float(max, &hi);
	return clamp_to(net, n, lo, hi, bounds);
}
_Static_assert(ARG(clamp, min) == ARG(clip, min) && ARG(clamp, max) == ARG(clip, max),
	       "lower_clamp reads clamp's slots");

/* One-layer neurons (sigmoid, tanh, abs, exp, log, elu, softplus): the one layer type of the op's
 * row in ops.def (Sigmoid, TanH, AbsVal, Exp, Log, ELU, BNLL). */
static bool
lower_neuron(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(sigmoid, input))), *top;
	int op = op_base(n->op);
	Layer *l;

	if (!x)
		return false;
	if (op == OP_softplus) {
		/* BNLL is log(1 + e^x); PyTorch returns x itself above the threshold t, off from
		 * BNLL by log(1 + e^-x) < e^-t there: exact only while that is below x's float32
		 * rounding, 2^-24·t (the default t = 20 gives 2e-9 against 1.2e-6; a small t was
		 * lowered wrong, found by the random-model tests) */
		if (arg_float(n, ARG(softplus, beta)) != 1)
			return refuse(net, n, "beta=%g: only beta=1 (BNLL) is exact",
				      arg_float(n, ARG(softplus, beta)));
		if (exp(-arg_float(n, ARG(softplus, threshold))) >
		    ldexp(fmax(arg_float(n, ARG(softplus, threshold)), 1), -24))
			return refuse(net, n,
				      "threshold=%g: PyTorch returns x above it, BNLL log(1 + "
				      "e^x), which differs by up to %.2g there; only a threshold "
				      "of about 14 or more is exact",
				      arg_float(n, ARG(softplus, threshold)),
				      log1p(exp(-arg_float(n, ARG(softplus, threshold)))));
	}
	l = unary_layer(net, n, lowering[op].layers, NULL, x, n->res[0].type, &top);
	if (op == OP_elu) {
		Caffe__ELUParameter *p = PARAM(net, l, elu_param, ELUPARAMETER);
		double alpha = arg_float(n, ARG(elu, alpha));
		if (alpha != 1) {
			p->has_alpha = 1;
			p->alpha = (float)alpha;
		}
	}
	bind(net, &n->res[0], top);
	return true;
}

/* sqrt, rsqrt, reciprocal and pow(x, number): one Power{power: p} (Caffe's Power is (shift +
 * scale·x)^p, computed by the C library's pow as PyTorch's is).  A tensor exponent or a number
 * raised to a tensor has no Caffe form. */
static bool
lower_power(Net *net, Node *n)
{
	int op = op_base(n->op);
	const Lit *base = op_arg(n, ARG(sqrt, input));
	double p = op == OP_sqrt ? 0.5 : op == OP_rsqrt ? -0.5 : -1;
	Blob *x;

	if (op == OP_pow &&
	    (base->kind != L_VALUE || !lit_as_float(op_arg(n, ARG(pow, exponent)), &p)))
		return refuse(net, n,
			      "only a tensor raised to a number is lowered (Power); a tensor "
			      "exponent has no Caffe form");
	if (!(x = blob_of(net, n, base->u.v)))
		return false;
	bind(net, &n->res[0], power_layer(net, n, NULL, x, p, 1, 0));
	return true;
}

/* softsign(x) = x/(1 + |x|): AbsVal, Power{shift: 1, power: −1}, Eltwise PROD (a reciprocal and a
 * product where PyTorch divides once: within an ulp or two). */
static bool
lower_softsign(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(softsign, input))), *r, *top;

	if (!x)
		return false;
	unary_layer(net, n, "AbsVal", "abs", x, x->type, &r);
	r = power_layer(net, n, "reciprocal", r, -1, 1, 1);
	top = eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, r, 1);
	bind(net, &n->res[0], top);
	return true;
}

/* mish(x) = x·tanh(softplus(x)): BNLL (softplus, runtime-facts S1), TanH, Eltwise PROD.  PyTorch's
 * softplus returns x itself above 20, where BNLL's log(1 + e^x) differs by e^-20, far below
 * x's rounding. */
static bool
lower_mish(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(mish, input))), *t;

	if (!x)
		return false;
	unary_layer(net, n, "BNLL", "softplus", x, x->type, &t);
	unary_layer(net, n, "TanH", "tanh", t, x->type, &t);
	bind(net, &n->res[0],
	     eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, t, 1));
	return true;
}

/* celu(x, α) = α·elu(x/α): ELU alone when α = 1, else Power{scale: 1/α}, ELU, Power{scale: α}
 * (two roundings more than PyTorch's expm1(x/α)·α: within ulps). */
static bool
lower_celu(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(celu, input))), *y;
	double alpha = arg_float(n, ARG(celu, alpha));

	if (!x)
		return false;
	if (alpha == 0)
		return refuse(net, n, "alpha=0 divides by zero (PyTorch's result is not finite)");
	y = alpha == 1 ? x : power_layer(net, n, "scale_in", x, 1, 1 / alpha, 0);
	unary_layer(net, n, "ELU", alpha == 1 ? NULL : "elu", y, x->type, &y);
	if (alpha != 1)
		y = power_layer(net, n, NULL, y, 1, alpha, 0);
	bind(net, &n->res[0], y);
	return true;
}

/* erf(scale·|x|) for the blob ax = |x|.  No Caffe layer computes erf; Abramowitz and Stegun's
 * 7.1.26, erf(u) = 1 − (a1·t + … + a5·t⁵)·e^(−u²), t = 1/(1 + p·u) for u ≥ 0, is within 1.5e-7
 * of it (about one float32 ulp of erf's range), so results are within rounding of PyTorch's
 * (runtime-facts S15): Power for t, Horner's rule in Power and Eltwise PROD, Power and Exp for
 * e^(−u²), Power for 1 − the rest. */
static Blob *
erf_of_abs(Net *net, Node *n, Blob *ax, double scale)
{
	static const double p = 0.3275911, a[5] = {0.254829592, -0.284496736, 1.421413741,
						   -1.453152027, 1.061405429};
	int prod = CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD;
	Blob *t, *q, *e;

	t = power_layer(net, n, "t", ax, -1, p * scale, 1);
	q = power_layer(net, n, "horner", t, 1, a[4], a[3]);
	for (int i = 2; i >= 0; i--) {
		q = eltwise_layer(net, n, "horner_times_t", prod, q, t, 1);
		q = power_layer(net, n, "horner", q, 1, 1, a[i]);
	}
	q = eltwise_layer(net, n, "polynomial", prod, q, t, 1);
	e = power_layer(net, n, "half_square", ax, 2, scale, 0);
	e = power_layer(net, n, "negated", e, 1, -1, 0);
	unary_layer(net, n, "Exp", "gauss", e, ax->type, &e);
	q = eltwise_layer(net, n, "tail", prod, q, e, 1);
	return power_layer(net, n, "erf", q, 1, -1, 1);
}

/* gelu(x) = x·Φ(x) = 0.5·x + 0.5·|x|·erf(|x|/√2), with no sign to take: AbsVal, erf_of_abs,
 * Eltwise for the rest. */
static bool
gelu_erf(Net *net, Node *n, Blob *x)
{
	int prod = CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD;
	Blob *ax, *q;

	unary_layer(net, n, "AbsVal", "abs", x, x->type, &ax);
	q = erf_of_abs(net, n, ax, 0.70710678118654752);              /* erf(|x|/√2) */
	q = eltwise_layer(net, n, "abs_times_erf", prod, ax, q, 1);
	q = eltwise_layer(net, n, "sum", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, x, q, 1);
	bind(net, &n->res[0], power_layer(net, n, NULL, q, 1, 0.5, 0));
	return true;
}

/* erf(x) = sign(x)·erf(|x|), erf odd.  Caffe has no sign; x·(|x| + 1e-30)^−1 is sign(x) to
 * within an ulp for |x| ≥ 1e-23 and 0 at 0, and below that erf(|x|)·it differs from erf(x) by
 * under 2e-23: AbsVal, erf_of_abs, Power{power: −1, shift: 1e-30} and two Eltwise PRODs. */
static bool
lower_erf(Net *net, Node *n)
{
	int prod = CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD;
	Blob *x = blob_of(net, n, arg_value(n, ARG(erf, input))), *ax, *q, *r;

	if (!x)
		return false;
	unary_layer(net, n, "AbsVal", "abs", x, x->type, &ax);
	q = erf_of_abs(net, n, ax, 1);
	r = power_layer(net, n, "inverse_abs", ax, -1, 1, 1e-30);
	r = eltwise_layer(net, n, "sign", prod, x, r, 1);
	bind(net, &n->res[0], eltwise_layer(net, n, NULL, prod, q, r, 1));
	return true;
}

/* gelu(x, approximate="tanh") = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): Power{power: 3,
 * scale: 0.044715^⅓} gives 0.044715·x³, Eltwise SUM adds x, TanH of it scaled by √(2/π)
 * (Power), Power{shift: 1}, Eltwise PROD with x, Power{scale: 0.5}: PyTorch's formula, rounded
 * step by step as PyTorch does.  The default (erf) form: gelu_erf. */
static bool
lower_gelu(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(gelu, input))), *c, *t;
	const Lit *mode = op_arg(n, ARG(gelu, approximate));

	if (!x)
		return false;
	if (mode->kind == L_STR && strcmp(mode->u.s, "none") == 0)
		return gelu_erf(net, n, x);
	if (mode->kind != L_STR || strcmp(mode->u.s, "tanh") != 0)
		return refuse(net, n, "approximate must be \"none\" or \"tanh\"");
	c = power_layer(net, n, "cube", x, 3, cbrt(0.044715), 0);
	c = eltwise_layer(net, n, "inner", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, x, c, 1);
	c = power_layer(net, n, "scaled", c, 1, 0.79788456080286536, 0); /* √(2/π) */
	unary_layer(net, n, "TanH", "tanh", c, x->type, &t);
	t = power_layer(net, n, "one_plus", t, 1, 1, 1);
	t = eltwise_layer(net, n, "times_x", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, t, 1);
	bind(net, &n->res[0], power_layer(net, n, NULL, t, 1, 0.5, 0));
	return true;
}

/* neg(x) = −x: Power{scale: −1} (one exact product). */
static bool
lower_neg(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(neg, input)));

	if (!x)
		return false;
	bind(net, &n->res[0], power_layer(net, n, NULL, x, 1, -1, 0));
	return true;
}

/* prelu(x, a) = max(0, x) + a·min(0, x) with a per channel (axis 1) or one shared slope: PReLU
 * (one product: exact).  A shared slope is a blob with no shape field, which BVLC reads as its
 * 0-d blob and OpenCV as a scalar (runtime-facts S10). */
static bool
lower_prelu(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(prelu, input)), *w = arg_value(n, ARG(prelu, weight));
	Blob *x = blob_of(net, n, in), *top;
	Layer *l;

	if (!x)
		return false;
	if (!need_param(net, n, w, "weight"))
		return false;
	if (in->type.ndim < 2)
		return refuse(net, n, "the input needs a channel axis (rank >= 2)");
	l = unary_layer(net, n, "PReLU", NULL, x, n->res[0].type, &top);
	if (numel_of(&w->type) == 1) {
		Caffe__PReLUParameter *p = PARAM(net, l, prelu_param, PRE_LUPARAMETER);
		p->has_channel_shared = 1;
		p->channel_shared = 1;
		layer_weight(net, l, param_bytes(net, w), 1, NULL, -1);
	} else {
		int64_t c = in->type.dims[1];
		layer_weight(net, l, param_bytes(net, w), c, &c, 1);
	}
	bind(net, &n->res[0], top);
	return true;
}

/* selu(x) = λ·elu(x, α) with PyTorch's constants: ELU then Power{scale: λ}.  Positive x: one
 * product, as PyTorch; negative x: (eˣ − 1)·α then ·λ, where PyTorch multiplies once by α·λ (within
 * an ulp or two). */
static bool
lower_selu(Net *net, Node *n)
{
	static const double alpha = 1.6732632423543772848170429916717;
	static const double lambda = 1.0507009873554804934193349852946;
	Blob *x = blob_of(net, n, arg_value(n, ARG(selu, input))), *top;
	Layer *l;
	Caffe__ELUParameter *p;

	if (!x)
		return false;
	l = unary_layer(net, n, "ELU", "elu", x, x->type, &top);
	p = PARAM(net, l, elu_param, ELUPARAMETER);
	p->has_alpha = 1;
	p->alpha = (float)alpha;
	bind(net, &n->res[0], power_layer(net, n, NULL, top, 1, lambda, 0));
	return true;
}

/* silu(x) = x · sigmoid(x) */
static bool
lower_silu(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(silu, input))), *s;

	if (!x)
		return false;
	if (own_layer(net, n, x, "Swish"))
		return true;
	unary_layer(net, n, "Sigmoid", "sigmoid", x, x->type, &s);
	bind(net, &n->res[0],
	     eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, s, 1));
	return true;
}

/* hardsigmoid(x) = relu6(x + 3) / 6 on stock layers (docs/runtime-facts.md), the clamp as ReLU6
 * where the target has it; `role` names the last. */
static Blob *
hard_sigmoid_chain(Net *net, const Node *n, Blob *x, const char *role)
{
	Blob *t = power_layer(net, n, "plus3", x, 1, 1, 3);

	t = clamp_layers(net, n, t, 0, 6, "clip");
	return power_layer(net, n, role, t, 1, 1.0 / 6, 0);
}

static bool
lower_hardsigmoid(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(hardsigmoid, input)));

	if (!x)
		return false;
	bind(net, &n->res[0], hard_sigmoid_chain(net, n, x, NULL));
	return true;
}

/* hardswish(x) = x · hardsigmoid(x): OpenCV's HardSwish, or the product with the chain. */
static bool
lower_hardswish(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(hardswish, input))), *t;

	if (!x)
		return false;
	if (own_layer(net, n, x, "HardSwish"))
		return true;
	t = hard_sigmoid_chain(net, n, x, "div6");
	bind(net, &n->res[0],
	     eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, t, 1));
	return true;
}

static bool
lower_softmax(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(softmax, input));
	Blob *x = blob_of(net, n, in), *top;
	int rank = in ? in->type.ndim : 0, axis;
	Layer *l;

	if (!x)
		return false;
	if (!arg_is_none(n, ARG(softmax, dtype)))
		return refuse(net, n, "a dtype conversion has no Caffe form");
	/* dim=None is PyTorch's legacy implicit dim: 0 for ranks 0, 1 and 3, else 1 */
	axis = arg_is_none(n, ARG(softmax, dim)) ? (rank == 0 || rank == 1 || rank == 3 ? 0 : 1)
						 : axis_of(arg_int(n, ARG(softmax, dim)), rank);
	l = unary_layer(net, n, "Softmax", NULL, x, n->res[0].type, &top);
	if (axis != 1) {
		Caffe__SoftmaxParameter *p = PARAM(net, l, softmax_param, SOFTMAX_PARAMETER);
		p->has_axis = 1;
		p->axis = axis;
	}
	bind(net, &n->res[0], top);
	return true;
}

/* ---- pooling --------------------------------------------------------------------------------- */




/* Max pooling may return indices as a second result; only their use has no Caffe form. */
static bool
indices_used(const Node *n)
{
	return n->nres > 1 && (n->res[1].nuse > 0 || (n->res[1].flags & V_OUTPUT));
}


/* BVLC drops a last window that starts past the input from *both* axes when either axis is
 * padded (pooling_layer.cpp tests `pad_h_ || pad_w_`), OpenCV and PyTorch only from a padded
 * axis, so with one axis padded the runtimes disagree on the other's size (found by the
 * random-model tests: BVLC aborted on the crop).  On an unpadded axis where Caffe's ceil
 * rounding would add such a window, cut the input to the rows PyTorch's windows cover: no window
 * is lost, the rows cut are read by none, and every runtime then counts PyTorch's windows
 * exactly. */
static Blob *
cut_unpadded_overshoot(Net *net, const Node *n, Blob *x, const int64_t k[2], const int64_t s[2],
                       const int64_t p[2])
{
	static const char *const role[2] = {"cut_h", "cut_w"};

	for (int a = 0; a < 2; a++) {
		int64_t h = x->type.dims[2 + a], want = n->res[0].type.dims[2 + a],
			cover = (want - 1) * s[a] + k[a];
		if (p[a] != 0 || p[1 - a] == 0 || h < k[a])
			continue;
		int64_t windows = (h - k[a] + s[a] - 1) / s[a] + 1; /* Caffe's ceil count, before
		                                                       any drop */
		if ((windows - 1) * s[a] < h || cover >= h)
			continue;
		Blob **parts = slice_layer(net, n, role[a], x, 2 + a, &cover, 1);
		parts[0]->discard = false;
		x = parts[0];
	}
	return x;
}

_Static_assert(ARG(max_pool2d, kernel_size) == ARG(avg_pool2d, kernel_size) &&
		       ARG(max_pool2d, stride) == ARG(avg_pool2d, stride) &&
		       ARG(max_pool2d, padding) == ARG(avg_pool2d, padding),
	       "lower_pool2d reads max_pool2d's slots");
static bool
lower_pool2d(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(max_pool2d, input));
	Blob *x = blob_of(net, n, in), *y;
	bool avg = n->op == OP_avg_pool2d;
	int method = avg ? CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE
			 : CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
	int64_t k[2], s[2], p[2], d[2] = {1, 1};

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only 4-D (N, C, H, W) inputs are supported");
	lit_int_list(op_arg(n, ARG(max_pool2d, kernel_size)), k, 2);
	/* stride none, or [] as at::max_pool2d receives it (autograd's saved stride), is the
	 * kernel: sh_pool's rule */
	if (arg_is_none(n, ARG(max_pool2d, stride)) ||
	    (op_arg(n, ARG(max_pool2d, stride))->kind == L_LIST &&
	     op_arg(n, ARG(max_pool2d, stride))->n == 0))
		memcpy(s, k, sizeof s);
	else
		lit_int_list(op_arg(n, ARG(max_pool2d, stride)), s, 2);
	lit_int_list(op_arg(n, ARG(max_pool2d, padding)), p, 2);
	if (!fits_caffe(net, n, "kernel_size", k) || !fits_caffe(net, n, "stride", s) ||
	    !fits_caffe(net, n, "padding", p))
		return false;
	if (!avg) {
		lit_int_list(op_arg(n, ARG(max_pool2d, dilation)), d, 2);
		if (d[0] != 1 || d[1] != 1)
			return refuse(net, n,
				      "dilation=[%lld, %lld]: Caffe pooling has no dilation",
				      (long long)d[0], (long long)d[1]);
		if (indices_used(n))
			return refuse(net, n,
				      "the indices of return_indices=true are used; Caffe pooling "
				      "gives none");
	}
	if (avg && !arg_is_none(n, ARG(avg_pool2d, divisor_override)))
		return refuse(net, n, "divisor_override has no Caffe form");
	/* PyTorch's floor rounding, where Caffe's ceil counts another window, by the layer's own
	 * field where the target's runtime has one (fields.def); else Caffe's ceil, the input cut
	 * and the output cropped to PyTorch's windows (runtime-facts S2) */
	bool floor = false;
	if (!arg_bool(n, avg ? ARG(avg_pool2d, ceil_mode) : ARG(max_pool2d, ceil_mode)) &&
	    target_has_field(net->target, "pooling_param", "ceil_mode"))
		for (int i = 0; i < 2; i++)
			floor |= caffe_pool_out(in->type.dims[2 + i], k[i], s[i], p[i]) !=
				 floor_pool_out(in->type.dims[2 + i], k[i], s[i], p[i]);
	if (!floor)
		x = cut_unpadded_overshoot(net, n, x, k, s, p);
	y = pooling_layer_rounded(net, n, NULL, x, method, k, s, p, false, floor);
	if (avg && !arg_bool(n, ARG(avg_pool2d, count_include_pad)) && (p[0] || p[1])) {
		/* runtime-facts S3: divide by the valid cells only: pool a blob of ones the same
		 * way (the fraction of each window that is inside the image), invert it and
		 * multiply */
		Blob *ones = power_layer(net, n, "ones", x, 0, 1, 0);
		Blob *frac = pooling_layer_rounded(net, n, "valid_fraction", ones, method, k, s, p,
						   false, floor);
		Blob *inv = power_layer(net, n, "inverse", frac, -1, 1, 0);
		y = eltwise_layer(net, n, "exclude_pad", CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD,
				  y, inv, 1);
	}
	for (int i = 0; i < 2; i++)
		if (y->type.dims[2 + i] < n->res[0].type.dims[2 + i])
			ptcc_die("Caffe pools to fewer rows than PyTorch (%lld < %lld)",
				 (long long)y->type.dims[2 + i],
				 (long long)n->res[0].type.dims[2 + i]);
	bind(net, &n->res[0], crop_to(net, n, y, &n->res[0].type));
	return true;
}

/* Adaptive pooling: global pooling to 1×1, or plain pooling when the input divides evenly. */
static bool
lower_adaptive_pool2d(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(adaptive_avg_pool2d, input));
	Blob *x = blob_of(net, n, in);
	const Type *out = &n->res[0].type;
	int method = n->op == OP_adaptive_avg_pool2d ? CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE
	                                               : CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
	int64_t k[2] = {0, 0}, s[2] = {0, 0}, p[2] = {0, 0};

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only 4-D (N, C, H, W) inputs are supported");
	if (n->op == OP_adaptive_max_pool2d && indices_used(n))
		return refuse(
			net, n,
			"the indices of return_indices=true are used; Caffe pooling gives none");
	if (out->dims[2] == 1 && out->dims[3] == 1) {
		bind(net, &n->res[0], pooling_layer(net, n, NULL, x, method, k, s, p, true));
		return true;
	}
	for (int i = 0; i < 2; i++) {
		int64_t h = in->type.dims[2 + i], o = out->dims[2 + i];
		if (o <= 0 || h % o)
			return refuse(net, n,
				      "from %lldx%lld to %lldx%lld: the windows are uneven; only "
				      "global pooling or sizes that divide the input are exact",
				      (long long)in->type.dims[2], (long long)in->type.dims[3],
				      (long long)out->dims[2], (long long)out->dims[3]);
		k[i] = s[i] = h / o;
	}
	bind(net, &n->res[0], pooling_layer(net, n, NULL, x, method, k, s, p, false));
	return true;
}


/* How a reduction combines: Pooling's method, and whether it is max(−x) negated (amin) or a mean
 * scaled by the count (sum). */
enum reduction { R_MEAN, R_SUM, R_MAX, R_MIN };

/* A reduction of x over the axes marked in red[] (x of rank 2 to 4, its batch axis kept or of size
 * 1) to the type `out`; NULL after a refusal.  x is seen as 4-D (N, C, H, W), size-1 axes appended.
 * The channel axis: a Reshape to (N, 1, C, H·W) puts it under a Pooling window (C, 1), and a
 * Reshape gives (N, 1, H, W) back.  The spatial axes: one Pooling whose window spans the reduced
 * ones (global when both).  AVE for mean (every window is whole: the divisor is the count); sum is
 * that mean times the count (one rounding more, within an ulp or two); MAX for amax; amin is
 * −max(−x) (two exact negations).  A Reshape (a Flatten for a mean over H, W) gives n's shape. */
static Blob *
reduce_blob(Net *net, Node *n, Blob *x, const bool red[MAX_DIMS], enum reduction how,
            const Type *out)
{
	int rank = x->type.ndim;
	int64_t d[4] = {1, 1, 1, 1}, count = 1, no_pad[2] = {0, 0}, one[2] = {1, 1};
	int method = how == R_MAX || how == R_MIN ? CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX
	                                          : CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE;

	if (rank < 2 || rank > 4) {
		refuse(net, n, "a reduction of a %d-D tensor: only ranks 2 to 4 are lowered", rank);
		return NULL;
	}
	for (int i = 0; i < rank; i++) {
		d[i] = x->type.dims[i];
		count *= red[i] ? d[i] : 1;
	}
	if (red[0] && d[0] != 1) {
		refuse(net, n, "a reduction over the batch axis: Caffe pools within one sample");
		return NULL;
	}
	if (how == R_MIN)
		x = power_layer(net, n, "negate", x, 1, -1, 0);
	if (rank < 4)
		x = reshape_layer(net, n, "as_4d", x, d, 4);
	if (red[1] && d[1] > 1) {
		int64_t k[2] = {d[1], 1}, flat[4] = {d[0], 1, d[1], d[2] * d[3]};

		x = reshape_layer(net, n, "channels_down", x, flat, 4);
		x = pooling_layer(net, n, "over_channels", x, method, k, one, no_pad, false);
		d[1] = 1;
		x = reshape_layer(net, n, "channels_back", x, d, 4);
	}
	if ((red[2] && d[2] > 1) || (red[3] && d[3] > 1)) {
		int64_t k[2] = {red[2] ? d[2] : 1, red[3] ? d[3] : 1};

		x = pooling_layer(net, n, NULL, x, method, k, one, no_pad, red[2] && red[3]);
	}
	if (how == R_MIN)
		x = power_layer(net, n, NULL, x, 1, -1, 0);
	if (how == R_SUM && count > 1)
		x = power_layer(net, n, "times_count", x, 1, (double)count, 0);
	if (rank == 4 && out->ndim == 2 && !red[1] && red[2] && red[3])
		return flatten_layer(net, n, "squeeze", x, 1, -1, *out);
	return reshape_to(net, n, NULL, x, out->dims, out->ndim);
}

/* reduce_blob of the value `in` into n's result. */
static bool
lower_reduction(Net *net, Node *n, Value *in, const bool red[MAX_DIMS], enum reduction how)
{
	Blob *x = blob_of(net, n, in);

	if (!x || !(x = reduce_blob(net, n, x, red, how, &n->res[0].type)))
		return false;
	bind(net, &n->res[0], x);
	return true;
}

/* mean, sum, amax, amin: the axes of `dim` (every axis when none). */
static bool
lower_reduce(Net *net, Node *n)
{
	static const enum reduction how[OP_COUNT] = {
		[OP_mean] = R_MEAN, [OP_sum] = R_SUM, [OP_amax] = R_MAX, [OP_amin] = R_MIN};
	Value *in = arg_value(n, ARG(mean, input));
	const Lit *dl = op_arg(n, ARG(mean, dim));
	bool red[MAX_DIMS];

	if ((n->op == OP_mean || n->op == OP_sum) && !arg_is_none(n, ARG(mean, dtype)))
		return refuse(net, n, "a dtype conversion has no Caffe form");
	reduced_axes(dl, in->type.ndim, red);
	return lower_reduction(net, n, in, red, how[n->op]);
}

/* maximum(a, b), minimum(a, b), max(a, b): both operands repeated to the result's shape
 * (broadcast_to), Eltwise MAX; the minimum is −max(−a, −b) (exact negations). */
static bool
elementwise_extreme(Net *net, Node *n, const Lit *la, const Lit *lb, bool minimum)
{
	Blob *a, *b;

	if (la->kind != L_VALUE || lb->kind != L_VALUE)
		return refuse(net, n, "only two tensors are lowered (clamp takes a number)");
	if (!(a = blob_of(net, n, la->u.v)) || !(b = blob_of(net, n, lb->u.v)))
		return false;
	if (!(a = broadcast_to(net, n, a, &n->res[0].type)) ||
	    !(b = broadcast_to(net, n, b, &n->res[0].type)))
		return refuse(net, n,
			      "only broadcasting along the channel and spatial axes of tensors of "
			      "rank 2 to 4 is lowered");
	if (minimum) {
		a = power_layer(net, n, "negate_a", a, 1, -1, 0);
		b = power_layer(net, n, "negate_b", b, 1, -1, 0);
	}
	a = eltwise_layer(net, n, minimum ? "max_of_negations" : NULL,
			  CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX, a, b, 1);
	bind(net, &n->res[0], minimum ? power_layer(net, n, NULL, a, 1, -1, 0) : a);
	return true;
}

static bool
lower_maximum(Net *net, Node *n)
{
	return elementwise_extreme(net, n, op_arg(n, ARG(maximum, input)),
				   op_arg(n, ARG(maximum, other)), n->op == OP_minimum);
}

/* max(x, dim) and max(x, dim)[0]: amax over one axis, when the indices are not used; max(x) of
 * a whole tensor and max(x, y) are refused. */
static bool
lower_max(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(max, input));
	const Lit *dl = op_arg(n, ARG(max, dim));
	bool red[MAX_DIMS] = {0};

	if (dl->kind == L_VALUE)
		return elementwise_extreme(net, n, op_arg(n, ARG(max, input)), dl, false);
	if (indices_used(n))
		return refuse(net, n,
			      "the indices of max(x, dim) are used; Caffe pooling gives none");
	red[axis_of(dl->u.i, in->type.ndim)] = true;
	return lower_reduction(net, n, in, red, R_MAX);
}

/* var and std over the axes of `dim`: the mean (reduce_blob, kept axes), repeated back over the
 * reduced axes (broadcast_to), x − mean (Eltwise), centred once more as normalise_axis2, its
 * square (Power 2), their mean, times count/(count − 1) when unbiased (Power), and for std
 * Power{power: 0.5}. */
_Static_assert(ARG(var, unbiased) == ARG(std, unbiased), "lower_var reads var's slots");
static bool
lower_var(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(var, input));
	const Lit *dl = op_arg(n, ARG(var, dim));
	Blob *x = blob_of(net, n, in), *m, *d;
	bool red[MAX_DIMS];
	int rank = in->type.ndim;
	int64_t kept[MAX_DIMS], count = 1;

	if (!x)
		return false;
	reduced_axes(dl, rank, red);
	for (int i = 0; i < rank; i++) {
		kept[i] = red[i] ? 1 : in->type.dims[i];
		count *= red[i] ? in->type.dims[i] : 1;
	}
	if (arg_bool(n, ARG(var, unbiased)) && count == 1)
		return refuse(net, n,
			      "an unbiased estimate from one element: PyTorch's result is nan");
	Type kept_type = f32_type(net, kept, rank);
	d = x;
	for (int pass = 0; pass < 2; pass++) { /* centred twice, as normalise_axis2 */
		if (!(m = reduce_blob(net, n, d, red, R_MEAN, &kept_type)))
			return false;
		if (!(m = broadcast_to(net, n, m, &in->type)))
			return refuse(net, n, "the mean cannot be repeated over the reduced axes");
		d = eltwise_layer(net, n, pass ? "recentre" : "centre",
				  CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, d, m, -1);
	}
	d = power_layer(net, n, "square", d, 2, 1, 0);
	if (!(d = reduce_blob(net, n, d, red, R_MEAN, &n->res[0].type)))
		return false;
	if (arg_bool(n, ARG(var, unbiased)))
		d = power_layer(net, n, "unbiased", d, 1, (double)count / (double)(count - 1), 0);
	if (n->op == OP_std)
		d = power_layer(net, n, "sqrt", d, 0.5, 1, 0);
	bind(net, &n->res[0], d);
	return true;
}

/* log_softmax(x, dim) = (x − m) − log Σ e^(x − m), m the maximum over dim, as PyTorch computes it:
 * amax (reduce_blob), repeated back (broadcast_to), Eltwise, Exp, the sum (reduce_blob), Log,
 * repeated back, Eltwise.  Not Log of Softmax: that underflows to log 0 where PyTorch is finite. */
static bool
lower_log_softmax(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(log_softmax, input));
	const Type *t = &in->type;
	const Lit *dl = op_arg(n, ARG(log_softmax, dim));
	Blob *x = blob_of(net, n, in), *m, *d, *e;
	bool red[MAX_DIMS] = {0};
	int64_t kept[MAX_DIMS];
	int sub = CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM;

	if (!x)
		return false;
	if (!arg_is_none(n, ARG(log_softmax, dtype)))
		return refuse(net, n, "a dtype conversion has no Caffe form");
	if (dl->kind != L_INT)
		return refuse(net, n, "dim=None: give the axis");
	red[axis_of(dl->u.i, t->ndim)] = true;
	for (int i = 0; i < t->ndim; i++)
		kept[i] = red[i] ? 1 : t->dims[i];
	Type kept_type = f32_type(net, kept, t->ndim);
	if (!(m = reduce_blob(net, n, x, red, R_MAX, &kept_type)))
		return false;
	if (!(m = broadcast_to(net, n, m, t)))
		return refuse(net, n, "the maximum cannot be repeated over the axis");
	d = eltwise_layer(net, n, "shifted", sub, x, m, -1);
	unary_layer(net, n, "Exp", "exp", d, d->type, &e);
	if (!(e = reduce_blob(net, n, e, red, R_SUM, &kept_type)))
		return false;
	unary_layer(net, n, "Log", "log_sum", e, e->type, &e);
	e = broadcast_to(net, n, e, t);
	bind(net, &n->res[0], eltwise_layer(net, n, NULL, sub, d, e, -1));
	return true;
}

/* ---- resampling ------------------------------------------------------------------------------ */

/* PyTorch's nearest source row for output row dst (ATen's nearest_idx): floorf(dst · scale), or
 * floorf((dst + 0.5) · scale) for nearest-exact, in float, where scale is 1/scale_factor when a
 * factor was given and input/output otherwise. */
static int64_t
torch_nearest(int64_t dst, int64_t in, int64_t out, double factor, bool exact)
{
	float scale = factor > 0 ? (float)(1.0 / factor) : (float)in / (float)out;
	int64_t src = (int64_t)floorf(((float)dst + (exact ? 0.5f : 0.0f)) * scale);

	return src < in - 1 ? src : in - 1;
}



/* interpolate(mode="bilinear", align_corners=False) by integer factors (runtime-facts S8):
 * replicate-pad one row and column on each side, a grouped Deconvolution with kernel 2f − f%2,
 * stride f, padding ⌈(f − 1)/2⌉ and the separable tent weights w(i) = 1 − |i/f − c|, c = (2f − 1
 * − f%2)/(2f), then crop f rows and columns on each side.  Equal to PyTorch to float32 rounding
 * (the sums are ordered otherwise). */
static bool
lower_bilinear(Net *net, Node *n, Blob *x, const int64_t f[2])
{
	int64_t c = x->type.dims[1], k[2], pad[2];
	float *taps[2], *w;
	Blob *y;

	y = replicate_pad(net, n, replicate_pad(net, n, x, 2), 3);
	for (int a = 0; a < 2; a++) {
		double centre = (double)(2 * f[a] - 1 - f[a] % 2) / (double)(2 * f[a]);
		k[a] = 2 * f[a] - f[a] % 2;
		pad[a] = f[a] / 2; /* ⌈(f − 1)/2⌉ */
		if (!(taps[a] = constant_weight(net, n, 0, k[a], 1, 1)))
			return false;
		for (int64_t i = 0; i < k[a]; i++)
			taps[a][i] = (float)(1 - fabs((double)i / (double)f[a] - centre));
	}
	if (!(w = constant_weight(net, n, 0, c, k[0], k[1])))
		return false;
	for (int64_t ch = 0; ch < c; ch++)
		for (int64_t i = 0; i < k[0]; i++)
			for (int64_t j = 0; j < k[1]; j++)
				w[(ch * k[0] + i) * k[1] + j] = taps[0][i] * taps[1][j];
	y = grouped_deconvolution(net, n, y, k, f, pad, w); /* f·(H + 2) + k − 2·pad = f·H + 2f
	                                                       rows */
	/* Cut the left part off first, then the right: the last layer then keeps its first top,
	 * which is what OpenCV's forward(layer name) returns for an output. */
	for (int a = 0; a < 2; a++) {
		int64_t left = f[a], keep = f[a] * x->type.dims[2 + a];
		Blob **parts =
			slice_layer(net, n, a == 0 ? "cut_top" : "cut_left", y, 2 + a, &left, 1);
		parts[1]->discard = false;
		parts = slice_layer(net, n, a == 0 ? "cut_bottom" : "cut_right", parts[1], 2 + a,
				    &keep, 1);
		parts[0]->discard = false;
		y = parts[0];
	}
	bind(net, &n->res[0], y);
	return true;
}

/* Row `dst` of PyTorch's bilinear interpolation matrix from `in` to `out` samples (ATen's
 * area_pixel_compute_scale and _source_index, in float as ATen computes them for float32):
 * weights 1 − λ and λ on two neighbouring sources. */
static void
bilinear_row(float *row, int64_t dst, int64_t in, int64_t out, double factor, bool align)
{
	float scale = align ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f)
	                    : factor > 0 ? (float)(1.0 / factor) : (float)in / (float)out;
	float src = align ? scale * (float)dst : scale * ((float)dst + 0.5f) - 0.5f;
	int64_t i0;
	float lambda;

	if (src < 0)
		src = 0;
	i0 = (int64_t)src;
	lambda = src - (float)i0;
	row[i0] += 1.0f - lambda;
	row[i0 < in - 1 ? i0 + 1 : i0] += lambda;
}

/* Resampling by any sizes, as the fixed linear map it is (runtime-facts S13): along W an
 * InnerProduct on axis 3 whose weight is PyTorch's interpolation matrix (nearest: one-hot rows
 * picked by PyTorch's float index rule; bilinear: two weights a row), the H and W axes swapped
 * (swap_blocks), the same along H, swapped back.  Each output is PyTorch's weighted sum of the
 * same inputs, in the same separable order, so equal to float rounding.  An axis whose map is the
 * identity is skipped. */
static bool
lower_resize_by_matrix(Net *net, Node *n, Blob *x, bool bilinear, bool exact, bool align,
                       const double factor[2])
{
	const Type *out = &n->res[0].type;
	int64_t nb = x->type.dims[0], c = x->type.dims[1], h = x->type.dims[2];

	for (int a = 1; a >= 0; a--) { /* W, then H */
		int64_t m = x->type.dims[2 + a], o = out->dims[2 + a], wdims[2] = {o, m};
		int64_t dims[4] = {nb, c, a ? h : out->dims[3], o};
		float *w = constant_weight(net, n, 0, o, m, 1);
		bool identity = m == o;
		Layer *l;
		Caffe__InnerProductParameter *p;

		if (!w)
			return false;
		for (int64_t d = 0; d < o; d++) {
			if (bilinear)
				bilinear_row(w + d * m, d, m, o, factor[a], align);
			else
				w[d * m + torch_nearest(d, m, o, factor[a], exact)] = 1;
			identity = identity && w[d * m + d] == 1;
		}
		if (identity)
			continue;
		if (a == 0) { /* (N, C, H, W') to (N, C, W', H) */
			int64_t t[4] = {nb, c, out->dims[3], h};

			x = swap_blocks(net, n, x, nb, c, h, out->dims[3], 1);
			x = reshape_to(net, n, "transposed", x, t, 4);
		}
		l = net_layer(net, n, "InnerProduct", a ? "resize_w" : "resize_h");
		p = PARAM(net, l, inner_product_param, INNER_PRODUCT_PARAMETER);
		p->has_num_output = p->has_bias_term = p->has_axis = 1;
		p->num_output = (uint32_t)o;
		p->bias_term = 0;
		p->axis = 3;
		layer_bottom(net, l, x);
		layer_weight(net, l, w, o * m, wdims, 2);
		x = layer_top(net, l, f32_type(net, dims, 4));
		if (a == 0) { /* back to (N, C, H', W') */
			x = swap_blocks(net, n, x, nb, c, out->dims[3], o, 1);
			x = reshape_to(net, n, NULL, x, out->dims, 4);
		}
	}
	bind(net, &n->res[0], x);
	return true;
}

/* interpolate(mode="nearest") by an integer factor: a grouped Deconvolution with kernel = stride
 * = the factor and weights 1 (runtime-facts S8: exact), each input pixel copied into an f_h ×
 * f_w block.  Before lowering, every output row and column is checked against PyTorch's own
 * float index arithmetic, so a factor whose rounding would pick another source pixel is refused
 * rather than approximated. */
_Static_assert(ARG(interpolate, scale_factor) == ARG(upsample, scale_factor) &&
		       ARG(interpolate, mode) == ARG(upsample, mode) &&
		       ARG(interpolate, align_corners) == ARG(upsample, align_corners),
	       "lower_interpolate reads interpolate's slots (antialias and recompute_scale_factor: "
	       "its own)");
static bool
lower_interpolate(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(interpolate, input));
	Blob *x = blob_of(net, n, in);
	const Type *out = &n->res[0].type;
	const Lit *mode = op_arg(n, ARG(interpolate, mode)),
		  *sf = op_arg(n, ARG(interpolate, scale_factor));
	bool exact = mode->kind == L_STR && strcmp(mode->u.s, "nearest-exact") == 0;
	int64_t f[2], c, no_pad[2] = {0, 0};
	double factor[2] = {0, 0};

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only 4-D (N, C, H, W) inputs are supported");
	bool bilinear = mode->kind == L_STR && strcmp(mode->u.s, "bilinear") == 0;
	if (mode->kind != L_STR || (strcmp(mode->u.s, "nearest") != 0 && !exact && !bilinear))
		return refuse(net, n,
			      "mode=\"%s\": only nearest and bilinear are exact in Caffe layers",
			      mode->kind == L_STR ? mode->u.s : "?");
	bool align = bilinear && op_arg(n, ARG(interpolate, align_corners))->kind == L_BOOL &&
		     op_arg(n, ARG(interpolate, align_corners))->u.i;
	if (n->op == OP_interpolate && arg_bool(n, ARG(interpolate, antialias)))
		return refuse(net, n, "antialias=true has no Caffe form");
	if (n->op == OP_interpolate &&
	    op_arg(n, ARG(interpolate, recompute_scale_factor))->kind == L_BOOL &&
	    op_arg(n, ARG(interpolate, recompute_scale_factor))->u.i)
		sf = NULL; /* the factor is recomputed from the sizes */
	if (sf && sf->kind == L_LIST && sf->n == 2) {
		lit_as_float(&sf->u.list[0], &factor[0]);
		lit_as_float(&sf->u.list[1], &factor[1]);
	} else if (sf && lit_as_float(sf, &factor[0])) {
		factor[1] = factor[0];
	}
	for (int i = 0; i < 2; i++) {
		int64_t h = in->type.dims[2 + i], o = out->dims[2 + i];

		if (align || h <= 0 || o % h)
			return lower_resize_by_matrix(net, n, x, bilinear, exact, align, factor);
		f[i] = o / h;
		if (bilinear)
			continue; /* bilinear is continuous: a rounding of the scale moves no
			             weight noticeably */
		for (int64_t d = 0; d < o; d++)
			if (torch_nearest(d, h, o, factor[i], exact) != d / f[i])
				return lower_resize_by_matrix(net, n, x, bilinear, exact, align,
							      factor);
	}
	if (f[0] == 1 && f[1] == 1) {
		bind(net, &n->res[0], x);
		return true;
	}
	if (bilinear)
		return lower_bilinear(net, n, x, f);
	c = in->type.dims[1];
	bind(net, &n->res[0],
	     grouped_deconvolution(net, n, x, f, f, no_pad,
				   constant_weight(net, n, 1, c, f[0], f[1])));
	return true;
}

/* pixel_shuffle(x, r) of (N, C·r², H, W): a Deconvolution in C groups, kernel = stride = r, whose
 * weight routes input channel c·r² + i·r + j to offset (i, j) of each r × r output block.
 * pixel_unshuffle(x, r): the inverse, a Convolution in C groups, kernel = stride = r, output
 * channel c·r² + i·r + j reading offset (i, j).  The windows do not overlap, so each output is one
 * product by 1 plus products by 0: exact for finite activations. */
_Static_assert(ARG(pixel_shuffle, upscale_factor) == ARG(pixel_unshuffle, downscale_factor),
	       "lower_pixel_shuffle reads pixel_shuffle's slots");
static bool
lower_pixel_shuffle(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(pixel_shuffle, input));
	Blob *x = blob_of(net, n, in);
	bool up = n->op == OP_pixel_shuffle;
	int64_t r = arg_int(n, ARG(pixel_shuffle, upscale_factor)), k[2] = {r, r}, zero[2] = {0, 0};
	int64_t c, many;
	float *w;

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n,
			      "only a 4-D input is lowered (its last three axes are C, H, W)");
	if (r == 1) {
		bind(net, &n->res[0], x);
		return true;
	}
	if (!fits_caffe(net, n, up ? "upscale_factor" : "downscale_factor", k))
		return false;
	c = up ? in->type.dims[1] / (r * r) : in->type.dims[1]; /* the groups */
	many = c * r * r;                                        /* the channels on the deep side */
	/* r <= INT32_MAX: r * r fits; the weight's many · r² values may not */
	if (!(w = constant_weight(net, n, 0, many, r, r)))
		return false;
	for (int64_t ch = 0; ch < many; ch++) /* weight (many, 1, r, r): ch at offset ch mod r² */
		w[ch * r * r + ch % (r * r)] = 1;
	bind(net, &n->res[0], convolution(net, n, NULL, up, x, up ? c : many, c, k, k, zero, w));
	return true;
}

/* ---- identities ------------------------------------------------------------------------------ */

static bool
lower_identity(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(contiguous, input));
	Blob *x;

	x = blob_of(net, n, in);

	if (!x)
		return false;
	bind(net, &n->res[0], x);
	return true;
}

_Static_assert(ARG(dropout, training) == ARG(dropout2d, training) &&
		       ARG(dropout, training) == ARG(dropout3d, training) &&
		       ARG(dropout, training) == ARG(alpha_dropout, training) &&
		       ARG(dropout, training) == ARG(feature_alpha_dropout, training),
	       "lower_dropout reads dropout's slots");
/* Dropout is the identity in eval mode: a Dropout layer at -O0 (one layer per op), nothing
 * above. */
static bool
lower_dropout(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(dropout, input))), *top;

	if (!x)
		return false;
	if (arg_bool(n, ARG(dropout, training)))
		return refuse(net, n,
			      "training=true drops at random; record the model in eval mode");
	if (net->olevel == 0 && *lowering[op_base(n->op)].layers) { /* dropout's row: a Dropout
	                                                               layer */
		Layer *l = unary_layer(net, n, "Dropout", NULL, x, x->type, &top);
		Caffe__DropoutParameter *p = PARAM(net, l, dropout_param, DROPOUT_PARAMETER);
		p->has_dropout_ratio = 1;
		p->dropout_ratio = (float)arg_float(n, ARG(dropout, p));
		x = top;
	}
	bind(net, &n->res[0], x);
	return true;
}

/* ---- shape ----------------------------------------------------------------------------------- */

static bool
lower_flatten(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(flatten, input));
	Blob *x = blob_of(net, n, in);
	int rank, start, end;

	if (!x)
		return false;
	rank = in->type.ndim;
	start = axis_of(arg_int(n, ARG(flatten, start_dim)), rank);
	end = axis_of(arg_int(n, ARG(flatten, end_dim)), rank);
	if (rank == 0 || start >= end) {
		bind(net, &n->res[0], x);
		return true;
	}
	bind(net, &n->res[0],
	     flatten_layer(net, n, NULL, x, start, end == rank - 1 ? -1 : end, n->res[0].type));
	return true;
}

/* Layouts: permute and transpose without a transpose layer (runtime-facts S12).  An axis order
 * is reached by swapping adjacent blocks of axes, (N, P, A, B, Q) → (N, P, B, A, Q), each a copy
 * through one-hot weights:
 *   Q = 1, B ≤ A: a Convolution in P groups with kernel (1, B) over x viewed as (N, P, A, B), its
 *                 output channel p·B + b reading offset b: (N, P·B, A, 1);
 *   Q = 1, A < B: a Deconvolution in P groups with kernel (1, A) over x viewed as (N, P·A, B, 1),
 *                 input channel p·A + a writing offset a: (N, P, B, A);
 *   Q > 1:        a 1×1 Convolution in P groups over x viewed as (N, P·A·B, Q, 1), output channel
 *                 (b, a) reading input channel (a, b).
 * Each output is one input times 1 plus zeros: exact (for finite activations).  A swap that moves
 * the first axis views the whole tensor as one sample (the shapes are fixed). */
enum { PERMUTE_MAX_WEIGHTS = 1 << 22 };

static Blob *
swap_blocks(Net *net, const Node *n, Blob *x, int64_t nb, int64_t p, int64_t a, int64_t b,
            int64_t q)
{
	int64_t one[2] = {1, 1}, zero[2] = {0, 0}, k[2] = {1, 1}, view[4] = {nb, p, a, b};
	float *w;

	if (q == 1 && b <= a) {
		k[1] = b;
		x = reshape_layer(net, n, "blocks", x, view, 4);
		w = constant_weight(net, n, 0, p, b, b);
		for (int64_t i = 0; w && i < p * b; i++)
			w[i * b + i % b] = 1;
		return convolution(net, n, "swap", false, x, p * b, p, k, one, zero, w);
	}
	if (q == 1) {
		k[1] = a;
		memcpy(view, (int64_t[4]){nb, p * a, b, 1}, sizeof view);
		x = reshape_layer(net, n, "blocks", x, view, 4);
		w = constant_weight(net, n, 0, p, a, a);
		for (int64_t i = 0; w && i < p * a; i++)
			w[i * a + i % a] = 1;
		return convolution(net, n, "swap", true, x, p, p, k, one, zero, w);
	}
	memcpy(view, (int64_t[4]){nb, p * a * b, q, 1}, sizeof view);
	x = reshape_layer(net, n, "blocks", x, view, 4);
	w = constant_weight(net, n, 0, p, a * b, a * b); /* a, b: axes of a blob, a · b fits */
	for (int64_t i = 0; w && i < a; i++) /* per group: output (j, i) reads input (i, j) */
		for (int64_t j = 0; j < b; j++)
			w[(j * a + i) * a * b + i * b + j] = 1;
	for (int64_t g = 1; w && g < p; g++)
		memcpy(w + g * a * b * a * b, w, sizeof(float) * (size_t)(a * b * a * b));
	return convolution(net, n, "swap", false, x, p * a * b, p, one, one, zero, w);
}

/* x (of type in) with its axes in the order perm, as n's result. */
static bool
lower_axis_order(Net *net, Node *n, Blob *x, const Type *in, const int *perm)
{
	int rank = in->ndim, cur[MAX_DIMS];
	int64_t dims[MAX_DIMS];

	for (int i = 0; i < rank; i++) {
		cur[i] = i;
		dims[i] = in->dims[i];
	}
	for (int pos = perm[0] == 0 ? 1 : 0; pos < rank; pos++) {
		int at = pos, m = 1, tmp[MAX_DIMS];
		int64_t prod[4] = {1, 1, 1, 1}; /* P, A, B, Q */
		double weights, side; /* the weight matrix: P blocks of side × side */

		while (cur[at] != perm[pos])
			at++;
		if (at == pos)
			continue;
		while (at + m < rank && pos + m < rank && cur[at + m] == perm[pos + m])
			m++;
		for (int i = 1; i < rank; i++)
			prod[i < pos ? 0 : i < at ? 1 : i < at + m ? 2 : 3] *= dims[i];
		if (pos == 0)
			prod[1] *= dims[0];
		side = prod[3] > 1 ? (double)prod[1] * (double)prod[2]
				   : (double)(prod[1] < prod[2] ? prod[1] : prod[2]);
		weights = (double)prod[0] * side * side;
		if (weights > PERMUTE_MAX_WEIGHTS)
			return refuse(net, n,
				      "swapping blocks of %lld and %lld elements before %lld more "
				      "would take a permutation of %.0f weights (at most %d)",
				      (long long)prod[1], (long long)prod[2], (long long)prod[3],
				      weights, PERMUTE_MAX_WEIGHTS);
		x = swap_blocks(net, n, x, pos == 0 ? 1 : dims[0], prod[0], prod[1], prod[2],
				prod[3]);
		memcpy(tmp, cur, sizeof tmp);
		memcpy(&cur[pos], &tmp[at], sizeof(int) * (size_t)m);
		memcpy(&cur[pos + m], &tmp[pos], sizeof(int) * (size_t)(at - pos));
		for (int i = 0; i < rank; i++)
			dims[i] = in->dims[cur[i]];
	}
	bind(net, &n->res[0], reshape_to(net, n, NULL, x, n->res[0].type.dims, rank));
	return true;
}

/* permute(x, dims) */
static bool
lower_permute(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(permute, input));
	Blob *x = blob_of(net, n, in);
	int64_t dims[MAX_DIMS];
	int perm[MAX_DIMS], rank = in->type.ndim;

	if (!x)
		return false;
	lit_int_list(op_arg(n, ARG(permute, dims)), dims, rank);
	for (int i = 0; i < rank; i++)
		perm[i] = axis_of(dims[i], rank);
	return lower_axis_order(net, n, x, &in->type, perm);
}

/* transpose(x, d0, d1) and t(x) (a channel shuffle's transpose is lowered by lower_shuffle) */
static bool
lower_transpose(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(transpose, input));
	Blob *x = blob_of(net, n, in);
	int perm[MAX_DIMS], rank = in->type.ndim, d0 = 0, d1 = rank > 1 ? 1 : 0;

	if (!x)
		return false;
	if (n->op == OP_transpose) {
		d0 = axis_of(arg_int(n, ARG(transpose, dim0)), rank);
		d1 = axis_of(arg_int(n, ARG(transpose, dim1)), rank);
	}
	for (int i = 0; i < rank; i++)
		perm[i] = i;
	perm[d0] = d1;
	perm[d1] = d0;
	return lower_axis_order(net, n, x, &in->type, perm);
}

/* A node of a channel shuffle that match_shuffles found: the last one is the permutation
 * Convolution of the chain's source, the others are nothing. */
static bool
lower_shuffle(Net *net, Node *n, const Shuffle *s)
{
	Blob *x;

	if (n != s->end)
		return true;
	if (!(x = blob_of(net, n, s->src)))
		return false;
	bind(net, &n->res[0], channel_permutation(net, n, x, s->groups));
	return true;
}


/* view and reshape: a Reshape to the inferred shape; the batch axis is written as 0 (copy) when
 * it is unchanged, so that the model still runs with another batch size. */
static bool
lower_reshape(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(view, input));
	const Type *out = &n->res[0].type;
	Blob *x = blob_of(net, n, in), *top;

	if (!x)
		return false;
	if (type_equal(&in->type, out)) {
		bind(net, &n->res[0], x);
		return true;
	}
	top = reshape_layer(net, n, NULL, x, out->dims, out->ndim);
	if (out->ndim > 0 && in->type.ndim > 0 && out->dims[0] == in->type.dims[0])
		LP(top->producer, reshape_param)->shape->dim[0] = 0;
	bind(net, &n->res[0], top);
	return true;
}

_Static_assert(ARG(cat, dim) == ARG(concat, dim), "lower_cat reads cat's slots");
static bool
lower_cat(Net *net, Node *n)
{
	const Lit *list = op_arg(n, ARG(cat, tensors));
	int rank = n->res[0].type.ndim, axis = axis_of(arg_int(n, ARG(cat, dim)), rank);
	Layer *l;

	if (list->n == 1) {
		Blob *x = blob_of(net, n, list->u.list[0].u.v);
		if (!x)
			return false;
		bind(net, &n->res[0], x);
		return true;
	}
	for (uint32_t i = 0; i < list->n; i++)
		if (!blob_of(net, n, list->u.list[i].u.v)) /* a constant becomes a blob here */
			return false;
	l = net_layer(net, n, "Concat", NULL);
	if (axis != 1) {
		Caffe__ConcatParameter *p = PARAM(net, l, concat_param, CONCAT_PARAMETER);
		p->has_axis = 1;
		p->axis = axis;
	}
	for (uint32_t i = 0; i < list->n; i++)
		layer_bottom(net, l, net->blob_of[list->u.list[i].u.v->id]);
	bind(net, &n->res[0], layer_top(net, l, n->res[0].type));
	return true;
}

/* x[start : start + len] along axis: a Slice that keeps its middle top (one cut when the range
 * touches an end; x itself when it is all of it).  A copy: exact. */
static Blob *
take_range(Net *net, const Node *n, Blob *x, int axis, int64_t start, int64_t len)
{
	int64_t size = x->type.dims[axis], points[2];
	int np = 0, keep;
	Blob **parts;

	if (start == 0 && len == size)
		return x;
	if (start > 0)
		points[np++] = start;
	keep = np;
	if (start + len < size)
		points[np++] = start + len;
	parts = slice_layer(net, n, NULL, x, axis, points, np);
	parts[keep]->discard = false;
	return parts[keep];
}

/* narrow(x, dim, start, length): the range as a Slice. */
static bool
lower_narrow(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(narrow, input));
	Blob *x = blob_of(net, n, in);
	int axis;
	int64_t start = arg_int(n, ARG(narrow, start)), len = arg_int(n, ARG(narrow, length));

	if (!x)
		return false;
	axis = axis_of(arg_int(n, ARG(narrow, dim)), in->type.ndim);
	if (start < 0)
		start += in->type.dims[axis];
	if (len == 0)
		return refuse(net, n, "an empty range: Caffe blobs have no empty axis");
	bind(net, &n->res[0], take_range(net, n, x, axis, start, len));
	return true;
}

/* select(x, dim, index): the one-element range as a Slice, then a Reshape without the axis. */
static bool
lower_select(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(select, input));
	Blob *x = blob_of(net, n, in);
	const Type *out = &n->res[0].type;
	int axis;
	int64_t index = arg_int(n, ARG(select, index));

	if (!x)
		return false;
	axis = axis_of(arg_int(n, ARG(select, dim)), in->type.ndim);
	if (index < 0)
		index += in->type.dims[axis];
	x = take_range(net, n, x, axis, index, 1);
	bind(net, &n->res[0], reshape_layer(net, n, "drop_axis", x, out->dims, out->ndim));
	return true;
}

/* Every step > 1 of a getitem, on an x of rank 2 to 4 whose ranges are already taken (x holds
 * the first to the last element picked on each axis): one Convolution without bias on x seen as
 * 4-D, stride step[2] × step[3].  Only spatial steps: depthwise, weight 1.  A channel step too: a
 * 1×1 one-hot matrix picking channels 0, s, 2s, ...  Each output is one product by 1 (plus
 * products by 0): exact for finite activations, as channel_permutation. */
static Blob *
strided_pick(Net *net, const Node *n, Blob *x, const int64_t step[MAX_DIMS])
{
	int rank = x->type.ndim;
	int64_t d4[4] = {1, 1, 1, 1}, c, out_c, s[2], one[2] = {1, 1}, zero[2] = {0, 0};
	float *w;

	for (int i = 0; i < rank; i++)
		d4[i] = x->type.dims[i];
	if (rank < 4)
		x = reshape_layer(net, n, "as_4d", x, d4, 4);
	c = d4[1];
	s[0] = rank > 2 ? step[2] : 1;
	s[1] = rank > 3 ? step[3] : 1;
	if (step[1] == 1)
		return convolution(net, n, "pick", false, x, c, c, one, s, zero,
				   constant_weight(net, n, 1, c, 1, 1));
	out_c = (c - 1) / step[1] + 1;
	w = constant_weight(net, n, 0, out_c, c, 1);
	for (int64_t j = 0; w && j < out_c; j++)
		w[j * c + j * step[1]] = 1;
	return convolution(net, n, "pick", false, x, out_c, 1, one, s, zero, w);
}

/* getitem: x[i, a:b:s, ..., None].  Each integer and slice takes its range with a Slice (an
 * integer keeps its axis until the end); steps > 1 on the channel and spatial axes become one
 * strided 1×1 Convolution (strided_pick); a Reshape then drops the integers' axes and adds
 * None's. */
static bool
lower_getitem(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(getitem, input));
	Blob *x = blob_of(net, n, in);
	const Lit *ix = op_arg(n, ARG(getitem, index));
	const Lit *items = ix->kind == L_LIST ? ix->u.list : ix;
	const Type *out = &n->res[0].type;
	int nitems = ix->kind == L_LIST ? (int)ix->n : 1, rank = in->type.ndim, consumed = 0,
	    src = 0;
	int64_t step[MAX_DIMS];
	bool strided = false;

	if (!x)
		return false;
	for (int i = 0; i < nitems; i++)
		consumed += items[i].kind == L_INT || items[i].kind == L_SLICE;
	for (int i = 0; i < MAX_DIMS; i++)
		step[i] = 1;
	for (int i = 0; i < nitems; i++) {
		const Lit *e = &items[i];
		int64_t size = src < rank ? in->type.dims[src] : 0, first, len, st;

		if (e->kind == L_ELLIPSIS) {
			src += rank - consumed;
		} else if (e->kind == L_INT) {
			first = e->u.i < 0 ? e->u.i + size : e->u.i;
			x = take_range(net, n, x, src++, first, 1);
		} else if (e->kind == L_SLICE) {
			lit_slice(e, size, &first, &len, &st); /* sh_getitem checked it */
			if (len == 0)
				return refuse(net, n,
					      "an empty slice: Caffe blobs have no empty axis");
			x = take_range(net, n, x, src, first, (len - 1) * st + 1);
			if (len > 1 && st > 1 && (src == 0 || rank > 4))
				return refuse(net, n,
					      "a step on axis %d of a %d-D tensor: only steps on "
					      "the channel and spatial axes of a tensor of rank 2 "
					      "to 4 have a Caffe form (a strided 1x1 Convolution)",
					      src, rank);
			if (len > 1 && st > 1) {
				step[src] = st;
				strided = true;
			}
			src++;
		}
	}
	if (strided)
		x = strided_pick(net, n, x, step);
	bind(net, &n->res[0], reshape_to(net, n, NULL, x, out->dims, out->ndim));
	return true;
}

/* chunk and split along one axis: a Slice whose tops are the pieces. */
_Static_assert(ARG(chunk, input) == ARG(split, tensor) && ARG(chunk, dim) == ARG(split, dim),
               "lower_split reads chunk's slots");
static bool
lower_split(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(chunk, input));
	Blob *x = blob_of(net, n, in), **parts;
	int axis;
	int64_t at = 0, *points;

	if (!x)
		return false;
	if (n->nres == 1) {
		bind(net, &n->res[0], x);
		return true;
	}
	axis = axis_of(arg_int(n, ARG(chunk, dim)), in->type.ndim);
	points = arena_alloc(net->arena, sizeof(int64_t) * (n->nres - 1));
	for (unsigned i = 0; i + 1 < n->nres; i++)
		points[i] = (at += n->res[i].type.dims[axis]);
	parts = slice_layer(net, n, NULL, x, axis, points, (int)n->nres - 1);
	for (unsigned i = 0; i < n->nres; i++) {
		parts[i]->discard = n->res[i].handle == NO_HANDLE && !(n->res[i].flags & V_OUTPUT);
		bind(net, &n->res[i], parts[i]);
	}
	return true;
}

/* unbind(x, dim): a Slice into single elements along the axis, each part Reshaped without it
 * (a part nobody reads is discarded). */
static bool
lower_unbind(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(unbind, input));
	Blob *x = blob_of(net, n, in), **parts;
	int axis = axis_of(arg_int(n, ARG(unbind, dim)), in->type.ndim);
	int64_t *points;

	if (!x)
		return false;
	points = arena_alloc(net->arena, sizeof(int64_t) * (n->nres ? n->nres : 1));
	for (unsigned i = 0; i + 1 < n->nres; i++)
		points[i] = i + 1;
	parts = n->nres > 1 ? slice_layer(net, n, NULL, x, axis, points, (int)n->nres - 1) : &x;
	for (unsigned i = 0; i < n->nres; i++) {
		const Type *t = &n->res[i].type;
		bool used = n->res[i].handle != NO_HANDLE || (n->res[i].flags & V_OUTPUT);

		parts[i]->discard = !used;
		if (used)
			parts[i] = reshape_layer(net, n, "drop_axis", parts[i], t->dims, t->ndim);
		bind(net, &n->res[i], parts[i]);
	}
	return true;
}

/* channel_shuffle(x, groups): the permutation Convolution of a matched channel shuffle. */
static bool
lower_channel_shuffle(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(channel_shuffle, input));
	Blob *x = blob_of(net, n, in);

	if (!x)
		return false;
	if (in->type.ndim != 4)
		return refuse(net, n, "only a 4-D (N, C, H, W) input is lowered");
	x = channel_permutation(net, n, x, arg_int(n, ARG(channel_shuffle, groups)));
	bind(net, &n->res[0], x);
	return true;
}

/* stack(tensors, dim): each tensor Reshaped with a new axis of 1 at dim, then one Concat. */
static bool
lower_stack(Net *net, Node *n)
{
	const Lit *list = op_arg(n, ARG(stack, tensors));
	const Type *out = &n->res[0].type;
	int axis = axis_of(arg_int(n, ARG(stack, dim)), out->ndim);
	int64_t dims[MAX_DIMS];
	Layer *l;

	Blob **items = arena_alloc(net->arena, sizeof(Blob *) * (list->n ? list->n : 1));

	memcpy(dims, out->dims, sizeof(int64_t) * out->ndim);
	dims[axis] = 1;
	for (uint32_t i = 0; i < list->n; i++) {
		if (!(items[i] = blob_of(net, n, list->u.list[i].u.v)))
			return false;
		items[i] = reshape_layer(net, n, "item", items[i], dims, out->ndim);
	}
	l = net_layer(net, n, "Concat", NULL);
	if (axis != 1) {
		Caffe__ConcatParameter *p = PARAM(net, l, concat_param, CONCAT_PARAMETER);
		p->has_axis = 1;
		p->axis = axis;
	}
	for (uint32_t i = 0; i < list->n; i++)
		layer_bottom(net, l, items[i]);
	bind(net, &n->res[0], layer_top(net, l, *out));
	return true;
}

enum { PAD_COPIES_MAX = 1024 };

/* pad's `before` and `after` rows of x along `axis` (both ≥ 0): copies of the edge row
 * (replicate) or of the rows next to it (reflect), Concatenated around x. */
static Blob *
pad_by_copies(Net *net, const Node *n, Blob *x, int axis, int64_t before, int64_t after,
              bool reflect)
{
	int64_t size = x->type.dims[axis], dims[MAX_DIMS];
	int nparts = (int)(before + after + 1), k = 0;
	Blob **parts = arena_alloc(net->arena, sizeof(Blob *) * (size_t)nparts);
	Layer *l = NULL;
	Caffe__ConcatParameter *p;

	for (int64_t i = before; i > 0; i--)
		parts[k++] = take_range(net, n, x, axis, reflect ? i : 0, 1);
	parts[k++] = x;
	for (int64_t i = 1; i <= after; i++)
		parts[k++] = take_range(net, n, x, axis, reflect ? size - 1 - i : size - 1, 1);
	memcpy(dims, x->type.dims, sizeof(int64_t) * x->type.ndim);
	dims[axis] = size + before + after;
	l = net_layer(net, n, "Concat", "pad");
	p = PARAM(net, l, concat_param, CONCAT_PARAMETER);
	p->has_axis = 1;
	p->axis = axis;
	for (int i = 0; i < nparts; i++)
		layer_bottom(net, l, parts[i]);
	return layer_top(net, l, f32_type(net, dims, x->type.ndim));
}

/* pad(x, [left, right, top, bottom], mode) of the last two axes of a 4-D x (or the last one).
 * Negative pads crop (Slice).  constant with value 0: a depthwise 1×1 Convolution with weight 1
 * and the larger pad of each axis (Caffe pads symmetrically with zeros), cropped to the asked one;
 * replicate and reflect: Slices of the edge rows Concatenated around x.  All copies: exact. */
static bool
lower_pad(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(pad, input));
	const Lit *pl = op_arg(n, ARG(pad, pad)), *mode = op_arg(n, ARG(pad, mode));
	Blob *x = blob_of(net, n, in);
	int64_t before[2] = {0, 0}, after[2] = {0, 0};
	bool constant = mode->kind == L_STR && strcmp(mode->u.s, "constant") == 0;
	bool reflect = mode->kind == L_STR && strcmp(mode->u.s, "reflect") == 0;
	bool replicate = mode->kind == L_STR && strcmp(mode->u.s, "replicate") == 0;

	if (!x)
		return false;
	if (in->type.ndim != 4 || pl->n > 4)
		return refuse(net, n, "only padding the last two axes of a 4-D tensor is lowered");
	if (!constant && !reflect && !replicate)
		return refuse(net, n,
			      "mode=\"%s\" has no Caffe form (constant, reflect and replicate "
			      "do)",
			      mode->kind == L_STR ? mode->u.s : "?");
	if (constant && !arg_is_none(n, ARG(pad, value)) && arg_float(n, ARG(pad, value)) != 0)
		return refuse(net, n,
			      "value=%g: only zeros are padded exactly (Caffe pads with zeros)",
			      arg_float(n, ARG(pad, value)));
	for (uint32_t i = 0; i < pl->n; i++) { /* pairs from the last axis backwards */
		int a = 1 - (int)(i / 2);
		int64_t v = pl->u.list[i].u.i;

		if (i % 2 == 0)
			before[a] = v;
		else
			after[a] = v;
	}
	for (int a = 0; a < 2; a++) { /* crops first */
		int64_t size = x->type.dims[2 + a];
		int64_t start = before[a] < 0 ? -before[a] : 0;
		int64_t end = after[a] < 0 ? size + after[a] : size;

		x = take_range(net, n, x, 2 + a, start, end - start);
		before[a] = before[a] < 0 ? 0 : before[a];
		after[a] = after[a] < 0 ? 0 : after[a];
	}
	if (reflect)
		for (int a = 0; a < 2; a++)
			if (before[a] >= x->type.dims[2 + a] || after[a] >= x->type.dims[2 + a])
				return refuse(net, n,
					      "reflect padding of %lld or more rows: PyTorch "
					      "refuses it too",
					      (long long)x->type.dims[2 + a]);
	if (!constant) {
		/* one Slice per padded row: a net of a layer per row past this is no deployment */
		for (int a = 0; a < 2; a++) {
			int64_t most = before[a] > after[a] ? before[a] : after[a];

			if (most > PAD_COPIES_MAX)
				return refuse(net, n,
					      "%s padding of %lld rows: each is a layer of its "
					      "own, and ptcc lowers at most %d on a side",
					      reflect ? "reflect" : "replicate", (long long)most,
					      PAD_COPIES_MAX);
		}
		for (int a = 0; a < 2; a++)
			if (before[a] || after[a])
				x = pad_by_copies(net, n, x, 2 + a, before[a], after[a], reflect);
	} else if (before[0] || after[0] || before[1] || after[1]) {
		int64_t c = x->type.dims[1], one[2] = {1, 1}, p[2];
		float *w = constant_weight(net, n, 1, c, 1, 1);

		for (int a = 0; a < 2; a++)
			p[a] = before[a] > after[a] ? before[a] : after[a];
		x = convolution(net, n, "zeros", false, x, c, c, one, one, p, w);
		for (int a = 0; a < 2; a++) {
			int64_t cut = p[a] - before[a], keep = x->type.dims[2 + a] - cut;

			x = take_range(net, n, x, 2 + a, cut, keep - (p[a] - after[a]));
		}
	}
	bind(net, &n->res[0], x);
	return true;
}

/* repeat(x, counts) and tile(x, counts): x with leading axes of 1 added where the counts are
 * more than its rank (a Reshape), then per axis a Concat of `count` copies (each output one input:
 * a copy). */
_Static_assert(ARG(repeat, repeats) == ARG(tile, dims), "lower_repeat reads repeat's slots");
static bool
lower_repeat(Net *net, Node *n)
{
	Value *in = arg_value(n, ARG(repeat, input));
	const Type *out = &n->res[0].type;
	const Lit *r = op_arg(n, ARG(repeat, repeats));
	int k = r->kind == L_INT ? 1 : (int)r->n, nd = out->ndim, lead;
	int64_t reps[MAX_DIMS], dims[MAX_DIMS];
	Blob *x = blob_of(net, n, in);

	if (!x)
		return false;
	lit_int_list(r, reps, k);
	lead = nd - in->type.ndim;
	for (int i = 0; i < nd; i++)
		dims[i] = i < lead ? 1 : in->type.dims[i - lead];
	if (lead > 0)
		x = reshape_layer(net, n, "leading", x, dims, nd);
	for (int i = 0; i < nd; i++) {
		int64_t times = i < nd - k ? 1 : reps[i - (nd - k)];
		Layer *l;
		Caffe__ConcatParameter *p;

		if (times == 0)
			return refuse(net, n, "a count of 0: Caffe blobs have no empty axis");
		if (times == 1)
			continue;
		/* one Concat bottom per copy (the result fits in a blob: results_fit) */
		dims[i] *= times;
		l = net_layer(net, n, "Concat", "copies");
		p = PARAM(net, l, concat_param, CONCAT_PARAMETER);
		p->has_axis = 1;
		p->axis = i;
		for (int64_t c = 0; c < times; c++)
			layer_bottom(net, l, x);
		x = layer_top(net, l, f32_type(net, dims, nd));
	}
	bind(net, &n->res[0], x);
	return true;
}

/* ---- constants as operands ------------------------------------------------------------------- */

/* The values of the constant c broadcast to the shape `to` (NULL when the weights are not
 * loaded). */
static float *
broadcast_data(Net *net, const Node *n, const Value *c, const Type *to)
{
	const float *src = param_data(net, c);
	int64_t numel = numel_of(to), stride[MAX_DIMS], at = 1;
	int off = to->ndim - c->type.ndim;
	float *out;

	if (!src)
		return NULL;
	/* the source stride of each output axis: 0 where c has no such axis or broadcasts it */
	for (int i = to->ndim - 1; i >= 0; i--) {
		int64_t d = i >= off ? c->type.dims[i - off] : 1;
		stride[i] = d == 1 ? 0 : at;
		at *= d;
	}
	out = constant_weight(net, n, 0, numel, 1, 1);
	for (int64_t k = 0; out && k < numel; k++) {
		int64_t rest = k, from = 0;
		for (int i = to->ndim - 1; i >= 0; i--) {
			from += (rest % to->dims[i]) * stride[i];
			rest /= to->dims[i];
		}
		out[k] = src[from];
	}
	return out;
}


/* The axis along which a constant of type c varies when broadcast against an activation of type
 * x: 1 (channels; 0 for a rank-1 x) when it is 1 on every other axis, so that one Scale blob of
 * x's extent on that axis holds it; -1 otherwise. */
static int
per_channel_axis(const Type *x, const Type *c)
{
	int ch = x->ndim >= 2 ? 1 : 0, off = x->ndim - c->ndim;

	if (c->ndim > x->ndim || x->ndim == 0)
		return -1;
	for (int i = 0; i < c->ndim; i++)
		if (i + off != ch && c->dims[i] != 1)
			return -1;
	return ch;
}


/* x (op) c or c (op) x with a parameter or constant c that is a scalar or varies only along the
 * channel axis: one Scale whose blobs carry c (runtime-facts S6).  With s = −1 for sub and α the
 * op's alpha:
 *   x + s·α·c   Scale{bias_term} weight 1, bias s·α·c    (1·x + b: exact)
 *   c + s·α·x   Scale{bias_term} weight s·α, bias c      (one product, one sum: PyTorch's order)
 *   x·c, c·x    Scale weight c                           (exact)
 *   x / c       Scale weight 1/c                         (within an ulp of the quotient)
 *   c / x       Power{power: −1} then Scale weight c
 * Weights not loaded: the blobs have no data (the caffemodel is not written then). */
static Blob *
scale_by_constant(Net *net, const Node *n, Blob *x, const Value *c, bool c_first, int axis,
		  double alpha)
{
	int64_t ch = x->type.dims[axis];
	const float *cv = param_data(net, c);
	int op = op_base(n->op);
	bool add = op != OP_mul && op != OP_div, div = op == OP_div;
	float *w = cv ? constant_weight(net, n, 1, ch, 1, 1) : NULL,
	      *b = cv && add ? constant_weight(net, n, 0, ch, 1, 1) : NULL;

	if (cv && (!w || (add && !b)))
		return NULL;
	for (int64_t j = 0; cv && j < ch; j++) {
		float v = numel_of(&c->type) == 1 ? cv[0] : cv[j];
		if (add && !c_first) {
			b[j] = (float)(alpha * v);
		} else if (add) {
			w[j] = (float)alpha;
			b[j] = v;
		} else if (div && !c_first) {
			w[j] = (float)(1.0 / v);
		} else {
			w[j] = v;
		}
	}
	if (div && c_first)
		x = power_layer(net, n, "reciprocal", x, -1, 1, 0);
	return scale_layer(net, n, NULL, x, axis, w, add, b);
}

/* ---- arithmetic ------------------------------------------------------------------------------ */

/* Two activations x, y of the output's shape: Eltwise (SUM with coefficients, PROD; a quotient
 * multiplies by the Power −1 of the divisor). */
static Blob *
eltwise_arith(Net *net, const Node *n, Blob *x, Blob *y, bool mul, bool div, double coeff)
{
	if (mul)
		return eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x, y,
				     1);
	if (div)
		return eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD, x,
		               power_layer(net, n, "reciprocal", y, -1, 1, 0), 1);
	return eltwise_layer(net, n, NULL, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, x, y, coeff);
}

/* An activation and a parameter or constant tensor: a Scale when the constant is per channel or
 * a scalar, else the constant as a blob of the activation's shape (constant_blob) and an
 * Eltwise. */
static bool
arith_with_constant(Net *net, Node *n, const Value *av, const Value *bv, bool mul, bool div,
		    double coeff)
{
	/* with two constants, the one of the output's shape is made a blob and the other is the
	 * operand */
	bool c_first = is_param(av) && !(is_param(bv) && type_equal(&av->type, &n->res[0].type));
	const Value *cv = c_first ? av : bv, *xv = c_first ? bv : av;
	const Type *out = &n->res[0].type;
	Blob *x = blob_of(net, n, xv), *k;
	int axis;

	if (!x)
		return false;
	if (!type_equal(&x->type, out)) {
		char sx[TYPE_STR_MAX], so[TYPE_STR_MAX];
		return refuse(net, n,
			      "the constant $%s broadcasts the operand %s to %s; Caffe's layers do "
			      "not broadcast an activation",
			      cv->name, type_str(&x->type, sx, sizeof sx),
			      type_str(out, so, sizeof so));
	}
	if ((axis = per_channel_axis(&x->type, &cv->type)) >= 0) {
		Blob *y = scale_by_constant(net, n, x, cv, c_first, axis, mul || div ? 1 : coeff);

		if (!y)
			return false;
		bind(net, &n->res[0], y);
		return true;
	}
	k = constant_blob(net, n, x, out, broadcast_data(net, n, cv, out));
	/* PyTorch's operand order: the coefficient s·α goes with the second operand */
	bind(net, &n->res[0], c_first ? eltwise_arith(net, n, k, x, mul, div, coeff)
	                              : eltwise_arith(net, n, x, k, mul, div, coeff));
	return true;
}

/* x repeated to the shape `out` that PyTorch broadcasts it to, for an Eltwise; NULL when no exact
 * form is known (x and out of rank 2 to 4, the batch axis unchanged).  x is seen as 4-D: an axis of
 * size 1 before x's first is a leading 1 (PyTorch's alignment), one after out's last a trailing 1.
 * Channels 1 → C: a 1×1 Convolution with C outputs and weight 1; spatial 1 → H, W: a depthwise
 * Deconvolution whose kernel is the size (stride 1, weight 1), output (1 − 1) + k = k.  Each output
 * is one input times 1: exact. */
static Blob *
broadcast_to(Net *net, const Node *n, Blob *x, const Type *out)
{
	int rank = out->ndim, lead = rank - x->type.ndim;
	int64_t d[4] = {1, 1, 1, 1}, o[4] = {1, 1, 1, 1}, one[2] = {1, 1}, zero[2] = {0, 0}, k[2];

	if (rank < 2 || rank > 4 || lead < 0)
		return NULL;
	for (int i = 0; i < rank; i++) {
		o[i] = out->dims[i];
		d[i] = i < lead ? 1 : x->type.dims[i - lead];
		if (d[i] != o[i] && d[i] != 1)
			return NULL;
	}
	if (d[0] != o[0])
		return NULL;
	if (memcmp(d, o, sizeof d) == 0)
		return x;
	if (x->type.ndim != 4)
		x = reshape_layer(net, n, "as_4d", x, d, 4);
	if (d[1] != o[1])
		x = convolution(net, n, "repeat_channels", false, x, o[1], 1, one, one, zero,
				constant_weight(net, n, 1, o[1], 1, 1));
	if (d[2] != o[2] || d[3] != o[3]) {
		k[0] = o[2] / d[2];
		k[1] = o[3] / d[3];
		x = convolution(net, n, "repeat_spatial", true, x, o[1], o[1], k, one, zero,
				constant_weight(net, n, 1, o[1], k[0], k[1]));
	}
	if (rank != 4)
		x = reshape_layer(net, n, "from_4d", x, out->dims, rank);
	return x;
}

/* expand and expand_as: x repeated to the result's shape (broadcast_to: weight-1 Convolutions and
 * Deconvolutions, exact). */
_Static_assert(ARG(expand, input) == ARG(expand_as, input), "lower_expand reads expand's slots");
static bool
lower_expand(Net *net, Node *n)
{
	Blob *x = blob_of(net, n, arg_value(n, ARG(expand, input)));

	if (!x)
		return false;
	if (!(x = broadcast_to(net, n, x, &n->res[0].type)))
		return refuse(net, n,
			      "only repeating the channel and spatial axes of a tensor of rank 2 "
			      "to 4 is lowered");
	bind(net, &n->res[0], x);
	return true;
}

/* add, sub, rsub, mul, div and their in-place forms.  Two activations of the same shape:
 * Eltwise.  An SE-style (N, C, 1, 1) factor times (N, C, H, W): Flatten the factor to (N, C) and
 * Scale with two bottoms (runtime-facts S6).  An activation and a number: Power.  An activation
 * and a parameter or constant tensor: arith_with_constant. */
_Static_assert(ARG(add, other) == ARG(sub, other) && ARG(add, other) == ARG(rsub, other) &&
               ARG(add, other) == ARG(mul, other) && ARG(add, other) == ARG(div, other) &&
               ARG(add, alpha) == ARG(sub, alpha) && ARG(add, alpha) == ARG(rsub, alpha),
               "lower_arith reads add's slots");
static bool
lower_arith(Net *net, Node *n)
{
	const Lit *a = op_arg(n, ARG(add, input)), *b = op_arg(n, ARG(add, other));
	double alpha = 1, num;
	int op = op_base(n->op);
	bool sub = op == OP_sub || op == OP_rsub, mul = op == OP_mul, div = op == OP_div;
	const Type *out = &n->res[0].type;

	if (op == OP_rsub) { /* rsub(input, other) = other − alpha·input */
		const Lit *t = a;
		a = b;
		b = t;
	}
	if (!mul && !div)
		lit_as_float(op_arg(n, ARG(add, alpha)), &alpha);
	if (div && !arg_is_none(n, ARG(div, rounding_mode)))
		return refuse(net, n, "rounding_mode has no Caffe form");
	if (a->kind == L_VALUE && b->kind == L_VALUE && (is_param(a->u.v) || is_param(b->u.v)))
		return arith_with_constant(net, n, a->u.v, b->u.v, mul, div, sub ? -alpha : alpha);
	if (a->kind == L_VALUE && b->kind == L_VALUE) {
		Blob *x = blob_of(net, n, a->u.v), *y = blob_of(net, n, b->u.v);
		if (!x || !y)
			return false;
		if (type_equal(&x->type, &y->type) && type_equal(&x->type, out)) {
			bind(net, &n->res[0],
			     eltwise_arith(net, n, x, y, mul, div, sub ? -alpha : alpha));
			return true;
		}
		if (mul && x->type.ndim == 4) {
			Blob *big = x, *small = y;
			if (!type_equal(&big->type, out)) {
				big = y;
				small = x;
			}
			if (type_equal(&big->type, out) && small->type.ndim == 4 &&
			    small->type.dims[0] == out->dims[0] &&
			    small->type.dims[1] == out->dims[1] && small->type.dims[2] == 1 &&
			    small->type.dims[3] == 1) {
				int64_t nc[2] = {out->dims[0], out->dims[1]};
				Blob *flat = flatten_layer(net, n, "factor", small, 1, -1,
							   f32_type(net, nc, 2));
				Layer *l = net_layer(net, n, "Scale", NULL);
				Caffe__ScaleParameter *p =
					PARAM(net, l, scale_param, SCALE_PARAMETER);
				p->has_axis = 1;
				p->axis = 0;
				layer_bottom(net, l, big);
				layer_bottom(net, l, flat);
				bind(net, &n->res[0], layer_top(net, l, *out));
				return true;
			}
		}
		if ((x = broadcast_to(net, n, x, out)) && (y = broadcast_to(net, n, y, out))) {
			bind(net, &n->res[0],
			     eltwise_arith(net, n, x, y, mul, div, sub ? -alpha : alpha));
			return true;
		}
		char sa[TYPE_STR_MAX], sb[TYPE_STR_MAX];
		return refuse(net, n,
			      "operands %s and %s: only broadcasting along the channel and spatial "
			      "axes of tensors of rank 2 to 4 is lowered",
			      type_str(&a->u.v->type, sa, sizeof sa),
			      type_str(&b->u.v->type, sb, sizeof sb));
	}
	if (a->kind == L_VALUE && lit_as_float(b, &num)) { /* x op number */
		Blob *x = blob_of(net, n, a->u.v);
		if (!x)
			return false;
		if (mul)
			x = power_layer(net, n, NULL, x, 1, num, 0);
		else if (div)
			x = power_layer(net, n, NULL, x, 1, 1 / num, 0);
		else
			x = power_layer(net, n, NULL, x, 1, 1, sub ? -alpha * num : alpha * num);
		bind(net, &n->res[0], x);
		return true;
	}
	if (b->kind == L_VALUE && lit_as_float(a, &num)) { /* number op x */
		Blob *x = blob_of(net, n, b->u.v);
		if (!x)
			return false;
		if (mul)
			x = power_layer(net, n, NULL, x, 1, num, 0);
		else if (div) /* num / x = (x / num)^−1 */
			x = power_layer(net, n, NULL, x, -1, 1 / num, 0);
		else
			x = power_layer(net, n, NULL, x, 1, sub ? -alpha : alpha, num);
		bind(net, &n->res[0], x);
		return true;
	}
	return refuse(net, n, "no operand is a tensor computed by the model");
}

#define X(name, bit) name,
static const char *const target_names[] = {TARGETS(X)};
#undef X

/* Give each computed tensor that l refers to and that has no blob (the op that makes it was
 * refused) a stand-in blob of its type, so that the reader is still lowered and refused only for
 * its own reasons: every independent error in one run, no cascade.  Nothing is written after an
 * error.  (The target probe uses it too: in its scratch net every argument is a stand-in.) */
static void
stand_in_arguments(Net *net, const Lit *l)
{
	if (l->kind == L_VALUE && !is_param(l->u.v)) {
		if (!net->blob_of[l->u.v->id])
			bind(net, l->u.v, net_blob(net, l->u.v->type));
	} else if (l->kind == L_LIST || l->kind == L_SLICE) {
		for (uint32_t i = 0; i < l->n; i++)
			stand_in_arguments(net, &l->u.list[i]);
	}
}

/* Whether `target` lowers n: n lowered alone into a scratch net, its refusals silent. */
static bool
target_lowers(Net *real, Node *n, const char *target)
{
	Net probe;
	bool ok;

	net_init(&probe, real->c, real->olevel, target, false);
	probe.probe = true;
	probe.constant_bytes = real->constant_bytes; /* the caffemodel's limit holds for every
	                                                target */
	for (size_t i = 0; i < real->c->g.inputs.n; i++) /* constants are derived from an input */
		if (real->blob_of[real->c->g.inputs.v[i]->id])
			bind(&probe, real->c->g.inputs.v[i],
			     net_blob(&probe, real->c->g.inputs.v[i]->type));
	for (int i = 0; i < n->nslot; i++)
		stand_in_arguments(&probe, &n->arg[i]);
	ok = results_fit(&probe, n) && lowering[op_base(n->op)].fn(&probe, n) && !probe.refused;
	net_free(&probe);
	return ok;
}

/* After n was refused on this net's target: say which targets lower it, or that none does. */
static void
note_other_targets(Net *net, Node *n)
{
	char list[128] = "";
	size_t len = 0;

	for (size_t i = 0; i < sizeof target_names / sizeof *target_names; i++) {
		if (strcmp(target_names[i], net->target) == 0 ||
		    !target_lowers(net, n, target_names[i]))
			continue;
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
					target_names[i]);
		if (len >= sizeof list)
			break;
	}
	if (len)
		note_at(net->c, n->loc, "%s is lowered exactly for --target=%s", optab[n->op].name,
			list);
	else
		note_at(net->c, n->loc, "no --target lowers it");
}

static bool
node_poisoned(const Node *n)
{
	for (int i = 0; i < n->nres; i++)
		if (n->res[i].flags & V_POISON)
			return true;
	return n->nres == 0 && node_reads_poison(n);
}

/* ---- the pass -------------------------------------------------------------------------------- */

static bool no_lower(Net *net, Node *n);

/* ops.def's back-end columns agree with each other and with layers.def: an op has a lowering
 * exactly when it has targets, and every layer type it lists is a row of layers.def that its
 * targets have.  False with a message naming the first row that does not
 * (tests/unit/test_optable.c). */
bool
lowering_table_check(char *msg, size_t size)
{
	for (int op = 0; op < OP_COUNT; op++) {
		const char *name = optab[op].name, *p = lowering[op].layers;

		if (optab[op].base >= 0)
			continue; /* a twin has its op's row */
		if ((lowering[op].fn == no_lower) != (lowering[op].targets == T_NONE)) {
			snprintf(msg, size, "%s: a lowering needs targets, and targets a lowering",
				 name);
			return false;
		}
		if (lowering[op].fn == no_lower && *p) {
			snprintf(msg, size, "%s: layer types without a lowering", name);
			return false;
		}
		while (*p) {
			char type[64];
			size_t n = strcspn(p, " ");
			const LayerInfo *info;

			snprintf(type, sizeof type, "%.*s", (int)n, p);
			if (!(info = layer_info(type))) {
				snprintf(msg, size, "%s: layer type %s is not in layers.def", name,
					 type);
				return false;
			}
			if (!(info->targets & lowering[op].targets)) {
				snprintf(msg, size, "%s: no target of the op has layer type %s",
					 name, type);
				return false;
			}
			p += n + (p[n] == ' ');
		}
	}
	return true;
}

/* Why an op without a lowering has none, where that is known (lower() adds it to its error). */
static const char *const no_lowering_reason[OP_COUNT] = {
	[OP_lstm] = "Caffe's LSTM layer computes it (BVLC, measured: gates reordered to i, f, o, "
		    "g, the two biases summed, a continuation input 0 then 1), but OpenCV 4.6 "
		    "reads that layer's blobs in another order ([W_h, W_x, b, h0, c0] against "
		    "BVLC's [W_x, b, W_h]), so no LSTM layer runs in both",
	[OP_gru] = "Caffe has no GRU layer",
	[OP_rnn_tanh] = "recurrent layers are not lowered: Caffe's RNN layer takes a "
			"sequence-continuation input, and no exact form has been proven in both "
			"runtimes",
	[OP_rnn_relu] = "Caffe's RNN layer has no ReLU form",
	[OP_lstm_cell] = "a cell is one step of Caffe's LSTM layer, whose blobs BVLC and OpenCV "
			 "4.6 read in different orders",
	[OP_gru_cell] = "Caffe has no GRU layer",
	[OP_rnn_tanh_cell] = "recurrent cells are not lowered (a cell is one step of Caffe's RNN, "
			     "whose exactness is unproven here)",
	[OP_rnn_relu_cell] = "Caffe's RNN layer has no ReLU form",
};

/* The lowering column of an op that has none yet (lower() reports it before calling anything). */
static bool
no_lower(Net *net, Node *n)
{
	(void)net;
	(void)n;
	return false;
}

/* Whether the space-separated list has the word. */
static bool
lists(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == 0))
			return true;
	return false;
}

/* Every layer that n's lowering appended from `first` on has a type of its row's layers column (the
 * layers that make a constant operand a blob, roles const*, come from blob_of and serve any op). */
static void
check_layer_types(const Net *net, const Node *n, size_t first)
{
	const char *row = lowering[op_base(n->op)].layers;

	for (size_t i = first; i < net->layers.n; i++) {
		const Layer *l = net->layers.v[i];
		if (!(l->role && strncmp(l->role, "const", 5) == 0) && !lists(row, l->type))
			ptcc_die("ops.def: the lowering of %s emitted a %s layer, which its layers "
				 "column (\"%s\") does not list",
				 optab[n->op].name, l->type, row);
	}
}

static void
lower_inputs(Net *net)
{
	Graph *g = &net->c->g;

	for (size_t i = 0; i < g->inputs.n; i++) {
		Value *v = g->inputs.v[i];
		Layer *l = net_layer(net, NULL, "Input", NULL);
		Caffe__InputParameter *p = PARAM(net, l, input_param, INPUT_PARAMETER);
		Caffe__BlobShape *shape = arena_alloc(net->arena, sizeof *shape);
		Blob *b;

		*shape = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
		shape->n_dim = v->type.ndim;
		shape->dim = (int64_t *)v->type.dims;
		p->n_shape = 1;
		p->shape = arena_alloc(net->arena, sizeof *p->shape);
		p->shape[0] = shape;
		b = layer_top(net, l, v->type);
		b->is_input = true;
		bind(net, v, b);
	}
}

/* OpenCV 4.6 cannot run a net with an Input layer that nothing reads (getMemoryShapes asserts):
 * leave such an input out, with a warning.  (It stays while lowering: a constant may be derived
 * from it.) */
static void
drop_unread_inputs(Net *net)
{
	Graph *g = &net->c->g;

	net_recount(net);
	for (size_t i = 0; i < g->inputs.n; i++) {
		Blob *b = net->blob_of[g->inputs.v[i]->id];
		if (!b || b->nuse || b->is_output)
			continue;
		/* after an error an op that reads it may just have been skipped */
		if (!lowering_errors(net) && net->c->nerrors == 0)
			warning_at(net->c, value_loc(net->c, g->inputs.v[i]),
				   "input %%%u is not read by any op; the Caffe net leaves it out",
				   g->inputs.v[i]->handle);
		b->producer->dead = true;
		net->blob_of[g->inputs.v[i]->id] = NULL;
	}
	net_recount(net);
}

bool
lower(Net *net)
{
	Ctx *c = net->c;
	Graph *g = &c->g;

	net->errors_before = c->nerrors;
	for (size_t i = 0; i < g->events.n; i++)
		if (!g->events.v[i].is_return && g->events.v[i].scope->depth == 1) {
			net->name = g->events.v[i].scope->cls;
			break;
		}
	lower_inputs(net);
	for (size_t i = 0; i < g->inputs.n; i++)
		if (g->inputs.v[i]->type.dtype != DT_F32) {
			char t[TYPE_STR_MAX];
			error_at(c, value_loc(c, g->inputs.v[i]),
				 "input of type %s: Caffe computes in float32 only",
				 type_str(&g->inputs.v[i]->type, t, sizeof t));
		} else if (numel_of(&g->inputs.v[i]->type) > INT32_MAX) {
			char t[TYPE_STR_MAX];
			error_at(c, value_loc(c, g->inputs.v[i]),
				 "input of type %s, %lld elements: a Caffe blob holds at most "
				 "2147483647",
				 type_str(&g->inputs.v[i]->type, t, sizeof t),
				 (long long)numel_of(&g->inputs.v[i]->type));
		}
	for (Node *n = g->first; n; n = n->next) {
		LowerFn *fn = lowering[op_base(n->op)].fn;
		if (node_poisoned(n))
			continue; /* its line or one it reads from has an error, already reported */
		if (fn == no_lower && no_lowering_reason[op_base(n->op)]) {
			error_at(c, n->loc, "%s: not lowered for any target: %s", optab[n->op].name,
				 no_lowering_reason[op_base(n->op)]);
			continue;
		}
		if (fn == no_lower) {
			error_at(c, n->loc, "%s: ptcc does not lower this op yet, for any target",
				 optab[n->op].name);
			continue;
		}
		if (!(lowering[op_base(n->op)].targets & target_bit(net->target))) {
			error_at(c, n->loc, "%s: ptcc does not lower this op for --target=%s",
				 optab[n->op].name, net->target);
			continue;
		}
		if (n->res[0].type.dtype != DT_F32 && n->res[0].type.dtype != DT_UNKNOWN) {
			char t[TYPE_STR_MAX];
			refuse(net, n, "a result of type %s; Caffe computes in float32 only",
			       type_str(&n->res[0].type, t, sizeof t));
			continue;
		}
		if (n->nres > 0 && n->res[0].type.ndim == 0 && n->res[0].type.dtype == DT_F32) {
			/* OpenCV refuses a Reshape to no axes, BVLC blobs want one: no op's 0-d
			 * result can be a blob */
			refuse(net, n, "the result has no axis; Caffe blobs have at least one");
			continue;
		}
		if (!results_fit(net, n))
			continue;
		if (lowering_errors(net))
			for (int i = 0; i < n->nslot; i++)
				stand_in_arguments(net, &n->arg[i]);
		if (net->shuffle_at[n->idx]) {
			lower_shuffle(net, n, net->shuffle_at[n->idx]);
			continue;
		}
		int errors = c->nerrors;
		size_t first = net->layers.n;
		int64_t constants = net->constant_bytes;
		/* a helper that refused (constant_weight) may have let its lowering go on */
		if (fn(net, n) && c->nerrors == errors) {
			check_layer_types(net, n, first);
			continue;
		}
		/* a refused op's constants are never written: neither the probes of the other
		 * targets nor the later ops count them */
		net->constant_bytes = constants;
		if (c->nerrors > errors && !c->stopped)
			note_other_targets(net, n);
	}
	for (size_t i = 0; i < g->outputs.n; i++) {
		Output *o = &g->outputs.v[i];
		if (o->ref.kind != L_VALUE || (o->ref.u.v->flags & V_POISON))
			continue;
		Value *v = o->ref.u.v;
		Blob *b = net->blob_of[v->id];
		/* a constant output */
		if (!b && is_param(v) && !lowering_errors(net) && !(b = blob_of(net, NULL, v))) {
			error_at(c, o->loc, "output: the constant $%s cannot be a Caffe blob (%s)",
				 v->name,
				 v->type.ndim ? "the net has no input to derive it from"
					      : "it has no axis");
			continue;
		}
		if (!b || !output_name_free(net, i))
			continue;
		bool again = b->is_output;
		if (b->is_input || again || (b->producer && b->producer->tops.v[0] != b)) {
			/* OpenCV reads an output by its layer's name, which gives the layer's
			 * first top: a later top (a chunk's second part) gets a layer of its
			 * own, a Reshape that keeps every axis; so does an input returned as an
			 * output (a Dropout dropped at -O1 can leave one), and a value returned
			 * twice (each output has a name of its own) */
			Blob *own = net_identity(net, b->producer->node, "output", b);
			if (!b->is_input && !again) /* an input keeps its blob: name.c names it
			                               after the trace's input */
				bind(net, v, own);
			b = own;
		}
		b->is_output = true;
		vec_push(&net->outputs, b);
		vec_push(&net->output_names, o->name);
	}
	drop_unread_inputs(net);
	return lowering_errors(net) == 0;
}
