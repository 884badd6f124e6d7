/* shape.c: infer every value's type from the inputs alone, and check every annotation against
 * it (except the dims of one made stale by --input, which are counted instead).
 *
 * Each op's ShapeFn (named in ops.def) gets the node, whose tensor arguments all have known
 * types, and fills out[0..nres-1] with dims in scratch memory; the pass interns them.  A rule
 * diagnoses what makes the op impossible (a weight that does not fit, a dimension out of range)
 * at the argument concerned, and returns false.  Arithmetic on dimensions is checked: overflow
 * is an error, never a wrap.
 */
#include "ptcc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------------- */

static int64_t *
tmp_dims(Ctx *c, int n)
{
	size_t need = c->tmpdims.n + (size_t)n;
	int64_t *p;

	if (need > c->tmpdims.cap) {
		/* never move dims already handed out for this node: allocate a fresh block
		 * instead */
		p = arena_alloc(&c->arena, (size_t)(n ? n : 1) * sizeof *p);
		return p;
	}
	p = c->tmpdims.v + c->tmpdims.n;
	c->tmpdims.n = need;
	return p;
}

static const Type *
targ(const Node *n, int slot)
{
	const Lit *l = op_arg(n, slot);

	return l->kind == L_VALUE ? &l->u.v->type : NULL;
}

static Loc
arg_loc(Ctx *c, const Node *n, int slot)
{
	if (n->arg[slot].kind != L_ABSENT && n->arg[slot].pos != UINT32_MAX)
		return lit_loc(c, &n->arg[slot]);
	return n->loc;
}

static const char *
tstr(const Type *t, char *buf)
{
	return type_str(t, buf, TYPE_STR_MAX);
}

#define TS(t) tstr((t), (char[TYPE_STR_MAX]){0})

static bool
want_results(Ctx *c, Node *n, int k)
{
	if (n->nres == k)
		return true;
	error_at(c, n->loc, "%s gives %d result%s here, but the line names %d", optab[n->op].name,
		 k, k == 1 ? "" : "s", (int)n->nres);
	return false;
}

/* Normalise a possibly negative dimension index against ndim (PyTorch's wrap_dim). */
static bool
norm_dim(Ctx *c, Node *n, int slot, int64_t d, int ndim, int *out)
{
	int64_t lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;

	if (d < lo || d > hi) {
		error_at(c, arg_loc(c, n, slot),
			 "dimension %lld is out of range for a %d-d tensor (expected %lld to %lld)",
			 (long long)d, ndim, (long long)lo, (long long)hi);
		return false;
	}
	*out = (int)(d < 0 ? d + (ndim > 0 ? ndim : 1) : d);
	return true;
}

static bool
get_int(Ctx *c, Node *n, int slot, int64_t *v)
{
	const Lit *l = op_arg(n, slot);

	if (l->kind == L_INT) {
		*v = l->u.i;
		return true;
	}
	error_at(c, arg_loc(c, n, slot), "argument '%s' of %s must be an integer here",
		 optab[n->op].params[slot].name, optab[n->op].name);
	return false;
}

static bool
get_ints(Ctx *c, Node *n, int slot, int64_t *out, int k)
{
	if (lit_int_list(op_arg(n, slot), out, k))
		return true;
	error_at(c, arg_loc(c, n, slot),
		 "argument '%s' of %s must be an integer or a list of %d integers",
		 optab[n->op].params[slot].name, optab[n->op].name, k);
	return false;
}

static bool
overflow(Ctx *c, Node *n)
{
	error_at(c, n->loc, "a dimension of the result of %s overflows", optab[n->op].name);
	return false;
}

/* An argument whose value makes the arithmetic of the result's size overflow: named with its
 * value, at the argument, so that the trace's huge number is found at once. */
static bool
overflows(Ctx *c, Node *n, int slot, int64_t v)
{
	error_at(c, arg_loc(c, n, slot), "%s=%lld overflows the output size of %s",
		 optab[n->op].params[slot].name, (long long)v, optab[n->op].name);
	return false;
}

static void
copy_type(Ctx *c, Type *out, const Type *in)
{
	int64_t *d = tmp_dims(c, in->ndim);

	memcpy(d, in->dims, in->ndim * sizeof *d);
	out->dtype = in->dtype;
	out->ndim = in->ndim;
	out->dims = d;
}

/* A 1-d parameter of length k (a bias, BatchNorm's statistics). */
static bool
check_vec(Ctx *c, Node *n, int slot, int64_t k, const char *what)
{
	const Type *t = targ(n, slot);

	if (!t)
		return true;
	if (t->ndim != 1 || t->dims[0] != k) {
		error_at(c, arg_loc(c, n, slot), "%s of %s has type %s, but %s needs [%lld]",
			 optab[n->op].params[slot].name, optab[n->op].name, TS(t), what,
			 (long long)k);
		return false;
	}
	return true;
}

/* ---- rules ----------------------------------------------------------------------------------- */

/* Rules read arguments by name: ARG(conv2d, stride) is stride's slot in a conv2d node's arg[]
 * (ptcc.h).  A rule that serves several ops (ops.def's shape column) names one of them, and
 * asserts below that every other op it serves has each parameter it reads there at the same
 * slot; where the slots differ, it branches on the op.  Slot 0 (input, tensor, tensors) needs no
 * assert: a struct's first member is at offset 0.  An in-place twin (relu_) uses its op's slots. */
#define SAME_ARG(op, other, param)                          \
	_Static_assert(ARG(op, param) == ARG(other, param), \
		       #other "'s " #param " is not at " #op "'s slot")

bool
sh_same(Ctx *c, Node *n, Type *out)
{
	if (!want_results(c, n, 1))
		return false;
	copy_type(c, &out[0], targ(n, ARG(relu, input))); /* every op it serves: its tensor, at
	                                                     slot 0 */
	return true;
}

/* A `dtype=` argument (softmax, mean, sum) sets the result's dtype; false after a diagnostic. */
static bool
apply_dtype(Ctx *c, Node *n, int slot, Type *out)
{
	const Lit *dt = op_arg(n, slot);
	int x;

	if (dt->kind != L_SYM)
		return true;
	if ((x = dtype_lookup(dt->u.s)) < 0) {
		error_at(c, arg_loc(c, n, slot), "'%s' is not a dtype", dt->u.s);
		return false;
	}
	out[0].dtype = (uint8_t)x;
	return true;
}

/* softmax, log_softmax */
SAME_ARG(softmax, log_softmax, dim);
SAME_ARG(softmax, log_softmax, dtype);

bool
sh_softmax(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(softmax, input));
	const Lit *d = op_arg(n, ARG(softmax, dim));
	int k;

	if (!sh_same(c, n, out))
		return false;
	if (d->kind == L_INT && !norm_dim(c, n, ARG(softmax, dim), d->u.i, t->ndim, &k))
		return false;
	return apply_dtype(c, n, ARG(softmax, dtype), out);
}

bool
sh_prelu(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(prelu, input)), *w = targ(n, ARG(prelu, weight));
	int64_t numel;

	if (!sh_same(c, n, out))
		return false;
	if (!type_numel(w, &numel) || (numel != 1 && (t->ndim < 2 || numel != t->dims[1]))) {
		error_at(c, arg_loc(c, n, ARG(prelu, weight)),
			 "weight of prelu has type %s, but the input has %lld channels", TS(w),
			 t->ndim >= 2 ? (long long)t->dims[1] : 1LL);
		return false;
	}
	return true;
}

/* batch_norm, instance_norm */
SAME_ARG(batch_norm, instance_norm, running_mean);
SAME_ARG(batch_norm, instance_norm, running_var);
SAME_ARG(batch_norm, instance_norm, weight);
SAME_ARG(batch_norm, instance_norm, bias);

bool
sh_batch_norm(Ctx *c, Node *n, Type *out)
{
	static const int vec[] = {ARG(batch_norm, running_mean), ARG(batch_norm, running_var),
	                          ARG(batch_norm, weight), ARG(batch_norm, bias)};
	const Type *t = targ(n, ARG(batch_norm, input));
	int64_t ch;
	bool ok = true;
	int i;

	if (!want_results(c, n, 1))
		return false;
	if (t->ndim < 2) {
		error_at(c, arg_loc(c, n, ARG(batch_norm, input)),
			 "%s needs an input with a channel dimension, not %s", optab[n->op].name,
			 TS(t));
		return false;
	}
	ch = t->dims[1];
	for (i = 0; i < 4; i++)
		ok &= check_vec(c, n, vec[i], ch, "an input with that many channels");
	if (!ok)
		return false;
	copy_type(c, &out[0], t);
	return true;
}

bool
sh_layer_norm(Ctx *c, Node *n, Type *out)
{
	static const int wb[] = {ARG(layer_norm, weight), ARG(layer_norm, bias)};
	const Type *t = targ(n, ARG(layer_norm, input));
	const Lit *ns = op_arg(n, ARG(layer_norm, normalized_shape));
	int64_t shp[MAX_DIMS];
	int k = ns->kind == L_INT ? 1 : (int)ns->n, i;

	if (!want_results(c, n, 1))
		return false;
	if (k > t->ndim || !lit_int_list(ns, shp, k)) {
		error_at(c, arg_loc(c, n, ARG(layer_norm, normalized_shape)),
			 "normalized_shape does not fit an input of type %s", TS(t));
		return false;
	}
	for (i = 0; i < k; i++)
		if (shp[i] != t->dims[t->ndim - k + i]) {
			error_at(c, arg_loc(c, n, ARG(layer_norm, normalized_shape)),
				 "normalized_shape does not match the last dimensions of %s",
				 TS(t));
			return false;
		}
	for (i = 0; i < 2; i++) {
		const Type *w = targ(n, wb[i]);

		if (w && (w->ndim != k || memcmp(w->dims, shp, (size_t)k * sizeof *shp) != 0)) {
			error_at(c, arg_loc(c, n, wb[i]),
				 "%s of layer_norm has type %s, which is not normalized_shape",
				 optab[n->op].params[wb[i]].name, TS(w));
			return false;
		}
	}
	copy_type(c, &out[0], t);
	return true;
}

