/* codegen.c: one in-memory NetParameter, written twice.
 *
 * The prototxt is the NetParameter without blobs, printed by prototxt.c; the caffemodel is the
 * same NetParameter with blobs (the layout Caffe's own Net::ToProto writes), streamed to the
 * file by protobuf_c_message_pack_to_buffer.  Blob data points at the weights file's mapping, so
 * F32 weights are never copied in memory: the library hands each packed float array to the
 * buffer in one piece.
 */
#include "net.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "config.h"

/* A ProtobufCBuffer that appends to an OutFile and keeps the first write error. */
typedef struct FileBuffer {
	ProtobufCBuffer base;
	OutFile *out;
} FileBuffer;

/* Weight arrays arrive whole (megabytes, straight from the weights mapping).  Writing them in 1
 * MiB pieces keeps the kernel's copy from the mapped pages in step with readahead: measured on
 * resnet50, 1.3x the time of cp instead of 1.7-2x with one write per array.  (copy_file_range
 * from the weights file was slower still: the caffemodel's framing leaves the copies unaligned.) */
enum { WRITE_CHUNK = 1 << 20 };

static void
file_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	FileBuffer *fb = (FileBuffer *)buffer;

	while (len && !fb->out->error) {
		size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK;
		if (fwrite(data, 1, n, fb->out->fp) != n)
			fb->out->error = errno ? errno : EIO;
		data += n;
		len -= n;
	}
}

static bool
skip_blobs(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       f->descriptor == &caffe__blob_proto__descriptor;
}

static char **
blob_names(Net *net, Blob **v, size_t n, size_t *count)
{
	char **names = arena_alloc(net->arena, sizeof(char *) * (n ? n : 1));

	for (size_t i = 0; i < n; i++)
		names[i] = (char *)v[i]->name;
	*count = n;
	return names;
}

static Caffe__BlobProto **
blob_protos(Net *net, Layer *l)
{
	Caffe__BlobProto **blobs =
		arena_alloc(net->arena, sizeof *blobs * (l->weights.n ? l->weights.n : 1));

	for (size_t i = 0; i < l->weights.n; i++) {
		Weight *w = &l->weights.v[i];
		Caffe__BlobProto *b = arena_alloc(net->arena, sizeof *b);
		*b = (Caffe__BlobProto)CAFFE__BLOB_PROTO__INIT;
		if (w->ndim >= 0) {
			b->shape = arena_alloc(net->arena, sizeof *b->shape);
			*b->shape = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
			b->shape->n_dim = (size_t)w->ndim;
			b->shape->dim = w->dims;
		}
		b->n_data = (size_t)w->numel;
		b->data = (float *)w->data; /* only read by the packer */
		blobs[i] = b;
	}
	return blobs;
}

/* The trace side of each layer, as a comment line above it:
 *
 *     # run.log:57: %41 = conv2d @ torchvision/models/resnet.py:92
 *
 * the trace line of the op the layer lowers, the handle whose value each top holds once the
 * layer has run (`_` for a top that holds an intermediate; nothing before `=` when no top holds
 * a trace value; `%2 (line 112)` for the value of another line) and the op's source position.
 * A reader sees where each layer came from, and ptcc-verify --layers compares each top with
 * that handle's value in PyTorch. */
typedef struct LayerMap {
	Net *net;
	const char *log;      /* the trace's file name */
	const Value **holder; /* by Blob.id: the first trace value the blob holds, or NULL */
} LayerMap;

/* Comment text: a control byte would end the comment, so bytes below 0x20, DEL and the
 * backslash are escaped as in a string. */
static void
put_comment_text(FILE *fp, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			fprintf(fp, ch == '\\' ? "\\\\" : "\\%03o", ch);
		else
			fputc(ch, fp);
	}
}

static void
note_layer(FILE *fp, const ProtobufCMessage *element, void *arg)
{
	const LayerMap *map = arg;
	Ctx *c = map->net->c;
	/* lp is a Layer's first member */
	const Layer *l = (const Layer *)(const void *)element;
	Blob *const *tops = l->ssa_tops ? l->ssa_tops : l->tops.v; /* as lowered: in place,
	                                                              a top holds its own value */
	bool holds = false;
	uint32_t pos;

	if (element->descriptor != &caffe__layer_parameter__descriptor)
		return;
	for (size_t k = 0; k < l->tops.n; k++)
		holds |= map->holder[tops[k]->id] != NULL;
	if (l->node)
		pos = l->node->loc.begin;
	else if (holds && l->tops.n == 1 && map->holder[tops[0]->id]->kind == VK_INPUT)
		pos = map->holder[tops[0]->id]->pos; /* an Input layer */
	else
		return; /* a helper of no op: an input or a constant returned as an output */
	uint32_t line = diag_line_of(c, pos, NULL);
	fputs("# ", fp);
	put_comment_text(fp, map->log);
	fprintf(fp, ":%" PRIu32 ": ", line);
	for (size_t k = 0; holds && k < l->tops.n; k++) {
		const Value *v = map->holder[tops[k]->id];
		if (!v || v->handle == NO_HANDLE) {
			fputs(k ? ", _" : "_", fp);
			continue;
		}
		fprintf(fp, "%s%%%" PRIu32, k ? ", " : "", v->handle);
		/* a value of another line: a Convolution with the BatchNorm folded into it holds
		 * the batch_norm's result */
		uint32_t def = v->kind == VK_OP ? v->def->loc.begin : v->pos;
		if (def != pos)
			fprintf(fp, " (line %" PRIu32 ")", diag_line_of(c, def, NULL));
	}
	fputs(holds ? " = " : "", fp);
	fputs(l->node ? optab[l->node->op].name : "input", fp);
	if (l->node && l->node->src) {
		fputs(" @ ", fp);
		put_comment_text(fp, l->node->src);
	}
	fputc('\n', fp);
}

