/* fuse.c: rewrites of the lowered net (-O1, -O2).  -O0 skips this pass: one layer per op, every
 * top a fresh blob.
 *
 *   -O1  drop a Flatten (or a Reshape to 2-D) that only feeds an InnerProduct, which flattens
 *        by itself (runtime-facts S4); run neuron layers, BatchNorm and Scale in place where
 *        Caffe allows it (layers.def's in_place column, S7), the layer is its bottom's sole
 *        reader, and the bottom is not a Reshape's or Flatten's top (their `view` column: BVLC
 *        shares the memory).  Dropout was already left out by lower.c.
 *   -O2  also fold BatchNorm (and its Scale) into the Convolution or InnerProduct before it,
 *        then a linear Power or a per-channel Scale into the Convolution, the per-channel
 *        Scale (a Power also into the InnerProduct) before it, then a
 *        BatchNorm left (and its Scale) into an unpadded Convolution or an InnerProduct after
 *        it.
 *
 * netcheck.c verifies the net after each rewrite.
 */
#include "net.h"

#include <math.h>
#include <string.h>

static bool
is_type(const Layer *l, const char *type)
{
	return l && !l->dead && strcmp(l->type, type) == 0;
}

/* Flatten(axis 1 .. last) or Reshape to (N, rest) feeding only an InnerProduct with axis 1. */
static void
drop_flatten_before_inner_product(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *ip = net->layers.v[i], *f;
		Blob *flat;
		if (!is_type(ip, "InnerProduct") || LP(ip, inner_product_param)->has_axis)
			continue;
		flat = ip->bottoms.v[0];
		f = flat->producer;
		if (!f || flat->nuse != 1 || flat->is_output || f->bottoms.n != 1)
			continue;
		if (is_type(f, "Flatten")) {
			const Caffe__FlattenParameter *p = LP(f, flatten_param);
			if (p && ((p->has_axis && p->axis != 1) ||
				  (p->has_end_axis && p->end_axis != -1)))
				continue;
		} else if (is_type(f, "Reshape")) {
			const Type *in = &f->bottoms.v[0]->type;
			if (flat->type.ndim != 2 || in->ndim < 2 ||
			    in->dims[0] != flat->type.dims[0])
				continue;
		} else {
			continue;
		}
		/* the flatten's bottom loses one reader and gains one: the use counts stay right */
		ip->bottoms.v[0] = f->bottoms.v[0];
		f->dead = true;
	}
}

/* The bias of a Convolution, InnerProduct or Scale (numel `out`), made when it has none. */
static const Weight *
ensure_bias(Net *net, Layer *l, int64_t out)
{
	if (l->weights.n < 2) {
		layer_weight(net, l, net_floats(net, out, 0), out, &out, 1);
		if (is_type(l, "Convolution")) {
			LP(l, convolution_param)->has_bias_term = 0; /* the default: a bias */
		} else if (is_type(l, "InnerProduct")) {
			LP(l, inner_product_param)->has_bias_term = 0;
		} else { /* a Scale: no bias by default; its param may be absent (all defaults) */
			Caffe__ScaleParameter *sp = LP(l, scale_param);
			if (!sp)
				sp = PARAM(net, l, scale_param, SCALE_PARAMETER);
			sp->has_bias_term = 1;
			sp->bias_term = 1;
		}
	}
	return &l->weights.v[1];
}

/* A fold made `c`'s producer compute the value of `top` (a dead layer's top): `top`'s readers
 * and trace values move to c, and c's own value, which nothing computes any more, is gone. */
static void
take_over(Net *net, Blob *top, Blob *c)
{
	net_replace_blob(net, top, c);
	net_rebind(net, c, NULL);
	net_rebind(net, top, c);
	net_recount(net);
}

/* A copy of w's values in the arena, which the fold overwrites with its own.  A weight that lies in
 * an input's mapping is read from its file (on a VM, reading the mapping's pages costs far more
 * than a pread into the arena's huge pages: -O2 of resnet50 took 0.45 s so). */
