/* flexlex.c: the lexer without its hand-written fast path (PTCC_NO_FAST_LEX), so that
 * tests/front/test_fast_lexer.sh can check that the fast path gives the same tokens as the flex
 * rules alone.  Linked into tests/unit/ptcc-flexlex with main.c; this object's lexer is found
 * before the one in libptccgen.a, which the linker then leaves out. */
#define PTCC_NO_FAST_LEX 1
#include "lexer.c"