/* Which trace value each blob holds: the first value (in trace order) bound to it, so that a
 * blob shared by an op and a view of its result (an identity lowering) names the op's. */
static const Value **
blob_holders(Net *net)
{
	Graph *g = &net->c->g;
	const Value **holder = arena_zalloc(net->arena, sizeof *holder * (net->blobs.n + 1));

	for (size_t i = 0; i < g->inputs.n; i++) {
		Blob *b = net->blob_of[g->inputs.v[i]->id];
		if (b && !holder[b->id])
			holder[b->id] = g->inputs.v[i];
	}
	for (const Node *n = g->first; n; n = n->next)
		for (unsigned k = 0; k < n->nres; k++) {
			Blob *b = net->blob_of[n->res[k].id];
			if (b && !holder[b->id])
				holder[b->id] = &n->res[k];
		}
	return holder;
}

static Caffe__NetParameter *
build(Net *net, bool with_blobs)
{
	Caffe__NetParameter *np = arena_alloc(net->arena, sizeof *np);
	size_t n = 0;

	*np = (Caffe__NetParameter)CAFFE__NET_PARAMETER__INIT;
	np->name = (char *)net->name;
	np->layer =
		arena_alloc(net->arena, sizeof *np->layer * (net->layers.n ? net->layers.n : 1));
	for (size_t i = 0; i < net->layers.n; i++) {
		Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		l->lp.name = (char *)l->name;
		l->lp.bottom = blob_names(net, l->bottoms.v, l->bottoms.n, &l->lp.n_bottom);
		l->lp.top = blob_names(net, l->tops.v, l->tops.n, &l->lp.n_top);
		if (with_blobs) {
			l->lp.blobs = blob_protos(net, l);
			l->lp.n_blobs = l->weights.n;
		}
		np->layer[n++] = &l->lp;
	}
	np->n_layer = n;
	return np;
}

int
codegen(Net *net, const char *prototxt, const char *caffemodel)
{
	Caffe__NetParameter *np = build(net, caffemodel != NULL);
	OutFile text, model;
	const char *log = strrchr(net->c->path, '/');

	if (caffemodel) {
		/* Caffe and OpenCV refuse to parse more than INT_MAX bytes: fail before writing
		 * anything */
		size_t size = protobuf_c_message_get_packed_size(&np->base);
		if (size > INT_MAX) {
			diag_file(net->c, DIAG_ERROR, caffemodel,
				  "the model would be %zu bytes; Caffe cannot read a caffemodel "
				  "over 2 GiB (%d bytes)",
				  size, INT_MAX);
			return 1;
		}
	}
	if (!outfile_open(net->c, &text, prototxt))
		return 2;
	fprintf(text.fp, "# ptcc %s: %s, target %s, -O%d\n", PACKAGE_VERSION,
		log ? log + 1 : net->c->path, net->target, net->olevel);
	/* Caffe has no output declaration, and the runtimes list a net's outputs in their own
	 * orders (BVLC by name, OpenCV by layer): say which blobs the trace's outputs are, in
	 * the trace's order, each quoted and escaped as the text format does (a name may hold
	 * any character) */
	fputs("# outputs:", text.fp);
	for (size_t i = 0; i < net->outputs.n; i++) {
		fputc(' ', text.fp);
		prototxt_put_string(text.fp, net->outputs.v[i]->name,
				    strlen(net->outputs.v[i]->name));
	}
	fputc('\n', text.fp);
	LayerMap map = {net, log ? log + 1 : net->c->path, blob_holders(net)};
	prototxt_write(text.fp, &np->base, skip_blobs, note_layer, &map);
	if (!outfile_close(&text))
		return 2;
	if (caffemodel) {
		FileBuffer fb = {{NULL}, &model};
		if (!outfile_open(net->c, &model, caffemodel)) {
			outfile_abort(&text);
			return 2;
		}
		fb.base.append = file_append;
		protobuf_c_message_pack_to_buffer(&np->base, &fb.base);
		if (!outfile_close(&model)) {
			outfile_abort(&text);
			return 2;
		}
		if (!outfile_commit(&model)) {
			outfile_abort(&text);
			return 2;
		}
	}
	return outfile_commit(&text) ? 0 : 2;
}
