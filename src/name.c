/* name.c: stable, unique Caffe names from the trace's module scopes.
 *
 * A layer is named after the module that called its op: `layer1.0.conv1` for the only op of that
 * module; `layer1.0.add_` for an op among several in its module (the op's name is added), or
 * just the op's name outside every module.  The extra layers of a multi-layer lowering add what
 * they do: `layer1.0.bn1.scale`, `maxpool.crop_h`.  A name already taken gets `_1`, `_2`, ... in
 * trace order, so names are the same on every run.  Each blob is named after the layer that
 * produces it (its first producer, when later layers run in place); net inputs keep their trace
 * names, and outputs take theirs when the trace gives them one (`output %9 "out"`): blob and layer.
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>

/* One map per namespace (layers, blobs), keyed by interned name: bit 0 of the value says the
 * name is taken, the rest is the counter unique() tries first when the name is a base.  (One map
 * for both: two cost 128 MB more on a 10^6-layer net.) */
enum { TAKEN = 1, COUNT = 2 };

typedef struct Names {
	Net *net;
	Map names;
	char *buf;
	size_t cap;
} Names;

static const char *
format(Names *nm, const char *a, const char *sep, const char *b, unsigned k)
{
	size_t need = strlen(a) + strlen(sep) + strlen(b) + 16;

	if (need > nm->cap) {
		nm->cap = need * 2;
		nm->buf = xrealloc(nm->buf, nm->cap);
	}
	if (k)
		snprintf(nm->buf, nm->cap, "%s%s%s_%u", a, sep, b, k);
	else
		snprintf(nm->buf, nm->cap, "%s%s%s", a, sep, b);
	return intern(&nm->net->c->strings, nm->buf, strlen(nm->buf));
}

/* `a` + `sep` + `b`, made unique with a counter. */
static const char *
unique(Names *nm, const char *a, const char *sep, const char *b)
{
	/* Names are never freed, so every counter below the last one given out for this base is
	 * still taken: start after it, else N layers of one base cost N^2 tries (a chain of 8,000
	 * relus took 7.6 s) */
	const char *base = format(nm, a, sep, b, 0);
	uint64_t key = (uint64_t)(uintptr_t)base;

	for (uintptr_t k = (uintptr_t)map_get(&nm->names, key) / COUNT;; k++) {
		const char *s = k ? format(nm, a, sep, b, (unsigned)k) : base;
		uint64_t skey = (uint64_t)(uintptr_t)s;
		uintptr_t v = (uintptr_t)map_get(&nm->names, skey);

		if (!(v & TAKEN)) {
			map_put(&nm->names, skey, (void *)(v | TAKEN));
			v = (uintptr_t)map_get(&nm->names, key);
			map_put(&nm->names, key, (void *)((v & TAKEN) | (k + 1) * COUNT));
			return s;
		}
	}
}

static const char *
layer_base(Names *nm, const Layer *l, const uint32_t *ops_in_scope)
{
	const Node *n = l->node;
	const char *scope = n->scope ? n->scope->name : "";
	const char *op = optab[n->op].name;

	if (*scope && ops_in_scope[n->scope->id] == 1)
		return format(nm, scope, "", "", 0);
	return *scope ? format(nm, scope, ".", op, 0) : format(nm, op, "", "", 0);
}

void
name_net(Net *net)
{
	Names nm = {.net = net};
	Names blobs = {.net = net};
	Graph *g = &net->c->g;
	uint32_t *ops_in_scope = xcalloc(g->nscopes + 1, sizeof(uint32_t));
	/* by Layer.idx */
	const char **chain_base = xcalloc(net->layers.n + 1, sizeof(const char *));

	for (Node *n = g->first; n; n = n->next)
		if (n->scope)
			ops_in_scope[n->scope->id]++;
	/* inputs first: their names are the user's interface to the net */
	for (size_t i = 0; i < g->inputs.n; i++) {
		Blob *b = net->blob_of[g->inputs.v[i]->id];
		char tmp[32];
		const char *want = g->inputs.v[i]->name;
		if (!b)
			continue; /* an input nothing reads is left out (lower.c) */
		if (!want || !*want) {
			snprintf(tmp, sizeof tmp, "input%zu", i);
			want = tmp;
		}
		b->name = unique(&blobs, want, "", "");
		b->producer->name = unique(&nm, b->name, "", "");
	}
	/* then the outputs the trace names (a dict's keys, a tuple's positions): the blob and
	 * the layer that writes it, since BVLC reads an output by its blob's name and OpenCV by
	 * its layer's (lower.c gave each named output a blob of its own, the first top of its
	 * layer, and made sure no two share a name) */
	for (size_t i = 0; i < net->outputs.n; i++) {
		Blob *b = net->outputs.v[i];
		const char *want = net->output_names.v[i];
		if (!want || b->name)
			continue;
		b->name = unique(&blobs, want, "", "");
		b->producer->name = unique(&nm, want, "", "");
	}
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead || (!l->node && !l->role))
			continue; /* an Input layer, named above */
		/* a helper layer of no op (an input or a constant returned as an output) is
		 * named after the blob its chain starts from: x.output, x.const_source,
		 * x.const_first, ... */
		const Layer *from = l->bottoms.v[0]->producer;
		const char *base = l->node ? layer_base(&nm, l, ops_in_scope)
				   : from && !from->node && from->role ? chain_base[from->idx]
								       : l->bottoms.v[0]->name;
		chain_base[l->idx] = base;
		if (!l->name) /* else the layer of a named output, named above */
			l->name = l->role ? unique(&nm, base, ".", l->role)
					  : unique(&nm, base, "", "");
		unsigned extra = 0;
		for (size_t k = 0; k < l->tops.n; k++) {
			Blob *b = l->tops.v[k];
			if (b->name) { /* in place: the blob keeps its first producer's name; or a
			                  named output, which counts as the layer's first top */
				extra += !b->discard;
				continue;
			}
			if (b->discard)
				b->name = unique(&blobs, l->name, ".", "discard");
			else if (extra++ == 0)
				b->name = unique(&blobs, l->name, "", "");
			else {
				char idx[24];
				snprintf(idx, sizeof idx, "%u", extra - 1);
				b->name = unique(&blobs, l->name, ".", idx);
			}
		}
	}
	free(ops_in_scope);
	free(chain_base);
	free(nm.buf);
	free(blobs.buf);
	map_free(&nm.names);
	map_free(&blobs.names);
}