bool
sh_group_norm(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(group_norm, input));
	int64_t g;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(group_norm, num_groups), &g))
		return false;
	if (t->ndim < 2 || g <= 0 || t->dims[1] % g != 0) {
		error_at(c, arg_loc(c, n, ARG(group_norm, num_groups)),
			 "%lld groups do not divide the channels of %s", (long long)g, TS(t));
		return false;
	}
	if (!check_vec(c, n, ARG(group_norm, weight), t->dims[1],
		       "an input with that many channels") ||
	    !check_vec(c, n, ARG(group_norm, bias), t->dims[1], "an input with that many channels"))
		return false;
	copy_type(c, &out[0], t);
	return true;
}

/* The spatial size of a convolution or pooling window: floor or ceil of
 * (in + 2 pad - dil (k - 1) - 1) / stride + 1.  dslot and pslot are the dilation and padding
 * arguments, blamed when their product or sum overflows (dslot -1: no dilation); the stride
 * only divides, so any stride gives a size. */
static bool
window_out(Ctx *c, Node *n, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode,
           int dslot, int pslot, int64_t *out)
{
	int64_t eff, num, o, last;

	if (!ck_mul(d, k - 1, &eff) || !ck_add(eff, 1, &eff))
		return overflows(c, n, dslot, d);
	if (!ck_mul(p, 2, &num) || !ck_add(in, num, &num))
		return overflows(c, n, pslot, p);
	num -= eff; /* both non-negative: no overflow */
	if (num < 0) {
		error_at(c, n->loc,
			 "the window of %s (%lld with dilation) is larger than the padded input "
			 "(%lld)",
			 optab[n->op].name, (long long)eff, (long long)(in + 2 * p));
		return false;
	}
	o = (ceil_mode ? ceil_div(num, s) : num / s) + 1;
	/* PyTorch: the last window must start inside the input or the left padding (a start
	 * past INT64_MAX is past it too) */
	if (ceil_mode && (!ck_mul(o - 1, s, &last) || last >= in + p))
		o--;
	*out = o;
	return true;
}

static bool
positive(Ctx *c, Node *n, int slot, const int64_t *v, int k, bool allow_zero)
{
	int i;

	for (i = 0; i < k; i++)
		if (v[i] < 0 || (!allow_zero && v[i] == 0)) {
			error_at(c, arg_loc(c, n, slot), "%s of %s must be %s, not %lld",
				 optab[n->op].params[slot].name, optab[n->op].name,
				 allow_zero ? "non-negative" : "positive", (long long)v[i]);
			return false;
		}
	return true;
}

/* The number of spatial dimensions of a conv or pool op: its F_DIM1, F_DIM2 or F_DIM3. */
static int
spatial(const Node *n)
{
	switch (optab[n->op].flags & F_DIMS) {
	case F_DIM1:
		return 1;
	case F_DIM3:
		return 3;
	default:
		return 2;
	}
}

/* Input [N, C, spatial...] or [C, spatial...]: the first spatial dimension's index, or -1. */
static int
image_input(Ctx *c, Node *n, const Type *t, int k)
{
	if (t->ndim == k + 2 || t->ndim == k + 1)
		return t->ndim - k;
	/* slot 0, the input of every conv and pool op */
	error_at(c, arg_loc(c, n, ARG(conv2d, input)), "%s needs a %d-d or %d-d input, not %s",
		 optab[n->op].name, k + 1, k + 2, TS(t));
	return -1;
}

/* conv1d, conv2d, conv3d */
SAME_ARG(conv2d, conv1d, weight);
SAME_ARG(conv2d, conv1d, bias);
SAME_ARG(conv2d, conv1d, stride);
SAME_ARG(conv2d, conv1d, padding);
SAME_ARG(conv2d, conv1d, dilation);
SAME_ARG(conv2d, conv1d, groups);
SAME_ARG(conv2d, conv3d, weight);
SAME_ARG(conv2d, conv3d, bias);
SAME_ARG(conv2d, conv3d, stride);
SAME_ARG(conv2d, conv3d, padding);
SAME_ARG(conv2d, conv3d, dilation);
SAME_ARG(conv2d, conv3d, groups);

