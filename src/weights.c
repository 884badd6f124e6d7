/* weights.c: the safetensors file (docs/trace-format.md §5).
 *
 * 8 bytes of little-endian header length N, N bytes of JSON, then the data.  The file is mapped,
 * the header parsed with jansson, and everything validated before any tensor is used: the header
 * length, every entry's dtype, shape and offsets, byte lengths against dtype and shape (with
 * overflow checks), no overlaps, no gaps.  Then every `param` and `const` of the trace is bound
 * to its entry, checking dtype and shape.  F32 data is used in place; other dtypes are converted
 * on request (tensor_f32).
 */
#include "ptcc.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_HEADER = 100 * 1000 * 1000 };

struct Weights {
	char *path;
	const unsigned char *map;
	size_t size;
	uint64_t data_off; /* 8 + N */
	Tensor *t;
	size_t n;
	Map byname;        /* interned name -> Tensor* */
	bool adopted;      /* the tensors are a front end's (weights_adopt), not a file's */
	VEC(float *) converted;
};

char *
weights_file(Ctx *c)
{
	const char *w = c->g.weights, *slash = strrchr(c->path, '/');
	size_t dn;
	char *p;

	if (w[0] == '/' || !slash) {
		p = xmalloc(strlen(w) + 1);
		strcpy(p, w);
		return p;
	}
	dn = (size_t)(slash - c->path) + 1;
	p = xmalloc(dn + strlen(w) + 1);
	memcpy(p, c->path, dn);
	strcpy(p + dn, w);
	return p;
}

static int
st_dtype(const char *s)
{
	int i;

	for (i = 0; i < DT_NTYPES; i++)
		if (strcmp(s, dtype_stname[i]) == 0)
			return i;
	return -1;
}

static bool
json_uint(json_t *j, uint64_t *out)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*out = (uint64_t)json_integer_value(j);
	return true;
}

/* Validate one header entry into t; false after a diagnostic. */
static bool
read_entry(Ctx *c, Weights *w, const char *key, json_t *e, Tensor *t, uint64_t datasize)
{
	json_t *dt = json_object_get(e, "dtype"), *shp = json_object_get(e, "shape"),
	       *off = json_object_get(e, "data_offsets");
	int64_t dims[MAX_DIMS], numel = 1, nbytes;
	uint64_t b, end;
	size_t i;
	int d;
	const char *k;
	json_t *v;

	if (!json_is_object(e)) {
		diag_file(c, DIAG_ERROR, w->path, "tensor '%s': the entry is not a JSON object",
			  key);
		return false;
	}
	json_object_foreach(e, k, v) {
		if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets")) {
			diag_file(c, DIAG_ERROR, w->path, "tensor '%s': unknown field '%s'", key,
				  k);
			return false;
		}
	}
	if (!json_is_string(dt) || (d = st_dtype(json_string_value(dt))) < 0) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': dtype must be one of F16 BF16 F32 F64 I8 I16 I32 I64 U8 "
			  "BOOL%s%s",
			  key, json_is_string(dt) ? ", not " : "",
			  json_is_string(dt) ? json_string_value(dt) : "");
		return false;
	}
	if (!json_is_array(shp) || json_array_size(shp) > MAX_DIMS) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': shape must be a list of at most %d integers", key,
			  MAX_DIMS);
		return false;
	}
	for (i = 0; i < json_array_size(shp); i++) {
		uint64_t x;

		if (!json_uint(json_array_get(shp, i), &x)) {
			diag_file(c, DIAG_ERROR, w->path,
				  "tensor '%s': shape must hold non-negative integers", key);
			return false;
		}
		dims[i] = (int64_t)x;
		if (!ck_mul(numel, dims[i], &numel)) {
			diag_file(c, DIAG_ERROR, w->path,
				  "tensor '%s': the element count overflows", key);
			return false;
		}
	}
	if (!json_is_array(off) || json_array_size(off) != 2 ||
	    !json_uint(json_array_get(off, 0), &b) || !json_uint(json_array_get(off, 1), &end) ||
	    b > end) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': data_offsets must be [BEGIN, END] with 0 <= BEGIN <= END",
			  key);
		return false;
	}
	if (end > datasize) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': data_offsets [%llu, %llu] go past the end of the data "
			  "(%llu bytes)",
			  key, (unsigned long long)b, (unsigned long long)end,
			  (unsigned long long)datasize);
		return false;
	}
	if (!ck_mul(numel, dtype_size[d], &nbytes)) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': %lld elements of %s need more than 2^63 bytes", key,
			  (long long)numel, dtype_stname[d]);
		return false;
	}
	if ((uint64_t)nbytes != end - b) {
		diag_file(c, DIAG_ERROR, w->path,
			  "tensor '%s': %llu bytes of data, but %s with %lld elements needs %lld",
			  key, (unsigned long long)(end - b), dtype_stname[d], (long long)numel,
			  (long long)nbytes);
		return false;
	}
	t->name = intern(&c->strings, key, strlen(key));
	t->dtype = (uint8_t)d;
	t->ndim = (uint8_t)json_array_size(shp);
	t->dims = intern_words(&c->shapes, dims, t->ndim * sizeof *dims);
	t->numel = numel;
	t->offset = b;
	t->nbytes = end - b;
	t->data = w->map + w->data_off + b;
	return true;
}

