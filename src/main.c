/* main.c: the command line and the pipeline.
 *
 *     parse -> resolve -> shape -> { emit log | ir | summary | none } | weights -> model
 *
 * Exit status: 0 done; 1 errors in the input; 2 usage or I/O errors.
 */
#include "onnx.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

static void
usage(FILE *f)
{
	fputs("usage: ptcc [options] TRACE.log | MODEL.onnx\n"
	      "Compile a PyTorch trace log (docs/trace-format.md) or an ONNX model to a Caffe "
	      "model.\n"
	      "\n"
	      "  -o FILE            output file (default: the input's name with .prototxt; with "
	      "--emit, stdout)\n"
	      "  -w FILE            caffemodel (default: the prototxt's name with .caffemodel)\n"
	      "  --no-weights       do not write the caffemodel\n"
	      "  --input NAME=DIMS  give input NAME the shape DIMS, e.g. x=1x3x320x256, keeping "
	      "its dtype;\n"
	      "                     DIMS alone sets the inputs in order; repeatable.  Every shape "
	      "is inferred\n"
	      "                     again, and the annotations the new shapes contradict are "
	      "ignored\n"
	      "  --target=NAME      caffe (default) | caffe-master | opencv\n"
	      "  --emit=KIND        model (default) | log (the canonical trace) | ir (the resolved "
	      "graph)\n"
	      "                     | summary | dot (the graph for Graphviz) | none (check the "
	      "trace\n"
	      "                     through lowering for the target, without the weights)\n"
	      "  --after=PHASE      with --emit=dot: draw the Caffe net, not the trace's graph, "
	      "after the\n"
	      "                     pass lower, barriers or fuse (the net written, with its "
	      "names)\n"
	      "  --check            will it deploy? every stage through lowering and the net "
	      "verifier for\n"
	      "                     the target, the weights file checked too; writes nothing\n"
	      "  -O0 | -O1 | -O2    no fusion | default fusions | also fold BatchNorm, linear "
	      "Power and\n"
	      "                     per-channel Scale into the Convolution or InnerProduct "
	      "beside them\n"
	      "  --max-errors=N     stop after N errors (default 20; 0: no limit)\n"
	      "  --stats            print time and memory use of the front end, and the\n"
	      "                     caffemodel's bytes copied by the weights pass, on stderr\n"
	      "  --dump-net=PHASE   print the back end's net after lower, barriers or fuse "
	      "(stdout)\n"
	      "  --list-ops[=FMT]   print the op table: text (default: name, positional count, "
	      "view,\n"
	      "                     parameters) | lowering (targets, layer types) | markdown (the "
	      "spec's\n"
	      "                     table) | python (ptcc/optable.py) | onnx (the ONNX ops read)\n"
	      "  --help             print this help\n"
	      "  --version          print the version\n"
	      "\n"
	      "Exit status: 0 done; 1 errors in the input (diagnostics on stderr); 2 usage or I/O "
	      "errors.\n",
	      f);
}

static NORETURN void usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ptcc: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ptcc --help' for more information.\n", stderr);
	exit(2);
}
/* What ptcc writes: the --emit kinds, defined once (EMIT_CHECK is --check). */
#define EMIT_KINDS(X) \
	X(model, MODEL) X(log, LOG) X(ir, IR) X(summary, SUMMARY) X(dot, DOT) X(none, NONE)
#define X(name, NAME) EMIT_##NAME,
enum { EMIT_KINDS(X) EMIT_CHECK };
#undef X
#define X(name, NAME) #name,
static const char *const emit_names[] = {EMIT_KINDS(X)};
#undef X
#define X(name, bit) name,
static const char *const target_names[] = {TARGETS(X)};
#undef X

/* "a, b<last>c" into buf: the names joined by ", ", the last one by `last` */
static const char *
join_names(char *buf, size_t size, const char *const *names, size_t n, const char *last)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i == 0       ? ""
					: i + 1 == n ? last
						     : ", ",
					names[i]);
	return buf;
}

