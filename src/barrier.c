/* barrier.c: steer around OpenCV 4.6's layer fusions that compute a wrong result.
 *
 * OpenCV's dnn folds a following "activation" (BatchNorm, a one-bottom Scale, Power, ReLU, ...)
 * into the layer before it.  These folds are wrong in Debian's OpenCV 4.6 while BVLC Caffe
 * computes the same net right (each found by the random-model tests,
 * tests/backend/test_random_models.py, and kept there as a named regression):
 *
 *   - into a Deconvolution: a BatchNorm or Scale after it, also through a Power in between
 *     (0.05-0.6 off);
 *   - into an Eltwise whose top is 2-D (N, C): a BatchNorm after it (0.46 off), a PReLU
 *     (0.42 off);
 *   - into an InnerProduct on a later axis (top of rank > 2): a BatchNorm after it (up to 1e29
 *     off, random-model seed 80073);
 *   - a chain of two: a layer that OpenCV folds into the one before it (a Power after a
 *     Convolution, a BatchNorm, Scale, ReLU, ...) whose top is also a net output and is read by
 *     another foldable layer: that output is never written (uninitialised memory, up to 1e24);
 *   - a Power whose power is not 1 and whose shift is 0, read by a Power whose power is 1: the
 *     second one is lost or misapplied (x² then −x gave x², up to 384 off; found lowering gelu);
 *   - a net output that a Concat also reads: OpenCV has the layer write straight into the
 *     Concat's buffer, and the output it returns is a buffer nobody wrote (up to 0.6 off, at -O0
 *     too).
 *
 * A Reshape that keeps every axis (`dim: 0` for each) computes nothing and fuses with nothing,
 * so one between the two layers stops the fold.  This pass runs right after lowering, at every
 * -O level; it never changes a value.  (fuse.c never runs a layer in place on the barrier's top:
 * a Reshape's top is its bottom's memory in BVLC.)
 */
#include "net.h"

#include <string.h>

static bool
is(const Layer *l, const char *type)
{
	return !l->dead && strcmp(l->type, type) == 0;
}

/* A layer OpenCV may fold into the layer that produces its bottom. */
static bool
foldable(const Layer *l)
{
	/* Dropout too: OpenCV skips it, and a Dropout output read by another layer came back as
	 * NaN (-O0) */
	static const char *const types[] = {
		"BatchNorm", "Scale", "Power", "ReLU",  "ReLU6",     "PReLU",  "Sigmoid", "TanH",
		"ELU",       "AbsVal", "BNLL", "Exp",   "Swish",     "HardSwish", "Dropout"};

	if (l->dead || l->bottoms.n != 1)
		return false;
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (strcmp(l->type, types[i]) == 0)
			return true;
	return false;
}

/* Power's power (1 without a power_param or a power field). */
static double
power_of(const Layer *l)
{
	const Caffe__PowerParameter *p = LP(l, power_param);

	return p && p->has_power ? p->power : 1.0;
}

static bool
unit_power(const Layer *l)
{
	return is(l, "Power") && power_of(l) == 1.0;
}

/* A Power that raises to a power other than 1 with no shift: OpenCV misfolds a unit Power after
 * it. */
static bool
bare_power(const Layer *l)
{
	const Caffe__PowerParameter *p = LP(l, power_param);

	return is(l, "Power") && power_of(l) != 1.0 && !(p && p->has_shift && p->shift != 0);
}

static bool
concatenates(const Layer *l)
{
	return is(l, "Concat");
}

typedef bool Which(const Layer *l);

/* Whether a live layer after position `at` that reads b is one of `which`. */
static bool
read_by(const Net *net, size_t at, const Blob *b, Which *which)
{
	for (size_t i = at + 1; i < net->layers.n; i++)
		if (which(net->layers.v[i]) && layer_reads(net->layers.v[i], b))
			return true;
	return false;
}

/* Put a Reshape that keeps every axis right after the layer at position `at`, reading its top b;
 * the readers of b that are `which` (all of them when NULL) read the Reshape's top instead. */
static void
barrier_after(Net *net, size_t at, Blob *b, Which *which)
{
	Blob *t = net_identity(net, net->layers.v[at]->node, "unfused", b);
	Layer *r = t->producer;

	for (size_t i = at + 1; i + 1 < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead || (which && !which(l)))
			continue;
		for (size_t k = 0; k < l->bottoms.n; k++)
			if (l->bottoms.v[k] == b) {
				l->bottoms.v[k] = t;
				b->nuse--;
				t->nuse++;
			}
	}
	/* move it from the end to just after p: layers run in vector order */
	memmove(&net->layers.v[at + 2], &net->layers.v[at + 1],
		sizeof(Layer *) * (net->layers.n - at - 2));
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
		if ((is(p, "Deconvolution") || (is(p, "Eltwise") && b->type.ndim == 2) ||
		     (is(p, "InnerProduct") && b->type.ndim > 2)) &&
		    read_by(net, i, b, foldable))
			barrier_after(net, i, b, NULL);
		else if (foldable(p) && b->is_output && read_by(net, i, b, foldable))
			barrier_after(net, i, b, foldable);
		else if (bare_power(p) && read_by(net, i, b, unit_power))
			barrier_after(net, i, b, unit_power);
		if (b->is_output && read_by(net, i, b, concatenates))
			barrier_after(net, i, b, concatenates);
	}
	net_recount(net);
}