static int
by_offset(const void *a, const void *b)
{
	const Tensor *x = *(Tensor *const *)a, *y = *(Tensor *const *)b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static bool
read_file(Ctx *c, Weights *w, bool *io_error)
{
	struct stat st;
	uint64_t hlen = 0, datasize;
	json_t *root, *v;
	json_error_t jerr;
	const char *key;
	Tensor **order;
	size_t i;
	bool ok = true;
	const char *kind;
	int fd = input_open(w->path, &st); /* a FIFO would block an open() without O_NONBLOCK */

	if (fd < 0) {
		diag_file(c, DIAG_ERROR, w->path, "cannot open the weights file: %s",
			  strerror(errno));
		*io_error = true;
		return false;
	}
	if ((kind = file_kind(st.st_mode))) {
		if (S_ISDIR(st.st_mode))
			diag_file(c, DIAG_ERROR, w->path, "the weights file is a directory");
		else
			diag_file(c, DIAG_ERROR, w->path,
				  "the weights file is not a regular file (%s)", kind);
		close(fd);
		*io_error = true;
		return false;
	}
	w->size = (size_t)st.st_size;
	if (w->size > 0) {
		void *m = mmap(NULL, w->size, PROT_READ, MAP_PRIVATE, fd, 0);

		if (m == MAP_FAILED) {
			diag_file(c, DIAG_ERROR, w->path, "cannot map the weights file: %s",
				  strerror(errno));
			close(fd);
			*io_error = true;
			return false;
		}
		w->map = m;
		/* a file that shrinks from now on: an error, not a SIGBUS */
		guard_mapping(m, w->size, w->path, fd);
	}
	close(fd);
	if (w->size < 8) {
		diag_file(c, DIAG_ERROR, w->path,
			  "the file is too short for a safetensors header (%zu bytes)", w->size);
		return false;
	}
	for (i = 0; i < 8; i++)
		hlen |= (uint64_t)w->map[i] << (8 * i);
	if (hlen > w->size - 8) {
		diag_file(c, DIAG_ERROR, w->path,
			  "header length %llu is larger than the file (%zu bytes)",
			  (unsigned long long)hlen, w->size);
		return false;
	}
	if (hlen > MAX_HEADER) {
		diag_file(c, DIAG_ERROR, w->path, "header length %llu is larger than %d bytes",
			  (unsigned long long)hlen, MAX_HEADER);
		return false;
	}
	w->data_off = 8 + hlen;
	datasize = w->size - w->data_off;
	root = json_loadb((const char *)w->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		diag_file(c, DIAG_ERROR, w->path, "the header is not valid JSON: %s at byte %d",
			  jerr.text, jerr.position);
		return false;
	}
	if (!json_is_object(root)) {
		diag_file(c, DIAG_ERROR, w->path, "the header is not a JSON object");
		json_decref(root);
		return false;
	}
	w->t = xcalloc(json_object_size(root), sizeof *w->t);
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0) {
			const char *mk;
			json_t *mv;

			if (!json_is_object(v)) {
				diag_file(c, DIAG_ERROR, w->path,
					  "__metadata__ is not a JSON object");
				ok = false;
				break;
			}
			json_object_foreach(v, mk, mv) {
				if (!json_is_string(mv)) {
					diag_file(c, DIAG_ERROR, w->path,
						  "__metadata__ value of '%s' is not a string", mk);
					ok = false;
				}
			}
			if (!ok)
				break;
			continue;
		}
		if (!read_entry(c, w, key, v, &w->t[w->n], datasize)) {
			ok = false;
			break;
		}
		map_put(&w->byname, (uintptr_t)w->t[w->n].name, &w->t[w->n]);
		w->n++;
	}
	json_decref(root);
	if (!ok)
		return false;
	/* no overlaps, no gaps: sorted by offset, each starts where the previous ended */
	order = xmalloc((w->n ? w->n : 1) * sizeof *order);
	for (i = 0; i < w->n; i++)
		order[i] = &w->t[i];
	qsort(order, w->n, sizeof *order, by_offset);
	{
		uint64_t at = 0;

		for (i = 0; i < w->n && ok; i++) {
			if (order[i]->offset < at) {
				diag_file(c, DIAG_ERROR, w->path, "tensors '%s' and '%s' overlap",
					  order[i - 1]->name, order[i]->name);
				ok = false;
			} else if (order[i]->offset > at) {
				diag_file(c, DIAG_ERROR, w->path,
					  "bytes %llu to %llu of the data belong to no tensor",
					  (unsigned long long)at,
					  (unsigned long long)order[i]->offset);
				ok = false;
			}
			at = order[i]->offset + order[i]->nbytes;
		}
		if (ok && at != datasize) {
			diag_file(c, DIAG_ERROR, w->path,
				  "bytes %llu to %llu of the data belong to no tensor",
				  (unsigned long long)at, (unsigned long long)datasize);
			ok = false;
		}
	}
	free(order);
	return ok;
}


