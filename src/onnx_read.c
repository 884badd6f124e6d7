/* onnx_read.c: an ONNX model file, mapped and read in place.
 *
 * ModelProto and GraphProto are walked field by field (wire.c); each node and value info is
 * unpacked with protobuf-c (src/proto/onnx.proto, small messages); each TensorProto is walked too,
 * and its data used where it lies: raw_data and packed float_data in the file's mapping (or an
 * external data file's), the varint fields decoded into the arena.  So a model costs little more
 * than its mapped file.  Everything is validated before it is used: a truncated or corrupt file,
 * a tensor whose data does not match its type and shape, an external file outside the model's
 * directory are errors with the file's name, never a crash.
 */
#include "onnx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
onnx_dtype(int t)
{
	switch (t) {
	case ONNX_FLOAT: return DT_F32;
	case ONNX_UINT8: return DT_U8;
	case ONNX_INT8: return DT_I8;
	case ONNX_INT16: return DT_I16;
	case ONNX_INT32: return DT_I32;
	case ONNX_INT64: return DT_I64;
	case ONNX_BOOL: return DT_BOOL;
	case ONNX_FLOAT16: return DT_F16;
	case ONNX_DOUBLE: return DT_F64;
	case ONNX_BFLOAT16: return DT_BF16;
	default: return DT_UNKNOWN;
	}
}

static const char *
onnx_type_name(int t)
{
	static const char *const names[] = {
		"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64",
		"STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64",
		"COMPLEX128", "BFLOAT16"};

	return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "an unknown type";
}

bool
onnx_is_model(const char *path)
{
	size_t n = strlen(path);
	unsigned char b = 0;
	struct stat st;
	int fd;

	if (n > 5 && strcmp(path + n - 5, ".onnx") == 0)
		return true;
	/* the first field of every exporter's ModelProto is ir_version: key 0x08 (a trace
	 * starts with text).  Only a regular file is read: a FIFO would block (ctx_open then
	 * refuses anything else, as it always has). */
	if ((fd = input_open(path, &st)) < 0)
		return false;
	if (!S_ISREG(st.st_mode) || read(fd, &b, 1) != 1)
		b = 0;
	close(fd);
	return b == 0x08;
}

/* What a diagnostic about tensor t calls it. */
static const char *
tensor_desc(const OnnxTensor *t, char *buf, size_t size)
{
	snprintf(buf, size, "tensor '%s'", t->name ? t->name : "");
	return buf;
}

/* The varints of fields `num` (packed or not), counted: -1 when the bytes are not protobuf. */
static int64_t
count_varints(const uint8_t *p, size_t n, uint32_t num)
{
	Wire w = {p, p + n};
	WireField f;
	int r;
	int64_t k = 0;

	while ((r = wire_next(&w, &f)) > 0) {
		if (f.num != num)
			continue;
		if (f.type == WIRE_VARINT)
			k++;
		else if (f.type != WIRE_LEN)
			return -1;
		else
			for (uint64_t i = 0; i < f.u; i++) /* a varint ends at a byte below 0x80 */
				k += f.data[i] < 0x80;
	}
	return r == 0 ? k : -1;
}

/* The varints of fields `num` (packed or not) into the arena as dtype elements, once their count
 * is known to be the tensor's (so that a tensor's dims never size an allocation alone). */
static bool
gather_varints(Ctx *c, const uint8_t *p, size_t n, uint32_t num, OnnxTensor *t, int esize)
{
	Wire w = {p, p + n};
	WireField f;
	int64_t k = 0;
	unsigned char *out;

	if (count_varints(p, n, num) != t->numel)
		return false;
	out = arena_alloc(&c->arena, (size_t)t->numel * (size_t)esize + 1);
	while (wire_next(&w, &f) > 0) {
		const uint8_t *q, *end;
		uint64_t v;

		if (f.num != num)
			continue;
		q = f.type == WIRE_LEN ? f.data : (const uint8_t *)"";
		end = f.type == WIRE_LEN ? f.data + f.u : q;
		for (bool one = f.type == WIRE_VARINT; one || q < end; one = false) {
			if (one)
				v = f.u;
			else if (!wire_varint(&q, end, &v))
				return false;
			if (k == t->numel)
				return false;
			for (int b = 0; b < esize; b++) /* little-endian, truncated to esize */
				out[k * esize + b] = (unsigned char)(v >> (8 * b));
			k++;
		}
	}
	t->data = out;
	t->nbytes = (uint64_t)k * (uint64_t)esize;
	return k == t->numel;
}

