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
	prototxt_write(text.fp, &np->base, skip_blobs);
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
