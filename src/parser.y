/* parser.y: the grammar of docs/trace-format.md §2, rule for rule.
 *
 * The parser builds the IR directly: each statement's action adds to Ctx.g (the stmt_* helpers
 * at the end of this file) and hands the line to frontend.c's pipeline.  Lists, arguments,
 * results and types are collected on scratch stacks in Ctx.parse and copied to the arena when
 * their rule completes, so every semantic value is either a scalar or points into the arena: no
 * value owns heap memory, and no %destructor is needed.
 *
 * Error recovery is per line: `error NL` skips to the end of the line, so one run reports every
 * syntax error (up to --max-errors), at most one per line.
 */
%code requires {
#include "ptcc.h"
typedef void *yyscan_t;
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                                 \
	do {                                                                        \
		if (N) {                                                            \
			(Cur).begin = YYRHSLOC(Rhs, 1).begin;                       \
			(Cur).end = YYRHSLOC(Rhs, N).end;                           \
		} else {                                                            \
			(Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;             \
		}                                                                   \
	} while (0)
}

%code provides {
int ptcc_yylex(PTCC_YYSTYPE *yylval, PTCC_YYLTYPE *yylloc, yyscan_t scanner);
}

%code {
#include <stdlib.h>
#include <string.h>

static void ptcc_yyerror(Loc *loc, yyscan_t scanner, Ctx *c, const char *msg);
static void stmt_header(Ctx *c, int64_t version, Loc loc, const char *form, Loc form_loc);
static void stmt_weights(Ctx *c, const char *path, Loc stmt, Loc path_loc);
static void stmt_param(Ctx *c, const char *name, Loc loc, Type t, Loc stmt, bool is_const);
static void stmt_input(Ctx *c, int64_t handle, Loc loc, const char *name, Type t, Loc stmt);
static void stmt_call(Ctx *c, const char *name, Loc loc, const char *cls, Loc stmt);
static void stmt_return(Ctx *c, const char *name, Loc loc, Loc stmt);
static void stmt_output(Ctx *c, Lit ref, Loc loc, const char *name, Loc stmt);
static void stmt_op(Ctx *c, const char *op, Loc oploc, size_t ntypes, Loc types_loc,
                    const char *src);
static Lit list_close(Ctx *c, size_t mark, Loc loc);
static void result_push(Ctx *c, uint32_t handle, Loc loc);
static void arg_push(Ctx *c, const char *name, Loc loc, Lit v);
static Type type_close(Ctx *c, const char *dtype, Loc dtype_loc, size_t mark, Loc loc);
static void scratch_reset(Ctx *c);
#define LIT(K, P) ((Lit){.kind = (K), .pos = (P).begin})
}

%define api.pure full
%define api.prefix {ptcc_yy}
%define api.location.type {Loc}
%define parse.error custom
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {Ctx *c}

%union {
	int64_t i;
	double f;
	const char *s;
	Lit lit;
	Type type;
	size_t mark;
}

%token K_TRACE "'ptcc-trace'" K_WEIGHTS "'weights'" K_PARAM "'param'" K_CONST "'const'"
%token K_INPUT "'input'" K_OUTPUT "'output'" K_CALL "'call'" K_RETURN "'return'"
%token K_NONE "'none'" K_TRUE "'true'" K_FALSE "'false'" K_SLICE "'slice'"
%token NL "end of line" ELLIPSIS "'...'" UNDERSCORE "'_'" LEXERR "invalid token"
%token <i> INT "integer" HANDLE "handle"
%token <f> FLOAT "float"
%token <s> STRING "string" PARAM "parameter" IDENT "name" PATH "scope name"
%token <s> KW "keyword argument" SRC "source position"
%token <type> TYPE "type"
%token <lit> INTLIST "list"

%type <lit> value ref list slice
%type <s> opt_name op_name op_head scope_name src
%type <type> type type_slow
%type <mark> mark types
%type <i> dims

%%

trace
	: header lines
	;

header
	: K_TRACE INT NL          { stmt_header(c, $2, @2, NULL, @2); }
	| K_TRACE INT IDENT NL    { stmt_header(c, $2, @2, $3, @3); }
	| error NL                { yyerrok; scratch_reset(c); c->parse.seen_header = true; }
	;

/* An op line is `lines op NL` rather than a `statement`: fewer reductions per line (the op lines
 * are nearly all of a trace). */
lines
	: %empty
	| lines line
	| lines op NL
	;

line
	: NL
	| statement NL
	| error NL                { yyerrok; scratch_reset(c); }
	;

statement
	: K_WEIGHTS STRING                { stmt_weights(c, $2, @$, @2); }
	| K_PARAM PARAM ':' type          { stmt_param(c, $2, @2, $4, @$, false); }
	| K_CONST PARAM ':' type          { stmt_param(c, $2, @2, $4, @$, true); }
	| K_INPUT HANDLE opt_name ':' type { stmt_input(c, $2, @2, $3, $5, @$); }
	| K_CALL scope_name scope_name    { stmt_call(c, $2, @2, $3, @$); }
	| K_RETURN scope_name             { stmt_return(c, $2, @2, @$); }
	| K_OUTPUT ref opt_name           { stmt_output(c, $2, @2, $3, @$); }
	;

opt_name
	: %empty                  { $$ = NULL; }
	| STRING
	;

scope_name
	: PATH
	| STRING
	;

/* op = results "=" op-name "(" [ arguments ] ")" [ ":" types ] [ "@" STRING ] The optional parts
 * are spelt out (rather than opt_types, opt_src): no empty reductions per line. */
op
	: op_head                 { stmt_op(c, $1, @1, 0, @1, NULL); }
	| op_head src             { stmt_op(c, $1, @1, 0, @1, $2); }
	| op_head ':' types       { stmt_op(c, $1, @1, $3, (Loc){@2.begin, @3.end}, NULL); }
	| op_head ':' types src   { stmt_op(c, $1, @1, $3, (Loc){@2.begin, @3.end}, $4); }
	;

/* the op's name and arguments; its location is the name's */
op_head
	: results '=' op_name '(' opt_args ')'  { $$ = $3; @$ = @3; }
	;

/* kept as a rule (rather than spelt out) for its default reduction: after an argument, an
 * unexpected token is reported as "expected ')'" */
opt_args
	: %empty
	| arguments
	;

results
	: HANDLE                  { result_push(c, (uint32_t)$1, @1); }
	| UNDERSCORE              { result_push(c, NO_HANDLE, @1); }
	| results ',' HANDLE      { result_push(c, (uint32_t)$3, @3); }
	| results ',' UNDERSCORE  { result_push(c, NO_HANDLE, @3); }
	;

op_name
	: IDENT | K_NONE { $$ = "none"; } | K_TRUE { $$ = "true"; } | K_FALSE { $$ = "false"; }
	| K_SLICE { $$ = "slice"; }
	;

/* arguments = argument { "," argument }, argument = [ KW ] value; spelt out, without an `argument`
 * rule: one reduction fewer per argument */
arguments
	: value                   { arg_push(c, NULL, @1, $1); }
	| KW value                { arg_push(c, $1, @1, $2); }
	| arguments ',' value     { arg_push(c, NULL, @3, $3); }
	| arguments ',' KW value  { arg_push(c, $3, @3, $4); }
	;

/* a tensor reference is spelt out here too (ref is for `output`) */
value
	: HANDLE                  { $$ = LIT(L_HANDLE, @1); $$.u.i = $1; }
	| PARAM                   { $$ = LIT(L_PARAM, @1); $$.u.s = $1; }
	| K_NONE                  { $$ = LIT(L_NONE, @1); $$.u.i = 0; }
	| K_TRUE                  { $$ = LIT(L_BOOL, @1); $$.u.i = 1; }
	| K_FALSE                 { $$ = LIT(L_BOOL, @1); $$.u.i = 0; }
	| INT                     { $$ = LIT(L_INT, @1); $$.u.i = $1; }
	| FLOAT                   { $$ = LIT(L_FLOAT, @1); $$.u.f = $1; }
	| STRING                  { $$ = LIT(L_STR, @1); $$.u.s = $1; }
	| IDENT                   { $$ = LIT(L_SYM, @1); $$.u.s = $1; }
	| ELLIPSIS                { $$ = LIT(L_ELLIPSIS, @1); $$.u.i = 0; }
	| list
	| INTLIST
	| slice
	;

ref
	: HANDLE                  { $$ = LIT(L_HANDLE, @1); $$.u.i = $1; }
	| PARAM                   { $$ = LIT(L_PARAM, @1); $$.u.s = $1; }
	;

mark
	: %empty                  { $$ = c->parse.lits.n; }
	;

list
	: '[' mark ']'            { $$ = list_close(c, $2, @$); }
	| '[' mark values ']'     { $$ = list_close(c, $2, @$); }
	;

values
	: value                   { vec_push(&c->parse.lits, $1); }
	| values ',' value        { vec_push(&c->parse.lits, $3); }
	;

slice
	: K_SLICE '(' value ',' value ',' value ')'
	                          {
		Lit *l = NEWARRAY(&c->arena, Lit, 3);
		l[0] = $3; l[1] = $5; l[2] = $7;
		$$ = LIT(L_SLICE, @1); $$.n = 3; $$.u.list = l;
	}
	;

/* TYPE, the lexer's one-token type, spelt out: one reduction fewer per annotation */
types
	: TYPE                    { vec_push(&c->parse.types, $1); $$ = 1; }
	| type_slow               { vec_push(&c->parse.types, $1); $$ = 1; }
	| types ',' TYPE          { vec_push(&c->parse.types, $3); $$ = $1 + 1; }
	| types ',' type_slow     { vec_push(&c->parse.types, $3); $$ = $1 + 1; }
	;

/* type = dtype "[" [ INT { "," INT } ] "]" */
type
	: TYPE
	| type_slow
	;

type_slow
	: IDENT INTLIST           {
		/* "f32[1,-3]": the lexer's TYPE fast path takes only non-negative dims */
		uint32_t i;
		for (i = 0; i < $2.n; i++)
			vec_push(&c->parse.dims, $2.u.list[i].u.i);
		$$ = type_close(c, $1, @1, c->parse.dims.n - $2.n, @$);
	}
	| IDENT '[' ']'           { $$ = type_close(c, $1, @1, c->parse.dims.n, @$); }
	| IDENT '[' dims ']'      { $$ = type_close(c, $1, @1, c->parse.dims.n - (size_t)$3, @$); }
	;

dims
	: INT                     { vec_push(&c->parse.dims, $1); $$ = 1; }
	| dims ',' INT            { vec_push(&c->parse.dims, $3); $$ = $1 + 1; }
	;

src
	: SRC
	| '@' STRING              { $$ = $2; }
	;

%%

static void
ptcc_yyerror(Loc *loc, yyscan_t scanner, Ctx *c, const char *msg)
{
	(void)scanner;
	error_at(c, *loc, "%s", msg);
}

static const char *
symbol_text(yysymbol_kind_t k)
{
	const char *s = yysymbol_name(k);
	static char buf[64];
	size_t n = strlen(s);

	/* bison quotes the aliases: "\"end of line\"" */
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		if (n - 2 >= sizeof buf)
			n = sizeof buf + 1;
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = 0;
		return buf;
	}
	return s;
}

