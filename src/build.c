/* build.c: layer builders, the blocks that lower.c's lowerings are made of.  Each appends one
 * layer (or a short fixed chain: clamp_chain, constant_blob) to the net and returns its top;
 * none decides whether a lowering is exact, which is lower.c's job.  The Caffe semantics they
 * rely on are in docs/runtime-facts.md. */
#include "net.h"

#include <math.h>
#include <string.h>

Type
f32_type(Net *net, const int64_t *dims, int ndim)
{
	return type_make(net->c, DT_F32, dims, ndim);
}

int64_t
numel_of(const Type *t)
{
	int64_t n = 1;

	for (int i = 0; i < t->ndim; i++)
		n *= t->dims[i];
	return n;
}

/* A one-bottom, one-top layer. */
Layer *
unary_layer(Net *net, const Node *n, const char *type, const char *role, Blob *in, Type out,
	    Blob **top)
{
	Layer *l = net_layer(net, n, type, role);

	layer_bottom(net, l, in);
	*top = layer_top(net, l, out);
	return l;
}

/* Power: (shift + scale·x)^power. */
Blob *
power_layer(Net *net, const Node *n, const char *role, Blob *in, double pw, double scale,
	    double shift)
{
	Blob *top;
	Layer *l = unary_layer(net, n, "Power", role, in, in->type, &top);
	Caffe__PowerParameter *p = PARAM(net, l, power_param, POWER_PARAMETER);

	if (pw != 1) { p->has_power = 1; p->power = (float)pw; }
	if (scale != 1) { p->has_scale = 1; p->scale = (float)scale; }
	if (shift != 0) { p->has_shift = 1; p->shift = (float)shift; }
	return top;
}

Blob *
relu_layer(Net *net, const Node *n, const char *role, Blob *in, double slope)
{
	Blob *top;
	Layer *l = unary_layer(net, n, "ReLU", role, in, in->type, &top);

	if (slope != 0) {
		Caffe__ReLUParameter *p = PARAM(net, l, relu_param, RE_LUPARAMETER);
		p->has_negative_slope = 1;
		p->negative_slope = (float)slope;
	}
	return top;
}

/* clamp(x, lo, hi) on stock layers, exact wherever the result is x itself:
 *   m = max(x, lo) = x + ReLU(lo − x)      (for lo = 0 simply ReLU(x))
 *   y = min(m, hi) = m − ReLU(m − hi)
 * The older chain hi − ReLU(hi − ReLU(x)) (runtime-facts S9) is exact only to an absolute
 * 2^−24·hi: it turns an activation of 1e-6 into one off by 10 % (6 − (6 − x) rounds x to a
 * multiple of 4.8e-7).  lo = −inf or hi = +inf leaves that side out (a one-sided clamp); the
 * caller keeps lo < hi. */
Blob *
clamp_chain(Net *net, const Node *n, Blob *x, double lo, double hi, const char *last_role)
{
	bool high = hi < INFINITY;
	Blob *m = x, *over;

	if (lo == 0) {
		m = relu_layer(net, n, high ? "low" : last_role, x, 0);
	} else if (lo > -INFINITY) {
		Blob *under =
			relu_layer(net, n, "under", power_layer(net, n, "below", x, 1, -1, lo), 0);
		m = eltwise_layer(net, n, high ? "low" : last_role,
				  CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, x, under, 1);
	}
	if (!high)
		return m;
	over = relu_layer(net, n, "over", power_layer(net, n, "above", m, 1, 1, -hi), 0);
	return eltwise_layer(net, n, last_role, CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM, m, over,
			     -1);
}

Blob *
eltwise_layer(Net *net, const Node *n, const char *role, int op, Blob *a, Blob *b, double coeff_b)
{
	Layer *l = net_layer(net, n, "Eltwise", role);
	Caffe__EltwiseParameter *p;

	layer_bottom(net, l, a);
	layer_bottom(net, l, b);
	if (op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM && coeff_b == 1)
		return layer_top(net, l, a->type); /* SUM is the default: no eltwise_param at all */
	p = PARAM(net, l, eltwise_param, ELTWISE_PARAMETER);
	if (op != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM) {
		p->has_operation = 1;
		p->operation = op;
	}
	if (coeff_b != 1) {
		p->n_coeff = 2;
		p->coeff = net_floats(net, 2, 1);
		p->coeff[1] = (float)coeff_b;
	}
	return layer_top(net, l, a->type);
}

