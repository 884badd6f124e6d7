/* resolve.c: handles to SSA values.
 *
 * Walks the trace in order with a table from handle to its current Value:
 *   - an argument %N becomes the handle's current value (use before definition is an error);
 *     $name becomes the declared param or const;
 *   - a result whose handle is already defined is an in-place write (§3.4): a new Value whose prev is
 *     the overwritten one, in the same alias group;
 *   - a result of a view op (F_VIEW) joins its first argument's alias group;
 *   - an op that writes its argument in place must name that argument as its result;
 *   - an in-place write to a tensor whose alias group has another member that is read later is
 *     refused: the compiler does not model the aliasing;
 *   - values that nothing reads are warned about, and ops no output needs are removed.
 */
#include "ptcc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Resolver {
	Ctx *c;
	Value **dense; /* handle -> current value, when handles are dense enough */
	size_t ndense;
	Map sparse;    /* otherwise */
} Resolver;

typedef struct Write {
	Node *n;
	Value *old;
} Write;
typedef VEC(Write) WriteVec;
typedef VEC(Node *) NodeVec;

static Value *
cur_get(Resolver *r, uint32_t h)
{
	if (r->dense)
		return h < r->ndense ? r->dense[h] : NULL;
	return map_get(&r->sparse, h);
}

static void
cur_put(Resolver *r, uint32_t h, Value *v)
{
	if (r->dense)
		r->dense[h] = v;
	else
		map_put(&r->sparse, h, v);
}

static void
use(Value *v, uint32_t idx)
{
	v->nuse++;
	v->last_use = idx;
}