static int
yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, Ctx *c)
{
	yysymbol_kind_t tok = yypcontext_token(ctx), exp[6];
	const Loc *loc = yypcontext_location(ctx);
	char msg[512], tokname[64];
	int n, i;
	size_t len;
	uint32_t line;

	(void)scanner;
	c->syntax_error = true;
	if (tok == YYSYMBOL_LEXERR) /* already reported by the lexer */
		return 0;
	line = diag_line_of(c, loc->begin, NULL);
	if (c->last_syntax_line == line)
		return 0;
	c->last_syntax_line = line;
	if (!c->parse.seen_header) {
		c->parse.seen_header = true;
		if (tok == YYSYMBOL_YYEOF)
			error_at(c, *loc, "empty trace: expected 'ptcc-trace 1' as the first line");
		else
			error_at(c, *loc, "expected 'ptcc-trace 1' as the first line");
		return 0;
	}
	snprintf(tokname, sizeof tokname, "%s",
	         tok == YYSYMBOL_YYEOF ? "end of file" : symbol_text(tok));
	n = yypcontext_expected_tokens(ctx, exp, 6);
	len = (size_t)snprintf(msg, sizeof msg, "unexpected %s", tokname);
	if (n > 0 && n <= 5) {
		len += (size_t)snprintf(msg + len, sizeof msg - len, ", expected ");
		for (i = 0; i < n; i++)
			len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s",
			                        i == 0 ? "" : i == n - 1 ? " or " : ", ",
			                        symbol_text(exp[i]));
	}
	error_at(c, *loc, "%s", msg);
	return 0;
}

