/* emit.c: the text outputs of the front end.
 *
 * --emit=log      the canonical trace: one statement per line, two spaces of indentation per open
 *                 call (at most MAX_INDENT levels deep), leading tensor arguments positional
 *                 and the rest as keywords, every result annotated with its inferred type,
 *                 floats as Python's repr, no comments.  Parsing it again gives the same IR.
 * --emit=ir       the resolved graph: SSA numbers, every argument slot bound (defaults written
 *                 out), every type, in-place writes and views marked; a trace in SSA form
 *                 (`ptcc-trace 1 ssa`) that parses back.
 * --emit=summary  counts.
 * --emit=dot      the graph for Graphviz (its section below says what it draws).
 */
#include "onnx.h"

#include <stdlib.h>
#include <string.h>

static void
print_type(FILE *f, const Type *t)
{
	char buf[TYPE_STR_MAX];

	fputs(type_str(t, buf, sizeof buf), f);
}

/* Indentation stops growing after this many open calls: it is for people, who cannot follow 32
 * levels anyway, and uncapped it made the output quadratic in the input (N nested calls wrote N^2
 * spaces: 512 MB for 16,000 levels).  Capped, each line costs at most 64 more bytes. */
enum { MAX_INDENT = 32 };

static void
indent(FILE *f, int depth)
{
	static const char spaces[2 * MAX_INDENT + 1] =
		"                                                                ";

	if (depth > 0)
		fwrite(spaces, 2, depth < MAX_INDENT ? (size_t)depth : MAX_INDENT, f);
}

/* The header, weights and declarations; an IR dump (ssa) and a log of an SSA-form trace say
 * `ssa`. */
/* Text from the input (a file name, an ONNX producer) in a comment, which runs to the line's
 * end: no byte of it may end the line. */
static void
comment_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void
print_decls(Ctx *c, FILE *f, bool ssa)
{
	size_t i;

	fprintf(f, "ptcc-trace %lld%s\n", (long long)c->g.version, ssa || c->g.ssa ? " ssa" : "");
	if (c->onnx) {
		const char *base = strrchr(c->path, '/');

		fputs("# converted by ptcc from ", f);
		comment_text(f, base ? base + 1 : c->path);
		fprintf(f, " (ONNX opset %lld", (long long)c->onnx->opset);
		if (c->onnx->producer && *c->onnx->producer) {
			fputs(", written by ", f);
			comment_text(f, c->onnx->producer);
		}
		fputs(")\n", f);
	}
	if (ssa) /* params are numbered after the values */
		fprintf(f, "# ptcc IR: %u nodes, %u values, %zu params\n", c->g.nnodes,
		        c->g.nvalues - (uint32_t)c->g.params.n, c->g.params.n);
	fputs("weights ", f);
	ir_print_string(f, c->g.weights ? c->g.weights : "");
	fputc('\n', f);
	for (i = 0; i < c->g.params.n; i++) {
		Value *v = c->g.params.v[i];

		fputs(v->kind == VK_CONST ? "const " : "param ", f);
		ir_print_param_name(f, v->name);
		fputs(" : ", f);
		print_type(f, &v->type);
		fputc('\n', f);
	}
	for (i = 0; i < c->g.inputs.n; i++) {
		Value *v = c->g.inputs.v[i];

		fprintf(f, "input %%%u", ssa ? v->id : v->handle);
		if (v->name) {
			fputc(' ', f);
			ir_print_string(f, v->name);
		}
		fputs(" : ", f);
		print_type(f, &v->type);
		fputc('\n', f);
	}
}

static void
print_event(FILE *f, const ScopeEvent *e, int *depth)
{
	if (e->is_return)
		--*depth;
	indent(f, *depth);
	fputs(e->is_return ? "return " : "call ", f);
	if (*e->scope->name)
		ir_print_name(f, e->scope->name);
	else
		fputs("\"\"", f);
	if (!e->is_return) {
		fputc(' ', f);
		ir_print_name(f, e->scope->cls);
		++*depth;
	}
	fputc('\n', f);
}

