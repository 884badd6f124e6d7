/* resolve.c: handles to SSA values.
 *
 * Runs as the parser goes (resolve_input, resolve_node, on each statement while it is still in
 * cache), then resolve_finish runs over the whole graph.  A table maps each handle to its
 * current Value:
 *   - an argument %N becomes the handle's current value (use before definition is an error);
 *     $name becomes the declared param or const;
 *   - a result whose handle is already defined is an in-place write (§3.4): a new Value whose
 *     prev is the overwritten one, in the same alias group;
 *   - a result of a view op (F_VIEW) joins its first argument's alias group;
 *   - an op that writes its argument in place must name that argument as its result; in the SSA
 *     form (`ptcc-trace 1 ssa`, what --emit=ir writes) every handle is defined once instead, an
 *     in-place op's result is a new handle for the written tensor, and the old handle may not be
 *     read again;
 *   - an in-place write to a tensor whose alias group has another member that is read later is
 *     refused: the compiler does not model the aliasing;
 *   - values that nothing reads are warned about, and ops no output needs are removed.
 */
#include "ptcc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Write {
	Node *n;
	Value *old;
} Write;
typedef VEC(Node *) NodeVec;

/* Handle tables: dense while handles are (as the recorder writes them), a map once one is not. */
struct Resolver {
	Value **dense;
	size_t ndense;
	Map sparse;
	bool use_sparse;
	uint32_t ndefs;
	VEC(Write) writes;
	Map clobbered;     /* SSA form: handle + 1 -> the value that overwrote it in place */
	/* a small cache in front of the map of parameters, keyed by the interned name */
	struct { const char *name; Value *v; } pcache[64];
};

static Resolver *
resolver(Ctx *c)
{
	if (!c->resolver)
		c->resolver = xcalloc(1, sizeof *c->resolver);
	return c->resolver;
}

void
resolve_free(Ctx *c)
{
	Resolver *r = c->resolver;

	if (!r)
		return;
	free(r->dense);
	map_free(&r->sparse);
	map_free(&r->clobbered);
	free(r->writes.v);
	free(r);
	c->resolver = NULL;
}

static Value *
cur_get(Resolver *r, uint32_t h)
{
	if (!r->use_sparse)
		return h < r->ndense ? r->dense[h] : NULL;
	return map_get(&r->sparse, h);
}

static void
cur_put(Resolver *r, uint32_t h, Value *v)
{
	size_t i;

	r->ndefs++;
	if (!r->use_sparse && h >= r->ndense) {
		if ((uint64_t)h > 4 * (uint64_t)r->ndefs + 4096) {
			/* a sparse, hand-edited numbering: move to the map */
			for (i = 0; i < r->ndense; i++)
				if (r->dense[i])
					map_put(&r->sparse, i, r->dense[i]);
			free(r->dense);
			r->dense = NULL;
			r->ndense = 0;
			r->use_sparse = true;
		} else {
			size_t n = r->ndense ? r->ndense : 1024;

			while (n <= h)
				n *= 2;
			r->dense = xrealloc(r->dense, n * sizeof *r->dense);
			memset(r->dense + r->ndense, 0, (n - r->ndense) * sizeof *r->dense);
			r->ndense = n;
		}
	}
	if (!r->use_sparse)
		r->dense[h] = v;
	else
		map_put(&r->sparse, h, v);
}

static Value *
param_get(Ctx *c, Resolver *r, const char *name)
{
	size_t h = ((uintptr_t)name >> 3) & 63;

	if (r->pcache[h].name != name) {
		r->pcache[h].name = name;
		r->pcache[h].v = map_get(&c->params_by_name, (uintptr_t)name);
	}
	return r->pcache[h].v;
}

static void
use(Value *v, uint32_t idx)
{
	v->nuse++;
	v->last_use = idx;
}