static void
scratch_reset(Ctx *c)
{
	c->parse.args.n = c->parse.lits.n = c->parse.results.n = 0;
	c->parse.types.n = c->parse.dims.n = 0;
}

/* A scope's name as diagnostics show it: the root module's empty name as "". */
static const char *
shown(const char *name)
{
	return *name ? name : "\"\"";
}

/* Statement order (§2): header, weights, params and consts, inputs, then calls, returns and ops,
 * then outputs. */
enum { PH_HEADER, PH_DECLS, PH_INPUTS, PH_BODY, PH_OUTPUTS };

/* `ptcc-trace 1`, or `ptcc-trace 1 ssa` for the SSA form that --emit=ir writes. */
static void
stmt_header(Ctx *c, int64_t version, Loc loc, const char *form, Loc form_loc)
{
	c->parse.seen_header = true;
	c->parse.phase = PH_DECLS;
	c->g.version = version;
	if (version != 1)
		error_at(c, loc, "unsupported trace format version %lld; this ptcc reads version 1",
		         (long long)version);
	if (form && strcmp(form, "ssa") == 0)
		c->g.ssa = true;
	else if (form)
		error_at(c, form_loc, "unknown trace form '%s' (the header is 'ptcc-trace 1' or "
		         "'ptcc-trace 1 ssa')", form);
}

