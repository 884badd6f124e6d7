/* test_netcheck.c: each rule of the net verifier (src/netcheck.c) firing on a hand-built bad
 * net, and a good net passing.  Each case builds a small Net with net.c's building blocks, runs
 * netcheck() and compares its verdict and message with what is expected.  Prints "N passed, M
 * failed"; exit 1 on any failure. */
#include "net.h"

#include <stdio.h>
#include <string.h>

static Ctx ctx;
static int passed, failed;

static Type
t4(int64_t n, int64_t ch, int64_t h, int64_t w)
{
	int64_t d[4] = {n, ch, h, w};
	return type_make(&ctx, DT_F32, d, 4);
}

/* A net with an Input layer "x" of shape 1x3x8x8; returns its blob. */
static Blob *
start(Net *net, const char *target)
{
	Layer *l;
	Blob *x;

	net_init(net, &ctx, 1, target, false);
	l = net_layer(net, NULL, "Input", NULL);
	l->name = "x";
	PARAM(net, l, input_param, INPUT_PARAMETER);
	x = layer_top(net, l, t4(1, 3, 8, 8));
	x->name = "x";
	x->is_input = true;
	return x;
}

/* A one-bottom, one-top layer named after its top. */
static Layer *
unary(Net *net, const char *type, const char *name, Blob *in, Blob **out)
{
	Layer *l = net_layer(net, NULL, type, NULL);

	l->name = name;
	layer_bottom(net, l, in);
	*out = layer_top(net, l, in->type);
	(*out)->name = name;
	return l;
}

/* An in-place one: its top is its bottom. */
static Layer *
in_place(Net *net, const char *type, const char *name, Blob *b)
{
	Layer *l = net_layer(net, NULL, type, NULL);

	l->name = name;
	layer_bottom(net, l, b);
	arena_vec_push(net->arena, &l->tops, b);
	return l;
}

static Blob *
conv(Net *net, const char *name, Blob *in)
{
	Blob *top;
	Layer *l = unary(net, "Convolution", name, in, &top);
	PARAM(net, l, convolution_param, CONVOLUTION_PARAMETER);
	return top;
}

static Blob *
pool(Net *net, const char *name, Blob *in)
{
	Blob *top;
	Layer *l = unary(net, "Pooling", name, in, &top);
	PARAM(net, l, pooling_param, POOLING_PARAMETER);
	return top;
}

/* Run the verifier; `want` NULL expects a pass, else a failure whose message contains it. */
static void
expect(Net *net, const char *what, const char *want)
{
	char msg[768] = "";
	bool ok = netcheck(net, msg, sizeof msg);

	if (want ? !ok && strstr(msg, want) : ok) {
		passed++;
		printf("ok   %s%s%s\n", what, want ? ": " : "", want ? msg : "");
	} else {
		failed++;
		printf("FAIL %s: verdict %s, message '%s', expected %s'%s'\n", what,
		       ok ? "pass" : "fail", msg, want ? "a failure with " : "a pass",
		       want ? want : "");
	}
	net_free(net);
}

static void
good_nets(void)
{
	Net net;
	Blob *x = start(&net, "caffe"), *c1, *p;

	c1 = conv(&net, "conv", x);
	in_place(&net, "ReLU", "relu", c1);
	p = pool(&net, "pool", c1);
	vec_push(&net.outputs, p);
	expect(&net, "conv, ReLU in place as the sole reader, pool", NULL);

	x = start(&net, "opencv");
	c1 = conv(&net, "conv", x);
	in_place(&net, "ReLU6", "relu6", c1);
	expect(&net, "ReLU6 in target opencv", NULL);

	/* readers of a blob before and after a sole-reader in-place chain */
	x = start(&net, "caffe");
	c1 = conv(&net, "conv", x);
	in_place(&net, "ReLU", "relu", c1);
	pool(&net, "pool_a", c1);
	pool(&net, "pool_b", c1);
	expect(&net, "two readers after the in-place layer", NULL);
}

static void
table_rules(void)
{
	Net net;
	Blob *x, *t;
	Layer *l;

	x = start(&net, "caffe");
	unary(&net, "Upsample", "up", x, &t);
	expect(&net, "a type outside layers.def",
	       "layer type 'Upsample' is not in the target table");

	x = start(&net, "caffe");
	unary(&net, "ReLU6", "relu6", conv(&net, "conv", x), &t);
	expect(&net, "an OpenCV-only type in target caffe",
	       "layer type ReLU6 is not in target caffe");

	x = start(&net, "caffe");
	l = unary(&net, "Pooling", "pool", x, &t);
	PARAM(&net, l, convolution_param, CONVOLUTION_PARAMETER);
	expect(&net, "a param message of another type",
	       "carries convolution_param, which a Pooling layer");

	x = start(&net, "caffe");
	l = unary(&net, "Sigmoid", "sig", x, &t);
	PARAM(&net, l, relu_param, RE_LUPARAMETER);
	expect(&net, "a param message on a type with none", "carries relu_param");

	/* fields.def: OpenCV's ceil_mode in its own target, not in one that BVLC Caffe runs */
	for (int k = 0; k < 2; k++) {
		x = start(&net, k ? "caffe" : "opencv");
		l = unary(&net, "Pooling", "pool", x, &t);
		Caffe__PoolingParameter *pp = PARAM(&net, l, pooling_param, POOLING_PARAMETER);
		pp->has_ceil_mode = 1;
		pp->ceil_mode = 0;
		expect(&net, k ? "ceil_mode in target caffe" : "ceil_mode in target opencv",
		       k ? "sets pooling_param.ceil_mode, which target caffe does not read" : NULL);
	}
}

