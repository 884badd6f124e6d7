/* netcheck.c: the net verifier.  Runs after lowering and after every fusion (backend.c, fuse.c),
 * always: it is one walk over the layers.
 *
 * It checks what BVLC Caffe's Net::Init enforces when it loads a net, plus the aliasing rule
 * that makes an in-place layer safe, so that a lowering or fusion bug is an internal error
 * naming the layer instead of a net that a runtime refuses, or worse, runs with another layer's
 * values:
 *
 *   - every layer type is in the target's rows of layers.def, and carries no *_param but its
 *     own;
 *   - every bottom is a net input or produced by an earlier layer;
 *   - every top is produced once, except in place (top == bottom), which only a layer whose row
 *     allows it may do, with one bottom and one top;
 *   - a layer writes a blob in place only as the sole reader of the value it overwrites: BVLC
 *     inserts a Split for a blob with several readers and renames their bottoms, so an in-place
 *     layer among them becomes a second producer ("Top blob ... produced by multiple sources",
 *     runtime-facts S7);
 *   - and never on the top of a Reshape or Flatten, which is its bottom's memory in BVLC;
 *   - no layer reads a value that an in-place layer has overwritten: after fuse.c's in-place
 *     pass each layer remembers the SSA values it was lowered to read (Layer.ssa_bottoms), and
 *     the storage blob it reads must still hold that value;
 *   - every output is produced.
 */
#include "net.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const LayerInfo layer_table[] = {
#define LAYER(type, param, in_place, view, targets) {#type, #param, in_place, view, targets},
#include "layers.def"
#undef LAYER
};

typedef struct FieldInfo {
	const char *param, *field;
	unsigned targets;
} FieldInfo;

static const FieldInfo field_table[] = {
#define FIELD(param, field, targets) {#param, #field, targets},
#include "fields.def"
#undef FIELD
};

bool
target_has_field(const char *target, const char *param, const char *field)
{
	for (size_t i = 0; i < sizeof field_table / sizeof *field_table; i++)
		if (strcmp(field_table[i].param, param) == 0 &&
		    strcmp(field_table[i].field, field) == 0)
			return (field_table[i].targets & target_bit(target)) != 0;
	return true; /* a field without a row: every target's */
}

const LayerInfo *
layer_info(const char *type)
{
	for (size_t i = 0; i < sizeof layer_table / sizeof *layer_table; i++)
		if (strcmp(layer_table[i].type, type) == 0)
			return &layer_table[i];
	return NULL;
}

unsigned
target_bit(const char *target)
{
#define X(name, bit) \
	if (strcmp(target, name) == 0) \
		return bit;
	TARGETS(X)
#undef X
	return 0;
}

typedef struct Check {
	const Net *net;
	char *msg;
	size_t size;
	bool *defined;     /* by Blob.id: produced by an earlier layer, or an input */
	uint32_t *readers; /* by Blob.id: layers that read its current value so far */
	const Blob **holds;/* by Blob.id: the SSA value the storage blob holds now */
} Check;

/* The layer as a person finds it: its name once named, else its type, position and the op and
 * log line it lowers. */
static void
describe(const Check *k, const Layer *l, char *buf, size_t size)
{
	if (l->name) {
		snprintf(buf, size, "layer '%s' (%s)", l->name, l->type);
	} else if (l->node && k->net->c) {
		uint32_t start;
		snprintf(buf, size, "layer %u (%s%s%s, lowering '%s' at line %u)", l->idx,
			 l->type, l->role ? " " : "", l->role ? l->role : "",
			 optab[l->node->op].name,
			 diag_line_of(k->net->c, l->node->loc.begin, &start));
	} else {
		snprintf(buf, size, "layer %u (%s)", l->idx, l->type);
	}
}

static bool fail(Check *k, const Layer *l, const char *fmt, ...) PRINTF_LIKE(3, 4);

static bool
fail(Check *k, const Layer *l, const char *fmt, ...)
{
	char who[256];
	size_t n;
	va_list ap;

	describe(k, l, who, sizeof who);
	n = (size_t)snprintf(k->msg, k->size, "%s: ", who);
	if (n < k->size) {
		va_start(ap, fmt);
		vsnprintf(k->msg + n, k->size - n, fmt, ap);
		va_end(ap);
	}
	return false;
}

static const char *
blob_label(const Blob *b, char *buf, size_t size)
{
	if (b->name)
		snprintf(buf, size, "'%s'", b->name);
	else
		snprintf(buf, size, "#%u", b->id);
	return buf;
}

/* The *_param fields of the layer that are set: each must be the one its row names, and set no
 * field that the target's runtimes do not read (fields.def). */