static void
stmt_weights(Ctx *c, const char *path, Loc stmt, Loc path_loc)
{
	if (c->parse.seen_weights) {
		error_at(c, stmt, "a second 'weights' line");
		note_at(c, c->g.weights_loc, "the first is here");
		return;
	}
	c->parse.seen_weights = true;
	if ((c->g.params.n > 0 || c->parse.phase > PH_DECLS) && !c->syntax_error)
		error_at(c, stmt, "the 'weights' line must come before every other statement");
	if (!*path)
		error_at(c, path_loc, "empty weights file name");
	c->g.weights = path;
	c->g.weights_loc = path_loc;
}

/* PyTorch has empty tensors, Caffe's blobs do not (BVLC checks every axis is positive): a declared
 * input, param or const with a dimension of size 0 is refused at its type, and its readers are
 * skipped as after any bad type.  An op's result is checked by the shape pass, which names the
 * op (its annotation says the same, later). */
static Type
declared_type(Ctx *c, Type t)
{
	char buf[TYPE_STR_MAX];

	if (!type_known(&t))
		return t;
	for (int i = 0; i < t.ndim; i++)
		if (t.dims[i] == 0) {
			error_at(c, type_loc(c, &t),
				 "%s has a dimension of size 0; Caffe cannot hold an empty blob",
				 type_str(&t, buf, sizeof buf));
			return (Type){DT_UNKNOWN, 0, 0, UINT32_MAX, NULL};
		}
	return t;
}

