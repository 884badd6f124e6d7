/* onnx_import.c: an ONNX graph into the IR, through the parser's own pipeline.
 *
 * Each node becomes the op lines the recorder would have written for it, built as the parser
 * builds a line (a Node and its RawArgs) and handed to frontend_op: bind, resolve and shape run
 * unchanged, so every lowering, fusion, target and diagnostic of a trace applies.  Values are
 * the trace's handles; initializers become `param` lines, computed constants `const` lines, both
 * bound to their data in place (weights_adopt).  Scopes come from the exporter's node names
 * (`/layer1/layer1.0/conv1/Conv` is in layer1, layer1.0 and layer1.0.conv1).
 *
 * What depends only on constants and static shapes is folded here (fold_*): `Shape -> Gather ->
 * Unsqueeze -> Concat -> Reshape`, an exporter's `view(x.size(0), -1)`, becomes reshape's list.
 * A runtime value's shape is the shape pass's, known as soon as its node is read.
 *
 * Each ONNX op is a row of onnx_ops[]: its name and the function that writes its ops.  An
 * attribute the function does not read is an error (never silently ignored); so is an op
 * without a row, each reported at its node, all in one run.
 */
#include "onnx.h"

#include <float.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A value of the graph, by its ONNX name: a runtime tensor (a trace handle) or a constant. */
typedef struct Val {
	const char *name;     /* interned */
	uint32_t handle;      /* a runtime tensor's handle, or NO_HANDLE */
	Value *v;             /* its IR value, typed by the shape pass */
	const OnnxTensor *k;  /* a constant's value */
	const char *param;    /* the $name a constant is declared as, once an op reads it */
	bool poisoned;        /* its node had an error: readers are skipped */
	bool is_init;         /* an initializer (a `param`; other constants are `const`) */
} Val;

typedef struct Imp {
	Ctx *c;
	OnnxModel *m;
	Map vals;             /* interned name -> Val* */
	Map writers;          /* interned name -> 1 + the index of the node that writes it */
	Map vinfo;            /* interned name -> its ValueInfoProto (value_info, graph outputs) */
	uint32_t next_handle;
	uint32_t nconst;
	/* the node being read */
	size_t k;
	Onnx__NodeProto *node;
	uint64_t attr_read;   /* bit i: attribute i was read */
	bool failed;          /* an error at this node */
	/* the op line being built */
	VEC(RawArg) args;
	Scope *scope;
	VEC(const char *) path; /* the open scopes' node-name components */
} Imp;

typedef struct OnnxOp {
	const char *name;
	bool (*fn)(Imp *im, const struct OnnxOp *row);
	const char *ir; /* the IR op, for the rows that share a function */
} OnnxOp;

/* ---- origins and diagnostics ------------------------------------------------------------- */

const char *
onnx_origin(const Ctx *c, uint32_t pos, char *buf, size_t size)
{
	const OnnxModel *m = c->onnx;
	size_t k = pos;

	if (k < m->nodes.n) {
		const Onnx__NodeProto *n = m->nodes.v[k];

		snprintf(buf, size, "node '%s' (#%zu, %s)", n->name ? n->name : "", k,
			 n->op_type ? n->op_type : "?");
		return buf;
	}
	k -= m->nodes.n;
	if (k < m->inputs.n) {
		const char *name = m->inputs.v[k]->name;

		snprintf(buf, size, "input '%s'", name ? name : "");
		return buf;
	}
	k -= m->inputs.n;
	if (k < m->initializers.n) {
		snprintf(buf, size, "initializer '%s'",
			 m->initializers.v[k].name ? m->initializers.v[k].name : "");
		return buf;
	}
	k -= m->initializers.n;
	if (k < m->outputs.n) {
		const char *name = m->outputs.v[k]->name;

		snprintf(buf, size, "output '%s'", name ? name : "");
		return buf;
	}
	snprintf(buf, size, "the graph");
	return buf;
}

void
onnx_origin_context(const Ctx *c, uint32_t pos, FILE *f)
{
	const Onnx__NodeProto *n;
	size_t i;

	if (pos >= c->onnx->nodes.n)
		return;
	n = c->onnx->nodes.v[pos];
	fputs("  inputs: ", f);
	for (i = 0; i < n->n_input; i++)
		fprintf(f, "%s'%s'", i ? ", " : "", n->input[i]);
	fputs(i ? "; outputs: " : "none; outputs: ", f);
	for (i = 0; i < n->n_output; i++)
		fprintf(f, "%s'%s'", i ? ", " : "", n->output[i]);
	fputc('\n', f);
}

static Loc
here(const Imp *im)
{
	return (Loc){(uint32_t)im->k, (uint32_t)im->k + 1};
}

/* An error at the node being read: the node fails (its outputs are poisoned); false. */
static bool fail(Imp *im, const char *fmt, ...) PRINTF_LIKE(2, 3);

static bool
fail(Imp *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(im->c, DIAG_ERROR, here(im), fmt, ap);
	va_end(ap);
	im->failed = true;
	return false;
}

/* ---- values ------------------------------------------------------------------------------ */

static const char *
str(Imp *im, const char *s)
{
	return intern(&im->c->strings, s, strlen(s));
}

static Val *
val_new(Imp *im, const char *name)
{
	Val *x = NEW(&im->c->arena, Val);

	x->name = str(im, name);
	x->handle = NO_HANDLE;
	map_put(&im->vals, (uintptr_t)x->name, x);
	return x;
}

/* Input i of the node, or NULL when it is absent (past the end, or "") */
static Val *
in(Imp *im, size_t i)
{
	const char *name;
	Val *x;

	if (i >= im->node->n_input || !*im->node->input[i])
		return NULL;
	name = str(im, im->node->input[i]);
	x = map_get(&im->vals, (uintptr_t)name);
	return x;
}

static Val *
in_req(Imp *im, size_t i)
{
	Val *x = in(im, i);

	if (!x)
		fail(im, "input %zu is missing", i);
	return x;
}

/* Input i as a constant; NULL (an error, unless optional and absent) otherwise */
static const OnnxTensor *
in_const(Imp *im, size_t i, bool optional)
{
	Val *x = in(im, i);

	if (!x) {
		if (!optional)
			fail(im, "input %zu is missing", i);
		return NULL;
	}
	if (!x->k) {
		fail(im,
		     "input %zu ('%s') must be a constant: an initializer, or computed from "
		     "constants and static shapes",
		     i, x->name);
		return NULL;
	}
	return x->k;
}

/* Output i's Val, made; NULL for an output the node leaves unnamed */
static Val *
out(Imp *im, size_t i)
{
	if (i >= im->node->n_output || !*im->node->output[i])
		return NULL;
	return val_new(im, im->node->output[i]);
}

/* Outputs past the first must not be read: what a node computes only in training (its mask, its
 * indices, its running statistics) has no Caffe value. */
static bool
only_first_output(Imp *im)
{
	for (size_t i = 1; i < im->node->n_output; i++)
		if (*im->node->output[i])
			return fail(im, "output %zu ('%s') is not supported; only the first is", i,
				    im->node->output[i]);
	return true;
}

/* ---- constants --------------------------------------------------------------------------- */

/* The most elements a constant computed here may have: folding is for shapes and small
 * constants, and a bigger one would be a Caffe constant blob of that size anyway. */
enum { FOLD_MAX = 1 << 24 };

/* A new constant of that shape (zeroed), or NULL after an error (too large, negative dims). */
static OnnxTensor *
konst_new(Imp *im, int dtype, int ndim, const int64_t *dims)
{
	OnnxTensor *t;
	int64_t n = 1;

	for (int i = 0; i < ndim; i++)
		if (dims[i] < 0 || !ck_mul(n, dims[i], &n) || n > FOLD_MAX) {
			fail(im, "a constant computed here would have more than %d elements, or a "
			     "negative dimension", FOLD_MAX);
			return NULL;
		}
	if (dtype == DT_F16 || dtype == DT_BF16) /* what is computed here is float32 */
		dtype = DT_F32;
	t = NEW(&im->c->arena, OnnxTensor);
	t->dtype = dtype;
	t->onnx_type = dtype == DT_I64 ? ONNX_INT64 : dtype == DT_F32 ? ONNX_FLOAT : 0;
	t->ndim = ndim;
	t->dims = intern_words(&im->c->shapes, dims, (size_t)ndim * sizeof *dims);
	t->numel = n;
	t->nbytes = (uint64_t)n * dtype_size[dtype];
	t->data = arena_zalloc(&im->c->arena, t->nbytes ? (size_t)t->nbytes : 1);
	return t;
}

static double
kf(const OnnxTensor *t, int64_t i)
{
	return dtype_value(t->dtype, (const unsigned char *)t->data + i * dtype_size[t->dtype]);
}

/* A double as an int64, as ONNX's Cast leaves it undefined: NaN as 0, the rest saturated. */
static int64_t
to_i64(double d)
{
	if (isnan(d))
		return 0;
	if (d >= 9223372036854775807.0)
		return INT64_MAX;
	if (d <= -9223372036854775808.0)
		return INT64_MIN;
	return (int64_t)d;
}

static int64_t
ki(const OnnxTensor *t, int64_t i)
{
	int64_t q;

	if (t->dtype == DT_I64) {
		memcpy(&q, (const unsigned char *)t->data + i * 8, 8);
		return q;
	}
	return to_i64(kf(t, i));
}

static void
kset(OnnxTensor *t, int64_t i, double v, int64_t iv)
{
	unsigned char *e = (unsigned char *)t->data + i * dtype_size[t->dtype];
	float f = (float)v;

	switch (t->dtype) {
	case DT_F32: memcpy(e, &f, 4); break;
	case DT_F64: memcpy(e, &v, 8); break;
	case DT_I64: memcpy(e, &iv, 8); break;
	case DT_I32: { int32_t w = (int32_t)iv; memcpy(e, &w, 4); break; }
	case DT_U8: case DT_BOOL: case DT_I8: e[0] = (unsigned char)iv; break;
	case DT_I16: { int16_t h = (int16_t)iv; memcpy(e, &h, 2); break; }
	default: break;
	}
}

/* Elements [j, j + n) of k into t from element i: copied, or converted where t's dtype is not k's
 * (a float16 constant's folds are float32, konst_new) */
static void
kcopy(OnnxTensor *t, int64_t i, const OnnxTensor *k, int64_t j, int64_t n)
{
	size_t e = dtype_size[k->dtype];

	if (t->dtype == k->dtype) {
		memcpy((unsigned char *)t->data + i * (int64_t)e,
		       (const unsigned char *)k->data + j * (int64_t)e, (size_t)n * e);
		return;
	}
	for (int64_t m = 0; m < n; m++)
		kset(t, i + m, kf(k, j + m), ki(k, j + m));
}

static bool
is_int(const OnnxTensor *t)
{
	return !dtype_is_float(t->dtype);
}

/* A constant's elements as int64s (at most max); false if it has more */
static bool
k_ints(Imp *im, const OnnxTensor *t, int64_t *out, int max, int *n, const char *what)
{
	if (t->numel > max || t->ndim > 1 || !is_int(t))
		return fail(im, "%s must be a list of at most %d integers", what, max);
	for (int64_t i = 0; i < t->numel; i++)
		out[i] = ki(t, i);
	*n = (int)t->numel;
	return true;
}

static Val *
set_const(Imp *im, size_t i, const OnnxTensor *t)
{
	Val *x = out(im, i);

	if (x)
		x->k = t;
	return x;
}

/* ---- attributes -------------------------------------------------------------------------- */

