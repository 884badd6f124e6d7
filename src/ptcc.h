/* ptcc.h: the whole compiler in one header.
 *
 * Reading order: locations and diagnostics, literals and types, the IR (values, nodes, scopes,
 * graph), the op table, then one banner per source file with its entry points.  The front end's
 * pipeline (frontend.c, called by the parser for each line, then main.c) is
 *
 *     parse (lexer.l, parser.y) -> bind (ops.c) -> resolve (resolve.c) -> shape (shape.c)
 *         -> emit (emit.c), or weights (weights.c) and the back end (backend.c, net.h)
 *
 * Every IR object lives in the compilation's arena (Ctx.arena) and is freed with it.
 *
 * For a back end, after parse() and resolve_finish() succeed:
 *   for (Node *n = c->g.first; n; n = n->next)   live ops in trace order (dead code removed)
 *     optab[n->op].name, op_base(n->op) == OP_x   the op (enum Op from ops.def; relu_'s base: relu)
 *     op_arg(n, ARG(conv2d, stride))              bound arguments, defaults filled in; tensors are
 *                                                 L_VALUE (u.v), lists L_LIST (u.list[n])
 *     lit_int_list(l, out, 2)                     an int or list of ints, PyTorch's int[2]
 *     n->res[i]: Value                            results: type (dtype, dims), prev (in-place),
 *                                                 alias (view group), id, handle, nuse
 *     n->scope->name / ->cls / ->parent           the module scope, for layer names
 *     n->loc, lit_loc(), error_at()               diagnostics at the op's line
 *   c->g.inputs, c->g.outputs, c->g.params        model inputs, outputs (Output.ref.u.v), params
 *   weights_load(c, &io_error); v->tensor         the safetensors entry of a param/const value;
 *   tensor_f32(c->weights, t)                     its data as float (F32 in place, else converted)
 */
#ifndef PTCC_H
#define PTCC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

typedef struct Ctx Ctx;
typedef struct Lit Lit;
typedef struct Type Type;
typedef struct Value Value;
typedef struct Node Node;
typedef struct Scope Scope;
typedef struct ScopeEvent ScopeEvent;
typedef struct Output Output;
typedef struct Graph Graph;
typedef struct OpInfo OpInfo;
typedef struct OpParam OpParam;
typedef struct Tensor Tensor;
typedef struct Weights Weights;
typedef struct ValueCheck ValueCheck; /* valuecheck.c */
typedef struct ValueScan ValueScan;
typedef struct OutFile OutFile; /* outfile.c */
typedef struct Pass Pass;       /* copypass.c */
typedef struct Resolver Resolver;

/* ---- locations ------------------------------------------------------------------------------- */

/* A span of the trace, in byte offsets [begin, end).  Line and column are worked out only when a
 * diagnostic is printed. */
typedef struct Loc {
	uint32_t begin, end;
} Loc;

#define NO_LOC ((Loc){UINT32_MAX, UINT32_MAX})

/* ---- literals and types ---------------------------------------------------------------------- */

typedef enum Dtype {
	DT_F16, DT_BF16, DT_F32, DT_F64, DT_I8, DT_I16, DT_I32, DT_I64, DT_U8, DT_BOOL,
	DT_NTYPES,
	DT_UNKNOWN = 0xff, /* a type not known (not annotated, or not inferred after an error) */
} Dtype;

extern const char *const dtype_name[DT_NTYPES];  /* "f32" */
extern const char *const dtype_stname[DT_NTYPES]; /* safetensors' "F32" */
extern const uint8_t dtype_size[DT_NTYPES];       /* bytes per element */
int dtype_lookup(const char *name);               /* -1 if not a dtype */
bool dtype_is_float(int dt);

enum { MAX_DIMS = 64, MAX_NEST = 64 };

/* A tensor type: dtype and shape.  dims is interned (Ctx.shapes), so equal shapes share storage. */
struct Type {
	uint8_t dtype; /* Dtype */
	uint8_t ndim;
	uint16_t pad_;
	uint32_t pos;  /* byte offset of the type's text in the trace (annotations), or
	                  UINT32_MAX */
	const int64_t *dims;
};

bool type_known(const Type *t);
bool type_equal(const Type *a, const Type *b);
bool type_numel(const Type *t, int64_t *numel); /* false on overflow */
/* The type's size in bytes, checked as a whole (each dimension alone may fit while the product
 * does not); false on overflow or an unknown dtype. */
bool type_bytes(const Type *t, int64_t *bytes);
/* Write "f32[1,3,224,224]" into buf (always NUL-terminated); returns buf. */
char *type_str(const Type *t, char *buf, size_t size);
enum { TYPE_STR_MAX = 64 * 21 + 16 };

