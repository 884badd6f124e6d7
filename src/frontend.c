/* frontend.c: the front end's pipeline in one place, as backend.c is the back end's.
 *
 *   parse (lexer.l -> parser.y), one statement at a time; for each line, as soon as it is read:
 *       input %0 ...     frontend_input:  resolve_input
 *       %1 = op(...)     frontend_op:     op_bind -> ir_append -> resolve_node -> shape_node
 *       a line that fails before it is an op: frontend_poison
 *   then frontend_finish: resolve_finish (outputs, aliasing, dead code, SSA numbering)
 *
 * It streams: each op is bound, resolved and shaped while its line is still in cache, and the
 * parser keeps no tree of its own.  A line with an error poisons its results (V_POISON), so that
 * the lines reading them are skipped rather than reported again, while every independent line is
 * still checked.  After a syntax error nothing is resolved: the rest of the trace is only
 * parsed, for its syntax errors.
 *
 * --input shapes replace the declared ones as each input line is read, so the shape pass infers
 * every type from them; the options are checked against the inputs when the first op line comes
 * (inputs come first, §2).  An annotation that then differs only in its dims describes the
 * recorded size: shape.c counts it instead of reporting it, and frontend_finish says how many
 * there were, once. */
#include "ptcc.h"

#include <string.h>

/* `"x"`, or `%1` for an input without a name */
static const char *
input_desc(const Value *v, char *buf, size_t size)
{
	if (v->name)
		snprintf(buf, size, "\"%s\"", v->name);
	else
		snprintf(buf, size, "%%%u", v->handle);
	return buf;
}

/* The trace's inputs, `"x", "y" and %2`, into buf. */
static const char *
input_list(Ctx *c, char *buf, size_t size)
{
	size_t i, len = 0, n = c->g.inputs.n;
	char one[256];

	buf[0] = 0;
	for (i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i == 0 ? "" : i + 1 == n ? " and " : ", ",
					input_desc(c->g.inputs.v[i], one, sizeof one));
	return buf;
}

/* The --input options that set v, the k-th input line (by its name or by position): its new
 * shape, or a usage error when two set it. */
static void
input_apply(Ctx *c, Value *v, size_t k)
{
	InputShape *set = NULL;
	size_t i, npos = 0;
	char desc[256];
	Type t;

	for (i = 0; i < c->input_shapes.n; i++) {
		InputShape *s = &c->input_shapes.v[i];

		if (s->name ? !v->name || strcmp(s->name, v->name) != 0 : npos++ != k)
			continue;
		if (set) {
			usage_error_in(c, "--input %s: input %s is already set by --input %s",
				       s->arg, input_desc(v, desc, sizeof desc), set->arg);
			return;
		}
		set = s;
	}
	if (!set)
		return;
	set->input = v;
	if (!type_known(&v->type)) /* the declaration's error is reported */
		return;
	t = type_make(c, v->type.dtype, set->dims, set->ndim);
	t.pos = v->type.pos; /* a diagnostic about the input points at its line */
	if (!type_equal(&t, &v->type))
		c->input_shapes.reshaped = true;
	v->type = t;
}

/* Once the input lines are over: an --input naming no input, or one position too many, is a
 * usage error. */
static void
inputs_match(Ctx *c)
{
	size_t i, npos = 0, n = c->g.inputs.n;
	char list[1024];

	c->input_shapes.matched = true;
	if (c->syntax_error || c->input_shapes.usage_error) /* the inputs may not all be read */
		return;
	if (n == 0 && c->input_shapes.n) {
		usage_error_in(c, "--input %s: the trace has no inputs", c->input_shapes.v[0].arg);
		return;
	}
	for (i = 0; i < c->input_shapes.n; i++) {
		const InputShape *s = &c->input_shapes.v[i];

		if (s->name && !s->input) {
			usage_error_in(c,
				       "--input %s: the trace has no input named \"%s\"; "
				       "its input%s %s",
				       s->arg, s->name, n == 1 ? " is" : "s are",
				       input_list(c, list, sizeof list));
			return;
		}
		if (!s->name && ++npos > n) {
			usage_error_in(c,
				       "--input %s: a shape for input %zu by position, but "
				       "the trace has only %zu input%s (%s)",
				       s->arg, npos, n, n == 1 ? "" : "s",
				       input_list(c, list, sizeof list));
			return;
		}
	}
}

void
frontend_input(Ctx *c, Value *v)
{
	if (c->syntax_error)
		return;
	if (c->input_shapes.n)
		input_apply(c, v, c->g.inputs.n - 1);
	resolve_input(c, v);
}

void
frontend_op(Ctx *c, Node *n, const RawArg *args, size_t nargs)
{
	int errors;

	if (!c->input_shapes.matched)
		inputs_match(c);
	if (!op_bind(c, n, args, nargs)) {
		frontend_poison(c, args, nargs, n->res, n->nres);
		return;
	}
	ir_append(c, n);
	if (c->syntax_error)
		return;
	errors = c->nerrors;
	resolve_node(c, n);
	if (c->nerrors != errors || (errors && node_reads_poison(n)) || !shape_node(c, n))
		poison_results(n);
}

void
frontend_poison(Ctx *c, const RawArg *args, size_t nargs, const Value *results, size_t nres)
{
	if (!c->input_shapes.matched)
		inputs_match(c);
	if (!c->syntax_error)
		resolve_poison(c, args, nargs, results, nres);
}

bool
frontend_finish(Ctx *c)
{
	bool ok;
	uint32_t k = c->input_shapes.nstale;
	char specs[1024];
	size_t i, len = 0;

	if (!c->input_shapes.matched)
		inputs_match(c);
	ok = resolve_finish(c);
	if (k) {
		specs[0] = 0;
		for (i = 0; i < c->input_shapes.n && len < sizeof specs; i++)
			len += (size_t)snprintf(specs + len, sizeof specs - len, "%s--input %s",
						i ? ", " : "", c->input_shapes.v[i].arg);
		diag_file(c, DIAG_NOTE, "ptcc",
			  "%s: %u result annotation%s disagree%s with the new shapes and %s "
			  "ignored (--emit=log writes the trace with the new ones)",
			  specs, k, k == 1 ? "" : "s", k == 1 ? "s" : "", k == 1 ? "was" : "were");
	}
	return ok && !c->input_shapes.usage_error;
}
