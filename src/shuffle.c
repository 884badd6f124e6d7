/* shuffle.c: the channel-shuffle matcher, a pass over the IR that runs before lowering.
 *
 * ShuffleNet's channel shuffle, x.view(N, g, C/g, H, W).transpose(1, 2).contiguous().view(N, C,
 * H, W), goes through a 5-D tensor that portable Caffe cannot transpose (and OpenCV's
 * ShuffleChannel cannot be given its group).  The whole chain is a permutation of channels,
 * which lowers to one 1x1 Convolution (build.c's channel_permutation).  match_shuffles finds
 * each complete chain: a view or reshape from 4-D to (N, g, C/g, H, W), its transpose(1, 2), any
 * contiguous, clone or detach after it, and a view or reshape back to x's type, where each
 * intermediate result is read once, by the next op of the chain, and is not an output.  lower()
 * then lowers the chain's last op to the Convolution and the others to nothing; an incomplete
 * chain is lowered op by op (where a 5-D transpose is refused). */
#include "net.h"

#include <string.h>

/* The node that reads v, when v is read exactly once and is not an output; NULL otherwise.  Readers
 * come after v's definition, so the search starts at `from`. */
static Node *
sole_reader(const Value *v, Node *from)
{
	if (v->nuse != 1 || (v->flags & (V_OUTPUT | V_POISON)))
		return NULL;
	for (Node *n = from; n; n = n->next)
		if (n->idx == v->last_use)
			return n;
	return NULL;
}

static bool
first_arg_is(const Node *n, const Value *v)
{
	return n->nslot > 0 && n->arg[0].kind == L_VALUE && n->arg[0].u.v == v;
}

static bool
is_view(const Node *n)
{
	return n->op == OP_view || n->op == OP_reshape;
}

/* x.view(N, g, C/g, H, W): the group count, or 0. */
static int64_t
split_groups(const Node *n)
{
	const Type *in, *out = &n->res[0].type;

	if (!is_view(n) || n->nres != 1 || n->arg[0].kind != L_VALUE)
		return 0;
	in = &n->arg[0].u.v->type;
	if (in->ndim != 4 || out->ndim != 5 || in->dtype != DT_F32 || out->dims[0] != in->dims[0] ||
	    out->dims[1] * out->dims[2] != in->dims[1] || out->dims[3] != in->dims[2] ||
	    out->dims[4] != in->dims[3])
		return 0;
	return out->dims[1];
}

static bool
is_transpose_1_2(const Node *n)
{
	int64_t a = 0, b = 0;

	if (n->op != OP_transpose)
		return false;
	lit_as_int(op_arg(n, ARG(transpose, dim0)), &a);
	lit_as_int(op_arg(n, ARG(transpose, dim1)), &b);
	a = a < 0 ? a + 5 : a;
	b = b < 0 ? b + 5 : b;
	return (a == 1 && b == 2) || (a == 2 && b == 1);
}

static bool
is_copy(const Node *n)
{
	return n->op == OP_contiguous || n->op == OP_clone || n->op == OP_detach;
}

/* The chain that starts at `start`, if it is a complete channel shuffle: mark each of its nodes. */
static void
match_from(Net *net, Node *start)
{
	enum { MAX_COPIES = 8 };
	int64_t groups = split_groups(start);
	const Value *src = groups ? start->arg[0].u.v : NULL, *cur;
	Node *chain[MAX_COPIES + 3], *next;
	int k = 0;
	Shuffle *s;

	if (!groups || !(next = sole_reader(&start->res[0], start->next)) ||
	    !is_transpose_1_2(next) || !first_arg_is(next, &start->res[0]) || next->nres != 1)
		return;
	chain[k++] = start;
	chain[k++] = next;
	cur = &next->res[0];
	while ((next = sole_reader(cur, next->next)) && is_copy(next) && next->nres == 1 &&
	       first_arg_is(next, cur) && k < MAX_COPIES + 2) {
		chain[k++] = next;
		cur = &next->res[0];
	}
	if (!next || !is_view(next) || !first_arg_is(next, cur) ||
	    !type_equal(&next->res[0].type, &src->type))
		return;
	chain[k++] = next;
	s = NEW(net->arena, Shuffle);
	s->src = src;
	s->groups = groups;
	s->end = next;
	for (int i = 0; i < k; i++)
		net->shuffle_at[chain[i]->idx] = s;
}

void
match_shuffles(Net *net)
{
	for (Node *n = net->c->g.first; n; n = n->next)
		if (!net->shuffle_at[n->idx] && split_groups(n))
			match_from(net, n);
}