/* Conv-style repeated fields: one value when both axes agree, else the _h/_w pair. */
void
conv_hw_field(Net *net, uint32_t **rep, size_t *nrep, uint32_t *h, protobuf_c_boolean *has_h,
	      uint32_t *w, protobuf_c_boolean *has_w, const int64_t v[2], int64_t dflt)
{
	if (v[0] == v[1]) {
		if (v[0] != dflt) {
			*rep = arena_alloc(net->arena, sizeof(uint32_t));
			(*rep)[0] = (uint32_t)v[0];
			*nrep = 1;
		}
	} else {
		*has_h = *has_w = 1;
		*h = (uint32_t)v[0];
		*w = (uint32_t)v[1];
	}
}

/* Caffe's pooling output size (runtime-facts S2): ceil, then drop a last window that starts in
 * the bottom padding. */
int64_t
caffe_pool_out(int64_t h, int64_t k, int64_t s, int64_t p)
{
	int64_t span = h + 2 * p - k;
	int64_t out = (span + s - 1) / s + 1;

	if (span < 0)
		return 0;
	if (p > 0 && (out - 1) * s >= h + p)
		out--;
	return out;
}

/* PyTorch's (and OpenCV's with ceil_mode: false) pooling output size: floor. */
int64_t
floor_pool_out(int64_t h, int64_t k, int64_t s, int64_t p)
{
	return (h + 2 * p - k) / s + 1;
}

/* A Slice of x along axis at the given points; returns its tops (arena array), all marked
 * discard but the ones the caller keeps. */
Blob **
slice_layer(Net *net, const Node *n, const char *role, Blob *x, int axis, const int64_t *points,
	    int npoints)
{
	Layer *l = net_layer(net, n, "Slice", role);
	Caffe__SliceParameter *p = PARAM(net, l, slice_param, SLICE_PARAMETER);
	Blob **tops = arena_alloc(net->arena, sizeof(Blob *) * (size_t)(npoints + 1));
	int64_t dims[MAX_DIMS], at = 0;

	p->has_axis = 1;
	p->axis = axis;
	p->n_slice_point = (size_t)npoints;
	p->slice_point = arena_alloc(net->arena, sizeof(uint32_t) * (size_t)npoints);
	layer_bottom(net, l, x);
	memcpy(dims, x->type.dims, sizeof(int64_t) * x->type.ndim);
	for (int i = 0; i <= npoints; i++) {
		int64_t end = i < npoints ? points[i] : x->type.dims[axis];
		if (i < npoints)
			p->slice_point[i] = (uint32_t)points[i];
		dims[axis] = end - at;
		tops[i] = layer_top(net, l, f32_type(net, dims, x->type.ndim));
		tops[i]->discard = true;
		at = end;
	}
	return tops;
}

/* Crop a pooled blob to PyTorch's size: Slice on each axis where Caffe's rounding gave one more
 * row or column, keeping the first part (runtime-facts S2), which is also the top OpenCV's
 * forward(layer) returns.  The cut-off part is an unused top. */
Blob *
crop_to(Net *net, const Node *n, Blob *x, const Type *want)
{
	static const char *const role[2] = {"crop_h", "crop_w"};

	for (int axis = 2; axis < 4; axis++) {
		int64_t keep = want->dims[axis];
		if (x->type.dims[axis] == keep)
			continue;
		Blob **parts = slice_layer(net, n, role[axis - 2], x, axis, &keep, 1);
		parts[0]->discard = false;
		x = parts[0];
	}
	return x;
}

Blob *
pooling_layer(Net *net, const Node *n, const char *role, Blob *x, int method, const int64_t k[2],
        const int64_t s[2], const int64_t p[2], bool global)
{
	return pooling_layer_rounded(net, n, role, x, method, k, s, p, global, false);
}

