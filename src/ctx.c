/* ctx.c: a compilation's context: made, opened on a trace file, freed. */
#include "ptcc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
ctx_init(Ctx *c)
{
	memset(c, 0, sizeof *c);
	c->strings.arena = &c->arena;
	c->shapes.arena = &c->arena;
	c->lists.arena = &c->arena;
	c->fd = -1;
	c->max_errors = 20;
	c->last_syntax_line = 0;
}

bool
ctx_open(Ctx *c, const char *path)
{
	c->path = path;
	c->fp = fopen(path, "rb");
	if (!c->fp) {
		io_error(c, "cannot open '%s': %s", path, strerror(errno));
		return false;
	}
	c->fd = open(path, O_RDONLY);
	return true;
}

void
ctx_free(Ctx *c)
{
	if (c->fp)
		fclose(c->fp);
	if (c->fd >= 0)
		close(c->fd);
	weights_free(c->weights);
	resolve_free(c);
	free(c->parse.args.v);
	free(c->parse.lits.v);
	free(c->parse.results.v);
	free(c->parse.types.v);
	free(c->parse.dims.v);
	free(c->tmpdims.v);
	free(c->parse.strbuf);
	free(c->g.params.v);
	free(c->g.inputs.v);
	free(c->g.outputs.v);
	free(c->g.events.v);
	map_free(&c->params_by_name);
	intern_free(&c->strings);
	word_intern_free(&c->shapes);
	word_intern_free(&c->lists);
	arena_free(&c->arena);
}
