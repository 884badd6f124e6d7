/* ir.c: dtypes, types, literals and nodes of the IR; the printers shared by the emitters. */
#include "ptcc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const dtype_name[DT_NTYPES] = {"f16", "bf16", "f32", "f64", "i8",
					   "i16", "i32",  "i64", "u8",  "bool"};
const char *const dtype_stname[DT_NTYPES] = {"F16", "BF16", "F32", "F64", "I8",
					     "I16", "I32",  "I64", "U8",  "BOOL"};
const uint8_t dtype_size[DT_NTYPES] = {2, 2, 4, 8, 1, 2, 4, 8, 1, 1};

int
dtype_lookup(const char *name)
{
	int i;

	/* the common one first: every annotation of a float model */
	if (name[0] == 'f' && name[1] == '3' && name[2] == '2' && name[3] == 0)
		return DT_F32;
	for (i = 0; i < DT_NTYPES; i++)
		if (strcmp(name, dtype_name[i]) == 0)
			return i;
	return -1;
}

bool
dtype_is_float(int dt)
{
	return dt == DT_F16 || dt == DT_BF16 || dt == DT_F32 || dt == DT_F64;
}

bool
type_known(const Type *t)
{
	return t->dtype != DT_UNKNOWN;
}

bool
type_equal(const Type *a, const Type *b)
{
	return a->dtype == b->dtype && a->ndim == b->ndim &&
	       (a->dims == b->dims || memcmp(a->dims, b->dims, a->ndim * sizeof *a->dims) == 0);
}

bool
type_numel(const Type *t, int64_t *numel)
{
	int64_t n = 1;
	int i;

	for (i = 0; i < t->ndim; i++)
		if (!ck_mul(n, t->dims[i], &n))
			return false;
	*numel = n;
	return true;
}

bool
type_bytes(const Type *t, int64_t *bytes)
{
	int64_t n;

	return type_numel(t, &n) && t->dtype < DT_NTYPES && ck_mul(n, dtype_size[t->dtype], bytes);
}