/* pooling_layer, with PyTorch's floor rounding of the window count when `floor` (OpenCV's
 * ceil_mode: false, where target_has_field allows it). */
Blob *
pooling_layer_rounded(Net *net, const Node *n, const char *role, Blob *x, int method,
		      const int64_t k[2], const int64_t s[2], const int64_t p[2], bool global,
		      bool floor)
{
	Layer *l = net_layer(net, n, "Pooling", role);
	Caffe__PoolingParameter *pp = PARAM(net, l, pooling_param, POOLING_PARAMETER);
	int64_t dims[4] = {x->type.dims[0], x->type.dims[1], 1, 1};

	pp->has_pool = 1; /* always: OpenCV cannot tell a global pooling's type without it */
	pp->pool = method;
	if (global) {
		pp->has_global_pooling = 1;
		pp->global_pooling = 1;
	} else {
		if (k[0] == k[1]) { pp->has_kernel_size = 1; pp->kernel_size = (uint32_t)k[0];
		} else {
			pp->has_kernel_h = pp->has_kernel_w = 1;
			pp->kernel_h = (uint32_t)k[0];
			pp->kernel_w = (uint32_t)k[1];
		}
		if (s[0] == s[1]) {
			if (s[0] != 1) {
				pp->has_stride = 1;
				pp->stride = (uint32_t)s[0];
			}
		} else {
			pp->has_stride_h = pp->has_stride_w = 1;
			pp->stride_h = (uint32_t)s[0];
			pp->stride_w = (uint32_t)s[1];
		}
		if (p[0] == p[1]) { if (p[0] != 0) { pp->has_pad = 1; pp->pad = (uint32_t)p[0]; }
		} else {
			pp->has_pad_h = pp->has_pad_w = 1;
			pp->pad_h = (uint32_t)p[0];
			pp->pad_w = (uint32_t)p[1];
		}
		for (int i = 0; i < 2; i++)
			dims[2 + i] = (floor ? floor_pool_out : caffe_pool_out)(x->type.dims[2 + i],
										k[i], s[i], p[i]);
		if (floor) {
			pp->has_ceil_mode = 1;
			pp->ceil_mode = 0;
		}
	}
	layer_bottom(net, l, x);
	return layer_top(net, l, f32_type(net, dims, 4));
}

Blob *
flatten_layer(Net *net, const Node *n, const char *role, Blob *x, int axis, int end_axis, Type out)
{
	Blob *top;
	Layer *l = unary_layer(net, n, "Flatten", role, x, out, &top);

	if (axis != 1 || end_axis != -1) {
		Caffe__FlattenParameter *p = PARAM(net, l, flatten_param, FLATTEN_PARAMETER);
		if (axis != 1) { p->has_axis = 1; p->axis = axis; }
		if (end_axis != -1) { p->has_end_axis = 1; p->end_axis = end_axis; }
	}
	return top;
}

/* Replicate-pad one row (axis 2) or column (axis 3) on each side: Concat(first, x, last). */
Blob *
replicate_pad(Net *net, const Node *n, Blob *x, int axis)
{
	int64_t size = x->type.dims[axis], dims[4], points[2] = {1, size - 1};
	Blob *first = x, *last = x, **parts;
	Layer *cat;
	Caffe__ConcatParameter *p;

	if (size >= 2) {
		parts = slice_layer(net, n, axis == 2 ? "edge_h" : "edge_w", x, axis, points,
				    size == 2 ? 1 : 2);
		first = parts[0];
		last = parts[size == 2 ? 1 : 2];
		first->discard = last->discard = false;
	}
	cat = net_layer(net, n, "Concat", axis == 2 ? "pad_h" : "pad_w");
	p = PARAM(net, cat, concat_param, CONCAT_PARAMETER);
	p->has_axis = 1;
	p->axis = axis;
	layer_bottom(net, cat, first);
	layer_bottom(net, cat, x);
	layer_bottom(net, cat, last);
	memcpy(dims, x->type.dims, sizeof dims);
	dims[axis] += 2;
	return layer_top(net, cat, f32_type(net, dims, 4));
}