bool
sh_conv(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(conv2d, input)), *w = targ(n, ARG(conv2d, weight));
	int64_t stride[3], pad[3], dil[3], groups, *d;
	const Lit *pl = op_arg(n, ARG(conv2d, padding));
	int k = spatial(n), sp, b, i;
	bool same = false;

	if (!want_results(c, n, 1) || (sp = image_input(c, n, t, k)) < 0)
		return false;
	b = sp - 1; /* the channel dimension */
	if (!get_ints(c, n, ARG(conv2d, stride), stride, k) ||
	    !get_ints(c, n, ARG(conv2d, dilation), dil, k) ||
	    !get_int(c, n, ARG(conv2d, groups), &groups))
		return false;
	if (pl->kind == L_STR) {
		if (strcmp(pl->u.s, "valid") == 0)
			pad[0] = pad[1] = pad[2] = 0;
		else if (strcmp(pl->u.s, "same") == 0)
			same = true;
		else {
			error_at(
				c, arg_loc(c, n, ARG(conv2d, padding)),
				"padding of %s must be \"valid\", \"same\" or integers, not \"%s\"",
				optab[n->op].name, pl->u.s);
			return false;
		}
	} else if (!get_ints(c, n, ARG(conv2d, padding), pad, k))
		return false;
	if (!positive(c, n, ARG(conv2d, stride), stride, k, false) ||
	    !positive(c, n, ARG(conv2d, dilation), dil, k, false) ||
	    (!same && !positive(c, n, ARG(conv2d, padding), pad, k, true)))
		return false;
	if (groups <= 0) {
		error_at(c, arg_loc(c, n, ARG(conv2d, groups)),
			 "groups of %s must be positive, not %lld", optab[n->op].name,
			 (long long)groups);
		return false;
	}
	if (w->ndim != k + 2) {
		error_at(c, arg_loc(c, n, ARG(conv2d, weight)),
			 "weight of %s must be %d-d [out, in/groups, kernel...], not %s",
			 optab[n->op].name, k + 2, TS(w));
		return false;
	}
	if (!ck_mul(w->dims[1], groups, &(int64_t){0}) || w->dims[1] * groups != t->dims[b]) {
		error_at(c, arg_loc(c, n, ARG(conv2d, weight)),
			 "weight of %s has type %s: %lld input channels x %lld groups, but the "
			 "input %s has %lld channels",
			 optab[n->op].name, TS(w), (long long)w->dims[1], (long long)groups, TS(t),
			 (long long)t->dims[b]);
		return false;
	}
	if (w->dims[0] % groups != 0) {
		error_at(c, arg_loc(c, n, ARG(conv2d, weight)),
		         "weight of %s has %lld output channels, not a multiple of %lld groups",
		         optab[n->op].name, (long long)w->dims[0], (long long)groups);
		return false;
	}
	if (!check_vec(c, n, ARG(conv2d, bias), w->dims[0],
		       "a weight with that many output channels"))
		return false;
	for (i = 0; same && i < k; i++)
		if (stride[i] != 1) {
			error_at(c, arg_loc(c, n, ARG(conv2d, padding)),
				 "padding=\"same\" needs stride 1");
			return false;
		}
	d = tmp_dims(c, t->ndim);
	if (b)
		d[0] = t->dims[0];
	d[b] = w->dims[0];
	for (i = 0; i < k; i++) {
		if (same)
			d[sp + i] = t->dims[sp + i];
		else if (!window_out(c, n, t->dims[sp + i], w->dims[2 + i], stride[i], pad[i],
				     dil[i], false, ARG(conv2d, dilation), ARG(conv2d, padding),
				     &d[sp + i]))
			return false;
		if (d[sp + i] <= 0) {
			error_at(c, n->loc, "%s gives an empty output", optab[n->op].name);
			return false;
		}
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

/* conv_transpose1d, conv_transpose2d, conv_transpose3d */
SAME_ARG(conv_transpose2d, conv_transpose1d, weight);
SAME_ARG(conv_transpose2d, conv_transpose1d, bias);
SAME_ARG(conv_transpose2d, conv_transpose1d, stride);
SAME_ARG(conv_transpose2d, conv_transpose1d, padding);
SAME_ARG(conv_transpose2d, conv_transpose1d, output_padding);
SAME_ARG(conv_transpose2d, conv_transpose1d, groups);
SAME_ARG(conv_transpose2d, conv_transpose1d, dilation);
SAME_ARG(conv_transpose2d, conv_transpose3d, weight);
SAME_ARG(conv_transpose2d, conv_transpose3d, bias);
SAME_ARG(conv_transpose2d, conv_transpose3d, stride);
SAME_ARG(conv_transpose2d, conv_transpose3d, padding);
SAME_ARG(conv_transpose2d, conv_transpose3d, output_padding);
SAME_ARG(conv_transpose2d, conv_transpose3d, groups);
SAME_ARG(conv_transpose2d, conv_transpose3d, dilation);

bool
sh_conv_transpose(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(conv_transpose2d, input)),
		   *w = targ(n, ARG(conv_transpose2d, weight));
	int64_t stride[3], pad[3], opad[3], dil[3], groups, *d, cout;
	int k = spatial(n), sp, b, i;

	if (!want_results(c, n, 1) || (sp = image_input(c, n, t, k)) < 0)
		return false;
	b = sp - 1;
	if (!get_ints(c, n, ARG(conv_transpose2d, stride), stride, k) ||
	    !get_ints(c, n, ARG(conv_transpose2d, padding), pad, k) ||
	    !get_ints(c, n, ARG(conv_transpose2d, output_padding), opad, k) ||
	    !get_int(c, n, ARG(conv_transpose2d, groups), &groups) ||
	    !get_ints(c, n, ARG(conv_transpose2d, dilation), dil, k))
		return false;
	if (!positive(c, n, ARG(conv_transpose2d, stride), stride, k, false) ||
	    !positive(c, n, ARG(conv_transpose2d, padding), pad, k, true) ||
	    !positive(c, n, ARG(conv_transpose2d, output_padding), opad, k, true) ||
	    !positive(c, n, ARG(conv_transpose2d, dilation), dil, k, false))
		return false;
	if (groups <= 0 || w->ndim != k + 2 || w->dims[0] != t->dims[b] ||
	    t->dims[b] % groups != 0) {
		error_at(c, arg_loc(c, n, ARG(conv_transpose2d, weight)),
			 "weight of %s has type %s, which does not fit the input %s with %lld "
			 "groups",
			 optab[n->op].name, TS(w), TS(t), (long long)groups);
		return false;
	}
	if (!ck_mul(w->dims[1], groups, &cout))
		return overflow(c, n);
	if (!check_vec(c, n, ARG(conv_transpose2d, bias), cout,
		       "a weight with that many output channels"))
		return false;
	d = tmp_dims(c, t->ndim);
	if (b)
		d[0] = t->dims[0];
	d[b] = cout;
	for (i = 0; i < k; i++) {
		/* (in - 1) stride - 2 pad + dil (k - 1) + output_padding + 1 */
		int64_t x, y, p2;

		if (!ck_mul(t->dims[sp + i] - 1, stride[i], &x))
			return overflows(c, n, ARG(conv_transpose2d, stride), stride[i]);
		if (!ck_mul(dil[i], w->dims[2 + i] - 1, &y) || !ck_add(x, y, &x))
			return overflows(c, n, ARG(conv_transpose2d, dilation), dil[i]);
		if (!ck_add(x, opad[i], &x) || !ck_add(x, 1, &x))
			return overflows(c, n, ARG(conv_transpose2d, output_padding), opad[i]);
		if (!ck_mul(pad[i], 2, &p2) || !ck_sub(x, p2, &x))
			return overflows(c, n, ARG(conv_transpose2d, padding), pad[i]);
		if (x <= 0) {
			error_at(c, n->loc, "%s gives an empty output", optab[n->op].name);
			return false;
		}
		d[sp + i] = x;
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

bool
sh_linear(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(linear, input)), *w = targ(n, ARG(linear, weight));
	int64_t *d;

	if (!want_results(c, n, 1))
		return false;
	if (t->ndim < 1) {
		error_at(c, arg_loc(c, n, ARG(linear, input)),
			 "linear needs an input with at least one dimension");
		return false;
	}
	if (w->ndim != 2 || w->dims[1] != t->dims[t->ndim - 1]) {
		error_at(c, arg_loc(c, n, ARG(linear, weight)),
			 "weight of linear has type %s, but the input %s has %lld features", TS(w),
			 TS(t), (long long)t->dims[t->ndim - 1]);
		return false;
	}
	if (!check_vec(c, n, ARG(linear, bias), w->dims[0], "a weight with that many outputs"))
		return false;
	d = tmp_dims(c, t->ndim);
	memcpy(d, t->dims, t->ndim * sizeof *d);
	d[t->ndim - 1] = w->dims[0];
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

/* Broadcast two shapes (numpy rules) into d; false if they do not broadcast. */
static bool
broadcast(const int64_t *a, int na, const int64_t *b, int nb, int64_t *d, int *nd)
{
	int n = na > nb ? na : nb, i;

	for (i = 0; i < n; i++) {
		int64_t x = i < n - na ? 1 : a[i - (n - na)], y = i < n - nb ? 1 : b[i - (n - nb)];

		if (x != y && x != 1 && y != 1)
			return false;
		d[i] = x == 1 ? y : x;
	}
	*nd = n;
	return true;
}

bool
sh_matmul(Ctx *c, Node *n, Type *out)
{
	const Type *a = targ(n, ARG(matmul, input)), *b = targ(n, ARG(matmul, other));
	int64_t *d, k1, k2;
	int nd = 0, na = a->ndim, nb = b->ndim, nbatch;

	if (!want_results(c, n, 1))
		return false;
	if (na == 0 || nb == 0) {
		error_at(c, n->loc, "matmul needs tensors with at least one dimension");
		return false;
	}
	k1 = a->dims[na - 1];
	k2 = nb == 1 ? b->dims[0] : b->dims[nb - 2];
	if (k1 != k2) {
		error_at(c, n->loc, "matmul of %s and %s: inner dimensions %lld and %lld differ",
			 TS(a), TS(b), (long long)k1, (long long)k2);
		return false;
	}
	d = tmp_dims(c, MAX_DIMS + 2);
	if (na > 2 || nb > 2) {
		if (!broadcast(a->dims, na > 2 ? na - 2 : 0, b->dims, nb > 2 ? nb - 2 : 0, d,
			       &nbatch)) {
			error_at(c, n->loc,
				 "matmul: the batch dimensions of %s and %s do not broadcast",
				 TS(a), TS(b));
			return false;
		}
		nd = nbatch;
	}
	if (na >= 2)
		d[nd++] = a->dims[na - 2];
	if (nb >= 2)
		d[nd++] = b->dims[nb - 1];
	out[0] = (Type){a->dtype, (uint8_t)nd, 0, UINT32_MAX, d};
	return true;
}

/* max_pool1d..3d (F_INDICES) and avg_pool1d..3d: the same slots up to padding, then max
 * pooling's dilation and avg pooling's ceil_mode share a slot. */
SAME_ARG(max_pool2d, max_pool1d, kernel_size);
SAME_ARG(max_pool2d, max_pool1d, stride);
SAME_ARG(max_pool2d, max_pool1d, padding);
SAME_ARG(max_pool2d, max_pool1d, dilation);
SAME_ARG(max_pool2d, max_pool1d, ceil_mode);
SAME_ARG(max_pool2d, max_pool1d, return_indices);
SAME_ARG(max_pool2d, max_pool3d, kernel_size);
SAME_ARG(max_pool2d, max_pool3d, stride);
SAME_ARG(max_pool2d, max_pool3d, padding);
SAME_ARG(max_pool2d, max_pool3d, dilation);
SAME_ARG(max_pool2d, max_pool3d, ceil_mode);
SAME_ARG(max_pool2d, max_pool3d, return_indices);
SAME_ARG(max_pool2d, avg_pool1d, kernel_size);
SAME_ARG(max_pool2d, avg_pool1d, stride);
SAME_ARG(max_pool2d, avg_pool1d, padding);
SAME_ARG(max_pool2d, avg_pool2d, kernel_size);
SAME_ARG(max_pool2d, avg_pool2d, stride);
SAME_ARG(max_pool2d, avg_pool2d, padding);
SAME_ARG(max_pool2d, avg_pool3d, kernel_size);
SAME_ARG(max_pool2d, avg_pool3d, stride);
SAME_ARG(max_pool2d, avg_pool3d, padding);
SAME_ARG(avg_pool2d, avg_pool1d, ceil_mode);
SAME_ARG(avg_pool2d, avg_pool3d, ceil_mode);

bool
sh_pool(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(max_pool2d, input));
	const char *name = optab[n->op].name;
	bool is_max = (optab[n->op].flags & F_INDICES) != 0;
	int k = spatial(n), sp, i;
	int64_t ks[3], s[3], p[3], dil[3] = {1, 1, 1}, *d;
	const Lit *sl = op_arg(n, ARG(max_pool2d, stride));
	const Lit *ceil =
		op_arg(n, is_max ? ARG(max_pool2d, ceil_mode) : ARG(avg_pool2d, ceil_mode));
	bool indices = is_max && op_arg(n, ARG(max_pool2d, return_indices))->u.i;

	if (!want_results(c, n, indices ? 2 : 1) || (sp = image_input(c, n, t, k)) < 0)
		return false;
	if (!get_ints(c, n, ARG(max_pool2d, kernel_size), ks, k) ||
	    !get_ints(c, n, ARG(max_pool2d, padding), p, k) ||
	    (is_max && !get_ints(c, n, ARG(max_pool2d, dilation), dil, k)))
		return false;
	if (sl->kind == L_NONE || (sl->kind == L_LIST && sl->n == 0))
		memcpy(s, ks, sizeof s);
	else if (!get_ints(c, n, ARG(max_pool2d, stride), s, k))
		return false;
	if (!positive(c, n, ARG(max_pool2d, kernel_size), ks, k, false) ||
	    !positive(c, n, ARG(max_pool2d, stride), s, k, false) ||
	    !positive(c, n, ARG(max_pool2d, padding), p, k, true) ||
	    (is_max && !positive(c, n, ARG(max_pool2d, dilation), dil, k, false)))
		return false;
	for (i = 0; i < k; i++)
		if (p[i] > ks[i] / 2) {
			error_at(c, arg_loc(c, n, ARG(max_pool2d, padding)),
				 "padding %lld of %s is more than half the kernel size %lld",
				 (long long)p[i], name, (long long)ks[i]);
			return false;
		}
	d = tmp_dims(c, t->ndim);
	memcpy(d, t->dims, (size_t)sp * sizeof *d);
	for (i = 0; i < k; i++) {
		if (!window_out(c, n, t->dims[sp + i], ks[i], s[i], p[i], dil[i], ceil->u.i,
				is_max ? ARG(max_pool2d, dilation) : -1, ARG(max_pool2d, padding),
				&d[sp + i]))
			return false;
		if (d[sp + i] <= 0) {
			error_at(c, n->loc, "%s gives an empty output", name);
			return false;
		}
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	if (indices)
		out[1] = (Type){DT_I64, t->ndim, 0, UINT32_MAX, d};
	return true;
}

/* adaptive_avg_pool1d..3d, adaptive_max_pool1d..2d (F_INDICES: they have return_indices) */
SAME_ARG(adaptive_max_pool2d, adaptive_avg_pool1d, output_size);
SAME_ARG(adaptive_max_pool2d, adaptive_avg_pool2d, output_size);
SAME_ARG(adaptive_max_pool2d, adaptive_avg_pool3d, output_size);
SAME_ARG(adaptive_max_pool2d, adaptive_max_pool1d, output_size);
SAME_ARG(adaptive_max_pool2d, adaptive_max_pool1d, return_indices);

bool
sh_adaptive_pool(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(adaptive_max_pool2d, input));
	const Lit *os = op_arg(n, ARG(adaptive_max_pool2d, output_size));
	bool indices = (optab[n->op].flags & F_INDICES) &&
		       op_arg(n, ARG(adaptive_max_pool2d, return_indices))->u.i;
	int k = spatial(n), sp, i;
	int64_t *d;

	if (!want_results(c, n, indices ? 2 : 1) || (sp = image_input(c, n, t, k)) < 0)
		return false;
	d = tmp_dims(c, t->ndim);
	memcpy(d, t->dims, t->ndim * sizeof *d);
	for (i = 0; i < k; i++) {
		const Lit *e = os->kind == L_INT                       ? os
			       : os->kind == L_LIST && (int)os->n == k ? &os->u.list[i]
			       : os->kind == L_LIST && os->n == 1      ? &os->u.list[0]
								       : NULL;

		if (e && e->kind == L_NONE)
			continue;
		if (!e || e->kind != L_INT || e->u.i <= 0) {
			error_at(c, arg_loc(c, n, ARG(adaptive_max_pool2d, output_size)),
				 "output_size of %s must be a positive integer or a list of %d (or "
				 "none)",
				 optab[n->op].name, k);
			return false;
		}
		d[sp + i] = e->u.i;
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	if (indices)
		out[1] = (Type){DT_I64, t->ndim, 0, UINT32_MAX, d};
	return true;
}

/* dtype of a binary op: the tensor operand's, a float tensor's over an integer one's; integer
 * tensors with a float scalar (or true division) give f32, PyTorch's default dtype. */
static int
binary_dtype(const Lit *a, const Lit *b, bool div)
{
	int da = a->kind == L_VALUE ? a->u.v->type.dtype : -1,
	    db = b->kind == L_VALUE ? b->u.v->type.dtype : -1;
	int dt;

	if (da >= 0 && db >= 0)
		dt = dtype_is_float(da) || !dtype_is_float(db) ? da : db;
	else
		dt = da >= 0 ? da : db;
	if (!dtype_is_float(dt) && ((a->kind == L_FLOAT || b->kind == L_FLOAT) || div))
		dt = DT_F32;
	return dt;
}

/* add, sub, mul, div, rsub, pow, bitwise_and, bitwise_or, bitwise_xor, floor_divide, remainder,
 * maximum, minimum and their in-place twins; eq, ne, lt, le, gt, ge through sh_compare;
 * max(input, other) through sh_max.  The second operand is at one slot in all of them. */
SAME_ARG(add, sub, other);
SAME_ARG(add, mul, other);
SAME_ARG(add, div, other);
SAME_ARG(add, rsub, other);
SAME_ARG(add, bitwise_and, other);
SAME_ARG(add, bitwise_or, other);
SAME_ARG(add, bitwise_xor, other);
SAME_ARG(add, floor_divide, other);
SAME_ARG(add, remainder, other);
SAME_ARG(add, maximum, other);
SAME_ARG(add, minimum, other);
SAME_ARG(add, eq, other);
SAME_ARG(add, ne, other);
SAME_ARG(add, lt, other);
SAME_ARG(add, le, other);
SAME_ARG(add, gt, other);
SAME_ARG(add, ge, other);
_Static_assert(ARG(add, other) == ARG(pow, exponent), "pow's exponent is not at add's other");
_Static_assert(ARG(add, other) == ARG(max, dim), "max's dim is not at add's other");

bool
sh_binary(Ctx *c, Node *n, Type *out)
{
	const Lit *a = op_arg(n, ARG(add, input)), *b = op_arg(n, ARG(add, other));
	static const int64_t none[1];
	const int64_t *da = a->kind == L_VALUE ? a->u.v->type.dims : none,
		      *db = b->kind == L_VALUE ? b->u.v->type.dims : none;
	int na = a->kind == L_VALUE ? a->u.v->type.ndim : 0,
	    nb = b->kind == L_VALUE ? b->u.v->type.ndim : 0, nd;
	int64_t *d;

	if (!want_results(c, n, 1))
		return false;
	if (a->kind != L_VALUE && b->kind != L_VALUE) {
		error_at(c, n->loc, "%s needs at least one tensor operand", optab[n->op].name);
		return false;
	}
	d = tmp_dims(c, MAX_DIMS);
	if (!broadcast(da, na, db, nb, d, &nd)) {
		error_at(c, n->loc, "%s: the shapes %s and %s do not broadcast", optab[n->op].name,
			 TS(&a->u.v->type), TS(&b->u.v->type));
		return false;
	}
	if ((optab[n->op].flags & F_INPLACE) &&
	    (nd != na || memcmp(d, da, (size_t)nd * sizeof *d) != 0)) {
		error_at(c, n->loc,
			 "%s writes %s in place, but the broadcast result has another shape",
			 optab[n->op].name, TS(&a->u.v->type));
		return false;
	}
	out[0] = (Type){(uint8_t)binary_dtype(a, b, op_base(n->op) == OP_div), (uint8_t)nd, 0,
			UINT32_MAX, d};
	if (optab[n->op].flags & F_INPLACE)
		out[0].dtype = a->u.v->type.dtype;
	return true;
}

bool
sh_compare(Ctx *c, Node *n, Type *out)
{
	if (!sh_binary(c, n, out))
		return false;
	out[0].dtype = DT_BOOL;
	return true;
}

bool
sh_flatten(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(flatten, input));
	int64_t s, e, prod = 1, *d;
	int si, ei, i, k = 0, nd = t->ndim ? t->ndim : 1;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(flatten, start_dim), &s) ||
	    !get_int(c, n, ARG(flatten, end_dim), &e))
		return false;
	if (!norm_dim(c, n, ARG(flatten, start_dim), s, t->ndim, &si) ||
	    !norm_dim(c, n, ARG(flatten, end_dim), e, t->ndim, &ei))
		return false;
	if (si > ei) {
		error_at(c, n->loc, "flatten: start_dim %lld comes after end_dim %lld",
			 (long long)s, (long long)e);
		return false;
	}
	d = tmp_dims(c, nd);
	if (t->ndim == 0) {
		d[0] = 1;
		out[0] = (Type){t->dtype, 1, 0, UINT32_MAX, d};
		return true;
	}
	for (i = 0; i < si; i++)
		d[k++] = t->dims[i];
	for (i = si; i <= ei; i++)
		if (!ck_mul(prod, t->dims[i], &prod))
			return overflow(c, n);
	d[k++] = prod;
	for (i = ei + 1; i < t->ndim; i++)
		d[k++] = t->dims[i];
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* view(input, size), reshape(input, shape) */
_Static_assert(ARG(view, size) == ARG(reshape, shape), "reshape's shape is not at view's size");