static const Onnx__AttributeProto *
attr(Imp *im, const char *name, int type)
{
	static const char *const tnames[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR",
					     "GRAPH", "FLOATS", "INTS", "STRINGS"};

	for (size_t i = 0; i < im->node->n_attribute; i++) {
		const Onnx__AttributeProto *a = im->node->attribute[i];

		if (!a->name || strcmp(a->name, name) != 0)
			continue;
		if (i < 64)
			im->attr_read |= (uint64_t)1 << i;
		if ((int)a->type != type) {
			fail(im, "attribute '%s' is %s, expected %s", name,
			     a->type < sizeof tnames / sizeof *tnames ? tnames[a->type] : "unknown",
			     tnames[type]);
			return NULL;
		}
		return a;
	}
	return NULL;
}

static int64_t
attr_int(Imp *im, const char *name, int64_t def)
{
	const Onnx__AttributeProto *a = attr(im, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);

	return a ? a->i : def;
}

static double
attr_float(Imp *im, const char *name, double def)
{
	const Onnx__AttributeProto *a =
		attr(im, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);

	return a ? a->f : def;
}

/* a string attribute, interned, or def */
static const char *
attr_str(Imp *im, const char *name, const char *def)
{
	const Onnx__AttributeProto *a =
		attr(im, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);

	return a ? intern(&im->c->strings, (const char *)a->s.data, a->s.len) : def;
}

/* an INTS attribute into v (at most max); its count, or -1 when absent */
static int
attr_ints(Imp *im, const char *name, int64_t *v, int max)
{
	const Onnx__AttributeProto *a = attr(im, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);

	if (!a)
		return -1;
	if (a->n_ints > (size_t)max) {
		fail(im, "attribute '%s' has %zu values; at most %d", name, a->n_ints, max);
		return -1;
	}
	for (size_t i = 0; i < a->n_ints; i++)
		v[i] = a->ints[i];
	return (int)a->n_ints;
}

/* ---- op lines ---------------------------------------------------------------------------- */

static Lit
lit(Imp *im, int kind)
{
	Lit l = {0};

	l.kind = (uint32_t)kind;
	l.pos = (uint32_t)im->k;
	return l;
}

static void
push(Imp *im, Lit l)
{
	RawArg a = {NULL, here(im), l};

	vec_push(&im->args, a);
}

static void a_none(Imp *im) { push(im, lit(im, L_NONE)); }

static void
a_int(Imp *im, int64_t i)
{
	Lit l = lit(im, L_INT);

	l.u.i = i;
	push(im, l);
}

static void
a_bool(Imp *im, bool b)
{
	Lit l = lit(im, L_BOOL);

	l.u.i = b;
	push(im, l);
}

static void
a_float(Imp *im, double f)
{
	Lit l = lit(im, L_FLOAT);

	l.u.f = f;
	push(im, l);
}

static void
a_str(Imp *im, const char *s)
{
	Lit l = lit(im, L_STR);

	l.u.s = str(im, s);
	push(im, l);
}

static Lit
ints_lit(Imp *im, const int64_t *v, int n)
{
	Lit items[MAX_DIMS];

	for (int i = 0; i < n; i++) {
		items[i] = lit(im, L_INT);
		items[i].u.i = v[i];
	}
	return ir_list(im->c, items, (size_t)n, (uint32_t)im->k);
}

static void a_ints(Imp *im, const int64_t *v, int n) { push(im, ints_lit(im, v, n)); }

/* A constant read as a tensor: declared once, as a `param` (an initializer) or a `const`. */
static const char *
declare(Imp *im, Val *x)
{
	Ctx *c = im->c;
	Value *v;
	Tensor *t;
	char name[64];

	if (x->param)
		return x->param;
	if (x->is_init && !map_get(&c->params_by_name, (uintptr_t)x->name)) {
		x->param = x->name;
	} else {
		do
			snprintf(name, sizeof name, "onnx.const%u", im->nconst++);
		while (map_get(&c->params_by_name, (uintptr_t)str(im, name)));
		x->param = str(im, name);
	}
	v = NEW(&c->arena, Value);
	v->kind = x->is_init ? VK_PARAM : VK_CONST;
	v->name = x->param;
	v->pos = (uint32_t)im->k;
	v->type = type_make(c, x->k->dtype, x->k->dims, x->k->ndim);
	v->type.pos = (uint32_t)im->k;
	v->handle = NO_HANDLE;
	v->alias = v;
	map_put(&c->params_by_name, (uintptr_t)v->name, v);
	vec_push(&c->g.params, v);
	t = NEW(&c->arena, Tensor);
	t->name = v->name;
	t->dtype = (uint8_t)x->k->dtype;
	t->ndim = (uint8_t)x->k->ndim;
	t->dims = v->type.dims;
	t->numel = x->k->numel;
	t->nbytes = x->k->nbytes;
	t->data = x->k->data;
	weights_adopt(c, t);
	return x->param;
}

static void
a_val(Imp *im, Val *x)
{
	Lit l;

	if (x->k) {
		l = lit(im, L_PARAM);
		l.u.s = declare(im, x);
	} else {
		l = lit(im, L_HANDLE);
		l.u.i = x->handle;
	}
	push(im, l);
}

/* An intermediate value of the node's own op lines as the next argument */
static void
a_value(Imp *im, const Value *v)
{
	Lit l = lit(im, L_HANDLE);

	l.u.i = v->handle;
	push(im, l);
}

static void
a_opt(Imp *im, Val *x)
{
	if (x)
		a_val(im, x);
	else
		a_none(im);
}

/* The op line built so far, with nres results; each result a fresh handle.  The first result's
 * value, or NULL after an error (reported by the pipeline). */
static Value *
emit_op(Imp *im, const char *opname, int nres)
{
	Ctx *c = im->c;
	int op = op_lookup(opname), errors = c->nerrors;
	Node *n;

	if (op < 0)
		ptcc_die("onnx_import: no op '%s'", opname);
	n = ir_node_new(c, op, nres, here(im));
	for (int i = 0; i < nres; i++) {
		n->res[i].handle = im->next_handle++;
		n->res[i].pos = (uint32_t)im->k;
	}
	if (im->next_handle > c->g.max_handle)
		c->g.max_handle = im->next_handle;
	n->scope = im->scope;
	n->src = im->node->name && *im->node->name ? str(im, im->node->name) : NULL;
	frontend_op(c, n, im->args.v, im->args.n);
	im->args.n = 0;
	if (c->nerrors != errors || (n->res[0].flags & V_POISON) || !type_known(&n->res[0].type)) {
		im->failed = true;
		return NULL;
	}
	return &n->res[0];
}

/* A value_info (or graph output) annotation checked as a trace's annotation is: the inferred
 * type must be the annotated one, but for dims the annotation leaves symbolic; after --input
 * changed a shape, a difference in dims alone is the exported size's and is counted
 * (frontend_finish's note). */
static void
check_value_info(Imp *im, const Val *x)
{
	const Onnx__ValueInfoProto *vi = map_get(&im->vinfo, (uintptr_t)x->name);
	const Onnx__TypeProto__Tensor *tt = vi && vi->type ? vi->type->tensor_type : NULL;
	const Type *t = &x->v->type;
	bool same = true;
	int dt;
	char a[TYPE_STR_MAX], b[TYPE_STR_MAX], *p = a;

	if (!tt || !tt->elem_type)
		return;
	dt = onnx_dtype(tt->elem_type);
	if (tt->shape) {
		same = (int)tt->shape->n_dim == t->ndim;
		for (size_t d = 0; same && d < tt->shape->n_dim; d++)
			same = !tt->shape->dim[d]->has_dim_value ||
			       tt->shape->dim[d]->dim_value == t->dims[d];
	}
	if (dt == t->dtype && same)
		return;
	if (dt == t->dtype && im->c->input_shapes.reshaped) {
		im->c->input_shapes.nstale++;
		return;
	}
	p += snprintf(p, sizeof a, "%s[", dt == DT_UNKNOWN ? "?" : dtype_name[dt]);
	for (size_t d = 0; tt->shape && d < tt->shape->n_dim && p < a + sizeof a - 24; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];

		p += snprintf(p, (size_t)(a + sizeof a - p), "%s", d ? "," : "");
		if (dim->has_dim_value)
			p += snprintf(p, (size_t)(a + sizeof a - p), "%lld",
				      (long long)dim->dim_value);
		else
			p += snprintf(p, (size_t)(a + sizeof a - p), "%s",
				      dim->dim_param && *dim->dim_param ? dim->dim_param : "?");
	}
	snprintf(p, (size_t)(a + sizeof a - p), "]");
	fail(im, "'%s' is annotated %s (value_info), but its inferred type is %s", x->name, a,
	     type_str(t, b, sizeof b));
}

static Val *
set_value(Imp *im, size_t i, Value *v)
{
	Val *x = out(im, i);

	if (x && v) {
		x->v = v;
		x->handle = v->handle;
		check_value_info(im, x);
	}
	return x;
}

/* The op line built so far as the node's output 0: whether it was written (an error is
 * reported, and the node failed, otherwise). */
static bool
emit_result(Imp *im, const char *opname)
{
	Value *v = emit_op(im, opname, 1);

	set_value(im, 0, v);
	return v != NULL;
}

/* A runtime input's type (NULL for a constant) */
static const Type *
type_of(const Val *x)
{
	return x && x->v ? &x->v->type : NULL;
}

/* A runtime input, or an error */
static Val *
in_rt(Imp *im, size_t i)
{
	Val *x = in_req(im, i);

	if (x && !x->v) {
		fail(im, "input %zu ('%s') is a constant here; ptcc reads it only as a computed "
		     "tensor", i, x->name);
		return NULL;
	}
	return x;
}

/* ---- folding: ops whose inputs are all constants ----------------------------------------- */

static bool
all_const(Imp *im)
{
	bool any = false;

	for (size_t i = 0; i < im->node->n_input; i++) {
		Val *x = in(im, i);

		if (x && !x->k)
			return false;
		any |= x != NULL;
	}
	return any;
}

static int64_t
norm_axis(int64_t a, int rank)
{
	return a < 0 ? a + rank : a;
}

/* numpy broadcasting of two constants; false if they do not broadcast */
static bool
bcast(const OnnxTensor *a, const OnnxTensor *b, int64_t *dims, int *ndim)
{
	int n = a->ndim > b->ndim ? a->ndim : b->ndim;

	for (int i = 0; i < n; i++) {
		int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
		int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;

		if (da != db && da != 1 && db != 1)
			return false;
		dims[i] = da == 1 ? db : da;
	}
	*ndim = n;
	return true;
}

static int64_t
bindex(const OnnxTensor *t, const int64_t *dims, int ndim, int64_t flat)
{
	int64_t idx = 0, stride = 1;

	for (int i = ndim - 1; i >= 0; i--) {
		int64_t d = flat % dims[i];
		int it = i - (ndim - t->ndim);

		flat /= dims[i];
		if (it >= 0) {
			if (t->dims[it] != 1)
				idx += d * stride;
			stride *= t->dims[it];
		}
	}
	return idx;
}

