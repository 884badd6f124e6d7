/* valuecheck.c: the weights' values that are legal in the file but poison the net.
 *
 * NaN and infinities spread through every layer that reads them (and the -O2 fold), and a
 * negative BatchNorm variance gives the square root of a negative number.  A warning per tensor,
 * naming it and its first such value; the compile goes on, as PyTorch would run the model.
 *
 * Every weight is read once for this, and that read costs more than anything else ptcc does with
 * a big model.  So it is not a read of its own: the caffemodel's float32 payloads are copied by
 * the weights pass (copypass.c) from a buffer that each piece of the file is read into, and the
 * check looks at that buffer between the read and the write, on the same threads.  A payload
 * that is a tensor to check claims it (value_check_claim); once the net is written, the tensors
 * no output holds verbatim (converted, folded) are queued on the same pass, or, without a
 * caffemodel, read by a pass of their own when the warnings are due.
 */
#include "ptcc.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One tensor's findings; several threads check pieces of it, and merge what they found under
 * `found_lock` (rare: only a piece that has such a value). */
struct ValueScan {
	const Value *v;
	const Tensor *t;
	bool is_var; /* a running variance: negative values count too */
	bool taken;  /* a weights pass reads it */
	int64_t nonfinite, negative, first_nf, first_neg;
	float nf_value, neg_value;
};

struct ValueCheck {
	ValueScan *scans;
	size_t n;
	const char *path; /* the weights file (the Weights' own string), for its errors */
	Map by_data;      /* a tensor's first byte -> its scan, for value_check_claim */
	int read_error;   /* an errno, or -1: a file ended early (it shrank) */
};

static pthread_mutex_t found_lock = PTHREAD_MUTEX_INITIALIZER;

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

void
value_scan_piece(ValueScan *s, const unsigned char *p, int64_t base, int64_t n)
{
	int dt = s->t->dtype, size = dtype_size[dt];
	ValueScan got = {0};

	if (dt == DT_F32 && f32_clean(p, n, s->is_var))
		return;
	for (int64_t i = 0; i < n; i++) {
		float f = (float)dtype_value(dt, p + i * size);

		if (!isfinite(f)) {
			if (!got.nonfinite++) {
				got.first_nf = base + i;
				got.nf_value = f;
			}
		} else if (s->is_var && f < 0 && !got.negative++) {
			got.first_neg = base + i;
			got.neg_value = f;
		}
	}
	if (!got.nonfinite && !got.negative)
		return;
	/* the first of each kind is the one at the lowest index, whichever piece was read first */
	pthread_mutex_lock(&found_lock);
	if (got.nonfinite && (!s->nonfinite || got.first_nf < s->first_nf)) {
		s->first_nf = got.first_nf;
		s->nf_value = got.nf_value;
	}
	if (got.negative && (!s->negative || got.first_neg < s->first_neg)) {
		s->first_neg = got.first_neg;
		s->neg_value = got.neg_value;
	}
	s->nonfinite += got.nonfinite;
	s->negative += got.negative;
	pthread_mutex_unlock(&found_lock);
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

void
value_check_free(Ctx *c)
{
	if (c->values) {
		map_free(&c->values->by_data);
		free(c->values->scans);
		free(c->values);
		c->values = NULL;
	}
}

void
value_check_prepare(Ctx *c, const char *path)
{
	ValueCheck *k = xcalloc(1, sizeof *k);
	Map vars = {0};

	value_check_free(c); /* a second load: the first one's check, unreported */
	k->path = path;
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

		if (v->tensor && dtype_is_float(v->tensor->dtype) && v->tensor->nbytes)
			k->scans[k->n++] = (ValueScan){.v = v, .t = v->tensor,
						       .is_var = map_get(&vars, (uintptr_t)v)};
	}
	map_free(&vars);
	/* a tensor's bytes are its own (the file's tensors do not overlap): one scan per start */
	for (size_t i = 0; i < k->n; i++)
		if (!map_get(&k->by_data, (uintptr_t)k->scans[i].t->data))
			map_put(&k->by_data, (uintptr_t)k->scans[i].t->data, &k->scans[i]);
	c->values = k;
}

ValueScan *
value_check_claim(Ctx *c, const void *data, uint64_t len, int *elem)
{
	ValueScan *s = c->values ? map_get(&c->values->by_data, (uintptr_t)data) : NULL;

	if (!s || s->taken || s->t->nbytes != len)
		return NULL;
	s->taken = true;
	*elem = dtype_size[s->t->dtype];
	return s;
}

void
value_check_queue(Ctx *c, Pass *p)
{
	for (size_t i = 0; c->values && i < c->values->n; i++) {
		ValueScan *s = &c->values->scans[i];
		PassItem it;

		if (s->taken)
			continue;
		s->taken = true;
		it = pass_item(s->t->data, s->t->nbytes);
		it.scan = s;
		it.elem = dtype_size[s->t->dtype];
		pass_add(p, it);
	}
}

void
value_check_failed(Ctx *c, int err)
{
	if (c->values && !c->values->read_error)
		c->values->read_error = err;
}

bool
weights_report(Ctx *c)
{
	ValueCheck *k = c->values;
	int rerr = 0, werr;
	bool ok;

	if (!k)
		return true;
	/* what no output's pass took along: the check alone */
	Pass *p = pass_new(NULL);

	value_check_queue(c, p);
	pass_finish(p, false, &rerr, &werr);
	if (rerr)
		value_check_failed(c, rerr);
	for (size_t i = 0; i < k->n; i++)
		warn_values(c, &k->scans[i]);
	/* a file that shrank: said once, by whoever found it first (this, or an output's
	 * close) */
	ok = !k->read_error;
	if (k->read_error == -1 && !report_shrunk_input(c))
		diag_file(c, DIAG_ERROR, k->path,
			  "the file shrank while ptcc was reading it");
	else if (k->read_error > 0)
		diag_file(c, DIAG_ERROR, k->path, "cannot read the weights: %s",
			  strerror(k->read_error));
	value_check_free(c);
	return ok;
}