bool
sh_reshape(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(view, input));
	const Lit *sz = op_arg(n, ARG(view, size));
	int k = sz->kind == L_INT ? 1 : (int)sz->n, i, infer = -1;
	int64_t numel, prod = 1, *d;

	if (!want_results(c, n, 1))
		return false;
	if (k > MAX_DIMS) {
		error_at(c, arg_loc(c, n, ARG(view, size)), "%s to more than %d dimensions",
			 optab[n->op].name, MAX_DIMS);
		return false;
	}
	d = tmp_dims(c, k);
	if (!get_ints(c, n, ARG(view, size), d, k))
		return false;
	if (!type_numel(t, &numel))
		return overflow(c, n);
	for (i = 0; i < k; i++) {
		if (d[i] == -1 && infer < 0) {
			infer = i;
			continue;
		}
		if (d[i] < 0) {
			error_at(c, arg_loc(c, n, ARG(view, size)), "invalid size %lld in %s",
				 (long long)d[i], optab[n->op].name);
			return false;
		}
		if (!ck_mul(prod, d[i], &prod))
			return overflow(c, n);
	}
	if (infer >= 0) {
		if (prod == 0 || numel % prod != 0) {
			error_at(c, arg_loc(c, n, ARG(view, size)),
				 "cannot %s %s (%lld elements) with an inferred dimension",
				 optab[n->op].name, TS(t), (long long)numel);
			return false;
		}
		d[infer] = numel / prod;
	} else if (prod != numel) {
		error_at(c, arg_loc(c, n, ARG(view, size)),
			 "cannot %s %s (%lld elements) to %lld elements", optab[n->op].name, TS(t),
			 (long long)numel, (long long)prod);
		return false;
	}
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

