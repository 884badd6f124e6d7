/* net.c: building blocks for the back end's passes: blobs, layers, weights, rewiring. */
#include "net.h"

#include <stdlib.h>
#include <string.h>

void
net_init(Net *net, Ctx *c, int olevel, const char *target, bool with_weights)
{
	memset(net, 0, sizeof *net);
	net->c = c;
	net->arena = &c->arena;
	net->olevel = olevel;
	net->target = target;
	net->with_weights = with_weights;
	/* malloc'd, not from the arena: lower.c makes a scratch net per refused op to probe
	 * other targets */
	net->blob_of = xcalloc(c->g.nvalues + 1, sizeof(Blob *));
	net->shuffle_at = xcalloc(c->g.nidx + 1, sizeof(Shuffle *));
}

void
net_free(Net *net)
{
	free(net->layers.v);
	free(net->blobs.v);
	free(net->outputs.v);
	free(net->output_names.v);
	free(net->blob_of);
	free(net->shuffle_at);
}

Blob *
net_blob(Net *net, Type type)
{
	Blob *b = NEW(net->arena, Blob);

	b->type = type;
	b->id = (uint32_t)net->blobs.n;
	vec_push(&net->blobs, b);
	return b;
}

Layer *
net_layer(Net *net, const Node *n, const char *type, const char *role)
{
	Layer *l = NEW(net->arena, Layer);

	l->type = type;
	l->node = n;
	l->role = role;
	l->idx = (uint32_t)net->layers.n;
	vec_push(&net->layers, l);
	return l;
}

void *
layer_set_param(Net *net, Layer *l, size_t offset, const void *init, size_t size)
{
	if (l->param)
		ptcc_die("a second param message for a %s layer", l->type);
	l->param = memcpy(arena_alloc(net->arena, size), init, size);
	l->param_offset = offset;
	return l->param;
}

void *
layer_param(const Layer *l, size_t offset)
{
	return l->param && l->param_offset == offset ? l->param : NULL;
}

void
layer_bottom(Net *net, Layer *l, Blob *b)
{
	arena_vec_push(net->arena, &l->bottoms, b);
	b->nuse++;
}

Blob *
layer_top(Net *net, Layer *l, Type type)
{
	Blob *b = net_blob(net, type);

	b->producer = l;
	arena_vec_push(net->arena, &l->tops, b);
	return b;
}

void
layer_weight(Net *net, Layer *l, const void *data, int64_t numel, const int64_t *dims,
	     int ndim)
{
	Weight w = {.data = data, .numel = numel, .ndim = ndim};

	if (ndim > 0)
		w.dims = memcpy(arena_alloc(net->arena, sizeof *dims * (size_t)ndim), dims,
				sizeof *dims * (size_t)ndim);
	arena_vec_push(net->arena, &l->weights, w);
}

float *
net_floats(Net *net, int64_t n, float fill)
{
	float *p;

	/* a count from a wrapped product would make the size below wrap too, and the fill
	 * write past a small block: die instead (lowerings check the counts they compute) */
	if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
		ptcc_die("a constant blob of %lld floats", (long long)n);
	p = arena_alloc(net->arena, sizeof(float) * (size_t)(n ? n : 1));
	/* arena memory is zero: a one-hot matrix touches only the pages of its ones */
	for (int64_t i = 0; fill != 0 && i < n; i++)
		p[i] = fill;
	return p;
}

Blob *
net_identity(Net *net, const Node *n, const char *role, Blob *x)
{
	Layer *l = net_layer(net, n, "Reshape", role);
	Caffe__ReshapeParameter *p = PARAM(net, l, reshape_param, RESHAPE_PARAMETER);

	p->shape = arena_alloc(net->arena, sizeof *p->shape);
	*p->shape = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
	p->shape->n_dim = (size_t)x->type.ndim;
	p->shape->dim = arena_zalloc(net->arena,
				     sizeof(int64_t) * (x->type.ndim ? (size_t)x->type.ndim : 1));
	layer_bottom(net, l, x);
	return layer_top(net, l, x->type);
}

void
net_replace_blob(Net *net, Blob *from, Blob *to)
{
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		for (size_t k = 0; k < l->bottoms.n; k++)
			if (l->bottoms.v[k] == from) {
				l->bottoms.v[k] = to;
				from->nuse--;
				to->nuse++;
			}
	}
	for (size_t i = 0; i < net->outputs.n; i++)
		if (net->outputs.v[i] == from) {
			net->outputs.v[i] = to;
			to->is_output = true;
		}
}

static bool
blob_among(Blob *const *v, size_t n, const Blob *b)
{
	for (size_t k = 0; k < n; k++)
		if (v[k] == b)
			return true;
	return false;
}

bool
layer_reads(const Layer *l, const Blob *b)
{
	return blob_among(l->bottoms.v, l->bottoms.n, b);
}

bool
layer_writes(const Layer *l, const Blob *b)
{
	return blob_among(l->tops.v, l->tops.n, b);
}

void
net_rebind(Net *net, Blob *from, Blob *to)
{
	for (uint32_t i = 0; i <= net->c->g.nvalues; i++)
		if (net->blob_of[i] == from)
			net->blob_of[i] = to;
}

void
net_recount(Net *net)
{
	uint32_t idx = 0;

	for (size_t i = 0; i < net->blobs.n; i++)
		net->blobs.v[i]->nuse = 0;
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		l->idx = idx++;
		for (size_t k = 0; k < l->bottoms.n; k++)
			l->bottoms.v[k]->nuse++;
	}
}
