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
 * parsed, for its syntax errors. */
#include "ptcc.h"

void
frontend_input(Ctx *c, Value *v)
{
	if (!c->syntax_error)
		resolve_input(c, v);
}

void
frontend_op(Ctx *c, Node *n, const RawArg *args, size_t nargs)
{
	int errors;

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
	if (!c->syntax_error)
		resolve_poison(c, args, nargs, results, nres);
}

bool
frontend_finish(Ctx *c)
{
	return resolve_finish(c);
}
