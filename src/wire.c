/* wire.c: protobuf's wire format, read in place (no copy, no allocation).
 *
 * A message is a run of fields, each a varint key (field number << 3 | wire type) and a value:
 * a varint, 8 or 4 little-endian bytes, or a varint length and that many bytes (a string, a
 * nested message, a packed array).  onnx_read.c walks the large messages of a model with this,
 * so that a tensor's bytes are used where the file's mapping holds them. */
#include "onnx.h"

bool
wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *q = *p;
	uint64_t x = 0;
	int shift;

	for (shift = 0; shift < 70 && q < end; shift += 7) {
		uint8_t b = *q++;

		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*p = q;
			*v = x;
			return true;
		}
	}
	return false;
}

int
wire_next(Wire *w, WireField *f)
{
	uint64_t key, n;
	const uint8_t *p = w->p;

	if (p >= w->end)
		return 0;
	f->at = p;
	if (!wire_varint(&p, w->end, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return -1;
	f->num = (uint32_t)(key >> 3);
	f->type = (int)(key & 7);
	f->data = NULL;
	switch (f->type) {
	case WIRE_VARINT:
		if (!wire_varint(&p, w->end, &f->u))
			return -1;
		break;
	case WIRE_I64:
	case WIRE_I32:
		n = f->type == WIRE_I64 ? 8 : 4;
		if ((uint64_t)(w->end - p) < n)
			return -1;
		f->u = 0;
		for (uint64_t i = 0; i < n; i++)
			f->u |= (uint64_t)p[i] << (8 * i);
		p += n;
		break;
	case WIRE_LEN:
		if (!wire_varint(&p, w->end, &n) || n > (uint64_t)(w->end - p))
			return -1;
		f->u = n;
		f->data = p;
		p += n;
		break;
	default: /* groups (3, 4) are not in ONNX's schema; 6 and 7 are no wire type */
		return -1;
	}
	w->p = p;
	return 1;
}
