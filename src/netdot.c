/* netdot.c: the back end's Net drawn for Graphviz (`ptcc --emit=dot --after=PHASE`), after the
 * pass --dump-net would print it after.  After `fuse` it is the net codegen writes, and it carries
 * the final layer and blob names: backend.c runs the naming pass before drawing it.  The earlier
 * nets have no names yet, so their layers and blobs are shown as --dump-net numbers them.
 *
 * A layer is a box: its type; its name (before naming: L3, its index in the net, and the op's
 * module scope); the op it lowers with the op's trace line, `batch_norm [scale] run.log:19` (a
 * helper layer's role in brackets; an Input layer gives its `input` line, and a helper layer of
 * no op the `output` line it serves); its weight blobs' shapes.  A blob is an ellipse: its name
 * (before naming: b5) and type.  Edges follow the data, in net order.
 *
 * In place: a layer whose top is one of its bottoms (fusion makes them) is a rounded box marked
 * `in place`, its edges to and from that blob bold, and the blob it writes is drawn again after
 * it.  Each write of a blob is a node of its own (b1 for the first, then b1_2, b1_3, ...), so the
 * picture stays acyclic and shows in which order the layers sharing that memory use it.
 *
 * The net's input and output blobs have two peripheries, and an output blob says which output of
 * the trace it holds (`output logits`, or `output output0` by position, as --emit=dot's trace
 * graph names them).  An unused top (the cut-off part of a Slice) is dashed.
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>

typedef struct Drawing {
	Net *net;
	FILE *f;
	uint32_t *nwrites; /* by Blob.id: the live layers that write it */
	uint32_t *version; /* by Blob.id: the writes drawn so far */
	uint32_t *output;  /* by Layer.idx: for a helper layer of no op, the offset of the output
	                      line its chain serves; UINT32_MAX if none */
} Drawing;

static bool
in_place(const Layer *l)
{
	for (size_t k = 0; k < l->tops.n; k++)
		if (layer_reads(l, l->tops.v[k]))
			return true;
	return false;
}

static void
blob_id(Drawing *d, const Blob *b, uint32_t version)
{
	if (version > 1)
		fprintf(d->f, "b%u_%u", b->id, version);
	else
		fprintf(d->f, "b%u", b->id);
}

/* The input value an Input layer makes, or NULL. */
static const Value *
input_of(const Net *net, const Layer *l)
{
	const Graph *g = &net->c->g;

	for (size_t i = 0; i < g->inputs.n && l->tops.n; i++)
		if (net->blob_of[g->inputs.v[i]->id] == l->tops.v[0])
			return g->inputs.v[i];
	return NULL;
}

static void
draw_layer(Drawing *d, const Layer *l, size_t i)
{
	FILE *f = d->f;
	const Node *n = l->node;
	const Value *in = n ? NULL : input_of(d->net, l);

	fprintf(f, "  L%zu [%slabel=\"", i, in_place(l) ? "style=rounded, " : "");
	dot_string(f, l->type);
	fputs("\\n", f);
	if (l->name) {
		dot_string(f, l->name);
	} else {
		fprintf(f, "L%zu", i);
		if (n && n->scope && *n->scope->name) {
			fputs(" (", f);
			dot_string(f, n->scope->name);
			fputc(')', f);
		}
	}
	fputs("\\n", f);
	if (n)
		fprintf(f, "%s ", optab[n->op].name);
	if (l->role) {
		fputc('[', f);
		dot_string(f, l->role);
		fputs(n ? "] " : "]", f);
	}
	if (n) {
		dot_trace_line(d->net->c, f, n->loc.begin);
	} else if (in) {
		fputs("input ", f);
		dot_trace_line(d->net->c, f, in->pos);
	} else if (d->output[i] != UINT32_MAX) {
		fputs(" output ", f);
		dot_trace_line(d->net->c, f, d->output[i]);
	}
	for (size_t k = 0; k < l->weights.n; k++) {
		const Weight *w = &l->weights.v[k];
		fputs(k == 0 ? "\\nblobs " : ", ", f);
		for (int a = 0; a < w->ndim; a++)
			fprintf(f, "%s%lld", a == 0 ? "" : "x", (long long)w->dims[a]);
		if (w->ndim <= 0)
			fprintf(f, "%lld", (long long)w->numel);
	}
	if (in_place(l))
		fputs("\\nin place", f);
	fputs("\"];\n", f);
}