static void
stmt_param(Ctx *c, const char *name, Loc loc, Type t, Loc stmt, bool is_const)
{
	Value *v, *old;
	const char *kw = is_const ? "const" : "param";

	if (!c->parse.seen_weights && !c->syntax_error)
		error_at(c, stmt, "'%s' line before the 'weights' line", kw);
	else if (c->parse.phase > PH_DECLS)
		error_at(c, stmt, "'%s' line after the first 'input', 'call' or op line", kw);
	if ((old = map_get(&c->params_by_name, (uintptr_t)name))) {
		error_at(c, loc, "parameter $%s is declared twice", name);
		note_at(c, value_loc(c, old), "first declared here");
		return;
	}
	v = NEW(&c->arena, Value);
	v->kind = is_const ? VK_CONST : VK_PARAM;
	v->name = name;
	v->pos = loc.begin;
	v->type = declared_type(c, t);
	v->handle = NO_HANDLE;
	v->alias = v;
	map_put(&c->params_by_name, (uintptr_t)name, v);
	vec_push(&c->g.params, v);
}

static void
stmt_input(Ctx *c, int64_t handle, Loc loc, const char *name, Type t, Loc stmt)
{
	Value *v;

	if (c->parse.phase > PH_INPUTS)
		error_at(c, stmt, "'input' line after the first 'call' or op line");
	else
		c->parse.phase = PH_INPUTS;
	v = NEW(&c->arena, Value);
	v->kind = VK_INPUT;
	v->name = name;
	v->pos = loc.begin;
	v->type = declared_type(c, t);
	v->handle = (uint32_t)handle;
	v->alias = v;
	if (v->handle > c->g.max_handle)
		c->g.max_handle = v->handle;
	vec_push(&c->g.inputs, v);
	frontend_input(c, v);
}

static bool
body_check(Ctx *c, Loc stmt, const char *what)
{
	if (c->parse.phase == PH_OUTPUTS) {
		error_at(c, stmt, "%s after an 'output' line", what);
		return false;
	}
	c->parse.phase = PH_BODY;
	return true;
}

static void
stmt_call(Ctx *c, const char *name, Loc loc, const char *cls, Loc stmt)
{
	Scope *s;
	ScopeEvent e;

	if (!body_check(c, stmt, "'call'"))
		return;
	s = NEW(&c->arena, Scope);
	s->name = name;
	s->cls = cls;
	s->parent = c->parse.scope;
	s->loc = loc;
	s->depth = c->parse.scope ? c->parse.scope->depth + 1 : 1;
	s->id = c->g.nscopes++;
	c->parse.scope = s;
	e.scope = s;
	e.before = c->g.nidx;
	e.is_return = false;
	vec_push(&c->g.events, e);
}

static void
stmt_return(Ctx *c, const char *name, Loc loc, Loc stmt)
{
	ScopeEvent e;

	if (!body_check(c, stmt, "'return'"))
		return;
	if (!c->parse.scope) {
		error_at(c, loc, "'return %s' without a matching 'call'", *name ? name : "\"\"");
		return;
	}
	if (c->parse.scope->name != name) {
		error_at(c, loc, "'return %s' does not match the innermost open 'call %s'",
		         shown(name), shown(c->parse.scope->name));
		note_at(c, c->parse.scope->loc, "'call %s' is here", shown(c->parse.scope->name));
		return;
	}
	e.scope = c->parse.scope;
	e.before = c->g.nidx;
	e.is_return = true;
	vec_push(&c->g.events, e);
	c->parse.scope = c->parse.scope->parent;
}

static void
stmt_output(Ctx *c, Lit ref, Loc loc, const char *name, Loc stmt)
{
	Output o;

	if (c->parse.scope) {
		error_at(c, stmt, "'output' before the 'return' of every open 'call'");
		note_at(c, c->parse.scope->loc, "'call %s' is still open",
		        shown(c->parse.scope->name));
		c->parse.scope = NULL;
	}
	c->parse.phase = PH_OUTPUTS;
	o.ref = ref;
	o.name = name;
	o.loc = loc;
	if (ref.kind == L_HANDLE && (uint32_t)ref.u.i > c->g.max_handle)
		c->g.max_handle = (uint32_t)ref.u.i;
	vec_push(&c->g.outputs, o);
}

/* An op line.  It is resolved and shaped as soon as it is parsed (while it is in cache).  A line
 * with an error defines its results as poisoned, and a line that reads a poisoned value is
 * skipped without a word: one run reports every independent error, and no cascade.  After a
 * syntax error lines are only parsed (what a broken line defined is unknown). */
