/* ops.c: the op table built from ops.def; schema parsing, lookup and argument binding. */
#include "ptcc.h"

#include <stdlib.h>
#include <string.h>

OpInfo optab[OP_COUNT] = {
#define OP(name, flags, shape, schema) {#name, flags, shape, schema, NULL, 0, 0, -1},
#include "ops.def"
#undef OP
};

static bool ops_ready;
/* op_lookup and op_param_index are called once per op line and keyword with interned names: a small
 * cache keyed by the interned pointer skips the hashing and string compares. */
static struct { const char *name; int op; } op_cache[256];
static struct { const char *name; int op, slot; } param_cache[1024];
static int op_lookup_slow(const char *name);
static int op_param_index_slow(int op, const char *name);
static Map ops_by_hash; /* hash of the name -> index + 1 */
static Arena ops_arena;
static Intern ops_strings;

/* Parse one default value of a schema; ptcc_die on a malformed table (a bug, caught by any test). */
static Lit
parse_default(const char *op, const char *s)
{
	Lit l = {0};
	char *end;

	l.pos = UINT32_MAX;
	if (strcmp(s, "none") == 0)
		l.kind = L_NONE;
	else if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		l.kind = L_BOOL;
		l.u.i = s[0] == 't';
	} else if (s[0] == '"') {
		size_t n = strlen(s);

		if (n < 2 || s[n - 1] != '"')
			ptcc_die("ops.def: %s: bad default %s", op, s);
		l.kind = L_STR;
		l.u.s = intern(&ops_strings, s + 1, n - 2);
	} else if ((s[0] >= '0' && s[0] <= '9') || s[0] == '-') {
		if (strpbrk(s, ".eE")) {
			l.kind = L_FLOAT;
			l.u.f = strtod(s, &end);
		} else {
			l.kind = L_INT;
			l.u.i = strtoll(s, &end, 10);
		}
		if (*end)
			ptcc_die("ops.def: %s: bad default %s", op, s);
	} else {
		l.kind = L_SYM;
		l.u.s = intern(&ops_strings, s, strlen(s));
	}
	return l;
}

static uint32_t
parse_type(const char *op, const char *s)
{
	uint32_t mask = 0;
	char buf[64], *p, *save = NULL;
	size_t n = strlen(s);

	if (n >= sizeof buf)
		ptcc_die("ops.def: %s: type too long", op);
	memcpy(buf, s, n + 1);
	if (n > 0 && buf[n - 1] == '?') {
		mask |= M_NONE;
		buf[n - 1] = 0;
	}
	for (p = strtok_r(buf, "|", &save); p; p = strtok_r(NULL, "|", &save)) {
		if (strcmp(p, "T") == 0)
			mask |= M_TENSOR;
		else if (strcmp(p, "T[]") == 0)
			mask |= M_TLIST;
		else if (strcmp(p, "int") == 0)
			mask |= M_INT;
		else if (strcmp(p, "int[]") == 0)
			mask |= M_INT | M_INTLIST;
		else if (strcmp(p, "float") == 0)
			mask |= M_INT | M_FLOAT;
		else if (strcmp(p, "float[]") == 0)
			mask |= M_INT | M_FLOAT | M_FLOATLIST;
		else if (strcmp(p, "bool") == 0)
			mask |= M_BOOL;
		else if (strcmp(p, "str") == 0)
			mask |= M_STR;
		else if (strcmp(p, "sym") == 0)
			mask |= M_SYM;
		else if (strcmp(p, "scalar") == 0)
			mask |= M_INT | M_FLOAT | M_BOOL;
		else if (strcmp(p, "list") == 0)
			mask |= M_LIST;
		else if (strcmp(p, "any") == 0)
			mask |= M_ANY;
		else
			ptcc_die("ops.def: %s: unknown type %s", op, p);
	}
	return mask;
}

