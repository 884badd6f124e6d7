/* ops.c: the op table built from ops.def at compile time; lookup and argument binding. */
#include "ptcc.h"

#include <stdlib.h>
#include <string.h>

/* ops.def's parameter types: the name a row uses, the mask op_bind checks, the spec's spelling. */
#define TYPES(X) \
	X(T, M_TENSOR, "T") \
	X(T_opt, M_TENSOR | M_NONE, "T?") \
	X(Ts, M_TLIST, "T[]") \
	X(T_or_scalar, M_TENSOR | M_INT | M_FLOAT | M_BOOL, "T|scalar") \
	X(T_or_scalar_pos, M_TENSOR | M_INT | M_FLOAT | M_BOOL | M_POS, "T|scalar") \
	X(int, M_INT, "int") \
	X(int_opt, M_INT | M_NONE, "int?") \
	X(int_or_T_opt, M_INT | M_TENSOR | M_NONE, "int|T?") \
	X(ints, M_INT | M_INTLIST, "int[]") \
	X(ints_pos, M_INT | M_INTLIST | M_POS, "int[]") \
	X(ints_opt, M_INT | M_INTLIST | M_NONE, "int[]?") \
	X(ints_or_str, M_INT | M_INTLIST | M_STR, "int[]|str") \
	X(ints_or_list, M_INT | M_INTLIST | M_LIST, "int[]|list") \
	X(float, M_INT | M_FLOAT, "float") \
	X(float_opt, M_INT | M_FLOAT | M_NONE, "float?") \
	X(floats_opt, M_INT | M_FLOAT | M_FLOATLIST | M_NONE, "float[]?") \
	X(bool, M_BOOL, "bool") \
	X(bool_opt, M_BOOL | M_NONE, "bool?") \
	X(str, M_STR, "str") \
	X(str_opt, M_STR | M_NONE, "str?") \
	X(sym, M_SYM, "sym") \
	X(sym_opt, M_SYM | M_NONE, "sym?") \
	X(scalar, M_INT | M_FLOAT | M_BOOL, "scalar") \
	X(any, M_ANY, "any") \
	X(any_pos, M_ANY | M_POS, "any")

#define X(name, mask, text) static const char type_text_##name[] = text;
TYPES(X)
#undef X
#define X(name, mask, text) type_mask_##name = (mask),
enum { TYPES(X) };
#undef X