static void
print_results(FILE *f, const Node *n, bool ssa)
{
	int i;

	for (i = 0; i < n->nres; i++) {
		const Value *v = &n->res[i];

		if (i)
			fputs(", ", f);
		if (ssa)
			fprintf(f, "%%%u", v->id);
		else if (v->handle == NO_HANDLE)
			fputc('_', f);
		else
			fprintf(f, "%%%u", v->handle);
	}
}

static void
print_types(FILE *f, const Node *n)
{
	int i;

	for (i = 0; i < n->nres; i++)
		if (!type_known(&n->res[i].type))
			return;
	fputs(" : ", f);
	for (i = 0; i < n->nres; i++) {
		if (i)
			fputs(", ", f);
		print_type(f, &n->res[i].type);
	}
}

static void
print_node(FILE *f, const Node *n, bool ssa)
{
	const OpInfo *o = &optab[n->op];
	int i, npos = 0;
	bool first = true;

	print_results(f, n, ssa);
	fprintf(f, " = %s(", o->name);
	if (!ssa) {
		/* leading tensor arguments positionally, while they are given */
		while (npos < o->nlead && n->arg[npos].kind != L_ABSENT)
			npos++;
	}
	for (i = 0; i < n->nslot; i++) {
		const Lit *l = ssa ? op_arg(n, i) : &n->arg[i];

		if (l->kind == L_ABSENT)
			continue;
		if (!first)
			fputs(", ", f);
		first = false;
		if (i >= npos)
			fprintf(f, "%s=", o->params[i].name);
		ir_print_lit(f, l, ssa);
	}
	fputc(')', f);
	print_types(f, n);
	if (n->src) {
		fputs(" @ ", f);
		ir_print_string(f, n->src);
	}
}

static void
print_outputs(Ctx *c, FILE *f, bool ssa)
{
	size_t i;

	for (i = 0; i < c->g.outputs.n; i++) {
		const Output *o = &c->g.outputs.v[i];

		fputs("output ", f);
		ir_print_lit(f, &o->ref, ssa);
		if (o->name) {
			fputc(' ', f);
			ir_print_string(f, o->name);
		}
		fputc('\n', f);
	}
}

static void
print_body(Ctx *c, FILE *f, bool ssa)
{
	size_t e = 0;
	int depth = 0;
	Node *n;

	for (n = c->g.first; n; n = n->next) {
		for (; e < c->g.events.n && c->g.events.v[e].before <= n->idx; e++)
			print_event(f, &c->g.events.v[e], &depth);
		indent(f, depth);
		print_node(f, n, ssa);
		if (ssa) {
			int i;

			for (i = 0; i < n->nres; i++) {
				const Value *v = &n->res[i];

				if (v->prev && n->writes) /* a redefinition that writes nothing
				                             (dropout) is an alias */
					fprintf(f, "  # %%%u writes %%%u in place", v->id,
						v->prev->id);
				else if (v->alias != v &&
					 (v->alias->kind == VK_OP || v->alias->kind == VK_INPUT))
					fprintf(f, "  # %%%u is a view of %%%u", v->id,
						v->alias->id);
				else if (v->alias != v) {
					fprintf(f, "  # %%%u is a view of ", v->id);
					ir_print_param_name(f, v->alias->name);
				}
			}
		}
		fputc('\n', f);
	}
	for (; e < c->g.events.n; e++)
		print_event(f, &c->g.events.v[e], &depth);
}

void
emit_log(Ctx *c, FILE *f)
{
	print_decls(c, f, false);
	print_body(c, f, false);
	print_outputs(c, f, false);
}

void
emit_ir(Ctx *c, FILE *f)
{
	print_decls(c, f, true);
	print_body(c, f, true);
	print_outputs(c, f, true);
}