/* Literal kinds: an argument value as written, or bound by resolve. */
typedef enum LitKind {
	L_ABSENT,   /* a parameter slot the call did not pass: the schema default applies */
	L_NONE,
	L_BOOL,     /* u.i: 0 or 1 */
	L_INT,      /* u.i */
	L_FLOAT,    /* u.f */
	L_STR,      /* u.s, interned */
	L_SYM,      /* u.s: a symbol (dtype, memory format) */
	L_ELLIPSIS,
	L_LIST,     /* u.list[n] */
	L_SLICE,    /* u.list[3]: start, stop, step */
	L_HANDLE,   /* u.i: a tensor handle as written; resolve turns it into L_VALUE */
	L_PARAM,    /* u.s: a $name as written; resolve turns it into L_VALUE */
	L_VALUE,    /* u.v: an SSA value (a tensor) */
} LitKind;

struct Lit {
	uint32_t kind : 8;  /* LitKind */
	uint32_t n : 24;    /* L_LIST: element count */
	uint32_t pos;       /* byte offset of the literal in the trace; lit_loc gives the span */
	union {
		int64_t i;
		double f;
		const char *s;
		Lit *list;
		Value *v;
	} u;
};

enum { MAX_LIST = (1 << 24) - 1 };

/* ---- IR -------------------------------------------------------------------------------------- */

typedef enum ValueKind {
	VK_INPUT,  /* an `input` line */
	VK_PARAM,  /* a `param` line */
	VK_CONST,  /* a `const` line */
	VK_OP,     /* a result of a node */
	VK_POISON, /* a result of an op line that failed before it became a node (an unknown op,
	              say) */
} ValueKind;

enum { NO_HANDLE = UINT32_MAX };

/* A value in SSA form: defined once.  An in-place write in the trace gives a new Value whose
 * `prev` is the value it overwrote; views share an alias group (alias points at the group's
 * root).  64 bytes: the front end holds one per op line. */
struct Value {
	Type type;            /* inferred by shape; declared for inputs, params and consts.
	                         Before shape runs, an op result's annotation (when V_ANNOTATED) */
	Value *alias;         /* root of its alias group: itself unless a view or an in-place
	                         write */
	union {
		struct {          /* VK_OP */
			Node *def;    /* producing node */
			Value *prev;  /* the value this one overwrote in place, or NULL */
		};
		struct {          /* VK_INPUT, VK_PARAM, VK_CONST */
			const char *name;     /* input name or NULL; the tensor's name */
			const Tensor *tensor; /* params and consts: the weights file's entry,
			                         once read */
		};
	};
	uint32_t handle;      /* handle number in the trace, or NO_HANDLE (params, `_`) */
	uint32_t id;          /* dense SSA number, set by resolve */
	uint32_t nuse;        /* uses by live nodes and outputs */
	uint32_t last_use;    /* Node.idx of the last reader */
	uint32_t pos;         /* byte offset of the token that defines it; value_loc gives the
	                         span */
	uint16_t res;         /* index among def's results */
	uint8_t kind;         /* ValueKind */
	uint8_t flags;        /* V_ bits */
};

enum {
	V_OUTPUT = 1, V_ANNOTATED = 2, V_SHARED = 4, /* alias root: a view gave its storage a
	                                                second handle */
	V_POISON = 8, /* its line had an error (reported): whatever reads it is skipped, not
	                 reported again */
};

/* One op call.  arg[] has one entry per parameter of the op's schema (OpInfo.params), in schema
 * order; a slot the call did not pass is L_ABSENT, and op_arg() gives the default then.  After
 * resolve, every tensor reference in arg[] (nested in lists too) is an L_VALUE. */
struct Node {
	uint32_t op : 12;    /* index into optab (enum Op) */
	uint32_t nres : 8;
	uint32_t nslot : 8;
	uint32_t writes : 1; /* writes its first argument in place (F_INPLACE, inplace=true) */
	uint32_t dead : 1;   /* removed by dead-code elimination */
	uint32_t idx;        /* position in the trace's op order (stable, survives dead-code
	                        removal) */
	Loc loc;         /* the op name: the representative token */
	Scope *scope;    /* innermost open module scope, or NULL */
	Lit *arg;        /* nslot bound arguments */
	const char *src; /* the "@" source position, or NULL */
	Node *next;
	Value res[];     /* nres results */
};

