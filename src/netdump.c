/* netdump.c: the back end's Net as text, between passes (`ptcc --dump-net=PHASE`), for tests and
 * bug reports.  One live layer a line, in net order:
 *
 *   L3 ReLU        relu_ @12 (relu)           b2 -> b2 f32[1,8,16,16]
 *
 * its index, type, the op it lowers with the op's trace line and module scope (and the helper
 * role, for the second and later layers of an op), bottoms, tops with their types, and its
 * weight blobs' shapes.  Blobs are numbered by creation (b0 is the first input); a layer in
 * place has a top equal to a bottom. */
#include "net.h"

#include <string.h>

static void
dump_blob(FILE *f, const Blob *b, bool with_type)
{
	char t[TYPE_STR_MAX];

	fprintf(f, " b%u", b->id);
	if (with_type)
		fprintf(f, " %s", type_str(&b->type, t, sizeof t));
	if (b->is_output)
		fputs(" (output)", f);
}

void
net_dump(Net *net, FILE *f, const char *after)
{
	size_t live = 0;

	for (size_t i = 0; i < net->layers.n; i++)
		live += !net->layers.v[i]->dead;
	fprintf(f, "# net after %s: %zu layers, target %s, -O%d\n", after, live, net->target,
		net->olevel);
	for (size_t i = 0; i < net->layers.n; i++) {
		const Layer *l = net->layers.v[i];
		const Node *n = l->node;

		if (l->dead)
			continue;
		fprintf(f, "L%zu %s", i, l->type);
		if (n) {
			fprintf(f, " %s @%u", optab[n->op].name,
				diag_line_of(net->c, n->loc.begin, NULL));
			if (n->scope && *n->scope->name)
				fprintf(f, " (%s)", n->scope->name);
		}
		if (l->role)
			fprintf(f, " [%s]", l->role);
		fputs(" :", f);
		for (size_t k = 0; k < l->bottoms.n; k++)
			dump_blob(f, l->bottoms.v[k], false);
		fputs(" ->", f);
		for (size_t k = 0; k < l->tops.n; k++)
			dump_blob(f, l->tops.v[k], true);
		for (size_t k = 0; k < l->weights.n; k++) {
			const Weight *w = &l->weights.v[k];
			fputs(k == 0 ? " blobs" : ",", f);
			for (int d = 0; d < w->ndim; d++)
				fprintf(f, "%s%lld", d == 0 ? " " : "x", (long long)w->dims[d]);
			if (w->ndim <= 0)
				fprintf(f, " %lld", (long long)w->numel);
		}
		fputc('\n', f);
	}
}