static bool
fold_arith(Imp *im, const OnnxOp *row)
{
	const OnnxTensor *a = in_const(im, 0, false), *b = in_const(im, 1, false);
	int64_t dims[MAX_DIMS];
	int nd;
	OnnxTensor *t;
	/* the row's IR op names the arithmetic: add sub mul div pow maximum minimum */
	char op = strcmp(row->ir, "maximum") == 0 ? 'M' : strcmp(row->ir, "minimum") == 0 ? 'N'
										     : row->ir[0];

	if (!a || !b)
		return false;
	if (!bcast(a, b, dims, &nd))
		return fail(im, "the constants' shapes do not broadcast");
	if (!(t = konst_new(im, a->dtype, nd, dims)))
		return false;
	for (int64_t i = 0; i < t->numel; i++) {
		int64_t ia = bindex(a, dims, nd, i), ib = bindex(b, dims, nd, i);

		if (is_int(t)) {
			int64_t x = ki(a, ia), y = ki(b, ib), r = 0;
			bool ok = true;

			switch (op) {
			case 'a': ok = ck_add(x, y, &r); break;
			case 's': ok = !__builtin_sub_overflow(x, y, &r); break;
			case 'm': ok = ck_mul(x, y, &r); break;
			case 'd':
				if (y == 0)
					return fail(im, "integer division by zero in a constant");
				ok = !(x == INT64_MIN && y == -1);
				r = ok ? x / y : 0; /* ONNX's integer Div truncates, as C's */
				break;
			case 'M': r = x > y ? x : y; break;
			case 'N': r = x < y ? x : y; break;
			case 'p':
				return fail(im, "Pow of integer constants is not supported");
			}
			if (!ok)
				return fail(im, "integer overflow in a constant");
			kset(t, i, (double)r, r);
		} else {
			double x = kf(a, ia), y = kf(b, ib), r = 0;

			switch (op) {
			case 'a': r = x + y; break;
			case 's': r = x - y; break;
			case 'm': r = x * y; break;
			case 'd': r = x / y; break;
			case 'p': r = pow(x, y); break;
			case 'M': r = isnan(x) || isnan(y) ? NAN : x > y ? x : y; break;
			case 'N': r = isnan(x) || isnan(y) ? NAN : x < y ? x : y; break;
			}
			kset(t, i, r, 0);
		}
	}
	set_const(im, 0, t);
	return true;
}

static bool
fold_shape(Imp *im, const Type *ty, int ndim, const int64_t *dims)
{
	int64_t start = attr_int(im, "start", 0), end = attr_int(im, "end", ndim), n;
	OnnxTensor *t;

	(void)ty;
	start = norm_axis(start, ndim);
	end = norm_axis(end, ndim);
	start = start < 0 ? 0 : start > ndim ? ndim : start;
	end = end < start ? start : end > ndim ? ndim : end;
	n = end - start;
	if (!(t = konst_new(im, DT_I64, 1, &n)))
		return false;
	for (int64_t i = 0; i < n; i++)
		kset(t, i, 0, dims[start + i]);
	set_const(im, 0, t);
	return true;
}

static bool
cv_shape(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);

	(void)row;
	if (!x)
		return false;
	if (x->k)
		return fold_shape(im, NULL, x->k->ndim, x->k->dims);
	return fold_shape(im, &x->v->type, x->v->type.ndim, x->v->type.dims);
}

/* Gather of constants along an axis */
static bool
fold_gather(Imp *im, const OnnxTensor *d, const OnnxTensor *ix, int64_t axis)
{
	int64_t dims[MAX_DIMS], outer = 1, inner = 1;
	int nd = 0;
	OnnxTensor *t;

	if (d->ndim + ix->ndim - 1 > MAX_DIMS)
		return fail(im, "too many dimensions");
	for (int i = 0; i < axis; i++)
		dims[nd++] = d->dims[i], outer *= d->dims[i];
	for (int i = 0; i < ix->ndim; i++)
		dims[nd++] = ix->dims[i];
	for (int i = (int)axis + 1; i < d->ndim; i++)
		dims[nd++] = d->dims[i], inner *= d->dims[i];
	if (!(t = konst_new(im, d->dtype, nd, dims)))
		return false;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < ix->numel; j++) {
			int64_t q = ki(ix, j);

			q = q < 0 ? q + d->dims[axis] : q;
			if (q < 0 || q >= d->dims[axis])
				return fail(im, "index %lld is out of range for a dimension "
					    "of %lld", (long long)ki(ix, j),
					    (long long)d->dims[axis]);
			kcopy(t, (o * ix->numel + j) * inner, d, (o * d->dims[axis] + q) * inner,
			      inner);
		}
	set_const(im, 0, t);
	return true;
}

static bool
cv_gather(Imp *im, const OnnxOp *row)
{
	Val *d = in_req(im, 0);
	const OnnxTensor *ix = in_const(im, 1, false);
	int64_t axis = attr_int(im, "axis", 0);
	int rank;

	(void)row;
	if (!d || !ix)
		return false;
	rank = d->k ? d->k->ndim : d->v->type.ndim;
	axis = norm_axis(axis, rank);
	if (axis < 0 || axis >= rank)
		return fail(im, "axis %lld is out of range for rank %d", (long long)axis, rank);
	if (d->k)
		return fold_gather(im, d->k, ix, axis);
	if (ix->ndim != 0)
		return fail(im, "Gather of a computed tensor with a list of indices is not "
			    "supported (only a single index)");
	a_val(im, d);
	a_int(im, axis);
	a_int(im, ki(ix, 0));
	return emit_result(im, "select");
}

/* the result shape of Unsqueeze / Squeeze / Flatten / Reshape on dims */
static bool
unsqueeze_dims(Imp *im, const int64_t *dims, int nd, const int64_t *axes, int na, int64_t *o,
	       int *on)
{
	int n = nd + na, j = 0;
	bool mark[MAX_DIMS] = {0};

	if (n > MAX_DIMS)
		return fail(im, "too many dimensions");
	for (int i = 0; i < na; i++) {
		int64_t a = norm_axis(axes[i], n);

		if (a < 0 || a >= n || mark[a])
			return fail(im, "axis %lld is out of range or repeated",
				    (long long)axes[i]);
		mark[a] = true;
	}
	for (int i = 0; i < n; i++)
		o[i] = mark[i] ? 1 : dims[j++];
	*on = n;
	return true;
}

/* axes from the attribute (before opset 13) or input 1 */
static int
axes_of(Imp *im, int64_t *axes, int input_from)
{
	int n = attr_ints(im, "axes", axes, MAX_DIMS);

	if (im->failed)
		return -1;
	if (im->m->opset >= input_from) {
		const OnnxTensor *t = in_const(im, 1, true);

		if (im->failed)
			return -1;
		if (t && !k_ints(im, t, axes, MAX_DIMS, &n, "axes"))
			return -1;
	}
	return n;
}

static bool
reshape_to(Imp *im, Val *x, const int64_t *dims, int nd)
{
	if (x->k) {
		OnnxTensor *t = NEW(&im->c->arena, OnnxTensor);

		*t = *x->k;
		t->name = NULL;
		t->ndim = nd;
		t->dims = intern_words(&im->c->shapes, dims, (size_t)nd * sizeof *dims);
		set_const(im, 0, t);
		return true;
	}
	a_val(im, x);
	a_ints(im, dims, nd);
	return emit_result(im, "reshape");
}

static void
dims_of(const Val *x, const int64_t **dims, int *nd)
{
	*dims = x->k ? x->k->dims : x->v->type.dims;
	*nd = x->k ? x->k->ndim : x->v->type.ndim;
}

static bool
cv_unsqueeze(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	int64_t axes[MAX_DIMS], o[MAX_DIMS];
	int na, on = 0, nd;
	const int64_t *dims;

	(void)row;
	if (!x || ((na = axes_of(im, axes, 13)) < 0 && im->failed))
		return false;
	if (na < 0)
		return fail(im, "Unsqueeze without axes");
	dims_of(x, &dims, &nd);
	if (!unsqueeze_dims(im, dims, nd, axes, na, o, &on))
		return false;
	if (x->k || na != 1)
		return reshape_to(im, x, o, on);
	a_val(im, x);
	a_int(im, norm_axis(axes[0], on));
	return emit_result(im, "unsqueeze");
}

static bool
cv_squeeze(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	int64_t axes[MAX_DIMS], o[MAX_DIMS];
	int na, nd, on = 0;
	const int64_t *dims;
	bool drop[MAX_DIMS] = {0};

	(void)row;
	if (!x || ((na = axes_of(im, axes, 13)) < 0 && im->failed))
		return false;
	dims_of(x, &dims, &nd);
	for (int i = 0; i < nd; i++) /* without axes: every axis of size 1 */
		drop[i] = na < 0 && dims[i] == 1;
	for (int i = 0; i < na; i++) {
		int64_t a = norm_axis(axes[i], nd);

		if (a < 0 || a >= nd || dims[a] != 1)
			return fail(im, "axis %lld is out of range or not of size 1",
				    (long long)axes[i]);
		drop[a] = true;
	}
	for (int i = 0; i < nd; i++)
		if (!drop[i])
			o[on++] = dims[i];
	return reshape_to(im, x, o, on);
}

static bool
cv_flatten(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	int64_t axis = attr_int(im, "axis", 1), o[2] = {1, 1};
	const int64_t *dims;
	int nd;

	(void)row;
	if (!x || im->failed)
		return false;
	dims_of(x, &dims, &nd);
	axis = norm_axis(axis, nd);
	if (axis < 0 || axis > nd)
		return fail(im, "axis %lld is out of range for rank %d", (long long)axis, nd);
	for (int i = 0; i < nd; i++)
		o[i >= axis] *= dims[i];
	if (!x->k && axis == 1 && nd >= 2) {
		a_val(im, x);
		a_int(im, 1);
		a_int(im, -1);
		return emit_result(im, "flatten");
	}
	return reshape_to(im, x, o, 2);
}

static bool
cv_reshape(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	const OnnxTensor *s = in_const(im, 1, false);
	int64_t shape[MAX_DIMS], numel = 1, known = 1;
	int n, nd, minus = -1;
	const int64_t *dims;
	bool allowzero = attr_int(im, "allowzero", 0) != 0;

	(void)row;
	if (!x || !s || !k_ints(im, s, shape, MAX_DIMS, &n, "the shape"))
		return false;
	dims_of(x, &dims, &nd);
	for (int i = 0; i < nd; i++)
		numel *= dims[i];
	for (int i = 0; i < n; i++) {
		if (shape[i] == 0 && !allowzero) {
			if (i >= nd)
				return fail(im, "shape[%d] is 0 (copy), but the input has rank %d",
					    i, nd);
			shape[i] = dims[i];
		}
		if (shape[i] == -1) {
			if (minus >= 0)
				return fail(im, "the shape has two -1");
			minus = i;
		} else if (shape[i] < 0) {
			return fail(im, "shape[%d] is %lld", i, (long long)shape[i]);
		} else if (!ck_mul(known, shape[i], &known)) {
			return fail(im, "the shape's elements overflow");
		}
	}
	if (minus >= 0) {
		if (!known || numel % known)
			return fail(im, "%lld elements do not reshape to the shape with -1",
				    (long long)numel);
		shape[minus] = numel / known;
	} else if (known != numel) {
		return fail(im, "%lld elements do not reshape to a shape of %lld",
			    (long long)numel, (long long)known);
	}
	if (x->k)
		return reshape_to(im, x, shape, n);
	a_val(im, x);
	a_ints(im, shape, n);
	return emit_result(im, "reshape");
}

