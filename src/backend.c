/* backend.c: the back end's pipeline, shuffles -> lower -> barriers -> fuse -> name -> codegen,
 * the net verified after each rewrite (and printed after the pass --dump-net names, drawn after the
 * one --emit=dot --after names). */
#include "net.h"

#include <string.h>

/* The passes --dump-net can name, in pipeline order. */
const char *const backend_phases[] = {"lower", "barriers", "fuse", NULL};

static void
after(Net *net, const char *phase)
{
	Ctx *c = net->c;

	if (c->dump_net && strcmp(c->dump_net, phase) == 0)
		net_dump(net, stdout, phase);
	if (c->draw_net && strcmp(c->draw_net, phase) == 0)
		net_dot(net, c->draw_out, phase);
}

int
compile_model(Ctx *c, const char *prototxt, const char *caffemodel, const char *target, int olevel)
{
	Net net;
	int status;

	net_init(&net, c, olevel, target, c->weights != NULL);
	match_shuffles(&net);
	if (!lower(&net)) {
		net_free(&net);
		return 1;
	}
	net_verify(&net, "lowering");
	after(&net, "lower");
	opencv_barriers(&net);
	net_verify(&net, "the OpenCV fusion barriers");
	after(&net, "barriers");
	fuse(&net);
	/* fuse's net is the one codegen writes: drawn, it shows the names written */
	if (prototxt || (c->draw_net && strcmp(c->draw_net, "fuse") == 0)) {
		name_net(&net);
		if (!net.name) {
			const char *base = strrchr(c->path, '/');
			net.name = base ? base + 1 : c->path;
		}
	}
	after(&net, "fuse");
	if (!prototxt) {
		net_free(&net);
		return 0;
	}
	status = codegen(&net, prototxt, caffemodel);
	net_free(&net);
	return status;
}