static float *
fetched(Net *net, const Weight *w)
{
	float *p = net_floats(net, w->numel, 0);
	size_t n = (size_t)w->numel * sizeof *p, done = 0;
	uint64_t at;
	ssize_t r;
	int fd;

	if (mapping_source(w->data, n, &fd, &at) && (r = pread_full(fd, p, n, at)) > 0)
		done = (size_t)r;
	/* the rest from memory: a file that shrank faults there, and that SIGBUS names it */
	memcpy((char *)p + done, (const char *)w->data + done, n - done);
	return p;
}

/* A BatchNorm's (and its Scale's) factor for channel i: γ[i] / sqrt(σ²[i] + ε). */
static double
norm_factor(const Weight *gamma, const Weight *var, double eps, int64_t i)
{
	return (gamma ? weight_at(gamma, i) : 1.0) / sqrt((double)weight_at(var, i) + eps);
}

/* The Scale that the lowering of batch_norm put after the BatchNorm layers.v[i] (the same node,
 * reading its top, which nothing else reads), or NULL. */
static Layer *
paired_scale(Net *net, size_t i)
{
	Layer *bn = net->layers.v[i];
	Blob *y = bn->tops.v[0];

	if (y->nuse != 1 || y->is_output)
		return NULL;
	for (size_t k = i + 1; k < net->layers.n; k++) {
		Layer *l = net->layers.v[k];
		if (is_type(l, "Scale") && l->node == bn->node && l->bottoms.v[0] == y)
			return l;
	}
	return NULL;
}

/* An InnerProduct over axis 1, weights not transposed: W is (out, in), its top (N, out). */
static bool
plain_inner_product(const Layer *l)
{
	const Caffe__InnerProductParameter *p;

	if (!is_type(l, "InnerProduct"))
		return false;
	p = LP(l, inner_product_param);
	return !(p && ((p->has_axis && p->axis != 1) || (p->has_transpose && p->transpose)));
}

/* Fold y = Scale(BatchNorm(Convolution(x))) into the Convolution (or the InnerProduct: a
 * BatchNorm1d after a Linear): per output channel o, a = γ / sqrt(σ² + ε), W'[o] = a·W[o],
 * b'[o] = a·(b[o] − μ) + β.  Computed in double. */
static void
fold_batch_norm(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *bn = net->layers.v[i], *conv, *scale = NULL;
		Blob *c, *y;
		if (!is_type(bn, "BatchNorm"))
			continue;
		c = bn->bottoms.v[0];
		conv = c->producer;
		if (!(is_type(conv, "Convolution") || plain_inner_product(conv)) || c->nuse != 1 ||
		    c->is_output || bn->weights.v[0].numel != conv->weights.v[0].dims[0])
			continue;
		y = bn->tops.v[0];
		scale = paired_scale(net, i);
		int64_t out = conv->weights.v[0].dims[0];
		int64_t per = conv->weights.v[0].numel / out;
		const Weight *w = &conv->weights.v[0], *b = ensure_bias(net, conv, out);
		const Weight *mean = &bn->weights.v[0], *var = &bn->weights.v[1];
		const Caffe__BatchNormParameter *bp = LP(bn, batch_norm_param);
		double eps = bp && bp->has_eps ? bp->eps : 1e-5f;
		const Weight *gamma = scale ? &scale->weights.v[0] : NULL;
		const Weight *beta = scale && scale->weights.n > 1 ? &scale->weights.v[1] : NULL;
		float *nw = NULL, *nb = NULL;
		if (w->data && b->data && mean->data && var->data) {
			nw = fetched(net, w);
			nb = net_floats(net, out, 0);
			for (int64_t o = 0; o < out; o++) {
				double a = norm_factor(gamma, var, eps, o);
				for (int64_t k = 0; k < per; k++)
					nw[o * per + k] = (float)(a * nw[o * per + k]);
				nb[o] = (float)(a * (weight_at(b, o) - weight_at(mean, o)) +
						(beta ? weight_at(beta, o) : 0.0));
			}
		}
		conv->weights.v[0].data = nw;
		conv->weights.v[1].data = nb;
		bn->dead = true;
		if (scale)
			scale->dead = true;
		take_over(net, scale ? scale->tops.v[0] : y, c);
	}
}

