/* diag.c: diagnostics in GCC's form.
 *
 *     run.log:12:5: error: unknown op 'conv2e'; did you mean 'conv2d'?
 *       %3 = conv2e(%2, $w)
 *            ^~~~~~
 *
 * Locations are byte offsets; the line is found in the table of line starts that the lexer
 * fills, and its text is read back from the file (the trace is streamed, never held in memory).
 * Columns count characters (UTF-8 sequences count one).  Colour only when stderr is a terminal
 * and NO_COLOR is unset.
 */
#include "onnx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const level_name[] = {"error", "warning", "note"};
static const char *const level_color[] = {"\033[1;31m", "\033[1;35m", "\033[1;36m"};

/* The line holding byte `off`, and where it starts.  Diagnostics come mostly in file order, so the
 * scan starts from the last answer when it can; the trace is never held in memory. */
uint32_t
diag_line_of(Ctx *c, uint32_t off, uint32_t *line_start)
{
	char buf[65536];
	uint32_t at, line, start;

	if (c->onnx) { /* an ONNX model has no lines: a position is a node's index */
		if (line_start)
			*line_start = off;
		return off;
	}
	if (c->cur_line == 0 || off < c->cur_off) {
		c->cur_off = c->cur_scan = 0;
		c->cur_line = 1;
	}
	/* [cur_off, cur_scan) has no line end: only what is past it needs reading, else many
	 * diagnostics on one long line would each read it from its start again */
	at = c->cur_scan > c->cur_off ? c->cur_scan : c->cur_off;
	start = c->cur_off;
	line = c->cur_line;
	while (at < off && c->fd >= 0) {
		size_t want = off - at < sizeof buf ? off - at : sizeof buf, i;
		ssize_t r = pread(c->fd, buf, want, at);

		if (r <= 0)
			break;
		for (i = 0; i < (size_t)r; i++)
			if (buf[i] == '\n') {
				line++;
				start = at + (uint32_t)i + 1;
			}
		at += (uint32_t)r;
	}
	c->cur_off = start;
	c->cur_line = line;
	c->cur_scan = at;
	if (line_start)
		*line_start = start;
	return line;
}