/* The backend_phases entry named by the argument of option opt, or a usage error. */
static const char *
backend_phase(const char *opt, const char *arg)
{
	char list[128];
	size_t k;

	for (k = 0; backend_phases[k]; k++)
		if (strcmp(arg, backend_phases[k]) == 0)
			return backend_phases[k];
	usage_error("%s=%s: the phase is %s", opt, arg,
		    join_names(list, sizeof list, backend_phases, k, " or "));
}

static int
emit_kind(const char *name)
{
#define X(kind, NAME) \
	if (strcmp(name, #kind) == 0) \
		return EMIT_##NAME;
	EMIT_KINDS(X)
#undef X
	return -1;
}

/* Peak resident memory of this process image: VmHWM, which exec resets (ru_maxrss does not, so
 * it would count the parent's memory too). */
static long
peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f) {
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "VmHWM:", 6) == 0)
				kib = strtol(line + 6, NULL, 10);
		fclose(f);
	}
	if (kib < 0) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		kib = ru.ru_maxrss;
	}
	return kib;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Write the emitted text to path atomically (temporary file, then rename), or to stdout. */
static int
write_text(Ctx *c, const char *path, void (*fn)(Ctx *, FILE *))
{
	OutFile o;

	if (!path || strcmp(path, "-") == 0) {
		fn(c, stdout);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			io_error(c, "cannot write the output: %s", strerror(errno));
			return 2;
		}
		return 0;
	}
	if (!outputs_check(c, (const char *const[]){"-o"}, &path, 1) ||
	    !outfile_open(c, &o, path))
		return 2;
	fn(c, o.fp);
	return outfile_close(&o) && outfile_commit(&o) ? 0 : 2;
}

/* --input [NAME=]DIMS, DIMS written as ptcc-record's --input (1x3x224x224), into *s; a usage
 * error for anything else.  The name is what comes before the last '=' (an input's name may hold
 * any character, its dims no '='). */
static void
parse_input_shape(const char *arg, InputShape *s)
{
	const char *eq = strrchr(arg, '='), *p = eq ? eq + 1 : arg;
	int64_t numel = 1;
	int k;

	memset(s, 0, sizeof *s);
	s->arg = arg;
	if (eq == arg)
		usage_error("--input %s: the name before '=' is empty", arg);
	if (!*p)
		usage_error("--input %s: no shape; the argument is NAME=DIMS or DIMS, e.g. "
			    "x=1x3x224x224",
			    arg);
	for (k = 0;; k++) {
		size_t len = strcspn(p, "x");
		long long d;
		char *end;

		if (len == 0)
			usage_error("--input %s: dimension %d is empty; a shape is written like "
				    "1x3x224x224",
				    arg, k + 1);
		errno = 0;
		d = strtoll(p, &end, 10);
		if (end != p + len || !(*p == '-' || (*p >= '0' && *p <= '9')))
			usage_error("--input %s: '%.*s' is not a dimension; a shape is written "
				    "like 1x3x224x224",
				    arg, (int)len, p);
		if (errno == ERANGE)
			usage_error("--input %s: dimension %d is too large", arg, k + 1);
		if (d <= 0)
			usage_error("--input %s: dimension %d is %lld; every dimension must be "
				    "positive",
				    arg, k + 1, d);
		if (k == MAX_DIMS)
			usage_error("--input %s: more than %d dimensions", arg, MAX_DIMS);
		/* 2^60 elements: the bytes of any dtype's tensor fit in 63 bits */
		if (!ck_mul(numel, d, &numel) || numel > INT64_MAX / 8)
			usage_error("--input %s: more than 2^60 elements", arg);
		s->dims[k] = d;
		p += len;
		if (!*p++)
			break;
	}
	s->ndim = k + 1;
	if (eq) {
		s->name = xmalloc((size_t)(eq - arg) + 1);
		memcpy(s->name, arg, (size_t)(eq - arg));
		s->name[eq - arg] = 0;
	}
}