static bool
cv_concat(Imp *im, const OnnxOp *row)
{
	int64_t axis = attr_int(im, "axis", 0);
	size_t n = im->node->n_input;
	Lit items[256];

	(void)row;
	if (n == 0 || n > 256)
		return fail(im, "Concat of %zu inputs (1 to 256)", n);
	if (all_const(im)) {
		const OnnxTensor *a = in_const(im, 0, false);
		int64_t dims[MAX_DIMS], total = 0, outer = 1, inner;
		OnnxTensor *t;
		int64_t at = 0;

		if (!a)
			return false;
		axis = norm_axis(axis, a->ndim);
		if (axis < 0 || axis >= a->ndim)
			return fail(im, "axis out of range");
		for (size_t i = 0; i < n; i++) {
			const OnnxTensor *b = in_const(im, i, false);

			if (!b || b->ndim != a->ndim || b->dtype != a->dtype)
				return fail(im, "the constants do not concatenate");
			for (int j = 0; j < a->ndim; j++)
				if (j != axis && b->dims[j] != a->dims[j])
					return fail(im, "the constants do not concatenate: their "
						    "dims differ off the axis");
			if (!ck_add(total, b->dims[axis], &total))
				return fail(im, "the constants are too large to concatenate");
		}
		memcpy(dims, a->dims, (size_t)a->ndim * sizeof *dims);
		dims[axis] = total;
		if (!(t = konst_new(im, a->dtype, a->ndim, dims)))
			return false;
		for (int i = 0; i < axis; i++)
			outer *= dims[i];
		for (int64_t o = 0; o < outer; o++)
			for (size_t i = 0; i < n; i++) {
				const OnnxTensor *b = in_const(im, i, false);

				inner = b->numel / (outer ? outer : 1);
				kcopy(t, at, b, o * inner, inner);
				at += inner;
			}
		set_const(im, 0, t);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		Val *x = in_req(im, i);

		if (!x)
			return false;
		a_val(im, x);
		items[i] = im->args.v[--im->args.n].v;
	}
	push(im, ir_list(im->c, items, n, (uint32_t)im->k));
	a_int(im, axis);
	return emit_result(im, "cat");
}