/* The fixed-size elements of field `num`: packed, used in place; one per field, gathered. */
static bool
gather_fixed(Ctx *c, const uint8_t *p, size_t n, uint32_t num, OnnxTensor *t, int esize)
{
	Wire w = {p, p + n};
	WireField f;
	int r, packed = 0, single = 0;
	const uint8_t *span = NULL;
	uint64_t len = 0;
	unsigned char *out = NULL;
	int64_t k = 0;

	while ((r = wire_next(&w, &f)) > 0) {
		if (f.num != num)
			continue;
		if (f.type == WIRE_LEN) {
			packed++;
			span = f.data;
			len = f.u;
		} else if (f.type == (esize == 8 ? WIRE_I64 : WIRE_I32)) {
			single++;
		} else {
			return false;
		}
	}
	if (r < 0)
		return false;
	if (packed <= 1 && !single) {
		t->data = span;
		t->nbytes = len;
		return len == (uint64_t)t->numel * (uint64_t)esize;
	}
	/* unpacked, or several packed runs: gathered into the arena, once the count is right */
	{
		uint64_t total = (uint64_t)single;

		w = (Wire){p, p + n};
		while (wire_next(&w, &f) > 0)
			if (f.num == num && f.type == WIRE_LEN)
				total += f.u / (uint64_t)esize;
		if (total != (uint64_t)t->numel)
			return false;
	}
	out = arena_alloc(&c->arena, (size_t)t->numel * (size_t)esize + 1);
	w = (Wire){p, p + n};
	while (wire_next(&w, &f) > 0) {
		if (f.num != num)
			continue;
		if (f.type == WIRE_LEN) {
			uint64_t count = f.u / (uint64_t)esize;

			if (f.u % (uint64_t)esize || count > (uint64_t)(t->numel - k))
				return false;
			memcpy(out + k * esize, f.data, f.u);
			k += (int64_t)(f.u / (uint64_t)esize);
		} else {
			if (k == t->numel)
				return false;
			for (int b = 0; b < esize; b++)
				out[k * esize + b] = (unsigned char)(f.u >> (8 * b));
			k++;
		}
	}
	t->data = out;
	t->nbytes = (uint64_t)k * (uint64_t)esize;
	return k == t->numel;
}

/* Whether path, its links resolved, lies in the model's directory (resolved too); a path that
 * does not resolve is left to open() to report. */
static bool
inside_model_dir(const OnnxModel *m, const char *path)
{
	const char *slash = strrchr(m->path, '/');
	char *dir = slash ? xmalloc((size_t)(slash - m->path) + 2) : NULL, *rd, *rp;
	bool inside;

	if (dir) {
		memcpy(dir, m->path, (size_t)(slash - m->path) + 1);
		dir[slash - m->path + 1] = 0;
	}
	rd = realpath(dir ? dir : ".", NULL);
	rp = realpath(path, NULL);
	inside = !rd || !rp ||
		 (strncmp(rp, rd, strlen(rd)) == 0 &&
		  (rp[strlen(rd)] == '/' || strcmp(rd, "/") == 0));
	free(dir);
	free(rd);
	free(rp);
	return inside;
}

/* An external data file, confined to the model's directory: a relative path without "..",
 * a regular file.  Mapped once per model (loc is interned), and guarded against shrinking. */