/* A Convolution (or, when `deconv`, a Deconvolution) of x without bias: out_c outputs in `group`
 * groups, kernel k, stride s, padding p, weights w (Convolution: out_c × C/group × k[0] × k[1];
 * Deconvolution: C × out_c/group × k[0] × k[1]).  Output size per axis: ⌊(in + 2p − k)/s⌋ + 1,
 * or s·(in − 1) + k − 2p for a Deconvolution. */
Blob *
convolution(Net *net, const Node *n, const char *role, bool deconv, Blob *x, int64_t out_c,
            int64_t group, const int64_t k[2], const int64_t s[2], const int64_t p[2],
            const float *w)
{
	int64_t c = x->type.dims[1], dims[4];
	Layer *l = net_layer(net, n, deconv ? "Deconvolution" : "Convolution", role);
	Caffe__ConvolutionParameter *cp = PARAM(net, l, convolution_param, CONVOLUTION_PARAMETER);

	cp->has_num_output = cp->has_bias_term = 1;
	cp->num_output = (uint32_t)out_c;
	cp->bias_term = 0;
	if (group != 1) {
		cp->has_group = 1;
		cp->group = (uint32_t)group;
	}
	conv_hw_field(net, &cp->kernel_size, &cp->n_kernel_size, &cp->kernel_h, &cp->has_kernel_h,
		      &cp->kernel_w, &cp->has_kernel_w, k, -1);
	conv_hw_field(net, &cp->stride, &cp->n_stride, &cp->stride_h, &cp->has_stride_h,
		      &cp->stride_w, &cp->has_stride_w, s, 1);
	conv_hw_field(net, &cp->pad, &cp->n_pad, &cp->pad_h, &cp->has_pad_h, &cp->pad_w,
		      &cp->has_pad_w, p, 0);
	layer_bottom(net, l, x);
	dims[0] = deconv ? c : out_c;
	dims[1] = (deconv ? out_c : c) / group;
	dims[2] = k[0];
	dims[3] = k[1];
	layer_weight(net, l, w, dims[0] * dims[1] * k[0] * k[1], dims, 4);
	memcpy(dims, x->type.dims, sizeof dims);
	dims[1] = out_c;
	for (int a = 0; a < 2; a++) {
		int64_t in = x->type.dims[2 + a];
		dims[2 + a] = deconv ? s[a] * (in - 1) + k[a] - 2 * p[a]
		                     : (in + 2 * p[a] - k[a]) / s[a] + 1;
	}
	return layer_top(net, l, f32_type(net, dims, 4));
}

/* A depthwise Deconvolution (group = num_output = channels, no bias) with kernel k, stride s,
 * padding p and per-channel weights w (channels × 1 × k[0] × k[1]). */
Blob *
grouped_deconvolution(Net *net, const Node *n, Blob *x, const int64_t k[2], const int64_t s[2],
                      const int64_t p[2], const float *w)
{
	int64_t c = x->type.dims[1];

	return convolution(net, n, NULL, true, x, c, c, k, s, p, w);
}

/* A Reshape of x to the given dims. */
Blob *
reshape_layer(Net *net, const Node *n, const char *role, Blob *x, const int64_t *dims, int ndim)
{
	Blob *top;
	Layer *l = unary_layer(net, n, "Reshape", role, x, f32_type(net, dims, ndim), &top);
	Caffe__ReshapeParameter *p = PARAM(net, l, reshape_param, RESHAPE_PARAMETER);

	p->shape = arena_alloc(net->arena, sizeof *p->shape);
	*p->shape = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
	p->shape->n_dim = (size_t)ndim;
	p->shape->dim = arena_alloc(net->arena, sizeof(int64_t) * (ndim ? (size_t)ndim : 1));
	for (int i = 0; i < ndim; i++)
		p->shape->dim[i] = dims[i];
	return top;
}

/* x itself when it already has the given dims, else a Reshape of x to them. */
Blob *
reshape_to(Net *net, const Node *n, const char *role, Blob *x, const int64_t *dims, int ndim)
{
	if (x->type.ndim == ndim && memcmp(x->type.dims, dims, sizeof(int64_t) * (size_t)ndim) == 0)
		return x;
	return reshape_layer(net, n, role, x, dims, ndim);
}