/* A Scale of one bottom along the channel axis alone (axis 1, num_axes 1): y = γ[c]·x + β[c]. */
static bool
per_channel_scale(const Layer *l)
{
	const Caffe__ScaleParameter *p = LP(l, scale_param);

	return is_type(l, "Scale") && l->bottoms.n == 1 && l->weights.n >= 1 &&
	       !(p && ((p->has_axis && p->axis != 1) || (p->has_num_axes && p->num_axes != 1)));
}

/* The one live layer that reads b, or NULL. */
static Layer *
sole_reader(Net *net, const Blob *b)
{
	if (b->nuse != 1 || b->is_output)
		return NULL;
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		for (size_t k = 0; k < l->bottoms.n; k++)
			if (l->bottoms.v[k] == b)
				return l;
	}
	return NULL;
}

/* A Convolution that pads nothing: a fold of x ↦ a·x + c into it would change what its zero
 * padding stands for (c at the border, 0 after the fold). */
static bool
conv_without_padding(const Layer *l)
{
	const Caffe__ConvolutionParameter *p = LP(l, convolution_param);

	if (!p)
		return true;
	for (size_t i = 0; i < p->n_pad; i++)
		if (p->pad[i])
			return false;
	return !(p->has_pad_h && p->pad_h) && !(p->has_pad_w && p->pad_w);
}

/* Fold y = Scale(BatchNorm(x)) (the Scale optional) into the Convolution without padding or the
 * InnerProduct after it, its only reader: per input channel i, a = γ / sqrt(σ² + ε),
 * c = β − a·μ, and W'[o, i, ·] = a[i]·W[o, i, ·], b'[o] = b[o] + Σ W[o, i, ·]·c[i] (input
 * channel i of a grouped convolution's output o is o's group's (i mod C/groups)-th; an
 * InnerProduct's input element k is channel k / (K/C) of the flattened (C, H, W)).  Computed in
 * double. */
static void
fold_batch_norm_into_next(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *bn = net->layers.v[i], *scale, *next;
		if (!is_type(bn, "BatchNorm"))
			continue;
		scale = paired_scale(net, i);
		Blob *y = scale ? scale->tops.v[0] : bn->tops.v[0], *x = bn->bottoms.v[0];
		next = sole_reader(net, y);
		bool conv = is_type(next, "Convolution");
		if (!(conv && conv_without_padding(next) && next->bottoms.n == 1) &&
		    !plain_inner_product(next))
			continue;
		const Weight *mean = &bn->weights.v[0], *var = &bn->weights.v[1];
		int64_t ch = mean->numel, out = next->weights.v[0].dims[0];
		int64_t per = next->weights.v[0].numel / out; /* weights per output */
		int64_t groups = 1, span; /* input channels per group; weights per input channel */
		if (conv) {
			const Caffe__ConvolutionParameter *p = LP(next, convolution_param);
			groups = p && p->has_group ? p->group : 1;
			if (groups < 1 || ch % groups || out % groups ||
			    next->weights.v[0].dims[1] * groups != ch)
				continue;
			span = per / (ch / groups);
		} else {
			if (per % ch)
				continue;
			span = per / ch;
		}
		const Caffe__BatchNormParameter *bp = LP(bn, batch_norm_param);
		double eps = bp && bp->has_eps ? bp->eps : 1e-5f;
		const Weight *gamma = scale ? &scale->weights.v[0] : NULL;
		const Weight *beta = scale && scale->weights.n > 1 ? &scale->weights.v[1] : NULL;
		const Weight *w = &next->weights.v[0], *b = ensure_bias(net, next, out);
		float *nw = NULL, *nb = NULL;
		if (w->data && b->data && mean->data && var->data && (!gamma || gamma->data) &&
		    (!beta || beta->data)) {
			/* x ↦ a·x + c per input channel, once per channel */
			double *a = NEWARRAY(net->arena, double, ch);
			double *cst = NEWARRAY(net->arena, double, ch);
			for (int64_t in = 0; in < ch; in++) {
				a[in] = norm_factor(gamma, var, eps, in);
				cst[in] = (beta ? weight_at(beta, in) : 0.0) -
					  a[in] * weight_at(mean, in);
			}
			nw = fetched(net, w);
			nb = net_floats(net, out, 0);
			for (int64_t o = 0; o < out; o++) {
				int64_t first = conv ? o / (out / groups) * (ch / groups) : 0;
				double sum = weight_at(b, o);

				for (int64_t k = 0; k < per; k++) {
					int64_t in = first + k / span;
					double wk = nw[o * per + k];

					nw[o * per + k] = (float)(a[in] * wk);
					sum += wk * cst[in];
				}
				nb[o] = (float)sum;
			}
		}
		next->weights.v[0].data = nw;
		next->weights.v[1].data = nb;
		next->bottoms.v[0] = x;
		bn->dead = true;
		if (scale)
			scale->dead = true;
		/* the normalised value is no longer computed */
		net_rebind(net, y, NULL);
		net_rebind(net, bn->tops.v[0], NULL);
		net_recount(net);
	}
}