/* Each op's parameters, params_conv2d[] and so on. */
#define DEFAULT(k, field) {.kind = (k), .pos = UINT32_MAX, field}
#define REQ DEFAULT(L_ABSENT, .n = 0)
#define NONE DEFAULT(L_NONE, .n = 0)
#define TRUE DEFAULT(L_BOOL, .u.i = 1)
#define FALSE DEFAULT(L_BOOL, .u.i = 0)
#define I(v) DEFAULT(L_INT, .u.i = (v))
#define F(v) DEFAULT(L_FLOAT, .u.f = (v))
#define S(v) DEFAULT(L_STR, .u.s = (v))
#define Y(v) DEFAULT(L_SYM, .u.s = #v)
#define AA(pname, palias, ptype, pdef) \
	{#pname, #palias, type_mask_##ptype, type_text_##ptype, pdef},
#define A(pname, ptype, pdef) {#pname, NULL, type_mask_##ptype, type_text_##ptype, pdef},
#define OP(name, inplace, fl, sh, lo, layers, targets, params)         \
	static const OpParam params_##name[] = {params};               \
	_Static_assert(sizeof params_##name / sizeof *params_##name == \
			       sizeof(struct OpArgs_##name),           \
		       "ops.def: struct OpArgs_" #name " is padded; ARG() would be wrong");
#include "ops.def"
#undef OP
#undef A
#undef AA
#undef Y
#undef S
#undef F
#undef I
#undef FALSE
#undef TRUE
#undef NONE
#undef REQ
#undef DEFAULT

/* The table: one entry per row and one per in-place twin, in enum Op's order.  INPLACE(twin)
 * expands to two macro arguments, so TWIN_ROW picks TWIN or NO_TWIN by the row's inplace column. */
#define NPARAMS(op) (uint8_t)(sizeof params_##op / sizeof *params_##op)
#define INPLACE(twin) TWIN, twin
#define NO_INPLACE NO_TWIN, -
#define TWIN_ROW(...) TWIN_ROW_(__VA_ARGS__)
#define TWIN_ROW_(kind, twin, op, fl, sh) kind(twin, op, fl, sh)
#define TWIN(twin, op, fl, sh)      \
	{.name = #twin,             \
	 .flags = (fl) | F_INPLACE, \
	 .shape = sh,               \
	 .params = params_##op,     \
	 .nparams = NPARAMS(op),    \
	 .inplace = -1,             \
	 .base = OP_##op},
#define NO_TWIN(twin, op, fl, sh)
#define OP(op, ip, fl, sh, lo, layers, targets, args) \
	{.name = #op, .flags = (fl), .shape = sh, .params = params_##op, .nparams = NPARAMS(op), \
	 .inplace = -1, .base = -1}, \
	TWIN_ROW(ip, op, fl, sh)
OpInfo optab[OP_COUNT] = {
#include "ops.def"
};
#undef OP
#undef NO_TWIN
#undef TWIN
#undef TWIN_ROW_
#undef TWIN_ROW
#undef NO_INPLACE
#undef INPLACE
#undef NPARAMS

static bool ops_ready;
/* op_lookup and op_param_index are called once per op line and keyword with interned names: a small
 * cache keyed by the interned pointer skips the hashing and string compares. */
static struct { const char *name; int op; } op_cache[256];
static struct { const char *name; int op, slot; } param_cache[1024];
static int op_lookup_slow(const char *name);
static int op_param_index_slow(int op, const char *name);
static Map ops_by_hash; /* hash of the name -> index + 1 */

/* The columns that follow from the parameters: how many are written positionally (the leading
 * tensor parameters, or up to a _pos type), the `inplace` slot; a twin drops its op's trailing
 * `inplace`. */
static void
complete_row(OpInfo *o)
{
	int i;

	if (o->base >= 0 && o->nparams > 0 &&
	    strcmp(o->params[o->nparams - 1].name, "inplace") == 0)
		o->nparams--;
	for (i = 0; i < o->nparams; i++)
		if (strcmp(o->params[i].name, "inplace") == 0) {
			if (o->base >= 0 || i != o->nparams - 1)
				ptcc_die("ops.def: %s: `inplace` must be the last parameter",
					 o->name);
			o->inplace = (int8_t)i;
		}
	o->nlead = 0;
	while (o->nlead < o->nparams && (o->params[o->nlead].mask & (M_TENSOR | M_TLIST)))
		o->nlead++;
	for (i = 0; i < o->nparams; i++)
		if (o->params[i].mask & M_POS)
			o->nlead = (uint8_t)(i + 1);
}

void
ops_init(void)
{
	int i;

	/* the caches are keyed by pointers that belong to one compilation */
	memset(op_cache, 0, sizeof op_cache);
	memset(param_cache, 0, sizeof param_cache);
	if (ops_ready)
		return;
	ops_ready = true;
	for (i = 0; i < OP_COUNT; i++) {
		uint64_t h = hash_bytes(optab[i].name, strlen(optab[i].name));

		if (map_get(&ops_by_hash, h))
			ptcc_die("ops.def: %s: duplicate row", optab[i].name);
		map_put(&ops_by_hash, h, (void *)(uintptr_t)(i + 1));
		complete_row(&optab[i]);
	}
}

void
ops_fini(void)
{
	if (!ops_ready)
		return;
	map_free(&ops_by_hash);
	memset(op_cache, 0, sizeof op_cache);
	memset(param_cache, 0, sizeof param_cache);
	ops_ready = false;
}


int
op_lookup(const char *name)
{
	size_t h = ((uintptr_t)name >> 3) & 255;
	int op;

	if (op_cache[h].name == name)
		return op_cache[h].op;
	op = op_lookup_slow(name);
	op_cache[h].name = name;
	op_cache[h].op = op;
	return op;
}

static int
op_lookup_slow(const char *name)
{
	uintptr_t i = (uintptr_t)map_get(&ops_by_hash, hash_bytes(name, strlen(name)));

	if (i == 0 || strcmp(optab[i - 1].name, name) != 0)
		return -1;
	return (int)i - 1;
}

const char *
op_suggest(const char *name)
{
	size_t best = 3, d;
	const char *s = NULL;
	int i;

	/* within a quarter of the shorter name's length, plus one: 'conv2e' gets 'conv2d' and
	 * 'reul' 'relu', but 'lstm' gets neither 'lt' nor 'sum' */
	for (i = 0; i < OP_COUNT; i++) {
		size_t a = strlen(name), b = strlen(optab[i].name), limit = (a < b ? a : b) / 4 + 1;
		if (limit > best)
			limit = best;
		if ((d = edit_distance(name, optab[i].name, limit)) <= limit && (d < best || !s)) {
			best = d;
			s = optab[i].name;
		}
	}
	return s;
}

int
op_param_index(int op, const char *name)
{
	size_t h = (((uintptr_t)name >> 3) ^ ((size_t)op * 31)) & 1023;
	int slot;

	if (param_cache[h].name == name && param_cache[h].op == op)
		return param_cache[h].slot;
	slot = op_param_index_slow(op, name);
	param_cache[h].name = name;
	param_cache[h].op = op;
	param_cache[h].slot = slot;
	return slot;
}

static int
op_param_index_slow(int op, const char *name)
{
	const OpInfo *o = &optab[op];
	int i;

	for (i = 0; i < o->nparams; i++)
		if (strcmp(o->params[i].name, name) == 0 ||
		    (o->params[i].alias && strcmp(o->params[i].alias, name) == 0))
			return i;
	return -1;
}

const Lit *
op_arg(const Node *n, int slot)
{
	if (n->arg[slot].kind != L_ABSENT)
		return &n->arg[slot];
	return &optab[n->op].params[slot].def;
}

const Lit *
op_arg_named(const Node *n, const char *name)
{
	int i = op_param_index(n->op, name);

	if (i < 0)
		ptcc_die("op %s has no parameter %s", optab[n->op].name, name);
	return op_arg(n, i);
}

/* The mask bits a literal satisfies. */
static uint32_t
lit_mask(const Lit *l)
{
	uint32_t m = 0;
	size_t i;
	bool ints = true, nums = true, tensors = true;

	switch (l->kind) {
	case L_NONE: return M_NONE;
	case L_BOOL: return M_BOOL;
	case L_INT: return M_INT;
	case L_FLOAT: return M_FLOAT;
	case L_STR: return M_STR;
	case L_SYM: return M_SYM;
	case L_ELLIPSIS: return M_ELLIPSIS;
	case L_SLICE: return M_SLICE;
	case L_HANDLE: case L_PARAM: case L_VALUE: return M_TENSOR;
	case L_LIST:
		for (i = 0; i < l->n; i++) {
			int k = l->u.list[i].kind;

			ints &= k == L_INT;
			nums &= k == L_INT || k == L_FLOAT;
			tensors &= k == L_HANDLE || k == L_PARAM || k == L_VALUE;
		}
		m = M_LIST;
		if (ints)
			m |= M_INTLIST;
		if (nums)
			m |= M_FLOATLIST;
		if (tensors)
			m |= M_TLIST;
		return m;
	default: return 0;
	}
}

/* "an integer or a list of integers" */
static void
mask_describe(uint32_t m, char *buf, size_t size)
{
	static const struct { uint32_t bit; const char *text;
	} names[] = {
		{M_TENSOR, "a tensor"},
		{M_TLIST, "a list of tensors"},
		{M_INT, "an integer"},
		{M_FLOAT, "a float"},
		{M_INTLIST, "a list of integers"},
		{M_FLOATLIST, "a list of numbers"},
		{M_LIST, "a list"},
		{M_BOOL, "a bool"},
		{M_STR, "a string"},
		{M_SYM, "a symbol"},
		{M_NONE, "none"},
	};
	const char *parts[16];
	size_t n = 0, i, len = 0;

	if (m & M_FLOAT)
		m &= ~(uint32_t)M_INT;
	if (m & M_FLOATLIST)
		m &= ~(uint32_t)M_INTLIST;
	if (m & M_LIST)
		m &= ~(uint32_t)(M_INTLIST | M_FLOATLIST);
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (m & names[i].bit)
			parts[n++] = names[i].text;
	buf[0] = 0;
	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i == 0       ? ""
					: i == n - 1 ? " or "
						     : ", ",
					parts[i]);
}

bool
op_bind(Ctx *c, Node *n, const RawArg *args, size_t nargs)
{
	const OpInfo *o = &optab[n->op];
	size_t i, npos = 0;
	bool ok = true, seen_kw = false;
	int k;

	for (i = 0; i < nargs; i++) {
		const RawArg *a = &args[i];
		int slot;
		uint32_t m;

		if (!a->name) {
			if (seen_kw) {
				error_at(c, lit_loc(c, &a->v),
					 "positional argument after a keyword argument");
				ok = false;
				continue;
			}
			if (npos >= o->nparams) {
				error_at(c, lit_loc(c, &a->v),
					 "too many arguments: %s takes at most %d", o->name,
					 o->nparams);
				ok = false;
				break;
			}
			slot = (int)npos++;
		} else {
			seen_kw = true;
			slot = op_param_index(n->op, a->name);
			if (slot < 0) {
				const char *best = NULL;
				size_t bd = 3, d;

				for (k = 0; k < o->nparams; k++)
					if ((d = edit_distance(a->name, o->params[k].name, bd)) <
					    bd) {
						bd = d;
						best = o->params[k].name;
					}
				if (best)
					error_at(c, a->name_loc,
						 "%s has no argument '%s'; did you mean '%s'?",
						 o->name, a->name, best);
				else
					error_at(c, a->name_loc, "%s has no argument '%s'", o->name,
						 a->name);
				ok = false;
				continue;
			}
		}
		if (n->arg[slot].kind != L_ABSENT) {
			error_at(c, a->name ? a->name_loc : lit_loc(c, &a->v),
				 "argument '%s' of %s given twice", o->params[slot].name, o->name);
			ok = false;
			continue;
		}
		m = o->params[slot].mask;
		if (slot == 0 && (o->flags & F_INPLACE))
			m &= M_TENSOR; /* add_(1, %x) writes no tensor */
		if (!(m & M_ANY) && !(lit_mask(&a->v) & m) &&
		    !(a->v.kind == L_INT && (m & M_FLOAT))) {
			char want[256];

			mask_describe(m, want, sizeof want);
			error_at(c, lit_loc(c, &a->v), "argument '%s' of %s must be %s, not %s",
			         o->params[slot].name, o->name, want, lit_kind_name(&a->v));
			ok = false;
			continue;
		}
		n->arg[slot] = a->v;
	}
	if (!ok)
		return false;
	for (k = 0; k < o->nparams; k++)
		if (o->params[k].def.kind == L_ABSENT && n->arg[k].kind == L_ABSENT) {
			error_at(c, n->loc, "missing argument '%s' of %s", o->params[k].name,
				 o->name);
			ok = false;
		}
	return ok;
}