/* A blob holding a constant tensor of type t.  Caffe has no constant layer that both runtimes
 * load (DummyData and Parameter are BVLC-only, runtime-facts S1), so it is derived from an
 * activation `src`: a Reshape to (1, 1, 1, K) and a global MAX Pooling give one element;
 * Power{power: 0} makes it exactly 1 whatever it held (both runtimes compute shift^power = 1
 * when power·scale = 0, even for inf and nan); an InnerProduct with a zero weight and the
 * constant as its bias gives 0·1 + b = b exactly; a Reshape gives it the constant's shape.  The
 * values travel in the caffemodel like any weight.  (A Slice would be cheaper than the pooling
 * but leaves an unused top, which BVLC Caffe counts among the net's outputs.) */
Blob *
constant_blob(Net *net, const Node *n, Blob *src, const Type *t, const void *data)
{
	int64_t m = numel_of(t), row[4] = {1, 1, 1, -1}, wdims[2] = {m, 1}; /* -1: any input size */
	int64_t flat[2] = {1, m};
	Blob *x, *top;
	Layer *l;

	x = reshape_layer(net, n, "const_source", src, row, 4);
	x->type = f32_type(net, (int64_t[4]){1, 1, 1, numel_of(&src->type)}, 4);
	x = pooling_layer(net, n, "const_first", x, CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX,
			  NULL, NULL, NULL, true);
	x = power_layer(net, n, "const_one", x, 0, 1, 0);
	l = unary_layer(net, n, "InnerProduct", "const", x, f32_type(net, flat, 2), &top);
	Caffe__InnerProductParameter *p =
		PARAM(net, l, inner_product_param, INNER_PRODUCT_PARAMETER);
	p->has_num_output = 1;
	p->num_output = (uint32_t)m;
	layer_weight(net, l, net->with_weights ? constant_weight(net, n, 0, m, 1, 1) : NULL, m,
		     wdims, 2);
	layer_weight(net, l, data, m, &m, 1);
	if (t->ndim == 2 && t->dims[0] == 1)
		return top;
	return reshape_layer(net, n, "const_shape", top, t->dims, t->ndim);
}

/* A one-bottom Scale on `axis` with per-channel weight w and, when `bias`, bias b (blobs of x's
 * extent there; the data is NULL when the weights are not loaded). */
Blob *
scale_layer(Net *net, const Node *n, const char *role, Blob *x, int axis, const void *w, bool bias,
            const void *b)
{
	int64_t c = x->type.dims[axis];
	Blob *top;
	Layer *l = unary_layer(net, n, "Scale", role, x, x->type, &top);

	if (axis != 1 || bias) { /* no empty scale_param */
		Caffe__ScaleParameter *p = PARAM(net, l, scale_param, SCALE_PARAMETER);
		if (axis != 1) {
			p->has_axis = 1;
			p->axis = axis;
		}
		if (bias) {
			p->has_bias_term = 1;
			p->bias_term = 1;
		}
	}
	layer_weight(net, l, w, c, &c, 1);
	if (bias)
		layer_weight(net, l, b, c, &c, 1);
	return top;
}

/* Channel shuffle as a permutation of channels (runtime-facts S1: no 5-D transpose in portable
 * Caffe, and OpenCV's ShuffleChannel cannot be given its group): one 1x1 Convolution whose
 * weight is the permutation matrix, output channel j·g + i being input channel i·(C/g) + j.
 * Each output sums one product x·1 and zeros, so it is exact (for finite activations: 0·inf
 * would be nan). */
Blob *
channel_permutation(Net *net, const Node *n, Blob *x, int64_t groups)
{
	int64_t c = x->type.dims[1], per = c / groups, one[2] = {1, 1}, zero[2] = {0, 0};
	float *w = constant_weight(net, n, 0, c, c, 1);

	for (int64_t i = 0; w && i < groups; i++)
		for (int64_t j = 0; j < per; j++)
			w[(j * groups + i) * c + i * per + j] = 1;
	return convolution(net, n, NULL, false, x, c, 1, one, one, zero, w);
}