/* A module scope: one `call` ... `return` pair. */
struct Scope {
	const char *name;  /* qualified module name; "" is the root module */
	const char *cls;   /* module class */
	Scope *parent;
	Loc loc;           /* the call line's name token */
	uint32_t depth;    /* 1 for a top-level scope */
	uint32_t id;
};

/* Calls and returns in trace order, interleaved with nodes by `before`: the event comes before the
 * node whose idx is `before` (or after all nodes). */
struct ScopeEvent {
	Scope *scope;
	uint32_t before;
	bool is_return;
};

struct Output {
	Lit ref;          /* L_HANDLE or L_PARAM as written; L_VALUE after resolve */
	const char *name; /* or NULL */
	Loc loc;
};

struct Graph {
	int64_t version;
	bool ssa;            /* the header says `ssa`: each handle is defined once (--emit=ir's
	                        form, §2) */
	const char *weights; /* as written in the `weights` line, or NULL */
	Loc weights_loc;
	VEC(Value *) params; /* `param` and `const` lines in order */
	VEC(Value *) inputs;
	VEC(Output) outputs;
	VEC(ScopeEvent) events;
	Node *first, *last;  /* live nodes in trace order */
	uint32_t nnodes;     /* live nodes */
	uint32_t nidx;       /* nodes ever parsed (Node.idx bound) */
	uint32_t nvalues;    /* SSA values numbered by resolve */
	uint32_t nscopes;
	uint32_t max_handle;
};

/* ---- the op table (ops.def, ops.c) ----------------------------------------------------------- */

typedef bool ShapeFn(Ctx *c, Node *n, Type *out);

/* Op flags: ops.def's flags column. */
enum {
	F_VIEW = 1,    /* the result may alias the first argument */
	F_INPLACE = 2, /* writes its first argument: its result handle must be that
	                      argument's */
	F_DROPOUT = 4, /* the dropout family: identity in eval mode, so inplace=true writes
	                      nothing */
	F_DIM1 = 8,
	F_DIM2 = 16,
	F_DIM3 = 32,    /* spatial axes: conv1d, max_pool2d, avg_pool3d */
	F_INDICES = 64, /* may return the indices of its maxima as a second result */
	F_OVERLOADED =
		128, /* several PyTorch signatures: recorded as called, not in the spec's table */
};
#define F_DIMS (F_DIM1 | F_DIM2 | F_DIM3)

/* One enumerator per row of ops.def, and one for each in-place twin right after its op. */
enum Op {
#define INPLACE(twin) OP_##twin,
#define NO_INPLACE
#define OP(name, inplace, fl, sh, lo, layers, targets, params) OP_##name, inplace
#include "ops.def"
#undef OP
#undef NO_INPLACE
#undef INPLACE
	OP_COUNT
};

/* Argument slots.  struct OpArgs_conv2d has one char member per parameter of conv2d, in order,
 * so that ARG(conv2d, stride) is stride's slot: a constant expression that shape.c and lower.c
 * index arg[] with, and a compile error for a parameter the op does not have.  (ops.c asserts
 * that no struct is padded.) An in-place twin uses its op's slots: ARG(relu, input) for relu_
 * too. */
#define A(name, type, def) char name;
#define AA(name, alias, type, def) char name;
#define OP(name, inplace, fl, sh, lo, layers, targets, params) struct OpArgs_##name { params };
#include "ops.def"
#undef OP
#undef AA
#undef A
#define ARG(op, param) ((int)offsetof(struct OpArgs_##op, param))

/* Parameter type masks (ops.c's type table turns ops.def's type names into these). */
enum {
	M_TENSOR = 1 << 0, M_NONE = 1 << 1, M_BOOL = 1 << 2, M_INT = 1 << 3, M_FLOAT = 1 << 4,
	M_STR = 1 << 5, M_SYM = 1 << 6, M_INTLIST = 1 << 7, M_FLOATLIST = 1 << 8, M_TLIST = 1 << 9,
	M_ANY = 1 << 10, M_ELLIPSIS = 1 << 11, M_SLICE = 1 << 12, M_LIST = 1 << 13,
	M_POS = 1 << 14, /* not a type: the canonical log writes every parameter up to this one
	                    positionally */
};

struct OpParam {
	const char *name;
	const char *alias; /* another accepted keyword, or NULL */
	uint32_t mask;     /* M_ bits */
	const char *type;  /* the spec's spelling of the type: "int[]|str" */
	Lit def;           /* the default; L_ABSENT: required */
};

