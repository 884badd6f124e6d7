/* test_optable.c: the op table (src/ops.def) is consistent.  What the C compiler cannot check
 * about a row: the lowering and targets columns agree, every layer type is a row of layers.def
 * that one of the op's targets has, a twin follows its op and takes its parameters less a
 * trailing `inplace`, every parameter name is unique within its op, and every op can be looked
 * up by its name. */
#include "net.h"

#include <string.h>

static int failures;

static void
expect(bool ok, const char *what)
{
	if (!ok) {
		printf("FAIL: %s\n", what);
		failures++;
	}
}

int
main(void)
{
	char msg[256] = "";
	int ntwins = 0;

	ops_init();
	expect(lowering_table_check(msg, sizeof msg), msg);
	for (int op = 0; op < OP_COUNT; op++) {
		const OpInfo *o = &optab[op];
		char what[160];

		snprintf(what, sizeof what, "%s: op_lookup finds it", o->name);
		expect(op_lookup(o->name) == op, what);
		for (int i = 0; i < o->nparams; i++)
			for (int j = 0; j < i; j++) {
				snprintf(what, sizeof what, "%s: parameter %s is unique", o->name,
					 o->params[i].name);
				expect(strcmp(o->params[i].name, o->params[j].name) != 0, what);
			}
		if (o->base < 0)
			continue;
		ntwins++;
		const OpInfo *b = &optab[o->base];
		snprintf(what, sizeof what, "%s: follows its op %s, named with a trailing _",
			 o->name, b->name);
		expect(o->base == op - 1 && strlen(o->name) == strlen(b->name) + 1 &&
			       strncmp(o->name, b->name, strlen(b->name)) == 0 &&
			       o->name[strlen(b->name)] == '_',
		       what);
		snprintf(what, sizeof what, "%s: %s's parameters less a trailing inplace", o->name,
			 b->name);
		expect(o->params == b->params &&
			       (o->nparams == b->nparams ||
				(o->nparams + 1 == b->nparams &&
				 strcmp(b->params[o->nparams].name, "inplace") == 0)),
		       what);
		snprintf(what, sizeof what, "%s: F_INPLACE", o->name);
		expect((o->flags & F_INPLACE) && (o->flags & ~(unsigned)F_INPLACE) == b->flags,
		       what);
		snprintf(what, sizeof what, "%s: no inplace parameter", o->name);
		expect(o->inplace < 0, what);
	}
	expect(ntwins >= 19, "at least the 19 in-place twins of today");
	expect(ARG(conv2d, stride) == 3 && ARG(max_pool2d, ceil_mode) == 5,
	       "ARG slots are parameter indices");
	/* the lookups the parser relies on */
	expect(op_lookup("relu_") == OP_relu_ && optab[OP_relu_].base == OP_relu,
	       "relu_ is relu's twin");
	expect(op_lookup("frobnicate") < 0, "frobnicate is unknown");
	expect(op_lookup("lstm") == OP_lstm, "lstm is known (refused with a reason)");
	ops_fini();
	if (failures)
		return 1;
	printf("op table: %d ops, %d twins, consistent\n", OP_COUNT, ntwins);
	return 0;
}