static bool
check_params(Check *k, const Layer *l, const LayerInfo *info)
{
	const ProtobufCMessageDescriptor *d = &caffe__layer_parameter__descriptor;

	for (unsigned i = 0; l->param && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->offset != l->param_offset)
			continue;
		if (strcmp(info->param, f->name) != 0)
			return fail(k, l, "carries %s, which a %s layer does not read", f->name,
				    l->type);
		for (size_t r = 0; r < sizeof field_table / sizeof *field_table; r++) {
			const FieldInfo *fi = &field_table[r];
			const ProtobufCFieldDescriptor *g;
			if (strcmp(fi->param, f->name) != 0 ||
			    (fi->targets & target_bit(k->net->target)))
				continue;
			g = protobuf_c_message_descriptor_get_field_by_name(f->descriptor,
									     fi->field);
			if (g && prototxt_field_present(l->param, g))
				return fail(k, l, "sets %s.%s, which target %s does not read",
					    f->name, fi->field, k->net->target);
		}
	}
	return true;
}

static bool
check_layer(Check *k, const Layer *l, unsigned target)
{
	const LayerInfo *info = l->type ? layer_info(l->type) : NULL;
	char b1[128];

	if (!info)
		return fail(k, l, "layer type '%s' is not in the target table (layers.def)",
		            l->type ? l->type : "(none)");
	if (!(info->targets & target))
		return fail(k, l, "layer type %s is not in target %s", l->type, k->net->target);
	if (!check_params(k, l, info))
		return false;
	for (size_t i = 0; i < l->bottoms.n; i++) {
		const Blob *b = l->bottoms.v[i];
		const Blob *want = l->ssa_bottoms ? l->ssa_bottoms[i] : b;
		if (!k->defined[b->id])
			return fail(
				k, l,
				"bottom %s is neither an input nor produced by an earlier layer",
				blob_label(b, b1, sizeof b1));
		if (k->holds[b->id] != want)
			return fail(k, l,
				    "reads blob %s after an in-place layer overwrote the value it "
				    "needs",
				    blob_label(b, b1, sizeof b1));
		k->readers[b->id]++;
	}
	for (size_t i = 0; i < l->tops.n; i++) {
		const Blob *t = l->tops.v[i];
		const Blob *value = l->ssa_tops ? l->ssa_tops[i] : t;
		bool in_place = false;
		for (size_t j = 0; j < l->bottoms.n; j++)
			in_place |= l->bottoms.v[j] == t;
		if (t->producer != l && !in_place)
			return fail(k, l, "top %s names another layer as its producer",
				    blob_label(t, b1, sizeof b1));
		if (in_place) {
			if (!info->in_place)
				return fail(k, l, "runs in place on %s; %s layers cannot",
					    blob_label(t, b1, sizeof b1), l->type);
			if (l->bottoms.n != 1 || l->tops.n != 1)
				return fail(k, l, "runs in place with %zu bottoms and %zu tops",
					    l->bottoms.n, l->tops.n);
			if (k->readers[t->id] != 1)
				return fail(k, l,
					    "runs in place on %s, which %u other layer(s) also "
					    "read: BVLC's Split makes it a second producer",
					    blob_label(t, b1, sizeof b1), k->readers[t->id] - 1);
			if (t->is_input)
				return fail(k, l, "runs in place on the net input %s",
					    blob_label(t, b1, sizeof b1));
			const LayerInfo *made =
				t->producer ? layer_info(t->producer->type) : NULL;
			if (made && made->view)
				return fail(k, l,
					    "runs in place on %s, a %s top that shares its "
					    "bottom's memory in BVLC",
					    blob_label(t, b1, sizeof b1), t->producer->type);
		} else if (k->defined[t->id]) {
			return fail(k, l, "top %s is already produced by an earlier layer",
				    blob_label(t, b1, sizeof b1));
		}
		k->defined[t->id] = true;
		k->readers[t->id] = 0;
		k->holds[t->id] = value;
	}
	return true;
}

bool
netcheck(const Net *net, char *msg, size_t size)
{
	size_t nb = net->blobs.n ? net->blobs.n : 1;
	Check k = {.net = net, .msg = msg, .size = size};
	unsigned target = target_bit(net->target);
	bool ok = true;

	k.defined = xcalloc(nb, sizeof *k.defined);
	k.readers = xcalloc(nb, sizeof *k.readers);
	k.holds = xcalloc(nb, sizeof *k.holds);
	if (!target) {
		snprintf(msg, size, "unknown target '%s'", net->target ? net->target : "(none)");
		ok = false;
	}
	for (size_t i = 0; ok && i < net->blobs.n; i++)
		if (net->blobs.v[i]->id != i) {
			snprintf(msg, size, "blob %zu has id %u", i, net->blobs.v[i]->id);
			ok = false;
		}
	for (size_t i = 0; ok && i < net->layers.n; i++) {
		const Layer *l = net->layers.v[i];
		if (!l->dead)
			ok = check_layer(&k, l, target);
	}
	for (size_t i = 0; ok && i < net->outputs.n; i++) {
		char b1[128];
		if (!k.defined[net->outputs.v[i]->id]) {
			snprintf(msg, size, "output %s is not produced by any layer",
			         blob_label(net->outputs.v[i], b1, sizeof b1));
			ok = false;
		}
	}
	free(k.defined);
	free(k.readers);
	free(k.holds);
	return ok;
}

void
net_verify(const Net *net, const char *after)
{
	char msg[768];

	if (!netcheck(net, msg, sizeof msg))
		ptcc_die("the net after %s breaks a Caffe rule: %s", after, msg);
}