/* Resolve the tensor references in a literal, recursively. */
static bool
resolve_lit(Ctx *c, Resolver *r, Lit *l, uint32_t idx)
{
	Value *v;
	uint32_t i;
	bool ok = true;

	switch (l->kind) {
	case L_HANDLE:
		v = cur_get(r, (uint32_t)l->u.i);
		if (!v) {
			error_at(c, lit_loc(c, l), "handle %%%lld is used before it is defined",
				 (long long)l->u.i);
			return false;
		}
		if (c->g.ssa && r->clobbered.n) {
			const Value *by = map_get(&r->clobbered, (uint64_t)l->u.i + 1);
			if (by) {
				error_at(c, lit_loc(c, l),
					 "%%%lld was written in place by %s, which named the "
					 "result %%%u; the SSA form reads the new handle",
					 (long long)l->u.i, optab[by->def->op].name, by->handle);
				return false;
			}
		}
		use(v, idx);
		l->kind = L_VALUE;
		l->u.v = v;
		return true;
	case L_PARAM:
		v = param_get(c, r, l->u.s);
		if (!v) {
			error_at(c, lit_loc(c, l),
				 "parameter $%s is not declared by a 'param' or 'const' line",
				 l->u.s);
			return false;
		}
		use(v, idx);
		l->kind = L_VALUE;
		l->u.v = v;
		return true;
	case L_LIST:
	case L_SLICE:
		for (i = 0; i < l->n; i++)
			ok &= resolve_lit(c, r, &l->u.list[i], idx);
		return ok;
	default:
		return true;
	}
}

void
resolve_node(Ctx *c, Node *n)
{
	Resolver *r = resolver(c);
	const OpInfo *o = &optab[n->op];
	Lit *first = n->nslot ? &n->arg[0] : NULL;
	int ip = o->inplace;
	bool inplace =
		(o->flags & F_INPLACE) || (ip >= 0 && n->arg[ip].kind == L_BOOL && n->arg[ip].u.i);
	int i, j;

	for (i = 0; i < n->nslot; i++)
		resolve_lit(c, r, &n->arg[i], n->idx);
	if (inplace && !(o->flags & F_DROPOUT)) {
		/* the result must be the argument it writes */
		if (first && first->kind == L_VALUE && n->nres == 1 && !c->g.ssa &&
		    first->u.v->handle != n->res[0].handle && first->u.v->kind != VK_PARAM &&
		    first->u.v->kind != VK_CONST) {
			error_at(
				c, value_loc(c, &n->res[0]),
				"%s writes its first argument in place, so its result must be %%%u",
				o->name, first->u.v->handle);
		} else if (first && first->kind == L_VALUE &&
			   (first->u.v->kind == VK_PARAM || first->u.v->kind == VK_CONST)) {
			error_at(c, lit_loc(c, first), "%s would write parameter $%s in place",
				 o->name, first->u.v->name);
		} else
			n->writes = 1;
	}
	for (i = 0; i < n->nres; i++) {
		Value *v = &n->res[i], *old;

		if (v->handle == NO_HANDLE)
			continue;
		for (j = 0; j < i; j++)
			if (n->res[j].handle == v->handle) {
				error_at(c, value_loc(c, v),
					 "handle %%%u appears twice among the results", v->handle);
				break;
			}
		if (c->g.ssa && cur_get(r, v->handle)) {
			error_at(c, value_loc(c, v),
				 "%%%u is defined again; in the SSA form each handle is defined "
				 "once",
				 v->handle);
			continue;
		}
		/* the new handle of the tensor the op wrote; not when its first argument did not
		 * resolve (an undefined handle, reported): its Lit holds the handle, not a Value */
		if (c->g.ssa && n->writes && i == 0 && first->kind == L_VALUE) {
			old = first->u.v;
			v->prev = old;
			v->alias = old->alias;
			if (old->alias->flags & V_SHARED) {
				Write w = {n, old};
				vec_push(&r->writes, w);
			}
			map_put(&r->clobbered, (uint64_t)old->handle + 1, v);
		} else if ((old = cur_get(r, v->handle))) {
			v->prev = old;
			v->alias = old->alias;
			if (n->writes) {
				Write w = {n, old};

				/* only storage that another handle can see needs checking */
				if (old->alias->flags & V_SHARED)
					vec_push(&r->writes, w);
			}
		} else if ((o->flags & F_VIEW) && first && first->kind == L_VALUE) {
			v->alias = first->u.v->alias;
			v->alias->flags |= V_SHARED;
		}
		cur_put(r, v->handle, v);
	}
	/* a `_` result of a view still aliases */
	for (i = 0; i < n->nres; i++)
		if (n->res[i].handle == NO_HANDLE && (o->flags & F_VIEW) && first &&
		    first->kind == L_VALUE) {
			n->res[i].alias = first->u.v->alias;
			n->res[i].alias->flags |= V_SHARED;
		}
}