/* The node of a blob's write: name (or bN) and type, and what it is to the net. */
static void
draw_blob(Drawing *d, const Blob *b, uint32_t version)
{
	FILE *f = d->f;
	const Net *net = d->net;
	const Graph *g = &net->c->g;
	bool last = version >= d->nwrites[b->id];
	bool ends = b->is_input || (last && b->is_output);
	char t[TYPE_STR_MAX];

	fputs("  ", f);
	blob_id(d, b, version);
	fprintf(f, " [shape=ellipse%s%s, label=\"", ends ? ", peripheries=2" : "",
		b->discard ? ", style=dashed" : "");
	if (b->name)
		dot_string(f, b->name);
	else
		fprintf(f, "b%u", b->id);
	fprintf(f, "\\n%s", type_str(&b->type, t, sizeof t));
	if (b->discard)
		fputs("\\nunused", f);
	/* lowering makes one output blob per output line of the trace, in order */
	for (size_t i = 0; last && b->is_output && i < net->outputs.n; i++) {
		if (net->outputs.v[i] != b)
			continue;
		fputs("\\noutput ", f);
		if (net->outputs.n == g->outputs.n && g->outputs.v[i].name)
			dot_string(f, g->outputs.v[i].name);
		else
			fprintf(f, "output%zu", i);
	}
	fputs("\"];\n", f);
}

/* The layers of no op (an input or a constant returned as an output: lower.c makes them for the
 * output line) come from the output line their chain ends at: found backwards from the outputs,
 * each such layer passing its line on to the blobs it reads. */
static void
find_output_lines(Drawing *d)
{
	const Net *net = d->net;
	const Graph *g = &net->c->g;
	uint32_t *at = xmalloc((net->blobs.n + 1) * sizeof(uint32_t)); /* by Blob.id */

	for (size_t i = 0; i < net->blobs.n; i++)
		at[i] = UINT32_MAX;
	for (size_t i = 0; i < net->layers.n; i++)
		d->output[i] = UINT32_MAX;
	for (size_t i = 0; i < net->outputs.n && net->outputs.n == g->outputs.n; i++)
		at[net->outputs.v[i]->id] = g->outputs.v[i].loc.begin;
	for (size_t i = net->layers.n; i-- > 0;) {
		const Layer *l = net->layers.v[i];
		if (l->dead || l->node || !l->role)
			continue;
		for (size_t k = 0; k < l->tops.n && d->output[i] == UINT32_MAX; k++)
			d->output[i] = at[l->tops.v[k]->id];
		for (size_t k = 0; k < l->bottoms.n && d->output[i] != UINT32_MAX; k++)
			if (at[l->bottoms.v[k]->id] == UINT32_MAX)
				at[l->bottoms.v[k]->id] = d->output[i];
	}
	free(at);
}

void
net_dot(Net *net, FILE *f, const char *after)
{
	Drawing d = {net, f, xcalloc(net->blobs.n + 1, sizeof(uint32_t)),
		     xcalloc(net->blobs.n + 1, sizeof(uint32_t)),
		     xcalloc(net->layers.n + 1, sizeof(uint32_t))};
	const char *base = strrchr(net->c->path, '/');

	for (size_t i = 0; i < net->layers.n; i++)
		for (size_t k = 0; !net->layers.v[i]->dead && k < net->layers.v[i]->tops.n; k++)
			d.nwrites[net->layers.v[i]->tops.v[k]->id]++;
	find_output_lines(&d);
	fputs("digraph ptcc_net {\n  label=\"", f);
	dot_string(f, net->name ? net->name : base ? base + 1 : net->c->path);
	fprintf(f, ": the Caffe net after %s, target %s, -O%d\";\n  labelloc=t;\n", after,
		net->target, net->olevel);
	fputs("  node [shape=box, fontname=\"monospace\", fontsize=10];\n", f);
	for (size_t i = 0; i < net->layers.n; i++) {
		const Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		draw_layer(&d, l, i);
		for (size_t k = 0; k < l->bottoms.n; k++) {
			const Blob *b = l->bottoms.v[k];
			if (d.version[b->id] == 0) /* no layer wrote it: a verified net has none */
				draw_blob(&d, b, ++d.version[b->id]);
			fputs("  ", f);
			blob_id(&d, b, d.version[b->id]);
			fprintf(f, " -> L%zu%s;\n", i, layer_writes(l, b) ? " [style=bold]" : "");
		}
		for (size_t k = 0; k < l->tops.n; k++) {
			const Blob *b = l->tops.v[k];
			draw_blob(&d, b, ++d.version[b->id]);
			fprintf(f, "  L%zu -> ", i);
			blob_id(&d, b, d.version[b->id]);
			fputs(layer_reads(l, b) ? " [style=bold];\n" : ";\n", f);
		}
	}
	fputs("}\n", f);
	free(d.nwrites);
	free(d.version);
	free(d.output);
}