static const uint8_t *
external_map(Ctx *c, OnnxModel *m, const char *loc, size_t *size, const char *what)
{
	const char *slash = strrchr(m->path, '/'), *s;
	char *path;
	size_t dn = slash ? (size_t)(slash - m->path) + 1 : 0;
	struct stat st;
	int fd;
	void *p;
	const char *kind;

	for (size_t i = 0; i < m->externals.n; i++)
		if (m->externals.v[i].location == loc) {
			*size = m->externals.v[i].size;
			return m->externals.v[i].p;
		}
	if (!*loc || loc[0] == '/') {
		diag_file(c, DIAG_ERROR, m->path,
			  "%s: external data location '%s' must be a path relative to the model's "
			  "directory", what, loc);
		return NULL;
	}
	for (s = loc; s; s = strchr(s, '/')) {
		if (*s == '/')
			s++;
		if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == 0)) {
			diag_file(c, DIAG_ERROR, m->path,
				  "%s: external data location '%s' leaves the model's directory",
				  what, loc);
			return NULL;
		}
	}
	path = xmalloc(dn + strlen(loc) + 1);
	memcpy(path, m->path, dn);
	strcpy(path + dn, loc);
	if (!inside_model_dir(m, path)) {
		diag_file(c, DIAG_ERROR, m->path,
			  "%s: external data location '%s' leads out of the model's directory "
			  "(through a symbolic link)", what, loc);
		free(path);
		return NULL;
	}
	fd = input_open(path, &st);
	if (fd < 0) {
		diag_file(c, DIAG_ERROR, m->path, "%s: cannot open external data file '%s': %s",
			  what, path, strerror(errno));
		free(path);
		return NULL;
	}
	if ((kind = file_kind(st.st_mode)) || st.st_size == 0) {
		diag_file(c, DIAG_ERROR, m->path, "%s: external data file '%s' is %s", what, path,
			  kind ? kind : "empty");
		close(fd);
		free(path);
		return NULL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		diag_file(c, DIAG_ERROR, m->path, "%s: cannot map external data file '%s': %s",
			  what, path, strerror(errno));
		close(fd);
		free(path);
		return NULL;
	}
	guard_mapping(p, (size_t)st.st_size, intern(&c->strings, path, strlen(path)), fd);
	close(fd);
	free(path);
	vec_grow(&m->externals);
	m->externals.v[m->externals.n] = (OnnxMapping){loc, p, (size_t)st.st_size,
						       (uint64_t)st.st_dev, (uint64_t)st.st_ino};
	m->externals.n++;
	*size = (size_t)st.st_size;
	return p;
}

/* TensorProto.external_data: location, offset, length */
static bool
external_data(Ctx *c, const uint8_t *p, size_t n, OnnxTensor *t)
{
	OnnxModel *m = c->onnx;
	Wire w = {p, p + n};
	WireField f;
	const char *loc = NULL;
	char what[600];
	uint64_t offset = 0, length = UINT64_MAX;
	bool ok = true;
	const uint8_t *map;
	size_t size;

	tensor_desc(t, what, sizeof what);
	while (ok && wire_next(&w, &f) > 0) {
		Onnx__StringStringEntryProto *e;

		if (f.num != 13 || f.type != WIRE_LEN)
			continue;
		if (!(e = onnx__string_string_entry_proto__unpack(NULL, f.u, f.data)) || !e->key ||
		    !e->value) {
			diag_file(c, DIAG_ERROR, m->path, "%s: an external_data entry is corrupt",
				  what);
			ok = false;
		} else if (strcmp(e->key, "location") == 0) {
			loc = intern(&c->strings, e->value, strlen(e->value));
		} else if (strcmp(e->key, "offset") == 0 || strcmp(e->key, "length") == 0) {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(e->value, &end, 10);
			if (errno || *end || !*e->value || e->value[0] == '-') {
				diag_file(c, DIAG_ERROR, m->path,
					  "%s: external_data %s '%s' is not a byte count", what,
					  e->key, e->value);
				ok = false;
			}
			if (e->key[0] == 'o')
				offset = v;
			else
				length = v;
		}
		if (e)
			onnx__string_string_entry_proto__free_unpacked(e, NULL);
	}
	if (!ok)
		return false;
	if (!loc) {
		diag_file(c, DIAG_ERROR, m->path, "%s: external data without a location", what);
		return false;
	}
	if (!(map = external_map(c, m, loc, &size, what)))
		return false;
	if (length == UINT64_MAX)
		length = t->nbytes;
	if (offset > size || length > size - offset) {
		diag_file(c, DIAG_ERROR, m->path,
			  "%s: bytes %llu to %llu are past the end of '%s' (%zu bytes)", what,
			  (unsigned long long)offset, (unsigned long long)(offset + length), loc,
			  size);
		return false;
	}
	if (length != t->nbytes) {
		diag_file(c, DIAG_ERROR, m->path,
			  "%s: %llu bytes of external data, but %s with %lld elements needs %llu",
			  what, (unsigned long long)length, onnx_type_name(t->onnx_type),
			  (long long)t->numel, (unsigned long long)t->nbytes);
		return false;
	}
	t->data = map + offset;
	return true;
}