struct OpInfo {
	const char *name;
	unsigned flags;
	ShapeFn *shape;
	const OpParam *params;
	uint8_t nparams;
	uint8_t nlead;      /* written positionally in the canonical log (ops_init) */
	int8_t inplace;     /* slot of an `inplace` parameter, or -1 (ops_init) */
	int16_t base;       /* an in-place twin's op (OP_relu for relu_); -1 for an op of its own
	                       row */
};

extern OpInfo optab[OP_COUNT];

void ops_init(void);            /* index the table (idempotent) */
void ops_fini(void);            /* free the index */
/* The op of the row: relu for relu_, else op itself. */
static inline int op_base(int op) { return optab[op].base >= 0 ? optab[op].base : op; }
int op_lookup(const char *name); /* -1 if unknown */
const char *op_suggest(const char *name); /* a close op name, or NULL */
int op_param_index(int op, const char *name); /* -1 if the op has no such parameter */
const Lit *op_arg(const Node *n, int slot); /* the bound value or the schema default */
const Lit *op_arg_named(const Node *n, const char *name); /* same by name; ptcc_die if no such
                                                             param */
/* Bind positional and keyword arguments to the schema's slots; diagnose and return false on
 * error. */
typedef struct RawArg {
	const char *name; /* NULL for positional */
	Loc name_loc;
	Lit v;
} RawArg;
bool op_bind(Ctx *c, Node *n, const RawArg *args, size_t nargs);
/* listops.c: print the op table as text, markdown or python (false for another format). */
bool ops_list(FILE *f, const char *format);

/* ---- the compilation context ----------------------------------------------------------------- */