bool
sh_permute(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(permute, input));
	int64_t perm[MAX_DIMS], *d;
	bool seen[MAX_DIMS] = {0};
	int i, k;

	if (!want_results(c, n, 1) || !get_ints(c, n, ARG(permute, dims), perm, t->ndim))
		return false;
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++) {
		if (!norm_dim(c, n, ARG(permute, dims), perm[i], t->ndim, &k))
			return false;
		if (seen[k]) {
			error_at(c, arg_loc(c, n, ARG(permute, dims)),
				 "permute: dimension %d repeats", k);
			return false;
		}
		seen[k] = true;
		d[i] = t->dims[k];
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

bool
sh_transpose(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(transpose, input));
	int64_t a, b, x;
	int i, j;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(transpose, dim0), &a) ||
	    !get_int(c, n, ARG(transpose, dim1), &b))
		return false;
	if (!norm_dim(c, n, ARG(transpose, dim0), a, t->ndim, &i) ||
	    !norm_dim(c, n, ARG(transpose, dim1), b, t->ndim, &j))
		return false;
	copy_type(c, &out[0], t);
	if (t->ndim) {
		int64_t *d = (int64_t *)out[0].dims;

		x = d[i];
		d[i] = d[j];
		d[j] = x;
	}
	return true;
}

bool
sh_squeeze(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(squeeze, input));
	const Lit *dl = op_arg(n, ARG(squeeze, dim));
	bool drop[MAX_DIMS] = {0};
	int64_t *d;
	int i, k = 0, idx;

	if (!want_results(c, n, 1))
		return false;
	if (dl->kind == L_NONE) {
		for (i = 0; i < t->ndim; i++)
			drop[i] = t->dims[i] == 1;
	} else {
		int cnt = dl->kind == L_INT ? 1 : (int)dl->n;

		for (i = 0; i < cnt; i++) {
			int64_t v = dl->kind == L_INT ? dl->u.i : dl->u.list[i].u.i;

			if (!norm_dim(c, n, ARG(squeeze, dim), v, t->ndim, &idx))
				return false;
			if (t->ndim)
				drop[idx] = t->dims[idx] == 1;
		}
	}
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++)
		if (!drop[i])
			d[k++] = t->dims[i];
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

bool
sh_unsqueeze(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(unsqueeze, input));
	int64_t v, *d;
	int idx, i, k = 0;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(unsqueeze, dim), &v))
		return false;
	if (t->ndim >= MAX_DIMS) {
		error_at(c, n->loc, "unsqueeze: more than %d dimensions", MAX_DIMS);
		return false;
	}
	if (!norm_dim(c, n, ARG(unsqueeze, dim), v, t->ndim + 1, &idx))
		return false;
	d = tmp_dims(c, t->ndim + 1);
	for (i = 0; i <= t->ndim; i++) {
		if (i == idx)
			d[k++] = 1;
		if (i < t->ndim)
			d[k++] = t->dims[i];
	}
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

bool
sh_expand(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(expand, input));
	const Lit *sz = op_arg(n, ARG(expand, size));
	int k = sz->kind == L_INT ? 1 : (int)sz->n, i, lead;
	int64_t *d;

	if (!want_results(c, n, 1))
		return false;
	if (k < t->ndim || k > MAX_DIMS) {
		error_at(c, arg_loc(c, n, ARG(expand, size)), "expand: %d sizes for %s", k, TS(t));
		return false;
	}
	d = tmp_dims(c, k);
	if (!get_ints(c, n, ARG(expand, size), d, k))
		return false;
	lead = k - t->ndim;
	for (i = 0; i < k; i++) {
		int64_t have = i < lead ? -2 : t->dims[i - lead];

		if (d[i] == -1 && have != -2)
			d[i] = have;
		else if (d[i] < 0 || (have != -2 && have != 1 && have != d[i])) {
			error_at(c, arg_loc(c, n, ARG(expand, size)),
				 "cannot expand %s to size %lld in dimension %d", TS(t),
				 (long long)d[i], i);
			return false;
		}
	}
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* Python slice length with PyTorch's clamping; step > 0. */
static bool
slice_len(Ctx *c, Node *n, const Lit *s, int64_t size, int64_t *len)
{
	int64_t start, step;

	if (!lit_slice(s, size, &start, len, &step)) {
		error_at(c, n->loc,
			 "getitem: a slice needs integer or none bounds and a positive step");
		return false;
	}
	return true;
}

bool
sh_getitem(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(getitem, input));
	const Lit *ix = op_arg(n, ARG(getitem, index));
	const Lit *items = ix->kind == L_LIST ? ix->u.list : ix;
	int nitems = ix->kind == L_LIST ? (int)ix->n : 1, i, j, src = 0, consumed = 0, k = 0;
	int64_t *d;
	bool ell = false;

	if (!want_results(c, n, 1))
		return false;
	for (i = 0; i < nitems; i++) {
		int kind = items[i].kind;

		if (kind == L_INT || kind == L_SLICE)
			consumed++;
		else if (kind == L_ELLIPSIS) {
			if (ell) {
				error_at(c, arg_loc(c, n, ARG(getitem, index)),
					 "getitem: more than one '...'");
				return false;
			}
			ell = true;
		} else if (kind != L_NONE) {
			error_at(c, arg_loc(c, n, ARG(getitem, index)),
				 "getitem with %s as an index is not supported",
				 lit_kind_name(&items[i]));
			return false;
		}
	}
	if (consumed > t->ndim) {
		error_at(c, arg_loc(c, n, ARG(getitem, index)), "getitem: %d indices for %s",
			 consumed, TS(t));
		return false;
	}
	d = tmp_dims(c, MAX_DIMS);
	for (i = 0; i < nitems; i++) {
		const Lit *e = &items[i];

		if (k >= MAX_DIMS) {
			error_at(c, arg_loc(c, n, ARG(getitem, index)),
				 "getitem: more than %d dimensions", MAX_DIMS);
			return false;
		}
		switch (e->kind) {
		case L_NONE:
			d[k++] = 1;
			break;
		case L_ELLIPSIS:
			for (j = 0; j < t->ndim - consumed; j++)
				d[k++] = t->dims[src++];
			break;
		case L_INT: {
			int64_t size = t->dims[src];

			if (e->u.i < -size || e->u.i >= size) {
				error_at(c, arg_loc(c, n, ARG(getitem, index)),
					 "getitem: index %lld is out of range for size %lld",
					 (long long)e->u.i, (long long)size);
				return false;
			}
			src++;
			break;
		}
		case L_SLICE:
			if (!slice_len(c, n, e, t->dims[src], &d[k]))
				return false;
			k++;
			src++;
			break;
		}
	}
	while (src < t->ndim && k < MAX_DIMS)
		d[k++] = t->dims[src++];
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* Results of splitting dimension `dim` of t into pieces of the given sizes. */
static bool
split_results(Ctx *c, Node *n, const Type *t, int dim, const int64_t *sizes, int count, Type *out)
{
	int i;

	if (!want_results(c, n, count))
		return false;
	for (i = 0; i < count; i++) {
		copy_type(c, &out[i], t);
		((int64_t *)out[i].dims)[dim] = sizes[i];
	}
	return true;
}

bool
sh_chunk(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(chunk, input));
	int64_t chunks, dv, size, each, sizes[256];
	int dim, count = 0;

	if (!get_int(c, n, ARG(chunk, chunks), &chunks) || !get_int(c, n, ARG(chunk, dim), &dv))
		return false;
	if (chunks <= 0) {
		error_at(c, arg_loc(c, n, ARG(chunk, chunks)),
			 "chunks of chunk must be positive, not %lld", (long long)chunks);
		return false;
	}
	if (t->ndim == 0) {
		error_at(c, arg_loc(c, n, ARG(chunk, input)),
			 "chunk needs a tensor with at least one dimension");
		return false;
	}
	if (!norm_dim(c, n, ARG(chunk, dim), dv, t->ndim, &dim))
		return false;
	size = t->dims[dim];
	each = ceil_div(size, chunks);
	if (each == 0)
		sizes[count++] = 0;
	else
		for (; size > 0 && count < 256; size -= each)
			sizes[count++] = size < each ? size : each;
	if (size > 0) {
		error_at(c, n->loc, "chunk gives more than 255 results");
		return false;
	}
	return split_results(c, n, t, dim, sizes, count, out);
}

bool
sh_split(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(split, tensor));
	const Lit *s = op_arg(n, ARG(split, split_size_or_sections));
	int64_t dv, size, sizes[256], sum = 0;
	int dim, count = 0;
	uint32_t i;

	if (!get_int(c, n, ARG(split, dim), &dv))
		return false;
	if (t->ndim == 0) {
		error_at(c, arg_loc(c, n, ARG(split, tensor)),
			 "split needs a tensor with at least one dimension");
		return false;
	}
	if (!norm_dim(c, n, ARG(split, dim), dv, t->ndim, &dim))
		return false;
	size = t->dims[dim];
	if (s->kind == L_INT) {
		if (s->u.i <= 0 && !(s->u.i == 0 && size == 0)) {
			error_at(c, arg_loc(c, n, ARG(split, split_size_or_sections)),
				 "split size must be positive, not %lld", (long long)s->u.i);
			return false;
		}
		if (size == 0)
			sizes[count++] = 0;
		for (; size > 0 && count < 256; size -= s->u.i)
			sizes[count++] = size < s->u.i ? size : s->u.i;
		if (size > 0) {
			error_at(c, n->loc, "split gives more than 255 results");
			return false;
		}
	} else {
		if (s->n > 255) {
			error_at(c, n->loc, "split gives more than 255 results");
			return false;
		}
		for (i = 0; i < s->n; i++) {
			sizes[count++] = s->u.list[i].u.i;
			if (s->u.list[i].u.i < 0 || !ck_add(sum, s->u.list[i].u.i, &sum)) {
				error_at(c, arg_loc(c, n, ARG(split, split_size_or_sections)),
					 "split sizes must be non-negative");
				return false;
			}
		}
		if (sum != size) {
			error_at(c, arg_loc(c, n, ARG(split, split_size_or_sections)),
			         "split sizes add up to %lld, but dimension %d of %s is %lld",
			         (long long)sum, dim, TS(t), (long long)size);
			return false;
		}
	}
	return split_results(c, n, t, dim, sizes, count, out);
}