void
resolve_poison(Ctx *c, const RawArg *args, size_t nargs, const Value *results, size_t nres)
{
	Resolver *r = resolver(c);

	for (size_t i = 0; i < nargs; i++) {
		Lit l = args[i].v; /* a copy: the arguments are the parser's scratch */
		resolve_lit(c, r, &l, c->g.nidx);
	}
	for (size_t i = 0; i < nres; i++) {
		Value *v;
		if (results[i].handle == NO_HANDLE)
			continue;
		v = NEW(&c->arena, Value);
		v->kind = VK_POISON;
		v->flags = V_POISON;
		v->id = UINT32_MAX; /* numbered by nothing: no pass may map it */
		v->handle = results[i].handle;
		v->pos = results[i].pos;
		v->alias = v;
		cur_put(r, v->handle, v);
	}
}

static bool
lit_reads_poison(const Lit *l)
{
	if (l->kind == L_HANDLE || l->kind == L_PARAM)
		return true; /* its resolution failed (reported) */
	if (l->kind == L_VALUE)
		return (l->u.v->flags & V_POISON) != 0;
	if (l->kind == L_LIST || l->kind == L_SLICE)
		for (uint32_t i = 0; i < l->n; i++)
			if (lit_reads_poison(&l->u.list[i]))
				return true;
	return false;
}

bool
node_reads_poison(const Node *n)
{
	for (int i = 0; i < n->nslot; i++)
		if (lit_reads_poison(&n->arg[i]))
			return true;
	return false;
}

void
poison_results(Node *n)
{
	for (int i = 0; i < n->nres; i++) {
		n->res[i].flags |= V_POISON;
		n->res[i].type.dtype = DT_UNKNOWN;
	}
}

static bool
defined_before(const Value *v, uint32_t idx)
{
	return v->kind != VK_OP || v->def->idx < idx;
}

/* Refuse an in-place write to an alias group with another member read after the write. */
static void
check_aliasing(Ctx *c, Write *w, size_t nw)
{
	Map groups = {0}; /* root -> VEC of members */
	typedef VEC(Value *) Members;
	Members *all;
	size_t i, k, ngroups = 0;
	Node *n;

	all = xcalloc(nw, sizeof *all);
	for (i = 0; i < nw; i++)
		if (!map_get(&groups, (uintptr_t)w[i].old->alias))
			map_put(&groups, (uintptr_t)w[i].old->alias, &all[ngroups++]);
	for (i = 0; i < c->g.inputs.n; i++) {
		Members *m = map_get(&groups, (uintptr_t)c->g.inputs.v[i]->alias);
		if (m)
			vec_push(m, c->g.inputs.v[i]);
	}
	for (n = c->g.first; n; n = n->next)
		for (k = 0; k < n->nres; k++) {
			Members *m = map_get(&groups, (uintptr_t)n->res[k].alias);
			if (m)
				vec_push(m, &n->res[k]);
		}
	for (i = 0; i < nw; i++) {
		Members *m = map_get(&groups, (uintptr_t)w[i].old->alias);
		uint32_t idx = w[i].n->idx;

		for (k = 0; k < m->n; k++) {
			Value *u = m->v[k];

			if (u == w[i].old || !defined_before(u, idx) || u->nuse == 0)
				continue;
			if (u->last_use > idx || (u->flags & V_OUTPUT)) {
				/* u is still live after the write and shares its storage */
				bool later = u->last_use > idx;

				error_at(c, w[i].n->loc,
					 "%s writes %%%u in place, which changes %s%%%u (they "
					 "share storage)%s",
					 optab[w[i].n->op].name, w[i].old->handle,
					 u->handle == NO_HANDLE ? "a result " : "", u->handle,
					 later ? ", and that is read later" : ", an output");
				if (later) {
					Node *reader;

					for (reader = w[i].n->next;
					     reader && reader->idx != u->last_use;
					     reader = reader->next)
						;
					if (reader)
						note_at(c, reader->loc, "%%%u is read here",
							u->handle);
				}
				break;
			}
		}
	}
	for (i = 0; i < ngroups; i++)
		free(all[i].v);
	free(all);
	map_free(&groups);
}

static bool
node_unneeded(const Node *n)
{
	int i;

	for (i = 0; i < n->nres; i++)
		if (n->res[i].nuse || (n->res[i].flags & V_OUTPUT))
			return false;
	return true;
}