/* Fold an affine layer into the layer before it, which only it reads:
 *   Power{power 1, scale s, shift t}          W' = s·W,        b' = s·b + t
 *   Scale{1 bottom, per output channel γ, β}  W'[o] = γ[o]·W[o], b'[o] = γ[o]·b[o] + β[o]
 * into a Convolution, an InnerProduct (a Power only: the weights' layout does not matter to it; a
 * Scale's channels are axis 1, a Convolution's outputs) or a per-channel Scale, whose γ is its W
 * (one weight per output).  A hardsigmoid's x + 3 after a squeeze-excitation convolution; x · c
 * or x + c of a constant after a layer or after a BatchNorm's Scale.  The bias is made where the
 * layer had none.  Computed in double. */
static void
fold_affine(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *f = net->layers.v[i], *prod;
		Blob *c;
		bool power = is_type(f, "Power");
		if ((!power && !per_channel_scale(f)) || f->bottoms.n != 1)
			continue;
		c = f->bottoms.v[0];
		prod = c->producer;
		bool into_scale = per_channel_scale(prod);
		if (!(is_type(prod, "Convolution") || into_scale ||
		      (power && is_type(prod, "InnerProduct"))) ||
		    c->nuse != 1 || c->is_output || prod->tops.n != 1)
			continue;
		const Weight *w = &prod->weights.v[0], *gamma = NULL, *beta = NULL;
		int64_t out = into_scale ? w->numel : w->dims[0], per = w->numel / out;
		double s = 1, t = 0;
		if (power) {
			const Caffe__PowerParameter *p = LP(f, power_param);
			if (p && p->has_power && p->power != 1)
				continue;
			s = p && p->has_scale ? p->scale : 1;
			t = p && p->has_shift ? p->shift : 0;
		} else {
			if (f->weights.v[0].numel != out)
				continue;
			gamma = &f->weights.v[0];
			beta = f->weights.n > 1 ? &f->weights.v[1] : NULL;
		}
		const Weight *b = ensure_bias(net, prod, out);
		float *nw = NULL, *nb = NULL;
		if (w->data && b->data && (!gamma || gamma->data) && (!beta || beta->data)) {
			nw = fetched(net, w);
			nb = net_floats(net, out, 0);
			for (int64_t o = 0; o < out; o++) {
				double a = gamma ? weight_at(gamma, o) : s;
				double shift = gamma ? (beta ? weight_at(beta, o) : 0) : t;

				for (int64_t k = 0; k < per; k++)
					nw[o * per + k] = (float)(a * nw[o * per + k]);
				nb[o] = (float)(a * weight_at(b, o) + shift);
			}
		}
		prod->weights.v[0].data = nw;
		prod->weights.v[1].data = nb;
		f->dead = true;
		take_over(net, f->tops.v[0], c);
	}
}