typedef enum DiagLevel { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

/* An --input option: a shape that replaces an `input` line's (the dtype stays), by the input's
 * name or, without one, by position (the k-th such option sets the k-th input).  main.c parses
 * the option; frontend.c applies it as the input line is read. */
typedef struct InputShape {
	const char *arg;  /* the option's argument as given, for messages: "x=1x3x320x256" */
	char *name;       /* the input's name, or NULL: by position */
	int ndim;
	int64_t dims[MAX_DIMS]; /* each positive */
	Value *input;     /* the input it set, once read */
} InputShape;

struct Ctx {
	Arena arena;
	Intern strings;
	WordIntern shapes;  /* int64 dims arrays */
	WordIntern lists;   /* all-scalar lists */
	Graph g;

	/* source */
	const char *path;   /* as given on the command line */
	FILE *fp;           /* the trace, read by the lexer (through ctx_read) */
	int fd;             /* fp's descriptor, read again (pread) by diagnostics */
	uint64_t nread;     /* bytes the lexer has read */
	bool read_error;    /* the trace could not be read (exit status 2) */
	bool shrink_reported; /* a mapped input shrank, and report_shrunk_input said so */
	uint64_t model_bytes, model_copied; /* the caffemodel (or --emit=log's weights file)
	                                       written, and how much of it the weights pass copied
	                                       (for --stats) */
	const char *model_kind; /* which of the two: "caffemodel" or "weights file" */
	uint32_t nlines;    /* lines read by the lexer */
	uint32_t cur_off, cur_line; /* a known line start and its number, to find lines quickly */
	uint32_t cur_scan;          /* read up to here from cur_off without a line end */

	/* diagnostics */
	int nerrors, max_errors;
	bool color;
	bool stopped;        /* too many errors */
	uint32_t last_syntax_line; /* one syntax error per line */

	bool syntax_error;   /* a lexical or syntax error: order checks then keep quiet */
	Map params_by_name;  /* interned name -> Value*: the param and const declarations */

	/* the front end's working state, which nothing after parsing reads */
	struct {             /* parser.y */
		int phase;           /* which statements may still come */
		bool seen_header, seen_weights;
		Scope *scope;        /* innermost open scope */
		VEC(RawArg) args;    /* scratch: arguments of the op being parsed */
		VEC(Lit) lits;       /* scratch: elements of the lists being parsed */
		VEC(Value) results;  /* scratch: results of the op being parsed */
		VEC(Type) types;     /* scratch: annotations of the op being parsed */
		VEC(int64_t) dims;   /* scratch: dims of the type being parsed */
		char *strbuf; size_t strcap; /* scratch for decoding strings */
	} parse;
	struct {             /* lexer.l */
		uint32_t off;        /* byte offset of the next token */
		int depth;           /* bracket nesting on the current line */
		bool at_bol;         /* no token yet on the current line */
		int comment_from;    /* the start condition a comment interrupted */
		bool overflow;       /* the trace is too large for 32-bit offsets */
	} lex;

	/* shape pass scratch */
	VEC(int64_t) tmpdims;

	Weights *weights;
	ValueCheck *values;  /* the check of the weights' values, from weights_load on */
	struct Resolver *resolver;
	const char *dump_net;  /* --dump-net=PHASE: print the back end's net after that pass, or
	                          NULL */
	struct {             /* --input (frontend.c) */
		InputShape *v;       /* main.c's, in command-line order */
		size_t n;
		bool matched;        /* every one checked against the `input` lines */
		bool reshaped;       /* one changed a declared shape: an op's annotation that
		                        differs from the inferred type only in its dims is then
		                        stale, counted in nstale, not an error */
		uint32_t nstale;
		bool usage_error;    /* one does not fit the trace (exit status 2) */
	} input_shapes;
	const char *draw_net;  /* --emit=dot --after=PHASE: draw the back end's net after that
	                          pass on draw_out (netdot.c), or NULL */
	FILE *draw_out;
	struct OnnxModel *onnx; /* the ONNX model being compiled (onnx.h), or NULL for a trace:
	                           positions are then origin indices, not byte offsets */
};

/* The most bytes a trace may hold: every offset fits in a Loc, below NO_LOC. */
#define TRACE_MAX_BYTES ((uint64_t)UINT32_MAX - 1)

void ctx_init(Ctx *c);
void ctx_free(Ctx *c);
/* Open the trace; false (after a message) on I/O error, and for anything but a regular file of
 * at most TRACE_MAX_BYTES. */
bool ctx_open(Ctx *c, const char *path);
/* The lexer's reads (its YY_INPUT): up to max bytes into buf, 0 at the end.  The end comes early
 * once --max-errors has stopped the diagnostics, past TRACE_MAX_BYTES (lex.overflow, for a file
 * that grew), and on a read error (reported, read_error set). */
size_t ctx_read(Ctx *c, char *buf, size_t max);
struct stat;
/* Open an input file for reading without blocking on it (a FIFO's open waits for a writer) and
 * fstat it: the descriptor, blocking again, or -1 with errno set.  The caller checks st's type:
 * file_kind names anything but a regular file. */
int input_open(const char *path, struct stat *st);
/* input_open for an input that is read whole (the trace, an ONNX model): the descriptor of a
 * regular file, or -1 after an I/O error naming anything else ("'x' is a directory"). */
int input_open_regular(Ctx *c, const char *path, struct stat *st);
/* "a directory", "a FIFO", "a character device", ...; NULL for a regular file */
const char *file_kind(unsigned mode);

/* ---- diag.c ---------------------------------------------------------------------------------- */

/* `file:line:col: error: msg`, the source line and a caret under loc. */
void diag(Ctx *c, DiagLevel level, Loc loc, const char *fmt, ...) PRINTF_LIKE(4, 5);
void vdiag(Ctx *c, DiagLevel level, Loc loc, const char *fmt, va_list ap);
/* `file: error: msg` for a file with no line (the weights file, I/O). */
void diag_file(Ctx *c, DiagLevel level, const char *file, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* `ptcc: error: msg` for an I/O error (a file ptcc cannot open or write): printed past
 * --max-errors too. */
void io_error(Ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* `ptcc: error: msg` and the usage hint, as main.c's usage errors: for a command-line option that
 * does not fit the trace (--input).  Sets input_shapes.usage_error (exit status 2) and stops the
 * diagnostics: what follows from a wrong option is noise. */
void usage_error_in(Ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define error_at(c, loc, ...) diag((c), DIAG_ERROR, (loc), __VA_ARGS__)
#define warning_at(c, loc, ...) diag((c), DIAG_WARNING, (loc), __VA_ARGS__)
#define note_at(c, loc, ...) diag((c), DIAG_NOTE, (loc), __VA_ARGS__)
uint32_t diag_line_of(Ctx *c, uint32_t off, uint32_t *line_start); /* 1-based */
Loc lit_loc(Ctx *c, const Lit *l);                   /* span of a literal from its start */
Loc type_loc(Ctx *c, const Type *t);                 /* span of a type's text */
Loc value_loc(Ctx *c, const Value *v);               /* span of the token that defines v */
Loc ann_loc(Ctx *c, const Node *n, int i);           /* span of the annotation of result i */

/* ---- parse (parser.y, lexer.l) --------------------------------------------------------------- */

bool parse(Ctx *c); /* false if there were errors */

/* ---- frontend.c: the front end's pipeline, called by the parser for each statement ----------- */
void frontend_input(Ctx *c, Value *v);
void frontend_op(Ctx *c, Node *n, const RawArg *args, size_t nargs);
/* A line that failed before it became a node (or whose arguments do not bind). */
void frontend_poison(Ctx *c, const RawArg *args, size_t nargs, const Value *results, size_t nres);
bool frontend_finish(Ctx *c); /* after the last line; false if there were errors */

/* ---- ir.c ------------------------------------------------------------------------------------ */

bool lit_as_int(const Lit *l, int64_t *i);
/* A slice literal over an axis of `size`: first index, length and step, clamped as PyTorch does;
 * false unless its bounds are integers or none and its step is positive. */
bool lit_slice(const Lit *s, int64_t size, int64_t *first, int64_t *len, int64_t *step);
bool lit_as_float(const Lit *l, double *f); /* ints and floats */
/* int or list of ints (the PyTorch int[N] convention: a single int repeats); false if not. */
bool lit_int_list(const Lit *l, int64_t *out, int n);
const char *lit_kind_name(const Lit *l); /* "integer", "list", ... for messages */
Type type_make(Ctx *c, int dtype, const int64_t *dims, int ndim); /* interns dims */
Node *ir_node_new(Ctx *c, int op, int nres, Loc loc);
/* A list literal from items (copied; all-scalar lists are interned and lose their positions). */
Lit ir_list(Ctx *c, Lit *items, size_t n, uint32_t pos);
/* A type from dtype name and dims, diagnosing unknown dtypes, negative dims, too many dims and
 * sizes that overflow; dtype unknown on error. */
Type ir_type(Ctx *c, const char *dtype, Loc dtype_loc, const int64_t *dims, size_t nd, Loc loc);
void ir_append(Ctx *c, Node *n);
void ir_print_lit(FILE *f, const Lit *l, bool ssa);
void ir_print_float(FILE *f, double d); /* shortest text that reads back as d, Python's repr */
void ir_print_string(FILE *f, const char *s);
void ir_print_name(FILE *f, const char *s); /* a PATH if possible, else a STRING */
void ir_print_param_name(FILE *f, const char *s);
bool name_is_path(const char *s);

/* ---- resolve.c: handles to SSA values, in-place writes, views, parameters, dead code --------- */
/* frontend.c calls resolve_input and resolve_node on each statement as the parser goes (while no
 * syntax error has been reported), then resolve_finish binds the outputs, checks aliasing,
 * removes dead ops and numbers the SSA values.  False if there were errors. */

void resolve_input(Ctx *c, Value *v);
void resolve_node(Ctx *c, Node *n);
/* An op line that failed before it became a node: resolve its arguments (their uses count,
 * undefined handles are still reported) and define its result handles as poisoned values. */
void resolve_poison(Ctx *c, const RawArg *args, size_t nargs, const Value *results, size_t nres);
/* Whether an argument of n is poisoned (an earlier line's error), and marking n's results so. */
bool node_reads_poison(const Node *n);
void poison_results(Node *n);
bool resolve_finish(Ctx *c);
void resolve_free(Ctx *c);

/* ---- shape.c: infer every value's type; check annotations and weight shapes ------------------ */
/* Called by frontend_op on each op after resolve_node: infers the result types and checks the
 * annotations.  False after a diagnostic, or when an argument's type is unknown (an earlier
 * error). */
bool shape_node(Ctx *c, Node *n);
/* the rules named in ops.def */
#define OP(name, inplace, fl, sh, lo, layers, targets, params) ShapeFn sh;
#include "ops.def"
#undef OP

/* ---- weights.c ------------------------------------------------------------------------------- */

struct Tensor {
	const char *name;
	uint8_t dtype;
	uint8_t ndim;
	const int64_t *dims;
	int64_t numel;
	uint64_t offset;   /* in the data section */
	uint64_t nbytes;
	const void *data;  /* into the mapping; may be unaligned */
};

/* Read and validate the weights file the trace names and bind every param/const; false on error
 * (diagnosed).  *io_error is set when the failure is an I/O error (exit status 2). */
bool weights_load(Ctx *c, bool *io_error);
/* A tensor of the model that another front end holds (the ONNX model's initializers and
 * constants): weights_load binds the params and consts to these instead of reading a file.
 * t NULL: the (empty) table only. */
void weights_adopt(Ctx *c, const Tensor *t);
/* The path of the weights file the trace's `weights` line names (beside the trace unless
 * absolute); malloc'd. */
char *weights_file(Ctx *c);
/* The tensor as float32, converting (F16, BF16, F64, integers) or copying (unaligned) when
 * needed; the memory belongs to the Weights. */
const float *tensor_f32(Weights *w, const Tensor *t);
float half_to_float(uint16_t h); /* IEEE binary16, as F16 tensors hold it */
/* The element of that dtype at p (little-endian, maybe unaligned) as a double; NaN for an
 * unknown dtype. */
double dtype_value(int dtype, const void *p);
void weights_free(Weights *w);

/* ---- valuecheck.c: NaN, infinities and negative variances in the weights ------------------- */

/* The tensors to check: every float param and const weights_load bound, from the weights file
 * `path` (by weights_load, which keeps the string). */
void value_check_prepare(Ctx *c, const char *path);
void value_check_free(Ctx *c);
/* The tensor whose bytes are exactly [data, data + len) when the check has yet to read it, which
 * it then leaves to the caller (*elem: its element size); NULL otherwise. */
ValueScan *value_check_claim(Ctx *c, const void *data, uint64_t len, int *elem);
/* Every tensor the check has yet to read, queued on p: the caffemodel's weights pass reads them
 * too once the net is written (false if a file could not be read). */
void value_check_queue(Ctx *c, Pass *p);
/* A weights pass that checked tensors could not read a file: errno err, or -1 (it shrank). */
void value_check_failed(Ctx *c, int err);
/* The check's warnings, one per tensor (after reading what no weights pass has); false
 * (after an error: exit status 2) when the file could not be read to the end.  True at once
 * when nothing was loaded. */
bool weights_report(Ctx *c);
/* n elements of s's tensor from element `base` on, whose bytes are at p: what they hold merged
 * into s; several threads may check pieces of one tensor at once. */
void value_scan_piece(ValueScan *s, const unsigned char *p, int64_t base, int64_t n);

/* ---- emit.c ---------------------------------------------------------------------------------- */
void emit_log(Ctx *c, FILE *f);     /* the canonical trace */
void emit_ir(Ctx *c, FILE *f);      /* the resolved graph, every slot and shape */
void emit_summary(Ctx *c, FILE *f);
void emit_dot(Ctx *c, FILE *f);     /* the resolved graph in Graphviz's DOT language */
/* The text of a DOT string between its quotes, as a label shows it: `"` and `\` escaped, and what
 * a name may hold but a label cannot show (control bytes, bytes that are not UTF-8) spelled as
 * the trace's escapes, `\n`, `\x01`. */
void dot_string(FILE *f, const char *s);
/* `run.log:57`: the trace's file name (without its directory) and the line of byte offset off */
void dot_trace_line(Ctx *c, FILE *f, uint32_t off);

/* ---- outfile.c: files written atomically (temporary file, then rename) ----------------------- */

/* One range of weight bytes that the weights pass (copypass.c) reads: checked, copied, or both. */
typedef struct PassItem {
	const unsigned char *data; /* in an input's guarded mapping, or in memory */
	uint64_t len;
	int fd;                    /* data's file, read with pread at `at`; -1: read from memory */
	uint64_t at;
	int elem;                  /* bytes per element (of the check's tensor) */
	ValueScan *scan;           /* its values checked (valuecheck.c), or NULL */
	int64_t to;                /* its place in the output, or -1: not copied */
} PassItem;

struct OutFile {
	Ctx *c;           /* for its error messages */
	const char *path; /* the destination */
	char *tmp;        /* the temporary file beside it */
	FILE *fp;
	char *buf;        /* fp's buffer */
	int error;        /* an errno recorded by a writer that bypasses stdio's error flag */
	/* copypass.c: weights copied by the weights pass (outfile_copy_range) */
	bool no_pass;     /* PTCC_NO_COPY_PASS: the caller writes every range from the mapping */
	Pass *pass;       /* copying the deferred ranges into their holes, from the first one on */
	uint64_t copied;  /* their bytes */
};

/* false after a message; a catchable signal (SIGINT, SIGTERM, ...) until outfile_commit or
 * outfile_abort removes the temporary file before it ends ptcc */
bool outfile_open(Ctx *c, OutFile *o, const char *path);
/* the weights pass finished (the deferred ranges in their holes), flush and close; false (file
 * removed) after a message */
bool outfile_close(OutFile *o);
bool outfile_commit(OutFile *o);  /* rename over the destination; false after a message */
void outfile_abort(OutFile *o);   /* close and remove the temporary file */
/* copypass.c: append [p, p + len) when it lies in a guarded mapping, without touching the
 * mapping's pages (on a VM, the first touch of a mapped page costs more than a copy): from 16 KiB
 * on, the range is deferred to the weights pass, which starts with the first one (the output
 * skips it; the pass reads it from the mapped file, checks its values when it is a tensor the
 * value check has not read yet, and writes it into the hole); a smaller range is read from the
 * file into stdio's buffer.  Returns how many bytes were appended, from the start: 0 when p is in
 * no mapping (or PTCC_NO_COPY_PASS is set); the caller writes it itself.  A file found shorter
 * than its mapping is an error for outfile_close. */
size_t outfile_copy_range(OutFile *o, const void *p, size_t len);
void copypass_init(OutFile *o); /* by outfile_open */
/* Wait for o's weights pass (if one started), helping it; false after an error, which o->error
 * says (a read error also goes to the value check).  cancel: stop it after the pieces begun,
 * for outfile_abort. */
bool copypass_finish(OutFile *o, bool cancel);
/* A weights pass on threads of its own (up to 4, started once 4 MiB are queued): pass_add queues
 * an item, whose pieces any thread then reads, checks and writes into o (NULL: none is copied);
 * pass_finish has the calling thread help until every item is done, then frees the pass.  False
 * after the first read error (*read_error: its errno, or -1 for a file that ended early) or
 * write error (*write_error); cancel: stop after the pieces begun. */
Pass *pass_new(OutFile *o);
void pass_add(Pass *p, PassItem it);
bool pass_finish(Pass *p, bool cancel, int *read_error, int *write_error);
/* The item that reads [data, data + len): from its file when it lies in a guarded mapping. */
PassItem pass_item(const void *data, uint64_t len);
/* weights_write.c: every param and const (bound by weights_load) as a safetensors file, to o
 * (path names it in messages), the tensors that lie in a mapping copied by the kernel; false
 * after an I/O error (reported). */
bool weights_write(Ctx *c, OutFile *o, const char *path);
/* Whether the n outputs (path[i], named in messages as what[i] path[i]: "-o net.prototxt") may be
 * written: each a regular file or a new name, not a symbolic link, not the trace or the weights
 * file it names, and no two the same file (hard links and other spellings too).  False after a
 * message for each that may not (an I/O error: exit status 2).  At most 4. */
bool outputs_check(Ctx *c, const char *const *what, const char *const *path, size_t n);
/* From now until unguard_mapping(p): a SIGBUS reading [p, p + size), a mapping of the weights
 * file `file` that shrank, ends ptcc with `file: error: ...` and exit status 2, the temporary
 * files removed, rather than with the signal.  Up to 16 mappings at a time (the weights file, or
 * an ONNX model and its external data files).  fd is the mapped file, duplicated and kept open
 * until unguard_mapping. */
void guard_mapping(const void *p, size_t size, const char *file, int fd);
void unguard_mapping(const void *p);
/* Whether [p, p + len) lies in a guarded mapping: then *fd reads its file (a descriptor
 * guard_mapping keeps open until unguard_mapping) and *offset is p's place in it.  Readers of
 * a whole weight use the descriptor: pread is cheaper than touching the
 * mapping's pages. */
bool mapping_source(const void *p, size_t len, int *fd, uint64_t *offset);
/* An input that shrank under its mapping: `FILE: error: the weights file shrank ...`, naming
 * the guarded file now shorter than its mapping (the first one if none is), said once per run.
 * False when no mapping is guarded. */
bool report_shrunk_input(Ctx *c);

/* ---- the back end: net.h has its IR; main.c calls compile_model ------------------------------ */

/* Lower, fuse, name and write the model.  Returns the exit status: 0, 1 (diagnosed) or 2 (I/O).
 * With prototxt NULL it writes nothing: lowering, fusion and the net verifier only (--check, and
 * the lowering errors of a trace whose front end already reported some). */
int compile_model(Ctx *c, const char *prototxt, const char *caffemodel, const char *target,
		  int olevel);
extern const char *const backend_phases[]; /* the passes --dump-net names, NULL-terminated */

/* The --target values, defined once: TARGETS(X) calls X(name, bit) for each, in the order the
 * help and the notes list them.  T_PORTABLE: layers.def's mark for a layer type every target
 * has. */
enum {
	T_CAFFE = 1,
	T_CAFFE_MASTER = 2,
	T_OPENCV = 4,
	T_PORTABLE = T_CAFFE | T_CAFFE_MASTER | T_OPENCV,
	T_ALL = T_PORTABLE,
	T_NONE = 0, /* ops.def's targets column */
};
#define TARGETS(X) X("caffe", T_CAFFE) X("caffe-master", T_CAFFE_MASTER) X("opencv", T_OPENCV)
unsigned target_bit(const char *target); /* netcheck.c; 0 for an unknown target */
/* lower.c: ops.def's layers column (space-separated Caffe types) and targets column of op's row */
const char *op_layers(int op);
unsigned op_targets(int op);

#endif