static void
unuse_lit(const Lit *l, NodeVec *work)
{
	uint32_t i;

	if (l->kind == L_VALUE) {
		Value *v = l->u.v;

		if (v->nuse)
			v->nuse--;
		if (v->kind == VK_OP && !v->def->dead && node_unneeded(v->def)) {
			v->def->dead = 1;
			vec_push(work, v->def);
		}
	} else if (l->kind == L_LIST || l->kind == L_SLICE)
		for (i = 0; i < l->n; i++)
			unuse_lit(&l->u.list[i], work);
}

/* Parameters and constants are values too, numbered after the op results: a pass that maps
 * values by id (the back end's blob_of) must never see a parameter share the id of an input or a
 * result. */
static uint32_t
number_params(Ctx *c, uint32_t id)
{
	for (size_t i = 0; i < c->g.params.n; i++)
		c->g.params.v[i]->id = id++;
	return id;
}

/* Remove the ops that no output needs.  The worklist holds only dead nodes. */
static void
remove_dead(Ctx *c)
{
	NodeVec work = {0};
	Node *n, **pp, *last = NULL;
	int i;
	uint32_t id = (uint32_t)c->g.inputs.n;
	bool clean = true;

	/* The first pass numbers the values as if no op were dead; when none is (the common
	 * case) it is the only pass over the nodes, which for a large trace are hundreds of
	 * megabytes. */
	for (n = c->g.first; n; n = n->next) {
		if (n->dead)
			clean = false;
		for (i = 0; i < n->nres; i++) {
			Value *v = &n->res[i];

			if (v->handle != NO_HANDLE && v->nuse == 0 && !(v->flags & V_OUTPUT) &&
			    !c->nerrors)
				/* not noise after errors */
				warning_at(c, value_loc(c, v), "%%%u is never used", v->handle);
			v->id = id++;
		}
		if (!n->dead && node_unneeded(n)) {
			n->dead = 1;
			vec_push(&work, n);
		}
		last = n;
	}
	if (clean && !work.n) {
		for (i = 0; i < (int)c->g.inputs.n; i++)
			c->g.inputs.v[i]->id = (uint32_t)i;
		c->g.last = last;
		c->g.nvalues = number_params(c, id);
		free(work.v);
		return;
	}
	id = 0;
	while (work.n) {
		n = work.v[--work.n];
		for (i = 0; i < n->nslot; i++)
			unuse_lit(&n->arg[i], &work);
	}
	free(work.v);
	/* unlink the dead, number the values of the live */
	for (i = 0; i < (int)c->g.inputs.n; i++)
		c->g.inputs.v[i]->id = id++;
	c->g.last = NULL;
	for (pp = &c->g.first; *pp;) {
		if ((*pp)->dead) {
			*pp = (*pp)->next;
			c->g.nnodes--;
		} else {
			c->g.last = *pp;
			for (i = 0; i < (*pp)->nres; i++)
				(*pp)->res[i].id = id++;
			pp = &(*pp)->next;
		}
	}
	c->g.nvalues = number_params(c, id);
}

void
resolve_input(Ctx *c, Value *v)
{
	Resolver *r = resolver(c);
	Value *old = cur_get(r, v->handle);

	if (old) {
		error_at(c, value_loc(c, v), "input %%%u is declared twice", v->handle);
		note_at(c, value_loc(c, old), "first declared here");
		return;
	}
	cur_put(r, v->handle, v);
}

bool
resolve_finish(Ctx *c)
{
	Resolver *r = resolver(c);
	size_t i;
	int errors = c->nerrors;

	/* after a syntax error the lines were only parsed: what the outputs name may never have
	 * been defined */
	for (i = 0; i < c->g.outputs.n && !c->syntax_error; i++) {
		Output *o = &c->g.outputs.v[i];

		if (resolve_lit(c, r, &o->ref, UINT32_MAX))
			o->ref.u.v->flags |= V_OUTPUT;
	}
	if (c->nerrors == 0 && r->writes.n)
		check_aliasing(c, r->writes.v, r->writes.n);
	resolve_free(c);
	if (c->syntax_error)
		return false;
	/* values nothing reads, and the ops no output needs; SSA numbers.  After errors too, so
	 * that the back end can still report the lowering errors of the lines that had none
	 * (--check). */
	remove_dead(c);
	return c->nerrors == errors && c->nerrors == 0;
}