static bool
can_run_in_place(const Layer *l)
{
	const LayerInfo *info = layer_info(l->type);

	return info && info->in_place && l->bottoms.n == 1 && l->tops.n == 1;
}

/* Remember the SSA blobs each layer reads and writes before in_place renames them (netcheck.c). */
static void
snapshot_ssa(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		l->ssa_bottoms =
			arena_alloc(net->arena, sizeof(Blob *) * (l->bottoms.n ? l->bottoms.n : 1));
		l->ssa_tops = arena_alloc(net->arena, sizeof(Blob *) * (l->tops.n ? l->tops.n : 1));
		if (l->bottoms.n) /* an Input layer has none (and a NULL vector) */
			memcpy(l->ssa_bottoms, l->bottoms.v, sizeof(Blob *) * l->bottoms.n);
		if (l->tops.n)
			memcpy(l->ssa_tops, l->tops.v, sizeof(Blob *) * l->tops.n);
	}
}

/* Make a layer write its bottom in place when it is the only reader of that value, and the
 * bottom is neither a net input nor an output.  Being the last reader is not enough: BVLC gives
 * each reader of a blob with several its own copy through an inserted Split, which renames their
 * bottoms, so an in-place layer among them becomes a second producer of the blob and the net is
 * refused (runtime-facts S7).  Works in one forward sweep over the SSA blobs: `canon` maps each
 * blob to the blob that now holds its value, and the use count that matters is the SSA blob's
 * own (its readers, before any renaming). */
static void
in_place(Net *net)
{
	size_t nb = net->blobs.n;
	Blob **canon = arena_zalloc(net->arena, sizeof(Blob *) * (nb ? nb : 1));

	snapshot_ssa(net);
	for (size_t i = 0; i < nb; i++)
		canon[i] = net->blobs.v[i];
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		Blob *value = l->bottoms.n ? l->bottoms.v[0] : NULL; /* the SSA blob, before
		                                                        renaming */
		for (size_t k = 0; k < l->bottoms.n; k++)
			l->bottoms.v[k] = canon[l->bottoms.v[k]->id];
		if (!can_run_in_place(l))
			continue;
		Blob *b = l->bottoms.v[0], *t = l->tops.v[0];
		if (b->is_input || b->is_output || value->is_output || value->nuse != 1)
			continue;
		/* nor for an output: OpenCV reads an output by its layer's name and, when that
		 * layer writes in place and is folded into the layer before it, returns a stale
		 * blob (found by the random-model tests: conv, BatchNorm, ReLU6 in place, the
		 * ReLU6 an output also read by a Concat) */
		if (t->is_output)
			continue;
		/* a Reshape or Flatten top is its bottom's memory in BVLC: writing it would
		 * change the bottom */
		const LayerInfo *made = b->producer ? layer_info(b->producer->type) : NULL;
		if (made && made->view)
			continue;
		canon[t->id] = b;
		l->tops.v[0] = b;
	}
	for (size_t i = 0; i < net->outputs.n; i++)
		net->outputs.v[i] = canon[net->outputs.v[i]->id];
}

void
fuse(Net *net)
{
	if (net->olevel < 1)
		return;
	net_recount(net);
	drop_flatten_before_inner_product(net);
	net_verify(net, "dropping Flatten before InnerProduct");
	if (net->olevel >= 2) {
		fold_batch_norm(net);
		net_verify(net, "folding BatchNorm into Convolution");
		fold_affine(net);
		net_verify(net, "folding Power and Scale into Convolution, InnerProduct and Scale");
		fold_batch_norm_into_next(net);
		net_verify(net, "folding BatchNorm into the Convolution or InnerProduct after it");
	}
	in_place(net);
	net_recount(net);
	net_verify(net, "making layers run in place");
}