typedef struct OpCount {
	int op;
	uint32_t n;
} OpCount;

static int
by_count(const void *a, const void *b)
{
	const OpCount *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	return strcmp(optab[x->op].name, optab[y->op].name);
}

void
emit_summary(Ctx *c, FILE *f)
{
	OpCount counts[OP_COUNT];
	Node *n;
	size_t i;
	int k, kinds = 0;
	int64_t elems = 0, e;
	bool over = false;

	for (k = 0; k < OP_COUNT; k++)
		counts[k] = (OpCount){k, 0};
	for (n = c->g.first; n; n = n->next)
		counts[n->op].n++;
	for (i = 0; i < c->g.params.n; i++)
		if (!type_numel(&c->g.params.v[i]->type, &e) || !ck_add(elems, e, &elems))
			over = true;
	qsort(counts, OP_COUNT, sizeof *counts, by_count);
	fprintf(f, "trace:    %s (format %lld)\n", c->path, (long long)c->g.version);
	fprintf(f, "weights:  %s\n", c->g.weights ? c->g.weights : "");
	fprintf(f, "params:   %zu tensors, %s%lld elements\n", c->g.params.n,
		over ? "more than " : "", (long long)elems);
	for (i = 0; i < c->g.inputs.n; i++) {
		fprintf(f, "input:    %%%u ", c->g.inputs.v[i]->handle);
		if (c->g.inputs.v[i]->name) {
			ir_print_string(f, c->g.inputs.v[i]->name);
			fputc(' ', f);
		}
		print_type(f, &c->g.inputs.v[i]->type);
		fputc('\n', f);
	}
	for (i = 0; i < c->g.outputs.n; i++) {
		const Output *o = &c->g.outputs.v[i];

		fputs("output:   ", f);
		ir_print_lit(f, &o->ref, false);
		fputc(' ', f);
		if (o->name) {
			ir_print_string(f, o->name);
			fputc(' ', f);
		}
		if (o->ref.kind == L_VALUE)
			print_type(f, &o->ref.u.v->type);
		fputc('\n', f);
	}
	fprintf(f, "scopes:   %u\n", c->g.nscopes);
	fprintf(f, "ops:      %u\n", c->g.nnodes);
	for (k = 0; k < OP_COUNT && counts[k].n; k++)
		kinds++;
	for (k = 0; k < kinds; k++)
		fprintf(f, "  %-24s %u\n", optab[counts[k].op].name, counts[k].n);
}

/* ---- --emit=dot: the resolved graph for Graphviz ---------------------------------------------
 *
 * One box per live op: its result handles and op as the trace writes them (`%4 = add_`), each
 * result's type, its module scope and its trace line (`run.log:28`).  One ellipse per input
 * (`input %0 x`, its type and line) and per output (`output logits`, or `output output0`,
 * `output output1`, ... by position where the trace names none, its type and line), with two
 * peripheries: the model's interface.  Edges follow the tensors; parameters have no node (an
 * output that returns one says which).  netdot.c draws the Caffe net with the same pieces. */

/* Whether s starts with a well-formed UTF-8 sequence of n > 1 bytes (no overlong form, no
 * surrogate, nothing past U+10FFFF); n is 0 when it does not. */
static int
utf8_seq(const unsigned char *s)
{
	int n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
						 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
										  : 0;
	unsigned char lo = s[0] == 0xe0 ? 0xa0 : s[0] == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = s[0] == 0xed ? 0x9f : s[0] == 0xf4 ? 0x8f : 0xbf;

	for (int i = 1; i < n; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;
	return n;
}

void
dot_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p >= 0x80 ? utf8_seq(p) : 1;
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			/* shown as the trace spells it: a name's line end is not a label's */
			fprintf(f, "\\\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
			p++;
		} else if (*p < 0x20 || *p == 0x7f || n == 0) {
			fprintf(f, "\\\\x%02x", *p++);
		} else {
			fwrite(p, 1, (size_t)n, f);
			p += n;
		}
	}
}