static bool
cv_constant(Imp *im, const OnnxOp *row)
{
	const Onnx__AttributeProto *a;
	OnnxTensor *t = NULL;
	int64_t one = 1;

	(void)row;
	if ((a = attr(im, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR))) {
		t = NEW(&im->c->arena, OnnxTensor);
		if (!onnx_tensor(im->c, a->t.data, a->t.len, t, (uint32_t)im->k))
			return im->failed = true, false;
	} else if ((a = attr(im, "value_float", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))) {
		if ((t = konst_new(im, DT_F32, 0, NULL)))
			kset(t, 0, a->f, 0);
	} else if ((a = attr(im, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))) {
		if ((t = konst_new(im, DT_I64, 0, NULL)))
			kset(t, 0, 0, a->i);
	} else if ((a = attr(im, "value_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS))) {
		one = (int64_t)a->n_ints;
		if ((t = konst_new(im, DT_I64, 1, &one)))
			for (size_t i = 0; i < a->n_ints; i++)
				kset(t, (int64_t)i, 0, a->ints[i]);
	} else if ((a = attr(im, "value_floats",
			     ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS))) {
		one = (int64_t)a->n_floats;
		if ((t = konst_new(im, DT_F32, 1, &one)))
			for (size_t i = 0; i < a->n_floats; i++)
				kset(t, (int64_t)i, a->floats[i], 0);
	}
	if (im->failed)
		return false;
	if (!t)
		return fail(im, "a Constant without a value, value_float, value_int, value_ints "
			    "or value_floats attribute");
	set_const(im, 0, t);
	return true;
}

static bool
cv_constant_of_shape(Imp *im, const OnnxOp *row)
{
	const OnnxTensor *s = in_const(im, 0, false), *v = NULL;
	const Onnx__AttributeProto *a =
		attr(im, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	int64_t dims[MAX_DIMS];
	int n;
	OnnxTensor *t, tv;

	(void)row;
	if (!s || !k_ints(im, s, dims, MAX_DIMS, &n, "the shape"))
		return false;
	if (a) {
		if (!onnx_tensor(im->c, a->t.data, a->t.len, &tv, (uint32_t)im->k))
			return im->failed = true, false;
		if (tv.numel != 1)
			return fail(im, "ConstantOfShape's value must have one element, not %lld",
				    (long long)tv.numel);
		v = &tv;
	}
	if (!(t = konst_new(im, v ? v->dtype : DT_F32, n, dims)))
		return false;
	for (int64_t i = 0; i < t->numel; i++)
		kset(t, i, v ? kf(v, 0) : 0, v ? ki(v, 0) : 0);
	set_const(im, 0, t);
	return true;
}

/* Output 0 is input x under another name: no op line */
static bool
alias(Imp *im, const Val *x)
{
	Val *o = out(im, 0);
	const char *name;

	if (o) {
		name = o->name;
		*o = *x;
		o->name = name;
	}
	return true;
}

static bool
cv_cast(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	int to = (int)attr_int(im, "to", 0);
	OnnxTensor *t;

	(void)row;
	if (!x || im->failed)
		return false;
	if (x->k) {
		static const int dts[] = {[ONNX_FLOAT] = DT_F32, [ONNX_INT64] = DT_I64,
					  [ONNX_INT32] = DT_I32, [ONNX_DOUBLE] = DT_F64,
					  [ONNX_BOOL] = DT_BOOL, [ONNX_UINT8] = DT_U8,
					  [ONNX_INT8] = DT_I8};
		int dt = to > 0 && to < (int)(sizeof dts / sizeof *dts) && (dts[to] || to == 1)
				 ? dts[to] : -1;

		if (dt < 0)
			return fail(im, "Cast of a constant to type %d is not supported", to);
		if (!(t = konst_new(im, dt, x->k->ndim, x->k->dims)))
			return false;
		for (int64_t i = 0; i < t->numel; i++)
			kset(t, i, kf(x->k, i), dt == DT_BOOL ? kf(x->k, i) != 0 : ki(x->k, i));
		set_const(im, 0, t);
		return true;
	}
	if (to != ONNX_FLOAT || x->v->type.dtype != DT_F32)
		return fail(im, "Cast of a computed tensor is supported only from FLOAT to FLOAT");
	return alias(im, x);
}

static bool
cv_identity(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);

	(void)row;
	attr_float(im, "ratio", 0.5); /* Dropout: inference is the identity (opset < 12) */
	attr_int(im, "is_test", 1);
	if (!x || im->failed || !only_first_output(im))
		return false;
	if (im->node->n_input > 2 && in(im, 2) &&
	    !(in(im, 2)->k && ki(in(im, 2)->k, 0) == 0))
		return fail(im, "Dropout in training mode is not supported");
	return alias(im, x);
}

/* ---- runtime ops ------------------------------------------------------------------------- */

static bool
cv_unary(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);

	if (!x)
		return false;
	a_val(im, x);
	return emit_result(im, row->ir);
}

static bool
cv_leaky(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	double alpha = attr_float(im, "alpha", row->ir[0] == 'l' ? 0.01 : 1.0);

	if (!x || im->failed)
		return false;
	a_val(im, x);
	a_float(im, alpha);
	return emit_result(im, row->ir);
}

static bool
cv_hardsigmoid(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	double alpha = attr_float(im, "alpha", 0.2), beta = attr_float(im, "beta", 0.5);
	Value *v;

	(void)row;
	if (!x || im->failed)
		return false;
	a_val(im, x);
	if ((float)alpha == (float)(1.0 / 6) && beta == 0.5)
		return emit_result(im, "hardsigmoid");
	/* max(0, min(1, alpha * x + beta)) */
	a_float(im, alpha);
	if (!(v = emit_op(im, "mul", 1)))
		return false;
	a_value(im, v);
	a_float(im, beta);
	if (!(v = emit_op(im, "add", 1)))
		return false;
	a_value(im, v);
	a_float(im, 0.0);
	a_float(im, 1.0);
	return emit_result(im, "clamp");
}

/* Add, Sub, Mul, Div, Pow: a constant of one element is a scalar argument */
static bool
cv_arith(Imp *im, const OnnxOp *row)
{
	Val *a = in_req(im, 0), *b = in_req(im, 1), *xs[2];

	if (!a || !b)
		return false;
	if (a->k && b->k)
		return fold_arith(im, row);
	xs[0] = a;
	xs[1] = b;
	for (int i = 0; i < 2; i++) {
		const OnnxTensor *k = xs[i]->k;
		const Type *t = type_of(xs[1 - i]);

		if (k && k->numel == 1 && t && k->ndim <= t->ndim) {
			if (is_int(k))
				a_int(im, ki(k, 0));
			else
				a_float(im, kf(k, 0));
		} else {
			a_val(im, xs[i]);
		}
	}
	return emit_result(im, row->ir);
}

static bool
cv_minmax(Imp *im, const OnnxOp *row)
{
	if (im->node->n_input != 2)
		return fail(im, "%s of %zu inputs is supported only with 2", row->name,
			    im->node->n_input);
	return cv_arith(im, row);
}

/* ONNX pads [b1, b2, ..., e1, e2, ...] for the last n axes: symmetric into sym[], or false */
static bool
symmetric(const int64_t *pads, int n, int64_t *sym)
{
	for (int i = 0; i < n; i++) {
		if (pads[i] != pads[n + i])
			return false;
		sym[i] = pads[i];
	}
	return true;
}

/* auto_pad SAME_UPPER / SAME_LOWER into explicit pads for input dims in[] */
static bool
auto_pads(Imp *im, const char *mode, const int64_t *in_dims, const int64_t *k,
	  const int64_t *s, const int64_t *d, int n, int64_t *pads)
{
	if (strcmp(mode, "NOTSET") == 0)
		return true;
	for (int i = 0; i < n; i++) {
		int64_t o = (in_dims[i] + s[i] - 1) / s[i], ext = (k[i] - 1) * d[i] + 1,
			total = (o - 1) * s[i] + ext - in_dims[i];

		if (strcmp(mode, "VALID") == 0)
			total = 0;
		else if (strcmp(mode, "SAME_UPPER") && strcmp(mode, "SAME_LOWER"))
			return fail(im, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or "
				    "VALID", mode);
		total = total < 0 ? 0 : total;
		pads[i] = mode[5] == 'L' ? total - total / 2 : total / 2;
		pads[n + i] = total - pads[i];
	}
	return true;
}

/* A pad op before a conv or pool whose ONNX pads are not symmetric (zeros) */
static Val *
pad_first(Imp *im, Val *x, const int64_t *pads, int n, Val *tmp)
{
	int64_t tp[2 * MAX_DIMS];
	Value *v;

	for (int i = 0; i < n; i++) { /* torch's order: the last axis first */
		tp[2 * i] = pads[n - 1 - i];
		tp[2 * i + 1] = pads[2 * n - 1 - i];
	}
	a_val(im, x);
	a_ints(im, tp, 2 * n);
	a_str(im, "constant");
	a_float(im, 0.0);
	if (!(v = emit_op(im, "pad", 1)))
		return NULL;
	memset(tmp, 0, sizeof *tmp);
	tmp->handle = v->handle;
	tmp->v = v;
	return tmp;
}

/* kernel, strides, dilations, pads of a Conv or pool over n spatial axes; pads symmetric in
 * sym[] (or zero, with *x padded first) */
static bool
window(Imp *im, Val **x, Val *tmp, int n, int64_t *k, int64_t *s, int64_t *d, int64_t *sym,
       bool may_pad_first)
{
	int64_t pads[2 * MAX_DIMS] = {0};
	int nk = attr_ints(im, "kernel_shape", k, n), ns, nd, np;
	const char *mode = attr_str(im, "auto_pad", "NOTSET");

	ns = attr_ints(im, "strides", s, n);
	nd = attr_ints(im, "dilations", d, n);
	np = attr_ints(im, "pads", pads, 2 * n);
	if (im->failed)
		return false;
	if (nk >= 0 && nk != n)
		return fail(im, "kernel_shape has %d values for %d spatial axes", nk, n);
	for (int i = 0; i < n; i++) {
		if (ns < 0)
			s[i] = 1;
		if (nd < 0)
			d[i] = 1;
	}
	if ((ns >= 0 && ns != n) || (nd >= 0 && nd != n) || (np >= 0 && np != 2 * n))
		return fail(im, "strides, dilations or pads do not match %d spatial axes", n);
	for (int i = 0; i < n; i++)
		if (k[i] < 1 || s[i] < 1 || d[i] < 1 || pads[i] < 0 || pads[n + i] < 0 ||
		    k[i] > INT32_MAX || s[i] > INT32_MAX || d[i] > INT32_MAX ||
		    pads[i] > INT32_MAX || pads[n + i] > INT32_MAX)
			return fail(im, "kernel_shape, strides and dilations must be positive and "
				    "pads not negative (and each below 2^31)");
	if (!auto_pads(im, mode, (*x)->v->type.dims + 2, k, s, d, n, pads))
		return false;
	if (symmetric(pads, n, sym))
		return true;
	if (!may_pad_first)
		return fail(im, "asymmetric pads are not supported here");
	if (!(*x = pad_first(im, *x, pads, n, tmp)))
		return false;
	memset(sym, 0, (size_t)n * sizeof *sym);
	return true;
}

static bool
cv_conv(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *w = in_req(im, 1), *b = in(im, 2), tmp;
	int64_t k[MAX_DIMS], s[MAX_DIMS], d[MAX_DIMS], p[MAX_DIMS];
	int64_t group = attr_int(im, "group", 1);
	int n;
	static const char *const ops[] = {"conv1d", "conv2d", "conv3d"};

	(void)row;
	if (!x || !w)
		return false;
	n = x->v->type.ndim - 2;
	if (n < 1 || n > 3)
		return fail(im, "Conv of a rank %d input is not supported", n + 2);
	for (int i = 0; i < n; i++)
		k[i] = 1;
	if (w->k) /* the kernel from the weight when kernel_shape is absent */
		for (int i = 0; i < n && i + 2 < w->k->ndim; i++)
			k[i] = w->k->dims[i + 2];
	if (!window(im, &x, &tmp, n, k, s, d, p, true))
		return false;
	a_val(im, x);
	a_val(im, w);
	a_opt(im, b);
	a_ints(im, s, n);
	a_ints(im, p, n);
	a_ints(im, d, n);
	a_int(im, group);
	return emit_result(im, ops[n - 1]);
}

static bool
cv_conv_transpose(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *w = in_req(im, 1), *b = in(im, 2);
	int64_t k[MAX_DIMS], s[MAX_DIMS], d[MAX_DIMS], p[MAX_DIMS], op[MAX_DIMS] = {0};
	int64_t group = attr_int(im, "group", 1), os[MAX_DIMS];
	const char *pad = attr_str(im, "auto_pad", "NOTSET");
	int n, nop, nos;

	(void)row;
	if (!x || !w)
		return false;
	n = x->v->type.ndim - 2;
	if (n != 2)
		return fail(im, "ConvTranspose of a rank %d input is not supported (only 4)",
			    n + 2);
	nop = attr_ints(im, "output_padding", op, n);
	nos = attr_ints(im, "output_shape", os, n);
	if (im->failed)
		return false;
	if (nos >= 0)
		return fail(im, "ConvTranspose with output_shape is not supported; give pads");
	if (nop < 0)
		op[0] = op[1] = 0;
	if (strcmp(pad, "NOTSET") && strcmp(pad, "VALID"))
		return fail(im, "ConvTranspose with auto_pad SAME_UPPER or SAME_LOWER is not "
			    "supported; give pads");
	for (int i = 0; i < n; i++) /* the kernel from the weight when kernel_shape is absent */
		k[i] = w->k && i + 2 < w->k->ndim ? w->k->dims[i + 2] : 1;
	if (!window(im, &x, NULL, n, k, s, d, p, false))
		return false;
	a_val(im, x);
	a_val(im, w);
	a_opt(im, b);
	a_ints(im, s, n);
	a_ints(im, p, n);
	a_ints(im, op, n);
	a_int(im, group);
	a_ints(im, d, n);
	return emit_result(im, "conv_transpose2d");
}

static bool
cv_pool(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *xp;
	int64_t k[MAX_DIMS], s[MAX_DIMS], d[MAX_DIMS], p[MAX_DIMS];
	bool is_max = row->ir[0] == 'm';
	int64_t ceil = attr_int(im, "ceil_mode", 0);
	int64_t cip = is_max ? 0 : attr_int(im, "count_include_pad", 0);
	int64_t order = is_max ? attr_int(im, "storage_order", 0) : 0;
	int n;

	if (!x || !only_first_output(im))
		return false;
	n = x->v->type.ndim - 2;
	if (n != 2)
		return fail(im, "%s of a rank %d input is not supported (only 4)", row->name,
			    n + 2);
	if (order != 0)
		return fail(im, "storage_order %lld is not supported", (long long)order);
	xp = x;
	if (!window(im, &xp, NULL, n, k, s, d, p, false))
		return false;
	if (attr(im, "kernel_shape", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) == NULL)
		return fail(im, "%s without kernel_shape", row->name);
	if (!is_max)
		for (int i = 0; i < n; i++)
			if (d[i] != 1)
				return fail(im, "AveragePool with dilations is not supported");
	/* ceil_mode: PyTorch drops a last window that would start in the padding, ONNX before
	 * opset 19 keeps it.  Where the two differ, no net is right for both: refused. */
	for (int i = 0; ceil && i < n; i++) {
		int64_t in = x->v->type.dims[2 + i], ext = (k[i] - 1) * d[i] + 1,
			out = (in + 2 * p[i] - ext + s[i] - 1) / s[i] + 1;

		if (in + 2 * p[i] >= ext && (out - 1) * s[i] >= in + p[i])
			return fail(im, "%s with ceil_mode: its last window along axis %d would "
				    "start in the padding, which ONNX before opset 19 keeps and "
				    "PyTorch drops; not lowered", row->name, 2 + i);
	}
	a_val(im, x);
	a_ints(im, k, n);
	a_ints(im, s, n);
	a_ints(im, p, n);
	if (is_max)
		a_ints(im, d, n);
	a_bool(im, ceil != 0);
	if (!is_max)
		a_bool(im, cip != 0);
	return emit_result(im, row->ir);
}

static bool
cv_global_pool(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t one[2] = {1, 1};

	if (!x)
		return false;
	if (x->v->type.ndim != 4)
		return fail(im, "%s of a rank %d input is not supported (only 4)", row->name,
			    x->v->type.ndim);
	a_val(im, x);
	a_ints(im, one, 2);
	return emit_result(im, row->ir);
}

static bool
cv_batch_norm(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *sc = in_req(im, 1), *b = in_req(im, 2), *mean = in_req(im, 3),
	    *var = in_req(im, 4);
	double eps = attr_float(im, "epsilon", 1e-5), mom = attr_float(im, "momentum", 0.9);
	int64_t training = attr_int(im, "training_mode", 0), spatial = attr_int(im, "spatial", 1);

	(void)row;
	(void)mom;
	if (!x || !sc || !b || !mean || !var || im->failed || !only_first_output(im))
		return false;
	if (training || spatial != 1)
		return fail(im, "BatchNormalization in training mode or with spatial=0 is not "
			    "supported");
	a_val(im, x);
	a_val(im, mean);
	a_val(im, var);
	a_val(im, sc);
	a_val(im, b);
	a_bool(im, false);
	a_float(im, 0.1);
	a_float(im, (float)eps);
	return emit_result(im, "batch_norm");
}

static bool
cv_instance_norm(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *sc = in_req(im, 1), *b = in_req(im, 2);
	double eps = attr_float(im, "epsilon", 1e-5);

	(void)row;
	if (!x || !sc || !b || im->failed)
		return false;
	a_val(im, x);
	a_none(im);
	a_none(im);
	a_val(im, sc);
	a_val(im, b);
	a_bool(im, true);
	a_float(im, 0.1);
	a_float(im, (float)eps);
	return emit_result(im, "instance_norm");
}

/* A constant transposed ([K, N] -> [N, K]) and scaled, for Gemm and MatMul's weights */
static Val *
weight_t(Imp *im, const OnnxTensor *w, bool transpose, double scale)
{
	OnnxTensor *t;
	int64_t dims[2];
	Val *x = NEW(&im->c->arena, Val);

	if (!transpose && scale == 1.0) {
		x->k = w;
		return x;
	}
	dims[0] = transpose ? w->dims[1] : w->dims[0];
	dims[1] = transpose ? w->dims[0] : w->dims[1];
	if (!(t = konst_new(im, DT_F32, 2, dims)))
		return NULL;
	for (int64_t i = 0; i < dims[0]; i++)
		for (int64_t j = 0; j < dims[1]; j++)
			kset(t, i * dims[1] + j,
			     scale * kf(w, transpose ? j * dims[0] + i : i * dims[1] + j), 0);
	x->k = t;
	x->handle = NO_HANDLE;
	return x;
}

static bool
cv_gemm(Imp *im, const OnnxOp *row)
{
	Val *a = in_rt(im, 0), *b = in_req(im, 1), *c = in(im, 2), *w, *bias = NULL;
	double alpha = attr_float(im, "alpha", 1.0), beta = attr_float(im, "beta", 1.0);
	int64_t ta = attr_int(im, "transA", 0), tb = attr_int(im, "transB", 0), n;

	(void)row;
	if (!a || !b || im->failed)
		return false;
	if (ta)
		return fail(im, "Gemm with transA=1 is not supported");
	if (!b->k || b->k->ndim != 2 || !dtype_is_float(b->k->dtype))
		return fail(im, "Gemm is supported with a constant 2-D B (a Linear layer's "
			    "weight)");
	n = tb ? b->k->dims[0] : b->k->dims[1];
	if (!(w = weight_t(im, b->k, !tb, alpha)))
		return false;
	if (c) {
		OnnxTensor *t;

		if (!c->k || c->k->numel != n || (c->k->ndim == 2 && c->k->dims[1] != n))
			return fail(im, "Gemm is supported with a constant C of N (%lld) elements",
				    (long long)n);
		if (!(t = konst_new(im, DT_F32, 1, &n)))
			return false;
		for (int64_t i = 0; i < n; i++)
			kset(t, i, beta * kf(c->k, i), 0);
		bias = NEW(&im->c->arena, Val);
		bias->k = t;
		if (beta == 1.0 && c->k->ndim == 1)
			bias = c;
	}
	if (w->k == b->k)
		w = b;
	a_val(im, a);
	a_val(im, w);
	a_opt(im, bias);
	return emit_result(im, "linear");
}

static bool
cv_matmul(Imp *im, const OnnxOp *row)
{
	Val *a = in_rt(im, 0), *b = in_req(im, 1);

	(void)row;
	if (!a || !b)
		return false;
	a_val(im, a);
	if (b->k && b->k->ndim == 2 && dtype_is_float(b->k->dtype)) {
		Val *w = weight_t(im, b->k, true, 1.0);

		if (!w)
			return false;
		a_val(im, w);
		a_none(im);
		return emit_result(im, "linear");
	}
	a_val(im, b);
	return emit_result(im, "matmul");
}

static bool
cv_prelu(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0), *s = in_req(im, 1), *w;
	OnnxTensor *t;

	(void)row;
	if (!x || !s)
		return false;
	if (!s->k)
		return fail(im, "PRelu's slope must be a constant");
	/* ONNX's slope broadcasts against x from the right: per channel (torch's [C]) only
	 * when its dims, aligned to x's last ones, are 1 but at axis 1 ([C, 1, 1] for NCHW) */
	if (s->k->numel != 1) {
		int rank = x->v->type.ndim, off = rank - s->k->ndim;

		if (off < 0 || rank < 2)
			return fail(im, "a PRelu slope of more dims than its input");
		for (int i = 0; i < s->k->ndim; i++)
			if (s->k->dims[i] != 1 && i + off != 1)
				return fail(im, "a PRelu slope that varies along an axis other "
					    "than the channels (1) is not supported");
	}
	w = NEW(&im->c->arena, Val);
	t = NEW(&im->c->arena, OnnxTensor);
	*t = *s->k;
	t->name = NULL;
	t->ndim = 1;
	t->dims = intern_words(&im->c->shapes, &s->k->numel, sizeof s->k->numel);
	w->k = t;
	w->handle = NO_HANDLE;
	a_val(im, x);
	a_val(im, w);
	return emit_result(im, "prelu");
}

