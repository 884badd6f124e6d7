/* backend.c: the back end's pipeline, lower -> barriers -> fuse -> name -> codegen, the net verified after
 * each rewrite. */
#include "net.h"

#include <string.h>

int
compile_model(Ctx *c, const char *prototxt, const char *caffemodel, const char *target, int olevel)
{
	Net net;
	int status;

	net_init(&net, c, olevel, target, c->weights != NULL);
	if (!lower(&net)) {
		net_free(&net);
		return 1;
	}
	net_verify(&net, "lowering");
	opencv_barriers(&net);
	net_verify(&net, "the OpenCV fusion barriers");
	fuse(&net);
	if (!prototxt) {
		net_free(&net);
		return 0;
	}
	name_net(&net);
	if (!net.name) {
		const char *base = strrchr(c->path, '/');
		net.name = base ? base + 1 : c->path;
	}
	status = codegen(&net, prototxt, caffemodel);
	net_free(&net);
	return status;
}