void
dot_trace_line(Ctx *c, FILE *f, uint32_t off)
{
	const char *base = strrchr(c->path, '/');

	dot_string(f, base ? base + 1 : c->path);
	fprintf(f, ":%u", diag_line_of(c, off, NULL));
}

/* An edge into node `to` from the producer of every tensor in l (lists included); parameters
 * have no node of their own. */
static void
dot_edges(FILE *f, const Lit *l, uint32_t to)
{
	if (l->kind == L_LIST) {
		for (uint32_t i = 0; i < l->n; i++)
			dot_edges(f, &l->u.list[i], to);
		return;
	}
	if (l->kind != L_VALUE)
		return;
	if (l->u.v->kind == VK_OP)
		fprintf(f, "  n%u -> n%u;\n", l->u.v->def->idx, to);
	else if (l->u.v->kind == VK_INPUT)
		fprintf(f, "  in%u -> n%u;\n", l->u.v->id, to);
}

static void
dot_handle(FILE *f, uint32_t handle)
{
	if (handle == NO_HANDLE)
		fputc('_', f);
	else
		fprintf(f, "%%%u", handle);
}

void
emit_dot(Ctx *c, FILE *f)
{
	char t[TYPE_STR_MAX];

	fputs("digraph ptcc {\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n", f);
	for (size_t i = 0; i < c->g.inputs.n; i++) {
		Value *v = c->g.inputs.v[i];
		fprintf(f, "  in%u [shape=ellipse, peripheries=2, label=\"input ", v->id);
		dot_handle(f, v->handle);
		if (v->name) {
			fputc(' ', f);
			dot_string(f, v->name);
		}
		fprintf(f, "\\n%s\\n", type_str(&v->type, t, sizeof t));
		dot_trace_line(c, f, v->pos);
		fputs("\"];\n", f);
	}
	for (Node *n = c->g.first; n; n = n->next) {
		fprintf(f, "  n%u [label=\"", n->idx);
		for (unsigned r = 0; r < n->nres; r++) {
			fputs(r ? ", " : "", f);
			dot_handle(f, n->res[r].handle);
		}
		fprintf(f, " = %s", optab[n->op].name);
		for (unsigned r = 0; r < n->nres; r++)
			fprintf(f, "\\n%s", type_str(&n->res[r].type, t, sizeof t));
		if (n->scope && *n->scope->name) {
			fputs("\\n", f);
			dot_string(f, n->scope->name);
		}
		fputs("\\n", f);
		dot_trace_line(c, f, n->loc.begin);
		fputs("\"];\n", f);
		for (unsigned k = 0; k < n->nslot; k++)
			dot_edges(f, &n->arg[k], n->idx);
	}
	for (size_t i = 0; i < c->g.outputs.n; i++) {
		const Output *o = &c->g.outputs.v[i];
		const Value *v = o->ref.kind == L_VALUE ? o->ref.u.v : NULL;
		fprintf(f, "  out%zu [shape=ellipse, peripheries=2, label=\"output ", i);
		if (o->name)
			dot_string(f, o->name);
		else
			fprintf(f, "output%zu", i);
		if (v && (v->kind == VK_PARAM || v->kind == VK_CONST)) {
			fputs("\\n$", f); /* no edge says what it returns */
			dot_string(f, v->name);
		}
		if (v)
			fprintf(f, "\\n%s", type_str(&v->type, t, sizeof t));
		fputs("\\n", f);
		dot_trace_line(c, f, o->loc.begin);
		fputs("\"];\n", f);
		if (v && v->kind == VK_OP)
			fprintf(f, "  n%u -> out%zu;\n", v->def->idx, i);
		else if (v && v->kind == VK_INPUT)
			fprintf(f, "  in%u -> out%zu;\n", v->id, i);
	}
	fputs("}\n", f);
}