/* Read the line starting at `start` into a malloc'd string without its line end. */
static char *
read_line(Ctx *c, uint32_t start)
{
	size_t cap = 256, n = 0;
	char *buf;
	off_t off = start;

	if (c->fd < 0)
		return NULL;
	buf = xmalloc(cap);
	for (;;) {
		ssize_t r;
		char *nl;

		if (n + 128 > cap) {
			if (cap > (1u << 24)) /* a line longer than 16 MiB: show its start */
				break;
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = pread(c->fd, buf + n, cap - n - 1, off + (off_t)n);
		if (r <= 0)
			break;
		nl = memchr(buf + n, '\n', (size_t)r);
		if (nl) {
			n = (size_t)(nl - buf);
			break;
		}
		n += (size_t)r;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
	return buf;
}

static size_t
utf8_count(const char *s, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			k++;
	return k;
}

static void
vdiag_in(Ctx *c, DiagLevel level, Loc loc, const char *file, const char *fmt, va_list ap)
{
	uint32_t line = 0, col = 0, start = 0;
	char *text = NULL;
	const char *bold = c->color ? "\033[1m" : "", *reset = c->color ? "\033[0m" : "";

	if (c->stopped)
		return;
	if (level == DIAG_ERROR && c->max_errors > 0 && c->nerrors >= c->max_errors) {
		fprintf(stderr, "%s%s:%s %s%s:%s too many errors (%d), stopping\n", bold, c->path,
			reset, c->color ? level_color[0] : "", "error", reset, c->nerrors);
		c->stopped = true;
		c->nerrors++;
		return;
	}
	if (level == DIAG_ERROR)
		c->nerrors++;

	if (!file && loc.begin != UINT32_MAX && c->onnx) {
		char where[1200];

		fprintf(stderr, "%s%s: %s:%s %s%s:%s ", bold, c->path,
			onnx_origin(c, loc.begin, where, sizeof where), reset,
			c->color ? level_color[level] : "", level_name[level], reset);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		onnx_origin_context(c, loc.begin, stderr);
		return;
	}
	if (!file && loc.begin != UINT32_MAX) {
		line = diag_line_of(c, loc.begin, &start);
		text = read_line(c, start);
		if (text) {
			size_t len = strlen(text), b = loc.begin - start;

			if (b > len)
				b = len;
			col = (uint32_t)utf8_count(text, b) + 1;
		}
	}
	fputs(bold, stderr);
	if (file)
		fprintf(stderr, "%s:", file);
	else if (text)
		fprintf(stderr, "%s:%u:%u:", c->path, line, col);
	else
		fprintf(stderr, "%s:", c->path);
	fprintf(stderr, "%s %s%s:%s ", reset, c->color ? level_color[level] : "", level_name[level],
	        reset);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (text) {
		size_t len = strlen(text), b = loc.begin - start, e, i;
		char *mark, *m;

		if (b > len)
			b = len;
		e = loc.end > loc.begin ? loc.end - start : b + 1;
		if (e > len)
			e = len > b ? len : b + 1;
		fprintf(stderr, "%s\n", text);
		/* the marker line is built whole and written at once: stderr is unbuffered, and a
		 * character at a time is a write per character of a long line */
		mark = m = xmalloc(e + 1);
		/* pad with the line's own tabs so the caret lines up */
		for (i = 0; i < b; i++)
			if (text[i] == '\t')
				*m++ = '\t';
			else if (((unsigned char)text[i] & 0xc0) != 0x80)
				*m++ = ' ';
		fwrite(mark, 1, (size_t)(m - mark), stderr);
		fputs(c->color ? "\033[1;32m" : "", stderr);
		m = mark;
		*m++ = '^';
		for (i = b + 1; i < e; i++)
			if (((unsigned char)text[i] & 0xc0) != 0x80)
				*m++ = '~';
		fwrite(mark, 1, (size_t)(m - mark), stderr);
		fprintf(stderr, "%s\n", reset);
		free(mark);
	}
	free(text);
}

void
vdiag(Ctx *c, DiagLevel level, Loc loc, const char *fmt, va_list ap)
{
	vdiag_in(c, level, loc, NULL, fmt, ap);
}

void
diag(Ctx *c, DiagLevel level, Loc loc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag_in(c, level, loc, NULL, fmt, ap);
	va_end(ap);
}

void
diag_file(Ctx *c, DiagLevel level, const char *file, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag_in(c, level, NO_LOC, file, fmt, ap);
	va_end(ap);
}

void
io_error(Ctx *c, const char *fmt, ...)
{
	bool stopped = c->stopped;
	int max_errors = c->max_errors;
	va_list ap;

	c->stopped = false;
	c->max_errors = 0;
	va_start(ap, fmt);
	vdiag_in(c, DIAG_ERROR, NO_LOC, "ptcc", fmt, ap);
	va_end(ap);
	c->stopped = stopped;
	c->max_errors = max_errors;
}

void
usage_error_in(Ctx *c, const char *fmt, ...)
{
	int max_errors = c->max_errors;
	va_list ap;

	if (c->input_shapes.usage_error)
		return;
	c->stopped = false;
	c->max_errors = 0;
	va_start(ap, fmt);
	vdiag_in(c, DIAG_ERROR, NO_LOC, "ptcc", fmt, ap);
	va_end(ap);
	fputs("Try 'ptcc --help' for more information.\n", stderr);
	c->max_errors = max_errors;
	c->input_shapes.usage_error = true;
	c->stopped = true;
}

/* The span of a literal: from its first byte to the end of its text, found by scanning the source
 * for the comma, bracket or parenthesis that ends it at nesting depth 0. */
Loc
lit_loc(Ctx *c, const Lit *l)
{
	char buf[4096];
	ssize_t r;
	int depth = 0;
	bool str = false;
	ssize_t i;
	uint32_t end;

	if (l->pos == UINT32_MAX)
		return NO_LOC;
	if (c->fd < 0 || (r = pread(c->fd, buf, sizeof buf, l->pos)) <= 0)
		return (Loc){l->pos, l->pos + 1};
	end = l->pos;
	for (i = 0; i < r; i++) {
		char ch = buf[i];

		if (str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				str = false;
			else if (ch == '\n')
				break;
			continue;
		}
		if (ch == '"')
			str = true;
		else if (ch == '[' || ch == '(')
			depth++;
		else if (ch == ']' || ch == ')') {
			if (depth == 0)
				break;
			depth--;
		} else if ((ch == ',' && depth == 0) || ch == '\n' || ch == '\r' || ch == '#')
			break;
		else if ((ch == ' ' || ch == '\t') && depth == 0)
			continue;
		end = l->pos + (uint32_t)i + 1;
	}
	if (end == l->pos)
		end++;
	return (Loc){l->pos, end};
}

Loc
type_loc(Ctx *c, const Type *t)
{
	char buf[2048];
	ssize_t r, i;

	if (t->pos == UINT32_MAX)
		return NO_LOC;
	if (c->fd < 0 || (r = pread(c->fd, buf, sizeof buf, t->pos)) <= 0)
		return (Loc){t->pos, t->pos + 1};
	for (i = 0; i < r; i++)
		if (buf[i] == ']' || buf[i] == '\n')
			return (Loc){t->pos, t->pos + (uint32_t)i + (buf[i] == ']')};
	return (Loc){t->pos, t->pos + 1};
}

/* The token at pos: a run of name-chars after an optional '%' or '$', or a quoted string. */
Loc
value_loc(Ctx *c, const Value *v)
{
	char buf[1024];
	ssize_t r, i = 0;
	bool str = false;

	if (v->pos == UINT32_MAX)
		return NO_LOC;
	if (c->fd < 0 || (r = pread(c->fd, buf, sizeof buf, v->pos)) <= 0)
		return (Loc){v->pos, v->pos + 1};
	if (buf[0] == '%' || buf[0] == '$')
		i = 1;
	if (i < r && buf[i] == '"')
		str = true, i++;
	for (; i < r; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (str) {
			if (ch == '\\')
				i++;
			else if (ch == '"') {
				i++;
				break;
			} else if (ch == '\n')
				break;
		} else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' ||
			     ch >= 0x80))
			break;
	}
	if (i == 0)
		i = 1;
	return (Loc){v->pos, v->pos + (uint32_t)i};
}

