/* codegen.c: the net written twice, layer by layer.
 *
 * The prototxt is a NetParameter without blobs, printed by prototxt.c; the caffemodel is the same
 * NetParameter with blobs (the layout Caffe's own Net::ToProto writes), streamed to the file
 * through protobuf-c's packer.  Each layer's LayerParameter is built only while that layer is
 * written, in buffers reused from layer to layer (a net of 10^6 layers never holds 10^6 of those
 * 368-byte messages), and the caffemodel's repeated `layer` field is framed here, as protobuf-c
 * would frame it.  Blob data points at the weights file's mapping, so F32 weights are never
 * copied in memory: the library hands each packed float array to the buffer in one piece, and
 * the weights pass copies it from the file into its place (file_append, copypass.c).
 */
#include "net.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* A ProtobufCBuffer that appends to an OutFile and keeps the first write error. */
typedef struct FileBuffer {
	ProtobufCBuffer base;
	OutFile *out;
} FileBuffer;

/* Weight arrays arrive whole (megabytes, straight from the weights mapping).  One that lies in an
 * input file's mapping (an F32 tensor of the weights file, an ONNX initializer's raw_data) goes
 * through outfile_copy_range, which leaves its place for the weights pass to copy it from that
 * file without a page of the mapping being touched (copypass.c has the measurements).  What is
 * left (the framing, computed weights, all with PTCC_NO_COPY_PASS=1) is written in 1 MiB pieces,
 * which keeps the kernel's copy from mapped pages in step with readahead. */
enum { WRITE_CHUNK = 1 << 20 };

static void
file_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
	FileBuffer *fb = (FileBuffer *)buffer;
	size_t copied = outfile_copy_range(fb->out, data, len);

	data += copied;
	len -= copied;
	while (len && !fb->out->error) {
		size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK;
		if (fwrite(data, 1, n, fb->out->fp) != n)
			fb->out->error = errno ? errno : EIO;
		data += n;
		len -= n;
	}
}

/* One layer's LayerParameter and the arrays it points to, rebuilt for each layer. */
typedef struct LayerMessage {
	Caffe__LayerParameter lp;
	char **names; /* the bottoms' names, then the tops' */
	Caffe__BlobProto *protos, **blobs;
	Caffe__BlobShape *shapes;
	size_t names_cap, blobs_cap;
} LayerMessage;

static void
layer_message(LayerMessage *m, const Layer *l, bool with_blobs)
{
	size_t nb = l->bottoms.n, nt = l->tops.n, nw = with_blobs ? l->weights.n : 0;

	if (nb + nt > m->names_cap) {
		m->names_cap = nb + nt;
		m->names = xrealloc(m->names, sizeof *m->names * m->names_cap);
	}
	if (nw > m->blobs_cap) {
		m->blobs_cap = nw;
		m->protos = xrealloc(m->protos, sizeof *m->protos * nw);
		m->blobs = xrealloc(m->blobs, sizeof *m->blobs * nw);
		m->shapes = xrealloc(m->shapes, sizeof *m->shapes * nw);
	}
	m->lp = (Caffe__LayerParameter)CAFFE__LAYER_PARAMETER__INIT;
	m->lp.name = (char *)l->name;
	m->lp.type = (char *)l->type;
	for (size_t i = 0; i < nb; i++)
		m->names[i] = (char *)l->bottoms.v[i]->name;
	for (size_t i = 0; i < nt; i++)
		m->names[nb + i] = (char *)l->tops.v[i]->name;
	m->lp.n_bottom = nb;
	m->lp.bottom = m->names;
	m->lp.n_top = nt;
	m->lp.top = m->names + nb;
	if (l->param)
		*(ProtobufCMessage **)(void *)((char *)&m->lp + l->param_offset) = l->param;
	for (size_t i = 0; i < nw; i++) {
		const Weight *w = &l->weights.v[i];
		Caffe__BlobProto *b = &m->protos[i];

		*b = (Caffe__BlobProto)CAFFE__BLOB_PROTO__INIT;
		if (w->ndim >= 0) {
			m->shapes[i] = (Caffe__BlobShape)CAFFE__BLOB_SHAPE__INIT;
			m->shapes[i].n_dim = (size_t)w->ndim;
			m->shapes[i].dim = (int64_t *)w->dims;
			b->shape = &m->shapes[i];
		}
		b->n_data = (size_t)w->numel;
		b->data = (float *)w->data; /* only read by the packer */
		m->blobs[i] = b;
	}
	m->lp.n_blobs = nw;
	m->lp.blobs = nw ? m->blobs : NULL;
}

static void
layer_message_free(LayerMessage *m)
{
	free(m->names);
	free(m->protos);
	free(m->blobs);
	free(m->shapes);
}

enum { CAFFE_NET_LAYER_FIELD = 100 }; /* caffe.proto: repeated LayerParameter layer = 100 */

/* The key of NetParameter's `layer` field (number 100, length-delimited) and a length, as
 * protobuf varints: what precedes each packed LayerParameter in a caffemodel. */