/* An error about a tensor: at the node whose attribute holds it, or the file's for an initializer
 * (origin UINT32_MAX). */
static void terr(Ctx *c, uint32_t origin, const char *fmt, ...) PRINTF_LIKE(3, 4);

static void
terr(Ctx *c, uint32_t origin, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(c, DIAG_ERROR, origin == UINT32_MAX ? NO_LOC : (Loc){origin, origin + 1}, fmt, ap);
	va_end(ap);
}

bool
onnx_tensor(Ctx *c, const uint8_t *p, size_t n, OnnxTensor *t, uint32_t origin)
{
	Wire w;
	WireField f;
	int64_t dims[MAX_DIMS];
	int r, ndim = 0, esize;
	const uint8_t *raw = NULL;
	uint64_t rawlen = 0, location = 0;
	bool ok;
	char what[600];

	memset(t, 0, sizeof *t);
	if (!p) /* protobuf-c's empty bytes (a Constant's empty value) */
		p = (const uint8_t *)"";
	w = (Wire){p, p + n};
	while ((r = wire_next(&w, &f)) > 0) {
		switch (f.num) {
		case 1: /* dims: varints, packed or not */
			if (f.type == WIRE_VARINT) {
				if (ndim == MAX_DIMS)
					goto too_many;
				dims[ndim++] = (int64_t)f.u;
			} else if (f.type == WIRE_LEN) {
				const uint8_t *q = f.data, *end = f.data + f.u;
				uint64_t v;

				while (q < end) {
					if (!wire_varint(&q, end, &v))
						goto corrupt;
					if (ndim == MAX_DIMS)
						goto too_many;
					dims[ndim++] = (int64_t)v;
				}
			} else {
				goto corrupt;
			}
			break;
		case 2:
			if (f.type != WIRE_VARINT)
				goto corrupt;
			t->onnx_type = (int)(int32_t)f.u;
			break;
		case 3:
			terr(c, origin, "a tensor in segments is not supported");
			return false;
		case 8:
			if (f.type != WIRE_LEN)
				goto corrupt;
			t->name = intern(&c->strings, (const char *)f.data, (size_t)f.u);
			break;
		case 9:
			if (f.type != WIRE_LEN)
				goto corrupt;
			raw = f.data;
			rawlen = f.u;
			break;
		case 14:
			if (f.type != WIRE_VARINT)
				goto corrupt;
			location = f.u;
			break;
		}
	}
	if (r < 0)
		goto corrupt;
	tensor_desc(t, what, sizeof what);
	t->dtype = onnx_dtype(t->onnx_type);
	if (t->dtype == DT_UNKNOWN) {
		terr(c, origin, "%s: element type %s (%d) is not supported", what,
			  onnx_type_name(t->onnx_type), t->onnx_type);
		return false;
	}
	t->numel = 1;
	for (int i = 0; i < ndim; i++)
		if (dims[i] < 0 || !ck_mul(t->numel, dims[i], &t->numel) ||
		    t->numel > INT64_MAX / 8) {
			terr(c, origin,
				  "%s: dimension %d is %lld, or the element count overflows", what,
				  i, (long long)dims[i]);
			return false;
		}
	t->ndim = ndim;
	t->dims = intern_words(&c->shapes, dims, (size_t)ndim * sizeof *dims);
	esize = dtype_size[t->dtype];
	t->nbytes = (uint64_t)t->numel * (uint64_t)esize;
	if (location == 1)
		return external_data(c, p, n, t);
	if (raw) {
		if (rawlen != t->nbytes) {
			terr(c, origin,
				  "%s: %llu bytes of raw_data, but %s with %lld elements needs "
				  "%llu",
				  what, (unsigned long long)rawlen, onnx_type_name(t->onnx_type),
				  (long long)t->numel, (unsigned long long)t->nbytes);
			return false;
		}
		t->data = raw;
		return true;
	}
	switch (t->onnx_type) {
	case ONNX_FLOAT: ok = gather_fixed(c, p, n, 4, t, 4); break;
	case ONNX_DOUBLE: ok = gather_fixed(c, p, n, 10, t, 8); break;
	case ONNX_INT64: ok = gather_varints(c, p, n, 7, t, 8); break;
	default: ok = gather_varints(c, p, n, 5, t, esize); break; /* int32_data */
	}
	if (!ok) {
		terr(c, origin,
			  "%s: its data does not hold the %lld elements of %s its dims give", what,
			  (long long)t->numel, onnx_type_name(t->onnx_type));
		return false;
	}
	return true;
too_many:
	terr(c, origin, "a tensor has more than %d dimensions", MAX_DIMS);
	return false;
corrupt:
	if (origin == UINT32_MAX) /* an initializer: in the file's mapping */
		terr(c, origin, "a TensorProto is corrupt (at byte %td of the file)",
		     (f.at ? f.at : p) - c->onnx->map);
	else
		terr(c, origin, "its tensor is corrupt (at byte %td of the attribute)",
		     (f.at ? f.at : p) - p);
	return false;
}