char *
type_str(const Type *t, char *buf, size_t size)
{
	size_t len;
	int i;

	if (!type_known(t)) {
		snprintf(buf, size, "?");
		return buf;
	}
	len = (size_t)snprintf(buf, size, "%s[", dtype_name[t->dtype]);
	for (i = 0; i < t->ndim && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "",
					(long long)t->dims[i]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
	return buf;
}

Type
type_make(Ctx *c, int dtype, const int64_t *dims, int ndim)
{
	Type t;

	t.dtype = (uint8_t)dtype;
	t.ndim = (uint8_t)ndim;
	t.pad_ = 0;
	t.pos = UINT32_MAX;
	t.dims = intern_words(&c->shapes, dims, (size_t)ndim * sizeof *dims);
	return t;
}

/* A Python slice start:stop:step over an axis of `size`, clamped as PyTorch clamps it: the first
 * index, the number of elements and the step; false unless the bounds are integers or none and
 * the step is positive. */
bool
lit_slice(const Lit *s, int64_t size, int64_t *first, int64_t *len, int64_t *step)
{
	int64_t start = 0, stop = size;

	*step = 1;
	for (int i = 0; i < 3; i++)
		if (s->u.list[i].kind != L_INT && s->u.list[i].kind != L_NONE)
			return false;
	if (s->u.list[2].kind == L_INT)
		*step = s->u.list[2].u.i;
	if (s->u.list[0].kind == L_INT)
		start = s->u.list[0].u.i;
	if (s->u.list[1].kind == L_INT)
		stop = s->u.list[1].u.i;
	if (*step <= 0)
		return false;
	if (start < 0)
		start = start < -size ? 0 : start + size;
	if (stop < 0)
		stop = stop < -size ? 0 : stop + size;
	if (start > size)
		start = size;
	if (stop > size)
		stop = size;
	*first = start;
	*len = stop <= start ? 0 : ceil_div(stop - start, *step);
	return true;
}

bool
lit_as_int(const Lit *l, int64_t *i)
{
	if (l->kind != L_INT)
		return false;
	*i = l->u.i;
	return true;
}

bool
lit_as_float(const Lit *l, double *f)
{
	if (l->kind == L_INT)
		*f = (double)l->u.i;
	else if (l->kind == L_FLOAT)
		*f = l->u.f;
	else
		return false;
	return true;
}

bool
lit_int_list(const Lit *l, int64_t *out, int n)
{
	int i;

	if (l->kind == L_INT) {
		for (i = 0; i < n; i++)
			out[i] = l->u.i;
		return true;
	}
	if (l->kind != L_LIST)
		return false;
	if (l->n == 1 && n > 1 && l->u.list[0].kind == L_INT) {
		for (i = 0; i < n; i++)
			out[i] = l->u.list[0].u.i;
		return true;
	}
	if ((int)l->n != n)
		return false;
	for (i = 0; i < n; i++) {
		if (l->u.list[i].kind != L_INT)
			return false;
		out[i] = l->u.list[i].u.i;
	}
	return true;
}

const char *
lit_kind_name(const Lit *l)
{
	switch (l->kind) {
	case L_ABSENT: return "nothing";
	case L_NONE: return "none";
	case L_BOOL: return "a bool";
	case L_INT: return "an integer";
	case L_FLOAT: return "a float";
	case L_STR: return "a string";
	case L_SYM: return "a symbol";
	case L_ELLIPSIS: return "'...'";
	case L_LIST: return "a list";
	case L_SLICE: return "a slice";
	case L_HANDLE: case L_PARAM: case L_VALUE: return "a tensor";
	}
	return "?";
}

Node *
ir_node_new(Ctx *c, int op, int nres, Loc loc)
{
	const OpInfo *o = &optab[op];
	Node *n = arena_zalloc(&c->arena, sizeof *n + (size_t)nres * sizeof(Value));
	int i;

	n->op = (uint32_t)op & 0xfff;
	n->nres = (uint32_t)nres & 0xff;
	n->nslot = o->nparams & 0xff;
	n->loc = loc;
	n->arg = arena_alloc(&c->arena, (size_t)o->nparams * sizeof *n->arg);
	for (i = 0; i < o->nparams; i++)
		n->arg[i] = (Lit){.kind = L_ABSENT, .pos = UINT32_MAX};
	for (i = 0; i < nres; i++) {
		n->res[i].def = n;
		n->res[i].res = (uint16_t)i;
		n->res[i].kind = VK_OP;
		n->res[i].type.dtype = DT_UNKNOWN;
		n->res[i].type.pos = UINT32_MAX;
		n->res[i].alias = &n->res[i];
	}
	return n;
}

void
ir_append(Ctx *c, Node *n)
{
	n->idx = c->g.nidx++;
	if (c->g.last)
		c->g.last->next = n;
	else
		c->g.first = n;
	c->g.last = n;
	c->g.nnodes++;
}

/* Python's repr(float): the shortest digits that read back exactly; fixed notation when the decimal
 * exponent is in [-4, 16), else d.ddde±XX; always a '.' or an exponent. */
void
ir_print_float(FILE *f, double d)
{
	char buf[40], digits[24], out[64];
	int prec, exp, nd, i, k = 0;
	char *e;

	if (isnan(d)) {
		fputs("nan", f);
		return;
	}
	if (isinf(d)) {
		fputs(d < 0 ? "-inf" : "inf", f);
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* buf is [-]d[.ddd]e[+-]XX */
	e = strchr(buf, 'e');
	exp = atoi(e + 1);
	nd = 0;
	for (i = 0; buf + i < e; i++)
		if (buf[i] >= '0' && buf[i] <= '9')
			digits[nd++] = buf[i];
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (buf[0] == '-')
		out[k++] = '-';
	if (exp >= -5 && exp < 16) {
		/* Python switches at 1e-05 (exp -5 is written 1e-05), so fixed only for exp >=
		 * -4 */
		if (exp < -4)
			goto sci;
		if (exp < 0) {
			out[k++] = '0';
			out[k++] = '.';
			for (i = 0; i < -exp - 1; i++)
				out[k++] = '0';
			for (i = 0; i < nd; i++)
				out[k++] = digits[i];
		} else {
			for (i = 0; i <= exp; i++)
				out[k++] = i < nd ? digits[i] : '0';
			out[k++] = '.';
			if (nd > exp + 1)
				for (i = exp + 1; i < nd; i++)
					out[k++] = digits[i];
			else
				out[k++] = '0';
		}
		out[k] = 0;
		fputs(out, f);
		return;
	}
sci:
	out[k++] = digits[0];
	if (nd > 1) {
		out[k++] = '.';
		for (i = 1; i < nd; i++)
			out[k++] = digits[i];
	}
	snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", exp < 0 ? '-' : '+',
		 exp < 0 ? -exp : exp);
	fputs(out, f);
}

void
ir_print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		switch (ch) {
		case '\\': fputs("\\\\", f); break;
		case '"': fputs("\\\"", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\x%02x", ch);
			else if (ch >= 0x80) {
				/* a valid UTF-8 sequence stands for itself; a stray byte is
				 * escaped */
				int len = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 0, i;
				bool ok = len > 0 && ch >= 0xc2 && ch <= 0xf4;

				for (i = 1; ok && i < len; i++)
					ok = ((unsigned char)s[i] & 0xc0) == 0x80;
				if (ok && len == 3) {
					unsigned char c1 = (unsigned char)s[1];

					ok = !(ch == 0xe0 && c1 < 0xa0) &&
					     !(ch == 0xed && c1 > 0x9f);
				}
				if (ok && len == 4) {
					unsigned char c1 = (unsigned char)s[1];

					ok = !(ch == 0xf0 && c1 < 0x90) &&
					     !(ch == 0xf4 && c1 > 0x8f);
				}
				if (ok) {
					fwrite(s, 1, (size_t)len, f);
					s += len - 1;
				} else
					fprintf(f, "\\x%02x", ch);
			} else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

/* name-chars: ASCII letters, digits, '_', '.', '-', and valid UTF-8 (checked by printing as a
 * string when in doubt). */
bool
name_is_path(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!*p)
		return false;
	for (; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-')
			continue;
		return false; /* non-ASCII names are quoted: always safe */
	}
	return true;
}

void
ir_print_name(FILE *f, const char *s)
{
	if (name_is_path(s))
		fputs(s, f);
	else
		ir_print_string(f, s);
}

void
ir_print_param_name(FILE *f, const char *s)
{
	fputc('$', f);
	ir_print_name(f, s);
}

void
ir_print_lit(FILE *f, const Lit *l, bool ssa)
{
	uint32_t i;

	switch (l->kind) {
	case L_ABSENT: fputs("<absent>", f); break;
	case L_NONE: fputs("none", f); break;
	case L_BOOL: fputs(l->u.i ? "true" : "false", f); break;
	case L_INT: fprintf(f, "%lld", (long long)l->u.i); break;
	case L_FLOAT: ir_print_float(f, l->u.f); break;
	case L_STR: ir_print_string(f, l->u.s); break;
	case L_SYM: fputs(l->u.s, f); break;
	case L_ELLIPSIS: fputs("...", f); break;
	case L_LIST:
		fputc('[', f);
		for (i = 0; i < l->n; i++) {
			if (i)
				fputs(", ", f);
			ir_print_lit(f, &l->u.list[i], ssa);
		}
		fputc(']', f);
		break;
	case L_SLICE:
		fputs("slice(", f);
		for (i = 0; i < 3; i++) {
			if (i)
				fputs(", ", f);
			ir_print_lit(f, &l->u.list[i], ssa);
		}
		fputc(')', f);
		break;
	case L_HANDLE: fprintf(f, "%%%lld", (long long)l->u.i); break;
	case L_PARAM: ir_print_param_name(f, l->u.s); break;
	case L_VALUE: {
		const Value *v = l->u.v;

		if (v->kind == VK_PARAM || v->kind == VK_CONST)
			ir_print_param_name(f, v->name);
		else
			fprintf(f, "%%%u", ssa ? v->id : v->handle);
		break;
	}
	}
}

static bool
lit_is_scalar(const Lit *l)
{
	return l->kind == L_NONE || l->kind == L_BOOL || l->kind == L_INT || l->kind == L_FLOAT ||
	       l->kind == L_STR || l->kind == L_SYM || l->kind == L_ELLIPSIS;
}

Lit
ir_list(Ctx *c, Lit *items, size_t n, uint32_t pos)
{
	Lit l = {.kind = L_LIST, .pos = pos};
	bool scalar = true;
	size_t i;
	Lit *p;

	if (n > MAX_LIST) {
		Loc l1 = {pos, pos + 1};

		error_at(c, l1, "a list of more than %d elements", MAX_LIST);
		n = 0;
	}
	for (i = 0; i < n && scalar; i++)
		scalar = lit_is_scalar(&items[i]);
	if (scalar) {
		/* all-scalar lists ([1, 1], [2, 3]) are shared; their elements keep no position */
		for (i = 0; i < n; i++)
			items[i].pos = UINT32_MAX;
		p = (Lit *)intern_words(&c->lists, items, n * sizeof(Lit));
	} else {
		p = NEWARRAY(&c->arena, Lit, n ? n : 1);
		memcpy(p, items, n * sizeof(Lit));
	}
	l.n = (uint32_t)n;
	l.u.list = p;
	return l;
}

Type
ir_type(Ctx *c, const char *dtype, Loc dtype_loc, const int64_t *dims, size_t nd, Loc loc)
{
	int dt = dtype_lookup(dtype), i;
	int64_t numel = 1, bytes;
	Type t = {DT_UNKNOWN, 0, 0, UINT32_MAX, NULL};

	if (dt < 0) {
		const char *best = NULL;

		for (i = 0; i < DT_NTYPES; i++)
			if (edit_distance(dtype, dtype_name[i], 1) <= 1)
				best = dtype_name[i];
		if (best)
			error_at(c, dtype_loc, "unknown dtype '%s'; did you mean '%s'?", dtype,
				 best);
		else
			error_at(c, dtype_loc, "unknown dtype '%s'", dtype);
		return t;
	}
	if (nd > MAX_DIMS) {
		error_at(c, loc, "a type with %zu dimensions (at most %d)", nd, MAX_DIMS);
		return t;
	}
	for (i = 0; i < (int)nd; i++) {
		if (dims[i] < 0) {
			error_at(c, loc, "negative dimension %lld in a type", (long long)dims[i]);
			return t;
		}
		if (!ck_mul(numel, dims[i], &numel) || !ck_mul(numel, dtype_size[dt], &bytes)) {
			error_at(c, loc, "tensor size overflows: more than 2^63 bytes");
			return t;
		}
	}
	t = type_make(c, dt, dims, (int)nd);
	t.pos = dtype_loc.begin;
	return t;
}