static size_t
layer_frame(uint8_t *buf, size_t len)
{
	uint64_t v[2] = {(uint64_t)CAFFE_NET_LAYER_FIELD << 3 | 2, len};
	size_t n = 0;

	for (int k = 0; k < 2; k++) {
		do {
			uint8_t byte = v[k] & 0x7f;
			v[k] >>= 7;
			buf[n++] = byte | (v[k] ? 0x80 : 0);
		} while (v[k]);
	}
	return n;
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
note_layer(FILE *fp, const Layer *l, const LayerMap *map)
{
	Ctx *c = map->net->c;
	Blob *const *tops = l->ssa_tops ? l->ssa_tops : l->tops.v; /* as lowered: in place,
	                                                              a top holds its own value */
	bool holds = false;
	uint32_t pos;

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

/* The caffemodel's size: NetParameter's own fields and each framed layer. */
static size_t
caffemodel_size(Net *net, const Caffe__NetParameter *head, LayerMessage *m)
{
	size_t size = protobuf_c_message_get_packed_size(&head->base);
	uint8_t frame[20];

	for (size_t i = 0; i < net->layers.n; i++) {
		if (net->layers.v[i]->dead)
			continue;
		layer_message(m, net->layers.v[i], true);
		size_t n = protobuf_c_message_get_packed_size(&m->lp.base);
		size += layer_frame(frame, n) + n;
	}
	return size;
}

static void
write_caffemodel(Net *net, const Caffe__NetParameter *head, LayerMessage *m, OutFile *model)
{
	FileBuffer fb = {{NULL}, model};
	uint8_t frame[20];

	fb.base.append = file_append;
	protobuf_c_message_pack_to_buffer(&head->base, &fb.base);
	for (size_t i = 0; i < net->layers.n; i++) {
		if (net->layers.v[i]->dead)
			continue;
		layer_message(m, net->layers.v[i], true);
		file_append(&fb.base,
			    layer_frame(frame, protobuf_c_message_get_packed_size(&m->lp.base)),
			    frame);
		protobuf_c_message_pack_to_buffer(&m->lp.base, &fb.base);
	}
}

/* The prototxt: a NetParameter without blobs, each layer under a note that maps it to the trace. */
static void
write_prototxt(Net *net, Caffe__NetParameter *head, LayerMessage *m, FILE *f)
{
	const char *log = strrchr(net->c->path, '/');

	fprintf(f, "# ptcc %s: %s, target %s, -O%d\n", PACKAGE_VERSION,
		log ? log + 1 : net->c->path, net->target, net->olevel);
	/* Caffe has no output declaration, and the runtimes list a net's outputs in their own
	 * orders (BVLC by name, OpenCV by layer): say which blobs the trace's outputs are, in
	 * the trace's order, each quoted and escaped as the text format does (a name may hold
	 * any character) */
	fputs("# outputs:", f);
	for (size_t i = 0; i < net->outputs.n; i++) {
		fputc(' ', f);
		prototxt_put_string(f, net->outputs.v[i]->name, strlen(net->outputs.v[i]->name));
	}
	fputc('\n', f);
	LayerMap map = {net, log ? log + 1 : net->c->path, blob_holders(net)};
	prototxt_write(f, &head->base, NULL);
	for (size_t i = 0; i < net->layers.n; i++) {
		const Layer *l = net->layers.v[i];
		if (l->dead)
			continue;
		note_layer(f, l, &map);
		layer_message(m, l, false);
		prototxt_write_field(f, "layer", &m->lp.base, NULL);
	}
}

static int
write_outputs(Net *net, const char *prototxt, const char *caffemodel, LayerMessage *m)
{
	Caffe__NetParameter head = CAFFE__NET_PARAMETER__INIT;
	OutFile text, model;
	size_t size = 0;

	head.name = (char *)net->name;
	if (caffemodel) {
		/* Caffe and OpenCV refuse to parse more than INT_MAX bytes: fail before writing
		 * anything */
		size = caffemodel_size(net, &head, m);
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
	if (caffemodel) {
		if (!outfile_open(net->c, &model, caffemodel)) {
			outfile_abort(&text);
			return 2;
		}
		/* the caffemodel first: its weights pass copies the payloads into their places
		 * while the prototxt is written */
		write_caffemodel(net, &head, m, &model);
		net->c->model_copied = model.copied;
		net->c->model_bytes = size;
		net->c->model_kind = "caffemodel";
	}
	write_prototxt(net, &head, m, text.fp);
	if (caffemodel && model.pass) /* the rest of the value check rides along */
		value_check_queue(net->c, model.pass);
	if (!outfile_close(&text)) {
		if (caffemodel)
			outfile_abort(&model);
		return 2;
	}
	if (caffemodel && (!outfile_close(&model) || !outfile_commit(&model))) {
		outfile_abort(&text);
		return 2;
	}
	return outfile_commit(&text) ? 0 : 2;
}

int
codegen(Net *net, const char *prototxt, const char *caffemodel)
{
	LayerMessage m = {0};
	int status = write_outputs(net, prototxt, caffemodel, &m);

	layer_message_free(&m);
	return status;
}