/* The tensors of the T[] argument of cat, concat and stack (slot 0, tensors): all must be known
 * values. */
static bool
tensor_list(Ctx *c, Node *n, const Lit **items, uint32_t *count)
{
	const Lit *l = op_arg(n, ARG(cat, tensors));

	if (l->kind != L_LIST || l->n == 0) {
		error_at(c, arg_loc(c, n, ARG(cat, tensors)),
			 "%s needs a non-empty list of tensors", optab[n->op].name);
		return false;
	}
	*items = l->u.list;
	*count = l->n;
	return true;
}

/* cat, concat */
SAME_ARG(cat, concat, dim);

bool
sh_cat(Ctx *c, Node *n, Type *out)
{
	const Lit *items;
	uint32_t count, i;
	const Type *t0 = NULL;
	int64_t dv, sum = 0;
	int dim, j;

	if (!want_results(c, n, 1) || !tensor_list(c, n, &items, &count) ||
	    !get_int(c, n, ARG(cat, dim), &dv))
		return false;
	for (i = 0; i < count; i++) {
		const Type *t = &items[i].u.v->type;

		/* PyTorch skips 1-d empty tensors in cat */
		if (t->ndim == 1 && t->dims[0] == 0 && count > 1)
			continue;
		if (!t0) {
			t0 = t;
			if (t0->ndim == 0) {
				error_at(c, arg_loc(c, n, ARG(cat, tensors)),
					 "cat cannot join 0-d tensors");
				return false;
			}
			if (!norm_dim(c, n, ARG(cat, dim), dv, t0->ndim, &dim))
				return false;
		} else {
			bool ok = t->ndim == t0->ndim;

			for (j = 0; ok && j < t->ndim; j++)
				ok = j == dim || t->dims[j] == t0->dims[j];
			if (!ok) {
				error_at(c, arg_loc(c, n, ARG(cat, tensors)),
					 "%s: %s and %s differ outside dimension %d",
					 optab[n->op].name, TS(t0), TS(t), dim);
				return false;
			}
		}
		if (!ck_add(sum, t->dims[dim], &sum))
			return overflow(c, n);
	}
	if (!t0)
		t0 = &items[0].u.v->type, dim = 0;
	copy_type(c, &out[0], t0);
	if (out[0].ndim)
		((int64_t *)out[0].dims)[dim] = sum;
	return true;
}

bool
sh_stack(Ctx *c, Node *n, Type *out)
{
	const Lit *items;
	uint32_t count, i;
	const Type *t0;
	int64_t dv, *d;
	int dim, j, k = 0;

	if (!want_results(c, n, 1) || !tensor_list(c, n, &items, &count) ||
	    !get_int(c, n, ARG(stack, dim), &dv))
		return false;
	t0 = &items[0].u.v->type;
	for (i = 1; i < count; i++)
		if (!type_equal(&items[i].u.v->type, t0) && !(items[i].u.v->type.ndim == t0->ndim &&
		    memcmp(items[i].u.v->type.dims, t0->dims, t0->ndim * sizeof *t0->dims) == 0)) {
			error_at(c, arg_loc(c, n, ARG(stack, tensors)), "stack: %s and %s differ",
				 TS(t0), TS(&items[i].u.v->type));
			return false;
		}
	if (t0->ndim >= MAX_DIMS || !norm_dim(c, n, ARG(stack, dim), dv, t0->ndim + 1, &dim))
		return false;
	d = tmp_dims(c, t0->ndim + 1);
	for (j = 0; j <= t0->ndim; j++) {
		if (j == dim)
			d[k++] = count;
		if (j < t0->ndim)
			d[k++] = t0->dims[j];
	}
	out[0] = (Type){t0->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* mean, sum (with dtype), amax, amin */
SAME_ARG(mean, sum, dim);
SAME_ARG(mean, sum, keepdim);
SAME_ARG(mean, sum, dtype);
SAME_ARG(mean, amax, dim);
SAME_ARG(mean, amax, keepdim);
SAME_ARG(mean, amin, dim);
SAME_ARG(mean, amin, keepdim);

/* The result of reducing t over the axes of the list or int at dim_slot (every axis when none),
 * keeping them as 1 when `keep`. */
static bool
reduce_type(Ctx *c, Node *n, const Type *t, int dim_slot, bool keep, Type *out)
{
	const Lit *dl = op_arg(n, dim_slot);
	bool red[MAX_DIMS] = {0};
	int64_t *d;
	int i, k = 0, idx, cnt;

	if (!want_results(c, n, 1))
		return false;
	if (dl->kind == L_NONE || (dl->kind == L_LIST && dl->n == 0)) {
		for (i = 0; i < t->ndim; i++)
			red[i] = true;
	} else {
		cnt = dl->kind == L_INT ? 1 : (int)dl->n;
		for (i = 0; i < cnt; i++) {
			int64_t v = dl->kind == L_INT ? dl->u.i : dl->u.list[i].u.i;

			if (!norm_dim(c, n, dim_slot, v, t->ndim, &idx))
				return false;
			if (t->ndim && red[idx]) {
				error_at(c, arg_loc(c, n, dim_slot), "%s: dimension %d repeats",
					 optab[n->op].name, idx);
				return false;
			}
			if (t->ndim)
				red[idx] = true;
		}
	}
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++)
		if (!red[i])
			d[k++] = t->dims[i];
		else if (keep)
			d[k++] = 1;
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

bool
sh_reduce(Ctx *c, Node *n, Type *out)
{
	return reduce_type(c, n, targ(n, ARG(mean, input)), ARG(mean, dim),
			   op_arg(n, ARG(mean, keepdim))->u.i, out) &&
	       (!(n->op == OP_mean || n->op == OP_sum) || apply_dtype(c, n, ARG(mean, dtype), out));
}

/* var, std */
SAME_ARG(var, std, dim);
SAME_ARG(var, std, keepdim);

bool
sh_var(Ctx *c, Node *n, Type *out)
{
	return reduce_type(c, n, targ(n, ARG(var, input)), ARG(var, dim),
			   op_arg(n, ARG(var, keepdim))->u.i, out);
}

/* float, double, to, type_as: the input's shape in the dtype they name (to(x, "cpu") and
 * to(x, other) keep or take one as PyTorch does). */
SAME_ARG(float, double, input);
SAME_ARG(float, to, input);
SAME_ARG(float, type_as, input);

bool
sh_cast(Ctx *c, Node *n, Type *out)
{
	const Lit *a;

	if (!want_results(c, n, 1))
		return false;
	copy_type(c, &out[0], targ(n, ARG(float, input)));
	if (n->op == OP_float || n->op == OP_double) {
		out[0].dtype = n->op == OP_float ? DT_F32 : DT_F64;
		return true;
	}
	if (n->op == OP_type_as) {
		out[0].dtype = targ(n, ARG(type_as, other))->dtype;
		return true;
	}
	a = op_arg(n, ARG(to, dtype));
	if (a->kind == L_VALUE) {
		out[0].dtype = a->u.v->type.dtype;
		return true;
	}
	return apply_dtype(c, n, ARG(to, dtype), out);
}

/* lstm, gru, rnn_tanh, rnn_relu on an input (T, N, I), (N, T, I) with batch_first, or (T, I):
 * the output (.., D·H) and the final states (D·L, N, H), two for lstm; H is weight_hh_l0's second
 * axis (params[1]), D 2 when bidirectional, L the layer count. */
SAME_ARG(lstm, gru, params);
SAME_ARG(lstm, gru, num_layers);
SAME_ARG(lstm, gru, bidirectional);
SAME_ARG(lstm, rnn_tanh, params);
SAME_ARG(lstm, rnn_relu, params);

bool
sh_rnn(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(lstm, input));
	const Lit *params = op_arg(n, ARG(lstm, params));
	int64_t layers, d = op_arg(n, ARG(lstm, bidirectional))->u.i ? 2 : 1, h, *o, *s;
	bool batched = t->ndim == 3, bf = op_arg(n, ARG(lstm, batch_first))->u.i;
	int states = n->op == OP_lstm ? 2 : 1;

	if (!want_results(c, n, 1 + states) ||
	    !get_int(c, n, ARG(lstm, num_layers), &layers))
		return false;
	if ((t->ndim != 2 && t->ndim != 3) || params->kind != L_LIST || params->n < 2 ||
	    params->u.list[1].kind != L_VALUE || params->u.list[1].u.v->type.ndim != 2 ||
	    layers < 1) {
		error_at(c, n->loc,
			 "%s: needs an input (T, N, I) or (T, I), weight_hh_l0 as its second "
			 "parameter and at least one layer",
			 optab[n->op].name);
		return false;
	}
	h = params->u.list[1].u.v->type.dims[1];
	o = tmp_dims(c, t->ndim);
	memcpy(o, t->dims, sizeof(int64_t) * t->ndim);
	if (!ck_mul(d, h, &o[t->ndim - 1]))
		return overflow(c, n);
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, o};
	s = tmp_dims(c, 3);
	if (!ck_mul(d, layers, &s[0]))
		return overflows(c, n, ARG(lstm, num_layers), layers);
	s[1] = batched ? t->dims[bf ? 0 : 1] : h;
	s[2] = h;
	for (int i = 1; i <= states; i++)
		out[i] = (Type){t->dtype, (uint8_t)(batched ? 3 : 2), 0, UINT32_MAX, s};
	return true;
}