static void
stmt_op(Ctx *c, const char *name, Loc oploc, size_t ntypes, Loc types_loc, const char *src)
{
	int op = op_lookup(name);
	size_t nres = c->parse.results.n, i;
	Node *n;

	if (!body_check(c, oploc, "an op line"))
		goto fail;
	if (op < 0) {
		const char *s = op_suggest(name);

		if (s)
			error_at(c, oploc, "unknown op '%s'; did you mean '%s'?", name, s);
		else
			error_at(c, oploc, "unknown op '%s' (ptcc --list-ops lists the ops)", name);
		goto fail;
	}
	if (nres > 255) {
		error_at(c, oploc, "%s: %zu results; an op has at most 255", name, nres);
		goto fail;
	}
	if (ntypes && ntypes != nres) {
		error_at(c, types_loc, "%zu types for %zu result%s", ntypes, nres,
		         nres == 1 ? "" : "s");
		goto fail;
	}
	n = ir_node_new(c, op, (int)nres, oploc);
	for (i = 0; i < nres; i++) {
		Value *v = &n->res[i];

		v->handle = c->parse.results.v[i].handle;
		v->pos = c->parse.results.v[i].pos;
		if (ntypes) {
			v->type = c->parse.types.v[i];
			v->flags |= V_ANNOTATED;
		}
		if (v->handle != NO_HANDLE && v->handle > c->g.max_handle)
			c->g.max_handle = v->handle;
	}
	n->scope = c->parse.scope;
	n->src = src;
	frontend_op(c, n, c->parse.args.v, c->parse.args.n);
	goto out;
fail:
	frontend_poison(c, c->parse.args.v, c->parse.args.n, c->parse.results.v, nres);
out:
	scratch_reset(c);
}

static void
result_push(Ctx *c, uint32_t handle, Loc loc)
{
	Value v = {0};

	v.handle = handle;
	v.pos = loc.begin;
	vec_push(&c->parse.results, v);
}

static void
arg_push(Ctx *c, const char *name, Loc loc, Lit v)
{
	RawArg a = {name, loc, v};

	vec_push(&c->parse.args, a);
}

static Lit
list_close(Ctx *c, size_t mark, Loc loc)
{
	Lit l = ir_list(c, vec_from(&c->parse.lits, mark), c->parse.lits.n - mark, loc.begin);

	c->parse.lits.n = mark;
	return l;
}

static Type
type_close(Ctx *c, const char *dtype, Loc dtype_loc, size_t mark, Loc loc)
{
	Type t = ir_type(c, dtype, dtype_loc, vec_from(&c->parse.dims, mark),
			 c->parse.dims.n - mark, loc);

	c->parse.dims.n = mark;
	return t;
}

/* The reentrant scanner's interface (flex's header is not needed). */
int ptcc_yylex_init_extra(Ctx *, yyscan_t *);
int ptcc_yylex_destroy(yyscan_t);
void ptcc_yyset_in(FILE *, yyscan_t);

bool
parse(Ctx *c)
{
	yyscan_t scanner;
	int r;

	ops_init();
	if (ptcc_yylex_init_extra(c, &scanner))
		ptcc_die("cannot initialise the lexer");
	ptcc_yyset_in(c->fp, scanner);
	c->lex.at_bol = true;
	r = ptcc_yyparse(scanner, c);
	ptcc_yylex_destroy(scanner);
	if (c->lex.overflow)
		error_at(c, NO_LOC, "the trace is larger than 4 GiB");
	if (r == 2)
		error_at(c, NO_LOC, "out of memory while parsing");
	if (c->nerrors == 0 && !c->parse.seen_weights && !c->syntax_error)
		error_at(c, NO_LOC, "the trace has no 'weights' line");
	if (c->nerrors == 0 && c->parse.scope) {
		Scope *s;

		for (s = c->parse.scope; s; s = s->parent)
			error_at(c, s->loc, "'call %s' has no matching 'return'", shown(s->name));
	}
	scratch_reset(c);
	return c->nerrors == 0;
}