static void
producer_rules(void)
{
	Net net;
	Blob *x, *a, *b, *t;
	Layer *l;

	/* a bottom produced only by a later layer */
	x = start(&net, "caffe");
	a = net_blob(&net, t4(1, 3, 8, 8));
	a->name = "later";
	l = net_layer(&net, NULL, "ReLU", NULL);
	l->name = "early";
	layer_bottom(&net, l, a);
	layer_top(&net, l, a->type)->name = "early";
	l = net_layer(&net, NULL, "Sigmoid", NULL);
	l->name = "later";
	layer_bottom(&net, l, x);
	arena_vec_push(net.arena, &l->tops, a);
	a->producer = l;
	expect(&net, "a bottom produced by a later layer",
	       "layer 'early' (ReLU): bottom 'later' is neither an input nor produced by an "
	       "earlier layer");

	/* a bottom whose producer is dead */
	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	a->producer->dead = true;
	unary(&net, "ReLU", "relu", a, &t);
	expect(&net, "a bottom produced by a dead layer",
	       "bottom 'conv' is neither an input nor produced");

	/* two producers of one top */
	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	l = net_layer(&net, NULL, "Convolution", NULL);
	l->name = "conv2";
	PARAM(&net, l, convolution_param, CONVOLUTION_PARAMETER);
	layer_bottom(&net, l, x);
	arena_vec_push(net.arena, &l->tops, a);
	expect(&net, "a top produced twice",
	       "layer 'conv2' (Convolution): top 'conv' names another layer");
	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	b = conv(&net, "conv2", x);
	b->producer = a->producer; /* the blob claims the first layer: still a second production */
	arena_vec_push(net.arena, &b->producer->tops, a);
	expect(&net, "a layer producing one top twice",
	       "top 'conv' is already produced by an earlier layer");

	/* an output nothing produces */
	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	a->producer->dead = true;
	vec_push(&net.outputs, a);
	expect(&net, "an output nothing produces", "output 'conv' is not produced by any layer");
}

static void
in_place_rules(void)
{
	Net net;
	Blob *x, *a, *t;
	Layer *l;

	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	l = in_place(&net, "Reshape", "reshape", a);
	PARAM(&net, l, reshape_param, RESHAPE_PARAMETER);
	expect(&net, "Reshape in place", "runs in place on 'conv'; Reshape layers cannot");

	x = start(&net, "caffe");
	in_place(&net, "AbsVal", "abs", conv(&net, "conv", x));
	expect(&net, "AbsVal in place (BVLC CHECKs it)", "AbsVal layers cannot");

	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	pool(&net, "pool", a);
	in_place(&net, "ReLU", "relu", a);
	expect(&net,
	       "in place as the last of two readers (BVLC's Split makes it a second producer)",
	       "layer 'relu' (ReLU): runs in place on 'conv', which 1 other layer(s) also read");

	x = start(&net, "caffe");
	in_place(&net, "ReLU", "relu", x);
	expect(&net, "in place on the net input", "runs in place on the net input 'x'");

	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	l = unary(&net, "Reshape", "view", a, &t);
	PARAM(&net, l, reshape_param, RESHAPE_PARAMETER);
	in_place(&net, "BatchNorm", "bn", t);
	expect(&net, "in place on a Reshape's top (its bottom's memory in BVLC)",
	       "layer 'bn' (BatchNorm): runs in place on 'view', a Reshape top that shares its "
	       "bottom's memory");

	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	l = net_layer(&net, NULL, "Eltwise", NULL);
	l->name = "sum";
	layer_bottom(&net, l, a);
	layer_bottom(&net, l, x);
	arena_vec_push(net.arena, &l->tops, a);
	expect(&net, "in place with two bottoms", "Eltwise layers cannot");

	/* a reader that was lowered to read the value before the in-place layer, placed after it */
	x = start(&net, "caffe");
	a = conv(&net, "conv", x);
	l = unary(&net, "ReLU", "relu", a, &t);
	Layer *reader = unary(&net, "Sigmoid", "sig", a, &t);
	/* what fuse.c's in-place pass leaves: relu writes conv in place, and remembers its SSA
	 * top */
	Blob *relu_value = l->tops.v[0];
	l->ssa_bottoms = &l->bottoms.v[0];
	l->ssa_tops = arena_alloc(&ctx.arena, sizeof(Blob *));
	l->ssa_tops[0] = relu_value;
	l->tops.v[0] = a;
	reader->ssa_bottoms = arena_alloc(&ctx.arena, sizeof(Blob *));
	reader->ssa_bottoms[0] = a; /* it wants conv's own value */
	net_recount(&net);
	expect(&net, "a read after an in-place overwrite",
	       "layer 'sig' (Sigmoid): reads blob 'conv' after an in-place layer overwrote the "
	       "value it needs");
}

int
main(void)
{
	ctx_init(&ctx);
	ctx.g.nvalues = 16;
	good_nets();
	table_rules();
	producer_rules();
	in_place_rules();
	ctx_free(&ctx);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