bool
sh_max(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(max, input));
	const Lit *dl = op_arg(n, ARG(max, dim));
	bool keep = op_arg(n, ARG(max, keepdim))->u.i;
	int64_t *d;
	int i, k = 0, idx;

	if (dl->kind == L_VALUE)
		return sh_binary(c, n, out);
	if (dl->kind == L_NONE) {
		if (!want_results(c, n, 1))
			return false;
		out[0] = (Type){t->dtype, 0, 0, UINT32_MAX, tmp_dims(c, 0)};
		return true;
	}
	if (!want_results(c, n, 2) || !norm_dim(c, n, ARG(max, dim), dl->u.i, t->ndim, &idx))
		return false;
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++)
		if (i != idx)
			d[k++] = t->dims[i];
		else if (keep)
			d[k++] = 1;
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	out[1] = (Type){DT_I64, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* interpolate, upsample */
SAME_ARG(interpolate, upsample, size);
SAME_ARG(interpolate, upsample, scale_factor);

bool
sh_interpolate(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(interpolate, input));
	const Lit *size = op_arg(n, ARG(interpolate, size)),
		  *scale = op_arg(n, ARG(interpolate, scale_factor));
	const char *name = optab[n->op].name;
	int sp = t->ndim - 2, i;
	int64_t *d;

	if (!want_results(c, n, 1))
		return false;
	if (sp < 1 || sp > 3) {
		error_at(c, arg_loc(c, n, ARG(interpolate, input)),
			 "%s needs a 3-d, 4-d or 5-d input, not %s", name, TS(t));
		return false;
	}
	if ((size->kind == L_NONE) == (scale->kind == L_NONE)) {
		error_at(c, n->loc, "%s needs exactly one of size and scale_factor", name);
		return false;
	}
	d = tmp_dims(c, t->ndim);
	memcpy(d, t->dims, 2 * sizeof *d);
	if (size->kind != L_NONE) {
		if (!get_ints(c, n, ARG(interpolate, size), d + 2, sp) ||
		    !positive(c, n, ARG(interpolate, size), d + 2, sp, false))
			return false;
	} else {
		for (i = 0; i < sp; i++) {
			const Lit *e = scale->kind == L_LIST ? &scale->u.list[scale->n == 1 ? 0 : i]
							     : scale;
			double f, v;

			if ((scale->kind == L_LIST && scale->n != 1 && (int)scale->n != sp) ||
			    !lit_as_float(e, &f) || !(f > 0)) {
				error_at(c, arg_loc(c, n, ARG(interpolate, scale_factor)),
					 "scale_factor of interpolate must be positive, one or %d "
					 "of them",
					 sp);
				return false;
			}
			v = floor((double)t->dims[2 + i] * f);
			if (!(v >= 1 && v < 9.2e18)) {
				error_at(c, arg_loc(c, n, ARG(interpolate, scale_factor)),
					 "interpolate gives an output of size %g", v);
				return false;
			}
			d[2 + i] = (int64_t)v;
		}
	}
	out[0] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

bool
sh_pad(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(pad, input));
	const Lit *p = op_arg(n, ARG(pad, pad));
	int64_t *d;
	uint32_t i;

	if (!want_results(c, n, 1))
		return false;
	if (p->kind != L_LIST || p->n % 2 || p->n / 2 > t->ndim) {
		error_at(c, arg_loc(c, n, ARG(pad, pad)),
			 "pad of pad must be a list of an even number of integers, at most %d",
			 2 * t->ndim);
		return false;
	}
	copy_type(c, &out[0], t);
	d = (int64_t *)out[0].dims;
	for (i = 0; i < p->n; i += 2) {
		int k = t->ndim - 1 - (int)(i / 2);
		int64_t x;

		if (!ck_add(d[k], p->u.list[i].u.i, &x) || !ck_add(x, p->u.list[i + 1].u.i, &x))
			return overflow(c, n);
		if (x < 0) {
			error_at(c, arg_loc(c, n, ARG(pad, pad)), "pad makes dimension %d negative",
				 k);
			return false;
		}
		d[k] = x;
	}
	return true;
}

bool
sh_pixel_shuffle(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(pixel_shuffle, input));
	int64_t r, r2, *d;
	int b;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(pixel_shuffle, upscale_factor), &r))
		return false;
	if (t->ndim < 3 || r <= 0 || !ck_mul(r, r, &r2) || t->dims[t->ndim - 3] % r2 != 0) {
		error_at(c, n->loc, "pixel_shuffle with factor %lld does not fit %s", (long long)r,
			 TS(t));
		return false;
	}
	copy_type(c, &out[0], t);
	d = (int64_t *)out[0].dims;
	b = t->ndim - 3;
	d[b] /= r2;
	if (!ck_mul(d[b + 1], r, &d[b + 1]) || !ck_mul(d[b + 2], r, &d[b + 2]))
		return overflow(c, n);
	return true;
}

bool
sh_pixel_unshuffle(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(pixel_unshuffle, input));
	int64_t r, *d;
	int b;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(pixel_unshuffle, downscale_factor), &r))
		return false;
	b = t->ndim - 3;
	if (t->ndim < 3 || r <= 0 || t->dims[b + 1] % r != 0 || t->dims[b + 2] % r != 0) {
		error_at(c, n->loc, "pixel_unshuffle with factor %lld does not fit %s",
			 (long long)r, TS(t));
		return false;
	}
	copy_type(c, &out[0], t);
	d = (int64_t *)out[0].dims;
	d[b + 1] /= r;
	d[b + 2] /= r;
	if (!ck_mul(d[b], r, &d[b]) || !ck_mul(d[b], r, &d[b]))
		return overflow(c, n);
	return true;
}

/* lstm_cell, gru_cell, rnn_tanh_cell, rnn_relu_cell on an input (N, I) or (I): the new state (N,
 * H), two for lstm_cell (h and c); H is w_hh's second axis. */
SAME_ARG(lstm_cell, gru_cell, w_hh);
SAME_ARG(lstm_cell, rnn_tanh_cell, w_hh);
SAME_ARG(lstm_cell, rnn_relu_cell, w_hh);

bool
sh_rnn_cell(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(lstm_cell, input)), *w = targ(n, ARG(lstm_cell, w_hh));
	int states = n->op == OP_lstm_cell ? 2 : 1;
	int64_t *d;

	if (!want_results(c, n, states))
		return false;
	if ((t->ndim != 1 && t->ndim != 2) || w->ndim != 2) {
		error_at(c, n->loc, "%s: needs an input (N, I) or (I) and a 2-D w_hh",
			 optab[n->op].name);
		return false;
	}
	d = tmp_dims(c, 2);
	d[0] = t->dims[0];
	d[t->ndim - 1] = w->dims[1];
	for (int i = 0; i < states; i++)
		out[i] = (Type){t->dtype, t->ndim, 0, UINT32_MAX, d};
	return true;
}

/* mm, bmm */
SAME_ARG(mm, bmm, mat2);

bool
sh_mm(Ctx *c, Node *n, Type *out)
{
	const Type *a = targ(n, ARG(mm, input)), *b = targ(n, ARG(mm, mat2));
	int k = n->op == OP_bmm ? 3 : 2;
	int64_t *d;

	if (!want_results(c, n, 1))
		return false;
	if (a->ndim != k || b->ndim != k || a->dims[k - 1] != b->dims[k - 2] ||
	    (k == 3 && a->dims[0] != b->dims[0])) {
		error_at(c, n->loc, "%s of %s and %s: the shapes do not fit", optab[n->op].name,
			 TS(a), TS(b));
		return false;
	}
	d = tmp_dims(c, k);
	memcpy(d, a->dims, (size_t)k * sizeof *d);
	d[k - 1] = b->dims[k - 1];
	out[0] = (Type){a->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

bool
sh_glu(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(glu, input));
	int64_t dv;
	int dim;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(glu, dim), &dv) || t->ndim == 0 ||
	    !norm_dim(c, n, ARG(glu, dim), dv, t->ndim, &dim))
		return false;
	if (t->dims[dim] % 2) {
		error_at(c, n->loc, "glu halves dimension %d of %s, which is odd", dim, TS(t));
		return false;
	}
	copy_type(c, &out[0], t);
	((int64_t *)out[0].dims)[dim] /= 2;
	return true;
}

bool
sh_unflatten(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(unflatten, input));
	const Lit *sz = op_arg(n, ARG(unflatten, sizes));
	int64_t dv, sizes[MAX_DIMS], prod = 1, *d;
	int dim, k = sz->kind == L_LIST ? (int)sz->n : 0, i, j = 0, infer = -1;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(unflatten, dim), &dv) || t->ndim == 0 ||
	    !norm_dim(c, n, ARG(unflatten, dim), dv, t->ndim, &dim))
		return false;
	if (k == 0 || t->ndim - 1 + k > MAX_DIMS ||
	    !get_ints(c, n, ARG(unflatten, sizes), sizes, k))
		return false;
	for (i = 0; i < k; i++) {
		if (sizes[i] == -1 && infer < 0) {
			infer = i;
			continue;
		}
		if (sizes[i] < 0 || !ck_mul(prod, sizes[i], &prod)) {
			error_at(c, arg_loc(c, n, ARG(unflatten, sizes)),
				 "invalid sizes for unflatten");
			return false;
		}
	}
	if (infer >= 0 && prod > 0 && t->dims[dim] % prod == 0)
		sizes[infer] = t->dims[dim] / prod, prod = t->dims[dim];
	if (prod != t->dims[dim]) {
		error_at(c, arg_loc(c, n, ARG(unflatten, sizes)),
			 "unflatten: the sizes do not multiply to %lld", (long long)t->dims[dim]);
		return false;
	}
	d = tmp_dims(c, t->ndim - 1 + k);
	for (i = 0; i < t->ndim; i++)
		if (i == dim)
			for (int m = 0; m < k; m++)
				d[j++] = sizes[m];
		else
			d[j++] = t->dims[i];
	out[0] = (Type){t->dtype, (uint8_t)j, 0, UINT32_MAX, d};
	return true;
}