/* One element of any dtype, as a double: tensor_f32 converts with it, the value check reads with
 * it (cast to float, an F64 too large for a float counts as the infinity it becomes). */
double
dtype_value(int dtype, const void *p)
{
	const unsigned char *e = p;
	float f;
	double d;
	int64_t q;
	int32_t w;
	int16_t h;
	uint32_t u;

	switch (dtype) {
	case DT_F32: memcpy(&f, e, 4); return f;
	case DT_F64: memcpy(&d, e, 8); return d;
	case DT_F16: return half_to_float((uint16_t)(e[0] | e[1] << 8));
	case DT_BF16: u = (uint32_t)(e[0] | e[1] << 8) << 16; memcpy(&f, &u, 4); return f;
	case DT_I64: memcpy(&q, e, 8); return (double)q;
	case DT_I32: memcpy(&w, e, 4); return w;
	case DT_I16: memcpy(&h, e, 2); return h;
	case DT_I8: return (int8_t)e[0];
	case DT_U8: case DT_BOOL: return e[0];
	default: return NAN;
	}
}

void
weights_adopt(Ctx *c, const Tensor *t)
{
	Weights *w = c->weights;

	if (!w) {
		w = c->weights = xcalloc(1, sizeof *w);
		w->path = xmalloc(strlen(c->path) + 1);
		strcpy(w->path, c->path);
		w->adopted = true;
	}
	if (t)
		map_put(&w->byname, (uintptr_t)t->name, (void *)t);
}

bool
weights_load(Ctx *c, bool *io_error)
{
	Weights *w = c->weights;
	size_t i;
	int errors = c->nerrors;

	*io_error = false;
	if (!w || !w->adopted) {
		w = c->weights = xcalloc(1, sizeof *w);
		w->path = weights_file(c);
		if (!read_file(c, w, io_error))
			return false;
	}
	for (i = 0; i < c->g.params.n; i++) {
		Value *v = c->g.params.v[i];
		const Tensor *t = map_get(&w->byname, (uintptr_t)v->name);
		Type tt;
		char a[TYPE_STR_MAX], b[TYPE_STR_MAX];

		if (!t) {
			error_at(c, value_loc(c, v), "$%s is not in the weights file %s", v->name,
				 w->path);
			continue;
		}
		tt = (Type){t->dtype, t->ndim, 0, UINT32_MAX, t->dims};
		if (!type_equal(&tt, &v->type)) {
			error_at(c, type_loc(c, &v->type),
				 "$%s is declared %s, but the weights file has %s", v->name,
				 type_str(&v->type, a, sizeof a), type_str(&tt, b, sizeof b));
			continue;
		}
		v->tensor = t;
	}
	value_check_prepare(c, w->path);
	return c->nerrors == errors;
}

float
half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		f = (float)man / 16777216.0f;
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000u | (man << 13);
	else
		bits = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &bits, 4);
	return f;
}

const float *
tensor_f32(Weights *w, const Tensor *t)
{
	const unsigned char *p = t->data;
	float *out;
	int64_t i;

	if (t->dtype == DT_F32 && ((uintptr_t)p % _Alignof(float)) == 0)
		return (const float *)p;
	out = xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
	vec_push(&w->converted, out);
	for (i = 0; i < t->numel; i++)
		out[i] = (float)dtype_value(t->dtype, p + i * dtype_size[t->dtype]);
	return out;
}

void
weights_free(Weights *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->converted.n; i++)
		free(w->converted.v[i]);
	free(w->converted.v);
	if (w->map) {
		unguard_mapping(w->map);
		munmap((void *)w->map, w->size);
	}
	map_free(&w->byname);
	free(w->t);
	free(w->path);
	free(w);
}