/* Resolve the tensor references in a literal, recursively. */
static bool
resolve_lit(Resolver *r, Lit *l, uint32_t idx)
{
	Ctx *c = r->c;
	Value *v;
	uint32_t i;
	bool ok = true;

	switch (l->kind) {
	case L_HANDLE:
		v = cur_get(r, (uint32_t)l->u.i);
		if (!v) {
			error_at(c, lit_loc(c, l), "handle %%%lld is used before it is defined", (long long)l->u.i);
			return false;
		}
		use(v, idx);
		l->kind = L_VALUE;
		l->u.v = v;
		return true;
	case L_PARAM:
		v = map_get(&c->params_by_name, (uintptr_t)l->u.s);
		if (!v) {
			error_at(c, lit_loc(c, l), "parameter $%s is not declared by a 'param' or 'const' line",
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
			ok &= resolve_lit(r, &l->u.list[i], idx);
		return ok;
	default:
		return true;
	}
}

static bool
is_dropout(int op)
{
	return op == OP_dropout || op == OP_dropout2d || op == OP_alpha_dropout || op == OP_feature_alpha_dropout;
}

static void
resolve_node(Resolver *r, Node *n, WriteVec *writes)
{
	Ctx *c = r->c;
	const OpInfo *o = &optab[n->op];
	Lit *first = n->nslot ? &n->arg[0] : NULL;
	int ip = o->inplace;
	bool inplace = (o->flags & F_INPLACE) || (ip >= 0 && n->arg[ip].kind == L_BOOL && n->arg[ip].u.i);
	int i, j;

	for (i = 0; i < n->nslot; i++)
		resolve_lit(r, &n->arg[i], n->idx);
	if (inplace && !is_dropout(n->op)) {
		/* the result must be the argument it writes */
		if (first && first->kind == L_VALUE && n->nres == 1 &&
		    first->u.v->handle != n->res[0].handle && first->u.v->kind != VK_PARAM &&
		    first->u.v->kind != VK_CONST) {
			error_at(c, value_loc(c, &n->res[0]), "%s writes its first argument in place, so its result must be %%%u",
			         o->name, first->u.v->handle);
		} else if (first && first->kind == L_VALUE && (first->u.v->kind == VK_PARAM || first->u.v->kind == VK_CONST)) {
			error_at(c, lit_loc(c, first), "%s would write parameter $%s in place", o->name,
			         first->u.v->name);
		} else
			n->writes = 1;
	}
	for (i = 0; i < n->nres; i++) {
		Value *v = &n->res[i], *old;

		if (v->handle == NO_HANDLE)
			continue;
		for (j = 0; j < i; j++)
			if (n->res[j].handle == v->handle) {
				error_at(c, value_loc(c, v), "handle %%%u appears twice among the results", v->handle);
				break;
			}
		if ((old = cur_get(r, v->handle))) {
			v->prev = old;
			v->alias = old->alias;
			if (n->writes) {
				Write w = {n, old};

				vec_push(writes, w);
			}
		} else if ((o->flags & F_VIEW) && first && first->kind == L_VALUE)
			v->alias = first->u.v->alias;
		cur_put(r, v->handle, v);
	}
	/* a `_` result of a view still aliases */
	for (i = 0; i < n->nres; i++)
		if (n->res[i].handle == NO_HANDLE && (o->flags & F_VIEW) && first && first->kind == L_VALUE)
			n->res[i].alias = first->u.v->alias;
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

				error_at(c, w[i].n->loc, "%s writes %%%u in place, which changes %s%%%u (they share storage)%s",
				         optab[w[i].n->op].name, w[i].old->handle, u->handle == NO_HANDLE ? "a result " : "",
				         u->handle, later ? ", and that is read later" : ", an output");
				if (later) {
					Node *reader;

					for (reader = w[i].n->next; reader && reader->idx != u->last_use; reader = reader->next)
						;
					if (reader)
						note_at(c, reader->loc, "%%%u is read here", u->handle);
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

/* Remove the ops that no output needs.  The worklist holds only dead nodes. */
static void
remove_dead(Ctx *c)
{
	NodeVec work = {0};
	Node *n, **pp;
	int i;

	for (n = c->g.first; n; n = n->next) {
		for (i = 0; i < n->nres; i++) {
			Value *v = &n->res[i];

			if (v->handle != NO_HANDLE && v->nuse == 0 && !(v->flags & V_OUTPUT))
				warning_at(c, value_loc(c, v), "%%%u is never used", v->handle);
		}
		if (!n->dead && node_unneeded(n)) {
			n->dead = 1;
			vec_push(&work, n);
		}
	}
	while (work.n) {
		n = work.v[--work.n];
		for (i = 0; i < n->nslot; i++)
			unuse_lit(&n->arg[i], &work);
	}
	free(work.v);
	c->g.last = NULL;
	for (pp = &c->g.first; *pp;) {
		if ((*pp)->dead) {
			*pp = (*pp)->next;
			c->g.nnodes--;
		} else {
			c->g.last = *pp;
			pp = &(*pp)->next;
		}
	}
}

bool
resolve(Ctx *c)
{
	Resolver r = {c, NULL, 0, {0}};
	WriteVec writes = {0};
	size_t i;
	Node *n;
	uint32_t id = 0;
	int errors = c->nerrors;

	if ((uint64_t)c->g.max_handle < 4 * ((uint64_t)c->g.nidx + c->g.inputs.n) + 4096) {
		r.ndense = (size_t)c->g.max_handle + 1;
		r.dense = xcalloc(r.ndense, sizeof *r.dense);
	}
	for (i = 0; i < c->g.inputs.n; i++) {
		Value *v = c->g.inputs.v[i], *old = cur_get(&r, v->handle);

		if (old) {
			error_at(c, value_loc(c, v), "input %%%u is declared twice", v->handle);
			note_at(c, value_loc(c, old), "first declared here");
			continue;
		}
		cur_put(&r, v->handle, v);
	}
	for (n = c->g.first; n; n = n->next)
		resolve_node(&r, n, &writes);
	for (i = 0; i < c->g.outputs.n; i++) {
		Output *o = &c->g.outputs.v[i];

		if (resolve_lit(&r, &o->ref, UINT32_MAX)) {
			o->ref.u.v->flags |= V_OUTPUT;
		}
	}
	free(r.dense);
	map_free(&r.sparse);
	if (c->nerrors == errors && writes.n)
		check_aliasing(c, writes.v, writes.n);
	free(writes.v);
	if (c->nerrors != errors)
		return false;

	/* values nothing reads, and the ops no output needs */
	remove_dead(c);
	for (i = 0; i < c->g.inputs.n; i++)
		c->g.inputs.v[i]->id = id++;
	for (n = c->g.first; n; n = n->next)
		for (i = 0; i < n->nres; i++)
			n->res[i].id = id++;
	c->g.nvalues = id;
	return true;
}