/* OperatorSetIdProto: the default domain's version */
static bool
read_opset(Ctx *c, OnnxModel *m, const WireField *g)
{
	Onnx__OperatorSetIdProto *o = onnx__operator_set_id_proto__unpack(NULL, g->u, g->data);

	if (!o) {
		diag_file(c, DIAG_ERROR, m->path, "an opset_import entry is corrupt (at byte %td)",
			  g->at - m->map);
		return false;
	}
	if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0)
		m->opset = o->version;
	onnx__operator_set_id_proto__free_unpacked(o, NULL);
	return true;
}

static bool
read_graph(Ctx *c, OnnxModel *m, const uint8_t *p, size_t n)
{
	Wire w = {p, p + n};
	WireField f;
	int r;

	while ((r = wire_next(&w, &f)) > 0) {
		void *msg;

		if ((f.num == 1 || f.num == 5 || f.num >= 11) && f.type != WIRE_LEN &&
		    f.num <= 15)
			goto corrupt;
		switch (f.num) {
		case 1:
			if (!(msg = onnx__node_proto__unpack(NULL, f.u, f.data))) {
				diag_file(c, DIAG_ERROR, m->path,
					  "node #%zu is not a valid NodeProto (at byte %td)",
					  m->nodes.n, f.at - m->map);
				return false;
			}
			vec_push(&m->nodes, msg);
			break;
		case 5:
			vec_grow(&m->initializers);
			if (!onnx_tensor(c, f.data, f.u, &m->initializers.v[m->initializers.n],
					 UINT32_MAX))
				return false;
			m->initializers.n++;
			break;
		case 11:
		case 12:
		case 13:
			if (!(msg = onnx__value_info_proto__unpack(NULL, f.u, f.data))) {
				static const char *const what[] = {"input", "output",
								   "value_info"};

				diag_file(c, DIAG_ERROR, m->path,
					  "a graph %s is not a valid ValueInfoProto (at byte %td)",
					  what[f.num - 11], f.at - m->map);
				return false;
			}
			if (f.num == 11)
				vec_push(&m->inputs, msg);
			else if (f.num == 12)
				vec_push(&m->outputs, msg);
			else
				vec_push(&m->value_info, msg);
			break;
		case 15:
			diag_file(c, DIAG_ERROR, m->path, "sparse initializers are not supported");
			return false;
		}
	}
	if (r == 0)
		return true;
corrupt:
	diag_file(c, DIAG_ERROR, m->path, "the graph is corrupt at byte %td", w.p - m->map);
	return false;
}