/* --emit=dot --after=PHASE: the back end draws its net after that pass, onto stdout or path (as
 * write_text writes); a net that does not lower is not drawn, and the file is not written. */
static int
write_net_dot(Ctx *c, const char *path, const char *phase, const char *target, int olevel)
{
	OutFile o;
	bool to_stdout = !path || strcmp(path, "-") == 0;
	int status;

	if (!to_stdout && (!outputs_check(c, (const char *const[]){"-o"}, &path, 1) ||
			   !outfile_open(c, &o, path)))
		return 2;
	c->draw_net = phase;
	c->draw_out = to_stdout ? stdout : o.fp;
	status = compile_model(c, NULL, NULL, target, olevel);
	if (to_stdout) {
		if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
			io_error(c, "cannot write the output: %s", strerror(errno));
			return 2;
		}
		return status;
	}
	if (status) {
		outfile_abort(&o);
		return status;
	}
	return outfile_close(&o) && outfile_commit(&o) ? 0 : 2;
}

/* path with its extension (after the last '.' of the file name) replaced by ext; malloc'd */
static char *
with_extension(const char *path, const char *ext)
{
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
	size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - path) : strlen(path);
	char *s = xmalloc(stem + strlen(ext) + 1);

	memcpy(s, path, stem);
	strcpy(s + stem, ext);
	return s;
}

/* --emit=log of an ONNX model: the trace, and its weights in a safetensors file beside it (named
 * after -o, or after the model beside the model when the trace goes to stdout), which the trace's
 * `weights` line names.  Both written atomically, after outputs_check; nothing on an error. */