static bool
cv_softmax(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t axis = attr_int(im, "axis", im->m->opset >= 13 ? -1 : 1), flat[2] = {1, 1};
	const Type *t;
	Value *v;
	bool tail_ones = true;

	if (!x || im->failed)
		return false;
	t = &x->v->type;
	axis = norm_axis(axis, t->ndim);
	if (axis < 0 || axis >= t->ndim)
		return fail(im, "axis out of range");
	for (int i = (int)axis + 1; i < t->ndim; i++)
		tail_ones &= t->dims[i] == 1;
	if (im->m->opset >= 13 || tail_ones) {
		a_val(im, x);
		a_int(im, axis);
		return emit_result(im, row->ir);
	}
	/* before opset 13: over all the axes from `axis` on, as one */
	for (int i = 0; i < t->ndim; i++)
		flat[i >= axis] *= t->dims[i];
	a_val(im, x);
	a_ints(im, flat, 2);
	if (!(v = emit_op(im, "reshape", 1)))
		return false;
	a_value(im, v);
	a_int(im, 1);
	if (!(v = emit_op(im, row->ir, 1)))
		return false;
	a_value(im, v);
	a_ints(im, t->dims, t->ndim);
	return emit_result(im, "reshape");
}

static bool
cv_clip(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	double lo = -INFINITY, hi = INFINITY;
	bool has_lo = false, has_hi = false;

	(void)row;
	if (!x)
		return false;
	if (im->m->opset < 11) {
		lo = attr_float(im, "min", -FLT_MAX);
		hi = attr_float(im, "max", FLT_MAX);
		has_lo = lo != -FLT_MAX;
		has_hi = hi != FLT_MAX;
	} else {
		const OnnxTensor *a = in_const(im, 1, true), *b = in_const(im, 2, true);

		if (im->failed)
			return false;
		if ((a && a->numel != 1) || (b && b->numel != 1))
			return fail(im, "Clip's min and max must be scalars");
		if (a)
			lo = kf(a, 0), has_lo = true;
		if (b)
			hi = kf(b, 0), has_hi = true;
	}
	if (im->failed)
		return false;
	a_val(im, x);
	if (has_lo)
		a_float(im, lo);
	else
		a_none(im);
	if (has_hi)
		a_float(im, hi);
	else
		a_none(im);
	return emit_result(im, "clamp");
}

static bool
cv_reduce(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t axes[MAX_DIMS];
	int from = strcmp(row->name, "ReduceSum") == 0 ? 13 : 18, na;
	int64_t keep = attr_int(im, "keepdims", 1), noop = attr_int(im, "noop_with_empty_axes", 0);

	if (!x || (na = axes_of(im, axes, from)) < -1 || im->failed)
		return false;
	if (na <= 0 && noop)
		return fail(im, "noop_with_empty_axes is not supported");
	a_val(im, x);
	if (na > 0)
		a_ints(im, axes, na);
	else
		a_none(im);
	a_bool(im, keep != 0);
	return emit_result(im, row->ir);
}

static bool
cv_transpose(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t perm[MAX_DIMS];
	int n;

	(void)row;
	if (!x)
		return false;
	n = attr_ints(im, "perm", perm, MAX_DIMS);
	if (im->failed)
		return false;
	if (n < 0) {
		n = x->v->type.ndim;
		for (int i = 0; i < n; i++)
			perm[i] = n - 1 - i;
	}
	a_val(im, x);
	a_ints(im, perm, n);
	return emit_result(im, "permute");
}

/* Python's clamping of a slice [start, end) with a positive step over n elements */
static void
slice_bounds(int64_t n, int64_t *start, int64_t *end)
{
	*start = *start < 0 ? (*start + n < 0 ? 0 : *start + n) : *start > n ? n : *start;
	*end = *end < 0 ? (*end + n < 0 ? 0 : *end + n) : *end > n ? n : *end;
}

static bool
fold_slice(Imp *im, const OnnxTensor *k, int64_t start, int64_t end, int64_t step)
{
	int64_t n = 0;
	OnnxTensor *t;

	slice_bounds(k->dims[0], &start, &end);
	if (end > start)
		n = (end - start - 1) / step + 1;
	if (!(t = konst_new(im, k->dtype, 1, &n)))
		return false;
	for (int64_t i = 0; i < n; i++)
		kcopy(t, i, k, start + i * step, 1);
	set_const(im, 0, t);
	return true;
}

static bool
cv_slice(Imp *im, const OnnxOp *row)
{
	Val *x = in_req(im, 0);
	int64_t st[MAX_DIMS], en[MAX_DIMS], ax[MAX_DIMS], sp[MAX_DIMS];
	int ns, ne, na = -1, np = -1, rank, last = -1;
	Lit idx[MAX_DIMS];
	bool have[MAX_DIMS] = {0};
	int64_t s[MAX_DIMS], e[MAX_DIMS], step[MAX_DIMS];

	(void)row;
	if (!x)
		return false;
	if (x->k && x->k->ndim != 1)
		return fail(im, "Slice of a constant of rank %d is not supported (only 1)",
			    x->k->ndim);
	rank = x->k ? 1 : x->v->type.ndim;
	if (im->m->opset < 10) {
		ns = attr_ints(im, "starts", st, MAX_DIMS);
		ne = attr_ints(im, "ends", en, MAX_DIMS);
		na = attr_ints(im, "axes", ax, MAX_DIMS);
	} else {
		const OnnxTensor *a = in_const(im, 1, false), *b = in_const(im, 2, false),
				 *c = in_const(im, 3, true), *d = in_const(im, 4, true);

		if (!a || !b || im->failed || !k_ints(im, a, st, MAX_DIMS, &ns, "starts") ||
		    !k_ints(im, b, en, MAX_DIMS, &ne, "ends") ||
		    (c && !k_ints(im, c, ax, MAX_DIMS, &na, "axes")) ||
		    (d && !k_ints(im, d, sp, MAX_DIMS, &np, "steps")))
			return false;
	}
	if (im->failed)
		return false;
	if (ns != ne || (na >= 0 && na != ns) || (np >= 0 && np != ns))
		return fail(im, "starts, ends, axes and steps differ in length");
	for (int i = 0; i < ns; i++) {
		int64_t a = norm_axis(na >= 0 ? ax[i] : i, rank);

		if (a < 0 || a >= rank || have[a])
			return fail(im, "axis out of range or repeated");
		have[a] = true;
		s[a] = st[i];
		e[a] = en[i];
		step[a] = np >= 0 ? sp[i] : 1;
		if (step[a] <= 0)
			return fail(im, "a step of %lld is not supported (only positive steps)",
				    (long long)step[a]);
		if (a > last)
			last = (int)a;
	}
	if (x->k) /* a constant list (a shape, say): sliced here */
		return fold_slice(im, x->k, have[0] ? s[0] : 0, have[0] ? e[0] : INT64_MAX,
				  have[0] ? step[0] : 1);
	for (int a = 0; a <= last; a++) {
		Lit *sl = NEWARRAY(&im->c->arena, Lit, 3);
		int64_t d = x->v->type.dims[a];

		for (int j = 0; j < 3; j++)
			sl[j] = lit(im, L_NONE);
		if (have[a]) {
			/* ONNX clamps as Python does; INT64_MAX and friends are "to the end" */
			if (s[a] != 0 && s[a] > -d - 1 && s[a] < d)
				sl[0] = lit(im, L_INT), sl[0].u.i = s[a];
			else if (s[a] >= d)
				sl[0] = lit(im, L_INT), sl[0].u.i = d;
			if (e[a] < d && e[a] > -d - 1)
				sl[1] = lit(im, L_INT), sl[1].u.i = e[a];
			else if (e[a] <= -d - 1)
				sl[1] = lit(im, L_INT), sl[1].u.i = 0;
			if (step[a] != 1)
				sl[2] = lit(im, L_INT), sl[2].u.i = step[a];
		}
		idx[a] = lit(im, L_SLICE);
		idx[a].n = 3;
		idx[a].u.list = sl;
	}
	a_val(im, x);
	push(im, ir_list(im->c, idx, (size_t)last + 1, (uint32_t)im->k));
	return emit_result(im, "getitem");
}

static bool
cv_split(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t axis = attr_int(im, "axis", 0), sizes[256], d;
	int n = -1, nout = (int)im->node->n_output;
	Value *v;

	(void)row;
	if (!x || im->failed)
		return false;
	if (nout < 1 || nout > 255)
		return fail(im, "Split into %d outputs", nout);
	axis = norm_axis(axis, x->v->type.ndim);
	if (axis < 0 || axis >= x->v->type.ndim)
		return fail(im, "axis out of range");
	d = x->v->type.dims[axis];
	if (im->m->opset < 13) {
		n = attr_ints(im, "split", sizes, 256);
	} else {
		const OnnxTensor *t = in_const(im, 1, true);

		if (t && !k_ints(im, t, sizes, 256, &n, "split"))
			return false;
		attr_int(im, "num_outputs", nout);
	}
	if (im->failed)
		return false;
	if (n < 0) { /* equal parts, the last smaller (opset 18) */
		int64_t part = (d + nout - 1) / nout;

		if (im->m->opset < 18 && d % nout)
			return fail(im, "Split of %lld into %d equal parts", (long long)d, nout);

		for (int i = 0; i < nout; i++)
			sizes[i] = i + 1 < nout ? part : d - part * (nout - 1);
		n = nout;
	}
	if (n != nout)
		return fail(im, "split has %d sizes for %d outputs", n, nout);
	a_val(im, x);
	a_ints(im, sizes, n);
	a_int(im, axis);
	if (!(v = emit_op(im, "split", nout)))
		return false;
	for (int i = 0; i < nout; i++)
		set_value(im, (size_t)i, v + i);
	return true;
}

