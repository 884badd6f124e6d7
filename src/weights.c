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
#include <pthread.h>
#include <stdatomic.h>
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
	struct ValueCheck *check; /* the value check, running from weights_load to weights_report */
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

/* "[0,1,0,0]": the index of flat element i in t's shape. */
static void
index_str(const Tensor *t, int64_t i, char *buf, size_t size)
{
	int64_t idx[MAX_DIMS];
	size_t len = 0;
	int k;

	for (k = t->ndim - 1; k >= 0; k--) {
		idx[k] = t->dims[k] ? i % t->dims[k] : 0;
		i = t->dims[k] ? i / t->dims[k] : 0;
	}
	len += (size_t)snprintf(buf, size, "[");
	for (k = 0; k < t->ndim && len < size; k++)
		len += (size_t)snprintf(buf + len, size - len, "%s%lld", k ? "," : "",
					(long long)idx[k]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

/* ---- the value check ------------------------------------------------------------------------ */

/* Values that are legal in the file but poison the net: NaN and infinities spread through every
 * layer that reads them (and the -O2 fold), and a negative BatchNorm variance gives the square
 * root of a negative number.  A warning per tensor, naming it and its first such value; the
 * compile goes on, as PyTorch would run the model.
 *
 * Every weight is read once for this, and that read costs more than anything else ptcc does
 * with a big model: so it runs on a thread of its own, from weights_load until weights_report,
 * while the net is lowered and written, and it reads the file with pread() into one reused
 * buffer rather than through the mapping (on a VM the first touch of each mapped page costs
 * more than the copy; codegen then has the kernel copy the same bytes into the caffemodel
 * without ever touching them).  Measured on resnet50: the check adds 3 ms to the compile's wall
 * time this way, against 60 ms when it scanned the mapping first. */
typedef struct ValueScan {
	const Value *v;
	const Tensor *t;
	bool is_var; /* a running variance: negative values count too */
	int64_t nonfinite, negative, first_nf, first_neg;
	float nf_value, neg_value;
	int read_error; /* an errno from pread, or -1: the file ended early (it shrank) */
} ValueScan;

/* The tensors are handed out one at a time (`next`) to the check's thread and, once it has
 * written the net, to the main thread, which helps finish rather than wait: on 2 cores the
 * check otherwise ends after the caffemodel in about half the runs of resnet50. */
struct ValueCheck {
	ValueScan *scans;
	size_t n;
	atomic_size_t next;
	pthread_t thread;
	bool threaded;
};

enum { SCAN_CHUNK = 256 << 10 }; /* stays in the cache; a multiple of every element size */

/* F32 data with no non-finite value (and, for a variance, no value below zero): the common case,
 * found before the counting loop by a pass over the bits alone.  Each test is arithmetic whose
 * bit 31 is the answer, in fixed blocks, so that GCC vectorises it at -O2 with SSE2 (4 to 5 times
 * the speed of comparisons, measured):
 *   exponent all ones (inf, NaN):  (u & 0x7f800000) + 0x00800000 carries into bit 31;
 *   below zero (sign set, not -0): u's bit 31, and (u & 0x7fffffff) + 0x7fffffff carries. */
enum { CLEAN_BLOCK = 64 };

static inline uint32_t
f32_bad_bits(uint32_t u, uint32_t var_mask)
{
	uint32_t nonfinite = (u & 0x7f800000u) + 0x00800000u;
	uint32_t negative = u & ((u & 0x7fffffffu) + 0x7fffffffu);

	return nonfinite | (var_mask & negative);
}

static bool
f32_clean(const unsigned char *p, int64_t n, bool is_var)
{
	uint32_t bad = 0, var_mask = is_var ? 0xffffffffu : 0;
	int64_t i = 0;

	for (; i + CLEAN_BLOCK <= n; i += CLEAN_BLOCK) {
		const unsigned char *q = p + 4 * i;

		for (int j = 0; j < CLEAN_BLOCK; j++) {
			uint32_t u;

			memcpy(&u, q + 4 * j, 4);
			bad |= f32_bad_bits(u, var_mask);
		}
	}
	for (; i < n; i++) {
		uint32_t u;

		memcpy(&u, p + 4 * i, 4);
		bad |= f32_bad_bits(u, var_mask);
	}
	return !(bad & 0x80000000u);
}

/* Elements [base, base + n) of s's tensor, whose bytes are at p. */
static void
scan_elements(ValueScan *s, const unsigned char *p, int64_t base, int64_t n)
{
	int dt = s->t->dtype, size = dtype_size[dt];

	if (dt == DT_F32 && f32_clean(p, n, s->is_var))
		return;
	for (int64_t i = 0; i < n; i++) {
		float f = (float)dtype_value(dt, p + i * size);

		if (!isfinite(f)) {
			if (!s->nonfinite++) {
				s->first_nf = base + i;
				s->nf_value = f;
			}
		} else if (s->is_var && f < 0 && !s->negative++) {
			s->first_neg = base + i;
			s->neg_value = f;
		}
	}
}

/* One tensor: from its file when it lies in a mapping, else (a front end's constant, a
 * conversion) from memory.  False when the file could not be read (s->read_error says why). */
static bool
scan_tensor(ValueScan *s, unsigned char *buf)
{
	const Tensor *t = s->t;
	int size = dtype_size[t->dtype];
	uint64_t nbytes = (uint64_t)t->numel * (uint64_t)size, at, done = 0;
	int fd;

	if (!buf || !mapping_source(t->data, nbytes, &fd, &at)) {
		scan_elements(s, t->data, 0, t->numel);
		return true;
	}
	while (done < nbytes) {
		size_t want = nbytes - done < SCAN_CHUNK ? (size_t)(nbytes - done) : SCAN_CHUNK;
		ssize_t r = pread(fd, buf, want, (off_t)(at + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)want) { /* short: the file ends before its mapping */
			s->read_error = r < 0 ? errno : -1;
			return false;
		}
		scan_elements(s, buf, (int64_t)(done / (uint64_t)size),
			      (int64_t)(want / (size_t)size));
		done += want;
	}
	return true;
}

/* Scan tensors until none is left; a file that cannot be read stops every scanner. */
static void
scan_some(struct ValueCheck *k)
{
	unsigned char *buf = malloc(SCAN_CHUNK); /* NULL: read through the mappings */
	size_t i;

	while ((i = atomic_fetch_add(&k->next, 1)) < k->n)
		if (!scan_tensor(&k->scans[i], buf))
			atomic_store(&k->next, k->n);
	free(buf);
}

static void *
scan_all(void *arg)
{
	scan_some(arg);
	return NULL;
}

/* One tensor's warnings: its first NaN or infinity, its first negative variance. */
static void
warn_values(Ctx *c, const ValueScan *s)
{
	long long nf = s->nonfinite, neg = s->negative;
	char at[MAX_DIMS * 21 + 3];
	float f = s->nf_value;

	if (nf) {
		index_str(s->t, s->first_nf, at, sizeof at);
		warning_at(c, value_loc(c, s->v),
			   "$%s has %lld non-finite value%s (the first: %s at %s)", s->v->name, nf,
			   nf == 1 ? "" : "s", isnan(f) ? "nan" : f > 0 ? "inf" : "-inf", at);
	}
	if (neg) {
		index_str(s->t, s->first_neg, at, sizeof at);
		warning_at(c, value_loc(c, s->v),
			   "$%s has %lld negative value%s (the first: %g at %s); batch_norm of %s "
			   "is NaN",
			   s->v->name, neg, neg == 1 ? "" : "s", (double)s->neg_value, at,
			   neg == 1 ? "it" : "them");
	}
}

/* Wait for the check, helping it finish (or, without `help`, stopping it after the tensors it
 * has begun); its results, or NULL when none was started. */
static struct ValueCheck *
check_join(Weights *w, bool help)
{
	struct ValueCheck *k = w ? w->check : NULL;

	if (k && k->threaded) {
		if (help)
			scan_some(k);
		else
			atomic_store(&k->next, k->n);
		pthread_join(k->thread, NULL);
		k->threaded = false;
	}
	return k;
}

static void
check_free(Weights *w)
{
	struct ValueCheck *k = check_join(w, false);

	if (k) {
		free(k->scans);
		free(k);
		w->check = NULL;
	}
}

/* Start checking every bound param and const, the running variances of batch_norm and
 * instance_norm for negative values too. */
static void
check_start(Ctx *c, Weights *w)
{
	struct ValueCheck *k = xcalloc(1, sizeof *k);
	Map vars = {0};

	check_free(w); /* a second load: the first one's check, unreported */
	for (Node *n = c->g.first; n; n = n->next) {
		const Lit *l;

		if (op_base(n->op) != OP_batch_norm && op_base(n->op) != OP_instance_norm)
			continue;
		_Static_assert(ARG(batch_norm, running_var) == ARG(instance_norm, running_var),
			       "instance_norm's running_var is not at batch_norm's");
		l = op_arg(n, ARG(batch_norm, running_var));
		if (l->kind == L_VALUE)
			map_put(&vars, (uintptr_t)l->u.v, l->u.v);
	}
	k->scans = xcalloc(c->g.params.n ? c->g.params.n : 1, sizeof *k->scans);
	for (size_t i = 0; i < c->g.params.n; i++) {
		Value *v = c->g.params.v[i];

		if (v->tensor && dtype_is_float(v->tensor->dtype))
			k->scans[k->n++] = (ValueScan){.v = v, .t = v->tensor,
						       .is_var = map_get(&vars, (uintptr_t)v)};
	}
	map_free(&vars);
	atomic_init(&k->next, 0);
	w->check = k;
	/* without a thread (none to be had), the same work now */
	k->threaded = k->n && pthread_create(&k->thread, NULL, scan_all, k) == 0;
	if (!k->threaded)
		scan_all(k);
}

bool
weights_report(Ctx *c)
{
	struct ValueCheck *k = check_join(c->weights, true);
	bool ok;

	if (!k)
		return true;
	int err = 0;

	for (size_t i = 0; i < k->n; i++) {
		warn_values(c, &k->scans[i]);
		err = err ? err : k->scans[i].read_error;
	}
	/* a file that shrank: said once, by whoever found it first (this, or the caffemodel's
	 * writer) */
	ok = !err;
	if (err == -1 && !report_shrunk_input(c))
		diag_file(c, DIAG_ERROR, c->weights->path,
			  "the file shrank while ptcc was reading it");
	else if (err > 0)
		diag_file(c, DIAG_ERROR, c->weights->path, "cannot read the weights: %s",
			  strerror(err));
	check_free(c->weights);
	return ok;
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
	check_start(c, w);
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
	check_free(w); /* unreported (an error ended the run first), and never read again */
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