bool
onnx_read(Ctx *c, const char *path, bool *io_failed)
{
	OnnxModel *m = xcalloc(1, sizeof *m);
	struct stat st;
	Wire w;
	WireField f, graph = {0}, producer = {0}, version = {0};
	int r, fd;
	bool have_opset = false;

	c->onnx = m;
	m->path = path;
	*io_failed = true;
	if ((fd = input_open_regular(c, path, &st)) < 0)
		return false;
	m->size = (size_t)st.st_size;
	if (m->size) {
		void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);

		if (p == MAP_FAILED) {
			io_error(c, "cannot map '%s': %s", path, strerror(errno));
			close(fd);
			return false;
		}
		m->map = p;
		/* the tensors are read from the mapping until the caffemodel is written */
		guard_mapping(p, m->size, path, fd);
	}
	close(fd);
	*io_failed = false;
	if (!m->size) {
		diag_file(c, DIAG_ERROR, path, "empty file: not an ONNX model");
		return false;
	}
	w = (Wire){m->map, m->map + m->size};
	while ((r = wire_next(&w, &f)) > 0) {
		switch (f.num) {
		case 1:
			if (f.type != WIRE_VARINT)
				goto corrupt;
			m->ir_version = (int64_t)f.u;
			break;
		case 2:
		case 3: /* producer_name, producer_version: "pytorch 1.13.0" */
			if (f.type != WIRE_LEN)
				goto corrupt;
			*(f.num == 2 ? &producer : &version) = f;
			break;
		case 7:
			if (f.type != WIRE_LEN)
				goto corrupt;
			graph = f;
			break;
		case 8:
			if (f.type != WIRE_LEN)
				goto corrupt;
			if (!read_opset(c, m, &f))
				return false;
			have_opset = true;
			break;
		}
	}
	if (r < 0)
		goto corrupt;
	if (producer.data) {
		char *p = arena_alloc(&c->arena, producer.u + version.u + 2);

		memcpy(p, producer.data, producer.u);
		p[producer.u] = ' ';
		if (version.data)
			memcpy(p + producer.u + 1, version.data, version.u);
		p[producer.u + (version.data ? 1 + version.u : 0)] = 0;
		m->producer = p;
	}
	if (!graph.data) {
		diag_file(c, DIAG_ERROR, path, "not an ONNX model: it has no graph");
		return false;
	}
	if (!have_opset || m->opset == 0) {
		diag_file(c, DIAG_ERROR, path, "the model imports no opset of the default domain");
		return false;
	}
	if (m->opset < 7 || m->opset > 18) {
		diag_file(c, DIAG_ERROR, path,
			  "opset %lld: ptcc reads ONNX opsets 7 to 18", (long long)m->opset);
		return false;
	}
	return read_graph(c, m, graph.data, (size_t)graph.u);
corrupt:
	diag_file(c, DIAG_ERROR, path,
		  "not an ONNX model, or a truncated one: the protobuf is corrupt at byte %td",
		  w.p - m->map);
	return false;
}

void
onnx_free(OnnxModel *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nodes.n; i++)
		onnx__node_proto__free_unpacked(m->nodes.v[i], NULL);
	for (i = 0; i < m->inputs.n; i++)
		onnx__value_info_proto__free_unpacked(m->inputs.v[i], NULL);
	for (i = 0; i < m->outputs.n; i++)
		onnx__value_info_proto__free_unpacked(m->outputs.v[i], NULL);
	for (i = 0; i < m->value_info.n; i++)
		onnx__value_info_proto__free_unpacked(m->value_info.v[i], NULL);
	for (i = 0; i < m->externals.n; i++) {
		unguard_mapping(m->externals.v[i].p);
		munmap(m->externals.v[i].p, m->externals.v[i].size);
	}
	if (m->map) {
		unguard_mapping(m->map);
		munmap((void *)m->map, m->size);
	}
	free(m->nodes.v);
	free(m->inputs.v);
	free(m->outputs.v);
	free(m->value_info.v);
	free(m->initializers.v);
	free(m->externals.v);
	free(m);
}