/* view_as, reshape_as, expand_as: the shape of `other`. */
SAME_ARG(view_as, reshape_as, other);
SAME_ARG(view_as, expand_as, other);

bool
sh_as(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(view_as, input)), *o = targ(n, ARG(view_as, other));
	int64_t a, b;
	int i, lead = o->ndim - t->ndim;

	if (!want_results(c, n, 1))
		return false;
	if (n->op == OP_expand_as) {
		for (i = 0; i < t->ndim; i++)
			if (lead < 0 || (t->dims[i] != 1 && t->dims[i] != o->dims[lead + i])) {
				error_at(c, n->loc, "cannot expand %s as %s", TS(t), TS(o));
				return false;
			}
	} else if (!type_numel(t, &a) || !type_numel(o, &b) || a != b) {
		error_at(c, n->loc, "%s: %s and %s have different element counts",
			 optab[n->op].name, TS(t), TS(o));
		return false;
	}
	copy_type(c, &out[0], o);
	out[0].dtype = t->dtype;
	return true;
}

bool
sh_t(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(t, input));

	if (!want_results(c, n, 1))
		return false;
	if (t->ndim > 2) {
		error_at(c, arg_loc(c, n, ARG(t, input)), "t needs at most 2 dimensions, not %s",
			 TS(t));
		return false;
	}
	copy_type(c, &out[0], t);
	if (t->ndim == 2) {
		int64_t *d = (int64_t *)out[0].dims;

		d[0] = t->dims[1];
		d[1] = t->dims[0];
	}
	return true;
}

bool
sh_narrow(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(narrow, input));
	int64_t dv, start, len;
	int dim;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(narrow, dim), &dv) ||
	    !get_int(c, n, ARG(narrow, start), &start) || !get_int(c, n, ARG(narrow, length), &len))
		return false;
	if (t->ndim == 0 || !norm_dim(c, n, ARG(narrow, dim), dv, t->ndim, &dim))
		return false;
	if (start < 0)
		start += t->dims[dim];
	if (start < 0 || len < 0 || start > t->dims[dim] || len > t->dims[dim] - start) {
		error_at(c, n->loc, "narrow: [%lld, +%lld) is outside dimension %d of %s",
			 (long long)start, (long long)len, dim, TS(t));
		return false;
	}
	copy_type(c, &out[0], t);
	((int64_t *)out[0].dims)[dim] = len;
	return true;
}

bool
sh_select(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(select, input));
	int64_t dv, index, *d;
	int dim, i, k = 0;

	if (!want_results(c, n, 1) || !get_int(c, n, ARG(select, dim), &dv) ||
	    !get_int(c, n, ARG(select, index), &index))
		return false;
	if (t->ndim == 0 || !norm_dim(c, n, ARG(select, dim), dv, t->ndim, &dim))
		return false;
	if (index < -t->dims[dim] || index >= t->dims[dim]) {
		error_at(c, arg_loc(c, n, ARG(select, index)),
			 "select: index %lld is out of range for size %lld", (long long)index,
			 (long long)t->dims[dim]);
		return false;
	}
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++)
		if (i != dim)
			d[k++] = t->dims[i];
	out[0] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* repeat (at least ndim counts, leading ones add dimensions) and tile (fewer counts: leading
 * 1s). */
_Static_assert(ARG(repeat, repeats) == ARG(tile, dims), "tile's dims is not at repeat's repeats");

bool
sh_repeat(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(repeat, input));
	const Lit *r = op_arg(n, ARG(repeat, repeats));
	int k = r->kind == L_INT ? 1 : (int)r->n, nd, i;
	int64_t reps[MAX_DIMS], *d;

	if (!want_results(c, n, 1))
		return false;
	if (k > MAX_DIMS || !get_ints(c, n, ARG(repeat, repeats), reps, k) ||
	    !positive(c, n, ARG(repeat, repeats), reps, k, true))
		return false;
	if (n->op == OP_repeat && k < t->ndim) {
		error_at(c, arg_loc(c, n, ARG(repeat, repeats)),
			 "repeat needs at least %d counts for %s", t->ndim, TS(t));
		return false;
	}
	nd = k > t->ndim ? k : t->ndim;
	d = tmp_dims(c, nd);
	for (i = 0; i < nd; i++) {
		int64_t have = i < nd - t->ndim ? 1 : t->dims[i - (nd - t->ndim)];
		int64_t times = i < nd - k ? 1 : reps[i - (nd - k)];

		if (!ck_mul(have, times, &d[i]))
			return overflow(c, n);
	}
	out[0] = (Type){t->dtype, (uint8_t)nd, 0, UINT32_MAX, d};
	return true;
}

bool
sh_unbind(Ctx *c, Node *n, Type *out)
{
	const Type *t = targ(n, ARG(unbind, input));
	int64_t dv, *d;
	int dim, i, j, k = 0;

	if (!get_int(c, n, ARG(unbind, dim), &dv) || t->ndim == 0 ||
	    !norm_dim(c, n, ARG(unbind, dim), dv, t->ndim, &dim))
		return false;
	if (t->dims[dim] > 255 || !want_results(c, n, (int)t->dims[dim]))
		return false;
	d = tmp_dims(c, t->ndim);
	for (i = 0; i < t->ndim; i++)
		if (i != dim)
			d[k++] = t->dims[i];
	for (j = 0; j < n->nres; j++)
		out[j] = (Type){t->dtype, (uint8_t)k, 0, UINT32_MAX, d};
	return true;
}

/* ---- the pass -------------------------------------------------------------------------------- */

static bool
lit_known(const Lit *l)
{
	uint32_t i;

	if (l->kind == L_VALUE)
		return type_known(&l->u.v->type);
	if (l->kind == L_LIST || l->kind == L_SLICE)
		for (i = 0; i < l->n; i++)
			if (!lit_known(&l->u.list[i]))
				return false;
	return true;
}

static bool
infer(Ctx *c, Node *n, Type *out)
{
	int i;

	for (i = 0; i < n->nslot; i++)
		if (!lit_known(&n->arg[i]))
			return false;
	for (i = 0; i < n->nres; i++)
		out[i] = (Type){DT_UNKNOWN, 0, 0, UINT32_MAX, NULL};
	c->tmpdims.n = 0;
	return optab[n->op].shape(c, n, out);
}

static void
explain(Ctx *c, Node *n)
{
	char buf[1024];
	size_t len = 0;
	int i;

	for (i = 0; i < n->nslot && len < sizeof buf; i++) {
		const Lit *l = &n->arg[i];

		if (l->kind == L_VALUE && l->u.v->kind != VK_PARAM && l->u.v->kind != VK_CONST)
			len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%%%u : %s",
						len ? ", " : "", l->u.v->handle, TS(&l->u.v->type));
	}
	if (len)
		note_at(c, n->loc, "inferred by %s from %s", optab[n->op].name, buf);
	else
		note_at(c, n->loc, "inferred by %s", optab[n->op].name);
}

/* Every result as a whole: its byte size must fit in 64 bits (a rule checks each dimension it
 * computes, but expand or repeat make each fit and their product not), and Caffe has no empty
 * blobs, so a dimension of size 0 is refused here, at the op that makes it. */
static bool
result_fits(Ctx *c, Node *n, const Type *out)
{
	char buf[TYPE_STR_MAX];
	int64_t bytes;
	int i, j;

	for (i = 0; i < n->nres; i++) {
		const Value *v = &n->res[i];
		char who[32];

		if (v->handle == NO_HANDLE)
			snprintf(who, sizeof who, "result %d", i);
		else
			snprintf(who, sizeof who, "%%%u", v->handle);
		if (!(out[i].dtype < DT_NTYPES ? type_bytes(&out[i], &bytes)
						: type_numel(&out[i], &bytes))) {
			error_at(c, n->loc, "%s of %s would hold more than 2^63 bytes (%s)", who,
				 optab[n->op].name, tstr(&out[i], buf));
			return false;
		}
		for (j = 0; j < out[i].ndim; j++)
			if (out[i].dims[j] == 0) {
				error_at(c, n->loc,
					 "%s of %s would have a dimension of size 0 (%s); Caffe "
					 "cannot hold an empty blob",
					 who, optab[n->op].name, tstr(&out[i], buf));
				return false;
			}
	}
	return true;
}

bool
shape_node(Ctx *c, Node *n)
{
	Type out[256];
	int errors = c->nerrors, i;

	if (c->tmpdims.cap < 4096) {
		c->tmpdims.v = xrealloc(c->tmpdims.v, 4096 * sizeof *c->tmpdims.v);
		c->tmpdims.cap = 4096;
	}
	if (!infer(c, n, out) || !result_fits(c, n, out)) {
		for (i = 0; i < n->nres; i++)
			n->res[i].type.dtype = DT_UNKNOWN;
		return false;
	}
	for (i = 0; i < n->nres; i++) {
		Value *v = &n->res[i];
		char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
		Type ann = v->type;

		v->type = type_make(c, out[i].dtype, out[i].dims, out[i].ndim);
		if (!(v->flags & V_ANNOTATED) || type_equal(&v->type, &ann))
			continue;
		if (c->input_shapes.reshaped && ann.dtype == v->type.dtype) {
			/* the recorded size's, not --input's: frontend_finish counts them in one
			 * note; a dtype that differs is still an error, --input keeps dtypes */
			c->input_shapes.nstale++;
			continue;
		}
		error_at(c, ann_loc(c, n, i), "%s%%%u is annotated %s, but its inferred type is %s",
			 v->handle == NO_HANDLE ? "result " : "",
			 v->handle == NO_HANDLE ? (unsigned)i : v->handle,
			 type_str(&ann, a, sizeof a), type_str(&v->type, b, sizeof b));
		explain(c, n);
	}
	return c->nerrors == errors;
}