static bool
cv_pad(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	const char *mode = attr_str(im, "mode", "constant");
	int64_t pads[2 * MAX_DIMS], tp[2 * MAX_DIMS];
	int np, rank, n = 0;
	double value = 0;

	(void)row;
	if (!x)
		return false;
	rank = x->v->type.ndim;
	if (im->m->opset < 11) {
		np = attr_ints(im, "pads", pads, 2 * MAX_DIMS);
		value = attr_float(im, "value", 0.0);
	} else {
		const OnnxTensor *p = in_const(im, 1, false), *v = in_const(im, 2, true);

		if (!p || im->failed || !k_ints(im, p, pads, 2 * MAX_DIMS, &np, "pads"))
			return false;
		if (v && v->numel == 1)
			value = kf(v, 0);
		if (in(im, 3))
			return fail(im, "Pad's axes input is not supported");
	}
	if (im->failed)
		return false;
	if (np != 2 * rank)
		return fail(im, "pads has %d values for rank %d", np, rank);
	for (int i = 0; i < rank; i++) /* drop the leading axes with no padding */
		if (pads[i] || pads[rank + i]) {
			n = rank - i;
			break;
		}
	for (int i = 0; i < n; i++) {
		tp[2 * i] = pads[rank - 1 - i];
		tp[2 * i + 1] = pads[2 * rank - 1 - i];
	}
	if (strcmp(mode, "edge") == 0)
		mode = "replicate";
	else if (strcmp(mode, "constant") && strcmp(mode, "reflect"))
		return fail(im, "Pad mode '%s' is not supported", mode);
	a_val(im, x);
	a_ints(im, tp, 2 * n);
	a_str(im, mode);
	if (strcmp(mode, "constant") == 0)
		a_float(im, value);
	else
		a_none(im);
	return emit_result(im, "pad");
}

/* Resize (opset 10+) and Upsample: torch's interpolate where the coordinate rules agree */
static bool
cv_resize(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	const char *mode = attr_str(im, "mode", "nearest"), *ctm, *nm;
	const OnnxTensor *scales = NULL, *sizes = NULL;
	bool upsample = row->name[0] == 'U';
	double sc[MAX_DIMS];
	int64_t sz[MAX_DIMS];
	int rank, ns = 0;
	bool align = false, linear;

	if (!x)
		return false;
	rank = x->v->type.ndim;
	ctm = upsample ? "asymmetric"
		       : attr_str(im, "coordinate_transformation_mode",
				  im->m->opset >= 11 ? "half_pixel" : "asymmetric");
	/* before opset 11 Resize has Upsample's rules: asymmetric, floor */
	nm = upsample || im->m->opset < 11 ? "floor"
					    : attr_str(im, "nearest_mode", "round_prefer_floor");
	attr_float(im, "cubic_coeff_a", -0.75);
	attr_int(im, "exclude_outside", 0);
	attr_float(im, "extrapolation_value", 0.0);
	if (upsample && im->m->opset < 9) {
		const Onnx__AttributeProto *a =
			attr(im, "scales", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);

		if (!a || (int)a->n_floats != rank)
			return fail(im, "Upsample needs scales for each axis");
		for (int i = 0; i < rank; i++)
			sc[i] = a->floats[i];
		ns = rank;
	} else {
		int si = upsample ? 1 : im->m->opset >= 11 ? 2 : 1;

		scales = in_const(im, (size_t)si, true);
		if (!upsample && im->m->opset >= 11)
			sizes = in_const(im, 3, true);
		if (im->failed)
			return false;
		if (scales && scales->numel == 0)
			scales = NULL;
		if (sizes && sizes->numel == (int64_t)rank) {
			for (int i = 0; i < rank; i++)
				sz[i] = ki(sizes, i);
		} else if (scales && scales->numel == (int64_t)rank) {
			for (int i = 0; i < rank; i++)
				sc[i] = kf(scales, i);
			ns = rank;
		} else {
			return fail(im, "%s needs constant scales or sizes for each axis",
				    row->name);
		}
	}
	if (im->failed)
		return false;
	if (rank != 4)
		return fail(im, "%s of a rank %d input is not supported (only 4)", row->name,
			    rank);
	if (ns && (sc[0] != 1 || sc[1] != 1))
		return fail(im, "%s of the batch or channel axis is not supported", row->name);
	if (!ns && (sz[0] != x->v->type.dims[0] || sz[1] != x->v->type.dims[1]))
		return fail(im, "%s of the batch or channel axis is not supported", row->name);
	linear = strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0;
	if (strcmp(ctm, "pytorch_half_pixel") == 0)
		for (int i = 2; i < 4; i++) {
			int64_t o = ns ? (int64_t)floor((double)x->v->type.dims[i] * sc[i]) : sz[i];

			if (o == 1 && x->v->type.dims[i] != 1)
				return fail(im, "pytorch_half_pixel to a size of 1 samples the "
					    "first row, PyTorch the middle one: not lowered");
		}
	if (strcmp(mode, "nearest") == 0) {
		if (strcmp(ctm, "asymmetric") || strcmp(nm, "floor"))
			return fail(im, "nearest Resize with coordinate_transformation_mode '%s' "
				    "and nearest_mode '%s' is not supported (asymmetric and floor "
				    "are: PyTorch's nearest)", ctm, nm);
	} else if (linear) {
		if (strcmp(ctm, "align_corners") == 0)
			align = true;
		else if (strcmp(ctm, "pytorch_half_pixel") && strcmp(ctm, "half_pixel"))
			return fail(im, "linear Resize with coordinate_transformation_mode '%s' is "
				    "not supported (align_corners, half_pixel and "
				    "pytorch_half_pixel are)", ctm);
	} else {
		return fail(im, "%s mode '%s' is not supported", row->name, mode);
	}
	a_val(im, x);
	if (ns) {
		Lit items[2];

		a_none(im);
		for (int i = 0; i < 2; i++) {
			items[i] = lit(im, L_FLOAT);
			items[i].u.f = sc[2 + i];
		}
		push(im, ir_list(im->c, items, 2, (uint32_t)im->k));
	} else {
		a_ints(im, sz + 2, 2);
		a_none(im);
	}
	a_str(im, linear ? "bilinear" : "nearest");
	if (linear)
		a_bool(im, align);
	else
		a_none(im);
	return emit_result(im, "interpolate");
}

/* DepthToSpace in CRD mode is torch's pixel_shuffle (DCR, the default, orders the channels
 * the other way) */
static bool
cv_depth_to_space(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t bs = attr_int(im, "blocksize", 0);
	const char *mode = attr_str(im, "mode", "DCR");

	(void)row;
	if (!x || im->failed)
		return false;
	if (strcmp(mode, "CRD") != 0)
		return fail(im, "DepthToSpace mode '%s' is not supported (CRD is: PyTorch's "
			    "pixel_shuffle)", mode);
	a_val(im, x);
	a_int(im, bs);
	return emit_result(im, "pixel_shuffle");
}

static bool
cv_lrn(Imp *im, const OnnxOp *row)
{
	Val *x = in_rt(im, 0);
	int64_t size = attr_int(im, "size", 0);
	double alpha = attr_float(im, "alpha", 1e-4), beta = attr_float(im, "beta", 0.75),
	       bias = attr_float(im, "bias", 1.0);

	(void)row;
	if (!x || im->failed)
		return false;
	a_val(im, x);
	a_int(im, size);
	a_float(im, alpha);
	a_float(im, beta);
	a_float(im, bias);
	return emit_result(im, "local_response_norm");
}

/* The op table: one row per ONNX op (sorted by name for the reader). */
static const OnnxOp onnx_ops[] = {
	{"Abs", cv_unary, "abs"},
	{"Add", cv_arith, "add"},
	{"AveragePool", cv_pool, "avg_pool2d"},
	{"BatchNormalization", cv_batch_norm, NULL},
	{"Cast", cv_cast, NULL},
	{"Ceil", cv_unary, "ceil"},
	{"Clip", cv_clip, NULL},
	{"Concat", cv_concat, NULL},
	{"Constant", cv_constant, NULL},
	{"ConstantOfShape", cv_constant_of_shape, NULL},
	{"Conv", cv_conv, NULL},
	{"ConvTranspose", cv_conv_transpose, NULL},
	{"DepthToSpace", cv_depth_to_space, NULL},
	{"Div", cv_arith, "div"},
	{"Dropout", cv_identity, NULL},
	{"Elu", cv_leaky, "elu"},
	{"Erf", cv_unary, "erf"},
	{"Exp", cv_unary, "exp"},
	{"Flatten", cv_flatten, NULL},
	{"Floor", cv_unary, "floor"},
	{"Gather", cv_gather, NULL},
	{"Gemm", cv_gemm, NULL},
	{"GlobalAveragePool", cv_global_pool, "adaptive_avg_pool2d"},
	{"GlobalMaxPool", cv_global_pool, "adaptive_max_pool2d"},
	{"HardSigmoid", cv_hardsigmoid, NULL},
	{"HardSwish", cv_unary, "hardswish"},
	{"Identity", cv_identity, NULL},
	{"InstanceNormalization", cv_instance_norm, NULL},
	{"LRN", cv_lrn, NULL},
	{"LeakyRelu", cv_leaky, "leaky_relu"},
	{"Log", cv_unary, "log"},
	{"LogSoftmax", cv_softmax, "log_softmax"},
	{"MatMul", cv_matmul, NULL},
	{"Max", cv_minmax, "maximum"},
	{"MaxPool", cv_pool, "max_pool2d"},
	{"Min", cv_minmax, "minimum"},
	{"Mul", cv_arith, "mul"},
	{"Neg", cv_unary, "neg"},
	{"PRelu", cv_prelu, NULL},
	{"Pad", cv_pad, NULL},
	{"Pow", cv_arith, "pow"},
	{"Reciprocal", cv_unary, "reciprocal"},
	{"ReduceMax", cv_reduce, "amax"},
	{"ReduceMean", cv_reduce, "mean"},
	{"ReduceMin", cv_reduce, "amin"},
	{"ReduceSum", cv_reduce, "sum"},
	{"Relu", cv_unary, "relu"},
	{"Reshape", cv_reshape, NULL},
	{"Resize", cv_resize, NULL},
	{"Shape", cv_shape, NULL},
	{"Sigmoid", cv_unary, "sigmoid"},
	{"Slice", cv_slice, NULL},
	{"Softmax", cv_softmax, "softmax"},
	{"Softplus", cv_unary, "softplus"},
	{"Softsign", cv_unary, "softsign"},
	{"Split", cv_split, NULL},
	{"Sqrt", cv_unary, "sqrt"},
	{"Squeeze", cv_squeeze, NULL},
	{"Sub", cv_arith, "sub"},
	{"Tanh", cv_unary, "tanh"},
	{"Transpose", cv_transpose, NULL},
	{"Unsqueeze", cv_unsqueeze, NULL},
	{"Upsample", cv_resize, NULL},
};