static int
write_onnx_log(Ctx *c, const char *out)
{
	bool to_stdout = !out || strcmp(out, "-") == 0, io = false, ok;
	char *st = with_extension(to_stdout ? c->path : out, ".safetensors");
	const char *base = strrchr(st, '/');
	const char *what[] = {"the weights file", "-o"}, *paths[] = {st, out};
	OutFile w, o;
	int status = 2;

	c->g.weights = base ? base + 1 : st;
	if (!outputs_check(c, what, paths, to_stdout ? 1 : 2))
		goto done;
	if (!weights_load(c, &io)) {
		status = io ? 2 : 1;
		goto done;
	}
	if (!outfile_open(c, &w, st))
		goto done;
	if (!to_stdout && !outfile_open(c, &o, out)) {
		outfile_abort(&w);
		goto done;
	}
	ok = weights_write(c, &w, st);
	emit_log(c, to_stdout ? stdout : o.fp);
	if (w.pass) /* the rest of the value check rides along with the weights' copy */
		value_check_queue(c, w.pass);
	if (to_stdout && (fflush(stdout) != 0 || ferror(stdout))) {
		io_error(c, "cannot write the output: %s", strerror(errno));
		ok = false;
	}
	ok = (to_stdout || outfile_close(&o)) && ok;
	ok = outfile_close(&w) && ok;
	/* the trace last: a trace is never left naming weights that were not written */
	if (ok && outfile_commit(&w) && (to_stdout || outfile_commit(&o)))
		status = 0;
	outfile_abort(&w); /* nothing, once committed */
	if (!to_stdout)
		outfile_abort(&o);
	if (status == 0 && to_stdout)
		fprintf(stderr,
			"ptcc: note: the trace's weights are in %s (its 'weights' line names "
			"'%s', beside the trace)\n",
			st, c->g.weights);
done:
	c->g.weights = NULL;
	free(st);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"emit", required_argument, NULL, 'e'},
		{"target", required_argument, NULL, 't'},
		{"no-weights", no_argument, NULL, 'n'},
		{"input", required_argument, NULL, 'i'},
		{"check", no_argument, NULL, 'c'},
		{"max-errors", required_argument, NULL, 'm'},
		{"stats", no_argument, NULL, 's'},
		{"list-ops", optional_argument, NULL, 'L'},
		{"dump-net", required_argument, NULL, 'D'},
		{"after", required_argument, NULL, 'A'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL, *wout = NULL, *target = "caffe", *dump_net = NULL, *draw_net = NULL;
	int emit = EMIT_MODEL, opt, status = 0, max_errors = 20, olevel = 1;
	bool stats = false, ok, io_error = false, no_weights = false;
	VEC(InputShape) inputs = {0};
	size_t k;
	Ctx c;
	double t0, t1, t2;
	char *end, list[128];

	while ((opt = getopt_long(argc, argv, "o:w:O:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h': usage(stdout); return 0;
		case 'V': printf("ptcc %s\n", PACKAGE_VERSION); return 0;
		case 'o': out = optarg; break;
		case 'w': wout = optarg; break;
		case 'n': no_weights = true; break;
		case 'i':
			vec_grow(&inputs);
			parse_input_shape(optarg, &inputs.v[inputs.n++]);
			break;
		case 's': stats = true; break;
		case 'L':
			if (!ops_list(stdout, optarg ? optarg : "text"))
				usage_error("--list-ops=%s: the format is text, lowering, "
					    "markdown, python or onnx",
					    optarg);
			ops_fini();
			return 0;
		case 'c': emit = EMIT_CHECK; break;
		case 'D': dump_net = backend_phase("--dump-net", optarg); break;
		case 'A': draw_net = backend_phase("--after", optarg); break;
		case 'O':
			if (strcmp(optarg, "0") && strcmp(optarg, "1") && strcmp(optarg, "2"))
				usage_error("-O%s: the optimisation level is 0, 1 or 2", optarg);
			olevel = optarg[0] - '0';
			break;
		case 't':
			if (!target_bit(optarg))
				usage_error("unknown target '%s' (%s)", optarg,
					    join_names(list, sizeof list, target_names,
						       sizeof target_names / sizeof *target_names,
						       " or "));
			target = optarg;
			break;
		case 'e':
			if ((emit = emit_kind(optarg)) < 0)
				usage_error("unknown --emit kind '%s' (%s)", optarg,
					    join_names(list, sizeof list, emit_names,
						       sizeof emit_names / sizeof *emit_names,
						       ", "));
			break;
		case 'm':
			errno = 0;
			max_errors = (int)strtol(optarg, &end, 10);
			if (errno || *end || max_errors < 0)
				usage_error("--max-errors=%s: expected a non-negative integer",
					    optarg);
			break;
		default:
			fputs("Try 'ptcc --help' for more information.\n", stderr);
			return 2;
		}
	}
	if (optind != argc - 1)
		usage_error("%s", optind >= argc ? "expected one trace file"
						 : "expected only one trace file");
	if (draw_net && emit != EMIT_DOT)
		usage_error("--after=%s draws the net: it goes with --emit=dot", draw_net);

	ctx_init(&c);
	c.max_errors = max_errors;
	c.dump_net = dump_net;
	c.input_shapes.v = inputs.v;
	c.input_shapes.n = inputs.n;
	c.color = isatty(2) && !getenv("NO_COLOR");
	if (onnx_is_model(argv[optind])) {
		/* an ONNX model: read, then each node through frontend.c's pipeline */
		c.path = argv[optind];
		t0 = now();
		if (!onnx_read(&c, c.path, &io_error)) {
			status = io_error ? 2 : 1;
			goto out;
		}
		ok = onnx_import(&c);
	} else {
		if (!ctx_open(&c, argv[optind])) {
			status = 2;
			goto out;
		}
		t0 = now();
		ok = parse(&c); /* each line through frontend.c's pipeline as it is read */
	}
	t1 = now();
	ok = frontend_finish(&c) && ok;
	t2 = now();
	if (stats) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr,
			"ptcc: stats: lines %zu nodes %u parse+resolve+shape %.6f finish %.6f "
			"total %.6f s; user %.6f sys %.6f s; arena %zu bytes; maxrss %ld KiB\n",
			(size_t)c.nlines, c.g.nidx, t1 - t0, t2 - t1, t2 - t0,
			(double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec,
			(double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec,
			c.arena.used, peak_rss_kib());
	}
	if (c.read_error) {
		status = 2; /* reported by ctx_read */
	} else if (c.input_shapes.usage_error) {
		status = 2; /* an --input that does not fit the trace: reported, nothing else */
	} else if (!ok) {
		status = 1;
		/* the lines without errors still get their lowering errors, in the same run;
		 * poisoned lines (those with errors, and what reads their results) are skipped.
		 * The weights file is read only for a trace without errors: its param lines may
		 * be among them. */
		if ((emit == EMIT_MODEL || emit == EMIT_CHECK || emit == EMIT_NONE) &&
		    !c.syntax_error && !c.stopped)
			compile_model(&c, NULL, NULL, target, olevel);
	} else {
		switch (emit) {
		case EMIT_LOG:
			status = c.onnx ? write_onnx_log(&c, out) : write_text(&c, out, emit_log);
			break;
		case EMIT_IR: status = write_text(&c, out, emit_ir); break;
		case EMIT_SUMMARY: status = write_text(&c, out, emit_summary); break;
		case EMIT_DOT:
			status = draw_net ? write_net_dot(&c, out, draw_net, target, olevel)
					  : write_text(&c, out, emit_dot);
			break;
		case EMIT_NONE: /* every stage through lowering and verification, without the
		                   weights */
			status = compile_model(&c, NULL, NULL, target, olevel);
			break;
		case EMIT_CHECK: { /* the same, and the weights file checked and used as the
		                      compile would */
			bool weights_ok = weights_load(&c, &io_error);
			/* its errors too, in this run */
			int lowered = compile_model(&c, NULL, NULL, target, olevel);
			status = !weights_ok && io_error ? 2 : !weights_ok || lowered ? 1 : 0;
			break;
		}
		case EMIT_MODEL: {
			/* the weights are needed for the caffemodel, and by -O2 to fold
			 * BatchNorm */
			char *prototxt = out ? NULL : with_extension(c.path, ".prototxt");
			char *caffemodel = no_weights || wout ? NULL
							      : with_extension(out ? out : prototxt,
									       ".caffemodel");
			const char *what[] = {out ? "-o" : "the output",
					      wout ? "-w" : "the caffemodel"};
			const char *paths[] = {out ? out : prototxt, wout ? wout : caffemodel};

			/* before anything is read or written: a typo must not destroy an input */
			if (!outputs_check(&c, what, paths, no_weights ? 1 : 2))
				status = 2;
			else if ((!no_weights || olevel >= 2) && !weights_load(&c, &io_error))
				status = io_error ? 2 : 1;
			else
				status = compile_model(&c, out ? out : prototxt,
						       no_weights ? NULL
						       : wout     ? wout
								  : caffemodel,
						       target, olevel);
			free(prototxt);
			free(caffemodel);
			break;
		}
		}
	}
	/* the weights' value check ran in the caffemodel's weights pass (or runs now): its
	 * warnings, and a file that it could not read to the end is an I/O error */
	if (!weights_report(&c))
		status = 2;
	if (stats && c.model_bytes)
		fprintf(stderr,
			"ptcc: stats: %s %" PRIu64 " bytes, %" PRIu64
			" copied by the weights pass\n",
			c.model_kind, c.model_bytes, c.model_copied);
out:
	ctx_free(&c);
	ops_fini();
	for (k = 0; k < inputs.n; k++)
		free(inputs.v[k].name);
	free(inputs.v);
	return status;
}
