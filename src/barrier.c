/* barrier.c: steer around OpenCV 4.6's layer fusions that compute a wrong result.
 *
 * OpenCV's dnn folds a following "activation" (BatchNorm, a one-bottom Scale, Power, ReLU, ...) into the
 * layer before it.  Three of those folds are wrong in Debian's OpenCV 4.6 while BVLC Caffe computes the
 * same net right (each found by the random-model tests, tests/backend/test_random_models.py, and kept
 * there as a named regression):
 *
 *   - into a Deconvolution: a BatchNorm or Scale after it, also through a Power in between (0.05-0.6 off);
 *   - into an Eltwise whose top is 2-D (N, C): a BatchNorm after it (0.46 off);
 *   - a chain of two: a layer that OpenCV folds into the one before it (a Power after a Convolution, a
 *     BatchNorm, Scale, ReLU, ...) whose top is also a net output and is read by another foldable layer:
 *     that output is never written (uninitialised memory, up to 1e24).
 *
 * A Reshape that keeps every axis (`dim: 0` for each) computes nothing and fuses with nothing, so one
 * between the two layers stops the fold.  This pass runs right after lowering, at every -O level; it
 * never changes a value.  (fuse.c never runs a layer in place on the barrier's top: a Reshape's top is
 * its bottom's memory in BVLC.)
 */
#include "net.h"

#include <string.h>

static bool
is(const Layer *l, const char *type)
{
	return !l->dead && strcmp(l->lp.type, type) == 0;
}

/* A layer OpenCV may fold into the layer that produces its bottom. */
static bool
foldable(const Layer *l)
{
	static const char *const types[] = {"BatchNorm", "Scale", "Power", "ReLU", "ReLU6", "Sigmoid", "TanH",
	                                    "ELU", "AbsVal", "BNLL", "Exp", "Swish", "HardSwish"};

	if (l->dead || l->bottoms.n != 1)
		return false;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strcmp(l->lp.type, types[i]) == 0)
			return true;
	return false;
}

static bool
reads(const Layer *l, const Blob *b)
{
	for (size_t k = 0; k < l->bottoms.n; k++)
		if (l->bottoms.v[k] == b)
			return true;
	return false;
}

/* Whether a live layer after position `at` that reads b is foldable. */
static bool
read_by_foldable(const Net *net, size_t at, const Blob *b)
{
	for (size_t i = at + 1; i < net->layers.n; i++)
		if (foldable(net->layers.v[i]) && reads(net->layers.v[i], b))
			return true;
	return false;
}

/* Put a Reshape that keeps every axis right after the layer at position `at`, reading its top b; the
 * foldable readers of b (all readers, unless `foldable_only`) read the Reshape's top instead. */
static void
barrier_after(Net *net, size_t at, Blob *b, bool foldable_only)
{
	Layer *p = net->layers.v[at];
	Layer *r = net_layer(net, p->node, "Reshape", "unfused");
	Caffe__ReshapeParameter *rp = PARAM(net, r, reshape_param, RESHAPE_PARAMETER);
	Blob *t;

	rp->shape = arena_alloc(net->arena, sizeof *rp->shape);
	*rp->shape = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
	rp->shape->n_dim = (size_t)b->type.ndim;
	rp->shape->dim = arena_zalloc(net->arena, sizeof(int64_t) * (b->type.ndim ? (size_t)b->type.ndim : 1));
	layer_bottom(r, b);
	t = layer_top(net, r, b->type);
	for (size_t i = at + 1; i + 1 < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead || (foldable_only && !foldable(l)))
			continue;
		for (size_t k = 0; k < l->bottoms.n; k++)
			if (l->bottoms.v[k] == b) {
				l->bottoms.v[k] = t;
				b->nuse--;
				t->nuse++;
			}
	}
	/* move it from the end to just after p: layers run in vector order */
	memmove(&net->layers.v[at + 2], &net->layers.v[at + 1], sizeof(Layer *) * (net->layers.n - at - 2));
	net->layers.v[at + 1] = r;
}

void
opencv_barriers(Net *net)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *p = net->layers.v[i];
		if (p->dead || p->tops.n != 1)
			continue;
		Blob *b = p->tops.v[0];
		if ((is(p, "Deconvolution") || (is(p, "Eltwise") && b->type.ndim == 2)) && read_by_foldable(net, i, b))
			barrier_after(net, i, b, false);
		else if (foldable(p) && b->is_output && read_by_foldable(net, i, b))
			barrier_after(net, i, b, true);
	}
	net_recount(net);
}