static const OnnxOp *
op_row(const char *name)
{
	size_t lo = 0, hi = sizeof onnx_ops / sizeof *onnx_ops;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(name, onnx_ops[mid].name);

		if (r == 0)
			return &onnx_ops[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void
onnx_list_ops(FILE *f)
{
	for (size_t i = 0; i < sizeof onnx_ops / sizeof *onnx_ops; i++)
		fprintf(f, "%s\n", onnx_ops[i].name);
}

/* ---- scopes from node names -------------------------------------------------------------- */

static void
scope_event(Imp *im, Scope *s, bool is_return)
{
	ScopeEvent e = {s, im->c->g.nidx, is_return};

	vec_push(&im->c->g.events, e);
}

static void
scope_open(Imp *im, const char *comp)
{
	Ctx *c = im->c;
	Scope *s = NEW(&c->arena, Scope), *p = im->scope;
	const char *pn = p ? p->name : "";
	size_t pl = strlen(pn), cl = strlen(comp);
	char *q;
	const char *last = strrchr(pn, '.');
	size_t stem = last ? (size_t)(last - pn) + 1 : 0;

	/* torch names a child of a Sequential "layer1.0" under "layer1": already qualified */
	if (pl && strncmp(comp, pn + stem, pl - stem) == 0 && comp[pl - stem] == '.') {
		q = arena_alloc(&c->arena, stem + cl + 1);
		memcpy(q, pn, stem);
		memcpy(q + stem, comp, cl + 1);
	} else {
		q = arena_alloc(&c->arena, pl + cl + 2);
		memcpy(q, pn, pl);
		q[pl] = pl ? '.' : 0;
		memcpy(q + pl + (pl != 0), comp, cl + 1);
	}
	s->name = str(im, q);
	s->cls = str(im, "onnx");
	s->parent = p;
	s->loc = here(im);
	s->depth = p ? p->depth + 1 : 1;
	s->id = c->g.nscopes++;
	im->scope = s;
	vec_push(&im->path, str(im, comp));
	scope_event(im, s, false);
}

static void
scope_close(Imp *im)
{
	scope_event(im, im->scope, true);
	im->scope = im->scope->parent;
	im->path.n--;
}

/* Open and close scopes so that the node's name's directory components are open (the root
 * scope, "", stays open below them). */
static void
scopes_for(Imp *im, const char *name)
{
	const char *comps[64];
	char buf[1024];
	size_t n = 0, keep = 1, len = name ? strlen(name) : 0;

	if (len && name[0] == '/' && len < sizeof buf) {
		char *p, *slash;

		memcpy(buf, name + 1, len);
		for (p = buf; (slash = strchr(p, '/')) && n < 63; p = slash + 1) {
			*slash = 0;
			if (*p)
				comps[n++] = str(im, p);
		}
	}
	while (keep < im->path.n && keep - 1 < n && im->path.v[keep] == comps[keep - 1])
		keep++;
	while (im->path.n > keep)
		scope_close(im);
	for (size_t i = keep - 1; i < n; i++)
		scope_open(im, comps[i]);
}

/* ---- the graph --------------------------------------------------------------------------- */

static uint32_t
origin_input(const OnnxModel *m, size_t i) { return (uint32_t)(m->nodes.n + i); }

static uint32_t
origin_output(const OnnxModel *m, size_t i)
{
	return (uint32_t)(m->nodes.n + m->inputs.n + m->initializers.n + i);
}

static void
read_inputs(Imp *im)
{
	Ctx *c = im->c;
	OnnxModel *m = im->m;

	for (size_t i = 0; i < m->inputs.n; i++) {
		const Onnx__ValueInfoProto *vi = m->inputs.v[i];
		const Onnx__TypeProto__Tensor *tt = vi->type ? vi->type->tensor_type : NULL;
		Loc loc = {origin_input(m, i), origin_input(m, i) + 1};
		int64_t dims[MAX_DIMS];
		int nd, dt;
		Value *v;
		Val *x;
		const char *dynamic = NULL;
		char buf[TYPE_STR_MAX];

		if (!vi->name || map_get(&im->vals, (uintptr_t)str(im, vi->name)))
			continue; /* an initializer listed as an input (IR version 3) */
		if (!tt || !tt->shape) {
			error_at(c, loc, "the input has no tensor type with a shape");
			continue;
		}
		dt = tt->elem_type == ONNX_FLOAT ? DT_F32 : -1;
		if (dt < 0) {
			error_at(c, loc, "input element type %d is not supported (FLOAT is)",
				 tt->elem_type);
			continue;
		}
		nd = (int)tt->shape->n_dim;
		if (nd > MAX_DIMS) {
			error_at(c, loc, "more than %d dimensions", MAX_DIMS);
			continue;
		}
		for (int d = 0; d < nd; d++) {
			const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];

			dims[d] = dim->has_dim_value && dim->dim_value > 0 ? dim->dim_value : 1;
			if (!(dim->has_dim_value && dim->dim_value > 0) && !dynamic)
				dynamic = dim->dim_param && *dim->dim_param ? dim->dim_param : "?";
		}
		v = NEW(&c->arena, Value);
		v->kind = VK_INPUT;
		v->name = str(im, vi->name);
		v->pos = loc.begin;
		v->type = type_make(c, dt, dims, nd);
		v->type.pos = loc.begin;
		{
			int64_t bytes;

			if (!type_bytes(&v->type, &bytes)) {
				error_at(c, loc, "the input's size overflows");
				continue;
			}
		}
		v->handle = im->next_handle++;
		v->alias = v;
		c->g.max_handle = im->next_handle;
		vec_push(&c->g.inputs, v);
		frontend_input(c, v);
		x = val_new(im, vi->name);
		x->v = v;
		x->handle = v->handle;
		if (dynamic && !c->input_shapes.usage_error) {
			bool set = false;

			for (size_t k = 0; k < c->input_shapes.n; k++)
				set |= c->input_shapes.v[k].input == v;
			if (!set)
				note_at(c, loc,
					"dimension '%s' is not fixed: taken as 1, giving %s "
					"(--input %s=DIMS sets it)",
					dynamic, type_str(&v->type, buf, sizeof buf), vi->name);
		}
	}
}

static void
read_outputs(Imp *im)
{
	Ctx *c = im->c;
	OnnxModel *m = im->m;

	for (size_t i = 0; i < m->outputs.n; i++) {
		const Onnx__ValueInfoProto *vo = m->outputs.v[i];
		Loc loc = {origin_output(m, i), origin_output(m, i) + 1};
		Val *x = vo->name ? map_get(&im->vals, (uintptr_t)str(im, vo->name)) : NULL;
		Output o = {0};

		if (!x) {
			error_at(c, loc, "no node writes the output");
			continue;
		}
		if (x->poisoned)
			continue;
		if (!x->v) {
			error_at(c, loc, "the output is a constant; a Caffe net computes every "
				 "output");
			continue;
		}
		o.ref.kind = L_HANDLE;
		o.ref.pos = loc.begin;
		o.ref.u.i = x->handle;
		o.name = str(im, vo->name);
		o.loc = loc;
		vec_push(&c->g.outputs, o);
	}
}

static void
read_node(Imp *im)
{
	Onnx__NodeProto *n = im->node;
	const OnnxOp *row;
	bool skip = false;
	int errors;

	im->attr_read = 0;
	im->failed = false;
	im->args.n = 0;
	if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) {
		fail(im, "op %s of domain '%s' is not supported (only the default domain)",
		     n->op_type ? n->op_type : "?", n->domain);
		goto poison;
	}
	if (n->n_attribute > 64) {
		fail(im, "a node with %zu attributes (at most 64)", n->n_attribute);
		goto poison;
	}
	if (!n->op_type || !(row = op_row(n->op_type))) {
		fail(im, "op %s is not supported", n->op_type ? n->op_type : "(none)");
		goto poison;
	}
	for (size_t i = 0; i < n->n_input; i++) {
		Val *x;

		if (!*n->input[i])
			continue;
		x = map_get(&im->vals, (uintptr_t)str(im, n->input[i]));
		if (!x) {
			uintptr_t later = (uintptr_t)map_get(&im->writers,
							     (uintptr_t)str(im, n->input[i]));
			const Onnx__NodeProto *w = later ? im->m->nodes.v[later - 1] : NULL;

			if (w)
				fail(im, "input %zu ('%s') is written by a later node, #%zu "
				     "('%s'): the nodes are not in topological order, or they form "
				     "a cycle",
				     i, n->input[i], (size_t)later - 1, w->name ? w->name : "");
			else
				fail(im, "input %zu ('%s') is not defined: no initializer, graph "
				     "input or node writes it", i, n->input[i]);
			goto poison;
		}
		skip |= x->poisoned;
	}
	if (skip)
		goto poison;
	scopes_for(im, n->name);
	errors = im->c->nerrors;
	if (!row->fn(im, row) || im->failed) {
		if (im->c->nerrors == errors && !im->c->stopped)
			fail(im, "internal error: the node was not converted, and no reason was "
			     "given (please report this)");
		goto poison;
	}
	for (size_t i = 0; i < n->n_attribute; i++)
		if (!(im->attr_read >> i & 1)) {
			fail(im, "attribute '%s' of %s is not supported",
			     n->attribute[i]->name ? n->attribute[i]->name : "", n->op_type);
			goto poison;
		}
	return;
poison:
	/* as the parser does for a line that fails: its computed inputs count as read (no
	 * "not read by any op" after the error) */
	im->args.n = 0;
	for (size_t i = 0; i < n->n_input; i++) {
		Val *x = *n->input[i] ? map_get(&im->vals, (uintptr_t)str(im, n->input[i])) : NULL;

		if (x && x->v && !x->poisoned)
			a_val(im, x);
	}
	frontend_poison(im->c, im->args.v, im->args.n, NULL, 0);
	im->args.n = 0;
	for (size_t i = 0; i < n->n_output; i++)
		if (*n->output[i]) {
			Val *x = map_get(&im->vals, (uintptr_t)str(im, n->output[i]));

			if (!x)
				x = val_new(im, n->output[i]);
			x->poisoned = true;
		}
}

bool
onnx_import(Ctx *c)
{
	OnnxModel *m = c->onnx;
	Imp im = {0};
	int errors = c->nerrors;

	if ((uint64_t)m->nodes.n + m->inputs.n + m->initializers.n + m->outputs.n >= UINT32_MAX) {
		diag_file(c, DIAG_ERROR, c->path, "the model has too many nodes and values");
		return false;
	}
	ops_init();
	im.c = c;
	im.m = m;
	c->g.version = 1;
	weights_adopt(c, NULL); /* the model's tensors, bound where they lie */
	for (size_t i = 0; i < m->initializers.n; i++) {
		Val *x = val_new(&im, m->initializers.v[i].name ? m->initializers.v[i].name : "");

		x->k = &m->initializers.v[i];
		x->is_init = true;
	}
	for (size_t k = 0; k < m->nodes.n; k++)
		for (size_t i = 0; i < m->nodes.v[k]->n_output; i++)
			map_put(&im.writers, (uintptr_t)str(&im, m->nodes.v[k]->output[i]),
				(void *)(uintptr_t)(k + 1));
	for (size_t i = 0; i < m->value_info.n; i++)
		if (m->value_info.v[i]->name)
			map_put(&im.vinfo, (uintptr_t)str(&im, m->value_info.v[i]->name),
				m->value_info.v[i]);
	for (size_t i = 0; i < m->outputs.n; i++)
		if (m->outputs.v[i]->name)
			map_put(&im.vinfo, (uintptr_t)str(&im, m->outputs.v[i]->name),
				m->outputs.v[i]);
	read_inputs(&im);
	/* the root scope, as the recorder's `call "" Model` */
	{
		Scope *root = NEW(&c->arena, Scope);

		root->name = str(&im, "");
		root->cls = str(&im, "onnx");
		root->loc = NO_LOC;
		root->depth = 1;
		root->id = c->g.nscopes++;
		im.scope = root;
		vec_push(&im.path, root->name);
		scope_event(&im, root, false);
	}
	for (im.k = 0; im.k < m->nodes.n && !c->stopped; im.k++) {
		im.node = m->nodes.v[im.k];
		read_node(&im);
	}
	while (im.path.n)
		scope_close(&im);
	im.k = m->nodes.n;
	read_outputs(&im);
	map_free(&im.vals);
	map_free(&im.writers);
	map_free(&im.vinfo);
	free(im.args.v);
	free(im.path.v);
	return c->nerrors == errors;
}