/* The i-th type after the op's closing parenthesis: "... ) : f32[1], f32[2] @ ...". */
Loc
ann_loc(Ctx *c, const Node *n, int k)
{
	uint32_t start;
	char *text;
	size_t i, b;
	int depth = 0, idx = 0;
	bool str = false;
	Loc loc = n->loc;

	diag_line_of(c, n->loc.begin, &start);
	if (!(text = read_line(c, start)))
		return loc;
	/* the matching ')' of the '(' after the op name */
	for (i = n->loc.end - start; text[i]; i++) {
		if (str) {
			if (text[i] == '\\' && text[i + 1])
				i++;
			else if (text[i] == '"')
				str = false;
			continue;
		}
		if (text[i] == '"')
			str = true;
		else if (text[i] == '(' || text[i] == '[')
			depth++;
		else if ((text[i] == ')' || text[i] == ']') && --depth == 0 && text[i] == ')')
			break;
	}
	if (!text[i])
		goto out;
	for (i++; text[i] == ' ' || text[i] == '\t'; i++)
		;
	if (text[i] != ':')
		goto out;
	for (i++;; i++) {
		for (; text[i] == ' ' || text[i] == '\t'; i++)
			;
		b = i;
		for (; text[i] && text[i] != ']'; i++)
			;
		if (!text[i])
			goto out;
		if (idx++ == k) {
			loc = (Loc){start + (uint32_t)b, start + (uint32_t)i + 1};
			goto out;
		}
		for (i++; text[i] == ' ' || text[i] == '\t'; i++)
			;
		if (text[i] != ',')
			goto out;
	}
out:
	free(text);
	return loc;
}