static void
parse_schema(OpInfo *o)
{
	char *buf = xmalloc(strlen(o->schema) + 1), *tok, *save = NULL;
	OpParam params[32];
	int n = 0, star = -1;
	bool lead = true;

	strcpy(buf, o->schema);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(tok, ':'), *eq, *bar;
		OpParam *p = &params[n];

		if (strcmp(tok, "*") == 0) { /* the keywords start here */
			star = n;
			continue;
		}
		if (!colon || n == 32)
			ptcc_die("ops.def: %s: bad schema", o->name);
		*colon = 0;
		memset(p, 0, sizeof *p);
		if ((bar = strchr(tok, '|'))) {
			*bar = 0;
			p->alias = intern(&ops_strings, bar + 1, strlen(bar + 1));
		}
		p->name = intern(&ops_strings, tok, strlen(tok));
		if ((eq = strchr(colon + 1, '='))) {
			*eq = 0;
			p->def = parse_default(o->name, eq + 1);
		} else {
			p->required = true;
			p->def.kind = L_ABSENT;
			p->def.pos = UINT32_MAX;
		}
		p->mask = parse_type(o->name, colon + 1);
		if (lead && (p->mask & (M_TENSOR | M_TLIST)))
			o->nlead++;
		else
			lead = false;
		n++;
	}
	free(buf);
	if (star >= 0)
		o->nlead = (uint8_t)star;
	o->nparams = (uint8_t)n;
	o->inplace = -1;
	for (n = 0; n < o->nparams; n++)
		if (strcmp(params[n].name, "inplace") == 0)
			o->inplace = (int8_t)n;
	o->params = NEWARRAY(&ops_arena, OpParam, n ? n : 1);
	memcpy(o->params, params, (size_t)n * sizeof *params);
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
	ops_strings.arena = &ops_arena;
	for (i = 0; i < OP_COUNT; i++) {
		uint64_t h = hash_bytes(optab[i].name, strlen(optab[i].name));

		if (map_get(&ops_by_hash, h))
			ptcc_die("ops.def: %s: duplicate row", optab[i].name);
		map_put(&ops_by_hash, h, (void *)(uintptr_t)(i + 1));
		parse_schema(&optab[i]);
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
	intern_free(&ops_strings);
	arena_free(&ops_arena);
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

	/* within a quarter of the shorter name's length, plus one: 'conv2e' gets 'conv2d' and 'reul' 'relu',
	 * but 'lstm' gets neither 'lt' nor 'sum' */
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
	static const struct { uint32_t bit; const char *text; } names[] = {
		{M_TENSOR, "a tensor"}, {M_TLIST, "a list of tensors"}, {M_INT, "an integer"},
		{M_FLOAT, "a float"}, {M_INTLIST, "a list of integers"}, {M_FLOATLIST, "a list of numbers"},
		{M_LIST, "a list"}, {M_BOOL, "a bool"}, {M_STR, "a string"}, {M_SYM, "a symbol"},
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
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
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
				error_at(c, lit_loc(c, &a->v), "positional argument after a keyword argument");
				ok = false;
				continue;
			}
			if (npos >= o->nparams) {
				error_at(c, lit_loc(c, &a->v), "too many arguments: %s takes at most %d", o->name,
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
					if ((d = edit_distance(a->name, o->params[k].name, bd)) < bd) {
						bd = d;
						best = o->params[k].name;
					}
				if (best)
					error_at(c, a->name_loc, "%s has no argument '%s'; did you mean '%s'?", o->name,
					         a->name, best);
				else
					error_at(c, a->name_loc, "%s has no argument '%s'", o->name, a->name);
				ok = false;
				continue;
			}
		}
		if (n->arg[slot].kind != L_ABSENT) {
			error_at(c, a->name ? a->name_loc : lit_loc(c, &a->v), "argument '%s' of %s given twice",
			         o->params[slot].name, o->name);
			ok = false;
			continue;
		}
		m = o->params[slot].mask;
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
		if (o->params[k].required && n->arg[k].kind == L_ABSENT) {
			error_at(c, n->loc, "missing argument '%s' of %s", o->params[k].name, o->name);
			ok = false;
		}
	return ok;
}
